//! What the network around a host supports: the broker's view of one network.
//!
//! A [`Profile`] is learned by probing (see the module's prober): the host's local address, the
//! public address a prediction server observes for it, whether an UPnP IGD answers (and the
//! external address it reports), and how the NAT maps consecutive outgoing TCP connections.

use core::hash::{Hash, Hasher};
use core::net::IpAddr;

use crate::stunt::{Confidence, Prediction, StuntError};

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

/// What probing the network found, as a profile.
///
/// - `local`: the host's address on the network.
/// - `prediction`: the STUNT #2 prediction from a reserved port (`None`: no prediction server
///   configured or none answered).
/// - `igd`: the external address an UPnP IGD reported (`None`: none answered).
///
/// No NAT when the prediction server saw the local address and port; endpoint-independent for an
/// exact prediction (port-preserving when the public port is the local one); `Delta` for a
/// sequential NAT; `Random` when the probes saw unforeseeable ports; `Unknown` otherwise.
///
/// ```
/// use ip2p::broker::{profile::classify, NatBehaviour};
/// use ip2p::stunt::{Confidence, Prediction};
/// let p = Prediction {
///     local: "10.0.1.2:40000".parse().unwrap(),
///     public: "80.100.1.1:40000".parse().unwrap(),
///     confidence: Confidence::Exact,
///     ttl: 2,
/// };
/// let profile = classify("10.0.1.2".parse().unwrap(), Some(Ok(p)), None);
/// assert_eq!(profile.nat, NatBehaviour::EndpointIndependent { preserving: true });
/// assert!(!profile.is_public());
/// ```
pub fn classify(
    local: IpAddr,
    prediction: Option<Result<Prediction, StuntError>>,
    igd: Option<IpAddr>,
) -> Profile {
    let (public, nat) = match prediction {
        Some(Ok(p)) if p.public == p.local => (Some(p.public.0.ip()), NatBehaviour::NoNat),
        Some(Ok(p)) => (
            Some(p.public.0.ip()),
            match p.confidence {
                Confidence::Exact => NatBehaviour::EndpointIndependent {
                    preserving: p.public.0.port() == p.local.0.port(),
                },
                Confidence::Delta(d) => NatBehaviour::Delta(d),
            },
        ),
        Some(Err(StuntError::Unpredictable { .. })) => (None, NatBehaviour::Random),
        Some(Err(_)) | None => (None, NatBehaviour::Unknown),
    };
    Profile {
        local,
        public,
        igd,
        nat,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(local: &str, public: &str, confidence: Confidence) -> Prediction {
        Prediction {
            local: local.parse().unwrap(),
            public: public.parse().unwrap(),
            confidence,
            ttl: 2,
        }
    }

    #[test]
    fn every_outcome_has_its_class() {
        let local: IpAddr = "10.0.1.2".parse().unwrap();
        let nat: IpAddr = "80.100.1.1".parse().unwrap();
        let c = |p, igd| classify(local, p, igd).nat;
        let exact = |public| Some(Ok(prediction("10.0.1.2:40000", public, Confidence::Exact)));
        assert_eq!(c(exact("10.0.1.2:40000"), None), NatBehaviour::NoNat);
        assert_eq!(
            c(exact("80.100.1.1:40000"), None),
            NatBehaviour::EndpointIndependent { preserving: true }
        );
        assert_eq!(
            c(exact("80.100.1.1:51000"), None),
            NatBehaviour::EndpointIndependent { preserving: false }
        );
        let delta = Some(Ok(prediction(
            "10.0.1.2:40000",
            "80.100.1.1:1026",
            Confidence::Delta(2),
        )));
        assert_eq!(c(delta, None), NatBehaviour::Delta(2));
        let random = Some(Err(StuntError::Unpredictable {
            local: 40000,
            first: 6000,
            second: 61000,
        }));
        assert_eq!(c(random, None), NatBehaviour::Random);
        assert_eq!(
            c(Some(Err(StuntError::PredictionTimeout)), None),
            NatBehaviour::Unknown
        );
        assert_eq!(c(None, None), NatBehaviour::Unknown);
        let p = classify(local, exact("80.100.1.1:40000"), Some(nat));
        assert_eq!((p.public, p.igd), (Some(nat), Some(nat)));
        // the same network probed twice has one name; another network another
        assert_eq!(
            p.network(),
            classify(local, exact("80.100.1.1:40001"), Some(nat)).network()
        );
        let elsewhere: IpAddr = "80.100.2.1".parse().unwrap();
        assert_ne!(
            p.network(),
            classify(local, exact("80.100.2.1:40000"), Some(elsewhere)).network()
        );
    }
}
