//! The STUNT #2 wire format: proxy messages (C.0–C.2, C.5, C.6) and port-prediction messages
//! (C.3, C.4), each carried in one length-prefixed frame over TCP.
//!
//! A frame is a big-endian `u16` body length followed by the body; the body is one type octet and
//! that type's fields. No body is longer than [`MAX_BODY`], so a reader never holds more than
//! `2 + MAX_BODY` octets of one peer's stream. The byte table is in `spec/stunt.md`.
//!
//! Decoding reuses the bounded [`Reader`] and the [`DecodeError`] of the Chord codec.
//!
//! ```
//! use ip2p::stunt::wire::{Msg, PeerId, Signal, SessionId};
//! let m = Msg::Relay { to: PeerId(7), signal: Signal::Request { session: SessionId(1) } };
//! let frame = m.to_frame();
//! let len = ip2p::stunt::wire::body_len([frame[0], frame[1]]).unwrap();
//! assert_eq!(Msg::decode(&frame[2..2 + len]), Ok(m));
//! ```

use alloc::vec::Vec;

use crate::addr::TransportAddr;
use crate::chord::wire::WireAddr;
pub use crate::chord::wire::{DecodeError, Reader};

/// Largest frame body accepted (the largest message, a relayed IPv6 mapping, is 50 octets).
pub const MAX_BODY: usize = 64;

/// A peer's identification at the proxy server (C.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u64);

/// One connection attempt between two peers, chosen by the caller (C.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u32);

/// A peer's mapping of its private to its predicted public transport address (C.5, C.6, D.2, D.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The private transport address (IPa:Porta) the peer reserved.
    pub private: TransportAddr,
    /// The public transport address (IPA:PortA) its NAT is predicted to give it.
    pub public: TransportAddr,
}

/// What one peer tells the other through the proxy (C.1, C.2, C.5, C.6) or, in the D steps,
/// through the iP2P control SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// C.1: the caller asks for a P2P connection.
    Request {
        /// The attempt.
        session: SessionId,
    },
    /// C.2: the callee accepts.
    Accept {
        /// The attempt.
        session: SessionId,
    },
    /// C.2: the callee declines.
    Reject {
        /// The attempt.
        session: SessionId,
    },
    /// C.5/C.6: the sender's mapping.
    Mapping {
        /// The attempt.
        session: SessionId,
        /// The mapping.
        mapping: Mapping,
    },
    /// Either side gives up on the attempt (its prediction failed, or it timed out).
    Abort {
        /// The attempt.
        session: SessionId,
    },
}

impl Signal {
    /// The attempt this signal belongs to.
    pub fn session(&self) -> SessionId {
        match *self {
            Signal::Request { session }
            | Signal::Accept { session }
            | Signal::Reject { session }
            | Signal::Mapping { session, .. }
            | Signal::Abort { session } => session,
        }
    }
}

/// One message on a proxy connection (ConnectionA/ConnectionB) or a prediction probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    /// C.0, peer → proxy: register this identification on this connection.
    Register {
        /// Who the peer is.
        id: PeerId,
    },
    /// C.0, proxy → peer: registered.
    Registered {
        /// Who the peer is.
        id: PeerId,
    },
    /// Peer → proxy: relay `signal` to peer `to`.
    Relay {
        /// The destination peer.
        to: PeerId,
        /// What to relay.
        signal: Signal,
    },
    /// Proxy → peer: `signal` from peer `from`.
    Relayed {
        /// The source peer.
        from: PeerId,
        /// What was relayed.
        signal: Signal,
    },
    /// Proxy → peer: `to` is not registered, nothing was relayed.
    NoSuchPeer {
        /// The peer asked for.
        to: PeerId,
    },
    /// C.3/C.4, client → prediction server: probe number `seq`.
    Probe {
        /// The probe's number.
        seq: u8,
    },
    /// C.3/C.4, prediction server → client: the source address probe `seq` arrived from.
    Observed {
        /// The probe's number.
        seq: u8,
        /// The public transport address the server saw.
        addr: TransportAddr,
    },
}

const T_REGISTER: u8 = 0x01;
const T_REGISTERED: u8 = 0x02;
const T_RELAY: u8 = 0x03;
const T_RELAYED: u8 = 0x04;
const T_NO_SUCH_PEER: u8 = 0x05;
const T_PROBE: u8 = 0x10;
const T_OBSERVED: u8 = 0x11;

const S_REQUEST: u8 = 1;
const S_ACCEPT: u8 = 2;
const S_REJECT: u8 = 3;
const S_MAPPING: u8 = 4;
const S_ABORT: u8 = 5;

/// The body length announced by a frame header; an error when it is zero or over [`MAX_BODY`].
pub fn body_len(header: [u8; 2]) -> Result<usize, DecodeError> {
    let n = usize::from(u16::from_be_bytes(header));
    if n == 0 {
        return Err(DecodeError::Empty);
    }
    if n > MAX_BODY {
        return Err(DecodeError::TooLarge {
            what: "frame body",
            got: n,
            max: MAX_BODY,
        });
    }
    Ok(n)
}

impl Signal {
    fn put(&self, out: &mut Vec<u8>) {
        let (t, s) = match self {
            Signal::Request { session } => (S_REQUEST, session),
            Signal::Accept { session } => (S_ACCEPT, session),
            Signal::Reject { session } => (S_REJECT, session),
            Signal::Mapping { session, .. } => (S_MAPPING, session),
            Signal::Abort { session } => (S_ABORT, session),
        };
        out.push(t);
        out.extend_from_slice(&s.0.to_be_bytes());
        if let Signal::Mapping { mapping, .. } = self {
            mapping.private.put(out);
            mapping.public.put(out);
        }
    }

    fn take(r: &mut Reader<'_>) -> Result<Signal, DecodeError> {
        let t = r.u8("signal type")?;
        let session = SessionId(r.u32("session")?);
        Ok(match t {
            S_REQUEST => Signal::Request { session },
            S_ACCEPT => Signal::Accept { session },
            S_REJECT => Signal::Reject { session },
            S_MAPPING => Signal::Mapping {
                session,
                mapping: Mapping {
                    private: TransportAddr::take(r)?,
                    public: TransportAddr::take(r)?,
                },
            },
            S_ABORT => Signal::Abort { session },
            _ => return Err(DecodeError::Invalid("signal type")),
        })
    }

    /// The signal's own encoding (what the D steps carry inside an iP2P control message).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put(&mut out);
        out
    }

    /// Decode exactly one signal from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signal, DecodeError> {
        let mut r = Reader::new(bytes);
        let s = Signal::take(&mut r)?;
        match r.remaining() {
            0 => Ok(s),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

impl Msg {
    /// Append the body (without the length prefix).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Msg::Register { id } => {
                out.push(T_REGISTER);
                out.extend_from_slice(&id.0.to_be_bytes());
            }
            Msg::Registered { id } => {
                out.push(T_REGISTERED);
                out.extend_from_slice(&id.0.to_be_bytes());
            }
            Msg::Relay { to, signal } => {
                out.push(T_RELAY);
                out.extend_from_slice(&to.0.to_be_bytes());
                signal.put(out);
            }
            Msg::Relayed { from, signal } => {
                out.push(T_RELAYED);
                out.extend_from_slice(&from.0.to_be_bytes());
                signal.put(out);
            }
            Msg::NoSuchPeer { to } => {
                out.push(T_NO_SUCH_PEER);
                out.extend_from_slice(&to.0.to_be_bytes());
            }
            Msg::Probe { seq } => {
                out.push(T_PROBE);
                out.push(*seq);
            }
            Msg::Observed { seq, addr } => {
                out.push(T_OBSERVED);
                out.push(*seq);
                addr.put(out);
            }
        }
    }

    /// The whole frame: length prefix and body.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = alloc::vec![0, 0];
        self.encode(&mut out);
        let n = u16::try_from(out.len() - 2).unwrap_or(u16::MAX);
        out[..2].copy_from_slice(&n.to_be_bytes());
        out
    }

    /// Decode exactly one message body (the octets after the length prefix).
    pub fn decode(body: &[u8]) -> Result<Msg, DecodeError> {
        if body.len() > MAX_BODY {
            return Err(DecodeError::TooLarge {
                what: "frame body",
                got: body.len(),
                max: MAX_BODY,
            });
        }
        let mut r = Reader::new(body);
        let id = |r: &mut Reader<'_>| -> Result<PeerId, DecodeError> {
            Ok(PeerId(u64::from_be_bytes(r.array("peer id")?)))
        };
        let m = match r.u8("message type").map_err(|_| DecodeError::Empty)? {
            T_REGISTER => Msg::Register { id: id(&mut r)? },
            T_REGISTERED => Msg::Registered { id: id(&mut r)? },
            T_RELAY => Msg::Relay {
                to: id(&mut r)?,
                signal: Signal::take(&mut r)?,
            },
            T_RELAYED => Msg::Relayed {
                from: id(&mut r)?,
                signal: Signal::take(&mut r)?,
            },
            T_NO_SUCH_PEER => Msg::NoSuchPeer { to: id(&mut r)? },
            T_PROBE => Msg::Probe {
                seq: r.u8("probe number")?,
            },
            T_OBSERVED => Msg::Observed {
                seq: r.u8("probe number")?,
                addr: TransportAddr::take(&mut r)?,
            },
            t => return Err(DecodeError::UnknownType(t)),
        };
        match r.remaining() {
            0 => Ok(m),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// An incremental frame splitter for a byte stream: feed it what the socket gave, take whole
/// messages out. It never buffers more than `2 + MAX_BODY` octets; after a decode error the
/// stream is out of step and the host should close it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take as many octets of `data` as complete at most one frame; returns how many were taken
    /// and the message if a frame completed. Call again with the rest.
    pub fn push(&mut self, data: &[u8]) -> (usize, Option<Result<Msg, DecodeError>>) {
        let mut taken = 0;
        while self.buf.len() < 2 && taken < data.len() {
            self.buf.push(data[taken]);
            taken += 1;
        }
        if self.buf.len() < 2 {
            return (taken, None);
        }
        let len = match body_len([self.buf[0], self.buf[1]]) {
            Ok(n) => n,
            Err(e) => {
                self.buf.clear();
                return (taken, Some(Err(e)));
            }
        };
        let want = 2 + len - self.buf.len();
        let n = want.min(data.len() - taken);
        self.buf.extend_from_slice(&data[taken..taken + n]);
        taken += n;
        if self.buf.len() < 2 + len {
            return (taken, None);
        }
        let m = Msg::decode(&self.buf[2..]);
        self.buf.clear();
        (taken, Some(m))
    }

    /// Octets buffered towards the next frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> TransportAddr {
        s.parse().unwrap()
    }

    fn all() -> Vec<Msg> {
        let session = SessionId(0xdead_beef);
        let mapping = Mapping {
            private: addr("10.0.1.2:40000"),
            public: addr("[2001:db8::1]:40000"),
        };
        let mut v = alloc::vec![
            Msg::Register { id: PeerId(1) },
            Msg::Registered { id: PeerId(1) },
            Msg::NoSuchPeer { to: PeerId(9) },
            Msg::Probe { seq: 3 },
            Msg::Observed {
                seq: 3,
                addr: addr("80.100.1.1:40000"),
            },
        ];
        for signal in [
            Signal::Request { session },
            Signal::Accept { session },
            Signal::Reject { session },
            Signal::Abort { session },
            Signal::Mapping { session, mapping },
        ] {
            v.push(Msg::Relay {
                to: PeerId(2),
                signal,
            });
            v.push(Msg::Relayed {
                from: PeerId(u64::MAX),
                signal,
            });
        }
        v
    }

    #[test]
    fn every_message_round_trips_and_fits() {
        for m in all() {
            let f = m.to_frame();
            let n = body_len([f[0], f[1]]).unwrap();
            assert_eq!(n, f.len() - 2);
            assert!(n <= MAX_BODY, "{m:?} is {n} octets");
            assert_eq!(Msg::decode(&f[2..]), Ok(m));
        }
    }

    #[test]
    fn frame_reader_splits_a_stream_fed_byte_by_byte() {
        let msgs = all();
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.to_frame()).collect();
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        for b in &stream {
            let (n, m) = r.push(core::slice::from_ref(b));
            assert_eq!(n, 1);
            if let Some(m) = m {
                got.push(m.unwrap());
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(body_len([0, 0]), Err(DecodeError::Empty));
        assert!(matches!(
            body_len([0xff, 0xff]),
            Err(DecodeError::TooLarge { got: 65535, .. })
        ));
        assert_eq!(Msg::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Msg::decode(&[0x77]), Err(DecodeError::UnknownType(0x77)));
        assert_eq!(
            Msg::decode(&[T_PROBE, 1, 2]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            Msg::decode(&[T_OBSERVED, 1, 5, 1, 2, 3, 4, 0, 1]),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            Msg::decode(&[T_REGISTER, 1]),
            Err(DecodeError::Truncated(_))
        ));
        let mut r = FrameReader::new();
        assert!(matches!(r.push(&[0x10, 0]), (2, Some(Err(_)))));
        assert_eq!(r.buffered(), 0);
    }
}
