//! The Functions layer: decodes the host's envelopes, calls the pipeline, writes reports, and
//! answers the host. It only orchestrates; what to do with a record is the pipeline's business,
//! and what every invocation shares ([`AppState`]) is built once by [`crate::startup`].
//!
//! Outcome rule (docs/ARCHITECTURE.md): 2xx when every record was uploaded or reported; non-2xx (so the
//! host retries) only when work is left because of transient failures and retries remain; a
//! message that can never be processed is reported and acknowledged.

pub mod events;
pub mod health;
pub mod http;
pub mod protocol;
pub mod pull_feeds;
pub mod sweep;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use ti_core::report::{InputErrorCode, Report, Source};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::checkpoint::blob::BlobParts;
use crate::checkpoint::{Checkpoints, Part};
use crate::pipeline::{self, input_error_report, RunContext, RunOutcome};
use crate::startup::AppState;
use crate::storage::{self, OpenError};
use crate::work::{self, fault, Run, RunState, WorkItem};
use events::{BlobRef, EventAction};
use protocol::{Answer, QueueInvocation};

/// `host.json` → `extensions.queues.maxDequeueCount`: the attempt after which a failed message
/// goes to the poison queue, so the last attempt must report instead of failing.
pub const MAX_DEQUEUE_COUNT: u32 = 5;

/// The queue binding name in every queue-triggered `function.json`.
pub const QUEUE_BINDING: &str = "message";

/// The router, built in a function so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        // The host polls `GET /` until any answer arrives; that is the readiness probe.
        .route("/", get(|| async { "ti-ingest" }))
        .route("/IngestBlobEvent", post(ingest_blob_event))
        .route("/IngestMessage", post(ingest_message))
        .route("/IngestWorkItem", post(ingest_work_item))
        .route("/Sweep", post(sweep::sweep_handler))
        .route("/PullFeeds", post(pull_feeds::pull_feeds))
        .route("/Ingest", http::route())
        .route("/Health", post(health::health))
        // Storage queue messages are at most 64 KiB; the host's envelope adds a little.
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(Arc::new(state))
}

/// Failures that should make the host retry the message.
#[derive(Debug)]
struct Retry(String);

impl IntoResponse for Retry {
    fn into_response(self) -> Response {
        // The host discards the body of a non-2xx answer; stderr is what it logs.
        tracing::error!(reason = %self.0, "invocation failed; the host will retry the message");
        (StatusCode::INTERNAL_SERVER_ERROR, self.0).into_response()
    }
}

/// A storage failure: the host retries the message.
fn retry(e: anyhow::Error) -> Retry {
    Retry(format!("{e:#}"))
}

fn answer(logs: Vec<String>, return_value: serde_json::Value) -> Response {
    Json(Answer {
        outputs: Default::default(),
        logs,
        return_value,
    })
    .into_response()
}

fn invocation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn summary_value(report: &Report) -> serde_json::Value {
    json!({
        "source": report.source.name,
        "records": report.summary.records,
        "uploaded": report.summary.uploaded,
        "rejected": report.summary.rejected,
        "inputError": report.input_error.as_ref().map(|e| &e.code),
    })
}

impl AppState {
    fn run_context(&self, started: Instant) -> RunContext {
        RunContext {
            deadline: Some(started + self.invocation_deadline),
            format: self.input.format,
            defaults: self.input.defaults,
            max_input_bytes: self.max_input_bytes,
            max_held_bytes: Some(pipeline::INVOCATION_MAX_HELD_BYTES),
            ..RunContext::new(self.uploader.clone())
        }
    }

    /// Decodes a queue-trigger envelope and the message id (the invocation id when the host
    /// sent none). An envelope that cannot be decoded is reported and acknowledged: `Err` holds
    /// the answer to give the host.
    async fn decode_queue(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(QueueInvocation, String), Result<Response, Retry>> {
        match protocol::decode_queue(body, QUEUE_BINDING) {
            Ok(inv) => {
                let id = inv
                    .message_id
                    .clone()
                    .unwrap_or_else(|| invocation_id(headers));
                Ok((inv, id))
            }
            Err(e) => Err(self
                .acknowledge_unprocessable(
                    &invocation_id(headers),
                    "queue",
                    InputErrorCode::EnvelopeInvalid,
                    e.0,
                )
                .await),
        }
    }

    /// Writes a report for a message that cannot be processed, then acknowledges it.
    async fn acknowledge_unprocessable(
        &self,
        message_id: &str,
        source_kind: &str,
        code: InputErrorCode,
        message: String,
    ) -> Result<Response, Retry> {
        let path = storage::message_report_path(message_id, OffsetDateTime::now_utc());
        let report = input_error_report(
            Source {
                kind: source_kind.into(),
                name: message_id.to_string(),
                format: None,
            },
            self.uploader.target_name(),
            code,
            message.clone(),
        );
        self.storage
            .write_report(&path, storage::single(RunOutcome::of_report(report)), false)
            .await
            .map_err(|e| Retry(format!("{e:#}")))?;
        tracing::warn!(%code, report = %path, "message cannot be processed; reported and acknowledged");
        Ok(answer(
            vec![format!(
                "{code}: {message}; report written to {}/{path}.report.json",
                self.storage.settings.reports_container
            )],
            json!({"inputError": code.as_str(), "report": format!("{path}.report.json")}),
        ))
    }

    /// Runs one range of a blob (the whole blob when it fits one invocation) through the
    /// pipeline and checkpoints it; the range that reaches the end of the input writes
    /// `<name>.report.json` (+ rejected records). `version` pins the blob's ETag for work items.
    async fn ingest_blob(
        &self,
        blob: &BlobRef,
        version: Option<&str>,
        start: u64,
        dequeue_count: u32,
        message_id: &str,
        started: Instant,
    ) -> Result<Response, Retry> {
        let last_attempt = dequeue_count >= MAX_DEQUEUE_COUNT;
        let source = Source {
            kind: "blob".into(),
            name: format!("{}/{}", blob.container, blob.name),
            format: None,
        };
        let target = self.uploader.target_name();
        let unreadable = |code: InputErrorCode, message: String| {
            RunOutcome::of_report(input_error_report(source.clone(), target, code, message))
        };
        let opened = match self.storage.open_inbox_version(&blob.name, version).await {
            Ok(o) => o,
            Err(OpenError::NotFound { .. }) if start == 0 => {
                let outcome = unreadable(
                    InputErrorCode::BlobNotFound,
                    "the blob no longer exists (deleted before it could be read)".into(),
                );
                return self
                    .report_failure(blob, version, message_id, &outcome)
                    .await;
            }
            Err(e @ (OpenError::NotFound { .. } | OpenError::Changed { .. })) => {
                // A later version has its own run (and event); this one is abandoned.
                return Ok(answer(
                    vec![format!("{e}; the rest of this run is abandoned")],
                    json!({"abandoned": true}),
                ));
            }
            Err(e) if !last_attempt => return Err(Retry(e.to_string())),
            Err(e) => {
                let outcome = unreadable(InputErrorCode::InputUnreadable, e.to_string());
                return self
                    .report_failure(blob, version, message_id, &outcome)
                    .await;
            }
        };
        let run = Run::new(&blob.name, &opened.etag);
        // A redelivered message: the work may already be done, entirely or for this range.
        if self.exists(&run.done()).await? {
            return Ok(answer(
                vec![format!("{}: already complete", source.name)],
                json!({"alreadyComplete": true}),
            ));
        }
        let checkpoints = self.checkpoints(&run);
        if let Some(part) = checkpoints.part(start).await.map_err(retry)? {
            return self.continue_after(blob, &opened.etag, &run, part).await;
        }
        // Activity Sweep can see: a run that stops updating this was interrupted.
        self.touch_state(&run, blob, &opened.etag, Some(start))
            .await?;
        let outcome = if start == 0 && opened.len.is_some_and(|l| l > self.max_input_bytes) {
            unreadable(
                InputErrorCode::InputTooLarge,
                format!(
                    "the blob is {} bytes; TI_MAX_INPUT_BYTES allows {}",
                    opened.len.unwrap_or(0),
                    self.max_input_bytes
                ),
            )
        } else {
            // `reject-file` reads the blob twice: the first stream is the one just opened.
            let mut first = Some(opened.stream);
            let storage = self.storage.clone();
            let name = blob.name.clone();
            let etag = opened.etag.clone();
            let open = move || {
                let first = first.take();
                let storage = storage.clone();
                let name = name.clone();
                let etag = etag.clone();
                async move {
                    match first {
                        Some(s) => Ok(s),
                        None => storage
                            .open_inbox_version(&name, Some(&etag))
                            .await
                            .map(|o| o.stream)
                            .map_err(|e| {
                                azure_core::Error::with_message(
                                    azure_core::error::ErrorKind::Other,
                                    e.to_string(),
                                )
                            }),
                    }
                }
            };
            let mut ctx = self.run_context(started);
            ctx.revoke = crate::lifecycle::is_revoke_blob(&blob.name);
            ctx.range = start..start.saturating_add(self.work_item_records);
            ctx.soft_deadline = Some(started + self.invocation_deadline / 2);
            match pipeline::run_input(open, source.clone(), &ctx).await {
                Ok(o) => o,
                Err(e) if !last_attempt => {
                    return Err(Retry(format!("reading {}: {e}", source.name)))
                }
                Err(e) => unreadable(
                    InputErrorCode::InputUnreadable,
                    format!("reading the blob failed on the last attempt: {e}"),
                ),
            }
        };
        let transient = outcome.transient_failures();
        if transient > 0 && !last_attempt {
            // Nothing is checkpointed: the retry redoes this range (uploads are idempotent).
            return Err(Retry(format!(
                "{transient} record(s) of {} hit transient upload failures; retrying the message (uploads are idempotent by id)",
                source.name
            )));
        }
        if start == 0 && outcome.next_start.is_none() {
            return self
                .write_final(blob, storage::single(outcome), Some(&run))
                .await;
        }
        let part = checkpoints.record(start, &outcome).await.map_err(retry)?;
        fault::point(fault::PART_WRITTEN);
        self.continue_after(blob, &opened.etag, &run, part).await
    }

    /// Reports a blob that could not be opened (gone, or unreadable on the last attempt) without
    /// ever replacing a completed report: when this version's run is done, nothing is written;
    /// when `<name>.report.json` exists (a completed report, of this version or an earlier one),
    /// the failure goes to a report of its own, `messages/<yyyy>/<mm>/<dd>/<message id>`;
    /// otherwise it is the blob's report.
    async fn report_failure(
        &self,
        blob: &BlobRef,
        version: Option<&str>,
        message_id: &str,
        outcome: &RunOutcome,
    ) -> Result<Response, Retry> {
        let code = outcome
            .report
            .input_error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_default();
        if let Some(version) = version {
            if self.exists(&Run::new(&blob.name, version).done()).await? {
                tracing::warn!(blob = %blob.name, %code, "this version is already reported complete; the failure is not reported over it");
                return Ok(answer(
                    vec![format!(
                        "{}/{}: {code}, but this version is already reported complete; its report stands",
                        blob.container, blob.name
                    )],
                    json!({"alreadyComplete": true}),
                ));
            }
        }
        let base = storage::blob_report_base(&blob.name);
        let only_report = || storage::single(RunOutcome::of_report(outcome.report.clone()));
        if !self.exists(&format!("{base}.report.json")).await? {
            return self.write_final(blob, only_report(), None).await;
        }
        let path = storage::message_report_path(message_id, OffsetDateTime::now_utc());
        self.storage
            .write_report(&path, only_report(), false)
            .await
            .map_err(|e| Retry(format!("{e:#}")))?;
        tracing::warn!(blob = %blob.name, %code, report = %path, "the blob's completed report is kept; the failure is reported separately");
        let reports = &self.storage.settings.reports_container;
        Ok(answer(
            vec![format!(
                "{}/{}: {code}; its completed report {reports}/{base}.report.json is kept, this failure is reported in {reports}/{path}.report.json",
                blob.container, blob.name
            )],
            json!({"inputError": code.as_str(), "report": format!("{path}.report.json")}),
        ))
    }

    /// After a checkpointed range: queue the next range, or assemble the final report.
    async fn continue_after(
        &self,
        blob: &BlobRef,
        etag: &str,
        run: &Run,
        part: Part,
    ) -> Result<Response, Retry> {
        let Some(next) = part.next else {
            // The chain of parts from record 0 (see crate::checkpoint), read one part at a time
            // as the report is written: memory holds one part, never the whole report.
            let parts = self.checkpoints(run).stream();
            fault::point(fault::ASSEMBLING);
            return self.write_final(blob, parts, Some(run)).await;
        };
        // Sent only once as far as anyone can tell: `sent/<next>` is written after the send, so
        // a kill anywhere before it makes the redelivery (or Sweep) send the item again; a
        // duplicate item is harmless (see crate::work).
        if !self.exists(&run.sent(next)).await? {
            self.touch_state(run, blob, etag, Some(next)).await?;
            // What makes an item for `next` one the app wrote (checked by IngestWorkItem).
            self.storage
                .put_report_blob(&run.queued(next), Vec::new())
                .await
                .map_err(|e| Retry(format!("{e:#}")))?;
            fault::point(fault::BEFORE_SEND);
            let item = WorkItem::new(&blob.container, &blob.name, etag, next);
            let text = serde_json::to_string(&item).map_err(|e| Retry(e.to_string()))?;
            self.storage
                .enqueue(&self.storage.settings.work_queue, &text)
                .await
                .map_err(|e| Retry(format!("{e:#}")))?;
            fault::point(fault::AFTER_SEND);
            self.storage
                .put_report_blob(&run.sent(next), Vec::new())
                .await
                .map_err(|e| Retry(format!("{e:#}")))?;
            fault::point(fault::AFTER_MARKER);
        }
        let s = part.report.summary;
        Ok(answer(
            vec![format!(
                "{}/{}: records {}..{} checkpointed ({} uploaded, {} rejected); continuing from record {next} in a work item",
                blob.container, blob.name, part.start, next, s.uploaded, s.rejected
            )],
            json!({"rangeStart": part.start, "next": next, "uploaded": s.uploaded, "rejected": s.rejected}),
        ))
    }

    async fn exists(&self, name: &str) -> Result<bool, Retry> {
        self.storage
            .read_report_blob(name)
            .await
            .map(|b| b.is_some())
            .map_err(|e| Retry(format!("{e:#}")))
    }

    /// The checkpoints of a blob's run: its parts in the reports container.
    pub(crate) fn checkpoints(&self, run: &Run) -> Checkpoints<BlobParts> {
        Checkpoints::new(BlobParts::new(self.storage.clone(), run.clone()))
    }

    /// Records activity on a run (what Sweep judges staleness by) and its furthest next range:
    /// `next` never moves backwards (a re-drive of an earlier range only refreshes the time).
    async fn touch_state(
        &self,
        run: &Run,
        blob: &BlobRef,
        etag: &str,
        next: Option<u64>,
    ) -> Result<(), Retry> {
        let known: Option<RunState> = self
            .storage
            .read_report_blob(&run.state())
            .await
            .map_err(|e| Retry(format!("{e:#}")))?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let next = match (known.and_then(|k| k.next), next) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (_, n) => n,
        };
        let state = RunState {
            blob: blob.name.clone(),
            etag: work::canonical_etag(etag),
            next,
            updated_at: OffsetDateTime::now_utc(),
        };
        let json = serde_json::to_vec(&state).map_err(|e| Retry(e.to_string()))?;
        self.storage
            .put_report_blob(&run.state(), json)
            .await
            .map_err(|e| Retry(format!("{e:#}")))
    }

    /// Writes `<name>.report.json` and the files beside it from `pieces` (the run's outcome,
    /// or its checkpointed ranges in order), then marks the run done.
    async fn write_final<S>(
        &self,
        blob: &BlobRef,
        pieces: S,
        run: Option<&Run>,
    ) -> Result<Response, Retry>
    where
        S: futures::Stream<Item = anyhow::Result<RunOutcome>> + Unpin,
    {
        let base = storage::blob_report_base(&blob.name);
        let report = self
            .storage
            .write_report(&base, pieces, true)
            .await
            .map_err(|e| Retry(format!("{e:#}")))?;
        fault::point(fault::REPORT_WRITTEN);
        if let Some(run) = run {
            self.storage
                .create_report_blob_once(&run.done(), Vec::new())
                .await
                .map_err(|e| Retry(format!("{e:#}")))?;
        }
        let s = report.summary;
        Ok(answer(
            vec![format!(
                "{}: {} records, {} uploaded, {} rejected; report {}/{}.report.json",
                report.source.name,
                s.records,
                s.uploaded,
                s.rejected,
                self.storage.settings.reports_container,
                base
            )],
            summary_value(&report),
        ))
    }
}

async fn ingest_blob_event(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Retry> {
    let started = Instant::now();
    let (inv, message_id) = match state.decode_queue(&headers, &body).await {
        Ok(decoded) => decoded,
        Err(answered) => return answered,
    };
    let inbox = state.storage.settings.inbox_container.clone();
    match events::parse_blob_event(&inv.message, &state.storage.settings.blob_url, &[&inbox]) {
        Ok(EventAction::Ingest(blob)) => {
            state
                .ingest_blob(&blob, None, 0, inv.dequeue_count, &message_id, started)
                .await
        }
        Ok(EventAction::Ignore(why)) => Ok(answer(vec![why], json!({"ignored": true}))),
        Err(why) => {
            state
                .acknowledge_unprocessable(&message_id, "queue", InputErrorCode::EventInvalid, why)
                .await
        }
    }
}

/// A message that only points at a blob: `{"blobUrl": ...}` or `{"container": .., "blob": ..}`.
fn blob_reference(message: &str, state: &AppState) -> Option<Result<BlobRef, String>> {
    let v: serde_json::Value = serde_json::from_str(message).ok()?;
    let obj = v.as_object()?;
    let inbox = state.storage.settings.inbox_container.as_str();
    if let Some(url) = obj.get("blobUrl") {
        let url = url.as_str()?;
        return Some(events::resolve_blob_url(
            url,
            &state.storage.settings.blob_url,
            &[inbox],
        ));
    }
    match (obj.get("container"), obj.get("blob")) {
        (Some(c), Some(b)) if obj.len() == 2 => {
            Some(events::blob_ref(c.as_str()?, b.as_str()?, &[inbox]))
        }
        _ => None,
    }
}

async fn ingest_message(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Retry> {
    let started = Instant::now();
    let (inv, message_id) = match state.decode_queue(&headers, &body).await {
        Ok(decoded) => decoded,
        Err(answered) => return answered,
    };
    match blob_reference(&inv.message, &state) {
        Some(Ok(blob)) => {
            return state
                .ingest_blob(&blob, None, 0, inv.dequeue_count, &message_id, started)
                .await
        }
        Some(Err(why)) => {
            return state
                .acknowledge_unprocessable(
                    &message_id,
                    "queue",
                    InputErrorCode::BlobReferenceInvalid,
                    why,
                )
                .await
        }
        None => {}
    }
    let source = Source {
        kind: "queue".into(),
        name: format!("{}/{}", state.storage.settings.inbox_queue, message_id),
        format: None,
    };
    let bytes = inv.message.into_bytes();
    let open = || {
        let bytes = bytes.clone();
        async move { Ok::<_, std::convert::Infallible>(pipeline::once(bytes)) }
    };
    let outcome = match pipeline::run_input(open, source, &state.run_context(started)).await {
        Ok(o) => o.cut_short_is_too_large(),
        Err(never) => match never {},
    };
    let path = storage::message_report_path(&message_id, OffsetDateTime::now_utc());
    let transient = outcome.transient_failures();
    let head = outcome.report.clone_head();
    state
        .storage
        .write_report(&path, storage::single(outcome), false)
        .await
        .map_err(|e| Retry(format!("{e:#}")))?;
    if transient > 0 && inv.dequeue_count < MAX_DEQUEUE_COUNT {
        return Err(Retry(format!(
            "{transient} record(s) hit transient upload failures; retrying the message"
        )));
    }
    let s = head.summary;
    Ok(answer(
        vec![format!(
            "message {message_id}: {} records, {} uploaded, {} rejected; report {}/{path}.report.json",
            s.records, s.uploaded, s.rejected, state.storage.settings.reports_container
        )],
        summary_value(&head),
    ))
}

async fn ingest_work_item(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Retry> {
    let started = Instant::now();
    let (inv, message_id) = match state.decode_queue(&headers, &body).await {
        Ok(decoded) => decoded,
        Err(answered) => return answered,
    };
    let item = match state.check_work_item(&inv.message).await? {
        Ok(checked) => checked,
        Err(why) => {
            // Not an item the app wrote: refused without writing or touching any report (a
            // forged or corrupted item must not replace a real one), logged, acknowledged.
            tracing::warn!(message = %message_id, reason = %why, "work item refused");
            return Ok(answer(
                vec![format!("work item {message_id} refused: {why}")],
                json!({"refused": InputErrorCode::WorkItemInvalid.as_str(), "reason": why}),
            ));
        }
    };
    let (item, blob) = item;
    state
        .ingest_blob(
            &blob,
            Some(&item.etag),
            item.start,
            inv.dequeue_count,
            &message_id,
            started,
        )
        .await
}

impl AppState {
    /// Checks that a work item has exactly the fields the app writes: version, no unknown fields,
    /// an ETag of the app's form, the inbox container, a safe blob name, and a start that is 0 or
    /// a range some checkpoint of that run queued (`runs/<id>/queued/<start>`).
    async fn check_work_item(
        &self,
        text: &str,
    ) -> Result<Result<(WorkItem, BlobRef), String>, Retry> {
        let inbox = self.storage.settings.inbox_container.as_str();
        let item = match WorkItem::parse(text) {
            Ok(i) => i,
            Err(why) => return Ok(Err(why)),
        };
        if item.container != inbox {
            return Ok(Err(format!(
                "work item field container {:?} is not the inbox container {inbox:?}",
                item.container
            )));
        }
        let blob = match events::blob_ref(&item.container, &item.blob, &[inbox]) {
            Ok(b) => b,
            Err(why) => return Ok(Err(format!("work item field blob: {why}"))),
        };
        if item.start != 0
            && !self
                .exists(&Run::new(&blob.name, &item.etag).queued(item.start))
                .await?
        {
            return Ok(Err(format!(
                "work item field start {} is not a range this run queued (expected 0 or the next range of a checkpoint)",
                item.start
            )));
        }
        Ok(Ok((item, blob)))
    }
}
