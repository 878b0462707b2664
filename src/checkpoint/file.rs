//! Parts in a local folder, `<start>.json` each: `ti-ingest upload`'s checkpoints (the folder is
//! chosen by `crate::cli::checkpoints`, `TI_CHECKPOINT_DIR`). A part that cannot be read is
//! logged and treated as missing, so its range is uploaded again (uploads are idempotent by id).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Part, PartStore};

/// The parts of one file's run, in `dir`.
#[derive(Debug, Clone)]
pub struct FileParts {
    dir: PathBuf,
}

impl FileParts {
    /// Creates `dir` when it does not exist.
    pub fn create(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the checkpoint folder {}", dir.display()))?;
        Ok(FileParts { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, start: u64) -> PathBuf {
        self.dir.join(format!("{start:015}.json"))
    }
}

impl PartStore for FileParts {
    fn name(&self, start: u64) -> String {
        self.path(start).display().to_string()
    }

    async fn read(&self, start: u64) -> Result<Option<Part>> {
        let path = self.path(start);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        match serde_json::from_slice::<Part>(&bytes) {
            Ok(p) if p.start == start => Ok(Some(p)),
            Ok(p) => {
                tracing::warn!(path = %path.display(), start = p.start, "ignoring a checkpoint of another range");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable checkpoint");
                Ok(None)
            }
        }
    }

    async fn write(&self, part: &Part) -> Result<()> {
        let path = self.path(part.start);
        std::fs::write(&path, serde_json::to_vec(part)?)
            .with_context(|| format!("writing the checkpoint {}", path.display()))
    }
}
