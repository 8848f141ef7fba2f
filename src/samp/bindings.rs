//! Bindings with a lifetime: the registrar's tables and the two-tier cache.
//!
//! SAMP keeps three tables of the same shape, each keyed by the mobile node's address-of-record:
//!
//! - at an **anchor** server, AOR → care-of address (the MN's current place);
//! - at a **home** server (the ring's owner of H(home URI)), AOR → anchor server;
//! - in a **cache** (TTC phase I at the correspondent, phase II at its anchor), AOR → care-of
//!   address, kept for a lifetime and never trusted past it.
//!
//! [`Bindings`] is that table: every entry expires, an expired entry is never returned, and the
//! table never holds more than its capacity. A registrar refuses a new AOR when full
//! ([`WhenFull::Refuse`]: a hostile peer cannot push real users out); a cache drops the entry that
//! expires soonest ([`WhenFull::EvictSoonest`]).

use alloc::collections::{BTreeMap, BTreeSet};
use core::time::Duration;

use crate::time::Time;

/// What a full table does with a binding for a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WhenFull {
    /// Refuse it ([`BindError::Full`]): registrars.
    Refuse,
    /// Drop the entry that expires soonest: caches.
    EvictSoonest,
}

/// Why a binding was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum BindError {
    /// The table holds `capacity` live bindings and refuses new keys.
    #[error("the table is full ({capacity} bindings)")]
    Full {
        /// The table's capacity.
        capacity: usize,
    },
    /// A zero lifetime: use [`Bindings::unbind`] to remove a binding.
    #[error("a binding needs a lifetime above zero")]
    ZeroLifetime,
}

/// A bound value and when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding<V> {
    /// The value: a care-of address, an anchor's address.
    pub value: V,
    /// The first instant at which the binding no longer holds.
    pub expires: Time,
}

/// A bounded table of bindings that expire.
///
/// ```
/// use core::time::Duration;
/// use ip2p::samp::bindings::{Bindings, WhenFull};
/// use ip2p::Time;
///
/// let mut t = Bindings::new(2, WhenFull::Refuse);
/// let now = Time::from_millis(0);
/// t.bind(now, "sip:mn@home.example", "10.0.0.7:5060", Duration::from_secs(60)).unwrap();
/// assert_eq!(t.get(now, &"sip:mn@home.example"), Some(&"10.0.0.7:5060"));
/// // past its lifetime a binding is gone, whether or not `expire` ran
/// let later = Time::from_millis(60_000);
/// assert_eq!(t.get(later, &"sip:mn@home.example"), None);
/// assert_eq!(t.expire(later), 1);
/// assert!(t.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bindings<K: Ord + Clone, V> {
    by_key: BTreeMap<K, Binding<V>>,
    by_expiry: BTreeSet<(Time, K)>,
    /// The first entry of `by_expiry`, kept so that `next_expiry` (a host asks after every
    /// input) does not walk the tree.
    soonest: Option<Time>,
    capacity: usize,
    when_full: WhenFull,
}

impl<K: Ord + Clone, V> Bindings<K, V> {
    /// An empty table holding at most `capacity` bindings.
    pub fn new(capacity: usize, when_full: WhenFull) -> Self {
        Bindings {
            by_key: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            soonest: None,
            capacity,
            when_full,
        }
    }

    /// Bind `key` to `value` for `lifetime` from `now`, replacing an earlier binding of `key`.
    ///
    /// Expired bindings are dropped first, so they never make the table look full.
    pub fn bind(
        &mut self,
        now: Time,
        key: K,
        value: V,
        lifetime: Duration,
    ) -> Result<(), BindError> {
        if lifetime.is_zero() {
            return Err(BindError::ZeroLifetime);
        }
        self.expire(now);
        if self.by_key.len() >= self.capacity && !self.by_key.contains_key(&key) {
            match self.when_full {
                WhenFull::Refuse => {
                    return Err(BindError::Full {
                        capacity: self.capacity,
                    })
                }
                WhenFull::EvictSoonest => match self.by_expiry.pop_first() {
                    Some((_, k)) => {
                        self.by_key.remove(&k);
                    }
                    // capacity 0: nothing can be held
                    None => {
                        return Err(BindError::Full {
                            capacity: self.capacity,
                        })
                    }
                },
            }
        }
        let expires = now + lifetime;
        match self.by_key.get_mut(&key) {
            // a renewal: move the key's place in the expiry index without cloning it
            Some(b) => {
                let mut at = (b.expires, key);
                *b = Binding { value, expires };
                self.by_expiry.remove(&at);
                at.0 = expires;
                self.by_expiry.insert(at);
            }
            None => {
                self.by_key.insert(key.clone(), Binding { value, expires });
                self.by_expiry.insert((expires, key));
            }
        }
        self.note_soonest();
        Ok(())
    }

    /// Remove the binding of `key` (a REGISTER with `Expires: 0`, a stale cache entry); the value
    /// it held, if any, even an expired one.
    pub fn unbind(&mut self, key: &K) -> Option<Binding<V>> {
        let (k, b) = self.by_key.remove_entry(key)?;
        self.by_expiry.remove(&(b.expires, k));
        self.note_soonest();
        Some(b)
    }

    /// The live value bound to `key` at `now`.
    pub fn get(&self, now: Time, key: &K) -> Option<&V> {
        self.binding(now, key).map(|b| &b.value)
    }

    /// The live binding of `key` at `now`, with its expiry.
    pub fn binding(&self, now: Time, key: &K) -> Option<&Binding<V>> {
        self.by_key.get(key).filter(|b| b.expires > now)
    }

    /// Drop every binding expired at `now`; how many were dropped.
    pub fn expire(&mut self, now: Time) -> usize {
        let mut n = 0;
        while let Some((t, _)) = self.by_expiry.first() {
            if *t > now {
                break;
            }
            if let Some((_, k)) = self.by_expiry.pop_first() {
                self.by_key.remove(&k);
                n += 1;
            }
        }
        if n > 0 {
            self.note_soonest();
        }
        n
    }

    fn note_soonest(&mut self) {
        self.soonest = self.by_expiry.first().map(|(t, _)| *t);
    }

    /// When the next binding expires (for the host's timer).
    pub fn next_expiry(&self) -> Option<Time> {
        self.soonest
    }

    /// Bindings held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// No binding is held.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The table's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every binding held (live or not yet dropped), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Binding<V>)> {
        self.by_key.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn t(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    #[test]
    fn rebinding_moves_the_expiry() {
        let mut b = Bindings::new(4, WhenFull::Refuse);
        b.bind(t(0), 1u32, 'a', MIN).unwrap();
        b.bind(t(30_000), 1, 'b', MIN).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.get(t(61_000), &1), Some(&'b'));
        assert_eq!(b.next_expiry(), Some(t(90_000)));
        assert_eq!(b.expire(t(89_999)), 0);
        assert_eq!(b.expire(t(90_000)), 1);
        assert_eq!(b.next_expiry(), None);
    }

    #[test]
    fn a_full_registrar_refuses_new_keys_but_renews_old_ones() {
        let mut b = Bindings::new(2, WhenFull::Refuse);
        b.bind(t(0), 1u32, (), MIN).unwrap();
        b.bind(t(0), 2, (), MIN).unwrap();
        assert_eq!(
            b.bind(t(1), 3, (), MIN),
            Err(BindError::Full { capacity: 2 })
        );
        b.bind(t(1), 2, (), MIN).unwrap();
        // once one has expired there is room again
        b.bind(t(60_000), 3, (), MIN).unwrap();
        assert_eq!(b.get(t(60_000), &1), None);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn a_full_cache_evicts_what_expires_soonest() {
        let mut b = Bindings::new(2, WhenFull::EvictSoonest);
        b.bind(t(0), 1u32, (), Duration::from_secs(10)).unwrap();
        b.bind(t(0), 2, (), Duration::from_secs(5)).unwrap();
        b.bind(t(1), 3, (), Duration::from_secs(10)).unwrap();
        let keys: alloc::vec::Vec<u32> = b.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [1, 3]);
        let mut none = Bindings::new(0, WhenFull::EvictSoonest);
        assert_eq!(
            none.bind(t(0), 1u32, (), MIN),
            Err(BindError::Full { capacity: 0 })
        );
    }

    #[test]
    fn unbind_and_zero_lifetime() {
        let mut b = Bindings::new(2, WhenFull::Refuse);
        assert_eq!(
            b.bind(t(0), 1u32, 'x', Duration::ZERO),
            Err(BindError::ZeroLifetime)
        );
        b.bind(t(0), 1, 'x', MIN).unwrap();
        assert_eq!(b.unbind(&1).map(|b| b.value), Some('x'));
        assert_eq!(b.unbind(&1), None);
        assert!(b.is_empty());
        assert_eq!(b.next_expiry(), None);
    }

    proptest::proptest! {
        /// The two indexes always agree, the table never outgrows its capacity, and `get` never
        /// returns an expired value.
        #[test]
        fn indexes_agree(ops in proptest::collection::vec((0u8..4, 0u8..6, 0u64..5_000, 1u64..3_000), 0..200), cap in 0usize..5, cache: bool) {
            let mut b = Bindings::new(cap, if cache { WhenFull::EvictSoonest } else { WhenFull::Refuse });
            let mut now = 0u64;
            for (op, key, dt, life) in ops {
                now += dt;
                match op {
                    0 | 1 => { let _ = b.bind(t(now), key, now, Duration::from_millis(life)); }
                    2 => { b.unbind(&key); }
                    _ => { b.expire(t(now)); }
                }
                proptest::prop_assert!(b.len() <= cap);
                proptest::prop_assert_eq!(b.by_key.len(), b.by_expiry.len());
                proptest::prop_assert_eq!(b.next_expiry(), b.by_expiry.first().map(|(t, _)| *t));
                for (k, v) in &b.by_key {
                    proptest::prop_assert!(b.by_expiry.contains(&(v.expires, *k)));
                }
                for k in 0..6u8 {
                    if let Some(bd) = b.binding(t(now), &k) {
                        proptest::prop_assert!(bd.expires > t(now));
                    }
                }
            }
        }
    }
}
