//! The quota ledger: one identity's request quota shared by every process that uploads with it,
//! through one small blob in the app's own storage account.
//!
//! The service allows 100 requests per rolling minute per identity ("All limits are applied per
//! user", Microsoft Learn, both upload API pages, "Throttling limits for the API"). On Flex
//! Consumption every queue-triggered function scales out on its own, so several handler
//! instances, and a `ti-ingest upload` or `pull` on a workstation with the same identity, draw
//! on that one quota. Each process's own [`Pacer`] only sees its own requests; the ledger is the
//! pacer's sliding log moved into storage, so every process schedules against the same log.
//!
//! The blob (`<reports container>/quota/<tenant>/<object id>/<audience>.json`, one per identity
//! and API) holds the start times (wall clock, ms since the Unix epoch) of the last requests
//! reserved by anyone, plus the shared pause and share cut after a 429. A process reserves as
//! many start times as it has requests waiting: it reads the blob and its ETag, appends the
//! earliest times the sliding window allows (request k+limit at least one window after request
//! k: the same rule as the service's limiter), and writes it back with `If-Match: <ETag>` (or
//! `If-None-Match: *` to create it). Blob storage performs a write with `If-Match` only when the
//! blob's ETag still matches, and answers 412 (Precondition Failed) otherwise; with
//! `If-None-Match: *` only when no blob exists, else 409 (Microsoft Learn, "Specifying
//! conditional headers for Blob service operations",
//! learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations;
//! "Manage concurrency in Blob Storage", learn.microsoft.com/azure/storage/blobs/concurrency-manage,
//! optimistic concurrency). So two processes can never both append to the same version of the
//! log: the loser reads again and appends after the winner's times. Each process then waits for
//! its own times and sends at them.
//!
//! Times are reserved a little ahead of "now" (the round trip of the last write, so the request
//! is not late for its own slot) and the window is kept 0.5 % longer than the service's, as the
//! pacer does, so the jitter between our clocks and the service's arrival time cannot push
//! request k+limit into request k's window. The clocks of the processes must agree to well
//! within that margin (0.3 s at the real minute): Azure's hosts and a workstation synchronise
//! with NTP; a clock far off costs 429s (handled below), never records.
//!
//! A 429 still happens when something outside the ledger uses the identity (another tool, a
//! process with `TI_QUOTA_LEDGER=off`): the process that got it pauses, cuts the shared share by
//! a quarter once per event, and writes both into the ledger, so every process waits and slows
//! down together; each quiet window gives a tenth back (the pacer's AIMD, shared).
//!
//! When the ledger cannot be reached (storage down, no role on the container, a token without
//! the claims that name the identity), the process falls back to its own adaptive [`Pacer`] with
//! one warning and tries the ledger again a window later. The ledger never fails a record.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use azure_core::http::{ClientOptions, Etag, RequestContent, RetryOptions, StatusCode};
use azure_storage_blob::models::BlobClientUploadOptions;
use azure_storage_blob::{BlobContainerClient, BlobServiceClient, BlobServiceClientOptions};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use super::pacer::Pacer;
use crate::auth::{self, Credential};
use crate::settings::Env;
use crate::upload::UploadSettings;

/// The ledger blobs' folder in the reports container (beside `runs/`, `messages/`, `poison/`).
pub const LEDGER_PREFIX: &str = "quota/";

/// Attempts of one reservation before it counts as "cannot be reached": each failed attempt
/// means another process wrote in between, i.e. the ledger is working, just busy.
const MAX_CONFLICTS: u32 = 64;

/// Where the ledgers live: the app's storage account, one client for every lane of the process.
#[derive(Clone)]
pub struct LedgerStore {
    container: Arc<BlobContainerClient>,
    /// `<account URL>/<container>`, for messages.
    location: String,
}

impl std::fmt::Debug for LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerStore")
            .field("location", &self.location)
            .finish()
    }
}

impl LedgerStore {
    /// The ledger store in `container` of the account at `blob_url`. The SDK's own retries are
    /// off: a ledger that does not answer at once is replaced by the local pacer, not waited for.
    pub fn new(blob_url: &Url, container: &str, credential: Credential) -> Result<Self> {
        let options = BlobServiceClientOptions {
            client_options: ClientOptions {
                retry: RetryOptions::none(),
                ..Default::default()
            },
            ..Default::default()
        };
        let service = BlobServiceClient::new(blob_url.clone(), Some(credential), Some(options))
            .context("creating the quota ledger's blob client")?;
        Ok(LedgerStore {
            container: Arc::new(service.blob_container_client(container)),
            location: format!("{}/{container}", blob_url.as_str().trim_end_matches('/')),
        })
    }

    /// The store the environment names (the app's storage settings and `TI_QUOTA_LEDGER`), or
    /// `None` when this process paces alone.
    pub fn from_env(env: &Env, credential: &Credential) -> Result<Option<Self>> {
        match crate::settings::quota_ledger_location(env)? {
            Some((url, container)) => Ok(Some(Self::new(&url, &container, credential.clone())?)),
            None => Ok(None),
        }
    }

    /// The ledger of one lane (one identity at one API).
    pub(crate) fn ledger(
        &self,
        scope: &'static str,
        credential: Credential,
        settings: &UploadSettings,
        limit: u32,
    ) -> Ledger {
        Ledger {
            store: self.clone(),
            credential,
            scope,
            limit: limit.max(1) as usize,
            window_ms: millis(settings.rate_window + settings.rate_window / 200),
            op_timeout: (settings.rate_window / 6)
                .clamp(Duration::from_secs(2), Duration::from_secs(10)),
            prefetch: (settings.max_concurrency / 2).max(1),
            inner: Arc::new(Inner::default()),
        }
    }
}

/// The shared state, as stored in the blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerState {
    /// Reserved start times (ms since the Unix epoch), in order; the last `limit` within a
    /// window of the latest reservation are kept.
    pub starts: VecDeque<u64>,
    /// No request starts before this (a 429's stated wait).
    #[serde(default)]
    pub paused_until: u64,
    /// The share in force after 429s; `None` = the whole quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<usize>,
    /// 429s until then belong to the event that already cut `current`.
    #[serde(default)]
    pub cut_until: u64,
    /// The last step back up; the next comes a window later.
    #[serde(default)]
    pub last_raise: u64,
}

impl LedgerState {
    /// Appends `want` start times, each the earliest the sliding window allows at or after
    /// `earliest` (and after every time already reserved), and returns them.
    pub fn reserve(&mut self, earliest: u64, want: usize, limit: usize, window: u64) -> Vec<u64> {
        let current = self.current.unwrap_or(limit).clamp(1, limit);
        let quiet_since = self.cut_until.max(self.last_raise);
        let current = if current < limit && earliest >= quiet_since + window {
            self.last_raise = earliest;
            (current + limit.div_ceil(10)).min(limit)
        } else {
            current
        };
        self.current = (current < limit).then_some(current);
        let mut out = Vec::with_capacity(want);
        for _ in 0..want {
            let mut t = earliest.max(self.paused_until);
            if let Some(&last) = self.starts.back() {
                t = t.max(last);
            }
            if self.starts.len() >= current {
                t = t.max(self.starts[self.starts.len() - current] + window);
            }
            self.starts.push_back(t);
            out.push(t);
        }
        // Only the last `limit` can bind the next time, and only those less than a window
        // before the earliest next one: the blob stays small whatever the limit.
        while self.starts.len() > limit
            || self.starts.front().is_some_and(|t| t + window <= earliest)
        {
            self.starts.pop_front();
        }
        out
    }

    /// A 429 at `now` with the service's stated `wait`: everyone pauses; the share is cut by a
    /// quarter once per event.
    pub fn throttled(&mut self, now: u64, wait: u64, limit: usize) {
        let until = now + wait;
        self.paused_until = self.paused_until.max(until);
        if now >= self.cut_until {
            let current = self.current.unwrap_or(limit).clamp(1, limit);
            self.current = Some((current * 3 / 4).max(1));
            self.cut_until = until;
        }
    }
}

/// One lane's view of its ledger.
#[derive(Clone)]
pub(crate) struct Ledger {
    store: LedgerStore,
    credential: Credential,
    scope: &'static str,
    limit: usize,
    window_ms: u64,
    op_timeout: Duration,
    /// Times reserved per round at least: a process with requests flowing needs one per
    /// request, and one storage round per request would make the round trip the bottleneck.
    prefetch: usize,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("location", &self.store.location)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Inner {
    local: Mutex<Local>,
    /// One reservation round at a time per process: waiters that arrive meanwhile are served
    /// by it (it reserves for every waiter) instead of contending with each other.
    round: tokio::sync::Mutex<()>,
    /// Callers of [`Ledger::acquire`] without a start time yet.
    waiting: AtomicUsize,
}

#[derive(Debug, Default)]
struct Local {
    /// The blob's name, once the token's claims have named the identity.
    blob: Option<String>,
    /// Start times reserved and not yet handed to a caller.
    pool: VecDeque<u64>,
    /// After a 429: this process sends nothing before then.
    paused_until: u64,
    /// The ledger could not be reached: pace locally until then.
    fallback_until: Option<Instant>,
    /// How far ahead of "now" times are reserved: twice the last write's round trip.
    lead_ms: u64,
    /// The blob as this process last wrote it, and its ETag: the next round tries it without
    /// reading first (one request instead of two while no other process writes in between).
    cached: Option<(LedgerState, Etag)>,
    /// The ledger failed and has not answered since: one warning per outage.
    outage: bool,
    /// Statistics for tests and the benchmark.
    stats: LedgerStats,
}

/// What a ledger did in this process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LedgerStats {
    /// Start times reserved through the ledger.
    pub reserved: u64,
    /// Writes refused because another process wrote first (412/409), each retried.
    pub conflicts: u64,
    /// Writes that won, and their total time from the first read (ms).
    pub writes: u64,
    pub write_ms: u64,
    /// Outages: times the ledger failed after answering (or before ever answering) and the
    /// local pacer took over, each with one warning.
    pub fallbacks: u64,
}

/// Why a reservation failed.
#[derive(Debug)]
enum WriteError {
    /// Another process wrote first (412, or 409 on create): read again.
    Conflict,
    Other(anyhow::Error),
}

fn now_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counts a caller as waiting while it has no start time (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The blob name for an identity (the token's `tid` and `oid`) at an audience.
fn blob_name(token: &str, scope: &str) -> Result<String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow!("the token is not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("the token's claims are not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).context("the token's claims are not JSON")?;
    let claim = |name: &str| -> Result<String> {
        let v = claims[name]
            .as_str()
            .ok_or_else(|| anyhow!("the token has no {name} claim"))?;
        Ok(safe(v))
    };
    let audience = scope
        .trim_start_matches("https://")
        .trim_end_matches("/.default")
        .trim_end_matches('/');
    Ok(format!(
        "{LEDGER_PREFIX}{}/{}/{}.json",
        claim("tid")?,
        claim("oid")?,
        safe(audience)
    ))
}

/// A blob-name segment: letters, digits, '-' and '.' kept, anything else '_'.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Ledger {
    /// What this ledger did so far in this process.
    pub fn stats(&self) -> LedgerStats {
        self.inner.local.lock().expect("ledger lock").stats
    }

    /// Waits until one more request may start, by the ledger, or by `local` while the ledger
    /// cannot be reached.
    pub async fn acquire(&self, local: &Pacer) {
        let mut waiting = None;
        loop {
            if self.in_fallback() {
                drop(waiting);
                local.acquire().await;
                return;
            }
            waiting.get_or_insert_with(|| Waiting::new(&self.inner.waiting));
            if let Some(t) = self.take_slot() {
                // Holding a time: no longer waiting for one.
                waiting = None;
                tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))).await;
                // A 429 while we slept: this time may fall in the pause; take a later one.
                if self.inner.local.lock().expect("ledger lock").paused_until > t {
                    continue;
                }
                local.record_start().await;
                return;
            }
            let _round = self.inner.round.lock().await;
            if self.in_fallback()
                || !self
                    .inner
                    .local
                    .lock()
                    .expect("ledger lock")
                    .pool
                    .is_empty()
            {
                continue;
            }
            let want = self.inner.waiting.load(Ordering::SeqCst).max(self.prefetch);
            match self.reserve(want).await {
                Ok(times) => {
                    let mut l = self.inner.local.lock().expect("ledger lock");
                    l.stats.reserved += times.len() as u64;
                    l.pool.extend(times);
                }
                Err(e) => self.fall_back(&e),
            }
        }
    }

    /// The service said 429 with this wait: this process pauses at once, and the ledger is told
    /// so every process pauses and takes a smaller share.
    pub async fn throttled(&self, wait: Duration) {
        let now = now_ms();
        let until = now + millis(wait);
        {
            let mut l = self.inner.local.lock().expect("ledger lock");
            l.paused_until = l.paused_until.max(until);
            // Times reserved before the pause would only draw more 429s.
            l.pool.retain(|t| *t >= until);
            if l.fallback_until.is_some() {
                return;
            }
        }
        let limit = self.limit;
        if let Err(e) = self
            .update(|state| {
                state.throttled(now, millis(wait), limit);
                Vec::new()
            })
            .await
        {
            self.fall_back(&e);
        }
    }

    fn in_fallback(&self) -> bool {
        let mut l = self.inner.local.lock().expect("ledger lock");
        match l.fallback_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                l.fallback_until = None;
                false
            }
            None => false,
        }
    }

    /// The earliest reserved time not yet handed out; times already past by more than the
    /// window's margin are dropped: sent that late, the request could land in the service's
    /// window of its successor a window on, and a 429 pauses everyone for seconds, while a
    /// dropped time costs one request's turn.
    fn take_slot(&self) -> Option<u64> {
        let tolerance = self.window_ms / 200;
        let now = now_ms();
        let mut l = self.inner.local.lock().expect("ledger lock");
        while let Some(t) = l.pool.pop_front() {
            if t + tolerance >= now && t >= l.paused_until {
                return Some(t);
            }
        }
        None
    }

    fn fall_back(&self, e: &anyhow::Error) {
        let mut l = self.inner.local.lock().expect("ledger lock");
        l.pool.clear();
        if !l.outage {
            l.outage = true;
            l.stats.fallbacks += 1;
            tracing::warn!(
                ledger = %self.store.location,
                scope = self.scope,
                error = %format!("{e:#}"),
                "the quota ledger cannot be reached: this process paces its requests alone (adaptive pacing) and tries the ledger again in a window"
            );
        }
        l.fallback_until = Some(Instant::now() + Duration::from_millis(self.window_ms));
    }

    async fn reserve(&self, want: usize) -> Result<Vec<u64>> {
        let (limit, window) = (self.limit, self.window_ms);
        self.update(|state| {
            let now = now_ms();
            let lead = self.inner.local.lock().expect("ledger lock").lead_ms;
            // A time sent late by the write's round trip matters only if the window fills
            // (its successor a window on is then on time): reserve ahead once a sixteenth of
            // the quota is in use, so a process far below it (a few requests a minute, or a
            // simulator's huge quota) pays no waiting.
            let busy = state.starts.iter().filter(|t| **t + window > now).count() + want;
            let earliest = if busy * 16 >= limit { now + lead } else { now };
            state.reserve(earliest, want, limit, window)
        })
        .await
    }

    /// Read, change, write with the read's ETag as the condition, until a write wins.
    async fn update(
        &self,
        mut change: impl FnMut(&mut LedgerState) -> Vec<u64>,
    ) -> Result<Vec<u64>> {
        let blob = self.blob().await?;
        let client = self.store.container.blob_client(&blob);
        let first = Instant::now();
        let mut cached = self.inner.local.lock().expect("ledger lock").cached.take();
        for attempt in 0..MAX_CONFLICTS {
            let (mut state, etag) = match cached.take() {
                Some((state, etag)) => (state, Some(etag)),
                None => {
                    let read = Instant::now();
                    let r = self.read(&client).await?;
                    // Before the first write, the read's round trip stands in for its own.
                    let mut l = self.inner.local.lock().expect("ledger lock");
                    if l.lead_ms == 0 {
                        l.lead_ms = (2 * millis(read.elapsed()) + 2).min(self.window_ms / 20);
                    }
                    r
                }
            };
            let times = change(&mut state);
            let body = serde_json::to_vec(&state).context("serialising the quota ledger")?;
            let started = Instant::now();
            match self.write(&client, body, etag).await {
                Ok(new_etag) => {
                    let trip = millis(started.elapsed());
                    let mut l = self.inner.local.lock().expect("ledger lock");
                    l.stats.writes += 1;
                    l.stats.write_ms += millis(first.elapsed());
                    // Reserve ahead by twice the last write's round trip, so a time is not
                    // already past when its reservation lands; at most a twentieth of the
                    // window.
                    l.lead_ms = (2 * trip + 2).min(self.window_ms / 20);
                    // Worth trying unread next time only while nobody else is writing.
                    l.cached = match (attempt, new_etag) {
                        (0, Some(etag)) => Some((state, etag)),
                        _ => None,
                    };
                    if l.outage {
                        l.outage = false;
                        tracing::info!(ledger = %self.store.location, scope = self.scope, "the quota ledger answers again: requests take their turns through it");
                    }
                    return Ok(times);
                }
                Err(WriteError::Conflict) => {
                    self.inner
                        .local
                        .lock()
                        .expect("ledger lock")
                        .stats
                        .conflicts += 1;
                    // Spread the retries of processes that lost the same race.
                    let ms = rand::random_range(0..=(1u64 << attempt.min(5)));
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(WriteError::Other(e)) => return Err(e),
            }
        }
        bail!("{MAX_CONFLICTS} writes of the quota ledger in a row lost to other processes")
    }

    /// The blob's name, from the token's claims on first use.
    async fn blob(&self) -> Result<String> {
        if let Some(b) = &self.inner.local.lock().expect("ledger lock").blob {
            return Ok(b.clone());
        }
        let token = auth::bearer(&self.credential, self.scope).await?;
        let name = blob_name(&token, self.scope).context("naming the identity's quota ledger")?;
        self.inner.local.lock().expect("ledger lock").blob = Some(name.clone());
        Ok(name)
    }

    async fn read(
        &self,
        client: &azure_storage_blob::BlobClient,
    ) -> Result<(LedgerState, Option<Etag>)> {
        let read = async {
            match client.download(None).await {
                Ok(r) => {
                    let etag = r.properties.etag.clone();
                    let bytes = r.body.collect().await?;
                    Ok(Some((bytes, etag)))
                }
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => match e.kind() {
                    azure_core::error::ErrorKind::HttpResponse {
                        error_code: Some(code),
                        ..
                    } if code.as_str() == "ContainerNotFound" => Err(e),
                    _ => Ok(None),
                },
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(self.op_timeout, read).await {
            Err(_) => bail!(
                "reading the quota ledger at {} took over {:?}",
                self.store.location,
                self.op_timeout
            ),
            Ok(Err(e)) => Err(e)
                .with_context(|| format!("reading the quota ledger at {}", self.store.location)),
            Ok(Ok(None)) => Ok((LedgerState::default(), None)),
            Ok(Ok(Some((bytes, etag)))) => {
                // A blob we cannot read (another version's, damaged) is started afresh: the
                // worst case is one window of 429s, never a stuck ledger.
                let state = serde_json::from_slice(&bytes).unwrap_or_default();
                Ok((state, etag))
            }
        }
    }

    async fn write(
        &self,
        client: &azure_storage_blob::BlobClient,
        body: Vec<u8>,
        etag: Option<Etag>,
    ) -> std::result::Result<Option<Etag>, WriteError> {
        let options = match etag {
            Some(etag) => BlobClientUploadOptions {
                if_match: Some(etag),
                blob_content_type: Some("application/json".into()),
                ..Default::default()
            },
            None => BlobClientUploadOptions {
                blob_content_type: Some("application/json".into()),
                ..Default::default()
            }
            .if_not_exists(),
        };
        let write = client.upload(RequestContent::from(body), Some(options));
        match tokio::time::timeout(self.op_timeout, write).await {
            Err(_) => Err(WriteError::Other(anyhow!(
                "writing the quota ledger at {} took over {:?}",
                self.store.location,
                self.op_timeout
            ))),
            Ok(Ok(r)) => Ok(r.etag),
            Ok(Err(e))
                if matches!(
                    e.http_status(),
                    Some(StatusCode::PreconditionFailed) | Some(StatusCode::Conflict)
                ) =>
            {
                Err(WriteError::Conflict)
            }
            Ok(Err(e)) => Err(WriteError::Other(anyhow::Error::new(e).context(format!(
                "writing the quota ledger at {}",
                self.store.location
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_300;

    #[test]
    fn the_first_limit_start_at_once_then_one_window_after_their_predecessor() {
        let mut s = LedgerState::default();
        let first = s.reserve(1_000, 100, 100, W);
        assert_eq!(first, vec![1_000; 100]);
        // Another process asks later: request 101 waits for request 1's window to pass.
        let next = s.reserve(5_000, 3, 100, W);
        assert_eq!(next, vec![1_000 + W; 3]);
        assert_eq!(s.starts.len(), 100, "only the last `limit` are kept");
        // Times never go backwards, whoever asks with an earlier clock.
        let late = s.reserve(2_000, 1, 100, W);
        assert_eq!(late, vec![1_000 + W]);
    }

    #[test]
    fn evenly_spread_requests_never_put_more_than_limit_in_any_window() {
        let mut s = LedgerState::default();
        let mut all = Vec::new();
        // Three processes take turns asking for 1, 2 and 5 times, 1,000 requests in all.
        let mut now = 0;
        while all.len() < 1_000 {
            for want in [1, 2, 5] {
                all.extend(s.reserve(now, want, 100, W));
                now += 7;
            }
        }
        for (i, t) in all.iter().enumerate() {
            let in_window = all[i..].iter().take_while(|u| **u < t + W).count();
            assert!(
                in_window <= 100,
                "{in_window} starts in the window from {t}"
            );
        }
        // And the quota is used: request k+100 starts exactly one window after request k.
        assert_eq!(all[100], all[0] + W);
        assert_eq!(all[900], all[800] + W);
    }

    #[test]
    fn times_a_window_old_are_forgotten() {
        let mut s = LedgerState::default();
        s.reserve(0, 10, 100_000, W);
        assert_eq!(s.starts.len(), 10);
        // A window later none of them can bind any more: only the new one is kept.
        assert_eq!(s.reserve(W, 1, 100_000, W), vec![W]);
        assert_eq!(s.starts, VecDeque::from([W]));
    }

    #[test]
    fn a_429_pauses_everyone_cuts_once_and_quiet_windows_give_back() {
        let mut s = LedgerState::default();
        s.reserve(0, 10, 100, W);
        // Four requests in flight come back 429 with a 10 s wait: one event, one cut.
        for _ in 0..4 {
            s.throttled(1_000, 10_000, 100);
        }
        assert_eq!(s.current, Some(75));
        assert_eq!(s.paused_until, 11_000);
        assert_eq!(s.reserve(2_000, 1, 100, W), vec![11_000]);
        // A 429 after the pause is a new event.
        s.throttled(12_000, 1_000, 100);
        assert_eq!(s.current, Some(56));
        // A quiet window later, a tenth comes back on the next reservation.
        s.reserve(13_000 + W, 1, 100, W);
        assert_eq!(s.current, Some(66));
        // With 66 in force, the 67th time since waits for a window after the 1st of them.
        let mut s = LedgerState {
            current: Some(2),
            cut_until: u64::MAX / 2,
            ..Default::default()
        };
        assert_eq!(s.reserve(0, 3, 100, W), vec![0, 0, W]);
    }

    #[test]
    fn the_state_reads_back_as_written_and_a_foreign_blob_is_started_afresh() {
        let mut s = LedgerState::default();
        s.reserve(5, 2, 100, W);
        s.throttled(10, 1_000, 100);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"starts":[5,5],"pausedUntil":1010,"current":75,"cutUntil":1010,"lastRaise":0}"#
        );
        assert_eq!(serde_json::from_str::<LedgerState>(&text).unwrap(), s);
        assert!(serde_json::from_slice::<LedgerState>(b"not json").is_err());
    }

    #[test]
    fn the_blob_is_named_by_the_tokens_tenant_and_object_id_and_the_audience() {
        let claims = serde_json::json!({"tid": "72f988bf-0000-4000-8000-000000000001", "oid": "0b1e0000-0000-4000-8000-00000000abcd", "aud": "x"});
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).unwrap());
        let token = format!("e30.{payload}.sig");
        assert_eq!(
            blob_name(&token, "https://management.azure.com/.default").unwrap(),
            "quota/72f988bf-0000-4000-8000-000000000001/0b1e0000-0000-4000-8000-00000000abcd/management.azure.com.json"
        );
        let e = blob_name("opaque", "https://graph.microsoft.com/.default").unwrap_err();
        assert_eq!(e.to_string(), "the token is not a JWT");
        let no_oid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"tid":"t"}"#);
        let e = blob_name(&format!("a.{no_oid}.b"), "s").unwrap_err();
        assert_eq!(e.to_string(), "the token has no oid claim");
    }
}
