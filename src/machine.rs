//! The one contract every protocol role implements.
//!
//! A machine is a plain struct that does no I/O, reads no clock and draws no randomness. The host
//! (an adapter, a simulator, a model checker or your own event loop) drives it:
//!
//! 1. feed it whatever happened with [`Machine::handle`] (a decoded message, a command from the
//!    application, a lower-layer event), passing the current [`Time`];
//! 2. drain [`Machine::poll`] until it returns `None`, carrying out every output (send these bytes,
//!    report this event to the application, …);
//! 3. ask [`Machine::poll_timeout`] for the next deadline, sleep until then or until the next input,
//!    and call [`Machine::handle_timeout`] when the deadline has passed; then drain `poll` again.
//!
//! The same struct is what `ip2p-check` explores, what the fuzz targets drive, and what the tokio
//! adapter runs; there is never a second "model version" of a machine.
//!
//! # Errors
//!
//! `handle` returns `Err` for an input the machine rejects (malformed, unexpected, over a limit).
//! A rejected input leaves the machine exactly as usable as before: it is counted in the machine's
//! statistics, nothing is allocated for it beyond fixed bounds, and the machine carries on. Hosts
//! usually log the error and continue.
//!
//! # Example: a host loop in a dozen lines
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::Time;
//!
//! fn drive<M: Machine>(m: &mut M, inputs: Vec<(Time, M::Input)>, mut out: impl FnMut(M::Output)) {
//!     for (now, input) in inputs {
//!         // fire every deadline that has passed before this input arrives
//!         while let Some(deadline) = m.poll_timeout() {
//!             if deadline > now { break; }
//!             m.handle_timeout(deadline);
//!             while let Some(o) = m.poll() { out(o); }
//!         }
//!         if let Err(e) = m.handle(now, input) {
//!             let _ = e; // rejected input: the machine is unchanged and carries on
//!         }
//!         while let Some(o) = m.poll() { out(o); }
//!     }
//! }
//! # use ip2p::chord::{Command, Config, Id64, Input, Node, Output, Peer};
//! # let mut node = Node::new(Peer { id: Id64(1), addr: 1u32 }, Config::default());
//! # let mut events = 0;
//! # drive(&mut node, vec![(Time::ZERO, Input::Command(Command::Create))], |o| {
//! #     if let Output::Event(_) = o { events += 1 }
//! # });
//! # assert_eq!(events, 1); // Joined
//! ```

use crate::addr::TransportAddr;
use crate::time::Time;

/// A sans-IO protocol role.
pub trait Machine {
    /// Everything that can happen to the machine: messages, commands, lower-layer events.
    type Input;
    /// Everything the machine asks its host to do or tells its application.
    type Output;
    /// Why an input was rejected.
    type Error;

    /// Feed one input. On `Err` the input was rejected and the machine is unchanged apart from its
    /// counters.
    fn handle(&mut self, now: Time, input: Self::Input) -> Result<(), Self::Error>;

    /// The next output, if any. Drain this after every `handle` and `handle_timeout`.
    fn poll(&mut self) -> Option<Self::Output>;

    /// The next deadline at which [`Machine::handle_timeout`] must be called, if any.
    fn poll_timeout(&self) -> Option<Time>;

    /// Tell the machine that `now` has been reached. Calling it early or late is harmless: it acts
    /// on every deadline at or before `now`.
    fn handle_timeout(&mut self, now: Time);
}

/// What a host does with one output of a [`Networked`] machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<Msg, Ev> {
    /// Encode `msg` with the machine's wire codec and send it to `to`.
    Send {
        /// The destination.
        to: TransportAddr,
        /// The typed message; the host encodes it.
        msg: Msg,
    },
    /// Hand this event to the application.
    Event(Ev),
}

/// A wire codec: typed messages to bytes and back, with bounded decoding.
pub trait Codec {
    /// The typed message.
    type Msg;
    /// Why bytes could not be decoded.
    type Error: core::fmt::Debug + core::fmt::Display;
    /// Append the encoding of `msg` to `out`.
    fn encode(msg: &Self::Msg, out: &mut alloc::vec::Vec<u8>);
    /// Decode exactly one message from `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self::Msg, Self::Error>;
}

/// A machine that talks to peers over an IP network, so a generic adapter can run it.
///
/// The adapter decodes datagrams with [`Networked::Wire`], turns them into inputs with
/// [`Networked::message_input`], and sorts outputs with [`Networked::effect`].
pub trait Networked: Machine {
    /// The wire codec for this machine's messages.
    type Wire: Codec;
    /// Application events this machine reports.
    type Event;
    /// The input for message `msg` received from `from`.
    fn message_input(from: TransportAddr, msg: <Self::Wire as Codec>::Msg) -> Self::Input;
    /// Sort one output into "send this" or "tell the application this".
    fn effect(out: Self::Output) -> Effect<<Self::Wire as Codec>::Msg, Self::Event>;
}
