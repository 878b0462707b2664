//! `validate` and `upload`: each file through the pipeline with the settings of the environment
//! and the command line's overrides ([`crate::startup::Offline`]), the summary printed, the
//! report written, the exit code of the worst file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::checkpoints::upload_resumable;
use super::exit::Exit;
use super::progress::progress_bar;
use super::read::run_file;
use super::report_files::write_report_files;
use crate::auth;
use crate::pipeline::RunContext;
use crate::settings::Env;
use crate::startup::Offline;
use crate::upload::target::TargetKind;

/// Command-line flags that override settings from the environment.
#[derive(Debug, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub workspace_id: Option<String>,
    pub format: Option<String>,
}

impl Overrides {
    pub fn env(self, validate_only: bool) -> Env {
        let mut pairs: Vec<(String, String)> = std::env::vars().collect();
        if let Some(t) = self.target {
            pairs.push(("TI_TARGET".into(), t));
        }
        if let Some(w) = self.workspace_id {
            pairs.push(("TI_WORKSPACE_ID".into(), w));
        }
        if let Some(f) = self.format {
            pairs.push(("TI_FORMAT".into(), f));
        }
        if validate_only {
            pairs.push(("TI_TARGET".into(), "dry-run".into()));
        }
        Env::from_pairs(pairs)
    }
}

/// What `offline` does with the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Validate,
    Upload,
    /// Upload every valid object revoked (src/lifecycle, `mark_revoked`).
    Revoke,
}

pub async fn offline(
    files: &[PathBuf],
    report: Option<&Path>,
    overrides: Overrides,
    mode: Mode,
) -> Result<ExitCode> {
    let validate_only = mode == Mode::Validate;
    // validate sends nothing (the dry run), but applies the rules of the targets it was given.
    let validate_as = if validate_only {
        let given = overrides
            .target
            .clone()
            .or_else(|| std::env::var("TI_TARGET").ok());
        match given {
            Some(t) => TargetKind::parse_list(&t).context("--target / TI_TARGET")?,
            None => vec![TargetKind::SentinelStix],
        }
    } else {
        Vec::new()
    };
    let env = overrides.env(validate_only);
    let offline = Offline::build(&env, validate_as)?;
    let (settings, upload, credential) = (&offline.settings, &offline.upload, &offline.credential);
    // A credential that cannot work is found before any record is read: one message, exit 2.
    if let (Some(c), false) = (credential, validate_only) {
        if let Err(message) = crate::doctor::preflight(
            c,
            upload,
            !auth::identity_endpoint_configured(),
            settings.client_id.as_deref(),
        )
        .await
        {
            eprintln!("ti-ingest: {message}");
            return Ok(Exit::Unusable.into());
        }
    }
    let uploader = offline.uploader()?;
    let ctx = RunContext {
        format: settings.input.format,
        defaults: settings.input.defaults,
        max_input_bytes: settings.max_input_bytes,
        validate_only,
        revoke: mode == Mode::Revoke,
        ..RunContext::new(uploader)
    };
    if files.len() > 1 {
        if let Some(dir) = report {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the report directory {}", dir.display()))?;
        }
    }
    let mut worst = Exit::Fine;
    for file in files {
        let outcome = if validate_only {
            // Validation is fast, but a large file still takes seconds: show it moving.
            let bar = progress_bar(file, Default::default(), &ctx, validate_only);
            let progress = std::sync::Arc::new(crate::pipeline::Progress::default());
            bar.attach(progress.clone());
            let mut file_ctx = ctx.clone();
            file_ctx.progress = Some(progress);
            let outcome = run_file(file, &file_ctx).await;
            bar.finish();
            outcome?
        } else if file.as_os_str() == "-" || mode == Mode::Revoke {
            // A revoke file is short and sent whole (an upload's checkpoints are not its own).
            run_file(file, &ctx).await?
        } else {
            match upload_resumable(file, &ctx).await? {
                Some(o) => o,
                None => return Ok(Exit::Interrupted.into()),
            }
        };
        let r = &outcome.report;
        eprintln!(
            "{}: {} records, {} {}, {} rejected{}",
            r.source.name,
            r.summary.records,
            r.summary.uploaded,
            match mode {
                Mode::Validate => "valid",
                Mode::Upload => "uploaded",
                Mode::Revoke => "revoked",
            },
            r.summary.rejected,
            r.input_error
                .as_ref()
                .map(|e| format!("; input error: {}", e.message))
                .unwrap_or_default()
        );
        for e in r.errors.iter().take(10) {
            eprintln!(
                "  record {} (line {}): {}: {}",
                e.record_index,
                e.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                serde_json::to_value(e.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                e.messages.join("; ")
            );
        }
        if r.errors.len() > 10 {
            eprintln!("  ... and {} more (see the report)", r.errors.len() - 10);
        }
        if let Some(path) = report {
            let path = if files.len() > 1 {
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "stdin".into());
                path.join(format!("{name}.report.json"))
            } else {
                path.to_path_buf()
            };
            write_report_files(&path, &outcome)?;
        }
        worst = worst.max(Exit::of_report(r));
    }
    Ok(worst.into())
}
