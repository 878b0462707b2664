//! `demo`: ti-ingest end to end on one machine. Starts the [`devkit::Stack`] (Azurite over HTTPS
//! with OAuth, a managed-identity endpoint, the Sentinel simulator), runs the handler binary the
//! way the Functions host does, drops every file of the examples folder into the inbox, delivers
//! each file's Event Grid BlobCreated event to `IngestBlobEvent`, then prints the reports and what
//! the simulator received. `scripts/demo.sh` builds the handler and runs this.

use anyhow::{bail, Context, Result};
use clap::Parser;
use devkit::stack::{INBOX_CONTAINER, REPORTS_CONTAINER};
use devkit::{workspace_root, Stack, StackConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(about = "Run ti-ingest locally against Azurite and the Sentinel simulator")]
struct Args {
    /// The handler binary (`target/debug/ti-ingest`).
    #[arg(long)]
    handler: PathBuf,
    /// Folder whose files are dropped into the inbox (default: the workspace's examples folder).
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Upload target (`TI_TARGET`): sentinel-stix, sentinel-indicators, graph, dry-run.
    #[arg(long, default_value = "sentinel-stix")]
    target: String,
    /// Show the handler's own log lines.
    #[arg(long)]
    echo_handler: bool,
    /// Keep everything running after the run (until Ctrl-C) and print the handler's settings.
    #[arg(long)]
    hold: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let ok = run(&args).await?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(args: &Args) -> Result<bool> {
    let examples = args
        .examples
        .clone()
        .unwrap_or_else(|| workspace_root().join("examples"));
    let files = input_files(&examples)?;
    if files.is_empty() {
        bail!("no input files under {}", examples.display());
    }

    println!("Starting Azurite (HTTPS + OAuth), the identity endpoint and the Sentinel simulator…");
    let stack = Stack::start(StackConfig {
        echo_handler: args.echo_handler,
        extra_env: vec![("TI_TARGET".into(), args.target.clone())],
        ..StackConfig::default()
    })
    .await?;
    println!("  blob storage  {}", stack.blob_url());
    println!("  queues        {}", stack.queue_url());
    println!("  identity      {}", stack.identity().endpoint());
    println!("  simulator     {}", stack.sim().url());

    println!("Starting the handler {} …", args.handler.display());
    let handler = stack
        .spawn_handler(&args.handler)
        .await
        .context("starting the handler")?;
    println!("  listening on  {}", handler.url());
    let driver = handler.driver();

    let mut ok = true;
    for (name, path) in &files {
        let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        println!();
        println!("▶ {INBOX_CONTAINER}/{name} ({} bytes)", content.len());
        let delivery = stack.ingest_blob(driver, name, content).await?;
        if delivery.poisoned {
            ok = false;
            println!(
                "  IngestBlobEvent failed {} times (last status {}): the host would move the event to the poison queue",
                delivery.attempts, delivery.final_status
            );
            let last = delivery.last().text.trim();
            if !last.is_empty() {
                println!("  last answer: {}", truncate(last, 300));
            }
        } else {
            println!(
                "  IngestBlobEvent → {} after {} attempt(s)",
                delivery.final_status, delivery.attempts
            );
        }
        match stack.report(name).await? {
            Some(report) => print_report(name, &report),
            None => {
                ok = false;
                println!("  no report at {REPORTS_CONTAINER}/{name}.report.json");
            }
        }
    }

    println!();
    print_simulator(&stack);

    if args.hold {
        println!();
        println!("Everything keeps running until Ctrl-C. The handler's settings:");
        for (key, value) in stack.handler_env() {
            println!("  export {key}='{value}'");
        }
        println!("  export FUNCTIONS_CUSTOMHANDLER_PORT={}", handler.port());
        tokio::signal::ctrl_c().await?;
    }
    if args.echo_handler {
        // Already shown as it happened.
    } else if !ok {
        println!();
        println!("Handler output:");
        print!("{}", handler.output());
    }
    Ok(ok)
}

/// Every regular file under `dir` (recursively, hidden files and READMEs skipped), as
/// (blob name with `/` separators, path), sorted by name.
fn input_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if file_name.starts_with('.') || file_name.to_ascii_lowercase().starts_with("readme") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((name, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn print_report(name: &str, report: &Value) {
    let summary = &report["summary"];
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .map_or("?".to_string(), |v| v.to_string())
    };
    println!(
        "  report {REPORTS_CONTAINER}/{name}.report.json: format {}, target {}",
        report["source"]["format"].as_str().unwrap_or("?"),
        report["target"].as_str().unwrap_or("?")
    );
    println!(
        "    records {}  uploaded {}  rejected {}  warnings {}",
        n("records"),
        n("uploaded"),
        n("rejected"),
        report["warnings"].as_array().map_or(0, Vec::len)
    );
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    for error in errors.iter().take(5) {
        let message = error["messages"]
            .as_array()
            .and_then(|m| m.first())
            .and_then(Value::as_str)
            .unwrap_or("");
        let line = error["line"]
            .as_u64()
            .map_or(String::new(), |l| format!(" line {l}"));
        println!(
            "    ✗ record {}{line} [{}/{}] {}",
            error["recordIndex"],
            error["stage"].as_str().unwrap_or("?"),
            error["code"].as_str().unwrap_or("?"),
            truncate(message, 160)
        );
    }
    if errors.len() > 5 {
        println!("    … and {} more", errors.len() - 5);
    }
}

fn print_simulator(stack: &Stack) {
    let requests = stack.sim().requests();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for request in &requests {
        *statuses.entry(request.status).or_default() += 1;
    }
    let statuses: Vec<String> = statuses
        .iter()
        .map(|(status, count)| format!("{status}×{count}"))
        .collect();
    println!("Sentinel simulator:");
    println!("  objects accepted  {}", stack.sim().accepted().len());
    println!(
        "  requests          {} ({})",
        requests.len(),
        if statuses.is_empty() {
            "none".to_string()
        } else {
            statuses.join(", ")
        }
    );
    let tokens = stack.identity().issued_resources();
    let mut scopes: Vec<&String> = tokens.iter().collect();
    scopes.sort();
    scopes.dedup();
    println!("Handler identity:");
    println!(
        "  tokens issued     {} (resources: {})",
        tokens.len(),
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}
