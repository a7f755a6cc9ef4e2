//! Reconnect delays: jittered exponential backoff ("full jitter").
//!
//! After the n-th consecutive failure the client waits a uniformly random
//! time in `[base/2, min(cap, base · 2^n)]`, so a relay restart does not
//! bring every client back in the same millisecond, and a dead relay is not
//! hammered. A successful connection resets the count.
//!
//! Must never: wait longer than the cap, or zero time (which would spin).

use std::time::Duration;

use rand::Rng;

/// The backoff schedule.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The production schedule: 500 ms doubling up to 60 s.
    pub(crate) fn standard() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }

    /// The delay before the next attempt; counts a failure.
    pub(crate) fn next_delay<R: Rng>(&mut self, rng: &mut R) -> Duration {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let floor = (self.base / 2).min(ceiling);
        let span = ceiling.saturating_sub(floor).as_millis() as u64;
        floor + Duration::from_millis(rng.gen_range(0..=span))
    }

    /// Forgets past failures after a successful connection.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The delay of attempt `step` (0-based) in each of `runs` fresh
    /// schedules with base 100 ms and cap 2 s.
    fn delays_at(step: u32, runs: usize, rng: &mut rand_chacha::ChaCha20Rng) -> Vec<Duration> {
        (0..runs)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
                for _ in 0..step {
                    b.next_delay(rng);
                }
                b.next_delay(rng)
            })
            .collect()
    }

    #[test]
    fn delays_grow_stay_within_bounds_and_reset() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let ceiling = |n: u32| Duration::from_millis(100 * (1u64 << n)).min(Duration::from_secs(2));
        for n in 0..8u32 {
            let delays = delays_at(n, 200, &mut rng);
            for d in &delays {
                assert!(*d >= Duration::from_millis(50), "{d:?}");
                assert!(*d <= ceiling(n), "{d:?} > {:?}", ceiling(n));
            }
            // Growth: the delays of attempt n reach close to its ceiling, and
            // (until the cap) beyond anything attempt n - 1 could draw.
            let max = delays.iter().max().copied().unwrap_or_default();
            assert!(
                max * 10 >= ceiling(n) * 9,
                "attempt {n}: longest delay {max:?} never nears {:?}",
                ceiling(n)
            );
            if n > 0 && ceiling(n) > ceiling(n - 1) {
                assert!(
                    max > ceiling(n - 1),
                    "attempt {n} waits no longer than attempt {}",
                    n - 1
                );
            }
        }
        // A long run of failures stays at the cap.
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for _ in 0..100 {
            assert!(b.next_delay(&mut rng) <= Duration::from_secs(2));
        }
        // Reset returns to the first attempt's range.
        b.reset();
        for _ in 0..20 {
            let mut again = b.clone();
            assert!(again.next_delay(&mut rng) <= Duration::from_millis(100));
        }
    }

    #[test]
    fn delays_are_jittered() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
                for _ in 0..5 {
                    b.next_delay(&mut rng);
                }
                b.next_delay(&mut rng)
            })
            .collect();
        assert!(delays.len() > 10, "expected spread, got {delays:?}");
    }
}
