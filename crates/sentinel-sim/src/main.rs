//! `sentinel-sim`: runs the simulator until Ctrl-C, for the demo and manual runs. Prints the
//! base URL on start (scripts read that first line) and what was accepted on exit.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use sentinel_sim::{GraphApi, Retired, SimConfig, Simulator, DEFAULT_WORKSPACE_ID};

/// A local simulator of the Microsoft Sentinel threat-intelligence upload API.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Requests admitted per identity in each rolling window.
    #[arg(long, default_value_t = 100)]
    requests_per_window: u32,
    /// Length of the rate-limit window.
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Share (0..1) of requests answered with an injected 429.
    #[arg(long, default_value_t = 0.0)]
    fault_429: f64,
    /// Share (0..1) of requests answered with an injected 503/500.
    #[arg(long, default_value_t = 0.0)]
    fault_5xx: f64,
    /// Delay added to every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the fault-injection RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A workspace id that exists (repeat for several); any other gets 404.
    #[arg(long = "workspace", default_value = DEFAULT_WORKSPACE_ID)]
    workspaces: Vec<String>,
    /// Play the retired Graph tiIndicators API: its route answers this status (400: "Resource
    /// not found for the segment", 404 or 410).
    #[arg(long, value_parser = ["400", "404", "410"])]
    graph_retired: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sim = Simulator::start(SimConfig {
        port: args.port,
        requests_per_window: args.requests_per_window,
        window: Duration::from_secs(args.window_secs),
        fault_429_share: args.fault_429,
        fault_5xx_share: args.fault_5xx,
        latency: Duration::from_millis(args.latency_ms),
        seed: args.seed,
        workspaces: args.workspaces,
        graph_api: match args.graph_retired.as_deref() {
            None => GraphApi::Available,
            Some("400") => GraphApi::Retired(Retired::SegmentNotFound),
            Some("404") => GraphApi::Retired(Retired::NotFound),
            Some(_) => GraphApi::Retired(Retired::Gone),
        },
        ..SimConfig::default()
    })
    .await?;
    println!("{}", sim.url());

    tokio::signal::ctrl_c().await?;

    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for object in sim.accepted() {
        let t = object["type"].as_str().unwrap_or("?").to_owned();
        *by_type.entry(t).or_default() += 1;
    }
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for request in sim.requests() {
        *by_status.entry(request.status).or_default() += 1;
    }
    println!("accepted objects: {}", by_type.values().sum::<usize>());
    for (t, n) in &by_type {
        println!("  {t}: {n}");
    }
    println!("graph indicators: {}", sim.graph_accepted().len());
    println!("requests by status: {by_status:?}");
    sim.shutdown().await;
    Ok(())
}
