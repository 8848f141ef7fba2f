//! Relay mode: a public peer splices two TCP connections that present the same [`RelayToken`].

mod token;

pub use token::{RelayToken, TOKEN_LEN};
