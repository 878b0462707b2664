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
use crate::settings::{self, Env, InputSettings, StorageSettings, SweepSettings};
use crate::storage::Storage;
use crate::upload::ledger::LedgerStore;
use crate::upload::target::TargetKind;
use crate::upload::UploadSettings;
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

/// Every setting a command runs with besides storage and pulls, parsed once (src/settings.rs,
/// src/upload/settings.rs): what [`AppState::build`] and the offline commands start from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub upload: UploadSettings,
    pub input: InputSettings,
    pub client_id: Option<String>,
    pub max_input_bytes: u64,
    /// Our own deadline for one invocation, kept below the host's `functionTimeout`.
    pub invocation_deadline: Duration,
    /// Records per work item: a larger input continues in follow-up items.
    pub work_item_records: u64,
    pub sweep: SweepSettings,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self> {
        Ok(Settings {
            upload: UploadSettings::from_env(env)?,
            input: InputSettings::from_env(env)?,
            client_id: env.get("AZURE_CLIENT_ID").map(str::to_string),
            max_input_bytes: env.number("TI_MAX_INPUT_BYTES", 1 << 30, (1, u64::MAX))?,
            invocation_deadline: Duration::from_secs(env.number(
                "TI_INVOCATION_DEADLINE_SECS",
                540,
                (1, 86_400),
            )?),
            work_item_records: env.number("TI_WORK_ITEM_RECORDS", 50_000, (1, u64::MAX))?,
            sweep: SweepSettings {
                grace: time::Duration::seconds(env.number(
                    "TI_SWEEP_GRACE_SECS",
                    300,
                    (0, 86_400),
                )?),
                stale: time::Duration::seconds(env.number(
                    "TI_SWEEP_STALE_SECS",
                    env.number("TI_INVOCATION_DEADLINE_SECS", 540, (1, 86_400))? + 120,
                    (1, 86_400),
                )?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    //! The settings every command reads, through [`Settings`] (src/settings.rs and
    //! src/upload/settings.rs).
    use super::Settings;
    use crate::settings::*;
    use crate::upload::target::TargetKind;

    #[test]
    fn defaults_match_the_design() {
        let env = Env::from_pairs([("TI_WORKSPACE_ID", "6A0B3E5C-1111-2222-3333-444455556666")]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.upload.target, TargetKind::SentinelStix);
        assert_eq!(s.upload.host_override("TI_API_BASE_URL"), None);
        assert_eq!(
            s.upload
                .sentinel_base_url(TargetKind::SentinelStix)
                .unwrap(),
            "https://api.ti.sentinel.azure.com"
        );
        assert_eq!(s.upload.max_requests_per_minute, 100);
        assert_eq!(s.upload.batch_size, 100);
        assert_eq!(s.upload.max_concurrency, 4);
        assert_eq!(s.upload.source_system, "ti-ingest");
        assert_eq!(s.upload.dangling_relationships, DanglingRelationships::Warn);
        assert_eq!(
            s.upload.workspace_id.as_deref(),
            Some("6a0b3e5c-1111-2222-3333-444455556666")
        );
        assert_eq!(s.max_input_bytes, 1 << 30);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (k, v, needle) in [
            ("TI_TARGET", "splunk", "TI_TARGET"),
            ("TI_CLOUD", "mars", "TI_CLOUD"),
            ("TI_WORKSPACE_ID", "not-a-uuid", "TI_WORKSPACE_ID"),
            ("TI_BATCH_SIZE", "101", "TI_BATCH_SIZE"),
            ("TI_BATCH_SIZE", "ten", "TI_BATCH_SIZE"),
            ("TI_SOURCE_SYSTEM", "Microsoft Sentinel", "TI_SOURCE_SYSTEM"),
            ("TI_ON_INVALID", "ignore", "TI_ON_INVALID"),
            (
                "TI_DANGLING_RELATIONSHIPS",
                "drop",
                "TI_DANGLING_RELATIONSHIPS=\"drop\": accepted values are warn",
            ),
            ("TI_DEFAULT_TLP", "purple", "TI_DEFAULT_TLP"),
            ("TI_DEFAULT_CONFIDENCE", "101", "TI_DEFAULT_CONFIDENCE"),
            ("TI_FORMAT", "xml", "TI_FORMAT"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(k, v)])).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(needle), "{k}={v}: {text}");
        }
    }

    #[test]
    fn storage_urls_lose_their_trailing_slash_and_must_be_https() {
        let env = Env::from_pairs([
            (
                "TI_STORAGE_BLOB_URL",
                "https://127.0.0.1:10000/devstoreaccount1/",
            ),
            (
                "TI_STORAGE_QUEUE_URL",
                "https://127.0.0.1:10001/devstoreaccount1",
            ),
        ]);
        let s = StorageSettings::from_env(&env).unwrap();
        assert_eq!(
            s.blob_url.as_str(),
            "https://127.0.0.1:10000/devstoreaccount1"
        );
        let env = Env::from_pairs([("AzureWebJobsStorage__accountName", "acct")]);
        let s = StorageSettings::from_env(&env).unwrap();
        assert_eq!(s.queue_url.as_str(), "https://acct.queue.core.windows.net/");
        // The host's service-URI form (the one that works in sovereign clouds) wins over the
        // account name, and TI_STORAGE_*_URL over both.
        let env = Env::from_pairs([
            ("AzureWebJobsStorage__accountName", "acct"),
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://acct.blob.core.usgovcloudapi.net/",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://acct.queue.core.usgovcloudapi.net",
            ),
        ]);
        let s = StorageSettings::from_env(&env).unwrap();
        assert_eq!(
            s.blob_url.as_str(),
            "https://acct.blob.core.usgovcloudapi.net/"
        );
        assert_eq!(
            s.queue_url.as_str(),
            "https://acct.queue.core.usgovcloudapi.net/"
        );
        let env = Env::from_pairs([
            ("TI_STORAGE_QUEUE_URL", "https://q.example/"),
            ("TI_STORAGE_BLOB_URL", "https://b.example"),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://acct.queue.core.chinacloudapi.cn",
            ),
        ]);
        let s = StorageSettings::from_env(&env).unwrap();
        assert_eq!(s.queue_url.as_str(), "https://q.example/");
        let err = StorageSettings::from_env(&Env::from_pairs([(
            "AzureWebJobsStorage__blobServiceUri",
            "http://acct.blob.core.windows.net",
        )]))
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "setting AzureWebJobsStorage__blobServiceUri=\"http://acct.blob.core.windows.net\" must be an https URL: storage is reached with a token credential, which the SDK only sends over https"
        );
        let err = StorageSettings::from_env(&Env::from_pairs([] as [(&str, &str); 0])).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "setting TI_STORAGE_BLOB_URL is required (or AzureWebJobsStorage__blobServiceUri or AzureWebJobsStorage__accountName to derive it)"
        );
        let env = Env::from_pairs([
            (
                "TI_STORAGE_BLOB_URL",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
            (
                "TI_STORAGE_QUEUE_URL",
                "https://127.0.0.1:10001/devstoreaccount1",
            ),
        ]);
        assert!(StorageSettings::from_env(&env).is_err());
    }
}
