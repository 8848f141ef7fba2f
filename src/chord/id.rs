//! Identifiers on the Chord ring.
//!
//! The machine is generic over the identifier type so that the same code runs with 160-bit SHA-1
//! ids in production ([`NodeId`]), 128-bit ids (RELOAD-style, [`Id128`]), 64-bit ids in large
//! simulations ([`Id64`]) and a handful of bits in models ([`SmallId`]).

use core::fmt::{self, Debug};
use core::hash::Hash;
use sha1::{Digest, Sha1};

/// An identifier on a ring of `2^BITS` points.
///
/// `Ord` must be the numeric order of the identifiers (so that interval tests on the ring can be
/// written with comparisons).
pub trait RingId: Copy + Eq + Ord + Hash + Debug + 'static {
    /// The ring's width in bits.
    const BITS: u32;
    /// Bytes used on the wire (big-endian).
    const WIRE_LEN: usize;
    /// `self + 2^i` modulo `2^BITS`. `i < BITS`.
    fn add_pow2(self, i: u32) -> Self;
    /// The identifier given by the first `BITS` bits of a SHA-1 digest.
    fn from_digest(digest: &[u8; 20]) -> Self;
    /// Write the big-endian encoding (exactly `WIRE_LEN` bytes).
    fn write_be(&self, out: &mut alloc::vec::Vec<u8>);
    /// Read the big-endian encoding; `None` if `bytes` is not exactly `WIRE_LEN` long or the value
    /// does not fit the ring.
    fn read_be(bytes: &[u8]) -> Option<Self>;

    /// The SHA-1 identifier of `data` (a node's address, a key's name).
    fn sha1_of(data: &[u8]) -> Self {
        let d: [u8; 20] = Sha1::digest(data).into();
        Self::from_digest(&d)
    }
}

/// `x` lies strictly between `a` and `b` going clockwise. When `a == b` this is every point but `a`.
#[inline]
pub fn between<I: Ord>(a: &I, x: &I, b: &I) -> bool {
    if a < b {
        a < x && x < b
    } else {
        // the interval wraps past zero (or covers the whole ring when a == b)
        a < x || x < b
    }
}

/// `x` lies in the half-open interval `(a, b]` going clockwise. When `a == b` this is the whole ring.
#[inline]
pub fn between_right_incl<I: Ord>(a: &I, x: &I, b: &I) -> bool {
    x == b || between(a, x, b)
}

/// A 160-bit identifier: the SHA-1 ring of the Chord paper.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeId(pub [u8; 20]);

impl RingId for NodeId {
    const BITS: u32 = 160;
    const WIRE_LEN: usize = 20;
    fn add_pow2(self, i: u32) -> Self {
        debug_assert!(i < 160);
        let mut b = self.0;
        let mut byte = 19 - (i / 8) as usize;
        let mut carry = 1u16 << (i % 8);
        loop {
            let s = b[byte] as u16 + carry;
            b[byte] = s as u8;
            carry = s >> 8;
            if carry == 0 || byte == 0 {
                break;
            }
            byte -= 1;
        }
        NodeId(b)
    }
    fn from_digest(d: &[u8; 20]) -> Self {
        NodeId(*d)
    }
    fn write_be(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn read_be(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(NodeId)
    }
}

impl Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the first 4 bytes are enough to tell nodes apart in logs
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

/// A 128-bit identifier (RELOAD-style rings).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Id128(pub u128);

impl RingId for Id128 {
    const BITS: u32 = 128;
    const WIRE_LEN: usize = 16;
    fn add_pow2(self, i: u32) -> Self {
        Id128(self.0.wrapping_add(1u128 << i))
    }
    fn from_digest(d: &[u8; 20]) -> Self {
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Id128(u128::from_be_bytes(b))
    }
    fn write_be(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }
    fn read_be(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(|b| Id128(u128::from_be_bytes(b)))
    }
}

/// A 64-bit identifier, for simulations of very large rings.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Id64(pub u64);

impl RingId for Id64 {
    const BITS: u32 = 64;
    const WIRE_LEN: usize = 8;
    fn add_pow2(self, i: u32) -> Self {
        Id64(self.0.wrapping_add(1u64 << i))
    }
    fn from_digest(d: &[u8; 20]) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        Id64(u64::from_be_bytes(b))
    }
    fn write_be(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }
    fn read_be(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(|b| Id64(u64::from_be_bytes(b)))
    }
}

/// An identifier on a ring of `2^BITS` points with `BITS <= 8`: small enough for exhaustive models.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SmallId<const BITS: u32>(pub u8);

impl<const BITS: u32> SmallId<BITS> {
    const MASK: u8 = if BITS >= 8 {
        u8::MAX
    } else {
        (1u8 << BITS) - 1
    };
    /// The identifier `v` (reduced modulo `2^BITS`).
    pub const fn new(v: u8) -> Self {
        SmallId(v & Self::MASK)
    }
}

impl<const BITS: u32> RingId for SmallId<BITS> {
    const BITS: u32 = BITS;
    const WIRE_LEN: usize = 1;
    fn add_pow2(self, i: u32) -> Self {
        SmallId(self.0.wrapping_add(1u8 << i) & Self::MASK)
    }
    fn from_digest(d: &[u8; 20]) -> Self {
        SmallId(if BITS >= 8 { d[0] } else { d[0] >> (8 - BITS) })
    }
    fn write_be(&self, out: &mut alloc::vec::Vec<u8>) {
        out.push(self.0);
    }
    fn read_be(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b] if *b & !Self::MASK == 0 => Some(SmallId(*b)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_wrap() {
        assert!(between(&10u8, &20, &30));
        assert!(!between(&10u8, &30, &30));
        assert!(between(&200u8, &5, &10));
        assert!(between(&200u8, &250, &10));
        assert!(!between(&200u8, &100, &10));
        // a == b: everything but a
        assert!(between(&7u8, &8, &7));
        assert!(!between(&7u8, &7, &7));
        assert!(between_right_incl(&7u8, &7, &7));
    }

    #[test]
    fn add_pow2_carries_and_wraps() {
        let mut b = [0u8; 20];
        b[19] = 0xff;
        assert_eq!(NodeId(b).add_pow2(0).0[18], 1);
        let max = NodeId([0xff; 20]);
        assert_eq!(max.add_pow2(0), NodeId([0; 20]));
        assert_eq!(SmallId::<3>(7).add_pow2(0), SmallId(0));
        assert_eq!(SmallId::<3>(5).add_pow2(2), SmallId(1));
        assert_eq!(Id64(u64::MAX).add_pow2(1), Id64(1));
    }

    #[test]
    fn sha1_ids_match_known_digest() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d
        let id = NodeId::sha1_of(b"abc");
        assert_eq!(&id.0[..4], &[0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(SmallId::<4>::sha1_of(b"abc"), SmallId(0xa));
        assert_eq!(Id64::sha1_of(b"abc").0 >> 32, 0xa9993e36);
    }

    #[test]
    fn small_ids_reject_out_of_ring_bytes() {
        assert_eq!(SmallId::<3>::read_be(&[8]), None);
        assert_eq!(SmallId::<3>::read_be(&[7]), Some(SmallId(7)));
        assert_eq!(SmallId::<3>::read_be(&[]), None);
    }
}
