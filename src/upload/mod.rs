//! Batching and upload: one folder per target, each split the same way (its `SPEC`: name, token
//! scope and host per cloud, accepted types; `request`: batch → body, pure; `service`: the
//! call; `mapping`: the answer → one outcome per object, pure), registered in [`target`] and
//! sharing the outbound stack ([`transport`]: concurrency, [`pacer`], [`retry`], client).
//!
//! The [`Uploader`] is built once per process and cloned into every invocation: its lanes hold
//! the identity's quota (one per token audience), so a copy per invocation would break it. A
//! pulled feed with its own targets gets [`Uploader::only`]: those targets, through the same
//! lanes (built on first use for an audience `TI_TARGET` does not call).
//!
//! Several targets at once (`TI_TARGET=sentinel-stix,graph`): every batch goes to each target
//! (concurrently; each through its own API's lane), and the outcomes are merged per record: a
//! record is uploaded only when every target accepted it; a failed record's code is the first
//! failing target's (in `TI_TARGET` order) and every failing target's messages are kept, each
//! prefixed with the target's name (`graph: ...`).

pub mod defender;
pub mod dry_run;
pub mod graph;
pub mod ledger;
pub mod pacer;
pub mod retry;
pub mod sentinel_indicators;
pub mod sentinel_stix;
pub mod settings;
pub mod target;
pub mod transport;

pub use settings::UploadSettings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use ti_core::report::Code;
use tokio::time::Instant;

use crate::auth::Credential;
use crate::upload::target::TargetKind;
pub use target::RequestBuilder;
use target::Service;
use transport::{Lane, Outbound, RetryPolicy, Sent};

/// Why one record was not uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub messages: Vec<String>,
}

/// Per record of a batch, in the batch's order: `None` = uploaded.
pub type BatchOutcome = Vec<Option<Failure>>;

/// A batch turned into one request: the body, which objects of the batch it carries, and the
/// outcome of those refused before sending (wrong type for the API, not convertible).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The request body; empty when nothing is left to send.
    pub body: Vec<u8>,
    /// Positions (in the batch) of the objects in the request, in request order: the service's
    /// per-record answers are mapped back through this.
    pub sent: Vec<usize>,
    /// One entry per object of the batch; the `sent` ones are `None` until the answer comes.
    pub outcome: BatchOutcome,
}

impl Prepared {
    /// Slots the outcome of the request (one entry per sent object) back into batch positions.
    pub fn settle(mut self, sent_outcome: BatchOutcome) -> BatchOutcome {
        debug_assert_eq!(sent_outcome.len(), self.sent.len());
        for (pos, o) in self.sent.iter().zip(sent_outcome) {
            self.outcome[*pos] = o;
        }
        self.outcome
    }

    /// Fails every sent object the same way (a permanent status, a give-up).
    pub fn fail_sent(self, code: Code, message: String) -> BatchOutcome {
        let n = self.sent.len();
        self.settle(vec![
            Some(Failure {
                code,
                messages: vec![message]
            });
            n
        ])
    }
}

/// Sends a prepared request and maps the answer: the part every target's service shares.
/// `permanent` gets the status, the body and the `x-ms-error-code` header of a non-2xx answer.
pub(crate) async fn send_prepared(
    outbound: &Outbound,
    url: &str,
    mut prepared: Prepared,
    deadline: Option<Instant>,
    map_success: impl FnOnce(u16, usize, &[u8]) -> BatchOutcome,
    permanent: impl FnOnce(u16, &str, Option<&str>) -> (Code, String),
) -> BatchOutcome {
    if prepared.sent.is_empty() {
        return prepared.outcome;
    }
    let body = bytes::Bytes::from(std::mem::take(&mut prepared.body));
    match outbound.post(url, body, deadline).await {
        Sent::Answer { status, body, .. } if (200..300).contains(&status) => {
            let n = prepared.sent.len();
            prepared.settle(map_success(status, n, &body))
        }
        Sent::Answer {
            status,
            body,
            error_code,
        } => {
            let (code, message) = permanent(
                status,
                &String::from_utf8_lossy(&body),
                error_code.as_deref(),
            );
            prepared.fail_sent(code, message)
        }
        Sent::GaveUp { code, message } => prepared.fail_sent(code, message),
    }
}

/// The configured upload targets, shared by every invocation of the process.
///
/// Clones, and the uploaders [`Uploader::only`] hands out for a subset of targets (a pulled
/// feed's own `targets`), share one [`Registry`]: one lane per token audience and one built
/// target per kind for the whole process, so whatever mix of targets runs at once, the
/// identity's quota at each API is counted once.
#[derive(Debug, Clone)]
pub struct Uploader {
    targets: Arc<Vec<Arc<Built>>>,
    settings: Arc<UploadSettings>,
    name: Arc<str>,
    registry: Arc<Registry>,
}

/// What every uploader of the process shares: the HTTP client, the credential, the lanes (built
/// lazily, per audience) and the targets (built lazily, per kind).
#[derive(Debug)]
struct Registry {
    http: reqwest::Client,
    credential: Option<Credential>,
    policy: RetryPolicy,
    /// The app's storage, where every lane keeps its shared quota ledger (`None`: paced alone).
    ledger: Option<ledger::LedgerStore>,
    lanes: Mutex<HashMap<&'static str, Lane>>,
    built: Mutex<HashMap<TargetKind, Arc<Built>>>,
}

/// A target and the lane its requests go through (`None` for the dry run, which sends nothing).
#[derive(Debug)]
struct Built {
    target: Target,
    #[cfg_attr(not(test), allow(dead_code))]
    lane: Option<Lane>,
}

#[derive(Debug)]
enum Target {
    Real {
        name: &'static str,
        service: Box<dyn Service>,
    },
    DryRun(dry_run::DryRun),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Real { name, .. } => name,
            Target::DryRun(_) => TargetKind::DryRun.name(),
        }
    }

    async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        match self {
            Target::Real { service, .. } => service.upload(objects, deadline).await,
            Target::DryRun(t) => t.upload(objects).await,
        }
    }
}

impl Registry {
    /// The target of `kind`, built on first use. `settings` name the targets of the uploader
    /// asking (a Sentinel target's missing workspace is reported against them); everything else
    /// in them is the app's, the same for every uploader of the process.
    fn target(&self, kind: TargetKind, settings: &UploadSettings) -> anyhow::Result<Arc<Built>> {
        let mut built = self.built.lock().expect("targets lock");
        if let Some(b) = built.get(&kind) {
            return Ok(b.clone());
        }
        let b = Arc::new(self.build(kind, settings)?);
        built.insert(kind, b.clone());
        Ok(b)
    }

    fn build(&self, kind: TargetKind, settings: &UploadSettings) -> anyhow::Result<Built> {
        let Some(spec) = kind.spec() else {
            return Ok(Built {
                target: Target::DryRun(dry_run::DryRun::new(settings)?),
                lane: None,
            });
        };
        let credential = self.credential.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "target {} needs a credential (managed identity)",
                kind.name()
            )
        })?;
        let scope = (spec.scope)(settings.cloud);
        let lane = self
            .lanes
            .lock()
            .expect("lanes lock")
            .entry(scope)
            .or_insert_with(|| {
                let limit = Lane::limit_for(spec, settings);
                let ledger = self
                    .ledger
                    .as_ref()
                    .map(|store| store.ledger(scope, credential.clone(), settings, limit));
                Lane::with_ledger(limit, settings, ledger)
            })
            .clone();
        let outbound = Outbound::new(
            self.http.clone(),
            credential,
            scope,
            lane.clone(),
            self.policy,
        );
        let target = Target::Real {
            name: spec.name,
            service: (spec.service)(settings, outbound)?,
        };
        Ok(Built {
            target,
            lane: Some(lane),
        })
    }
}

impl Uploader {
    /// Builds the targets from settings; fails when a setting one needs is missing. Build it
    /// once per process: every clone (and every [`Uploader::only`]) shares the quota.
    pub fn new(settings: UploadSettings, credential: Option<Credential>) -> anyhow::Result<Self> {
        Self::with_ledger(settings, credential, None)
    }

    /// [`Uploader::new`], sharing the identity's quota with every other process through the
    /// ledger in `ledger` (the app's storage; see [`ledger`]) when given.
    pub fn with_ledger(
        settings: UploadSettings,
        credential: Option<Credential>,
        ledger: Option<ledger::LedgerStore>,
    ) -> anyhow::Result<Self> {
        let registry = Arc::new(Registry {
            http: transport::http_client()?,
            credential,
            policy: RetryPolicy::from_settings(&settings),
            ledger,
            lanes: Mutex::new(HashMap::new()),
            built: Mutex::new(HashMap::new()),
        });
        Self::with_registry(registry, settings)
    }

    fn with_registry(registry: Arc<Registry>, settings: UploadSettings) -> anyhow::Result<Self> {
        let targets = settings
            .targets
            .iter()
            .map(|&kind| registry.target(kind, &settings))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Uploader {
            targets: Arc::new(targets),
            name: settings.target_names().into(),
            settings: Arc::new(settings),
            registry,
        })
    }

    /// An uploader for `targets` (in that order; repeats ignored) instead of `TI_TARGET`, with
    /// the same settings, credential and lanes: its requests count against the same quota as
    /// this uploader's and every other one's of the process, also at an API that `TI_TARGET`
    /// does not call. Fails when a target cannot be built from the app's settings (a Sentinel
    /// target without `TI_WORKSPACE_ID`, `graph` outside the public cloud, no credential).
    pub fn only(&self, targets: &[TargetKind]) -> anyhow::Result<Uploader> {
        let mut kinds: Vec<TargetKind> = Vec::with_capacity(targets.len());
        for &t in targets {
            if !kinds.contains(&t) {
                kinds.push(t);
            }
        }
        let Some(&first) = kinds.first() else {
            anyhow::bail!("no targets given");
        };
        if kinds == self.settings.targets {
            return Ok(self.clone());
        }
        let mut settings = (*self.settings).clone();
        settings.target = first;
        settings.targets = kinds;
        Self::with_registry(self.registry.clone(), settings)
    }

    pub fn settings(&self) -> &UploadSettings {
        &self.settings
    }

    /// What the quota ledgers did in this process, summed over the lanes built so far (`None`:
    /// no ledger).
    pub fn ledger_stats(&self) -> Option<ledger::LedgerStats> {
        let lanes = self.registry.lanes.lock().expect("lanes lock");
        lanes
            .values()
            .filter_map(Lane::ledger_stats)
            .reduce(|a, b| ledger::LedgerStats {
                reserved: a.reserved + b.reserved,
                conflicts: a.conflicts + b.conflicts,
                writes: a.writes + b.writes,
                write_ms: a.write_ms + b.write_ms,
                fallbacks: a.fallbacks + b.fallbacks,
            })
    }

    /// The targets whose rules a validate-only run applies (`validate_as`, else the configured
    /// targets; the dry run stands for `TI_DRY_RUN_AS`), each with its request builder, and
    /// whether there are several (messages then name the target, as a real run's do).
    pub fn validation_targets(&self) -> (Vec<(&'static str, RequestBuilder)>, bool) {
        let s = &self.settings;
        let configured = if s.validate_as.is_empty() {
            &s.targets
        } else {
            &s.validate_as
        };
        let mut kinds: Vec<TargetKind> = Vec::new();
        for &k in configured {
            let k = if k == TargetKind::DryRun {
                s.dry_run_as
            } else {
                k
            };
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        let refusing = kinds
            .iter()
            .filter_map(|&k| RequestBuilder::for_target(k, s).map(|b| (k.name(), b)))
            .collect();
        (refusing, kinds.len() > 1)
    }

    /// The report's `target`: `sentinel-stix`, or `sentinel-stix,graph` for several.
    pub fn target_name(&self) -> &str {
        &self.name
    }

    /// Removes indicators by `(type, value)` from every target that deletes (`defender`: Batch
    /// Delete of the ones ti-ingest placed); returns how many each removed, by target name.
    /// Targets that expire by `valid_until` (Sentinel) are not listed: send the object again
    /// with `valid_until` now.
    pub async fn delete(
        &self,
        keys: &[(String, String)],
        deadline: Option<Instant>,
    ) -> anyhow::Result<Vec<(&'static str, usize)>> {
        let mut removed = Vec::new();
        for b in self.targets.iter() {
            if let Target::Real { name, service } = &b.target {
                if let Some(call) = service.delete(keys, deadline) {
                    removed.push((*name, call.await?));
                }
            }
        }
        Ok(removed)
    }

    /// Writes the state the targets keep (the Defender budget); the end of every run calls it.
    pub async fn flush(&self) {
        for b in self.targets.iter() {
            if let Target::Real { service, .. } = &b.target {
                service.flush().await;
            }
        }
    }

    /// Uploads one batch (at most `batch_size` objects) to every target, retrying transient
    /// failures until the attempt or time budget (or `deadline`) runs out. Every object gets an
    /// outcome.
    pub async fn upload(
        &self,
        objects: &[Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        debug_assert!(objects.len() <= self.settings.batch_size);
        if let [only] = self.targets.as_slice() {
            return only.target.upload(objects, deadline).await;
        }
        let outcomes =
            futures::future::join_all(self.targets.iter().map(|b| async move {
                (b.target.name(), b.target.upload(objects, deadline).await)
            }))
            .await;
        merge(objects.len(), outcomes)
    }
}

/// Merges per-target outcomes (in target order): uploaded only when every target accepted.
fn merge(len: usize, outcomes: Vec<(&'static str, BatchOutcome)>) -> BatchOutcome {
    let mut merged: BatchOutcome = vec![None; len];
    for (name, outcome) in outcomes {
        for (slot, o) in merged.iter_mut().zip(outcome) {
            let Some(f) = o else { continue };
            let messages = f.messages.into_iter().map(|m| format!("{name}: {m}"));
            match slot {
                Some(first) => first.messages.extend(messages),
                None => {
                    *slot = Some(Failure {
                        code: f.code,
                        messages: messages.collect(),
                    })
                }
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(code: Code, m: &str) -> Option<Failure> {
        Some(Failure {
            code,
            messages: vec![m.into()],
        })
    }

    #[test]
    fn a_record_is_uploaded_only_when_every_target_accepted_it() {
        let stix = vec![None, fail(Code::RejectedByService, "bad"), None, None];
        let graph = vec![
            None,
            fail(Code::NotConvertible, "no"),
            fail(Code::RetriesExhausted, "503"),
            None,
        ];
        let out = merge(4, vec![("sentinel-stix", stix), ("graph", graph)]);
        assert!(out[0].is_none() && out[3].is_none());
        let f1 = out[1].as_ref().unwrap();
        assert_eq!(
            f1.code,
            Code::RejectedByService,
            "the first failing target's code"
        );
        assert_eq!(f1.messages, vec!["sentinel-stix: bad", "graph: no"]);
        let f2 = out[2].as_ref().unwrap();
        assert_eq!(f2.code, Code::RetriesExhausted);
        assert_eq!(f2.messages, vec!["graph: 503"]);
    }

    const WORKSPACE: &str = "6f1b5b7e-0000-4000-8000-000000000001";

    fn app(target: &str, workspace: bool, credential: bool) -> Uploader {
        let mut pairs = vec![("TI_TARGET", target), ("TI_MAX_REQUESTS_PER_MINUTE", "100")];
        if workspace {
            pairs.push(("TI_WORKSPACE_ID", WORKSPACE));
        }
        let settings = UploadSettings::from_env(&crate::settings::Env::from_pairs(pairs)).unwrap();
        let credential = credential.then(|| crate::auth::managed_identity(None).unwrap());
        Uploader::new(settings, credential).unwrap()
    }

    fn lane(up: &Uploader, i: usize) -> &Lane {
        up.targets[i].lane.as_ref().expect("a target that sends")
    }

    #[tokio::test]
    async fn only_hands_out_targets_that_share_the_apps_lanes() {
        let app = app("sentinel-stix", true, true);
        // A feed's own targets, one of which the app does not upload to.
        let feed = app
            .only(&[TargetKind::SentinelIndicators, TargetKind::SentinelStix])
            .unwrap();
        assert_eq!(feed.target_name(), "sentinel-indicators,sentinel-stix");
        assert_eq!(feed.settings().target, TargetKind::SentinelIndicators);
        assert!(Arc::ptr_eq(&app.registry, &feed.registry));
        // The app's sentinel-stix target is the very same one, not a second copy.
        assert!(Arc::ptr_eq(&app.targets[0], &feed.targets[1]));
        // Both Sentinel APIs share the management audience: one lane, one quota. A 429 seen
        // through the feed's sentinel-indicators slows the app's sentinel-stix down too.
        let limit = app.settings().max_requests_per_minute as usize;
        lane(&feed, 0)
            .pacer
            .slow_down(std::time::Duration::from_millis(1))
            .await;
        assert_eq!(lane(&app, 0).pacer.current_limit().await, limit * 3 / 4);
        // A later `only` (another feed, another invocation's clone) gets the same lane again.
        let other = app.clone().only(&[TargetKind::SentinelIndicators]).unwrap();
        assert!(Arc::ptr_eq(&other.targets[0], &feed.targets[0]));
        assert_eq!(lane(&other, 0).pacer.current_limit().await, limit * 3 / 4);
        // Graph is another audience: a lane of its own, built on first use.
        let graph = feed.only(&[TargetKind::Graph]).unwrap();
        assert_eq!(lane(&graph, 0).pacer.current_limit().await, limit);
        assert_eq!(app.registry.lanes.lock().unwrap().len(), 2);
        // The app's own set (repeats ignored) is the app's uploader.
        let same = app
            .only(&[TargetKind::SentinelStix, TargetKind::SentinelStix])
            .unwrap();
        assert!(Arc::ptr_eq(&same.targets, &app.targets));
    }

    #[test]
    fn only_refuses_targets_the_apps_settings_cannot_build() {
        let dry = app("dry-run", false, false);
        assert!(dry.only(&[]).is_err());
        let e = dry.only(&[TargetKind::SentinelStix]).unwrap_err();
        assert!(format!("{e:#}").contains("needs a credential"), "{e:#}");
        let dry = app("dry-run", false, true);
        let e = dry.only(&[TargetKind::SentinelStix]).unwrap_err();
        assert!(format!("{e:#}").contains("TI_WORKSPACE_ID"), "{e:#}");
        // Nothing half-built was kept: only the dry run is.
        assert_eq!(dry.registry.built.lock().unwrap().len(), 1);
        let stix = app("dry-run", true, true)
            .only(&[TargetKind::SentinelStix])
            .unwrap();
        assert_eq!(stix.target_name(), "sentinel-stix");
    }

    #[test]
    fn local_refusals_and_answers_land_at_their_batch_positions() {
        let p = Prepared {
            body: b"{}".to_vec(),
            sent: vec![0, 2],
            outcome: vec![None, fail(Code::UnsupportedType, "x"), None],
        };
        let out = p.settle(vec![fail(Code::RejectedByService, "y"), None]);
        assert_eq!(out[0].as_ref().unwrap().code, Code::RejectedByService);
        assert_eq!(out[1].as_ref().unwrap().code, Code::UnsupportedType);
        assert!(out[2].is_none());
    }
}
