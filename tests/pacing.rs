//! The quota under paused time (`tokio::time::pause`): the real Uploader, pacer and retry loop
//! against the real simulator, whose rate limiter follows tokio's clock, so minutes of quota
//! windows pass in milliseconds and every count is exact.
//!
//! The token is fetched once in real time before the clock is paused (the identity endpoint
//! lives on its own thread and clock), and cached for the rest of the test.

mod common;

use std::time::Duration;

use sentinel_sim::{RequestRecord, SimConfig, Simulator};
use serde_json::{Map, Value};
use ti_core::report::Source;
use ti_ingest::pipeline::{self, RunContext};
use ti_ingest::settings::{Env, UploadSettings};
use ti_ingest::upload::Uploader;
use tokio::time::Instant;

/// The workspace the simulator knows by default.
const WORKSPACE: &str = sentinel_sim::DEFAULT_WORKSPACE_ID;
const MINUTE: Duration = Duration::from_secs(60);

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

/// One upload in real time, so the token is cached before the clock stops.
async fn warm_up(up: &Uploader, i: usize) {
    let o: Map<String, Value> = common::indicator(100_000 + i).as_object().unwrap().clone();
    let out = up.upload(&[o], None).await;
    assert!(out[0].is_none(), "{out:?}");
}

/// Runs `objects` through the pipeline as one invocation would.
async fn invocation(up: Uploader, objects: Vec<Value>) -> ti_core::report::Report {
    let ctx = RunContext::new(up);
    let source = Source {
        kind: "queue".into(),
        name: "pacing".into(),
        format: None,
    };
    let input = serde_json::to_vec(&objects).unwrap();
    pipeline::run(pipeline::once(input), source, &ctx)
        .await
        .unwrap()
        .report
}

/// The most requests the service admitted in any window of `window` (sliding, every start).
fn max_admitted_in_any_window(requests: &[RequestRecord], window: Duration) -> usize {
    let mut at: Vec<Duration> = requests
        .iter()
        .filter(|q| q.status != 429)
        .map(|q| q.at)
        .collect();
    at.sort();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn two_thousand_objects_from_concurrent_invocations_never_exceed_100_requests_a_minute() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // Small batches so 2,000 objects need 400 requests: four minutes of quota.
    let up = uploader(&sim, &[("TI_BATCH_SIZE", "5"), ("TI_MAX_CONCURRENCY", "8")]);
    warm_up(&up, 0).await;
    tokio::time::pause();
    let started = Instant::now();

    // Three invocations at once, sharing the process's uploader (and so its pacer).
    let corpus = common::corpus(2000, &[]);
    let parts: Vec<Vec<Value>> = corpus.chunks(700).map(<[Value]>::to_vec).collect();
    let reports =
        futures::future::join_all(parts.into_iter().map(|part| invocation(up.clone(), part))).await;
    let elapsed = started.elapsed();

    let uploaded: u64 = reports.iter().map(|r| r.summary.uploaded).sum();
    assert_eq!(uploaded, 2000);
    assert_eq!(sim.accepted_ids().len(), 2001);
    let requests = sim.requests();
    assert_eq!(requests.len(), 401, "no request was refused or repeated");
    assert!(requests.iter().all(|q| q.status == 200));
    assert!(max_admitted_in_any_window(&requests, MINUTE) <= 100);
    // And the quota is used, not wasted: 401 requests need four windows (plus the 0.5% margin),
    // not more.
    assert!(elapsed >= Duration::from_secs(240), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(245), "{elapsed:?}");
}

#[tokio::test]
async fn two_processes_sharing_one_identity_adapt_and_lose_nothing() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // Two uploaders are two processes: two pacers that each believe they own the quota.
    let settings = [("TI_BATCH_SIZE", "5"), ("TI_MAX_CONCURRENCY", "4")];
    let a = uploader(&sim, &settings);
    let b = uploader(&sim, &settings);
    warm_up(&a, 0).await;
    warm_up(&b, 1).await;
    tokio::time::pause();
    let started = Instant::now();

    let corpus = common::corpus(2000, &[]);
    let (ra, rb) = tokio::join!(
        invocation(a, corpus[..1000].to_vec()),
        invocation(b, corpus[1000..].to_vec())
    );
    let elapsed = started.elapsed();

    assert_eq!(
        ra.summary.uploaded + rb.summary.uploaded,
        2000,
        "{:?}",
        ra.errors
    );
    assert_eq!(sim.accepted_ids().len(), 2002, "no record lost");
    let requests = sim.requests();
    let throttled = requests.iter().filter(|q| q.status == 429).count();
    let admitted = requests.len() - throttled;
    assert_eq!(admitted, 402);
    assert!(max_admitted_in_any_window(&requests, MINUTE) <= 100);
    // No retry storm: after each 429 both processes wait and shrink their share, so 429s stay a
    // small fraction of the traffic.
    assert!(
        throttled * 10 <= admitted,
        "{throttled} 429s for {admitted} admitted requests"
    );
    // The combined rate stays close to the quota: 402 requests in at most ~5 windows.
    assert!(elapsed <= Duration::from_secs(300), "{elapsed:?}");
    eprintln!("two processes: {admitted} admitted, {throttled} throttled, {elapsed:?}");
}
