//! Target `defender` (Microsoft Defender for Endpoint Import Indicators API) against the
//! simulator's Defender routes (crates/sentinel-sim/src/defender.rs, built from Microsoft
//! Learn), with the real `ManagedIdentityCredential` getting its tokens from the local identity
//! endpoint: happy path and local refusals, per-indicator failures, 429, 401/403, the tenant's
//! 15,000 active indicators as a budget kept in Azurite, and several targets at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use devkit::stack::REPORTS_CONTAINER;
use devkit::{Stack, StackConfig};
use sentinel_sim::{SimConfig, Simulator};
use serde_json::{json, Value};
use ti_core::report::Code;
use ti_ingest::pipeline::RunOutcome;
use ti_ingest::settings::Env;

const IMPORT: &str = "/api/indicators/import";

/// Indicator `i` of the shared corpus with another pattern.
fn with_pattern(i: usize, pattern: &str) -> Value {
    let mut v = common::indicator(i);
    v["pattern"] = pattern.into();
    v
}

fn identity_object() -> Value {
    json!({
        "type": "identity", "spec_version": "2.1",
        "id": format!("identity--{}", common::uuid_for(90_000)),
        "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
        "name": "ACME CERT", "identity_class": "organization"
    })
}

/// The IPv4 value of corpus indicator `i`.
fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn held_values(sim: &Simulator) -> BTreeSet<String> {
    sim.defender_indicators()
        .iter()
        .map(|d| d["indicatorValue"].as_str().unwrap().to_string())
        .collect()
}

fn codes(out: &RunOutcome) -> Vec<(u64, Code)> {
    out.report
        .errors
        .iter()
        .map(|e| (e.record_index, e.code))
        .collect()
}

#[tokio::test]
async fn indicators_become_defender_indicators_and_what_cannot_costs_no_call() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut input = common::corpus(150, &[]);
    input.insert(
        3,
        with_pattern(1_000, "[ipv4-addr:value = '198.51.100.0/24']"),
    );
    input.insert(
        50,
        with_pattern(
            1_001,
            "[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'x.example']",
        ),
    );
    input.push(identity_object());
    let up = common::sim_uploader(&sim, "defender", &[]);
    let out = common::run_objects(up.clone(), &input).await;
    let r = &out.report;
    assert_eq!(r.target, "defender");
    assert_eq!(
        (r.summary.records, r.summary.uploaded, r.summary.rejected),
        (153, 150, 3)
    );
    assert_eq!(
        codes(&out),
        vec![
            (3, Code::CidrNotSupported),
            (50, Code::NotConvertible),
            (152, Code::UnsupportedType)
        ]
    );
    assert!(r.errors[0].messages[0].contains("198.51.100.0/24 is a network range"));
    assert_eq!(held_values(&sim), (0..150).map(ip).collect());
    let held = sim.defender_indicators();
    let first = held.iter().find(|d| d["indicatorValue"] == ip(0)).unwrap();
    assert_eq!(first["indicatorType"], "IpAddress");
    assert_eq!(first["title"], "test indicator 0");
    assert_eq!(first["description"], "test indicator 0");
    assert_eq!(first["action"], "Audit");
    assert_eq!(first["generateAlert"], true);
    assert_eq!(first["application"], "ti-ingest");
    assert_eq!(first["severity"], "Medium");
    assert_eq!(first["expirationTime"], "2099-01-01T00:00:00Z");
    // Two batches (100 records, then 53): 98 and 52 indicators, one call each (sent
    // concurrently, so in either order).
    let mut requests: Vec<_> = sim
        .requests()
        .iter()
        .map(|q| (q.path.clone(), q.status, q.objects, q.accepted))
        .collect();
    requests.sort_by_key(|q| q.2);
    assert_eq!(
        requests,
        vec![
            (IMPORT.to_string(), 200, 52, 52),
            (IMPORT.to_string(), 200, 98, 98)
        ]
    );
}

#[tokio::test]
async fn each_indicator_defender_refuses_is_reported_alone() {
    let sim = Simulator::start(SimConfig {
        refused_values: vec![ip(5), ip(7)],
        // The tenant already holds indicators of other tools: room for 100 more.
        defender_max_active: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    // One batch at a time, so the tenant fills in the input's order.
    let up = common::sim_uploader(&sim, "defender", &[("TI_MAX_CONCURRENCY", "1")]);
    let out = common::run_objects(up, &common::corpus(150, &[])).await;
    let r = &out.report;
    assert_eq!((r.summary.uploaded, r.summary.rejected), (100, 50));
    let refused: Vec<_> = r
        .errors
        .iter()
        .filter(|e| e.code == Code::RejectedByService)
        .collect();
    assert_eq!(
        refused.iter().map(|e| e.record_index).collect::<Vec<_>>(),
        vec![5, 7]
    );
    assert_eq!(
        refused[0].messages,
        vec![format!("Invalid input {}.", ip(5))]
    );
    // Defender's own "tenant full" answer is the budget's code, not a service failure: the
    // first 100 accepted went in, the last 48 of 150 found the tenant full.
    let full: Vec<_> = r
        .errors
        .iter()
        .filter(|e| e.code == Code::OverBudget)
        .map(|e| e.record_index)
        .collect();
    assert_eq!(full, (102..150).collect::<Vec<_>>());
    assert_eq!(sim.defender_indicators().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_as_retry_after_says() {
    // Two calls per 2 s: the client's own lane (30 calls a minute) lets it hit the limit.
    let sim = Simulator::start(SimConfig {
        defender_requests_per_window: 2,
        window: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let up = common::sim_uploader(
        &sim,
        "defender",
        &[("TI_BATCH_SIZE", "10"), ("TI_MAX_CONCURRENCY", "2")],
    );
    let started = std::time::Instant::now();
    let out = common::run_objects(up, &common::corpus(50, &[])).await;
    assert_eq!(out.report.summary.uploaded, 50, "{:?}", out.report.errors);
    assert_eq!(sim.defender_indicators().len(), 50);
    let statuses: Vec<u16> = sim.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5);
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!((1..=4).contains(&throttled), "{statuses:?}");
    assert!(started.elapsed() >= Duration::from_secs(4), "{statuses:?}");
}

#[tokio::test]
async fn a_401_and_a_403_name_the_audience_and_the_permission() {
    for (config, code, text) in [
        (
            SimConfig {
                defender_audience: "https://api.other.example".into(),
                ..Default::default()
            },
            Code::Unauthorized,
            "HTTP 401 (the token was refused: Defender for Endpoint needs a token for https://api.securitycenter.microsoft.com/.default",
        ),
        (
            SimConfig {
                forbidden_identities: vec![devkit::identity::DEFAULT_OBJECT_ID.into()],
                ..Default::default()
            },
            Code::Forbidden,
            "HTTP 403 (the identity lacks the application permission Ti.ReadWrite.All of WindowsDefenderATP): Forbidden: Forbidden (valid token but insufficient permission for the action).",
        ),
    ] {
        let sim = Simulator::start(config).await.unwrap();
        let out = common::run_objects(common::sim_uploader(&sim, "defender", &[]), &common::corpus(20, &[])).await;
        assert_eq!(out.report.summary.rejected, 20);
        assert_eq!(out.report.errors.len(), 20);
        for e in &out.report.errors {
            assert_eq!(e.code, code);
            assert!(e.messages[0].starts_with(text), "{:?}", e.messages);
        }
        assert!(sim.defender_indicators().is_empty());
        // A permanent answer is not retried.
        assert_eq!(sim.requests().len(), 1);
    }
}

#[tokio::test]
async fn sentinel_stix_and_defender_at_once() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut input = common::corpus(100, &[]);
    input.push(with_pattern(2_000, "[ipv4-addr:value = '198.51.100.0/24']"));
    input.push(identity_object());
    let out = common::run_objects(
        common::sim_uploader(&sim, "sentinel-stix,defender", &[]),
        &input,
    )
    .await;
    let r = &out.report;
    assert_eq!(r.target, "sentinel-stix,defender");
    // Sentinel took all 102; Defender refused the range and the identity before sending.
    assert_eq!((r.summary.uploaded, r.summary.rejected), (100, 2));
    assert_eq!(
        codes(&out),
        vec![(100, Code::CidrNotSupported), (101, Code::UnsupportedType)]
    );
    for e in &r.errors {
        assert!(e.messages[0].starts_with("defender: "), "{:?}", e.messages);
    }
    assert_eq!(sim.accepted_ids().len(), 102);
    assert_eq!(held_values(&sim), (0..100).map(ip).collect());
    let mut paths: Vec<(bool, usize)> = sim
        .requests()
        .iter()
        .map(|q| (q.path == IMPORT, q.objects))
        .collect();
    paths.sort();
    assert_eq!(paths, vec![(false, 2), (false, 100), (true, 100)]);
}

#[tokio::test]
async fn when_the_budget_is_short_the_most_confident_records_go() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // 200 records in two batches; room for 150: the second batch's 50 most confident go.
    let input: Vec<Value> = (0..200)
        .map(|i| {
            let mut v = common::indicator(i);
            v["confidence"] = ((i * 37) % 101).into();
            v
        })
        .collect();
    let up = common::sim_uploader(
        &sim,
        "defender",
        &[
            ("TI_DEFENDER_MAX_ACTIVE", "150"),
            ("TI_MAX_CONCURRENCY", "1"),
        ],
    );
    let out = common::run_objects(up, &input).await;
    let r = &out.report;
    assert_eq!((r.summary.uploaded, r.summary.rejected), (150, 50));
    let mut second: Vec<usize> = (100..200).collect();
    second.sort_by_key(|&i| std::cmp::Reverse((i * 37) % 101));
    let left_out: BTreeSet<u64> = second[50..].iter().map(|&i| i as u64).collect();
    assert_eq!(
        r.errors
            .iter()
            .map(|e| e.record_index)
            .collect::<BTreeSet<_>>(),
        left_out
    );
    assert!(r.errors.iter().all(|e| e.code == Code::OverBudget));
    assert!(
        r.errors[0].messages[0].contains("TI_DEFENDER_MAX_ACTIVE=150"),
        "{:?}",
        r.errors[0].messages
    );
    assert_eq!(sim.defender_indicators().len(), 150);
    assert_eq!(sim.requests().len(), 2);
}

/// 20,000 indicators for a tenant that holds 15,000: the budget, kept in the app's storage
/// (Azurite), sends 15,000 and reports 5,000 `over_budget` without a call for them; a second
/// run knows what the first placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_of_20000_fills_the_15000_budget_and_reports_the_rest() {
    let stack = Stack::start(StackConfig {
        // A one-second "minute" for both sides, so 150 calls take seconds.
        sim: SimConfig {
            window: Duration::from_secs(1),
            ..Default::default()
        },
        extra_env: vec![
            ("TI_TARGET".into(), "defender".into()),
            ("TI_RATE_WINDOW_SECS".into(), "1".into()),
            // One batch at a time: which records take the budget is then the input's order.
            ("TI_MAX_CONCURRENCY".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await
    .expect("the stack starts (run scripts/setup-azurite.sh first)");
    let mut env = stack.handler_env();
    env.push(("TI_DEFENDER_BASE_URL".into(), stack.sim().url()));
    let app = ti_ingest::startup::AppState::build(&Env::from_pairs(env.clone())).unwrap();
    let out = common::run_objects(app.uploader.clone(), &common::corpus(20_000, &[])).await;
    let r = &out.report;
    assert_eq!(
        (r.summary.records, r.summary.uploaded, r.summary.rejected),
        (20_000, 15_000, 5_000)
    );
    assert_eq!(
        r.errors
            .iter()
            .filter(|e| e.code == Code::OverBudget)
            .count(),
        5_000
    );
    assert_eq!(stack.sim().defender_indicators().len(), 15_000);
    let calls = stack.sim().requests();
    assert_eq!(calls.len(), 150, "no call for what the budget left out");
    assert!(calls.iter().all(|q| q.status == 200 && q.objects == 100));
    // The state blob holds what was placed, with Defender's ids.
    let state: Value = serde_json::from_slice(
        &stack
            .storage()
            .read_blob(REPORTS_CONTAINER, "defender/placed.json")
            .await
            .unwrap(),
    )
    .unwrap();
    let placed = state["indicators"].as_array().unwrap();
    assert_eq!(placed.len(), 15_000);
    assert_eq!(placed[0]["type"], "IpAddress");
    assert_eq!(placed[0]["expires"], "2099-01-01T00:00:00Z");

    // A new process: it reads the state, so updates of placed indicators go (one call) and
    // new ones are left out (no call).
    let app = ti_ingest::startup::AppState::build(&Env::from_pairs(env)).unwrap();
    let mut again: Vec<Value> = (0..10).map(common::indicator).collect();
    again.extend((30_000..30_010).map(common::indicator));
    let out = common::run_objects(app.uploader.clone(), &again).await;
    assert_eq!(
        (out.report.summary.uploaded, out.report.summary.rejected),
        (10, 10)
    );
    assert_eq!(
        out.report
            .errors
            .iter()
            .map(|e| e.record_index)
            .collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    let calls = stack.sim().requests();
    assert_eq!(calls.len(), 151);
    assert_eq!(calls[150].objects, 10);
}
