//! `ti-ingest upload`'s checkpointed ranges: a file is uploaded in ranges of
//! [`CLI_RANGE_RECORDS`], each checkpointed in the state folder ([`FileParts`], resumed and
//! assembled by the engine every checkpointed run uses, [`crate::checkpoint`]), so an
//! interrupted upload resumes after its last completed range.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use std::sync::Arc;

use super::progress::progress_bar;
use super::read::run_file;
use crate::checkpoint::file::FileParts;
use crate::checkpoint::{Checkpoints, Progress, Resume};
use crate::pipeline::{RunContext, RunOutcome};

/// Records per checkpointed range of `ti-ingest upload`: what an interrupted upload redoes.
const CLI_RANGE_RECORDS: u64 = 10_000;

/// `ti-ingest upload` of one file, in checkpointed ranges with a progress bar: Ctrl-C stops it
/// (returning `None`), and the same command later resumes after the last completed range
/// (records of the interrupted range are sent again; uploads are idempotent by id).
pub async fn upload_resumable(file: &Path, ctx: &RunContext) -> Result<Option<RunOutcome>> {
    let meta = std::fs::metadata(file).with_context(|| format!("opening {}", file.display()))?;
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // The checkpoints belong to this file in this version, for this target.
    let key = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!(
            "{}\n{}\n{modified}\n{}",
            canonical.display(),
            meta.len(),
            ctx.uploader.target_name()
        )
        .as_bytes(),
    );
    let store = FileParts::create(checkpoint_root().join(key.to_string()))?;
    let dir = store.dir().to_path_buf();
    let checkpoints = Checkpoints::new(store);
    let Resume { progress, done } = checkpoints.resume().await?;
    if let Progress::Missing(start @ 1..) = progress {
        eprintln!(
            "{}: resuming after record {start} (checkpoints in {})",
            file.display(),
            dir.display()
        );
    }
    let bar = progress_bar(file, done, ctx, false);
    let mut next = match progress {
        Progress::Missing(start) => Some(start),
        Progress::Complete { .. } => None,
    };
    while let Some(start) = next {
        let progress = Arc::new(crate::pipeline::Progress::default());
        bar.attach(progress.clone());
        let mut range_ctx = ctx.clone();
        range_ctx.range = start..start.saturating_add(CLI_RANGE_RECORDS);
        range_ctx.progress = Some(progress.clone());
        let run = run_file(file, &range_ctx);
        let outcome = tokio::select! {
            o = run => o?,
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                eprintln!(
                    "\ninterrupted: records before {start} are uploaded and checkpointed; run the same command again to resume"
                );
                return Ok(None);
            }
        };
        let part = checkpoints.record(start, &outcome).await?;
        bar.complete(&part.report.summary);
        next = part.next;
    }
    bar.finish();
    let outcome = checkpoints.assemble().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Some(outcome))
}

/// Where `upload` keeps its checkpoints (one folder per file, version and target, removed once
/// the file's run completes): `TI_CHECKPOINT_DIR`, else the user's state directory,
/// `$XDG_STATE_HOME/ti-ingest/checkpoints`, else `~/.local/state/ti-ingest/checkpoints` (the XDG
/// Base Directory Specification 0.8: "$XDG_STATE_HOME defines the base directory relative to
/// which user-specific state files should be stored. If $XDG_STATE_HOME is either not set or
/// empty, a default equal to $HOME/.local/state should be used"; a relative value is invalid and
/// ignored); on Windows `%LOCALAPPDATA%\ti-ingest\checkpoints`. Never the working directory.
fn checkpoint_root() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("TI_CHECKPOINT_DIR") {
        return dir;
    }
    let state = var("XDG_STATE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".local").join("state")))
        .or_else(|| var("LOCALAPPDATA"))
        .unwrap_or_else(std::env::temp_dir);
    state.join("ti-ingest").join("checkpoints")
}
