//! Request building for Graph `submitTiIndicators`: each STIX indicator becomes a tiIndicator
//! (`ti_core::convert::stix_to_ti`, with the configured `action` and `targetProduct`) and is
//! checked against Graph's rules (`validate_ti`). A record that cannot be converted, or whose
//! tiIndicator Graph would refuse, fails here with the converter's code and reason and costs no
//! request.

use serde::Serialize;
use serde_json::{Map, Value};
use ti_core::convert::{stix_to_ti, validate_ti};
use ti_core::report::Code;
use ti_core::stix;

use crate::upload::target::Request;
use crate::upload::{Failure, Prepared};

/// The builder of `graph` requests: the tiIndicator fields the target sets.
#[derive(Debug)]
pub struct Graph {
    pub action: String,
    pub target_product: String,
}

impl Request for Graph {
    fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared {
        prepare(&self.action, &self.target_product, objects)
    }

    fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        convert(object, &self.action, &self.target_product).err()
    }

    /// A description over Graph's 100 characters is cut (`value_shortened`).
    fn shortenings(&self, object: &Map<String, Value>) -> Vec<stix::Problem> {
        match ti_core::convert::stix_to_ti_with_warnings(object, &self.action, &self.target_product)
        {
            Ok((_, warnings)) => warnings
                .into_iter()
                .filter(|w| w.code == Code::ValueShortened)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Body {
    value: Vec<Map<String, Value>>,
}

/// An object as the tiIndicator Graph would get, or why it cannot be one (not convertible, or
/// refused by Graph's rules).
pub fn convert(
    object: &Map<String, Value>,
    action: &str,
    target_product: &str,
) -> Result<Map<String, Value>, Failure> {
    let ti = stix_to_ti(object, action, target_product).map_err(|p| Failure {
        code: p.code,
        messages: vec![p.message],
    })?;
    match validate_ti(&ti) {
        Ok(()) => Ok(ti),
        Err(problems) => Err(Failure {
            code: problems.first().map_or(Code::NotConvertible, |p| p.code),
            messages: problems
                .into_iter()
                .map(|p| format!("as a Graph tiIndicator: {}", p.message))
                .collect(),
        }),
    }
}

/// The request for one batch: the tiIndicators of the convertible objects, in batch order.
pub fn prepare(action: &str, target_product: &str, objects: &[Map<String, Value>]) -> Prepared {
    let mut outcome = vec![None; objects.len()];
    let mut sent = Vec::with_capacity(objects.len());
    let mut value = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        match convert(o, action, target_product) {
            Ok(ti) => {
                sent.push(i);
                value.push(ti);
            }
            Err(f) => outcome[i] = Some(f),
        }
    }
    let body = if sent.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&Body { value }).expect("a JSON map always serialises")
    };
    Prepared {
        body,
        sent,
        outcome,
    }
}

/// The request URL.
pub fn url(base: &str) -> String {
    format!(
        "{}/beta/security/tiIndicators/submitTiIndicators",
        base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn indicator(pattern: &str) -> Map<String, Value> {
        obj(json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--6f1b5b7e-0000-4000-8000-000000000001",
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "name": "bad host", "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"
        }))
    }

    #[test]
    fn convertible_indicators_become_tiindicators_and_the_rest_fail_in_place() {
        let batch = [
            indicator("[ipv4-addr:value = '198.51.100.7']"),
            indicator("[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'x.example']"),
            obj(
                json!({"type": "threat-actor", "id": "threat-actor--6f1b5b7e-0000-4000-8000-000000000002"}),
            ),
            indicator("[domain-name:value = 'evil.example']"),
        ];
        let p = prepare("alert", "Azure Sentinel", &batch);
        assert_eq!(p.sent, vec![0, 3]);
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        let value = body["value"].as_array().unwrap();
        assert_eq!(value.len(), 2);
        assert_eq!(value[0]["networkIPv4"], "198.51.100.7");
        assert_eq!(value[0]["action"], "alert");
        assert_eq!(value[0]["targetProduct"], "Azure Sentinel");
        assert_eq!(value[1]["domainName"], "evil.example");
        assert_eq!(p.outcome[1].as_ref().unwrap().code, Code::NotConvertible);
        assert_eq!(p.outcome[2].as_ref().unwrap().code, Code::UnsupportedType);
        assert!(p.outcome[0].is_none() && p.outcome[3].is_none());
    }

    #[test]
    fn url_is_the_beta_action() {
        assert_eq!(
            url("https://graph.microsoft.com/"),
            "https://graph.microsoft.com/beta/security/tiIndicators/submitTiIndicators"
        );
    }
}
