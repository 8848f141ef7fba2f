//! SMS, sans-IO: TS 23.040 TPDUs, TS 23.038 alphabets, user-data headers, concatenation.
//!
//! The layers, bottom up:
//!
//! - [`gsm7`]: the GSM 7-bit default alphabet and its extension table, septet packing with fill
//!   bits, UCS-2, and [`gsm7::choose`] to pick the alphabet for a text;
//! - [`address`]: TP-DA/TP-OA and SMSC addresses ([`Address`], `From<Msisdn>`);
//! - [`udh`]: user-data headers (concatenation, application ports, other elements kept raw);
//! - [`pdu`]: [`Submit`] and [`Deliver`], encoded and decoded, with [`Dcs`], [`Timestamp`],
//!   [`Validity`] and the PDU-mode SMSC prefix ([`split_smsc`], [`encode_smsc`]);
//! - [`concat`](mod@concat): splitting into concatenated parts and the [`Reassembler`] machine;
//! - [`at`]: the AT commands that carry PDUs to and from a modem.
//!
//! Everything here is a pure function of its input except [`Reassembler`], which is a
//! [`Machine`](crate::machine::Machine) taking time as input. Decoders are bounded by the
//! 140-octet user data and never panic. The format, limits and choices are in `spec/sms.md`.
//!
//! # Example: an iP2P control message to a peer's application port, and back
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::sms::{self, Address, Body, Deliver, Event, Reassembler, Submit, Timestamp};
//! use ip2p::{Msisdn, Time};
//!
//! let peer: Msisdn = "+886912345678".parse().unwrap();
//! let me: Msisdn = "+886987654321".parse().unwrap();
//! // 200 octets do not fit one SMS: two parts, each with a port and a concatenation header
//! let payload = [0x42u8; 200];
//! let parts = sms::port_message(peer.into(), 9200, 9201, &payload, 7).unwrap();
//! assert_eq!(parts.len(), 2);
//!
//! // what the modem sends (AT+CMGS in PDU mode, default SMSC) ...
//! let mut pdu = Vec::new();
//! let tpdu_len = parts[0].encode_pdu_mode(None, &mut pdu).unwrap();
//! assert_eq!(pdu.len(), tpdu_len + 1);
//! let (smsc, tpdu) = sms::split_smsc(&pdu).unwrap();
//! assert!(smsc.is_none());
//! assert_eq!(Submit::decode(tpdu).unwrap(), parts[0]);
//!
//! // ... and what the peer's modem receives, in any order
//! let mut r = Reassembler::default();
//! for p in parts.iter().rev() {
//!     let d = Deliver::from_submit(p, me.into(), Timestamp::default());
//!     let mut bytes = Vec::new();
//!     d.encode(&mut bytes).unwrap();
//!     r.handle(Time::ZERO, Deliver::decode(&bytes).unwrap()).unwrap();
//! }
//! match r.poll() {
//!     Some(Event::Complete(m)) => {
//!         assert_eq!(m.from.msisdn(), Some(me));
//!         assert_eq!(m.ports, Some((9200, 9201)));
//!         assert_eq!(m.body, Body::Bytes(payload.to_vec()));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use alloc::vec::Vec;

pub mod address;
pub mod at;
pub mod concat;
pub mod gsm7;
pub mod pdu;
pub mod udh;

pub use address::{encode_smsc, split_smsc, Address, NumberingPlan, TypeOfNumber};
pub use concat::{
    split_data, split_text, Body, Config, Event, Message, PartsKey, Reassembler, ReassemblyError,
};
pub use gsm7::Alphabet;
pub use pdu::{Dcs, Deliver, MessageClass, PduError, Submit, Timestamp, UserData, Validity};
pub use udh::{Ie, Udh};

/// The SUBMITs that carry `payload` (8-bit data) to application port `dst_port` of `to`, from
/// `src_port`. The 16-bit port header takes 7 of the 140 octets, so up to 133 octets go in one
/// SMS; a longer payload (an iP2P control message of 134 to 140 octets, say) is split into parts
/// of 128 octets, each also carrying a concatenation header (8-bit reference if `reference` <
/// 256, else 16-bit, then 127 octets a part; at most 255 parts). A phone hands port-addressed
/// data to the application listening on the port, not to the inbox. Every returned SUBMIT
/// encodes ([`Submit::encode`] succeeds); set `reference`, `status_report` … on them as needed.
pub fn port_message(
    to: Address,
    dst_port: u16,
    src_port: u16,
    payload: &[u8],
    reference: u16,
) -> Result<Vec<Submit>, PduError> {
    to.check(false)?;
    split_data(&to, Some((dst_port, src_port)), payload, reference)
}

#[cfg(test)]
mod tests;
