//! STUNT #2 TCP hole punching, sans-IO (steps C.0–C.8 with a proxy, D.1–D.6 over iP2P SMS).
//!
//! Work in progress: see `spec/stunt.md`.
