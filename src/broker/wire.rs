//! The LAN broker's two messages: a host asks, the broker answers with what it learned of the
//! network they share (the paper's second deployment: one broker for a whole LAN).
//!
//! Every host behind one NAT sees the same NAT, the same IGD and the same public address. So one
//! host probes, and the others ask it instead of probing each. The answer is the network part of a
//! [`Profile`]; the asking host fills in its own local address.
//!
//! | offset | octets | field |
//! |---|---|---|
//! | 0 | 4 | magic `IP2B` |
//! | 4 | 1 | version 1 |
//! | 5 | 1 | kind: 1 query, 2 answer |
//! | answer: 6 | 1 | NAT: 0 none, 1 endpoint-independent, 2 endpoint-independent port-preserving, 3 delta, 4 random, 5 unknown |
//! | 7 | 2 | delta (big-endian, two's complement; 0 unless NAT = 3) |
//! | 9 | 1 + 0/4/16 | public address: 0 none, 4 IPv4, 6 IPv6, then the address |
//! | – | 1 + 0/4/16 | IGD's external address, the same way |
//!
//! ```
//! use ip2p::broker::wire::{decode_answer, encode_answer, QUERY};
//! use ip2p::broker::{NatBehaviour, Profile};
//! let shared = Profile { local: "10.0.1.1".parse().unwrap(), public: Some("80.100.1.1".parse().unwrap()),
//!     igd: None, nat: NatBehaviour::Delta(-2) };
//! let bytes = encode_answer(&shared);
//! let mine = decode_answer(&bytes, "10.0.1.7".parse().unwrap()).unwrap();
//! assert_eq!((mine.nat, mine.public, mine.local), (shared.nat, shared.public, "10.0.1.7".parse().unwrap()));
//! assert!(decode_answer(&QUERY, "10.0.1.7".parse().unwrap()).is_err());
//! ```

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::profile::{NatBehaviour, Profile};

/// The query a host sends.
pub const QUERY: [u8; 6] = [b'I', b'P', b'2', b'B', 1, 1];
/// The longest answer (two IPv6 addresses).
pub const MAX_ANSWER: usize = 9 + 17 + 17;

/// Why octets are not a broker message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerWireError {
    /// Too short, too long, or not `IP2B` version 1.
    #[error("not a broker message of version 1 ({0} octets)")]
    Header(usize),
    /// Not the kind expected.
    #[error("broker message of kind {0}, not the one expected")]
    Kind(u8),
    /// An unknown NAT code.
    #[error("unknown NAT code {0}")]
    Nat(u8),
    /// A delta with a NAT code that has none.
    #[error("a delta with NAT code {0}")]
    Delta(u8),
    /// An address family other than 0, 4 and 6, or a truncated address.
    #[error("bad address field")]
    Addr,
    /// Octets after the last field.
    #[error("{0} octets after the answer")]
    Trailing(usize),
}

/// Whether `bytes` is a query.
pub fn is_query(bytes: &[u8]) -> bool {
    bytes == QUERY
}

fn put_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn take_ip(b: &[u8]) -> Result<(Option<IpAddr>, &[u8]), BrokerWireError> {
    match b.split_first() {
        Some((0, rest)) => Ok((None, rest)),
        Some((4, rest)) if rest.len() >= 4 => {
            let mut a = [0; 4];
            a.copy_from_slice(&rest[..4]);
            Ok((Some(IpAddr::V4(Ipv4Addr::from(a))), &rest[4..]))
        }
        Some((6, rest)) if rest.len() >= 16 => {
            let mut a = [0; 16];
            a.copy_from_slice(&rest[..16]);
            Ok((Some(IpAddr::V6(Ipv6Addr::from(a))), &rest[16..]))
        }
        _ => Err(BrokerWireError::Addr),
    }
}

/// The answer carrying `profile`'s network part (its `local` is not sent).
pub fn encode_answer(profile: &Profile) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_ANSWER);
    out.extend_from_slice(&QUERY[..5]);
    out.push(2);
    let (code, delta) = match profile.nat {
        NatBehaviour::NoNat => (0, 0),
        NatBehaviour::EndpointIndependent { preserving: false } => (1, 0),
        NatBehaviour::EndpointIndependent { preserving: true } => (2, 0),
        NatBehaviour::Delta(d) => (3, d),
        NatBehaviour::Random => (4, 0),
        NatBehaviour::Unknown => (5, 0),
    };
    out.push(code);
    out.extend_from_slice(&delta.to_be_bytes());
    put_ip(&mut out, profile.public);
    put_ip(&mut out, profile.igd);
    out
}

/// The profile of a host at `local` from the broker's answer.
pub fn decode_answer(bytes: &[u8], local: IpAddr) -> Result<Profile, BrokerWireError> {
    if bytes.len() < 9 || bytes.len() > MAX_ANSWER || bytes[..5] != QUERY[..5] {
        return Err(BrokerWireError::Header(bytes.len()));
    }
    if bytes[5] != 2 {
        return Err(BrokerWireError::Kind(bytes[5]));
    }
    let delta = i16::from_be_bytes([bytes[7], bytes[8]]);
    if delta != 0 && bytes[6] != 3 {
        return Err(BrokerWireError::Delta(bytes[6]));
    }
    let nat = match bytes[6] {
        0 => NatBehaviour::NoNat,
        1 => NatBehaviour::EndpointIndependent { preserving: false },
        2 => NatBehaviour::EndpointIndependent { preserving: true },
        3 => NatBehaviour::Delta(delta),
        4 => NatBehaviour::Random,
        5 => NatBehaviour::Unknown,
        c => return Err(BrokerWireError::Nat(c)),
    };
    let (public, rest) = take_ip(&bytes[9..])?;
    let (igd, rest) = take_ip(rest)?;
    if !rest.is_empty() {
        return Err(BrokerWireError::Trailing(rest.len()));
    }
    // a host behind no NAT is public on its own address
    let public = if nat == NatBehaviour::NoNat {
        Some(local)
    } else {
        public
    };
    Ok(Profile {
        local,
        public,
        igd,
        nat,
    })
}
