//! stateright models of the `ip2p` machines, and the machinery behind the `ip2p-check` command.
//!
//! Every model wraps the very machine in `ip2p` (never a second "model version" of it), states its
//! fault model and bounds, and names its invariants exactly as the machine's spec does. A model
//! registers itself in [`registry`] with a [`ModelSpec`]; `ip2p-check all` then runs every
//! registered model at its CI bounds ([`ModelSpec::ci_runs`]) and prints one [`check::Row`] per
//! property.
//!
//! - [`check`]: runs stateright over a model ([`check::check`]), serves the Explorer
//!   ([`check::explore`]), and tells counterexamples as numbered steps and Mermaid diagrams
//!   through the [`check::Narrate`] trait a model implements.
//! - [`report`]: the table and JSON-lines output of `ip2p-check`.

#![warn(missing_docs)]

pub mod check;
pub mod report;

pub mod broker;
pub mod chord;
pub mod ip2p;
pub mod samp;
pub mod stunt;
pub mod upnp;

/// Everything `ip2p-check` needs to know about one model.
#[derive(Clone, Copy)]
pub struct ModelSpec {
    /// The name used on the command line and in the output (`chord`).
    pub name: &'static str,
    /// A one-line description shown by `ip2p-check list`.
    pub about: &'static str,
    /// The protocol variants the model can check (`original`, `zave`).
    pub variants: &'static [&'static str],
    /// What `ip2p-check all` runs: (variant, bounds) pairs at CI bounds.
    pub ci_runs: fn() -> Vec<(&'static str, check::Bounds)>,
    /// Check `variant` at `bounds`; one row per reported property. `Err` for a variant or bounds
    /// the model cannot check (the message is shown to the user as is).
    pub run: fn(
        variant: &str,
        bounds: &check::Bounds,
        opts: &check::RunOpts,
    ) -> Result<Vec<check::Row>, String>,
    /// Serve stateright's Explorer for `variant` at `bounds` on `addr` (blocks while serving).
    pub explore:
        fn(variant: &str, bounds: &check::Bounds, addr: std::net::SocketAddr) -> Result<(), String>,
}

impl std::fmt::Debug for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSpec")
            .field("name", &self.name)
            .field("about", &self.about)
            .field("variants", &self.variants)
            .finish_non_exhaustive()
    }
}

impl ModelSpec {
    /// The bounds `ip2p-check all` uses for `variant` (every CI run of that variant, in order).
    /// Empty when CI does not run the variant.
    pub fn ci_bounds(&self, variant: &str) -> Vec<check::Bounds> {
        (self.ci_runs)()
            .into_iter()
            .filter(|(v, _)| *v == variant)
            .map(|(_, b)| b)
            .collect()
    }
}

/// Every model; the chord model adds `chord::spec()` here.
pub fn registry() -> Vec<ModelSpec> {
    vec![
        chord::spec(),
        ip2p::spec(),
        stunt::spec(),
        upnp::spec(),
        broker::spec(),
        samp::spec(),
    ]
}

/// The registered model called `name`, if any.
pub fn find_model(name: &str) -> Option<ModelSpec> {
    registry().into_iter().find(|m| m.name == name)
}
