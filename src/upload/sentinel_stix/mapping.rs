//! Result mapping: the service's answer → one outcome per object of the batch.

use serde::Deserialize;
use ti_core::report::Code;

use crate::upload::{BatchOutcome, Failure};

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<RecordErrors>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordErrors {
    record_index: i64,
    // The live service sends `errorMessages`; the OpenAPI calls it `validationErrorMessages`.
    #[serde(default)]
    error_messages: Vec<String>,
    #[serde(default)]
    validation_error_messages: Vec<String>,
}

/// Maps a 200 answer. An empty body means every object was accepted; `errors[]` names the
/// rejected ones by 0-based index within the request. An index outside the batch cannot be
/// matched to a record, so it fails the whole batch rather than silently passing anything.
pub fn map_success(batch_len: usize, body: &[u8]) -> BatchOutcome {
    let mut out: BatchOutcome = vec![None; batch_len];
    if body.iter().all(u8::is_ascii_whitespace) {
        return out;
    }
    let parsed: ErrorsBody = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return whole_batch(
                Code::RejectedByService,
                format!("the service answered 200 with a body that is not the documented shape ({e}); outcome unknown, not counted as uploaded"),
                batch_len,
            )
        }
    };
    for e in parsed.errors {
        let Some(slot) = usize::try_from(e.record_index)
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            return whole_batch(
                Code::RejectedByService,
                format!(
                    "the service reported recordIndex {} for a request of {batch_len} objects; outcome unknown, not counted as uploaded",
                    e.record_index
                ),
                batch_len,
            );
        };
        let mut messages = e.error_messages;
        messages.extend(e.validation_error_messages);
        if messages.is_empty() {
            messages.push("rejected by the service without a message".into());
        }
        match slot {
            Some(f) => f.messages.extend(messages),
            None => {
                *slot = Some(Failure {
                    code: Code::RejectedByService,
                    messages,
                })
            }
        }
    }
    out
}

/// The code for a permanent (non-retryable) HTTP status.
pub fn permanent_code(status: u16) -> Code {
    match status {
        400 => Code::BadRequest,
        401 => Code::Unauthorized,
        403 => Code::Forbidden,
        404 => Code::WorkspaceNotFound,
        _ => Code::HttpError,
    }
}

/// The human explanation for a permanent status, with the service's own text.
pub fn permanent_message(status: u16, body: &str) -> String {
    let hint = match status {
        401 => " (the token was refused: check the managed identity and the API's token scope)",
        403 => " (the identity lacks the Microsoft Sentinel Contributor role on the workspace)",
        404 => " (the workspace was not found: check TI_WORKSPACE_ID)",
        _ => "",
    };
    let body: String = body.chars().take(2000).collect();
    format!("HTTP {status}{hint}: {body}")
}

pub fn whole_batch(code: Code, message: String, batch_len: usize) -> BatchOutcome {
    vec![
        Some(Failure {
            code,
            messages: vec![message]
        });
        batch_len
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_means_all_accepted() {
        assert_eq!(map_success(3, b""), vec![None, None, None]);
    }

    #[test]
    fn both_message_keys_map_to_their_records() {
        let body = br#"{"errors":[{"recordIndex":2,"errorMessages":["bad pattern"]},
                        {"recordIndex":0,"validationErrorMessages":["bad id","bad time"]}]}"#;
        let out = map_success(3, body);
        assert!(out[1].is_none());
        let e0 = out[0].as_ref().unwrap();
        assert_eq!(e0.code, Code::RejectedByService);
        assert_eq!(e0.messages, vec!["bad id", "bad time"]);
        assert_eq!(out[2].as_ref().unwrap().messages, vec!["bad pattern"]);
    }

    #[test]
    fn an_unmatchable_index_fails_the_batch_instead_of_passing_it() {
        let out = map_success(
            2,
            br#"{"errors":[{"recordIndex":5,"errorMessages":["x"]}]}"#,
        );
        assert!(out.iter().all(|o| o.is_some()));
        let out = map_success(2, b"<html>");
        assert!(out.iter().all(|o| o.is_some()));
    }

    #[test]
    fn permanent_statuses_have_their_own_codes() {
        assert_eq!(permanent_code(401), Code::Unauthorized);
        assert_eq!(permanent_code(404), Code::WorkspaceNotFound);
        assert!(permanent_message(403, "{}").contains("Sentinel Contributor"));
    }
}
