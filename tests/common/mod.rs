//! Shared test support: deterministic indicator corpora with known-invalid records.
#![allow(dead_code)]

use serde_json::{json, Value};

/// A deterministic valid STIX 2.1 indicator.
pub fn indicator(i: usize) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", uuid_for(i)),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": format!("test indicator {i}"),
        "pattern": format!("[ipv4-addr:value = '10.{}.{}.{}']", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2099-01-01T00:00:00Z",
        "confidence": 80,
        "labels": ["test"]
    })
}

/// A deterministic UUID (v4 shape) for record `i`.
pub fn uuid_for(i: usize) -> String {
    format!("6f1b5b7e-0000-4000-8000-{:012x}", i)
}

/// An invalid variant of indicator `i`; `kind` picks which rule it breaks.
pub fn invalid_indicator(i: usize, kind: usize) -> Value {
    let mut v = indicator(i);
    let o = v.as_object_mut().unwrap();
    match kind % 5 {
        0 => {
            o.insert("pattern".into(), json!("[ipv4-addr:value = '10.0.0.1'"));
        }
        1 => {
            o.remove("valid_from");
        }
        2 => {
            o.insert("id".into(), json!("indicator--not-a-uuid"));
        }
        3 => {
            o.insert("confidence".into(), json!(150));
        }
        _ => {
            o.insert("valid_until".into(), json!("2020-01-01T00:00:00Z"));
        }
    }
    v
}

/// `n` indicators of which those at `invalid` indexes are invalid.
pub fn corpus(n: usize, invalid: &[usize]) -> Vec<Value> {
    (0..n)
        .map(|i| match invalid.iter().position(|&j| j == i) {
            Some(k) => invalid_indicator(i, k),
            None => indicator(i),
        })
        .collect()
}

/// A STIX bundle, pretty-printed so records span several lines (line numbers matter).
pub fn bundle(objects: &[Value]) -> String {
    serde_json::to_string_pretty(&json!({
        "type": "bundle",
        "id": "bundle--6f1b5b7e-0000-4000-8000-ffffffffffff",
        "objects": objects
    }))
    .unwrap()
}

/// Sets the process up for in-process SDK use: the test CA (`SSL_CERT_FILE`) and the local
/// managed-identity endpoint (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`), once per test binary,
/// since `ManagedIdentityCredential` reads them from the environment.
pub fn shared_identity() -> &'static devkit::TestEnv {
    devkit::TestEnv::global().expect("the test environment starts")
}
