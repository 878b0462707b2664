//! Validation tests, table-driven from `tests/fixtures/validate.json`, and `parse_record` tests.

use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

const ACCEPTED: &[&str] = STIX_OBJECTS_API_TYPES;

fn ctx() -> ValidationContext {
    ValidationContext {
        now: OffsetDateTime::parse("2025-01-01T00:00:00Z", &Rfc3339).unwrap(),
        accepted_types: ACCEPTED,
    }
}

#[derive(Deserialize)]
struct Fixture {
    bases: BTreeMap<String, Map<String, Value>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    object: Option<Map<String, Value>>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    set: Map<String, Value>,
    #[serde(default)]
    remove: Vec<String>,
    valid: bool,
    #[serde(default)]
    warnings: Vec<Code>,
    #[serde(default)]
    codes: Vec<Code>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    expect: Map<String, Value>,
    #[serde(default)]
    absent: Vec<String>,
    /// The STIX 2.0 upgrade's message (`Valid::upgrade`) contains this; absent: no upgrade.
    #[serde(default)]
    upgrade: Option<String>,
}

fn assert_messages(name: &str, got: &[Problem], want: &[String]) {
    // Each wanted substring appears in a message, in order.
    let mut rest = got.iter();
    for w in want {
        assert!(
            rest.any(|p| p.message.contains(w.as_str())),
            "{name}: no message containing {w:?} (in order) among {got:#?}"
        );
    }
}

#[test]
fn validation_fixtures() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../tests/fixtures/validate.json")).unwrap();
    assert!(fixture.cases.len() > 50);
    for case in fixture.cases {
        let name = case.name.as_str();
        let mut object = match (&case.object, &case.base) {
            (Some(o), None) => o.clone(),
            (None, Some(b)) => fixture.bases[b].clone(),
            _ => panic!("{name}: give exactly one of object and base"),
        };
        for (k, v) in &case.set {
            object.insert(k.clone(), v.clone());
        }
        for k in &case.remove {
            object.remove(k);
        }
        let original_id = object.get("id").and_then(Value::as_str).map(str::to_owned);
        match (validate(object, &ctx()), case.valid) {
            (Ok(v), true) => {
                let codes: Vec<Code> = v.warnings.iter().map(|w| w.code).collect();
                assert_eq!(codes, case.warnings, "{name}: warnings {:#?}", v.warnings);
                assert_messages(name, &v.warnings, &case.messages);
                assert_eq!(Some(v.id.clone()), original_id, "{name}");
                for (k, want) in &case.expect {
                    assert_eq!(v.object.get(k), Some(want), "{name}: property {k}");
                }
                for k in &case.absent {
                    assert!(!v.object.contains_key(k), "{name}: {k} should be removed");
                }
                match (&v.upgrade, &case.upgrade) {
                    (None, None) => {}
                    (Some(got), Some(want)) => {
                        assert_eq!(got.code, Code::Normalised, "{name}");
                        assert!(got.message.contains(want.as_str()), "{name}: {got:?}");
                    }
                    (got, want) => panic!("{name}: upgrade {got:?}, expected {want:?}"),
                }
            }
            (Err(inv), false) => {
                let codes: Vec<Code> = inv.problems.iter().map(|p| p.code).collect();
                assert_eq!(codes, case.codes, "{name}: problems {:#?}", inv.problems);
                assert_messages(name, &inv.problems, &case.messages);
                let usable = original_id.filter(|s| !s.is_empty());
                assert_eq!(inv.id, usable, "{name}: id");
            }
            (Ok(v), false) => panic!("{name}: expected invalid, got valid {v:#?}"),
            (Err(inv), true) => panic!("{name}: expected valid, got {:#?}", inv.problems),
        }
    }
}

#[test]
fn expired_is_relative_to_now() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../tests/fixtures/validate.json")).unwrap();
    let mut o = fixture.bases["indicator"].clone();
    o.insert("valid_until".into(), "2025-06-01T00:00:00Z".into());
    assert!(validate(o.clone(), &ctx()).unwrap().warnings.is_empty());
    let later = ValidationContext {
        now: OffsetDateTime::parse("2025-07-01T00:00:00Z", &Rfc3339).unwrap(),
        ..ctx()
    };
    let warnings = validate(o, &later).unwrap().warnings;
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].code, Code::Expired);
}

#[test]
fn identifiers() {
    assert!(is_identifier(
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
    ));
    assert!(is_identifier(
        "x-custom-thing--8E2E2D2B-17D4-4CBF-938F-98EE46B3CD3F"
    ));
    assert_eq!(
        identifier_type("attack-pattern--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
        Some("attack-pattern")
    );
    for bad in [
        "",
        "indicator",
        "indicator--",
        "--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "Indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicator-8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicator--8e2e2d2b17d44cbf938f98ee46b3cd3f",
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3g",
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f0",
        "indicator---8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicator----8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "x--y--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicatör--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3é",
    ] {
        assert!(!is_identifier(bad), "{bad}");
    }
}

#[test]
fn parse_record_outcomes() {
    let o = parse_record(" {\"type\":\"indicator\",\"n\":[1,{}]}\n").unwrap();
    assert_eq!(o["type"], "indicator");

    let e = parse_record("{\n  \"a\": 1 2\n}").unwrap_err();
    assert_eq!(e.code, Code::JsonInvalid);
    assert!(e.message.contains("at line 2 column 10"), "{}", e.message);

    let e = parse_record("{\"a\":1,}").unwrap_err();
    assert_eq!(e.code, Code::JsonInvalid);
    assert!(
        e.message.starts_with("the record is not valid JSON: "),
        "{}",
        e.message
    );

    for (text, kind) in [
        ("1", "a number"),
        ("\"x\"", "a string"),
        ("null", "null"),
        ("[{}]", "an array"),
        ("true", "a boolean"),
    ] {
        let e = parse_record(text).unwrap_err();
        assert_eq!(e.code, Code::NotAnObject, "{text}");
        assert_eq!(
            e.message,
            format!("the record is {kind}, not a JSON object")
        );
    }
    // Malformed-but-balanced records from the framer fail here, not there.
    assert_eq!(parse_record("tru").unwrap_err().code, Code::JsonInvalid);
}

#[test]
fn long_values_are_cut_short_in_messages() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../tests/fixtures/validate.json")).unwrap();
    let mut o = fixture.bases["indicator"].clone();
    o.insert("created".into(), Value::String("x".repeat(10_000)));
    let inv = validate(o, &ctx()).unwrap_err();
    assert!(
        inv.problems[0].message.len() < 300,
        "{}",
        inv.problems[0].message
    );
}

/// Microsoft's sample bodies put `lang` and `marking_ref` in one granular marking; STIX 2.1
/// §7.2.3 allows one or the other, so the marking is split in two with the same selectors.
#[test]
fn a_granular_marking_with_lang_and_marking_ref_is_split_in_two() {
    let mut o = serde_json::json!({
        "type": "identity", "spec_version": "2.1",
        "id": "identity--a463ffb3-1bd9-4d94-b02d-74e4f1658283",
        "created": "2017-06-01T00:00:00.000Z", "modified": "2017-06-01T00:00:00.000Z",
        "name": "ACME",
        "granular_markings": [
            {"marking_ref": "marking-definition--089a6ecb-cc15-43cc-9494-767639779123",
             "selectors": ["description", "labels"], "lang": "en"},
            {"lang": "fr", "selectors": ["name"]}
        ]
    });
    let v = validate(o.as_object_mut().unwrap().clone(), &ctx()).unwrap();
    assert_eq!(
        v.object["granular_markings"],
        serde_json::json!([
            {"selectors": ["description", "labels"], "lang": "en"},
            {"marking_ref": "marking-definition--089a6ecb-cc15-43cc-9494-767639779123",
             "selectors": ["description", "labels"]},
            {"lang": "fr", "selectors": ["name"]}
        ])
    );
    assert_eq!(v.warnings.len(), 1);
    assert_eq!(v.warnings[0].code, Code::Normalised);
    assert!(v.warnings[0]
        .message
        .starts_with("1 granular marking(s) had both lang and marking_ref"));
}
