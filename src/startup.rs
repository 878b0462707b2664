//! Start-up: the one place that builds the app (as zero-to-production's `Application::build`).
//! Every setting is parsed here, once, into typed values, so a bad one stops start-up with its
//! name and what was expected (docs/SETTINGS.md); the credential (and so its token cache), the
//! storage clients, the uploader (and so the per-identity quota lanes) and the puller (and so its
//! HTTP client) are built once and owned by [`AppState`], which every invocation shares.
//!
//! `serve` ([`crate::cli`]) builds the state, then [`check_feeds_config`] reads the feeds
//! configuration: a document that is refused stops start-up with one message instead of
//! failing each `PullFeeds` run. `ti-ingest pull` uses the same state; `validate` and `upload`
//! use [`Offline`], the same settings with the credential a person's shell has.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::auth::{self, Credential};
use crate::pull::{ConfigError, Puller};
use crate::settings::{
    self, Env, InputSettings, Settings, StorageSettings, SweepSettings, TargetKind, UploadSettings,
};
use crate::storage::Storage;
use crate::upload::ledger::LedgerStore;
use crate::upload::Uploader;

/// What every invocation shares, built once by [`AppState::build`].
#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub uploader: Uploader,
    /// The app's managed identity (`AZURE_CLIENT_ID`): storage, uploads and pulls share it, and
    /// so its token cache.
    pub credential: Credential,
    /// `AZURE_CLIENT_ID`, for the messages that name the identity.
    pub client_id: Option<String>,
    /// The feeds' puller (`PullFeeds`, `ti-ingest pull`).
    pub puller: Arc<Puller>,
    pub input: InputSettings,
    pub max_input_bytes: u64,
    /// Records per work item (`TI_WORK_ITEM_RECORDS`).
    pub work_item_records: u64,
    pub sweep: SweepSettings,
    pub invocation_deadline: Duration,
    /// `TI_MAX_HTTP_BYTES`: the largest body the `Ingest` HTTP function accepts.
    pub max_http_bytes: u64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("storage", &self.storage)
            .field("target", &self.uploader.target_name())
            .field("feeds", &self.puller.location())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Parses every setting the handler reads (the feeds configuration's location included) and
    /// builds the clients. No I/O: a bad setting is refused before anything is contacted.
    pub fn build(env: &Env) -> Result<Self> {
        let settings = Settings::from_env(env)?;
        let storage_settings = StorageSettings::from_env(env)?;
        let max_http_bytes = settings::max_http_bytes(env)?;
        if !auth::identity_endpoint_configured() {
            tracing::warn!("IDENTITY_ENDPOINT/IDENTITY_HEADER are not set: the managed identity will fall back to the VM metadata endpoint, which fails slowly outside Azure VMs");
        }
        let credential = auth::managed_identity(settings.client_id.as_deref())?;
        let storage = Storage::new(storage_settings, credential.clone())?;
        // Every instance shares the identity's quota through the ledger in the app's storage.
        let ledger = LedgerStore::from_env(env, &credential)?;
        let mut upload = settings.upload.clone();
        // Targets keep their state (the Defender budget) in the app's storage.
        upload.state_store = Some(Arc::new(storage.clone()));
        let uploader = Uploader::with_ledger(upload, Some(credential.clone()), ledger)?;
        let puller = Puller::new(
            &storage,
            &uploader,
            credential.clone(),
            &settings,
            env.clone(),
        )?;
        Ok(AppState {
            storage,
            uploader,
            credential,
            client_id: settings.client_id.clone(),
            puller: Arc::new(puller),
            input: settings.input.clone(),
            max_input_bytes: settings.max_input_bytes,
            work_item_records: settings.work_item_records,
            sweep: settings.sweep,
            invocation_deadline: settings.invocation_deadline,
            max_http_bytes,
        })
    }
}

/// How long start-up waits for the feeds configuration. A storage account that does not answer
/// in time does not stop the handler (the host would restart it in a loop, and every other
/// function would be down with it): `PullFeeds` reads the document again on each run and
/// reports what it finds.
pub const FEEDS_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads and checks the feeds configuration (`TI_FEEDS_CONFIG`, docs/PULL.md) at start-up.
/// `Err` (start-up stops) when the document exists and is refused as a whole; an absent
/// document is fine (nothing to pull), and one that cannot be read now is logged and left to
/// the timer. A single bad feed entry is not an error: it is reported by each run, and the
/// other feeds run.
pub async fn check_feeds_config(state: &AppState) -> Result<()> {
    let puller = &state.puller;
    match tokio::time::timeout(FEEDS_CHECK_TIMEOUT, puller.read_config()).await {
        Ok(Ok(None)) => {
            tracing::info!(config = %puller.location(), "no feeds configuration; PullFeeds has nothing to pull");
            Ok(())
        }
        Ok(Ok(Some(entries))) => {
            let invalid = entries
                .iter()
                .filter(|e| matches!(e, crate::pull::config::FeedEntry::Invalid { .. }))
                .count();
            tracing::info!(config = %puller.location(), feeds = entries.len(), invalid, "feeds configuration read");
            Ok(())
        }
        Ok(Err(ConfigError::Refused(e))) => Err(e),
        Ok(Err(ConfigError::Unreadable(e))) => {
            tracing::warn!(error = %format!("{e:#}"), "the feeds configuration could not be read at start-up; PullFeeds will read it on each run");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(config = %puller.location(), timeout_secs = FEEDS_CHECK_TIMEOUT.as_secs(), "the feeds configuration could not be read at start-up in time; PullFeeds will read it on each run");
            Ok(())
        }
    }
}

/// What `validate` and `upload` run with: the app's settings (with the command line's
/// overrides already in `env`) and, when the target sends anything, the credential of the
/// environment (the managed identity when `IDENTITY_ENDPOINT` is set, else the Azure CLI login).
pub struct Offline {
    pub settings: Settings,
    /// The upload settings, with the targets `validate` applies the rules of.
    pub upload: UploadSettings,
    pub credential: Option<Credential>,
    /// Given the app's storage settings, an upload from a workstation takes its turns through
    /// the same quota ledger as the app's instances.
    pub ledger: Option<LedgerStore>,
}

impl Offline {
    pub fn build(env: &Env, validate_as: Vec<TargetKind>) -> Result<Self> {
        let settings = Settings::from_env(env)?;
        let mut upload = settings.upload.clone();
        upload.validate_as = validate_as;
        let credential = if upload.needs_credential() {
            Some(auth::from_environment(settings.client_id.as_deref())?)
        } else {
            None
        };
        let ledger = match &credential {
            Some(c) => LedgerStore::from_env(env, c)?,
            None => None,
        };
        Ok(Offline {
            settings,
            upload,
            credential,
            ledger,
        })
    }

    /// The uploader, built once for every file of the command.
    pub fn uploader(&self) -> Result<Uploader> {
        Uploader::with_ledger(
            self.upload.clone(),
            self.credential.clone(),
            self.ledger.clone(),
        )
    }
}
