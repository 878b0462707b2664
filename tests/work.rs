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
