//! The service call for both Sentinel targets (`sentinel-stix` and `sentinel-indicators`): the
//! shared outbound stack (token, lane, retries), the target's URL and request builder, and the
//! answer mapping the two APIs share ([`mapping`]).

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::mapping;
use crate::upload::target::TargetKind;
use crate::upload::target::{RequestBuilder, Service};
use crate::upload::transport::Outbound;
use crate::upload::UploadSettings;
use crate::upload::{send_prepared, BatchOutcome};

/// A Sentinel API's request URL from its base URL, workspace id and api-version.
pub type UrlFn = fn(&str, &str, &str) -> String;

#[derive(Debug)]
pub struct Sentinel {
    outbound: Outbound,
    url: String,
    builder: RequestBuilder,
}

impl Sentinel {
    /// The service of `kind`, which must be one of the two Sentinel targets; `url` builds its
    /// request URL (its `request::url`).
    pub fn new(
        kind: TargetKind,
        settings: &UploadSettings,
        outbound: Outbound,
        url: UrlFn,
    ) -> anyhow::Result<Self> {
        let builder = RequestBuilder::for_target(kind, settings)
            .filter(|_| kind.is_sentinel())
            .ok_or_else(|| anyhow::anyhow!("{} is not a Sentinel target", kind.name()))?;
        Ok(Sentinel {
            outbound,
            url: Self::url(kind, settings, url)?,
            builder,
        })
    }

    /// The upload URL of Sentinel target `kind`: its own host in the cloud (or
    /// `TI_API_BASE_URL`), its operation and its api-version.
    pub fn url(kind: TargetKind, settings: &UploadSettings, url: UrlFn) -> anyhow::Result<String> {
        let workspace = settings.require_workspace()?;
        Ok(url(
            settings.sentinel_base_url(kind)?,
            workspace,
            settings.api_version(kind),
        ))
    }
}

impl Service for Sentinel {
    fn upload<'a>(
        &'a self,
        objects: &'a [Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, BatchOutcome> {
        Box::pin(send_prepared(
            &self.outbound,
            &self.url,
            self.builder.prepare(objects),
            deadline,
            |_, n, body| mapping::map_success(n, body),
            mapping::permanent,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Env;

    const WS: &str = "6a0b3e5c-1111-2222-3333-444455556666";

    fn url(kind: TargetKind, s: &UploadSettings) -> anyhow::Result<String> {
        let url = match kind {
            TargetKind::SentinelIndicators => crate::upload::sentinel_indicators::request::url,
            _ => super::super::request::url,
        };
        Sentinel::url(kind, s, url)
    }

    fn settings(pairs: &[(&str, &str)]) -> UploadSettings {
        let mut all = vec![("TI_WORKSPACE_ID", WS)];
        all.extend_from_slice(pairs);
        UploadSettings::from_env(&Env::from_pairs(all)).unwrap()
    }

    #[test]
    fn each_target_calls_its_own_host_in_each_cloud() {
        // Hosts and their sources: each target's `default_host`.
        for (cloud, kind, expected) in [
            ("public", TargetKind::SentinelStix, "https://api.ti.sentinel.azure.com/workspaces/6a0b3e5c-1111-2222-3333-444455556666/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview"),
            ("public", TargetKind::SentinelIndicators, "https://sentinelus.azure-api.net/workspaces/6a0b3e5c-1111-2222-3333-444455556666/threatintelligenceindicators:upload?api-version=2022-07-01"),
            ("usgov", TargetKind::SentinelStix, "https://api.ti.sentinel.azure.us/workspaces/6a0b3e5c-1111-2222-3333-444455556666/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview"),
            ("china", TargetKind::SentinelStix, "https://api.ti.sentinel.azure.cn/workspaces/6a0b3e5c-1111-2222-3333-444455556666/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview"),
        ] {
            let s = settings(&[("TI_CLOUD", cloud), ("TI_TARGET", kind.name())]);
            assert_eq!(url(kind, &s).unwrap(), expected, "{cloud} {}", kind.name());
        }
        // Both targets at once: each keeps its own host.
        let s = settings(&[("TI_TARGET", "sentinel-stix,sentinel-indicators")]);
        assert!(url(TargetKind::SentinelStix, &s)
            .unwrap()
            .starts_with("https://api.ti.sentinel.azure.com/workspaces/"));
        assert!(url(TargetKind::SentinelIndicators, &s)
            .unwrap()
            .starts_with("https://sentinelus.azure-api.net/workspaces/"));
    }

    #[test]
    fn ti_api_base_url_overrides_both_sentinel_hosts() {
        for cloud in ["public", "usgov", "china"] {
            let s = settings(&[
                ("TI_CLOUD", cloud),
                ("TI_TARGET", "sentinel-stix,sentinel-indicators"),
                ("TI_API_BASE_URL", "http://127.0.0.1:9/"),
            ]);
            assert_eq!(
                url(TargetKind::SentinelStix, &s).unwrap(),
                format!("http://127.0.0.1:9/workspaces/{WS}/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview")
            );
            assert_eq!(
                url(TargetKind::SentinelIndicators, &s).unwrap(),
                format!("http://127.0.0.1:9/workspaces/{WS}/threatintelligenceindicators:upload?api-version=2022-07-01")
            );
        }
    }
}
