//! Genuine vendor IOC lists read as text (issue 11, item 1), from `../shared/realworld/` in place
//! (CI has `../shared` too; the files are never copied into the repository). Its README gives
//! each file's origin and what a correct reader makes of it.
//!
//! For each file: the detected format is `text`, and the exact count of valid indicators per
//! kind (the object path of the pattern), of `ip:port` lines (port kept in the description), of
//! distinct ids, and of refusals per code, each with its reason. Every refused line's message
//! quotes the line as written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ti_core::input::{Decoder, InputFormat, InputOptions};
use ti_core::report::Code;
use ti_core::stix::{self, ValidationContext};
use time::macros::datetime;

const ACCEPTED: &[&str] = &["indicator"];

/// What one file gives.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    /// Valid indicators per pattern path.
    kinds: BTreeMap<String, u64>,
    /// Valid indicators whose description carries the port of an `ip:port` line.
    with_port: u64,
    /// Distinct ids among the valid indicators (a value listed twice is one id).
    distinct_ids: u64,
    /// Refused records per code.
    refused: HashMap<Code, u64>,
    /// Refused lines, trimmed, as written.
    refused_lines: Vec<String>,
}

fn realworld(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/realworld")
        .join(file)
}

fn read(file: &str) -> Outcome {
    read_path(&realworld(file))
}

fn read_path(path: &Path) -> Outcome {
    let file = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let now = datetime!(2026-12-01 0:00 UTC);
    let mut d = Decoder::new(InputOptions::new(now));
    let mut records = Vec::new();
    d.push(&bytes, &mut records).unwrap();
    assert_eq!(d.finish(&mut records), Ok(InputFormat::Text), "{file}");
    let ctx = ValidationContext {
        now,
        accepted_types: ACCEPTED,
    };
    let mut out = Outcome::default();
    let mut ids = BTreeSet::new();
    for r in records {
        let original = r.original.clone().unwrap_or_default();
        let problem = match r.object {
            Ok(o) => match stix::validate(o, &ctx) {
                Ok(v) => {
                    let p = v.object["pattern"].as_str().unwrap();
                    let path = p[1..p.find(' ').unwrap()].to_string();
                    *out.kinds.entry(path).or_default() += 1;
                    let port = v.object.get("description").and_then(|d| d.as_str());
                    if port.is_some_and(|d| d.contains("port ")) {
                        out.with_port += 1;
                    }
                    ids.insert(v.object["id"].as_str().unwrap().to_string());
                    continue;
                }
                Err(inv) => inv.problems.into_iter().next().unwrap(),
            },
            Err(p) => p,
        };
        let line = original.trim().to_string();
        assert!(
            problem.message.starts_with(&format!("'{line}'")),
            "{file} line {}: the message does not quote the line as written: {}",
            r.line,
            problem.message
        );
        *out.refused.entry(problem.code).or_default() += 1;
        out.refused_lines.push(line);
    }
    out.distinct_ids = ids.len() as u64;
    out
}

fn kinds(k: &[(&str, u64)]) -> BTreeMap<String, u64> {
    k.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn talos_knife_cutting_the_edge_keeps_all_76_observables() {
    // `hash (comment)`, capitalised hashes, defanged `ip (comment)`, `ip:port (comment)`,
    // defanged URLs followed by `  (dknife c2)`: 39 SHA-256, 24 URLs, 10 IPv4 + 2 `ip:port`
    // (IPv4 indicators with the port in the description), 1 domain; nothing refused.
    let o = read("talos-knife-cutting-the-edge.txt");
    assert_eq!(
        o.kinds,
        kinds(&[
            ("domain-name:value", 1),
            ("file:hashes.'SHA-256'", 39),
            ("ipv4-addr:value", 12),
            ("url:value", 24),
        ])
    );
    assert_eq!(o.with_port, 2);
    assert_eq!(o.distinct_ids, 76);
    assert!(o.refused.is_empty(), "{:?}", o.refused_lines);
}

#[test]
fn talos_uat_7810_rejects_its_six_titles_as_not_indicators() {
    // CRLF, trailing blanks, section titles without `#`; one SHA-256 listed twice (77 lines, 76
    // distinct: the pipeline reports the earlier one `duplicate`).
    let o = read("talos-uat-7810.txt");
    assert_eq!(
        o.kinds,
        kinds(&[
            ("file:hashes.'SHA-256'", 77),
            ("ipv4-addr:value", 4),
            ("url:value", 9),
        ])
    );
    assert_eq!(o.with_port, 0);
    assert_eq!(o.distinct_ids, 89);
    assert_eq!(o.refused, HashMap::from([(Code::NotAnIndicator, 6)]));
    assert_eq!(
        o.refused_lines,
        [
            "LEASHTEST",
            "LONGLEASH",
            "Startup script for JARLEASH",
            "Configuration file for JARLEASH",
            "JARLEASH",
            "DOGLEASH"
        ]
    );
}

#[test]
fn unit42_shade_urls_are_203_urls_and_two_headings() {
    let o = read("unit42-shade-urls.txt");
    assert_eq!(o.kinds, kinds(&[("url:value", 203)]));
    assert_eq!(o.distinct_ids, 203);
    assert_eq!(o.refused, HashMap::from([(Code::NotAnIndicator, 2)]));
    assert_eq!(
        o.refused_lines,
        [
            "APPENDIX A:",
            "203 URLS THAT RETURNED SHADE (TROLDESH) RANSOMWARE EXE FROM 2019-03-01 THROUGH 2019-04-24:"
        ]
    );
}

#[test]
fn unit42_advanced_url_filtering_reads_scheme_less_urls_as_urls() {
    // UTF-8 BOM, six headings, defanged domains and URLs: 8 URLs with a scheme and 30 without
    // (`host/path`, four with `@` in the path, six on an IP, one of those `ip[:]port/path`), read
    // as `http://`; 4 SHA-256. The three domains are the three lines without a path; no line is
    // an e-mail address.
    let o = read("unit42-advanced-url-filtering.txt");
    assert_eq!(
        o.kinds,
        kinds(&[
            ("domain-name:value", 3),
            ("file:hashes.'SHA-256'", 4),
            ("url:value", 38),
        ])
    );
    assert_eq!(o.distinct_ids, 45);
    assert_eq!(o.refused, HashMap::from([(Code::NotAnIndicator, 6)]));
    assert_eq!(
        o.refused_lines,
        [
            "Suspicious URLs",
            "Phishing",
            "Malware Behind Cloaking",
            "Compromised/Abused websites",
            "C2/Sality-A",
            "Ursnif Trojan"
        ]
    );
}

#[test]
fn spamhaus_drop_lists_are_cidr_ranges() {
    let o = read("spamhaus-drop.txt");
    assert_eq!(o.kinds, kinds(&[("ipv4-addr:value", 989)]));
    assert_eq!(o.distinct_ids, 989);
    assert!(o.refused.is_empty(), "{:?}", o.refused_lines);

    let o = read("spamhaus-drop-ipv6.txt");
    assert_eq!(o.kinds, kinds(&[("ipv6-addr:value", 51)]));
    assert_eq!(o.distinct_ids, 51);
    assert!(o.refused.is_empty(), "{:?}", o.refused_lines);
}

#[test]
fn the_vendor_shapes_fixture_gives_each_shape_its_indicator() {
    // Our own fixture in the shapes above (its comment lines say where each comes from).
    let o = read_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/vendor-shapes.txt"),
    );
    assert_eq!(
        o.kinds,
        kinds(&[
            ("domain-name:value", 3),
            ("email-addr:value", 1),
            ("file:hashes.'SHA-256'", 2),
            ("file:name", 1),
            ("ipv4-addr:value", 4),
            ("ipv6-addr:value", 1),
            ("url:value", 4),
        ])
    );
    assert_eq!(o.with_port, 2);
    assert_eq!(o.distinct_ids, 16);
    assert_eq!(o.refused, HashMap::from([(Code::NotAnIndicator, 2)]));
    assert_eq!(o.refused_lines, ["DOWNLOADERS", "Startup script for LEASH"]);
}
