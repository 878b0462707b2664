//! What a target is, and the registry of them.
//!
//! A target is one folder under `src/upload/` holding everything about one API: its [`Spec`]
//! (name, token scope and default host per cloud, the STIX types it accepts, the setting that
//! overrides its host), its request builder (`request.rs`, pure), its service (`service.rs`, the
//! call through the shared outbound stack) and its answer mapping (`mapping.rs`, pure). Adding a
//! target is that folder plus one line in [`targets!`] below; everything else (`TI_TARGET`
//! parsing, lanes per audience, `doctor`'s token checks, several targets at once, the dry run)
//! reads the spec.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use ti_core::stix::Problem;
use tokio::time::Instant;

use super::transport::Outbound;
use super::{BatchOutcome, Failure, Prepared};
use crate::settings::Cloud;
use crate::upload::UploadSettings;

/// Everything the app knows about one target, in one place (its folder's `SPEC`).
#[derive(Debug)]
pub struct Spec {
    /// The name `TI_TARGET` and the report use (`sentinel-stix`).
    pub name: &'static str,
    /// The STIX object types it accepts (a list of `ti_core::stix`); it refuses the others
    /// before sending.
    pub accepted_types: &'static [&'static str],
    /// The token scope (audience) it calls with in a cloud; targets with the same one share a
    /// lane (one quota).
    pub scope: fn(Cloud) -> &'static str,
    /// Its API's host in a cloud, or `None` where Microsoft publishes none.
    pub default_host: fn(Cloud) -> Option<&'static str>,
    /// The setting that overrides the host (tests point it at the simulator).
    pub host_setting: &'static str,
    /// Whether it calls a Sentinel workspace (and so needs `TI_WORKSPACE_ID`).
    pub workspace: bool,
    /// The api-version it calls with unless `TI_SENTINEL_API_VERSION` says otherwise.
    pub api_version: Option<&'static str>,
    /// Requests per minute its API admits per identity when lower than
    /// `TI_MAX_REQUESTS_PER_MINUTE` (`None`: that setting alone).
    pub max_requests_per_minute: Option<fn(&UploadSettings) -> u32>,
    /// Start-up's check that the target can run with these settings (a host in this cloud, its
    /// own settings), with a message naming the setting to change; `sends` is false when only
    /// the dry run builds its requests.
    pub check: fn(&UploadSettings, bool) -> anyhow::Result<()>,
    /// Its request builder (pure; the dry run and validate-only runs use it too).
    pub request: fn(&UploadSettings) -> RequestBuilder,
    /// Its service: the builder, the URL and the answer mapping behind one call.
    pub service: fn(&UploadSettings, Outbound) -> anyhow::Result<Box<dyn Service>>,
    /// The URL and the empty request `doctor` posts to check reachability and authorisation
    /// (nothing is uploaded).
    pub probe: fn(&UploadSettings) -> anyhow::Result<(String, serde_json::Value)>,
    /// What to grant the identity when the API answers 403 (`doctor`'s fix).
    pub permission: &'static str,
}

/// The registry: one line per target (`Variant => folder`), declaring [`TargetKind`] and where
/// each one's [`Spec`] is. `dry-run` is not a target of its own: it runs another's builder.
macro_rules! targets {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)*) => {
        /// Where uploads go (README.md, Upload targets).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum TargetKind {
            $($(#[$doc])* $variant,)*
            /// Validates, converts and reports like a real run; sends nothing.
            DryRun,
        }

        impl TargetKind {
            pub const ALL: &'static [TargetKind] = &[$(TargetKind::$variant,)* TargetKind::DryRun];

            /// The target's spec; `None` for the dry run.
            pub fn spec(self) -> Option<&'static Spec> {
                match self {
                    $(TargetKind::$variant => Some(&super::$module::SPEC),)*
                    TargetKind::DryRun => None,
                }
            }
        }
    };
}

targets! {
    /// The Sentinel STIX objects upload API (`threat-intelligence-stix-objects:upload`).
    SentinelStix => sentinel_stix,
    /// The legacy Sentinel Upload Indicators API (`threatintelligenceindicators:upload`).
    SentinelIndicators => sentinel_indicators,
    /// Microsoft Graph `submitTiIndicators` (beta; public cloud only).
    Graph => graph,
    /// Microsoft Defender for Endpoint indicators (Import Indicators API).
    Defender => defender,
}

/// The name `dry-run` goes by.
const DRY_RUN: &str = "dry-run";

impl TargetKind {
    pub fn name(self) -> &'static str {
        self.spec().map_or(DRY_RUN, |s| s.name)
    }

    fn accepted_names() -> String {
        Self::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown target {s:?}: accepted values are {} (several real targets may be listed, comma-separated)",
                    Self::accepted_names()
                )
            })
    }

    /// `TI_TARGET` as a comma-separated list: several real targets upload every record to each;
    /// `dry-run` stands alone (what it would send is chosen by `TI_DRY_RUN_AS`).
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<Self>> {
        let mut out: Vec<TargetKind> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let k = Self::parse(part)?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        if out.is_empty() {
            anyhow::bail!(
                "no target given: accepted values are {}",
                Self::accepted_names()
            );
        }
        if out.len() > 1 && out.contains(&TargetKind::DryRun) {
            anyhow::bail!("dry-run cannot be combined with other targets (set TI_DRY_RUN_AS to choose which request bodies it writes)");
        }
        Ok(out)
    }

    /// Whether the target talks to a Sentinel workspace (and so needs `TI_WORKSPACE_ID`).
    pub fn is_sentinel(self) -> bool {
        self.spec().is_some_and(|s| s.workspace)
    }

    /// The api-version the target is called with unless `TI_SENTINEL_API_VERSION` says
    /// otherwise (README.md, Upload targets).
    pub fn default_api_version(self) -> Option<&'static str> {
        self.spec().and_then(|s| s.api_version)
    }

    /// The token scope the target calls with in `cloud`; `None` for the dry run.
    pub fn scope(self, cloud: Cloud) -> Option<&'static str> {
        self.spec().map(|s| (s.scope)(cloud))
    }
}

/// How a target turns a batch into its request body (pure).
pub trait Request: Debug + Send + Sync {
    fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared;

    /// Why the target would refuse `object` before sending it (`None`: it would be sent): the
    /// same rules as [`Request::prepare`], without building a body.
    fn refusal(&self, object: &Map<String, Value>) -> Option<Failure>;

    /// What the target would shorten to fit (a `value_shortened` warning each), for an
    /// indicator.
    fn shortenings(&self, _object: &Map<String, Value>) -> Vec<Problem> {
        Vec::new()
    }
}

/// A target's request builder, cheap to clone. The dry run uses the same builders, so what it
/// writes is exactly what the real target would send.
#[derive(Debug, Clone)]
pub struct RequestBuilder(Arc<dyn Request>);

impl RequestBuilder {
    pub fn new(request: impl Request + 'static) -> Self {
        RequestBuilder(Arc::new(request))
    }

    /// The builder of target `kind`; `None` for the dry run.
    pub fn for_target(kind: TargetKind, settings: &UploadSettings) -> Option<Self> {
        kind.spec().map(|s| (s.request)(settings))
    }

    pub fn prepare(&self, objects: &[Map<String, Value>]) -> Prepared {
        self.0.prepare(objects)
    }

    pub fn refusal(&self, object: &Map<String, Value>) -> Option<Failure> {
        self.0.refusal(object)
    }

    pub fn shortenings(&self, object: &Map<String, Value>) -> Vec<Problem> {
        self.0.shortenings(object)
    }
}

/// A target's service: one batch in, one outcome per object out. Retries, pacing and the token
/// are the shared outbound stack's ([`Outbound`]).
pub trait Service: Debug + Send + Sync {
    fn upload<'a>(
        &'a self,
        objects: &'a [Map<String, Value>],
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, BatchOutcome>;

    /// Removes indicators the target placed, by `(type, value)` (Defender's `indicatorType` and
    /// `indicatorValue`); `None` when the target cannot delete (Sentinel expires by
    /// `valid_until` instead: send the object again with `valid_until` now).
    fn delete<'a>(
        &'a self,
        _keys: &'a [(String, String)],
        _deadline: Option<Instant>,
    ) -> Option<BoxFuture<'a, anyhow::Result<usize>>> {
        None
    }

    /// Writes whatever state the target keeps (called at the end of each run).
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A request builder that refuses what is not among `types`, with the target's own message.
pub fn refuse_other_types(
    types: &[&str],
    object: &Map<String, Value>,
    message: impl FnOnce(&str) -> String,
) -> Option<Failure> {
    match object.get("type").and_then(Value::as_str) {
        Some(t) if types.contains(&t) => None,
        other => Some(Failure {
            code: ti_core::report::Code::UnsupportedType,
            messages: vec![message(other.unwrap_or("?"))],
        }),
    }
}
