//! SAMP: SIP-based mobility over a Chord overlay of SIP servers (Pack et al., IEEE Network 2007).
//!
//! SIP servers form a Chord ring. A mobile node (MN) entering a domain finds an **anchor** server by
//! multicast REGISTER (a random one among those answering within δ), then registers with its
//! **home** server — whoever owns H(home URI) on the ring — through the anchor. With hierarchical
//! registration (HR) later moves re-register with the anchor only. A correspondent (CN) calls with
//! two-tier caching (TTC): its own cache first, then its anchor's cache, then the ring.
//!
//! - [`server`]: the SIP server — a Chord node that is registrar + proxy (RP) or registrar +
//!   redirect (RR);
//! - [`mobile`]: the mobile node: discovery, home registration, HR, answering calls, re-INVITE
//!   after a move during a call;
//! - [`correspondent`]: the caller with TTC phase I and fallback;
//! - [`bindings`]: bounded tables of bindings that expire (anchor, home, caches);
//! - [`anchor`]: the anchor choice and HR's keep-or-re-anchor decision;
//! - [`invariants`]: SAMP's invariants, one name each in the spec, the model and the tests;
//! - [`wire`]: the codecs of a server's socket (SIP and Chord, told apart by the first byte) and
//!   of a SIP-only socket, which make every role runnable by the generic socket driver.
//!
//! All are sans-IO [`crate::machine::Machine`]s over the typed messages of [`crate::sip`]. The
//! socket adapter is `adapters::tokio::samp` (feature `tokio`); the paper's simulation (Fig. 4,
//! Fig. 5) drives the same machines in `ip2p::sim::samp` (`ip2p-sim samp`); the model is
//! `models/src/samp.rs`. `spec/samp.md` maps the paper to the code.

pub mod anchor;
pub mod bindings;
pub mod correspondent;
pub mod invariants;
pub mod mobile;
pub mod server;
pub mod wire;

pub use server::Aor;
