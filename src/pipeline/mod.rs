//! The pipeline: input bytes → records → validation → batches → upload → report.
//!
//! It knows nothing of the Functions host or of storage: it takes a stream of byte chunks and
//! returns the report and the original text of every rejected record, so the handler, the CLI
//! and the tests all run this same code. Memory stays bounded by the frame limits, the records
//! decoded per slice, the batch size and the upload concurrency, whatever the input size; the
//! report entries and rejected texts a run holds are bounded by its record range and, in the
//! Functions, by `max_held_bytes` (the run then ends early and a later work item continues).

mod batch;
mod check;
mod duplicates;
mod relationships;
mod report;
mod sink;

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::StreamExt;
use futures::Stream;
use serde_json::{Map, Value};
use ti_core::convert::Defaults;
use ti_core::frame::FrameLimits;
use ti_core::input::{Decoder, InputFormat, InputOptions};
use ti_core::report::{Code, InputError, InputErrorCode, RecordWarning, Report, Source, Summary};
use ti_core::stix::{self, ValidationContext};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::settings::{DanglingRelationships, OnInvalid};
use crate::upload::Uploader;
use batch::{Batches, Earlier, Pending};
pub use check::{check, Checked, Rejected};
use check::{stages_ahead, Stage};
use duplicates::Duplicates;
pub use duplicates::DEDUP_WINDOW;
use relationships::Refused;
pub(crate) use report::one_line;
use report::{duplicate_message, Collector};
pub use report::{empty_report, input_error_report, now_rfc3339, RunOutcome};
pub use sink::SENTINEL_STIX_TYPES;
use sink::{Sink, TargetRules};

/// Everything a run needs besides its input.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub uploader: Uploader,
    /// Stop retrying (and report what is left) by this time: the invocation's own deadline.
    pub deadline: Option<Instant>,
    pub frame_limits: FrameLimits,
    /// A forced input format; detected from the content when `None`.
    pub format: Option<InputFormat>,
    /// What fills the fields non-STIX inputs lack.
    pub defaults: Defaults,
    pub max_input_bytes: u64,
    /// Validate only: nothing is sent (the `validate` command).
    pub validate_only: bool,
    /// Report every valid record as `file_rejected` instead of uploading it: the second pass of
    /// `TI_ON_INVALID=reject-file` when the first pass found invalid records.
    pub reject_valid: bool,
    /// The records this run processes (input indexes); the others are decoded and skipped.
    pub range: std::ops::Range<u64>,
    /// After this time no further record is started: the run ends early and says where
    /// (`RunOutcome::next_start`) so a follow-up work item can continue.
    pub soft_deadline: Option<Instant>,
    /// Live counters for a progress display (the CLI's progress bar).
    pub progress: Option<Arc<Progress>>,
    /// Added to every valid object's `labels` (after its own, without repeats): a pulled
    /// feed's `defaults.labels`, whatever the input format.
    pub labels: Vec<String>,
    /// Once the report entries and rejected texts this run holds reach about this many bytes,
    /// no further record is started (like `soft_deadline`): the run ends early and says where
    /// (`RunOutcome::next_start`). What bounds a work item's memory when most records are
    /// rejected. `None`: no bound (the CLI).
    pub max_held_bytes: Option<usize>,
    /// Told of every object the targets accepted: a pulled list feed's snapshot
    /// (src/lifecycle).
    pub accepted: Option<Arc<crate::lifecycle::Snapshot>>,
    /// Send every valid object revoked (a revoke file: src/lifecycle, `mark_revoked`).
    pub revoke: bool,
}

/// Live counts of a run, updated as records are read and settled.
#[derive(Debug, Default)]
pub struct Progress {
    pub records: AtomicU64,
    pub uploaded: AtomicU64,
    pub rejected: AtomicU64,
}

impl Progress {
    fn publish(&self, s: &Summary) {
        self.records.store(s.records, Ordering::Relaxed);
        self.uploaded.store(s.uploaded, Ordering::Relaxed);
        self.rejected.store(s.rejected, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Summary {
        Summary {
            records: self.records.load(Ordering::Relaxed),
            uploaded: self.uploaded.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

impl RunContext {
    /// The report's `target`: the uploader's targets, or `validate` for a validate-only run.
    pub fn report_target(&self) -> &str {
        if self.validate_only {
            "validate"
        } else {
            self.uploader.target_name()
        }
    }

    /// A run of the whole input with default bounds, no deadline, uploading.
    pub fn new(uploader: Uploader) -> Self {
        RunContext {
            uploader,
            deadline: None,
            frame_limits: FrameLimits::default(),
            format: None,
            defaults: Defaults::default(),
            max_input_bytes: 1 << 30,
            validate_only: false,
            reject_valid: false,
            range: 0..u64::MAX,
            soft_deadline: None,
            progress: None,
            labels: Vec::new(),
            max_held_bytes: None,
            accepted: None,
            revoke: false,
        }
    }
}

/// Bytes of record text framed ahead of the piece being processed, at most (plus one piece):
/// bounds memory when a piece holds far more than its 256 KiB of input (gzip).
const MAX_TEXT_AHEAD_BYTES: usize = 4 << 20;

/// A piece of the input on its way: its records and, for the last piece, the input's format; or
/// the read error that ended the input there.
enum Ahead<E> {
    Records {
        stage: Stage,
        text: usize,
        finished: Option<InputFormat>,
    },
    ReadError(E),
}

/// Adds `labels` to an object's own (which validation made a list of strings, when present),
/// keeping its own first and adding none twice.
fn add_labels(object: &mut Map<String, Value>, labels: &[String]) {
    if labels.is_empty() {
        return;
    }
    let list = object
        .entry("labels")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        for l in labels {
            if !list.iter().any(|x| x.as_str() == Some(l)) {
                list.push(Value::from(l.as_str()));
            }
        }
    }
}

/// The most input bytes decoded before the records they hold are validated and batched.
const DECODE_SLICE_BYTES: usize = 256 * 1024;

/// The most records decoded from one slice at a time (plus one piece's worth, see
/// [`ti_core::input::Decoder::push_chunk_limited`]): with [`stages_ahead`] slices in flight,
/// a few tens of thousands of records at most, however much the input expands.
const MAX_RECORDS_PER_PIECE: usize = 4096;

/// `max_held_bytes` of every Functions invocation: a work item ends (and the next one goes
/// on) once its report entries and rejected texts hold about this much, so an input whose
/// every record is rejected is processed in bounded slices; an HTTP input reaching it is too
/// large for one invocation's answer. With the entries' allocation overhead and the part
/// written from them, a work item then peaks well under 256 MiB (tests/bounds.rs).
pub const INVOCATION_MAX_HELD_BYTES: usize = 16 << 20;

/// Runs the pipeline over `input`. An error from the input stream itself (e.g. storage failing
/// mid-read) is returned as `Err`: the caller decides whether to retry the whole input (uploads
/// are idempotent by id, so a retry re-sends but never duplicates).
pub async fn run<S, E>(input: S, source: Source, ctx: &RunContext) -> Result<RunOutcome, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let started_at = now_rfc3339();
    let validation = ValidationContext {
        now: OffsetDateTime::now_utc(),
        accepted_types: SENTINEL_STIX_TYPES,
    };
    let rules = Arc::new(TargetRules::of(&ctx.uploader, ctx.validate_only));
    let dangling = ctx.uploader.settings().dangling_relationships;
    // Whether the targets take relationships at all (`sentinel-indicators` and `graph` refuse
    // them whole, so their ends do not matter).
    let relationships_sent = rules
        .refusal(&Map::from_iter([(
            "type".to_string(),
            Value::from("relationship"),
        )]))
        .is_none();
    let mut refused = Refused::default();
    // STIX 2.0 objects upgraded to 2.1, and the position in `c.warnings` of the one warning
    // that reports them all.
    let mut upgrades: u64 = 0;
    let mut upgrade_warning: Option<usize> = None;
    let batch_size = ctx.uploader.settings().batch_size;
    let concurrency = ctx.uploader.settings().max_concurrency;
    let mut c = Collector::default();
    let mut framer = Decoder::new(InputOptions {
        format: ctx.format,
        limits: ctx.frame_limits,
        defaults: ctx.defaults,
        now: validation.now,
        max_decompressed_bytes: ctx.max_input_bytes,
        max_ratio: InputOptions::DEFAULT_MAX_RATIO,
    });
    framer.skip_records_before(ctx.range.start);
    let mut input_error: Option<InputError> = None;
    let mut format = None;
    let mut bytes_read: u64 = 0;
    let mut duplicates = Duplicates::default();
    let mut input = input;

    let sink = Sink::new(
        ctx.uploader.clone(),
        ctx.deadline,
        ctx.validate_only,
        ctx.accepted.clone(),
    );
    let mut batches = Batches::new(sink, batch_size, concurrency);

    // `ended`: nothing more will be framed (the input ended, broke, or the range or deadline
    // was reached).
    let mut ended = false;
    let mut next_start = None;
    let mut carry = Bytes::new();
    // The part of the last slice the decoder left for later (its record budget was reached).
    let mut unconsumed: Option<Bytes> = None;
    // Pieces framed but not processed yet, oldest first: while their records are parsed and
    // checked on other threads, the next one is read and framed here. What reading met (the
    // input's end and format, or a read error) takes effect only when processing reaches it, so
    // a run that stops early (the soft deadline) ends as if it had never read further.
    let mut stages: VecDeque<Ahead<E>> = VecDeque::new();
    let mut text_ahead: usize = 0;
    let mut framed_in_range: u64 = 0;
    loop {
        if let Some(p) = &ctx.progress {
            p.publish(&c.summary);
        }
        if !ended && stages.len() < stages_ahead() && text_ahead < MAX_TEXT_AHEAD_BYTES {
            // Large chunks (the blob download hands out 4 MiB) are decoded a slice at a time, so
            // the records waiting to be validated stay few whatever the transport's chunk size;
            // and a slice is decoded only up to MAX_RECORDS_PER_PIECE records at a time (gzip of
            // tiny lines expands a few bytes into thousands of records), its rest kept for the
            // next turn.
            let (records, frame_result) = if let Some(rest) = unconsumed.take() {
                let (records, consumed, r) =
                    framer.push_chunk_limited(&rest, MAX_RECORDS_PER_PIECE);
                if consumed < rest.len() {
                    unconsumed = Some(rest.slice(consumed..));
                }
                (records, r.map(|()| None))
            } else {
                let next = if carry.is_empty() {
                    input.next().await
                } else {
                    let n = carry.len().min(DECODE_SLICE_BYTES);
                    Some(Ok(carry.split_to(n)))
                };
                let next = match next {
                    Some(Ok(mut chunk)) if chunk.len() > DECODE_SLICE_BYTES => {
                        carry = chunk.split_off(DECODE_SLICE_BYTES);
                        Some(Ok(chunk))
                    }
                    other => other,
                };
                match next {
                    Some(Ok(chunk)) => {
                        bytes_read += chunk.len() as u64;
                        if bytes_read > ctx.max_input_bytes {
                            input_error = Some(InputError::new(
                                InputErrorCode::InputTooLarge,
                                format!(
                                    "the input is larger than TI_MAX_INPUT_BYTES ({} bytes); stopped reading at that point",
                                    ctx.max_input_bytes
                                ),
                            ));
                            ended = true;
                            continue;
                        }
                        let (records, consumed, r) =
                            framer.push_chunk_limited(&chunk, MAX_RECORDS_PER_PIECE);
                        if consumed < chunk.len() {
                            unconsumed = Some(chunk.slice(consumed..));
                        }
                        (records, r.map(|()| None))
                    }
                    Some(Err(e)) => {
                        stages.push_back(Ahead::ReadError(e));
                        ended = true;
                        continue;
                    }
                    None => {
                        ended = true;
                        let (records, r) = framer.finish_chunk();
                        (records, r.map(Some))
                    }
                }
            };
            let mut records = records;
            // Records before the range are skipped unparsed; the first one past its end is
            // where a later work item starts.
            if let Some(end) = records.keep_range(&ctx.range) {
                next_start = Some(end);
                ended = true;
            }
            framed_in_range += records.len() as u64;
            let mut finished = None;
            match frame_result {
                Ok(f) => finished = f,
                Err(e) => {
                    input_error = Some(InputError::new(
                        InputErrorCode::InputInvalid,
                        format!(
                            "the input is not valid at line {}: {}; {} record(s) read before this point were processed",
                            e.line, e.message, framed_in_range
                        ),
                    ));
                    ended = true;
                }
            }
            if !records.is_empty() || finished.is_some() {
                let text = records.text_bytes();
                text_ahead += text;
                stages.push_back(Ahead::Records {
                    stage: Stage::start(records, &validation, &rules),
                    text,
                    finished,
                });
            }
            continue;
        }
        let stage = match stages.pop_front() {
            None => break,
            Some(Ahead::ReadError(e)) => return Err(e),
            Some(Ahead::Records {
                stage,
                text,
                finished,
            }) => {
                text_ahead -= text;
                format = finished.or(format);
                stage
            }
        };
        for checked in stage.wait().await {
            let index = checked.index();
            let past_deadline = index > ctx.range.start
                && (ctx.soft_deadline.is_some_and(|d| Instant::now() >= d)
                    || ctx.max_held_bytes.is_some_and(|m| c.held >= m));
            if past_deadline {
                // Everything before this record is settled or in flight; the rest of the input
                // is a later work item's.
                next_start = Some(index);
                ended = true;
                stages.clear();
                break;
            }
            c.summary.records += 1;
            let (index, line, text, mut valid) = match checked {
                Checked::Rejected(r) => {
                    if let Some(id) = &r.id {
                        refused.insert(id, r.index);
                    }
                    c.reject(r.index, Some(r.line), r.id, r.code, r.messages, r.text);
                    continue;
                }
                Checked::Valid {
                    index,
                    line,
                    text,
                    mut valid,
                } => {
                    add_labels(&mut valid.object, &ctx.labels);
                    if ctx.revoke {
                        crate::lifecycle::mark_revoked(&mut valid.object, validation.now);
                    }
                    (index, line, text, valid)
                }
            };
            if ctx.reject_valid {
                c.reject(
                    index,
                    Some(line),
                    Some(valid.id),
                    Code::FileRejected,
                    vec!["not uploaded: TI_ON_INVALID=reject-file and other records of this input are invalid (see their errors); fix them and drop the whole file again".into()],
                    Some(text),
                );
                continue;
            }
            let ends = if relationships_sent {
                refused.dangling_ends(&valid.object, validation.accepted_types)
            } else {
                Vec::new()
            };
            if !ends.is_empty() {
                match dangling {
                    DanglingRelationships::Skip => {
                        let mut messages = ends;
                        messages.push("not uploaded: TI_DANGLING_RELATIONSHIPS=skip".into());
                        refused.insert(&valid.id, index);
                        c.reject(
                            index,
                            Some(line),
                            Some(valid.id),
                            Code::DanglingRelationship,
                            messages,
                            Some(text),
                        );
                        continue;
                    }
                    DanglingRelationships::Warn => valid.warnings.push(stix::Problem::new(
                        Code::DanglingRelationship,
                        ends.join("; "),
                    )),
                }
            }
            if let Some(u) = valid.upgrade.take() {
                upgrades += 1;
                if upgrade_warning.is_none() {
                    upgrade_warning = Some(c.warnings.len());
                    c.warning(RecordWarning {
                        record_index: index,
                        line: Some(line),
                        id: Some(valid.id.clone()),
                        code: u.code,
                        messages: vec![u.message],
                    });
                }
            }
            if let Some((prev, prev_line)) = duplicates.repeat_of(&valid.id, index, line) {
                match batches.supersede(prev, (index, line)) {
                    Earlier::Removed(p) => c.reject(
                        p.index,
                        Some(p.line),
                        Some(p.id),
                        Code::Duplicate,
                        vec![duplicate_message(index, line)],
                        Some(p.text),
                    ),
                    Earlier::InFlight => {}
                    Earlier::Settled if !c.rejected_indices.contains(&prev) => {
                        // Already uploaded: the later record will overwrite it at the
                        // service. It is reported as the duplicate it is; its text was not
                        // kept, so it is not repeated in the rejected file.
                        c.summary.uploaded -= 1;
                        c.reject(
                            prev,
                            Some(prev_line),
                            Some(valid.id.clone()),
                            Code::Duplicate,
                            vec![duplicate_message(index, line)],
                            None,
                        );
                    }
                    Earlier::Settled => {}
                }
            }
            for w in &valid.warnings {
                c.warning(RecordWarning {
                    record_index: index,
                    line: Some(line),
                    id: Some(valid.id.clone()),
                    code: w.code,
                    messages: vec![w.message.clone()],
                });
            }
            let pending = Pending {
                index,
                line,
                id: valid.id,
                text,
            };
            batches.push(pending, valid.object, &mut c).await;
        }
    }
    if let Some(p) = &ctx.progress {
        p.publish(&c.summary);
    }
    batches
        .finish(&mut c, |c| {
            if let Some(p) = &ctx.progress {
                p.publish(&c.summary);
            }
        })
        .await;
    if next_start.is_some() {
        // A broken frame or a size bound met after the stop point belongs to a later item.
        input_error = None;
    }
    if let Some(w) = upgrade_warning.and_then(|i| c.warnings.get_mut(i)) {
        w.messages.insert(
            0,
            format!(
                "the input holds STIX 2.0: {upgrades} object(s) were upgraded to STIX 2.1 the same way (this record is the first); this one warning stands for them all"
            ),
        );
    }
    c.errors.sort_by_key(|e| e.record_index);
    // Stable: a record's own warnings keep their order.
    c.warnings.sort_by_key(|w| w.record_index);
    c.rejected.sort_by_key(|(i, _)| *i);
    let target = ctx.report_target().to_string();
    let report = Report {
        source: Source {
            format: format
                .or(framer.format())
                .map(|f| f.name().to_string())
                .or(source.format),
            ..source
        },
        target,
        started_at,
        finished_at: now_rfc3339(),
        summary: c.summary,
        input_error,
        errors: c.errors,
        warnings: c.warnings,
        error_counts: Default::default(),
        warning_counts: Default::default(),
        more_errors_in: None,
        more_warnings_in: None,
        lifecycle: None,
    };
    tracing::info!(
        source = %report.source.name,
        records = report.summary.records,
        uploaded = report.summary.uploaded,
        rejected = report.summary.rejected,
        "input processed"
    );
    debug_assert_eq!(report.check_invariants(), Ok(()));
    // Targets that keep state (the Defender budget) write it once the run is done.
    ctx.uploader.flush().await;
    Ok(RunOutcome {
        report,
        rejected: c.rejected,
        next_start,
        csv_header: framer.csv_header().map(str::to_owned),
    })
}

/// Runs an input under the `TI_ON_INVALID` policy. `open` gives a fresh stream of the input each
/// time it is called: with `reject-file` the input is read twice, first to validate everything
/// (nothing is sent), then, only when every record is valid, to upload. When some record is
/// invalid the first pass is the report: every valid record is `file_rejected`. Lines that are
/// no indicator at all (`not_an_indicator`: a text list's headings) do not count as invalid.
pub async fn run_input<F, Fut, S, E>(
    mut open: F,
    source: Source,
    ctx: &RunContext,
) -> Result<RunOutcome, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<S, E>>,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    if ctx.uploader.settings().on_invalid == OnInvalid::Skip {
        return run(open().await?, source, ctx).await;
    }
    // The whole input is checked, whatever range this run uploads: one invalid record
    // anywhere rejects the file.
    // Its report is the whole input's, so it cannot stop part-way (for this policy a work
    // item's memory is bounded by the input, not by `max_held_bytes`).
    let first_pass = RunContext {
        reject_valid: true,
        range: 0..u64::MAX,
        soft_deadline: None,
        max_held_bytes: None,
        ..ctx.clone()
    };
    let first = run(open().await?, source.clone(), &first_pass).await?;
    // A text list's headings and prose lines (`not_an_indicator`, docs/REPORTS.md) are no
    // invalid indicators: they are reported, and do not reject the file.
    let all_valid = first.report.input_error.is_none()
        && first
            .report
            .errors
            .iter()
            .all(|e| matches!(e.code, Code::FileRejected | Code::NotAnIndicator));
    if !all_valid {
        return Ok(first);
    }
    run(open().await?, source, ctx).await
}

/// A one-chunk stream, for inputs already in memory (queue messages, HTTP bodies).
pub fn once(bytes: Vec<u8>) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin {
    futures::stream::iter([Ok(Bytes::from(bytes))])
}

#[cfg(test)]
mod tests;
