//! The STUNT #2 invariants, once: the model (`models/src/stunt.rs`), the fuzz target
//! `stunt_roles` and the tests check them under these names, on the world of
//! [`super::nat::World`] (feature `std`).
//!
//! - **LowTtlSynNeverReachesNatA**: the callee's low-TTL SYN (C.7/D.5) dies before NAT-A; NAT-A
//!   never sees it (else NAT-A may take it for an attack and block PortA).
//! - **CallerSynAfterCalleeMapping**: the caller sends its SYN (C.8/D.6) only when NAT-B already
//!   maps the callee's reserved port towards the caller's predicted public address.
//! - **PortNeverBlocked**: no NAT ever blocks a port because of an unsolicited SYN.
//! - **EveryAttemptEnds**: once nothing more can happen, both roles have finished, each with a
//!   connection or a typed [`super::StuntError`]: never a hang.
//! - **EventuallyEstablished**: under predictable NATs, once nothing more can happen, both roles
//!   hold the established connection.

/// The names of the invariants, as the spec and the model print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// See the module docs.
    LowTtlSynNeverReachesNatA,
    /// See the module docs.
    CallerSynAfterCalleeMapping,
    /// See the module docs.
    PortNeverBlocked,
    /// See the module docs.
    EveryAttemptEnds,
    /// See the module docs.
    EventuallyEstablished,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 5] = [
        Invariant::LowTtlSynNeverReachesNatA,
        Invariant::CallerSynAfterCalleeMapping,
        Invariant::PortNeverBlocked,
        Invariant::EveryAttemptEnds,
        Invariant::EventuallyEstablished,
    ];

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::LowTtlSynNeverReachesNatA => "LowTtlSynNeverReachesNatA",
            Invariant::CallerSynAfterCalleeMapping => "CallerSynAfterCalleeMapping",
            Invariant::PortNeverBlocked => "PortNeverBlocked",
            Invariant::EveryAttemptEnds => "EveryAttemptEnds",
            Invariant::EventuallyEstablished => "EventuallyEstablished",
        }
    }
}
