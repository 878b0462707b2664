//! The report document (DESIGN.md §5) and the per-record error vocabulary.
//!
//! Per-record errors are data: every rejected record becomes one [`RecordError`] carrying its input
//! index, line, id, stage and code; the report is serialised from those values.

use serde::{Deserialize, Serialize};

/// The pipeline stage at which a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Parse,
    Validate,
    Convert,
    Upload,
}

/// The fixed vocabulary of error and warning codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // parse
    /// The record's text is not valid JSON.
    JsonInvalid,
    /// The record is valid JSON but not a JSON object.
    NotAnObject,
    /// The record exceeds the per-record size bound.
    RecordTooLarge,
    /// A CSV row is not valid CSV, or has more fields than the header names.
    CsvInvalid,
    /// A line of a CSV or text input is not valid UTF-8.
    InvalidEncoding,
    // validate
    /// A property the service requires is absent.
    MissingProperty,
    /// A property has the wrong JSON type or an unaccepted value.
    InvalidProperty,
    /// `id` is not `<type>--<uuid>` for the object's type.
    InvalidId,
    /// A timestamp is not RFC 3339.
    InvalidTimestamp,
    /// `valid_until` is not after `valid_from`.
    InvalidValidity,
    /// `confidence` is not an integer 0–100.
    ConfidenceOutOfRange,
    /// `pattern` does not parse as a STIX 2.1 pattern.
    PatternInvalid,
    /// An observable value is not valid for its type (IP, hash, domain, URL, e-mail).
    InvalidObservable,
    /// The object type is not one the target accepts.
    UnsupportedType,
    /// Another record with the same id came later in the input; the last one wins.
    Duplicate,
    /// `TI_ON_INVALID=reject-file`: a valid record not uploaded because others in the input were
    /// invalid.
    FileRejected,
    // convert
    /// A CSV `type` / text line names or holds no observable type ti-ingest knows.
    UnknownObservableType,
    /// The record is valid but cannot be expressed in the target's format (e.g. a STIX pattern
    /// that is not one observable comparison, for a Graph tiIndicator).
    NotConvertible,
    // upload
    /// The service refused this record: it answered 200 and listed the record in `errors[]`, or
    /// (Sentinel) answered 400 because it published none of the request's objects.
    RejectedByService,
    /// The service answered 400 for the request itself (Graph; Sentinel for an api-version it
    /// does not serve).
    BadRequest,
    /// The service answered 401: the identity's token was refused.
    Unauthorized,
    /// The service answered 403: the identity lacks the role on the workspace.
    Forbidden,
    /// The service answered 404: the workspace does not exist.
    WorkspaceNotFound,
    /// The service answered another permanent 4xx.
    HttpError,
    /// The API is no longer offered (Microsoft Graph tiIndicators, removed by Microsoft in April
    /// 2026): nothing sent to it is kept; another target must be used.
    ApiRetired,
    /// Transient failures (408/429/5xx/network) outlasted the retry budget.
    RetriesExhausted,
    /// The token for the service could not be obtained.
    AuthFailed,
    /// The input stopped at a broken frame before this record could be read.
    Truncated,
    // warnings
    /// `valid_until` is in the past; the service accepts it.
    Expired,
    /// A harmless deviation was normalised (e.g. confidence given as a string).
    Normalised,
    /// A value was cut to fit the target (Graph's 100-character `description`): what the
    /// service holds is shorter than the input.
    ValueShortened,
    /// A relationship's `source_ref` or `target_ref` is an object the target will not hold (of
    /// a type it does not accept, or refused earlier in the same input). With
    /// `TI_DANGLING_RELATIONSHIPS=skip` the relationship is rejected with this code instead.
    DanglingRelationship,
}

impl Code {
    /// The stage at which an error with this code is reported.
    pub fn stage(self) -> Stage {
        use Code::*;
        match self {
            JsonInvalid | NotAnObject | RecordTooLarge | CsvInvalid | InvalidEncoding
            | Truncated => Stage::Parse,
            MissingProperty | InvalidProperty | InvalidId | InvalidTimestamp | InvalidValidity
            | ConfidenceOutOfRange | PatternInvalid | InvalidObservable | UnsupportedType
            | Duplicate | FileRejected | Expired | Normalised | DanglingRelationship => {
                Stage::Validate
            }
            UnknownObservableType | NotConvertible | ValueShortened => Stage::Convert,
            RejectedByService | BadRequest | Unauthorized | Forbidden | WorkspaceNotFound
            | HttpError | ApiRetired | RetriesExhausted | AuthFailed => Stage::Upload,
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

/// A problem with the input as a whole (e.g. a broken frame, an unreadable blob); records read
/// before it still count in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputError {
    pub code: String,
    pub message: String,
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
}

impl Report {
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
        if self.errors.len() as u64 != s.rejected {
            return Err(format!(
                "{} error entries for {} rejected records",
                self.errors.len(),
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
}
