//! Per-feed state in the reports container (`pulls/<feed>/state.json`): the TAXII bookmark,
//! the HTTPS validators (ETag, Last-Modified), and a blob lease on that same blob so two
//! overlapping runs (a slow run and the next schedule, or `ti-ingest pull` beside the timer)
//! cannot both pull one feed.
//!
//! The lease is short (renewed in the background while the run lasts), so a run killed
//! mid-way frees the feed within a minute; and the state is written with the lease id, so a
//! run that lost its lease cannot overwrite the state of the run that took over.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientAcquireLeaseResultHeaders, BlobClientUploadOptions,
};
use azure_storage_blob::{BlobClient, BlobServiceClient};
use serde::{Deserialize, Serialize};

/// Seconds a lease lasts without renewal (the service allows 15..=60).
const LEASE_SECS: i32 = 60;
/// How often the lease is renewed: well inside its duration.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// What a feed's next run needs to fetch only what is new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedState {
    /// The feed's source identity (URL, collection, filters) this state belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// TAXII: `X-TAXII-Date-Added-Last` of the last page whose records were all uploaded or
    /// reported; the next run asks for `added_after` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookmark: Option<String>,
    /// HTTPS: the validators of the last content whose records were all uploaded or reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// When the state last advanced, and the report of that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report: Option<String>,
}

impl FeedState {
    /// The state if it belongs to `source`, else a fresh one (the feed was re-pointed).
    pub fn for_source(self, source: &str) -> FeedState {
        if self.source.as_deref() == Some(source) {
            self
        } else {
            FeedState {
                source: Some(source.to_string()),
                ..Default::default()
            }
        }
    }
}

/// The blob path of a feed's state.
pub fn state_path(feed: &str) -> String {
    format!("pulls/{feed}/state.json")
}

/// The blob path of a list feed's indicator index (src/lifecycle, [`crate::lifecycle::store`]).
pub fn index_path(feed: &str) -> String {
    format!("pulls/{feed}/indicators.idx")
}

/// A feed held by this run: its state blob, leased.
pub struct FeedLock {
    blob: BlobClient,
    /// The feed's indicator index: written only by the holder of the state's lease.
    index: BlobClient,
    lease_id: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl FeedLock {
    /// Writes the state under the lease. Fails (and so nothing advances) if the lease was lost.
    pub async fn save(&self, state: &FeedState) -> Result<()> {
        let body = serde_json::to_vec_pretty(state).context("serialising the feed state")?;
        let options = BlobClientUploadOptions {
            lease_id: Some(self.lease_id.clone()),
            blob_content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.blob
            .upload(RequestContent::from(body), Some(options))
            .await
            .context("writing the feed state")?;
        Ok(())
    }

    /// Reads the feed's indicator index (empty when it has none yet).
    pub async fn load_index(&self) -> Result<crate::lifecycle::store::IndexReader> {
        crate::lifecycle::load(&self.index).await
    }

    /// Writes the feed's indicator index (before the state that refers to the same run).
    pub async fn save_index(&self, file: std::fs::File) -> Result<()> {
        crate::lifecycle::save(&self.index, file).await
    }

    /// Ends the lease so the next run need not wait for it to expire.
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self.blob.release_lease(self.lease_id.clone(), None).await {
            // It expires by itself within LEASE_SECS.
            tracing::warn!(error = %e, "releasing the feed lease failed");
        }
    }
}

impl Drop for FeedLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Reads and leases feed states in the reports container.
#[derive(Clone)]
pub struct StateStore {
    service: Arc<BlobServiceClient>,
    container: String,
}

/// The outcome of trying to take a feed.
pub enum Lock {
    Held(Box<(FeedLock, FeedState)>),
    /// Another run holds the feed's lease.
    Busy,
}

impl StateStore {
    pub fn new(service: Arc<BlobServiceClient>, container: &str) -> Self {
        StateStore {
            service,
            container: container.to_string(),
        }
    }

    fn blob(&self, feed: &str) -> BlobClient {
        self.service
            .blob_container_client(&self.container)
            .blob_client(&state_path(feed))
    }

    /// Takes the feed's lease and reads its state; [`Lock::Busy`] when another run has it.
    pub async fn lock(&self, feed: &str) -> Result<Lock> {
        let blob = self.blob(feed);
        // A lease needs a blob: create an empty state once (409 = it already exists).
        let create = BlobClientUploadOptions::default().if_not_exists();
        match blob
            .upload(RequestContent::from(b"{}".to_vec()), Some(create))
            .await
        {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {}
            // A leased blob answers 412 to a conditional write: it exists, and is busy.
            Err(e) if e.http_status() == Some(StatusCode::PreconditionFailed) => {}
            Err(e) => return Err(e).context("creating the feed state"),
        }
        let response = match blob
            .acquire_lease(LEASE_SECS, Some(BlobClientAcquireLeaseOptions::default()))
            .await
        {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => return Ok(Lock::Busy),
            Err(e) => return Err(e).context("leasing the feed state"),
        };
        let lease_id = response
            .lease_id()
            .ok()
            .flatten()
            .context("the lease answer has no lease id")?;
        let renewer = {
            let blob = self.blob(feed);
            let lease_id = lease_id.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(e) = blob.renew_lease(lease_id.clone(), None).await {
                        // The final state write will fail without the lease, so nothing is
                        // skipped; the next run repeats this one.
                        tracing::warn!(error = %e, "renewing the feed lease failed");
                    }
                }
            })
        };
        let lock = FeedLock {
            blob,
            index: self
                .service
                .blob_container_client(&self.container)
                .blob_client(&index_path(feed)),
            lease_id,
            renewer,
        };
        let body = lock
            .blob
            .download(None)
            .await
            .context("reading the feed state")?
            .body
            .collect()
            .await
            .context("reading the feed state")?;
        // An unreadable state (edited by hand) restarts the feed rather than blocking it
        // forever; re-uploads are idempotent by id.
        let state = serde_json::from_slice::<FeedState>(&body).unwrap_or_else(|e| {
            tracing::warn!(feed, error = %e, "the feed state is not readable; starting afresh");
            FeedState::default()
        });
        Ok(Lock::Held(Box::new((lock, state))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_of_another_source_is_not_reused() {
        let s = FeedState {
            source: Some("https://a.example/f".into()),
            etag: Some("\"1\"".into()),
            ..Default::default()
        };
        assert_eq!(s.clone().for_source("https://a.example/f"), s);
        let fresh = s.for_source("https://b.example/f");
        assert_eq!(fresh.etag, None);
        assert_eq!(fresh.source.as_deref(), Some("https://b.example/f"));
        let parsed: FeedState = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, FeedState::default());
    }
}
