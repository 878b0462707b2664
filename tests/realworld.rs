//! Genuine indicator files, as their publishers released them, through the real binary (issue 11).
//!
//! `../shared/realworld/` holds vendor IOC lists and CSVs, a feed CSV, Spamhaus lists, ATT&CK in
//! STIX 2.0 and 2.1, OASIS example reports, a MISP STIX 2.0 export and Microsoft's sample request
//! bodies; its README gives each file's origin and what a correct tool makes of it. They are read
//! in place (CI has `../shared` too) and never copied into the repository.
//!
//! For every file: `ti-ingest validate --target sentinel-stix` gives exactly the expected counts
//! (records, uploaded, each error and warning code, with the reason for each rejection), and
//! `ti-ingest convert --to stix` gives exactly the expected count of each kind of object. Then the
//! OASIS `stix2` library (pinned, `scripts/stix2-parse.sh`) parses every object `convert`
//! produced, for every file: STIX tools must accept all of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// What one genuine file must give.
struct Expect {
    file: &'static str,
    format: &'static str,
    records: u64,
    uploaded: u64,
    /// `(code, count, why)` for every error code in the report.
    errors: &'static [(&'static str, u64, &'static str)],
    /// `(code, count)` for every warning code in the report. `dangling_relationship`: every
    /// relationship with an end of a type Sentinel does not take (malware, tool, intrusion-set,
    /// x-mitre-*) is uploaded with a warning naming that end; `normalised` on a STIX 2.0 input is
    /// the one upgrade warning of the input; on Microsoft's samples, a granular marking with both
    /// `lang` and `marking_ref` split in two (STIX 2.1 allows one or the other).
    warnings: &'static [(&'static str, u64)],
    /// `(kind, count)` of what `convert --to stix` prints: an indicator's kind is the object path
    /// of its pattern's first comparison (`ipv4-addr:value`, `file:hashes.'SHA-256'`), any other
    /// object's kind is its type.
    kinds: &'static [(&'static str, u64)],
}

const UNSUPPORTED: &str = "Sentinel's STIX objects API takes only indicator, attack-pattern, \
                           threat-actor, identity and relationship";

const FILES: &[Expect] = &[
    Expect {
        file: "mitre-ics-attack-18.1.stix21.json",
        format: "stix-bundle",
        records: 1826,
        uploaded: 1469,
        errors: &[("unsupported_type", 357, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 1373)],
        kinds: &[
            ("attack-pattern", 95),
            ("identity", 1),
            ("relationship", 1373),
        ],
    },
    Expect {
        file: "mitre-cti-ics-attack.stix20.json",
        format: "stix-bundle",
        records: 1825,
        uploaded: 1469,
        errors: &[("unsupported_type", 356, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 1373), ("normalised", 1)],
        kinds: &[
            ("attack-pattern", 95),
            ("identity", 1),
            ("relationship", 1373),
        ],
    },
    Expect {
        file: "oasis-apt1.json",
        format: "stix-bundle",
        records: 76,
        uploaded: 58,
        errors: &[("unsupported_type", 18, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 23)],
        kinds: &[],
    },
    Expect {
        file: "oasis-poisonivy.json",
        format: "stix-bundle",
        records: 155,
        uploaded: 119,
        errors: &[("unsupported_type", 36, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 90)],
        kinds: &[],
    },
    Expect {
        file: "oasis-poisonivy.json.gz",
        format: "stix-bundle",
        records: 155,
        uploaded: 119,
        errors: &[("unsupported_type", 36, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 90)],
        kinds: &[],
    },
    Expect {
        file: "oasis-indicators-for-C2-with-COA.json",
        format: "stix-bundle",
        records: 8,
        uploaded: 6,
        errors: &[("unsupported_type", 2, UNSUPPORTED)],
        warnings: &[("dangling_relationship", 3)],
        kinds: &[],
    },
    Expect {
        file: "oasis-malicious-email-indicator-with-attachment.json",
        format: "stix-bundle",
        records: 6,
        uploaded: 6,
        errors: &[],
        warnings: &[],
        kinds: &[],
    },
    Expect {
        file: "oasis-stix2-sco-examples-bundle.json",
        format: "stix-json",
        records: 82,
        uploaded: 0,
        errors: &[(
            "unsupported_type",
            82,
            "cyber-observables are not accepted by Sentinel (3 artifacts are also invalid, \
             but the type is refused first)",
        )],
        warnings: &[],
        kinds: &[],
    },
    Expect {
        file: "oasis-validator-invalid-timestamp.json",
        format: "stix-json",
        records: 1,
        uploaded: 0,
        errors: &[("invalid_property", 1, "modified is before created")],
        warnings: &[],
        kinds: &[],
    },
    Expect {
        file: "ms-sentinel-stixobjects-sample-indicator.json",
        format: "sentinel-request",
        records: 1,
        uploaded: 1,
        errors: &[],
        warnings: &[("expired", 1), ("normalised", 1)],
        kinds: &[("ipv4-addr:value", 1)],
    },
    Expect {
        file: "ms-sentinel-stixobjects-sample-relationship.json",
        format: "sentinel-request",
        records: 3,
        uploaded: 3,
        errors: &[],
        warnings: &[("normalised", 3)],
        kinds: &[("identity", 1), ("relationship", 1), ("threat-actor", 1)],
    },
    Expect {
        file: "volexity-exchange-marauder.csv",
        format: "csv",
        records: 13,
        uploaded: 13,
        errors: &[],
        warnings: &[],
        kinds: &[("ipv4-addr:value", 13)],
    },
    Expect {
        // `url` rows that are `ip:port` or a bare host name are taken for what they are (a
        // `normalised` warning each); 3 of those `ip:port` C2s are also listed as `ipaddress`.
        file: "volexity-uta0388.csv",
        format: "csv",
        records: 58,
        uploaded: 55,
        errors: &[(
            "duplicate",
            3,
            "80.85.154.48:443, 80.85.157.117:443 and 82.118.16.173:443 (type url, the port \
             dropped) are the same indicators as the later ipaddress rows of those addresses",
        )],
        warnings: &[("normalised", 4)],
        kinds: &[
            ("domain-name:value", 7),
            ("file:hashes.'SHA-256'", 11),
            ("ipv4-addr:value", 10),
            ("url:value", 27),
        ],
    },
    Expect {
        file: "abusech-feodo-ipblocklist.csv",
        format: "csv",
        records: 28,
        uploaded: 28,
        errors: &[],
        warnings: &[],
        kinds: &[("ipv4-addr:value", 28)],
    },
];

fn realworld() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realworld")
}

fn ti_ingest() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ti-ingest"));
    c.env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("TI_TARGET")
        .env("TI_LOG", "error");
    c
}

fn counts<'a>(entries: impl Iterator<Item = &'a Value>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(e["code"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

/// The kind of a converted object (see [`Expect::kinds`]).
fn kind(o: &Value) -> String {
    let t = o["type"].as_str().unwrap();
    if t != "indicator" {
        return t.to_string();
    }
    let p = o["pattern"].as_str().unwrap();
    let start = p.find('[').map_or(0, |i| i + 1);
    let end = p[start..].find([' ', '=']).map_or(p.len(), |i| start + i);
    p[start..end].to_string()
}

/// Runs `scripts/stix2-parse.sh` over `files` and returns how many objects it parsed; fails on any
/// object it refused.
fn stix2_accepts_all(files: &[PathBuf]) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/stix2-parse.sh"))
        .args(files)
        .output()
        .expect("run scripts/stix2-parse.sh (needs python3)");
    assert!(
        out.status.success(),
        "scripts/stix2-parse.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts.len(), files.len());
    let mut parsed = 0;
    for (file, v) in &verdicts {
        let refused = v["refused"].as_array().unwrap();
        assert!(refused.is_empty(), "{file}: stix2 refused {refused:#?}");
        parsed += v["objects"].as_u64().unwrap();
    }
    parsed
}

/// `ti-ingest convert --to stix` of `input` (with extra arguments) into `out`; the bundle's objects.
fn convert(input: &Path, args: &[&str], out: &Path) -> Vec<Value> {
    let o = ti_ingest()
        .args(["convert", "--to", "stix"])
        .args(args)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}: convert exited {:?}: {}",
        input.display(),
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out, &o.stdout).unwrap();
    let bundle: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|err| panic!("{}: convert output is not JSON: {err}", input.display()));
    bundle["objects"].as_array().unwrap().clone()
}

/// Every input fixture of the project (ti-core's per-format fixtures and `examples/`) converts to
/// STIX that the OASIS `stix2` library accepts, object for object.
#[test]
fn every_fixture_converts_to_stix_that_stix2_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<(PathBuf, Vec<&str>)> = Vec::new();
    let fixtures = root.join("crates/ti-core/tests/fixtures");
    for dir in std::fs::read_dir(&fixtures).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        if !dir.is_dir() || name == "fuzz-regressions" {
            continue;
        }
        // Prose is never detected: it is always asked for.
        let args = if name == "prose" {
            vec!["--format", "prose"]
        } else {
            vec![]
        };
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let n = f.file_name().unwrap().to_str().unwrap();
            // Test tables and notes, not inputs.
            let input = f.is_file()
                && !n.ends_with("cases.json")
                && !n.ends_with(".md")
                && !n.starts_with("expected");
            if input {
                inputs.push((f, args.clone()));
            }
        }
    }
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        inputs.push((e.unwrap().path(), vec![]));
    }
    inputs.sort();
    assert!(inputs.len() >= 7, "only {} fixtures found", inputs.len());
    let dir = tempfile::tempdir().unwrap();
    let mut converted = Vec::new();
    let mut objects = 0;
    for (i, (input, args)) in inputs.iter().enumerate() {
        let out = dir.path().join(format!("{i}.stix.json"));
        objects += convert(input, args, &out).len() as u64;
        converted.push(out);
    }
    assert!(objects > 0);
    assert_eq!(stix2_accepts_all(&converted), objects);
}

#[test]
fn genuine_files_give_the_expected_records_and_stix_tools_accept_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut converted = Vec::new();
    let mut failures = Vec::new();
    for e in FILES {
        let input = realworld().join(e.file);
        assert!(input.is_file(), "{} is missing", input.display());
        let report_path = dir.path().join(format!("{}.report.json", e.file));
        let out = ti_ingest()
            .args(["validate", "--target", "sentinel-stix"])
            .arg(&input)
            .arg("--report")
            .arg(&report_path)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        let want_exit = if e.uploaded == e.records { 0 } else { 1 };
        let mut problems = Vec::new();
        if out.status.code() != Some(want_exit) {
            problems.push(format!(
                "exit {:?}, expected {want_exit}",
                out.status.code()
            ));
        }
        if report["source"]["format"] != e.format {
            problems.push(format!("format {}", report["source"]["format"]));
        }
        let s = &report["summary"];
        if s["records"] != e.records || s["uploaded"] != e.uploaded {
            problems.push(format!("summary {s}"));
        }
        let errors = counts(report["errors"].as_array().unwrap().iter());
        let want: BTreeMap<String, u64> = e
            .errors
            .iter()
            .map(|(c, n, _)| (c.to_string(), *n))
            .collect();
        if errors != want {
            problems.push(format!("errors {errors:?}, expected {want:?}"));
        }
        let warnings = counts(
            report["warnings"]
                .as_array()
                .map(|w| w.iter())
                .into_iter()
                .flatten(),
        );
        let want: BTreeMap<String, u64> = e
            .warnings
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect();
        if warnings != want {
            problems.push(format!("warnings {warnings:?}, expected {want:?}"));
        }

        let conv_path = dir.path().join(format!("{}.stix.json", e.file));
        let objects = convert(&input, &[], &conv_path);
        if objects.len() as u64 != e.uploaded {
            problems.push(format!(
                "convert printed {} objects, validate uploads {}",
                objects.len(),
                e.uploaded
            ));
        }
        if !e.kinds.is_empty() {
            let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
            for o in &objects {
                *kinds.entry(kind(o)).or_default() += 1;
            }
            let want: BTreeMap<String, u64> =
                e.kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            if kinds != want {
                problems.push(format!("kinds {kinds:?}, expected {want:?}"));
            }
        }
        converted.push(conv_path);
        if !problems.is_empty() {
            failures.push(format!("{}: {}", e.file, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // The OASIS stix2 library parses every object ti-ingest produced.
    let expected: u64 = FILES.iter().map(|e| e.uploaded).sum();
    assert_eq!(stix2_accepts_all(&converted), expected);
}
