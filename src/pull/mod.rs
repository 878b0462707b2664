//! Scheduled pulls (docs/ARCHITECTURE.md, `PullFeeds`, docs/PULL.md): TAXII 2.1 collections and HTTPS
//! feeds listed in the feeds configuration are fetched and run through the same pipeline as
//! dropped files, one report per feed per run.
//!
//! Per feed, a run: takes the feed's lease ([`state`]) — a feed another run holds is skipped —,
//! fetches only what is new ([`taxii`]: bookmark; [`https`]: conditional GET), runs the
//! pipeline, writes `pulls/<feed>/<timestamp>.report.json`, and only then advances the feed's
//! state, and only when nothing is left to retry (no fetch error, no input error, no transient
//! upload failure). So a crash, an outage or a failed upload never skips indicators: the next
//! run fetches the same records again and re-uploads them (idempotent by STIX id).
//!
//! Feeds run side by side and fail alone: a feed that cannot be reached, answers 5xx or sends
//! garbage gets a report saying so and is retried next run; the others are not held up.
//! Feed URLs come only from the configuration document, never from a message or a request.
//!
//! Layout: [`config`] (the document, typed), [`state`] (state + lease), [`taxii`], [`https`];
//! this file runs the feeds. The [`Puller`] is built once, by [`crate::startup`]; the
//! `PullFeeds` timer (`crate::functions::pull_feeds`) and `ti-ingest pull` (`crate::cli`) use it.

pub mod config;
pub mod https;
pub mod state;
pub mod taxii;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use azure_core::http::StatusCode;
use azure_storage_blob::BlobServiceClient;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde::Serialize;
use ti_core::convert::Defaults;
use ti_core::input::InputFormat;
use ti_core::report::{InputError, InputErrorCode, Lifecycle, Source, Summary};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::auth::{self, Credential};
use crate::lifecycle::{self, Snapshot};
use crate::pipeline::{
    self, empty_report, input_error_report as error_report, now_rfc3339, RunContext, RunOutcome,
};
use crate::settings::Env;
use crate::startup::Settings;
use crate::storage::Storage;
use crate::upload::Uploader;
use config::{Auth, Feed, FeedEntry, FeedSource, PullSettings};
use state::{FeedState, Lock, StateStore};

/// Feeds pulled at once: enough that one slow feed does not hold up the others, few enough
/// that they do not crowd the upload quota they share.
const PARALLEL_FEEDS: usize = 4;
/// Connecting to a feed (DNS, TCP, TLS) must not take longer than this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A feed that sends nothing for this long is treated as unreachable.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why fetching a feed failed. Each is reported with its own `inputError.code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// DNS, TCP, TLS, timeouts: nothing usable came back.
    #[error("the feed could not be reached: {0}")]
    Unreachable(String),
    #[error("the feed answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The answer is not what the protocol says (not a TAXII envelope, ...).
    #[error("the feed's answer is not usable: {0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
}

impl FetchError {
    pub fn code(&self) -> InputErrorCode {
        match self {
            FetchError::Unreachable(_) => InputErrorCode::FeedUnreachable,
            FetchError::Status { .. } => InputErrorCode::FeedHttpError,
            FetchError::Invalid(_) => InputErrorCode::FeedInvalid,
            FetchError::TooLarge(_) => InputErrorCode::InputTooLarge,
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        // reqwest's Display leaves out the cause (the DNS or TLS error); the chain has it.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        // A body cut off mid-way is a connection problem like any other.
        if e.is_decode() {
            FetchError::Invalid(message)
        } else {
            FetchError::Unreachable(message)
        }
    }
}

/// The start of an error answer's body, on one line, for the report.
async fn body_excerpt(response: reqwest::Response) -> String {
    let mut response = response;
    let mut bytes = Vec::new();
    while bytes.len() < 300 {
        match response.chunk().await {
            Ok(Some(c)) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).replace(['\r', '\n'], " ");
    if text.trim().is_empty() {
        "(no body)".into()
    } else {
        text.trim().to_string()
    }
}

/// Reads a whole (small) answer, refusing one over `max` bytes.
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|l| l > max as u64) {
        return Err(FetchError::TooLarge(format!(
            "the feed's page is {} bytes; at most {max} are accepted",
            response.content_length().unwrap_or(0)
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::from_reqwest(&e))?
    {
        if out.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(format!(
                "the feed's page is over {max} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// How one feed's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedStatus {
    /// Fetched and every record uploaded or reported; the state advanced.
    Pulled,
    /// 304: nothing to do.
    NotModified,
    /// Reported, state unchanged: the next run tries again.
    Failed,
    /// Another run holds the feed.
    Busy,
    Disabled,
}

/// One feed's result, for the logs, the handler's answer and the CLI.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedOutcome {
    pub feed: String,
    pub status: FeedStatus,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_error: Option<InputError>,
    /// The reports-container path of the report (`pulls/<feed>/<ts>.report.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Records left to a later run because transient upload failures outlasted the retries.
    pub transient: usize,
    /// A list feed's retirements and refreshes (README, "Indicator lifecycle").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

impl FeedOutcome {
    fn without_report(feed: &str, status: FeedStatus) -> Self {
        FeedOutcome {
            feed: feed.to_string(),
            status,
            summary: Summary::default(),
            input_error: None,
            report: None,
            transient: 0,
            lifecycle: None,
        }
    }

    /// The one-line summary the logs and the CLI print.
    pub fn line(&self) -> String {
        let s = self.summary;
        let mut line = format!(
            "feed {}: {}",
            self.feed,
            match self.status {
                FeedStatus::Pulled => "pulled",
                FeedStatus::NotModified => "not modified",
                FeedStatus::Failed => "failed (retried next run)",
                FeedStatus::Busy => "skipped: another run holds it",
                FeedStatus::Disabled => "disabled",
            }
        );
        if self.report.is_some() {
            line.push_str(&format!(
                "; {} records, {} uploaded, {} rejected",
                s.records, s.uploaded, s.rejected
            ));
        }
        if self.transient > 0 {
            line.push_str(&format!(
                "; {} left by transient upload failures",
                self.transient
            ));
        }
        if let Some(l) = &self.lifecycle {
            line.push_str(&format!(
                "; {} listed, {} added, {} retired, {} refreshed",
                l.listed, l.added, l.retired, l.refreshed
            ));
            if l.pending + l.failed > 0 {
                line.push_str(&format!(
                    " ({} left for the next run, {} refused)",
                    l.pending, l.failed
                ));
            }
        }
        if let Some(e) = &self.input_error {
            line.push_str(&format!("; {}: {}", e.code, e.message));
        }
        if let Some(r) = &self.report {
            line.push_str(&format!("; report {r}"));
        }
        line
    }
}

/// Everything a pull needs, built once at start-up ([`crate::startup`]) and shared by every
/// run: the app's storage client, uploader (and so its upload quota), credential (and so its
/// token cache) and one HTTP client for the feeds (and so its connection pool).
pub struct Puller {
    storage: Storage,
    blobs: Arc<BlobServiceClient>,
    states: StateStore,
    uploader: Uploader,
    http: reqwest::Client,
    credential: Credential,
    settings: PullSettings,
    defaults: Defaults,
    max_input_bytes: u64,
    invocation_deadline: Duration,
    /// App settings that credential references name.
    env: Env,
}

/// `2026-11-22T10-00-00.123Z`: sortable, unique per run of a feed (the lease serialises
/// them), and free of `:` for tools that dislike it in paths.
fn report_stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Why the feeds configuration could not be used as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The blob could not be read (storage unreachable, no token, ...): nothing is known about
    /// the document yet.
    #[error("{0:#}")]
    Unreadable(anyhow::Error),
    /// The document was read and refused (not JSON, not `{"feeds": [...]}`, a secret value, two
    /// feeds alike: docs/PULL.md).
    #[error("{0:#}")]
    Refused(anyhow::Error),
}

impl Puller {
    /// A puller sharing the app's storage, uploader and credential (the app's managed
    /// identity, `AZURE_CLIENT_ID`, as for storage). `TI_FEEDS_CONFIG` is checked here.
    pub fn new(
        storage: &Storage,
        uploader: &Uploader,
        credential: Credential,
        app: &Settings,
        env: Env,
    ) -> Result<Self> {
        crate::install_crypto_provider();
        let settings = PullSettings::from_env(&env)?;
        let blobs = storage.blob_service();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("ti-ingest/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the feeds' HTTP client")?;
        Ok(Puller {
            storage: storage.clone(),
            states: StateStore::new(blobs.clone(), &storage.settings.reports_container),
            blobs,
            uploader: uploader.clone(),
            http,
            credential,
            settings,
            defaults: app.input.defaults,
            max_input_bytes: app.max_input_bytes,
            invocation_deadline: app.invocation_deadline,
            env,
        })
    }

    /// `container/path` of the feeds configuration, for messages.
    pub fn location(&self) -> String {
        self.settings.location()
    }

    /// Reads the feeds configuration; `None` when there is none (nothing to pull).
    pub async fn load_config(&self) -> Result<Option<Vec<FeedEntry>>> {
        Ok(self.read_config().await?)
    }

    /// [`Puller::load_config`], telling a document that could not be read from one that was
    /// refused (start-up refuses only the latter: [`crate::startup`]).
    pub async fn read_config(&self) -> Result<Option<Vec<FeedEntry>>, ConfigError> {
        let blob = self
            .blobs
            .blob_container_client(&self.settings.config_container)
            .blob_client(&self.settings.config_blob);
        let location = self.settings.location();
        let unreadable =
            |e: anyhow::Error| ConfigError::Unreadable(e.context(format!("reading {location}")));
        let body = match blob.download(None).await {
            Ok(r) => r.body.collect().await.map_err(|e| unreadable(e.into()))?,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(unreadable(e.into())),
        };
        let entries = config::parse_document(&body).map_err(|e| {
            ConfigError::Refused(e.context(format!("the feeds configuration {location}")))
        })?;
        Ok(Some(entries))
    }

    /// Pulls every feed (or only `only`), side by side. `Err` when the configuration itself
    /// cannot be read or is refused; a failing feed is an outcome, not an error.
    pub async fn run(&self, only: Option<&str>) -> Result<Vec<FeedOutcome>> {
        let Some(entries) = self.load_config().await? else {
            if let Some(name) = only {
                bail!(
                    "no feeds configuration at {} (TI_FEEDS_CONFIG), so no feed {name:?}",
                    self.settings.location()
                );
            }
            tracing::info!(config = %self.settings.location(), "no feeds configuration; nothing to pull");
            return Ok(vec![]);
        };
        let entries: Vec<FeedEntry> = match only {
            None => entries,
            Some(name) => {
                let picked: Vec<FeedEntry> =
                    entries.into_iter().filter(|e| e.name() == name).collect();
                if picked.is_empty() {
                    bail!("no feed named {name:?} in {}", self.settings.location());
                }
                picked
            }
        };
        let started = Instant::now();
        let outcomes: Vec<FeedOutcome> = futures::stream::iter(entries)
            .map(|e| self.run_entry(e, started))
            .buffered(PARALLEL_FEEDS)
            .collect()
            .await;
        Ok(outcomes)
    }

    async fn run_entry(&self, entry: FeedEntry, started: Instant) -> FeedOutcome {
        let outcome = match entry {
            FeedEntry::Disabled { name } => {
                FeedOutcome::without_report(&name, FeedStatus::Disabled)
            }
            FeedEntry::Invalid { name, error } => {
                let source = Source {
                    kind: "pull".into(),
                    name: name.clone(),
                    format: None,
                };
                let report = error_report(
                    source,
                    self.uploader.target_name(),
                    InputErrorCode::FeedConfigInvalid,
                    format!(
                        "the feed's entry in {} is not valid: {error}",
                        self.settings.location()
                    ),
                );
                self.finish(&name, RunOutcome::of_report(report), None)
                    .await
            }
            FeedEntry::Valid(feed) => self.run_feed(&feed, started).await,
        };
        match outcome.status {
            FeedStatus::Failed => tracing::warn!(
                feed = %outcome.feed,
                code = outcome.input_error.as_ref().map(|e| e.code.as_str()).unwrap_or("transient"),
                "{}", outcome.line()
            ),
            _ => tracing::info!(feed = %outcome.feed, "{}", outcome.line()),
        }
        outcome
    }

    /// The authentication headers for a feed, resolved now (tokens are short-lived).
    async fn auth_headers(&self, feed: &Feed) -> Result<HeaderMap, (InputErrorCode, String)> {
        let mut headers = HeaderMap::new();
        let setting = |name: &str| -> Result<String, (InputErrorCode, String)> {
            self.env.get(name).map(str::to_string).ok_or_else(|| {
                (
                    InputErrorCode::FeedAuthFailed,
                    format!("the app setting {name} that the feed's auth refers to is not set"),
                )
            })
        };
        let sensitive = |value: String| -> Result<HeaderValue, (InputErrorCode, String)> {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                (
                    InputErrorCode::FeedAuthFailed,
                    "the credential is not a valid header value".to_string(),
                )
            })?;
            v.set_sensitive(true);
            Ok(v)
        };
        match &feed.auth {
            Auth::None => {}
            Auth::ManagedIdentity { scope } => {
                let token = auth::bearer(&self.credential, scope)
                    .await
                    .map_err(|e| (InputErrorCode::FeedAuthFailed, format!("{e:#}")))?;
                headers.insert(AUTHORIZATION, sensitive(format!("Bearer {token}"))?);
            }
            Auth::Basic {
                username,
                password_setting,
            } => {
                use base64::Engine;
                let password = setting(password_setting)?;
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                headers.insert(AUTHORIZATION, sensitive(format!("Basic {encoded}"))?);
            }
            Auth::Header {
                name,
                value_setting,
            } => {
                let value = setting(value_setting)?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| (InputErrorCode::FeedAuthFailed, "bad header name".to_string()))?;
                headers.insert(name, sensitive(value)?);
            }
            Auth::KeyVaultSecret { name } => {
                return Err((
                    InputErrorCode::FeedAuthUnsupported,
                    format!(
                        "Key Vault secrets are not supported yet (keyVaultSecret {name:?}): make an app setting that is a Key Vault reference (@Microsoft.KeyVault(SecretUri=...)) and use {{\"basic\": {{\"username\": .., \"passwordSetting\": \"SETTING\"}}}} or {{\"header\": {{\"name\": .., \"valueSetting\": \"SETTING\"}}}}"
                    ),
                ))
            }
        }
        Ok(headers)
    }

    async fn run_feed(&self, feed: &Feed, started: Instant) -> FeedOutcome {
        let source = Source {
            kind: feed.source.kind().into(),
            name: feed.name.clone(),
            format: None,
        };
        // The feed's own targets, through the app's lanes: one quota per identity and API
        // whatever each feed uploads to.
        let uploader = match &feed.targets {
            None => self.uploader.clone(),
            Some(targets) => match self.uploader.only(targets) {
                Ok(u) => u,
                Err(e) => {
                    let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
                    let report = error_report(
                        source,
                        &names.join(","),
                        InputErrorCode::FeedTargetsUnavailable,
                        format!(
                            "the feed's targets {} cannot be used with the app's settings: {e:#}",
                            names.join(",")
                        ),
                    );
                    return self
                        .finish(&feed.name, RunOutcome::of_report(report), None)
                        .await;
                }
            },
        };
        let target = uploader.target_name();
        let fail = |code: InputErrorCode, message: String| {
            RunOutcome::of_report(error_report(source.clone(), target, code, message))
        };
        let auth = match self.auth_headers(feed).await {
            Ok(h) => h,
            Err((code, message)) => {
                return self.finish(&feed.name, fail(code, message), None).await
            }
        };
        let (lock, saved) = match self.states.lock(&feed.name).await {
            Ok(Lock::Held(held)) => *held,
            Ok(Lock::Busy) => return FeedOutcome::without_report(&feed.name, FeedStatus::Busy),
            Err(e) => {
                let report = fail(InputErrorCode::FeedStateUnavailable, format!("{e:#}"));
                return self.finish(&feed.name, report, None).await;
            }
        };
        let saved = saved.for_source(&feed.source.identity());
        // A list feed's accepted indicators, for the lifecycle step after the run.
        let snapshot = feed.list.then(|| {
            Arc::new(Snapshot::new(
                OffsetDateTime::now_utc(),
                lifecycle::SORT_BUDGET_BYTES,
            ))
        });
        let ctx = RunContext {
            accepted: snapshot.clone(),
            deadline: Some(started + self.invocation_deadline),
            defaults: feed.defaults.apply_to(self.defaults),
            max_input_bytes: feed.max_bytes.unwrap_or(self.max_input_bytes),
            // For every kind of feed: added to the valid objects, whatever the format.
            labels: feed.defaults.labels.clone(),
            ..RunContext::new(uploader.clone())
        };
        // (outcome, the state to save if everything read was settled, not-modified, whether
        // the whole feed was read: `None` when it was not read at all)
        let (mut outcome, next_state, not_modified, whole) = match &feed.source {
            FeedSource::Taxii(t) => {
                let pull = taxii::TaxiiPull {
                    http: self.http.clone(),
                    feed: t.clone(),
                    auth,
                    // A list collection is read whole every run (its snapshot is the list).
                    added_after: if feed.list {
                        t.added_after.clone()
                    } else {
                        saved.bookmark.clone().or_else(|| t.added_after.clone())
                    },
                    soft_deadline: Some(started + self.invocation_deadline / 2),
                };
                let (records, progress) = pull.records();
                let ctx = RunContext {
                    format: Some(InputFormat::StixJson),
                    fill: Some(taxii::fill(feed.defaults.clone())),
                    ..ctx
                };
                let mut outcome = pipeline::run_records(records, source.clone(), &ctx).await;
                let progress = progress.lock().expect("progress lock");
                if let Some(e) = &progress.error {
                    outcome.report.input_error = Some(InputError::new(
                        e.code(),
                        if progress.pages > 0 {
                            format!(
                                "{e} (after {} page(s), {} object(s), which were processed)",
                                progress.pages, progress.objects
                            )
                        } else {
                            e.to_string()
                        },
                    ));
                }
                let next = FeedState {
                    bookmark: progress.last_added.clone().or(saved.bookmark.clone()),
                    ..saved.clone()
                };
                if progress.truncated {
                    tracing::info!(feed = %feed.name, objects = progress.objects, "stopped at maxObjectsPerRun or the deadline; the next run continues from the bookmark");
                }
                let whole = !progress.truncated && progress.error.is_none();
                (outcome, next, false, Some(whole))
            }
            FeedSource::Https(h) => {
                let ctx = RunContext {
                    format: h.format,
                    ..ctx
                };
                match https::fetch(&self.http, h, auth, &saved).await {
                    Err(e) => (fail(e.code(), e.to_string()), saved.clone(), false, None),
                    Ok(https::Fetched::NotModified) => (
                        RunOutcome::of_report(empty_report(source.clone(), target, None)),
                        saved.clone(),
                        true,
                        None,
                    ),
                    Ok(https::Fetched::Changed { len: Some(len), .. })
                        if len > ctx.max_input_bytes =>
                    {
                        (
                            fail(
                                InputErrorCode::InputTooLarge,
                                format!(
                                "the feed is {len} bytes; maxBytes / TI_MAX_INPUT_BYTES allows {}",
                                ctx.max_input_bytes
                            ),
                            ),
                            saved.clone(),
                            false,
                            None,
                        )
                    }
                    Ok(https::Fetched::Changed {
                        body,
                        error,
                        etag,
                        last_modified,
                        ..
                    }) => {
                        let mut outcome = match pipeline::run(body, source.clone(), &ctx).await {
                            Ok(o) => o,
                            Err(never) => match never {},
                        };
                        if let Some(e) = error.lock().expect("error cell").take() {
                            outcome.report.input_error = Some(InputError::new(
                                e.code(),
                                format!("{e} (the content read before it was processed)"),
                            ));
                        }
                        let next = FeedState {
                            etag,
                            last_modified,
                            ..saved.clone()
                        };
                        (outcome, next, false, Some(true))
                    }
                }
            }
        };
        // The lifecycle step, only after a settled run (a failed run changes no state, so
        // what it would retire is retired by the next run that succeeds).
        let mut index = None;
        if let Some(snapshot) = snapshot {
            if outcome.report.input_error.is_none() && outcome.transient_failures() == 0 {
                let step = lifecycle::Step {
                    uploader: &uploader,
                    deadline: Some(started + self.invocation_deadline),
                    now: OffsetDateTime::now_utc(),
                    valid_days: feed.defaults.apply_to(self.defaults).valid_days,
                };
                match self.lifecycle(&lock, &snapshot, whole, &step).await {
                    Ok((file, summary)) => {
                        outcome.report.lifecycle = Some(summary);
                        index = Some(file);
                    }
                    Err(e) => {
                        outcome.report.input_error = Some(InputError::new(
                            InputErrorCode::FeedStateUnavailable,
                            format!("the feed's indicator index: {e:#}"),
                        ))
                    }
                }
            }
        }
        let result = self
            .finish(&feed.name, outcome, Some((lock, next_state, index)))
            .await;
        if not_modified && result.status == FeedStatus::Pulled {
            return FeedOutcome {
                status: FeedStatus::NotModified,
                ..result
            };
        }
        result
    }

    /// Merges a list feed's saved index with this run's snapshot (`whole`: `None` when the
    /// feed was not read, `Some(false)` when only part of it was), sends the retirements and
    /// refreshes, and returns the new index (saved by [`Self::finish`]) and the counts.
    async fn lifecycle(
        &self,
        lock: &state::FeedLock,
        snapshot: &Snapshot,
        whole: Option<bool>,
        step: &lifecycle::Step<'_>,
    ) -> Result<(std::fs::File, Lifecycle)> {
        let saved = lock.load_index().await?;
        let current = match whole {
            None => None,
            Some(_) => Some(snapshot.finish().context("sorting the run's indicators")?),
        };
        let (file, mut summary) =
            lifecycle::apply(saved, current, whole != Some(false), step).await?;
        if whole == Some(false) {
            summary.note = Some(
                "the feed was not read whole this run (maxObjectsPerRun, the deadline or a fetch error), so nothing it did not list was retired".into(),
            );
        }
        Ok((file, summary))
    }

    /// Writes the feed's report, then (when everything read was settled) saves the list
    /// feed's indicator index and `next` under the lease, and releases the lease.
    async fn finish(
        &self,
        feed: &str,
        outcome: RunOutcome,
        lock: Option<(state::FeedLock, FeedState, Option<std::fs::File>)>,
    ) -> FeedOutcome {
        let path = format!("pulls/{feed}/{}", report_stamp(OffsetDateTime::now_utc()));
        let report_name = format!("{path}.report.json");
        let transient = outcome.transient_failures();
        let mut input_error = outcome.report.input_error.clone();
        let summary = outcome.report.summary;
        let lifecycle = outcome.report.lifecycle.clone();
        let written = self
            .storage
            .write_report(&path, crate::storage::single(outcome), false)
            .await;
        let settled = input_error.is_none() && transient == 0;
        let mut status = if settled {
            FeedStatus::Pulled
        } else {
            FeedStatus::Failed
        };
        if let Err(e) = &written {
            // Without its report the run's rejections are not recorded: do not advance.
            status = FeedStatus::Failed;
            input_error.get_or_insert(InputError::new(
                InputErrorCode::ReportUnwritten,
                format!("{e:#}"),
            ));
        }
        if let Some((lock, mut next, index)) = lock {
            if status == FeedStatus::Pulled {
                next.updated_at = Some(now_rfc3339());
                next.last_report = Some(report_name.clone());
                // The index first: a state saved without it would skip the snapshot it
                // belongs to (a 304 next), so dropped indicators would never be retired.
                let saved = match index {
                    Some(file) => lock.save_index(file).await,
                    None => Ok(()),
                };
                let saved = match saved {
                    Ok(()) => lock.save(&next).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = saved {
                    status = FeedStatus::Failed;
                    input_error.get_or_insert(InputError::new(
                        InputErrorCode::FeedStateUnavailable,
                        format!("{e:#}"),
                    ));
                }
            }
            lock.release().await;
        }
        FeedOutcome {
            feed: feed.to_string(),
            status,
            summary,
            input_error,
            report: written.is_ok().then_some(report_name),
            transient,
            lifecycle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_stamps_sort_by_time_and_have_no_colons() {
        let a = report_stamp(time::macros::datetime!(2026-11-22 10:00:00.123 UTC));
        let b = report_stamp(time::macros::datetime!(2026-11-22 10:00:01.005 UTC));
        assert_eq!(a, "2026-11-22T10-00-00.123Z");
        assert!(a < b && !a.contains(':'));
    }

    #[test]
    fn summary_lines_say_what_happened() {
        let o = FeedOutcome {
            feed: "osint".into(),
            status: FeedStatus::Failed,
            summary: Summary::default(),
            input_error: Some(InputError {
                code: "feed_unreachable".into(),
                message: "connection refused".into(),
            }),
            report: Some("pulls/osint/x.report.json".into()),
            transient: 0,
            lifecycle: None,
        };
        let line = o.line();
        assert!(line.starts_with("feed osint: failed"), "{line}");
        assert!(
            line.contains("feed_unreachable: connection refused"),
            "{line}"
        );
    }
}
