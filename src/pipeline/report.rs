//! The report: every record's outcome collected as it settles, the report document built at
//! the end, and the rejected records' original texts kept for the rejected file.

use ti_core::report::{
    Code, InputError, InputErrorCode, RecordError, RecordWarning, Report, Source, Summary,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::batch::Pending;
use crate::upload::Failure;

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

/// Every record's outcome as it is settled, for the report.
#[derive(Default)]
pub(super) struct Collector {
    /// Indexes of every rejected record (to tell, for a duplicate id, whether the earlier
    /// record was uploaded).
    pub(super) rejected_indices: std::collections::HashSet<u64>,
    pub(super) summary: Summary,
    pub(super) errors: Vec<RecordError>,
    pub(super) warnings: Vec<RecordWarning>,
    pub(super) rejected: Vec<(u64, String)>,
    /// Roughly the heap bytes of `errors`, `warnings` and `rejected`.
    pub(super) held: usize,
}

/// Heap bytes of a report entry, roughly: the entry, its id and its messages.
fn entry_bytes(id: Option<&str>, messages: &[String]) -> usize {
    std::mem::size_of::<RecordError>()
        + id.map_or(0, str::len)
        + messages.iter().map(|m| m.len() + 24).sum::<usize>()
}

impl Collector {
    pub(super) fn error(&mut self, e: RecordError) {
        self.held += entry_bytes(e.id.as_deref(), &e.messages);
        self.errors.push(e);
    }

    pub(super) fn warning(&mut self, w: RecordWarning) {
        self.held += entry_bytes(w.id.as_deref(), &w.messages);
        self.warnings.push(w);
    }

    pub(super) fn keep_text(&mut self, index: u64, text: String) {
        let text = one_line_owned(text);
        self.held += text.len() + 32;
        self.rejected.push((index, text));
    }

    pub(super) fn reject(
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

    /// The outcome of a sent record: uploaded, or refused by the target; or, when a later
    /// record of the input repeated its id while it was in flight (`superseded_by`: that
    /// record's index and line), a duplicate whatever the service said, because the later
    /// record is the one that stands.
    pub(super) fn settled(
        &mut self,
        p: Pending,
        outcome: Option<Failure>,
        superseded_by: Option<(u64, u64)>,
    ) {
        if let Some((later, later_line)) = superseded_by {
            self.reject(
                p.index,
                Some(p.line),
                Some(p.id),
                Code::Duplicate,
                vec![duplicate_message(later, later_line)],
                Some(p.text),
            );
            return;
        }
        match outcome {
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

pub(super) fn duplicate_message(later: u64, later_line: u64) -> String {
    format!(
        "record {later} (line {later_line}) has the same id; the last record with an id wins, so this one is not uploaded"
    )
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
