//! `bench-handler`: time and peak memory of the release handler on large inputs, through the
//! whole Functions path (issue 5, "Benchmark").
//!
//! For each `--input FILE:RECORDS` (a STIX bundle written by `gen-bundle`, RECORDS indicators,
//! all valid), on a fresh [`devkit::Stack`] (Azurite over HTTPS + OAuth, the identity endpoint,
//! the Sentinel simulator with a quota large enough never to throttle):
//! 1. streams the file into the inbox container in 32 MiB staged blocks (this process never
//!    holds the file);
//! 2. starts the handler binary (`serve`) the way the Functions host does;
//! 3. puts the blob's Event Grid BlobCreated message on the blob-events queue and drains the
//!    blob-events and work queues like the host's queue listener (dequeue, invoke, delete on
//!    2xx, release on failure: the cycle of `HostDriver::pump_queues`, one message at a time so
//!    every invocation is timed) until `<name>.report.json` exists;
//! 4. meanwhile samples the *handler process's* `VmRSS`/`VmHWM` from `/proc/<pid>/status`
//!    every 50 ms (Azurite, the simulator and this process are not counted);
//! 5. checks the final report (records = uploaded = RECORDS, nothing rejected, no input error)
//!    and the simulator (RECORDS distinct ids accepted), then prints one row per input.
//!
//! `--rejected-input FILE:RECORDS` is an input whose every record is rejected (e.g. a gzip of a
//! million lines that are no observable, issue 12): the same run, checking instead that the
//! report counts RECORDS rejected, nothing uploaded, and `rejected.ndjson` holds RECORDS lines.
//!
//! Wall time runs from the event being queued to the final report; it includes the simulator
//! and Azurite, which share the machine's cores with the handler, so the handler's own CPU time
//! (utime + stime from `/proc/<pid>/stat`) is printed as well.
//!
//! `bench/handler.sh` builds everything in release, generates the bundles and runs this.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use azure_core::http::RequestContent;
use azure_storage_blob::models::BlockLookupList;
use clap::Parser;
use devkit::host::{blob_created_event, event_grid_message, HostDriver, TriggerMessage};
use devkit::stack::{BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER, WORK_QUEUE};
use devkit::{AzuriteOptions, Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::Value;
use tokio::io::AsyncReadExt;

const BLOCK_BYTES: usize = 32 << 20;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Parser)]
#[command(
    about = "Peak RSS and time of the ti-ingest handler on large inputs split into work items"
)]
struct Args {
    /// The handler binary (a release build of `ti-ingest`).
    #[arg(long)]
    handler: PathBuf,
    /// `FILE:RECORDS`: a STIX bundle and the number of indicators in it (repeatable; each
    /// input gets a fresh stack and handler).
    #[arg(long = "input")]
    inputs: Vec<String>,
    /// `FILE:RECORDS`: an input whose RECORDS records are all rejected (repeatable).
    #[arg(long = "rejected-input")]
    rejected_inputs: Vec<String>,
    /// `TI_WORK_ITEM_RECORDS`.
    #[arg(long, default_value_t = 100_000)]
    work_item_records: u64,
    /// `TI_MAX_CONCURRENCY`.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// `TI_MAX_REQUESTS_PER_MINUTE` (the handler's pacer).
    #[arg(long, default_value_t = 100_000)]
    max_requests_per_minute: u32,
    /// The simulator's quota: requests per 1 s window.
    #[arg(long, default_value_t = 10_000)]
    sim_requests_per_second: u32,
    /// More handler settings, `KEY=VALUE` (repeatable), applied last.
    #[arg(long = "env")]
    extra_env: Vec<String>,
    /// Give up on one input after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// Before starting the handler, download the blob in this process with the same SDK call
    /// the handler makes (`BlobClient::download`, default options), consuming slowly, and
    /// report the chunk sizes it yields and how much this process's RSS grew: what the SDK's
    /// partitioned download buffers ahead of a slow reader. Done for the first input only:
    /// the allocator keeps freed pages, so a second probe in the same process shows no growth.
    #[arg(long)]
    probe_download: bool,
    /// Print every invocation as it finishes.
    #[arg(long)]
    verbose: bool,
    /// Copy the handler's output to stderr.
    #[arg(long)]
    echo_handler: bool,
}

/// What `/proc/<pid>/status` and `/proc/<pid>/stat` say about a process.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kb: u64,
    hwm_kb: u64,
}

fn read_mem(pid: u32) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Mem {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32, ticks_per_sec: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; everything after its ')' is fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The handler's memory, sampled in the background.
#[derive(Debug, Default)]
struct Samples {
    max_rss_kb: u64,
    last: Mem,
    /// (seconds since the start, RSS kB), one per second, for the shape of the curve.
    series: Vec<(f64, u64)>,
}

struct Sampler {
    samples: Arc<Mutex<Samples>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut next_series = 0.0;
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            while !st.load(Ordering::Relaxed) {
                tick.tick().await;
                let Some(m) = read_mem(pid) else { break };
                let mut s = s.lock().expect("sampler lock");
                s.max_rss_kb = s.max_rss_kb.max(m.rss_kb);
                s.last = m;
                let t = started.elapsed().as_secs_f64();
                if t >= next_series {
                    s.series.push((t, m.rss_kb));
                    next_series = t.floor() + 1.0;
                }
            }
        });
        Sampler {
            samples,
            stop,
            task,
        }
    }

    fn now(&self) -> Mem {
        self.samples.lock().expect("sampler lock").last
    }

    async fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        Arc::try_unwrap(self.samples)
            .map(|m| m.into_inner().expect("sampler lock"))
            .unwrap_or_default()
    }
}

/// One invocation of the handler.
#[derive(Debug)]
struct Invocation {
    function: &'static str,
    status: u16,
    secs: f64,
    return_value: Value,
    rss_after_kb: u64,
    hwm_after_kb: u64,
}

/// Lines of a file (its `\n` bytes).
fn bytecount_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// One input's result.
#[derive(Debug)]
struct Row {
    name: String,
    bytes: u64,
    records: u64,
    items: usize,
    invocations: usize,
    upload_secs: f64,
    wall_secs: f64,
    cpu_secs: f64,
    idle_rss_kb: u64,
    peak_hwm_kb: u64,
    item_rss_kb: Vec<u64>,
    requests: usize,
    accepted: usize,
    probe: Option<Probe>,
    all_rejected: bool,
}

/// Streams `path` into the inbox as a block blob of 32 MiB staged blocks.
async fn upload_file(stack: &Stack, name: &str, path: &Path) -> Result<u64> {
    let client = stack
        .storage()
        .blob_service()
        .blob_client(INBOX_CONTAINER, name)
        .block_blob_client();
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut total = 0u64;
    loop {
        let mut block = Vec::with_capacity(BLOCK_BYTES);
        while block.len() < BLOCK_BYTES {
            let n = (&mut file)
                .take((BLOCK_BYTES - block.len()) as u64)
                .read_to_end(&mut block)
                .await?;
            if n == 0 {
                break;
            }
        }
        if block.is_empty() {
            break;
        }
        let len = block.len() as u64;
        // Block ids of one blob must all have the same length.
        let id = format!("block-{:08}", ids.len()).into_bytes();
        client
            .stage_block(&id, len, RequestContent::from(block), None)
            .await
            .with_context(|| format!("staging block {} of {name}", ids.len()))?;
        ids.push(id);
        total += len;
        if len < BLOCK_BYTES as u64 {
            break;
        }
    }
    let list = BlockLookupList {
        latest: Some(ids),
        ..Default::default()
    };
    client
        .commit_block_list(list.try_into()?, None)
        .await
        .with_context(|| format!("committing the blocks of {name}"))?;
    Ok(total)
}

/// What [`probe_download`] saw.
#[derive(Debug, Clone, Copy)]
struct Probe {
    chunks: usize,
    max_chunk: usize,
    rss_growth_kb: u64,
}

/// Reads the first `PROBE_CHUNKS` chunks of the blob the way the handler opens it (one
/// `download(None)`: parallel ranged GETs of 4 MiB, re-sequenced), sleeping between chunks so
/// the downloader runs ahead as far as it is allowed to, and returns the peak RSS growth of
/// this process meanwhile.
async fn probe_download(stack: &Stack, name: &str) -> Result<Probe> {
    use futures::StreamExt;
    const PROBE_CHUNKS: usize = 24;
    let me = std::process::id();
    let base = read_mem(me).map_or(0, |m| m.rss_kb);
    let client = stack
        .storage()
        .blob_service()
        .blob_client(INBOX_CONTAINER, name);
    let mut body = client.download(None).await?.body;
    let mut probe = Probe {
        chunks: 0,
        max_chunk: 0,
        rss_growth_kb: 0,
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        probe.chunks += 1;
        probe.max_chunk = probe.max_chunk.max(chunk.len());
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let rss = read_mem(me).map_or(0, |m| m.rss_kb);
            probe.rss_growth_kb = probe.rss_growth_kb.max(rss.saturating_sub(base));
        }
        if probe.chunks >= PROBE_CHUNKS {
            break;
        }
    }
    Ok(probe)
}

async fn run_one(
    args: &Args,
    input: &str,
    ticks: f64,
    probe: bool,
    all_rejected: bool,
) -> Result<Row> {
    let (path, records) = input
        .rsplit_once(':')
        .with_context(|| format!("--input {input}: expected FILE:RECORDS"))?;
    let path = PathBuf::from(path);
    let records: u64 = records
        .parse()
        .with_context(|| format!("--input {input}: RECORDS is not a number"))?;
    let name = format!(
        "bench/{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bundle.json")
    );

    let mut extra_env: Vec<(String, String)> = vec![
        (
            "TI_WORK_ITEM_RECORDS".into(),
            args.work_item_records.to_string(),
        ),
        ("TI_MAX_CONCURRENCY".into(), args.concurrency.to_string()),
        (
            "TI_MAX_REQUESTS_PER_MINUTE".into(),
            args.max_requests_per_minute.to_string(),
        ),
        ("TI_LOG".into(), "warn".into()),
    ];
    for kv in &args.extra_env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv}: expected KEY=VALUE"))?;
        extra_env.push((k.to_string(), v.to_string()));
    }
    let stack = Stack::start(StackConfig {
        sim: SimConfig {
            requests_per_window: args.sim_requests_per_second,
            window: Duration::from_secs(1),
            latency: Duration::ZERO,
            ..SimConfig::default()
        },
        // On disk (a temporary --location): a GiB blob does not sit in node's heap.
        azurite: AzuriteOptions::default(),
        echo_handler: args.echo_handler,
        extra_env,
        ..StackConfig::default()
    })
    .await
    .context("starting the stack (run scripts/setup-azurite.sh first)")?;

    let t = Instant::now();
    let bytes = upload_file(&stack, &name, &path).await?;
    let upload_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "bench-handler: {name}: {bytes} bytes ({:.0} MiB, {records} records) uploaded in {upload_secs:.1} s",
        bytes as f64 / MIB
    );

    let probe = if probe {
        let p = probe_download(&stack, &name).await?;
        eprintln!(
            "bench-handler: {name}: SDK download probe: {} chunks read slowly, largest {} bytes; this process's RSS grew by up to {:.1} MiB",
            p.chunks,
            p.max_chunk,
            p.rss_growth_kb as f64 / 1024.0
        );
        Some(p)
    } else {
        None
    };

    let mut handler = stack.spawn_handler(&args.handler).await?;
    let pid = handler.pid();
    // Let the just-started handler settle before calling its RSS "idle".
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = read_mem(pid).context("reading the handler's /proc status")?;
    let cpu_before = cpu_secs(pid, ticks).unwrap_or(0.0);
    let sampler = Sampler::start(pid);
    let driver: HostDriver = handler.driver().clone();
    let storage = stack.storage().clone();

    let started = Instant::now();
    let event = blob_created_event(&stack.blob_url(), INBOX_CONTAINER, &name, bytes);
    storage
        .put_message(BLOB_EVENTS_QUEUE, &event_grid_message(&event))
        .await?;
    let routes: [(&str, &'static str); 2] = [
        (BLOB_EVENTS_QUEUE, "IngestBlobEvent"),
        (WORK_QUEUE, "IngestWorkItem"),
    ];
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut invocations: Vec<Invocation> = Vec::new();
    let mut failures = 0u32;
    let report: Value = 'run: loop {
        if Instant::now() > deadline {
            bail!("{name}: no final report after {} s", args.timeout_secs);
        }
        if let Some(status) = handler.try_exit_status() {
            bail!(
                "{name}: the handler exited ({status}):\n{}",
                handler.output()
            );
        }
        let mut idle_round = true;
        for (queue, function) in routes {
            for message in storage.receive_messages(queue, 1, 600).await? {
                idle_round = false;
                let t = Instant::now();
                let rsp = driver
                    .invoke_queue_message(
                        function,
                        "message",
                        &TriggerMessage::from_received(&message),
                        message.dequeue_count,
                    )
                    .await?;
                let secs = t.elapsed().as_secs_f64();
                // The sampler's last reading is at most 50 ms old; read now for the item's end.
                let mem = read_mem(pid).unwrap_or_else(|| sampler.now());
                let ok = rsp.is_success();
                let inv = Invocation {
                    function,
                    status: rsp.status,
                    secs,
                    return_value: rsp.return_value().cloned().unwrap_or(Value::Null),
                    rss_after_kb: mem.rss_kb,
                    hwm_after_kb: mem.hwm_kb,
                };
                if args.verbose || !ok {
                    eprintln!(
                        "bench-handler:   {} {} in {:.1} s, RSS {:.1} MiB (peak {:.1}): {}",
                        inv.function,
                        inv.status,
                        inv.secs,
                        inv.rss_after_kb as f64 / 1024.0,
                        inv.hwm_after_kb as f64 / 1024.0,
                        if ok {
                            inv.return_value.to_string()
                        } else {
                            rsp.text.clone()
                        }
                    );
                }
                invocations.push(inv);
                if ok {
                    storage.delete_message(queue, &message).await?;
                } else {
                    failures += 1;
                    if failures > 5 {
                        bail!("{name}: {failures} failed invocations; last: {}", rsp.text);
                    }
                    storage.release_message(queue, &message, 0).await?;
                }
            }
        }
        if let Some(report) = stack.report(&name).await? {
            break 'run report;
        }
        if idle_round {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid, ticks).unwrap_or(0.0) - cpu_before;
    let final_mem = read_mem(pid).unwrap_or_default();
    let samples = sampler.finish().await;

    // Checks: the report accounts for every record, the simulator holds every id.
    let summary = &report["summary"];
    let want = if all_rejected {
        serde_json::json!({"records": records, "uploaded": 0, "rejected": records})
    } else {
        serde_json::json!({"records": records, "uploaded": records, "rejected": 0})
    };
    if summary != &want || !report["inputError"].is_null() {
        bail!(
            "{name}: unexpected final report summary {summary} (inputError {}), expected {want}",
            report["inputError"]
        );
    }
    let accepted = stack.sim().accepted_ids().len();
    // `TI_TARGET=dry-run` (an experiment: the cost without the uploads) sends nothing.
    let dry_run = args.extra_env.iter().any(|kv| kv == "TI_TARGET=dry-run");
    if all_rejected {
        if accepted != 0 {
            bail!("{name}: the simulator accepted {accepted} ids, expected none");
        }
    } else if accepted as u64 != records && !dry_run {
        bail!("{name}: the simulator accepted {accepted} distinct ids, expected {records}");
    }
    let requests = stack.sim().requests();
    let refused = requests.iter().filter(|r| r.status != 200).count();
    if refused > 0 {
        eprintln!("bench-handler: note: {refused} simulator answers were not 200");
    }
    let rejected_file = stack
        .storage()
        .try_read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await?;
    let rejected_lines = rejected_file.map_or(0, |b| bytecount_lines(&b));
    if rejected_lines != if all_rejected { records } else { 0 } {
        bail!("{name}: rejected.ndjson has {rejected_lines} lines");
    }

    let items = invocations.iter().filter(|i| i.status / 100 == 2).count();
    let row = Row {
        name: name.clone(),
        bytes,
        records,
        items,
        invocations: invocations.len(),
        upload_secs,
        wall_secs,
        cpu_secs: cpu,
        idle_rss_kb: idle.rss_kb,
        peak_hwm_kb: final_mem.hwm_kb.max(samples.max_rss_kb),
        item_rss_kb: invocations.iter().map(|i| i.rss_after_kb).collect(),
        requests: requests.len(),
        all_rejected,
        accepted,
        probe,
    };
    let series: Vec<String> = samples
        .series
        .iter()
        .step_by((samples.series.len() / 40).max(1))
        .map(|(t, kb)| format!("{t:.0}s:{:.0}", *kb as f64 / 1024.0))
        .collect();
    eprintln!(
        "bench-handler: {name}: {} items, {:.1} s, peak RSS {:.1} MiB; RSS (MiB) over time: {}",
        row.items,
        wall_secs,
        row.peak_hwm_kb as f64 / 1024.0,
        series.join(" ")
    );
    // The range an invocation ran starts where the previous one said to continue (the last
    // range answers with the final summary, which has no `next`).
    let mut next_start = 0u64;
    let per_item: Vec<String> = invocations
        .iter()
        .map(|i| {
            let start = next_start;
            if let Some(n) = i.return_value.get("next").and_then(Value::as_u64) {
                next_start = n;
            }
            format!(
                "{}@{start}:{:.1}s/{:.0}MiB",
                if i.function == "IngestBlobEvent" {
                    "event"
                } else {
                    "item"
                },
                i.secs,
                i.hwm_after_kb as f64 / 1024.0
            )
        })
        .collect();
    eprintln!(
        "bench-handler: {name}: per invocation (start record: time / peak RSS so far): {}",
        per_item.join(" ")
    );
    drop(handler);
    drop(stack);
    Ok(row)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let ticks = clock_ticks();
    let mut rows = Vec::new();
    for (i, input) in args.inputs.iter().enumerate() {
        rows.push(run_one(&args, input, ticks, args.probe_download && i == 0, false).await?);
    }
    for input in &args.rejected_inputs {
        rows.push(run_one(&args, input, ticks, false, true).await?);
    }

    println!();
    println!(
        "| input | records | work items | wall s (event → final report) | records/s | handler CPU s | handler peak RSS (VmHWM) | RSS after each item (min–max) | idle RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let min = r.item_rss_kb.iter().copied().min().unwrap_or(0) as f64 / 1024.0;
        let max = r.item_rss_kb.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
        println!(
            "| {:.0} MiB ({} bytes){} | {} | {} | {:.1} | {:.0} | {:.1} | **{:.1} MiB** | {:.1}–{:.1} MiB | {:.1} MiB |",
            r.bytes as f64 / MIB,
            r.bytes,
            if r.all_rejected { ", every record rejected" } else { "" },
            r.records,
            r.items,
            r.wall_secs,
            r.records as f64 / r.wall_secs,
            r.cpu_secs,
            r.peak_hwm_kb as f64 / 1024.0,
            min,
            max,
            r.idle_rss_kb as f64 / 1024.0,
        );
    }
    println!();
    for r in &rows {
        println!(
            "{}: checks passed (report summary = {} records {}; simulator accepted {} distinct ids in {} requests); {} invocations; blob upload to Azurite {:.1} s",
            r.name,
            r.records,
            if r.all_rejected {
                "rejected, 0 uploaded, every one in rejected.ndjson"
            } else {
                "uploaded, 0 rejected"
            },
            r.accepted,
            r.requests,
            r.invocations,
            r.upload_secs
        );
        if let Some(p) = r.probe {
            println!(
                "{}: SDK download probe (default BlobClient::download, slow reader): chunks of up to {} bytes, RSS grew by up to {:.1} MiB",
                r.name,
                p.max_chunk,
                p.rss_growth_kb as f64 / 1024.0
            );
        }
    }
    Ok(())
}
