//! Parts in the reports container: `runs/<id>/parts/<start>.json` of a blob's run
//! ([`crate::work`] for the layout). A part that cannot be read or parsed is an error: the
//! invocation fails and the host redelivers it.

use anyhow::{Context, Result};

use super::{Part, PartStore};
use crate::storage::Storage;
use crate::work::Run;

/// The parts of one run of one blob version.
#[derive(Debug, Clone)]
pub struct BlobParts {
    storage: Storage,
    run: Run,
}

impl BlobParts {
    pub fn new(storage: Storage, run: Run) -> Self {
        BlobParts { storage, run }
    }
}

impl PartStore for BlobParts {
    fn name(&self, start: u64) -> String {
        self.run.part(start)
    }

    async fn read(&self, start: u64) -> Result<Option<Part>> {
        let name = self.run.part(start);
        match self.storage.read_report_blob(&name).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{name}: {e}")),
            None => Ok(None),
        }
    }

    async fn write(&self, part: &Part) -> Result<()> {
        let json = serde_json::to_vec(part).context("serialising a checkpoint")?;
        self.storage
            .put_report_blob(&self.run.part(part.start), json)
            .await
    }
}
