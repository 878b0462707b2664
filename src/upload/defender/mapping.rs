//! Result mapping for the Import Indicators API. A `200` carries one import result per
//! indicator, `{"value":[{"id","indicator","isFailed","failureReason"}]}` (Microsoft Learn,
//! https://learn.microsoft.com/defender-endpoint/api/import-ti-indicators, "Response"), in the
//! request's order in Microsoft's example; each result is matched to its indicator by position
//! when its `indicator` is the value sent there, else by value, and a result that matches
//! nothing leaves its record unconfirmed (failed, not counted as uploaded). Errors have the
//! `{"error":{"code","message","target"}}` shape (Microsoft Learn,
//! https://learn.microsoft.com/defender-endpoint/api/common-errors).

use serde_json::Value;
use ti_core::report::Code;

use crate::upload::{BatchOutcome, Failure};

/// What one sent indicator became: its Defender id when it was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Ok { id: String },
    Failed(Failure),
}

/// Whether a per-indicator failure says the tenant's active-indicator limit is reached (another
/// tool's indicators filled it): reported `over_budget`, like what ti-ingest's own budget holds
/// back.
fn is_tenant_full(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("active indicators") && r.contains("limit")
}

/// Maps a `200` for the indicators sent (their `indicatorValue`s, in request order).
pub fn map_success(body: &[u8], values: &[&str]) -> Vec<Placed> {
    let unknown = |why: &str| {
        Placed::Failed(Failure {
            code: Code::RejectedByService,
            messages: vec![format!(
                "Defender answered 200 {why}; the outcome is unknown, not counted as uploaded"
            )],
        })
    };
    let Some(items) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("value").map(Value::take))
        .and_then(|v| match v {
            Value::Array(a) => Some(a),
            _ => None,
        })
    else {
        return vec![unknown("without the documented value[] list"); values.len()];
    };
    let mut out: Vec<Option<Placed>> = vec![None; values.len()];
    for (pos, item) in items.iter().enumerate() {
        let value = item.get("indicator").and_then(Value::as_str);
        let at = match value {
            Some(v) if values.get(pos) == Some(&v) && out[pos].is_none() => Some(pos),
            Some(v) => (0..values.len()).find(|&i| values[i] == v && out[i].is_none()),
            None if items.len() == values.len() => Some(pos),
            None => None,
        };
        let Some(at) = at else { continue };
        let failed = item
            .get("isFailed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out[at] = Some(if failed {
            let reason = item
                .get("failureReason")
                .and_then(Value::as_str)
                .unwrap_or("no failureReason given")
                .to_string();
            let code = if is_tenant_full(&reason) {
                Code::OverBudget
            } else {
                Code::RejectedByService
            };
            Placed::Failed(Failure {
                code,
                messages: vec![reason],
            })
        } else {
            let id = match item.get("id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            Placed::Ok { id }
        });
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| unknown("with no result for this indicator")))
        .collect()
}

/// The outcome of each sent record from [`map_success`].
pub fn outcomes(placed: &[Placed]) -> BatchOutcome {
    placed
        .iter()
        .map(|p| match p {
            Placed::Ok { .. } => None,
            Placed::Failed(f) => Some(f.clone()),
        })
        .collect()
}

/// The code and human explanation for a permanent status, with Defender's own text.
pub fn permanent(status: u16, body: &str, _error_code: Option<&str>) -> (Code, String) {
    let parsed: Option<(String, String)> = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        Some((
            e.get("code")?.as_str()?.to_string(),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ))
    });
    let service = match &parsed {
        Some((code, message)) => format!("{code}: {message}"),
        None => body.chars().take(2000).collect(),
    };
    let (code, hint) = match status {
        400 => (Code::BadRequest, ""),
        401 => (
            Code::Unauthorized,
            " (the token was refused: Defender for Endpoint needs a token for https://api.securitycenter.microsoft.com/.default, or the US Government audience in TI_CLOUD=usgov)",
        ),
        403 => (
            Code::Forbidden,
            " (the identity lacks the application permission Ti.ReadWrite.All of WindowsDefenderATP)",
        ),
        _ => (Code::HttpError, ""),
    };
    (code, format!("HTTP {status}{hint}: {service}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_lands_on_its_indicator() {
        // The shape of Microsoft Learn's example answer.
        let body = br#"{"value":[
            {"id":"2841","indicator":"220e7d15b011d7fac48f2bd61114db1022197f7f","isFailed":false,"failureReason":null},
            {"id":null,"indicator":"198.51.100.7","isFailed":true,"failureReason":"IP address 198.51.100.7 is invalid."},
            {"id":null,"indicator":"evil.example","isFailed":true,"failureReason":"There's a limit of 15000 active indicators per tenant; the limit is reached."}]}"#;
        let out = map_success(
            body,
            &[
                "220e7d15b011d7fac48f2bd61114db1022197f7f",
                "198.51.100.7",
                "evil.example",
            ],
        );
        assert_eq!(out[0], Placed::Ok { id: "2841".into() });
        assert_eq!(
            out[1],
            Placed::Failed(Failure {
                code: Code::RejectedByService,
                messages: vec!["IP address 198.51.100.7 is invalid.".into()]
            })
        );
        let Placed::Failed(f) = &out[2] else { panic!() };
        assert_eq!(f.code, Code::OverBudget);
        // Out of order: matched by value; a missing result leaves its record unconfirmed.
        let out = map_success(
            br#"{"value":[{"id":"7","indicator":"b","isFailed":false}]}"#,
            &["a", "b"],
        );
        assert_eq!(out[1], Placed::Ok { id: "7".into() });
        let Placed::Failed(f) = &out[0] else { panic!() };
        assert_eq!(f.code, Code::RejectedByService);
        assert_eq!(map_success(b"<html>", &["a"]).len(), 1);
    }

    #[test]
    fn permanent_statuses_name_the_permission() {
        let (code, message) = permanent(
            403,
            r#"{"error":{"code":"Forbidden","message":"Forbidden (valid token but insufficient permission for the action).","target":"x"}}"#,
            None,
        );
        assert_eq!(code, Code::Forbidden);
        assert_eq!(message, "HTTP 403 (the identity lacks the application permission Ti.ReadWrite.All of WindowsDefenderATP): Forbidden: Forbidden (valid token but insufficient permission for the action).");
        assert_eq!(permanent(401, "", None).0, Code::Unauthorized);
        assert_eq!(
            permanent(400, "{}", None),
            (Code::BadRequest, "HTTP 400: {}".into())
        );
    }
}
