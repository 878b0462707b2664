//! The service call for `defender`: converts a batch, lets the [`Budget`] choose what goes,
//! sends one import call through the shared outbound stack (the Defender audience's own lane:
//! 30 calls/min; `Retry-After` honoured on 429, Microsoft Learn,
//! https://learn.microsoft.com/defender-endpoint/api/common-errors, "Throttling") and maps the
//! per-indicator results back. [`Defender::delete`] removes placed indicators by value
//! (Defender deletes by id: https://learn.microsoft.com/defender-endpoint/api/batch-delete-ti-indicators),
//! for indicator lifecycle; an indicator sent again with `valid_until` now expires at once.

use std::sync::Arc;

use anyhow::{bail, Result};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::budget::{key_of, Budget, Key};
use super::{mapping, request, MAX_BATCH};
use crate::upload::target::Service;
use crate::upload::target::TargetKind;
use crate::upload::transport::{Outbound, Sent};
use crate::upload::UploadSettings;
use crate::upload::{BatchOutcome, Failure};
use ti_core::convert::defender::DefenderFields;
use ti_core::report::Code;

#[derive(Debug)]
pub struct Defender {
    outbound: Outbound,
    url: String,
    delete_url: String,
    fields: DefenderFields,
    budget: Arc<Budget>,
}

impl Defender {
    pub fn new(settings: &UploadSettings, outbound: Outbound) -> Result<Self> {
        let base = settings.base_url(TargetKind::Defender)?;
        Ok(Defender {
            outbound,
            url: request::url(base),
            delete_url: request::batch_delete_url(base),
            fields: settings.defender.fields.clone(),
            budget: Arc::new(Budget::new(
                &settings.defender,
                settings.state_store.clone(),
            )),
        })
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    async fn upload_batch(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let (converted, mut outcome) = request::convert_all(objects, &self.fields);
        if converted.is_empty() {
            return outcome;
        }
        let candidates: Vec<_> = converted
            .iter()
            .map(|(i, d)| (*i, d, &objects[*i]))
            .collect();
        let (chosen, left_out, reservation) = self.budget.reserve(&candidates).await;
        for (pos, f) in left_out {
            outcome[pos] = Some(f);
        }
        if chosen.is_empty() {
            self.budget.release(reservation).await;
            return outcome;
        }
        let sent: Vec<&Map<String, Value>> = chosen.iter().map(|&c| &converted[c].1).collect();
        let positions: Vec<usize> = chosen.iter().map(|&c| converted[c].0).collect();
        let body = bytes::Bytes::from(request::encode(&sent));
        let fail_all = |outcome: &mut BatchOutcome, code: Code, message: String| {
            for &p in &positions {
                outcome[p] = Some(Failure {
                    code,
                    messages: vec![message.clone()],
                });
            }
        };
        match self.outbound.post(&self.url, body, deadline).await {
            Sent::Answer { status, body, .. } if (200..300).contains(&status) => {
                let values: Vec<&str> = sent
                    .iter()
                    .map(|d| d["indicatorValue"].as_str().unwrap_or_default())
                    .collect();
                let placed = mapping::map_success(&body, &values);
                for (&p, o) in positions.iter().zip(mapping::outcomes(&placed)) {
                    outcome[p] = o;
                }
                self.budget.settle(&sent, &placed, reservation).await;
            }
            Sent::Answer {
                status,
                body,
                error_code,
            } => {
                self.budget.release(reservation).await;
                let (code, message) = mapping::permanent(
                    status,
                    &String::from_utf8_lossy(&body),
                    error_code.as_deref(),
                );
                fail_all(&mut outcome, code, message);
            }
            Sent::GaveUp { code, message } => {
                self.budget.release(reservation).await;
                fail_all(&mut outcome, code, message);
            }
        }
        outcome
    }

    /// Removes the indicators ti-ingest placed with these `(indicatorType, indicatorValue)`s
    /// (Batch Delete, at most 500 ids per call); returns how many were removed. Values it did
    /// not place are skipped.
    pub async fn delete(&self, keys: &[Key], deadline: Option<Instant>) -> Result<usize> {
        let ids = self.budget.ids_of(keys).await;
        let mut removed = 0;
        for chunk in ids.chunks(MAX_BATCH) {
            let body = serde_json::to_vec(&serde_json::json!({ "IndicatorIds": chunk }))?;
            match self
                .outbound
                .post(&self.delete_url, body.into(), deadline)
                .await
            {
                Sent::Answer { status, .. } if (200..300).contains(&status) => {
                    removed += chunk.len();
                }
                Sent::Answer { status, body, .. } => {
                    bail!(
                        "Defender refused the batch delete: {}",
                        mapping::permanent(status, &String::from_utf8_lossy(&body), None).1
                    )
                }
                Sent::GaveUp { message, .. } => bail!("batch delete: {message}"),
            }
        }
        self.budget.forget(keys).await;
        self.budget.flush().await;
        Ok(removed)
    }

    /// The keys of converted indicators (for [`Defender::delete`]).
    pub fn key(indicator: &Map<String, Value>) -> Key {
        key_of(indicator)
    }
}

impl Service for Defender {
    fn upload<'a>(
        &'a self,
        objects: &'a [Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, BatchOutcome> {
        Box::pin(self.upload_batch(objects, deadline))
    }

    fn delete<'a>(
        &'a self,
        keys: &'a [Key],
        deadline: Option<Instant>,
    ) -> Option<BoxFuture<'a, Result<usize>>> {
        Some(Box::pin(Defender::delete(self, keys, deadline)))
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.budget.flush())
    }
}
