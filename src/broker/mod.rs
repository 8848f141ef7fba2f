//! P2PBroker: learn what the network allows and pick, per connection, a mode of operation.

pub mod profile;

pub use profile::{NatBehaviour, NetworkId, Profile};
