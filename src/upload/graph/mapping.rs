//! Result mapping for Graph `submitTiIndicators`: `200` = every tiIndicator created; `206
//! Partial Content` = `value[]` holds one item per submitted tiIndicator, in order, and each
//! failed one carries an `"Error"` string (`"Target: networkDestinationIPv4 - ValidationFailed -
//! ..."`). Items are matched by position, so a `206` whose `value[]` does not line up with the
//! request cannot be trusted for any record: the batch fails rather than pass a record silently.

use serde_json::Value;
use ti_core::report::Code;

use crate::upload::sentinel_stix::mapping::whole_batch;
use crate::upload::{BatchOutcome, Failure};

/// Maps a 2xx answer for a request of `batch_len` tiIndicators.
pub fn map_success(status: u16, batch_len: usize, body: &[u8]) -> BatchOutcome {
    let items = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match v {
            Value::Object(mut o) => o.remove("value"),
            _ => None,
        })
        .and_then(|v| match v {
            Value::Array(a) => Some(a),
            _ => None,
        });
    let Some(items) = items else {
        if status == 200 {
            // 200 means all created; the echoed objects are only informative.
            return vec![None; batch_len];
        }
        return whole_batch(
            Code::RejectedByService,
            format!("Graph answered {status} without the documented value[] list; outcome unknown, not counted as uploaded"),
            batch_len,
        );
    };
    if items.len() != batch_len {
        if status == 200 && !items.iter().any(item_error_present) {
            return vec![None; batch_len];
        }
        return whole_batch(
            Code::RejectedByService,
            format!(
                "Graph answered {status} with {} items for {batch_len} submitted; they cannot be matched by position, so the outcome is unknown and not counted as uploaded",
                items.len()
            ),
            batch_len,
        );
    }
    items
        .iter()
        .map(|item| {
            item_error(item).map(|e| Failure {
                code: Code::RejectedByService,
                messages: vec![e],
            })
        })
        .collect()
}

fn item_error_present(item: &Value) -> bool {
    item_error(item).is_some()
}

/// The item's `"Error"` (any case), when it has one.
fn item_error(item: &Value) -> Option<String> {
    let (_, v) = item
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("error"))?;
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The one message every record of a batch gets once Graph says tiIndicators is gone.
pub const RETIRED: &str = "Microsoft Graph tiIndicators is retired: Microsoft deprecated the tiIndicator API and removed it in April 2026 (announced for 2026-04-10), so nothing sent to target graph is kept. Use TI_TARGET=sentinel-stix (the Microsoft Sentinel STIX objects upload API) instead";

/// Whether a permanent answer says the tiIndicators route no longer exists. What the removed
/// route answers is not published for this API, so every answer Graph gives for a route it does
/// not have counts: `404` ("The requested resource doesn't exist") and `410 Gone` ("no longer
/// available at the server", Microsoft Learn, Graph "error responses"), and the `400` of its
/// OData router for an unknown segment, "Resource not found for the segment 'tiIndicators'."
/// (seen in the wild, e.g. microsoftgraph/msgraph-beta-sdk-python#764). Any other `400`
/// (a refused body) is not a retirement.
fn is_retired(status: u16, body: &str) -> bool {
    match status {
        404 | 410 => true,
        400 => body
            .to_ascii_lowercase()
            .contains("resource not found for the segment 'tiindicators'"),
        _ => false,
    }
}

/// The code and human explanation for a permanent status, with Graph's own text.
pub fn permanent(status: u16, body: &str, _error_code: Option<&str>) -> (Code, String) {
    let text: String = body.chars().take(2000).collect();
    if is_retired(status, body) {
        return (
            Code::ApiRetired,
            format!(
                "{RETIRED} (or TI_GRAPH_BASE_URL does not point at Microsoft Graph). Graph answered HTTP {status}: {text}"
            ),
        );
    }
    let (code, hint) = match status {
        400 => (Code::BadRequest, ""),
        401 => (
            Code::Unauthorized,
            " (the token was refused: Graph needs a token for https://graph.microsoft.com/.default)",
        ),
        403 => (
            Code::Forbidden,
            " (the identity lacks the application permission ThreatIndicators.ReadWrite.OwnedBy)",
        ),
        _ => (Code::HttpError, ""),
    };
    (code, format!("HTTP {status}{hint}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_means_all_created() {
        assert_eq!(
            map_success(2, 2, br#"{"value":[{"id":"a"},{"id":"b"}]}"#),
            vec![None, None]
        );
        assert_eq!(map_success(200, 3, b""), vec![None, None, None]);
    }

    #[test]
    fn a_206_maps_each_error_to_its_position() {
        let body = br#"{"value":[
            {"id":"a"},
            {"networkDestinationIPv4":"51.158.66.18/32","Error":"Target: networkDestinationIPv4 - ValidationFailed - The value 51.158.66.18/32 is not a valid IPv4 address."},
            {"id":"c"}]}"#;
        let out = map_success(206, 3, body);
        assert!(out[0].is_none() && out[2].is_none());
        let f = out[1].as_ref().unwrap();
        assert_eq!(f.code, Code::RejectedByService);
        assert!(f.messages[0].starts_with("Target: networkDestinationIPv4"));
    }

    #[test]
    fn a_206_that_does_not_line_up_fails_the_batch() {
        let out = map_success(206, 3, br#"{"value":[{"Error":"x"}]}"#);
        assert!(out.iter().all(|o| o.is_some()));
        let out = map_success(206, 2, b"<html>");
        assert!(out.iter().all(|o| o.is_some()));
    }

    #[test]
    fn permanent_statuses_explain_themselves() {
        assert_eq!(permanent(401, "", None).0, Code::Unauthorized);
        assert!(permanent(403, "", None)
            .1
            .contains("ThreatIndicators.ReadWrite.OwnedBy"));
        let refused = r#"{"error":{"code":"BadRequest","message":"Invalid value"}}"#;
        assert_eq!(
            permanent(400, refused, None),
            (Code::BadRequest, format!("HTTP 400: {refused}"))
        );
    }

    #[test]
    fn every_answer_of_a_removed_route_is_the_retirement() {
        let segment = r#"{"error":{"code":"BadRequest","message":"Resource not found for the segment 'tiIndicators'."}}"#;
        for (status, body) in [
            (400, segment),
            (
                404,
                r#"{"error":{"code":"ResourceNotFound","message":"Resource could not be discovered."}}"#,
            ),
            (410, ""),
        ] {
            let (code, message) = permanent(status, body, None);
            assert_eq!(code, Code::ApiRetired, "{status}");
            assert_eq!(
                message,
                format!("{RETIRED} (or TI_GRAPH_BASE_URL does not point at Microsoft Graph). Graph answered HTTP {status}: {body}")
            );
            assert!(message.contains("April 2026") && message.contains("TI_TARGET=sentinel-stix"));
        }
    }
}
