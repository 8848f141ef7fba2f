//! The UPnP invariants, once: the model (`models/src/upnp.rs`), the fuzz target `upnp_client`
//! and the tests check these functions by these names.
//!
//! - **InboundOnlyAfterMapping**: the application is told an external port is mapped
//!   ([`Outcome::Mapped`], [`Outcome::Renewed`], [`Event::Renewed`]) only once the IGD holds that
//!   mapping to that internal address, and it holds it as long as the client says so: every
//!   advertised mapping (told, and since then neither asked to be deleted, deleted, expired, nor
//!   made doubtful) is in the IGD's table with the same internal address. Inbound traffic to an
//!   advertised port therefore arrives.
//! - **NoLeakedMapping**: every mapping the IGD holds for this client is remembered by the client
//!   (confirmed or doubtful), so [`super::Command::DeleteAll`] removes it; and once a
//!   `DeleteAll` has completed with nothing else running, the IGD holds none.
//! - **EveryRequestEnds**: every command ends with exactly one [`Event::Completed`] or
//!   [`Event::Failed`] carrying its id; none ends twice, none ends unasked; once nothing can
//!   happen any more, all have ended.
//! - **BoundedMemory**: the client's buffers stay under [`MEMORY_BOUND`] bytes whatever the IGD
//!   sends ([`super::Client::held_bytes`]).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::http::{MAX_BODY_LEN, MAX_HEAD_LEN};
use super::{Client, Command, Event, MappingKey, Outcome, Output, PortMapping, RequestId};

/// The bound of **BoundedMemory**: two response readers at their caps, plus the requests queued.
pub const MEMORY_BOUND: usize = 2 * (MAX_HEAD_LEN + 3 * MAX_BODY_LEN) + 16 * 1024;

/// The names of the invariants, as the spec and the model print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// See the module docs.
    InboundOnlyAfterMapping,
    /// See the module docs.
    NoLeakedMapping,
    /// See the module docs.
    EveryRequestEnds,
    /// See the module docs.
    BoundedMemory,
}

impl Invariant {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::InboundOnlyAfterMapping => "InboundOnlyAfterMapping",
            Invariant::NoLeakedMapping => "NoLeakedMapping",
            Invariant::EveryRequestEnds => "EveryRequestEnds",
            Invariant::BoundedMemory => "BoundedMemory",
        }
    }
}

/// What the application of one client was told, as far as the invariants care.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observer {
    /// Commands issued.
    pub issued: Vec<RequestId>,
    /// Commands ended (in order).
    pub ended: Vec<RequestId>,
    /// Mappings the application was told are in place: key → internal address.
    pub advertised: BTreeMap<MappingKey, SocketAddr>,
    /// An id ended twice or ended without being issued.
    pub bad_end: bool,
    /// A `DeleteAll` completed.
    pub all_deleted: bool,
    /// Deletions asked for and not yet ended (`None`: all): a mapping or renewal that completes
    /// meanwhile is not relied on, since it is about to be deleted.
    pub releasing: Vec<(RequestId, Option<MappingKey>)>,
}

impl Observer {
    /// The application issued `cmd`. From the moment it asks for a deletion it no longer relies
    /// on the mappings concerned.
    pub fn issue(&mut self, cmd: &Command) {
        let id = match cmd {
            Command::Discover { id }
            | Command::ExternalIp { id }
            | Command::AddMapping { id, .. }
            | Command::Renew { id, .. } => *id,
            Command::DeleteMapping { id, key } => {
                self.advertised.remove(key);
                self.releasing.push((*id, Some(*key)));
                *id
            }
            Command::DeleteAll { id } => {
                self.advertised.clear();
                self.releasing.push((*id, None));
                *id
            }
        };
        self.issued.push(id);
    }

    /// Record one output of `client` (call it right after the output was polled).
    pub fn output(&mut self, out: &Output, client: &Client) {
        let Output::Event(e) = out else {
            return;
        };
        match e {
            Event::Completed { id, outcome } => {
                self.end(*id);
                match outcome {
                    Outcome::Mapped(m) | Outcome::Renewed(m) => self.rely(m),
                    Outcome::Unmapped(k) => {
                        self.advertised.remove(k);
                    }
                    Outcome::AllUnmapped(_) => self.all_deleted = true,
                    _ => {}
                }
            }
            Event::Failed { id, .. } => self.end(*id),
            Event::Renewed(m) => self.rely(m),
            Event::Expired(k) => {
                self.advertised.remove(k);
            }
            Event::RenewFailed { .. } => {}
        }
        // what the client no longer holds as confirmed is no longer to be relied on
        self.advertised
            .retain(|k, _| client.is_confirmed(*k) == Some(true));
    }

    fn rely(&mut self, m: &PortMapping) {
        let key = m.key();
        if !self
            .releasing
            .iter()
            .any(|(_, r)| r.map_or(true, |k| k == key))
        {
            self.advertised.insert(key, m.internal);
        }
    }

    fn end(&mut self, id: RequestId) {
        self.releasing.retain(|(i, _)| *i != id);
        if self.ended.contains(&id) || !self.issued.contains(&id) {
            self.bad_end = true;
        }
        self.ended.push(id);
    }

    /// **EveryRequestEnds**, the safety half: nothing ended twice or unasked.
    pub fn ends_once(&self) -> bool {
        !self.bad_end
    }

    /// **EveryRequestEnds**, the liveness half: every command issued has ended.
    pub fn all_ended(&self) -> bool {
        self.issued.iter().all(|i| self.ended.contains(i))
    }
}

/// **InboundOnlyAfterMapping**: every advertised mapping is in the IGD's table (`igd(key)` is
/// the internal address the IGD forwards `key` to) with the same internal address.
pub fn inbound_only_after_mapping(
    obs: &Observer,
    igd: impl Fn(MappingKey) -> Option<SocketAddr>,
) -> bool {
    obs.advertised.iter().all(|(k, a)| igd(*k) == Some(*a))
}

/// **NoLeakedMapping**: every mapping in `ours` (the IGD's mappings made by this client) is
/// remembered by the client.
pub fn no_leaked_mapping(client: &Client, ours: impl IntoIterator<Item = MappingKey>) -> bool {
    ours.into_iter().all(|k| client.is_confirmed(k).is_some())
}

/// **BoundedMemory**.
pub fn bounded_memory(client: &Client) -> bool {
    client.held_bytes() <= MEMORY_BOUND
}
