//! The service call for `sentinel-stix`: token → pacer → POST → retry decision.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use ti_core::report::Code;
use tokio::time::Instant;

use super::{mapping, request};
use crate::auth::{self, Credential};
use crate::settings::UploadSettings;
use crate::upload::pacer::Pacer;
use crate::upload::retry::{self, Backoff, Verdict};
use crate::upload::BatchOutcome;

/// One request's timeout; a slow answer is retried like a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(100);

#[derive(Debug)]
pub struct SentinelStix {
    http: reqwest::Client,
    credential: Credential,
    pacer: Pacer,
    url: String,
    scope: &'static str,
    source_system: String,
    max_attempts: u32,
    max_retry_time: Duration,
    backoff: Backoff,
}

/// The result of one attempt.
enum Attempt {
    Done(BatchOutcome),
    Retry {
        server_wait: Option<Duration>,
        why: String,
    },
}

impl SentinelStix {
    pub fn new(settings: &UploadSettings, credential: Credential) -> anyhow::Result<Self> {
        let workspace = settings.require_workspace()?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("ti-ingest/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(SentinelStix {
            http,
            credential,
            pacer: Pacer::per_minute(settings.max_requests_per_minute),
            url: request::url(&settings.api_base_url, workspace, &settings.api_version),
            scope: settings.cloud.management_scope(),
            source_system: settings.source_system.clone(),
            max_attempts: settings.max_attempts,
            max_retry_time: settings.max_retry_time,
            backoff: Backoff::default(),
        })
    }

    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let body = request::encode(&self.source_system, objects);
        let started = Instant::now();
        let budget_end = match deadline {
            Some(d) => d.min(started + self.max_retry_time),
            None => started + self.max_retry_time,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (server_wait, why) = match self.attempt(&body, objects.len()).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Retry { server_wait, why } => (server_wait, why),
            };
            if let Some(w) = server_wait {
                // The quota is per identity: everyone in the process waits, not just this batch.
                self.pacer.pause_for(w).await;
            }
            let wait = server_wait.unwrap_or_else(|| self.backoff.delay(attempt));
            let give_up = attempt >= self.max_attempts || Instant::now() + wait > budget_end;
            if give_up {
                let code = if why.starts_with("token:") {
                    Code::AuthFailed
                } else {
                    Code::RetriesExhausted
                };
                tracing::warn!(
                    attempts = attempt,
                    objects = objects.len(),
                    "giving up on a batch after transient failures"
                );
                return mapping::whole_batch(
                    code,
                    format!(
                        "not uploaded after {attempt} attempt(s) in {:.0?}: last failure: {why}",
                        started.elapsed()
                    ),
                    objects.len(),
                );
            }
            tracing::debug!(attempt, ?wait, %why, "retrying a batch");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, body: &[u8], batch_len: usize) -> Attempt {
        let token = match auth::bearer(&self.credential, self.scope).await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry {
                    server_wait: None,
                    why: format!("token: {e:#}"),
                }
            }
        };
        self.pacer.acquire().await;
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
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
            return Attempt::Done(mapping::map_success(batch_len, &bytes));
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
                tracing::error!(status, objects = batch_len, "the service refused a batch");
                Attempt::Done(mapping::whole_batch(
                    mapping::permanent_code(status),
                    mapping::permanent_message(status, &text),
                    batch_len,
                ))
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
