//! The one retry decision for every target: what is transient, how long to wait.
//!
//! Retry 408, 429 and 5xx except 501; never other 4xx. Honour `Retry-After` (seconds) or the
//! "Try again in N seconds" text of the Sentinel 429 body; otherwise full-jitter exponential
//! backoff. The caller caps attempts *and* total time.

use std::time::Duration;

use rand::Rng;

/// What to do with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again (after the wait the server asked for, if it said).
    Transient { server_wait: Option<Duration> },
    /// Never retry: the same request would fail the same way.
    Permanent,
}

/// Classifies an HTTP status.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    let transient = matches!(status, 408 | 429) || (status >= 500 && status != 501);
    if !transient {
        return Verdict::Permanent;
    }
    let server_wait = retry_after
        .and_then(parse_retry_after)
        .or_else(|| parse_try_again(body));
    Verdict::Transient { server_wait }
}

/// `Retry-After` as delta-seconds (the HTTP-date form is not used by these services).
fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The seconds in "Rate limit is exceeded. Try again in 45 seconds." (Sentinel) or "Too many
/// requests. Retry after 45 seconds." (Graph's message, for when its header is missing).
pub fn parse_try_again(body: &str) -> Option<Duration> {
    let lower = body.to_ascii_lowercase();
    let at = ["try again in ", "retry after "]
        .iter()
        .find_map(|p| lower.find(p).map(|i| i + p.len()))?;
    let digits: String = lower[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

/// Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)].
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_like_the_service_documents() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, None, ""), Verdict::Transient { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 413, 501] {
            assert_eq!(classify(s, None, ""), Verdict::Permanent, "{s}");
        }
    }

    #[test]
    fn the_server_wait_comes_from_the_header_or_the_message() {
        let body =
            r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 45 seconds."}"#;
        assert_eq!(
            classify(429, None, body),
            Verdict::Transient {
                server_wait: Some(Duration::from_secs(45))
            }
        );
        assert_eq!(
            classify(429, Some("7"), body),
            Verdict::Transient {
                server_wait: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            classify(
                429,
                None,
                r#"{"error":{"code":"TooManyRequests","message":"Too many requests. Retry after 3 seconds."}}"#
            ),
            Verdict::Transient {
                server_wait: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            classify(503, None, "busy"),
            Verdict::Transient { server_wait: None }
        );
    }

    #[test]
    fn backoff_is_bounded_by_its_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        for attempt in 1..40 {
            let d = b.delay(attempt);
            assert!(d <= Duration::from_secs(2));
            assert!(d <= Duration::from_millis(100) * 2u32.pow(attempt.min(20)));
        }
    }
}
