//! The simulator's settings: the service limits (defaults are the real ones), the accepted
//! token audiences, the workspaces that exist, which of the documented answer shapes to play,
//! and the fault-injection knobs tests turn.

use std::time::Duration;

use anyhow::{bail, Result};

/// The one workspace that exists unless [`SimConfig::workspaces`] says otherwise: the id the
/// devkit stack gives the handler as `TI_WORKSPACE_ID` (devkit re-exports this constant), so a
/// client configured with any other id gets the service's 404, as in Azure.
pub const DEFAULT_WORKSPACE_ID: &str = "a0b1c2d3-0000-4000-8000-00000000f00d";

/// The key of a rejected record's message list in a Sentinel `200` answer. Microsoft publishes
/// two spellings for both APIs, so a client must read both and the simulator can play either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordErrorsKey {
    /// `errorMessages`: what Microsoft Learn shows the service answering ("Sample response body
    /// with validation error", learn.microsoft.com/azure/sentinel/stix-objects-api and
    /// .../upload-indicators-api), and the 2022-12-01-preview spec's own example
    /// (azure-rest-api-specs, `.../2022-12-01-preview/examples/threatintelligence/UploadThreatIntelligenceSuccess.json`).
    #[default]
    Docs,
    /// `validationErrorMessages`: the name both OpenAPI specs give it (seed `004`,
    /// `IndicatorValidationError`; the 2024-02-01-preview spec, `StixObjectsValidationError`).
    Spec,
}

impl RecordErrorsKey {
    pub fn key(self) -> &'static str {
        match self {
            RecordErrorsKey::Docs => "errorMessages",
            RecordErrorsKey::Spec => "validationErrorMessages",
        }
    }
}

/// Whether the Graph `submitTiIndicators` route still exists. Microsoft deprecated the
/// tiIndicator resource and announced its removal for April 2026 (Microsoft Learn, Graph beta
/// `resources/tiindicator`); what a removed route answers is not published for this API, so
/// the simulator can play each answer Graph gives for a route it no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphApi {
    #[default]
    Available,
    /// The route is gone: every request gets this answer, before the token is looked at.
    Retired(Retired),
}

/// The answers of a retired Graph route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// `400 BadRequest` "Resource not found for the segment 'tiIndicators'.": what Graph's OData
    /// router answers for a path segment it does not know (seen in the wild, e.g.
    /// microsoftgraph/msgraph-beta-sdk-python#764, microsoftgraph/microsoft-graph-docs#21648).
    SegmentNotFound,
    /// `404`, "The requested resource doesn't exist" (Microsoft Learn, Graph "error responses").
    NotFound,
    /// `410 Gone`, "The requested resource is no longer available at the server" (same page).
    Gone,
}

impl Retired {
    pub fn status(self) -> u16 {
        match self {
            Retired::SegmentNotFound => 400,
            Retired::NotFound => 404,
            Retired::Gone => 410,
        }
    }
}

/// How the simulated service behaves. `Default` is the real service's behaviour with no faults;
/// tests and benchmarks usually shrink `window` so rate limiting shows up in milliseconds.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Requests admitted per identity in any rolling `window` (the real service: 100 per minute,
    /// Microsoft Learn, both API pages, "Throttling limits for the API").
    pub requests_per_window: u32,
    /// Length of the rolling rate-limit window (the real service: 60 s).
    pub window: Duration,
    /// Most objects one upload request may carry (the real service: 100, same section).
    pub max_objects_per_request: usize,
    /// Token audience of the Sentinel routes, accepted with or without a trailing `/`.
    pub audience: String,
    /// Further audiences the Sentinel routes accept. The real API also takes the classic
    /// `https://management.core.windows.net` audience ("This API only accepts the following
    /// audiences", Microsoft Learn, both API pages), so that is the default.
    pub extra_audiences: Vec<String>,
    /// Token audience of the Graph route (`submitTiIndicators`).
    pub graph_audience: String,
    /// Token audience of the Defender for Endpoint routes (Microsoft Learn,
    /// run-advanced-query-sample-python: tokens are issued for the resource
    /// `https://api.securitycenter.microsoft.com`).
    pub defender_audience: String,
    /// Calls per window the Defender import route admits per identity (Microsoft Learn,
    /// import-ti-indicators: 30 calls per minute).
    pub defender_requests_per_window: u32,
    /// Most indicators one import call may carry (import-ti-indicators: 500).
    pub defender_max_batch: usize,
    /// Active indicators a tenant may hold (import-ti-indicators: 15,000).
    pub defender_max_active: usize,
    /// Share (0..=1) of admitted requests answered with an injected 429.
    pub fault_429_share: f64,
    /// Share (0..=1) of admitted requests answered with an injected 503 or 500.
    pub fault_5xx_share: f64,
    /// The `N` in an injected 429's "Try again in N seconds". Kept small by default so clients
    /// that honour it do not stall tests; a real (quota) 429 always reports the real wait.
    pub fault_429_retry_secs: u64,
    /// Delay added to every answer.
    pub latency: Duration,
    /// Seed of the fault-injection RNG: the same seed and request sequence give the same faults.
    pub seed: u64,
    /// Workspace ids that exist (compared without case); any other id gets the 404 Microsoft
    /// documents for a workspace that isn't found. Default: [`DEFAULT_WORKSPACE_ID`] only.
    pub workspaces: Vec<String>,
    /// Which spelling of the per-record message list the Sentinel routes answer with.
    pub record_errors_key: RecordErrorsKey,
    /// Add a `Retry-After` header to the Sentinel 429s. The real service omits it (clients must
    /// parse the message), so this is off by default.
    pub retry_after_header: bool,
    /// Port to listen on (always on 127.0.0.1); 0 picks a free one.
    pub port: u16,
    /// Identities (token `oid`, else `appid`, else `sub`) that hold a valid token but lack the
    /// role or permission: both APIs answer them 403, as the real services do.
    pub forbidden_identities: Vec<String>,
    /// Whether the Graph `submitTiIndicators` route exists, or which answer its retirement gives.
    pub graph_api: GraphApi,
    /// Whether Graph 429s carry `Retry-After` (the real Graph always sends it); without it a
    /// client must read the wait from the message.
    pub graph_retry_after_header: bool,
    /// Observable values the Graph and Defender routes refuse although they are well-formed (Microsoft
    /// refuses, e.g., indicators for its own addresses and domains): each becomes a per-item
    /// `"Error"` in a `206`, for partial-failure tests.
    pub refused_values: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            requests_per_window: 100,
            window: Duration::from_secs(60),
            max_objects_per_request: 100,
            audience: "https://management.azure.com".to_owned(),
            extra_audiences: vec!["https://management.core.windows.net".to_owned()],
            graph_audience: "https://graph.microsoft.com".to_owned(),
            defender_audience: "https://api.securitycenter.microsoft.com".to_owned(),
            defender_requests_per_window: 30,
            defender_max_batch: 500,
            defender_max_active: 15_000,
            fault_429_share: 0.0,
            fault_5xx_share: 0.0,
            fault_429_retry_secs: 1,
            latency: Duration::ZERO,
            seed: 0,
            workspaces: vec![DEFAULT_WORKSPACE_ID.to_owned()],
            record_errors_key: RecordErrorsKey::default(),
            retry_after_header: false,
            port: 0,
            forbidden_identities: Vec::new(),
            graph_api: GraphApi::Available,
            graph_retry_after_header: true,
            refused_values: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Rejects settings the simulator cannot honour, so a typo fails at start-up and not as a
    /// puzzling test result.
    pub(crate) fn check(&self) -> Result<()> {
        check_shares(self.fault_429_share, self.fault_5xx_share)?;
        if self.window.is_zero() {
            bail!("window must be longer than zero");
        }
        if self.audience.trim().is_empty() {
            bail!("audience must not be empty");
        }
        Ok(())
    }
}

/// Fault shares are probabilities of disjoint outcomes, so each and their sum must be in 0..=1.
pub(crate) fn check_shares(fault_429_share: f64, fault_5xx_share: f64) -> Result<()> {
    let in_range = |p: f64| (0.0..=1.0).contains(&p);
    if !in_range(fault_429_share) || !in_range(fault_5xx_share) {
        bail!("fault shares must be between 0 and 1 (got {fault_429_share} and {fault_5xx_share})");
    }
    if fault_429_share + fault_5xx_share > 1.0 {
        bail!("fault shares must add up to at most 1 (got {fault_429_share} + {fault_5xx_share})");
    }
    Ok(())
}
