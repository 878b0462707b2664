//! Shared test support: deterministic indicator corpora with known-invalid records.
#![allow(dead_code)]

pub mod feeds;

use serde_json::{json, Value};

/// A deterministic valid STIX 2.1 indicator.
pub fn indicator(i: usize) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", uuid_for(i)),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": format!("test indicator {i}"),
        "pattern": format!("[ipv4-addr:value = '10.{}.{}.{}']", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2099-01-01T00:00:00Z",
        "confidence": 80,
        "labels": ["test"]
    })
}

/// A deterministic UUID (v4 shape) for record `i`.
pub fn uuid_for(i: usize) -> String {
    format!("6f1b5b7e-0000-4000-8000-{:012x}", i)
}

/// An invalid variant of indicator `i`; `kind` picks which rule it breaks.
pub fn invalid_indicator(i: usize, kind: usize) -> Value {
    let mut v = indicator(i);
    let o = v.as_object_mut().unwrap();
    match kind % 5 {
        0 => {
            o.insert("pattern".into(), json!("[ipv4-addr:value = '10.0.0.1'"));
        }
        1 => {
            o.remove("valid_from");
        }
        2 => {
            o.insert("id".into(), json!("indicator--not-a-uuid"));
        }
        3 => {
            o.insert("confidence".into(), json!(150));
        }
        _ => {
            o.insert("valid_until".into(), json!("2020-01-01T00:00:00Z"));
        }
    }
    v
}

/// `n` indicators of which those at `invalid` indexes are invalid.
pub fn corpus(n: usize, invalid: &[usize]) -> Vec<Value> {
    (0..n)
        .map(|i| match invalid.iter().position(|&j| j == i) {
            Some(k) => invalid_indicator(i, k),
            None => indicator(i),
        })
        .collect()
}

/// A STIX bundle, pretty-printed so records span several lines (line numbers matter).
pub fn bundle(objects: &[Value]) -> String {
    serde_json::to_string_pretty(&json!({
        "type": "bundle",
        "id": "bundle--6f1b5b7e-0000-4000-8000-ffffffffffff",
        "objects": objects
    }))
    .unwrap()
}

/// Sets the process up for in-process SDK use: the test CA (`SSL_CERT_FILE`) and the local
/// managed-identity endpoint (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`), once per test binary,
/// since `ManagedIdentityCredential` reads them from the environment.
pub fn shared_identity() -> &'static devkit::TestEnv {
    devkit::TestEnv::global().expect("the test environment starts")
}

/// The handler built in this process the way `serve` builds it (`Application::build`, every
/// setting from `stack.handler_env()`), listening on a port of its own: for handler tests that
/// need no process of their own (no kill, no RSS, no captured output, no identity log of its
/// own: in-process credentials use the process-wide identity endpoint, see [`shared_identity`]).
/// The host driver talks to it over HTTP exactly as it talks to a spawned handler. It stops when
/// dropped.
pub struct TestApp {
    driver: devkit::host::HostDriver,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// A host driver aimed at the app.
    pub fn driver(&self) -> &devkit::host::HostDriver {
        &self.driver
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.driver.base_url().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Builds and starts the app in-process against `stack` ([`TestApp`]); `extra` settings are
/// applied after the stack's.
pub async fn spawn_app(stack: &devkit::Stack, extra: &[(&str, &str)]) -> TestApp {
    shared_identity();
    let mut pairs = stack.handler_env();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env = ti_ingest::settings::Env::from_pairs(pairs);
    let app = ti_ingest::cli::serve::Application::build(&env, 0)
        .await
        .expect("the app builds from the stack's settings");
    let driver = devkit::host::HostDriver::new(format!("http://127.0.0.1:{}", app.port()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    driver
        .wait_ready(std::time::Duration::from_secs(10))
        .await
        .expect("the in-process app answers GET /");
    TestApp {
        driver,
        stop: Some(stop),
    }
}

/// An uploader for `target` (`TI_TARGET`, several comma-separated) with every target's host
/// pointed at the simulator and the process-wide identity; `extra` settings applied last.
pub fn sim_uploader(
    sim: &sentinel_sim::Simulator,
    target: &str,
    extra: &[(&str, &str)],
) -> ti_ingest::upload::Uploader {
    shared_identity();
    let mut pairs = vec![
        ("TI_TARGET".to_string(), target.to_string()),
        ("TI_API_BASE_URL".to_string(), sim.url()),
        ("TI_GRAPH_BASE_URL".to_string(), sim.url()),
        ("TI_DEFENDER_BASE_URL".to_string(), sim.url()),
        (
            "TI_WORKSPACE_ID".to_string(),
            sentinel_sim::DEFAULT_WORKSPACE_ID.to_string(),
        ),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env = ti_ingest::settings::Env::from_pairs(pairs);
    let settings = ti_ingest::upload::UploadSettings::from_env(&env).unwrap();
    let credential = ti_ingest::auth::managed_identity(None).unwrap();
    ti_ingest::upload::Uploader::new(settings, Some(credential)).unwrap()
}

/// `objects` as one JSON array through the pipeline to `up`'s targets; the report's
/// invariants checked.
pub async fn run_objects(
    up: ti_ingest::upload::Uploader,
    objects: &[Value],
) -> ti_ingest::pipeline::RunOutcome {
    let ctx = ti_ingest::pipeline::RunContext::new(up);
    let source = ti_core::report::Source {
        kind: "file".into(),
        name: "test".into(),
        format: None,
    };
    let input = serde_json::to_vec(objects).unwrap();
    let out = ti_ingest::pipeline::run(ti_ingest::pipeline::once(input), source, &ctx)
        .await
        .unwrap();
    out.report.check_invariants().unwrap();
    out
}
