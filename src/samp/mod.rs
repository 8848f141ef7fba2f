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
//! - [`anchor`]: the anchor choice and HR's keep-or-re-anchor decision.
//!
//! All are sans-IO [`crate::machine::Machine`]s over the typed messages of [`crate::sip`]. The
//! paper's simulation (Fig. 4, Fig. 5) drives them in `ip2p::sim::samp` (`ip2p-sim samp`). Issue 5
//! is in progress: the model and the socket adapter are still to come (`spec/samp.md` says what
//! is done).

pub mod anchor;
pub mod bindings;
pub mod correspondent;
pub mod mobile;
pub mod server;

pub use server::Aor;
