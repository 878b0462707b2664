//! Settings: every app setting / environment variable of docs/SETTINGS.md, parsed once into typed
//! values. A bad value stops start-up with a message naming the setting and what it accepts.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ti_core::convert::{Defaults, Tlp};
use ti_core::input::InputFormat;
use url::Url;

pub use crate::upload::target::TargetKind;

/// Which Azure cloud the service endpoints and token scopes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    UsGov,
    China,
}

impl Cloud {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Cloud::Public),
            "usgov" => Ok(Cloud::UsGov),
            "china" => Ok(Cloud::China),
            other => bail!("setting TI_CLOUD={other:?}: accepted values are public, usgov, china"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::UsGov => "usgov",
            Cloud::China => "china",
        }
    }

    /// The Azure Resource Manager token scope of this cloud (the Sentinel APIs' audience).
    pub fn management_scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com/.default",
            Cloud::UsGov => "https://management.usgovcloudapi.net/.default",
            Cloud::China => "https://management.chinacloudapi.cn/.default",
        }
    }
}

/// Graph tiIndicator `action` values.
pub const GRAPH_ACTIONS: [&str; 4] = ["unknown", "allow", "block", "alert"];
/// Graph tiIndicator `targetProduct` values.
pub const GRAPH_TARGET_PRODUCTS: [&str; 2] = ["Azure Sentinel", "Microsoft Defender ATP"];

/// What to do with the valid records when some records are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    Skip,
    RejectFile,
}

/// `TI_DANGLING_RELATIONSHIPS`: what to do with a relationship whose `source_ref` or
/// `target_ref` is an object the target will not hold (a type it does not accept, or an object
/// refused earlier in the same input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DanglingRelationships {
    /// Upload it with a `dangling_relationship` warning (the default).
    Warn,
    /// Report it rejected (`dangling_relationship`); it is not uploaded.
    Skip,
}

/// The upload-side settings, shared by the handler and the CLI.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// The first of [`UploadSettings::targets`] (the only one unless several are configured).
    pub target: TargetKind,
    /// `TI_TARGET`, in the order given; every record goes to each of them.
    pub targets: Vec<TargetKind>,
    pub cloud: Cloud,
    pub workspace_id: Option<String>,
    /// The host overrides set (each target's `host_setting`: `TI_API_BASE_URL` for both
    /// Sentinel targets, `TI_GRAPH_BASE_URL`, ...), without a trailing '/'; a target without one
    /// calls its own host in [`UploadSettings::cloud`] ([`UploadSettings::base_url`]).
    pub host_overrides: Vec<(&'static str, String)>,
    /// `TI_SENTINEL_API_VERSION`: overrides each Sentinel target's own default api-version.
    pub sentinel_api_version: Option<String>,
    pub source_system: String,
    /// `TI_GRAPH_ACTION`: the tiIndicator `action` the Graph target sets.
    pub graph_action: String,
    /// `TI_GRAPH_TARGET_PRODUCT`: the tiIndicator `targetProduct` the Graph target sets.
    pub graph_target_product: String,
    /// Requests admitted per identity and API in any rolling [`UploadSettings::rate_window`].
    pub max_requests_per_minute: u32,
    /// `TI_RATE_WINDOW_SECS` (60): the window the request quota counts over. Only a simulator
    /// with a scaled-down minute needs anything else.
    pub rate_window: Duration,
    pub batch_size: usize,
    /// Requests in flight at once, per identity and API, across every invocation of the process.
    pub max_concurrency: usize,
    /// How many times one batch is tried before its records are reported `retries_exhausted`.
    pub max_attempts: u32,
    /// Upper bound on the time one batch spends retrying.
    pub max_retry_time: Duration,
    pub on_invalid: OnInvalid,
    pub dangling_relationships: DanglingRelationships,
    /// `TI_DRY_RUN_AS` (`sentinel-stix`): which target's requests the dry run builds.
    pub dry_run_as: TargetKind,
    /// `TI_DRY_RUN_DIR`: where the dry run writes each request body it would send.
    pub dry_run_dir: Option<std::path::PathBuf>,
    /// `TI_DEFENDER_*`: the `defender` target's fields and budget.
    pub defender: crate::upload::defender::DefenderSettings,
    /// Not a setting: where targets keep state (the Defender budget): the app's storage, when
    /// the app has one; `None` keeps it for the process only.
    pub state_store: Option<std::sync::Arc<dyn crate::upload::defender::budget::StateStore>>,
    /// Not a setting: the targets whose rules a validate-only run applies (`ti-ingest validate
    /// --target`); empty means the configured targets.
    pub validate_as: Vec<TargetKind>,
}

/// How inputs are read and what fills fields they lack (README.md, How it works; docs/ARCHITECTURE.md, The model).
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// A forced input format (`TI_FORMAT`); auto-detected when `None`.
    pub format: Option<InputFormat>,
    /// `TI_DEFAULT_VALID_DAYS`, `TI_DEFAULT_CONFIDENCE`, `TI_DEFAULT_TLP`.
    pub defaults: Defaults,
}

impl InputSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let format = match env.get("TI_FORMAT") {
            None => None,
            Some(f) if f.eq_ignore_ascii_case("auto") => None,
            Some(f) => Some(
                f.parse::<InputFormat>()
                    .map_err(|e| anyhow::anyhow!("setting TI_FORMAT: {e}"))?,
            ),
        };
        let tlp = env.or("TI_DEFAULT_TLP", "green");
        let tlp = tlp.parse::<Tlp>().map_err(|_| {
            anyhow::anyhow!(
                "setting TI_DEFAULT_TLP={tlp:?}: accepted values are white (or clear), green, amber, red"
            )
        })?;
        Ok(InputSettings {
            format,
            defaults: Defaults {
                valid_days: env.number("TI_DEFAULT_VALID_DAYS", 90, (0, 36_500))?,
                confidence: env.number("TI_DEFAULT_CONFIDENCE", 50, (0, 100))?,
                tlp,
            },
        })
    }
}

/// The storage-side settings (handler only).
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub blob_url: Url,
    pub queue_url: Url,
    pub inbox_container: String,
    pub reports_container: String,
    pub blob_events_queue: String,
    pub inbox_queue: String,
    pub work_queue: String,
}

/// When Sweep considers an input missed or a run abandoned.
#[derive(Debug, Clone, Copy)]
pub struct SweepSettings {
    /// `TI_SWEEP_GRACE_SECS` (300): a blob younger than this may still have its event on the way.
    pub grace: time::Duration,
    /// `TI_SWEEP_STALE_SECS` (the invocation deadline + 120 s): a run whose checkpoint state has
    /// not changed for this long is re-driven.
    pub stale: time::Duration,
}

/// All settings.
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

/// The upper bound of records per request that the services accept.
pub const MAX_BATCH_SIZE: usize = 100;
/// The services' request quota per identity.
pub const MAX_REQUESTS_PER_MINUTE: u32 = 100;

/// A view of the environment, so tests can parse settings without touching the process env.
#[derive(Clone)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    pub(crate) fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    pub(crate) fn number<T>(&self, name: &str, default: T, range: (T, T)) -> Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let v: T = raw.parse().ok().with_context(|| {
            format!(
                "setting {name}={raw:?} is not a number; expected {}..={}",
                range.0, range.1
            )
        })?;
        if v < range.0 || v > range.1 {
            bail!(
                "setting {name}={raw:?} is out of range; expected {}..={}",
                range.0,
                range.1
            );
        }
        Ok(v)
    }
}

impl UploadSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let targets = TargetKind::parse_list(env.or("TI_TARGET", "sentinel-stix"))
            .context("setting TI_TARGET")?;
        let cloud = Cloud::parse(env.or("TI_CLOUD", "public"))?;
        let workspace_id = match env.get("TI_WORKSPACE_ID") {
            Some(w) => {
                uuid::Uuid::parse_str(w).ok().with_context(|| {
                    format!("setting TI_WORKSPACE_ID={w:?} is not a workspace id (a UUID)")
                })?;
                Some(w.to_ascii_lowercase())
            }
            None => None,
        };
        let mut host_overrides: Vec<(&'static str, String)> = Vec::new();
        for spec in TargetKind::ALL.iter().filter_map(|k| k.spec()) {
            let name = spec.host_setting;
            if host_overrides.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if let Some(u) = env.get(name) {
                Url::parse(u).with_context(|| format!("setting {name}={u:?} is not a URL"))?;
                host_overrides.push((name, u.trim_end_matches('/').to_string()));
            }
        }
        let dry_run_as = match env.get("TI_DRY_RUN_AS") {
            Some(t) => {
                let k = TargetKind::parse(t).context("setting TI_DRY_RUN_AS")?;
                if k == TargetKind::DryRun {
                    bail!("setting TI_DRY_RUN_AS=dry-run: name the target whose requests the dry run builds");
                }
                k
            }
            None => TargetKind::SentinelStix,
        };
        let source_system = env.or("TI_SOURCE_SYSTEM", "ti-ingest").to_string();
        if source_system.chars().count() > 256 || source_system == "Microsoft Sentinel" {
            bail!(
                "setting TI_SOURCE_SYSTEM={source_system:?}: must be at most 256 characters and not \"Microsoft Sentinel\""
            );
        }
        let graph_action = env.or("TI_GRAPH_ACTION", "alert").to_string();
        if !GRAPH_ACTIONS.contains(&graph_action.as_str()) {
            bail!(
                "setting TI_GRAPH_ACTION={graph_action:?}: accepted values are {}",
                GRAPH_ACTIONS.join(", ")
            );
        }
        let graph_target_product = env
            .or("TI_GRAPH_TARGET_PRODUCT", "Azure Sentinel")
            .to_string();
        if !GRAPH_TARGET_PRODUCTS.contains(&graph_target_product.as_str()) {
            bail!(
                "setting TI_GRAPH_TARGET_PRODUCT={graph_target_product:?}: accepted values are {}",
                GRAPH_TARGET_PRODUCTS.join(", ")
            );
        }
        let on_invalid = match env.or("TI_ON_INVALID", "skip") {
            "skip" => OnInvalid::Skip,
            "reject-file" => OnInvalid::RejectFile,
            other => {
                bail!("setting TI_ON_INVALID={other:?}: accepted values are skip, reject-file")
            }
        };
        let dangling_relationships = match env.or("TI_DANGLING_RELATIONSHIPS", "warn") {
            "warn" => DanglingRelationships::Warn,
            "skip" => DanglingRelationships::Skip,
            other => bail!(
                "setting TI_DANGLING_RELATIONSHIPS={other:?}: accepted values are warn (upload them with a warning), skip (report them rejected)"
            ),
        };
        let defender = crate::upload::defender::DefenderSettings::from_env(env, &source_system)?;
        let settings = UploadSettings {
            target: targets[0],
            targets,
            cloud,
            workspace_id,
            host_overrides,
            sentinel_api_version: env.get("TI_SENTINEL_API_VERSION").map(str::to_string),
            source_system,
            graph_action,
            graph_target_product,
            max_requests_per_minute: env.number(
                "TI_MAX_REQUESTS_PER_MINUTE",
                MAX_REQUESTS_PER_MINUTE,
                (1, 100_000),
            )?,
            rate_window: Duration::from_secs(env.number("TI_RATE_WINDOW_SECS", 60, (1, 3600))?),
            batch_size: env.number("TI_BATCH_SIZE", MAX_BATCH_SIZE, (1, MAX_BATCH_SIZE))?,
            max_concurrency: env.number("TI_MAX_CONCURRENCY", 4, (1, 64))?,
            max_attempts: env.number("TI_MAX_ATTEMPTS", 8, (1, 100))?,
            max_retry_time: Duration::from_secs(env.number(
                "TI_MAX_RETRY_SECS",
                300,
                (1, 86_400),
            )?),
            on_invalid,
            dangling_relationships,
            dry_run_as,
            defender,
            state_store: None,
            validate_as: Vec::new(),
            dry_run_dir: env.get("TI_DRY_RUN_DIR").map(std::path::PathBuf::from),
        };
        // Each target's own start-up check (a host in this cloud, ...); the dry run's target
        // too, though it sends nothing.
        let dry_run = settings.targets.contains(&TargetKind::DryRun);
        let checked = settings
            .targets
            .iter()
            .map(|&k| (k, true))
            .chain(dry_run.then_some((settings.dry_run_as, false)));
        for (kind, sends) in checked {
            if let Some(spec) = kind.spec() {
                (spec.check)(&settings, sends)?;
            }
        }
        Ok(settings)
    }

    /// The api-version a Sentinel target calls with: `TI_SENTINEL_API_VERSION`, else the
    /// target's own default.
    pub fn api_version(&self, target: TargetKind) -> &str {
        self.sentinel_api_version
            .as_deref()
            .or(target.default_api_version())
            .unwrap_or_default()
    }

    /// Whether any target calls a service (dry-run alone needs no token).
    pub fn needs_credential(&self) -> bool {
        self.targets.iter().any(|t| *t != TargetKind::DryRun)
    }

    /// The configured targets as `TI_TARGET` writes them (`sentinel-stix,graph`).
    pub fn target_names(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The host override `setting` (`TI_API_BASE_URL`, ...) when it is set.
    pub fn host_override(&self, setting: &str) -> Option<&str> {
        self.host_overrides
            .iter()
            .find(|(n, _)| *n == setting)
            .map(|(_, u)| u.as_str())
    }

    /// The base URL target `kind` posts to: its host setting when set, else its own host in
    /// this cloud (the target's `default_host`). Start-up already refused a configured target
    /// without one; this errs only for a target that was not configured.
    pub fn base_url(&self, kind: TargetKind) -> Result<&str> {
        let Some(spec) = kind.spec() else {
            bail!("dry-run sends nothing");
        };
        match (
            self.host_override(spec.host_setting),
            (spec.default_host)(self.cloud),
        ) {
            (Some(u), _) | (None, Some(u)) => Ok(u),
            (None, None) => bail!(
                "{} has no published host in TI_CLOUD={}: set {}",
                kind.name(),
                self.cloud.name(),
                spec.host_setting
            ),
        }
    }

    /// The base URL a Sentinel target posts to ([`UploadSettings::base_url`]); errs for the
    /// others.
    pub fn sentinel_base_url(&self, kind: TargetKind) -> Result<&str> {
        if !kind.is_sentinel() {
            bail!("{} is not a Sentinel target", kind.name());
        }
        self.base_url(kind)
    }

    /// The workspace id, required by the Sentinel targets.
    pub fn require_workspace(&self) -> Result<&str> {
        match &self.workspace_id {
            Some(w) => Ok(w),
            None => match self.targets.iter().find(|t| t.is_sentinel()) {
                Some(t) => bail!(
                    "setting TI_WORKSPACE_ID is required for target {}: the Log Analytics workspace id (a UUID)",
                    t.name()
                ),
                None => Ok("00000000-0000-0000-0000-000000000000"),
            },
        }
    }
}

/// `TI_STORAGE_BLOB_URL` / `TI_STORAGE_QUEUE_URL`, else the host's own identity-based storage
/// connection: its service URI (`AzureWebJobsStorage__blobServiceUri` / `__queueServiceUri`, the
/// form that works in every cloud and with custom DNS), else `AzureWebJobsStorage__accountName`,
/// which names a public-cloud account only (Microsoft Learn, functions-app-settings,
/// "AzureWebJobsStorage__accountName": "For sovereign clouds or when using a custom DNS, you must
/// instead use the service-specific AzureWebJobsStorage__*ServiceUri settings").
fn service_url(env: &Env, name: &str, service: &str) -> Result<Url> {
    let host_uri = format!("AzureWebJobsStorage__{service}ServiceUri");
    let (name, raw) = match (env.get(name), env.get(&host_uri)) {
        (Some(u), _) => (name, u.to_string()),
        (None, Some(u)) => (host_uri.as_str(), u.to_string()),
        (None, None) => match env.get("AzureWebJobsStorage__accountName") {
            Some(account) => (
                "AzureWebJobsStorage__accountName",
                format!("https://{account}.{service}.core.windows.net"),
            ),
            None => bail!(
                "setting {name} is required (or {host_uri} or AzureWebJobsStorage__accountName to derive it)"
            ),
        },
    };
    // The SDK appends path segments itself; a trailing '/' would make it request `//container`.
    let url = Url::parse(raw.trim_end_matches('/'))
        .with_context(|| format!("setting {name}={raw:?} is not a URL"))?;
    if url.scheme() != "https" {
        bail!("setting {name}={raw:?} must be an https URL: storage is reached with a token credential, which the SDK only sends over https");
    }
    Ok(url)
}

/// Where this process keeps the identity's shared quota ledger (src/upload/ledger.rs): the app's
/// blob endpoint and reports container, when the environment names the app's storage and
/// `TI_QUOTA_LEDGER` is not `off`; `None`: the process paces its requests alone.
pub fn quota_ledger_location(env: &Env) -> Result<Option<(Url, String)>> {
    match env.or("TI_QUOTA_LEDGER", "on") {
        "on" => {}
        "off" => return Ok(None),
        other => bail!("setting TI_QUOTA_LEDGER={other:?}: expected on or off"),
    }
    let named = [
        "TI_STORAGE_BLOB_URL",
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__accountName",
    ]
    .iter()
    .any(|k| env.get(k).is_some());
    if !named {
        return Ok(None);
    }
    let url = service_url(env, "TI_STORAGE_BLOB_URL", "blob")?;
    Ok(Some((
        url,
        env.or("TI_REPORTS_CONTAINER", "indicator-reports")
            .to_string(),
    )))
}

impl StorageSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let name = |key: &str, default: &str| -> Result<String> {
            let v = env.or(key, default).to_string();
            let ok = (3..=63).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                bail!("setting {key}={v:?}: expected a container/queue name (3-63 lowercase letters, digits, '-')");
            }
            Ok(v)
        };
        Ok(StorageSettings {
            blob_url: service_url(env, "TI_STORAGE_BLOB_URL", "blob")?,
            queue_url: service_url(env, "TI_STORAGE_QUEUE_URL", "queue")?,
            inbox_container: name("TI_INBOX_CONTAINER", "indicator-inbox")?,
            reports_container: name("TI_REPORTS_CONTAINER", "indicator-reports")?,
            blob_events_queue: name("TI_BLOB_EVENTS_QUEUE", "indicator-blob-events")?,
            inbox_queue: name("TI_INBOX_QUEUE", "indicator-messages")?,
            work_queue: name("TI_WORK_QUEUE", "indicator-work")?,
        })
    }
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

/// `TI_MAX_HTTP_BYTES` default: the body size the `Ingest` HTTP function accepts.
pub const DEFAULT_MAX_HTTP_BYTES: u64 = 4 << 20;

/// `TI_MAX_HTTP_BYTES`: the largest HTTP body `Ingest` accepts.
pub fn max_http_bytes(env: &Env) -> anyhow::Result<u64> {
    match env.get("TI_MAX_HTTP_BYTES") {
        None => Ok(DEFAULT_MAX_HTTP_BYTES),
        Some(raw) => match raw.parse::<u64>() {
            Ok(v) if (1..=100 << 20).contains(&v) => Ok(v),
            _ => anyhow::bail!(
                "setting TI_MAX_HTTP_BYTES={raw:?}: expected a number of bytes, 1..={}",
                100u64 << 20
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

#[cfg(test)]
mod target_tests {
    use super::*;

    fn upload(pairs: &[(&str, &str)]) -> Result<UploadSettings> {
        UploadSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn each_cloud_has_its_sentinel_host_per_target_and_management_scope() {
        // (cloud, sentinel-stix host, sentinel-indicators host, token scope); sources at each
        // target's `default_host` (src/upload/<target>/mod.rs).
        for (cloud, stix, indicators, scope) in [
            (
                "public",
                Some("https://api.ti.sentinel.azure.com"),
                Some("https://sentinelus.azure-api.net"),
                "https://management.azure.com/.default",
            ),
            (
                "usgov",
                Some("https://api.ti.sentinel.azure.us"),
                None,
                "https://management.usgovcloudapi.net/.default",
            ),
            (
                "china",
                Some("https://api.ti.sentinel.azure.cn"),
                None,
                "https://management.chinacloudapi.cn/.default",
            ),
        ] {
            let s = upload(&[("TI_CLOUD", cloud)]).unwrap();
            assert_eq!(s.host_override("TI_API_BASE_URL"), None, "{cloud}");
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelStix).ok(),
                stix,
                "{cloud}"
            );
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelIndicators).ok(),
                indicators,
                "{cloud}"
            );
            assert_eq!(s.cloud.management_scope(), scope, "{cloud}");
            assert!(s.sentinel_base_url(TargetKind::Graph).is_err());
            assert_eq!(
                s.base_url(TargetKind::Graph).ok(),
                (cloud == "public").then_some("https://graph.microsoft.com"),
                "{cloud}"
            );
        }
        assert_eq!(
            TargetKind::Graph.scope(Cloud::Public),
            Some("https://graph.microsoft.com/.default")
        );
    }

    #[test]
    fn the_legacy_api_without_a_sovereign_host_fails_start_up_unless_overridden() {
        for cloud in ["usgov", "china"] {
            for target in ["sentinel-indicators", "sentinel-stix,sentinel-indicators"] {
                let err = upload(&[("TI_CLOUD", cloud), ("TI_TARGET", target)]).unwrap_err();
                assert_eq!(
                    format!("{err:#}"),
                    format!("setting TI_TARGET: sentinel-indicators (the legacy Upload Indicators API) has no published host in TI_CLOUD={cloud}; use sentinel-stix there, or set TI_API_BASE_URL to the host Microsoft gave you")
                );
            }
            let s = upload(&[
                ("TI_CLOUD", cloud),
                ("TI_TARGET", "sentinel-indicators"),
                ("TI_API_BASE_URL", "https://ti.example.internal/"),
            ])
            .unwrap();
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelIndicators).unwrap(),
                "https://ti.example.internal"
            );
            // A dry run sends nothing, so it needs no host.
            upload(&[
                ("TI_CLOUD", cloud),
                ("TI_TARGET", "dry-run"),
                ("TI_DRY_RUN_AS", "sentinel-indicators"),
            ])
            .unwrap();
        }
    }

    #[test]
    fn graph_outside_the_public_cloud_fails_start_up_clearly() {
        for cloud in ["usgov", "china"] {
            let err =
                upload(&[("TI_CLOUD", cloud), ("TI_TARGET", "sentinel-stix,graph")]).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("graph") && text.contains("public cloud"),
                "{text}"
            );
            // Without graph the same cloud is fine.
            upload(&[("TI_CLOUD", cloud), ("TI_TARGET", "sentinel-stix")]).unwrap();
        }
    }

    #[test]
    fn base_urls_can_be_overridden_per_api() {
        let s = upload(&[
            ("TI_API_BASE_URL", "http://127.0.0.1:9/"),
            ("TI_GRAPH_BASE_URL", "http://127.0.0.1:10"),
        ])
        .unwrap();
        assert_eq!(
            s.host_override("TI_API_BASE_URL"),
            Some("http://127.0.0.1:9")
        );
        // TI_API_BASE_URL overrides the host of both Sentinel targets.
        for kind in [TargetKind::SentinelStix, TargetKind::SentinelIndicators] {
            assert_eq!(s.sentinel_base_url(kind).unwrap(), "http://127.0.0.1:9");
        }
        let err = upload(&[("TI_API_BASE_URL", "not a url")]).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("setting TI_API_BASE_URL=\"not a url\" is not a URL"),
            "{err:#}"
        );
        assert_eq!(
            s.base_url(TargetKind::Graph).ok(),
            Some("http://127.0.0.1:10")
        );
        assert!(upload(&[("TI_GRAPH_BASE_URL", "not a url")]).is_err());
    }

    #[test]
    fn targets_parse_as_a_list_and_api_versions_default_per_target() {
        let s = upload(&[("TI_TARGET", "sentinel-stix, graph,sentinel-stix")]).unwrap();
        assert_eq!(s.targets, vec![TargetKind::SentinelStix, TargetKind::Graph]);
        assert_eq!(s.target, TargetKind::SentinelStix);
        assert_eq!(s.target_names(), "sentinel-stix,graph");
        assert_eq!(
            s.api_version(TargetKind::SentinelStix),
            "2024-02-01-preview"
        );
        assert_eq!(s.api_version(TargetKind::SentinelIndicators), "2022-07-01");
        let s = upload(&[("TI_SENTINEL_API_VERSION", "2022-12-01-preview")]).unwrap();
        assert_eq!(
            s.api_version(TargetKind::SentinelIndicators),
            "2022-12-01-preview"
        );
        for bad in ["dry-run,graph", "", "graph,splunk"] {
            let err = upload(&[("TI_TARGET", bad)]);
            // An empty value means the default.
            if bad.is_empty() {
                assert!(err.is_ok());
            } else {
                assert!(
                    format!("{:#}", err.unwrap_err()).contains("TI_TARGET"),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn graph_fields_and_dry_run_and_window_settings() {
        let s = upload(&[]).unwrap();
        assert_eq!(s.graph_action, "alert");
        assert_eq!(s.graph_target_product, "Azure Sentinel");
        assert_eq!(s.rate_window, Duration::from_secs(60));
        assert_eq!(s.dry_run_as, TargetKind::SentinelStix);
        assert!(s.dry_run_dir.is_none());
        for (k, v) in [
            ("TI_GRAPH_ACTION", "deny"),
            ("TI_GRAPH_TARGET_PRODUCT", "Splunk"),
            ("TI_DRY_RUN_AS", "dry-run"),
            ("TI_RATE_WINDOW_SECS", "0"),
        ] {
            let text = format!("{:#}", upload(&[(k, v)]).unwrap_err());
            assert!(text.contains(k), "{k}={v}: {text}");
        }
        let s = upload(&[
            ("TI_TARGET", "dry-run"),
            ("TI_DRY_RUN_AS", "graph"),
            ("TI_DRY_RUN_DIR", "/tmp/x"),
            ("TI_RATE_WINDOW_SECS", "6"),
        ])
        .unwrap();
        assert_eq!(s.dry_run_as, TargetKind::Graph);
        assert_eq!(s.rate_window, Duration::from_secs(6));
        assert!(!s.needs_credential());
    }

    #[test]
    fn sentinel_targets_need_a_workspace_and_graph_does_not() {
        let s = upload(&[("TI_TARGET", "graph")]).unwrap();
        assert!(s.require_workspace().is_ok());
        let s = upload(&[("TI_TARGET", "graph,sentinel-indicators")]).unwrap();
        let text = format!("{:#}", s.require_workspace().unwrap_err());
        assert!(text.contains("sentinel-indicators"), "{text}");
    }
}
