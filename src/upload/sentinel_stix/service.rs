//! The service call for both Sentinel targets (`sentinel-stix` and `sentinel-indicators`): the
//! shared outbound stack (token, lane, retries), the target's URL and request builder, and the
//! answer mapping the two APIs share ([`mapping`]).

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::mapping;
use crate::settings::{TargetKind, UploadSettings};
use crate::upload::transport::Outbound;
use crate::upload::{send_prepared, sentinel_indicators, BatchOutcome, RequestBuilder};

#[derive(Debug)]
pub struct Sentinel {
    outbound: Outbound,
    url: String,
    builder: RequestBuilder,
}

impl Sentinel {
    /// The service of `kind`, which must be one of the two Sentinel targets.
    pub fn new(
        kind: TargetKind,
        settings: &UploadSettings,
        outbound: Outbound,
    ) -> anyhow::Result<Self> {
        let workspace = settings.require_workspace()?;
        let url = match kind {
            TargetKind::SentinelIndicators => sentinel_indicators::request::url,
            _ => super::request::url,
        };
        let builder = RequestBuilder::for_target(kind, settings)
            .filter(|_| kind.is_sentinel())
            .ok_or_else(|| anyhow::anyhow!("{} is not a Sentinel target", kind.name()))?;
        Ok(Sentinel {
            outbound,
            url: url(
                &settings.api_base_url,
                workspace,
                settings.api_version(kind),
            ),
            builder,
        })
    }

    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        send_prepared(
            &self.outbound,
            &self.url,
            self.builder.prepare(objects),
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
