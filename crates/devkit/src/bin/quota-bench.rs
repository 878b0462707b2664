//! `quota-bench`: how much of one identity's upload quota `ti-ingest upload` really uses.
//!
//! Starts the Sentinel simulator (100 requests per scaled window, fixed latency) and the local
//! managed-identity endpoint, writes a corpus of STIX indicators, runs one or more
//! `ti-ingest upload` processes sharing the one identity (each given an equal share of the
//! corpus), and reports from the simulator's request log:
//! - the sustained rate: the quota is a sliding window (request k+100 may start one window
//!   after request k), so the rate is 100 requests × the mean objects per request per the mean
//!   time between requests k and k+100, as a share of the quota (100 requests × 100 objects per
//!   window); the end-to-end figure (start-up and the last window's tail included) is printed
//!   too;
//! - the 429s received (total, and after the first window: "steady state");
//! - whether every record arrived (accepted ids = corpus, reports' `uploaded` = corpus).
//!
//! `bench/quota.sh` builds the release binaries and runs this.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use devkit::{IdentityConfig, IdentityEndpoint};
use sentinel_sim::{SimConfig, Simulator};
use serde_json::{json, Value};

/// The workspace the simulator knows by default.
const WORKSPACE: &str = sentinel_sim::DEFAULT_WORKSPACE_ID;
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
    let identity = IdentityEndpoint::start(IdentityConfig::default()).await?;
    let sim = Simulator::start(SimConfig {
        requests_per_window: QUOTA_REQUESTS,
        window,
        latency: Duration::from_millis(args.latency_ms),
        ..Default::default()
    })
    .await?;

    let dir = tempfile::tempdir()?;
    let per = args.objects.div_ceil(args.processes);
    let mut files = Vec::new();
    for p in 0..args.processes {
        let range = (p * per)..((p + 1) * per).min(args.objects);
        let objects: Vec<Value> = range.map(indicator).collect();
        let path = dir.path().join(format!("part-{p}.json"));
        std::fs::write(&path, serde_json::to_vec(&objects)?)?;
        files.push((path, objects.len()));
    }

    eprintln!(
        "quota-bench: {} objects, {} process(es), window {:?}, latency {} ms, concurrency {}",
        args.objects, args.processes, window, args.latency_ms, args.concurrency
    );
    let started = Instant::now();
    let mut children = Vec::new();
    for (p, (file, _)) in files.iter().enumerate() {
        let report = dir.path().join(format!("part-{p}.report.json"));
        let mut cmd = tokio::process::Command::new(&args.ti_ingest);
        cmd.arg("upload")
            .arg(file)
            .arg("--target")
            .arg("sentinel-stix")
            .arg("--report")
            .arg(&report)
            .envs(identity.env())
            .env("TI_API_BASE_URL", sim.url())
            .env("TI_WORKSPACE_ID", WORKSPACE)
            .env("TI_RATE_WINDOW_SECS", args.window_secs.to_string())
            .env("TI_MAX_CONCURRENCY", args.concurrency.to_string())
            .env("TI_LOG", "warn")
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
    let wall = started.elapsed();

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
    println!("processes:             {}", args.processes);
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
    println!(
        "| {} | {} | {:.2}% | {} | {} | {} | {} | {:.1} s |",
        args.processes,
        args.objects,
        share,
        throttled.len(),
        steady_429,
        max_in_window,
        lost,
        wall.as_secs_f64()
    );
    sim.shutdown().await;
    if lost > 0 || reported != args.objects as u64 {
        bail!("records were lost");
    }
    Ok(())
}
