//! The outbound stack every target shares, owned once per identity and API:
//! concurrency → rate limit → retry → timeout → client.
//!
//! A [`Lane`] is the quota of one identity at one API (token audience): its [`Pacer`], its
//! concurrency slots and, when the process is given the app's storage, the shared quota
//! [`Ledger`](super::ledger) through which every process with that identity takes its turns
//! (the pacer then only stands in while the ledger cannot be reached). The [`Uploader`](super::Uploader) builds one lane per audience and hands
//! the same lane to every target that calls that audience, so `sentinel-stix` and
//! `sentinel-indicators` side by side still share one quota, and every clone of the Uploader
//! (one per invocation) shares them too.
//!
//! [`Outbound::post`] runs one request to completion: it retries transient failures (408, 429,
//! 5xx, network, token) within the attempt and time budgets and returns either the service's
//! final answer (2xx or a permanent status, for the target's mapping to read) or why it gave up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ti_core::report::Code;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::ledger::{Ledger, LedgerStats};
use super::pacer::Pacer;
use super::retry::{self, Backoff, Verdict};
use super::target::Spec;
use crate::auth::{self, Credential};
use crate::upload::UploadSettings;

/// One request's timeout; a slow answer is retried like a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(100);

/// The quota of one identity at one API, shared by everything that calls it.
#[derive(Debug, Clone)]
pub struct Lane {
    /// This process's own pacer: the pacing when there is no ledger or it cannot be reached.
    pub pacer: Pacer,
    /// The quota shared with every other process of the identity (src/upload/ledger.rs).
    ledger: Option<Ledger>,
    /// Requests in flight at once (`TI_MAX_CONCURRENCY`), whatever the number of invocations.
    slots: Arc<Semaphore>,
}

impl Lane {
    pub fn new(settings: &UploadSettings) -> Self {
        Self::with_ledger(settings.max_requests_per_minute, settings, None)
    }

    /// A lane of `limit` requests per window, shared with other processes through `ledger`.
    pub(crate) fn with_ledger(
        limit: u32,
        settings: &UploadSettings,
        ledger: Option<Ledger>,
    ) -> Self {
        Lane {
            pacer: Pacer::new(limit, settings.rate_window),
            ledger,
            slots: Arc::new(Semaphore::new(settings.max_concurrency)),
        }
    }

    /// The requests per minute of `spec`'s API: `TI_MAX_REQUESTS_PER_MINUTE`, or the API's own
    /// lower quota.
    pub fn limit_for(spec: &Spec, settings: &UploadSettings) -> u32 {
        spec.max_requests_per_minute
            .map_or(settings.max_requests_per_minute, |own| {
                own(settings).min(settings.max_requests_per_minute)
            })
    }

    /// Waits until one more request may start: the ledger's turn, else the local pacer's.
    pub async fn acquire(&self) {
        match &self.ledger {
            Some(l) => l.acquire(&self.pacer).await,
            None => self.pacer.acquire().await,
        }
    }

    /// The service said 429 with this wait: everyone using the quota slows down.
    pub async fn slow_down(&self, wait: Duration) {
        self.pacer.slow_down(wait).await;
        if let Some(l) = &self.ledger {
            l.throttled(wait).await;
        }
    }

    /// What the shared ledger did in this process (`None`: the lane has none).
    pub fn ledger_stats(&self) -> Option<LedgerStats> {
        self.ledger.as_ref().map(Ledger::stats)
    }
}

/// How one batch's request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_retry_time: Duration,
    pub backoff: Backoff,
}

impl RetryPolicy {
    pub fn from_settings(settings: &UploadSettings) -> Self {
        RetryPolicy {
            max_attempts: settings.max_attempts,
            max_retry_time: settings.max_retry_time,
            backoff: Backoff::default(),
        }
    }
}

/// The final result of [`Outbound::post`].
#[derive(Debug)]
pub enum Sent {
    /// The service answered with a 2xx or a permanent (not retryable) status; `error_code` is
    /// its `x-ms-error-code` header, when it sent one.
    Answer {
        status: u16,
        body: Bytes,
        error_code: Option<String>,
    },
    /// Transient failures outlasted the budget: `AuthFailed` or `RetriesExhausted`.
    GaveUp { code: Code, message: String },
}

/// A client for one API with one identity: the token scope, the shared lane, the retry policy.
#[derive(Debug, Clone)]
pub struct Outbound {
    http: reqwest::Client,
    credential: Credential,
    scope: &'static str,
    lane: Lane,
    policy: RetryPolicy,
}

/// The result of one attempt.
enum Attempt {
    Final(Sent),
    Retry {
        server_wait: Option<Duration>,
        why: String,
    },
}

/// The HTTP client every target uses (connection pool shared by clones).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    crate::install_crypto_provider();
    use anyhow::Context;
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("ti-ingest/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

impl Outbound {
    pub fn new(
        http: reqwest::Client,
        credential: Credential,
        scope: &'static str,
        lane: Lane,
        policy: RetryPolicy,
    ) -> Self {
        Outbound {
            http,
            credential,
            scope,
            lane,
            policy,
        }
    }

    pub fn scope(&self) -> &'static str {
        self.scope
    }

    /// POSTs `body` (JSON) to `url` until a final answer, the attempt or time budget, or
    /// `deadline` (the invocation's own) says stop.
    pub async fn post(&self, url: &str, body: Bytes, deadline: Option<Instant>) -> Sent {
        let started = Instant::now();
        let budget_end = match deadline {
            Some(d) => d.min(started + self.policy.max_retry_time),
            None => started + self.policy.max_retry_time,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (server_wait, why) = match self.attempt(url, body.clone()).await {
                Attempt::Final(sent) => return sent,
                Attempt::Retry { server_wait, why } => (server_wait, why),
            };
            if let Some(w) = server_wait {
                // The quota is per identity: everyone in the process waits, not just this batch.
                self.lane.slow_down(w).await;
            }
            let wait = server_wait.unwrap_or_else(|| self.policy.backoff.delay(attempt));
            if attempt >= self.policy.max_attempts || Instant::now() + wait > budget_end {
                let code = if why.starts_with("token:") {
                    Code::AuthFailed
                } else {
                    Code::RetriesExhausted
                };
                tracing::warn!(
                    attempts = attempt,
                    scope = self.scope,
                    "giving up on a request after transient failures"
                );
                return Sent::GaveUp {
                    code,
                    message: format!(
                        "not uploaded after {attempt} attempt(s) in {:.0?}: last failure: {why}",
                        started.elapsed()
                    ),
                };
            }
            tracing::debug!(attempt, ?wait, %why, "retrying a request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, url: &str, body: Bytes) -> Attempt {
        let token = match auth::bearer(&self.credential, self.scope).await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry {
                    server_wait: None,
                    why: format!("token: {e:#}"),
                }
            }
        };
        // A slot first, then the pacer: the pacer records the start as late as possible, so
        // the spacing it keeps is the spacing the service sees.
        let _slot = self
            .lane
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.lane.acquire().await;
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    server_wait: None,
                    why: format!("request failed: {}", without_url(&e)),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let error_code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    server_wait: None,
                    why: format!("reading the answer failed: {}", without_url(&e)),
                }
            }
        };
        if (200..300).contains(&status) {
            return Attempt::Final(Sent::Answer {
                status,
                body: bytes,
                error_code,
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        match retry::classify(status, retry_after.as_deref(), &text) {
            Verdict::Transient { server_wait } => Attempt::Retry {
                server_wait,
                why: format!(
                    "HTTP {status}: {}",
                    text.chars().take(500).collect::<String>()
                ),
            },
            Verdict::Permanent => {
                tracing::error!(status, scope = self.scope, "the service refused a request");
                Attempt::Final(Sent::Answer {
                    status,
                    body: bytes,
                    error_code,
                })
            }
        }
    }
}

/// reqwest errors print the URL; ours carries no secret, but keep messages short and stable.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}
