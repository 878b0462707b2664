//! The HTTP side shared by every route: the state behind the router, the steps every upload
//! goes through before its body is looked at (rate limit, fault injection), the error shapes,
//! and the bookkeeping layer that delays answers and logs each request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::auth::AuthError;
use crate::config::SimConfig;
use crate::limiter::RateLimiter;
use crate::store::ObjectStore;
use crate::{defender, graph, sentinel, RequestRecord};

/// Far above what 100 objects need, so only a broken client hits it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub(crate) struct Shared {
    pub config: SimConfig,
    pub started: Instant,
    state: Mutex<SimState>,
}

/// Everything that changes while the simulator runs, behind one lock: it is held only for
/// short, non-async sections, so requests never wait on each other for long.
pub(crate) struct SimState {
    pub fault_429_share: f64,
    pub fault_5xx_share: f64,
    pub latency: Duration,
    rng: StdRng,
    limiter: RateLimiter,
    /// The Defender for Endpoint import route's own quota (30 calls per minute).
    defender_limiter: RateLimiter,
    pub defender: crate::defender::Tenant,
    pub objects: ObjectStore,
    pub graph_indicators: Vec<Value>,
    pub requests: Vec<RequestRecord>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        let state = SimState {
            fault_429_share: config.fault_429_share,
            fault_5xx_share: config.fault_5xx_share,
            latency: config.latency,
            rng: StdRng::seed_from_u64(config.seed),
            limiter: RateLimiter::new(config.requests_per_window, config.window),
            defender_limiter: RateLimiter::new(config.defender_requests_per_window, config.window),
            defender: Default::default(),
            objects: ObjectStore::default(),
            graph_indicators: Vec::new(),
            requests: Vec::new(),
        };
        Self {
            config,
            started: Instant::now(),
            state: Mutex::new(state),
        }
    }

    /// A panic while the lock is held (a failing assertion elsewhere) must not hide what was
    /// recorded so far, so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `identity` lacks the role (Sentinel) or permission (Graph).
    pub(crate) fn is_forbidden(&self, identity: &str) -> bool {
        self.config
            .forbidden_identities
            .iter()
            .any(|f| f.eq_ignore_ascii_case(identity))
    }

    /// Takes a rate-limit slot for `identity`, or gives the wait until one frees.
    pub(crate) fn acquire(&self, identity: &str) -> Result<(), Duration> {
        self.lock().limiter.try_acquire(identity, Instant::now())
    }

    /// Takes a slot of the Defender import route's quota for `identity`.
    pub(crate) fn acquire_defender(&self, identity: &str) -> Result<(), Duration> {
        self.lock()
            .defender_limiter
            .try_acquire(identity, Instant::now())
    }

    /// An `activityId` for an error body: derived from the seed and the number of requests
    /// answered so far (not from the fault RNG, so the faults a seed draws stay the same).
    pub(crate) fn activity_id(&self) -> String {
        let n = self.lock().requests.len();
        let seed = self.config.seed;
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("activity/{seed}/{n}").as_bytes(),
        )
        .to_string()
    }

    /// Decides whether this (admitted) request fails on purpose. One draw per request from the
    /// seeded RNG, so a given seed and request sequence always fail the same requests.
    pub(crate) fn draw_fault(&self) -> Fault {
        let mut state = self.lock();
        let (p429, p5xx) = (state.fault_429_share, state.fault_5xx_share);
        if p429 <= 0.0 && p5xx <= 0.0 {
            return Fault::None;
        }
        let roll: f64 = state.rng.random();
        if roll < p429 {
            Fault::Throttle
        } else if roll < p429 + p5xx {
            // Mostly 503 (an overloaded backend), sometimes 500: clients must treat both as
            // transient.
            if state.rng.random_bool(0.75) {
                Fault::Status(StatusCode::SERVICE_UNAVAILABLE)
            } else {
                Fault::Status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        } else {
            Fault::None
        }
    }
}

/// The outcome of fault injection for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Throttle,
    Status(StatusCode),
}

/// What a handler learned about its request, for the request log. It rides in the response's
/// extensions to the bookkeeping layer, which also sees the requests no handler took (404, 405).
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub objects: usize,
    pub accepted: usize,
    pub injected: bool,
    pub identity: Option<String>,
    pub api_version: Option<String>,
    pub source_system: Option<String>,
}

/// The router, without a socket, so it can also be driven in-process.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/workspaces/{workspace_id}/{operation}",
            post(sentinel::upload),
        )
        .route(graph::PATH, post(graph::submit))
        .route(defender::IMPORT_PATH, post(defender::import))
        .route(defender::BATCH_DELETE_PATH, post(defender::batch_delete))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(shared.clone(), bookkeeping))
        .with_state(shared)
}

/// Logs every request and applies the configured latency.
///
/// The answer is computed first and delayed afterwards: the rate limiter then sees the
/// request's arrival time, and the log entry exists before the client gets its answer.
async fn bookkeeping(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let at = shared.started.elapsed();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let mut response = next.run(request).await;
    let outcome = response
        .extensions_mut()
        .remove::<Outcome>()
        .unwrap_or_default();
    let status = response.status().as_u16();
    tracing::debug!(
        path,
        status,
        objects = outcome.objects,
        accepted = outcome.accepted,
        injected = outcome.injected,
        "request answered"
    );
    let latency = {
        let mut state = shared.lock();
        state.requests.push(RequestRecord {
            method,
            path,
            query,
            status,
            objects: outcome.objects,
            at,
            injected: outcome.injected,
            accepted: outcome.accepted,
            identity: outcome.identity,
            api_version: outcome.api_version,
            source_system: outcome.source_system,
        });
        state.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

async fn unknown_route() -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested resource does not exist.",
        Outcome::default(),
    )
}

/// Attaches the outcome to a response for the bookkeeping layer.
pub(crate) fn with_outcome(mut response: Response, outcome: Outcome) -> Response {
    response.extensions_mut().insert(outcome);
    response
}

pub(crate) fn json(status: StatusCode, body: impl Serialize, outcome: Outcome) -> Response {
    with_outcome((status, Json(body)).into_response(), outcome)
}

/// The ARM error shape, `{"error":{"code":..,"message":..}}`, used by both APIs for
/// request-level failures.
pub(crate) fn arm_error(
    status: StatusCode,
    code: &str,
    message: &str,
    outcome: Outcome,
) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Detail<'a>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        code: &'a str,
        message: &'a str,
    }
    json(
        status,
        Body {
            error: Detail { code, message },
        },
        outcome,
    )
}

/// Adds the `x-ms-error-code` header the 2024-02-01-preview spec declares on the STIX objects
/// API's `default` (error) answer (azure-rest-api-specs,
/// `specification/securityinsights/data-plane/ThreatIntelligence/preview/2024-02-01-preview/ThreatIntelligence.json`).
pub(crate) fn with_error_code(mut response: Response, code: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", value);
    }
    response
}

/// An error raised by the API gateway in front of the Sentinel APIs, in its own shape:
/// `{"statusCode":N,"message":"..."}` (the documented 429, Microsoft Learn "Throttling limits
/// for the API"), with an `activityId` on server errors (a 500 as seen in the wild:
/// `{"statusCode":500,"message":"Internal server error","activityId":"3423a016-..."}`,
/// cudeso/misp2sentinel#57). The body is written by hand so the keys keep that order.
pub(crate) fn gateway_error(
    status: StatusCode,
    message: &str,
    activity_id: Option<&str>,
    outcome: Outcome,
) -> Response {
    let message = serde_json::to_string(message).expect("a string serialises");
    let body = match activity_id {
        Some(id) => format!(
            r#"{{"statusCode":{},"message":{message},"activityId":"{id}"}}"#,
            status.as_u16()
        ),
        None => format!(
            r#"{{"statusCode":{},"message":{message}}}"#,
            status.as_u16()
        ),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_outcome(response, outcome)
}

/// 401 with the ARM body and the `WWW-Authenticate` challenge real Azure front ends send (the
/// Graph route).
pub(crate) fn unauthorized(err: &AuthError, outcome: Outcome) -> Response {
    let message = err.message();
    challenge(
        arm_error(StatusCode::UNAUTHORIZED, err.code(), &message, outcome),
        &message,
    )
}

/// 401 of the Sentinel routes, in the body of the spec's own example
/// (azure-rest-api-specs, `.../2022-12-01-preview/examples/threatintelligence/UploadThreatIntelligenceUnauthorized.json`:
/// `{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}`), which
/// does not say why; the reason goes only in the `WWW-Authenticate` challenge (RFC 6750 §3).
pub(crate) fn unauthorized_gateway(err: &AuthError, outcome: Outcome) -> Response {
    challenge(
        gateway_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized. Access token is missing or invalid.",
            None,
            outcome,
        ),
        &err.message(),
    )
}

fn challenge(mut response: Response, description: &str) -> Response {
    let challenge = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", \
         error=\"invalid_token\", error_description=\"{}\"",
        description.replace('"', "'")
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Adds `Retry-After: secs`.
pub(crate) fn retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}
