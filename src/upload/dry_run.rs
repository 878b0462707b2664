//! Target `dry-run`: validates, converts and reports exactly as a real run, and sends nothing.
//!
//! It builds each request with the real target's request builder (`TI_DRY_RUN_AS`, default
//! `sentinel-stix`), so records that target would refuse before sending (a non-indicator for
//! `sentinel-indicators`, an unconvertible pattern for `graph`) are reported the same way, and
//! every other record counts as "would be uploaded". With `TI_DRY_RUN_DIR` set, each request
//! body it would send is written there, one file per request (`request-000001.json`, numbered
//! in the order the requests were built, per process), byte for byte what would go on the wire.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, Value};
use ti_core::report::Code;

use super::{BatchOutcome, RequestBuilder};
use crate::upload::UploadSettings;

#[derive(Debug)]
pub struct DryRun {
    builder: RequestBuilder,
    dir: Option<PathBuf>,
    written: Arc<AtomicU64>,
}

impl DryRun {
    pub fn new(settings: &UploadSettings) -> anyhow::Result<Self> {
        let builder = RequestBuilder::for_target(settings.dry_run_as, settings)
            .context("TI_DRY_RUN_AS must name a real target")?;
        if let Some(dir) = &settings.dry_run_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("setting TI_DRY_RUN_DIR: creating {}", dir.display()))?;
        }
        Ok(DryRun {
            builder,
            dir: settings.dry_run_dir.clone(),
            written: Arc::new(AtomicU64::new(0)),
        })
    }

    pub async fn upload(&self, objects: &[Map<String, Value>]) -> BatchOutcome {
        let prepared = self.builder.prepare(objects);
        if prepared.sent.is_empty() {
            return prepared.outcome;
        }
        if let Some(dir) = &self.dir {
            let n = self.written.fetch_add(1, Ordering::Relaxed) + 1;
            let path = dir.join(format!("request-{n:06}.json"));
            if let Err(e) = tokio::fs::write(&path, &prepared.body).await {
                tracing::error!(path = %path.display(), error = %e, "dry run: writing a request body failed");
                return prepared.fail_sent(
                    Code::HttpError,
                    format!(
                        "dry run: writing the request body to {} failed: {e}",
                        path.display()
                    ),
                );
            }
        }
        let n = prepared.sent.len();
        prepared.settle(vec![None; n])
    }
}
