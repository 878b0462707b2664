//! The pipeline: input bytes → records → validation → batches → upload → report.
//!
//! It knows nothing of the Functions host or of storage: it takes a stream of byte chunks and
//! returns the report and the original text of every rejected record, so the handler, the CLI
//! and the tests all run this same code. Memory stays bounded by the frame limits, the records
//! decoded per slice, the batch size and the upload concurrency, whatever the input size; the
//! report entries and rejected texts a run holds are bounded by its record range and, in the
//! Functions, by `max_held_bytes` (the run then ends early and a later work item continues).

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::Stream;
use serde_json::{Map, Value};
use ti_core::convert::Defaults;
use ti_core::frame::FrameLimits;
use ti_core::input::{Chunk, Decoded, Decoder, InputFormat, InputOptions};
use ti_core::report::{
    Code, InputError, InputErrorCode, RecordError, RecordWarning, Report, Source, Summary,
};
use ti_core::stix::{self, ValidationContext};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::settings::{DanglingRelationships, OnInvalid};
use crate::upload::{BatchOutcome, Failure, RequestBuilder, Uploader};

/// The STIX object types validation lets through (README.md, Upload targets): the Sentinel STIX
/// objects API's; a target that takes fewer refuses the rest itself.
pub const SENTINEL_STIX_TYPES: &[&str] = ti_core::stix::STIX_OBJECTS_API_TYPES;

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

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: Report,
    /// `(recordIndex, original text)` of every rejected record whose text was kept, by index.
    pub rejected: Vec<(u64, String)>,
    /// Set when the run stopped before the end of the input (the end of its record range, or
    /// its soft deadline): the index of the first record it did not process.
    pub next_start: Option<u64>,
    /// A CSV input's header row: the rejected file starts with it, so the file can be fixed
    /// and dropped back as CSV.
    pub csv_header: Option<String>,
}

impl RunOutcome {
    /// The outcome of an input that yielded no records to keep (refused whole, unreadable, or
    /// nothing new): just its report.
    pub fn of_report(report: Report) -> Self {
        RunOutcome {
            report,
            rejected: Vec::new(),
            next_start: None,
            csv_header: None,
        }
    }

    /// For an input that cannot continue in a later invocation (an HTTP body, a queue message):
    /// a run that stopped at `max_held_bytes` ends with `input_too_large`; the records before
    /// the stop are reported as usual.
    pub fn cut_short_is_too_large(mut self) -> Self {
        if let Some(at) = self.next_start.take() {
            self.report.input_error = Some(InputError::new(
                InputErrorCode::InputTooLarge,
                format!(
                    "the input's rejected records and warnings outgrow what one invocation may hold: the first {at} records are reported, the rest were not read; drop the file into the inbox container instead, where it is processed in work items"
                ),
            ));
        }
        self
    }

    /// Records that failed only because transient failures outlasted the retry budget: a later
    /// attempt could still upload them.
    pub fn transient_failures(&self) -> usize {
        self.report
            .errors
            .iter()
            .filter(|e| matches!(e.code, Code::RetriesExhausted | Code::AuthFailed))
            .count()
    }

    /// The original text of rejected record `index`, when it was kept.
    pub fn original(&self, index: u64) -> Option<&str> {
        self.rejected
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|at| self.rejected[at].1.as_str())
    }

    /// The rejected records as NDJSON, one original record per line (CSV rows after the
    /// input's header row).
    pub fn rejected_ndjson(&self) -> String {
        let mut out = String::new();
        if let (Some(header), false) = (&self.csv_header, self.rejected.is_empty()) {
            out.push_str(header);
            out.push('\n');
        }
        for (_, text) in &self.rejected {
            out.push_str(&one_line(text));
            out.push('\n');
        }
        out
    }
}

/// A record's text on one line, as written otherwise: a JSON record spanning several lines loses
/// only the whitespace between its tokens (its keys keep their order, its values their spelling);
/// any other text has its line breaks turned into spaces.
pub(crate) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return std::borrow::Cow::Borrowed(text);
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return std::borrow::Cow::Owned(text.replace(['\r', '\n'], " "));
    }
    // Valid JSON: a string cannot hold a raw line break, so every whitespace byte outside
    // strings is insignificant and can go.
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for ch in text.chars() {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if ch == '"' {
            in_string = true;
        } else if matches!(ch, ' ' | '\t' | '\r' | '\n') {
            continue;
        }
        out.push(ch);
    }
    std::borrow::Cow::Owned(out)
}

/// [`one_line`] of an owned text, without a copy when it is one line already.
fn one_line_owned(text: String) -> String {
    match one_line(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(t) => t,
    }
}

/// A rejected record, as [`check`] found it.
pub struct Rejected {
    pub index: u64,
    pub line: u64,
    pub id: Option<String>,
    pub code: Code,
    pub messages: Vec<String>,
    /// The original text, when it was kept.
    pub text: Option<String>,
}

/// The verdict on one decoded record.
pub enum Checked {
    Rejected(Rejected),
    Valid {
        index: u64,
        line: u64,
        text: String,
        valid: stix::Valid,
    },
}

/// Decoding and validation of one record: the part of the pipeline every command shares.
pub fn check(item: Decoded, validation: &ValidationContext) -> Checked {
    let Decoded {
        index,
        line,
        original,
        object,
        warnings: decode_warnings,
    } = item;
    let object = match object {
        Ok(o) => o,
        Err(p) => {
            let mut message = p.message;
            if original.is_none() {
                message.push_str(" (its text is not kept in the rejected file)");
            }
            return Checked::Rejected(Rejected {
                index,
                line,
                id: None,
                code: p.code,
                messages: vec![message],
                text: original,
            });
        }
    };
    let text = original.unwrap_or_default();
    match stix::validate(object, validation) {
        Err(invalid) => {
            let code = invalid
                .problems
                .first()
                .map(|p| p.code)
                .unwrap_or(Code::InvalidProperty);
            Checked::Rejected(Rejected {
                index,
                line,
                id: invalid.id,
                code,
                messages: invalid.problems.into_iter().map(|p| p.message).collect(),
                text: Some(text),
            })
        }
        Ok(mut valid) => {
            valid.warnings.splice(0..0, decode_warnings);
            Checked::Valid {
                index,
                line,
                text,
                valid,
            }
        }
    }
}

impl Checked {
    /// The record's 0-based position in the input.
    pub fn index(&self) -> u64 {
        match self {
            Checked::Rejected(r) => r.index,
            Checked::Valid { index, .. } => *index,
        }
    }
}

/// Chunks in flight at once (each at most [`DECODE_SLICE_BYTES`] of input): one per core plus
/// one, so every core parses and validates a chunk while this task frames the next; at least 2,
/// at most 9 (memory).
fn stages_ahead() -> usize {
    static STAGES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *STAGES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores + 1).clamp(2, 9)
    })
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

/// Chunks with fewer records (a queue message, the end of an input) are checked in place: a
/// thread hand-off would cost more than it saves.
const INLINE_MAX_RECORDS: usize = 16;

/// One chunk's records on their way through [`check`]: done at once when they are few, else
/// parsed and checked on a blocking-pool thread while the pipeline frames the next chunks.
enum Stage {
    Ready(Vec<Checked>),
    Running(tokio::task::JoinHandle<Vec<Checked>>),
}

impl Stage {
    fn start(records: Chunk, validation: &ValidationContext, rules: &Arc<TargetRules>) -> Stage {
        if records.len() < INLINE_MAX_RECORDS {
            return Stage::Ready(check_chunk(records, validation, rules));
        }
        let validation = validation.clone();
        let rules = rules.clone();
        // CPU-bound work belongs on the blocking pool, not on the runtime's workers; the runtime
        // then also knows work is under way (a paused test clock does not jump ahead meanwhile),
        // and a panic comes back through the join handle.
        Stage::Running(tokio::task::spawn_blocking(move || {
            check_chunk(records, &validation, &rules)
        }))
    }

    async fn wait(self) -> Vec<Checked> {
        match self {
            Stage::Ready(checked) => checked,
            Stage::Running(task) => match task.await {
                Ok(checked) => checked,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a record check task did not finish: {e}"),
            },
        }
    }
}

/// What the targets do to a record beyond STIX validation: what they would refuse before sending
/// (`sentinel-indicators`: anything but indicators; `graph`: what does not convert), checked in
/// validate-only runs; and what they would shorten (`graph`: a description over 100
/// characters), reported as a warning in every run.
struct TargetRules {
    targets: Vec<(&'static str, RequestBuilder)>,
    /// Several targets: each message names its target, as a real run's do.
    name_them: bool,
    /// Nothing is sent: refusals are checked here, and the objects dropped once checked.
    validate_only: bool,
}

impl TargetRules {
    fn of(uploader: &Uploader, validate_only: bool) -> TargetRules {
        let (targets, name_them) = uploader.validation_targets();
        TargetRules {
            targets,
            name_them,
            validate_only,
        }
    }

    /// `value_shortened` warnings for what a target would cut to fit (Graph's 100-character
    /// `description`), each message naming the target.
    fn shortenings(&self, object: &Map<String, Value>) -> Vec<stix::Problem> {
        if object.get("type").and_then(Value::as_str) != Some("indicator") {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (name, builder) in &self.targets {
            found.extend(
                builder
                    .shortenings(object)
                    .into_iter()
                    .map(|w| stix::Problem::new(w.code, format!("{name}: {}", w.message))),
            );
        }
        found
    }

    /// The first refusing target's code, with every refusing target's messages.
    fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        let mut found: Option<Failure> = None;
        for (name, builder) in &self.targets {
            let Some(f) = builder.refusal(object) else {
                continue;
            };
            let messages = f.messages.into_iter().map(|m| {
                if self.name_them {
                    format!("{name}: {m}")
                } else {
                    m
                }
            });
            match &mut found {
                Some(first) => first.messages.extend(messages),
                None => {
                    found = Some(Failure {
                        code: f.code,
                        messages: messages.collect(),
                    })
                }
            }
        }
        found
    }
}

/// Parses (JSON records) and checks a chunk's records, in order, adding the targets'
/// `value_shortened` warnings. In validate-only runs the targets' own refusals are checked too,
/// and the objects are then dropped here, on the same thread, since nothing will be sent (all but
/// a relationship's ends, which the dangling-relationship check needs).
fn check_chunk(
    records: Chunk,
    validation: &ValidationContext,
    rules: &TargetRules,
) -> Vec<Checked> {
    records.decode_then(|item| match check(item, validation) {
        Checked::Valid {
            index,
            line,
            text,
            mut valid,
        } => {
            if rules.validate_only {
                if let Some(f) = rules.refusal(&valid.object) {
                    return Checked::Rejected(Rejected {
                        index,
                        line,
                        id: Some(valid.id),
                        code: f.code,
                        messages: f.messages,
                        text: Some(text),
                    });
                }
            }
            let shortened = rules.shortenings(&valid.object);
            valid.warnings.extend(shortened);
            if rules.validate_only {
                valid.object = relationship_ends(&valid.object);
            }
            Checked::Valid {
                index,
                line,
                text,
                valid,
            }
        }
        checked => checked,
    })
}

/// What a validate-only run keeps of a valid object: a relationship's `type` and ends.
fn relationship_ends(object: &Map<String, Value>) -> Map<String, Value> {
    if object.get("type").and_then(Value::as_str) != Some("relationship") {
        return Map::new();
    }
    ["type", "source_ref", "target_ref"]
        .into_iter()
        .filter_map(|k| object.get(k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// The ids of the objects refused in this input so far (rejected by validation or, in a
/// validate-only run, by a target's rules), for the dangling-relationship check: `id_key(id) →
/// record index`. Bounded like the duplicate check: it forgets everything after
/// [`DEDUP_WINDOW`] entries. Refusals by the service itself (an `errors[]` entry) are known only
/// after their request finished, so they are not counted.
#[derive(Default)]
struct Refused {
    ids: nohash_hasher::IntMap<u64, u64>,
}

impl Refused {
    fn insert(&mut self, id: &str, index: u64) {
        if self.ids.len() >= DEDUP_WINDOW {
            self.ids.clear();
        }
        self.ids.insert(id_key(id), index);
    }

    /// For a relationship: one message per end that is an object the target will not hold (a
    /// type outside `accepted`, or an object refused earlier in the input). Empty otherwise.
    fn dangling_ends(&self, object: &Map<String, Value>, accepted: &[&str]) -> Vec<String> {
        if object.get("type").and_then(Value::as_str) != Some("relationship") {
            return Vec::new();
        }
        let mut messages = Vec::new();
        for key in ["source_ref", "target_ref"] {
            let Some(r) = object.get(key).and_then(Value::as_str) else {
                continue;
            };
            let ty = stix::identifier_type(r).unwrap_or_default();
            if !accepted.contains(&ty) {
                messages.push(format!(
                    "{key} {r} is a '{ty}', a type the target does not accept (accepted: {}): the relationship points at an object the target will not hold",
                    accepted.join(", ")
                ));
            } else if let Some(i) = self.ids.get(&id_key(r)) {
                messages.push(format!(
                    "{key} {r} was refused (record {i} of this input): the relationship points at an object the target will not hold"
                ));
            }
        }
        messages
    }
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

/// A record waiting in a batch.
struct Pending {
    index: u64,
    line: u64,
    id: String,
    text: String,
}

struct Collector {
    /// Records already sent whose id a later record of the input repeats: `earlier index →
    /// (later index, later line)`. They are reported as `duplicate` whatever the service said,
    /// because the later record is the one that stands.
    superseded: HashMap<u64, (u64, u64)>,
    /// Indexes of the records in requests not yet settled.
    in_flight: std::collections::HashSet<u64>,
    /// Indexes of every rejected record (to tell, for a duplicate id, whether the earlier
    /// record was uploaded).
    rejected_indices: std::collections::HashSet<u64>,
    summary: Summary,
    errors: Vec<RecordError>,
    warnings: Vec<RecordWarning>,
    rejected: Vec<(u64, String)>,
    /// Roughly the heap bytes of `errors`, `warnings` and `rejected`.
    held: usize,
}

/// Heap bytes of a report entry, roughly: the entry, its id and its messages.
fn entry_bytes(id: Option<&str>, messages: &[String]) -> usize {
    std::mem::size_of::<RecordError>()
        + id.map_or(0, str::len)
        + messages.iter().map(|m| m.len() + 24).sum::<usize>()
}

impl Collector {
    fn error(&mut self, e: RecordError) {
        self.held += entry_bytes(e.id.as_deref(), &e.messages);
        self.errors.push(e);
    }

    fn warning(&mut self, w: RecordWarning) {
        self.held += entry_bytes(w.id.as_deref(), &w.messages);
        self.warnings.push(w);
    }

    fn keep_text(&mut self, index: u64, text: String) {
        let text = one_line_owned(text);
        self.held += text.len() + 32;
        self.rejected.push((index, text));
    }

    fn reject(
        &mut self,
        index: u64,
        line: Option<u64>,
        id: Option<String>,
        code: Code,
        messages: Vec<String>,
        text: Option<String>,
    ) {
        self.summary.rejected += 1;
        self.rejected_indices.insert(index);
        self.error(RecordError {
            record_index: index,
            line,
            id,
            stage: code.stage(),
            code,
            messages,
        });
        if let Some(t) = text {
            self.keep_text(index, t);
        }
    }

    fn settle(&mut self, batch: Vec<Pending>, outcome: BatchOutcome) {
        debug_assert_eq!(batch.len(), outcome.len());
        for (p, o) in batch.into_iter().zip(outcome) {
            self.in_flight.remove(&p.index);
            if let Some((later, later_line)) = self.superseded.remove(&p.index) {
                self.reject(
                    p.index,
                    Some(p.line),
                    Some(p.id),
                    Code::Duplicate,
                    vec![duplicate_message(later, later_line)],
                    Some(p.text),
                );
                continue;
            }
            match o {
                None => self.summary.uploaded += 1,
                Some(f) => {
                    self.summary.rejected += 1;
                    self.rejected_indices.insert(p.index);
                    self.error(RecordError {
                        record_index: p.index,
                        line: Some(p.line),
                        id: Some(p.id),
                        stage: f.code.stage(),
                        code: f.code,
                        messages: f.messages,
                    });
                    self.keep_text(p.index, p.text);
                }
            }
        }
    }
}

fn duplicate_message(later: u64, later_line: u64) -> String {
    format!(
        "record {later} (line {later_line}) has the same id; the last record with an id wins, so this one is not uploaded"
    )
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

/// How many valid records' ids are remembered for the duplicate check (about 3 MiB).
pub const DEDUP_WINDOW: usize = 100_000;

/// A compact key for an id, so tracking the ids of a million records costs megabytes, not
/// the ids themselves. A 64-bit collision among one input's ids is vanishingly unlikely.
fn id_key(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Now, as reports write it: RFC 3339 UTC, whole seconds.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&Rfc3339)
        .expect("UTC timestamps always format")
}

/// A report with no records: the input failed before any (`error`), or had none.
pub fn empty_report(source: Source, target: &str, error: Option<InputError>) -> Report {
    let now = now_rfc3339();
    Report {
        source,
        target: target.to_string(),
        started_at: now.clone(),
        finished_at: now,
        summary: Summary::default(),
        input_error: error,
        errors: vec![],
        warnings: vec![],
        error_counts: Default::default(),
        warning_counts: Default::default(),
        more_errors_in: None,
        more_warnings_in: None,
        lifecycle: None,
    }
}

/// A report for an input that could not be read at all.
pub fn input_error_report(
    source: Source,
    target: &str,
    code: InputErrorCode,
    message: String,
) -> Report {
    let error = InputError::new(code, message);
    empty_report(source, target, Some(error))
}

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
    let mut c = Collector {
        superseded: HashMap::new(),
        in_flight: Default::default(),
        rejected_indices: Default::default(),
        summary: Summary::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        rejected: Vec::new(),
        held: 0,
    };
    let mut framer = Decoder::new(InputOptions {
        format: ctx.format,
        limits: ctx.frame_limits,
        defaults: ctx.defaults,
        now: validation.now,
        max_decompressed_bytes: ctx.max_input_bytes,
        max_ratio: InputOptions::DEFAULT_MAX_RATIO,
    });
    framer.skip_records_before(ctx.range.start);
    let mut batch: Vec<(Pending, Map<String, Value>)> = Vec::with_capacity(batch_size);
    let mut in_flight = FuturesUnordered::new();
    let mut input_error: Option<InputError> = None;
    let mut format = None;
    let mut bytes_read: u64 = 0;
    // id → (index, line) of the latest valid record with that id. The keys are already hashes
    // (`id_key`), so the table does not hash them again.
    let mut seen: nohash_hasher::IntMap<u64, (u64, u64)> = Default::default();
    // Set when a record repeats the id of one already sent: the batch holding the later record
    // must not be sent until the earlier one's request has finished, or the service could end
    // up with the earlier version.
    let mut barrier = false;
    let mut input = input;

    let send = |batch: Vec<(Pending, Map<String, Value>)>| {
        let uploader = ctx.uploader.clone();
        let deadline = ctx.deadline;
        let validate_only = ctx.validate_only;
        let accepted = ctx.accepted.clone();
        async move {
            let (pending, objects): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let outcome = if validate_only {
                vec![None; objects.len()]
            } else {
                uploader.upload(&objects, deadline).await
            };
            if let Some(snapshot) = &accepted {
                for (object, o) in objects.iter().zip(&outcome) {
                    if o.is_none() {
                        snapshot.accepted(object);
                    }
                }
            }
            (pending, outcome)
        }
    };

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
            if seen.len() >= DEDUP_WINDOW {
                // Bounded memory whatever the input size: duplicates are found among records
                // up to DEDUP_WINDOW valid records apart.
                seen.clear();
            }
            if let Some((prev, prev_line)) = seen.insert(id_key(&valid.id), (index, line)) {
                if let Some(pos) = batch.iter().position(|(p, _)| p.index == prev) {
                    let (p, _) = batch.remove(pos);
                    c.reject(
                        p.index,
                        Some(p.line),
                        Some(p.id),
                        Code::Duplicate,
                        vec![duplicate_message(index, line)],
                        Some(p.text),
                    );
                } else if c.in_flight.contains(&prev) {
                    c.superseded.insert(prev, (index, line));
                    barrier = true;
                } else if !c.rejected_indices.contains(&prev) {
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
            batch.push((
                Pending {
                    index,
                    line,
                    id: valid.id,
                    text,
                },
                valid.object,
            ));
            if batch.len() >= batch_size {
                while in_flight.len() >= concurrency || (barrier && !in_flight.is_empty()) {
                    if let Some((p, o)) = in_flight.next().await {
                        c.settle(p, o);
                    }
                }
                barrier = false;
                c.in_flight.extend(batch.iter().map(|(p, _)| p.index));
                in_flight.push(send(std::mem::take(&mut batch)));
            }
        }
    }
    if let Some(p) = &ctx.progress {
        p.publish(&c.summary);
    }
    if !batch.is_empty() {
        if barrier {
            while let Some((p, o)) = in_flight.next().await {
                c.settle(p, o);
            }
        }
        c.in_flight.extend(batch.iter().map(|(p, _)| p.index));
        in_flight.push(send(batch));
    }
    while let Some((p, o)) = in_flight.next().await {
        c.settle(p, o);
        if let Some(p) = &ctx.progress {
            p.publish(&c.summary);
        }
    }
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
mod tests {
    use super::*;
    use crate::settings::{Env, UploadSettings};
    use serde_json::json;

    fn ctx(max_input_bytes: u64, max_record_bytes: usize) -> RunContext {
        let settings =
            UploadSettings::from_env(&Env::from_pairs([("TI_TARGET", "dry-run")])).unwrap();
        RunContext {
            frame_limits: FrameLimits {
                max_record_bytes,
                ..Default::default()
            },
            max_input_bytes,
            ..RunContext::new(Uploader::new(settings, None).unwrap())
        }
    }

    fn indicator(i: u32) -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--6f1b5b7e-0000-4000-8000-{i:012x}"),
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "pattern": "[domain-name:value = 'example.com']", "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z"
        })
    }

    fn source() -> Source {
        Source {
            kind: "file".into(),
            name: "t".into(),
            format: None,
        }
    }

    /// Feeds `input` in small chunks, as a blob download would arrive.
    async fn run_chunks(input: &str, ctx: &RunContext) -> RunOutcome {
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = input
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        run_infallible(futures::stream::iter(chunks), ctx).await
    }

    async fn run_infallible<S>(input: S, ctx: &RunContext) -> RunOutcome
    where
        S: Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin,
    {
        match run(input, source(), ctx).await {
            Ok(o) => o,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn the_last_record_with_an_id_wins_and_earlier_ones_are_duplicates() {
        let mut newer = indicator(1);
        newer["name"] = json!("newer");
        // Record 0 and 2 share an id within one batch; record 1 repeats an id from a batch
        // already sent (batch size 2).
        let mut records: Vec<Value> = vec![indicator(1), indicator(2), newer];
        records.extend((3..6).map(indicator));
        records.push(indicator(2));
        let text = serde_json::to_string_pretty(&records).unwrap();
        let mut ctx = ctx(1 << 20, 1 << 20);
        let mut settings = ctx.uploader.settings().clone();
        settings.batch_size = 2;
        ctx.uploader = Uploader::new(settings, None).unwrap();
        let out = run_chunks(&text, &ctx).await;
        out.report.check_invariants().unwrap();
        let dups: Vec<(u64, Code)> = out
            .report
            .errors
            .iter()
            .map(|e| (e.record_index, e.code))
            .collect();
        assert_eq!(dups, vec![(0, Code::Duplicate), (1, Code::Duplicate)]);
        assert_eq!(out.report.summary.uploaded, 5);
        assert!(out.report.errors[0].messages[0].contains("record 2"));
        assert!(out.report.errors[1].messages[0].contains("record 6"));
    }

    #[tokio::test]
    async fn reject_file_uploads_nothing_when_any_record_is_invalid() {
        let settings = UploadSettings::from_env(&Env::from_pairs([
            ("TI_TARGET", "dry-run"),
            ("TI_ON_INVALID", "reject-file"),
        ]))
        .unwrap();
        let mut ctx = ctx(1 << 20, 1 << 20);
        ctx.uploader = Uploader::new(settings, None).unwrap();
        let mut bad = indicator(2);
        bad["confidence"] = json!(-1);
        let open = |records: Vec<Value>| {
            let text = serde_json::to_vec(&records).unwrap();
            move || {
                let text = text.clone();
                async move { Ok::<_, std::convert::Infallible>(once(text)) }
            }
        };
        let out = match run_input(open(vec![indicator(1), bad, indicator(3)]), source(), &ctx).await
        {
            Ok(o) => o,
            Err(never) => match never {},
        };
        out.report.check_invariants().unwrap();
        assert_eq!(out.report.summary.uploaded, 0);
        let codes: Vec<Code> = out.report.errors.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            vec![
                Code::FileRejected,
                Code::ConfidenceOutOfRange,
                Code::FileRejected
            ]
        );
        assert_eq!(
            out.rejected.len(),
            3,
            "the whole file is kept to fix and re-drop"
        );

        let out = match run_input(open(vec![indicator(1), indicator(3)]), source(), &ctx).await {
            Ok(o) => o,
            Err(never) => match never {},
        };
        assert_eq!(out.report.summary.uploaded, 2);
        assert!(out.report.errors.is_empty());
    }

    #[tokio::test]
    async fn reject_file_is_not_triggered_by_the_headings_of_a_text_list() {
        let settings = UploadSettings::from_env(&Env::from_pairs([
            ("TI_TARGET", "dry-run"),
            ("TI_ON_INVALID", "reject-file"),
        ]))
        .unwrap();
        let mut ctx = ctx(1 << 20, 1 << 20);
        ctx.uploader = Uploader::new(settings, None).unwrap();
        let run_text = |text: &'static str| {
            let ctx = ctx.clone();
            async move {
                let open = move || async move {
                    Ok::<_, std::convert::Infallible>(once(text.as_bytes().to_vec()))
                };
                let out = match run_input(open, source(), &ctx).await {
                    Ok(o) => o,
                    Err(never) => match never {},
                };
                out.report.check_invariants().unwrap();
                let errors: Vec<(u64, Code)> = out
                    .report
                    .errors
                    .iter()
                    .map(|e| (e.record_index, e.code))
                    .collect();
                (out.report.summary.uploaded, errors)
            }
        };
        // Headings only besides the indicators: they are reported, the indicators uploaded.
        let (uploaded, errors) =
            run_text("Indicators of compromise\nC2 servers\n198.51.100.7\nevil.example (c2)\n")
                .await;
        assert_eq!(uploaded, 2);
        assert_eq!(
            errors,
            vec![(0, Code::NotAnIndicator), (1, Code::NotAnIndicator)]
        );
        // An invalid indicator still rejects the whole file, headings reported as they are.
        let (uploaded, errors) = run_text("C2 servers\n198.51.100.7\n1.2.3\nevil.example\n").await;
        assert_eq!(uploaded, 0);
        assert_eq!(
            errors,
            vec![
                (0, Code::NotAnIndicator),
                (1, Code::FileRejected),
                (2, Code::InvalidObservable),
                (3, Code::FileRejected)
            ]
        );
    }

    #[tokio::test]
    async fn context_labels_are_added_to_every_valid_object_after_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let settings = UploadSettings::from_env(&Env::from_pairs([
            ("TI_TARGET", "dry-run"),
            ("TI_DRY_RUN_DIR", dir.path().to_str().unwrap()),
        ]))
        .unwrap();
        let mut ctx = ctx(1 << 20, 1 << 20);
        ctx.uploader = Uploader::new(settings, None).unwrap();
        ctx.labels = vec!["feed-a".into(), "osint".into(), "feed-a".into()];
        let mut own = indicator(1);
        own["labels"] = json!(["osint", "mine"]);
        let mut bad = indicator(3);
        bad["confidence"] = json!(101);
        let text = serde_json::to_string(&vec![own, indicator(2), bad]).unwrap();
        let out = run_chunks(&text, &ctx).await;
        assert_eq!(out.report.summary.uploaded, 2);
        // The rejected record keeps its original text.
        assert!(!out.rejected[0].1.contains("feed-a"));
        let body: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("request-000001.json")).unwrap())
                .unwrap();
        let labels: Vec<&Value> = body["stixobjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["labels"])
            .collect();
        assert_eq!(
            labels,
            [
                &json!(["osint", "mine", "feed-a"]),
                &json!(["feed-a", "osint"])
            ]
        );
    }

    /// An input of many 256 KiB pieces, several checked on other threads at once: verdicts come
    /// back in input order, duplicates are found across pieces, and a range stops at its end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_checked_on_other_threads_keep_input_order_and_find_duplicates() {
        let n = 12_000u32;
        let records: Vec<Value> = (0..n)
            .map(|i| {
                if i % 1000 == 999 {
                    indicator(i - 900)
                } else if i % 777 == 0 {
                    let mut bad = indicator(i);
                    bad["confidence"] = json!(101);
                    bad
                } else {
                    indicator(i)
                }
            })
            .collect();
        let text = serde_json::to_vec_pretty(&records).unwrap();
        assert!(text.len() > 12 * DECODE_SLICE_BYTES, "{} bytes", text.len());
        let mut expected: Vec<(u64, Code)> = Vec::new();
        for i in 0..n {
            if i % 1000 == 999 {
                expected.push((u64::from(i - 900), Code::Duplicate));
            } else if i % 777 == 0 {
                expected.push((u64::from(i), Code::ConfidenceOutOfRange));
            }
        }
        expected.sort_by_key(|e| e.0);

        let mut ctx = ctx(1 << 30, 1 << 20);
        let out = run_infallible(once(text.clone()), &ctx).await;
        out.report.check_invariants().unwrap();
        let got: Vec<(u64, Code)> = out
            .report
            .errors
            .iter()
            .map(|e| (e.record_index, e.code))
            .collect();
        assert_eq!(got, expected);
        let s = &out.report.summary;
        assert_eq!(s.records, u64::from(n));
        assert_eq!(s.uploaded, u64::from(n) - expected.len() as u64);
        let dup = &out.report.errors[1];
        assert_eq!((dup.record_index, dup.code), (99, Code::Duplicate));
        assert!(dup.messages[0].contains("record 999"), "{:?}", dup.messages);
        assert_eq!(out.next_start, None);

        ctx.range = 5_000..7_000;
        let out = run_infallible(once(text), &ctx).await;
        out.report.check_invariants().unwrap();
        assert_eq!(out.report.summary.records, 2_000);
        assert_eq!(out.next_start, Some(7_000));
        assert!(out
            .report
            .errors
            .iter()
            .all(|e| (5_000..7_000).contains(&e.record_index)));
    }

    /// Reading runs ahead of processing; what it meets past the record where the soft deadline
    /// stops the run (a read error, the end of the input) must not change the outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_reading_ahead_meets_after_a_deadline_stop_is_not_reported() {
        let records: Vec<Value> = (0..200).map(indicator).collect();
        // A bundle: its format is known only at its end (it could still be another container).
        let bundle = json!({
            "type": "bundle",
            "id": "bundle--6f1b5b7e-0000-4000-8000-000000000000",
            "objects": records,
        });
        let text = serde_json::to_vec(&bundle).unwrap();
        let chunks = |fail: bool| {
            let mut chunks: Vec<Result<Bytes, String>> = text
                .chunks(4096)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            if fail {
                chunks[1] = Err("storage broke".to_string());
            }
            futures::stream::iter(chunks)
        };
        let mut ctx = ctx(1 << 30, 1 << 20);
        let fallback = Source {
            format: Some("fallback".into()),
            ..source()
        };

        // Without a deadline the read error ends the run.
        let err = run(chunks(true), source(), &ctx).await.err();
        assert_eq!(err.as_deref(), Some("storage broke"));

        // With the deadline already past, only the first record is started: the run stops
        // there, whatever reading ahead met after it.
        ctx.soft_deadline = Some(Instant::now());
        let out = run(chunks(true), fallback.clone(), &ctx).await.unwrap();
        assert_eq!(out.next_start, Some(1));
        assert_eq!(out.report.summary.records, 1);
        let out = run(chunks(false), fallback.clone(), &ctx).await.unwrap();
        assert_eq!(out.next_start, Some(1));
        assert_eq!(out.report.source.format.as_deref(), Some("fallback"));
        // A run that reaches the end reports the detected format.
        ctx.soft_deadline = None;
        let out = run(chunks(false), fallback, &ctx).await.unwrap();
        assert_eq!(out.next_start, None);
        assert_eq!(out.report.source.format.as_deref(), Some("stix-bundle"));
        assert_eq!(out.report.summary.uploaded, 200);
    }

    #[tokio::test]
    async fn a_broken_frame_keeps_what_was_read_before_it() {
        let text = format!("[{},\n{},\n{{\"type\": ", indicator(1), indicator(2));
        let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
        assert_eq!(out.report.summary.records, 2);
        assert_eq!(out.report.summary.uploaded, 2);
        let e = out.report.input_error.unwrap();
        assert_eq!(e.code, "input_invalid");
        assert!(e.message.contains("2 record(s)"), "{}", e.message);
    }

    /// A run that holds `max_held_bytes` of report entries and rejected texts starts no further
    /// record: it says where to continue (a work item), or, for an input that cannot continue
    /// (HTTP, a queue message), ends as `input_too_large` with the records before counted.
    #[tokio::test]
    async fn a_run_holding_too_many_rejections_stops_where_a_later_item_continues() {
        let lines: String = (0..500)
            .map(|i| format!("not-an-observable-{i}\n"))
            .collect();
        let mut ctx = ctx(1 << 20, 1 << 20);
        ctx.max_held_bytes = Some(20_000);
        let out = run_chunks(&lines, &ctx).await;
        out.report.check_invariants().unwrap();
        let stop = out.next_start.expect("stopped early");
        assert!((20..500).contains(&stop), "{stop}");
        assert_eq!(out.report.summary.rejected, stop);
        assert_eq!(out.rejected.len() as u64, stop);
        // The next range starts there and takes the rest.
        ctx.range = stop..u64::MAX;
        ctx.max_held_bytes = None;
        let rest = run_chunks(&lines, &ctx).await;
        assert_eq!(rest.report.summary.rejected, 500 - stop);
        assert_eq!(rest.report.errors[0].record_index, stop);
        // Cut short with nowhere to continue: input_too_large, the first records reported.
        let cut = out.cut_short_is_too_large();
        assert_eq!(cut.next_start, None);
        let e = cut.report.input_error.unwrap();
        assert_eq!(e.code, "input_too_large");
        assert!(e.message.starts_with(&format!("the input's rejected records and warnings outgrow what one invocation may hold: the first {stop} records are reported")), "{}", e.message);
    }

    #[tokio::test]
    async fn records_over_the_size_bound_are_reported_and_the_rest_continue() {
        let mut big = indicator(2);
        big["description"] = json!("x".repeat(5000));
        let text = serde_json::to_string(&vec![indicator(1), big, indicator(3)]).unwrap();
        let out = run_chunks(&text, &ctx(1 << 20, 2048)).await;
        out.report.check_invariants().unwrap();
        assert_eq!(out.report.summary.uploaded, 2);
        assert_eq!(out.report.errors[0].record_index, 1);
        assert_eq!(out.report.errors[0].code, Code::RecordTooLarge);
        assert!(out.rejected.is_empty());
    }

    #[tokio::test]
    async fn input_over_the_byte_bound_stops_with_an_input_error() {
        let text = serde_json::to_string(&(0..50).map(indicator).collect::<Vec<_>>()).unwrap();
        let out = run_chunks(&text, &ctx(2000, 1 << 20)).await;
        assert_eq!(
            out.report.input_error.as_ref().unwrap().code,
            "input_too_large"
        );
        assert!(out.report.summary.records < 50);
        out.report.check_invariants().unwrap();
    }

    #[tokio::test]
    async fn rejected_records_keep_their_original_text_one_per_line() {
        let mut bad = indicator(2);
        bad["confidence"] = json!(101);
        let text = format!(
            "[\n{},\n{},\n  not json at all ,\n{}\n]",
            indicator(1),
            serde_json::to_string_pretty(&bad).unwrap(),
            indicator(3)
        );
        let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
        // `not` is read as a record (and fails to parse); ` json` then breaks the frame: the
        // records before that point count, the rest is not read.
        assert_eq!(out.report.summary.records, 3, "{:?}", out.report);
        assert_eq!(out.report.summary.uploaded, 1);
        assert_eq!(
            out.report.input_error.as_ref().unwrap().code,
            "input_invalid"
        );
        let ndjson = out.rejected_ndjson();
        let lines: Vec<&str> = ndjson.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap(), bad);
        assert_eq!(lines[1], "not");
        assert_eq!(out.report.errors[1].code, Code::JsonInvalid);
        let e = &out.report.errors[0];
        assert_eq!(
            (e.record_index, e.line, e.code),
            (1, Some(3), Code::ConfidenceOutOfRange)
        );
    }

    /// A CSV input's rejected rows follow its header row, so the rejected file can be fixed and
    /// dropped back, and is read as the same CSV records.
    #[tokio::test]
    async fn rejected_csv_rows_come_after_the_header_and_read_back_as_csv() {
        let text = "Type,Value,Description\r\nipv4,198.51.100.7,fine\r\nfax,+1 555 0100,\"unknown, \"\"type\"\"\"\r\ndomain,example.com,fine\r\nipv4,999.1.1.1,bad address\r\n";
        let ctx = ctx(1 << 20, 1 << 20);
        let out = run_chunks(text, &ctx).await;
        assert_eq!(out.report.source.format.as_deref(), Some("csv"));
        assert_eq!(
            (out.report.summary.uploaded, out.report.summary.rejected),
            (2, 2)
        );
        let file = out.rejected_ndjson();
        assert_eq!(
            file,
            "Type,Value,Description\nfax,+1 555 0100,\"unknown, \"\"type\"\"\"\nipv4,999.1.1.1,bad address\n"
        );
        let again = run_chunks(&file, &ctx).await;
        assert_eq!(again.report.source.format.as_deref(), Some("csv"));
        let codes = |o: &RunOutcome| o.report.errors.iter().map(|e| e.code).collect::<Vec<_>>();
        assert_eq!(codes(&again), codes(&out));
        // Nothing rejected: no header either.
        let fine = run_chunks("type,value\nipv4,198.51.100.7\n", &ctx).await;
        assert_eq!(fine.rejected_ndjson(), "");
    }

    /// A genuine file from `../shared/realworld/` (README there), read in place.
    fn realworld(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/realworld")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn with_env(pairs: &[(&str, &str)]) -> RunContext {
        let mut all = vec![("TI_TARGET", "dry-run")];
        all.extend_from_slice(pairs);
        let settings = UploadSettings::from_env(&Env::from_pairs(all)).unwrap();
        RunContext::new(Uploader::new(settings, None).unwrap())
    }

    fn count(out: &RunOutcome, code: Code) -> (usize, usize) {
        (
            out.report
                .warnings
                .iter()
                .filter(|w| w.code == code)
                .count(),
            out.report.errors.iter().filter(|e| e.code == code).count(),
        )
    }

    /// ATT&CK for ICS 18.1: every one of its 1,373 relationships has an end of a type Sentinel
    /// does not accept (malware, intrusion-set, x-mitre-*...): a warning each by default, a
    /// rejection each with `TI_DANGLING_RELATIONSHIPS=skip`.
    #[tokio::test]
    async fn relationships_to_objects_the_target_will_not_hold_are_flagged_or_skipped() {
        let file = realworld("mitre-ics-attack-18.1.stix21.json");
        let out = run_infallible(once(file.clone()), &with_env(&[])).await;
        out.report.check_invariants().unwrap();
        let s = out.report.summary;
        assert_eq!((s.records, s.uploaded, s.rejected), (1826, 1469, 357));
        assert_eq!(count(&out, Code::UnsupportedType), (0, 357));
        assert_eq!(count(&out, Code::DanglingRelationship), (1373, 0));
        let w = out
            .report
            .warnings
            .iter()
            .find(|w| w.code == Code::DanglingRelationship)
            .unwrap();
        assert!(w.id.as_deref().unwrap().starts_with("relationship--"));
        assert!(
            w.messages[0].contains("a type the target does not accept"),
            "{:?}",
            w.messages
        );

        let skip = with_env(&[("TI_DANGLING_RELATIONSHIPS", "skip")]);
        let out = run_infallible(once(file.clone()), &skip).await;
        out.report.check_invariants().unwrap();
        let s = out.report.summary;
        assert_eq!((s.records, s.uploaded, s.rejected), (1826, 96, 1730));
        assert_eq!(count(&out, Code::DanglingRelationship), (0, 1373));
        // Rejected relationships are kept to fix and re-drop, like any rejected record.
        assert_eq!(out.rejected.len(), 1730);

        // validate-only applies the same rule.
        let mut validate = skip;
        validate.validate_only = true;
        let out = run_infallible(once(file), &validate).await;
        assert_eq!(count(&out, Code::DanglingRelationship), (0, 1373));
    }

    /// Ends refused earlier in the same input count as missing too; ends the target accepts and
    /// did not refuse do not; a relationship before the refusal is not flagged (the pipeline
    /// streams, README).
    #[tokio::test]
    async fn a_relationship_to_an_object_refused_earlier_in_the_input_is_dangling() {
        let rel = |i: u32, src: &str, dst: &str| {
            json!({
                "type": "relationship", "spec_version": "2.1",
                "id": format!("relationship--6f1b5b7e-0000-4000-8000-{i:012x}"),
                "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                "relationship_type": "indicates", "source_ref": src, "target_ref": dst
            })
        };
        let actor = "threat-actor--9a8a0d25-7636-429b-a99e-b2a73cd0f11f";
        let good = indicator(1);
        let mut bad = indicator(2);
        bad["confidence"] = json!(101);
        let (good_id, bad_id) = (
            good["id"].as_str().unwrap().to_string(),
            bad["id"].as_str().unwrap().to_string(),
        );
        let records = vec![
            rel(1, &bad_id, actor), // before the refusal: not known yet
            good,
            bad,
            rel(2, &good_id, actor),
            rel(3, &bad_id, actor),
            rel(4, actor, "malware--0a8a0d25-7636-429b-a99e-b2a73cd0f11f"),
        ];
        let text = serde_json::to_string(&records).unwrap();
        let out = run_chunks(&text, &with_env(&[])).await;
        let flagged: Vec<(u64, &str)> = out
            .report
            .warnings
            .iter()
            .filter(|w| w.code == Code::DanglingRelationship)
            .map(|w| (w.record_index, w.messages[0].as_str()))
            .collect();
        assert_eq!(flagged.len(), 2, "{flagged:?}");
        assert_eq!(flagged[0].0, 4);
        assert_eq!(
            flagged[0].1,
            format!("source_ref {bad_id} was refused (record 2 of this input): the relationship points at an object the target will not hold")
        );
        assert_eq!(flagged[1].0, 5);
        assert!(flagged[1].1.starts_with("target_ref malware--0a8a0d25-7636-429b-a99e-b2a73cd0f11f is a 'malware', a type the target does not accept"), "{}", flagged[1].1);
        assert_eq!(out.report.summary.uploaded, 5);

        // Targets that take no relationships refuse them whole: no dangling warning on top.
        let out = run_chunks(
            &text,
            &with_env(&[("TI_DRY_RUN_AS", "sentinel-indicators")]),
        )
        .await;
        assert_eq!(count(&out, Code::DanglingRelationship), (0, 0));
    }

    /// ATT&CK for ICS as STIX 2.0: one upgrade warning for the whole input, not one per object.
    #[tokio::test]
    async fn a_stix_2_0_input_is_upgraded_with_one_warning() {
        let out = run_infallible(
            once(realworld("mitre-cti-ics-attack.stix20.json")),
            &with_env(&[]),
        )
        .await;
        let s = out.report.summary;
        assert_eq!((s.records, s.uploaded, s.rejected), (1825, 1469, 356));
        let upgrades: Vec<&RecordWarning> = out
            .report
            .warnings
            .iter()
            .filter(|w| w.messages.iter().any(|m| m.contains("STIX 2.0")))
            .collect();
        assert_eq!(upgrades.len(), 1, "{upgrades:#?}");
        assert_eq!(upgrades[0].code, Code::Normalised);
        assert!(
            upgrades[0].messages[0]
                .starts_with("the input holds STIX 2.0: 1469 object(s) were upgraded"),
            "{:?}",
            upgrades[0].messages
        );
        // Every object was 2.0: nothing else was normalised.
        assert_eq!(count(&out, Code::Normalised), (1, 0));
    }

    /// A MISP STIX 2.0 export: its indicators' 2.0 `labels` are carried to `indicator_types`.
    #[tokio::test]
    async fn stix_2_0_indicator_labels_become_indicator_types() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = with_env(&[("TI_DRY_RUN_DIR", dir.path().to_str().unwrap())]);
        let out = run_infallible(once(realworld("talos-uat-7810.misp-stix20.json")), &ctx).await;
        assert_eq!(out.report.summary.uploaded, 91);
        let mut indicators = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let body: Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            for o in body["stixobjects"].as_array().unwrap() {
                if o["type"] == "indicator" {
                    indicators.push(o.clone());
                }
            }
        }
        assert_eq!(indicators.len(), 90);
        for o in &indicators {
            assert_eq!(o["spec_version"], "2.1");
            assert_eq!(o["pattern_type"], "stix");
            assert_eq!(o["indicator_types"], o["labels"], "{o}");
        }
        assert!(indicators
            .iter()
            .any(|o| o["indicator_types"][0] == "misp:type=\"sha256\""));
    }

    #[tokio::test]
    async fn a_rejected_json_record_keeps_its_key_order_and_spelling() {
        // Keys out of alphabetical order, `2.50`, an escaped slash and double spaces in a string,
        // pretty-printed over several lines: only the whitespace between tokens may go.
        let bad = r#"{
  "type": "indicator",
  "spec_version": "2.1",
  "id": "indicator--6f1b5b7e-0000-4000-8000-000000000009",
  "created": "2026-01-01T00:00:00Z",
  "modified": "2026-01-01T00:00:00Z",
  "pattern": "[url:value = 'http://a.example/x']",
  "pattern_type": "stix",
  "valid_from": "2026-01-01T00:00:00Z",
  "confidence": 101,
  "description": "a\/b  two  spaces",
  "x_z": [1, 2.50]
}"#;
        let one_line = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--6f1b5b7e-0000-4000-8000-000000000009","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","pattern":"[url:value = 'http://a.example/x']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","confidence":101,"description":"a\/b  two  spaces","x_z":[1,2.50]}"#;
        let text = format!("[{},\n{bad}]", indicator(1));
        let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
        assert_eq!(out.report.errors[0].code, Code::ConfidenceOutOfRange);
        assert_eq!(out.rejected_ndjson(), format!("{one_line}\n"));
        // A one-line record is kept byte for byte, spaces included.
        let spaced = one_line.replace("\"confidence\":101", "\"confidence\" : 101");
        let out = run_chunks(&format!("[{spaced}]"), &ctx(1 << 20, 1 << 20)).await;
        assert_eq!(out.rejected_ndjson(), format!("{spaced}\n"));
    }

    /// Graph holds at most 100 characters of description: the cut is a warning on its record,
    /// in validate-only and real runs alike.
    #[tokio::test]
    async fn a_description_cut_to_fit_graph_is_a_warning_on_its_record() {
        let mut long = indicator(1);
        long["description"] = json!("é".repeat(150));
        long["valid_until"] = json!("2099-01-01T00:00:00Z");
        let mut short = indicator(2);
        short["description"] = json!("fine");
        short["valid_until"] = json!("2099-01-01T00:00:00Z");
        let text = serde_json::to_string(&vec![long, short]).unwrap();
        for validate_only in [false, true] {
            let mut ctx = with_env(&[("TI_DRY_RUN_AS", "graph")]);
            ctx.validate_only = validate_only;
            let out = run_chunks(&text, &ctx).await;
            assert_eq!(out.report.summary.uploaded, 2, "{:?}", out.report);
            let w: Vec<(u64, Code, &str)> = out
                .report
                .warnings
                .iter()
                .map(|w| (w.record_index, w.code, w.messages[0].as_str()))
                .collect();
            assert_eq!(
                w,
                [(
                    0,
                    Code::ValueShortened,
                    "graph: description cut from 150 to 100 characters, Graph's limit"
                )]
            );
        }
        // sentinel-stix keeps the description whole: no warning.
        let out = run_chunks(&text, &with_env(&[])).await;
        assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);
    }
}
