//! The HTTP-triggered `Health` function (`GET /api/health`, function key): the checks of
//! `ti-ingest doctor` ([`crate::doctor`]) with the app's own settings and managed identity, the
//! result as JSON through the `res` binding: `200` when every check passed, `503` otherwise
//! (the host's answer itself is always a 2xx; docs/HOST-PROTOCOL.md, "The answer").
//!
//! Each call costs one request per target against the identity's quota (the empty-batch probe)
//! and a token per audience, so it is for a person or a slow monitor, not a load balancer.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::http::respond;
use crate::doctor::{self, Identity};
use crate::settings::Env;
use crate::startup::AppState;

/// `POST /Health` from the host (the trigger's envelope is not read: a GET carries nothing).
/// The settings are read again (a diagnosis reports them); the credential is the app's own.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let diagnosis = doctor::diagnose_with(
        &Env::from_process(),
        Identity::Managed,
        Some(state.credential.clone()),
    )
    .await;
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
