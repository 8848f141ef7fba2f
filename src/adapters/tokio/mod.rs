//! The tokio adapter (feature `tokio`): runs any [`crate::machine::Networked`] machine over UDP.
