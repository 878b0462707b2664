//! The HTTP-triggered `Ingest` function (`POST /api/indicators`, function key): a small body in
//! any supported input format in, the report (docs/REPORTS.md) out as JSON, for automation (Logic
//! Apps, playbooks) that wants the outcome synchronously.
//!
//! With `enableForwardingHttpRequest: false` the host posts the HTTP trigger envelope to
//! `/Ingest` (docs/HOST-PROTOCOL.md): `Data.req` = `{Url, Method, Query, Headers, Body, ...}`, `Body` a
//! string (base64 for `application/octet-stream` and multipart). The answer to the caller goes in
//! `Outputs.res` = `{"statusCode": "200", "body": <report>, "headers": {...}}`, and the host
//! answer itself is always a 2xx: a non-2xx would make the host discard that response and tell
//! the caller 500.
//!
//! Status codes for the caller:
//! - `200`: the records were uploaded, and those that were not are reported (a partial success,
//!   like the Sentinel API's own `200` with `errors[]`);
//! - `400`: the input is unusable (`inputError`, no records, or every record rejected);
//! - `413`: the body is over `TI_MAX_HTTP_BYTES` (default 4 MiB); nothing is read;
//! - `503` + `Retry-After`: transient upload failures outlasted this invocation's budget; send
//!   the same body again (uploads are idempotent by STIX id).
//!
//! Like queue inputs, the report is also written to
//! `<reports>/messages/<yyyy>/<mm>/<dd>/<invocation id>.report.json` (+ `.rejected.ndjson`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use ti_core::report::{InputErrorCode, Report, Source};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::protocol::{Answer, EnvelopeError};
use super::{input_error_report, invocation_id, AppState};
use crate::pipeline::{self, RunOutcome};
use crate::storage;

/// The trigger binding's name in `functions/Ingest/function.json`.
pub const HTTP_BINDING: &str = "req";
/// The HTTP output binding's name in `functions/Ingest/function.json`.
pub const HTTP_OUTPUT: &str = "res";
/// The most envelope bytes a body of `max_body` bytes can take: JSON escaping writes a control
/// character as `\u00XX` (6 bytes), base64 takes 4 bytes per 3; plus the request's URL and
/// headers. Envelopes up to this size are read and decoded; larger ones cannot carry an
/// acceptable body, so they are read through without being kept and answered 413 (through
/// `res`, like every answer: HOST-PROTOCOL.md, "The answer").
fn max_envelope_bytes(max_body: u64) -> u64 {
    max_body.saturating_mul(6).saturating_add(1 << 20)
}
/// The front end cuts HTTP-triggered invocations at 230 s; stop retrying well before.
const HTTP_DEADLINE: Duration = Duration::from_secs(200);

/// The route for `/Ingest`. The body is streamed and bounded by `ingest` itself (axum's limit
/// would answer 413 to the host, which the caller would see as a 500).
pub fn route() -> MethodRouter<Arc<AppState>> {
    post(ingest).layer(DefaultBodyLimit::disable())
}

/// The host's envelope, read as it streams in: kept while within `limit` bytes; past it, read
/// through to the end without being kept (`Err` with the envelope's size), so memory stays
/// bounded whatever the host posts.
async fn read_envelope(body: Body, limit: u64) -> Result<Vec<u8>, Result<u64, String>> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Err(format!("reading the invocation body: {e}")))?;
        total += chunk.len() as u64;
        if total <= limit {
            kept.extend_from_slice(&chunk);
        } else if !kept.is_empty() {
            kept = Vec::new();
        }
    }
    if total > limit {
        return Err(Ok(total));
    }
    Ok(kept)
}

/// A decoded HTTP-trigger invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpInvocation {
    pub method: String,
    pub url: String,
    /// Header names lower-cased; the host sends each as an array of values.
    pub headers: HashMap<String, Vec<String>>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpInvocation {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Content types whose body the host sends base64-encoded: `application/octet-stream` and
/// multipart (docs/HOST-PROTOCOL.md, from the host's `HttpScriptInvocationContext`). Every other body,
/// `application/gzip` included, arrives as text and is read as such: binary content must be sent
/// as `application/octet-stream` to survive the host.
fn is_binary(content_type: &str) -> bool {
    let ct = content_type.trim().to_ascii_lowercase();
    ct.starts_with("application/octet-stream") || ct.starts_with("multipart/")
}

/// Decodes the host's HTTP-trigger envelope whose trigger binding is `binding`.
pub fn decode_http(body: &[u8], binding: &str) -> Result<HttpInvocation, EnvelopeError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError(format!("the invocation body is not JSON: {e}")))?;
    let req = root
        .as_object()
        .and_then(|r| member(r, "Data"))
        .and_then(Value::as_object)
        .and_then(|d| member(d, binding))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            EnvelopeError(format!(
                "the invocation has no \"Data.{binding}\" HTTP request object"
            ))
        })?;
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(h) = member(req, "Headers").and_then(Value::as_object) {
        for (k, v) in h {
            let values = match v {
                Value::Array(a) => a.iter().map(text_of).collect(),
                other => vec![text_of(other)],
            };
            headers.insert(k.to_ascii_lowercase(), values);
        }
    }
    let query = member(req, "Query")
        .and_then(Value::as_object)
        .map(|q| q.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        .unwrap_or_default();
    let mut inv = HttpInvocation {
        method: member(req, "Method").map(text_of).unwrap_or_default(),
        url: member(req, "Url").map(text_of).unwrap_or_default(),
        headers,
        query,
        body: Vec::new(),
    };
    inv.body = match member(req, "Body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            if inv.header("content-type").is_some_and(is_binary) {
                let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| {
                        EnvelopeError(format!(
                            "the binary request body is not the base64 the host sends: {e}"
                        ))
                    })?
            } else {
                s.clone().into_bytes()
            }
        }
        // Should the host ever pass a JSON body parsed, its text is the same JSON value.
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(inv)
}

/// The host answer carrying the HTTP response for the caller.
pub(crate) fn respond(
    status: u16,
    body: Value,
    extra_headers: &[(&str, String)],
    logs: Vec<String>,
) -> Response {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), "application/json".into());
    for (k, v) in extra_headers {
        headers.insert((*k).into(), v.clone().into());
    }
    let mut outputs = Map::new();
    outputs.insert(
        HTTP_OUTPUT.into(),
        json!({"statusCode": status.to_string(), "body": body, "headers": headers}),
    );
    axum::Json(Answer {
        outputs,
        logs,
        return_value: Value::Null,
    })
    .into_response()
}

/// The caller's status for a finished run.
pub fn status_for(outcome: &RunOutcome) -> u16 {
    let r = &outcome.report;
    if outcome.transient_failures() > 0 {
        503
    } else if r
        .input_error
        .as_ref()
        .is_some_and(|e| e.is(InputErrorCode::InputTooLarge))
    {
        413
    } else if r.input_error.is_some() || r.summary.records == 0 || r.summary.uploaded == 0 {
        400
    } else {
        200
    }
}

async fn ingest(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let id = invocation_id(&headers);
    let source = Source {
        kind: "http".into(),
        name: id.clone(),
        format: None,
    };
    let target = state.uploader.target_name().to_string();
    let max = state.max_http_bytes.min(state.max_input_bytes);
    let body = match read_envelope(body, max_envelope_bytes(max)).await {
        Ok(body) => body,
        Err(Ok(size)) => {
            let report = input_error_report(
                source,
                &target,
                InputErrorCode::InputTooLarge,
                format!(
                    "the request is {size} bytes as the Functions host passes it on, more than a body of at most {max} bytes (TI_MAX_HTTP_BYTES) can take: drop larger files into the inbox container instead"
                ),
            );
            return finish(&state, &id, 413, RunOutcome::of_report(report)).await;
        }
        Err(Err(e)) => {
            tracing::error!(invocation = %id, error = %e, "the HTTP trigger envelope could not be read");
            let report = input_error_report(source, &target, InputErrorCode::EnvelopeInvalid, e);
            return finish(&state, &id, 500, RunOutcome::of_report(report)).await;
        }
    };
    let inv = match decode_http(&body, HTTP_BINDING) {
        Ok(inv) => inv,
        Err(e) => {
            // The host's envelope, not the caller's body, is broken: nothing the caller can fix.
            tracing::error!(invocation = %id, error = %e.0, "undecodable HTTP trigger envelope");
            let report = input_error_report(source, &target, InputErrorCode::EnvelopeInvalid, e.0);
            return finish(&state, &id, 500, RunOutcome::of_report(report)).await;
        }
    };
    if !inv.method.is_empty() && !inv.method.eq_ignore_ascii_case("POST") {
        return respond(
            405,
            json!({"error": {"code": "method_not_allowed", "message": "POST the indicators to /api/indicators"}}),
            &[("Allow", "POST".into())],
            vec![],
        );
    }
    drop(body);
    if inv.body.len() as u64 > max {
        let report = input_error_report(
            source,
            &target,
            InputErrorCode::InputTooLarge,
            format!(
                "the body is {} bytes; this function accepts at most {max} (TI_MAX_HTTP_BYTES): drop larger files into the inbox container instead",
                inv.body.len()
            ),
        );
        return finish(&state, &id, 413, RunOutcome::of_report(report)).await;
    }
    let mut ctx = state.run_context(started);
    ctx.deadline = Some(
        ctx.deadline
            .map_or(started + HTTP_DEADLINE, |d| d.min(started + HTTP_DEADLINE)),
    );
    let outcome = match pipeline::run(pipeline::once(inv.body), source, &ctx).await {
        Ok(o) => o.cut_short_is_too_large(),
        Err(never) => match never {},
    };
    let status = status_for(&outcome);
    finish(&state, &id, status, outcome).await
}

/// Writes the report to storage like a queue input's, and answers the caller with it.
async fn finish(state: &AppState, id: &str, status: u16, outcome: RunOutcome) -> Response {
    let path = storage::message_report_path(id, OffsetDateTime::now_utc());
    let mut headers = Vec::new();
    let mut logs = Vec::new();
    // The report as it would be written, should writing fail: the caller still gets it.
    let (unwritten, _, _) = outcome.report.split(
        &format!("{path}.errors.ndjson"),
        &format!("{path}.warnings.ndjson"),
    );
    let written = state
        .storage
        .write_report(&path, storage::single(outcome), false)
        .await;
    let report: &Report = written.as_ref().unwrap_or(&unwritten);
    match &written {
        Ok(_) => {
            let location = format!(
                "{}/{path}.report.json",
                state.storage.settings.reports_container
            );
            headers.push(("X-TI-Report", location.clone()));
            logs.push(format!(
                "HTTP input {id}: {} records, {} uploaded, {} rejected; status {status}; report {location}",
                report.summary.records, report.summary.uploaded, report.summary.rejected
            ));
        }
        Err(e) => {
            // The caller still gets the report; only the stored copy is missing.
            tracing::error!(invocation = %id, error = %format!("{e:#}"), "writing the HTTP input's report failed");
            logs.push(format!(
                "HTTP input {id}: status {status}; the report could not be stored: {e:#}"
            ));
        }
    }
    if status == 503 {
        headers.push(("Retry-After", "60".into()));
    }
    let body = serde_json::to_value(report).unwrap_or(Value::Null);
    respond(status, body, &headers, logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(content_type: &str, body: Value) -> Vec<u8> {
        json!({
            "Data": {"req": {
                "Url": "https://app.azurewebsites.net/api/indicators?code=x",
                "Method": "POST",
                "Query": {"code": "x"},
                "Headers": {"Content-Type": [content_type], "X-Forwarded-For": ["1.2.3.4"]},
                "Params": {},
                "Identities": [],
                "Body": body
            }},
            "Metadata": {"sys": {"MethodName": "Ingest", "UtcNow": "2026-01-01T00:00:00.0000000Z", "RandGuid": "x"}}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_json_body_arrives_as_text() {
        let inv = decode_http(
            &envelope("application/json", json!("[{\"type\":\"indicator\"}]")),
            "req",
        )
        .unwrap();
        assert_eq!(inv.method, "POST");
        assert_eq!(inv.body, br#"[{"type":"indicator"}]"#);
        assert_eq!(inv.query["code"], "x");
        assert_eq!(inv.header("content-type"), Some("application/json"));
    }

    #[test]
    fn a_binary_body_arrives_as_base64() {
        let raw = [0x1f_u8, 0x8b, 0x08, 0x00, 0xff];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let inv = decode_http(&envelope("application/octet-stream", json!(b64)), "req").unwrap();
        assert_eq!(inv.body, raw);
        assert!(decode_http(&envelope("application/octet-stream", json!("%%%")), "req").is_err());
    }

    #[test]
    fn a_parsed_json_body_and_bad_envelopes() {
        let inv = decode_http(&envelope("application/json", json!({"value": []})), "req").unwrap();
        assert_eq!(inv.body, br#"{"value":[]}"#);
        for bad in [&b"nope"[..], b"{}", br#"{"Data":{"req":"x"}}"#] {
            assert!(decode_http(bad, "req").is_err());
        }
    }
}
