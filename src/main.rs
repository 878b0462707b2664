//! The `ti-ingest` binary: parse the command line, set up tracing, run.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // The host logs stderr at Error only for failures; stdout carries our structured lines.
        .with_writer(std::io::stderr)
        .init();
    ti_ingest::cli::run(ti_ingest::cli::Cli::parse()).await
}
