//! Genuine vendor and feed CSVs, as their publishers released them (issue 11, item 2).
//!
//! The files are in `../shared/realworld/` (from the repository root; CI has it too), read in
//! place and never copied into the repository; its README gives each file's origin. Each file is
//! decoded with format detection, as `ti-ingest validate` does, and every record validated; the
//! test asserts exact counts: records, valid ones, distinct ids (the pipeline reports a repeated
//! id as `duplicate`), each kind of indicator (the object path of its pattern) and each error and
//! warning code, with the reason for each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ti_core::input::{Decoder, InputFormat, InputOptions};
use ti_core::stix::{self, ValidationContext};
use time::macros::datetime;

const ACCEPTED: &[&str] = stix::STIX_OBJECTS_API_TYPES;

#[derive(Debug, Default, PartialEq)]
struct Tally {
    records: u64,
    valid: u64,
    distinct_ids: u64,
    kinds: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    warnings: BTreeMap<String, u64>,
    /// Every message, for assertions on a few of them.
    messages: Vec<String>,
}

fn realworld(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/realworld")
        .join(file)
}

fn code(c: ti_core::report::Code) -> String {
    serde_json::to_value(c)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// The object path of a pattern's first comparison: `[ipv4-addr:value = '…']` → `ipv4-addr:value`.
fn kind(pattern: &str) -> String {
    pattern
        .trim_start_matches(['[', '('])
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

fn tally(file: &str) -> (Tally, InputFormat) {
    let bytes = std::fs::read(realworld(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let now = datetime!(2026-12-01 00:00 UTC);
    let mut d = Decoder::new(InputOptions::new(now));
    let mut out = Vec::new();
    d.push(&bytes, &mut out).unwrap();
    let format = d.finish(&mut out).unwrap();
    let ctx = ValidationContext {
        now,
        accepted_types: ACCEPTED,
    };
    let mut t = Tally::default();
    let mut ids = BTreeSet::new();
    for r in out {
        t.records += 1;
        for w in &r.warnings {
            *t.warnings.entry(code(w.code)).or_default() += 1;
            t.messages.push(w.message.clone());
        }
        let object = match r.object {
            Ok(o) => o,
            Err(p) => {
                *t.errors.entry(code(p.code)).or_default() += 1;
                t.messages.push(p.message);
                continue;
            }
        };
        match stix::validate(object, &ctx) {
            Ok(v) => {
                t.valid += 1;
                for w in v.warnings {
                    *t.warnings.entry(code(w.code)).or_default() += 1;
                    t.messages.push(w.message);
                }
                let k = kind(v.object["pattern"].as_str().unwrap());
                *t.kinds.entry(k).or_default() += 1;
                ids.insert(v.object["id"].as_str().unwrap().to_string());
            }
            Err(inv) => {
                let p = &inv.problems[0];
                *t.errors.entry(code(p.code)).or_default() += 1;
                t.messages.push(p.message.clone());
            }
        }
    }
    t.distinct_ids = ids.len() as u64;
    (t, format)
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn volexity_exchange_marauder_value_type_notes() {
    // `value,type,notes`: 13 addresses of type `ipaddress` (Volexity's name for an IP).
    let (t, f) = tally("volexity-exchange-marauder.csv");
    assert_eq!(f, InputFormat::Csv);
    assert_eq!((t.records, t.valid, t.distinct_ids), (13, 13, 13));
    assert_eq!(t.kinds, counts(&[("ipv4-addr:value", 13)]));
    assert_eq!(t.errors, counts(&[]));
    assert_eq!(t.warnings, counts(&[]));
}

#[test]
fn volexity_uta0388_value_entity_type_description() {
    // UTF-8 BOM; header `value,entity_type,description`; types url, ipaddress, hostname, file.
    let (t, f) = tally("volexity-uta0388.csv");
    assert_eq!(f, InputFormat::Csv);
    // 58 rows, all indicators: 8 C2 `url` rows (3 `ip:port`, 1 bare host name, 3 `wss://`
    // URLs, 1 https URL with a port), 10 `ipaddress`, 6 `hostname`, 11 `file` (SHA-256), 23
    // phishing URLs.
    assert_eq!((t.records, t.valid), (58, 58));
    assert_eq!(
        t.kinds,
        counts(&[
            // 10 `ipaddress` rows + the 3 `ip:port` C2s listed under `url`
            ("ipv4-addr:value", 13),
            // 6 `hostname` rows + `www.twmoc.info` listed under `url`
            ("domain-name:value", 7),
            ("file:hashes.'SHA-256'", 11),
            // 4 C2 URLs + 23 phishing URLs
            ("url:value", 27),
        ])
    );
    // The 3 `ip:port` C2s are the same addresses as 3 `ipaddress` rows: one id each, so the
    // pipeline reports the earlier row of each pair as `duplicate`.
    assert_eq!(t.distinct_ids, 55);
    assert_eq!(t.errors, counts(&[]));
    // One `normalised` warning per `url` row that is not a URL (3 ip:port, 1 host name).
    assert_eq!(t.warnings, counts(&[("normalised", 4)]));
    assert!(t.messages.contains(&"column `value`: '80.85.154.48:443' (type 'url') is an address and port, not a URL; the port is dropped: taken as ipv4-addr:value '80.85.154.48'".to_string()), "{:?}", t.messages);
    assert!(t.messages.contains(&"column `value`: 'www.twmoc.info' (type 'url') is a host name, not a URL: taken as domain-name:value 'www.twmoc.info'".to_string()), "{:?}", t.messages);
}

#[test]
fn abusech_feodo_banner_quoted_header_dst_ip() {
    // `#` banner, quoted header `first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware`,
    // 28 rows, a `# END 28 entries` trailer: the C2 addresses are in `dst_ip`.
    let (t, f) = tally("abusech-feodo-ipblocklist.csv");
    assert_eq!(f, InputFormat::Csv);
    assert_eq!((t.records, t.valid, t.distinct_ids), (28, 28, 28));
    assert_eq!(t.kinds, counts(&[("ipv4-addr:value", 28)]));
    assert_eq!(t.errors, counts(&[]));
    assert_eq!(t.warnings, counts(&[]));
}
