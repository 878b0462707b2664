//! A local simulator of the Microsoft Sentinel threat-intelligence upload APIs (and the Graph
//! `submitTiIndicators` API), with the real services' limits and error shapes, for integration
//! tests, benchmarks and the demo.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sentinel_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default()).await?;
//! let base_url = sim.url(); // the API base URL, e.g. TI_API_BASE_URL
//! let token = sim.token("client-1"); // a bearer token the simulator accepts
//! // ... run the client under test, then:
//! assert!(sim.accepted_ids().is_empty());
//! # let _ = (base_url, token);
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `config`: [`SimConfig`], the limits (real values by default) and fault knobs.
//! - `auth`: bearer-token decoding, audience and expiry checks, the identity a quota counts.
//! - `limiter`: the per-identity rolling-window rate limit.
//! - `stix`: per-record validation of STIX objects, in the service's wording.
//! - `store`: the accepted objects, keyed by id (re-uploads update).
//! - `sentinel`: the two Sentinel upload routes.
//! - `graph`: the Graph `submitTiIndicators` route (200 / 206 with per-item errors), or the
//!   answer of its retirement ([`GraphApi::Retired`]).
//! - `defender`: the Defender for Endpoint indicators import and batch-delete routes, with the
//!   per-indicator results, the 30-calls-per-minute quota and the tenant's 15,000 cap.
//! - `server`: shared state, fault injection, error shapes, request log and latency.
//!
//! What the simulator deliberately does not do: verify token signatures (test tokens are
//! unsigned), check roles (a 403 only for the identities listed in
//! [`SimConfig::forbidden_identities`]), or persist anything beyond the process.

#![forbid(unsafe_code)]

mod auth;
mod config;
mod defender;
mod graph;
mod limiter;
mod sentinel;
mod server;
mod stix;
mod store;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::unsigned_jwt;
pub use config::{GraphApi, RecordErrorsKey, Retired, SimConfig, DEFAULT_WORKSPACE_ID};

use server::Shared;

/// How long [`Simulator::shutdown`] lets in-flight requests finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One request the simulator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The HTTP method (`POST`).
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The query string as sent, without the `?` (`api-version=2024-02-01-preview`).
    pub query: Option<String>,
    pub status: u16,
    /// Objects in the request body (0 when the body had no readable object array).
    pub objects: usize,
    /// When the request arrived, since the simulator started.
    pub at: Duration,
    /// Whether the answer was an injected fault rather than the service's real behaviour.
    pub injected: bool,
    /// Objects this request got accepted (creations and updates).
    pub accepted: usize,
    /// The rate-limit identity of the caller, once its token was accepted.
    pub identity: Option<String>,
    /// The `api-version` query parameter (Sentinel routes).
    pub api_version: Option<String>,
    /// The body's `sourcesystem` (Sentinel routes).
    pub source_system: Option<String>,
}

impl RequestRecord {
    /// The request line as the client sent it, without the HTTP version:
    /// `POST /workspaces/{id}/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview`.
    pub fn request_line(&self) -> String {
        match &self.query {
            Some(q) => format!("{} {}?{q}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// A running simulator on `127.0.0.1`. It stops when dropped, or through [`Simulator::shutdown`].
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    // Dropping the sender (with the simulator) is itself the stop signal.
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds (a free port unless `config.port` is set) and starts serving on the current
    /// tokio runtime.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        config.check().context("invalid simulator configuration")?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let shared = Arc::new(Shared::new(config));
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Either an explicit stop or the simulator being dropped.
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator stopped with an error");
            }
        });
        tracing::info!(%addr, "sentinel simulator listening");
        Ok(Simulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The API base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every object accepted so far, in order of first acceptance; a re-upload of an id
    /// replaces the earlier version in place.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.shared.lock().objects.objects().to_vec()
    }

    /// The ids of [`Simulator::accepted`].
    pub fn accepted_ids(&self) -> BTreeSet<String> {
        self.shared.lock().objects.ids()
    }

    /// Every tiIndicator the Graph route created, as it returned them (with `id`). Graph
    /// creates a new indicator per submission; there is no update by id.
    pub fn graph_accepted(&self) -> Vec<serde_json::Value> {
        self.shared.lock().graph_indicators.clone()
    }

    /// Every indicator the simulated Defender tenant holds (expired ones included), as imported,
    /// with the `id` it was given.
    pub fn defender_indicators(&self) -> Vec<serde_json::Value> {
        self.shared
            .lock()
            .defender
            .held
            .values()
            .map(|h| {
                let mut v = h.indicator.clone();
                v["id"] = h.id.to_string().into();
                v
            })
            .collect()
    }

    /// The log of every request answered, in the order answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Changes the fault shares for the requests that follow.
    ///
    /// # Panics
    /// If a share is outside 0..=1 or both add up to more than 1: a test asking for that has
    /// a bug worth stopping on.
    pub fn set_faults(&self, fault_429_share: f64, fault_5xx_share: f64) {
        if let Err(e) = config::check_shares(fault_429_share, fault_5xx_share) {
            panic!("set_faults: {e}");
        }
        let mut state = self.shared.lock();
        state.fault_429_share = fault_429_share;
        state.fault_5xx_share = fault_5xx_share;
    }

    /// Changes the delay added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// A bearer token this simulator's Sentinel routes accept, valid for an hour, whose `oid`
    /// (the rate-limit identity) is `oid`.
    pub fn token(&self, oid: &str) -> String {
        unsigned_jwt(&auth::claims_for(&self.shared.config.audience, oid))
    }

    /// Like [`Simulator::token`], for the Graph route.
    pub fn graph_token(&self, oid: &str) -> String {
        unsigned_jwt(&auth::claims_for(&self.shared.config.graph_audience, oid))
    }

    /// Like [`Simulator::token`], for the Defender for Endpoint routes.
    pub fn defender_token(&self, oid: &str) -> String {
        unsigned_jwt(&auth::claims_for(
            &self.shared.config.defender_audience,
            oid,
        ))
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a few seconds), and
    /// waits until the port is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
