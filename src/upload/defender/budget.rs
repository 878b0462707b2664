//! The tenant's active-indicator cap as a budget. Defender for Endpoint holds at most 15,000
//! active indicators per tenant (Microsoft Learn,
//! https://learn.microsoft.com/defender-endpoint/api/import-ti-indicators, "Limitations"), so
//! ti-ingest keeps what it has placed (each indicator's type and value, Defender's id and its
//! expiration) in a small state blob of the app's storage ([`STATE_BLOB`] in the reports
//! container, as `src/pull/state.rs` keeps a feed's bookmark), and before each call:
//!
//! - an indicator it already holds active costs nothing (the import updates it);
//! - new ones take the places left (`TI_DEFENDER_MAX_ACTIVE` minus the active ones placed and
//!   those in flight); when a batch has more than that, the ones ranking first by
//!   `TI_DEFENDER_PRIORITY` (`confidence`, then `modified`; or the reverse) go and the rest are
//!   reported `over_budget`, with why, and cost no call. A batch never fails because the tenant
//!   is full.
//!
//! Expired indicators free their place. The state is written at most every [`SAVE_EVERY`] while
//! uploads run and at the end of each run ([`Budget::flush`]); it is one process's view, read
//! once at its start: another process placing indicators with the same identity is not seen
//! until the next start, and Defender's own answer for a full tenant is then reported
//! `over_budget` too.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ti_core::report::Code;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::mapping::Placed;
use super::{DefenderSettings, Priority};
use crate::upload::Failure;

/// The state blob, in the reports container.
pub const STATE_BLOB: &str = "defender/placed.json";
/// The longest the state goes unsaved while uploads run.
pub const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Where the budget's state lives: the app's storage (`crate::storage::Storage`), or nothing
/// (the CLI without storage: the budget then lasts the process).
pub trait StateStore: Debug + Send + Sync {
    fn read<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;
    fn write<'a>(&'a self, name: &'a str, body: Vec<u8>) -> BoxFuture<'a, Result<()>>;
}

impl StateStore for crate::storage::Storage {
    fn read<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move { Ok(self.read_report_blob(name).await?.map(|b| b.to_vec())) })
    }

    fn write<'a>(&'a self, name: &'a str, body: Vec<u8>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_report_blob(name, body))
    }
}

/// One placed indicator, as saved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    indicators: Vec<Entry>,
}

/// A record the budget chooses among: its batch position, its Defender indicator and its STIX
/// object (for the ranking).
pub type Candidate<'a> = (usize, &'a Map<String, Value>, &'a Map<String, Value>);

/// An indicator's identity in the tenant.
pub type Key = (String, String);

#[derive(Debug, Default)]
struct Ledger {
    loaded: bool,
    placed: HashMap<Key, (String, Option<OffsetDateTime>)>,
    /// New places taken by calls in flight.
    reserved: usize,
    dirty: bool,
    saved_at: Option<Instant>,
}

impl Ledger {
    fn active(&self, now: OffsetDateTime) -> usize {
        self.placed
            .values()
            .filter(|(_, e)| e.is_none_or(|e| e > now))
            .count()
    }

    fn holds_active(&self, key: &Key, now: OffsetDateTime) -> bool {
        self.placed
            .get(key)
            .is_some_and(|(_, e)| e.is_none_or(|e| e > now))
    }

    fn to_json(&self) -> Vec<u8> {
        let mut indicators: Vec<Entry> = self
            .placed
            .iter()
            .map(|((kind, value), (id, expires))| Entry {
                kind: kind.clone(),
                value: value.clone(),
                id: id.clone(),
                expires: expires.and_then(|e| e.format(&Rfc3339).ok()),
            })
            .collect();
        indicators.sort_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));
        serde_json::to_vec(&Saved { indicators }).expect("entries serialise")
    }
}

/// The places one call took; given back by [`Budget::settle`] or [`Budget::release`].
#[derive(Debug)]
#[must_use]
pub struct Reservation(usize);

/// The budget of one process (shared by every invocation, like the lanes).
#[derive(Debug)]
pub struct Budget {
    max_active: usize,
    priority: Priority,
    store: Option<Arc<dyn StateStore>>,
    ledger: tokio::sync::Mutex<Ledger>,
}

fn expires_of(indicator: &Map<String, Value>) -> Option<OffsetDateTime> {
    indicator
        .get("expirationTime")
        .and_then(Value::as_str)
        .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
}

/// The key of a converted indicator.
pub fn key_of(indicator: &Map<String, Value>) -> Key {
    let s = |k: &str| {
        indicator
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("indicatorType"), s("indicatorValue"))
}

impl Budget {
    pub fn new(settings: &DefenderSettings, store: Option<Arc<dyn StateStore>>) -> Self {
        Budget {
            max_active: settings.max_active,
            priority: settings.priority,
            store,
            ledger: tokio::sync::Mutex::new(Ledger::default()),
        }
    }

    async fn load(&self, ledger: &mut Ledger) {
        if ledger.loaded {
            return;
        }
        ledger.loaded = true;
        let Some(store) = &self.store else { return };
        match store.read(STATE_BLOB).await.and_then(|b| {
            b.map(|b| {
                serde_json::from_slice::<Saved>(&b).context("parsing the Defender budget state")
            })
            .transpose()
        }) {
            Ok(Some(saved)) => {
                for e in saved.indicators {
                    let expires = e
                        .expires
                        .as_deref()
                        .and_then(|x| OffsetDateTime::parse(x, &Rfc3339).ok());
                    ledger.placed.insert((e.kind, e.value), (e.id, expires));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "the Defender budget state could not be read: starting from none placed"
            ),
        }
    }

    /// Chooses which of `candidates` (each a batch position, its converted indicator and its
    /// STIX object) go: returns the chosen ones' indexes in `candidates`, the others' failures
    /// (`over_budget`), and the places taken.
    pub async fn reserve(
        &self,
        candidates: &[Candidate<'_>],
    ) -> (Vec<usize>, Vec<(usize, Failure)>, Reservation) {
        let mut ledger = self.ledger.lock().await;
        self.load(&mut ledger).await;
        let now = OffsetDateTime::now_utc();
        let (held, new): (Vec<usize>, Vec<usize>) = (0..candidates.len())
            .partition(|&i| ledger.holds_active(&key_of(candidates[i].1), now));
        let active = ledger.active(now);
        let free = self.max_active.saturating_sub(active + ledger.reserved);
        let mut chosen = held;
        let mut left_out = Vec::new();
        let mut new = new;
        if new.len() > free {
            let rank = |i: &usize| {
                let o = candidates[*i].2;
                let confidence = o.get("confidence").and_then(Value::as_u64).unwrap_or(0);
                let modified = o
                    .get("modified")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match self.priority {
                    Priority::Confidence => (confidence, modified),
                    Priority::Recency => (0, format!("{modified}|{confidence:03}")),
                }
            };
            // Highest first; ties keep the input order.
            new.sort_by_key(|i| std::cmp::Reverse(rank(i)));
            let order = match self.priority {
                Priority::Confidence => "higher confidence, then more recently modified",
                Priority::Recency => "more recently modified, then higher confidence",
            };
            for &i in &new[free..] {
                left_out.push((
                    candidates[i].0,
                    Failure {
                        code: Code::OverBudget,
                        messages: vec![format!(
                            "not sent to Defender for Endpoint: its active-indicator budget is spent ({active} placed and active, {} in flight, of TI_DEFENDER_MAX_ACTIVE={}; the tenant holds at most 15,000), and the {free} place(s) left went to records of this batch ranking first ({order}, TI_DEFENDER_PRIORITY)",
                            ledger.reserved, self.max_active
                        )],
                    },
                ));
            }
            new.truncate(free);
        }
        let taken = new.len();
        ledger.reserved += taken;
        chosen.extend(new);
        chosen.sort_unstable();
        (chosen, left_out, Reservation(taken))
    }

    /// Records what a call placed (each sent indicator and its answer) and gives its places
    /// back; saves the state when it is due.
    pub async fn settle(
        &self,
        sent: &[&Map<String, Value>],
        placed: &[Placed],
        reservation: Reservation,
    ) {
        let mut ledger = self.ledger.lock().await;
        ledger.reserved -= reservation.0;
        for (indicator, p) in sent.iter().zip(placed) {
            if let Placed::Ok { id } = p {
                ledger
                    .placed
                    .insert(key_of(indicator), (id.clone(), expires_of(indicator)));
                ledger.dirty = true;
            }
        }
        let due = ledger.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if due {
            self.save(&mut ledger).await;
        }
    }

    /// Gives the places of a call that placed nothing back.
    pub async fn release(&self, reservation: Reservation) {
        self.ledger.lock().await.reserved -= reservation.0;
    }

    /// Forgets indicators removed from Defender (a batch delete), and the Defender ids of the
    /// ones in `keys` that it holds.
    pub async fn forget(&self, keys: &[Key]) -> Vec<String> {
        let mut ledger = self.ledger.lock().await;
        self.load(&mut ledger).await;
        let ids = keys
            .iter()
            .filter_map(|k| ledger.placed.remove(k).map(|(id, _)| id))
            .collect();
        ledger.dirty = true;
        ids
    }

    /// The Defender ids of `keys` that ti-ingest placed.
    pub async fn ids_of(&self, keys: &[Key]) -> Vec<String> {
        let mut ledger = self.ledger.lock().await;
        self.load(&mut ledger).await;
        keys.iter()
            .filter_map(|k| ledger.placed.get(k).map(|(id, _)| id.clone()))
            .collect()
    }

    /// Active indicators placed, now.
    pub async fn active(&self) -> usize {
        let mut ledger = self.ledger.lock().await;
        self.load(&mut ledger).await;
        ledger.active(OffsetDateTime::now_utc())
    }

    /// Writes the state if it changed since it was last written.
    pub async fn flush(&self) {
        let mut ledger = self.ledger.lock().await;
        self.save(&mut ledger).await;
    }

    async fn save(&self, ledger: &mut Ledger) {
        if !ledger.dirty {
            return;
        }
        let Some(store) = &self.store else {
            ledger.dirty = false;
            return;
        };
        match store.write(STATE_BLOB, ledger.to_json()).await {
            Ok(()) => {
                ledger.dirty = false;
                ledger.saved_at = Some(Instant::now());
            }
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "writing the Defender budget state failed; it is tried again after the next call"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(max_active: usize, priority: Priority) -> DefenderSettings {
        DefenderSettings {
            fields: ti_core::convert::defender::DefenderFields {
                action: "Audit".into(),
                generate_alert: true,
                application: "t".into(),
                rbac_group_names: vec![],
            },
            max_active,
            priority,
        }
    }

    fn pair(
        value: &str,
        confidence: u64,
        modified: &str,
    ) -> (Map<String, Value>, Map<String, Value>) {
        let d = json!({"indicatorType": "IpAddress", "indicatorValue": value});
        let o = json!({"confidence": confidence, "modified": modified});
        (
            d.as_object().unwrap().clone(),
            o.as_object().unwrap().clone(),
        )
    }

    #[tokio::test]
    async fn the_budget_goes_to_the_records_ranking_first_and_held_ones_cost_nothing() {
        let b = Budget::new(&settings(3, Priority::Confidence), None);
        let batch = [
            pair("198.51.100.1", 10, "2026-01-01T00:00:00Z"),
            pair("198.51.100.2", 90, "2026-01-01T00:00:00Z"),
            pair("198.51.100.3", 50, "2026-01-02T00:00:00Z"),
            pair("198.51.100.4", 50, "2026-01-03T00:00:00Z"),
            pair("198.51.100.5", 20, "2026-01-01T00:00:00Z"),
        ];
        let candidates: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, (d, o))| (i, d, o))
            .collect();
        let (chosen, left_out, r) = b.reserve(&candidates).await;
        assert_eq!(chosen, vec![1, 2, 3]);
        assert_eq!(
            left_out.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![4, 0]
        );
        assert!(left_out.iter().all(|(_, f)| f.code == Code::OverBudget));
        let sent: Vec<_> = chosen.iter().map(|&i| &batch[i].0).collect();
        let placed: Vec<_> = (0..3).map(|i| Placed::Ok { id: i.to_string() }).collect();
        b.settle(&sent, &placed, r).await;
        assert_eq!(b.active().await, 3);
        // Full: the held ones still go (an update), a new one does not.
        let again = [
            pair("198.51.100.2", 90, "2026-02-01T00:00:00Z"),
            pair("198.51.100.9", 100, "2026-02-01T00:00:00Z"),
        ];
        let candidates: Vec<_> = again
            .iter()
            .enumerate()
            .map(|(i, (d, o))| (i, d, o))
            .collect();
        let (chosen, left_out, r) = b.reserve(&candidates).await;
        assert_eq!(chosen, vec![0]);
        assert_eq!(left_out[0].0, 1);
        b.release(r).await;
        // Recency first: the latest modified wins over the most confident.
        let b = Budget::new(&settings(1, Priority::Recency), None);
        let candidates: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, (d, o))| (i, d, o))
            .collect();
        let (chosen, _, _r) = b.reserve(&candidates).await;
        assert_eq!(chosen, vec![3]);
    }
}
