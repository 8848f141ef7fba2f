//! Small shared address types.

use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;

/// An IP transport address (IPv4 or IPv6 address and port) a machine sends to or hears from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TransportAddr(pub SocketAddr);

impl TransportAddr {
    /// The socket address inside.
    pub const fn socket_addr(self) -> SocketAddr {
        self.0
    }
}

impl From<SocketAddr> for TransportAddr {
    fn from(a: SocketAddr) -> Self {
        TransportAddr(a)
    }
}

impl From<TransportAddr> for SocketAddr {
    fn from(a: TransportAddr) -> Self {
        a.0
    }
}

impl FromStr for TransportAddr {
    type Err = core::net::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TransportAddr)
    }
}

impl fmt::Display for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
