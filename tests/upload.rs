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
use ti_ingest::settings::{Env, UploadSettings};
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

    let reported: HashSet<u64> = r.errors.iter().map(|e| e.record_index).collect();
    assert_eq!(reported.len(), r.errors.len(), "a record reported twice");
    for e in &r.errors {
        assert_eq!(e.code, Code::RetriesExhausted, "{e:?}");
    }
    // Every record not reported was accepted by the service, and nothing else was.
    let accepted = sim.accepted_ids();
    let expected: HashSet<String> = (0..1000)
        .filter(|i| !reported.contains(&(*i as u64)))
        .map(|i| format!("indicator--{}", common::uuid_for(i)))
        .collect();
    assert_eq!(accepted.len() as u64, r.summary.uploaded);
    assert_eq!(accepted.into_iter().collect::<HashSet<_>>(), expected);

    let requests = sim.requests();
    assert!(
        requests.iter().all(|q| q.objects <= 100),
        "a request over 100 objects"
    );
    let injected = requests.iter().filter(|q| q.injected).count();
    assert!(
        injected >= 1,
        "the fault injection did not fire: {requests:?}"
    );
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
    let started = std::time::Instant::now();
    let outcome = pipeline::run(pipeline::once(input), source(), &ctx(up))
        .await
        .unwrap();
    assert_eq!(
        outcome.report.summary.uploaded, 40,
        "{:?}",
        outcome.report.errors
    );
    let statuses: Vec<u16> = sim.requests().iter().map(|q| q.status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    // The client waited instead of hammering: few 429s, and it took at least one window.
    assert!(
        statuses.iter().filter(|s| **s == 429).count() <= 3,
        "{statuses:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn the_token_is_requested_for_the_management_scope() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let up = uploader(&sim, &[]);
    let out = up.upload(&objects(common::corpus(1, &[])), None).await;
    assert!(out[0].is_none(), "{out:?}");
    // The simulator checks the audience; reaching it with 200 proves the scope.
    assert_eq!(sim.requests()[0].status, 200);
}
