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
    // Microsoft Learn shows `errorMessages` (stix-objects-api, upload-indicators-api: "Sample
    // response body with validation error"); both OpenAPI specs name it
    // `validationErrorMessages` (seed `004`, the 2024-02-01-preview spec). Either may come.
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

/// A non-2xx answer: the `default` answer of both specs, `{"error":{"code","message"}}`
/// (`ErrorResponseBody`; the 2024-02-01-preview spec adds the `x-ms-error-code` header).
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorData,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// An error the API gateway raises itself: `{"statusCode","message"}` (the documented 429 and
/// 401, Microsoft Learn "Throttling limits for the API" and the spec's
/// `UploadThreatIntelligenceUnauthorized.json`), with an `activityId` on server errors.
#[derive(Deserialize)]
struct GatewayBody {
    message: String,
    #[serde(default, rename = "activityId")]
    activity_id: Option<String>,
}

/// Service codes of a 400 about the request line rather than its objects: the api-version
/// codes of the Azure REST API Guidelines (microsoft/api-guidelines, azure/Guidelines.md).
const REQUEST_LINE_CODES: [&str; 2] = ["MissingApiVersionParameter", "UnsupportedApiVersionValue"];

/// The code and the human explanation for a permanent (non-retryable) status, with the
/// service's own code and message.
///
/// Both APIs answer `200` only "when at least one [object] is successfully validated and
/// published" (seed `004`; the 2024-02-01-preview spec), so a `400` means the service published
/// none of the request's objects: each is reported `rejected_by_service` with the service's code
/// and message (the `default` answer has no per-record list), unless the service's code says the
/// request line itself is wrong (an api-version it does not serve: `bad_request`).
pub fn permanent(status: u16, body: &str, header_code: Option<&str>) -> (Code, String) {
    let error = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = error
        .as_ref()
        .map(|e| e.code.as_str())
        .filter(|c| !c.is_empty())
        .or(header_code.filter(|c| !c.is_empty()));
    let gateway = serde_json::from_str::<GatewayBody>(body).ok();
    let text = match (&error, gateway) {
        (Some(e), _) if !e.message.is_empty() => e.message.clone(),
        (_, Some(g)) => match g.activity_id {
            Some(id) => format!("{} (activityId {id})", g.message),
            None => g.message,
        },
        _ => body.chars().take(2000).collect(),
    };
    let service = match code {
        Some(code) => format!("{code}: {text}"),
        None => text,
    };
    if status == 400 {
        return if code.is_some_and(|c| REQUEST_LINE_CODES.contains(&c)) {
            (
                Code::BadRequest,
                format!("HTTP 400 (the service does not serve the api-version asked for: check TI_SENTINEL_API_VERSION): {service}"),
            )
        } else {
            (
                Code::RejectedByService,
                format!("the service refused the whole request and published none of its objects: HTTP 400 {service}"),
            )
        };
    }
    let (code, hint) = match status {
        401 => (
            Code::Unauthorized,
            " (the token was refused: check the managed identity and the API's token scope)",
        ),
        403 => (
            Code::Forbidden,
            " (the identity lacks the Microsoft Sentinel Contributor role on the workspace)",
        ),
        404 => (
            Code::WorkspaceNotFound,
            " (the workspace was not found: check TI_WORKSPACE_ID)",
        ),
        _ => (Code::HttpError, ""),
    };
    (code, format!("HTTP {status}{hint}: {service}"))
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
        let body = r#"{"error":{"code":"ResourceNotFound","message":"The workspace 'w' could not be found."}}"#;
        assert_eq!(
            permanent(404, body, Some("ResourceNotFound")),
            (
                Code::WorkspaceNotFound,
                "HTTP 404 (the workspace was not found: check TI_WORKSPACE_ID): ResourceNotFound: The workspace 'w' could not be found.".to_owned()
            )
        );
        assert_eq!(
            permanent(
                401,
                r#"{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}"#,
                None
            ),
            (
                Code::Unauthorized,
                "HTTP 401 (the token was refused: check the managed identity and the API's token scope): Unauthorized. Access token is missing or invalid.".to_owned()
            )
        );
        assert_eq!(
            permanent(
                501,
                r#"{"statusCode":501,"message":"Not implemented","activityId":"3423a016-8bd4-4116-a214-88de2e285704"}"#,
                None
            )
            .1,
            "HTTP 501: Not implemented (activityId 3423a016-8bd4-4116-a214-88de2e285704)"
        );
        let (code, message) = permanent(403, "{}", None);
        assert_eq!(code, Code::Forbidden);
        assert!(message.contains("Sentinel Contributor"), "{message}");
        assert_eq!(
            permanent(409, "x", None),
            (Code::HttpError, "HTTP 409: x".to_owned())
        );
    }

    #[test]
    fn a_400_refuses_every_object_with_the_services_code_and_message() {
        let body = r#"{"error":{"code":"BadRequest","message":"None of the 2 object(s) in 'stixobjects' passed validation; nothing was published."}}"#;
        assert_eq!(
            permanent(400, body, Some("BadRequest")),
            (
                Code::RejectedByService,
                "the service refused the whole request and published none of its objects: HTTP 400 BadRequest: None of the 2 object(s) in 'stixobjects' passed validation; nothing was published.".to_owned()
            )
        );
        // The legacy API sends no header; a body without the documented shape is kept as text,
        // with the header's code when there is one.
        assert_eq!(
            permanent(400, "oops", Some("InvalidBody")).1,
            "the service refused the whole request and published none of its objects: HTTP 400 InvalidBody: oops"
        );
    }

    #[test]
    fn an_api_version_the_service_does_not_serve_is_a_bad_request() {
        let body = r#"{"error":{"code":"UnsupportedApiVersionValue","message":"Unsupported api-version '2099-01-01'. The supported api-versions are '2024-02-01-preview'."}}"#;
        let (code, message) = permanent(400, body, None);
        assert_eq!(code, Code::BadRequest);
        assert!(message.contains("TI_SENTINEL_API_VERSION"), "{message}");
        assert!(message.ends_with("The supported api-versions are '2024-02-01-preview'."));
    }
}
