//! The request pacer: one per identity and API, shared by every invocation in the process, so
//! the quota (100 requests per rolling minute per identity) is respected whatever runs
//! concurrently.
//!
//! A sliding window of the last N request start times: a request may start when fewer than N
//! started within the window. The window is kept a little longer than the service's (0.5%), so
//! the jitter between our start time and the service's arrival time cannot push request N+1
//! into the service's window of the first: that margin costs 0.5% of the quota and saves the
//! 429s.
//!
//! Several processes sharing one identity (scaled-out Function App instances, a laptop upload
//! beside the app) take their turns from the quota ledger in the app's storage
//! ([`super::ledger`]); this pacer is what a process falls back to without it (no storage
//! settings, `TI_QUOTA_LEDGER=off`, storage unreachable), and it is adaptive for that case:
//! when the service says "slow down" (a 429 with a stated wait),
//! the whole process pauses until then, because the quota is shared and a single caller backing
//! off alone would let the others keep hitting the limit (a retry storm); and the process's own
//! share of the quota is cut by a quarter. Each window without a 429 gives a tenth of the quota
//! back, up to the configured limit (additive increase, multiplicative decrease, like TCP), so
//! N processes settle near 1/N of the quota each, and one alone recovers all of it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    starts: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// The limit in force now: the configured one, or less after 429s.
    current: usize,
    /// 429s until then belong to the throttling event that already cut `current`.
    cut_until: Option<Instant>,
    /// The last step back up; the next comes a window later.
    last_raise: Option<Instant>,
}

impl State {
    /// Drops the starts a whole window before `now`: they no longer count against the quota.
    fn forget_starts_before(&mut self, now: Instant, window: Duration) {
        while self
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.starts.pop_front();
        }
    }
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
        let limit = requests_per_window.max(1) as usize;
        Pacer {
            limit,
            window: window + window / 200,
            state: Arc::new(Mutex::new(State {
                starts: VecDeque::new(),
                paused_until: None,
                current: limit,
                cut_until: None,
                last_raise: None,
            })),
        }
    }

    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::new(requests_per_minute, Duration::from_secs(60))
    }

    /// The limit in force now (lower than configured for a while after a 429).
    pub async fn current_limit(&self) -> usize {
        self.state.lock().await.current
    }

    /// Waits until one more request may start, and records its start.
    pub async fn acquire(&self) {
        loop {
            let wait_until = {
                let mut st = self.state.lock().await;
                let now = Instant::now();
                st.forget_starts_before(now, self.window);
                let quiet_since = st.cut_until.max(st.last_raise);
                if st.current < self.limit
                    && quiet_since.is_none_or(|t| now.saturating_duration_since(t) >= self.window)
                {
                    st.current = (st.current + self.limit.div_ceil(10)).min(self.limit);
                    st.last_raise = Some(now);
                }
                match st.paused_until {
                    Some(p) if p > now => Some(p),
                    _ if st.starts.len() < st.current => {
                        st.starts.push_back(now);
                        return;
                    }
                    // `current` may have dropped below the number of recent starts: wait for
                    // enough of them to leave the window.
                    _ => {
                        let excess = st.starts.len() - st.current;
                        st.starts.get(excess).map(|t| *t + self.window)
                    }
                }
            };
            if let Some(t) = wait_until {
                tokio::time::sleep_until(t).await;
            }
        }
    }

    /// Records a start granted elsewhere (the shared quota ledger), so that if this pacer takes
    /// over it knows this process's recent requests.
    pub async fn record_start(&self) {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        st.forget_starts_before(now, self.window);
        st.starts.push_back(now);
        if st.starts.len() > self.limit {
            st.starts.pop_front();
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

    /// The service throttled us: pause everyone for its stated wait and take a smaller share of
    /// the quota for a while. The requests already in flight when the first 429 came back get
    /// 429s too; they belong to the same event, so the share is cut once per pause.
    pub async fn slow_down(&self, wait: Duration) {
        let now = Instant::now();
        let until = now + wait;
        let mut st = self.state.lock().await;
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
        }
        if st.cut_until.is_none_or(|t| now >= t) {
            st.current = (st.current * 3 / 4).max(1);
            st.cut_until = Some(until);
            tracing::info!(
                limit = st.current,
                ?wait,
                "throttled by the service: pausing every request and lowering this process's share of the quota"
            );
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

    #[tokio::test(start_paused = true)]
    async fn a_429_cuts_the_share_once_per_event_and_quiet_windows_give_it_back() {
        let pacer = Pacer::per_minute(100);
        let start = Instant::now();
        // Four requests in flight all come back 429: one event, one cut.
        for _ in 0..4 {
            pacer.slow_down(Duration::from_secs(10)).await;
        }
        assert_eq!(pacer.current_limit().await, 75);
        pacer.acquire().await;
        assert_eq!(Instant::now().duration_since(start).as_secs(), 10);
        // Another 429 after the pause is a new event.
        pacer.slow_down(Duration::from_secs(1)).await;
        assert_eq!(pacer.current_limit().await, 56);
        // Each quiet window (60.3 s) gives a tenth of the quota back, up to the limit.
        let mut seen = Vec::new();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(61)).await;
            pacer.acquire().await;
            seen.push(pacer.current_limit().await);
        }
        // The first sleep ends 60 s after the pause, just short of a whole (0.5% longer) window.
        assert_eq!(seen, vec![56, 66, 76, 86, 96, 100, 100, 100]);
    }
}
