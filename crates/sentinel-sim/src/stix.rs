//! Per-record validation of the STIX objects in a Sentinel upload, in the spirit of the real
//! service: each object is checked on its own by simple rules, and every failure becomes one
//! message in the service's wording ("Error for Property=id: Required property is missing.
//! Actual value: NULL.", Microsoft Learn, both API pages, "Sample response body with validation
//! error").
//!
//! The rules are deliberately independent and shallow (required properties, id form, RFC 3339
//! timestamps, confidence range, a light pattern check): the simulator has to catch what a
//! client should have rejected locally, not re-implement STIX.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Object types the STIX objects API accepts (Microsoft Learn, `stix-objects-api`: indicator,
/// attack pattern, threat actor, identity, relationship).
pub(crate) const STIX_API_TYPES: [&str; 5] = [
    "indicator",
    "attack-pattern",
    "threat-actor",
    "identity",
    "relationship",
];

/// Which Sentinel upload API a record arrived through: they differ in the types they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `threat-intelligence-stix-objects:upload`
    StixObjects,
    /// `threatintelligenceindicators:upload` (legacy, indicators only)
    Indicators,
}

/// Checks one object; on success returns its `id`, the key it is stored under.
pub(crate) fn validate(record: &Value, api: Api) -> Result<String, Vec<String>> {
    let Value::Object(obj) = record else {
        return Err(vec![message(
            "record",
            "The record must be a JSON object",
            Some(record),
        )]);
    };
    let mut errors = Vec::new();

    let object_type = check_type(obj, api, &mut errors);
    let id = check_id(obj, object_type, &mut errors);

    if let Some(v) = obj.get("spec_version") {
        // Optional: the service defaults a missing one to 2.1.
        if !matches!(v.as_str(), Some("2.0" | "2.1")) {
            errors.push(message(
                "spec_version",
                "Only STIX 2.0 and 2.1 are supported",
                Some(v),
            ));
        }
    }
    required_timestamp(obj, "created", &mut errors);
    required_timestamp(obj, "modified", &mut errors);

    if let Some(v) = obj.get("confidence") {
        if v.as_u64().is_none_or(|c| c > 100) {
            errors.push(message(
                "confidence",
                "The value must be an integer between 0 and 100",
                Some(v),
            ));
        }
    }

    match object_type {
        Some("indicator") => check_indicator(obj, &mut errors),
        Some("attack-pattern" | "threat-actor" | "identity") => {
            required_string(obj, "name", &mut errors);
        }
        Some("relationship") => {
            required_string(obj, "relationship_type", &mut errors);
            for prop in ["source_ref", "target_ref"] {
                if let Some(r) = required_string(obj, prop, &mut errors) {
                    if !is_stix_id(r, None) {
                        errors.push(message(
                            prop,
                            "The value must be a STIX identifier '<type>--<UUID>'",
                            obj.get(prop),
                        ));
                    }
                }
            }
        }
        _ => {}
    }

    match id {
        Some(id) if errors.is_empty() => Ok(id.to_owned()),
        _ => Err(errors),
    }
}

fn check_type<'a>(
    obj: &'a Map<String, Value>,
    api: Api,
    errors: &mut Vec<String>,
) -> Option<&'a str> {
    let t = required_string(obj, "type", errors)?;
    let allowed = match api {
        Api::StixObjects => STIX_API_TYPES.contains(&t),
        Api::Indicators => t == "indicator",
    };
    if allowed {
        return Some(t);
    }
    let reason = match api {
        Api::StixObjects => format!(
            "The object type is not supported; supported types are {}",
            STIX_API_TYPES.join(", ")
        ),
        Api::Indicators => {
            "Only objects of type 'indicator' can be uploaded with this API".to_owned()
        }
    };
    errors.push(message("type", &reason, obj.get("type")));
    // The id check still compares against the declared type, so keep it for that.
    Some(t)
}

fn check_id<'a>(
    obj: &'a Map<String, Value>,
    object_type: Option<&str>,
    errors: &mut Vec<String>,
) -> Option<&'a str> {
    let id = required_string(obj, "id", errors)?;
    if !is_stix_id(id, object_type) {
        let expected = object_type.unwrap_or("<type>");
        errors.push(message(
            "id",
            &format!("The value must have the form '{expected}--<UUID>'"),
            obj.get("id"),
        ));
    }
    Some(id)
}

fn check_indicator(obj: &Map<String, Value>, errors: &mut Vec<String>) {
    let pattern_type = required_string(obj, "pattern_type", errors);
    if let Some(pattern) = required_string(obj, "pattern", errors) {
        // Other pattern languages (sigma, yara, snort...) have their own syntax: only STIX
        // patterns are checked.
        let is_stix = pattern_type.is_none_or(|t| t.eq_ignore_ascii_case("stix"));
        if is_stix && !looks_like_stix_pattern(pattern) {
            errors.push(message(
                "pattern",
                "The value is not a valid STIX pattern",
                obj.get("pattern"),
            ));
        }
    }
    let valid_from = required_timestamp(obj, "valid_from", errors);
    if let Some(v) = obj.get("valid_until") {
        match (timestamp(v), valid_from) {
            (None, _) => errors.push(message(
                "valid_until",
                "The value must be an RFC 3339 timestamp",
                Some(v),
            )),
            (Some(until), Some(from)) if until <= from => errors.push(message(
                "valid_until",
                "The value must be later than valid_from",
                Some(v),
            )),
            _ => {}
        }
    }
}

/// A light syntax check, not a parser: the pattern opens with `[` or `(`, has at least one
/// `[...]` comparison, and its brackets and parentheses balance outside quoted strings. That
/// keeps valid compound patterns (`([a] OR [b]) WITHIN 300 SECONDS`) while catching a bare
/// value or a truncated pattern.
pub(crate) fn looks_like_stix_pattern(pattern: &str) -> bool {
    let pattern = pattern.trim();
    if !(pattern.starts_with('[') || pattern.starts_with('(')) {
        return false;
    }
    let (mut brackets, mut parens, mut comparisons) = (0i32, 0i32, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for c in pattern.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' => in_string = true,
            '[' => {
                brackets += 1;
                if brackets > 1 {
                    return false;
                }
            }
            ']' => {
                brackets -= 1;
                comparisons += 1;
            }
            '(' => parens += 1,
            ')' => parens -= 1,
            _ => {}
        }
        if brackets < 0 || parens < 0 {
            return false;
        }
    }
    !in_string && brackets == 0 && parens == 0 && comparisons > 0
}

/// `<type>--<UUID>` with a hyphenated UUID; `expected_type` pins the prefix when known.
pub(crate) fn is_stix_id(id: &str, expected_type: Option<&str>) -> bool {
    let Some((prefix, uuid)) = id.split_once("--") else {
        return false;
    };
    let prefix_ok = match expected_type {
        Some(t) => prefix == t,
        None => !prefix.is_empty(),
    };
    prefix_ok && is_hyphenated_uuid(uuid)
}

/// Only the canonical 8-4-4-4-12 form: `Uuid::parse_str` alone would also take braces and
/// `urn:` prefixes, which STIX does not.
pub(crate) fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36 && s.as_bytes()[8] == b'-' && uuid::Uuid::try_parse(s).is_ok()
}

fn required_string<'a>(
    obj: &'a Map<String, Value>,
    prop: &str,
    errors: &mut Vec<String>,
) -> Option<&'a str> {
    match obj.get(prop) {
        None | Some(Value::Null) => {
            errors.push(message(prop, "Required property is missing", None));
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(v) => {
            errors.push(message(
                prop,
                "The value must be a non-empty string",
                Some(v),
            ));
            None
        }
    }
}

fn required_timestamp(
    obj: &Map<String, Value>,
    prop: &str,
    errors: &mut Vec<String>,
) -> Option<OffsetDateTime> {
    let v = obj.get(prop).filter(|v| !v.is_null());
    let Some(v) = v else {
        errors.push(message(prop, "Required property is missing", None));
        return None;
    };
    let t = timestamp(v);
    if t.is_none() {
        errors.push(message(
            prop,
            "The value must be an RFC 3339 timestamp",
            Some(v),
        ));
    }
    t
}

fn timestamp(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// The service's message shape: `Error for Property=<p>: <reason>. Actual value: <v>.`
fn message(prop: &str, reason: &str, actual: Option<&Value>) -> String {
    let actual = match actual {
        None | Some(Value::Null) => "NULL".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    // Long values (patterns, whole records) would swamp the report.
    let actual: String = if actual.chars().count() > 200 {
        actual.chars().take(200).chain("...".chars()).collect()
    } else {
        actual
    };
    format!("Error for Property={prop}: {reason}. Actual value: {actual}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--10000003-71a2-445c-ab86-927291df48f8",
            "created": "2010-02-26T18:29:07.778Z",
            "modified": "2011-02-26T18:29:07.778Z",
            "pattern": "[ipv4-addr:value = '172.29.6.7']",
            "pattern_type": "stix",
            "valid_from": "2015-02-26T18:29:07.778Z"
        })
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn the_documented_sample_passes() {
        assert_eq!(
            validate(&indicator(), Api::StixObjects).unwrap(),
            "indicator--10000003-71a2-445c-ab86-927291df48f8"
        );
        assert!(validate(&indicator(), Api::Indicators).is_ok());
        assert!(validate(&without(indicator(), "spec_version"), Api::StixObjects).is_ok());
    }

    #[test]
    fn each_rule_names_its_property() {
        let cases = [
            (
                without(indicator(), "id"),
                "Property=id: Required property is missing. Actual value: NULL.",
            ),
            (
                with(indicator(), "id", json!("indicator--nope")),
                "Property=id:",
            ),
            (
                with(
                    indicator(),
                    "id",
                    json!("attack-pattern--10000003-71a2-445c-ab86-927291df48f8"),
                ),
                "Property=id:",
            ),
            (
                with(indicator(), "type", json!("malware")),
                "Property=type:",
            ),
            (without(indicator(), "created"), "Property=created:"),
            (
                with(indicator(), "modified", json!("yesterday")),
                "Property=modified:",
            ),
            (without(indicator(), "pattern"), "Property=pattern:"),
            (
                without(indicator(), "pattern_type"),
                "Property=pattern_type:",
            ),
            (without(indicator(), "valid_from"), "Property=valid_from:"),
            (
                with(
                    indicator(),
                    "valid_until",
                    json!("2015-02-26T18:29:07.778Z"),
                ),
                "Property=valid_until:",
            ),
            (
                with(indicator(), "confidence", json!(101)),
                "Property=confidence:",
            ),
            (
                with(indicator(), "confidence", json!("95")),
                "Property=confidence:",
            ),
            (
                with(indicator(), "pattern", json!("1.2.3.4")),
                "Property=pattern:",
            ),
            (
                with(indicator(), "spec_version", json!("3.0")),
                "Property=spec_version:",
            ),
            (json!(42), "Property=record:"),
        ];
        for (record, want) in cases {
            let errors = validate(&record, Api::StixObjects).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{want} not in {errors:?}"
            );
        }
    }

    #[test]
    fn several_failures_give_several_messages() {
        let record = with(without(indicator(), "pattern"), "confidence", json!(-1));
        assert_eq!(validate(&record, Api::StixObjects).unwrap_err().len(), 2);
    }

    #[test]
    fn legacy_api_takes_indicators_only() {
        let ap = json!({
            "type": "attack-pattern", "spec_version": "2.1",
            "id": "attack-pattern--fb6aa549-c94a-4e45-b4fd-7e32602dad85",
            "created": "2015-05-15T09:12:16.432Z", "modified": "2015-05-20T09:12:16.432Z",
            "name": "Spear phishing"
        });
        assert!(validate(&ap, Api::StixObjects).is_ok());
        let errors = validate(&ap, Api::Indicators).unwrap_err();
        assert!(errors[0].contains("Only objects of type 'indicator'"));
    }

    #[test]
    fn relationships_need_their_refs() {
        let rel = json!({
            "type": "relationship", "spec_version": "2.1",
            "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
            "created": "2016-08-23T18:05:49.307Z", "modified": "2016-08-23T18:05:49.307Z",
            "relationship_type": "attributed-to",
            "source_ref": "threat-actor--dfaa8d77-07e2-4e28-b2c8-92e9f7b04428",
            "target_ref": "identity--733c5838-34d9-4fbf-949c-62aba761184c"
        });
        assert!(validate(&rel, Api::StixObjects).is_ok());
        let bad = with(rel, "target_ref", json!("somebody"));
        assert!(validate(&bad, Api::StixObjects).unwrap_err()[0].contains("Property=target_ref"));
    }

    #[test]
    fn pattern_check_is_light_but_not_naive() {
        for good in [
            "[ipv4-addr:value = '1.2.3.4']",
            "[file:hashes.'SHA-256' = 'ab']",
            "([a:b = 'x'] OR [c:d = 'y']) WITHIN 300 SECONDS",
            "[url:value = 'http://x/]']",
            "[a:b IN ('x', 'y')]",
            "[a:b = 'it\\'s']",
        ] {
            assert!(looks_like_stix_pattern(good), "{good}");
        }
        for bad in [
            "1.2.3.4",
            "[a:b = 'x'",
            "[a:b = 'x]",
            "[[a]]",
            "()",
            "[a:b = 'x'])",
        ] {
            assert!(!looks_like_stix_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn non_stix_patterns_are_not_syntax_checked() {
        let yara = with(
            with(indicator(), "pattern_type", json!("yara")),
            "pattern",
            json!("rule x { condition: true }"),
        );
        assert!(validate(&yara, Api::StixObjects).is_ok());
    }
}
