//! A stand-in custom handler for devkit's own tests: proves that a *child process* given
//! [`devkit::Stack::handler_env`] can get a managed-identity token and read Azurite over HTTPS,
//! and gives the host driver a real server to talk to. Not part of ti-ingest.
//!
//! Functions: `Echo` (200, returns the envelope it got), `Fail` (500), `FailUntil3` (500 while
//! `DequeueCount` < 3), `ReadBlob` (the message is a base64 Event Grid BlobCreated event; reads the
//! blob with `ManagedIdentityCredential` and `AZURE_CLIENT_ID`, returns its length).

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use devkit::storage::Storage;
use serde_json::{json, Value};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() != Some("serve") {
        anyhow::bail!("usage: devkit-fake-handler serve");
    }
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .context("FUNCTIONS_CUSTOMHANDLER_PORT")?
        .parse()?;
    let blob_url = std::env::var("TI_STORAGE_BLOB_URL").context("TI_STORAGE_BLOB_URL")?;
    let queue_url = std::env::var("TI_STORAGE_QUEUE_URL").context("TI_STORAGE_QUEUE_URL")?;
    let client_id = std::env::var("AZURE_CLIENT_ID").ok();
    let storage = Storage::with_managed_identity(&blob_url, &queue_url, client_id.as_deref())?;
    let app = Router::new()
        .route("/", get(|| async { "ready" }))
        .route("/{function}", post(invoke))
        .with_state(Arc::new(storage));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("fake handler listening on {port}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn invoke(
    State(storage): State<Arc<Storage>>,
    Path(function): Path<String>,
    Json(envelope): Json<Value>,
) -> axum::response::Response {
    let dequeue_count: u32 = envelope["Metadata"]["DequeueCount"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match function.as_str() {
        "Echo" => {
            Json(json!({"Outputs": {}, "Logs": ["echo"], "ReturnValue": envelope})).into_response()
        }
        "Fail" => (StatusCode::INTERNAL_SERVER_ERROR, "always fails").into_response(),
        "FailUntil3" if dequeue_count < 3 => {
            (StatusCode::SERVICE_UNAVAILABLE, "not yet").into_response()
        }
        "FailUntil3" => Json(json!({"ReturnValue": dequeue_count})).into_response(),
        "ReadBlob" => match read_blob(&storage, &envelope).await {
            Ok(len) => Json(json!({"Logs": [format!("read {len} bytes")], "ReturnValue": len}))
                .into_response(),
            Err(e) => {
                eprintln!("ReadBlob failed: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()
            }
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Undoes the host's encoding (a JSON string inside a string), then Event Grid's (base64).
async fn read_blob(storage: &Storage, envelope: &Value) -> Result<usize> {
    let data = envelope["Data"]["message"]
        .as_str()
        .context("Data.message is not a string")?;
    let text: String = serde_json::from_str(data).context("Data.message is not JSON text")?;
    let event: Value = serde_json::from_slice(&STANDARD.decode(text.trim())?)?;
    let subject = event["subject"].as_str().context("no subject")?;
    let rest = subject
        .strip_prefix("/blobServices/default/containers/")
        .context("unexpected subject")?;
    let (container, blob) = rest.split_once("/blobs/").context("unexpected subject")?;
    Ok(storage.read_blob(container, blob).await?.len())
}
