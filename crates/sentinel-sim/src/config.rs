//! The simulator's settings: the service limits (defaults are the real ones), the accepted
//! token audiences, and the fault-injection knobs tests turn.

use std::time::Duration;

use anyhow::{bail, Result};

/// How the simulated service behaves. `Default` is the real service's behaviour with no faults;
/// tests and benchmarks usually shrink `window` so rate limiting shows up in milliseconds.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Requests admitted per identity in any rolling `window` (the real service: 100 per minute).
    pub requests_per_window: u32,
    /// Length of the rolling rate-limit window (the real service: 60 s).
    pub window: Duration,
    /// Most objects one upload request may carry (the real service: 100).
    pub max_objects_per_request: usize,
    /// Token audience of the Sentinel routes, accepted with or without a trailing `/`.
    pub audience: String,
    /// Further audiences the Sentinel routes accept. The real API also takes the classic
    /// `https://management.core.windows.net` audience, so that is the default.
    pub extra_audiences: Vec<String>,
    /// Token audience of the Graph route (`submitTiIndicators`).
    pub graph_audience: String,
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
    /// Workspace ids that exist. `None`: every UUID is a known workspace.
    pub workspaces: Option<Vec<String>>,
    /// Add a `Retry-After` header to the Sentinel 429s. The real service omits it (clients must
    /// parse the message), so this is off by default.
    pub retry_after_header: bool,
    /// Port to listen on (always on 127.0.0.1); 0 picks a free one.
    pub port: u16,
    /// Identities (token `oid`, else `appid`, else `sub`) that hold a valid token but lack the
    /// role or permission: both APIs answer them 403, as the real services do.
    pub forbidden_identities: Vec<String>,
    /// Whether the Graph `submitTiIndicators` route exists. `false` answers 404, as a tenant
    /// will see once Microsoft removes the API.
    pub graph_available: bool,
    /// Whether Graph 429s carry `Retry-After` (the real Graph always sends it); without it a
    /// client must read the wait from the message.
    pub graph_retry_after_header: bool,
    /// Observable values the Graph route refuses although they are well-formed (Microsoft
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
            fault_429_share: 0.0,
            fault_5xx_share: 0.0,
            fault_429_retry_secs: 1,
            latency: Duration::ZERO,
            seed: 0,
            workspaces: None,
            retry_after_header: false,
            port: 0,
            forbidden_identities: Vec::new(),
            graph_available: true,
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
