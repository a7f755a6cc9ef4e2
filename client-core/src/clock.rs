//! The wall clock the engine dates its state with: prekey rotation and
//! retention, session age, kept deliveries, seen-marker pruning.
//!
//! One seam so that tests can move time forward (by weeks, for the 30-day
//! rules) instead of sleeping. In a build that is not a test the offset is
//! always zero and the clock is exactly the system clock.
//!
//! Must never: go backwards on its own, or be movable outside tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// System time plus a test-only forward offset.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// Milliseconds added to the system time; only tests change it.
    offset_ms: AtomicU64,
}

impl Clock {
    /// Unix milliseconds now (0 if the system clock is before 1970).
    pub(crate) fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Unix seconds now.
    pub(crate) fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Moves this clock forward (tests only).
    #[cfg(test)]
    pub(crate) fn advance(&self, by: std::time::Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(by, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn advancing_moves_the_clock_forward_by_that_much() {
        let clock = Clock::default();
        let before = clock.now_secs();
        clock.advance(Duration::from_secs(40 * 24 * 60 * 60));
        let after = clock.now_secs();
        // At least the offset, and not wildly more (the test itself is quick).
        assert!(after - before >= 40 * 24 * 60 * 60);
        assert!(after - before < 40 * 24 * 60 * 60 + 3600);
    }
}
