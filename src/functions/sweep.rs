//! `Sweep` (timer): finds inbox blobs that have no final report (a missed or failed event, an
//! interrupted chain of work items) and re-drives them from their last checkpoint, and turns every
//! message the host parked in a `-poison` queue into a report, so nothing is lost without a trace.
//!
//! A run is re-driven only if its last activity (`state.json`'s `updatedAt`) is older than
//! `TI_SWEEP_STALE_SECS`, never while it is live, and from its *first missing range*: the chain
//! of checkpoints is followed from record 0 and the first range without a part is queued (or,
//! when every range is checkpointed but no report was assembled, the last range, whose item
//! assembles it). Safe when two Sweeps overlap: only whoever creates the run's once-only marker
//! for the current staleness period re-drives it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use ti_core::report::{InputErrorCode, Source};
use time::OffsetDateTime;

use super::{answer, input_error_report, AppState, Retry};
use crate::checkpoint::Progress;
use crate::storage::blob_report_base;
use crate::storage::{ListedBlob, Received};
use crate::work::{Run, RunState, WorkItem};

/// What one Sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    pub blobs: usize,
    pub complete: usize,
    pub in_progress: usize,
    pub redriven: usize,
    pub poison_reported: usize,
    pub errors: usize,
}

pub(super) async fn sweep_handler(State(state): State<Arc<AppState>>) -> Result<Response, Retry> {
    let (outcome, logs) = sweep(&state).await.map_err(|e| Retry(format!("{e:#}")))?;
    Ok(answer(
        logs,
        json!({
            "blobs": outcome.blobs, "complete": outcome.complete, "inProgress": outcome.in_progress,
            "redriven": outcome.redriven, "poisonReported": outcome.poison_reported, "errors": outcome.errors,
        }),
    ))
}

async fn sweep(state: &AppState) -> anyhow::Result<(SweepOutcome, Vec<String>)> {
    let mut out = SweepOutcome::default();
    let mut logs = Vec::new();
    let now = OffsetDateTime::now_utc();
    let reports: HashMap<String, Option<OffsetDateTime>> = state
        .storage
        .list_report_blobs_with_properties("")
        .await?
        .into_iter()
        .filter(|b| b.name.ends_with(".report.json"))
        .map(|b| (b.name, b.modified))
        .collect();
    for blob in state.storage.list_inbox_blobs().await? {
        out.blobs += 1;
        match sweep_blob(state, &blob, &reports, now).await {
            Ok(Verdict::Complete) => out.complete += 1,
            Ok(Verdict::InProgress) => out.in_progress += 1,
            Ok(Verdict::Redriven(start)) => {
                out.redriven += 1;
                logs.push(format!("re-driven {} from record {start}", blob.name));
            }
            Err(e) => {
                out.errors += 1;
                logs.push(format!("{}: {e:#}", blob.name));
                tracing::error!(blob = %blob.name, error = %format!("{e:#}"), "sweep could not check a blob");
            }
        }
    }
    let s = &state.storage.settings;
    for queue in [&s.blob_events_queue, &s.inbox_queue, &s.work_queue] {
        let poison = format!("{queue}-poison");
        match report_poison(state, &poison).await {
            Ok(n) => {
                out.poison_reported += n;
                if n > 0 {
                    logs.push(format!("{n} message(s) from {poison} reported"));
                }
            }
            Err(e) => {
                out.errors += 1;
                logs.push(format!("{poison}: {e:#}"));
            }
        }
    }
    tracing::info!(
        blobs = out.blobs,
        redriven = out.redriven,
        poison = out.poison_reported,
        errors = out.errors,
        "sweep finished"
    );
    logs.insert(
        0,
        format!(
            "sweep: {} inbox blobs, {} complete, {} in progress, {} re-driven, {} poison messages reported, {} errors",
            out.blobs, out.complete, out.in_progress, out.redriven, out.poison_reported, out.errors
        ),
    );
    Ok((out, logs))
}

enum Verdict {
    Complete,
    InProgress,
    Redriven(u64),
}

async fn sweep_blob(
    state: &AppState,
    blob: &ListedBlob,
    reports: &HashMap<String, Option<OffsetDateTime>>,
    now: OffsetDateTime,
) -> anyhow::Result<Verdict> {
    let modified = blob.modified.unwrap_or(now);
    if let Some(report_time) = reports.get(&format!("{}.report.json", blob_report_base(&blob.name)))
    {
        if report_time.is_some_and(|t| t >= modified) {
            return Ok(Verdict::Complete);
        }
    }
    // A new blob's event may still be on its way.
    if now - modified < state.sweep.grace {
        return Ok(Verdict::InProgress);
    }
    let run = Run::new(&blob.name, &blob.etag);
    if state.storage.read_report_blob(&run.done()).await?.is_some() {
        return Ok(Verdict::Complete);
    }
    let run_state: Option<RunState> = state
        .storage
        .read_report_blob(&run.state())
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    if run_state
        .as_ref()
        .is_some_and(|s| now - s.updated_at < state.sweep.stale)
    {
        return Ok(Verdict::InProgress);
    }
    let start = if run_state.is_none() {
        // Never started (its event was missed, or it died before its first write).
        0
    } else {
        match state.checkpoints(&run).resume().await?.progress {
            Progress::Missing(at) => at,
            Progress::Complete { last } => last,
        }
    };
    let period = now.unix_timestamp() / state.sweep.stale.whole_seconds().max(1);
    let marker = format!("{}/sweep/{start:015}-{period}", run.dir);
    if !state
        .storage
        .create_report_blob_once(&marker, Vec::new())
        .await?
    {
        // Another Sweep re-drove it in this period.
        return Ok(Verdict::InProgress);
    }
    if start > 0 {
        // What makes the item one IngestWorkItem accepts (normally written before the send).
        state
            .storage
            .put_report_blob(&run.queued(start), Vec::new())
            .await?;
    }
    let item = WorkItem::new(
        &state.storage.settings.inbox_container,
        &blob.name,
        &blob.etag,
        start,
    );
    state
        .storage
        .enqueue(
            &state.storage.settings.work_queue,
            &serde_json::to_string(&item)?,
        )
        .await?;
    tracing::warn!(blob = %blob.name, start, "sweep re-drove an unfinished input");
    Ok(Verdict::Redriven(start))
}

/// Reports and removes what the host parked in a poison queue.
async fn report_poison(state: &AppState, poison: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    // Bounded: a Sweep never spends its whole timer on one flooded queue.
    for _ in 0..10 {
        let batch: Vec<Received> = state.storage.receive(poison, 60).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let path = format!("poison/{poison}/{}", safe_id(&m.id));
            let excerpt: String = m.text.chars().take(500).collect();
            let cut = if excerpt.len() < m.text.len() {
                "…"
            } else {
                ""
            };
            let report = input_error_report(
                Source {
                    kind: "queue".into(),
                    name: format!("{poison}/{}", m.id),
                    format: None,
                },
                state.uploader.target_name(),
                InputErrorCode::Poisoned,
                format!(
                    "the Functions host moved this message to {poison} after it failed {} times; its whole text is in {path}.rejected.ndjson; it begins: {excerpt}{cut}",
                    super::MAX_DEQUEUE_COUNT
                ),
            );
            // The whole message (at most 64 KiB) is kept, so nothing it carried is lost.
            let outcome = crate::pipeline::RunOutcome {
                rejected: vec![(0, m.text.clone())],
                ..crate::pipeline::RunOutcome::of_report(report)
            };
            state
                .storage
                .write_report(&path, crate::storage::single(outcome), false)
                .await?;
            state.storage.delete_message(poison, &m).await?;
            n += 1;
        }
    }
    Ok(n)
}

fn safe_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}
