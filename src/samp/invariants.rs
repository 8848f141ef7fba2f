//! SAMP's invariants, defined once and checked under these names by the model
//! (`ip2p-check run samp`), the tests and the fuzz target.
//!
//! A host records what the roles said in an [`Observer`]; the checks read it together with the
//! servers' tables.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;

use super::correspondent::{self, CallId};
use super::mobile;
use super::server::{Aor, Server};
use crate::chord::RingId;
use crate::time::Time;
use crate::TransportAddr;

/// The invariants by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// A call is only ever established with the callee itself, at an address where it answered
    /// that very call — never with whoever holds a stale cached address now.
    SessionOnlyWithCallee,
    /// Once the MN is registered and nothing is in flight, home → anchor → care-of address lead
    /// to where the MN is (home → care-of address without HR).
    BindingsConsistent,
    /// Every call ends exactly once, established or failed with a reason; once nothing can
    /// happen, none is left open.
    EveryCallEnds,
    /// Every binding a server holds expires, no later than the longest lifetime it grants.
    BindingsExpire,
    /// With no message lost, a call placed while the MN is registered where it is, and during
    /// which it does not move, is established.
    CallConnectsWhenRegistered,
}

impl Invariant {
    /// The name used in the spec, the model and the fuzz target.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SessionOnlyWithCallee => "SessionOnlyWithCallee",
            Invariant::BindingsConsistent => "BindingsConsistent",
            Invariant::EveryCallEnds => "EveryCallEnds",
            Invariant::BindingsExpire => "BindingsExpire",
            Invariant::CallConnectsWhenRegistered => "CallConnectsWhenRegistered",
        }
    }
}

/// One call as the observer saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallRecord {
    /// The MN was registered at its current address, and idle, when the call was placed.
    pub placed_registered: bool,
    /// The MN moved before the call ended.
    pub moved_during: bool,
    /// How often the call ended (must stay at most one).
    pub ends: u8,
    /// It ended established.
    pub established: bool,
}

/// What the roles said, as a host records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observer {
    /// Calls placed, by handle.
    pub calls: BTreeMap<CallId, CallRecord>,
    /// (SIP Call-ID, address) of every call the MN answered.
    pub mn_answers: BTreeSet<(String, TransportAddr)>,
    /// (SIP Call-ID, address) of every call the CN took as established.
    pub established: BTreeSet<(String, TransportAddr)>,
    /// The MN's registration: (care-of address, anchor, through the home) after its last
    /// `Registered`; `None` after a failure or before any.
    pub registered: Option<(TransportAddr, TransportAddr)>,
    /// Messages lost so far.
    pub losses: u8,
}

impl Observer {
    /// The CN placed `call`; `mn_registered_here` says whether the MN is registered at its
    /// current address and idle.
    pub fn placed(&mut self, call: CallId, mn_registered_here: bool) {
        self.calls.insert(
            call,
            CallRecord {
                placed_registered: mn_registered_here,
                ..CallRecord::default()
            },
        );
    }

    /// The MN got a new address: every open call saw it move, and its registration is stale.
    pub fn moved(&mut self) {
        for c in self.calls.values_mut() {
            if c.ends == 0 {
                c.moved_during = true;
            }
        }
        self.registered = None;
    }

    /// The MN said `e` while at `coa`.
    pub fn mn_event(&mut self, e: &mobile::Event, coa: Option<TransportAddr>) {
        match e {
            mobile::Event::Registered { coa, anchor, .. } => {
                self.registered = Some((*coa, *anchor));
            }
            mobile::Event::NoAnchor | mobile::Event::RegisterFailed { .. } => {
                self.registered = None
            }
            mobile::Event::Answered { call_id, .. } => {
                if let Some(at) = coa {
                    self.mn_answers.insert((call_id.clone(), at));
                }
            }
        }
    }

    /// The CN said `e`.
    pub fn cn_event(&mut self, e: &correspondent::Event) {
        match e {
            correspondent::Event::Established {
                call, call_id, at, ..
            } => {
                self.established.insert((call_id.clone(), *at));
                let r = self.calls.entry(*call).or_default();
                r.ends = r.ends.saturating_add(1);
                r.established = true;
            }
            correspondent::Event::Failed { call, .. } => {
                let r = self.calls.entry(*call).or_default();
                r.ends = r.ends.saturating_add(1);
            }
            correspondent::Event::FellBack { .. } => {}
        }
    }
}

/// [`Invariant::SessionOnlyWithCallee`].
pub fn session_only_with_callee(obs: &Observer) -> bool {
    obs.established.iter().all(|e| obs.mn_answers.contains(e))
}

/// [`Invariant::BindingsConsistent`], when `quiet` (nothing in flight, no role waiting) and the MN
/// is at `coa`. `hr`: the home points at the anchor (else at the care-of address).
pub fn bindings_consistent<I: RingId>(
    obs: &Observer,
    quiet: bool,
    coa: Option<TransportAddr>,
    aor: &Aor,
    hr: bool,
    servers: &[Server<I>],
    now: Time,
) -> bool {
    let Some((reg_coa, anchor)) = obs.registered else {
        return true;
    };
    if !quiet || Some(reg_coa) != coa {
        return true;
    }
    let key: I = aor.key();
    let Some(home) = servers.iter().find(|s| s.node().owns(&key)) else {
        return false;
    };
    if hr {
        let Some(a) = servers.iter().find(|s| s.addr() == anchor) else {
            return false;
        };
        home.home_binding(now, aor) == Some(anchor) && a.anchor_binding(now, aor) == Some(reg_coa)
    } else {
        home.home_binding(now, aor) == Some(reg_coa)
    }
}

/// [`Invariant::EveryCallEnds`]: at most once always; once `quiet`, every call ended.
pub fn every_call_ends(obs: &Observer, quiet: bool) -> bool {
    obs.calls
        .values()
        .all(|c| c.ends <= 1 && (!quiet || c.ends == 1))
}

/// [`Invariant::BindingsExpire`]: every binding of `server` expires within `max_secs` of `now`.
pub fn bindings_expire<I: RingId>(server: &Server<I>, now: Time, max_secs: u32) -> bool {
    let limit = now + core::time::Duration::from_secs(u64::from(max_secs));
    server.bindings().all(|(_, expires)| expires <= limit)
}

/// [`Invariant::CallConnectsWhenRegistered`], once `quiet`.
pub fn call_connects_when_registered(obs: &Observer, quiet: bool) -> bool {
    !quiet
        || obs.losses > 0
        || obs
            .calls
            .values()
            .all(|c| !c.placed_registered || c.moved_during || c.established)
}
