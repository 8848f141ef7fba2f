//! Fuzz target bodies for ip2p (being built for issue 3).
