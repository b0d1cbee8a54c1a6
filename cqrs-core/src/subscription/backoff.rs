//! Retrying with jittered exponential backoff.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait between attempts: exponential from `initial` up to
/// `max`, each wait drawn at random from its upper half ("equal jitter"),
/// so processes that failed together do not retry together.
///
/// # Examples
///
/// ```
/// use cqrs_core::subscription::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
/// let first = backoff.delay(0);
/// assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(10));
/// assert!(backoff.delay(30) <= Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits from `initial`, doubling per attempt, never above `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        // `Ord::max` is not `const`: compared by hand.
        let floor = Duration::from_micros(1);
        let initial = if initial.as_nanos() < floor.as_nanos() {
            floor
        } else {
            initial
        };
        let max = if max.as_nanos() < initial.as_nanos() {
            initial
        } else {
            max
        };
        Self { initial, max }
    }

    /// The wait before retry number `attempt` (0: the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random() % spread.saturating_add(1))
    }

    /// The longest wait it ever gives.
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl Default for Backoff {
    /// 50 ms doubling up to 5 s: what a subscription waits between attempts
    /// to reach its store.
    fn default() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(5))
    }
}

/// A random number for jitter, from the standard library's per-process
/// random hash keys (no dependency; not for cryptography).
pub(crate) fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_and_stay_in_the_upper_half() {
        let backoff = Backoff::new(Duration::from_millis(8), Duration::from_millis(100));
        for attempt in 0..40 {
            let ceiling = (Duration::from_millis(8) * 2u32.pow(attempt.min(20)))
                .min(Duration::from_millis(100));
            for _ in 0..20 {
                let delay = backoff.delay(attempt);
                assert!(delay <= ceiling, "{attempt}: {delay:?} > {ceiling:?}");
                assert!(delay >= ceiling / 2, "{attempt}: {delay:?} < half");
            }
        }
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(100));
        let delays: std::collections::BTreeSet<_> = (0..50).map(|_| backoff.delay(3)).collect();
        assert!(delays.len() > 40, "waits are not spread: {delays:?}");
    }
}
