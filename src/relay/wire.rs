//! What a client says to the relay first, and the relay's one-octet answer.
//!
//! | offset | octets | field |
//! |---|---|---|
//! | 0 | 4 | magic `IP2R` |
//! | 4 | 1 | version = 1 |
//! | 5 | 1 | role: 1 caller, 2 callee |
//! | 6 | 16 | token ([`RelayToken`]) |
//!
//! The relay answers with one [`Status`] octet: 0 when the two are joined (every later octet is
//! the other side's), else why not, and then closes.

use super::token::{RelayToken, TOKEN_LEN};

/// Octets of a hello.
pub const HELLO_LEN: usize = 4 + 1 + 1 + TOKEN_LEN;
/// The magic that starts a hello.
pub const MAGIC: [u8; 4] = *b"IP2R";
/// The version this codec speaks.
pub const VERSION: u8 = 1;

/// Which side of an iP2P request a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// The caller (it connects for its request).
    Caller,
    /// The callee (it connects for its session).
    Callee,
}

impl Role {
    /// The other side.
    pub fn other(self) -> Role {
        match self {
            Role::Caller => Role::Callee,
            Role::Callee => Role::Caller,
        }
    }
}

/// The first octets a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Caller or callee.
    pub role: Role,
    /// The token both sides derived.
    pub token: RelayToken,
}

/// The relay's answer to a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// Joined to the other side: from now on the connection carries its octets.
    Paired,
    /// The hello was malformed, or octets came before the pairing.
    BadHello,
    /// A limit was reached (connections waiting, pairs, per address).
    Busy,
    /// The other side did not come in time.
    Timeout,
    /// Someone with this token and role is already waiting.
    Duplicate,
}

impl Status {
    /// The octet on the wire.
    pub fn code(self) -> u8 {
        match self {
            Status::Paired => 0,
            Status::BadHello => 1,
            Status::Busy => 2,
            Status::Timeout => 3,
            Status::Duplicate => 4,
        }
    }

    /// The status of an octet.
    pub fn from_code(c: u8) -> Result<Status, RelayWireError> {
        Ok(match c {
            0 => Status::Paired,
            1 => Status::BadHello,
            2 => Status::Busy,
            3 => Status::Timeout,
            4 => Status::Duplicate,
            _ => return Err(RelayWireError::Status(c)),
        })
    }
}

/// Why octets are not a hello or a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayWireError {
    /// Not exactly [`HELLO_LEN`] octets.
    #[error("a relay hello has {HELLO_LEN} octets, not {0}")]
    Length(usize),
    /// Not `IP2R`.
    #[error("not a relay hello (bad magic)")]
    Magic,
    /// Another version.
    #[error("relay hello version {0} is not supported")]
    Version(u8),
    /// Neither caller nor callee.
    #[error("unknown role {0}")]
    Role(u8),
    /// An unknown status octet.
    #[error("unknown relay status {0}")]
    Status(u8),
}

impl Hello {
    /// The octets of the hello.
    ///
    /// ```
    /// use ip2p::relay::wire::{Hello, Role, HELLO_LEN};
    /// use ip2p::relay::RelayToken;
    /// let h = Hello { role: Role::Callee, token: RelayToken([7; 16]) };
    /// let bytes = h.encode();
    /// assert_eq!(bytes.len(), HELLO_LEN);
    /// assert_eq!(Hello::decode(&bytes), Ok(h));
    /// ```
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0; HELLO_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = match self.role {
            Role::Caller => 1,
            Role::Callee => 2,
        };
        b[6..].copy_from_slice(&self.token.0);
        b
    }

    /// Parse a hello of exactly [`HELLO_LEN`] octets.
    pub fn decode(bytes: &[u8]) -> Result<Hello, RelayWireError> {
        if bytes.len() != HELLO_LEN {
            return Err(RelayWireError::Length(bytes.len()));
        }
        if bytes[..4] != MAGIC {
            return Err(RelayWireError::Magic);
        }
        if bytes[4] != VERSION {
            return Err(RelayWireError::Version(bytes[4]));
        }
        let role = match bytes[5] {
            1 => Role::Caller,
            2 => Role::Callee,
            r => return Err(RelayWireError::Role(r)),
        };
        let mut token = [0; TOKEN_LEN];
        token.copy_from_slice(&bytes[6..]);
        Ok(Hello {
            role,
            token: RelayToken(token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_hellos_are_typed() {
        let good = Hello {
            role: Role::Caller,
            token: RelayToken([1; 16]),
        }
        .encode();
        assert_eq!(Hello::decode(&good[..5]), Err(RelayWireError::Length(5)));
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Hello::decode(&b), Err(RelayWireError::Magic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(Hello::decode(&b), Err(RelayWireError::Version(2)));
        let mut b = good;
        b[5] = 9;
        assert_eq!(Hello::decode(&b), Err(RelayWireError::Role(9)));
        for c in 0..=4 {
            assert_eq!(Status::from_code(c).map(Status::code), Ok(c));
        }
        assert_eq!(Status::from_code(5), Err(RelayWireError::Status(5)));
    }
}
