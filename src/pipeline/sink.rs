//! A sink per target: the one place where the pipeline meets the upload targets. It sends a
//! batch to the uploader (every configured target, outcomes merged per record; nothing in a
//! validate-only run), and applies what the targets do to a record beyond STIX validation
//! (their refusals in validate-only runs, Graph's shortened description as a warning).

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};
use ti_core::stix;
use tokio::time::Instant;

use crate::upload::{BatchOutcome, Failure, RequestBuilder, Uploader};

/// The STIX object types validation lets through (README.md, Upload targets): the Sentinel STIX
/// objects API's; a target that takes fewer refuses the rest itself.
pub const SENTINEL_STIX_TYPES: &[&str] = ti_core::stix::STIX_OBJECTS_API_TYPES;

/// What the targets do to a record beyond STIX validation: what they would refuse before sending
/// (`sentinel-indicators`: anything but indicators; `graph`: what does not convert), checked in
/// validate-only runs; and what they would shorten (`graph`: a description over 100
/// characters), reported as a warning in every run.
pub(super) struct TargetRules {
    targets: Vec<(&'static str, RequestBuilder)>,
    /// Several targets: each message names its target, as a real run's do.
    name_them: bool,
    /// Nothing is sent: refusals are checked here, and the objects dropped once checked.
    pub(super) validate_only: bool,
}

impl TargetRules {
    pub(super) fn of(uploader: &Uploader, validate_only: bool) -> TargetRules {
        let (targets, name_them) = uploader.validation_targets();
        TargetRules {
            targets,
            name_them,
            validate_only,
        }
    }

    /// `value_shortened` warnings for what a target would cut to fit (Graph's 100-character
    /// `description`), each message naming the target.
    pub(super) fn shortenings(&self, object: &Map<String, Value>) -> Vec<stix::Problem> {
        if object.get("type").and_then(Value::as_str) != Some("indicator") {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (name, builder) in &self.targets {
            found.extend(
                builder
                    .shortenings(object)
                    .into_iter()
                    .map(|w| stix::Problem::new(w.code, format!("{name}: {}", w.message))),
            );
        }
        found
    }

    /// The first refusing target's code, with every refusing target's messages.
    pub(super) fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        let mut found: Option<Failure> = None;
        for (name, builder) in &self.targets {
            let Some(f) = builder.refusal(object) else {
                continue;
            };
            let messages = f.messages.into_iter().map(|m| {
                if self.name_them {
                    format!("{name}: {m}")
                } else {
                    m
                }
            });
            match &mut found {
                Some(first) => first.messages.extend(messages),
                None => {
                    found = Some(Failure {
                        code: f.code,
                        messages: messages.collect(),
                    })
                }
            }
        }
        found
    }
}

/// Where batches go: the uploader's targets, or nowhere in a validate-only run (every record of
/// the batch then counts as uploaded).
#[derive(Clone)]
pub(super) struct Sink {
    uploader: Uploader,
    deadline: Option<Instant>,
    validate_only: bool,
    /// Told of every object the targets accepted: a pulled list feed's snapshot (src/lifecycle).
    accepted: Option<Arc<crate::lifecycle::Snapshot>>,
}

impl Sink {
    pub(super) fn new(
        uploader: Uploader,
        deadline: Option<Instant>,
        validate_only: bool,
        accepted: Option<Arc<crate::lifecycle::Snapshot>>,
    ) -> Self {
        Sink {
            uploader,
            deadline,
            validate_only,
            accepted,
        }
    }

    /// Sends one batch; the outcome has one entry per object, in the batch's order.
    pub(super) fn send(
        &self,
        objects: Vec<Map<String, Value>>,
    ) -> impl Future<Output = BatchOutcome> + Send + 'static {
        let sink = self.clone();
        async move {
            let outcome = if sink.validate_only {
                vec![None; objects.len()]
            } else {
                sink.uploader.upload(&objects, sink.deadline).await
            };
            if let Some(snapshot) = &sink.accepted {
                for (object, o) in objects.iter().zip(&outcome) {
                    if o.is_none() {
                        snapshot.accepted(object);
                    }
                }
            }
            outcome
        }
    }
}
