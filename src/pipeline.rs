//! The pipeline: input bytes → records → validation → batches → upload → report.
//!
//! It knows nothing of the Functions host or of storage: it takes a stream of byte chunks and
//! returns the report and the original text of every rejected record, so the handler, the CLI
//! and the tests all run this same code. Memory stays bounded by the frame limits, the batch
//! size and the upload concurrency, whatever the input size (plus the per-record report entries).

use std::fmt::Display;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::Stream;
use serde_json::{Map, Value};
use ti_core::frame::{FrameError, FrameItem, FrameLimits, Framer};
use ti_core::report::{
    Code, InputError, RecordError, RecordWarning, Report, Source, Stage, Summary,
};
use ti_core::stix::{self, ValidationContext};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::upload::{BatchOutcome, Uploader};

/// The STIX object types the `sentinel-stix` target accepts (DESIGN.md §1).
pub const SENTINEL_STIX_TYPES: &[&str] = &[
    "indicator",
    "attack-pattern",
    "threat-actor",
    "identity",
    "relationship",
];

/// Everything a run needs besides its input.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub uploader: Uploader,
    /// Stop retrying (and report what is left) by this time: the invocation's own deadline.
    pub deadline: Option<Instant>,
    pub frame_limits: FrameLimits,
    pub max_input_bytes: u64,
    /// Validate only: nothing is sent (the `validate` command).
    pub validate_only: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: Report,
    /// `(recordIndex, original text)` of every rejected record whose text was kept, by index.
    pub rejected: Vec<(u64, String)>,
}

impl RunOutcome {
    /// Records that failed only because transient failures outlasted the retry budget: a later
    /// attempt could still upload them.
    pub fn transient_failures(&self) -> usize {
        self.report
            .errors
            .iter()
            .filter(|e| matches!(e.code, Code::RetriesExhausted | Code::AuthFailed))
            .count()
    }

    /// The rejected records as NDJSON, one original record per line.
    pub fn rejected_ndjson(&self) -> String {
        let mut out = String::new();
        for (_, text) in &self.rejected {
            // A record spanning several lines is re-serialised compactly so it stays one line;
            // it remains the same JSON value.
            match serde_json::from_str::<Value>(text) {
                Ok(v) if text.contains('\n') => out.push_str(&v.to_string()),
                _ => out.push_str(&text.replace(['\r', '\n'], " ")),
            }
            out.push('\n');
        }
        out
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
    summary: Summary,
    errors: Vec<RecordError>,
    warnings: Vec<RecordWarning>,
    rejected: Vec<(u64, String)>,
}

impl Collector {
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
        self.errors.push(RecordError {
            record_index: index,
            line,
            id,
            stage: code.stage(),
            code,
            messages,
        });
        if let Some(t) = text {
            self.rejected.push((index, t));
        }
    }

    fn settle(&mut self, batch: Vec<Pending>, outcome: BatchOutcome) {
        debug_assert_eq!(batch.len(), outcome.len());
        for (p, o) in batch.into_iter().zip(outcome) {
            match o {
                None => self.summary.uploaded += 1,
                Some(f) => {
                    self.summary.rejected += 1;
                    self.errors.push(RecordError {
                        record_index: p.index,
                        line: Some(p.line),
                        id: Some(p.id),
                        stage: Stage::Upload,
                        code: f.code,
                        messages: f.messages,
                    });
                    self.rejected.push((p.index, p.text));
                }
            }
        }
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&Rfc3339)
        .expect("UTC timestamps always format")
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
    let batch_size = ctx.uploader.settings().batch_size;
    let concurrency = ctx.uploader.settings().max_concurrency;
    let mut c = Collector {
        summary: Summary::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
        rejected: Vec::new(),
    };
    let mut framer = Framer::new(ctx.frame_limits);
    let mut items = Vec::new();
    let mut batch: Vec<(Pending, Map<String, Value>)> = Vec::with_capacity(batch_size);
    let mut in_flight = FuturesUnordered::new();
    let mut input_error: Option<InputError> = None;
    let mut format = None;
    let mut bytes_read: u64 = 0;
    let mut input = input;

    let send = |batch: Vec<(Pending, Map<String, Value>)>| {
        let uploader = ctx.uploader.clone();
        let deadline = ctx.deadline;
        let validate_only = ctx.validate_only;
        async move {
            let (pending, objects): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let outcome = if validate_only {
                vec![None; objects.len()]
            } else {
                uploader.upload(&objects, deadline).await
            };
            (pending, outcome)
        }
    };

    let mut ended = false;
    while !ended {
        let frame_result: Result<(), FrameError> = match input.next().await {
            Some(Ok(chunk)) => {
                bytes_read += chunk.len() as u64;
                if bytes_read > ctx.max_input_bytes {
                    input_error = Some(InputError {
                        code: "input_too_large".into(),
                        message: format!(
                            "the input is larger than TI_MAX_INPUT_BYTES ({} bytes); stopped reading at that point",
                            ctx.max_input_bytes
                        ),
                    });
                    ended = true;
                    Ok(())
                } else {
                    framer.push(&chunk, &mut items)
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                ended = true;
                framer.finish(&mut items).map(|f| format = Some(f))
            }
        };
        if let Err(e) = frame_result {
            input_error = Some(InputError {
                code: "input_invalid".into(),
                message: format!(
                    "the input is not valid at line {}: {}; {} record(s) read before this point were processed",
                    e.line,
                    e.message,
                    c.summary.records + items.len() as u64
                ),
            });
            ended = true;
        }
        for item in items.drain(..) {
            c.summary.records += 1;
            let (index, line, text) = match item {
                FrameItem::Oversize { index, line, bytes } => {
                    c.reject(
                        index,
                        Some(line),
                        None,
                        Code::RecordTooLarge,
                        vec![format!(
                            "the record is {bytes} bytes; at most {} bytes are accepted per record (its text is not kept in the rejected file)",
                            ctx.frame_limits.max_record_bytes
                        )],
                        None,
                    );
                    continue;
                }
                FrameItem::Record(r) => (r.index, r.line, r.text),
            };
            let object = match stix::parse_record(&text) {
                Ok(o) => o,
                Err(p) => {
                    c.reject(index, Some(line), None, p.code, vec![p.message], Some(text));
                    continue;
                }
            };
            match stix::validate(object, &validation) {
                Err(invalid) => {
                    let code = invalid
                        .problems
                        .first()
                        .map(|p| p.code)
                        .unwrap_or(Code::InvalidProperty);
                    let messages = invalid.problems.into_iter().map(|p| p.message).collect();
                    c.reject(index, Some(line), invalid.id, code, messages, Some(text));
                }
                Ok(valid) => {
                    for w in &valid.warnings {
                        c.warnings.push(RecordWarning {
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
                        if in_flight.len() >= concurrency {
                            if let Some((p, o)) = in_flight.next().await {
                                c.settle(p, o);
                            }
                        }
                        in_flight.push(send(std::mem::take(&mut batch)));
                    }
                }
            }
        }
    }
    if !batch.is_empty() {
        in_flight.push(send(batch));
    }
    while let Some((p, o)) = in_flight.next().await {
        c.settle(p, o);
    }
    c.errors.sort_by_key(|e| e.record_index);
    c.warnings.sort_by_key(|w| w.record_index);
    c.rejected.sort_by_key(|(i, _)| *i);
    let target = if ctx.validate_only {
        "validate".to_string()
    } else {
        ctx.uploader.target_name().to_string()
    };
    let report = Report {
        source: Source {
            format: format.map(|f| f.name().to_string()).or(source.format),
            ..source
        },
        target,
        started_at,
        finished_at: now_rfc3339(),
        summary: c.summary,
        input_error,
        errors: c.errors,
        warnings: c.warnings,
    };
    tracing::info!(
        source = %report.source.name,
        records = report.summary.records,
        uploaded = report.summary.uploaded,
        rejected = report.summary.rejected,
        "input processed"
    );
    debug_assert_eq!(report.check_invariants(), Ok(()));
    Ok(RunOutcome {
        report,
        rejected: c.rejected,
    })
}

/// A one-chunk stream, for inputs already in memory (queue messages, HTTP bodies).
pub fn once(bytes: Vec<u8>) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin {
    futures::stream::iter([Ok(Bytes::from(bytes))])
}
