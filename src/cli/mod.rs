//! The command line (README.md, Command line): the same binary serves the Functions host and runs the same
//! pipeline by hand. Exit codes: 0 all records fine, 1 some records rejected, 2 unusable input or
//! arguments, or no token for a target's audience (`upload` and `pull` get one for each before
//! reading anything). `doctor`: 0 every check passed, 2 otherwise.
//!
//! Layout: this file holds the arguments and the dispatch; [`exit`] the exit codes; [`serve`] the
//! handler; [`offline`] `validate` and `upload`; [`convert`] its own streaming loop;
//! [`checkpoints`] `upload`'s resumable ranges; [`read`] the file reader; [`progress`] the bar;
//! [`report_files`] the report files; [`pull`] `ti-ingest pull`. What they run with is built by
//! [`crate::startup`].

pub mod checkpoints;
pub mod convert;
pub mod exit;
pub mod offline;
pub mod progress;
pub mod pull;
pub mod read;
pub mod report_files;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use convert::ConvertTo;
use exit::Exit;
use offline::{Mode, Overrides};

use crate::settings::Env;

#[derive(Parser, Debug)]
#[command(
    name = "ti-ingest",
    version,
    about = "Threat-intelligence indicators into Microsoft Sentinel"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the Azure Functions custom handler (what host.json starts).
    Serve {
        /// Port to listen on; defaults to FUNCTIONS_CUSTOMHANDLER_PORT.
        #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
        port: u16,
    },
    /// Parse, convert and validate files offline; nothing is sent.
    Validate {
        /// Input files (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also apply what this target would refuse before sending (default TI_TARGET, else
        /// sentinel-stix): `sentinel-indicators` takes only indicators, `graph` only what converts
        /// to a valid tiIndicator. Several may be listed, comma-separated. Nothing is sent.
        #[arg(long)]
        target: Option<String>,
        /// Write the report (docs/REPORTS.md) here; with several files, a directory for one report each.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Force the input format instead of detecting it (see TI_FORMAT).
        #[arg(long)]
        format: Option<String>,
    },
    /// Print the records of a file converted to STIX (a bundle), Graph tiIndicators
    /// (`{"value":[..]}`) or a Sentinel upload request body; invalid records go to stderr.
    Convert {
        file: PathBuf,
        #[arg(long, value_enum)]
        to: ConvertTo,
        #[arg(long)]
        format: Option<String>,
    },
    /// Upload files to the target with the identity from the environment (managed identity when
    /// IDENTITY_ENDPOINT is set, else the Azure CLI login).
    Upload(SendArgs),
    /// Revoke the indicators a file lists: each is sent as a new version with `revoked: true`
    /// (like `upload`, same identity, targets and report; a revoke file dropped under `revoke/`
    /// in the inbox does the same).
    Revoke(SendArgs),
    /// Run the configured feed pulls (TI_FEEDS_CONFIG) once, like the PullFeeds timer, with
    /// storage and identity from the environment.
    Pull {
        /// Pull only this feed.
        #[arg(long)]
        feed: Option<String>,
    },
    /// Check the app's settings, a token for each target's audience, the storage containers and
    /// queues, and each target with a request that uploads nothing; print the fix for each
    /// failure. Exit 0 when every check passes, 2 otherwise.
    Doctor {
        /// Print the result as JSON (the Health function's answer) instead of lines.
        #[arg(long)]
        json: bool,
    },
}

/// What `upload` and `revoke` take: files sent to the targets.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The target, or several comma-separated, as TI_TARGET names them; defaults to TI_TARGET.
    #[arg(long)]
    pub target: Option<String>,
    /// The Log Analytics workspace id; defaults to TI_WORKSPACE_ID.
    #[arg(long)]
    pub workspace_id: Option<String>,
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long)]
    pub format: Option<String>,
}

impl SendArgs {
    async fn run(self, mode: Mode) -> Result<ExitCode> {
        let o = Overrides {
            target: self.target,
            workspace_id: self.workspace_id,
            format: self.format,
        };
        offline::offline(&self.files, self.report.as_deref(), o, mode).await
    }
}

/// Runs the command line; `main` only maps the result to a process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        Some(c) => c,
        None => match std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
        {
            Some(port) => Command::Serve { port },
            None => {
                eprintln!(
                    "ti-ingest: no command given (serve, validate, upload, doctor); see --help"
                );
                return Exit::Unusable.into();
            }
        },
    };
    let result = match command {
        Command::Serve { port } => serve::serve(port).await.map(|_| ExitCode::SUCCESS),
        Command::Validate {
            files,
            target,
            report,
            format,
        } => {
            let o = Overrides {
                format,
                target,
                ..Default::default()
            };
            offline::offline(&files, report.as_deref(), o, Mode::Validate).await
        }
        Command::Upload(args) => args.run(Mode::Upload).await,
        Command::Revoke(args) => args.run(Mode::Revoke).await,
        Command::Convert { file, to, format } => convert::convert(&file, to, format).await,
        Command::Pull { feed } => pull::pull(feed).await,
        Command::Doctor { json } => doctor(json).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ti-ingest: {e:#}");
            Exit::Unusable.into()
        }
    }
}

/// `ti-ingest doctor`: every check, printed; exit 0 when all pass, else 2.
async fn doctor(as_json: bool) -> Result<ExitCode> {
    let diagnosis = crate::doctor::diagnose(
        &Env::from_process(),
        crate::doctor::Identity::FromEnvironment,
    )
    .await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&diagnosis.to_json())?);
    } else {
        print!("{}", diagnosis.render());
    }
    Ok(if diagnosis.healthy {
        Exit::Fine
    } else {
        Exit::Unusable
    }
    .into())
}
