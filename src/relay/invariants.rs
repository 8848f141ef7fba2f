//! The relay's invariants, once: the unit tests, the fuzz target `relay_roles` and the tokio
//! tests check these by these names (`spec/relay.md`).
//!
//! - **SplicesOnlyMatchingTokens**: a splice joins one caller and one callee whose hellos carried
//!   the same token.
//! - **NoHalfOpenRelay**: a joined connection's partner is joined back to it, with the same
//!   token; when either closes, the other is closed in the same step.
//! - **BoundedPending**: connections not yet joined, and pairs, stay within the limits, in total
//!   and per source address.
//! - **EveryConnectionEnds**: no connection waits for a hello or a partner past its deadline.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::wire::{Hello, HELLO_LEN};
use super::{ConnId, Input, Output, Relay};
use crate::time::Time;

/// The invariants, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// See the module docs.
    SplicesOnlyMatchingTokens,
    /// See the module docs.
    NoHalfOpenRelay,
    /// See the module docs.
    BoundedPending,
    /// See the module docs.
    EveryConnectionEnds,
}

impl Invariant {
    /// The name used in specs, models and fuzz targets.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SplicesOnlyMatchingTokens => "SplicesOnlyMatchingTokens",
            Invariant::NoHalfOpenRelay => "NoHalfOpenRelay",
            Invariant::BoundedPending => "BoundedPending",
            Invariant::EveryConnectionEnds => "EveryConnectionEnds",
        }
    }
}

/// Watches a relay's inputs and outputs and checks the invariants after each step.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    /// What each connection sent so far before its hello was complete.
    sent: BTreeMap<ConnId, Vec<u8>>,
    /// The hello of each connection that sent a whole one.
    hellos: BTreeMap<ConnId, Hello>,
    /// A splice joined connections whose hellos did not match.
    bad_splice: bool,
}

impl Observer {
    /// Record an input given to the relay.
    pub fn input(&mut self, i: &Input) {
        if let Input::Data { conn, bytes } = i {
            let buf = self.sent.entry(*conn).or_default();
            if buf.len() < HELLO_LEN {
                buf.extend_from_slice(bytes);
                if let Ok(h) = Hello::decode(buf) {
                    self.hellos.insert(*conn, h);
                }
            }
        }
    }

    /// Record an output of the relay.
    pub fn output(&mut self, o: &Output) {
        if let Output::Splice { caller, callee } = o {
            let ok = match (self.hellos.get(caller), self.hellos.get(callee)) {
                (Some(a), Some(b)) => {
                    a.token == b.token && a.role == super::wire::Role::Caller && b.role != a.role
                }
                _ => false,
            };
            self.bad_splice |= !ok;
        }
    }

    /// The first invariant `relay` violates at `now`, if any.
    pub fn violated(&self, relay: &Relay, now: Time) -> Option<Invariant> {
        if self.bad_splice {
            return Some(Invariant::SplicesOnlyMatchingTokens);
        }
        for c in relay.conns() {
            if let Some((p, t)) = relay.partner(c) {
                if relay.partner(p) != Some((c, t)) {
                    return Some(Invariant::NoHalfOpenRelay);
                }
            }
        }
        let cfg = relay.config;
        let ips: Vec<_> = relay.conns.values().map(|c| c.from).collect();
        if relay.pending(None) > cfg.max_pending
            || relay.spliced(None) / 2 > cfg.max_pairs
            || ips.iter().any(|ip| {
                relay.pending(Some(*ip)) > cfg.max_pending_per_ip
                    || relay.spliced(Some(*ip)) > cfg.max_pairs_per_ip
            })
        {
            return Some(Invariant::BoundedPending);
        }
        if relay.poll_timeout_before(now) {
            return Some(Invariant::EveryConnectionEnds);
        }
        None
    }
}
