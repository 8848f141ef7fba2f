//! What the network around a host supports: the broker's view of one network.
//!
//! A [`Profile`] is learned by probing (see the module's prober): the host's local address, the
//! public address a prediction server observes for it, whether an UPnP IGD answers (and the
//! external address it reports), and how the NAT maps consecutive outgoing TCP connections.

use core::hash::{Hash, Hasher};
use core::net::IpAddr;

/// How the NAT in front of a host maps its outgoing TCP connections, from prediction probes
/// (consecutive connections from one reserved port to the prediction servers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NatBehaviour {
    /// The observed address is the local one: no NAT on the path.
    NoNat,
    /// Endpoint-independent mapping: every probe from the port got the same public port.
    /// `preserving` when that port is the local port.
    EndpointIndependent {
        /// The public port equals the local port.
        preserving: bool,
    },
    /// The public port moved by the same step between probes (a sequential NAT).
    Delta(i16),
    /// Public ports could not be predicted (a symmetric NAT with random ports).
    Random,
    /// No prediction server answered: nothing is known.
    Unknown,
}

impl NatBehaviour {
    /// A connection's public port can be known in advance (STUNT #2 can punch through it).
    pub fn predictable(self) -> bool {
        matches!(
            self,
            NatBehaviour::NoNat | NatBehaviour::EndpointIndependent { .. } | NatBehaviour::Delta(_)
        )
    }
}

/// The broker's name for a network: equal for two profiles taken behind the same NAT with the
/// same local address, so what worked there can be remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NetworkId(pub u64);

/// What the network around one host supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Profile {
    /// The host's own address on this network.
    pub local: IpAddr,
    /// The address a prediction server saw (`None`: none answered).
    pub public: Option<IpAddr>,
    /// The external address an UPnP IGD reported (`None`: no IGD answered or it refused).
    pub igd: Option<IpAddr>,
    /// How the NAT maps outgoing connections.
    pub nat: NatBehaviour,
}

impl Profile {
    /// A host with a public address and nothing in front of it.
    pub fn public(ip: IpAddr) -> Profile {
        Profile {
            local: ip,
            public: Some(ip),
            igd: None,
            nat: NatBehaviour::NoNat,
        }
    }

    /// The host is reachable on its own address (no NAT).
    pub fn is_public(&self) -> bool {
        self.nat == NatBehaviour::NoNat
    }

    /// The network's name: a hash of the local address and the public side (the IGD's external
    /// address, else the observed one). FNV-1a, stable across runs and platforms.
    pub fn network(&self) -> NetworkId {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        self.local.hash(&mut h);
        self.igd.or(self.public).hash(&mut h);
        NetworkId(h.finish())
    }
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
