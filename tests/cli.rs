//! The command line, run as a real process: `validate` offline, exit codes as README.md's Command line says.

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

/// `ti-ingest validate INPUT --report R` with extra arguments and environment: the exit code and
/// the report (`Null` when none was written).
fn validate_with_report(
    input: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, Value) {
    let report = input.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let out = ti_ingest()
        .envs(env.iter().copied())
        .arg("validate")
        .arg(input)
        .args(args)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let report = std::fs::read(&report)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (out.status.code(), report)
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

#[test]
fn every_input_format_is_read_and_converted() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("iocs.txt");
    std::fs::write(
        &text,
        "# from a report\n1.2.3.4\nevil[.]example.com\n\nhxxp://bad.example.org/x\n44d88612fea8a8f36de82e1278abb02f\nnot an ioc !!\n",
    )
    .unwrap();
    let out = ti_ingest()
        .args(["convert"])
        .arg(&text)
        .args(["--to", "graph"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let graph: Value = serde_json::from_slice(&out.stdout).unwrap();
    let values = graph["value"].as_array().unwrap();
    assert_eq!(values.len(), 4);
    assert_eq!(values[0]["networkIPv4"], "1.2.3.4");
    assert_eq!(values[1]["domainName"], "evil.example.com");
    assert_eq!(values[2]["url"], "http://bad.example.org/x");
    assert_eq!(values[3]["fileHashType"], "md5");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 7") && stderr.contains("not_an_indicator"),
        "{stderr}"
    );

    // The same list as STIX: a bundle whose patterns are single comparisons.
    let out = ti_ingest()
        .args(["convert"])
        .arg(&text)
        .args(["--to", "stix"])
        .output()
        .unwrap();
    let bundle: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["type"], "bundle");
    assert_eq!(
        bundle["objects"][0]["pattern"],
        "[ipv4-addr:value = '1.2.3.4']"
    );

    // CSV (short form, CRLF, quoted field) through validate with a report.
    let csv = "type,value\r\nip,5.6.7.8\r\nsha256,zzzz\r\ndomain,\"good.example.com\"\r\n";
    let plain = dir.path().join("list.csv");
    std::fs::write(&plain, csv).unwrap();
    let report = dir.path().join("r.json");
    let out = ti_ingest()
        .arg("validate")
        .arg(&plain)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["source"]["format"], "csv");
    assert_eq!(r["summary"]["records"], 3);
    assert_eq!(r["errors"][0]["line"], 3);
    assert_eq!(r["errors"][0]["code"], "invalid_observable");

    // --format overrides detection: the CSV read as text is three unrecognised lines + one.
    let out = ti_ingest()
        .arg("validate")
        .arg(&plain)
        .args(["--format", "text", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["source"]["format"], "text");
    let out = ti_ingest()
        .arg("validate")
        .arg(&plain)
        .args(["--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TI_FORMAT"));
}

#[test]
fn reject_file_uploads_nothing_when_any_record_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("feed.json");
    std::fs::write(
        &input,
        serde_json::to_string(&common::corpus(20, &[4])).unwrap(),
    )
    .unwrap();
    let (code, r) = validate_with_report(&input, &[], &[("TI_ON_INVALID", "reject-file")]);
    assert_eq!(code, Some(1));
    assert_eq!(
        r["summary"],
        serde_json::json!({"records": 20, "uploaded": 0, "rejected": 20})
    );
    assert_eq!(r["errors"][4]["code"], "pattern_invalid");
    assert_eq!(r["errors"][0]["code"], "file_rejected");

    // A text list's headings are reported `not_an_indicator`, not taken for invalid records:
    // its indicators are not `file_rejected` (docs/REPORTS.md, docs/SETTINGS.md).
    let list = dir.path().join("iocs.txt");
    std::fs::write(
        &list,
        "Indicators of compromise\n\nC2 servers\n198.51.100.7\nevil[.]example (c2)\n",
    )
    .unwrap();
    let (code, r) = validate_with_report(&list, &[], &[("TI_ON_INVALID", "reject-file")]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(
        r["summary"],
        serde_json::json!({"records": 4, "uploaded": 2, "rejected": 2})
    );
    let codes: Vec<(&Value, &Value)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["line"], &e["code"]))
        .collect();
    assert_eq!(
        codes,
        [
            (
                &serde_json::json!(1),
                &serde_json::json!("not_an_indicator")
            ),
            (
                &serde_json::json!(3),
                &serde_json::json!("not_an_indicator")
            )
        ]
    );
}

/// `validate` applies what the chosen target would refuse before sending (docs/ARCHITECTURE.md, The model: the
/// service's rules for the chosen target), exactly as `upload` reports it, and sends nothing.
#[test]
fn validate_applies_the_rules_of_the_chosen_target() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.json");
    let mut two = common::indicator(1);
    two["pattern"] =
        "[domain-name:value = 'a.example'] AND [ipv4-addr:value = '198.51.100.7']".into();
    let actor = serde_json::json!({
        "type": "threat-actor", "spec_version": "2.1",
        "id": "threat-actor--6f1b5b7e-0000-4000-8000-000000000003",
        "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
        "name": "Evil"
    });
    let objects = vec![common::indicator(0), two, actor];
    std::fs::write(&input, common::bundle(&objects)).unwrap();
    let run = |target: Option<&str>, env_target: Option<&str>| {
        let args: Vec<&str> = target.map(|t| vec!["--target", t]).unwrap_or_default();
        let env: Vec<(&str, &str)> = env_target
            .map(|t| vec![("TI_TARGET", t)])
            .unwrap_or_default();
        let (code, report) = validate_with_report(&input, &args, &env);
        if report.is_null() {
            return (code, vec![]);
        }
        let errors: Vec<(u64, String, String)> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["recordIndex"].as_u64().unwrap(),
                    e["code"].as_str().unwrap().to_string(),
                    e["messages"][0].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (code, errors)
    };

    // The default target, sentinel-stix, takes all three.
    assert_eq!(run(None, None), (Some(0), vec![]));

    // sentinel-indicators takes indicators only (from TI_TARGET as from --target).
    for (flag, env) in [
        (Some("sentinel-indicators"), None),
        (None, Some("sentinel-indicators")),
    ] {
        let (code, errors) = run(flag, env);
        assert_eq!(code, Some(1));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].0, errors[0].1.as_str()), (2, "unsupported_type"));
    }

    // graph: only single-observable indicators convert (the corpus indicators expire, so they do).
    let (code, errors) = run(Some("graph"), Some("sentinel-indicators"));
    assert_eq!(code, Some(1));
    let codes: Vec<(u64, &str)> = errors.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(codes, vec![(1, "not_convertible"), (2, "unsupported_type")]);
    assert!(!errors[0].2.starts_with("graph:"), "one target: no prefix");

    // Several targets: each message names its target; the first refusing target's code wins.
    let (code, errors) = run(Some("sentinel-stix,sentinel-indicators,graph"), None);
    assert_eq!(code, Some(1));
    let codes: Vec<(u64, &str)> = errors.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(codes, vec![(1, "not_convertible"), (2, "unsupported_type")]);
    assert!(
        errors[1].2.starts_with("sentinel-indicators:"),
        "{:?}",
        errors[1]
    );

    // A target that does not exist is an argument error.
    assert_eq!(run(Some("splunk"), None).0, Some(2));
}

#[test]
fn a_bad_log_filter_stops_start_up_with_a_message_naming_ti_log() {
    let out = ti_ingest()
        .env("TI_LOG", "ti_ingest=[")
        .args(["validate", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("setting TI_LOG"), "{stderr}");
}

#[test]
fn a_file_over_the_input_bound_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.json");
    std::fs::write(&input, common::bundle(&common::corpus(20, &[]))).unwrap();
    let (code, report) = validate_with_report(&input, &[], &[("TI_MAX_INPUT_BYTES", "1000")]);
    assert_eq!(code, Some(2));
    assert_eq!(report["inputError"]["code"], "input_too_large");
    assert_eq!(
        report["summary"]["records"], 0,
        "nothing of it is processed"
    );
}

/// A JSON document of no known shape is unusable input (exit 2) whose message lists the shapes
/// ti-ingest reads, for every command.
#[test]
fn a_json_object_of_no_known_shape_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hello.json");
    std::fs::write(&input, "{\"hello\":\"world\"}\n").unwrap();
    let (code, r) = validate_with_report(&input, &[], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(r["summary"]["records"], 0);
    assert_eq!(r["inputError"]["code"], "input_invalid");
    let message = r["inputError"]["message"].as_str().unwrap();
    assert!(
        message.contains("one JSON object (properties 'hello') of no shape ti-ingest reads. Accepted JSON inputs: a STIX object"),
        "{message}"
    );
    let out = ti_ingest()
        .arg("convert")
        .arg(&input)
        .args(["--to", "stix"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Accepted JSON inputs"));
}

/// `convert` applies the duplicate rule of `validate`/`upload`: the last record with an id wins.
#[test]
fn convert_writes_the_last_record_with_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dups.json");
    let mut records = common::corpus(3, &[]);
    let mut newer = records[0].clone();
    newer["name"] = Value::from("the newer one");
    records.push(newer);
    std::fs::write(&input, serde_json::to_string(&records).unwrap()).unwrap();
    let out = ti_ingest()
        .arg("convert")
        .arg(&input)
        .args(["--to", "stix"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let bundle: Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let names: Vec<&Value> = objects.iter().map(|o| &o["name"]).collect();
    assert_eq!(objects.len(), 3);
    assert_eq!(names[2], "the newer one");
    assert_eq!(objects[2]["id"], records[0]["id"]);
    assert!(
        stderr.contains("record 0 (line 1): duplicate: record 3 (line 1) has the same id"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 records converted, 1 rejected"),
        "{stderr}"
    );
}

/// `upload` keeps its checkpoints in the user's state directory (removed after a completed
/// run), never in the working directory.
#[test]
fn upload_checkpoints_live_in_the_state_directory_not_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let input = cwd.path().join("feed.json");
    std::fs::write(&input, common::bundle(&common::corpus(5, &[]))).unwrap();
    let out = ti_ingest()
        .current_dir(cwd.path())
        .env_remove("TI_CHECKPOINT_DIR")
        .env("XDG_STATE_HOME", state.path())
        .arg("upload")
        .arg(&input)
        .args(["--target", "dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let in_cwd: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(in_cwd, vec!["feed.json".to_string()]);
    let root = state.path().join("ti-ingest").join("checkpoints");
    assert!(
        root.is_dir(),
        "the checkpoints' root is the state directory's"
    );
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "a completed run's checkpoints are removed"
    );
}

/// What `convert --to stix` writes is read by the OASIS `stix2` library (3.0.2, pinned in
/// scripts/oracle/requirements.txt) as STIX tools read it: `stix2.parse(obj, allow_custom=True)`
/// accepts every object, converted from a text list and from a CSV. Never skipped: without
/// `python3` the test fails and says what is needed (CI installs it: scripts/setup-tools.sh).
#[test]
fn converted_stix_is_read_by_oasis_stix2() {
    assert!(
        Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3 is missing: this test reads the converted STIX with the OASIS stix2 library, \
         which scripts/stix2-parse.sh installs into .venv-oracle (scripts/setup-tools.sh installs \
         every tool the suite needs)"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("iocs.txt");
    std::fs::write(
        &text,
        "1.2.3.4\nevil[.]example.com\nhxxp://bad.example.org/x\n44d88612fea8a8f36de82e1278abb02f\n",
    )
    .unwrap();
    let csv = dir.path().join("iocs.csv");
    std::fs::write(
        &csv,
        "type,value,description\nipv4,5.6.7.8,C2 server\nsha256,e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,empty file\nurl,http://x.example/a,\n",
    )
    .unwrap();
    for (input, n) in [(&text, 4), (&csv, 3)] {
        let out = ti_ingest()
            .arg("convert")
            .arg(input)
            .args(["--to", "stix"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let bundle = dir.path().join("bundle.json");
        std::fs::write(&bundle, &out.stdout).unwrap();
        let parsed = Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stix2-parse.sh"),
        )
        .arg(&bundle)
        .output()
        .unwrap();
        assert!(
            parsed.status.success(),
            "{}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        let verdicts: Value = serde_json::from_slice(&parsed.stdout).unwrap();
        assert_eq!(
            verdicts[bundle.to_str().unwrap()],
            serde_json::json!({"objects": n, "refused": []}),
            "{}",
            input.display()
        );
        let objects: Value = serde_json::from_slice(&out.stdout).unwrap();
        let objects = objects["objects"].as_array().unwrap();
        assert_eq!(objects.len(), n, "{}", input.display());
        for o in objects {
            assert!(o["name"].is_string(), "{o}");
            assert_eq!(o["created"].as_str().unwrap().len(), 24, "{o}");
        }
    }
}
