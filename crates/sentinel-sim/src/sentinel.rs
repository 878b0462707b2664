//! The two Sentinel upload routes: `threat-intelligence-stix-objects:upload` (body key
//! `stixobjects`, the 2024-02-01-preview spec) and the legacy `threatintelligenceindicators:upload`
//! (body key `indicators`, seed `004`).
//!
//! A request goes through the checks in the order a request meets them in the real service:
//! token (401), role (403), per-identity quota (429), api-version (400), workspace (404),
//! injected fault, then the body (400) and finally each record. The answer follows both specs:
//! `200` "when at least one [object] is successfully validated and published", with an
//! `errors[]` entry per refused record; otherwise the `default` answer,
//! `{"error":{"code","message"}}` with no per-record list (and, on the STIX objects API, the
//! `x-ms-error-code` header that spec declares).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::authenticate;
use crate::limiter::retry_secs;
use crate::server::{
    arm_error, gateway_error, json, retry_after, unauthorized_gateway, with_error_code,
    with_outcome, Fault, Outcome, Shared,
};
use crate::stix::{self, is_hyphenated_uuid, Api};

/// Longest `sourcesystem` the service takes (2024-02-01-preview spec,
/// `UploadStixObjectsRequest.sourcesystem`: "Maximum length is 256 characters").
const MAX_SOURCE_SYSTEM_CHARS: usize = 256;
/// The one `sourcesystem` value reserved for Microsoft's own content (Microsoft Learn, both API
/// pages, "Request body": "The value `Microsoft Sentinel` is restricted"; both specs).
const RESERVED_SOURCE_SYSTEM: &str = "Microsoft Sentinel";

impl Api {
    /// Operation segments compare without case, like every ARM-style path.
    fn from_operation(operation: &str) -> Option<Self> {
        if operation.eq_ignore_ascii_case("threat-intelligence-stix-objects:upload") {
            Some(Api::StixObjects)
        } else if operation.eq_ignore_ascii_case("threatintelligenceindicators:upload") {
            Some(Api::Indicators)
        } else {
            None
        }
    }

    fn array_key(self) -> &'static str {
        match self {
            Api::StixObjects => "stixobjects",
            Api::Indicators => "indicators",
        }
    }

    /// The api-versions the API serves. STIX objects: the 2024-02-01-preview spec's `version`
    /// (and Microsoft Learn `stix-objects-api`, "Request URI"). Legacy: `2022-07-01` (Microsoft
    /// Learn `upload-indicators-api`, "Request URI") and seed `004`'s `2022-12-01-preview`.
    fn api_versions(self) -> &'static [&'static str] {
        match self {
            Api::StixObjects => &["2024-02-01-preview"],
            Api::Indicators => &["2022-07-01", "2022-12-01-preview"],
        }
    }

    /// The `default` (error) answer of this API: `{"error":{"code","message"}}` (both specs'
    /// `ErrorResponseBody`), plus `x-ms-error-code` where the spec declares it (only the
    /// 2024-02-01-preview spec does; seed `004` declares no header).
    fn error(self, status: StatusCode, code: &str, message: &str, outcome: Outcome) -> Response {
        let response = arm_error(status, code, message, outcome);
        match self {
            Api::StixObjects => with_error_code(response, code),
            Api::Indicators => response,
        }
    }
}

/// `POST /workspaces/{workspaceId}/{operation}`. The `:` inside the last segment cannot be
/// part of an axum route, so the whole segment is captured and matched here.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    Path((workspace_id, operation)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(api) = Api::from_operation(&operation) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The operation '{operation}' does not exist."),
            Outcome::default(),
        );
    };
    // Parsed up front only so that every log entry, even a refused one, says how many objects
    // the client tried to send.
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let mut outcome = Outcome {
        objects: parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get(api.array_key()))
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        api_version: query.get("api-version").cloned(),
        source_system: parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get("sourcesystem"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..Outcome::default()
    };

    let caller = match authenticate(&headers, &sentinel_audiences(&shared)) {
        Ok(caller) => caller,
        Err(err) => return unauthorized_gateway(&err, outcome),
    };
    outcome.identity = Some(caller.identity.clone());

    if shared.is_forbidden(&caller.identity) {
        return api.error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client '{}' does not have authorization to perform action \
                 'Microsoft.SecurityInsights/threatIntelligence/write' over scope \
                 '/workspaces/{workspace_id}' or the scope is invalid.",
                caller.identity
            ),
            outcome,
        );
    }

    if let Err(wait) = shared.acquire(&caller.identity) {
        return throttled(&shared, retry_secs(wait), outcome);
    }

    // Codes and messages of the Azure REST API Guidelines (microsoft/api-guidelines,
    // azure/Guidelines.md, "versioning-api-version-missing" / "-unsupported"), which every Azure
    // service follows; the Sentinel pages publish no other wording.
    let version = outcome.api_version.clone().unwrap_or_default();
    if version.is_empty() {
        return api.error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
            outcome,
        );
    }
    if !api.api_versions().contains(&version.as_str()) {
        return api.error(
            StatusCode::BAD_REQUEST,
            "UnsupportedApiVersionValue",
            &format!(
                "Unsupported api-version '{version}'. The supported api-versions are '{}'.",
                api.api_versions().join(", ")
            ),
            outcome,
        );
    }

    // Microsoft Learn (both API pages, "Process the response message"): "404 File not found.
    // Usually this error occurs when the workspace ID isn't found."
    if !workspace_known(&shared, &workspace_id) {
        return api.error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The workspace '{workspace_id}' could not be found."),
            outcome,
        );
    }

    match shared.draw_fault() {
        Fault::None => {}
        Fault::Throttle => {
            outcome.injected = true;
            return throttled(&shared, shared.config.fault_429_retry_secs.max(1), outcome);
        }
        Fault::Status(status) => {
            outcome.injected = true;
            // The 500 is the one seen in the wild (server::gateway_error); no 503 sample is
            // published, so it is given the same gateway shape.
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "Service Unavailable"
            } else {
                "Internal server error"
            };
            return gateway_error(status, message, Some(&shared.activity_id()), outcome);
        }
    }

    let request = match parse_request(parsed, api, shared.config.max_objects_per_request) {
        Ok(request) => request,
        Err(message) => return api.error(StatusCode::BAD_REQUEST, "BadRequest", &message, outcome),
    };

    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (index, record) in request.iter().enumerate() {
        match stix::validate(record, api) {
            Ok(id) => accepted.push((id, record.clone())),
            Err(messages) => errors.push((index, messages)),
        }
    }
    outcome.accepted = accepted.len();
    {
        let mut state = shared.lock();
        for (id, record) in accepted {
            state.objects.upsert(id, record);
        }
    }
    tracing::debug!(
        identity = caller.identity,
        accepted = outcome.accepted,
        rejected = errors.len(),
        "upload processed"
    );

    if errors.is_empty() {
        // All accepted: 200 with an empty body, as the service answers.
        return with_outcome(StatusCode::OK.into_response(), outcome);
    }
    if outcome.accepted == 0 {
        // Nothing validated and published: not a 200 (both specs' `200` description), so the
        // `default` answer, which has no per-record list. Its code and wording are not
        // published; these name what happened.
        let n = errors.len();
        let key = api.array_key();
        return api.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "None of the {n} object(s) in '{key}' passed validation; nothing was published."
            ),
            outcome,
        );
    }
    let key = shared.config.record_errors_key.key();
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(index, messages)| {
            let mut entry = Map::new();
            entry.insert("recordIndex".into(), Value::from(index));
            entry.insert(key.into(), Value::from(messages));
            Value::Object(entry)
        })
        .collect();
    #[derive(Serialize)]
    struct Body {
        errors: Vec<Value>,
    }
    json(StatusCode::OK, Body { errors }, outcome)
}

/// Checks the request as a whole and returns its records.
fn parse_request(
    parsed: Result<Value, serde_json::Error>,
    api: Api,
    max_objects: usize,
) -> Result<Vec<Value>, String> {
    let mut body = match parsed {
        Ok(Value::Object(body)) => body,
        Ok(_) => return Err("The request body must be a JSON object.".to_owned()),
        Err(e) => return Err(format!("The request body is not valid JSON: {e}.")),
    };
    match body.get("sourcesystem") {
        None | Some(Value::Null) => {
            return Err("The 'sourcesystem' property is required.".to_owned());
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Err("The 'sourcesystem' property must not be empty.".to_owned());
            }
            if s.chars().count() > MAX_SOURCE_SYSTEM_CHARS {
                return Err(format!(
                    "The 'sourcesystem' property must be at most {MAX_SOURCE_SYSTEM_CHARS} characters long."
                ));
            }
            if s.eq_ignore_ascii_case(RESERVED_SOURCE_SYSTEM) {
                return Err(format!(
                    "The 'sourcesystem' value '{RESERVED_SOURCE_SYSTEM}' is restricted."
                ));
            }
        }
        Some(_) => return Err("The 'sourcesystem' property must be a string.".to_owned()),
    }
    let key = api.array_key();
    let records = match body.remove(key) {
        Some(Value::Array(records)) => records,
        None | Some(Value::Null) => return Err(format!("The '{key}' property is required.")),
        Some(_) => return Err(format!("The '{key}' property must be an array.")),
    };
    if records.is_empty() {
        return Err(format!(
            "The '{key}' array must contain at least one object."
        ));
    }
    if records.len() > max_objects {
        return Err(format!(
            "The request contains {} objects, more than the limit of {max_objects} objects per request.",
            records.len()
        ));
    }
    Ok(records)
}

/// The exact 429 of the service's gateway (Microsoft Learn, both API pages, "Throttling limits
/// for the API"), without `Retry-After` unless configured.
fn throttled(shared: &Shared, secs: u64, outcome: Outcome) -> Response {
    let response = gateway_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Rate limit is exceeded. Try again in {secs} seconds."),
        None,
        outcome,
    );
    if shared.config.retry_after_header {
        retry_after(response, secs)
    } else {
        response
    }
}

fn sentinel_audiences(shared: &Shared) -> Vec<String> {
    std::iter::once(shared.config.audience.clone())
        .chain(shared.config.extra_audiences.iter().cloned())
        .collect()
}

fn workspace_known(shared: &Shared, workspace_id: &str) -> bool {
    if !is_hyphenated_uuid(workspace_id) {
        return false;
    }
    shared
        .config
        .workspaces
        .iter()
        .any(|w| w.eq_ignore_ascii_case(workspace_id))
}
