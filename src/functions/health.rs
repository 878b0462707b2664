//! The HTTP-triggered `Health` function (`GET /api/health`, function key): the checks of
//! `ti-ingest doctor` ([`crate::doctor`]) with the app's own settings and managed identity, the
//! result as JSON through the `res` binding: `200` when every check passed, `503` otherwise
//! (the host's answer itself is always a 2xx; docs/HOST-PROTOCOL.md, "The answer").
//!
//! Each call costs one request per target against the identity's quota (the empty-batch probe)
//! and a token per audience, so it is for a person or a slow monitor, not a load balancer.

use axum::response::Response;

use super::http::respond;
use crate::doctor::{self, Identity};
use crate::settings::Env;

/// `POST /Health` from the host (the trigger's envelope is not read: a GET carries nothing).
pub async fn health() -> Response {
    let diagnosis = doctor::diagnose(&Env::from_process(), Identity::Managed).await;
    let status = if diagnosis.healthy { 200 } else { 503 };
    let failed: Vec<String> = diagnosis
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("health: {} {} failed: {}", c.component, c.name, c.detail))
        .collect();
    for line in &failed {
        tracing::warn!("{line}");
    }
    respond(status, diagnosis.to_json(), &[], failed)
}
