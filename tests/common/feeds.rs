//! Loopback HTTPS-style feeds for the pull and lifecycle tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// `(feed name, If-None-Match)` of one request.
pub type Seen = (String, Option<String>);

/// Loopback feeds: `/feeds/<name>` serves the current content with its ETag and honours
/// `If-None-Match`; `broken` is a JSON document cut short, `down` answers 503.
#[derive(Clone, Default)]
pub struct FeedServer {
    pub files: Arc<Mutex<HashMap<String, (String, String)>>>,
    /// `(name, If-None-Match)` of every request.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve_feed(
    State(server): State<FeedServer>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inm = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    server
        .seen
        .lock()
        .unwrap()
        .push((name.clone(), inm.clone()));
    match name.as_str() {
        "broken" => (
            StatusCode::OK,
            "{\"type\": \"bundle\", \"objects\": [ {\"type\": <html>oops",
        )
            .into_response(),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
        _ => {
            let Some((etag, body)) = server.files.lock().unwrap().get(&name).cloned() else {
                return StatusCode::NOT_FOUND.into_response();
            };
            if inm.as_deref() == Some(etag.as_str()) {
                return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
            }
            (StatusCode::OK, [("etag", etag)], body).into_response()
        }
    }
}

impl FeedServer {
    pub async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/feeds/{name}", axum::routing::get(serve_feed))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/feeds")
    }

    pub fn set(&self, name: &str, etag: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(name.into(), (etag.into(), body.into()));
    }

    /// A STIX list feed: these objects as NDJSON.
    pub fn set_objects(&self, name: &str, etag: &str, objects: &[Value]) {
        let body: String = objects.iter().map(|o| format!("{o}\n")).collect();
        self.set(name, etag, &body);
    }
}
