//! Target `sentinel-stix`: the Sentinel STIX objects upload API
//! (`POST /workspaces/{id}/threat-intelligence-stix-objects:upload`).
//!
//! - [`SPEC`]: name, token scope and host per cloud, accepted types;
//! - [`request`]: batch → request body (pure);
//! - [`service`]: the HTTP call with auth, pacing and retries (for both Sentinel targets);
//! - [`mapping`]: the service's answer → one outcome per object (pure).

pub mod mapping;
pub mod request;
pub mod service;

pub use service::Sentinel;

use crate::settings::Cloud;
use crate::upload::target::TargetKind;
use crate::upload::target::{RequestBuilder, Spec};

pub static SPEC: Spec = Spec {
    name: "sentinel-stix",
    accepted_types: ti_core::stix::STIX_OBJECTS_API_TYPES,
    scope: Cloud::management_scope,
    default_host,
    host_setting: "TI_API_BASE_URL",
    workspace: true,
    api_version: Some("2024-02-01-preview"),
    max_requests_per_minute: None,
    check: |_, _| Ok(()),
    request: |s| {
        RequestBuilder::new(request::Stix {
            source_system: s.source_system.clone(),
        })
    },
    service: |s, outbound| {
        Ok(Box::new(Sentinel::new(
            TargetKind::SentinelStix,
            s,
            outbound,
            request::url,
        )?))
    },
    probe: |s| {
        Ok((
            crate::upload::sentinel_stix::Sentinel::url(TargetKind::SentinelStix, s, request::url)?,
            serde_json::json!({"sourcesystem": s.source_system, "stixobjects": []}),
        ))
    },
    permission: "assign the identity the Microsoft Sentinel Contributor role on the workspace (infra/modules/sentinel-role.bicep does); role assignments take a few minutes to apply",
};

/// The STIX objects API's host: public `api.ti.sentinel.azure.com` (Microsoft Learn,
/// https://learn.microsoft.com/azure/sentinel/stix-objects-api, "Request URI"); US Gov
/// ("Fairfax") `api.ti.sentinel.azure.us` and China ("Mooncake") `api.ti.sentinel.azure.cn`
/// (Azure/Azure-Sentinel, `Solutions/Threat Intelligence (NEW)/Data Connectors/
/// template_ThreatIntelligenceUploadIndicators_ForGov.json`, the sovereign-cloud connector).
fn default_host(cloud: Cloud) -> Option<&'static str> {
    Some(match cloud {
        Cloud::Public => "https://api.ti.sentinel.azure.com",
        Cloud::UsGov => "https://api.ti.sentinel.azure.us",
        Cloud::China => "https://api.ti.sentinel.azure.cn",
    })
}
