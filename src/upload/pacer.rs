//! The request pacer: one per identity, shared by every invocation in the process, so the quota
//! (100 requests per rolling minute per identity) is respected whatever runs concurrently.
//!
//! A sliding window of the last N request start times: a request may start when fewer than N
//! started within the window. When the service says "slow down" (a 429 with a stated wait), the
//! whole process pauses until then, because the quota is shared, and a single caller backing off
//! alone would let the others keep hitting the limit (a retry storm).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    starts: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// Cheap to clone; clones share one quota.
#[derive(Debug, Clone)]
pub struct Pacer {
    limit: usize,
    window: Duration,
    state: Arc<Mutex<State>>,
}

impl Pacer {
    pub fn new(requests_per_window: u32, window: Duration) -> Self {
        Pacer {
            limit: requests_per_window.max(1) as usize,
            window,
            state: Arc::new(Mutex::new(State {
                starts: VecDeque::new(),
                paused_until: None,
            })),
        }
    }

    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::new(requests_per_minute, Duration::from_secs(60))
    }

    /// Waits until one more request may start, and records its start.
    pub async fn acquire(&self) {
        loop {
            let wait_until = {
                let mut st = self.state.lock().await;
                let now = Instant::now();
                while st
                    .starts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    st.starts.pop_front();
                }
                match st.paused_until {
                    Some(p) if p > now => Some(p),
                    _ if st.starts.len() < self.limit => {
                        st.starts.push_back(now);
                        return;
                    }
                    _ => st.starts.front().map(|t| *t + self.window),
                }
            };
            if let Some(t) = wait_until {
                tokio::time::sleep_until(t).await;
            }
        }
    }

    /// Holds every caller back until `wait` has passed (the server's stated wait after a 429).
    pub async fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut st = self.state.lock().await;
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let pacer = Pacer::per_minute(100);
        let start = Instant::now();
        let times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (p, t) = (pacer.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    p.acquire().await;
                    t.lock().unwrap().push(Instant::now().duration_since(start));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = times.lock().unwrap().clone();
        times.sort();
        assert_eq!(times.len(), 320);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 100,
                "{in_window} requests in the window from {t:?}"
            );
        }
        // 320 requests at 100/min need three full windows of waiting, not more.
        assert_eq!(times.last().unwrap().as_secs(), 180);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let pacer = Pacer::per_minute(100);
        let start = Instant::now();
        pacer.pause_for(Duration::from_secs(45)).await;
        pacer.acquire().await;
        assert_eq!(Instant::now().duration_since(start).as_secs(), 45);
        pacer.acquire().await;
        assert_eq!(Instant::now().duration_since(start).as_secs(), 45);
    }
}
