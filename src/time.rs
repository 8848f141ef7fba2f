//! Time as an input.
//!
//! A machine never reads a clock. The host passes a [`Time`] into every call: a monotonic count of
//! milliseconds since any origin the host likes (process start, boot, or `0` in a model). Because it
//! is a plain value, machine states stay `Clone + Eq + Hash` and can be explored by a model checker.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the host's monotonic clock, in milliseconds since an origin the host chooses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Time(u64);

impl Time {
    /// The clock's origin.
    pub const ZERO: Time = Time(0);
    /// The latest representable time; arithmetic saturates here rather than wrapping.
    pub const MAX: Time = Time(u64::MAX);

    /// A time `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this time is; zero if it is not later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Re-express this time on another clock: `self - from + to`, saturating.
    ///
    /// Used when a machine's state is restored on a host whose monotonic clock has another origin
    /// (see [`crate::machine::Machine`]'s snapshot notes), and by models that keep every clock at `0`.
    pub fn rebase(self, from: Time, to: Time) -> Time {
        if self >= from {
            to + self.saturating_since(from)
        } else {
            Time(to.0.saturating_sub(from.0 - self.0))
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(millis(d)))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(Time::ZERO - Duration::from_secs(1), Time::ZERO);
        assert_eq!(
            Time::from_millis(5).saturating_since(Time::from_millis(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn rebase_keeps_distances() {
        let t = Time::from_millis(1_500);
        assert_eq!(
            t.rebase(Time::from_millis(1_000), Time::ZERO),
            Time::from_millis(500)
        );
        assert_eq!(
            Time::from_millis(900).rebase(Time::from_millis(1_000), Time::from_millis(50)),
            Time::ZERO
        );
    }
}
