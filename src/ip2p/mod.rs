//! iP2P: identification over SMS (steps B.1–B.5). (Being built for issue 3.)
