//! Target `sentinel-indicators`: the legacy Sentinel Upload Indicators API
//! (`POST /workspaces/{id}/threatintelligenceindicators:upload`, the seed's OpenAPI), which many
//! tenants and tools still run on. Body key `indicators`; only `indicator` objects.
//!
//! - [`SPEC`]: name, token scope and host per cloud, accepted types;
//! - [`request`]: batch → request body, refusing other object types before sending (pure);
//! - [`service`]: the HTTP call, the Sentinel service of [`crate::upload::sentinel_stix`] with
//!   this API's URL and builder;
//! - [`mapping`]: the service's answer → one outcome per object (pure).

pub mod mapping;
pub mod request;
pub mod service;

use crate::settings::Cloud;
use crate::upload::target::TargetKind;
use crate::upload::target::{RequestBuilder, Spec};

pub static SPEC: Spec = Spec {
    name: "sentinel-indicators",
    accepted_types: ti_core::stix::INDICATOR_TYPES,
    scope: Cloud::management_scope,
    default_host,
    host_setting: "TI_API_BASE_URL",
    workspace: true,
    api_version: Some("2022-07-01"),
    max_requests_per_minute: None,
    check: |s, sends| {
        if sends && s.base_url(TargetKind::SentinelIndicators).is_err() {
            anyhow::bail!(
                "setting TI_TARGET: sentinel-indicators (the legacy Upload Indicators API) has no published host in TI_CLOUD={}; use sentinel-stix there, or set TI_API_BASE_URL to the host Microsoft gave you",
                s.cloud.name()
            );
        }
        Ok(())
    },
    request: |s| {
        RequestBuilder::new(request::Indicators {
            source_system: s.source_system.clone(),
        })
    },
    service: |s, outbound| Ok(Box::new(service::new(s, outbound)?)),
    probe: |s| {
        Ok((
            crate::upload::sentinel_stix::Sentinel::url(TargetKind::SentinelIndicators, s, request::url)?,
            serde_json::json!({"sourcesystem": s.source_system, "indicators": []}),
        ))
    },
    permission: "assign the identity the Microsoft Sentinel Contributor role on the workspace (infra/modules/sentinel-role.bicep does); role assignments take a few minutes to apply",
};

/// The legacy Upload Indicators API's host: public `sentinelus.azure-api.net` (Microsoft Learn,
/// https://learn.microsoft.com/azure/sentinel/upload-indicators-api, "Request URI"; the `host:`
/// line of the API's published OpenAPI specification, "Microsoft Sentinel Upload Indicators
/// API"). No US Gov or China host for it is published anywhere we found (the sovereign connector
/// named at `sentinel_stix`'s host names only the STIX objects API), so none is guessed here.
fn default_host(cloud: Cloud) -> Option<&'static str> {
    match cloud {
        Cloud::Public => Some("https://sentinelus.azure-api.net"),
        Cloud::UsGov | Cloud::China => None,
    }
}
