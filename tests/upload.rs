//! The `sentinel-stix` target against the simulator, with the real `ManagedIdentityCredential`
//! getting its tokens from the local identity endpoint: retries under injected faults, per-record
//! service errors, permanent failures.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use sentinel_sim::{SimConfig, Simulator};
use serde_json::{Map, Value};
use ti_core::report::{Code, Source};
use ti_ingest::pipeline::{self, RunContext};
use ti_ingest::settings::Env;
use ti_ingest::upload::UploadSettings;
use ti_ingest::upload::Uploader;

/// The workspace the simulator knows by default.
const WORKSPACE: &str = sentinel_sim::DEFAULT_WORKSPACE_ID;

fn uploader(sim: &Simulator, extra: &[(&str, &str)]) -> Uploader {
    common::shared_identity();
    let mut pairs = vec![
        ("TI_API_BASE_URL".to_string(), sim.url()),
        ("TI_WORKSPACE_ID".to_string(), WORKSPACE.to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = UploadSettings::from_env(&Env::from_pairs(pairs)).unwrap();
    let credential = ti_ingest::auth::managed_identity(None).unwrap();
    Uploader::new(settings, Some(credential)).unwrap()
}

fn ctx(uploader: Uploader) -> RunContext {
    RunContext::new(uploader)
}

fn source() -> Source {
    Source {
        kind: "file".into(),
        name: "test".into(),
        format: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_faults_lose_nothing_and_report_nothing_twice() {
    let sim = Simulator::start(SimConfig {
        fault_429_share: 0.15,
        fault_5xx_share: 0.15,
        seed: 7,
        ..Default::default()
    })
    .await
    .unwrap();
    let up = uploader(
        &sim,
        &[("TI_MAX_ATTEMPTS", "12"), ("TI_MAX_CONCURRENCY", "4")],
    );
    let objects = common::corpus(1000, &[]);
    let input = serde_json::to_vec(&objects).unwrap();
    let outcome = pipeline::run(pipeline::once(input), source(), &ctx(up))
        .await
        .unwrap();
    let r = &outcome.report;
    r.check_invariants().unwrap();
    assert_eq!(r.summary.records, 1000);

    // With 12 attempts per batch nothing is lost: the seeded faults below never hit one batch
    // 12 times, so a client that gave up early (or never retried) fails here.
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.summary.uploaded, 1000);
    let accepted = sim.accepted_ids();
    assert_eq!(accepted.len(), 1000, "a record accepted twice or lost");
    let expected: HashSet<String> = (0..1000)
        .map(|i| format!("indicator--{}", common::uuid_for(i)))
        .collect();
    assert_eq!(accepted.into_iter().collect::<HashSet<_>>(), expected);

    // The simulator draws one fault per admitted request from an RNG seeded with `seed`
    // (crates/sentinel-sim/src/server.rs, `draw_fault`): whatever order the four concurrent
    // batches arrive in, the n-th request gets the n-th draw. So the run is exactly the draws up
    // to the 10th success (10 batches of 100), each fault retried and nothing sent after.
    let faults = seeded_faults(7, 0.15, 0.15, 10);
    let requests = sim.requests();
    let statuses = |injected: bool| {
        let mut s: Vec<u16> = requests
            .iter()
            .filter(|q| q.injected == injected)
            .map(|q| q.status)
            .collect();
        s.sort_unstable();
        s
    };
    assert_eq!(statuses(true), faults, "{requests:?}");
    assert_eq!(statuses(false), vec![200; 10], "{requests:?}");
    assert_eq!(requests.len(), 10 + faults.len(), "{requests:?}");
    assert!(
        !faults.is_empty(),
        "seed 7 must inject faults for this test to mean anything"
    );
    for q in &requests {
        assert_eq!(q.objects, 100, "{q:?}");
        assert_eq!(q.accepted, if q.injected { 0 } else { 100 }, "{q:?}");
    }
}

/// The statuses (sorted) of the faults the simulator's seeded RNG injects before its
/// `successes`-th clean answer: the same draws as `Shared::draw_fault`
/// (crates/sentinel-sim/src/server.rs): a roll under the 429 share is a 429; under both shares a
/// 503 three times in four, else a 500.
fn seeded_faults(seed: u64, p429: f64, p5xx: f64, successes: usize) -> Vec<u16> {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut faults, mut ok) = (Vec::new(), 0);
    while ok < successes {
        let roll: f64 = rng.random();
        if roll < p429 {
            faults.push(429);
        } else if roll < p429 + p5xx {
            faults.push(if rng.random_bool(0.75) { 503 } else { 500 });
        } else {
            ok += 1;
        }
    }
    faults.sort_unstable();
    faults
}

fn objects(values: Vec<Value>) -> Vec<Map<String, Value>> {
    values
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn per_record_service_errors_are_mapped_and_not_retried() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let up = uploader(&sim, &[]);
    let mut batch = common::corpus(5, &[]);
    // Objects the local validator would stop, sent straight to the service.
    batch[1].as_object_mut().unwrap().remove("pattern");
    batch[3]["confidence"] = serde_json::json!(1000);
    let out = up.upload(&objects(batch), None).await;
    assert_eq!(out.len(), 5);
    for (i, o) in out.iter().enumerate() {
        match i {
            1 | 3 => {
                let f = o.as_ref().unwrap();
                assert_eq!(f.code, Code::RejectedByService);
                assert!(!f.messages.is_empty());
            }
            _ => assert!(o.is_none(), "record {i}: {o:?}"),
        }
    }
    assert_eq!(
        sim.requests().len(),
        1,
        "a 200 with errors[] must not be retried"
    );
    assert_eq!(sim.accepted_ids().len(), 3);
}

#[tokio::test]
async fn wrong_audience_fails_the_batch_as_unauthorized_without_retrying() {
    let sim = Simulator::start(SimConfig {
        audience: "https://api.other.example".into(),
        extra_audiences: vec![],
        ..Default::default()
    })
    .await
    .unwrap();
    let up = uploader(&sim, &[]);
    let out = up.upload(&objects(common::corpus(3, &[])), None).await;
    assert_eq!(out.len(), 3);
    for o in &out {
        let f = o.as_ref().unwrap();
        assert_eq!(f.code, Code::Unauthorized);
        assert!(f.messages[0].contains("401"), "{:?}", f.messages);
    }
    assert_eq!(sim.requests().len(), 1);
    assert!(sim.accepted_ids().is_empty());
}

#[tokio::test]
async fn unknown_workspace_fails_the_batch_as_not_found() {
    let sim = Simulator::start(SimConfig {
        workspaces: vec!["00000000-0000-4000-8000-000000000001".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let up = uploader(&sim, &[]);
    let out = up.upload(&objects(common::corpus(2, &[])), None).await;
    assert_eq!(out.len(), 2);
    for o in &out {
        let f = o.as_ref().unwrap();
        assert_eq!(f.code, Code::WorkspaceNotFound);
        assert!(f.messages[0].contains("TI_WORKSPACE_ID"));
    }
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_429_with_the_service_message_is_waited_out_and_retried() {
    // A quota of 2 requests per 2 s: the third request gets the real 429 body with its wait.
    let sim = Simulator::start(SimConfig {
        requests_per_window: 2,
        window: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .unwrap();
    // The client believes it may send 100/min, so it hits the server's limit and must obey it.
    let up = uploader(
        &sim,
        &[("TI_BATCH_SIZE", "10"), ("TI_MAX_CONCURRENCY", "1")],
    );
    let input = serde_json::to_vec(&common::corpus(40, &[])).unwrap();
    let outcome = pipeline::run(pipeline::once(input), source(), &ctx(up))
        .await
        .unwrap();
    assert!(
        outcome.report.errors.is_empty(),
        "{:?}",
        outcome.report.errors
    );
    assert_eq!(
        outcome.report.summary.uploaded, 40,
        "{:?}",
        outcome.report.errors
    );
    let requests = sim.requests();
    let statuses: Vec<u16> = requests.iter().map(|q| q.status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    // Four batches of 10, each accepted once; nothing but 200s and the quota's 429s.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(statuses.len(), 4 + throttled, "{statuses:?}");
    // The client waited instead of hammering: few 429s, and after each one the next request
    // came at least the "Try again in N seconds" later (N >= 1: the simulator never says 0,
    // crates/sentinel-sim/src/limiter.rs `retry_secs`), on the simulator's own clock.
    assert!(throttled <= 3, "{statuses:?}");
    for pair in requests.windows(2) {
        if pair[0].status == 429 {
            assert!(
                pair[1].at - pair[0].at >= Duration::from_secs(1),
                "a retry sooner than the service asked: {requests:?}"
            );
        }
    }
    // Four requests at 2 per 2 s: the last accepted one came a whole window after the first.
    let ok: Vec<Duration> = requests
        .iter()
        .filter(|q| q.status == 200)
        .map(|q| q.at)
        .collect();
    assert!(ok[3] - ok[0] >= Duration::from_secs(2), "{requests:?}");
}

#[tokio::test]
async fn the_token_is_requested_for_the_management_scope() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let up = uploader(&sim, &[]);
    let out = up.upload(&objects(common::corpus(1, &[])), None).await;
    assert_eq!(out.len(), 1);
    assert!(out[0].is_none(), "{out:?}");
    // The simulator checks the audience; reaching it with 200 proves the scope.
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].status, 200);
}
