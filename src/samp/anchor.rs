//! Anchor discovery: which of the SIP servers that answered the multicast REGISTER becomes the
//! mobile node's anchor.
//!
//! The rule (SAMP, "Location registration"): among the servers whose answer came within the
//! response-time threshold δ, pick one **at random** — not the fastest, which could be an
//! overloaded server everyone picks. If none answered within δ, pick at random among all that
//! answered. Randomness is an input (`random`), so the choice is reproducible in a model and a
//! simulation.

use core::time::Duration;

/// One answer to the multicast REGISTER: who answered and how long it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Answer<A> {
    /// The answering server.
    pub server: A,
    /// Time from the REGISTER to this answer.
    pub response_time: Duration,
}

/// The anchor chosen among `answers` with threshold `delta`, drawing with `random`; `None` when
/// nobody answered.
///
/// ```
/// use core::time::Duration;
/// use ip2p::samp::anchor::{choose_anchor, Answer};
///
/// let ms = Duration::from_millis;
/// let answers = [
///     Answer { server: 12, response_time: ms(20) },
///     Answer { server: 16, response_time: ms(80) },
/// ];
/// // δ = 50 ms: only server 12 qualifies, whatever the draw
/// for r in 0..10 {
///     assert_eq!(choose_anchor(&answers, ms(50), r), Some(12));
/// }
/// // δ = 10 ms: nobody qualifies, so any server that answered may be drawn
/// assert_eq!(choose_anchor(&answers, ms(10), 0), Some(12));
/// assert_eq!(choose_anchor(&answers, ms(10), u64::MAX), Some(16));
/// ```
pub fn choose_anchor<A: Copy>(answers: &[Answer<A>], delta: Duration, random: u64) -> Option<A> {
    let within = answers.iter().filter(|a| a.response_time <= delta).count();
    if within > 0 {
        let pick = draw(random, within);
        answers
            .iter()
            .filter(|a| a.response_time <= delta)
            .nth(pick)
            .map(|a| a.server)
    } else if answers.is_empty() {
        None
    } else {
        answers.get(draw(random, answers.len())).map(|a| a.server)
    }
}

/// What hierarchical registration (HR) does after a move, given the current anchor's response
/// time to the re-REGISTER.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AfterMove {
    /// The anchor still answers within δ: register the new care-of address with it only; the
    /// home binding (AOR → anchor) stays right.
    KeepAnchor,
    /// The anchor is too slow (or silent): discover a new anchor and update the home server.
    Reanchor,
}

/// HR's decision: keep the anchor while it answers within `delta`.
pub fn after_move(anchor_response: Option<Duration>, delta: Duration) -> AfterMove {
    match anchor_response {
        Some(t) if t <= delta => AfterMove::KeepAnchor,
        _ => AfterMove::Reanchor,
    }
}

/// An index below `n` (`n > 0`) from 64 random bits, by multiply-shift (no modulo bias worth
/// the name for the handful of servers that answer).
fn draw(random: u64, n: usize) -> usize {
    let n = n as u128;
    ((u128::from(random) * n) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ans(server: u32, t: u64) -> Answer<u32> {
        Answer {
            server,
            response_time: ms(t),
        }
    }

    #[test]
    fn nobody_answered() {
        assert_eq!(choose_anchor::<u32>(&[], ms(50), 7), None);
    }

    #[test]
    fn every_fast_server_can_be_drawn_and_no_slow_one() {
        let answers = [ans(1, 10), ans(2, 90), ans(3, 50), ans(4, 49)];
        let mut seen = [false; 5];
        for i in 0..64u64 {
            let r = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let a = choose_anchor(&answers, ms(50), r).unwrap();
            seen[a as usize] = true;
        }
        assert_eq!(seen, [false, true, false, true, true]);
    }

    #[test]
    fn draws_are_spread_evenly() {
        // the load-balancing point of the random choice: three equal servers share the draws
        let answers = [ans(1, 5), ans(2, 6), ans(3, 7)];
        let mut count = [0u32; 4];
        let mut r = 1u64;
        for _ in 0..30_000 {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            count[choose_anchor(&answers, ms(50), r).unwrap() as usize] += 1;
        }
        for c in &count[1..] {
            assert!((9_000..11_000).contains(c), "{count:?}");
        }
    }

    #[test]
    fn hr_keeps_a_fast_anchor() {
        assert_eq!(after_move(Some(ms(30)), ms(50)), AfterMove::KeepAnchor);
        assert_eq!(after_move(Some(ms(50)), ms(50)), AfterMove::KeepAnchor);
        assert_eq!(after_move(Some(ms(51)), ms(50)), AfterMove::Reanchor);
        assert_eq!(after_move(None, ms(50)), AfterMove::Reanchor);
    }

    #[test]
    fn draw_stays_in_range() {
        for n in 1..20 {
            assert!(draw(u64::MAX, n) < n);
            assert_eq!(draw(0, n), 0);
        }
    }
}
