//! Request building for the STIX objects upload API: pure batch → bytes.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::upload::target::Request;
use crate::upload::{Failure, Prepared};

/// The builder of `sentinel-stix` requests.
#[derive(Debug)]
pub struct Stix {
    pub source_system: String,
}

impl Request for Stix {
    fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared {
        prepare(&self.source_system, objects)
    }

    /// It refuses nothing STIX validation lets through.
    fn refusal(&self, _object: &Map<String, Value>) -> Option<Failure> {
        None
    }
}

#[derive(Serialize)]
struct Body<'a> {
    sourcesystem: &'a str,
    stixobjects: &'a [Map<String, Value>],
}

/// The JSON body for one batch.
pub fn encode(source_system: &str, objects: &[Map<String, Value>]) -> Vec<u8> {
    serde_json::to_vec(&Body {
        sourcesystem: source_system,
        stixobjects: objects,
    })
    .expect("a JSON map always serialises")
}

/// The request for one batch: every object goes (the pipeline's validation already kept to the
/// types this API accepts).
pub fn prepare(source_system: &str, objects: &[Map<String, Value>]) -> Prepared {
    Prepared {
        body: encode(source_system, objects),
        sent: (0..objects.len()).collect(),
        outcome: vec![None; objects.len()],
    }
}

/// The request URL for a workspace.
pub fn url(base: &str, workspace_id: &str, api_version: &str) -> String {
    format!(
        "{}/workspaces/{}/threat-intelligence-stix-objects:upload?api-version={}",
        base.trim_end_matches('/'),
        workspace_id,
        api_version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_url_have_the_documented_shape() {
        let obj: Map<String, Value> =
            serde_json::from_str(r#"{"type":"indicator","id":"indicator--1"}"#).unwrap();
        let body: Value = serde_json::from_slice(&encode("ti-ingest", &[obj])).unwrap();
        assert_eq!(body["sourcesystem"], "ti-ingest");
        assert_eq!(body["stixobjects"][0]["type"], "indicator");
        assert_eq!(
            url("https://api.ti.sentinel.azure.com/", "w", "2024-02-01-preview"),
            "https://api.ti.sentinel.azure.com/workspaces/w/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview"
        );
    }
}
