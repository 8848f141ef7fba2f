//! STUNT #2 TCP hole punching, sans-IO (steps C.0–C.8 with a proxy, D.1–D.6 over iP2P SMS).
//!
//! Two peers behind NATs, App-A (the caller) and App-B (the callee), set up a direct TCP
//! connection:
//!
//! - [`proxy::Proxy`]: the proxy server both register with (C.0) and that relays the request,
//!   the acknowledgement and the mappings (C.1, C.2, C.5, C.6).
//! - [`predict::Predictor`] and [`predict::PredictionServer`]: port prediction (C.3, C.4, D.1,
//!   D.3) and the hop count that sets the TTL of the low-TTL SYN.
//! - [`punch::Punch`]: the caller and callee roles from the request to the established
//!   connection: the low-TTL SYN (C.7/D.5), the wait and SYN (C.8/D.6), simultaneous open. The D
//!   variant is the same machine with the mappings carried by the iP2P control SMS
//!   ([`punch::Exchange::Sms`]).
//! - [`wire`]: the frames on proxy and prediction connections.
//! - [`nat`] (feature `std`): NAT-A, NAT-B and a router between them, for the model and the
//!   fuzz target.
//! - [`invariants`]: the invariants, named as in the model and the fuzz target.
//!
//! The tokio adapter (`adapters::tokio::stunt`, feature `tokio`) runs these machines over real
//! sockets. See `spec/stunt.md` for the step-by-step map.

pub mod invariants;
#[cfg(feature = "std")]
pub mod nat;
pub mod predict;
pub mod proxy;
pub mod punch;
pub mod wire;

pub use predict::{Confidence, Prediction};
pub use punch::{Established, Exchange, Punch, PunchConfig, Role, Via};

/// Why a STUNT #2 attempt failed, in words a user can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum StuntError {
    /// The NAT gives a new, unforeseeable public port to each connection (a symmetric NAT with
    /// random ports): STUNT #2 cannot work through it; use a relay or UPnP.
    #[error("the NAT's port mapping is unpredictable (local port {local}, probes saw public ports {first} then {second}): STUNT #2 cannot traverse it")]
    Unpredictable {
        /// The reserved local port.
        local: u16,
        /// The public port of the first probe.
        first: u16,
        /// The public port of the second probe.
        second: u16,
    },
    /// No TTL up to the limit reached the prediction server, so the hop count is unknown.
    #[error("no probe with TTL up to {max_ttl} reached the prediction server; cannot choose the low TTL")]
    NoHopCount {
        /// The highest TTL tried.
        max_ttl: u8,
    },
    /// A probe to the prediction server was refused or reset.
    #[error("the prediction server refused or reset a probe")]
    ServerUnreachable,
    /// The prediction server did not answer a probe in time.
    #[error("the prediction server did not answer a probe in time")]
    PredictionTimeout,
    /// The prediction server or proxy sent something it must not send.
    #[error("the server answered with a message that does not fit the protocol")]
    BadServerAnswer,
    /// The peer declined the connection (C.2).
    #[error("the peer declined the connection request")]
    Rejected,
    /// The peer gave up on the attempt.
    #[error("the peer aborted the attempt")]
    PeerAborted,
    /// The peer's next signal did not come in time.
    #[error("no answer from the peer in time")]
    PeerTimeout,
    /// The peer is not registered at the proxy.
    #[error("the peer is not registered at the proxy")]
    UnknownPeer,
    /// The caller's SYN was answered with a reset or an error.
    #[error("the connection to the peer's predicted address failed (reset or unreachable): the prediction was probably wrong")]
    ConnectFailed,
    /// No connection within the punch time-out after the SYN: the prediction was wrong or a
    /// NAT dropped the SYNs.
    #[error("no connection within the punch time-out: the predicted mapping was wrong or a NAT blocked the port")]
    PunchTimeout,
    /// The configuration cannot work.
    #[error("bad STUNT configuration: {0}")]
    Config(&'static str),
}
