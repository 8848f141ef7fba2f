//! SAMP on the wire: one UDP socket carries both SIP (text) and Chord (binary) datagrams, so a
//! server needs one codec for both; the mobile node and the correspondent speak SIP alone.
//!
//! # The demultiplexing rule
//!
//! Every Chord datagram starts with its wire version, [`chord::wire::VERSION`] (`0x01`). A SIP
//! datagram starts with text: a request with its method (an ASCII letter, `REGISTER`, `INVITE`
//! …), a response with `SIP/`, and a keep-alive with CR or LF (RFC 3261 §7.5). `0x01` is a control
//! character that no SIP message may start with, so the rule is exact:
//!
//! | first byte | decoded as |
//! |---|---|
//! | `0x01` | a Chord message ([`chord::wire::ChordWire`]) |
//! | anything else | a SIP message ([`crate::sip::parse`]) |
//! | (no bytes) | [`SampDecodeError::Empty`] |
//!
//! A Chord version other than 1 therefore falls to the SIP parser, which rejects it: both
//! codecs are bounded and never panic, so a datagram that is neither is one typed error.
//!
//! With these codecs [`Server`], [`MobileNode`] and [`Correspondent`] are
//! [`Networked`] machines, and the crate's generic socket driver runs them unchanged.

use alloc::vec::Vec;

use super::correspondent::{self, Correspondent};
use super::mobile::{self, MobileNode};
use super::server::{self, Server};
use crate::chord::{self, wire::ChordWire, RingId};
use crate::machine::{Codec, Effect, Networked};
use crate::sip::{self, Message, SipError};
use crate::TransportAddr;

/// One datagram on a SAMP server's socket.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<I> {
    /// A SIP message.
    Sip(Message),
    /// A Chord message between servers.
    Chord(chord::Message<I, TransportAddr>),
}

/// Why a datagram is neither SIP nor Chord.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampDecodeError {
    /// An empty datagram.
    #[error("empty datagram")]
    Empty,
    /// It starts like a Chord message but is not one.
    #[error("bad Chord message: {0}")]
    Chord(#[from] chord::wire::DecodeError),
    /// It is not a SIP message.
    #[error("bad SIP message: {0}")]
    Sip(#[from] SipError),
}

/// Whether a datagram is a Chord message by the [demultiplexing rule](self#the-demultiplexing-rule).
pub fn is_chord(bytes: &[u8]) -> bool {
    bytes.first() == Some(&chord::wire::VERSION)
}

/// The codec of a SAMP server's socket: SIP and Chord, told apart by the first byte.
#[derive(Clone, Copy, Debug)]
pub struct SampWire<I>(core::marker::PhantomData<I>);

impl<I: RingId> Codec for SampWire<I> {
    type Msg = Packet<I>;
    type Error = SampDecodeError;

    fn encode(msg: &Packet<I>, out: &mut Vec<u8>) {
        match msg {
            Packet::Sip(m) => sip::encode_into(m, out),
            Packet::Chord(m) => ChordWire::<I, TransportAddr>::write(m, out),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Packet<I>, SampDecodeError> {
        if bytes.is_empty() {
            return Err(SampDecodeError::Empty);
        }
        if is_chord(bytes) {
            Ok(Packet::Chord(ChordWire::<I, TransportAddr>::read(bytes)?))
        } else {
            Ok(Packet::Sip(sip::parse(bytes)?))
        }
    }
}

/// The codec of a SIP-only socket (mobile node, correspondent).
#[derive(Clone, Copy, Debug)]
pub struct SipWire;

impl Codec for SipWire {
    type Msg = Message;
    type Error = SipError;

    fn encode(msg: &Message, out: &mut Vec<u8>) {
        sip::encode_into(msg, out);
    }

    fn decode(bytes: &[u8]) -> Result<Message, SipError> {
        sip::parse(bytes)
    }
}

impl<I: RingId> Networked for Server<I> {
    type Wire = SampWire<I>;
    type Event = server::Event<I>;

    fn message_input(from: TransportAddr, msg: Packet<I>) -> server::Input<I> {
        match msg {
            Packet::Sip(msg) => server::Input::Sip { from, msg },
            Packet::Chord(msg) => server::Input::Chord { from, msg },
        }
    }

    fn effect(out: server::Output<I>) -> Effect<Packet<I>, server::Event<I>> {
        match out {
            server::Output::Sip { to, msg } => Effect::Send {
                to,
                msg: Packet::Sip(msg),
            },
            server::Output::Chord { to, msg } => Effect::Send {
                to,
                msg: Packet::Chord(msg),
            },
            server::Output::Event(e) => Effect::Event(e),
        }
    }
}

impl Networked for MobileNode {
    type Wire = SipWire;
    type Event = mobile::Event;

    fn message_input(from: TransportAddr, msg: Message) -> mobile::Input {
        mobile::Input::Sip { from, msg }
    }

    fn effect(out: mobile::Output) -> Effect<Message, mobile::Event> {
        match out {
            mobile::Output::Sip { to, msg } => Effect::Send { to, msg },
            mobile::Output::Event(e) => Effect::Event(e),
        }
    }
}

impl Networked for Correspondent {
    type Wire = SipWire;
    type Event = correspondent::Event;

    fn message_input(from: TransportAddr, msg: Message) -> correspondent::Input {
        correspondent::Input::Sip { from, msg }
    }

    fn effect(out: correspondent::Output) -> Effect<Message, correspondent::Event> {
        match out {
            correspondent::Output::Sip { to, msg } => Effect::Send { to, msg },
            correspondent::Output::Event(e) => Effect::Event(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::NodeId;

    type W = SampWire<NodeId>;

    #[test]
    fn sip_and_chord_round_trip_through_one_codec() {
        let sip = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let Packet::Sip(m) = W::decode(sip).unwrap() else {
            panic!("SIP decoded as Chord")
        };
        let mut out = Vec::new();
        W::encode(&Packet::Sip(m.clone()), &mut out);
        assert_eq!(W::decode(&out).unwrap(), Packet::Sip(m));

        let notify = chord::Message::Notify {
            id: NodeId::sha1_of(b"x"),
        };
        let mut out = Vec::new();
        W::encode(&Packet::Chord(notify.clone()), &mut out);
        assert_eq!(out[0], chord::wire::VERSION);
        assert_eq!(W::decode(&out).unwrap(), Packet::Chord(notify));
    }

    #[test]
    fn responses_and_keepalives_are_sip_and_garbage_is_an_error() {
        assert!(!is_chord(b"SIP/2.0 200 OK\r\n"));
        assert!(!is_chord(b"\r\n"));
        assert!(is_chord(&[1, 99]));
        assert_eq!(W::decode(b""), Err(SampDecodeError::Empty));
        assert!(matches!(
            W::decode(&[1, 99]),
            Err(SampDecodeError::Chord(_))
        ));
        assert!(matches!(W::decode(&[2, 1]), Err(SampDecodeError::Sip(_))));
        assert!(matches!(W::decode(b"hello"), Err(SampDecodeError::Sip(_))));
    }
}
