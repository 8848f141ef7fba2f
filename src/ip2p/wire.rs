//! The iP2P control message: versioned, authenticated, and small enough for one SMS.
//!
//! One [`Control`] travels in the 8-bit user data of a single SMS (at most 140 octets) addressed to
//! the iP2P application port (steps B.2, D.2, D.4, E.2), or in one frame over IP (B.4, E.4). It
//! carries the message kind, a request nonce, the sender's per-peer sequence number, the
//! application name, the sender's transport address (IPv4 or IPv6), and optionally the public side
//! of a NAT mapping and the chosen mode of operation (used by the NAT-traversal machines).
//!
//! Every message ends in a 16-octet tag: HMAC-SHA-256, truncated to its first 128 bits, under the
//! [`Key`] the two peers share, computed over a context that binds the direction (the sender's and
//! the receiver's MSISDNs, which are not sent) followed by every octet before the tag. A forged
//! message, one from a spoofed number, one signed with another peer's key, or one reflected back
//! to its sender fails with [`WireError::BadTag`]. Replays of genuine messages are the machine's
//! job (sequence window and nonces, see [`crate::ip2p`]).
//!
//! # Layout (version 1)
//!
//! | offset | octets | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | kind: 1 = Request, 2 = Reply, 3 = Refuse |
//! | 2 | 1 | flags: bit 0 address present, bit 1 mapping present, bit 2 mode present, bit 3 offer present, bit 4 answer by SMS; bits 5–7 zero |
//! | 3 | 8 | nonce, big-endian |
//! | 11 | 4 | sequence number, big-endian (Request: the sender's counter; Reply/Refuse: the request's, echoed) |
//! | 15 | 1 | n = length of the application name, 1..=32 |
//! | 16 | n | application name: `a-z 0-9 . _ + -` |
//! | | 7 or 19 | address (if flagged): family 4 or 6, the IP address (4 or 16 octets), port (2, big-endian) |
//! | | 7 or 19 | mapping (if flagged): the public address of a NAT mapping whose private side is the address |
//! | | 1 | mode (if flagged): 0 direct, 1 UPnP IGD, 2 STUNT #2, 3 relay |
//! | | 1 | offer (if flagged, P2PBroker): the modes the caller can take part in, bit *c* for mode code *c*; bits 4–7 zero, never empty |
//! | | 1 | refusal reason (Refuse only): 1 unknown application, 2 busy, 3 declined, 4 unreachable (no mapping) |
//! | end − 16 | 16 | tag |
//!
//! The longest message (32-octet name, two IPv6 addresses, mode, offer) is 104 octets.
//!
//! ```
//! use ip2p::ip2p::wire::{AppName, Control, Key, Kind, Nonce};
//! use ip2p::Msisdn;
//!
//! let key = Key::from_bytes([7; 32]);
//! let (a, b): (Msisdn, Msisdn) = ("+886900000001".parse().unwrap(), "+886900000002".parse().unwrap());
//! let msg = Control {
//!     kind: Kind::Request,
//!     nonce: Nonce(42),
//!     seq: 1,
//!     app: AppName::new("ftp").unwrap(),
//!     addr: Some("192.0.2.10:40000".parse().unwrap()),
//!     mapped: None,
//!     mode: None,
//!     offer: None,
//!     sms_reply: false,
//! };
//! let bytes = msg.encode(&key, &a, &b);
//! assert!(bytes.len() <= 140);
//! assert_eq!(Control::decode(&bytes, &key, &a, &b).unwrap(), msg);
//! // the same bytes claimed to come from b to a (a reflection) are rejected
//! assert!(Control::decode(&bytes, &key, &b, &a).is_err());
//! ```

use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::addr::TransportAddr;
use crate::chord::wire::{DecodeError, Reader, WireAddr};
use crate::msisdn::Msisdn;

/// The version this codec writes and reads.
pub const VERSION: u8 = 1;
/// Octets of the authentication tag.
pub const TAG_LEN: usize = 16;
/// The longest application name.
pub const MAX_APP_NAME: usize = 32;
/// The most octets a control message may have: one SMS of 8-bit data.
pub const MAX_LEN: usize = 140;
/// Octets before the application name.
const FIXED: usize = 16;

const FLAG_ADDR: u8 = 1;
const FLAG_MAPPED: u8 = 2;
const FLAG_MODE: u8 = 4;
const FLAG_OFFER: u8 = 8;
const FLAG_SMS_REPLY: u8 = 16;
const MAC_CONTEXT: &[u8] = b"ip2p control v1";

/// A key shared by two peers, 32 octets. Its `Debug` form does not show it, and it is overwritten
/// when dropped (best effort: without `unsafe` the compiler may elide the write; keep keys in as
/// few copies as you can).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// A key from 32 octets (e.g. from a key-derivation function or a provisioning step).
    pub const fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    fn mac(&self, from: &Msisdn, to: &Msisdn, body: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
        // rather than panic if that ever changed (the tags would then simply not verify).
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        m.update(MAC_CONTEXT);
        for id in [from, to] {
            let d = id.digits().as_bytes();
            m.update(&[d.len() as u8]);
            m.update(d);
        }
        m.update(body);
        m
    }
}

impl Key {
    /// A 32-octet value derived from this key for another purpose than control messages
    /// (HMAC-SHA-256 under the key over `label`, then each part length-prefixed), e.g. the token
    /// both peers present to a relay. Distinct labels give independent values.
    pub(crate) fn derive(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        m.update(&[label.len() as u8]);
        m.update(label);
        for p in parts {
            m.update(&(p.len() as u32).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0 = [0; 32];
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A request nonce: chosen at random by the caller for every request, echoed in the answer, so
/// that an answer is only ever taken for the request it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Nonce(pub u64);

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// An application name (`ftp`, `telnet`, `sip`): 1 to 32 octets of `a-z 0-9 . _ + -`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppName {
    len: u8,
    bytes: [u8; MAX_APP_NAME],
}

impl AppName {
    /// Check and wrap a name.
    pub fn new(name: &str) -> Result<AppName, WireError> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > MAX_APP_NAME {
            return Err(WireError::AppNameLength(b.len()));
        }
        if let Some(&c) = b.iter().find(|c| !is_app_char(**c)) {
            return Err(WireError::AppNameChar(c));
        }
        let mut bytes = [0; MAX_APP_NAME];
        bytes[..b.len()].copy_from_slice(b);
        Ok(AppName {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // only ASCII is ever stored
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

fn is_app_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'+' | b'-')
}

impl fmt::Debug for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppName({})", self.as_str())
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AppName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::string::String as serde::Deserialize>::deserialize(d)?;
        AppName::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The mode of operation a peer chose for the connection (P2PBroker's vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// Both peers reachable: connect directly (B.1–B.5).
    Direct,
    /// A port mapping made on the NAT with UPnP IGD (E.1–E.5).
    Upnp,
    /// TCP hole punching with STUNT #2 (C.0–C.8, D.1–D.6).
    Stunt2,
    /// Through a relay.
    Relay,
}

impl Mode {
    fn code(self) -> u8 {
        match self {
            Mode::Direct => 0,
            Mode::Upnp => 1,
            Mode::Stunt2 => 2,
            Mode::Relay => 3,
        }
    }
    fn from_code(c: u8) -> Option<Mode> {
        Some(match c {
            0 => Mode::Direct,
            1 => Mode::Upnp,
            2 => Mode::Stunt2,
            3 => Mode::Relay,
            _ => return None,
        })
    }
}

impl Mode {
    /// Every mode, cheapest first: the order P2PBroker tries them in.
    pub const ALL: [Mode; 4] = [Mode::Direct, Mode::Upnp, Mode::Stunt2, Mode::Relay];
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Direct => "direct",
            Mode::Upnp => "UPnP IGD",
            Mode::Stunt2 => "STUNT #2",
            Mode::Relay => "relay",
        })
    }
}

/// A set of modes of operation (a caller's offer), iterated cheapest first.
///
/// ```
/// use ip2p::ip2p::wire::{Mode, ModeSet};
/// let offer = ModeSet::ALL.without(Mode::Upnp);
/// assert_eq!(offer.iter().collect::<Vec<_>>(), [Mode::Direct, Mode::Stunt2, Mode::Relay]);
/// assert_eq!(offer.cheapest(), Some(Mode::Direct));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ModeSet(u8);

impl ModeSet {
    /// No mode.
    pub const EMPTY: ModeSet = ModeSet(0);
    /// Every mode.
    pub const ALL: ModeSet = ModeSet(0b1111);

    /// The set holding `mode` only.
    pub const fn only(mode: Mode) -> ModeSet {
        ModeSet(1 << mode as u8)
    }
    /// `mode` is in the set.
    pub const fn contains(self, mode: Mode) -> bool {
        self.0 & (1 << mode as u8) != 0
    }
    /// The set with `mode` added.
    pub const fn with(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 | 1 << mode as u8)
    }
    /// The set with `mode` removed.
    pub const fn without(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 & !(1 << mode as u8))
    }
    /// The modes in both sets.
    pub const fn and(self, other: ModeSet) -> ModeSet {
        ModeSet(self.0 & other.0)
    }
    /// No mode in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// How many modes.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// The modes, cheapest first.
    pub fn iter(self) -> impl Iterator<Item = Mode> {
        Mode::ALL.into_iter().filter(move |m| self.contains(*m))
    }
    /// The cheapest mode in the set.
    pub fn cheapest(self) -> Option<Mode> {
        self.iter().next()
    }
    /// The octet on the wire.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// The set of a wire octet; `None` for unknown bits.
    pub const fn from_bits(bits: u8) -> Option<ModeSet> {
        if bits & !Self::ALL.0 != 0 {
            None
        } else {
            Some(ModeSet(bits))
        }
    }
}

impl FromIterator<Mode> for ModeSet {
    fn from_iter<I: IntoIterator<Item = Mode>>(iter: I) -> ModeSet {
        iter.into_iter().fold(ModeSet::EMPTY, ModeSet::with)
    }
}

/// Why a callee refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Refusal {
    /// The callee runs no server for the application.
    UnknownApp,
    /// The callee has no room for another session.
    Busy,
    /// The callee's user or policy declined.
    Declined,
    /// The callee could not make its server reachable (no IGD mapping, unpredictable NAT).
    Unreachable,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Refusal::UnknownApp => 1,
            Refusal::Busy => 2,
            Refusal::Declined => 3,
            Refusal::Unreachable => 4,
        }
    }
    fn from_code(c: u8) -> Option<Refusal> {
        Some(match c {
            1 => Refusal::UnknownApp,
            2 => Refusal::Busy,
            3 => Refusal::Declined,
            4 => Refusal::Unreachable,
            _ => return None,
        })
    }
}

/// What a control message asks or answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Kind {
    /// Caller → callee (B.2): "attach and tell me where your application listens".
    Request,
    /// Callee → caller (B.4): "it listens at this address".
    Reply,
    /// Callee → caller: "no", with a reason.
    Refuse(Refusal),
}

/// One control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Control {
    /// Request, reply or refusal.
    pub kind: Kind,
    /// The request's nonce (an answer echoes it).
    pub nonce: Nonce,
    /// The sender's per-peer sequence number (an answer echoes the request's).
    pub seq: u32,
    /// The application (`ftp`).
    pub app: AppName,
    /// The sender's application transport address (IPA:PortA in B.2, IPB:PortB in B.4); with a
    /// mapping, its private side.
    pub addr: Option<TransportAddr>,
    /// The public side of a NAT mapping whose private side is `addr` (D.1: IPa:Porta ↔ IPA:PortA).
    pub mapped: Option<TransportAddr>,
    /// The mode of operation the sender chose.
    pub mode: Option<Mode>,
    /// P2PBroker (request): the modes the caller can take part in; the callee picks the
    /// cheapest it can do too and names it in `mode` of its answer.
    pub offer: Option<ModeSet>,
    /// Request: answer by SMS, not over IP (the caller cannot be reached from outside).
    pub sms_reply: bool,
}

/// Why octets are not a control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer octets than the fields announce.
    #[error("control message truncated: {0} octets")]
    Truncated(usize),
    /// More than one SMS of 8-bit data.
    #[error("control message of {0} octets exceeds the {MAX_LEN}-octet limit of one SMS")]
    TooLong(usize),
    /// Octets left between the last field and the tag.
    #[error("{0} unexpected octets before the tag")]
    Trailing(usize),
    /// A version this codec does not speak.
    #[error("control message version {0} is not supported (this build speaks version {VERSION})")]
    Version(u8),
    /// An unknown message kind.
    #[error("unknown control message kind {0}")]
    Kind(u8),
    /// Reserved flag bits set.
    #[error("reserved flag bits set: {0:#04x}")]
    Flags(u8),
    /// An application name of the wrong length.
    #[error("application name of {0} octets: it must be 1 to {MAX_APP_NAME}")]
    AppNameLength(usize),
    /// A character not allowed in an application name.
    #[error("octet {0:#04x} is not allowed in an application name")]
    AppNameChar(u8),
    /// An address family other than 4 or 6.
    #[error("unknown address family (4 and 6 are defined)")]
    Family,
    /// An unknown mode code.
    #[error("unknown mode {0}")]
    Mode(u8),
    /// An offer with unknown mode bits, or none at all.
    #[error("bad mode offer {0:#04x}")]
    Offer(u8),
    /// An unknown refusal reason.
    #[error("unknown refusal reason {0}")]
    Refusal(u8),
    /// The tag does not verify.
    #[error("authentication failed: the message is forged, corrupted, from a spoofed number, or signed with another key")]
    BadTag,
}

impl Control {
    /// Encode and sign `self` as sent by `from` to `to` under their shared `key`.
    pub fn encode(&self, key: &Key, from: &Msisdn, to: &Msisdn) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + MAX_APP_NAME + 2 * 19 + 2 + TAG_LEN);
        out.push(VERSION);
        out.push(match self.kind {
            Kind::Request => 1,
            Kind::Reply => 2,
            Kind::Refuse(_) => 3,
        });
        let mut flags = 0;
        if self.addr.is_some() {
            flags |= FLAG_ADDR;
        }
        if self.mapped.is_some() {
            flags |= FLAG_MAPPED;
        }
        if self.mode.is_some() {
            flags |= FLAG_MODE;
        }
        if self.offer.is_some() {
            flags |= FLAG_OFFER;
        }
        if self.sms_reply {
            flags |= FLAG_SMS_REPLY;
        }
        out.push(flags);
        out.extend_from_slice(&self.nonce.0.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        let name = self.app.as_str().as_bytes();
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        for a in [self.addr, self.mapped].into_iter().flatten() {
            // the same address encoding as Chord's wire format
            a.put(&mut out);
        }
        if let Some(m) = self.mode {
            out.push(m.code());
        }
        if let Some(o) = self.offer {
            out.push(o.bits());
        }
        if let Kind::Refuse(r) = self.kind {
            out.push(r.code());
        }
        let tag = key.mac(from, to, &out).finalize().into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        out
    }

    /// Decode `bytes` as sent by `from` to `to` and verify the tag under `key`. Fields are checked
    /// first (bounded work on any input), then the tag, in constant time.
    pub fn decode(
        bytes: &[u8],
        key: &Key,
        from: &Msisdn,
        to: &Msisdn,
    ) -> Result<Control, WireError> {
        let msg = Self::parse(bytes)?;
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        key.mac(from, to, body)
            .verify_truncated_left(tag)
            .map_err(|_| WireError::BadTag)?;
        Ok(msg)
    }

    /// Parse the fields without verifying the tag: for routing a message to the key it must be
    /// verified with (e.g. the nonce of an answer arriving over IP). Never act on an unverified
    /// message.
    pub fn parse(bytes: &[u8]) -> Result<Control, WireError> {
        if bytes.len() > MAX_LEN {
            return Err(WireError::TooLong(bytes.len()));
        }
        if bytes.len() < FIXED + 1 + TAG_LEN {
            return Err(WireError::Truncated(bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(WireError::Version(bytes[0]));
        }
        let kind_code = bytes[1];
        if !(1..=3).contains(&kind_code) {
            return Err(WireError::Kind(kind_code));
        }
        let flags = bytes[2];
        if flags & !(FLAG_ADDR | FLAG_MAPPED | FLAG_MODE | FLAG_OFFER | FLAG_SMS_REPLY) != 0 {
            return Err(WireError::Flags(flags));
        }
        let total = bytes.len();
        let body = &bytes[..total - TAG_LEN];
        // Chord's bounded reader; its errors are mapped onto this format's
        let short = |e: DecodeError| match e {
            DecodeError::Invalid(_) => WireError::Family,
            _ => WireError::Truncated(total),
        };
        let mut r = Reader::new(&body[3..]);
        let nonce = Nonce(u64::from_be_bytes(r.array("nonce").map_err(short)?));
        let seq = r.u32("sequence number").map_err(short)?;
        let n = r.u8("name length").map_err(short)? as usize;
        if n == 0 || n > MAX_APP_NAME {
            return Err(WireError::AppNameLength(n));
        }
        let name = r.bytes(n, "application name").map_err(short)?;
        if let Some(&c) = name.iter().find(|c| !is_app_char(**c)) {
            return Err(WireError::AppNameChar(c));
        }
        let mut app = AppName {
            len: n as u8,
            bytes: [0; MAX_APP_NAME],
        };
        app.bytes[..n].copy_from_slice(name);
        let mut addr_if = |flag: u8| -> Result<Option<TransportAddr>, WireError> {
            if flags & flag != 0 {
                TransportAddr::take(&mut r).map(Some).map_err(short)
            } else {
                Ok(None)
            }
        };
        let addr = addr_if(FLAG_ADDR)?;
        let mapped = addr_if(FLAG_MAPPED)?;
        let mode = if flags & FLAG_MODE != 0 {
            let c = r.u8("mode").map_err(short)?;
            Some(Mode::from_code(c).ok_or(WireError::Mode(c))?)
        } else {
            None
        };
        let offer = if flags & FLAG_OFFER != 0 {
            let c = r.u8("offer").map_err(short)?;
            match ModeSet::from_bits(c) {
                Some(o) if !o.is_empty() => Some(o),
                _ => return Err(WireError::Offer(c)),
            }
        } else {
            None
        };
        let kind = match kind_code {
            1 => Kind::Request,
            2 => Kind::Reply,
            _ => {
                let c = r.u8("refusal reason").map_err(short)?;
                Kind::Refuse(Refusal::from_code(c).ok_or(WireError::Refusal(c))?)
            }
        };
        if r.remaining() != 0 {
            return Err(WireError::Trailing(r.remaining()));
        }
        Ok(Control {
            kind,
            nonce,
            seq,
            app,
            addr,
            mapped,
            mode,
            offer,
            sms_reply: flags & FLAG_SMS_REPLY != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Msisdn, Msisdn) {
        (
            Msisdn::parse("+886900000001").unwrap(),
            Msisdn::parse("+886900000002").unwrap(),
        )
    }

    fn longest() -> Control {
        Control {
            kind: Kind::Request,
            nonce: Nonce(u64::MAX),
            seq: u32::MAX,
            app: AppName::new("abcdefghijklmnopqrstuvwxyz012345").unwrap(),
            addr: Some("[2001:db8::1]:65535".parse().unwrap()),
            mapped: Some("[2001:db8::2]:1".parse().unwrap()),
            mode: Some(Mode::Stunt2),
            offer: Some(ModeSet::ALL),
            sms_reply: true,
        }
    }

    #[test]
    fn longest_fits_one_sms() {
        let (a, b) = ids();
        let key = Key::from_bytes([1; 32]);
        let bytes = longest().encode(&key, &a, &b);
        assert_eq!(bytes.len(), 104);
        assert_eq!(Control::decode(&bytes, &key, &a, &b), Ok(longest()));
    }

    #[test]
    fn known_layout() {
        let (a, b) = ids();
        let key = Key::from_bytes([0; 32]);
        let m = Control {
            kind: Kind::Refuse(Refusal::Busy),
            nonce: Nonce(0x0102030405060708),
            seq: 9,
            app: AppName::new("ftp").unwrap(),
            addr: Some("10.0.0.1:21".parse().unwrap()),
            mapped: None,
            mode: Some(Mode::Direct),
            offer: None,
            sms_reply: false,
        };
        let bytes = m.encode(&key, &a, &b);
        let body: &[u8] = &[
            1, 3, 0b101, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9, 3, b'f', b't', b'p', 4, 10, 0, 0, 1,
            0, 21, 0, 2,
        ];
        assert_eq!(&bytes[..bytes.len() - TAG_LEN], body);
        assert_eq!(bytes.len(), body.len() + TAG_LEN);
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (a, b) = ids();
        let key = Key::from_bytes([3; 32]);
        let bytes = longest().encode(&key, &a, &b);
        for i in 0..bytes.len() * 8 {
            let mut x = bytes.clone();
            x[i / 8] ^= 1 << (i % 8);
            assert!(Control::decode(&x, &key, &a, &b).is_err(), "bit {i}");
        }
        let other = Key::from_bytes([4; 32]);
        assert_eq!(
            Control::decode(&bytes, &other, &a, &b),
            Err(WireError::BadTag)
        );
        let c = Msisdn::parse("+886900000003").unwrap();
        assert_eq!(
            Control::decode(&bytes, &key, &c, &b),
            Err(WireError::BadTag)
        );
    }

    #[test]
    fn field_errors() {
        let (a, b) = ids();
        let key = Key::from_bytes([3; 32]);
        let good = longest().encode(&key, &a, &b);
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(Control::parse(&v), Err(WireError::Version(2)));
        let mut v = good.clone();
        v[1] = 9;
        assert_eq!(Control::parse(&v), Err(WireError::Kind(9)));
        let mut v = good.clone();
        v[2] |= 0x80;
        assert_eq!(Control::parse(&v), Err(WireError::Flags(v[2])));
        assert_eq!(Control::parse(&good[..20]), Err(WireError::Truncated(20)));
        assert_eq!(Control::parse(&[0; 141]), Err(WireError::TooLong(141)));
        assert_eq!(AppName::new("FTP"), Err(WireError::AppNameChar(b'F')));
        assert_eq!(AppName::new(""), Err(WireError::AppNameLength(0)));
        assert_eq!(Key::from_bytes([9; 32]).clone(), Key::from_bytes([9; 32]));
        assert_ne!(Key::from_bytes([9; 32]), Key::from_bytes([8; 32]));
        assert_eq!(format!("{:?}", Key::from_bytes([9; 32])), "Key(..)");
    }
}
