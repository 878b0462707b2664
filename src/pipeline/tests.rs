//! The pipeline end to end: `run` over inputs in memory, with the dry-run target.

use super::*;
use crate::settings::Env;
use crate::upload::UploadSettings;
use serde_json::json;

fn ctx(max_input_bytes: u64, max_record_bytes: usize) -> RunContext {
    let settings = UploadSettings::from_env(&Env::from_pairs([("TI_TARGET", "dry-run")])).unwrap();
    RunContext {
        frame_limits: FrameLimits {
            max_record_bytes,
            ..Default::default()
        },
        max_input_bytes,
        ..RunContext::new(Uploader::new(settings, None).unwrap())
    }
}

fn indicator(i: u32) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--6f1b5b7e-0000-4000-8000-{i:012x}"),
        "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
        "pattern": "[domain-name:value = 'example.com']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"
    })
}

fn source() -> Source {
    Source {
        kind: "file".into(),
        name: "t".into(),
        format: None,
    }
}

/// Feeds `input` in small chunks, as a blob download would arrive.
async fn run_chunks(input: &str, ctx: &RunContext) -> RunOutcome {
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = input
        .as_bytes()
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    run_infallible(futures::stream::iter(chunks), ctx).await
}

async fn run_infallible<S>(input: S, ctx: &RunContext) -> RunOutcome
where
    S: Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin,
{
    match run(input, source(), ctx).await {
        Ok(o) => o,
        Err(never) => match never {},
    }
}

#[tokio::test]
async fn the_last_record_with_an_id_wins_and_earlier_ones_are_duplicates() {
    let mut newer = indicator(1);
    newer["name"] = json!("newer");
    // Record 0 and 2 share an id within one batch; record 1 repeats an id from a batch
    // already sent (batch size 2).
    let mut records: Vec<Value> = vec![indicator(1), indicator(2), newer];
    records.extend((3..6).map(indicator));
    records.push(indicator(2));
    let text = serde_json::to_string_pretty(&records).unwrap();
    let mut ctx = ctx(1 << 20, 1 << 20);
    let mut settings = ctx.uploader.settings().clone();
    settings.batch_size = 2;
    ctx.uploader = Uploader::new(settings, None).unwrap();
    let out = run_chunks(&text, &ctx).await;
    out.report.check_invariants().unwrap();
    let dups: Vec<(u64, Code)> = out
        .report
        .errors
        .iter()
        .map(|e| (e.record_index, e.code))
        .collect();
    assert_eq!(dups, vec![(0, Code::Duplicate), (1, Code::Duplicate)]);
    assert_eq!(out.report.summary.uploaded, 5);
    assert!(out.report.errors[0].messages[0].contains("record 2"));
    assert!(out.report.errors[1].messages[0].contains("record 6"));
}

#[tokio::test]
async fn reject_file_uploads_nothing_when_any_record_is_invalid() {
    let settings = UploadSettings::from_env(&Env::from_pairs([
        ("TI_TARGET", "dry-run"),
        ("TI_ON_INVALID", "reject-file"),
    ]))
    .unwrap();
    let mut ctx = ctx(1 << 20, 1 << 20);
    ctx.uploader = Uploader::new(settings, None).unwrap();
    let mut bad = indicator(2);
    bad["confidence"] = json!(-1);
    let open = |records: Vec<Value>| {
        let text = serde_json::to_vec(&records).unwrap();
        move || {
            let text = text.clone();
            async move { Ok::<_, std::convert::Infallible>(once(text)) }
        }
    };
    let out = match run_input(open(vec![indicator(1), bad, indicator(3)]), source(), &ctx).await {
        Ok(o) => o,
        Err(never) => match never {},
    };
    out.report.check_invariants().unwrap();
    assert_eq!(out.report.summary.uploaded, 0);
    let codes: Vec<Code> = out.report.errors.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::FileRejected,
            Code::ConfidenceOutOfRange,
            Code::FileRejected
        ]
    );
    assert_eq!(
        out.rejected.len(),
        3,
        "the whole file is kept to fix and re-drop"
    );

    let out = match run_input(open(vec![indicator(1), indicator(3)]), source(), &ctx).await {
        Ok(o) => o,
        Err(never) => match never {},
    };
    assert_eq!(out.report.summary.uploaded, 2);
    assert!(out.report.errors.is_empty());
}

#[tokio::test]
async fn reject_file_is_not_triggered_by_the_headings_of_a_text_list() {
    let settings = UploadSettings::from_env(&Env::from_pairs([
        ("TI_TARGET", "dry-run"),
        ("TI_ON_INVALID", "reject-file"),
    ]))
    .unwrap();
    let mut ctx = ctx(1 << 20, 1 << 20);
    ctx.uploader = Uploader::new(settings, None).unwrap();
    let run_text = |text: &'static str| {
        let ctx = ctx.clone();
        async move {
            let open = move || async move {
                Ok::<_, std::convert::Infallible>(once(text.as_bytes().to_vec()))
            };
            let out = match run_input(open, source(), &ctx).await {
                Ok(o) => o,
                Err(never) => match never {},
            };
            out.report.check_invariants().unwrap();
            let errors: Vec<(u64, Code)> = out
                .report
                .errors
                .iter()
                .map(|e| (e.record_index, e.code))
                .collect();
            (out.report.summary.uploaded, errors)
        }
    };
    // Headings only besides the indicators: they are reported, the indicators uploaded.
    let (uploaded, errors) =
        run_text("Indicators of compromise\nC2 servers\n198.51.100.7\nevil.example (c2)\n").await;
    assert_eq!(uploaded, 2);
    assert_eq!(
        errors,
        vec![(0, Code::NotAnIndicator), (1, Code::NotAnIndicator)]
    );
    // An invalid indicator still rejects the whole file, headings reported as they are.
    let (uploaded, errors) = run_text("C2 servers\n198.51.100.7\n1.2.3\nevil.example\n").await;
    assert_eq!(uploaded, 0);
    assert_eq!(
        errors,
        vec![
            (0, Code::NotAnIndicator),
            (1, Code::FileRejected),
            (2, Code::InvalidObservable),
            (3, Code::FileRejected)
        ]
    );
}

#[tokio::test]
async fn context_labels_are_added_to_every_valid_object_after_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let settings = UploadSettings::from_env(&Env::from_pairs([
        ("TI_TARGET", "dry-run"),
        ("TI_DRY_RUN_DIR", dir.path().to_str().unwrap()),
    ]))
    .unwrap();
    let mut ctx = ctx(1 << 20, 1 << 20);
    ctx.uploader = Uploader::new(settings, None).unwrap();
    ctx.labels = vec!["feed-a".into(), "osint".into(), "feed-a".into()];
    let mut own = indicator(1);
    own["labels"] = json!(["osint", "mine"]);
    let mut bad = indicator(3);
    bad["confidence"] = json!(101);
    let text = serde_json::to_string(&vec![own, indicator(2), bad]).unwrap();
    let out = run_chunks(&text, &ctx).await;
    assert_eq!(out.report.summary.uploaded, 2);
    // The rejected record keeps its original text.
    assert!(!out.rejected[0].1.contains("feed-a"));
    let body: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("request-000001.json")).unwrap())
            .unwrap();
    let labels: Vec<&Value> = body["stixobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["labels"])
        .collect();
    assert_eq!(
        labels,
        [
            &json!(["osint", "mine", "feed-a"]),
            &json!(["feed-a", "osint"])
        ]
    );
}

/// An input of many 256 KiB pieces, several checked on other threads at once: verdicts come
/// back in input order, duplicates are found across pieces, and a range stops at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_checked_on_other_threads_keep_input_order_and_find_duplicates() {
    let n = 12_000u32;
    let records: Vec<Value> = (0..n)
        .map(|i| {
            if i % 1000 == 999 {
                indicator(i - 900)
            } else if i % 777 == 0 {
                let mut bad = indicator(i);
                bad["confidence"] = json!(101);
                bad
            } else {
                indicator(i)
            }
        })
        .collect();
    let text = serde_json::to_vec_pretty(&records).unwrap();
    assert!(text.len() > 12 * DECODE_SLICE_BYTES, "{} bytes", text.len());
    let mut expected: Vec<(u64, Code)> = Vec::new();
    for i in 0..n {
        if i % 1000 == 999 {
            expected.push((u64::from(i - 900), Code::Duplicate));
        } else if i % 777 == 0 {
            expected.push((u64::from(i), Code::ConfidenceOutOfRange));
        }
    }
    expected.sort_by_key(|e| e.0);

    let mut ctx = ctx(1 << 30, 1 << 20);
    let out = run_infallible(once(text.clone()), &ctx).await;
    out.report.check_invariants().unwrap();
    let got: Vec<(u64, Code)> = out
        .report
        .errors
        .iter()
        .map(|e| (e.record_index, e.code))
        .collect();
    assert_eq!(got, expected);
    let s = &out.report.summary;
    assert_eq!(s.records, u64::from(n));
    assert_eq!(s.uploaded, u64::from(n) - expected.len() as u64);
    let dup = &out.report.errors[1];
    assert_eq!((dup.record_index, dup.code), (99, Code::Duplicate));
    assert!(dup.messages[0].contains("record 999"), "{:?}", dup.messages);
    assert_eq!(out.next_start, None);

    ctx.range = 5_000..7_000;
    let out = run_infallible(once(text), &ctx).await;
    out.report.check_invariants().unwrap();
    assert_eq!(out.report.summary.records, 2_000);
    assert_eq!(out.next_start, Some(7_000));
    assert!(out
        .report
        .errors
        .iter()
        .all(|e| (5_000..7_000).contains(&e.record_index)));
}

/// Reading runs ahead of processing; what it meets past the record where the soft deadline
/// stops the run (a read error, the end of the input) must not change the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_reading_ahead_meets_after_a_deadline_stop_is_not_reported() {
    let records: Vec<Value> = (0..200).map(indicator).collect();
    // A bundle: its format is known only at its end (it could still be another container).
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--6f1b5b7e-0000-4000-8000-000000000000",
        "objects": records,
    });
    let text = serde_json::to_vec(&bundle).unwrap();
    let chunks = |fail: bool| {
        let mut chunks: Vec<Result<Bytes, String>> = text
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if fail {
            chunks[1] = Err("storage broke".to_string());
        }
        futures::stream::iter(chunks)
    };
    let mut ctx = ctx(1 << 30, 1 << 20);
    let fallback = Source {
        format: Some("fallback".into()),
        ..source()
    };

    // Without a deadline the read error ends the run.
    let err = run(chunks(true), source(), &ctx).await.err();
    assert_eq!(err.as_deref(), Some("storage broke"));

    // With the deadline already past, only the first record is started: the run stops
    // there, whatever reading ahead met after it.
    ctx.soft_deadline = Some(Instant::now());
    let out = run(chunks(true), fallback.clone(), &ctx).await.unwrap();
    assert_eq!(out.next_start, Some(1));
    assert_eq!(out.report.summary.records, 1);
    let out = run(chunks(false), fallback.clone(), &ctx).await.unwrap();
    assert_eq!(out.next_start, Some(1));
    assert_eq!(out.report.source.format.as_deref(), Some("fallback"));
    // A run that reaches the end reports the detected format.
    ctx.soft_deadline = None;
    let out = run(chunks(false), fallback, &ctx).await.unwrap();
    assert_eq!(out.next_start, None);
    assert_eq!(out.report.source.format.as_deref(), Some("stix-bundle"));
    assert_eq!(out.report.summary.uploaded, 200);
}

#[tokio::test]
async fn a_broken_frame_keeps_what_was_read_before_it() {
    let text = format!("[{},\n{},\n{{\"type\": ", indicator(1), indicator(2));
    let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
    assert_eq!(out.report.summary.records, 2);
    assert_eq!(out.report.summary.uploaded, 2);
    let e = out.report.input_error.unwrap();
    assert_eq!(e.code, InputErrorCode::InputInvalid.as_str());
    assert!(e.message.contains("2 record(s)"), "{}", e.message);
}

/// A run that holds `max_held_bytes` of report entries and rejected texts starts no further
/// record: it says where to continue (a work item), or, for an input that cannot continue
/// (HTTP, a queue message), ends as `input_too_large` with the records before counted.
#[tokio::test]
async fn a_run_holding_too_many_rejections_stops_where_a_later_item_continues() {
    let lines: String = (0..500)
        .map(|i| format!("not-an-observable-{i}\n"))
        .collect();
    let mut ctx = ctx(1 << 20, 1 << 20);
    ctx.max_held_bytes = Some(20_000);
    let out = run_chunks(&lines, &ctx).await;
    out.report.check_invariants().unwrap();
    let stop = out.next_start.expect("stopped early");
    assert!((20..500).contains(&stop), "{stop}");
    assert_eq!(out.report.summary.rejected, stop);
    assert_eq!(out.rejected.len() as u64, stop);
    // The next range starts there and takes the rest.
    ctx.range = stop..u64::MAX;
    ctx.max_held_bytes = None;
    let rest = run_chunks(&lines, &ctx).await;
    assert_eq!(rest.report.summary.rejected, 500 - stop);
    assert_eq!(rest.report.errors[0].record_index, stop);
    // Cut short with nowhere to continue: input_too_large, the first records reported.
    let cut = out.cut_short_is_too_large();
    assert_eq!(cut.next_start, None);
    let e = cut.report.input_error.unwrap();
    assert_eq!(e.code, InputErrorCode::InputTooLarge.as_str());
    assert!(e.message.starts_with(&format!("the input's rejected records and warnings outgrow what one invocation may hold: the first {stop} records are reported")), "{}", e.message);
}

#[tokio::test]
async fn records_over_the_size_bound_are_reported_and_the_rest_continue() {
    let mut big = indicator(2);
    big["description"] = json!("x".repeat(5000));
    let text = serde_json::to_string(&vec![indicator(1), big, indicator(3)]).unwrap();
    let out = run_chunks(&text, &ctx(1 << 20, 2048)).await;
    out.report.check_invariants().unwrap();
    assert_eq!(out.report.summary.uploaded, 2);
    assert_eq!(out.report.errors[0].record_index, 1);
    assert_eq!(out.report.errors[0].code, Code::RecordTooLarge);
    assert!(out.rejected.is_empty());
}

#[tokio::test]
async fn input_over_the_byte_bound_stops_with_an_input_error() {
    let text = serde_json::to_string(&(0..50).map(indicator).collect::<Vec<_>>()).unwrap();
    let out = run_chunks(&text, &ctx(2000, 1 << 20)).await;
    assert_eq!(
        out.report.input_error.as_ref().unwrap().code,
        InputErrorCode::InputTooLarge.as_str()
    );
    assert!(out.report.summary.records < 50);
    out.report.check_invariants().unwrap();
}

#[tokio::test]
async fn rejected_records_keep_their_original_text_one_per_line() {
    let mut bad = indicator(2);
    bad["confidence"] = json!(101);
    let text = format!(
        "[\n{},\n{},\n  not json at all ,\n{}\n]",
        indicator(1),
        serde_json::to_string_pretty(&bad).unwrap(),
        indicator(3)
    );
    let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
    // `not` is read as a record (and fails to parse); ` json` then breaks the frame: the
    // records before that point count, the rest is not read.
    assert_eq!(out.report.summary.records, 3, "{:?}", out.report);
    assert_eq!(out.report.summary.uploaded, 1);
    assert_eq!(
        out.report.input_error.as_ref().unwrap().code,
        InputErrorCode::InputInvalid.as_str()
    );
    let ndjson = out.rejected_ndjson();
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap(), bad);
    assert_eq!(lines[1], "not");
    assert_eq!(out.report.errors[1].code, Code::JsonInvalid);
    let e = &out.report.errors[0];
    assert_eq!(
        (e.record_index, e.line, e.code),
        (1, Some(3), Code::ConfidenceOutOfRange)
    );
}

/// A CSV input's rejected rows follow its header row, so the rejected file can be fixed and
/// dropped back, and is read as the same CSV records.
#[tokio::test]
async fn rejected_csv_rows_come_after_the_header_and_read_back_as_csv() {
    let text = "Type,Value,Description\r\nipv4,198.51.100.7,fine\r\nfax,+1 555 0100,\"unknown, \"\"type\"\"\"\r\ndomain,example.com,fine\r\nipv4,999.1.1.1,bad address\r\n";
    let ctx = ctx(1 << 20, 1 << 20);
    let out = run_chunks(text, &ctx).await;
    assert_eq!(out.report.source.format.as_deref(), Some("csv"));
    assert_eq!(
        (out.report.summary.uploaded, out.report.summary.rejected),
        (2, 2)
    );
    let file = out.rejected_ndjson();
    assert_eq!(
        file,
        "Type,Value,Description\nfax,+1 555 0100,\"unknown, \"\"type\"\"\"\nipv4,999.1.1.1,bad address\n"
    );
    let again = run_chunks(&file, &ctx).await;
    assert_eq!(again.report.source.format.as_deref(), Some("csv"));
    let codes = |o: &RunOutcome| o.report.errors.iter().map(|e| e.code).collect::<Vec<_>>();
    assert_eq!(codes(&again), codes(&out));
    // Nothing rejected: no header either.
    let fine = run_chunks("type,value\nipv4,198.51.100.7\n", &ctx).await;
    assert_eq!(fine.rejected_ndjson(), "");
}

/// A genuine file from `../shared/realworld/` (README there), read in place.
fn realworld(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/realworld")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn with_env(pairs: &[(&str, &str)]) -> RunContext {
    let mut all = vec![("TI_TARGET", "dry-run")];
    all.extend_from_slice(pairs);
    let settings = UploadSettings::from_env(&Env::from_pairs(all)).unwrap();
    RunContext::new(Uploader::new(settings, None).unwrap())
}

fn count(out: &RunOutcome, code: Code) -> (usize, usize) {
    (
        out.report
            .warnings
            .iter()
            .filter(|w| w.code == code)
            .count(),
        out.report.errors.iter().filter(|e| e.code == code).count(),
    )
}

/// ATT&CK for ICS 18.1: every one of its 1,373 relationships has an end of a type Sentinel
/// does not accept (malware, intrusion-set, x-mitre-*...): a warning each by default, a
/// rejection each with `TI_DANGLING_RELATIONSHIPS=skip`.
#[tokio::test]
async fn relationships_to_objects_the_target_will_not_hold_are_flagged_or_skipped() {
    let file = realworld("mitre-ics-attack-18.1.stix21.json");
    let out = run_infallible(once(file.clone()), &with_env(&[])).await;
    out.report.check_invariants().unwrap();
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (1826, 1469, 357));
    assert_eq!(count(&out, Code::UnsupportedType), (0, 357));
    assert_eq!(count(&out, Code::DanglingRelationship), (1373, 0));
    let w = out
        .report
        .warnings
        .iter()
        .find(|w| w.code == Code::DanglingRelationship)
        .unwrap();
    assert!(w.id.as_deref().unwrap().starts_with("relationship--"));
    assert!(
        w.messages[0].contains("a type the target does not accept"),
        "{:?}",
        w.messages
    );

    let skip = with_env(&[("TI_DANGLING_RELATIONSHIPS", "skip")]);
    let out = run_infallible(once(file.clone()), &skip).await;
    out.report.check_invariants().unwrap();
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (1826, 96, 1730));
    assert_eq!(count(&out, Code::DanglingRelationship), (0, 1373));
    // Rejected relationships are kept to fix and re-drop, like any rejected record.
    assert_eq!(out.rejected.len(), 1730);

    // validate-only applies the same rule.
    let mut validate = skip;
    validate.validate_only = true;
    let out = run_infallible(once(file), &validate).await;
    assert_eq!(count(&out, Code::DanglingRelationship), (0, 1373));
}

/// Ends refused earlier in the same input count as missing too; ends the target accepts and
/// did not refuse do not; a relationship before the refusal is not flagged (the pipeline
/// streams, README).
#[tokio::test]
async fn a_relationship_to_an_object_refused_earlier_in_the_input_is_dangling() {
    let rel = |i: u32, src: &str, dst: &str| {
        json!({
            "type": "relationship", "spec_version": "2.1",
            "id": format!("relationship--6f1b5b7e-0000-4000-8000-{i:012x}"),
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "relationship_type": "indicates", "source_ref": src, "target_ref": dst
        })
    };
    let actor = "threat-actor--9a8a0d25-7636-429b-a99e-b2a73cd0f11f";
    let good = indicator(1);
    let mut bad = indicator(2);
    bad["confidence"] = json!(101);
    let (good_id, bad_id) = (
        good["id"].as_str().unwrap().to_string(),
        bad["id"].as_str().unwrap().to_string(),
    );
    let records = vec![
        rel(1, &bad_id, actor), // before the refusal: not known yet
        good,
        bad,
        rel(2, &good_id, actor),
        rel(3, &bad_id, actor),
        rel(4, actor, "malware--0a8a0d25-7636-429b-a99e-b2a73cd0f11f"),
    ];
    let text = serde_json::to_string(&records).unwrap();
    let out = run_chunks(&text, &with_env(&[])).await;
    let flagged: Vec<(u64, &str)> = out
        .report
        .warnings
        .iter()
        .filter(|w| w.code == Code::DanglingRelationship)
        .map(|w| (w.record_index, w.messages[0].as_str()))
        .collect();
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    assert_eq!(flagged[0].0, 4);
    assert_eq!(
        flagged[0].1,
        format!("source_ref {bad_id} was refused (record 2 of this input): the relationship points at an object the target will not hold")
    );
    assert_eq!(flagged[1].0, 5);
    assert!(flagged[1].1.starts_with("target_ref malware--0a8a0d25-7636-429b-a99e-b2a73cd0f11f is a 'malware', a type the target does not accept"), "{}", flagged[1].1);
    assert_eq!(out.report.summary.uploaded, 5);

    // Targets that take no relationships refuse them whole: no dangling warning on top.
    let out = run_chunks(
        &text,
        &with_env(&[("TI_DRY_RUN_AS", "sentinel-indicators")]),
    )
    .await;
    assert_eq!(count(&out, Code::DanglingRelationship), (0, 0));
}

/// ATT&CK for ICS as STIX 2.0: one upgrade warning for the whole input, not one per object.
#[tokio::test]
async fn a_stix_2_0_input_is_upgraded_with_one_warning() {
    let out = run_infallible(
        once(realworld("mitre-cti-ics-attack.stix20.json")),
        &with_env(&[]),
    )
    .await;
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (1825, 1469, 356));
    let upgrades: Vec<&RecordWarning> = out
        .report
        .warnings
        .iter()
        .filter(|w| w.messages.iter().any(|m| m.contains("STIX 2.0")))
        .collect();
    assert_eq!(upgrades.len(), 1, "{upgrades:#?}");
    assert_eq!(upgrades[0].code, Code::Normalised);
    assert!(
        upgrades[0].messages[0]
            .starts_with("the input holds STIX 2.0: 1469 object(s) were upgraded"),
        "{:?}",
        upgrades[0].messages
    );
    // Every object was 2.0: nothing else was normalised.
    assert_eq!(count(&out, Code::Normalised), (1, 0));
}

/// A MISP STIX 2.0 export: its indicators' 2.0 `labels` are carried to `indicator_types`.
#[tokio::test]
async fn stix_2_0_indicator_labels_become_indicator_types() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = with_env(&[("TI_DRY_RUN_DIR", dir.path().to_str().unwrap())]);
    let out = run_infallible(once(realworld("talos-uat-7810.misp-stix20.json")), &ctx).await;
    assert_eq!(out.report.summary.uploaded, 91);
    let mut indicators = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let body: Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for o in body["stixobjects"].as_array().unwrap() {
            if o["type"] == "indicator" {
                indicators.push(o.clone());
            }
        }
    }
    assert_eq!(indicators.len(), 90);
    for o in &indicators {
        assert_eq!(o["spec_version"], "2.1");
        assert_eq!(o["pattern_type"], "stix");
        assert_eq!(o["indicator_types"], o["labels"], "{o}");
    }
    assert!(indicators
        .iter()
        .any(|o| o["indicator_types"][0] == "misp:type=\"sha256\""));
}

#[tokio::test]
async fn a_rejected_json_record_keeps_its_key_order_and_spelling() {
    // Keys out of alphabetical order, `2.50`, an escaped slash and double spaces in a string,
    // pretty-printed over several lines: only the whitespace between tokens may go.
    let bad = r#"{
  "type": "indicator",
  "spec_version": "2.1",
  "id": "indicator--6f1b5b7e-0000-4000-8000-000000000009",
  "created": "2026-01-01T00:00:00Z",
  "modified": "2026-01-01T00:00:00Z",
  "pattern": "[url:value = 'http://a.example/x']",
  "pattern_type": "stix",
  "valid_from": "2026-01-01T00:00:00Z",
  "confidence": 101,
  "description": "a\/b  two  spaces",
  "x_z": [1, 2.50]
}"#;
    let one_line = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--6f1b5b7e-0000-4000-8000-000000000009","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","pattern":"[url:value = 'http://a.example/x']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","confidence":101,"description":"a\/b  two  spaces","x_z":[1,2.50]}"#;
    let text = format!("[{},\n{bad}]", indicator(1));
    let out = run_chunks(&text, &ctx(1 << 20, 1 << 20)).await;
    assert_eq!(out.report.errors[0].code, Code::ConfidenceOutOfRange);
    assert_eq!(out.rejected_ndjson(), format!("{one_line}\n"));
    // A one-line record is kept byte for byte, spaces included.
    let spaced = one_line.replace("\"confidence\":101", "\"confidence\" : 101");
    let out = run_chunks(&format!("[{spaced}]"), &ctx(1 << 20, 1 << 20)).await;
    assert_eq!(out.rejected_ndjson(), format!("{spaced}\n"));
}

/// Graph holds at most 100 characters of description: the cut is a warning on its record,
/// in validate-only and real runs alike.
#[tokio::test]
async fn a_description_cut_to_fit_graph_is_a_warning_on_its_record() {
    let mut long = indicator(1);
    long["description"] = json!("é".repeat(150));
    long["valid_until"] = json!("2099-01-01T00:00:00Z");
    let mut short = indicator(2);
    short["description"] = json!("fine");
    short["valid_until"] = json!("2099-01-01T00:00:00Z");
    let text = serde_json::to_string(&vec![long, short]).unwrap();
    for validate_only in [false, true] {
        let mut ctx = with_env(&[("TI_DRY_RUN_AS", "graph")]);
        ctx.validate_only = validate_only;
        let out = run_chunks(&text, &ctx).await;
        assert_eq!(out.report.summary.uploaded, 2, "{:?}", out.report);
        let w: Vec<(u64, Code, &str)> = out
            .report
            .warnings
            .iter()
            .map(|w| (w.record_index, w.code, w.messages[0].as_str()))
            .collect();
        assert_eq!(
            w,
            [(
                0,
                Code::ValueShortened,
                "graph: description cut from 150 to 100 characters, Graph's limit"
            )]
        );
    }
    // sentinel-stix keeps the description whole: no warning.
    let out = run_chunks(&text, &with_env(&[])).await;
    assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);
}

/// The records of `texts` handed to `run_records` in batches of `batch`: record `i` has index
/// `i` and the line it has in `[` + the texts joined with `,\n` + `]` (`i + 1` when each text
/// is one line).
fn batches_of(texts: &[String], batch: usize) -> impl Stream<Item = Vec<RawRecord>> + Unpin {
    let mut line = 1;
    let records: Vec<RawRecord> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let r = RawRecord {
                index: i as u64,
                line,
                text: text.clone(),
            };
            line += 1 + text.matches('\n').count() as u64;
            r
        })
        .collect();
    let batches: Vec<Vec<RawRecord>> = records.chunks(batch).map(<[_]>::to_vec).collect();
    futures::stream::iter(batches)
}

/// The same texts through both entries: as bytes (a JSON array, `[` + the texts joined with
/// `,\n` + `]`) and as records handed over in batches of `batch` ([`batches_of`]). Their outcomes
/// must agree but for the report's times.
async fn through_both_entries(texts: &[String], batch: usize, ctx: &RunContext) -> RunOutcome {
    let ctx = RunContext {
        format: Some(InputFormat::StixJson),
        ..ctx.clone()
    };
    let array = format!("[{}]", texts.join(",\n"));
    let bytes = run_infallible(once(array.into_bytes()), &ctx).await;
    let records = run_records(batches_of(texts, batch), source(), &ctx).await;
    let timeless = |o: &RunOutcome| {
        let mut r = serde_json::to_value(&o.report).unwrap();
        let r = r.as_object_mut().unwrap();
        assert!(r.remove("startedAt").is_some() && r.remove("finishedAt").is_some());
        (
            Value::Object(r.clone()),
            o.rejected.clone(),
            o.next_start,
            o.csv_header.clone(),
        )
    };
    assert_eq!(timeless(&records), timeless(&bytes));
    records.report.check_invariants().unwrap();
    records
}

/// Each object of a bundle file, on one line.
fn objects_of(file: &str) -> Vec<String> {
    let bundle: Value = serde_json::from_slice(&realworld(file)).unwrap();
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_handed_over_get_the_report_their_text_gets_as_bytes() {
    let mut renamed = indicator(1);
    renamed["name"] = json!("newer");
    let mut bad = indicator(4);
    bad["confidence"] = json!(101);
    let mut texts: Vec<String> = vec![
        indicator(1).to_string(),
        serde_json::to_string_pretty(&indicator(2)).unwrap(),
        renamed.to_string(),
        r#"{"type": "indicator", "id": tru}"#.to_string(),
        bad.to_string(),
        format!(r#"{{"x": {}{}}}"#, "[".repeat(70), "]".repeat(70)),
        format!(r#"{{"x": "{}"}}"#, "a".repeat(2_000)),
        "5".to_string(),
    ];
    texts.extend((10..40).map(|i| indicator(i).to_string()));
    texts.push(indicator(2).to_string());
    let mut ctx = ctx(1 << 20, 1_000);
    let mut settings = ctx.uploader.settings().clone();
    settings.batch_size = 4;
    ctx.uploader = Uploader::new(settings, None).unwrap();
    for batch in [1, 3, 100] {
        let out = through_both_entries(&texts, batch, &ctx).await;
        let codes: Vec<(u64, Code)> = out
            .report
            .errors
            .iter()
            .map(|e| (e.record_index, e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (0, Code::Duplicate),
                (1, Code::Duplicate),
                (3, Code::JsonInvalid),
                (4, Code::ConfidenceOutOfRange),
                (5, Code::RecordTooDeep),
                (6, Code::RecordTooLarge),
                (7, Code::NotAnObject),
            ]
        );
        assert_eq!(out.report.errors[1].line, Some(2));
        assert_eq!(out.report.source.format.as_deref(), Some("stix-json"));
        // The rejected records' texts are the ones handed over; not kept: the one over the
        // size bound, and record 1, uploaded before record 38 repeated its id.
        let kept: Vec<u64> = out.rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(kept, vec![0, 3, 4, 5, 7]);
        assert_eq!(out.rejected[1].1, texts[3]);
    }

    // A record range: the same records processed, the same place to continue.
    ctx.range = 2..9;
    let out = through_both_entries(&texts, 3, &ctx).await;
    assert_eq!(out.report.summary.records, 7);
    assert_eq!(out.next_start, Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_bundles_handed_over_as_records_get_the_same_report() {
    // STIX 2.1 with relationships to objects the target refuses, in pieces checked side by
    // side; STIX 2.0, upgraded with one warning.
    let skip = with_env(&[("TI_DANGLING_RELATIONSHIPS", "skip")]);
    let texts = objects_of("mitre-ics-attack-18.1.stix21.json");
    assert_eq!(texts.len(), 1826);
    let out = through_both_entries(&texts, 500, &skip).await;
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (1826, 96, 1730));
    let texts = objects_of("mitre-cti-ics-attack.stix20.json");
    let out = through_both_entries(&texts, 64, &with_env(&[])).await;
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (1825, 1469, 356));
    assert_eq!(count(&out, Code::Normalised), (1, 0));
}

#[tokio::test]
async fn handed_records_are_filled_before_validation_and_keep_their_text() {
    let mut no_confidence = indicator(1);
    no_confidence["confidence"] = json!(101);
    let mut broken = indicator(2);
    broken["pattern"] = json!("not a pattern");
    let texts = vec![no_confidence.to_string(), broken.to_string()];
    let mut ctx = ctx(1 << 20, 1 << 20);
    ctx.fill = Some(Fill(Arc::new(|o: &mut Map<String, Value>| {
        o.insert("confidence".into(), json!(70));
    })));
    let out = run_records(batches_of(&texts, 1), source(), &ctx).await;
    out.report.check_invariants().unwrap();
    let s = out.report.summary;
    assert_eq!((s.records, s.uploaded, s.rejected), (2, 1, 1));
    assert_eq!(out.report.errors[0].record_index, 1);
    assert_eq!(out.rejected, vec![(1, texts[1].clone())]);
}

#[tokio::test]
async fn handed_records_over_the_byte_bound_stop_with_an_input_error() {
    let texts: Vec<String> = (0..10).map(|i| indicator(i).to_string()).collect();
    let one = texts[0].len() as u64;
    let ctx = ctx(one * 5 / 2, 1 << 20);
    // Batches of two: the second batch goes over the bound and is not read.
    let out = run_records(batches_of(&texts, 2), source(), &ctx).await;
    out.report.check_invariants().unwrap();
    assert_eq!(out.report.summary.records, 2);
    let e = out.report.input_error.as_ref().unwrap();
    assert_eq!(
        e.code,
        InputErrorCode::InputTooLarge.as_str(),
        "{}",
        e.message
    );
}
