//! The service call for `sentinel-stix`: the shared outbound stack (token, lane, retries) and
//! this API's URL and answer mapping.

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{mapping, request};
use crate::settings::{TargetKind, UploadSettings};
use crate::upload::transport::Outbound;
use crate::upload::{send_prepared, BatchOutcome};

#[derive(Debug)]
pub struct SentinelStix {
    outbound: Outbound,
    url: String,
    source_system: String,
}

impl SentinelStix {
    pub fn new(settings: &UploadSettings, outbound: Outbound) -> anyhow::Result<Self> {
        let workspace = settings.require_workspace()?;
        Ok(SentinelStix {
            outbound,
            url: request::url(
                &settings.api_base_url,
                workspace,
                settings.api_version(TargetKind::SentinelStix),
            ),
            source_system: settings.source_system.clone(),
        })
    }

    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let prepared = request::prepare(&self.source_system, objects);
        send_prepared(
            &self.outbound,
            &self.url,
            prepared,
            deadline,
            |_, n, body| mapping::map_success(n, body),
            |status, body| {
                (
                    mapping::permanent_code(status),
                    mapping::permanent_message(status, body),
                )
            },
        )
        .await
    }
}
