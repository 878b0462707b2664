//! `ti-ingest doctor`, the `Health` function and the upload pre-flight, against the stand-ins
//! (Azurite, the identity endpoint, the Sentinel simulator) with each failure injected: no role
//! (the simulator answers 403), wrong workspace (404), wrong cloud / audience (401), storage
//! unreachable; each gives its one-line fix and exit 2, and all good gives exit 0.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use devkit::{Stack, StackConfig};
use sentinel_sim::{GraphApi, Retired, SimConfig, Simulator};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_ti-ingest");

/// `ti-ingest <args>` with exactly the stack's handler settings plus `extra` (`""` removes one).
fn run(stack: &Stack, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BINARY);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TI_LOG", "error")
        .envs(stack.handler_env());
    for (k, v) in extra {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    c.args(args).output().unwrap()
}

/// `doctor --json`: the exit code and the checks.
fn doctor(stack: &Stack, extra: &[(&str, &str)]) -> (Option<i32>, Vec<Value>) {
    let out = run(stack, extra, &["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["healthy"], out.status.code() == Some(0), "{v:#}");
    (out.status.code(), v["checks"].as_array().unwrap().clone())
}

/// The failed checks as `(component, name)`, and the one failure's fix when there is exactly one.
fn failures(checks: &[Value]) -> Vec<(String, String, String)> {
    checks
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["component"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["fix"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const SCOPE: &str = "https://management.azure.com/.default";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_failure_with_its_fix_and_passes_when_all_is_well() {
    let stack = Stack::for_test(StackConfig::default()).await;

    // All good: settings, the token, 2 containers, 3 queues, the target: 8 checks, exit 0.
    let (code, checks) = doctor(&stack, &[]);
    assert_eq!(code, Some(0), "{checks:#?}");
    let names: Vec<(&str, &str)> = checks
        .iter()
        .map(|c| {
            (
                c["component"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("settings", "upload"),
            ("settings", "storage"),
            ("token", SCOPE),
            ("storage", "container indicator-inbox"),
            ("storage", "container indicator-reports"),
            ("storage", "queue indicator-blob-events"),
            ("storage", "queue indicator-messages"),
            ("storage", "queue indicator-work"),
            ("target", "sentinel-stix"),
        ]
    );
    let target = &checks[8]["detail"].as_str().unwrap();
    assert!(
        target.contains("refused the empty batch as expected (HTTP 400"),
        "{target}"
    );
    // The probe stored nothing.
    assert_eq!(stack.sim().accepted().len(), 0);

    // Wrong workspace id: the service's 404.
    let (code, checks) = doctor(
        &stack,
        &[("TI_WORKSPACE_ID", "a0b1c2d3-0000-4000-8000-0000000000ff")],
    );
    assert_eq!(code, Some(2));
    let f = failures(&checks);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_str()),
        ("target", "sentinel-stix")
    );
    assert!(
        f[0].2
            .starts_with("set TI_WORKSPACE_ID to the workspace id"),
        "{}",
        f[0].2
    );

    // Wrong cloud: the token's audience is US Gov's management endpoint, which the API refuses
    // with 401 (the reason in WWW-Authenticate).
    let (code, checks) = doctor(&stack, &[("TI_CLOUD", "usgov")]);
    assert_eq!(code, Some(2));
    let f = failures(&checks);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, "sentinel-stix");
    assert!(
        f[0].2.starts_with("TI_CLOUD=usgov asks tokens for https://management.usgovcloudapi.net/.default: set TI_CLOUD to the cloud the workspace is in"),
        "{}",
        f[0].2
    );
    let detail = checks
        .iter()
        .find(|c| c["name"] == "sentinel-stix")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("(HTTP 401): The access token has been obtained for wrong audience"),
        "{detail}"
    );

    // Storage unreachable: nothing listens on port 1; every blob check fails at once.
    let started = Instant::now();
    let (code, checks) = doctor(
        &stack,
        &[(
            "TI_STORAGE_BLOB_URL",
            "https://127.0.0.1:1/devstoreaccount1",
        )],
    );
    assert_eq!(code, Some(2));
    let f = failures(&checks);
    assert_eq!(
        f.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        vec!["container indicator-inbox", "container indicator-reports"]
    );
    assert!(
        f[0].2
            .starts_with("check AzureWebJobsStorage__blobServiceUri"),
        "{}",
        f[0].2
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // A container that does not exist.
    let (code, checks) = doctor(&stack, &[("TI_INBOX_CONTAINER", "no-such-inbox")]);
    assert_eq!(code, Some(2));
    let f = failures(&checks);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].2,
        "create the container no-such-inbox (infra/modules/storage.bicep creates it), or set TI_INBOX_CONTAINER to an existing one"
    );

    // A bad setting stops at the settings check, with the setting named.
    let (code, checks) = doctor(&stack, &[("TI_CLOUD", "mars")]);
    assert_eq!(code, Some(2));
    assert_eq!(checks.len(), 1);
    assert!(checks[0]["detail"].as_str().unwrap().contains("TI_CLOUD"));

    // The terminal form says the same in lines.
    let out = run(
        &stack,
        &[("TI_WORKSPACE_ID", "a0b1c2d3-0000-4000-8000-0000000000ff")],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL target   sentinel-stix: "), "{text}");
    assert!(text.contains("     fix: set TI_WORKSPACE_ID"), "{text}");
    assert!(text.ends_with("1 check(s) failed\n"), "{text}");
}

/// No role: a token the service accepts, for an identity without Microsoft Sentinel
/// Contributor: 403 and the role to assign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_which_role_is_missing() {
    let stack = Stack::for_test(StackConfig::default()).await;
    let sim = Simulator::start(SimConfig {
        forbidden_identities: vec![devkit::identity::DEFAULT_OBJECT_ID.to_string()],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (code, checks) = doctor(&stack, &[("TI_API_BASE_URL", &sim.url())]);
    assert_eq!(code, Some(2));
    let f = failures(&checks);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, "sentinel-stix");
    assert!(
        f[0].2.starts_with(
            "assign the identity the Microsoft Sentinel Contributor role on the workspace"
        ),
        "{}",
        f[0].2
    );
}

/// Two targets, two audiences: a token for each, and Graph's retirement named with the target to
/// use instead, while the Sentinel target passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_each_audience_and_names_graph_s_retirement() {
    let stack = Stack::for_test(StackConfig::default()).await;
    let sim = Simulator::start(SimConfig {
        graph_api: GraphApi::Retired(Retired::Gone),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (code, checks) = doctor(
        &stack,
        &[
            ("TI_TARGET", "sentinel-stix,graph"),
            ("TI_API_BASE_URL", &sim.url()),
            ("TI_GRAPH_BASE_URL", &sim.url()),
        ],
    );
    assert_eq!(code, Some(2));
    let tokens: Vec<&str> = checks
        .iter()
        .filter(|c| c["component"] == "token" && c["ok"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, vec![SCOPE, "https://graph.microsoft.com/.default"]);
    let f = failures(&checks);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, "graph");
    assert_eq!(
        f[0].2,
        "use TI_TARGET=sentinel-stix (the Sentinel STIX objects upload API) instead of graph"
    );
    // Nothing was stored by either probe.
    assert!(sim.accepted().is_empty() && sim.graph_accepted().is_empty());
}

/// `upload` without a usable credential (no identity endpoint, no `az` on PATH): one message
/// naming the cause and the fix, exit 2, at once, and no record reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_without_a_credential_stops_before_reading_with_one_message() {
    let stack = Stack::for_test(StackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, common::bundle(&common::corpus(250, &[]))).unwrap();
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let out = run(
        &stack,
        &[
            ("IDENTITY_ENDPOINT", ""),
            ("IDENTITY_HEADER", ""),
            ("PATH", dir.path().to_str().unwrap()),
            (
                "TI_CHECKPOINT_DIR",
                dir.path().join("state").to_str().unwrap(),
            ),
        ],
        &[
            "upload",
            input.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "ti-ingest: no token for {SCOPE} (target sentinel-stix) from the Azure CLI login: "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("az not found on PATH"), "{stderr}");
    assert!(
        stderr.trim_end().ends_with("Fix: install the Azure CLI and sign in with `az login` (az must be on PATH), or run where a managed identity is configured (IDENTITY_ENDPOINT and IDENTITY_HEADER). Nothing was read or uploaded."),
        "{stderr}"
    );
    assert!(!report.exists());
    assert!(stack.sim().requests().is_empty());
}

/// The `Health` function through the host driver: the doctor's JSON through `res`, 200 when
/// healthy, 503 with the failing check otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_function_answers_the_checks_through_res() {
    let stack = Stack::for_test(StackConfig::default()).await;
    let handler = stack.spawn_handler(BINARY).await.unwrap();
    let request = devkit::host::HttpTriggerRequest {
        method: "GET".into(),
        url: "https://ti-ingest-test.azurewebsites.net/api/health?code=function-key".into(),
        headers: vec![],
        body: vec![],
    };
    let answer = handler
        .driver()
        .invoke_http("Health", "req", &request)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    let res = answer.http_output("res").unwrap();
    assert_eq!(res.status, 200, "{:#}", res.body);
    assert_eq!(res.body["healthy"], true);
    assert_eq!(res.body["checks"].as_array().unwrap().len(), 9);
    drop(handler);

    // The same handler settings with a workspace the service does not know.
    let env = [(
        "TI_WORKSPACE_ID".to_string(),
        "a0b1c2d3-0000-4000-8000-0000000000ff".to_string(),
    )];
    let handler = stack.spawn_handler_with(BINARY, &env).await.unwrap();
    let answer = handler
        .driver()
        .invoke_http("Health", "req", &request)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    let res = answer.http_output("res").unwrap();
    assert_eq!(res.status, 503, "{:#}", res.body);
    assert_eq!(res.body["healthy"], false);
    let failed: Vec<&Value> = res.body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "sentinel-stix");
    assert!(failed[0]["fix"]
        .as_str()
        .unwrap()
        .starts_with("set TI_WORKSPACE_ID"));
}
