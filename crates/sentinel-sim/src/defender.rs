//! The Microsoft Defender for Endpoint indicators API: `POST /api/indicators/import` and
//! `POST /api/indicators/BatchDelete`, built from Microsoft Learn:
//!
//! - "Import Indicators API" (https://learn.microsoft.com/defender-endpoint/api/import-ti-indicators):
//!   body `{"Indicators":[...]}`; at most 500 per call; 30 calls per minute; 15,000 active
//!   indicators per tenant; no CIDR notation; `200` with one result per indicator
//!   (`{"value":[{"id","indicator","isFailed","failureReason"}]}`); `400` for an incorrect body.
//! - "Indicator resource type" (https://learn.microsoft.com/defender-endpoint/api/ti-indicator)
//!   and "Submit or Update Indicator API"
//!   (https://learn.microsoft.com/defender-endpoint/api/post-ti-indicator): the required fields
//!   (`indicatorValue`, `indicatorType`, `action`, `title`, `description`), the enums, and
//!   "`GenerateAlert` must be set to `TRUE` when creating an action with `Audit`"; an import of
//!   an existing value updates it ("Submits or Updates").
//! - "Batch Delete Indicators" (https://learn.microsoft.com/defender-endpoint/api/batch-delete-ti-indicators):
//!   `{"IndicatorIds":[...]}`, `204` when all existed, `404` when one was not found, `400` for
//!   an empty list or more than 500.
//! - "Common Microsoft Defender for Endpoint API errors"
//!   (https://learn.microsoft.com/defender-endpoint/api/common-errors): the error body
//!   `{"error":{"code","message","target"}}`, the codes and messages (`Unauthorized` 401,
//!   `Forbidden` 403, `TooManyRequests` 429 with `Retry-After` in seconds,
//!   `MaximumBatchSizeExceeded`, `InvalidRequestBody`, `InvalidIpAddress`, ...), and "body
//!   parameters are case-sensitive".
//!
//! Which problems fail one indicator (`isFailed`) rather than the request is not documented;
//! here a body that is not `{"Indicators":[...]}` (or is too large) fails the request, and a
//! problem with one indicator (a bad value, a missing field, the tenant's cap) fails that one.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::authenticate;
use crate::limiter::retry_secs;
use crate::server::{json, retry_after, Fault, Outcome, Shared};

pub(crate) const IMPORT_PATH: &str = "/api/indicators/import";
pub(crate) const BATCH_DELETE_PATH: &str = "/api/indicators/BatchDelete";

const INDICATOR_TYPES: [&str; 7] = [
    "FileSha1",
    "FileSha256",
    "FileMd5",
    "CertificateThumbprint",
    "IpAddress",
    "DomainName",
    "Url",
];
const ACTIONS: [&str; 7] = [
    "Warn",
    "Block",
    "Audit",
    "Alert",
    "AlertAndBlock",
    "BlockAndRemediate",
    "Allowed",
];
const SEVERITIES: [&str; 4] = ["Informational", "Low", "Medium", "High"];
const REQUIRED: [&str; 5] = [
    "indicatorValue",
    "indicatorType",
    "action",
    "title",
    "description",
];

/// One indicator the simulated tenant holds.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub id: u64,
    pub indicator: Value,
    pub expires: Option<OffsetDateTime>,
}

/// The simulated tenant's indicators, keyed by `(indicatorType, indicatorValue)`.
#[derive(Debug, Default)]
pub(crate) struct Tenant {
    pub held: std::collections::BTreeMap<(String, String), Held>,
    next_id: u64,
}

impl Tenant {
    /// Indicators not yet expired at `now`: what the 15,000 cap counts.
    fn active(&self, now: OffsetDateTime) -> usize {
        self.held
            .values()
            .filter(|h| h.expires.is_none_or(|e| e > now))
            .count()
    }
}

/// The Defender error body (common-errors: `{"error":{"code","message","target"}}`, `target`
/// a correlation id).
fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    shared: &Shared,
    outcome: Outcome,
) -> Response {
    json(
        status,
        json!({"error": {"code": code, "message": message, "target": shared.activity_id()}}),
        outcome,
    )
}

fn too_many(shared: &Shared, secs: u64, outcome: Outcome) -> Response {
    retry_after(
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Response represents reaching quota limit either by number of requests or by CPU.",
            shared,
            outcome,
        ),
        secs,
    )
}

/// Authentication, permission, rate limit and injected faults: what both routes check first.
fn admit(shared: &Shared, headers: &HeaderMap, outcome: &mut Outcome) -> Result<(), Box<Response>> {
    let audiences = [shared.config.defender_audience.clone()];
    let caller = match authenticate(headers, &audiences) {
        Ok(caller) => caller,
        Err(_) => {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized (invalid or expired authorization header).",
                shared,
                outcome.clone(),
            )))
        }
    };
    outcome.identity = Some(caller.identity.clone());
    if shared.is_forbidden(&caller.identity) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Forbidden (valid token but insufficient permission for the action).",
            shared,
            outcome.clone(),
        )));
    }
    if let Err(wait) = shared.acquire_defender(&caller.identity) {
        return Err(Box::new(too_many(
            shared,
            retry_secs(wait),
            outcome.clone(),
        )));
    }
    match shared.draw_fault() {
        Fault::None => Ok(()),
        Fault::Throttle => {
            outcome.injected = true;
            Err(Box::new(too_many(
                shared,
                shared.config.fault_429_retry_secs.max(1),
                outcome.clone(),
            )))
        }
        Fault::Status(status) => {
            outcome.injected = true;
            Err(Box::new(error(
                status,
                "InternalServerError",
                "",
                shared,
                outcome.clone(),
            )))
        }
    }
}

/// Why one indicator is refused (the common-errors messages), or `None`.
fn refusal(d: &Map<String, Value>, shared: &Shared) -> Option<String> {
    for field in REQUIRED {
        match d.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => return Some(format!("Parameter {field} is missing.")),
        }
    }
    let kind = d["indicatorType"].as_str().unwrap_or_default();
    let value = d["indicatorValue"].as_str().unwrap_or_default();
    let action = d["action"].as_str().unwrap_or_default();
    if !INDICATOR_TYPES.contains(&kind) {
        return Some(format!("Invalid input {kind}."));
    }
    if !ACTIONS.contains(&action) {
        return Some(format!("Invalid input {action}."));
    }
    if let Some(s) = d.get("severity") {
        if !s.as_str().is_some_and(|s| SEVERITIES.contains(&s)) {
            return Some(format!("Invalid input {s}."));
        }
    }
    if action == "Audit" && d.get("generateAlert") != Some(&Value::Bool(true)) {
        return Some("Invalid input generateAlert: it must be true for action Audit.".into());
    }
    if let Some(e) = d.get("expirationTime") {
        if e.as_str()
            .is_none_or(|e| OffsetDateTime::parse(e, &Rfc3339).is_err())
        {
            return Some(format!("Invalid input {e}."));
        }
    }
    let hex = |n: usize| value.len() == n && value.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = match kind {
        "IpAddress" => value.parse::<IpAddr>().is_ok(),
        "FileSha1" | "CertificateThumbprint" => hex(40),
        "FileSha256" => hex(64),
        "FileMd5" => hex(32),
        "DomainName" => !value.contains(['/', ' ', ':']) && value.contains('.'),
        _ => !value.contains(char::is_whitespace),
    };
    if !ok {
        return Some(match kind {
            "IpAddress" => format!("IP address {value} is invalid."),
            "DomainName" => format!("Domain name {value} is invalid."),
            "Url" => format!("URL {value} is invalid."),
            _ => format!("Hash value {value} is invalid."),
        });
    }
    if shared
        .config
        .refused_values
        .iter()
        .any(|r| r.eq_ignore_ascii_case(value))
    {
        return Some(format!("Invalid input {value}."));
    }
    None
}

/// `POST /api/indicators/import`
pub(crate) async fn import(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let mut outcome = Outcome {
        objects: parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get("Indicators"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        ..Outcome::default()
    };
    if let Err(response) = admit(&shared, &headers, &mut outcome) {
        return *response;
    }
    // Body parameters are case-sensitive (common-errors).
    let items = match parsed {
        Ok(Value::Object(mut o)) => match o.remove("Indicators") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    "Invalid input Indicators: the list is empty.",
                    &shared,
                    outcome,
                )
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredParameter",
                    "Parameter Indicators is missing.",
                    &shared,
                    outcome,
                )
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestBody",
                "Invalid request body.",
                &shared,
                outcome,
            )
        }
    };
    let max = shared.config.defender_max_batch;
    if items.len() > max {
        return error(
            StatusCode::BAD_REQUEST,
            "MaximumBatchSizeExceeded",
            &format!(
                "Maximum batch size exceeded. Received: {}, allowed: {max}.",
                items.len()
            ),
            &shared,
            outcome,
        );
    }
    let now = OffsetDateTime::now_utc();
    let cap = shared.config.defender_max_active;
    let mut results = Vec::with_capacity(items.len());
    let mut accepted = 0;
    let mut state = shared.lock();
    for item in items {
        let value = item.get("indicatorValue").cloned().unwrap_or(Value::Null);
        let Value::Object(d) = item else {
            results.push(json!({"id": null, "indicator": value, "isFailed": true, "failureReason": "Invalid input: an indicator must be an object."}));
            continue;
        };
        if let Some(reason) = refusal(&d, &shared) {
            results.push(
                json!({"id": null, "indicator": value, "isFailed": true, "failureReason": reason}),
            );
            continue;
        }
        let key = (
            d["indicatorType"].as_str().unwrap_or_default().to_owned(),
            d["indicatorValue"].as_str().unwrap_or_default().to_owned(),
        );
        let expires = d
            .get("expirationTime")
            .and_then(Value::as_str)
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok());
        let tenant = &mut state.defender;
        let updates = tenant.held.get(&key).map(|h| h.id);
        // The cap counts active indicators; an update of a held one adds none.
        if updates.is_none() && tenant.active(now) >= cap {
            results.push(json!({"id": null, "indicator": value, "isFailed": true,
                "failureReason": format!("There's a limit of {cap} active indicators per tenant; the limit is reached.")}));
            continue;
        }
        let id = updates.unwrap_or_else(|| {
            tenant.next_id += 1;
            tenant.next_id
        });
        tenant.held.insert(
            key,
            Held {
                id,
                indicator: Value::Object(d),
                expires,
            },
        );
        accepted += 1;
        results.push(json!({"id": id.to_string(), "indicator": value, "isFailed": false, "failureReason": null}));
    }
    drop(state);
    outcome.accepted = accepted;
    json(StatusCode::OK, json!({"value": results}), outcome)
}

/// `POST /api/indicators/BatchDelete`
pub(crate) async fn batch_delete(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut outcome = Outcome::default();
    if let Err(response) = admit(&shared, &headers, &mut outcome) {
        return *response;
    }
    let ids: Option<Vec<String>> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("IndicatorIds").cloned())
        .and_then(|v| serde_json::from_value(v).ok());
    let ids = match ids {
        Some(ids) if !ids.is_empty() && ids.len() <= shared.config.defender_max_batch => ids,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestBody",
                "Invalid request body.",
                &shared,
                outcome,
            )
        }
    };
    outcome.objects = ids.len();
    let mut state = shared.lock();
    let held = &mut state.defender.held;
    let missing = ids
        .iter()
        .find(|id| !held.values().any(|h| h.id.to_string() == **id));
    if let Some(id) = missing {
        drop(state);
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("Resource Indicator {id} wasn't found."),
            &shared,
            outcome,
        );
    }
    held.retain(|_, h| !ids.contains(&h.id.to_string()));
    drop(state);
    outcome.accepted = ids.len();
    crate::server::with_outcome(
        axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT),
        outcome,
    )
}
