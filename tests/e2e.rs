//! End to end on real components: Azurite over HTTPS with OAuth, the managed-identity endpoint,
//! the Sentinel simulator, and the handler driven exactly as the Functions host drives it: the
//! real `ti-ingest serve` process where the test looks at the process (its own identity
//! endpoint's log, its output), else the same app built in-process (`common::spawn_app`).

mod common;

use std::time::Duration;

use devkit::host::{blob_created_event, event_grid_message, MessageEncoding};
use devkit::stack::{INBOX_QUEUE, REPORTS_CONTAINER};
use devkit::{Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};

const HANDLER: &str = env!("CARGO_BIN_EXE_ti-ingest");

/// The handler's last-attempt rule (it reports leftovers when `DequeueCount` reaches its count)
/// and the host's poison rule must use the same number: host.json's `maxDequeueCount`, which
/// the test host driver reads.
#[test]
fn the_handlers_last_attempt_is_host_jsons_max_dequeue_count() {
    assert_eq!(
        ti_ingest::functions::MAX_DEQUEUE_COUNT,
        devkit::host::QueueSettings::from_repo()
            .unwrap()
            .max_dequeue_count
    );
}

fn ids(report: &Value) -> Vec<u64> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordIndex"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_bundle_becomes_uploaded_indicators_a_report_and_rejected_records() {
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let invalid: Vec<usize> = vec![0, 7, 31, 64, 99, 100, 150, 201, 248, 249];
    let objects = common::corpus(250, &invalid);
    let name = "feeds/2026-11/bundle 250.json";
    let delivery = stack
        .ingest_blob(handler.driver(), name, common::bundle(&objects))
        .await
        .unwrap();
    assert_eq!(delivery.attempts, 1, "{:?}", delivery.responses);
    assert_eq!(delivery.final_status, 200);
    let answer = &delivery.responses[0].body;
    assert_eq!(answer["ReturnValue"]["uploaded"], 240, "{answer}");
    assert!(answer["Logs"][0].as_str().unwrap().contains("240 uploaded"));

    // The simulator holds exactly the 240 valid indicators.
    let expected: std::collections::BTreeSet<String> = (0..250)
        .filter(|i| !invalid.contains(i))
        .map(|i| format!("indicator--{}", common::uuid_for(i)))
        .collect();
    assert_eq!(stack.sim().accepted_ids(), expected);
    // 240 valid records in batches of at most 100 (the API's limit): 100 + 100 + 40.
    let mut sizes: Vec<usize> = stack.sim().requests().iter().map(|r| r.objects).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![40, 100, 100]);

    // The report says 250/240/10 with the right indexes.
    let report = stack
        .report(name)
        .await
        .unwrap()
        .expect("the report exists");
    assert_eq!(
        report["summary"],
        json!({"records": 250, "uploaded": 240, "rejected": 10})
    );
    assert_eq!(report["source"]["kind"], "blob");
    assert_eq!(report["source"]["name"], format!("indicator-inbox/{name}"));
    assert_eq!(report["source"]["format"], "stix-bundle");
    assert_eq!(report["target"], "sentinel-stix");
    assert_eq!(
        ids(&report),
        invalid.iter().map(|i| *i as u64).collect::<Vec<_>>()
    );
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), invalid.len());
    for e in errors {
        assert_eq!(e["stage"], "validate");
        assert!(e["line"].as_u64().unwrap() > 1);
        assert!(!e["messages"][0].as_str().unwrap().is_empty());
    }

    // rejected.ndjson holds the 10 original records.
    let rejected = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await
        .unwrap();
    let rejected: Vec<Value> = String::from_utf8(rejected)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let originals: Vec<Value> = invalid.iter().map(|i| objects[*i].clone()).collect();
    assert_eq!(rejected, originals);

    // Beside them, the page a person reads, served as HTML: its counts are the report's, and it
    // shows the first rejected record as rejected.ndjson holds it (one line; quotes escaped).
    let (page, content_type) = stack
        .storage()
        .read_blob_typed(REPORTS_CONTAINER, &format!("{name}.report.html"))
        .await
        .unwrap()
        .expect("the report page exists");
    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains(
        "<p id=\"outcome\" class=\"outcome\">240 of 250 uploaded; 10 rejected; nothing to retry.</p>"
    ));
    assert!(page.contains(&format!(
        "<code>indicator-reports/{name}.report.json</code>"
    )));
    assert_eq!(page.matches("<li class=\"entry\"").count(), 10);
    assert!(
        page.contains("&quot;id&quot;:&quot;indicator--6f1b5b7e-0000-4000-8000-000000000000&quot;")
    );

    // The handler asked for tokens for both audiences, as its user-assigned identity.
    let requests = stack.identity().requests();
    assert!(requests
        .iter()
        .any(|r| r.resource.as_deref() == Some("https://storage.azure.com")));
    assert!(requests
        .iter()
        .any(|r| r.resource.as_deref() == Some("https://management.azure.com")));
    assert!(requests
        .iter()
        .all(|r| r.client_id.as_deref() == Some(devkit::stack::DEFAULT_CLIENT_ID)));
    // Tokens are cached: a second file needs no new token.
    let before = requests.len();
    stack
        .ingest_blob(
            handler.driver(),
            "second.json",
            common::bundle(&common::corpus(3, &[])),
        )
        .await
        .unwrap();
    assert_eq!(
        stack.identity().requests().len(),
        before,
        "tokens were not cached"
    );
    // And no token ever reaches the logs.
    let output = handler.output();
    assert!(
        !output.contains("eyJ"),
        "a JWT appeared in the handler output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_protocol_cases_through_the_real_handler() {
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();

    // Inline indicators on IngestMessage: plain JSON and base64, DequeueCount as a string.
    let msg = serde_json::to_string(&common::corpus(3, &[1])).unwrap();
    for (encoding, n) in [(MessageEncoding::Plain, 1), (MessageEncoding::Base64, 2)] {
        let rsp = driver
            .invoke_queue("IngestMessage", "message", &encoding.encode(&msg), n)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text);
        assert_eq!(rsp.body["ReturnValue"]["records"], 3, "{}", rsp.text);
        assert_eq!(rsp.body["ReturnValue"]["uploaded"], 2);
        assert_eq!(rsp.body["ReturnValue"]["rejected"], 1);
    }
    assert_eq!(stack.sim().accepted_ids().len(), 2);
    let reports = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("messages/"))
        .await
        .unwrap();
    let json_reports: Vec<&String> = reports
        .iter()
        .filter(|n| n.ends_with(".report.json"))
        .collect();
    assert_eq!(json_reports.len(), 2, "{reports:?}");
    // Each message report has its page beside it.
    for r in json_reports {
        let page = r.replace(".report.json", ".report.html");
        assert!(reports.contains(&page), "{page} missing: {reports:?}");
    }
    // Each message had one rejected record: a rejected file beside each report.
    assert_eq!(
        reports
            .iter()
            .filter(|n| n.ends_with(".rejected.ndjson"))
            .count(),
        2,
        "{reports:?}"
    );
    assert_eq!(reports.len(), 6, "{reports:?}");

    // A hand-built envelope exactly as captured from the host, DequeueCount "1".
    let body = json!({
        "Data": {"message": serde_json::to_string(&common::indicator(500).to_string()).unwrap()},
        "Metadata": {
            "DequeueCount": "1",
            "Id": "\"52d53c5f-e212-487e-998b-abbe3b9d51e4\"",
            "PopReceipt": "\"MThGZWIyMDI1MDM6MDY6MjA3NjM1\"",
            "sys": {"MethodName": "IngestMessage", "UtcNow": "2025-02-18T03:06:20.7562691Z", "RandGuid": "e59556b5-0000-0000-0000-000000000000"}
        }
    });
    let rsp = driver.invoke("IngestMessage", &body).await.unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    assert_eq!(rsp.body["ReturnValue"]["uploaded"], 1);
    let today = time::OffsetDateTime::now_utc();
    let path = format!(
        "messages/{:04}/{:02}/{:02}/52d53c5f-e212-487e-998b-abbe3b9d51e4.report.json",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert!(stack
        .storage()
        .try_read_blob(REPORTS_CONTAINER, &path)
        .await
        .unwrap()
        .is_some());

    // Malformed envelopes are answered (and acknowledged with a report), never crash the handler.
    for bad in [
        json!("not an envelope"),
        json!({"Data": 5}),
        json!({"Data": {"message": null}}),
    ] {
        let rsp = driver.invoke("IngestBlobEvent", &bad).await.unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text);
        assert_eq!(
            rsp.body["ReturnValue"]["inputError"], "envelope_invalid",
            "{}",
            rsp.text
        );
    }
    let rsp = driver
        .invoke_queue("IngestBlobEvent", "message", "definitely not an event", 1)
        .await
        .unwrap();
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.body["ReturnValue"]["inputError"], "event_invalid");

    // A BlobCreated event for a blob outside our account is refused (no SSRF), acknowledged.
    let foreign = blob_created_event(
        "https://evil.example.com/devstoreaccount1",
        "indicator-inbox",
        "x.json",
        10,
    );
    let rsp = driver
        .invoke_queue(
            "IngestBlobEvent",
            "message",
            &event_grid_message(&foreign),
            1,
        )
        .await
        .unwrap();
    assert_eq!(rsp.status, 200);
    assert_eq!(
        rsp.body["ReturnValue"]["inputError"], "event_invalid",
        "{}",
        rsp.text
    );

    // A BlobCreated event for a blob deleted since: reported, acknowledged.
    let gone = blob_created_event(&stack.blob_url(), "indicator-inbox", "gone.json", 10);
    let rsp = driver
        .invoke_queue("IngestBlobEvent", "message", &event_grid_message(&gone), 1)
        .await
        .unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    let report = stack.report("gone.json").await.unwrap().unwrap();
    assert_eq!(report["inputError"]["code"], "blob_not_found");

    // A blob reference message on IngestMessage reads the inbox blob through the SDK.
    stack
        .upload_inbox("by-reference.json", common::bundle(&common::corpus(4, &[])))
        .await
        .unwrap();
    let reference =
        json!({"container": "indicator-inbox", "blob": "by-reference.json"}).to_string();
    let rsp = driver
        .invoke_queue("IngestMessage", "message", &reference, 1)
        .await
        .unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    assert_eq!(rsp.body["ReturnValue"]["uploaded"], 4, "{}", rsp.text);
    let sneaky = json!({"container": "indicator-reports", "blob": "x.report.json"}).to_string();
    let rsp = driver
        .invoke_queue("IngestMessage", "message", &sneaky, 1)
        .await
        .unwrap();
    assert_eq!(
        rsp.body["ReturnValue"]["inputError"],
        "blob_reference_invalid"
    );

    // The handler survived all of it.
    driver.wait_ready(Duration::from_secs(5)).await.unwrap();
    let _ = INBOX_QUEUE;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_make_the_host_retry_and_the_last_attempt_reports() {
    let stack = Stack::for_test(StackConfig::with(
        SimConfig {
            fault_5xx_share: 1.0,
            ..Default::default()
        },
        &[("TI_MAX_ATTEMPTS", "2"), ("TI_MAX_RETRY_SECS", "10")],
    ))
    .await;
    let handler = common::spawn_app(&stack, &[]).await;
    let mut driver = handler.driver().clone();
    // Retried after 10 ms instead of host.json's 30 s: what is tested is the attempts and the
    // last one's report, not the delay between them.
    driver.queues.visibility_timeout = Duration::from_millis(10);
    let name = "always-503.json";
    let delivery = stack
        .ingest_blob(&driver, name, common::bundle(&common::corpus(5, &[])))
        .await
        .unwrap();
    // Attempts 1-4 fail (the host retries), the fifth reports and acknowledges.
    assert_eq!(delivery.attempts, 5);
    assert_eq!(delivery.responses.len(), 5);
    assert!(delivery.responses[..4].iter().all(|r| r.status == 500));
    assert_eq!(delivery.final_status, 200);
    assert!(!delivery.poisoned);
    let report = stack.report(name).await.unwrap().unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": 5, "uploaded": 0, "rejected": 5})
    );
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5);
    for e in errors {
        assert_eq!(e["code"], "retries_exhausted");
        assert_eq!(e["stage"], "upload");
        assert!(
            e["messages"][0].as_str().unwrap().contains("HTTP 50"),
            "{e}"
        );
    }
    // Once the service recovers, re-dropping the file uploads everything.
    stack.sim().set_faults(0.0, 0.0);
    let delivery = stack
        .ingest_blob(&driver, name, common::bundle(&common::corpus(5, &[])))
        .await
        .unwrap();
    assert_eq!(delivery.attempts, 1);
    let report = stack.report(name).await.unwrap().unwrap();
    assert_eq!(report["summary"]["uploaded"], 5);
    // The stale rejected file from the failed run is emptied, not left behind.
    let rejected = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await
        .unwrap();
    assert!(rejected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_fail_the_batch_with_a_clear_report_entry() {
    let stack = Stack::start(StackConfig {
        sim: SimConfig {
            workspaces: vec!["00000000-0000-4000-8000-000000000001".into()],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let handler = common::spawn_app(&stack, &[]).await;
    let delivery = stack
        .ingest_blob(
            handler.driver(),
            "wrong-ws.json",
            common::bundle(&common::corpus(3, &[])),
        )
        .await
        .unwrap();
    // A permanent failure is reported, not retried by the host.
    assert_eq!(delivery.attempts, 1);
    let report = stack.report("wrong-ws.json").await.unwrap().unwrap();
    assert_eq!(report["summary"]["rejected"], 3);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    for e in errors {
        assert_eq!(e["code"], "workspace_not_found");
        assert!(e["messages"][0].as_str().unwrap().contains("404"));
    }
    assert_eq!(stack.sim().requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_uses_the_managed_identity_and_writes_the_report() {
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("feed.json");
    std::fs::write(&input, common::bundle(&common::corpus(120, &[5, 110]))).unwrap();
    let report_path = dir.path().join("feed.report.json");
    let env: Vec<(String, String)> = stack
        .handler_env()
        .into_iter()
        .filter(|(k, _)| k != "TI_WORKSPACE_ID")
        .collect();
    let out = tokio::process::Command::new(HANDLER)
        .arg("upload")
        .arg(&input)
        .args([
            "--target",
            "sentinel-stix",
            "--workspace-id",
            devkit::stack::DEFAULT_WORKSPACE_ID,
        ])
        .arg("--report")
        .arg(&report_path)
        .env_clear()
        .envs(env)
        .env("TI_LOG", "warn")
        .env("TI_CHECKPOINT_DIR", dir.path().join("checkpoints"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("120 records, 118 uploaded, 2 rejected"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": 120, "uploaded": 118, "rejected": 2})
    );
    assert_eq!(report["source"]["kind"], "file");
    assert_eq!(ids(&report), vec![5, 110]);
    assert_eq!(stack.sim().accepted_ids().len(), 118);
    // Two requests: 100 + 18 objects.
    let mut sizes: Vec<usize> = stack.sim().requests().iter().map(|r| r.objects).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![18, 100]);
    assert!(dir.path().join("feed.rejected.ndjson").exists());
    assert!(!stderr.contains("eyJ"), "a token reached the output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_works_in_the_blob_and_queue_paths() {
    use std::io::Write;
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/ti-core/tests/fixtures");

    // The Sentinel portal's CSV template, as downloaded (CRLF).
    let csv = std::fs::read(format!("{fixtures}/csv/portal-all-other-types.csv")).unwrap();
    stack.ingest_blob(driver, "portal.csv", csv).await.unwrap();
    let r = stack.report("portal.csv").await.unwrap().unwrap();
    assert_eq!(r["source"]["format"], "csv");
    assert!(r["summary"]["uploaded"].as_u64().unwrap() >= 3, "{r}");

    // A gzipped, defanged text list.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        b"# analyst notes\n203.0.113.9\nbad[.]example[.]net\nhxxps://phish.example.com/login\n",
    )
    .unwrap();
    stack
        .ingest_blob(driver, "notes.txt.gz", gz.finish().unwrap())
        .await
        .unwrap();
    let r = stack.report("notes.txt.gz").await.unwrap().unwrap();
    assert_eq!(r["source"]["format"], "text", "{r}");
    assert_eq!(
        r["summary"],
        json!({"records": 3, "uploaded": 3, "rejected": 0})
    );
    let patterns: Vec<String> = stack
        .sim()
        .accepted()
        .iter()
        .map(|o| o["pattern"].as_str().unwrap().to_string())
        .collect();
    assert!(
        patterns.contains(&"[domain-name:value = 'bad.example.net']".to_string()),
        "{patterns:?}"
    );
    assert!(patterns.contains(&"[url:value = 'https://phish.example.com/login']".to_string()));

    // The same text list dropped again yields the same ids: an update, not a duplicate.
    let before = stack.sim().accepted_ids();
    stack
        .ingest_blob(driver, "notes-again.txt", "203.0.113.9\nbad.example.net\n")
        .await
        .unwrap();
    assert_eq!(stack.sim().accepted_ids(), before);

    // Graph tiIndicators and NDJSON as queue messages.
    let graph = json!({"value": [{
        "action": "alert", "targetProduct": "Azure Sentinel", "threatType": "Botnet",
        "tlpLevel": "amber", "expirationDateTime": "2099-01-01T00:00:00Z",
        "networkIPv4": "198.51.100.77", "description": "c2", "confidence": 70
    }]})
    .to_string();
    let rsp = driver
        .invoke_queue("IngestMessage", "message", &graph, 1)
        .await
        .unwrap();
    assert_eq!(rsp.body["ReturnValue"]["uploaded"], 1, "{}", rsp.text);
    let ndjson = format!("{}\n{}\n", common::indicator(900), common::indicator(901));
    let rsp = driver
        .invoke_queue("IngestMessage", "message", &ndjson, 1)
        .await
        .unwrap();
    assert_eq!(rsp.body["ReturnValue"]["uploaded"], 2, "{}", rsp.text);
    let c2 = stack
        .sim()
        .accepted()
        .into_iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '198.51.100.77']")
        .expect("the Graph indicator was uploaded as STIX");
    assert_eq!(c2["indicator_types"], json!(["botnet"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_stopped_with_ctrl_c_resumes_where_it_stopped() {
    // 40 ms per request, one at a time: a range of 10,000 records takes ~4 s.
    let stack = Stack::for_test(StackConfig::with(
        SimConfig {
            requests_per_window: 10_000,
            window: Duration::from_secs(1),
            latency: Duration::from_millis(40),
            ..Default::default()
        },
        &[],
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.json");
    let n = 25_000;
    std::fs::write(&input, common::bundle(&common::corpus(n, &[17, 24_999]))).unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let report_path = dir.path().join("big.report.json");
    let command = || {
        let mut c = tokio::process::Command::new(HANDLER);
        c.arg("upload")
            .arg(&input)
            .arg("--report")
            .arg(&report_path)
            .env_clear()
            .envs(stack.handler_env())
            .env("TI_MAX_CONCURRENCY", "1")
            .env("TI_MAX_REQUESTS_PER_MINUTE", "100000")
            // Retry the service's 503s for as long as the test holds them (below).
            .env("TI_MAX_ATTEMPTS", "100")
            .env("TI_MAX_RETRY_SECS", "3600")
            .env("TI_CHECKPOINT_DIR", &checkpoints)
            .env("TI_LOG", "warn")
            .stderr(std::process::Stdio::piped());
        c
    };
    let accepted = |requests: &[sentinel_sim::RequestRecord]| -> usize {
        requests.iter().map(|q| q.accepted).sum()
    };
    let mut child = command().spawn().unwrap();
    // Once the first range's 9,999 valid records are accepted, the service answers nothing but
    // 503s: the second range cannot finish however slowly this test runs, so the stop lands in
    // it. (The simulator accepts a request before its latency, so this sees the last answer of
    // the range before the client does.)
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while accepted(&stack.sim().requests()) < 9_999 {
        assert_eq!(child.try_wait().unwrap(), None, "the upload ended early");
        assert!(
            std::time::Instant::now() < deadline,
            "the first range was not uploaded: {:?}",
            stack.sim().requests().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stack.sim().set_faults(0.0, 1.0);
    // Then the first range's checkpoint, and the client on the second range (a 503 answered).
    loop {
        let requests = stack.sim().requests();
        if walk_json(&checkpoints) > 0 && requests.last().is_some_and(|q| q.injected) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared: {} json files, {} requests",
            walk_json(&checkpoints),
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let stopped = stack.sim().requests();
    let uploaded_before = stack.sim().accepted_ids().len();
    assert_eq!(uploaded_before, accepted(&stopped));
    // The first range whole, the second not (how many of its batches got in before the 503s
    // began depends on scheduling; that the run resumes after the first range does not).
    assert!(
        (9_999..19_999).contains(&uploaded_before),
        "{uploaded_before}"
    );
    assert!(!report_path.exists());

    stack.sim().set_faults(0.0, 0.0);
    let out = command().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("resuming after record 10000"), "{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": n, "uploaded": n - 2, "rejected": 2})
    );
    assert_eq!(ids(&report), vec![17, 24_999]);
    assert_eq!(stack.sim().accepted_ids().len(), n - 2);
    // The resumed run sent records 10,000.. once each (24,999 is invalid), nothing of the first
    // range, and every request was accepted whole.
    let resumed = &stack.sim().requests()[stopped.len()..];
    let sent: usize = resumed.iter().map(|r| r.objects).sum();
    assert_eq!(sent, n - 10_000 - 1, "{sent} objects sent");
    assert!(resumed
        .iter()
        .all(|q| q.status == 200 && q.accepted == q.objects));
    assert_eq!(
        walk_json(&checkpoints),
        0,
        "checkpoints are removed once complete"
    );
}

fn walk_json(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_json(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "json"))
            }
        })
        .sum()
}

/// Issue 12 (4): the host base64-encodes only `application/octet-stream` and multipart bodies;
/// anything else arrives as text and is read as text. A gzip body labelled `application/gzip`
/// reaches the handler as (lossy) text: the caller gets a 400 report about its content, never a
/// 500 `envelope_invalid`; the same bytes as `application/octet-stream` are ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_content_types_the_host_base64_encodes_are_decoded() {
    use devkit::host::HttpTriggerRequest;
    use std::io::Write;
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"203.0.113.9\nbad.example.net\n").unwrap();
    let gz = gz.finish().unwrap();

    let as_gzip = HttpTriggerRequest::post("indicators", "application/gzip", gz.clone());
    let rsp = driver.invoke_http("Ingest", "req", &as_gzip).await.unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    let out = rsp.http_output("res").unwrap();
    assert_eq!(out.status, 400, "{:?}", out.body);
    assert_ne!(
        out.body["inputError"]["code"], "envelope_invalid",
        "{:?}",
        out.body
    );
    assert_eq!(out.body["summary"]["uploaded"], 0, "{:?}", out.body);

    let as_bytes = HttpTriggerRequest::post("indicators", "application/octet-stream", gz);
    let out = driver
        .invoke_http("Ingest", "req", &as_bytes)
        .await
        .unwrap()
        .http_output("res")
        .unwrap();
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(
        out.body["summary"],
        json!({"records": 2, "uploaded": 2, "rejected": 0})
    );

    // JSON is text: a body that happens to be valid base64 is not decoded.
    let text = HttpTriggerRequest::post("indicators", "application/json", "[]");
    let out = driver
        .invoke_http("Ingest", "req", &text)
        .await
        .unwrap()
        .http_output("res")
        .unwrap();
    assert_eq!(out.status, 400, "{:?}", out.body);
    assert_eq!(out.body["summary"]["records"], 0, "{:?}", out.body);
    assert_eq!(stack.sim().accepted_ids().len(), 2);
}

/// Issue 12 (5): a completed report is never replaced by a later failure: work items the app
/// did not write are refused without writing anything, and a late event for a blob deleted
/// since gets a report of its own instead of overwriting the blob's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_report_is_never_replaced_by_a_later_failure() {
    let stack = Stack::for_test(StackConfig::with(SimConfig::default(), &[])).await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();
    let name = "kept.json";
    stack
        .ingest_blob(driver, name, common::bundle(&common::corpus(5, &[2])))
        .await
        .unwrap();
    let report_path = format!("{name}.report.json");
    let original = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &report_path)
        .await
        .unwrap();
    // The version the app read, as its checkpoint state records it (the ETag a work item for
    // this blob carries).
    let etag = {
        let names = stack
            .storage()
            .list_blobs(REPORTS_CONTAINER, Some("runs/"))
            .await
            .unwrap();
        // One run of one range: its state and its done marker.
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("/done")), "{names:?}");
        let state = names.iter().find(|n| n.ends_with("/state.json")).unwrap();
        let state: Value = serde_json::from_slice(
            &stack
                .storage()
                .read_blob(REPORTS_CONTAINER, state)
                .await
                .unwrap(),
        )
        .unwrap();
        state["etag"].as_str().unwrap().to_string()
    };
    assert!(etag.starts_with("\"0x"), "{etag}");
    let before = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, None)
        .await
        .unwrap();
    let item = |container: &str, etag: &str, start: u64| json!({"v": 1, "container": container, "blob": name, "etag": etag, "start": start});
    let mut with_extra = item("indicator-inbox", &etag, 0);
    with_extra["priority"] = json!("high");
    let mut v2 = item("indicator-inbox", &etag, 0);
    v2["v"] = json!(2);
    let cases = [
        (
            item("indicator-inbox", "\"0x8D\r\nX-Evil: 1\"", 0),
            "is not an ETag as the app writes it",
        ),
        (
            item("indicator-inbox", etag.trim_matches('"'), 0),
            "is not an ETag as the app writes it",
        ),
        (
            item(REPORTS_CONTAINER, &etag, 0),
            "is not the inbox container",
        ),
        (
            item("indicator-inbox", &etag, 123),
            "start 123 is not a range this run queued",
        ),
        (with_extra, "unknown field `priority`"),
        (v2, "work item version 2 is not supported"),
    ];
    for (forged, why) in &cases {
        let rsp = driver
            .invoke_queue("IngestWorkItem", "message", &forged.to_string(), 1)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text);
        let rv = &rsp.body["ReturnValue"];
        assert_eq!(rv["refused"], "work_item_invalid", "{forged}: {rv}");
        assert!(
            rv["reason"].as_str().unwrap().contains(why),
            "{forged}: {rv}"
        );
    }
    // A genuine item for the completed version: already complete, nothing written.
    let rsp = driver
        .invoke_queue(
            "IngestWorkItem",
            "message",
            &item("indicator-inbox", &etag, 0).to_string(),
            1,
        )
        .await
        .unwrap();
    assert_eq!(
        rsp.body["ReturnValue"]["alreadyComplete"], true,
        "{}",
        rsp.text
    );
    let after = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, None)
        .await
        .unwrap();
    assert_eq!(after, before, "a refused item wrote something");

    // The blob is deleted; then its work item (version known, run done) and a late event
    // (version unknown) arrive.
    stack
        .storage()
        .delete_blob(devkit::stack::INBOX_CONTAINER, name)
        .await
        .unwrap();
    let rsp = driver
        .invoke_queue(
            "IngestWorkItem",
            "message",
            &item("indicator-inbox", &etag, 0).to_string(),
            5,
        )
        .await
        .unwrap();
    // Azurite answers the item's If-Match read of the deleted blob 412 (the version is gone: the
    // rest of that run is abandoned); a 404 would find the run done. Either way nothing is written.
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    let rv = &rsp.body["ReturnValue"];
    assert!(
        rv["abandoned"] == true || rv["alreadyComplete"] == true,
        "{}",
        rsp.text
    );
    assert_eq!(
        stack
            .storage()
            .list_blobs(REPORTS_CONTAINER, None)
            .await
            .unwrap(),
        before
    );
    let late = driver
        .deliver_blob_created(&stack.blob_url(), "indicator-inbox", name, 1)
        .await
        .unwrap();
    let rv = late.last().body["ReturnValue"].clone();
    assert_eq!(rv["inputError"], "blob_not_found", "{rv}");
    let separate = rv["report"].as_str().unwrap();
    assert!(separate.starts_with("messages/"), "{separate}");
    let separate: Value = serde_json::from_slice(
        &stack
            .storage()
            .read_blob(REPORTS_CONTAINER, separate)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(separate["inputError"]["code"], "blob_not_found");
    assert_eq!(
        separate["source"]["name"],
        format!("indicator-inbox/{name}")
    );
    assert_eq!(
        stack
            .storage()
            .read_blob(REPORTS_CONTAINER, &report_path)
            .await
            .unwrap(),
        original,
        "the completed report was replaced"
    );
    let kept: Value = serde_json::from_slice(&original).unwrap();
    assert_eq!(
        kept["summary"],
        json!({"records": 5, "uploaded": 4, "rejected": 1})
    );
}

/// Issue 12 (7): report and rejected-file names stay within Azure's 1,024-character limit on
/// blob names for any input name: cut, plus a hash of the whole name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_names_of_long_input_names_stay_within_the_blob_name_limit() {
    let stack = Stack::for_test(StackConfig::with(
        SimConfig::default(),
        &[("TI_SWEEP_GRACE_SECS", "0")],
    ))
    .await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();
    // 1,020 characters: fits as an input name, not with `.rejected.ndjson` appended.
    let name = format!("long/{}.json", "n".repeat(1010));
    assert_eq!(name.len(), 1020);
    let twin = format!("long/{}.jsom", "n".repeat(1010));
    for n in [&name, &twin] {
        let delivery = stack
            .ingest_blob(driver, n, common::bundle(&common::corpus(4, &[1])))
            .await
            .unwrap();
        assert_eq!(delivery.final_status, 200, "{}", delivery.last().text);
    }
    let base = devkit::stack::report_base(&name);
    assert_eq!(base.len(), 1008);
    assert_eq!(&base[..991], &name[..991]);
    assert_ne!(base, devkit::stack::report_base(&twin));
    let mut written: Vec<String> = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("long/"))
        .await
        .unwrap();
    written.sort();
    let mut expected = vec![];
    for n in [&name, &twin] {
        let b = devkit::stack::report_base(n);
        expected.push(format!("{b}.rejected.ndjson"));
        expected.push(format!("{b}.report.html"));
        expected.push(format!("{b}.report.json"));
    }
    expected.sort();
    assert_eq!(written, expected);
    assert!(written.iter().all(|w| w.chars().count() <= 1024));
    let report = stack.report(&name).await.unwrap().unwrap();
    assert_eq!(report["source"]["name"], format!("indicator-inbox/{name}"));
    assert_eq!(
        report["summary"],
        json!({"records": 4, "uploaded": 3, "rejected": 1})
    );
    // Sweep finds the reports under the shortened names: both inputs are complete.
    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    assert_eq!(rsp.body["ReturnValue"]["complete"], 2, "{}", rsp.text);
    assert_eq!(rsp.body["ReturnValue"]["redriven"], 0, "{}", rsp.text);
}
