//! The per-identity rolling-window rate limit ("All limits are applied per user: ... 100
//! requests per minute", Microsoft Learn, both API pages, "Throttling limits for the API").
//!
//! A sliding log, not a fixed window: a client that bursts at the end of one minute and the
//! start of the next must still be throttled, because the real quota behaves that way and the
//! client's pacing has to cope with it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct RateLimiter {
    limit: usize,
    window: Duration,
    /// Admission times inside the current window, oldest first, per identity.
    buckets: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit as usize,
            window,
            buckets: HashMap::new(),
        }
    }

    /// Admits a request at `now`, or says how long until a slot frees.
    ///
    /// Refused requests do not take a slot, so a client hammering through 429s is not punished
    /// beyond the quota itself.
    pub(crate) fn try_acquire(&mut self, identity: &str, now: Instant) -> Result<(), Duration> {
        let bucket = self.buckets.entry(identity.to_owned()).or_default();
        while bucket
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            bucket.pop_front();
        }
        if bucket.len() < self.limit {
            bucket.push_back(now);
            return Ok(());
        }
        let wait = match bucket.front() {
            Some(&oldest) => (oldest + self.window).saturating_duration_since(now),
            None => self.window, // a limit of zero: nothing ever frees
        };
        Err(wait)
    }
}

/// The `N` of "Try again in N seconds": whole seconds, rounded up, never 0 (a client told
/// "0 seconds" would retry at once and be throttled again).
pub(crate) fn retry_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn admits_the_quota_then_reports_when_the_oldest_slot_frees() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(60));
        for i in 0..3 {
            assert_eq!(limiter.try_acquire("a", start + MS * (i * 1000)), Ok(()));
        }
        // At t=10 s the first slot (t=0) frees at t=60 s.
        let wait = limiter
            .try_acquire("a", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Another identity has its own bucket.
        assert_eq!(
            limiter.try_acquire("b", start + Duration::from_secs(10)),
            Ok(())
        );
    }

    #[test]
    fn the_window_rolls_instead_of_resetting() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.try_acquire("a", start).is_ok());
        assert!(limiter
            .try_acquire("a", start + Duration::from_secs(59))
            .is_ok());
        // t=60 s: the t=0 slot has left the window, the t=59 s one has not.
        assert!(limiter
            .try_acquire("a", start + Duration::from_secs(60))
            .is_ok());
        let wait = limiter
            .try_acquire("a", start + Duration::from_secs(61))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(58));
    }

    #[test]
    fn refused_requests_take_no_slot() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, Duration::from_secs(10));
        assert!(limiter.try_acquire("a", start).is_ok());
        for s in 1..10 {
            assert!(limiter
                .try_acquire("a", start + Duration::from_secs(s))
                .is_err());
        }
        assert!(limiter
            .try_acquire("a", start + Duration::from_secs(10))
            .is_ok());
    }

    #[test]
    fn zero_limit_always_refuses() {
        let mut limiter = RateLimiter::new(0, Duration::from_secs(5));
        assert_eq!(
            limiter.try_acquire("a", Instant::now()),
            Err(Duration::from_secs(5))
        );
    }

    #[test]
    fn retry_seconds_round_up_and_are_at_least_one() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(MS), 1);
        assert_eq!(retry_secs(Duration::from_secs(45)), 45);
        assert_eq!(retry_secs(Duration::from_millis(44_001)), 45);
    }
}
