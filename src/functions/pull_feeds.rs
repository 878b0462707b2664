//! The `PullFeeds` timer function (`functions/PullFeeds/function.json`, schedule
//! `%TI_PULL_SCHEDULE%`): runs every configured feed ([`crate::pull`]) and answers the host with one log line
//! per feed. A failing feed is reported in storage and the invocation still succeeds (the
//! next schedule retries it; the host does not retry timers anyway); only a configuration
//! that cannot be read or is refused fails the invocation, so the host logs it as an error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::protocol::Answer;
use crate::startup::AppState;

/// The timer binding's name in `function.json`.
pub const TIMER_BINDING: &str = "timer";

/// `POST /PullFeeds`.
pub async fn pull_feeds(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    // The timer payload only tells whether the run is late; the feeds and their state say
    // what to do, so a malformed payload is no reason not to pull.
    let past_due = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["Data"][TIMER_BINDING]["IsPastDue"].as_bool())
        .unwrap_or(false);
    // The puller (its credential, token cache and HTTP client) is the app's, built at start-up.
    match state.puller.run(None).await {
        Ok(outcomes) => {
            let mut logs: Vec<String> = outcomes.iter().map(|o| o.line()).collect();
            if outcomes.is_empty() {
                logs.push("no feeds configured (TI_FEEDS_CONFIG); nothing to pull".into());
            }
            tracing::info!(feeds = outcomes.len(), past_due, "feed pulls finished");
            Json(Answer {
                outputs: Default::default(),
                logs,
                return_value: json!({ "feeds": outcomes }),
            })
            .into_response()
        }
        Err(e) => {
            // The host discards a failed invocation's body; stderr is what it logs.
            tracing::error!(error = %format!("{e:#}"), "feed pulls could not run");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()
        }
    }
}
