//! # ip2p
//!
//! Formally-checked, pure sans-IO protocol state machines for mobile and NAT-bound peer-to-peer
//! systems.
//!
//! Every protocol role is a plain struct implementing [`machine::Machine`]: it does no I/O, reads
//! no clock and draws no randomness. Time ([`Time`]) and randomness are inputs. The same struct is
//! explored by the stateright models in `ip2p-models` (`ip2p-check all`), driven by the fuzz
//! targets, and run over real sockets by the adapters.
//!
//! ## Protocols
//!
//! - [`chord`]: the Chord DHT (Stoica et al. 2001), in two variants behind one machine:
//!   `Original` and Zave's corrected protocol (`Zave`, IEEE TSE 2017). Iterative lookup,
//!   put/get with replication on the successor list, key hand-over on join and leave.
//! - [`ip2p`](mod@ip2p): iP2P identification over SMS (steps B.1–B.5): a phone resolves another
//!   phone's [`Msisdn`] to its application's transport address with one authenticated SMS, the
//!   callee's broadband radio staying off until called.
//! - [`sms`]: the SMS stack under it, sans-IO: TS 23.040 TPDUs, TS 23.038 alphabets, user-data
//!   headers, concatenation and reassembly, application ports, and [`sms::at`], a TS 27.005 AT
//!   engine for modems in PDU mode.
//! - [`samp`]: SAMP, SIP mobility over the Chord overlay: SIP servers as Chord nodes (registrar
//!   and proxy or redirect), the mobile node (anchor discovery within δ, home registration,
//!   hierarchical registration) and the correspondent with two-tier caching.
//! - [`sip`]: SIP messages (RFC 3261) for SAMP: a strict, bounded datagram parser with typed
//!   errors and a canonical encoder.
//!
//! ## Features
//!
//! - `std` (default): `std::error::Error` impls and the simulator ([`sim`]).
//! - `serde`: snapshot and restore of machine state; JSON output of the tools.
//! - `tokio`: [`adapters::tokio`], a generic driver running any [`machine::Networked`] machine
//!   over real UDP sockets and timers, and the iP2P socket API over TCP.
//! - `modem`: [`adapters::modem`], the AT engine over a serial port; with `tokio`, the SMS link
//!   that carries iP2P control messages through a modem.
//!
//! Without `std` the core builds `#![no_std]` with `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod addr;
pub mod broker;
pub mod chord;
pub mod ip2p;
pub mod machine;
pub mod msisdn;
pub mod relay;
pub mod samp;
pub mod sip;
pub mod sms;
pub mod stunt;
pub mod time;
#[cfg(feature = "std")]
pub mod upnp;

// The deterministic simulator is a host of machines, so it lives beside the adapters.
#[cfg(feature = "std")]
#[path = "adapters/sim/mod.rs"]
pub mod sim;

/// Adapters that run machines over real I/O.
pub mod adapters {
    #[cfg(feature = "tokio")]
    #[path = "tokio/mod.rs"]
    pub mod tokio;

    #[cfg(feature = "modem")]
    #[path = "modem/mod.rs"]
    pub mod modem;
}

pub use addr::TransportAddr;
pub use msisdn::Msisdn;
pub use time::Time;
