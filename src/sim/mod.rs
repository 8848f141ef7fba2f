//! Deterministic simulator (see issue 2, item 6).
