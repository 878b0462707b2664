//! Large inputs as chains of work items, checkpoints and idempotent redelivery, through the real
//! handler process, Azurite's real queues and the simulator.

mod common;

use std::time::Duration;

use devkit::stack::{BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER, WORK_QUEUE};
use devkit::{Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};

const HANDLER: &str = env!("CARGO_BIN_EXE_ti-ingest");

/// A simulator that does not throttle these tests (the quota itself is tested elsewhere).
fn fast_sim() -> SimConfig {
    SimConfig {
        requests_per_window: 10_000,
        window: Duration::from_secs(1),
        ..Default::default()
    }
}

fn error_indexes(report: &Value) -> Vec<u64> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordIndex"].as_u64().unwrap())
        .collect()
}

/// Drops a file into the inbox and puts its BlobCreated event on the real queue, as Event Grid
/// would, for the host (the driver's `pump_queues`) to deliver.
async fn drop_with_event(stack: &Stack, name: &str, body: String) {
    let len = stack.upload_inbox(name, body).await.unwrap();
    let event = devkit::host::event_grid_message(&devkit::host::blob_created_event(
        &stack.blob_url(),
        INBOX_CONTAINER,
        name,
        len,
    ));
    stack
        .storage()
        .put_message(BLOB_EVENTS_QUEUE, &event)
        .await
        .unwrap();
}

fn expected_ids(n: usize, invalid: &[usize]) -> std::collections::BTreeSet<String> {
    (0..n)
        .filter(|i| !invalid.contains(i))
        .map(|i| format!("indicator--{}", common::uuid_for(i)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_input_is_split_into_work_items_and_assembled_into_one_report() {
    let stack = Stack::for_test(StackConfig::with(
        fast_sim(),
        &[
            ("TI_WORK_ITEM_RECORDS", "300"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    ))
    .await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let driver = handler.driver();
    let invalid = [5, 299, 300, 301, 650, 999];
    let name = "big/feed.json";
    let delivery = stack
        .ingest_blob(
            driver,
            name,
            common::bundle(&common::corpus(1000, &invalid)),
        )
        .await
        .unwrap();
    assert_eq!(delivery.final_status, 200);
    assert_eq!(
        delivery.responses[0].body["ReturnValue"]["next"], 300,
        "{}",
        delivery.responses[0].text
    );
    // No final report yet: the rest is queued as work items.
    assert!(stack.report(name).await.unwrap().is_none());
    let deliveries = driver
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let starts: Vec<u64> = deliveries
        .iter()
        .map(|(_, d)| d.last().body["ReturnValue"].clone())
        .filter_map(|v| v.get("rangeStart").and_then(Value::as_u64))
        .collect();
    assert_eq!(starts, vec![300, 600], "{deliveries:?}");
    assert_eq!(deliveries.len(), 3, "items 300, 600 and the last one, 900");

    let report = stack.report(name).await.unwrap().expect("the final report");
    assert_eq!(
        report["summary"],
        json!({"records": 1000, "uploaded": 994, "rejected": 6})
    );
    assert_eq!(
        error_indexes(&report),
        invalid.iter().map(|i| *i as u64).collect::<Vec<_>>()
    );
    assert_eq!(report["source"]["format"], "stix-bundle");
    let rejected = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await
        .unwrap();
    assert_eq!(String::from_utf8(rejected).unwrap().lines().count(), 6);
    assert_eq!(stack.sim().accepted_ids(), expected_ids(1000, &invalid));

    // Redelivering the event, or a work item, after completion changes nothing.
    let requests = stack.sim().requests().len();
    let again = driver
        .deliver_blob_created(&stack.blob_url(), INBOX_CONTAINER, name, 1)
        .await
        .unwrap();
    assert_eq!(
        again.last().body["ReturnValue"]["alreadyComplete"],
        true,
        "{}",
        again.last().text
    );
    assert_eq!(stack.sim().requests().len(), requests);
    assert_eq!(
        stack.report(name).await.unwrap().unwrap()["summary"],
        report["summary"]
    );
    let _ = (BLOB_EVENTS_QUEUE, WORK_QUEUE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_that_runs_out_of_time_continues_in_a_work_item() {
    // 2 s per invocation (1 s before no new record starts) against a slow service.
    let mut sim = fast_sim();
    sim.latency = Duration::from_millis(400);
    let stack = Stack::for_test(StackConfig::with(
        sim,
        &[
            ("TI_INVOCATION_DEADLINE_SECS", "2"),
            ("TI_MAX_CONCURRENCY", "1"),
            ("TI_BATCH_SIZE", "50"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    ))
    .await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let driver = handler.driver();
    let name = "slow.json";
    let delivery = stack
        .ingest_blob(driver, name, common::bundle(&common::corpus(500, &[])))
        .await
        .unwrap();
    assert!(
        delivery.last().body["ReturnValue"]["next"]
            .as_u64()
            .is_some(),
        "{}",
        delivery.last().text
    );
    let deliveries = driver
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(!deliveries.is_empty());
    let report = stack.report(name).await.unwrap().expect("the final report");
    assert_eq!(
        report["summary"],
        json!({"records": 500, "uploaded": 500, "rejected": 0})
    );
    assert_eq!(stack.sim().accepted_ids(), expected_ids(500, &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_finds_missed_inputs_and_reports_poison_messages() {
    let stack = Stack::for_test(StackConfig::with(
        fast_sim(),
        &[
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    ))
    .await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let driver = handler.driver();
    // A file whose event never arrived, and one that was processed normally.
    stack
        .upload_inbox("missed.json", common::bundle(&common::corpus(20, &[3])))
        .await
        .unwrap();
    stack
        .ingest_blob(driver, "seen.json", common::bundle(&common::corpus(5, &[])))
        .await
        .unwrap();
    // Something the host gave up on.
    stack
        .storage()
        .put_message(&format!("{WORK_QUEUE}-poison"), "{\"v\":1,\"broken\":true}")
        .await
        .unwrap();

    // Two Sweeps at once (a timer run overlapping a slow one): between them the missed input is
    // re-driven exactly once (the other sees the first one's marker and counts it in progress)
    // and the poison message reported exactly once.
    let (a, b) = tokio::join!(
        driver.invoke_timer("Sweep", "timer"),
        driver.invoke_timer("Sweep", "timer")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut pairs = Vec::new();
    for rsp in [&a, &b] {
        assert_eq!(rsp.status, 200, "{}", rsp.text);
        let rv = &rsp.body["ReturnValue"];
        assert_eq!(rv["blobs"], 2, "{rv}");
        assert_eq!(rv["complete"], 1, "{rv}");
        assert_eq!(rv["errors"], 0, "{rv}");
        pairs.push((
            rv["redriven"].as_u64().unwrap(),
            rv["inProgress"].as_u64().unwrap(),
            rv["poisonReported"].as_u64().unwrap(),
        ));
    }
    let column = |f: fn(&(u64, u64, u64)) -> u64| {
        let mut v: Vec<u64> = pairs.iter().map(f).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(column(|p| p.0), [0, 1], "re-driven: {pairs:?}");
    assert_eq!(column(|p| p.1), [0, 1], "in progress: {pairs:?}");
    // Each run's re-drive and in-progress count together cover the one missed input.
    assert!(pairs.iter().all(|p| p.0 + p.1 == 1), "{pairs:?}");
    assert_eq!(column(|p| p.2), [0, 1], "poison reported: {pairs:?}");
    let poison_reports = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("poison/"))
        .await
        .unwrap();
    // The report, its page, and the whole message beside them.
    let mut suffixes: Vec<&str> = poison_reports
        .iter()
        .map(|p| &p[p.find('.').unwrap_or(0)..])
        .collect();
    suffixes.sort();
    assert_eq!(
        suffixes,
        [".rejected.ndjson", ".report.html", ".report.json"],
        "{poison_reports:?}"
    );
    let report_path = poison_reports
        .iter()
        .find(|p| p.ends_with(".report.json"))
        .unwrap();
    let poison: Value = serde_json::from_slice(
        &stack
            .storage()
            .read_blob(REPORTS_CONTAINER, report_path)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(poison["inputError"]["code"], "poisoned");
    assert!(poison["inputError"]["message"]
        .as_str()
        .unwrap()
        .contains("broken"));
    let kept = stack
        .storage()
        .read_blob(
            REPORTS_CONTAINER,
            &report_path.replace(".report.json", ".rejected.ndjson"),
        )
        .await
        .unwrap();
    assert_eq!(kept, b"{\"v\":1,\"broken\":true}\n");
    let page = stack
        .storage()
        .read_blob(
            REPORTS_CONTAINER,
            &report_path.replace(".report.json", ".report.html"),
        )
        .await
        .unwrap();
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<h2>The message was given up</h2>"), "{page}");
    assert!(page.contains("<code id=\"input-error-code\">poisoned</code>"));

    // A later Sweep, before the re-driven item ran, does not re-drive the same input again.
    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    assert_eq!(rsp.body["ReturnValue"]["redriven"], 0, "{}", rsp.text);

    driver
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let report = stack
        .report("missed.json")
        .await
        .unwrap()
        .expect("swept input reported");
    assert_eq!(
        report["summary"],
        json!({"records": 20, "uploaded": 19, "rejected": 1})
    );
    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    assert_eq!(rsp.body["ReturnValue"]["complete"], 2, "{}", rsp.text);
}

/// The kill test of the issue: the handler is SIGKILLed at random points while a 20,000-record
/// file is processed through real queues; restarted as the host would, with Sweep running on its
/// timer, the final report accounts for every record exactly once and the simulator holds every
/// valid id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_handler_at_random_points_loses_nothing() {
    use rand::Rng;
    // A service slow enough (50 ms a request, one at a time: ~10 s for the whole file) that
    // every one of the ten kills lands mid-run.
    let mut sim = fast_sim();
    sim.latency = Duration::from_millis(50);
    let mut stack = Stack::for_test(StackConfig::with(
        sim,
        &[
            ("TI_MAX_CONCURRENCY", "1"),
            ("TI_WORK_ITEM_RECORDS", "2000"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "2"),
        ],
    ))
    .await;
    let n = 20_000;
    let invalid: Vec<usize> = (0..n).filter(|i| i % 997 == 13).collect();
    let name = "kill/feed.json";
    drop_with_event(&stack, name, common::bundle(&common::corpus(n, &invalid))).await;

    let mut rng = rand::rng();
    let mut kills = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut handler = stack.spawn_handler(HANDLER).await.unwrap();
    while stack.report(name).await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "not finished after {kills} kills"
        );
        let mut driver = handler.driver().clone();
        driver.processing_lease = Duration::from_secs(2);
        // A failed invocation is retried after 1 s, not host.json's 30 s: the retry delay's
        // length is not under test, and the 90 s budget holds ten kills.
        driver.queues.visibility_timeout = Duration::from_secs(1);
        let storage = stack.storage().clone();
        let pump = tokio::spawn(async move {
            let routes = Stack::default_routes();
            let r = driver
                .pump_queues(&storage, &routes, Duration::from_secs(60))
                .await;
            // Shown only when the test fails: what each delivery got.
            match &r {
                Ok(d) => {
                    for (k, d) in d {
                        eprintln!(
                            "pump: {k}: {} attempts, last {} {}",
                            d.attempts,
                            d.final_status,
                            d.last().body["ReturnValue"]
                        );
                    }
                }
                Err(e) => eprintln!("pump: {e:#}"),
            }
            // The timer fires too, as it would in Azure.
            let sweep = driver.invoke_timer("Sweep", "timer").await;
            eprintln!("sweep: {:?}", sweep.map(|s| s.body["ReturnValue"].clone()));
            r
        });
        if kills < 10 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
            handler.kill().await.unwrap();
            kills += 1;
            let _ = pump.await;
            // Invisible messages reappear after the visibility timeout; Sweep sees stale runs.
            tokio::time::sleep(Duration::from_millis(2100)).await;
            handler = stack.spawn_handler(HANDLER).await.unwrap();
        } else {
            let _ = pump.await;
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
    }
    assert_eq!(kills, 10);
    let report = stack.report(name).await.unwrap().unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": n, "uploaded": n - invalid.len(), "rejected": invalid.len()})
    );
    assert_eq!(
        error_indexes(&report),
        invalid.iter().map(|i| *i as u64).collect::<Vec<_>>()
    );
    assert_eq!(stack.sim().accepted_ids(), expected_ids(n, &invalid));
    let _ = stack.azurite_mut();
}

/// The fault test of the issue: 30% injected 429/5xx and Azurite restarted once mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_a_storage_restart_lose_nothing() {
    let mut sim = fast_sim();
    sim.fault_429_share = 0.15;
    sim.fault_5xx_share = 0.15;
    sim.seed = 11;
    let mut stack = Stack::for_test(StackConfig::with(
        sim,
        &[
            ("TI_WORK_ITEM_RECORDS", "1000"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_MAX_ATTEMPTS", "12"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "3"),
        ],
    ))
    .await;
    let n = 5000;
    let invalid: Vec<usize> = (0..n).filter(|i| i % 501 == 7).collect();
    let name = "faults.json";
    drop_with_event(&stack, name, common::bundle(&common::corpus(n, &invalid))).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let mut driver = handler.driver().clone();
    driver.processing_lease = Duration::from_secs(2);
    // Invocations failing while storage restarts are retried after 1 s, not host.json's 30 s:
    // the retry delay's length is not under test here.
    driver.queues.visibility_timeout = Duration::from_secs(1);

    let storage = stack.storage().clone();
    let d = driver.clone();
    let pump = tokio::spawn(async move {
        d.pump_queues(&storage, &Stack::default_routes(), Duration::from_secs(60))
            .await
    });
    // Storage restarts mid-run: once the first work item's records are in, before the last.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stack.sim().accepted_ids().len() < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not get going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.azurite_mut().restart().await.unwrap();
    let _ = pump.await;

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut rounds = 0;
    while stack.report(name).await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "not finished after {rounds} rounds"
        );
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let _ = driver.invoke_timer("Sweep", "timer").await;
        let r = driver
            .pump_queues(
                stack.storage(),
                &Stack::default_routes(),
                Duration::from_secs(60),
            )
            .await;
        if let Err(e) = r {
            eprintln!("pump: {e:#}");
        }
    }
    let report = stack.report(name).await.unwrap().unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": n, "uploaded": n - invalid.len(), "rejected": invalid.len()})
    );
    assert_eq!(
        error_indexes(&report),
        invalid.iter().map(|i| *i as u64).collect::<Vec<_>>()
    );
    assert_eq!(stack.sim().accepted_ids(), expected_ids(n, &invalid));
    let injected = stack.sim().requests().iter().filter(|r| r.injected).count();
    assert!(injected > 0);
}

/// The run's checkpoint state, as Sweep reads it (`runs/<id>/state.json`, the only run here).
async fn run_state(stack: &Stack) -> Value {
    let names = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("runs/"))
        .await
        .unwrap();
    let states: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with("/state.json"))
        .collect();
    assert_eq!(states.len(), 1, "{names:?}");
    serde_json::from_slice(
        &stack
            .storage()
            .read_blob(REPORTS_CONTAINER, states[0])
            .await
            .unwrap(),
    )
    .unwrap()
}

/// The work items waiting on the queue, parsed.
async fn queued_items(stack: &Stack) -> Vec<Value> {
    stack
        .storage()
        .peek_messages(WORK_QUEUE, 32)
        .await
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect()
}

/// Issue 12: after a kill between "the next range is queued" and the send, Sweep (not the
/// redelivery, which is kept invisible here) repairs the run: it finds the run through the
/// listing's unquoted ETag, leaves it alone while it is live, then resumes it from its first
/// missing range; a late duplicate event from record 0 moves nothing backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_resumes_a_stale_run_from_its_first_missing_range_and_never_a_live_one() {
    let stack = Stack::for_test(StackConfig::with(
        fast_sim(),
        &[
            ("TI_WORK_ITEM_RECORDS", "300"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "3"),
        ],
    ))
    .await;
    let name = "stall/feed.json";
    let invalid = [10, 310, 905];
    // The first handler dies on its second arrival before a send: item 300 was processed and
    // checkpointed, the item for 600 is never sent.
    let mut handler = stack
        .spawn_handler_with(
            HANDLER,
            &[("TI_TEST_ABORT_AT".into(), "before-send:2".into())],
        )
        .await
        .unwrap();
    let mut driver = handler.driver().clone();
    // The killed item would come back only after a minute: Sweep must do the repair.
    driver.processing_lease = Duration::from_secs(60);
    let first = stack
        .ingest_blob(
            &driver,
            name,
            common::bundle(&common::corpus(1000, &invalid)),
        )
        .await
        .unwrap();
    assert_eq!(
        first.last().body["ReturnValue"]["next"],
        300,
        "{}",
        first.last().text
    );
    let pumped = driver
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(30),
        )
        .await;
    assert!(pumped.is_err(), "the handler was to abort: {pumped:?}");
    handler.kill().await.unwrap();
    assert!(
        handler
            .output()
            .contains("aborting at before-send (arrival 2)"),
        "{}",
        handler.output()
    );
    assert_eq!(run_state(&stack).await["next"], 600);
    assert!(queued_items(&stack).await.is_empty());

    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let mut driver = handler.driver().clone();
    driver.processing_lease = Duration::from_secs(60);
    // Live (last activity under 3 s ago): left alone.
    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    let rv = &rsp.body["ReturnValue"];
    assert_eq!(
        (rv["inProgress"].as_u64(), rv["redriven"].as_u64()),
        (Some(1), Some(0)),
        "{rv}"
    );
    assert!(queued_items(&stack).await.is_empty());

    // Once its last activity is 3 s old (TI_SWEEP_STALE_SECS) a Sweep re-drives it; until
    // then every Sweep leaves it alone.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let rsp = loop {
        let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
        let rv = &rsp.body["ReturnValue"];
        if rv["redriven"] != 0 {
            break rsp;
        }
        assert_eq!(rv["inProgress"], 1, "{rv}");
        assert!(queued_items(&stack).await.is_empty());
        assert!(
            std::time::Instant::now() < deadline,
            "never re-driven: {rv}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rsp.body["ReturnValue"]["redriven"], 1, "{}", rsp.text);
    assert!(
        rsp.logs()
            .iter()
            .any(|l| l == &format!("re-driven {name} from record 600")),
        "{:?}",
        rsp.logs()
    );
    let items = queued_items(&stack).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["start"], 600);
    // The same identity as the ingest path: the quoted ETag the run was keyed by.
    assert_eq!(items[0]["etag"], run_state(&stack).await["etag"]);
    assert!(items[0]["etag"].as_str().unwrap().starts_with("\"0x"));

    // A late duplicate of the original event: part 0 exists, its next item was sent; nothing
    // is sent again and the state does not move back to 300.
    let again = driver
        .deliver_blob_created(&stack.blob_url(), INBOX_CONTAINER, name, 1)
        .await
        .unwrap();
    assert_eq!(
        again.last().body["ReturnValue"]["rangeStart"],
        0,
        "{}",
        again.last().text
    );
    assert_eq!(run_state(&stack).await["next"], 600);
    assert_eq!(queued_items(&stack).await.len(), 1);

    driver
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let report = stack.report(name).await.unwrap().expect("the final report");
    assert_eq!(
        report["summary"],
        json!({"records": 1000, "uploaded": 997, "rejected": 3})
    );
    assert_eq!(error_indexes(&report), vec![10, 310, 905]);
    assert_eq!(stack.sim().accepted_ids(), expected_ids(1000, &invalid));
    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    assert_eq!(rsp.body["ReturnValue"]["complete"], 1, "{}", rsp.text);
    assert_eq!(rsp.body["ReturnValue"]["redriven"], 0, "{}", rsp.text);
}

/// Issue 12: kills aimed at every hand-off point of a 20,000-record run (2,000-record work
/// items, real queues, Sweep on its timer): after a part is written, after the `queued` marker
/// but before the send, after the send but before the `sent` marker, after that marker, during
/// report assembly and after the report but before `done`. Each handler process aborts at its
/// planned point (`TI_TEST_ABORT_AT`), the next one is started as the host would; every record
/// is reported exactly once and every valid id reaches the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_aimed_at_every_hand_off_point_lose_nothing() {
    let mut sim = fast_sim();
    sim.latency = Duration::from_millis(20);
    let stack = Stack::for_test(StackConfig::with(
        sim,
        &[
            ("TI_MAX_CONCURRENCY", "1"),
            ("TI_WORK_ITEM_RECORDS", "2000"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "2"),
        ],
    ))
    .await;
    let n = 20_000;
    let invalid: Vec<usize> = (0..n).filter(|i| i % 997 == 13).collect();
    let name = "aimed/feed.json";
    drop_with_event(&stack, name, common::bundle(&common::corpus(n, &invalid))).await;

    let plans = [
        "part-written:1",
        "before-send:1",
        "after-send:1",
        "after-marker:1",
        "part-written:2",
        "before-send:2",
        "after-send:2",
        "after-marker:2",
        "assembling:1",
        "report-written:1",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let mut aborted = Vec::new();
    for plan in plans.iter().map(Some).chain([None]) {
        let env: Vec<(String, String)> = plan
            .map(|p| vec![("TI_TEST_ABORT_AT".to_string(), p.to_string())])
            .unwrap_or_default();
        let mut handler = stack.spawn_handler_with(HANDLER, &env).await.unwrap();
        let mut driver = handler.driver().clone();
        driver.processing_lease = Duration::from_secs(2);
        // Failed invocations are retried after 1 s, not host.json's 30 s: the retry delay's
        // length is not under test, and eleven handler lives must fit the budget.
        driver.queues.visibility_timeout = Duration::from_secs(1);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "not finished; aborted so far: {aborted:?}"
            );
            let pumped = driver
                .pump_queues(
                    stack.storage(),
                    &Stack::default_routes(),
                    Duration::from_secs(60),
                )
                .await;
            let swept = driver.invoke_timer("Sweep", "timer").await;
            if pumped.is_err() || swept.is_err() {
                // Shown only when the test fails: why this handler's life ended.
                let why = |e: Option<anyhow::Error>| e.map(|e| format!("{e:#}"));
                eprintln!("{plan:?}: pump {:?}", why(pumped.err()));
                eprintln!("{plan:?}: sweep {:?}", why(swept.err()));
                break;
            }
            if plan.is_none() && stack.report(name).await.unwrap().is_some() {
                break;
            }
            // Invisible messages reappear; a run left alone for 2 s is stale for Sweep.
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
        handler.kill().await.unwrap();
        if let Some(plan) = plan {
            let (point, nth) = plan.split_once(':').unwrap();
            assert!(
                handler
                    .output()
                    .contains(&format!("aborting at {point} (arrival {nth})")),
                "the handler did not abort at {plan}:\n{}",
                handler.output()
            );
            aborted.push(*plan);
        }
        // Messages the killed handler held become visible again.
        tokio::time::sleep(Duration::from_millis(2100)).await;
    }
    assert_eq!(aborted.len(), plans.len());
    let report = stack.report(name).await.unwrap().expect("the final report");
    assert_eq!(
        report["summary"],
        json!({"records": n, "uploaded": n - invalid.len(), "rejected": invalid.len()})
    );
    assert_eq!(
        error_indexes(&report),
        invalid.iter().map(|i| *i as u64).collect::<Vec<_>>()
    );
    let rejected = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(rejected).unwrap().lines().count(),
        invalid.len()
    );
    assert_eq!(stack.sim().accepted_ids(), expected_ids(n, &invalid));
    // Nothing was given up on.
    for queue in [BLOB_EVENTS_QUEUE, WORK_QUEUE] {
        let poison = stack
            .storage()
            .peek_messages(&format!("{queue}-poison"), 32)
            .await
            .unwrap();
        assert!(poison.is_empty(), "{queue}-poison: {poison:?}");
    }
    let poison_reports = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("poison/"))
        .await
        .unwrap();
    assert!(poison_reports.is_empty(), "{poison_reports:?}");
}
