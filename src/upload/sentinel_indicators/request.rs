//! Request building for the Upload Indicators API: pure batch → bytes. The API takes STIX
//! indicators only; any other object is refused here, so it costs no request and gets a precise
//! reason instead of the service's.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::upload::target::{refuse_other_types, Request};
use crate::upload::{Failure, Prepared};

/// The builder of `sentinel-indicators` requests.
#[derive(Debug)]
pub struct Indicators {
    pub source_system: String,
}

impl Request for Indicators {
    fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared {
        prepare(&self.source_system, objects)
    }

    fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        refusal(object)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    sourcesystem: &'a str,
    indicators: Vec<&'a Map<String, Value>>,
}

/// Why the Upload Indicators API would refuse an object: anything but an indicator.
pub fn refusal(object: &Map<String, Value>) -> Option<Failure> {
    refuse_other_types(super::SPEC.accepted_types, object, |other| {
        format!(
            "the Upload Indicators API (target sentinel-indicators) takes only indicator objects, not '{other}'; use TI_TARGET=sentinel-stix for other STIX objects"
        )
    })
}

/// The request for one batch: its indicators; every other object fails `unsupported_type`.
pub fn prepare(source_system: &str, objects: &[Map<String, Value>]) -> Prepared {
    let mut outcome = vec![None; objects.len()];
    let mut sent = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        match refusal(o) {
            None => sent.push(i),
            failure => outcome[i] = failure,
        }
    }
    let body = if sent.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&Body {
            sourcesystem: source_system,
            indicators: sent.iter().map(|i| &objects[*i]).collect(),
        })
        .expect("a JSON map always serialises")
    };
    Prepared {
        body,
        sent,
        outcome,
    }
}

/// The request URL for a workspace.
pub fn url(base: &str, workspace_id: &str, api_version: &str) -> String {
    format!(
        "{}/workspaces/{}/threatintelligenceindicators:upload?api-version={}",
        base.trim_end_matches('/'),
        workspace_id,
        api_version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ti_core::report::Code;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_indicators_are_sent_under_the_indicators_key() {
        let batch = [
            obj(json!({"type": "indicator", "id": "indicator--1"})),
            obj(json!({"type": "threat-actor", "id": "threat-actor--2"})),
            obj(json!({"type": "indicator", "id": "indicator--3"})),
        ];
        let p = prepare("ti-ingest", &batch);
        assert_eq!(p.sent, vec![0, 2]);
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body["sourcesystem"], "ti-ingest");
        assert_eq!(body["indicators"][1]["id"], "indicator--3");
        assert!(body.get("stixobjects").is_none());
        let f = p.outcome[1].as_ref().unwrap();
        assert_eq!(f.code, Code::UnsupportedType);
        assert!(f.messages[0].contains("threat-actor"));
    }

    #[test]
    fn nothing_to_send_means_no_body() {
        let p = prepare("s", &[obj(json!({"type": "identity"}))]);
        assert!(p.sent.is_empty() && p.body.is_empty());
    }

    #[test]
    fn url_has_the_legacy_operation() {
        assert_eq!(
            url("https://sentinelus.azure-api.net", "w", "2022-07-01"),
            "https://sentinelus.azure-api.net/workspaces/w/threatintelligenceindicators:upload?api-version=2022-07-01"
        );
    }
}
