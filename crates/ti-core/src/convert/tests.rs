//! Conversion tests: the tiIndicator mapping both ways (with a property test for the round
//! trip), defaults, ids, CSV and text helpers. Whole-input cases are the fixture tables in
//! `tests/fixtures/<format>/` (driven by `tests/decode_fixtures.rs`).

use super::graph::*;
use super::rows::*;
use super::text::refang;
use super::*;
use crate::report::Code;
use crate::stix::{self, ValidationContext};
use proptest::prelude::*;
use serde_json::json;

const ACCEPTED: &[&str] = crate::stix::STIX_OBJECTS_API_TYPES;

fn now() -> OffsetDateTime {
    OffsetDateTime::parse("2025-01-01T00:00:00Z", &Rfc3339).unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn valid(o: &Map<String, Value>) -> stix::Valid {
    let ctx = ValidationContext {
        now: now(),
        accepted_types: ACCEPTED,
    };
    stix::validate(o.clone(), &ctx).unwrap_or_else(|e| panic!("{o:#?} invalid: {e:#?}"))
}

#[test]
fn ti_indicator_maps_every_field() {
    let ti = obj(json!({
        "action": "alert",
        "targetProduct": "Azure Sentinel",
        "threatType": "botnet",
        "tlpLevel": "amber",
        "expirationDateTime": "2025-03-01T21:44:03.1668987+01:00",
        "description": "C2 server",
        "confidence": 80,
        "tags": ["apt", "demo"],
        "killChain": ["C2", "Delivery"],
        "externalId": "feed-42",
        "isActive": false,
        "networkDestinationIPv4": "198.51.100.7",
        "malwareFamilyNames": ["Emotet"],
        "severity": 0,
        "activityGroupNames": []
    }));
    let (o, warnings) = ti_to_stix(&ti, &Defaults::default(), now()).unwrap();
    assert_eq!(o["type"], "indicator");
    assert_eq!(o["id"], id_for_external_id("feed-42"));
    assert_eq!(o["pattern"], "[ipv4-addr:value = '198.51.100.7']");
    assert_eq!(o["valid_from"], "2025-01-01T00:00:00.000Z");
    // To the millisecond, as every timestamp ti-ingest writes (STIX tools read no more than 6
    // fractional digits).
    assert_eq!(o["valid_until"], "2025-03-01T20:44:03.166Z");
    assert_eq!(o["indicator_types"], json!(["botnet"]));
    assert_eq!(o["labels"], json!(["apt", "demo"]));
    assert_eq!(
        o["kill_chain_phases"],
        json!([
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "command-and-control"},
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"}
        ])
    );
    assert_eq!(o["object_marking_refs"], json!([Tlp::Amber.marking_ref()]));
    assert_eq!(o["confidence"], 80);
    assert_eq!(o["description"], "C2 server");
    assert_eq!(o["revoked"], true);
    assert_eq!(
        o["external_references"],
        json!([{"source_name": "microsoft-graph-tiindicator", "external_id": "feed-42"}])
    );
    assert_eq!(o["created"], "2025-01-01T00:00:00.000Z");
    assert_eq!(o["name"], "198.51.100.7");
    // Only the non-empty unmapped field is reported.
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].message.ends_with(": malwareFamilyNames"),
        "{warnings:?}"
    );
    valid(&o);
}

#[test]
fn ti_indicator_defaults_and_rejections() {
    let d = Defaults::default();
    let (o, _) = ti_to_stix(&obj(json!({"domainName": "example.com"})), &d, now()).unwrap();
    assert_eq!(o["valid_until"], "2025-04-01T00:00:00.000Z");
    assert_eq!(o["confidence"], 50);
    assert_eq!(o["object_marking_refs"], json!([Tlp::Green.marking_ref()]));
    assert_eq!(o["id"], derived_id("[domain-name:value = 'example.com']"));
    let never = Defaults { valid_days: 0, ..d };
    let (o, _) = ti_to_stix(&obj(json!({"domainName": "example.com"})), &never, now()).unwrap();
    assert!(!o.contains_key("valid_until"));

    let e = ti_to_stix(
        &obj(json!({"url": "http://x.example/", "expirationDateTime": "2019-03-01T21:44:03.1748779+00:00"})),
        &d,
        now(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::InvalidValidity);
    assert!(e.message.contains("is in the past"), "{}", e.message);

    let cases = [
        (json!({"threatType": "Botnet"}), Code::MissingProperty),
        (json!({"networkIPv4": "1.2.3"}), Code::InvalidObservable),
        (json!({"networkIPv4": 5}), Code::InvalidProperty),
        (json!({"fileHashValue": "abc"}), Code::InvalidObservable),
        (
            json!({"fileHashType": "lsHash", "fileHashValue": "abc"}),
            Code::NotConvertible,
        ),
        (
            json!({"url": "http://x.example/", "tlpLevel": "purple"}),
            Code::InvalidProperty,
        ),
        (
            json!({"url": "http://x.example/", "expirationDateTime": "tomorrow"}),
            Code::InvalidTimestamp,
        ),
    ];
    for (ti, code) in cases {
        assert_eq!(
            ti_to_stix(&obj(ti.clone()), &d, now()).unwrap_err().code,
            code,
            "{ti}"
        );
    }
}

#[test]
fn ti_indicator_with_several_observables_becomes_one_pattern() {
    let ti = obj(json!({
        "fileName": "it's.exe",
        "fileHashType": "SHA256",
        "fileHashValue": "B555C45C5B1B01304217E72118D6CA1B14B7013644A078273CEA27BBDC1CF9D6",
        "domainName": "evil.example"
    }));
    let (o, _) = ti_to_stix(&ti, &Defaults::default(), now()).unwrap();
    assert_eq!(
        o["pattern"],
        "[file:hashes.'SHA-256' = 'b555c45c5b1b01304217e72118d6ca1b14b7013644a078273cea27bbdc1cf9d6' AND file:name = 'it\\'s.exe'] OR [domain-name:value = 'evil.example']"
    );
    valid(&o);
}

#[test]
fn patterns_group_file_comparisons() {
    let c = |observable, v: &str| Comparison {
        observable,
        value: v.into(),
    };
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    let p = build_pattern(&[
        c(Observable::Md5, md5),
        c(Observable::Sha1, sha1),
        c(Observable::FileName, "a.exe"),
    ]);
    assert_eq!(
        p,
        format!("[(file:hashes.MD5 = '{md5}' OR file:hashes.'SHA-1' = '{sha1}') AND file:name = 'a.exe']")
    );
    pattern::check(&p).unwrap();
    let p = build_pattern(&[c(Observable::Md5, md5), c(Observable::Sha1, sha1)]);
    assert_eq!(
        p,
        format!("[file:hashes.MD5 = '{md5}' OR file:hashes.'SHA-1' = '{sha1}']")
    );
    pattern::check(&p).unwrap();
}

#[test]
fn stix_to_ti_maps_back_and_rejects_what_it_cannot_hold() {
    let base = obj(json!({
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
        "name": "Bad host",
        "pattern": "[ipv4-addr:value = '198.51.100.0/24']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z",
        "indicator_types": ["malicious-activity"],
        "object_marking_refs": [Tlp::Red.marking_ref()],
        "kill_chain_phases": [
            {"kill_chain_name": "mitre-attack", "phase_name": "execution"},
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "actions-on-objectives"}
        ]
    }));
    let ti = stix_to_ti(&base, "block", "Microsoft Defender ATP").unwrap();
    assert_eq!(
        Value::Object(ti.clone()),
        json!({
            "action": "block", "targetProduct": "Microsoft Defender ATP",
            "networkCidrBlock": "198.51.100.0/24",
            "expirationDateTime": "2026-01-01T00:00:00Z",
            "threatType": "Malware", "tlpLevel": "red",
            "description": "Bad host", "killChain": ["Actions"]
        })
    );
    validate_ti(&ti).unwrap();

    let mut long = base.clone();
    long.insert("description".into(), "é".repeat(150).into());
    let (ti, w) = stix_to_ti_with_warnings(&long, "alert", "Azure Sentinel").unwrap();
    assert_eq!(ti["description"].as_str().unwrap().chars().count(), 100);
    assert_eq!(w[0].code, Code::ValueShortened);
    assert!(w[0].message.contains("150 to 100"), "{}", w[0].message);

    for (pattern, code) in [
        (
            "[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '5.6.7.8']",
            Code::NotConvertible,
        ),
        (
            "[ipv4-addr:value = '1.2.3.4'] AND [url:value = 'http://x.example/']",
            Code::NotConvertible,
        ),
        ("[process:name = 'x']", Code::NotConvertible),
        (
            &format!("[file:hashes.'SHA-512' = '{}']", "a".repeat(128)),
            Code::NotConvertible,
        ),
    ] {
        let mut o = base.clone();
        o.insert("pattern".into(), pattern.into());
        let e = stix_to_ti(&o, "alert", "Azure Sentinel").unwrap_err();
        assert_eq!(e.code, code, "{pattern}: {e:?}");
    }
    let mut o = base.clone();
    o.remove("valid_until");
    assert!(stix_to_ti(&o, "alert", "Azure Sentinel")
        .unwrap_err()
        .message
        .contains("expirationDateTime"));
    let mut o = base.clone();
    o.insert("type".into(), "threat-actor".into());
    assert_eq!(
        stix_to_ti(&o, "alert", "Azure Sentinel").unwrap_err().code,
        Code::UnsupportedType
    );
}

#[test]
fn graph_validator_names_each_problem() {
    // The Graph seed's example item lacks `action`, and its hash type is fine.
    let seed_item = obj(json!({
        "activityGroupNames": [], "confidence": 0,
        "description": "This is a canary indicator for demo purpose. Take no action on any observables set in this indicator.",
        "expirationDateTime": "2019-03-01T21:44:03.1668987+00:00",
        "externalId": "Test--8586509942423126760MS164-0",
        "fileHashType": "sha256",
        "fileHashValue": "b555c45c5b1b01304217e72118d6ca1b14b7013644a078273cea27bbdc1cf9d6",
        "killChain": [], "malwareFamilyNames": [], "severity": 0, "tags": [],
        "targetProduct": "Azure Sentinel", "threatType": "WatchList", "tlpLevel": "green"
    }));
    let problems = validate_ti(&seed_item).unwrap_err();
    let codes: Vec<Code> = problems.iter().map(|p| p.code).collect();
    // action missing; the description is 101 characters, one over Graph's limit.
    assert_eq!(
        codes,
        [Code::MissingProperty, Code::InvalidProperty],
        "{problems:#?}"
    );
    assert!(problems[0].message.starts_with("action is required"));

    let bad = obj(json!({
        "action": "drop", "targetProduct": "Splunk", "threatType": "Spam", "tlpLevel": "green",
        "description": "x", "expirationDateTime": "soon", "confidence": 101, "severity": 9,
        "killChain": ["Boom"], "networkIPv4": "999.1.1.1"
    }));
    let codes: Vec<Code> = validate_ti(&bad)
        .unwrap_err()
        .iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(
        codes,
        [
            Code::InvalidProperty,
            Code::InvalidProperty,
            Code::InvalidProperty,
            Code::InvalidTimestamp,
            Code::ConfidenceOutOfRange,
            Code::InvalidProperty,
            Code::InvalidProperty,
            Code::InvalidObservable
        ]
    );
}

#[test]
fn type_names_aliases_and_inference() {
    use Observable::*;
    let cases: &[(&str, &str, Option<Observable>)] = &[
        ("ipv4-addr", "1.2.3.4", Some(Ipv4)),
        ("IP", "1.2.3.4", Some(Ipv4)),
        ("ip", "2001:db8::1", Some(Ipv6)),
        ("CIDR", "10.0.0.0/8", Some(Ipv4)),
        ("cidr", "2001:db8::/32", Some(Ipv6)),
        ("IPv6", "2001:db8::1", Some(Ipv6)),
        ("Domain-Name", "example.com", Some(Domain)),
        ("hostname", "example.com", Some(Domain)),
        ("URL", "http://x", Some(Url)),
        ("email", "a@b.c", Some(Email)),
        ("email-addr", "a@b.c", Some(Email)),
        ("MD5", "x", Some(Md5)),
        ("sha1", "x", Some(Sha1)),
        ("SHA256", "x", Some(Sha256)),
        ("filename", "a.exe", Some(FileName)),
        ("file", "d41d8cd98f00b204e9800998ecf8427e", Some(Md5)),
        ("file", "a.exe", Some(FileName)),
        ("mutex", "x", None),
        ("", "x", None),
    ];
    for (t, v, want) in cases {
        match (observable_for_type(t, v), want) {
            (Ok(o), Some(w)) => assert_eq!(o, *w, "{t} {v}"),
            (Err(e), None) => {
                assert_eq!(e.code, Code::UnknownObservableType);
                assert!(e.message.contains("accepted: ipv4-addr"), "{}", e.message);
            }
            (got, _) => panic!("{t} {v}: {got:?}"),
        }
    }
    let inferred: &[(&str, Option<Observable>)] = &[
        ("198.51.100.7", Some(Ipv4)),
        ("198.51.100.0/24", Some(Ipv4)),
        ("2001:db8::1", Some(Ipv6)),
        ("example.com", Some(Domain)),
        ("https://example.com/a#b", Some(Url)),
        ("alice@example.com", Some(Email)),
        ("d41d8cd98f00b204e9800998ecf8427e", Some(Md5)),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", Some(Sha1)),
        (&"ab".repeat(32), Some(Sha256)),
        ("localhost", None),
        ("not an observable", None),
        ("1.2.3", None),
    ];
    for (v, want) in inferred {
        assert_eq!(super::text::infer_observable(v), *want, "{v}");
    }
}

#[test]
fn refanging_and_comments() {
    for (defanged, plain) in [
        ("hxxp://evil[.]example/a", "http://evil.example/a"),
        ("hXXps://evil(.)example", "https://evil.example"),
        ("evil{.}example", "evil.example"),
        ("alice[@]evil[.]example", "alice@evil.example"),
        ("http[:]//x[.]example", "http://x.example"),
        ("198[.]51[.]100[.]7", "198.51.100.7"),
    ] {
        assert_eq!(refang(defanged), plain);
    }
    assert!(matches!(
        refang("example.com"),
        std::borrow::Cow::Borrowed(_)
    ));

    let (o, w) =
        super::text::text_to_stix("hxxp://evil[.]example/", &Defaults::default(), now()).unwrap();
    assert_eq!(o["pattern"], "[url:value = 'http://evil.example/']");
    assert_eq!(w[0].code, Code::Normalised);
    assert!(w[0].message.contains("refanged"), "{}", w[0].message);
}

#[test]
fn csv_headers() {
    let ok = |h: &[&str]| CsvHeader::recognise(h).is_ok();
    assert!(ok(&["type", "value"]));
    assert!(ok(&[" Observable Type ", "observable_value"]));
    assert!(ok(&["fileHashType", "fileHashValue"]));
    assert!(ok(&["name", "SHA256"]));
    // By column meaning: a value column (with or without a type column), or columns named for
    // an observable type.
    assert!(ok(&["value", "entity_type", "description"]));
    assert!(ok(&["Indicator", "Type", "Description"]));
    assert!(ok(&["ioc_value", "ioc_type", "threat_type"]));
    assert!(ok(&["ioc", "comment"]));
    assert!(ok(&["first_seen_utc", "dst_ip", "dst_port", "malware"]));
    assert!(ok(&["src_ip", "dst_ip"]));
    assert!(ok(&["Domain", "first seen"]));
    assert!(ok(&["url", "tags"]));
    assert!(ok(&["md5", "sha-256"]));
    // No column to take an observable from: the error names the columns seen.
    let e = CsvHeader::recognise(&["type", "name"]).unwrap_err();
    assert!(e.contains("(columns: `type`, `name`)"), "{e}");
    assert!(e.contains("dst_ip"), "{e}");
    let e = CsvHeader::recognise(&["first_seen", "port", "malware"]).unwrap_err();
    assert!(
        e.contains("(columns: `first_seen`, `port`, `malware`)"),
        "{e}"
    );
    assert!(CsvHeader::recognise(&["198.51.100.7"]).is_err());
    // src_ip and dst_ip are two columns, not one named twice; `type` and `entity_type` are.
    assert_eq!(CsvHeader::duplicate(&["src_ip", "dst_ip"]), None);
    assert_eq!(
        CsvHeader::duplicate(&["type", "value", "entity_type"]),
        Some((0, 2))
    );
}

/// Each row of a CSV, as `row_to_stix` converts it: the pattern, or the error code and message.
fn csv_rows(header: &[&str], rows: &[&[&str]]) -> Vec<Result<(String, Vec<String>), String>> {
    let h = CsvHeader::recognise(header).unwrap();
    rows.iter()
        .map(|r| match h.row_to_stix(r, &Defaults::default(), now()) {
            Ok((o, w)) => Ok((
                o["pattern"].as_str().unwrap().to_string(),
                w.into_iter().map(|p| p.message).collect(),
            )),
            Err(p) => Err(format!(
                "{}: {}",
                serde_json::to_value(p.code).unwrap().as_str().unwrap(),
                p.message
            )),
        })
        .collect()
}

#[test]
fn csv_vendor_type_names() {
    let sha256 = "2ffe1e4f4df34e1aca3b8a8e93eee34bfc4b7876cedd1a0b6ca5d63d89a26301";
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let cases: &[(&str, &str, &str)] = &[
        // Volexity
        ("ipaddress", "104.194.152.137", "[ipv4-addr:value = '104.194.152.137']"),
        ("hostname", "Twmoc.info", "[domain-name:value = 'twmoc.info']"),
        ("file", sha256, "[file:hashes.'SHA-256' = '2ffe1e4f4df34e1aca3b8a8e93eee34bfc4b7876cedd1a0b6ca5d63d89a26301']"),
        // MISP
        ("ip-dst", "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
        ("ip-src", "2001:db8::1", "[ipv6-addr:value = '2001:db8::1']"),
        ("domain", "evil.example", "[domain-name:value = 'evil.example']"),
        ("sha-256", sha256, "[file:hashes.'SHA-256' = '2ffe1e4f4df34e1aca3b8a8e93eee34bfc4b7876cedd1a0b6ca5d63d89a26301']"),
        ("email-src", "a@evil.example", "[email-addr:value = 'a@evil.example']"),
        // OTX
        ("FileHash-SHA256", sha256, "[file:hashes.'SHA-256' = '2ffe1e4f4df34e1aca3b8a8e93eee34bfc4b7876cedd1a0b6ca5d63d89a26301']"),
        ("FileHash-MD5", md5, "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
        ("IPv4", "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
        ("URL", "http://evil.example/a", "[url:value = 'http://evil.example/a']"),
        ("fqdn", "a.evil.example", "[domain-name:value = 'a.evil.example']"),
        // ThreatFox
        ("sha256_hash", sha256, "[file:hashes.'SHA-256' = '2ffe1e4f4df34e1aca3b8a8e93eee34bfc4b7876cedd1a0b6ca5d63d89a26301']"),
        // a bare hash, typed by its length
        ("hash", md5, "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
    ];
    for (t, v, want) in cases {
        let got = csv_rows(&["value", "type"], &[&[v, t]]);
        assert_eq!(
            got[0].as_ref().map(|(p, _)| p.as_str()),
            Ok(*want),
            "{t} {v}"
        );
    }
}

#[test]
fn csv_values_taken_for_what_they_are() {
    // volexity-uta0388.csv lists C2s under `url` as ip:port and as bare host names.
    let got = csv_rows(
        &["value", "entity_type", "description"],
        &[
            &["80.85.154.48:443", "url", "C2"],
            &["www.twmoc.info", "url", "C2"],
            &["wss://api.twmoc.info/ws ", "url", "C2"],
            &["198.51.100.7:8080", "ipaddress", ""],
            &["198.51.100.7|443", "ip-dst|port", ""],
            &["evil.example/a/b", "url", ""],
        ],
    );
    assert_eq!(
        got[0],
        Ok((
            "[ipv4-addr:value = '80.85.154.48']".to_string(),
            vec!["column `value`: '80.85.154.48:443' (type 'url') is an address and port, not a URL; the port is dropped: taken as ipv4-addr:value '80.85.154.48'".to_string()]
        ))
    );
    assert_eq!(
        got[1],
        Ok((
            "[domain-name:value = 'www.twmoc.info']".to_string(),
            vec!["column `value`: 'www.twmoc.info' (type 'url') is a host name, not a URL: taken as domain-name:value 'www.twmoc.info'".to_string()]
        ))
    );
    assert_eq!(
        got[2],
        Ok((
            "[url:value = 'wss://api.twmoc.info/ws']".to_string(),
            vec![]
        ))
    );
    assert_eq!(
        got[3].as_ref().unwrap().0,
        "[ipv4-addr:value = '198.51.100.7']"
    );
    assert_eq!(
        got[4].as_ref().unwrap().0,
        "[ipv4-addr:value = '198.51.100.7']"
    );
    assert_eq!(
        got[5],
        Err("invalid_observable: column `value`: url:value 'evil.example/a/b' is not a valid URL: it has no scheme (e.g. http://)".to_string())
    );
}

#[test]
fn csv_messages_name_the_input_column() {
    let got = csv_rows(
        &["first_seen_utc", "dst_ip", "dst_port"],
        &[
            &["2024-01-01", "192.9.135.73", "1194"],
            &["2024-01-01", "192.9.135", "1"],
            &["x", "", "1"],
        ],
    );
    assert_eq!(
        got[0].as_ref().unwrap().0,
        "[ipv4-addr:value = '192.9.135.73']"
    );
    assert_eq!(
        got[1],
        Err("invalid_observable: column `dst_ip`: ipv4-addr:value '192.9.135' is not an IPv4 address or CIDR range".to_string())
    );
    assert_eq!(
        got[2],
        Err(
            "missing_property: the row has no observable: its `dst_ip` column is empty".to_string()
        )
    );
    let got = csv_rows(
        &["value", "entity_type"],
        &[&["x", "mutex"], &["12345", ""], &["abc", "hash"]],
    );
    assert!(
        got[0].as_ref().unwrap_err().starts_with("unknown_observable_type: column `entity_type`: unknown observable type 'mutex' (accepted: "),
        "{got:?}"
    );
    assert!(
        got[1].as_ref().unwrap_err().starts_with("unknown_observable_type: column `value`: '12345' is not a recognisable observable, and its type column `entity_type` is empty"),
        "{got:?}"
    );
    assert_eq!(
        got[2],
        Err("invalid_observable: column `value`: 'abc' (type 'hash') is not an MD5, SHA-1, SHA-256 or SHA-512 hash: a hash is typed by its length (32, 40, 64 or 128 hex digits)".to_string())
    );
}

/// A row's pattern, description and warnings, or its error.
type FullRow = Result<(String, Value, Vec<String>), String>;

/// Full results (pattern, description, warnings or the error) of rows, for exact assertions.
fn csv_full(header: &[&str], rows: &[&[&str]]) -> Vec<FullRow> {
    let h = CsvHeader::recognise(header).unwrap();
    rows.iter()
        .map(|r| match h.row_to_stix(r, &Defaults::default(), now()) {
            Ok((o, w)) => Ok((
                o["pattern"].as_str().unwrap().to_string(),
                o.get("description").cloned().unwrap_or(Value::Null),
                w.into_iter()
                    .map(|p| format!("{:?}: {}", p.code, p.message))
                    .collect(),
            )),
            Err(p) => Err(format!("{:?}: {}", p.code, p.message)),
        })
        .collect()
}

#[test]
fn csv_cells_without_a_type_are_read_as_text_lines() {
    let sha = "2FFE1E4F4DF34E1ACA3B8A8E93EEE34BFC4B7876CEDD1A0B6CA5D63D89A26301";
    let got = csv_full(
        &["ioc", "type", "comment"],
        &[
            // lower-cased before the id is made, as a text line
            &["EVIL.COM", "", ""],
            // a file name, not a domain
            &["Setup2.exe", "", "dropper"],
            // the comment and port beside the value join the description column
            &["198.51.100[.]7:443 (c2)", "", "seen 2026-07"],
            // the Public Suffix List decides, naming the column
            &["evil.notatld", "", ""],
            &["a@b", "", ""],
            &["# a note", "", ""],
            // a bare `hash`: typed by its length, any case, with a comment
            &[&format!("{sha} (loader)"), "hash", ""],
            &["evil.example", "hash", ""],
            // `file`: a hash, else a file name as written
            &[sha, "file", ""],
            &["Invoice.PDF", "file", ""],
        ],
    );
    let lower = sha.to_ascii_lowercase();
    assert_eq!(
        got,
        vec![
            Ok(("[domain-name:value = 'evil.com']".into(), Value::Null, vec![])),
            Ok(("[file:name = 'Setup2.exe']".into(), json!("dropper"), vec![])),
            Ok((
                "[ipv4-addr:value = '198.51.100.7']".into(),
                json!("seen 2026-07; c2; port 443"),
                vec!["Normalised: column `ioc`: refanged '198.51.100[.]7:443' to '198.51.100.7:443'; port 443 kept in the description (a STIX address or domain has no port)".into()]
            )),
            Err("InvalidObservable: column `ioc`: 'evil.notatld' is not a valid domain: its top-level label 'notatld' is not in the Public Suffix List".into()),
            Err("InvalidObservable: column `ioc`: 'a@b' is not a valid e-mail address: domain 'b': it has no dot: a domain is a name under a public suffix".into()),
            Err(format!("UnknownObservableType: column `ioc`: '# a note' is not a recognisable observable, and its type column `type` is empty (accepted types: {TYPE_NAMES})")),
            Ok((format!("[file:hashes.'SHA-256' = '{lower}']"), json!("loader"), vec![])),
            Err("InvalidObservable: column `ioc`: 'evil.example' (type 'hash') is not an MD5, SHA-1, SHA-256 or SHA-512 hash: a hash is typed by its length (32, 40, 64 or 128 hex digits)".into()),
            Ok((format!("[file:hashes.'SHA-256' = '{lower}']"), Value::Null, vec![])),
            Ok(("[file:name = 'Invoice.PDF']".into(), Value::Null, vec![])),
        ]
    );
    // A bare hash column (no hash type column) reads its cell the same way.
    let got = csv_full(&["hash"], &[&[&format!("{sha}\t# loader")], &["12345"]]);
    assert_eq!(
        got,
        vec![
            Ok((format!("[file:hashes.'SHA-256' = '{lower}']"), json!("loader"), vec![])),
            Err("InvalidObservable: column `hash`: '12345' is not an MD5, SHA-1, SHA-256 or SHA-512 hash (32, 40, 64 or 128 hex digits) and no hash type column says what it is".into()),
        ]
    );
}

#[test]
fn tlp_names_and_ids() {
    for t in Tlp::ALL {
        assert_eq!(t.name().parse::<Tlp>(), Ok(t));
        assert_eq!(Tlp::from_marking_ref(t.marking_ref()), Some(t));
        assert!(stix::is_identifier(t.marking_ref()));
    }
    assert_eq!("TLP:CLEAR".parse::<Tlp>(), Ok(Tlp::White));
    assert_eq!("Amber+Strict".parse::<Tlp>(), Ok(Tlp::Amber));
    assert!("purple".parse::<Tlp>().is_err());
}

#[test]
fn derived_ids_are_stable() {
    // Fixed forever: a change here means re-dropped files would duplicate their indicators.
    assert_eq!(
        derived_id("[ipv4-addr:value = '198.51.100.7']"),
        derived_id("[ipv4-addr:value = '198.51.100.7']")
    );
    assert_eq!(
        NAMESPACE.to_string(),
        "5f0c7a4e-2d1b-4c39-8e6f-a1b2c3d4e5f6"
    );
    assert!(stix::is_identifier(&derived_id("x")));
}

// ---------------------------------------------------------------------------------------------
// Property: tiIndicator → STIX → tiIndicator keeps every mapped field.

fn domain() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9]{0,9}", "[a-z]{2,6}").prop_map(|(a, b)| format!("{a}.{b}"))
}

fn observable_field() -> impl Strategy<Value = Vec<(String, Value)>> {
    let hex = |n: usize| {
        proptest::collection::vec(0u8..16, n)
            .prop_map(|v| v.iter().map(|d| format!("{d:x}")).collect::<String>())
    };
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| vec![(
            "networkIPv4".to_string(),
            Value::from(std::net::Ipv4Addr::from(b).to_string())
        )]),
        any::<[u16; 8]>().prop_map(|s| vec![(
            "networkIPv6".to_string(),
            Value::from(std::net::Ipv6Addr::from(s).to_string())
        )]),
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(b, p)| vec![(
            "networkCidrBlock".to_string(),
            Value::from(format!("{}/{p}", std::net::Ipv4Addr::from(b)))
        )]),
        domain().prop_map(|d| vec![("domainName".to_string(), Value::from(d))]),
        (domain(), "[a-zA-Z0-9/'_.-]{0,20}")
            .prop_map(|(d, p)| vec![("url".to_string(), Value::from(format!("https://{d}/{p}")))]),
        ("[a-z0-9.+_-]{1,12}", domain()).prop_map(|(l, d)| vec![(
            "emailSenderAddress".to_string(),
            Value::from(format!("{l}@{d}"))
        )]),
        prop_oneof![
            hex(32).prop_map(|h| ("md5", h)),
            hex(40).prop_map(|h| ("sha1", h)),
            hex(64).prop_map(|h| ("sha256", h)),
        ]
        .prop_map(|(t, h)| vec![
            ("fileHashType".to_string(), Value::from(t)),
            ("fileHashValue".to_string(), Value::from(h)),
        ]),
        "[a-zA-Z0-9_.'\\\\-]([a-zA-Z0-9 _.'\\\\-]{0,18}[a-zA-Z0-9_.'\\\\-])?"
            .prop_map(|n| vec![("fileName".to_string(), Value::from(n))]),
    ]
}

fn ti_indicator() -> impl Strategy<Value = Map<String, Value>> {
    let kill_chain: Vec<&str> = KILL_CHAIN.iter().map(|(g, _)| *g).collect();
    (
        observable_field(),
        1i64..100_000_000,
        proptest::sample::select(THREAT_TYPES.to_vec()),
        proptest::sample::select(vec!["white", "green", "amber", "red"]),
        proptest::option::of(0u8..=100),
        proptest::option::of("\\PC{1,100}"),
        proptest::option::of(proptest::collection::vec("[a-z]{1,8}", 1..4)),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(kill_chain),
            1..4,
        )),
        proptest::option::of(any::<bool>()),
        proptest::option::of("[A-Za-z0-9-]{1,30}"),
    )
        .prop_map(
            |(obs, secs, threat, tlp, confidence, description, tags, kill, active, ext)| {
                let mut ti = Map::new();
                ti.extend(obs);
                let exp = now() + Duration::seconds(secs) + Duration::milliseconds(123);
                ti.insert("expirationDateTime".into(), stix_timestamp(exp).into());
                ti.insert("threatType".into(), threat.into());
                ti.insert("tlpLevel".into(), tlp.into());
                if let Some(c) = confidence {
                    ti.insert("confidence".into(), c.into());
                }
                if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
                    ti.insert("description".into(), d.trim().into());
                }
                if let Some(t) = tags {
                    ti.insert("tags".into(), t.into());
                }
                if let Some(k) = kill {
                    ti.insert("killChain".into(), k.into());
                }
                if let Some(a) = active {
                    ti.insert("isActive".into(), a.into());
                }
                if let Some(e) = ext {
                    ti.insert("externalId".into(), e.into());
                }
                ti.insert("action".into(), "alert".into());
                ti.insert("targetProduct".into(), "Azure Sentinel".into());
                ti
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ti_round_trip_keeps_every_mapped_field(ti in ti_indicator()) {
        let (stix_object, _) = ti_to_stix(&ti, &Defaults::default(), now()).unwrap();
        // What the conversion builds passes the same validation as any STIX input.
        let v = valid(&stix_object);
        let back = stix_to_ti(&v.object, "alert", "Azure Sentinel").unwrap();
        for (k, want) in &ti {
            if k == "description" && want.as_str().is_none() {
                continue;
            }
            prop_assert_eq!(back.get(k), Some(want), "field {}: {:#?} → {:#?}", k, stix_object, back);
        }
        // Graph requires a description: one is supplied when the tiIndicator had none.
        prop_assert!(back["description"].is_string());
        if let Err(p) = validate_ti(&back) {
            prop_assert!(false, "{:#?}: {:#?}", back, p);
        }
    }
}

/// STIX 2.1 §3.2: `created`/`modified` with millisecond precision; OASIS `stix2` 3.0.2 reads at
/// most six fractional digits, so the nine `time` writes by default were refused.
#[test]
fn generated_timestamps_have_millisecond_precision() {
    let t = OffsetDateTime::parse("2026-12-02T15:55:18.734041959Z", &Rfc3339).unwrap();
    assert_eq!(stix_timestamp(t), "2026-12-02T15:55:18.734Z");
    let t = OffsetDateTime::parse("2026-12-02T16:55:18+01:00", &Rfc3339).unwrap();
    assert_eq!(stix_timestamp(t), "2026-12-02T15:55:18.000Z");

    let d = Draft {
        comparisons: vec![Comparison {
            observable: crate::stix::observable::Observable::Ipv4,
            value: "198.51.100.7".into(),
        }],
        ..Default::default()
    };
    let now = OffsetDateTime::parse("2026-12-02T15:55:18.734041959Z", &Rfc3339).unwrap();
    let o = d.into_stix(&Defaults::default(), now);
    for key in ["created", "modified", "valid_from"] {
        assert_eq!(o[key], "2026-12-02T15:55:18.734Z", "{key}");
    }
    assert_eq!(o["valid_until"], "2027-03-02T15:55:18.734Z");
}

/// Sentinel's threat-intelligence list shows `name` first: every converted indicator has one.
#[test]
fn converted_indicators_are_named_after_their_input_name_else_their_values() {
    use crate::stix::observable::Observable;
    let ip = Comparison {
        observable: Observable::Ipv4,
        value: "198.51.100.7".into(),
    };
    let named = Draft {
        comparisons: vec![ip.clone()],
        name: Some("C2 of Foo".into()),
        description: Some("seen 2026-11".into()),
        ..Default::default()
    }
    .into_stix(&Defaults::default(), now());
    assert_eq!(named["name"], "C2 of Foo");
    assert_eq!(named["description"], "seen 2026-11");

    let unnamed = Draft {
        comparisons: vec![ip],
        name: Some("  ".into()),
        description: Some(String::new()),
        ..Default::default()
    }
    .into_stix(&Defaults::default(), now());
    assert_eq!(unnamed["name"], "198.51.100.7");
    assert!(unnamed.get("description").is_none());

    let file = Draft {
        comparisons: vec![
            Comparison {
                observable: Observable::Md5,
                value: "44d88612fea8a8f36de82e1278abb02f".into(),
            },
            Comparison {
                observable: Observable::FileName,
                value: "eicar.com".into(),
            },
        ],
        ..Default::default()
    }
    .into_stix(&Defaults::default(), now());
    assert_eq!(file["name"], "44d88612fea8a8f36de82e1278abb02f / eicar.com");
    valid(&file);

    // A tiIndicator without a description is named after its observable too.
    let ti = obj(json!({
        "action": "alert", "targetProduct": "Azure Sentinel", "threatType": "Botnet",
        "tlpLevel": "green", "expirationDateTime": "2030-01-01T00:00:00Z",
        "domainName": "evil.example.com"
    }));
    let (o, _) = ti_to_stix(&ti, &Defaults::default(), now()).unwrap();
    assert_eq!(o["name"], "evil.example.com");
}
