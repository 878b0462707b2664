//! The pipeline: input bytes → records → validation → batches → upload → report.
//!
//! It knows nothing of the Functions host or of storage: it takes a stream of byte chunks
//! ([`run`]), or of records already framed ([`run_records`]: a TAXII pull's objects), and
//! returns the report and the original text of every rejected record, so the handler, the CLI,
//! the pulls and the tests all run this same code; both entries share every stage after the
//! framing (`Run`). Memory stays bounded by the frame limits, the records
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
use std::convert::Infallible;
use std::fmt::{self, Display};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::StreamExt;
use futures::Stream;
use serde_json::{Map, Value};
use ti_core::convert::Defaults;
use ti_core::frame::{FrameLimits, RawRecord};
use ti_core::input::{Chunk, Decoder, InputFormat, InputOptions};
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
    /// Fills in what each record's object leaves out, once decoded and before it is
    /// validated: a TAXII feed's defaults (src/pull/taxii.rs, `apply_defaults`).
    pub fill: Option<Fill>,
}

/// A change made to every decoded object before validation ([`RunContext::fill`]); it runs
/// on the blocking pool, beside the checks.
#[derive(Clone)]
pub struct Fill(pub Arc<FillFn>);

/// What a [`Fill`] runs on each decoded object.
pub type FillFn = dyn Fn(&mut Map<String, Value>) + Send + Sync;

impl fmt::Debug for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fill(..)")
    }
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
            fill: None,
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
    let mut run = Run::new(ctx);
    let mut framer = Decoder::new(run.input_options());
    framer.skip_records_before(ctx.range.start);
    let mut bytes_read: u64 = 0;
    let mut input = input;
    let mut carry = Bytes::new();
    // The part of the last slice the decoder left for later (its record budget was reached).
    let mut unconsumed: Option<Bytes> = None;
    loop {
        if !run.reads_ahead() {
            if run.process_next().await? {
                continue;
            }
            break;
        }
        // Large chunks (the blob download hands out 4 MiB) are decoded a slice at a time, so
        // the records waiting to be validated stay few whatever the transport's chunk size; and
        // a slice is decoded only up to MAX_RECORDS_PER_PIECE records at a time (gzip of tiny
        // lines expands a few bytes into thousands of records), its rest kept for the next turn.
        let (records, frame_result) = if let Some(rest) = unconsumed.take() {
            let (records, consumed, r) = framer.push_chunk_limited(&rest, MAX_RECORDS_PER_PIECE);
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
                        run.fail_input(input_too_large(ctx.max_input_bytes));
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
                    run.read_error(e);
                    continue;
                }
                None => {
                    run.end_input();
                    let (records, r) = framer.finish_chunk();
                    (records, r.map(Some))
                }
            }
        };
        let finished = frame_result.as_ref().ok().copied().flatten();
        run.push(records, finished);
        if let Err(e) = frame_result {
            run.fail_input(InputError::new(
                InputErrorCode::InputInvalid,
                format!(
                    "the input is not valid at line {}: {}; {} record(s) read before this point were processed",
                    e.line, e.message, run.read_in_range
                ),
            ));
        }
    }
    let csv_header = framer.csv_header().map(str::to_owned);
    Ok(run.finish(source, framer.format(), csv_header).await)
}

/// Runs the pipeline over records the caller framed: each one JSON text with its index and
/// line (a pulled TAXII page's objects: src/pull/taxii.rs), handed over a batch at a time. A
/// batch is asked for only when the run has room to read ahead, as a byte input's chunks are,
/// and is checked a piece at a time ([`MAX_RECORDS_PER_PIECE`] records, about
/// [`DECODE_SLICE_BYTES`] of text). Everything after the framing is [`run`]'s: each text
/// bounded as an element of a JSON array ([`Chunk::of_json_records`]), then the same checks,
/// relationships, duplicates, batches, sink and report, with the same bounds (the record
/// range, the soft deadline, `max_held_bytes`; `max_input_bytes` counts the records' text).
/// The report's `source.format` is `ctx.format`.
pub async fn run_records<S>(records: S, source: Source, ctx: &RunContext) -> RunOutcome
where
    S: Stream<Item = Vec<RawRecord>> + Unpin,
{
    let mut run: Run<'_, Infallible> = Run::new(ctx);
    let opts = run.input_options();
    let mut records = records;
    let mut text_read: u64 = 0;
    // What is left of the last batch, handed on a piece at a time.
    let mut rest = Vec::new().into_iter();
    loop {
        if !run.reads_ahead() {
            match run.process_next().await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(never) => match never {},
            }
        }
        if rest.len() == 0 {
            match records.next().await {
                Some(batch) => rest = batch.into_iter(),
                None => run.end_input(),
            }
            continue;
        }
        let mut piece = Vec::new();
        let mut text = 0;
        while piece.len() < MAX_RECORDS_PER_PIECE && text < DECODE_SLICE_BYTES {
            let Some(r) = rest.next() else { break };
            text += r.text.len();
            piece.push(r);
        }
        text_read += text as u64;
        if text_read > ctx.max_input_bytes {
            run.fail_input(input_too_large(ctx.max_input_bytes));
            continue;
        }
        run.push(Chunk::of_json_records(piece, &opts), None);
    }
    run.finish(source, ctx.format, None).await
}

fn input_too_large(max_input_bytes: u64) -> InputError {
    InputError::new(
        InputErrorCode::InputTooLarge,
        format!(
            "the input is larger than TI_MAX_INPUT_BYTES ({max_input_bytes} bytes); stopped reading at that point"
        ),
    )
}

/// What a run holds once its input is read into records, whichever entry read it ([`run`]
/// frames bytes, [`run_records`] is handed records): the pieces read ahead, being checked on
/// the blocking pool, then, a piece at a time and in input order, relationships, duplicates,
/// batches and the sink, and what the report is built from.
struct Run<'a, E> {
    ctx: &'a RunContext,
    started_at: String,
    validation: ValidationContext,
    rules: Arc<TargetRules>,
    dangling: DanglingRelationships,
    /// Whether the targets take relationships at all (`sentinel-indicators` and `graph` refuse
    /// them whole, so their ends do not matter).
    relationships_sent: bool,
    refused: Refused,
    /// STIX 2.0 objects upgraded to 2.1, and the position in `c.warnings` of the one warning
    /// that reports them all.
    upgrades: u64,
    upgrade_warning: Option<usize>,
    c: Collector,
    duplicates: Duplicates,
    batches: Batches,
    input_error: Option<InputError>,
    /// The input's format, once processing reached the piece that ended the input.
    format: Option<InputFormat>,
    /// Nothing more will be read (the input ended, broke, or the range or deadline was
    /// reached).
    ended: bool,
    next_start: Option<u64>,
    /// Pieces read but not processed yet, oldest first: while their records are parsed and
    /// checked on other threads, the next one is read here. What reading met (the input's end
    /// and format, or a read error) takes effect only when processing reaches it, so a run that
    /// stops early (the soft deadline) ends as if it had never read further.
    stages: VecDeque<Ahead<E>>,
    text_ahead: usize,
    /// Records read within the range so far.
    read_in_range: u64,
}

impl<'a, E> Run<'a, E> {
    fn new(ctx: &'a RunContext) -> Self {
        let started_at = now_rfc3339();
        let validation = ValidationContext {
            now: OffsetDateTime::now_utc(),
            accepted_types: SENTINEL_STIX_TYPES,
        };
        let rules = Arc::new(TargetRules::of(&ctx.uploader, ctx.validate_only));
        let relationships_sent = rules
            .refusal(&Map::from_iter([(
                "type".to_string(),
                Value::from("relationship"),
            )]))
            .is_none();
        let settings = ctx.uploader.settings();
        let sink = Sink::new(
            ctx.uploader.clone(),
            ctx.deadline,
            ctx.validate_only,
            ctx.accepted.clone(),
        );
        Run {
            ctx,
            started_at,
            validation,
            rules,
            dangling: settings.dangling_relationships,
            relationships_sent,
            refused: Refused::default(),
            upgrades: 0,
            upgrade_warning: None,
            c: Collector::default(),
            duplicates: Duplicates::default(),
            batches: Batches::new(sink, settings.batch_size, settings.max_concurrency),
            input_error: None,
            format: None,
            ended: false,
            next_start: None,
            stages: VecDeque::new(),
            text_ahead: 0,
            read_in_range: 0,
        }
    }

    /// How the input is decoded into records.
    fn input_options(&self) -> InputOptions {
        InputOptions {
            format: self.ctx.format,
            limits: self.ctx.frame_limits,
            defaults: self.ctx.defaults,
            now: self.validation.now,
            max_decompressed_bytes: self.ctx.max_input_bytes,
            max_ratio: InputOptions::DEFAULT_MAX_RATIO,
        }
    }

    /// Whether to read another piece before processing the oldest one.
    fn reads_ahead(&self) -> bool {
        !self.ended && self.stages.len() < stages_ahead() && self.text_ahead < MAX_TEXT_AHEAD_BYTES
    }

    /// A piece of records read, and for the last piece the input's format. Records before the
    /// range are dropped unparsed; the first one past its end is where a later work item
    /// starts, and reading stops there. The rest start through [`check`].
    fn push(&mut self, records: Chunk, finished: Option<InputFormat>) {
        self.publish();
        let mut records = records;
        if let Some(end) = records.keep_range(&self.ctx.range) {
            self.next_start = Some(end);
            self.ended = true;
        }
        self.read_in_range += records.len() as u64;
        if !records.is_empty() || finished.is_some() {
            let text = records.text_bytes();
            self.text_ahead += text;
            self.stages.push_back(Ahead::Records {
                stage: Stage::start(
                    records,
                    &self.validation,
                    &self.rules,
                    self.ctx.fill.as_ref(),
                ),
                text,
                finished,
            });
        }
    }

    /// The input ended: nothing more is read.
    fn end_input(&mut self) {
        self.ended = true;
    }

    /// The input broke or met a bound: nothing more is read, and the report says why.
    fn fail_input(&mut self, error: InputError) {
        self.input_error = Some(error);
        self.ended = true;
    }

    /// Reading the input failed: once processing reaches this point, the run returns `e`.
    fn read_error(&mut self, e: E) {
        self.stages.push_back(Ahead::ReadError(e));
        self.ended = true;
    }

    fn publish(&self) {
        if let Some(p) = &self.ctx.progress {
            p.publish(&self.c.summary);
        }
    }

    /// Processes the oldest piece read: its verdicts, in input order, through relationships,
    /// duplicates and batches. `Ok(false)` when no piece is left; the read error when
    /// processing reaches one.
    async fn process_next(&mut self) -> Result<bool, E> {
        self.publish();
        let Run {
            ctx,
            validation,
            dangling,
            relationships_sent,
            refused,
            upgrades,
            upgrade_warning,
            c,
            duplicates,
            batches,
            format,
            ended,
            next_start,
            stages,
            text_ahead,
            ..
        } = self;
        let stage = match stages.pop_front() {
            None => return Ok(false),
            Some(Ahead::ReadError(e)) => return Err(e),
            Some(Ahead::Records {
                stage,
                text,
                finished,
            }) => {
                *text_ahead -= text;
                *format = finished.or(*format);
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
                *next_start = Some(index);
                *ended = true;
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
            let ends = if *relationships_sent {
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
                *upgrades += 1;
                if upgrade_warning.is_none() {
                    *upgrade_warning = Some(c.warnings.len());
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
            batches.push(pending, valid.object, c).await;
        }
        Ok(true)
    }

    /// Settles what is in flight and builds the outcome. `read_format`: the input's format as
    /// far as reading knew it (a run that stopped early never processed the piece that ended
    /// the input).
    async fn finish(
        self,
        source: Source,
        read_format: Option<InputFormat>,
        csv_header: Option<String>,
    ) -> RunOutcome {
        let Run {
            ctx,
            started_at,
            upgrades,
            upgrade_warning,
            mut c,
            batches,
            mut input_error,
            format,
            next_start,
            ..
        } = self;
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
                    .or(read_format)
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
        RunOutcome {
            report,
            rejected: c.rejected,
            next_start,
            csv_header,
        }
    }
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
