//! The Microsoft Graph `submitTiIndicators` route (beta): `{"value":[tiIndicator...]}` in,
//! `200 {"value":[created...]}` when all were created, `206 Partial Content` when some failed,
//! each failed item echoed at its position with an `"Error"` string such as
//! `"Target: networkDestinationIPv4 - ValidationFailed - The value 1.2.3.4/32 is not a valid
//! IPv4 address."`.
//!
//! Graph errors use the `{"error":{"code","message"}}` shape, and Graph always sends
//! `Retry-After` with its 429s.
//!
//! Microsoft removed the route (tiIndicator deprecated, removal announced for April 2026):
//! [`GraphApi::Retired`] plays what a removed route answers.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::authenticate;
use crate::config::{GraphApi, Retired};
use crate::limiter::retry_secs;
use crate::server::{arm_error, json, retry_after, unauthorized, Fault, Outcome, Shared};

pub(crate) const PATH: &str = "/beta/security/tiIndicators/submitTiIndicators";

const ACTIONS: [&str; 4] = ["unknown", "allow", "block", "alert"];
const TARGET_PRODUCTS: [&str; 2] = ["Azure Sentinel", "Microsoft Defender ATP"];
const THREAT_TYPES: [&str; 11] = [
    "Botnet",
    "C2",
    "CryptoMining",
    "Darknet",
    "DDoS",
    "MaliciousUrl",
    "Malware",
    "Phishing",
    "Proxy",
    "PUA",
    "WatchList",
];
const TLP_LEVELS: [&str; 5] = ["unknown", "white", "green", "amber", "red"];
const FILE_HASH_TYPES: [&str; 7] = [
    "unknown",
    "sha1",
    "sha256",
    "md5",
    "authenticodeHash256",
    "lsHash",
    "ctph",
];
/// A tiIndicator must carry at least one of these, or it indicates nothing.
const OBSERVABLES: [&str; 37] = [
    "emailEncoding",
    "emailLanguage",
    "emailRecipient",
    "emailSenderAddress",
    "emailSenderName",
    "emailSourceDomain",
    "emailSourceIpAddress",
    "emailSubject",
    "emailXMailer",
    "fileCompileDateTime",
    "fileCreatedDateTime",
    "fileHashType",
    "fileHashValue",
    "fileMutexName",
    "fileName",
    "filePacker",
    "filePath",
    "fileSize",
    "fileType",
    "domainName",
    "networkCidrBlock",
    "networkDestinationAsn",
    "networkDestinationCidrBlock",
    "networkDestinationIPv4",
    "networkDestinationIPv6",
    "networkDestinationPort",
    "networkIPv4",
    "networkIPv6",
    "networkPort",
    "networkProtocol",
    "networkSourceAsn",
    "networkSourceCidrBlock",
    "networkSourceIPv4",
    "networkSourceIPv6",
    "networkSourcePort",
    "url",
    "userAgent",
];
const IPV4_FIELDS: [&str; 4] = [
    "networkIPv4",
    "networkSourceIPv4",
    "networkDestinationIPv4",
    "emailSourceIpAddress",
];
const IPV6_FIELDS: [&str; 3] = ["networkIPv6", "networkSourceIPv6", "networkDestinationIPv6"];
const MAX_DESCRIPTION_CHARS: usize = 100;
/// Graph's own zero tenant when a token carries no `tid`.
const NO_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// `POST /beta/security/tiIndicators/submitTiIndicators`
pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let mut outcome = Outcome {
        objects: parsed
            .as_ref()
            .ok()
            .and_then(|v| v.get("value"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        ..Outcome::default()
    };

    if let GraphApi::Retired(answer) = shared.config.graph_api {
        return retired(answer, &shared.activity_id(), outcome);
    }

    let audiences = [shared.config.graph_audience.clone()];
    let caller = match authenticate(&headers, &audiences) {
        Ok(caller) => caller,
        Err(err) => return unauthorized(&err, outcome),
    };
    outcome.identity = Some(caller.identity.clone());

    if shared.is_forbidden(&caller.identity) {
        return arm_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Insufficient privileges to complete the operation: the application needs ThreatIndicators.ReadWrite.OwnedBy.",
            outcome,
        );
    }

    if let Err(wait) = shared.acquire(&caller.identity) {
        return too_many_requests(&shared, retry_secs(wait), outcome);
    }
    match shared.draw_fault() {
        Fault::None => {}
        Fault::Throttle => {
            outcome.injected = true;
            return too_many_requests(&shared, shared.config.fault_429_retry_secs.max(1), outcome);
        }
        Fault::Status(status) => {
            outcome.injected = true;
            let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                "serviceNotAvailable"
            } else {
                "generalException"
            };
            return arm_error(
                status,
                code,
                "The service encountered an error; retry later.",
                outcome,
            );
        }
    }

    let items = match parsed {
        Ok(Value::Object(mut body)) => match body.remove("value") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => {
                return bad_request(
                    "The request body must contain a non-empty 'value' array.",
                    outcome,
                )
            }
        },
        Ok(_) => return bad_request("The request body must be a JSON object.", outcome),
        Err(e) => {
            return bad_request(
                &format!("The request body is not valid JSON: {e}."),
                outcome,
            )
        }
    };
    let max = shared.config.max_objects_per_request;
    if items.len() > max {
        return bad_request(
            &format!(
                "The request contains {} indicators, more than the limit of {max} per request.",
                items.len()
            ),
            outcome,
        );
    }

    let tenant = caller.tenant.unwrap_or_else(|| NO_TENANT.to_owned());
    let mut results = Vec::with_capacity(items.len());
    let mut failed = 0;
    {
        let mut state = shared.lock();
        for item in items {
            let result = match validate(&item).and_then(|()| refused(&shared, &item)) {
                Ok(()) => {
                    let n = state.graph_indicators.len() as u64;
                    let created = created(item, &tenant, shared.config.seed, n);
                    state.graph_indicators.push(created.clone());
                    created
                }
                Err(error) => {
                    failed += 1;
                    echo_with_error(item, error)
                }
            };
            results.push(result);
        }
    }
    outcome.accepted = results.len() - failed;
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    json(status, serde_json::json!({ "value": results }), outcome)
}

/// A well-formed tiIndicator whose observable the service refuses anyway
/// ([`crate::SimConfig::refused_values`]).
fn refused(shared: &Shared, item: &Value) -> Result<(), String> {
    let Value::Object(obj) = item else {
        return Ok(());
    };
    for field in OBSERVABLES {
        if let Some(v) = present_str(obj, field) {
            if shared.config.refused_values.iter().any(|r| r == v) {
                return Err(failed(
                    field,
                    &format!("The value {v} is not allowed for an indicator."),
                ));
            }
        }
    }
    Ok(())
}

/// The first problem with a tiIndicator, as Graph words it.
fn validate(item: &Value) -> Result<(), String> {
    let Value::Object(obj) = item else {
        return Err(
            "Target: value - ValidationFailed - The item must be a JSON object.".to_owned(),
        );
    };
    one_of(obj, "action", &ACTIONS)?;
    let description = required_str(obj, "description")?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(failed(
            "description",
            &format!("The value must be at most {MAX_DESCRIPTION_CHARS} characters long."),
        ));
    }
    let expiration = required_str(obj, "expirationDateTime")?;
    if OffsetDateTime::parse(expiration, &Rfc3339).is_err() {
        return Err(failed(
            "expirationDateTime",
            &format!("The value {expiration} is not a valid DateTimeOffset."),
        ));
    }
    one_of(obj, "targetProduct", &TARGET_PRODUCTS)?;
    one_of(obj, "threatType", &THREAT_TYPES)?;
    one_of(obj, "tlpLevel", &TLP_LEVELS)?;
    int_range(obj, "confidence", 100)?;
    int_range(obj, "severity", 5)?;

    if !OBSERVABLES
        .iter()
        .any(|k| obj.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Err(failed(
            "value",
            "The indicator must have at least one observable property.",
        ));
    }
    for field in IPV4_FIELDS {
        if let Some(v) = present_str(obj, field) {
            if v.parse::<Ipv4Addr>().is_err() {
                return Err(failed(
                    field,
                    &format!("The value {v} is not a valid IPv4 address."),
                ));
            }
        }
    }
    for field in IPV6_FIELDS {
        if let Some(v) = present_str(obj, field) {
            if v.parse::<Ipv6Addr>().is_err() {
                return Err(failed(
                    field,
                    &format!("The value {v} is not a valid IPv6 address."),
                ));
            }
        }
    }
    if let Some(hash) = present_str(obj, "fileHashValue") {
        let hash_type = one_of(obj, "fileHashType", &FILE_HASH_TYPES)?;
        let want = match hash_type.to_ascii_lowercase().as_str() {
            "md5" => Some(32),
            "sha1" => Some(40),
            "sha256" => Some(64),
            _ => None,
        };
        if let Some(len) = want {
            if hash.len() != len || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(failed(
                    "fileHashValue",
                    &format!("The value {hash} is not a valid {hash_type} hash."),
                ));
            }
        }
    }
    Ok(())
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    present_str(obj, field).ok_or_else(|| failed(field, "The property is required."))
}

fn present_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    obj.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A required enum value; Graph matches enum values without case.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> Result<&'a str, String> {
    let value = required_str(obj, field)?;
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        Ok(value)
    } else {
        Err(failed(
            field,
            &format!("The value {value} is not one of {}.", allowed.join(", ")),
        ))
    }
}

fn int_range(obj: &Map<String, Value>, field: &str, max: u64) -> Result<(), String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| n <= max) => Ok(()),
        Some(v) => Err(failed(
            field,
            &format!("The value {v} must be an integer between 0 and {max}."),
        )),
    }
}

fn failed(field: &str, message: &str) -> String {
    format!("Target: {field} - ValidationFailed - {message}")
}

/// The created indicator: the submitted properties plus what Graph adds. Ids derive from the
/// seed and a counter, so runs with the same seed produce the same ids.
fn created(item: Value, tenant: &str, seed: u64, n: u64) -> Value {
    let mut obj = match item {
        Value::Object(obj) => obj,
        _ => Map::new(),
    };
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{seed}/{n}").as_bytes());
    obj.insert("@odata.type".into(), "#microsoft.graph.tiIndicator".into());
    obj.insert("id".into(), id.to_string().into());
    obj.insert("azureTenantId".into(), tenant.into());
    obj.entry("isActive").or_insert(Value::Bool(true));
    Value::Object(obj)
}

fn echo_with_error(item: Value, error: String) -> Value {
    match item {
        Value::Object(mut obj) => {
            obj.insert("Error".into(), error.into());
            Value::Object(obj)
        }
        other => serde_json::json!({ "value": other, "Error": error }),
    }
}

/// What a request to the removed route gets. The body is Graph's error shape with the
/// `innerError` Graph adds (Microsoft Learn, Graph "error responses": `request-id`, `date`).
fn retired(answer: Retired, request_id: &str, outcome: Outcome) -> Response {
    let (code, message) = match answer {
        Retired::SegmentNotFound => (
            "BadRequest",
            "Resource not found for the segment 'tiIndicators'.",
        ),
        // The 404 body seen from Graph for a resource it cannot find
        // (microsoftgraph/microsoft-graph-docs#2914).
        Retired::NotFound => ("ResourceNotFound", "Resource could not be discovered."),
        // No 410 body is published; the message is the status's description on that page.
        Retired::Gone => (
            "Gone",
            "The requested resource is no longer available at the server.",
        ),
    };
    let date = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let body = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": { "date": date, "request-id": request_id, "client-request-id": request_id }
        }
    });
    let status = StatusCode::from_u16(answer.status()).expect("a valid status");
    json(status, body, outcome)
}

fn bad_request(message: &str, outcome: Outcome) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message, outcome)
}

fn too_many_requests(shared: &Shared, secs: u64, outcome: Outcome) -> Response {
    let response = arm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        &format!("Too many requests. Retry after {secs} seconds."),
        outcome,
    );
    if shared.config.graph_retry_after_header {
        retry_after(response, secs)
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "action": "alert",
            "description": "canary",
            "expirationDateTime": "2019-03-01T21:44:03.1668987+00:00",
            "fileHashType": "sha256",
            "fileHashValue": "b555c45c5b1b01304217e72118d6ca1b14b7013644a078273cea27bbdc1cf9d6",
            "targetProduct": "Azure Sentinel",
            "threatType": "WatchList",
            "tlpLevel": "green",
        })
    }

    #[test]
    fn the_seed_sample_with_an_action_passes() {
        assert_eq!(validate(&indicator()), Ok(()));
    }

    #[test]
    fn failures_are_worded_like_graph() {
        let mut bad = indicator();
        bad["networkDestinationIPv4"] = json!("51.158.66.18/32");
        assert_eq!(
            validate(&bad).unwrap_err(),
            "Target: networkDestinationIPv4 - ValidationFailed - The value 51.158.66.18/32 is not a valid IPv4 address."
        );
        let mut bad = indicator();
        bad.as_object_mut().unwrap().remove("action");
        assert!(validate(&bad).unwrap_err().starts_with("Target: action -"));
        let mut bad = indicator();
        bad["description"] = json!("x".repeat(101));
        assert!(validate(&bad)
            .unwrap_err()
            .starts_with("Target: description -"));
        let mut bad = indicator();
        bad["fileHashValue"] = json!("abc");
        assert!(validate(&bad)
            .unwrap_err()
            .starts_with("Target: fileHashValue -"));
        let mut bad = indicator();
        bad["targetProduct"] = json!("Splunk");
        assert!(validate(&bad)
            .unwrap_err()
            .starts_with("Target: targetProduct -"));
    }
}
