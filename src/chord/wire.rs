//! The Chord wire format: versioned, binary, decoded within fixed bounds.
//!
//! ```text
//! message   = version:u8 (=1) type:u8 body
//! id        = I::WIRE_LEN bytes, big-endian
//! addr      = TransportAddr: family:u8 (4|6) ip (4|16 bytes) port:u16
//!             small integer addresses (models, simulations): fixed-width big-endian
//! peer      = id addr
//! opt-peer  = 0x00 | 0x01 peer
//! list      = count:u8 (<= 16) peer*
//! hints     = count:u8 (<= 4) peer*
//! bytes     = len:u32 (<= MAX_VALUE_LEN) octets
//! items     = count:u16 (<= MAX_ITEMS) (id bytes)*
//! ```
//!
//! | type | message        | body                              |
//! |------|----------------|-----------------------------------|
//! | 1    | FindSuccessor  | nonce:u32 key:id avoid-count:u8 (<= 4) addr* |
//! | 2    | Found          | nonce:u32 owner:peer alternates:hints |
//! | 3    | Closer         | nonce:u32 next:hints              |
//! | 4    | GetState       | nonce:u32                         |
//! | 5    | State          | nonce:u32 id opt-peer list        |
//! | 6    | Notify         | id                                |
//! | 7    | Ping           | nonce:u32                         |
//! | 8    | Pong           | nonce:u32                         |
//! | 9    | Store          | nonce:u32 key:id value:bytes      |
//! | 10   | Stored         | nonce:u32                         |
//! | 11   | Fetch          | nonce:u32 key:id                  |
//! | 12   | Value          | nonce:u32 0x00 \| 0x01 bytes      |
//! | 13   | Replicate      | items                             |
//! | 14   | Leave          | id opt-peer list                  |
//! | 15   | Refused        | nonce:u32 reason:u8 (1 not member, 2 store full, 3 too large) |
//!
//! A decoder never allocates more than the input's length plus fixed bounds, never panics, and
//! rejects trailing bytes, unknown versions and unknown types with a typed [`DecodeError`].

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Message, Peer, Refusal, RingId, MAX_AVOID, MAX_HINTS, MAX_SUCCESSORS};
use crate::addr::TransportAddr;
use crate::machine::Codec;

/// The only wire version this crate speaks.
pub const VERSION: u8 = 1;
/// Largest value carried in one message.
pub const MAX_VALUE_LEN: usize = 60 * 1024;
/// Most key/value pairs in one `Replicate`.
pub const MAX_ITEMS: usize = 1024;
/// Largest encoded message accepted (a UDP datagram's worth).
pub const MAX_MESSAGE_LEN: usize = 65_507;

/// Why bytes are not a Chord message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// A version this implementation does not speak.
    #[error("unknown wire version {0} (this node speaks version 1)")]
    UnknownVersion(u8),
    /// A message type this version does not define.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The message ends in the middle of a field.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes left over after a complete message.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
    /// A field holds a value it may not hold.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A count or length over the format's bound.
    #[error("{what} of {got} is over the limit of {max}")]
    TooLarge {
        /// Which field.
        what: &'static str,
        /// The value found.
        got: usize,
        /// The bound.
        max: usize,
    },
}

/// An address type that can be carried on the wire.
pub trait WireAddr: Sized {
    /// Append the encoding.
    fn put(&self, out: &mut Vec<u8>);
    /// Read one from the front of `r`.
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl WireAddr for TransportAddr {
    fn put(&self, out: &mut Vec<u8>) {
        match self.0.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.0.port().to_be_bytes());
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ip = match r.u8("address family")? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("IPv4 address")?)),
            6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("IPv6 address")?)),
            _ => return Err(DecodeError::Invalid("address family")),
        };
        let port = u16::from_be_bytes(r.array::<2>("port")?);
        Ok(TransportAddr(SocketAddr::new(ip, port)))
    }
}

macro_rules! int_addr {
    ($($t:ty),*) => {$(
        impl WireAddr for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_be_bytes(r.array("address")?))
            }
        }
    )*};
}
int_addr!(u8, u16, u32, u64);

/// A bounded cursor over the input.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    /// Take `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    /// Take a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    /// Take one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    /// Take a big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    /// Take a big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

/// The Chord codec for ids `I` and addresses `A`.
pub struct ChordWire<I, A>(PhantomData<(I, A)>);

fn put_id<I: RingId>(id: &I, out: &mut Vec<u8>) {
    id.write_be(out);
}

fn take_id<I: RingId>(r: &mut Reader<'_>) -> Result<I, DecodeError> {
    let b = r.bytes(I::WIRE_LEN, "identifier")?;
    I::read_be(b).ok_or(DecodeError::Invalid("identifier"))
}

fn put_peer<I: RingId, A: WireAddr>(p: &Peer<I, A>, out: &mut Vec<u8>) {
    put_id(&p.id, out);
    p.addr.put(out);
}

fn take_peer<I: RingId, A: WireAddr>(r: &mut Reader<'_>) -> Result<Peer<I, A>, DecodeError> {
    Ok(Peer {
        id: take_id(r)?,
        addr: A::take(r)?,
    })
}

fn put_opt_peer<I: RingId, A: WireAddr>(p: &Option<Peer<I, A>>, out: &mut Vec<u8>) {
    match p {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            put_peer(p, out);
        }
    }
}

fn take_opt_peer<I: RingId, A: WireAddr>(
    r: &mut Reader<'_>,
) -> Result<Option<Peer<I, A>>, DecodeError> {
    match r.u8("optional peer flag")? {
        0 => Ok(None),
        1 => Ok(Some(take_peer(r)?)),
        _ => Err(DecodeError::Invalid("optional peer flag")),
    }
}

fn put_peers<I: RingId, A: WireAddr>(ps: &[Peer<I, A>], out: &mut Vec<u8>) {
    out.push(ps.len() as u8);
    for p in ps {
        put_peer(p, out);
    }
}

fn take_peers<I: RingId, A: WireAddr, const N: usize>(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<arrayvec::ArrayVec<Peer<I, A>, N>, DecodeError> {
    let n = r.u8(what)? as usize;
    if n > N {
        return Err(DecodeError::TooLarge {
            what,
            got: n,
            max: N,
        });
    }
    let mut v = arrayvec::ArrayVec::new();
    for _ in 0..n {
        v.push(take_peer(r)?);
    }
    Ok(v)
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take_bytes(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let n = r.u32("value length")? as usize;
    if n > MAX_VALUE_LEN {
        return Err(DecodeError::TooLarge {
            what: "value length",
            got: n,
            max: MAX_VALUE_LEN,
        });
    }
    Ok(r.bytes(n, "value")?.to_vec())
}

impl<I: RingId, A: WireAddr> ChordWire<I, A> {
    /// Encode `msg` into a new buffer.
    pub fn to_bytes(msg: &Message<I, A>) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        Self::write(msg, &mut v);
        v
    }

    /// Append the encoding of `msg` to `out`.
    pub fn write(msg: &Message<I, A>, out: &mut Vec<u8>) {
        use Message::*;
        out.push(VERSION);
        match msg {
            FindSuccessor { nonce, key, avoid } => {
                out.push(1);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_id(key, out);
                out.push(avoid.len() as u8);
                for a in avoid {
                    a.put(out);
                }
            }
            Found {
                nonce,
                owner,
                alternates,
            } => {
                out.push(2);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_peer(owner, out);
                put_peers(alternates, out);
            }
            Closer { nonce, next } => {
                out.push(3);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_peers(next, out);
            }
            GetState { nonce } => {
                out.push(4);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            State {
                nonce,
                id,
                pred,
                succs,
            } => {
                out.push(5);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_id(id, out);
                put_opt_peer(pred, out);
                put_peers(succs, out);
            }
            Notify { id } => {
                out.push(6);
                put_id(id, out);
            }
            Ping { nonce } => {
                out.push(7);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Pong { nonce } => {
                out.push(8);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Store { nonce, key, value } => {
                out.push(9);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_id(key, out);
                put_bytes(value, out);
            }
            Stored { nonce } => {
                out.push(10);
                out.extend_from_slice(&nonce.to_be_bytes());
            }
            Fetch { nonce, key } => {
                out.push(11);
                out.extend_from_slice(&nonce.to_be_bytes());
                put_id(key, out);
            }
            Value { nonce, value } => {
                out.push(12);
                out.extend_from_slice(&nonce.to_be_bytes());
                match value {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        put_bytes(v, out);
                    }
                }
            }
            Replicate { items } => {
                out.push(13);
                out.extend_from_slice(&(items.len() as u16).to_be_bytes());
                for (k, v) in items {
                    put_id(k, out);
                    put_bytes(v, out);
                }
            }
            Leave { id, pred, succs } => {
                out.push(14);
                put_id(id, out);
                put_opt_peer(pred, out);
                put_peers(succs, out);
            }
            Refused { nonce, reason } => {
                out.push(15);
                out.extend_from_slice(&nonce.to_be_bytes());
                out.push(match reason {
                    Refusal::NotMember => 1,
                    Refusal::StoreFull => 2,
                    Refusal::ValueTooLarge => 3,
                });
            }
        }
    }

    /// Decode exactly one message.
    pub fn read(bytes: &[u8]) -> Result<Message<I, A>, DecodeError> {
        use Message::*;
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                what: "message length",
                got: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let ty = r.u8("message type")?;
        let msg = match ty {
            1 => {
                let nonce = r.u32("nonce")?;
                let key = take_id(&mut r)?;
                let n = r.u8("avoid count")? as usize;
                if n > MAX_AVOID {
                    return Err(DecodeError::TooLarge {
                        what: "avoid count",
                        got: n,
                        max: MAX_AVOID,
                    });
                }
                let mut avoid = arrayvec::ArrayVec::new();
                for _ in 0..n {
                    avoid.push(A::take(&mut r)?);
                }
                FindSuccessor { nonce, key, avoid }
            }
            2 => Found {
                nonce: r.u32("nonce")?,
                owner: take_peer(&mut r)?,
                alternates: take_peers::<I, A, MAX_HINTS>(&mut r, "alternate count")?,
            },
            3 => Closer {
                nonce: r.u32("nonce")?,
                next: take_peers::<I, A, MAX_HINTS>(&mut r, "hint count")?,
            },
            4 => GetState {
                nonce: r.u32("nonce")?,
            },
            5 => State {
                nonce: r.u32("nonce")?,
                id: take_id(&mut r)?,
                pred: take_opt_peer(&mut r)?,
                succs: take_peers::<I, A, MAX_SUCCESSORS>(&mut r, "successor count")?,
            },
            6 => Notify {
                id: take_id(&mut r)?,
            },
            7 => Ping {
                nonce: r.u32("nonce")?,
            },
            8 => Pong {
                nonce: r.u32("nonce")?,
            },
            9 => Store {
                nonce: r.u32("nonce")?,
                key: take_id(&mut r)?,
                value: take_bytes(&mut r)?,
            },
            10 => Stored {
                nonce: r.u32("nonce")?,
            },
            11 => Fetch {
                nonce: r.u32("nonce")?,
                key: take_id(&mut r)?,
            },
            12 => {
                let nonce = r.u32("nonce")?;
                let value = match r.u8("value flag")? {
                    0 => None,
                    1 => Some(take_bytes(&mut r)?),
                    _ => return Err(DecodeError::Invalid("value flag")),
                };
                Value { nonce, value }
            }
            13 => {
                let n = r.u16("item count")? as usize;
                if n > MAX_ITEMS {
                    return Err(DecodeError::TooLarge {
                        what: "item count",
                        got: n,
                        max: MAX_ITEMS,
                    });
                }
                // every item takes at least an id and a length: never reserve more than the input allows
                let cap = n.min(r.remaining() / (I::WIRE_LEN + 4).max(1));
                let mut items = Vec::with_capacity(cap);
                for _ in 0..n {
                    items.push((take_id(&mut r)?, take_bytes(&mut r)?));
                }
                Replicate { items }
            }
            14 => Leave {
                id: take_id(&mut r)?,
                pred: take_opt_peer(&mut r)?,
                succs: take_peers::<I, A, MAX_SUCCESSORS>(&mut r, "successor count")?,
            },
            15 => {
                let nonce = r.u32("nonce")?;
                let reason = match r.u8("refusal reason")? {
                    1 => Refusal::NotMember,
                    2 => Refusal::StoreFull,
                    3 => Refusal::ValueTooLarge,
                    _ => return Err(DecodeError::Invalid("refusal reason")),
                };
                Refused { nonce, reason }
            }
            t => return Err(DecodeError::UnknownType(t)),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(msg)
    }
}

impl<I: RingId, A: WireAddr> Codec for ChordWire<I, A> {
    type Msg = Message<I, A>;
    type Error = DecodeError;
    fn encode(msg: &Message<I, A>, out: &mut Vec<u8>) {
        Self::write(msg, out)
    }
    fn decode(bytes: &[u8]) -> Result<Message<I, A>, DecodeError> {
        Self::read(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::{Id64, NodeId, SuccList};
    use alloc::vec;

    type W = ChordWire<NodeId, TransportAddr>;

    fn peer(b: u8, port: u16) -> Peer<NodeId, TransportAddr> {
        Peer {
            id: NodeId([b; 20]),
            addr: format!("10.0.0.{b}:{port}").parse().unwrap(),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let p = peer(1, 4000);
        let v6 = Peer {
            id: NodeId([9; 20]),
            addr: "[2001:db8::1]:9".parse().unwrap(),
        };
        let succs: SuccList<_, _> = [p, v6].into_iter().collect();
        let msgs = vec![
            Message::FindSuccessor {
                nonce: 7,
                key: NodeId([3; 20]),
                avoid: [p.addr, v6.addr].into_iter().collect(),
            },
            Message::Found {
                nonce: 8,
                owner: p,
                alternates: [v6].into_iter().collect(),
            },
            Message::Closer {
                nonce: 9,
                next: [v6, p].into_iter().collect(),
            },
            Message::GetState { nonce: 1 },
            Message::State {
                nonce: 2,
                id: NodeId([4; 20]),
                pred: Some(v6),
                succs: succs.clone(),
            },
            Message::State {
                nonce: 2,
                id: NodeId([4; 20]),
                pred: None,
                succs: SuccList::new(),
            },
            Message::Notify {
                id: NodeId([5; 20]),
            },
            Message::Ping { nonce: u32::MAX },
            Message::Pong { nonce: 0 },
            Message::Store {
                nonce: 3,
                key: NodeId([6; 20]),
                value: b"hello".to_vec(),
            },
            Message::Stored { nonce: 3 },
            Message::Fetch {
                nonce: 4,
                key: NodeId([6; 20]),
            },
            Message::Value {
                nonce: 4,
                value: Some(vec![]),
            },
            Message::Value {
                nonce: 4,
                value: None,
            },
            Message::Replicate {
                items: vec![
                    (NodeId([1; 20]), b"a".to_vec()),
                    (NodeId([2; 20]), vec![0; 300]),
                ],
            },
            Message::Leave {
                id: NodeId([1; 20]),
                pred: Some(p),
                succs,
            },
            Message::Refused {
                nonce: 5,
                reason: Refusal::StoreFull,
            },
        ];
        for m in msgs {
            let b = W::to_bytes(&m);
            assert_eq!(W::read(&b), Ok(m.clone()), "{m:?}");
            // every strict prefix is rejected as truncated, never accepted or panicking
            for cut in 0..b.len() {
                assert!(
                    W::read(&b[..cut]).is_err(),
                    "prefix {cut} of {m:?} accepted"
                );
            }
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(W::read(&longer), Err(DecodeError::TrailingBytes(1)));
        }
    }

    #[test]
    fn unknown_version_and_type_are_named() {
        assert_eq!(W::read(&[]), Err(DecodeError::Empty));
        assert_eq!(
            W::read(&[2, 4, 0, 0, 0, 0]),
            Err(DecodeError::UnknownVersion(2))
        );
        assert_eq!(W::read(&[1, 99]), Err(DecodeError::UnknownType(99)));
    }

    #[test]
    fn hostile_counts_are_bounded() {
        // a successor list claiming 200 entries
        let mut b = vec![1, 5, 0, 0, 0, 1];
        b.extend_from_slice(&[0; 20]);
        b.push(0);
        b.push(200);
        assert_eq!(
            W::read(&b),
            Err(DecodeError::TooLarge {
                what: "successor count",
                got: 200,
                max: MAX_SUCCESSORS
            })
        );
        // a value claiming 4 GiB
        let mut b = vec![1, 9, 0, 0, 0, 1];
        b.extend_from_slice(&[0; 20]);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            W::read(&b),
            Err(DecodeError::TooLarge {
                what: "value length",
                ..
            })
        ));
        // a replicate claiming 1024 items in a few bytes must not reserve for 1024
        let b = vec![1, 13, 0x04, 0x00];
        assert_eq!(W::read(&b), Err(DecodeError::Truncated("identifier")));
        let b = [1, 13, 0xff, 0xff];
        assert!(matches!(
            ChordWire::<Id64, u32>::read(&b),
            Err(DecodeError::TooLarge {
                what: "item count",
                ..
            })
        ));
    }
}
