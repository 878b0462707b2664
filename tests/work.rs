//! Large inputs as chains of work items, checkpoints and idempotent redelivery, through the real
//! handler process, Azurite's real queues and the simulator.

mod common;

use std::time::Duration;

use devkit::stack::{BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER, WORK_QUEUE};
use devkit::{Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};

const HANDLER: &str = env!("CARGO_BIN_EXE_ti-ingest");

async fn stack(sim: SimConfig, extra_env: &[(&str, &str)]) -> Stack {
    Stack::start(StackConfig {
        sim,
        extra_env: extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await
    .expect("the stack starts (run scripts/setup-azurite.sh first)")
}

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
    let stack = stack(
        fast_sim(),
        &[
            ("TI_WORK_ITEM_RECORDS", "300"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    )
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
    let stack = stack(
        sim,
        &[
            ("TI_INVOCATION_DEADLINE_SECS", "2"),
            ("TI_MAX_CONCURRENCY", "1"),
            ("TI_BATCH_SIZE", "50"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    )
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
    let stack = stack(
        fast_sim(),
        &[
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ],
    )
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

    let rsp = driver.invoke_timer("Sweep", "timer").await.unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    let rv = &rsp.body["ReturnValue"];
    assert_eq!(rv["blobs"], 2, "{rv}");
    assert_eq!(rv["complete"], 1, "{rv}");
    assert_eq!(rv["redriven"], 1, "{rv}");
    assert_eq!(rv["poisonReported"], 1, "{rv}");
    let poison_reports = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, Some("poison/"))
        .await
        .unwrap();
    // The report, and the whole message beside it.
    assert_eq!(poison_reports.len(), 2, "{poison_reports:?}");
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

    // A second, overlapping Sweep does not re-drive the same input again.
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
    let mut stack = stack(
        sim,
        &[
            ("TI_MAX_CONCURRENCY", "1"),
            ("TI_WORK_ITEM_RECORDS", "2000"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "2"),
        ],
    )
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
        driver.visibility_timeout = Duration::from_secs(2);
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
    let mut stack = stack(
        sim,
        &[
            ("TI_WORK_ITEM_RECORDS", "1000"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
            ("TI_MAX_ATTEMPTS", "12"),
            ("TI_SWEEP_GRACE_SECS", "0"),
            ("TI_SWEEP_STALE_SECS", "3"),
        ],
    )
    .await;
    let n = 5000;
    let invalid: Vec<usize> = (0..n).filter(|i| i % 501 == 7).collect();
    let name = "faults.json";
    drop_with_event(&stack, name, common::bundle(&common::corpus(n, &invalid))).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let mut driver = handler.driver().clone();
    driver.visibility_timeout = Duration::from_secs(2);

    let storage = stack.storage().clone();
    let d = driver.clone();
    let pump = tokio::spawn(async move {
        d.pump_queues(&storage, &Stack::default_routes(), Duration::from_secs(60))
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
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
