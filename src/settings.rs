//! Settings: every app setting / environment variable of docs/SETTINGS.md, parsed once into typed
//! values. A bad value stops start-up with a message naming the setting and what it accepts.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use ti_core::convert::{Defaults, Tlp};
use ti_core::input::InputFormat;
use url::Url;

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
