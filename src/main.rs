//! The `ti-ingest` binary: parse the command line, set up tracing, run.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ti_ingest::cli::{Cli, Command};

// The pipeline allocates a JSON map per record; mimalloc frees them far faster than glibc's
// allocator (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    ti_ingest::install_crypto_provider();
    let cli = Cli::parse();
    // The handler logs its per-invocation lines at INFO; the commands a person runs print their
    // own summaries, so their logs default to warnings only.
    let serving = matches!(cli.command, Some(Command::Serve { .. }) | None);
    let default = if serving { "info" } else { "warn" };
    // A bad TI_LOG stops start-up like every other bad setting (an unset or empty one is the
    // default).
    let filter = match std::env::var("TI_LOG") {
        Ok(v) if !v.trim().is_empty() => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "ti-ingest: setting TI_LOG={v:?} is not a log filter ({e}); use a level such as info or warn, or directives such as ti_ingest=debug,warn"
                );
                return ExitCode::from(2);
            }
        },
        _ => tracing_subscriber::EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // stdout is for command output (`convert`); the host logs the handler's stderr.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    ti_ingest::cli::run(cli).await
}
