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
use ti_ingest::settings::Env;
use ti_ingest::upload::UploadSettings;
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

/// Uploaders sharing one identity's quota through the ledger in Azurite, in real time: each is
/// built as a separate process builds it (its own registry, lanes and ledger view), only the
/// storage account is common.
mod ledger {
    use super::*;
    use devkit::{Azurite, AzuriteOptions};
    use ti_ingest::upload::ledger::{LedgerState, LedgerStore, LEDGER_PREFIX};

    const REPORTS: &str = "indicator-reports";
    /// The quota of these tests: 40 requests per window.
    const LIMIT: usize = 40;

    fn settings(extra: &[(&str, &str)]) -> UploadSettings {
        let mut pairs: Vec<(String, String)> = [
            ("TI_WORKSPACE_ID", WORKSPACE),
            ("TI_BATCH_SIZE", "5"),
            ("TI_MAX_CONCURRENCY", "4"),
            ("TI_MAX_REQUESTS_PER_MINUTE", "40"),
            // The client's window is twice the simulator's (below): a request would have to
            // start a whole simulator window (1 s) late for its successor 40 requests on to
            // be throttled, so the count of 429s does not depend on how busy the machine is.
            ("TI_RATE_WINDOW_SECS", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        UploadSettings::from_env(&Env::from_pairs(pairs)).unwrap()
    }

    async fn sim() -> Simulator {
        Simulator::start(SimConfig {
            requests_per_window: LIMIT as u32,
            window: Duration::from_secs(1),
            latency: Duration::from_millis(20),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_processes_sharing_one_ledger_draw_no_429_and_lose_nothing() {
        let env = common::shared_identity();
        let azurite = Azurite::start(env.ca(), AzuriteOptions::default())
            .await
            .unwrap();
        let storage =
            devkit::Storage::with_managed_identity(&azurite.blob_url(), &azurite.queue_url(), None)
                .unwrap();
        storage.create_container(REPORTS).await.unwrap();
        let sim = sim().await;
        let credential = ti_ingest::auth::managed_identity(None).unwrap();
        let store = LedgerStore::new(
            &url::Url::parse(&azurite.blob_url()).unwrap(),
            REPORTS,
            credential.clone(),
        )
        .unwrap();
        let base = sim.url();
        let uploaders: Vec<Uploader> = (0..4)
            .map(|_| {
                Uploader::with_ledger(
                    settings(&[("TI_API_BASE_URL", &base)]),
                    Some(credential.clone()),
                    Some(store.clone()),
                )
                .unwrap()
            })
            .collect();

        // 4 × 150 objects in batches of 5: 120 requests, three windows of the shared quota.
        let corpus = common::corpus(600, &[]);
        let started = std::time::Instant::now();
        let reports = futures::future::join_all(
            uploaders
                .iter()
                .zip(corpus.chunks(150))
                .map(|(up, part)| invocation(up.clone(), part.to_vec())),
        )
        .await;
        let elapsed = started.elapsed();

        let uploaded: u64 = reports.iter().map(|r| r.summary.uploaded).sum();
        assert_eq!(uploaded, 600, "{:?}", reports[0].errors);
        assert_eq!(sim.accepted_ids().len(), 600, "no record lost");
        let requests = sim.requests();
        let throttled = requests.iter().filter(|q| q.status == 429).count();
        if std::env::var_os("PACING_TRACE").is_some() {
            for q in &requests {
                eprintln!("{:>8.3} {}", q.at.as_secs_f64(), q.status);
            }
        }
        assert_eq!(requests.len(), 120, "no request refused or repeated");
        assert_eq!(throttled, 0);
        // Every request took its turn through the ledger; none fell back to local pacing.
        let stats: Vec<_> = uploaders
            .iter()
            .map(|u| u.ledger_stats().expect("a ledger"))
            .collect();
        eprintln!("ledger: {stats:?}, {elapsed:?}");
        assert!(stats.iter().map(|s| s.reserved).sum::<u64>() >= 120);
        assert_eq!(stats.iter().map(|s| s.fallbacks).sum::<u64>(), 0);
        // Four pacers alone would each have sent 40 at once; the ledger let 40 start in the
        // first client window, the next 40 one window (2 s, +0.5 %) after them, and so on.
        assert!(
            elapsed >= Duration::from_millis(4_020),
            "{elapsed:?}: 120 requests at 40 per 2 s need two whole windows after the first"
        );
        // The ledger blob holds only the start times that can still bind: at most 40, none a
        // window (2 s) before the last reservation's earliest time, which is itself at most a
        // window before the last start: the kept times span less than two windows.
        let names = storage
            .list_blobs(REPORTS, Some(LEDGER_PREFIX))
            .await
            .unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].ends_with("/management.azure.com.json"),
            "{names:?}"
        );
        let state: LedgerState =
            serde_json::from_slice(&storage.read_blob(REPORTS, &names[0]).await.unwrap()).unwrap();
        let starts: Vec<u64> = state.starts.iter().copied().collect();
        assert!(
            !starts.is_empty() && starts.len() <= LIMIT,
            "{} starts kept",
            starts.len()
        );
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
        assert!(
            starts[starts.len() - 1] - starts[0] < 4_000,
            "{starts:?} span two client windows (TI_RATE_WINDOW_SECS=2, in ms) or more"
        );
        assert_eq!(state.paused_until, 0, "no 429, no pause");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_ledger_falls_back_to_local_pacing_and_loses_nothing() {
        common::shared_identity();
        let sim = sim().await;
        let credential = ti_ingest::auth::managed_identity(None).unwrap();
        // Nothing listens on port 9 of this host: every ledger call fails at once.
        let store = LedgerStore::new(
            &url::Url::parse("https://127.0.0.1:9/devstoreaccount1").unwrap(),
            REPORTS,
            credential.clone(),
        )
        .unwrap();
        let up = Uploader::with_ledger(
            settings(&[("TI_API_BASE_URL", &sim.url())]),
            Some(credential),
            Some(store),
        )
        .unwrap();
        let report = invocation(up.clone(), common::corpus(100, &[])).await;
        assert_eq!(report.summary.uploaded, 100, "{:?}", report.errors);
        assert!(report.errors.is_empty());
        let requests = sim.requests();
        assert_eq!(requests.len(), 20);
        assert!(requests.iter().all(|q| q.status == 200));
        let stats = up.ledger_stats().unwrap();
        // One fall-back (one warning) for the whole run: the ledger is tried again only a
        // window later.
        assert_eq!(stats.fallbacks, 1);
        assert_eq!(stats.reserved, 0);
    }
}
