//! The token both peers of one iP2P request present to a relay.

use core::fmt;

use crate::ip2p::wire::{Key, Nonce};
use crate::msisdn::Msisdn;

/// Octets of a [`RelayToken`].
pub const TOKEN_LEN: usize = 16;

/// What pairs two connections at a relay: derived by both peers from the key they share and the
/// request's nonce, so the relay (which knows no key) can match them and nobody else can take
/// either place. 128 bits; never sent except to the relay.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RelayToken(pub [u8; TOKEN_LEN]);

impl RelayToken {
    /// The token of request `nonce` from `caller` to `callee`, under their shared `key`.
    ///
    /// ```
    /// use ip2p::ip2p::wire::{Key, Nonce};
    /// use ip2p::relay::RelayToken;
    /// use ip2p::Msisdn;
    /// let (a, b): (Msisdn, Msisdn) = ("+886900000001".parse().unwrap(), "+886900000002".parse().unwrap());
    /// let key = Key::from_bytes([9; 32]);
    /// let t = RelayToken::derive(&key, Nonce(5), &a, &b);
    /// assert_eq!(t, RelayToken::derive(&key, Nonce(5), &a, &b));
    /// assert_ne!(t, RelayToken::derive(&key, Nonce(6), &a, &b));
    /// assert_ne!(t, RelayToken::derive(&key, Nonce(5), &b, &a));
    /// ```
    pub fn derive(key: &Key, nonce: Nonce, caller: &Msisdn, callee: &Msisdn) -> RelayToken {
        let full = key.derive(
            b"ip2p relay token v1",
            &[
                &nonce.0.to_be_bytes(),
                caller.digits().as_bytes(),
                callee.digits().as_bytes(),
            ],
        );
        let mut t = [0; TOKEN_LEN];
        t.copy_from_slice(&full[..TOKEN_LEN]);
        RelayToken(t)
    }
}

impl fmt::Debug for RelayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the first four octets name it in logs; the rest stays out of them
        write!(
            f,
            "RelayToken({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}
