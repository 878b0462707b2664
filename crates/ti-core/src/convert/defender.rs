//! STIX indicator → Microsoft Defender for Endpoint indicator (the `Indicator` resource the
//! Import Indicators API takes).
//!
//! Sources (Microsoft Learn):
//! - "Indicator resource type", https://learn.microsoft.com/defender-endpoint/api/ti-indicator:
//!   `indicatorType` is one of `FileSha1`, `FileSha256`, `FileMd5`, `CertificateThumbprint`,
//!   `IpAddress`, `DomainName`, `Url`; `severity` one of `Informational`, `Low`, `Medium`,
//!   `High`; `action` one of `Warn`, `Block`, `Audit`, `Alert`, `AlertAndBlock`,
//!   `BlockAndRemediate`, `Allowed`.
//! - "Submit or Update Indicator API", https://learn.microsoft.com/defender-endpoint/api/post-ti-indicator:
//!   `indicatorValue`, `indicatorType`, `action`, `title` and `description` are required;
//!   `expirationTime`, `severity`, `application`, `rbacGroupNames` optional; "The
//!   `GenerateAlert` parameter must be set to `TRUE` when creating an action with `Audit`".
//! - "Import Indicators API", https://learn.microsoft.com/defender-endpoint/api/import-ti-indicators:
//!   "CIDR notation for IPs isn't supported".
//!
//! | Defender indicator | STIX indicator |
//! |---|---|
//! | `indicatorType` + `indicatorValue` | the pattern's one comparison: `ipv4-addr`/`ipv6-addr:value` → `IpAddress`, `domain-name:value` → `DomainName`, `url:value` → `Url`, `file:hashes.MD5`/`'SHA-1'`/`'SHA-256'` → `FileMd5`/`FileSha1`/`FileSha256`, `x509-certificate:hashes.'SHA-1'` → `CertificateThumbprint` |
//! | `title` | `name`, else `<indicatorType> <indicatorValue>` |
//! | `description` | `description`, else the title |
//! | `expirationTime` | `valid_until` (absent: none, the indicator does not expire) |
//! | `severity` | from `confidence` (ti-ingest's own scale: ≥ 85 `High`, ≥ 60 `Medium`, ≥ 30 `Low`, else `Informational`) |
//! | `action`, `generateAlert`, `application`, `rbacGroupNames` | settings |

use serde_json::{Map, Value};

use crate::report::Code;
use crate::stix::observable::Observable;
use crate::stix::Problem;

/// The `indicatorType` values (Microsoft Learn, ti-indicator).
pub const INDICATOR_TYPES: [&str; 7] = [
    "FileSha1",
    "FileSha256",
    "FileMd5",
    "CertificateThumbprint",
    "IpAddress",
    "DomainName",
    "Url",
];

/// The `action` values (Microsoft Learn, ti-indicator and post-ti-indicator).
pub const ACTIONS: [&str; 7] = [
    "Audit",
    "Alert",
    "Warn",
    "Block",
    "BlockAndRemediate",
    "AlertAndBlock",
    "Allowed",
];

/// The fields a Defender indicator takes from settings rather than from the STIX object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefenderFields {
    /// `action`: what Defender does when it sees the indicator.
    pub action: String,
    /// `generateAlert`.
    pub generate_alert: bool,
    /// `application`: the name the indicator is filed under.
    pub application: String,
    /// `rbacGroupNames`: the device groups it applies to (empty: every device).
    pub rbac_group_names: Vec<String>,
}

/// `severity` from a STIX `confidence` (0..=100; absent = `Informational`).
pub fn severity(confidence: Option<u64>) -> &'static str {
    match confidence {
        Some(c) if c >= 85 => "High",
        Some(c) if c >= 60 => "Medium",
        Some(c) if c >= 30 => "Low",
        _ => "Informational",
    }
}

/// The `(indicatorType, indicatorValue)` of a STIX indicator, or why it has none: not an
/// indicator (`unsupported_type`), a CIDR (`cidr_not_supported`), or a pattern that is not one
/// comparison of a kind Defender takes (`not_convertible`).
pub fn indicator_of(object: &Map<String, Value>) -> Result<(&'static str, String), Problem> {
    let not_convertible = |m: String| Problem::new(Code::NotConvertible, m);
    let (path, value) = super::single_observable(object, "Defender indicator", "value")?;
    if let Some(algo) = path.strip_prefix("x509-certificate:hashes.") {
        let algo = algo
            .trim_matches('\'')
            .replace('-', "")
            .to_ascii_uppercase();
        if algo == "SHA1" {
            return Ok(("CertificateThumbprint", value));
        }
    }
    let kind = match Observable::from_pattern_path(&path) {
        Some(Observable::Ipv4 | Observable::Ipv6) if value.contains('/') => {
            return Err(Problem::new(
                Code::CidrNotSupported,
                format!(
                    "{value} is a network range (CIDR notation), which Defender for Endpoint indicators do not take: list its addresses one by one, or send it to sentinel-stix"
                ),
            ))
        }
        Some(Observable::Ipv4 | Observable::Ipv6) => "IpAddress",
        Some(Observable::Domain) => "DomainName",
        Some(Observable::Url) => "Url",
        Some(Observable::Md5) => "FileMd5",
        Some(Observable::Sha1) => "FileSha1",
        Some(Observable::Sha256) => "FileSha256",
        _ => {
            return Err(not_convertible(format!(
                "the pattern's object path {path} has no Defender indicator type (convertible: ipv4-addr:value, ipv6-addr:value, domain-name:value, url:value, file:hashes.MD5/'SHA-1'/'SHA-256', x509-certificate:hashes.'SHA-1')"
            )))
        }
    };
    Ok((kind, value))
}

/// The Defender indicator for a STIX indicator (already validated), or why it cannot be one.
pub fn stix_to_defender(
    object: &Map<String, Value>,
    fields: &DefenderFields,
) -> Result<Map<String, Value>, Problem> {
    let (kind, value) = indicator_of(object)?;
    let text = |k: &str| {
        object
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let title = text("name").map_or_else(|| format!("{kind} {value}"), str::to_string);
    let description = text("description").map_or_else(|| title.clone(), str::to_string);
    let mut d = Map::new();
    d.insert("indicatorValue".into(), value.into());
    d.insert("indicatorType".into(), kind.into());
    d.insert("title".into(), title.into());
    d.insert("description".into(), description.into());
    d.insert("application".into(), fields.application.clone().into());
    d.insert("action".into(), fields.action.clone().into());
    d.insert("generateAlert".into(), fields.generate_alert.into());
    let confidence = object.get("confidence").and_then(Value::as_u64);
    d.insert("severity".into(), severity(confidence).into());
    if let Some(until) = text("valid_until") {
        d.insert("expirationTime".into(), until.into());
    }
    d.insert(
        "rbacGroupNames".into(),
        fields
            .rbac_group_names
            .iter()
            .cloned()
            .map(Value::from)
            .collect::<Vec<_>>()
            .into(),
    );
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator(pattern: &str, extra: Value) -> Map<String, Value> {
        let mut o = json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--6f1b5b7e-0000-4000-8000-000000000001",
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z"
        });
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o.as_object().unwrap().clone()
    }

    fn fields() -> DefenderFields {
        DefenderFields {
            action: "Audit".into(),
            generate_alert: true,
            application: "ti-ingest".into(),
            rbac_group_names: vec!["servers".into()],
        }
    }

    #[test]
    fn every_observable_defender_takes_maps_to_its_type() {
        for (pattern, kind, value) in [
            ("[ipv4-addr:value = '198.51.100.7']", "IpAddress", "198.51.100.7"),
            ("[ipv6-addr:value = '2001:db8::1']", "IpAddress", "2001:db8::1"),
            ("[domain-name:value = 'evil.example']", "DomainName", "evil.example"),
            ("[url:value = 'http://evil.example/x']", "Url", "http://evil.example/x"),
            ("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", "FileMd5", "d41d8cd98f00b204e9800998ecf8427e"),
            ("[file:hashes.'SHA-1' = '220e7d15b011d7fac48f2bd61114db1022197f7f']", "FileSha1", "220e7d15b011d7fac48f2bd61114db1022197f7f"),
            ("[file:hashes.'SHA-256' = '2233223322332233223322332233223322332233223322332233223322332222']", "FileSha256", "2233223322332233223322332233223322332233223322332233223322332222"),
            ("[x509-certificate:hashes.'SHA-1' = '220e7d15b011d7fac48f2bd61114db1022197f7f']", "CertificateThumbprint", "220e7d15b011d7fac48f2bd61114db1022197f7f"),
        ] {
            let d = stix_to_defender(&indicator(pattern, json!({})), &fields()).unwrap();
            assert_eq!(d["indicatorType"], kind, "{pattern}");
            assert_eq!(d["indicatorValue"], value, "{pattern}");
        }
    }

    #[test]
    fn every_field_is_filled_from_the_object_or_the_settings() {
        let o = indicator(
            "[domain-name:value = 'evil.example']",
            json!({"name": "C2 host", "description": "seen in campaign X", "confidence": 90,
                   "valid_until": "2027-01-01T00:00:00Z"}),
        );
        assert_eq!(
            Value::Object(stix_to_defender(&o, &fields()).unwrap()),
            json!({
                "indicatorValue": "evil.example", "indicatorType": "DomainName",
                "title": "C2 host", "description": "seen in campaign X",
                "application": "ti-ingest", "action": "Audit", "generateAlert": true,
                "severity": "High", "expirationTime": "2027-01-01T00:00:00Z",
                "rbacGroupNames": ["servers"]
            })
        );
        // Title and description are required: made from the value when the object has none.
        let d = stix_to_defender(
            &indicator("[url:value = 'http://a.example/']", json!({})),
            &fields(),
        )
        .unwrap();
        assert_eq!(d["title"], "Url http://a.example/");
        assert_eq!(d["description"], "Url http://a.example/");
        assert_eq!(d["severity"], "Informational");
        assert!(d.get("expirationTime").is_none());
        assert_eq!(
            [0, 29, 30, 59, 60, 84, 85, 100].map(|c| severity(Some(c))),
            [
                "Informational",
                "Informational",
                "Low",
                "Low",
                "Medium",
                "Medium",
                "High",
                "High"
            ]
        );
    }

    #[test]
    fn what_defender_cannot_hold_is_refused_with_its_code() {
        for (o, code) in [
            (indicator("[ipv4-addr:value = '198.51.100.0/24']", json!({})), Code::CidrNotSupported),
            (indicator("[ipv6-addr:value = '2001:db8::/32']", json!({})), Code::CidrNotSupported),
            (
                indicator("[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'x.example']", json!({})),
                Code::NotConvertible,
            ),
            (indicator("[email-addr:value = 'a@b.example']", json!({})), Code::NotConvertible),
            (indicator("[file:name = 'evil.exe']", json!({})), Code::NotConvertible),
            (indicator("[file:hashes.'SHA-512' = 'ab']", json!({})), Code::NotConvertible),
            (
                json!({"type": "threat-actor", "id": "threat-actor--6f1b5b7e-0000-4000-8000-000000000002"})
                    .as_object()
                    .unwrap()
                    .clone(),
                Code::UnsupportedType,
            ),
        ] {
            let p = stix_to_defender(&o, &fields()).unwrap_err();
            assert_eq!(p.code, code, "{o:?}: {}", p.message);
        }
        let p = stix_to_defender(
            &indicator("[ipv4-addr:value = '198.51.100.0/24']", json!({})),
            &fields(),
        )
        .unwrap_err();
        assert!(
            p.message.starts_with("198.51.100.0/24 is a network range"),
            "{}",
            p.message
        );
    }
}
