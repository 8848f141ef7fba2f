//! P2PBroker: learn what the network allows and pick, per connection, a mode of operation.
//!
//! The broker is three parts, all sans-IO:
//!
//! - a [`Profile`] of the network around a host (public or not, an UPnP IGD that answers, how
//!   the NAT maps outgoing connections), learned by probing;
//! - the table of modes ([`modes`]): what each mode needs of the caller's and the callee's
//!   network, cheapest first (direct, UPnP IGD, STUNT #2, relay);
//! - a [`Memory`] of what failed and what worked, per network and peer, so a mode that just
//!   failed is not offered again on the same network for a while;
//! - [`wire`]: one broker for a whole LAN (the paper's second deployment) answers its hosts
//!   with what it learned of the network they share.
//!
//! The iP2P [`Peer`](crate::ip2p::Peer) uses them when configured with a [`BrokerConfig`]: the
//! caller offers the modes it can take part in, the callee picks the cheapest it can do too,
//! and a mode that fails is dropped from the next attempt's offer (`spec/broker.md`).

pub mod modes;
pub mod profile;
pub mod wire;

use alloc::collections::BTreeMap;
use core::time::Duration;

use crate::addr::TransportAddr;
use crate::ip2p::wire::{Mode, ModeSet};
use crate::msisdn::Msisdn;
use crate::time::Time;

pub use profile::{NatBehaviour, NetworkId, Profile};

/// How a peer brokers its connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BrokerConfig {
    /// A public relay this peer (as callee) can be reached through; `None`: no relay mode.
    pub relay: Option<TransportAddr>,
    /// A mode that failed toward a peer is left out of the offers to it from the same network
    /// for this long (default 10 min).
    pub forget_after: Duration,
    /// Most (network, peer) entries remembered (default 64); the oldest goes first.
    pub max_memory: usize,
    /// When a mode fails, try the next one (default `true`). `false` gives up at the first
    /// failure, as a fixed-mode peer does: the model's `no-fallback` variant shows what that
    /// costs when a profile is stale.
    pub fallback: bool,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            relay: None,
            forget_after: Duration::from_secs(600),
            max_memory: 64,
            fallback: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Entry {
    failed: ModeSet,
    worked: Option<Mode>,
    at: Time,
}

/// What failed and what worked, per network and peer: bounded, and forgotten after a while.
///
/// ```
/// use ip2p::broker::{Memory, NetworkId};
/// use ip2p::ip2p::wire::{Mode, ModeSet};
/// use ip2p::{Msisdn, Time};
/// use core::time::Duration;
/// let peer: Msisdn = "+886900000002".parse().unwrap();
/// let mut m = Memory::new(Duration::from_secs(600), 8);
/// m.failed(NetworkId(1), peer, Mode::Stunt2, Time::ZERO);
/// let offer = m.offer(NetworkId(1), peer, ModeSet::ALL, Time::ZERO);
/// assert!(!offer.contains(Mode::Stunt2));
/// // another network, or ten minutes later, and STUNT #2 is offered again
/// assert!(m.offer(NetworkId(2), peer, ModeSet::ALL, Time::ZERO).contains(Mode::Stunt2));
/// let later = Time::ZERO + Duration::from_secs(601);
/// assert!(m.offer(NetworkId(1), peer, ModeSet::ALL, later).contains(Mode::Stunt2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Memory {
    entries: BTreeMap<(NetworkId, Msisdn), Entry>,
    forget_after: Duration,
    max: usize,
}

impl Memory {
    /// An empty memory keeping entries `forget_after`, at most `max` of them.
    pub fn new(forget_after: Duration, max: usize) -> Memory {
        Memory {
            entries: BTreeMap::new(),
            forget_after,
            max,
        }
    }

    fn live(&self, key: &(NetworkId, Msisdn), now: Time) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| now < e.at + self.forget_after)
    }

    /// `base` without the modes that failed toward `peer` from `network` lately — unless that
    /// leaves nothing, then `base` (an old failure must not make a peer unreachable for good).
    pub fn offer(&self, network: NetworkId, peer: Msisdn, base: ModeSet, now: Time) -> ModeSet {
        match self.live(&(network, peer), now) {
            Some(e) => {
                let rest = ModeSet::from_iter(base.iter().filter(|m| !e.failed.contains(*m)));
                if rest.is_empty() {
                    base
                } else {
                    rest
                }
            }
            None => base,
        }
    }

    /// The mode that last worked toward `peer` from `network`, if remembered.
    pub fn worked(&self, network: NetworkId, peer: Msisdn, now: Time) -> Option<Mode> {
        self.live(&(network, peer), now).and_then(|e| e.worked)
    }

    fn entry(&mut self, network: NetworkId, peer: Msisdn, now: Time) -> &mut Entry {
        let key = (network, peer);
        let forget_after = self.forget_after;
        if self
            .entries
            .get(&key)
            .is_some_and(|e| now >= e.at + forget_after)
        {
            self.entries.remove(&key);
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max.max(1) {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.at)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        let e = self.entries.entry(key).or_insert(Entry {
            failed: ModeSet::EMPTY,
            worked: None,
            at: now,
        });
        e.at = now;
        e
    }

    /// `mode` failed toward `peer` from `network`.
    pub fn failed(&mut self, network: NetworkId, peer: Msisdn, mode: Mode, now: Time) {
        let e = self.entry(network, peer, now);
        e.failed = e.failed.with(mode);
        if e.worked == Some(mode) {
            e.worked = None;
        }
    }

    /// `mode` connected `peer` from `network`.
    pub fn worked_with(&mut self, network: NetworkId, peer: Msisdn, mode: Mode, now: Time) {
        let e = self.entry(network, peer, now);
        e.failed = e.failed.without(mode);
        e.worked = Some(mode);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded_and_success_clears_a_failure() {
        let mut m = Memory::new(Duration::from_secs(60), 2);
        let peer: Msisdn = "+886900000002".parse().unwrap();
        let t = |s| Time::ZERO + Duration::from_secs(s);
        m.failed(NetworkId(1), peer, Mode::Direct, t(0));
        m.failed(NetworkId(2), peer, Mode::Direct, t(1));
        m.failed(NetworkId(3), peer, Mode::Direct, t(2));
        assert_eq!(m.len(), 2);
        // the oldest (network 1) went first
        assert!(m
            .offer(NetworkId(1), peer, ModeSet::ALL, t(3))
            .contains(Mode::Direct));
        assert!(!m
            .offer(NetworkId(3), peer, ModeSet::ALL, t(3))
            .contains(Mode::Direct));
        m.worked_with(NetworkId(3), peer, Mode::Direct, t(4));
        assert!(m
            .offer(NetworkId(3), peer, ModeSet::ALL, t(4))
            .contains(Mode::Direct));
        assert_eq!(m.worked(NetworkId(3), peer, t(4)), Some(Mode::Direct));
        // every offered mode failed: the whole base is offered again rather than nothing
        let only = ModeSet::only(Mode::Relay);
        m.failed(NetworkId(2), peer, Mode::Relay, t(5));
        assert_eq!(m.offer(NetworkId(2), peer, only, t(5)), only);
    }
}
