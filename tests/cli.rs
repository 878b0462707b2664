//! The command line, run as a real process: `validate` offline, exit codes per DESIGN.md §7.

mod common;

use std::process::Command;

use serde_json::Value;

fn ti_ingest() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ti-ingest"));
    // The CLI must not depend on the handler's environment.
    c.env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("TI_TARGET")
        .env("TI_LOG", "warn");
    c
}

#[test]
fn validate_reports_each_invalid_record_with_index_and_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("feed.json");
    let invalid = [3, 17, 42];
    std::fs::write(&input, common::bundle(&common::corpus(50, &invalid))).unwrap();
    let report_path = dir.path().join("out.report.json");
    let out = ti_ingest()
        .arg("validate")
        .arg(&input)
        .arg("--report")
        .arg(&report_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["summary"]["records"], 50);
    assert_eq!(report["summary"]["uploaded"], 47);
    assert_eq!(report["summary"]["rejected"], 3);
    assert_eq!(report["source"]["format"], "stix-bundle");
    let idx: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![3, 17, 42]);
    let text = std::fs::read_to_string(&input).unwrap();
    for e in report["errors"].as_array().unwrap() {
        assert_eq!(e["stage"], "validate");
        // The reported line is where the record's `{` is.
        let line = e["line"].as_u64().unwrap() as usize;
        let l = text.lines().nth(line - 1).unwrap();
        assert_eq!(l.trim(), "{", "line {line}");
        let id = e["id"].as_str().unwrap_or_default();
        let i = e["recordIndex"].as_u64().unwrap() as usize;
        if i != 42 {
            assert_eq!(id, format!("indicator--{}", common::uuid_for(i)));
        }
        assert!(!e["messages"].as_array().unwrap().is_empty());
    }
    let codes: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["pattern_invalid", "missing_property", "invalid_id"]
    );
    // The rejected records are kept, in their original form, one per line.
    let rejected = std::fs::read_to_string(dir.path().join("out.rejected.ndjson")).unwrap();
    let lines: Vec<Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], common::invalid_indicator(3, 0));
}

#[test]
fn validate_exit_codes_0_and_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        serde_json::to_string(&common::corpus(5, &[])).unwrap(),
    )
    .unwrap();
    let out = ti_ingest().arg("validate").arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{\"type\": \"indicator\"} ,, garbage").unwrap();
    let out = ti_ingest().arg("validate").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = ti_ingest()
        .arg("validate")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));

    let out = ti_ingest().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_reads_standard_input() {
    use std::io::Write;
    let mut child = ti_ingest()
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(common::indicator(1).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 records"));
}
