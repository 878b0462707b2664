//! Batching and upload: one sub-module per target, each split the same way (request building,
//! the service call, result mapping), sharing the pacer and the retry decision.
//!
//! The [`Uploader`] is built once per process and shared: its pacer holds the identity's quota, so
//! a copy per invocation would break it.

pub mod pacer;
pub mod retry;
pub mod sentinel_stix;

use std::sync::Arc;

use serde_json::{Map, Value};
use ti_core::report::Code;
use tokio::time::Instant;

use crate::auth::Credential;
use crate::settings::{TargetKind, UploadSettings};

/// Why one record was not uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub messages: Vec<String>,
}

/// Per record of a batch, in the batch's order: `None` = uploaded.
pub type BatchOutcome = Vec<Option<Failure>>;

/// The configured upload target, shared by every invocation of the process.
#[derive(Debug, Clone)]
pub struct Uploader {
    target: Arc<Target>,
    settings: Arc<UploadSettings>,
}

#[derive(Debug)]
enum Target {
    SentinelStix(sentinel_stix::SentinelStix),
    DryRun,
}

impl Uploader {
    /// Builds the target from settings; fails when a setting it needs is missing.
    pub fn new(settings: UploadSettings, credential: Option<Credential>) -> anyhow::Result<Self> {
        let target = match settings.target {
            TargetKind::SentinelStix => {
                let credential = credential.ok_or_else(|| {
                    anyhow::anyhow!("target sentinel-stix needs a credential (managed identity)")
                })?;
                Target::SentinelStix(sentinel_stix::SentinelStix::new(&settings, credential)?)
            }
            TargetKind::DryRun => Target::DryRun,
        };
        Ok(Uploader {
            target: Arc::new(target),
            settings: Arc::new(settings),
        })
    }

    pub fn settings(&self) -> &UploadSettings {
        &self.settings
    }

    pub fn target_name(&self) -> &'static str {
        self.settings.target.name()
    }

    /// Uploads one batch (at most `batch_size` objects), retrying transient failures until the
    /// attempt or time budget (or `deadline`) runs out. Every object gets an outcome.
    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        debug_assert!(objects.len() <= self.settings.batch_size);
        match &*self.target {
            Target::SentinelStix(t) => t.upload(objects, deadline).await,
            Target::DryRun => vec![None; objects.len()],
        }
    }
}
