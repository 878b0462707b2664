//! Every upload target against the simulator, with the real `ManagedIdentityCredential` getting
//! its tokens from the local identity endpoint: happy path, partial failure, 429 with and
//! without `Retry-After`, 5xx, 401/403/404, the clouds' hosts and scopes, several targets at
//! once, the dry run, and the HTTP function through the handler (built in-process).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use devkit::host::HttpTriggerRequest;
use devkit::stack::REPORTS_CONTAINER;
use devkit::{Stack, StackConfig};
use sentinel_sim::{GraphApi, RecordErrorsKey, Retired, SimConfig, Simulator};
use serde_json::{json, Map, Value};
use ti_core::report::Code;
use ti_ingest::settings::Env;
use ti_ingest::upload::UploadSettings;
use ti_ingest::upload::Uploader;

const STIX: &str = "sentinel-stix";
const INDICATORS: &str = "sentinel-indicators";
const GRAPH: &str = "graph";

fn objects(values: Vec<Value>) -> Vec<Map<String, Value>> {
    values
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect()
}

fn ids(range: impl Iterator<Item = usize>) -> HashSet<String> {
    range
        .map(|i| format!("indicator--{}", common::uuid_for(i)))
        .collect()
}

/// What the simulator holds for a target: STIX ids (Sentinel) or created tiIndicators (Graph,
/// by their IPv4 observable, since Graph assigns its own ids).
fn accepted(sim: &Simulator, target: &str) -> usize {
    match target {
        GRAPH => sim.graph_accepted().len(),
        _ => sim.accepted_ids().len(),
    }
}

/// A valid STIX identity: accepted by `sentinel-stix`, not by the indicator-only targets.
fn identity_object(i: usize) -> Value {
    json!({
        "type": "identity", "spec_version": "2.1",
        "id": format!("identity--{}", common::uuid_for(10_000 + i)),
        "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
        "name": "ACME CERT", "identity_class": "organization"
    })
}

// ---------------------------------------------------------------------------------------------
// Happy paths

#[tokio::test]
async fn sentinel_indicators_uses_the_legacy_route_and_refuses_other_types_locally() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut input = common::corpus(150, &[]);
    input.insert(3, identity_object(1));
    input.push(identity_object(2));
    let out = common::run_objects(common::sim_uploader(&sim, INDICATORS, &[]), &input).await;
    let r = &out.report;
    assert_eq!(r.target, INDICATORS);
    assert_eq!(
        (r.summary.records, r.summary.uploaded, r.summary.rejected),
        (152, 150, 2)
    );
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    for (e, index) in r.errors.iter().zip([3, 151]) {
        assert_eq!(e.record_index, index);
        assert_eq!(e.code, Code::UnsupportedType, "{e:?}");
        assert!(e.messages[0].contains("identity"), "{:?}", e.messages);
    }
    assert_eq!(sim.accepted_ids(), ids(0..150).into_iter().collect());
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    // 152 records in batches of at most 100 (the API's limit), each identity refused inside its
    // batch: 100 - 1 and 52 - 1.
    let mut sizes: Vec<usize> = requests.iter().map(|q| q.objects).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![51, 99]);
    for q in &requests {
        assert_eq!(q.status, 200);
        assert!(
            q.path.ends_with("/threatintelligenceindicators:upload"),
            "{q:?}"
        );
        assert_eq!(q.api_version.as_deref(), Some("2022-07-01"));
        assert_eq!(q.source_system.as_deref(), Some("ti-ingest"));
        assert!(q.objects <= 100);
    }
}

#[tokio::test]
async fn sentinel_indicators_api_version_is_configurable() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let up = common::sim_uploader(
        &sim,
        INDICATORS,
        &[("TI_SENTINEL_API_VERSION", "2022-12-01-preview")],
    );
    let out = up.upload(&objects(common::corpus(2, &[])), None).await;
    assert_eq!(out, vec![None, None]);
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(
        sim.requests()[0].api_version.as_deref(),
        Some("2022-12-01-preview")
    );
}

#[tokio::test]
async fn graph_converts_and_submits_100_per_request() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let out = common::run_objects(
        common::sim_uploader(
            &sim,
            GRAPH,
            &[
                ("TI_GRAPH_ACTION", "block"),
                ("TI_GRAPH_TARGET_PRODUCT", "Microsoft Defender ATP"),
            ],
        ),
        &common::corpus(150, &[]),
    )
    .await;
    let r = &out.report;
    assert_eq!(r.target, GRAPH);
    assert_eq!(r.summary.uploaded, 150, "{:?}", r.errors);
    let created = sim.graph_accepted();
    assert_eq!(created.len(), 150);
    let ips: HashSet<&str> = created
        .iter()
        .map(|t| t["networkIPv4"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 150);
    assert!(created.iter().all(|t| t["action"] == "block"));
    assert!(created
        .iter()
        .all(|t| t["targetProduct"] == "Microsoft Defender ATP"));
    let requests = sim.requests();
    // Two requests in flight at once, answered in either order.
    let mut sizes: Vec<usize> = requests.iter().map(|q| q.objects).collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100]);
    assert!(requests
        .iter()
        .all(|q| q.path == "/beta/security/tiIndicators/submitTiIndicators" && q.status == 200));
    // The token was requested for Graph's audience.
    assert!(common::shared_identity()
        .identity()
        .requests()
        .iter()
        .any(|t| t.resource.as_deref() == Some("https://graph.microsoft.com")));
}

// ---------------------------------------------------------------------------------------------
// Partial failures

#[tokio::test]
async fn sentinel_indicators_per_record_errors_map_to_their_records() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let up = common::sim_uploader(&sim, INDICATORS, &[]);
    let mut batch = common::corpus(5, &[]);
    batch[1].as_object_mut().unwrap().remove("pattern");
    batch[4]["confidence"] = json!(1000);
    let out = up.upload(&objects(batch), None).await;
    assert_eq!(out.len(), 5);
    for (i, o) in out.iter().enumerate() {
        if i == 1 || i == 4 {
            let f = o.as_ref().unwrap();
            assert_eq!(f.code, Code::RejectedByService);
            assert!(!f.messages.is_empty());
        } else {
            assert!(o.is_none(), "record {i}: {o:?}");
        }
    }
    assert_eq!(
        sim.requests().len(),
        1,
        "a 200 with errors[] is not retried"
    );
    assert_eq!(sim.accepted_ids().len(), 3);
}

#[tokio::test]
async fn graph_206_items_map_back_by_position_and_unconvertible_records_cost_no_request() {
    let sim = Simulator::start(SimConfig {
        refused_values: vec!["10.0.0.7".into(), "10.0.0.120".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut input = common::corpus(150, &[]);
    // Valid STIX, but not one observable: cannot become a tiIndicator.
    input[30]["pattern"] =
        json!("[ipv4-addr:value = '10.0.0.30'] OR [domain-name:value = 'x.example']");
    let out = common::run_objects(common::sim_uploader(&sim, GRAPH, &[]), &input).await;
    let r = &out.report;
    assert_eq!(
        (r.summary.uploaded, r.summary.rejected),
        (147, 3),
        "{:?}",
        r.errors
    );
    let by_index: Vec<(u64, Code)> = r.errors.iter().map(|e| (e.record_index, e.code)).collect();
    assert_eq!(
        by_index,
        vec![
            (7, Code::RejectedByService),
            (30, Code::NotConvertible),
            (120, Code::RejectedByService)
        ]
    );
    assert!(r.errors[0].messages[0].starts_with("Target: networkIPv4 - ValidationFailed"));
    assert!(r.errors[2].messages[0].contains("10.0.0.120"));
    let statuses: Vec<u16> = sim.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses, vec![206, 206], "one 206 per request, not retried");
    assert_eq!(sim.graph_accepted().len(), 147);
}

// ---------------------------------------------------------------------------------------------
// 429 with and without Retry-After, per target

async fn throttled(target: &str, retry_after_header: bool) {
    // A quota of 2 requests per 2 s: the third request gets the real 429 with its wait.
    let sim = Simulator::start(SimConfig {
        requests_per_window: 2,
        window: Duration::from_secs(2),
        retry_after_header,
        graph_retry_after_header: retry_after_header,
        ..Default::default()
    })
    .await
    .unwrap();
    // The client believes it may send 100/min, so it hits the server's limit and must obey it.
    let up = common::sim_uploader(
        &sim,
        target,
        &[("TI_BATCH_SIZE", "10"), ("TI_MAX_CONCURRENCY", "2")],
    );
    let out = common::run_objects(up, &common::corpus(50, &[])).await;
    assert_eq!(out.report.summary.uploaded, 50, "{:?}", out.report.errors);
    assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
    assert_eq!(accepted(&sim, target), 50);
    let requests = sim.requests();
    let statuses: Vec<u16> = requests.iter().map(|q| q.status).collect();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 1, "{statuses:?}");
    // Five batches of 10, each accepted once; nothing but 200s (206 for Graph) and 429s.
    let ok: Vec<Duration> = requests
        .iter()
        .filter(|q| q.status != 429)
        .map(|q| q.at)
        .collect();
    assert_eq!(ok.len(), 5, "{target}: {statuses:?}");
    assert_eq!(statuses.len(), 5 + throttled, "{target}: {statuses:?}");
    // The client waited for the stated time instead of hammering: 5 requests needed at least
    // two more windows (on the simulator's clock), and few 429s were spent on the way.
    assert!(throttled <= 4, "{target}: {statuses:?}");
    assert!(ok[4] - ok[0] >= Duration::from_secs(4), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_stix_429_with_retry_after() {
    throttled(STIX, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_stix_429_with_only_the_message() {
    throttled(STIX, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_indicators_429_with_retry_after() {
    throttled(INDICATORS, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_indicators_429_with_only_the_message() {
    throttled(INDICATORS, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_429_with_retry_after() {
    throttled(GRAPH, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_429_with_only_the_message() {
    throttled(GRAPH, false).await;
}

// ---------------------------------------------------------------------------------------------
// 5xx, per target: retried while the budget lasts, then reported as retries_exhausted

async fn server_errors(target: &str) {
    let sim = Simulator::start(SimConfig {
        fault_5xx_share: 1.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let up = common::sim_uploader(&sim, target, &[("TI_MAX_ATTEMPTS", "3")]);
    let batch = objects(common::corpus(4, &[]));
    let out = up.upload(&batch, None).await;
    assert_eq!(out.len(), 4);
    for o in &out {
        let f = o.as_ref().unwrap();
        assert_eq!(f.code, Code::RetriesExhausted, "{f:?}");
        assert!(f.messages[0].contains("3 attempt(s)"), "{:?}", f.messages);
        if target != GRAPH {
            // The Sentinel gateway's body as seen in the wild, activityId included (what
            // Microsoft support asks for), is kept in the report.
            assert!(
                f.messages[0].contains(r#"{"statusCode":50"#)
                    && f.messages[0].contains(r#""activityId":""#),
                "{:?}",
                f.messages
            );
        }
    }
    let requests = sim.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|q| q.status >= 500 && q.injected));
    // The service recovers: the same uploader goes through.
    sim.set_faults(0.0, 0.0);
    let out = up.upload(&batch, None).await;
    assert_eq!(out, vec![None; 4]);
    assert_eq!(accepted(&sim, target), 4);
}

#[tokio::test]
async fn sentinel_stix_5xx() {
    server_errors(STIX).await;
}

#[tokio::test]
async fn sentinel_indicators_5xx() {
    server_errors(INDICATORS).await;
}

#[tokio::test]
async fn graph_5xx() {
    server_errors(GRAPH).await;
}

// ---------------------------------------------------------------------------------------------
// 401 / 403 / 404, per target: permanent for the whole batch, never retried

async fn permanent(target: &str, sim: SimConfig, code: Code, needle: &str) {
    let sim = Simulator::start(sim).await.unwrap();
    let up = common::sim_uploader(&sim, target, &[]);
    let out = up.upload(&objects(common::corpus(3, &[])), None).await;
    assert_eq!(out.len(), 3, "{target}");
    for o in &out {
        let f = o.as_ref().unwrap();
        assert_eq!(f.code, code, "{target}: {f:?}");
        assert!(f.messages[0].contains(needle), "{target}: {:?}", f.messages);
    }
    assert_eq!(
        sim.requests().len(),
        1,
        "{target}: a permanent status is not retried"
    );
    assert_eq!(accepted(&sim, target), 0);
}

fn wrong_audience() -> SimConfig {
    SimConfig {
        audience: "https://api.other.example".into(),
        extra_audiences: vec![],
        graph_audience: "https://api.other.example".into(),
        ..Default::default()
    }
}

fn forbidden() -> SimConfig {
    SimConfig {
        forbidden_identities: vec![devkit::identity::DEFAULT_OBJECT_ID.into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn every_target_reports_401_403_404() {
    for target in [STIX, INDICATORS] {
        permanent(target, wrong_audience(), Code::Unauthorized, "HTTP 401").await;
        permanent(target, forbidden(), Code::Forbidden, "Sentinel Contributor").await;
        let no_workspace = SimConfig {
            workspaces: vec!["00000000-0000-4000-8000-000000000001".into()],
            ..Default::default()
        };
        permanent(
            target,
            no_workspace,
            Code::WorkspaceNotFound,
            "TI_WORKSPACE_ID",
        )
        .await;
    }
    permanent(
        GRAPH,
        wrong_audience(),
        Code::Unauthorized,
        "graph.microsoft.com",
    )
    .await;
    permanent(
        GRAPH,
        forbidden(),
        Code::Forbidden,
        "ThreatIndicators.ReadWrite.OwnedBy",
    )
    .await;
    let removed = SimConfig {
        graph_api: GraphApi::Retired(Retired::NotFound),
        ..Default::default()
    };
    permanent(GRAPH, removed, Code::ApiRetired, "removed it in April 2026").await;
}

// ---------------------------------------------------------------------------------------------
// The request each target sends, and the service's answers as the specs define them

#[tokio::test]
async fn each_target_sends_its_exact_request_line() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    for (target, line) in [
        (
            STIX,
            "POST /workspaces/a0b1c2d3-0000-4000-8000-00000000f00d/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview".to_owned(),
        ),
        (
            INDICATORS,
            "POST /workspaces/a0b1c2d3-0000-4000-8000-00000000f00d/threatintelligenceindicators:upload?api-version=2022-07-01".to_owned(),
        ),
        (
            GRAPH,
            "POST /beta/security/tiIndicators/submitTiIndicators".to_owned(),
        ),
    ] {
        let before = sim.requests().len();
        let out = common::sim_uploader(&sim, target, &[])
            .upload(&objects(common::corpus(2, &[])), None)
            .await;
        assert_eq!(out, vec![None, None], "{target}");
        let sent = &sim.requests()[before..];
        assert_eq!(sent.len(), 1, "{target}");
        assert_eq!((sent[0].request_line(), sent[0].status), (line, 200));
    }
}

#[tokio::test]
async fn an_all_invalid_batch_is_refused_record_by_record_with_the_services_answer() {
    for (target, key) in [(STIX, "stixobjects"), (INDICATORS, "indicators")] {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        // Objects the local validation would stop, sent straight to the service: none valid.
        let mut batch = common::corpus(3, &[]);
        for o in &mut batch {
            o.as_object_mut().unwrap().remove("pattern");
        }
        let out = common::sim_uploader(&sim, target, &[])
            .upload(&objects(batch), None)
            .await;
        let expected = format!(
            "the service refused the whole request and published none of its objects: HTTP 400 BadRequest: None of the 3 object(s) in '{key}' passed validation; nothing was published."
        );
        assert_eq!(out.len(), 3);
        for o in &out {
            let f = o.as_ref().expect("refused");
            assert_eq!(
                (f.code, f.messages.clone()),
                (Code::RejectedByService, vec![expected.clone()]),
                "{target}"
            );
        }
        let log = sim.requests();
        assert_eq!(log.len(), 1, "{target}: the refusal is not retried");
        assert_eq!(
            (log[0].status, log[0].objects, log[0].accepted),
            (400, 3, 0)
        );
        assert!(sim.accepted_ids().is_empty());
    }
}

#[tokio::test]
async fn per_record_errors_are_read_under_either_published_key() {
    for key in [RecordErrorsKey::Docs, RecordErrorsKey::Spec] {
        for target in [STIX, INDICATORS] {
            let sim = Simulator::start(SimConfig {
                record_errors_key: key,
                ..Default::default()
            })
            .await
            .unwrap();
            let mut batch = common::corpus(3, &[]);
            batch[2]["confidence"] = json!(1000);
            let out = common::sim_uploader(&sim, target, &[])
                .upload(&objects(batch), None)
                .await;
            assert_eq!(&out[..2], &[None, None], "{target} {key:?}");
            let f = out[2].as_ref().unwrap();
            assert_eq!(f.code, Code::RejectedByService);
            assert_eq!(f.messages.len(), 1, "{f:?}");
            assert!(
                f.messages[0].contains("Property=confidence"),
                "{target} {key:?}: {f:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_api_version_the_service_does_not_serve_is_a_bad_request_not_retried() {
    for target in [STIX, INDICATORS] {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let up = common::sim_uploader(&sim, target, &[("TI_SENTINEL_API_VERSION", "2099-01-01")]);
        let out = up.upload(&objects(common::corpus(2, &[])), None).await;
        assert_eq!(out.len(), 2, "{target}");
        for o in &out {
            let f = o.as_ref().unwrap();
            assert_eq!(f.code, Code::BadRequest, "{target}");
            assert!(
                f.messages[0].starts_with("HTTP 400 (the service does not serve the api-version asked for: check TI_SENTINEL_API_VERSION): UnsupportedApiVersionValue: Unsupported api-version '2099-01-01'."),
                "{target}: {f:?}"
            );
        }
        let log = sim.requests();
        assert_eq!(log.len(), 1, "{target}");
        assert!(log[0].request_line().ends_with("?api-version=2099-01-01"));
    }
}

#[tokio::test]
async fn a_retired_graph_costs_one_request_and_gives_one_message() {
    for retired in [Retired::SegmentNotFound, Retired::NotFound, Retired::Gone] {
        let sim = Simulator::start(SimConfig {
            graph_api: GraphApi::Retired(retired),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut input = common::corpus(250, &[]);
        // Not one observable: refused before sending, whatever Graph's state.
        input[7]["pattern"] =
            json!("[ipv4-addr:value = '10.0.0.7'] OR [domain-name:value = 'x.example']");
        let out = common::run_objects(common::sim_uploader(&sim, GRAPH, &[]), &input).await;
        let r = &out.report;
        assert_eq!(
            (r.summary.records, r.summary.uploaded, r.summary.rejected),
            (250, 0, 250)
        );
        assert_eq!(r.errors.len(), 250);
        let status = retired.status();
        let mut messages = HashSet::new();
        for e in &r.errors {
            if e.record_index == 7 {
                assert_eq!(e.code, Code::NotConvertible);
                continue;
            }
            assert_eq!(e.code, Code::ApiRetired, "{e:?}");
            assert_eq!(e.messages.len(), 1);
            messages.insert(e.messages[0].clone());
        }
        assert_eq!(messages.len(), 1, "one message: {messages:?}");
        let message = messages.into_iter().next().unwrap();
        assert!(
            message.starts_with("Microsoft Graph tiIndicators is retired: Microsoft deprecated the tiIndicator API and removed it in April 2026"),
            "{message}"
        );
        assert!(message.contains("Use TI_TARGET=sentinel-stix"), "{message}");
        assert!(
            message.contains(&format!("Graph answered HTTP {status}: ")),
            "{message}"
        );
        // Three batches, one request: no retry and no later batch is spent on a removed API.
        let log = sim.requests();
        assert_eq!(log.len(), 1, "{retired:?}: {log:?}");
        assert_eq!(log[0].status, status);
    }
}

// ---------------------------------------------------------------------------------------------
// Clouds: the token is requested for the cloud's management resource

#[tokio::test]
async fn each_cloud_gets_its_tokens_for_its_own_management_resource() {
    for (cloud, resource) in [
        ("public", "https://management.azure.com"),
        ("usgov", "https://management.usgovcloudapi.net"),
        ("china", "https://management.chinacloudapi.cn"),
    ] {
        // The simulator plays that cloud's API: only tokens for its audience pass.
        let sim = Simulator::start(SimConfig {
            audience: resource.into(),
            extra_audiences: vec![],
            ..Default::default()
        })
        .await
        .unwrap();
        for target in [STIX, INDICATORS] {
            let up = common::sim_uploader(&sim, target, &[("TI_CLOUD", cloud)]);
            let out = up.upload(&objects(common::corpus(1, &[])), None).await;
            assert_eq!(out, vec![None], "{cloud}/{target}");
        }
        let statuses: Vec<u16> = sim.requests().iter().map(|q| q.status).collect();
        assert_eq!(statuses, vec![200, 200], "{cloud}");
        // The identity endpoint's log is shared by every test of this binary (running
        // concurrently), so only this cloud's resource being among its requests is certain.
        let asked: Vec<String> = common::shared_identity()
            .identity()
            .requests()
            .into_iter()
            .filter_map(|t| t.resource)
            .collect();
        assert!(asked.iter().any(|r| r == resource), "{cloud}: {asked:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Several targets at once

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_targets_report_each_record_once_with_the_failing_targets_named() {
    let sim = Simulator::start(SimConfig {
        refused_values: vec!["10.0.0.5".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut input = common::corpus(20, &[]);
    input[9]["pattern"] =
        json!("[ipv4-addr:value = '10.0.0.9'] AND [ipv4-addr:value = '10.0.0.99']");
    input.push(identity_object(1));
    let out = common::run_objects(
        common::sim_uploader(&sim, "sentinel-stix,graph", &[]),
        &input,
    )
    .await;
    let r = &out.report;
    assert_eq!(r.target, "sentinel-stix,graph");
    // Uploaded only where both accepted: not 5 (Graph refused), 9 (not a tiIndicator), 20 (an
    // identity: Sentinel took it, Graph cannot).
    assert_eq!(
        (r.summary.records, r.summary.uploaded, r.summary.rejected),
        (21, 18, 3)
    );
    let got: Vec<(u64, Code)> = r.errors.iter().map(|e| (e.record_index, e.code)).collect();
    assert_eq!(
        got,
        vec![
            (5, Code::RejectedByService),
            (9, Code::NotConvertible),
            (20, Code::UnsupportedType)
        ]
    );
    for e in &r.errors {
        assert!(e.messages.iter().all(|m| m.starts_with("graph: ")), "{e:?}");
    }
    // Sentinel holds all 21 objects; Graph the 18 convertible, unrefused indicators.
    assert_eq!(sim.accepted_ids().len(), 21);
    assert_eq!(sim.graph_accepted().len(), 18);
}

#[tokio::test]
async fn the_first_failing_targets_code_wins_and_every_failure_is_kept() {
    // Sentinel refuses the workspace; Graph refuses one value.
    let sim = Simulator::start(SimConfig {
        workspaces: vec!["00000000-0000-4000-8000-000000000001".into()],
        refused_values: vec!["10.0.0.1".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let up = common::sim_uploader(&sim, "sentinel-indicators,graph", &[]);
    let out = up.upload(&objects(common::corpus(2, &[])), None).await;
    assert_eq!(out.len(), 2);
    let f0 = out[0].as_ref().unwrap();
    assert_eq!(f0.code, Code::WorkspaceNotFound);
    assert_eq!(f0.messages.len(), 1);
    assert!(f0.messages[0].starts_with("sentinel-indicators: HTTP 404"));
    let f1 = out[1].as_ref().unwrap();
    assert_eq!(f1.code, Code::WorkspaceNotFound);
    assert_eq!(f1.messages.len(), 2, "{f1:?}");
    assert!(f1.messages[1].starts_with("graph: Target: networkIPv4"));
}

// ---------------------------------------------------------------------------------------------
// Dry run

#[tokio::test]
async fn dry_run_writes_the_exact_bodies_and_reports_like_the_real_target() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let settings = UploadSettings::from_env(&Env::from_pairs([
        ("TI_TARGET", "dry-run"),
        ("TI_DRY_RUN_AS", "sentinel-indicators"),
        ("TI_DRY_RUN_DIR", dir_s.as_str()),
        ("TI_SOURCE_SYSTEM", "dry test"),
    ]))
    .unwrap();
    let up = Uploader::new(settings, None).unwrap();
    let mut input = common::corpus(150, &[]);
    input.push(identity_object(1));
    let out = common::run_objects(up, &input).await;
    let r = &out.report;
    assert_eq!(r.target, "dry-run");
    assert_eq!((r.summary.uploaded, r.summary.rejected), (150, 1));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].code, Code::UnsupportedType);
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec!["request-000001.json", "request-000002.json"]);
    let mut sent = HashSet::new();
    for f in &files {
        let body: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(f)).unwrap()).unwrap();
        assert_eq!(body["sourcesystem"], "dry test");
        for o in body["indicators"].as_array().unwrap() {
            sent.insert(o["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(sent, ids(0..150));
}

#[tokio::test]
async fn dry_run_as_graph_reports_conversion_failures() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let settings = UploadSettings::from_env(&Env::from_pairs([
        ("TI_TARGET", "dry-run"),
        ("TI_DRY_RUN_AS", "graph"),
        ("TI_DRY_RUN_DIR", dir_s.as_str()),
    ]))
    .unwrap();
    let up = Uploader::new(settings, None).unwrap();
    let mut input = common::corpus(3, &[]);
    input[1]["pattern"] = json!("[ipv4-addr:value = '10.0.0.1'] OR [ipv4-addr:value = '10.0.0.2']");
    let out = common::run_objects(up, &input).await;
    assert_eq!(out.report.summary.uploaded, 2);
    assert_eq!(out.report.errors.len(), 1);
    assert_eq!(out.report.errors[0].code, Code::NotConvertible);
    let body: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("request-000001.json")).unwrap())
            .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    assert_eq!(body["value"][1]["networkIPv4"], "10.0.0.2");
}

// ---------------------------------------------------------------------------------------------
// The HTTP function, through the handler (in-process: `common::spawn_app`) driven like the Functions host

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_returns_the_report_and_stores_it() {
    let stack = Stack::start(StackConfig::default())
        .await
        .expect("the stack starts (run scripts/setup-azurite.sh first)");
    let handler = common::spawn_app(&stack, &[("TI_MAX_HTTP_BYTES", "200000")]).await;
    let driver = handler.driver();

    // 200: uploaded, with the invalid records reported.
    let body = serde_json::to_vec(&common::corpus(30, &[4, 17])).unwrap();
    let rsp = driver
        .invoke_http(
            "Ingest",
            "req",
            &HttpTriggerRequest::post("indicators", "application/json", body),
        )
        .await
        .unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text);
    let out = rsp.http_output("res").expect("the HTTP output binding");
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(out.headers["Content-Type"], "application/json");
    let report = &out.body;
    assert_eq!(
        report["summary"],
        json!({"records": 30, "uploaded": 28, "rejected": 2})
    );
    assert_eq!(report["source"]["kind"], "http");
    let indexes: Vec<&Value> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["recordIndex"])
        .collect();
    assert_eq!(indexes, [4, 17]);
    assert_eq!(stack.sim().accepted_ids().len(), 28);
    // The same report is stored like a queue input's.
    let location = out.headers["X-TI-Report"].as_str().unwrap();
    let path = location
        .strip_prefix(&format!("{REPORTS_CONTAINER}/"))
        .unwrap();
    assert!(path.starts_with("messages/"), "{path}");
    let stored: Value = serde_json::from_slice(
        &stack
            .storage()
            .read_blob(REPORTS_CONTAINER, path)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["summary"], report["summary"]);
    // And its page beside it.
    let page = stack
        .storage()
        .read_blob(
            REPORTS_CONTAINER,
            &path.replace(".report.json", ".report.html"),
        )
        .await
        .unwrap();
    assert!(String::from_utf8(page).unwrap().contains(
        "<p id=\"outcome\" class=\"outcome\">28 of 30 uploaded; 2 rejected; nothing to retry.</p>"
    ));

    // 400: nothing valid.
    let body = serde_json::to_vec(&common::corpus(2, &[0, 1])).unwrap();
    let rsp = driver
        .invoke_http(
            "Ingest",
            "req",
            &HttpTriggerRequest::post("indicators", "application/json", body),
        )
        .await
        .unwrap();
    let out = rsp.http_output("res").unwrap();
    assert_eq!(out.status, 400);
    assert_eq!(out.body["summary"]["rejected"], 2);

    // 400: not an input at all.
    let rsp = driver
        .invoke_http(
            "Ingest",
            "req",
            &HttpTriggerRequest::post("indicators", "application/json", "{\"type\": "),
        )
        .await
        .unwrap();
    let out = rsp.http_output("res").unwrap();
    assert_eq!(out.status, 400, "{:?}", out.body);

    // 413: over TI_MAX_HTTP_BYTES, nothing read; a binary (base64) body counts its bytes.
    let big = vec![b' '; 200_001];
    let rsp = driver
        .invoke_http(
            "Ingest",
            "req",
            &HttpTriggerRequest::post("indicators", "application/octet-stream", big),
        )
        .await
        .unwrap();
    assert_eq!(rsp.status, 200, "the host answer itself is a success");
    let out = rsp.http_output("res").unwrap();
    assert_eq!(out.status, 413);
    assert_eq!(out.body["inputError"]["code"], "input_too_large");
    assert_eq!(stack.sim().accepted_ids().len(), 28);
}
