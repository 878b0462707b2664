//! Target `graph`: Microsoft Graph `submitTiIndicators` (beta,
//! `POST /beta/security/tiIndicators/submitTiIndicators`), for tenants that still have it
//! (Microsoft announced its removal for 2026-04-10). Public cloud only.
//!
//! - [`SPEC`]: name, token scope and host per cloud, accepted types;
//! - [`request`]: batch → `{"value":[tiIndicator...]}`, converting each STIX indicator and
//!   refusing what cannot become a tiIndicator before sending (pure);
//! - [`service`]: the HTTP call through the shared outbound stack (scope
//!   `https://graph.microsoft.com/.default`);
//! - [`mapping`]: `200` (all created) / `206 Partial Content` (per-item `"Error"` strings, matched
//!   by position) → one outcome per object (pure).

pub mod mapping;
pub mod request;
pub mod service;

pub use service::Graph;

use crate::settings::Cloud;
use crate::upload::target::TargetKind;
use crate::upload::target::{RequestBuilder, Spec};

/// The token scope of Microsoft Graph (public cloud).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

pub static SPEC: Spec = Spec {
    name: "graph",
    accepted_types: ti_core::stix::INDICATOR_TYPES,
    scope: |_| GRAPH_SCOPE,
    default_host,
    host_setting: "TI_GRAPH_BASE_URL",
    workspace: false,
    api_version: None,
    max_requests_per_minute: None,
    // Checked for the dry run too: it builds Graph's requests for a cloud without Graph.
    check: |s, _| {
        if s.base_url(TargetKind::Graph).is_err() {
            anyhow::bail!(
                "setting TI_TARGET: graph (Microsoft Graph tiIndicators) exists in the public cloud only, not in TI_CLOUD={}",
                s.cloud.name()
            );
        }
        Ok(())
    },
    request: |s| {
        RequestBuilder::new(request::Graph {
            action: s.graph_action.clone(),
            target_product: s.graph_target_product.clone(),
        })
    },
    service: |s, outbound| Ok(Box::new(Graph::new(s, outbound)?)),
    probe: |s| {
        let base = s
            .base_url(TargetKind::Graph)
            .map_err(|_| anyhow::anyhow!("Graph is only offered in the public cloud"))?;
        Ok((request::url(base), serde_json::json!({"value": []})))
    },
    permission: "grant the identity the Microsoft Graph application permission ThreatIndicators.ReadWrite.OwnedBy",
};

/// Graph `tiIndicators` exists in the public cloud only.
fn default_host(cloud: Cloud) -> Option<&'static str> {
    match cloud {
        Cloud::Public => Some("https://graph.microsoft.com"),
        Cloud::UsGov | Cloud::China => None,
    }
}
