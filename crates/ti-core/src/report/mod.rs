//! The report document (docs/REPORTS.md) and the per-record error vocabulary.
//!
//! Per-record errors are data: every rejected record becomes one [`RecordError`] carrying its input
//! index, line, id, stage and code; the report is serialised from those values. [`html`] renders
//! a report as a page a person reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod html;

/// The pipeline stage at which a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Parse,
    Validate,
    Convert,
    Upload,
}

/// Declares [`Code`] from one list: each variant with the one spelling reports use, from which
/// serde's name, [`Code::name`] and [`Code::ALL`] are all derived (no second list to keep equal).
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The fixed vocabulary of error and warning codes (documented in docs/REPORTS.md).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Code {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Code {
            /// How many codes there are.
            const COUNT: usize = [$($name),*].len();

            /// Every code, in declaration order (`Code::ALL[c as usize] == c`).
            pub const ALL: [Code; Code::COUNT] = [$(Code::$variant),*];

            /// The code as it is spelt in reports (`pattern_invalid`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    // parse
    /// The record's text is not valid JSON.
    JsonInvalid = "json_invalid",
    /// The record is valid JSON but not a JSON object.
    NotAnObject = "not_an_object",
    /// The record exceeds the per-record size bound.
    RecordTooLarge = "record_too_large",
    /// The record nests arrays and objects deeper than the nesting bound (64 levels).
    RecordTooDeep = "record_too_deep",
    /// A CSV row is not valid CSV, or has more fields than the header names.
    CsvInvalid = "csv_invalid",
    /// A line of a CSV or text input is not valid UTF-8.
    InvalidEncoding = "invalid_encoding",
    // validate
    /// A property the service requires is absent.
    MissingProperty = "missing_property",
    /// A property has the wrong JSON type or an unaccepted value.
    InvalidProperty = "invalid_property",
    /// `id` is not `<type>--<uuid>` for the object's type.
    InvalidId = "invalid_id",
    /// A timestamp is not RFC 3339.
    InvalidTimestamp = "invalid_timestamp",
    /// `valid_until` is not after `valid_from`.
    InvalidValidity = "invalid_validity",
    /// `confidence` is not an integer 0–100.
    ConfidenceOutOfRange = "confidence_out_of_range",
    /// `pattern` does not parse as a STIX 2.1 pattern.
    PatternInvalid = "pattern_invalid",
    /// An observable value is not valid for its type (IP, hash, domain, URL, e-mail).
    InvalidObservable = "invalid_observable",
    /// The object type is not one the target accepts.
    UnsupportedType = "unsupported_type",
    /// Another record with the same id came later in the input; the last one wins.
    Duplicate = "duplicate",
    /// `TI_ON_INVALID=reject-file`: a valid record not uploaded because others in the input were
    /// invalid.
    FileRejected = "file_rejected",
    // convert
    /// A CSV `type` / text line names or holds no observable type ti-ingest knows.
    UnknownObservableType = "unknown_observable_type",
    /// A line of a text list has no observable's shape at all (a heading, a sentence): not an
    /// indicator that failed, but no indicator.
    NotAnIndicator = "not_an_indicator",
    /// The record is valid but cannot be expressed in the target's format (e.g. a STIX pattern
    /// that is not one observable comparison, for a Graph tiIndicator).
    NotConvertible = "not_convertible",
    /// The record is a network range (CIDR notation), which the target does not take (Defender
    /// for Endpoint indicators).
    CidrNotSupported = "cidr_not_supported",
    // upload
    /// The service refused this record: it answered 200 and listed the record in `errors[]`, or
    /// (Sentinel) answered 400 because it published none of the request's objects.
    RejectedByService = "rejected_by_service",
    /// The service answered 400 for the request itself (Graph; Sentinel for an api-version it
    /// does not serve).
    BadRequest = "bad_request",
    /// The service answered 401: the identity's token was refused.
    Unauthorized = "unauthorized",
    /// The service answered 403: the identity lacks the role on the workspace.
    Forbidden = "forbidden",
    /// The service answered 404: the workspace does not exist.
    WorkspaceNotFound = "workspace_not_found",
    /// The service answered another permanent 4xx.
    HttpError = "http_error",
    /// The API is no longer offered (Microsoft Graph tiIndicators, removed by Microsoft in April
    /// 2026): nothing sent to it is kept; another target must be used.
    ApiRetired = "api_retired",
    /// Not sent to Defender for Endpoint: its active-indicator budget (15,000 per tenant, or
    /// `TI_DEFENDER_MAX_ACTIVE`) is spent, and records that rank higher were sent instead.
    OverBudget = "over_budget",
    /// Transient failures (408/429/5xx/network) outlasted the retry budget.
    RetriesExhausted = "retries_exhausted",
    /// The token for the service could not be obtained.
    AuthFailed = "auth_failed",
    // warnings
    /// `valid_until` is in the past; the service accepts it.
    Expired = "expired",
    /// A harmless deviation was normalised (e.g. confidence given as a string).
    Normalised = "normalised",
    /// A value was cut to fit the target (Graph's 100-character `description`): what the
    /// service holds is shorter than the input.
    ValueShortened = "value_shortened",
    /// A relationship's `source_ref` or `target_ref` is an object the target will not hold (of
    /// a type it does not accept, or refused earlier in the same input). With
    /// `TI_DANGLING_RELATIONSHIPS=skip` the relationship is rejected with this code instead.
    DanglingRelationship = "dangling_relationship",
}

impl Code {
    /// What to do about a record with this code, in one line: the "what to do" column of the
    /// code table in docs/REPORTS.md (a test keeps the two equal). Backticks mark code spans.
    pub fn fix(self) -> &'static str {
        use Code::*;
        match self {
            JsonInvalid => "Fix the record's JSON syntax (a missing comma, quote or brace) and drop the record again.",
            NotAnObject => "Make each record a JSON object `{...}`: remove stray strings, numbers and nested arrays.",
            RecordTooLarge => "Shorten the record below 1 MiB (long descriptions or embedded content are the usual cause).",
            RecordTooDeep => "Flatten the record: no STIX object nests arrays and objects 64 levels deep, so it is probably not the object you meant.",
            CsvInvalid => "Close the row's quotes and give it no more fields than the header names.",
            InvalidEncoding => "Save the file as UTF-8 (or UTF-16 with a byte-order mark).",
            MissingProperty => "Add the property the message names.",
            InvalidProperty => "Give the named property the type or value the message asks for.",
            InvalidId => "Use an id of the form `<type>--<uuid>`, e.g. `indicator--` and a UUID.",
            InvalidTimestamp => "Write the timestamp in RFC 3339, e.g. `2026-01-31T12:00:00Z`.",
            InvalidValidity => "Make `valid_until` later than `valid_from`.",
            ConfidenceOutOfRange => "Set `confidence` to a whole number from 0 to 100.",
            PatternInvalid => "Correct the STIX pattern, e.g. `[ipv4-addr:value = '198.51.100.1']`.",
            InvalidObservable => "Correct the IP address, hash, domain, URL or e-mail address the message names.",
            UnsupportedType => "Send only object types the target accepts (README, Upload targets), or choose another target.",
            Duplicate => "Nothing, if the later record is the one you meant; otherwise remove the extra record.",
            FileRejected => "Fix the file's other records (`TI_ON_INVALID=reject-file` uploads all or nothing) and drop it again.",
            UnknownObservableType => "Use an observable type ti-ingest knows in the CSV `type` column, or one IP, domain, URL, e-mail or hash per text line.",
            NotAnIndicator => "Nothing, if the line is a heading or a note; otherwise write the indicator alone on its line (a comment may follow after `#`, a tab or in parentheses).",
            NotConvertible => "Give the record one observable comparison (and an expiry, for Graph), or send it to `sentinel-stix`.",
            CidrNotSupported => "List the range's addresses one by one, or send the range to `sentinel-stix`: Defender for Endpoint indicators take no CIDR notation.",
            RejectedByService => "Correct the record as the service's message says and drop it again.",
            BadRequest => "Read the service's message: it refused the whole request; check `TI_TARGET` and `TI_SENTINEL_API_VERSION`.",
            Unauthorized => "Check that the identity's role assignment has taken effect and that `TI_CLOUD` is the workspace's cloud.",
            Forbidden => "Grant the identity Microsoft Sentinel Contributor on the workspace.",
            WorkspaceNotFound => "Set `TI_WORKSPACE_ID` to the workspace id (a GUID), not its name.",
            HttpError => "Read the status and message the service gave, fix the cause and drop the file again.",
            ApiRetired => "Use `TI_TARGET=sentinel-stix`: Microsoft removed the Graph tiIndicators API in April 2026, and nothing sent to it is kept.",
            OverBudget => "Nothing to fix in the record: let indicators expire or raise their `confidence`, or lower what other tools place in Defender (`TI_DEFENDER_MAX_ACTIVE`).",
            RetriesExhausted => "Drop the file again later (uploads are idempotent); if it recurs, lower `TI_MAX_REQUESTS_PER_MINUTE`.",
            AuthFailed => "Check that the managed identity is assigned to the app (and `AZURE_CLIENT_ID` names it), then drop the file again.",
            Expired => "Nothing (uploaded); remove or renew indicators that are no longer valid.",
            Normalised => "Nothing (uploaded); write the value as the message shows to keep the source clean.",
            ValueShortened => "Nothing (uploaded); shorten the value at the source if the whole text matters.",
            DanglingRelationship => "Put the referenced object (of a type the target accepts) earlier in the input, or leave the relationship out.",
        }
    }

    /// The stage at which an error with this code is reported.
    pub fn stage(self) -> Stage {
        use Code::*;
        match self {
            JsonInvalid | NotAnObject | RecordTooLarge | RecordTooDeep | CsvInvalid
            | InvalidEncoding => Stage::Parse,
            MissingProperty | InvalidProperty | InvalidId | InvalidTimestamp | InvalidValidity
            | ConfidenceOutOfRange | PatternInvalid | InvalidObservable | UnsupportedType
            | Duplicate | FileRejected | Expired | Normalised | DanglingRelationship => {
                Stage::Validate
            }
            UnknownObservableType
            | NotAnIndicator
            | NotConvertible
            | CidrNotSupported
            | ValueShortened => Stage::Convert,
            RejectedByService | BadRequest | Unauthorized | Forbidden | WorkspaceNotFound
            | HttpError | ApiRetired | OverBudget | RetriesExhausted | AuthFailed => Stage::Upload,
        }
    }
}

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    pub record_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub stage: Stage,
    pub code: Code,
    pub messages: Vec<String>,
}

/// One uploaded record that was normalised or flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordWarning {
    pub record_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub code: Code,
    pub messages: Vec<String>,
}

/// Where the records came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// `blob`, `queue`, `http` or `file`.
    pub kind: String,
    pub name: String,
    /// The detected (or forced) input format, e.g. `stix-bundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub records: u64,
    pub uploaded: u64,
    pub rejected: u64,
}

/// Declares [`InputErrorCode`] from one list, as [`codes!`] declares [`Code`]: each variant with
/// its one spelling, from which [`InputErrorCode::as_str`] and [`InputErrorCode::ALL`] follow.
macro_rules! input_error_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The fixed vocabulary of input-level codes, `inputError.code` (documented in
        /// docs/REPORTS.md, Input-level codes, and for the pull's own in docs/PULL.md, Failures).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum InputErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl InputErrorCode {
            /// How many codes there are.
            const COUNT: usize = [$($name),*].len();

            /// Every code, in declaration order.
            pub const ALL: [InputErrorCode; InputErrorCode::COUNT] =
                [$(InputErrorCode::$variant),*];

            /// The code as it is spelt in reports (`input_invalid`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(InputErrorCode::$variant => $name,)*
                }
            }
        }
    };
}

input_error_codes! {
    /// Broken structure (a JSON frame that cannot be closed, a bad encoding, a gzip bound), or
    /// a JSON document of no known shape.
    InputInvalid = "input_invalid",
    /// The input (or its gzip content) is over `TI_MAX_INPUT_BYTES`, or an HTTP body over
    /// `TI_MAX_HTTP_BYTES`.
    InputTooLarge = "input_too_large",
    /// The input could not be read (storage or disk error after retries).
    InputUnreadable = "input_unreadable",
    /// The blob named by an event or message is gone.
    BlobNotFound = "blob_not_found",
    /// The host's invocation (or the HTTP body's envelope) is not what the host sends.
    EnvelopeInvalid = "envelope_invalid",
    /// The queue message is not an Event Grid `BlobCreated` event for our inbox.
    EventInvalid = "event_invalid",
    /// A blob reference outside our own account and inbox, or malformed.
    BlobReferenceInvalid = "blob_reference_invalid",
    /// A message the host moved to a poison queue.
    Poisoned = "poisoned",
    /// A work item whose fields are not what the app writes.
    WorkItemInvalid = "work_item_invalid",
    // The pull's own (docs/PULL.md, Failures).
    /// A feed's DNS, connection, TLS or timeout failure.
    FeedUnreachable = "feed_unreachable",
    /// A feed's non-2xx answer other than 304.
    FeedHttpError = "feed_http_error",
    /// Not a TAXII envelope, or `more` without a way to continue.
    FeedInvalid = "feed_invalid",
    /// The feed's entry in the feeds file is not valid.
    FeedConfigInvalid = "feed_config_invalid",
    /// A referenced app setting is not set, or the managed identity gave no token.
    FeedAuthFailed = "feed_auth_failed",
    /// An auth reference the pull does not support yet (`keyVaultSecret`).
    FeedAuthUnsupported = "feed_auth_unsupported",
    /// A target the feed names cannot be built from the app's settings.
    FeedTargetsUnavailable = "feed_targets_unavailable",
    /// The feed's state blob could not be read, leased or written.
    FeedStateUnavailable = "feed_state_unavailable",
    /// A pull's report could not be written (the feed's state is not advanced).
    ReportUnwritten = "report_unwritten",
}

impl std::fmt::Display for InputErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with the input as a whole (e.g. a broken frame, an unreadable blob); records read
/// before it still count in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputError {
    /// An [`InputErrorCode`] as it is spelt (a `String`, so a report read back keeps any code).
    pub code: String,
    pub message: String,
}

impl InputError {
    pub fn new(code: InputErrorCode, message: impl Into<String>) -> Self {
        InputError {
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }

    /// Whether the error has `code`.
    pub fn is(&self, code: InputErrorCode) -> bool {
        self.code == code.as_str()
    }
}

/// The report document: the same JSON for storage reports, `--report` and HTTP responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub source: Source,
    pub target: String,
    pub started_at: String,
    pub finished_at: String,
    pub summary: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_error: Option<InputError>,
    pub errors: Vec<RecordError>,
    pub warnings: Vec<RecordWarning>,
    /// A written report: how many errors of each code (all of them, listed or not).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_counts: BTreeMap<String, u64>,
    /// A written report: how many warnings of each code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warning_counts: BTreeMap<String, u64>,
    /// A written report with more than [`REPORT_MAX_ENTRIES`] errors: where the rest are (an
    /// NDJSON file beside the report, one entry per line, in record order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_errors_in: Option<String>,
    /// Likewise for warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_warnings_in: Option<String>,
    /// A pulled list feed's run: what happened to the indicators the feed listed before
    /// (README, "Indicator lifecycle").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// The indicator lifecycle of one run of a list feed (docs/REPORTS.md): counts of indicators,
/// not of records (`summary` counts the records read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Indicators the feed lists after this run (tracked for retirement and refresh).
    pub listed: u64,
    /// Listed now and not before (new, or listed again after being retired).
    pub added: u64,
    /// Listed before and now with different content.
    pub changed: u64,
    /// No longer listed: sent again with `valid_until` = now, and forgotten.
    pub retired: u64,
    /// Still listed and close to expiry: sent again with `modified` and `valid_until` moved on.
    pub refreshed: u64,
    /// Arrived revoked: sent as they are, and forgotten.
    pub revoked: u64,
    /// Retirements and refreshes left by transient failures: tried again next run.
    pub pending: u64,
    /// Retirements and refreshes the target refused.
    pub failed: u64,
    /// The first refusal's messages, when some were refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Why nothing was retired this run, when that is the case though the feed was read
    /// (an incomplete snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The most `errors` (and, separately, `warnings`) a written report lists; the rest go to an
/// NDJSON file beside it (README, "Reports"), so a report stays small enough to open and to
/// hold in memory whatever the input, while every entry is still kept.
pub const REPORT_MAX_ENTRIES: usize = 10_000;

/// Writes a report from its entries in record order, a piece at a time: the first
/// [`REPORT_MAX_ENTRIES`] errors and warnings are listed in the report, the rest are serialised
/// as NDJSON lines into the caller's overflow buffers (which the caller writes out and empties
/// as it likes), and the counts per code stay complete. Memory: the listed entries only.
#[derive(Debug)]
pub struct ReportSplit {
    report: Report,
}

impl ReportSplit {
    /// Starts a report with `head`'s fields; its entries and counts are dropped (add them).
    pub fn new(mut head: Report) -> Self {
        head.errors.clear();
        head.warnings.clear();
        head.error_counts.clear();
        head.warning_counts.clear();
        head.more_errors_in = None;
        head.more_warnings_in = None;
        ReportSplit { report: head }
    }

    /// The report's fields other than its entries (summary, times, input error...).
    pub fn head_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    pub fn error(&mut self, e: RecordError, overflow: &mut Vec<u8>) {
        *self
            .report
            .error_counts
            .entry(e.code.name().to_string())
            .or_default() += 1;
        if self.report.errors.len() < REPORT_MAX_ENTRIES {
            self.report.errors.push(e);
        } else {
            serde_json::to_writer(&mut *overflow, &e).expect("an entry serialises");
            overflow.push(b'\n');
        }
    }

    pub fn warning(&mut self, w: RecordWarning, overflow: &mut Vec<u8>) {
        *self
            .report
            .warning_counts
            .entry(w.code.name().to_string())
            .or_default() += 1;
        if self.report.warnings.len() < REPORT_MAX_ENTRIES {
            self.report.warnings.push(w);
        } else {
            serde_json::to_writer(&mut *overflow, &w).expect("an entry serialises");
            overflow.push(b'\n');
        }
    }

    /// Whether more errors (warnings) came than the report lists.
    pub fn overflowed(&self) -> (bool, bool) {
        let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        (
            total(&self.report.error_counts) > self.report.errors.len() as u64,
            total(&self.report.warning_counts) > self.report.warnings.len() as u64,
        )
    }

    /// The report, naming where the entries it does not list are.
    pub fn finish(self, errors_file: Option<String>, warnings_file: Option<String>) -> Report {
        let (more_errors, more_warnings) = self.overflowed();
        let mut report = self.report;
        report.more_errors_in = errors_file.filter(|_| more_errors);
        report.more_warnings_in = warnings_file.filter(|_| more_warnings);
        report
    }
}

impl Report {
    /// The report as written (see [`ReportSplit`]), with its overflow: `(report, errors NDJSON,
    /// warnings NDJSON)`; the report names the files `errors_file` / `warnings_file` only when
    /// something overflowed into them.
    pub fn split(&self, errors_file: &str, warnings_file: &str) -> (Report, Vec<u8>, Vec<u8>) {
        let mut split = ReportSplit::new(self.clone_head());
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        for e in &self.errors {
            split.error(e.clone(), &mut errors);
        }
        for w in &self.warnings {
            split.warning(w.clone(), &mut warnings);
        }
        let report = split.finish(Some(errors_file.into()), Some(warnings_file.into()));
        (report, errors, warnings)
    }

    /// A copy without the entries (cheap whatever the report's size).
    pub fn clone_head(&self) -> Report {
        Report {
            source: self.source.clone(),
            target: self.target.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            summary: self.summary,
            input_error: self.input_error.clone(),
            errors: Vec::new(),
            warnings: Vec::new(),
            error_counts: self.error_counts.clone(),
            warning_counts: self.warning_counts.clone(),
            more_errors_in: self.more_errors_in.clone(),
            more_warnings_in: self.more_warnings_in.clone(),
            lifecycle: self.lifecycle.clone(),
        }
    }

    /// Checks the invariants every report must hold: `records = uploaded + rejected`, one error
    /// entry per rejected record, no record reported twice.
    pub fn check_invariants(&self) -> Result<(), String> {
        let s = self.summary;
        if s.records != s.uploaded + s.rejected {
            return Err(format!(
                "records {} != uploaded {} + rejected {}",
                s.records, s.uploaded, s.rejected
            ));
        }
        let listed = self.errors.len() as u64;
        if self.error_counts.is_empty() || self.more_errors_in.is_none() {
            if listed != s.rejected {
                return Err(format!(
                    "{listed} error entries for {} rejected records",
                    s.rejected
                ));
            }
        } else if listed != s.rejected.min(REPORT_MAX_ENTRIES as u64) {
            return Err(format!(
                "{listed} error entries listed for {} rejected records (expected the first {REPORT_MAX_ENTRIES})",
                s.rejected
            ));
        }
        if !self.error_counts.is_empty() && self.error_counts.values().sum::<u64>() != s.rejected {
            return Err(format!(
                "errorCounts add up to {} for {} rejected records",
                self.error_counts.values().sum::<u64>(),
                s.rejected
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for e in &self.errors {
            if !seen.insert(e.record_index) {
                return Err(format!("record {} reported twice", e.record_index));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input error built from its code serialises as the report has always spelt it.
    #[test]
    fn input_errors_serialise_their_code_as_spelt() {
        let e = InputError::new(InputErrorCode::BlobReferenceInvalid, "outside our inbox");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"blob_reference_invalid","message":"outside our inbox"}"#
        );
        assert!(e.is(InputErrorCode::BlobReferenceInvalid));
        assert!(!e.is(InputErrorCode::InputInvalid));
        assert_eq!(InputErrorCode::ALL.len(), 18);
        assert_eq!(InputErrorCode::ALL[0].as_str(), "input_invalid");
        assert_eq!(
            InputErrorCode::ReportUnwritten.to_string(),
            "report_unwritten"
        );
    }

    #[test]
    fn codes_serialise_as_snake_case_with_their_stage() {
        let e = RecordError {
            record_index: 17,
            line: Some(19),
            id: None,
            stage: Code::PatternInvalid.stage(),
            code: Code::PatternInvalid,
            messages: vec!["x".into()],
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "pattern_invalid");
        assert_eq!(v["stage"], "validate");
        assert_eq!(v["recordIndex"], 17);
        assert!(v.get("id").is_none());
        assert_eq!(
            serde_json::to_value(Code::RetriesExhausted.stage()).unwrap(),
            "upload"
        );
    }

    /// Every code is in `Code::ALL` at its own position, spelt as serde spells it, with a fix of
    /// one line; the code table of docs/REPORTS.md lists every code with the same stage and fix.
    #[test]
    fn every_code_has_a_fix_and_the_reports_doc_table_agrees() {
        for (i, &code) in Code::ALL.iter().enumerate() {
            assert_eq!(code as usize, i);
            assert_eq!(serde_json::to_value(code).unwrap(), code.name());
            let fix = code.fix();
            assert!(fix.ends_with('.') && !fix.contains(['|', '\n']), "{fix}");
            assert_eq!(fix.matches('`').count() % 2, 0, "{fix}");
        }
        let readme = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/REPORTS.md"
        ))
        .unwrap();
        let table = &readme[readme.find("### Error and warning codes").unwrap()..];
        let table = &table[table.find("| code |").unwrap()..];
        let table = &table[..table.find("\n\n").unwrap()];
        let mut rows = table.lines();
        assert_eq!(
            rows.next().unwrap(),
            "| code | stage | meaning | what to do |"
        );
        assert_eq!(rows.next().unwrap(), "|---|---|---|---|");
        let mut listed = std::collections::BTreeSet::new();
        let mut n = 0;
        for row in rows {
            let cells: Vec<&str> = row.split(" | ").collect();
            assert_eq!(cells.len(), 4, "{row}");
            let name = cells[0]
                .trim_start_matches("| `")
                .split('`')
                .next()
                .unwrap();
            let code: Code = serde_json::from_value(serde_json::json!(name))
                .unwrap_or_else(|e| panic!("docs/REPORTS.md code {name}: {e}"));
            assert_eq!(
                serde_json::to_value(code.stage()).unwrap(),
                cells[1],
                "{row}"
            );
            assert_eq!(cells[3].trim_end_matches(" |"), code.fix(), "{row}");
            listed.insert(code as usize);
            n += 1;
        }
        assert_eq!(n, Code::ALL.len() + 1, "dangling_relationship has two rows");
        assert_eq!(listed.len(), Code::ALL.len());
    }

    /// Past REPORT_MAX_ENTRIES the entries go to the overflow, one NDJSON line each, in order;
    /// the counts cover them all and the report names the file only when it has lines.
    #[test]
    fn a_report_lists_the_first_entries_and_counts_them_all() {
        let entry = |i: u64, code: Code| RecordError {
            record_index: i,
            line: Some(i + 1),
            id: None,
            stage: code.stage(),
            code,
            messages: vec![format!("m{i}")],
        };
        let n = REPORT_MAX_ENTRIES as u64 + 3;
        let report = Report {
            source: Source {
                kind: "file".into(),
                name: "f".into(),
                format: None,
            },
            target: "validate".into(),
            started_at: "s".into(),
            finished_at: "f".into(),
            summary: Summary {
                records: n + 1,
                uploaded: 1,
                rejected: n,
            },
            input_error: None,
            errors: (0..n)
                .map(|i| {
                    entry(
                        i,
                        if i % 2 == 0 {
                            Code::JsonInvalid
                        } else {
                            Code::InvalidId
                        },
                    )
                })
                .collect(),
            warnings: vec![RecordWarning {
                record_index: n,
                line: None,
                id: None,
                code: Code::Expired,
                messages: vec![],
            }],
            error_counts: Default::default(),
            warning_counts: Default::default(),
            more_errors_in: None,
            more_warnings_in: None,
            lifecycle: None,
        };
        report.check_invariants().unwrap();
        let (written, errors, warnings) = report.split("f.errors.ndjson", "f.warnings.ndjson");
        written.check_invariants().unwrap();
        assert_eq!(written.errors.len(), REPORT_MAX_ENTRIES);
        assert_eq!(written.errors[..], report.errors[..REPORT_MAX_ENTRIES]);
        let lines: Vec<RecordError> = std::str::from_utf8(&errors)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[..], report.errors[REPORT_MAX_ENTRIES..]);
        assert!(warnings.is_empty());
        let v = serde_json::to_value(&written).unwrap();
        assert_eq!(
            v["errorCounts"],
            serde_json::json!({"json_invalid": 5002, "invalid_id": 5001})
        );
        assert_eq!(v["warningCounts"], serde_json::json!({"expired": 1}));
        assert_eq!(v["moreErrorsIn"], "f.errors.ndjson");
        assert!(v.get("moreWarningsIn").is_none());
        // A listed entry short: the invariants see it.
        let mut broken = written.clone();
        broken.errors.pop();
        assert!(broken.check_invariants().is_err());
    }
}
