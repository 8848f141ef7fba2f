//! The iP2P invariants, once: the model (`models/src/ip2p.rs`), the fuzz target `ip2p_peer` and
//! the tests check these functions by these names.
//!
//! An [`Observer`] watches the outputs of one caller and one callee (what each asked its host to
//! do and told its application) and records what the invariants need:
//!
//! - **ConnectOnlyToAnnounced**: every `Connect` (or `RelayConnect`) of the caller for request `n`
//!   goes to an address the callee announced in an answer to that attempt of request `n` (a
//!   brokered request's fallback attempts have their own wire nonces) — or, when `n` was resolved
//!   from the cache ([`super::Config::cache_ttl`]), to an address the callee announced for an
//!   earlier request.
//! - **NoConnectBeforeIdentification**: the caller connects for request `n` only after it resolved
//!   `n` (B.5 never before B.4).
//! - **AtMostOneSession**: per request attempt at most one `Connect` by the caller and at most
//!   one server started by the callee.
//! - **EveryRequestEnds**: once nothing can happen any more, every request issued has ended
//!   (connected or failed), no request or session is left, and both radios are off (checked by the
//!   model in its quiescent states and by the fuzz target after draining time).
//! - **ForgedChangesNothing**: a message that fails authentication, or a replay, leaves the peer
//!   exactly as it was (the model and the fuzz target compare the peer before and after).
//! - **NoLeakedMapping** (steps D and E): every NAT mapping a peer asks its host for
//!   ([`Output::Map`]) is released exactly once ([`Output::Unmap`]) — never released before it was
//!   asked for, never asked for again while held, and, once nothing can happen any more, none is
//!   left held.
//!   The same name as the UPnP client's invariant (`spec/upnp.md`), one level up.
//!
//! "The callee announced" means the address the caller is told to connect to: the public one
//! (`mapped`, E.4/D.4) when the answer carries one, else the server's own (B.4).

use alloc::vec::Vec;

use super::wire::{Control, Kind, Mode, Nonce};
use super::{Event, Failure, MapKey, Output};
use crate::addr::TransportAddr;

/// The names of the invariants, as the spec and the model print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// See the module docs.
    ConnectOnlyToAnnounced,
    /// See the module docs.
    NoConnectBeforeIdentification,
    /// See the module docs.
    AtMostOneSession,
    /// See the module docs.
    EveryRequestEnds,
    /// See the module docs.
    ForgedChangesNothing,
    /// See the module docs.
    NoLeakedMapping,
}

impl Invariant {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ConnectOnlyToAnnounced => "ConnectOnlyToAnnounced",
            Invariant::NoConnectBeforeIdentification => "NoConnectBeforeIdentification",
            Invariant::AtMostOneSession => "AtMostOneSession",
            Invariant::EveryRequestEnds => "EveryRequestEnds",
            Invariant::ForgedChangesNothing => "ForgedChangesNothing",
            Invariant::NoLeakedMapping => "NoLeakedMapping",
        }
    }
}

/// What one caller and one callee did, as far as the invariants care.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observer {
    /// (request, address) the callee announced.
    pub announced: Vec<(Nonce, TransportAddr)>,
    /// Requests the caller resolved.
    pub resolved: Vec<Nonce>,
    /// Requests the caller resolved from its cache.
    pub cached: Vec<Nonce>,
    /// (request, attempt, address) the caller connected to (directly or through a relay), in
    /// order. The attempt counts the request's failed modes before it (P2PBroker fallback).
    pub connects: Vec<(Nonce, u8, TransportAddr)>,
    /// (request, failed attempts so far) for requests whose mode failed at least once.
    pub attempts: Vec<(Nonce, u8)>,
    /// (request, mode) for every mode that failed, in order.
    pub modes_failed: Vec<(Nonce, Mode)>,
    /// (request, why) for every request that failed.
    pub failures: Vec<(Nonce, Failure)>,
    /// Requests for which the callee started a server, once per start.
    pub servers: Vec<Nonce>,
    /// Requests that ended (connected or failed), once per end.
    pub ended: Vec<Nonce>,
    /// A `Connect` came before the request was resolved.
    pub connect_before_resolve: bool,
    /// A forged or replayed message changed a peer (set by the harness).
    pub forged_changed: bool,
    /// Mappings asked for and not yet released (either peer).
    pub held: Vec<MapKey>,
    /// Mappings ever asked for (either peer).
    pub mapped: Vec<MapKey>,
    /// A mapping was asked for twice, or released without being held.
    pub mapping_misused: bool,
    /// The callee moved a session to its next mode ([`Event::SessionModeFailed`]).
    pub callee_fell_back: bool,
}

impl Observer {
    fn mapping(&mut self, o: &Output) {
        match o {
            Output::Map { key, .. } => {
                // a key may be mapped again once released (a brokered callee that moves to its
                // next mode), never while held
                if self.held.contains(key) {
                    self.mapping_misused = true;
                } else {
                    if !self.mapped.contains(key) {
                        self.mapped.push(*key);
                    }
                    self.held.push(*key);
                    self.held.sort_unstable();
                }
            }
            Output::Unmap(key) => match self.held.iter().position(|k| k == key) {
                Some(i) => {
                    self.held.swap_remove(i);
                    self.held.sort_unstable();
                }
                None => self.mapping_misused = true,
            },
            _ => {}
        }
    }

    /// Record one output of the caller.
    pub fn caller(&mut self, o: &Output) {
        self.mapping(o);
        match o {
            Output::Connect { nonce, to, .. }
            | Output::RelayConnect {
                nonce, relay: to, ..
            } => {
                if !self.resolved.contains(nonce) {
                    self.connect_before_resolve = true;
                }
                let attempt = self.attempt(*nonce);
                self.connects.push((*nonce, attempt, *to));
            }
            Output::Event(Event::Failed { nonce, error, .. }) => {
                self.ended.push(*nonce);
                self.failures.push((*nonce, *error));
            }
            Output::Event(Event::ModeFailed { nonce, mode, .. }) => {
                self.modes_failed.push((*nonce, *mode));
                match self.attempts.iter_mut().find(|(n, _)| n == nonce) {
                    Some((_, k)) => *k = k.saturating_add(1),
                    None => self.attempts.push((*nonce, 1)),
                }
            }
            Output::Event(Event::Resolved { nonce, cached, .. }) => {
                if !self.resolved.contains(nonce) {
                    self.resolved.push(*nonce);
                }
                if *cached && !self.cached.contains(nonce) {
                    self.cached.push(*nonce);
                }
            }
            Output::Event(Event::Connected(n)) => self.ended.push(*n),
            _ => {}
        }
    }

    /// Record one output of the callee.
    pub fn callee(&mut self, o: &Output) {
        self.mapping(o);
        match o {
            Output::SendIp { payload, .. } | Output::SendSms { payload, .. } => {
                // the callee's own message: its fields are what it announced
                if let Ok(c) = Control::parse(payload) {
                    if let (Kind::Reply, Some(a)) = (c.kind, c.mapped.or(c.addr)) {
                        if !self.announced.contains(&(c.nonce, a)) {
                            self.announced.push((c.nonce, a));
                        }
                    }
                }
            }
            Output::StartServer { session, .. } => self.servers.push(session.nonce),
            Output::Event(Event::SessionModeFailed { .. }) => self.callee_fell_back = true,
            _ => {}
        }
    }

    /// The modes that failed for request `nonce`, in order.
    pub fn failed_modes(&self, nonce: Nonce) -> Vec<Mode> {
        self.modes_failed
            .iter()
            .filter(|(n, _)| *n == nonce)
            .map(|(_, m)| *m)
            .collect()
    }

    /// Why request `nonce` failed, if it did.
    pub fn failure(&self, nonce: Nonce) -> Option<Failure> {
        self.failures
            .iter()
            .find(|(n, _)| *n == nonce)
            .map(|(_, f)| *f)
    }

    fn attempt(&self, nonce: Nonce) -> u8 {
        self.attempts
            .iter()
            .find(|(n, _)| *n == nonce)
            .map_or(0, |(_, k)| *k)
    }

    /// ConnectOnlyToAnnounced: every connect goes to an address the callee announced for that
    /// very attempt of the request (or one cached from an earlier request).
    pub fn connect_only_to_announced(&self) -> bool {
        self.connects.iter().all(|(n, k, to)| {
            let wire = super::attempt_nonce(*n, *k);
            self.announced
                .iter()
                .any(|(m, a)| a == to && (*m == wire || self.cached.contains(n)))
        })
    }

    /// NoConnectBeforeIdentification.
    pub fn no_connect_before_identification(&self) -> bool {
        !self.connect_before_resolve
    }

    /// AtMostOneSession.
    pub fn at_most_one_session(&self) -> bool {
        fn unique(v: &[Nonce]) -> bool {
            v.iter().enumerate().all(|(i, n)| !v[..i].contains(n))
        }
        let connects: Vec<(Nonce, u8)> = self.connects.iter().map(|c| (c.0, c.1)).collect();
        let once = connects
            .iter()
            .enumerate()
            .all(|(i, c)| !connects[..i].contains(c));
        once && unique(&self.servers)
    }

    /// EveryRequestEnds, given the requests issued and whether the peers are idle (no request, no
    /// session, radio off). Meaningful only once nothing can happen any more.
    pub fn every_request_ends(&self, issued: &[Nonce], peers_idle: bool) -> bool {
        peers_idle
            && issued
                .iter()
                .all(|n| self.ended.iter().filter(|e| *e == n).count() == 1)
    }

    /// ForgedChangesNothing.
    pub fn forged_changes_nothing(&self) -> bool {
        !self.forged_changed
    }

    /// NoLeakedMapping, the part that holds in every state: no mapping asked for twice or
    /// released without being held.
    pub fn no_leaked_mapping(&self) -> bool {
        !self.mapping_misused
    }

    /// NoLeakedMapping, the part that holds once nothing can happen any more: every mapping
    /// asked for has been released.
    pub fn all_mappings_released(&self) -> bool {
        !self.mapping_misused && self.held.is_empty()
    }

    /// The first invariant (other than EveryRequestEnds) that does not hold.
    pub fn violated(&self) -> Option<Invariant> {
        if !self.connect_only_to_announced() {
            Some(Invariant::ConnectOnlyToAnnounced)
        } else if !self.no_connect_before_identification() {
            Some(Invariant::NoConnectBeforeIdentification)
        } else if !self.at_most_one_session() {
            Some(Invariant::AtMostOneSession)
        } else if !self.forged_changes_nothing() {
            Some(Invariant::ForgedChangesNothing)
        } else if !self.no_leaked_mapping() {
            Some(Invariant::NoLeakedMapping)
        } else {
            None
        }
    }
}
