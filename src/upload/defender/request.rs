//! Request building for the Import Indicators API: each STIX indicator becomes a Defender
//! indicator (`ti_core::convert::defender`); a record that cannot be one fails here with the
//! converter's code (`cidr_not_supported`, `not_convertible`, `unsupported_type`) and costs
//! no call. Body: `{"Indicators":[...]}` (import-ti-indicators, "Request body"; body parameters
//! are case-sensitive, Microsoft Learn, defender-endpoint/api/common-errors).

use serde_json::{Map, Value};
use ti_core::convert::defender::{stix_to_defender, DefenderFields};

use crate::upload::target::Request;
use crate::upload::UploadSettings;
use crate::upload::{Failure, Prepared};

/// The builder of `defender` requests.
#[derive(Debug)]
pub struct Defender {
    pub fields: DefenderFields,
}

impl Defender {
    pub fn new(settings: &UploadSettings) -> Self {
        Defender {
            fields: settings.defender.fields.clone(),
        }
    }
}

/// An object as the Defender indicator it would become, or why it cannot be one.
pub fn convert(
    object: &Map<String, Value>,
    fields: &DefenderFields,
) -> Result<Map<String, Value>, Failure> {
    stix_to_defender(object, fields).map_err(|p| Failure {
        code: p.code,
        messages: vec![format!("as a Defender indicator: {}", p.message)],
    })
}

/// The body of one import call.
pub fn encode(indicators: &[&Map<String, Value>]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        #[serde(rename = "Indicators")]
        indicators: &'a [&'a Map<String, Value>],
    }
    serde_json::to_vec(&Body { indicators }).expect("a JSON map always serialises")
}

/// The convertible objects of a batch: each one's batch position and Defender indicator.
pub type Converted = Vec<(usize, Map<String, Value>)>;

/// Converts a batch: the indicators of the convertible objects (with their batch positions),
/// and the outcome of the others.
pub fn convert_all(
    objects: &[Map<String, Value>],
    fields: &DefenderFields,
) -> (Converted, Vec<Option<Failure>>) {
    let mut outcome = vec![None; objects.len()];
    let mut converted = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        match convert(o, fields) {
            Ok(d) => converted.push((i, d)),
            Err(f) => outcome[i] = Some(f),
        }
    }
    (converted, outcome)
}

impl Request for Defender {
    fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared {
        let (converted, outcome) = convert_all(objects, &self.fields);
        let body = if converted.is_empty() {
            Vec::new()
        } else {
            encode(&converted.iter().map(|(_, d)| d).collect::<Vec<_>>())
        };
        Prepared {
            body,
            sent: converted.iter().map(|(i, _)| *i).collect(),
            outcome,
        }
    }

    fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        convert(object, &self.fields).err()
    }
}

/// The import URL.
pub fn url(base: &str) -> String {
    format!("{}/api/indicators/import", base.trim_end_matches('/'))
}

/// The batch-delete URL (Microsoft Learn, batch-delete-ti-indicators:
/// `POST https://api.securitycenter.microsoft.com/api/indicators/BatchDelete`).
pub fn batch_delete_url(base: &str) -> String {
    format!("{}/api/indicators/BatchDelete", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ti_core::report::Code;

    fn indicator(pattern: &str) -> Map<String, Value> {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--6f1b5b7e-0000-4000-8000-000000000001",
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "name": "bad host", "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn convertible_indicators_go_under_indicators_and_the_rest_fail_in_place() {
        let d = Defender {
            fields: DefenderFields {
                action: "Audit".into(),
                generate_alert: true,
                application: "ti-ingest".into(),
                rbac_group_names: vec![],
            },
        };
        let batch = [
            indicator("[ipv4-addr:value = '198.51.100.7']"),
            indicator("[ipv4-addr:value = '198.51.100.0/24']"),
            indicator("[domain-name:value = 'evil.example']"),
        ];
        let p = d.prepare(&batch);
        assert_eq!(p.sent, vec![0, 2]);
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        let list = body["Indicators"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["indicatorType"], "IpAddress");
        assert_eq!(list[1]["indicatorValue"], "evil.example");
        assert_eq!(p.outcome[1].as_ref().unwrap().code, Code::CidrNotSupported);
        assert_eq!(
            url("https://api.securitycenter.microsoft.com/"),
            "https://api.securitycenter.microsoft.com/api/indicators/import"
        );
    }
}
