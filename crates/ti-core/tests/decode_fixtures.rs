//! Table tests per input format: `tests/fixtures/<format>/cases.json`.
//!
//! Each case is an input (inline `input`, or a `file` beside `cases.json`) and the expected
//! outcome of decoding then validating every record, as the pipeline does: per record its line,
//! verdict (`valid`/`invalid`), the code of the first problem, every warning code, message substrings
//! and properties of the resulting STIX object. Every case is also run in 1- and 7-byte chunks
//! and gzip-compressed, which must change nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use ti_core::convert::{Defaults, Tlp};
use ti_core::input::{Decoded, Decoder, InputFormat, InputOptions};
use ti_core::report::Code;
use ti_core::stix::{self, ValidationContext};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const ACCEPTED: &[&str] = stix::STIX_OBJECTS_API_TYPES;

#[derive(Deserialize)]
struct Table {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    file: Option<String>,
    /// A forced format (`TI_FORMAT`).
    #[serde(default)]
    format: Option<String>,
    /// Ingestion time; 2025-01-01T00:00:00Z when absent.
    #[serde(default)]
    now: Option<String>,
    #[serde(default)]
    valid_days: Option<u32>,
    /// The detected format, or absent when a frame error is expected.
    #[serde(default)]
    expect_format: Option<String>,
    /// A substring of the frame error that stops the input.
    #[serde(default)]
    frame_error: Option<String>,
    records: Vec<Expect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    line: u64,
    verdict: Verdict,
    #[serde(default)]
    code: Option<Code>,
    /// Every warning code, in order: required, `[]` for none (a record whose warnings go
    /// unchecked could gain or lose one unnoticed).
    warnings: Vec<Code>,
    #[serde(default)]
    messages: Vec<String>,
    /// Properties the STIX object must have (valid records).
    #[serde(default)]
    expect: Map<String, Value>,
    /// The record's original text, when it matters.
    #[serde(default)]
    original: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Valid,
    Invalid,
}

/// What the pipeline would conclude about one record.
#[derive(Debug, PartialEq)]
struct Outcome {
    index: u64,
    line: u64,
    original: Option<String>,
    verdict: Verdict,
    code: Option<Code>,
    warnings: Vec<Code>,
    messages: Vec<String>,
    object: Option<Map<String, Value>>,
}

fn outcome(d: Decoded, now: OffsetDateTime) -> Outcome {
    let mut warnings: Vec<Code> = d.warnings.iter().map(|w| w.code).collect();
    let mut messages: Vec<String> = d.warnings.iter().map(|w| w.message.clone()).collect();
    let (verdict, code, object) = match d.object {
        Err(p) => {
            messages.push(p.message);
            (Verdict::Invalid, Some(p.code), None)
        }
        Ok(o) => {
            let ctx = ValidationContext {
                now,
                accepted_types: ACCEPTED,
            };
            match stix::validate(o, &ctx) {
                Ok(v) => {
                    // The STIX 2.0 upgrade (reported once per input by the pipeline) counts here
                    // as the record's first warning.
                    let all = v.upgrade.into_iter().chain(v.warnings);
                    for w in all {
                        warnings.push(w.code);
                        messages.push(w.message);
                    }
                    (Verdict::Valid, None, Some(v.object))
                }
                Err(inv) => {
                    let code = inv.problems.first().map(|p| p.code);
                    messages.extend(inv.problems.into_iter().map(|p| p.message));
                    (Verdict::Invalid, code, None)
                }
            }
        }
    };
    Outcome {
        index: d.index,
        line: d.line,
        original: d.original,
        verdict,
        code,
        warnings,
        messages,
        object,
    }
}

fn run(
    input: &[u8],
    chunk: usize,
    opts: &InputOptions,
) -> (Vec<Outcome>, Result<InputFormat, String>) {
    let mut d = Decoder::new(opts.clone());
    let mut out = Vec::new();
    let mut end = Ok(());
    for c in input.chunks(chunk.max(1)) {
        if let Err(e) = d.push(c, &mut out) {
            end = Err(e.to_string());
            break;
        }
    }
    let format = end.and_then(|()| d.finish(&mut out).map_err(|e| e.to_string()));
    let outcomes = out.into_iter().map(|r| outcome(r, opts.now)).collect();
    (outcomes, format)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn check_table(dir: &Path) -> usize {
    let table: Table =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for case in &table.cases {
        let name = format!(
            "{}: {}",
            dir.file_name().unwrap().to_string_lossy(),
            case.name
        );
        let input = match (&case.input, &case.file) {
            (Some(i), None) => i.clone().into_bytes(),
            (None, Some(f)) => std::fs::read(dir.join(f)).unwrap(),
            _ => panic!("{name}: give exactly one of input and file"),
        };
        let now = OffsetDateTime::parse(
            case.now.as_deref().unwrap_or("2025-01-01T00:00:00Z"),
            &Rfc3339,
        )
        .unwrap();
        let opts = InputOptions {
            format: case.format.as_deref().map(|f| f.parse().unwrap()),
            defaults: Defaults {
                valid_days: case.valid_days.unwrap_or(90),
                confidence: 50,
                tlp: Tlp::Green,
            },
            ..InputOptions::new(now)
        };
        let (got, format) = run(&input, input.len(), &opts);
        for (label, bytes, size) in [
            ("1-byte chunks", input.clone(), 1),
            ("7-byte chunks", input.clone(), 7),
            ("gzip", gzip(&input), 5),
        ] {
            let (again, f) = run(&bytes, size, &opts);
            assert_eq!(again, got, "{name}: {label} differ");
            assert_eq!(f, format, "{name}: {label} differ");
        }

        match (&case.frame_error, &format) {
            (None, Ok(f)) => assert_eq!(
                Some(f.name()),
                case.expect_format.as_deref(),
                "{name}: format"
            ),
            (Some(want), Err(e)) => assert!(e.contains(want.as_str()), "{name}: frame error {e:?}"),
            (want, got) => panic!("{name}: expected frame error {want:?}, got {got:?}"),
        }
        assert_eq!(
            got.len(),
            case.records.len(),
            "{name}: record count; got {got:#?}"
        );
        for (i, (g, w)) in got.iter().zip(&case.records).enumerate() {
            let at = format!("{name}: record {i}");
            assert_eq!(g.index, i as u64, "{at}: index");
            assert_eq!(g.line, w.line, "{at}: line");
            assert_eq!(g.verdict, w.verdict, "{at}: verdict {g:#?}");
            assert_eq!(g.code, w.code, "{at}: code {g:#?}");
            assert_eq!(g.warnings, w.warnings, "{at}: warnings {:#?}", g.messages);
            let mut rest = g.messages.iter();
            for m in &w.messages {
                assert!(
                    rest.any(|x| x.contains(m.as_str())),
                    "{at}: no message containing {m:?} (in order) in {:#?}",
                    g.messages
                );
            }
            if let Some(o) = &w.original {
                assert_eq!(g.original.as_ref(), Some(o), "{at}: original");
            }
            for (k, v) in &w.expect {
                let obj = g
                    .object
                    .as_ref()
                    .unwrap_or_else(|| panic!("{at}: no object"));
                assert_eq!(obj.get(k), Some(v), "{at}: property {k} of {obj:#?}");
            }
        }
    }
    table.cases.len()
}

#[test]
fn every_format_table() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut tables = 0;
    let mut cases = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("cases.json").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        cases += check_table(&dir);
        tables += 1;
    }
    assert!(tables >= 7, "only {tables} tables");
    println!("{tables} tables, {cases} cases");
}
