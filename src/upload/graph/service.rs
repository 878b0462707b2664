//! The service call for `graph`: the shared outbound stack (token for Graph's audience, its own
//! lane, retries; Graph sends `Retry-After` with its 429s) and this API's URL and mapping.
//!
//! Once Graph has said tiIndicators is gone ([`Code::ApiRetired`]), no further request is spent
//! on it for the life of the process: every later batch gets the same report message at once.
//! Until Graph has answered once, batches go one at a time, so batches sent together cost one
//! request too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use anyhow::Context;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use ti_core::report::Code;
use tokio::time::Instant;

use super::{mapping, request};
use crate::upload::target::Service;
use crate::upload::target::TargetKind;
use crate::upload::transport::Outbound;
use crate::upload::UploadSettings;
use crate::upload::{send_prepared, BatchOutcome};

#[derive(Debug)]
pub struct Graph {
    outbound: Outbound,
    url: String,
    action: String,
    target_product: String,
    /// The retirement message, once Graph has answered that the API is gone.
    retired: OnceLock<String>,
    /// Graph has answered once with something other than its retirement.
    alive: AtomicBool,
    /// Held by the request in flight until Graph's state is known.
    first: tokio::sync::Mutex<()>,
}

impl Graph {
    pub fn new(settings: &UploadSettings, outbound: Outbound) -> anyhow::Result<Self> {
        let base = settings.base_url(TargetKind::Graph).ok().with_context(|| {
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
            retired: OnceLock::new(),
            alive: AtomicBool::new(false),
            first: tokio::sync::Mutex::new(()),
        })
    }

    async fn upload_batch(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let prepared = request::prepare(&self.action, &self.target_product, objects);
        let _first = if self.alive.load(Ordering::Acquire) || prepared.sent.is_empty() {
            None
        } else {
            Some(self.first.lock().await)
        };
        if let Some(message) = self.retired.get() {
            // Records refused before sending keep their own outcome.
            return prepared.fail_sent(Code::ApiRetired, message.clone());
        }
        let outcome = send_prepared(
            &self.outbound,
            &self.url,
            prepared,
            deadline,
            mapping::map_success,
            mapping::permanent,
        )
        .await;
        let retired = outcome
            .iter()
            .flatten()
            .find(|f| f.code == Code::ApiRetired);
        match retired {
            Some(f) => {
                if self.retired.set(f.messages.join("; ")).is_ok() {
                    tracing::error!(
                        "Microsoft Graph tiIndicators is retired: target graph uploads nothing; use sentinel-stix"
                    );
                }
            }
            None => self.alive.store(true, Ordering::Release),
        }
        outcome
    }
}

impl Service for Graph {
    fn upload<'a>(
        &'a self,
        objects: &'a [Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, BatchOutcome> {
        Box::pin(self.upload_batch(objects, deadline))
    }
}
