//! `quota-bench`: how much of one identity's upload quota ti-ingest really uses, from one or
//! many processes sharing the identity.
//!
//! Starts a [`devkit::Stack`] (Azurite over HTTPS + OAuth: the app's storage account, where the
//! quota ledger lives; the managed-identity endpoint; the Sentinel simulator with 100 requests
//! per scaled sliding window and a fixed latency), writes a corpus of STIX indicators, and runs
//! either
//! - `--mode cli`: `--processes` `ti-ingest upload` processes, each with an equal share of the
//!   corpus (a workstation's upload; given the app's storage settings, so they take part in
//!   the ledger unless `--ledger off`), or
//! - `--mode handlers`: `--processes` handler processes (`ti-ingest serve`, what every Function
//!   App instance runs), the corpus dropped as `--objects-per-input` inbox blobs whose
//!   BlobCreated events wait on the blob-events queue; each handler gets its own queue
//!   listener doing what the Functions host's does with host.json's `batchSize` and
//!   `newBatchThreshold` (fetch up to `batchSize` messages whenever no more than
//!   `newBatchThreshold` are running, invoke, delete on 2xx, release on failure),
//!
//! and reports from the simulator's request log:
//! - the sustained rate: the quota is a sliding window (request k+100 may start one window
//!   after request k), so the rate is 100 requests × the mean objects per request per the mean
//!   time between requests k and k+100, as a share of the quota (100 requests × 100 objects per
//!   window); the end-to-end figure (start-up and the last window's tail included) is printed
//!   too;
//! - the 429s received (total, and after the first window: "steady state");
//! - whether every record arrived (accepted ids = corpus, reports' `uploaded` = corpus).
//!
//! `bench/quota.sh` builds the release binaries and runs this for 1, 4 and 16 processes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use devkit::host::{blob_created_event, event_grid_message, TriggerMessage, QUEUE_BINDING};
use devkit::stack::{BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER, WORK_QUEUE};
use devkit::{ReceivedMessage, Stack, StackConfig, Storage};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};

const QUOTA_REQUESTS: u32 = 100;
const OBJECTS_PER_REQUEST: usize = 100;

#[derive(Debug, Parser)]
#[command(about = "Measure ti-ingest's use of the per-identity upload quota")]
struct Args {
    /// The `ti-ingest` binary (a release build).
    #[arg(long)]
    ti_ingest: PathBuf,
    /// Objects in the corpus.
    #[arg(long, default_value_t = 50_000)]
    objects: usize,
    /// `ti-ingest upload` processes sharing the identity, each with an equal share.
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// The simulator's quota window (the real one is 60 s); the client gets the same
    /// `TI_RATE_WINDOW_SECS`.
    #[arg(long, default_value_t = 6)]
    window_secs: u64,
    /// Latency the simulator adds to every answer.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// `TI_MAX_CONCURRENCY` for each process.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// `ti-ingest upload` processes, or handler processes fed from the queues.
    #[arg(long, value_enum, default_value_t = Mode::Cli)]
    mode: Mode,
    /// `TI_QUOTA_LEDGER`: whether the processes share the quota through the ledger in storage.
    #[arg(long, default_value = "on")]
    ledger: String,
    /// Handlers mode: objects per inbox blob (one BlobCreated event each).
    #[arg(long, default_value_t = 500)]
    objects_per_input: usize,
    /// Handlers mode: host.json to read `extensions.queues.batchSize`/`newBatchThreshold` from.
    #[arg(long, default_value = "host.json")]
    host_json: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Cli,
    Handlers,
}

fn indicator(i: usize) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--6f1b5b7e-0000-4000-8000-{i:012x}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": format!("bench indicator {i}"),
        "pattern": format!("[ipv4-addr:value = '10.{}.{}.{}']", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
        "confidence": 80, "labels": ["bench"]
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.processes == 0 || args.objects == 0 {
        bail!("--processes and --objects must be at least 1");
    }
    let window = Duration::from_secs(args.window_secs);
    let stack = Stack::start(StackConfig {
        sim: SimConfig {
            requests_per_window: QUOTA_REQUESTS,
            window,
            latency: Duration::from_millis(args.latency_ms),
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let settings: Vec<(String, String)> = [
        ("TI_RATE_WINDOW_SECS", args.window_secs.to_string()),
        ("TI_MAX_CONCURRENCY", args.concurrency.to_string()),
        ("TI_QUOTA_LEDGER", args.ledger.clone()),
        ("TI_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    eprintln!(
        "quota-bench: {} objects, {} {:?} process(es), ledger {}, window {:?}, latency {} ms, concurrency {}",
        args.objects, args.processes, args.mode, args.ledger, window, args.latency_ms, args.concurrency
    );
    let started = Instant::now();
    let reported = match args.mode {
        Mode::Cli => run_cli(&args, &stack, &settings).await?,
        Mode::Handlers => run_handlers(&args, &stack, &settings).await?,
    };
    let wall = started.elapsed();
    let sim = stack.sim();

    let requests = sim.requests();
    let mut admitted: Vec<_> = requests.iter().filter(|q| q.status == 200).collect();
    admitted.sort_by_key(|q| q.at);
    let throttled: Vec<_> = requests.iter().filter(|q| q.status == 429).collect();
    let first = admitted.first().map(|q| q.at).unwrap_or_default();
    let steady_429 = throttled.iter().filter(|q| q.at >= first + window).count();
    // The quota is a sliding window: request k+100 may start one window after request k. So
    // the sustained rate is 100 requests per the mean gap between requests k and k+100 (the
    // first window's burst and the last window's tail included in no way but that).
    let n = QUOTA_REQUESTS as usize;
    let gaps: Vec<f64> = (n..admitted.len())
        .map(|k| (admitted[k].at - admitted[k - n].at).as_secs_f64())
        .collect();
    if gaps.is_empty() {
        bail!("too few requests for a steady state: use more objects");
    }
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let objects_per_request =
        admitted.iter().map(|q| q.accepted).sum::<usize>() as f64 / admitted.len() as f64;
    let per_window = n as f64 * objects_per_request * window.as_secs_f64() / mean_gap;
    let quota = (QUOTA_REQUESTS as usize * OBJECTS_PER_REQUEST) as f64;
    let share = per_window / quota * 100.0;
    let accepted: BTreeSet<String> = sim.accepted_ids();
    let lost = args.objects - accepted.len().min(args.objects);
    let max_in_window = {
        let at: Vec<Duration> = admitted.iter().map(|q| q.at).collect();
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window).count())
            .max()
            .unwrap_or(0)
    };

    if std::env::var_os("QUOTA_BENCH_TRACE").is_some() {
        for q in &requests {
            eprintln!("{:>8.3} {} {}", q.at.as_secs_f64(), q.status, q.objects);
        }
    }
    println!(
        "processes:             {} ({:?}, ledger {})",
        args.processes, args.mode, args.ledger
    );
    println!("objects:               {}", args.objects);
    println!(
        "requests:              {} admitted, {} throttled (429)",
        admitted.len(),
        throttled.len()
    );
    println!("429s in steady state:  {steady_429} (after the first window)");
    println!("max admitted/window:   {max_in_window} (quota {QUOTA_REQUESTS})");
    println!(
        "sustained rate:        {per_window:.0} objects per window (objects/min at the real 60 s window)"
    );
    println!("share of quota:        {share:.2}%");
    println!(
        "wall clock:            {:.1} s ({:.0} objects/window end to end, start-up and the last window included)",
        wall.as_secs_f64(),
        args.objects as f64 / wall.as_secs_f64() * window.as_secs_f64()
    );
    println!(
        "records:               {} accepted by the simulator, {} reported uploaded, {} lost",
        accepted.len(),
        reported,
        lost
    );
    let ratio = throttled.len() as f64 / admitted.len() as f64 * 100.0;
    println!("429 ratio:             {ratio:.2}% of admitted requests");
    println!(
        "| {} {:?} | {} | {} | {:.2}% | {} ({ratio:.1} %) | {} | {} | {} | {:.1} s |",
        args.processes,
        args.mode,
        args.ledger,
        args.objects,
        share,
        throttled.len(),
        steady_429,
        max_in_window,
        lost,
        wall.as_secs_f64()
    );
    if lost > 0 || reported != args.objects as u64 {
        bail!("records were lost");
    }
    Ok(())
}

/// `ti-ingest upload` processes, each with an equal share of the corpus; returns the objects
/// their reports count as uploaded.
async fn run_cli(args: &Args, stack: &Stack, settings: &[(String, String)]) -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let per = args.objects.div_ceil(args.processes);
    let mut children = Vec::new();
    for p in 0..args.processes {
        let range = (p * per)..((p + 1) * per).min(args.objects);
        let objects: Vec<Value> = range.map(indicator).collect();
        let file = dir.path().join(format!("part-{p}.json"));
        std::fs::write(&file, serde_json::to_vec(&objects)?)?;
        let report = dir.path().join(format!("part-{p}.report.json"));
        let mut cmd = tokio::process::Command::new(&args.ti_ingest);
        cmd.arg("upload")
            .arg(&file)
            .arg("--target")
            .arg("sentinel-stix")
            .arg("--report")
            .arg(&report)
            // The app's storage settings, the identity, the simulator: a workstation run
            // with the app's settings.
            .envs(stack.handler_env())
            .envs(settings.iter().cloned())
            .env("TI_CHECKPOINT_DIR", dir.path().join(format!("state-{p}")))
            .kill_on_drop(true);
        children.push((cmd.spawn().context("starting ti-ingest")?, report));
    }
    let mut reported = 0u64;
    for (mut child, report) in children {
        let status = child.wait().await?;
        let r: Value = serde_json::from_slice(
            &std::fs::read(&report).with_context(|| format!("reading {}", report.display()))?,
        )?;
        if !status.success() {
            eprintln!("a ti-ingest process exited with {status}: {}", r["summary"]);
        }
        reported += r["summary"]["uploaded"].as_u64().unwrap_or(0);
    }
    Ok(reported)
}

/// `extensions.queues.batchSize` and `newBatchThreshold` from host.json.
fn queue_settings(host_json: &std::path::Path) -> Result<(u8, usize)> {
    let host: Value = serde_json::from_slice(
        &std::fs::read(host_json).with_context(|| format!("reading {}", host_json.display()))?,
    )?;
    let queues = &host["extensions"]["queues"];
    let batch = queues["batchSize"]
        .as_u64()
        .context("host.json has no extensions.queues.batchSize")?;
    let threshold = queues["newBatchThreshold"]
        .as_u64()
        .context("host.json has no extensions.queues.newBatchThreshold")?;
    Ok((u8::try_from(batch.clamp(1, 32))?, threshold as usize))
}

/// Handler processes fed from the queues like Function App instances; returns the objects the
/// reports count as uploaded.
async fn run_handlers(args: &Args, stack: &Stack, settings: &[(String, String)]) -> Result<u64> {
    let (batch_size, threshold) = queue_settings(&args.host_json)?;
    eprintln!("host.json: batchSize {batch_size}, newBatchThreshold {threshold}");
    let storage = stack.storage();
    let mut inputs = Vec::new();
    let mut start = 0;
    while start < args.objects {
        let end = (start + args.objects_per_input).min(args.objects);
        let objects: Vec<Value> = (start..end).map(indicator).collect();
        let name = format!("bench/input-{start:07}.json");
        let body = serde_json::to_vec(&objects)?;
        let len = body.len() as u64;
        storage.upload_blob(INBOX_CONTAINER, &name, body).await?;
        inputs.push((name, len));
        start = end;
    }
    let mut handlers = Vec::new();
    for _ in 0..args.processes {
        handlers.push(stack.spawn_handler_with(&args.ti_ingest, settings).await?);
    }
    // The files are dropped now: Event Grid queues one BlobCreated event each.
    for (name, len) in &inputs {
        let event = blob_created_event(&stack.blob_url(), INBOX_CONTAINER, name, *len);
        storage
            .put_message(BLOB_EVENTS_QUEUE, &event_grid_message(&event))
            .await?;
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut listeners = Vec::new();
    for handler in &handlers {
        for (queue, function) in [
            (BLOB_EVENTS_QUEUE, "IngestBlobEvent"),
            (WORK_QUEUE, "IngestWorkItem"),
        ] {
            listeners.push(tokio::spawn(listen(
                handler.driver().clone(),
                storage.clone(),
                queue,
                function,
                batch_size,
                threshold,
                done.clone(),
            )));
        }
    }
    // Done when every input has its report.
    let quota_windows =
        args.objects as f64 / (QUOTA_REQUESTS as usize * OBJECTS_PER_REQUEST) as f64;
    let timeout = Duration::from_secs_f64(quota_windows * args.window_secs as f64 * 4.0 + 180.0);
    let deadline = Instant::now() + timeout;
    let mut reported = 0u64;
    let mut pending: Vec<&String> = inputs.iter().map(|(n, _)| n).collect();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            done.store(true, Ordering::SeqCst);
            bail!(
                "{} of {} inputs still without a report after {timeout:?}",
                pending.len(),
                inputs.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut still = Vec::new();
        for name in pending {
            match storage
                .try_read_blob(REPORTS_CONTAINER, &format!("{name}.report.json"))
                .await?
            {
                Some(bytes) => {
                    let r: Value = serde_json::from_slice(&bytes)?;
                    reported += r["summary"]["uploaded"].as_u64().unwrap_or(0);
                }
                None => still.push(name),
            }
        }
        pending = still;
    }
    done.store(true, Ordering::SeqCst);
    for l in listeners {
        l.await??;
    }
    Ok(reported)
}

/// One function's queue listener on one instance, as the Functions host runs it: fetch up to
/// `batch_size` messages whenever no more than `threshold` are being processed (Microsoft Learn,
/// functions-bindings-storage-queue, host.json settings: "the maximum number of concurrent
/// messages being processed per function is batchSize plus newBatchThreshold"), invoke each,
/// delete on 2xx, make it visible again on failure (poison after the fifth dequeue).
async fn listen(
    driver: devkit::HostDriver,
    storage: Storage,
    queue: &'static str,
    function: &'static str,
    batch_size: u8,
    threshold: usize,
    done: Arc<AtomicBool>,
) -> Result<()> {
    let running = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    while !done.load(Ordering::SeqCst) {
        if running.load(Ordering::SeqCst) > threshold {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let messages = storage.receive_messages(queue, batch_size, 600).await?;
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for m in messages {
            running.fetch_add(1, Ordering::SeqCst);
            let (driver, storage, running) = (driver.clone(), storage.clone(), running.clone());
            tasks.spawn(async move {
                let result = invoke(&driver, &storage, queue, function, &m).await;
                running.fetch_sub(1, Ordering::SeqCst);
                result
            });
        }
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

async fn invoke(
    driver: &devkit::HostDriver,
    storage: &Storage,
    queue: &str,
    function: &str,
    m: &ReceivedMessage,
) -> Result<()> {
    let trigger = TriggerMessage::from_received(m);
    let rsp = driver
        .invoke_queue_message(function, QUEUE_BINDING, &trigger, m.dequeue_count)
        .await?;
    if rsp.is_success() {
        storage.delete_message(queue, m).await
    } else if m.dequeue_count >= devkit::host::QueueSettings::from_repo()?.max_dequeue_count {
        eprintln!("{function}: message {} poisoned: {}", m.id, rsp.status);
        storage
            .put_message(&format!("{queue}-poison"), &m.text)
            .await?;
        storage.delete_message(queue, m).await
    } else {
        eprintln!(
            "{function}: attempt {} failed: {}",
            m.dequeue_count, rsp.status
        );
        storage.release_message(queue, m, 0).await
    }
}
