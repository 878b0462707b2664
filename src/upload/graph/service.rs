//! The service call for `graph`: the shared outbound stack (token for Graph's audience, its own
//! lane, retries; Graph sends `Retry-After` with its 429s) and this API's URL and mapping.

use anyhow::Context;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{mapping, request};
use crate::settings::UploadSettings;
use crate::upload::transport::Outbound;
use crate::upload::{send_prepared, BatchOutcome};

#[derive(Debug)]
pub struct Graph {
    outbound: Outbound,
    url: String,
    action: String,
    target_product: String,
}

impl Graph {
    pub fn new(settings: &UploadSettings, outbound: Outbound) -> anyhow::Result<Self> {
        let base = settings.graph_base_url.as_deref().with_context(|| {
            format!(
                "target graph (Microsoft Graph tiIndicators) is only offered in the public cloud, not in TI_CLOUD={}",
                settings.cloud.name()
            )
        })?;
        Ok(Graph {
            outbound,
            url: request::url(base),
            action: settings.graph_action.clone(),
            target_product: settings.graph_target_product.clone(),
        })
    }

    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let prepared = request::prepare(&self.action, &self.target_product, objects);
        send_prepared(
            &self.outbound,
            &self.url,
            prepared,
            deadline,
            mapping::map_success,
            mapping::permanent,
        )
        .await
    }
}
