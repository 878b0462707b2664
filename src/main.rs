//! The `ti-ingest` binary: parse the command line, set up tracing, run.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ti_ingest::cli::{Cli, Command};

// The pipeline allocates a JSON map per record; mimalloc frees them far faster than glibc's
// allocator (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the Tokio runtime starts")
        .block_on(run())
}

/// Transparent huge pages off for this process, before the runtime's threads allocate: what
/// mimalloc does itself when `MIMALLOC_ALLOW_THP=0` is set ("When set to `0`, THP is disabled for
/// the process that mimalloc runs in", mimalloc's readme, Environment Options; it calls this same
/// `prctl(PR_SET_THP_DISABLE, 1)`). With THP, mimalloc's arena is backed by 2 MiB pages: a
/// 1,000,000-line text list or CSV then peaked at 57-73 MiB resident instead of about 30, with no
/// speed gained (BENCHMARKS.md, Lists). It only affects this process (PR_SET_THP_DISABLE(2const),
/// Linux man-pages); on failure (an old kernel) the process runs as before.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("ti-ingest: could not turn transparent huge pages off ({e}); continuing");
    }
}

async fn run() -> ExitCode {
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
