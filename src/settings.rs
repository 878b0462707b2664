//! Settings: every app setting / environment variable of DESIGN.md §6, parsed once into typed
//! values. A bad value stops start-up with a message naming the setting and what it accepts.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use url::Url;

/// Where uploads go (DESIGN.md §1). Only `sentinel-stix` and `dry-run` exist so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    SentinelStix,
    DryRun,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::SentinelStix => "sentinel-stix",
            TargetKind::DryRun => "dry-run",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "sentinel-stix" => Ok(TargetKind::SentinelStix),
            "dry-run" => Ok(TargetKind::DryRun),
            other => bail!("unknown target {other:?}: accepted values are sentinel-stix, dry-run"),
        }
    }
}

/// Which Azure cloud the service endpoints and token scopes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    UsGov,
    China,
}

impl Cloud {
    pub fn sentinel_base_url(self) -> &'static str {
        match self {
            Cloud::Public => "https://api.ti.sentinel.azure.com",
            Cloud::UsGov => "https://api.ti.sentinel.azure.us",
            Cloud::China => "https://api.ti.sentinel.azure.cn",
        }
    }

    pub fn management_scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com/.default",
            Cloud::UsGov => "https://management.usgovcloudapi.net/.default",
            Cloud::China => "https://management.chinacloudapi.cn/.default",
        }
    }
}

/// What to do with the valid records when some records are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    Skip,
    RejectFile,
}

/// The upload-side settings, shared by the handler and the CLI.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub target: TargetKind,
    pub cloud: Cloud,
    pub workspace_id: Option<String>,
    pub api_base_url: String,
    pub api_version: String,
    pub source_system: String,
    pub max_requests_per_minute: u32,
    pub batch_size: usize,
    pub max_concurrency: usize,
    /// How many times one batch is tried before its records are reported `retries_exhausted`.
    pub max_attempts: u32,
    /// Upper bound on the time one batch spends retrying.
    pub max_retry_time: Duration,
    pub on_invalid: OnInvalid,
}

/// How inputs are read and what fills fields they lack (DESIGN.md §2, §3).
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// A forced input format (`TI_FORMAT`); auto-detected when `None`.
    pub format: Option<String>,
    pub default_valid_days: u32,
    pub default_confidence: u8,
    /// `white`/`clear`, `green`, `amber`, `red`.
    pub default_tlp: String,
}

impl InputSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let tlp = env.or("TI_DEFAULT_TLP", "green").to_ascii_lowercase();
        if !["white", "clear", "green", "amber", "red"].contains(&tlp.as_str()) {
            bail!("setting TI_DEFAULT_TLP={tlp:?}: accepted values are white (or clear), green, amber, red");
        }
        Ok(InputSettings {
            format: env.get("TI_FORMAT").map(str::to_string),
            default_valid_days: env.number("TI_DEFAULT_VALID_DAYS", 90, (0, 36_500))?,
            default_confidence: env.number("TI_DEFAULT_CONFIDENCE", 50, (0, 100))?,
            default_tlp: tlp,
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

/// All settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub upload: UploadSettings,
    pub input: InputSettings,
    pub client_id: Option<String>,
    pub max_input_bytes: u64,
    /// Our own deadline for one invocation, kept below the host's `functionTimeout`.
    pub invocation_deadline: Duration,
}

/// The upper bound of records per request that the service accepts.
pub const MAX_BATCH_SIZE: usize = 100;
/// The service's request quota per identity.
pub const MAX_REQUESTS_PER_MINUTE: u32 = 100;

/// A view of the environment, so tests can parse settings without touching the process env.
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

    fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    fn number<T>(&self, name: &str, default: T, range: (T, T)) -> Result<T>
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
        let target =
            TargetKind::parse(env.or("TI_TARGET", "sentinel-stix")).context("setting TI_TARGET")?;
        let cloud = match env.or("TI_CLOUD", "public") {
            "public" => Cloud::Public,
            "usgov" => Cloud::UsGov,
            "china" => Cloud::China,
            other => bail!("setting TI_CLOUD={other:?}: accepted values are public, usgov, china"),
        };
        let workspace_id = match env.get("TI_WORKSPACE_ID") {
            Some(w) => {
                uuid::Uuid::parse_str(w).ok().with_context(|| {
                    format!("setting TI_WORKSPACE_ID={w:?} is not a workspace id (a UUID)")
                })?;
                Some(w.to_ascii_lowercase())
            }
            None => None,
        };
        let api_base_url = env
            .or("TI_API_BASE_URL", cloud.sentinel_base_url())
            .trim_end_matches('/')
            .to_string();
        Url::parse(&api_base_url)
            .with_context(|| format!("setting TI_API_BASE_URL={api_base_url:?} is not a URL"))?;
        let source_system = env.or("TI_SOURCE_SYSTEM", "ti-ingest").to_string();
        if source_system.chars().count() > 256 || source_system == "Microsoft Sentinel" {
            bail!(
                "setting TI_SOURCE_SYSTEM={source_system:?}: must be at most 256 characters and not \"Microsoft Sentinel\""
            );
        }
        let on_invalid = match env.or("TI_ON_INVALID", "skip") {
            "skip" => OnInvalid::Skip,
            "reject-file" => OnInvalid::RejectFile,
            other => {
                bail!("setting TI_ON_INVALID={other:?}: accepted values are skip, reject-file")
            }
        };
        Ok(UploadSettings {
            target,
            cloud,
            workspace_id,
            api_base_url,
            api_version: env
                .or("TI_SENTINEL_API_VERSION", "2024-02-01-preview")
                .to_string(),
            source_system,
            max_requests_per_minute: env.number(
                "TI_MAX_REQUESTS_PER_MINUTE",
                MAX_REQUESTS_PER_MINUTE,
                (1, 100_000),
            )?,
            batch_size: env.number("TI_BATCH_SIZE", MAX_BATCH_SIZE, (1, MAX_BATCH_SIZE))?,
            max_concurrency: env.number("TI_MAX_CONCURRENCY", 4, (1, 64))?,
            max_attempts: env.number("TI_MAX_ATTEMPTS", 8, (1, 100))?,
            max_retry_time: Duration::from_secs(env.number(
                "TI_MAX_RETRY_SECS",
                300,
                (1, 86_400),
            )?),
            on_invalid,
        })
    }

    /// The workspace id, required by the Sentinel targets.
    pub fn require_workspace(&self) -> Result<&str> {
        match (&self.workspace_id, self.target) {
            (Some(w), _) => Ok(w),
            (None, TargetKind::DryRun) => Ok("00000000-0000-0000-0000-000000000000"),
            (None, _) => bail!(
                "setting TI_WORKSPACE_ID is required for target {}: the Log Analytics workspace id (a UUID)",
                self.target.name()
            ),
        }
    }
}

fn service_url(env: &Env, name: &str, service: &str) -> Result<Url> {
    let raw = match env.get(name) {
        Some(u) => u.to_string(),
        None => match env.get("AzureWebJobsStorage__accountName") {
            Some(account) => format!("https://{account}.{service}.core.windows.net"),
            None => bail!(
                "setting {name} is required (or AzureWebJobsStorage__accountName to derive it)"
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
        })
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
        assert_eq!(s.upload.api_base_url, "https://api.ti.sentinel.azure.com");
        assert_eq!(s.upload.max_requests_per_minute, 100);
        assert_eq!(s.upload.batch_size, 100);
        assert_eq!(s.upload.max_concurrency, 4);
        assert_eq!(s.upload.source_system, "ti-ingest");
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
            ("TI_DEFAULT_TLP", "purple", "TI_DEFAULT_TLP"),
            ("TI_DEFAULT_CONFIDENCE", "101", "TI_DEFAULT_CONFIDENCE"),
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
