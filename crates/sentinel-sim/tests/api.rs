//! The simulator seen from a client: real HTTP requests (reqwest) against a started simulator.

use std::time::{Duration, Instant};

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use sentinel_sim::{
    unsigned_jwt, GraphApi, RecordErrorsKey, Retired, SimConfig, Simulator, DEFAULT_WORKSPACE_ID,
};
use serde_json::{json, Value};

/// The workspace a default simulator knows (the devkit stack's `TI_WORKSPACE_ID`).
const WORKSPACE: &str = DEFAULT_WORKSPACE_ID;
const STIX_OP: &str = "threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview";
const LEGACY_OP: &str = "threatintelligenceindicators:upload?api-version=2022-07-01";

async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

fn stix_url(sim: &Simulator) -> String {
    format!("{}/workspaces/{WORKSPACE}/{STIX_OP}", sim.url())
}

fn legacy_url(sim: &Simulator) -> String {
    format!("{}/workspaces/{WORKSPACE}/{LEGACY_OP}", sim.url())
}

fn indicator(n: u32) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        "name": format!("indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '10.0.{}.{}']", n / 256, n % 256),
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "confidence": 80
    })
}

fn upload_body(objects: Vec<Value>) -> Value {
    json!({ "sourcesystem": "ti-ingest-tests", "stixobjects": objects })
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    /// The `x-ms-error-code` header.
    error_code: Option<String>,
    www_authenticate: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

/// A client for the tests' requests. reqwest is built with `rustls-no-provider` (the workspace
/// Cargo.toml says why): a process installs the provider before its first client.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(url: &str, token: &str, body: &Value) -> Answer {
    post_raw(url, Some(token), body.to_string()).await
}

async fn post_raw(url: &str, token: Option<&str>, body: String) -> Answer {
    let client = http();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    Answer {
        status: response.status(),
        retry_after: response
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned()),
        error_code: response
            .headers()
            .get("x-ms-error-code")
            .map(|v| v.to_str().unwrap().to_owned()),
        www_authenticate: response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        text: response.text().await.unwrap(),
    }
}

fn throttle_body(secs: u64) -> String {
    format!(
        r#"{{"statusCode":429,"message":"Rate limit is exceeded. Try again in {secs} seconds."}}"#
    )
}

/// Reads N out of the real 429 message, as clients must.
fn retry_secs_in(text: &str) -> u64 {
    let message = serde_json::from_str::<Value>(text).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    message
        .trim_start_matches("Rate limit is exceeded. Try again in ")
        .trim_end_matches(" seconds.")
        .parse()
        .unwrap_or_else(|_| panic!("unexpected message {message}"))
}

#[tokio::test]
async fn happy_path_is_accepted_and_recorded() {
    let sim = start(SimConfig::default()).await;
    assert!(!sim.url().ends_with('/'));
    let attack_pattern = json!({
        "type": "attack-pattern", "spec_version": "2.1",
        "id": "attack-pattern--fb6aa549-c94a-4e45-b4fd-7e32602dad85",
        "created": "2015-05-15T09:12:16.432Z", "modified": "2015-05-20T09:12:16.432Z",
        "name": "Spear phishing"
    });
    let body = upload_body(vec![indicator(1), attack_pattern, indicator(2)]);

    let answer = post(&stix_url(&sim), &sim.token("app-1"), &body).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text, "", "all accepted: empty body");
    assert_eq!(sim.accepted().len(), 3);
    assert_eq!(sim.accepted()[1]["type"], "attack-pattern");
    assert!(sim
        .accepted_ids()
        .contains("indicator--00000000-0000-4000-8000-000000000002"));
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.path,
        format!("/workspaces/{WORKSPACE}/threat-intelligence-stix-objects:upload")
    );
    assert_eq!(
        (r.status, r.objects, r.accepted, r.injected),
        (200, 3, 3, false)
    );
    assert_eq!(r.identity.as_deref(), Some("app-1"));
    assert_eq!(r.api_version.as_deref(), Some("2024-02-01-preview"));
    assert_eq!(r.source_system.as_deref(), Some("ti-ingest-tests"));
}

#[tokio::test]
async fn reupload_of_an_id_updates_and_counts_once() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");
    let mut updated = indicator(1);
    updated["name"] = json!("renamed");
    for body in [
        upload_body(vec![indicator(1), indicator(2)]),
        upload_body(vec![updated]),
    ] {
        assert_eq!(post(&stix_url(&sim), &token, &body).await.status, 200);
    }
    let accepted = sim.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0]["name"], "renamed", "updated in place");
    assert_eq!(sim.accepted_ids().len(), 2);
}

#[tokio::test]
async fn per_record_errors_name_their_index_and_valid_records_still_count() {
    let sim = start(SimConfig::default()).await;
    let mut no_id = indicator(2);
    no_id.as_object_mut().unwrap().remove("id");
    let mut two_faults = indicator(4);
    two_faults["confidence"] = json!(101);
    two_faults["valid_until"] = json!("2023-01-01T00:00:00Z");
    let body = upload_body(vec![indicator(1), no_id, indicator(3), two_faults]);

    let answer = post(&stix_url(&sim), &sim.token("app"), &body).await;

    assert_eq!(answer.status, StatusCode::OK);
    let errors = answer.json()["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["recordIndex"], 1);
    assert_eq!(
        errors[0]["errorMessages"],
        json!(["Error for Property=id: Required property is missing. Actual value: NULL."])
    );
    assert_eq!(errors[1]["recordIndex"], 3);
    let messages = errors[1]["errorMessages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0]
        .as_str()
        .unwrap()
        .contains("Property=confidence"));
    assert!(messages[1]
        .as_str()
        .unwrap()
        .contains("Property=valid_until"));

    assert_eq!(sim.accepted().len(), 2);
    assert_eq!(sim.requests()[0].accepted, 2);
}

#[tokio::test]
async fn legacy_route_takes_indicators_and_reports_validation_error_messages() {
    let sim = start(SimConfig {
        record_errors_key: RecordErrorsKey::Spec,
        ..SimConfig::default()
    })
    .await;
    let identity = json!({
        "type": "identity", "spec_version": "2.1",
        "id": "identity--733c5838-34d9-4fbf-949c-62aba761184c",
        "created": "2016-08-23T18:05:49.307Z", "modified": "2016-08-23T18:05:49.307Z",
        "name": "Identity"
    });
    let body = json!({"sourcesystem": "ti-ingest", "indicators": [identity, indicator(7)]});

    let answer = post(&legacy_url(&sim), &sim.token("app"), &body).await;

    assert_eq!(answer.status, StatusCode::OK);
    let errors = answer.json()["errors"].clone();
    assert_eq!(errors[0]["recordIndex"], 0);
    assert!(errors[0]["validationErrorMessages"][0]
        .as_str()
        .unwrap()
        .contains("Only objects of type 'indicator'"));
    assert!(errors[0].get("errorMessages").is_none());
    assert_eq!(
        sim.accepted_ids().into_iter().collect::<Vec<_>>(),
        ["indicator--00000000-0000-4000-8000-000000000007"]
    );

    // The STIX body key is not the legacy one.
    let wrong_key = upload_body(vec![indicator(8)]);
    let answer = post(&legacy_url(&sim), &sim.token("app"), &wrong_key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn more_than_the_object_limit_is_a_400() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");

    let answer = post(
        &stix_url(&sim),
        &token,
        &upload_body((0..101).map(indicator).collect()),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "BadRequest");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("101") && message.contains("100"),
        "{message}"
    );
    assert!(sim.accepted().is_empty());
    assert_eq!(sim.requests()[0].objects, 101);

    let answer = post(
        &stix_url(&sim),
        &token,
        &upload_body((0..100).map(indicator).collect()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(sim.accepted().len(), 100);
}

#[tokio::test]
async fn malformed_requests_are_400s() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");
    let url = stix_url(&sim);
    let objects = json!([indicator(1)]);
    let cases = [
        ("not json", "{\"sourcesystem\": ".to_owned()),
        ("not an object", "[1, 2]".to_owned()),
        ("no stixobjects", json!({"sourcesystem": "s"}).to_string()),
        (
            "stixobjects not an array",
            json!({"sourcesystem": "s", "stixobjects": {}}).to_string(),
        ),
        (
            "empty stixobjects",
            json!({"sourcesystem": "s", "stixobjects": []}).to_string(),
        ),
        (
            "no sourcesystem",
            json!({"stixobjects": objects}).to_string(),
        ),
        (
            "reserved sourcesystem",
            json!({"sourcesystem": "Microsoft Sentinel", "stixobjects": objects}).to_string(),
        ),
        (
            "long sourcesystem",
            json!({"sourcesystem": "x".repeat(257), "stixobjects": objects}).to_string(),
        ),
    ];
    for (what, body) in cases {
        let answer = post_raw(&url, Some(&token), body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(answer.json()["error"]["message"].is_string(), "{what}");
    }
    let max_len = json!({"sourcesystem": "x".repeat(256), "stixobjects": objects});
    assert_eq!(post(&url, &token, &max_len).await.status, StatusCode::OK);

    let no_version = format!(
        "{}/workspaces/{WORKSPACE}/threat-intelligence-stix-objects:upload",
        sim.url()
    );
    let answer = post(&no_version, &token, &upload_body(vec![indicator(1)])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["code"], "MissingApiVersionParameter");
}

#[tokio::test]
async fn tokens_are_checked_for_audience_and_expiry() {
    let sim = start(SimConfig::default()).await;
    let url = stix_url(&sim);
    let body = upload_body(vec![indicator(1)]);
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = |aud: &str, exp: u64| unsigned_jwt(&json!({"aud": aud, "exp": exp, "oid": "o"}));

    let refused = [
        (
            Some(token("https://storage.azure.com", in_an_hour)),
            "wrong audience or resource 'https://storage.azure.com'",
        ),
        (
            Some(token("https://management.azure.com", 1_000_000)),
            "The access token expiry UTC time",
        ),
        (Some("not-a-jwt".to_owned()), "The access token is invalid"),
        (None, "The 'Authorization' header is missing"),
    ];
    for (token, reason) in refused {
        let answer = post_raw(&url, token.as_deref(), body.to_string()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{reason}");
        // The spec example's body, which does not say why; the challenge does.
        assert_eq!(
            answer.text,
            r#"{"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}"#
        );
        let challenge = answer.www_authenticate.as_deref().unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains(reason),
            "{reason}: {challenge}"
        );
    }
    assert!(sim.accepted().is_empty());

    for aud in [
        "https://management.azure.com",
        "https://management.azure.com/",
        "https://management.core.windows.net/",
    ] {
        let answer = post(&url, &token(aud, in_an_hour), &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{aud}");
    }
    // Graph tokens are for Graph only.
    assert_eq!(
        post(&url, &sim.graph_token("o"), &body).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_workspaces_are_404s() {
    let known = "11111111-2222-4333-8444-555555555555";
    let sim = start(SimConfig {
        workspaces: vec![known.to_owned()],
        ..SimConfig::default()
    })
    .await;
    let token = sim.token("app");
    let body = upload_body(vec![indicator(1)]);
    for workspace in ["not-a-uuid", WORKSPACE] {
        let url = format!("{}/workspaces/{workspace}/{STIX_OP}", sim.url());
        let answer = post(&url, &token, &body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{workspace}");
        assert_eq!(answer.json()["error"]["code"], "ResourceNotFound");
        assert_eq!(answer.error_code.as_deref(), Some("ResourceNotFound"));
    }
    let url = format!(
        "{}/workspaces/{}/{STIX_OP}",
        sim.url(),
        known.to_uppercase()
    );
    assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);

    let unknown_route = format!("{}/workspaces/{known}/nothing:here", sim.url());
    assert_eq!(
        post(&unknown_route, &token, &body).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sim.requests().len(), 4, "every request is logged");
}

#[tokio::test]
async fn quota_exceeded_gets_the_real_429() {
    let sim = start(SimConfig {
        requests_per_window: 5,
        window: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let url = stix_url(&sim);
    let token = sim.token("client-a");
    let body = upload_body(vec![indicator(1)]);
    for _ in 0..5 {
        assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);
    }

    let answer = post(&url, &token, &body).await;

    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let secs = retry_secs_in(&answer.text);
    assert!((1..=2).contains(&secs), "{secs}");
    assert_eq!(answer.text, throttle_body(secs), "exact body");
    assert_eq!(
        answer.retry_after, None,
        "the real service sends no Retry-After"
    );
    let last = sim.requests().pop().unwrap();
    assert_eq!((last.status, last.injected), (429, false));

    // The quota is per identity.
    let other = post(&url, &sim.token("client-b"), &body).await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn the_window_rolls_and_retry_after_is_optional() {
    let sim = start(SimConfig {
        requests_per_window: 2,
        window: Duration::from_millis(400),
        retry_after_header: true,
        ..SimConfig::default()
    })
    .await;
    let url = stix_url(&sim);
    let token = sim.token("client");
    let body = upload_body(vec![indicator(1)]);
    assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);
    assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);

    let answer = post(&url, &token, &body).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        answer.text,
        throttle_body(1),
        "sub-second waits round up to 1"
    );
    assert_eq!(answer.retry_after.as_deref(), Some("1"));

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_get_exactly_the_quota() {
    let sim = start(SimConfig {
        requests_per_window: 5,
        window: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let url = stix_url(&sim);
    let token = sim.token("client");
    let body = upload_body(vec![indicator(1)]);
    let answers = join_all((0..20).map(|_| {
        let (url, token, body) = (url.clone(), token.clone(), body.clone());
        tokio::spawn(async move { post(&url, &token, &body).await.status })
    }))
    .await;
    let ok = answers.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 5);
    assert_eq!(answers.len(), 20);
}

async fn join_all(
    handles: impl Iterator<Item = tokio::task::JoinHandle<StatusCode>>,
) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn injected_faults_follow_the_configured_shares() {
    let sim = start(SimConfig {
        requests_per_window: 10_000,
        fault_429_share: 0.3,
        seed: 42,
        ..SimConfig::default()
    })
    .await;
    let url = stix_url(&sim);
    let token = sim.token("client");
    let mut throttled = 0;
    for n in 0..200 {
        let answer = post(&url, &token, &upload_body(vec![indicator(n)])).await;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                assert_eq!(answer.text, throttle_body(1));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (40..=80).contains(&throttled),
        "{throttled} of 200 throttled"
    );
    let requests = sim.requests();
    assert_eq!(requests.iter().filter(|r| r.injected).count(), throttled);
    assert!(requests.iter().all(|r| r.injected == (r.status == 429)));
    assert_eq!(
        sim.accepted().len(),
        200 - throttled,
        "faults accept nothing"
    );

    sim.set_faults(0.0, 0.25);
    let mut server_errors = 0;
    for n in 200..400 {
        let status = post(&url, &token, &upload_body(vec![indicator(n)]))
            .await
            .status;
        if status.is_server_error() {
            assert!(matches!(status.as_u16(), 500 | 503), "{status}");
            server_errors += 1;
        } else {
            assert_eq!(status, StatusCode::OK);
        }
    }
    assert!(
        (30..=70).contains(&server_errors),
        "{server_errors} of 200 failed"
    );

    sim.set_faults(0.0, 0.0);
    for n in 400..420 {
        let status = post(&url, &token, &upload_body(vec![indicator(n)]))
            .await
            .status;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(SimConfig {
            fault_429_share: 0.2,
            fault_5xx_share: 0.2,
            seed: 7,
            ..SimConfig::default()
        })
        .await;
        let token = sim.token("client");
        let mut statuses = Vec::new();
        for n in 0..40 {
            let body = upload_body(vec![indicator(n)]);
            statuses.push(post(&stix_url(&sim), &token, &body).await.status.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].iter().any(|s| *s != 200), "some faults at 40%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_answers_and_can_change_at_runtime() {
    // No upper time bound anywhere (a loaded test host cannot fail this): the configured
    // latency is an hour, which no request here waits out; a request answered at all proves the
    // latency it was sent under was not that hour.
    const HOUR: Duration = Duration::from_secs(3600);
    let sim = start(SimConfig {
        latency: HOUR,
        ..SimConfig::default()
    })
    .await;
    let body = upload_body(vec![indicator(1)]);
    let (url, token) = (stix_url(&sim), sim.token("a"));
    // Sent under the configured hour: accepted (the answer is computed first), not answered.
    let held = {
        let (url, token, body) = (url.clone(), token.clone(), body.clone());
        tokio::spawn(async move { post(&url, &token, &body).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.requests().is_empty() {
        assert!(Instant::now() < deadline, "the first request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Removed at run time: the next request is answered (a hang guard, not a time bound).
    sim.set_latency(Duration::ZERO);
    let answer = tokio::time::timeout(HOUR / 6, post(&url, &token, &body))
        .await
        .expect("answered once the latency is removed");
    assert_eq!(answer.status, 200);
    assert!(!held.is_finished(), "the first request waits out its hour");

    // Set at run time: the answer comes no sooner than the latency.
    const LATENCY: Duration = Duration::from_millis(1500);
    sim.set_latency(LATENCY);
    let started = Instant::now();
    assert_eq!(post(&url, &token, &body).await.status, 200);
    assert!(started.elapsed() >= LATENCY);
    assert_eq!(sim.requests().len(), 3);
    held.abort();
}

#[tokio::test]
async fn graph_submit_answers_200_or_206_with_per_item_errors() {
    let sim = start(SimConfig::default()).await;
    let url = format!(
        "{}/beta/security/tiIndicators/submitTiIndicators",
        sim.url()
    );
    let good = json!({
        "action": "alert",
        "description": "canary",
        "expirationDateTime": "2030-03-01T21:44:03.1668987+00:00",
        "networkDestinationIPv4": "51.158.66.18",
        "targetProduct": "Azure Sentinel",
        "threatType": "WatchList",
        "tlpLevel": "green"
    });
    let mut bad = good.clone();
    bad["networkDestinationIPv4"] = json!("51.158.66.18/32");

    let answer = post(
        &url,
        &sim.graph_token("app"),
        &json!({"value": [good.clone()]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.json()["value"][0]["id"].is_string());

    let answer = post(
        &url,
        &sim.graph_token("app"),
        &json!({"value": [bad, good]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT);
    let value = answer.json()["value"].clone();
    assert_eq!(
        value[0]["Error"],
        "Target: networkDestinationIPv4 - ValidationFailed - The value 51.158.66.18/32 is not a valid IPv4 address."
    );
    assert!(value[1].get("Error").is_none());
    assert_eq!(sim.graph_accepted().len(), 2);
    assert!(
        sim.accepted().is_empty(),
        "Graph does not feed the STIX store"
    );

    let answer = post(&url, &sim.token("app"), &json!({"value": []})).await;
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "management token on Graph"
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sim = start(SimConfig::default()).await;
    let url = stix_url(&sim);
    let token = sim.token("app");
    let body = upload_body(vec![indicator(1)]);
    assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);
    sim.shutdown().await;
    let result = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await;
    assert!(result.is_err(), "still answering after shutdown");
}

#[tokio::test]
async fn by_default_only_the_devkit_workspace_exists() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");
    let body = upload_body(vec![indicator(1)]);
    let other = "6a0b3e5c-1111-4222-8333-444455556666";
    for (op, key) in [(STIX_OP, "stixobjects"), (LEGACY_OP, "indicators")] {
        let body = json!({"sourcesystem": "s", key: [indicator(1)]});
        let url = format!("{}/workspaces/{other}/{op}", sim.url());
        let answer = post(&url, &token, &body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{op}");
        assert_eq!(
            answer.json(),
            json!({"error": {"code": "ResourceNotFound",
                "message": format!("The workspace '{other}' could not be found.")}})
        );
    }
    assert_eq!(
        post(&stix_url(&sim), &token, &body).await.status,
        StatusCode::OK
    );
    let lines: Vec<String> = sim.requests().iter().map(|r| r.request_line()).collect();
    assert_eq!(
        lines,
        [
            format!("POST /workspaces/{other}/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview"),
            format!("POST /workspaces/{other}/threatintelligenceindicators:upload?api-version=2022-07-01"),
            "POST /workspaces/a0b1c2d3-0000-4000-8000-00000000f00d/threat-intelligence-stix-objects:upload?api-version=2024-02-01-preview".to_owned(),
        ]
    );
    assert_eq!(
        sim.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [404, 404, 200]
    );
}

#[tokio::test]
async fn unknown_api_versions_are_refused_per_api() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");
    let stix_body = upload_body(vec![indicator(1)]);
    let legacy_body = json!({"sourcesystem": "s", "indicators": [indicator(2)]});
    let stix = |v: &str| {
        format!(
            "{}/workspaces/{WORKSPACE}/threat-intelligence-stix-objects:upload?api-version={v}",
            sim.url()
        )
    };
    let legacy = |v: &str| {
        format!(
            "{}/workspaces/{WORKSPACE}/threatintelligenceindicators:upload?api-version={v}",
            sim.url()
        )
    };
    // Each API knows only its own versions.
    for (url, body, version, supported, header) in [
        (
            stix("2022-07-01"),
            &stix_body,
            "2022-07-01",
            "2024-02-01-preview",
            true,
        ),
        (
            stix("2099-01-01"),
            &stix_body,
            "2099-01-01",
            "2024-02-01-preview",
            true,
        ),
        (
            legacy("2024-02-01-preview"),
            &legacy_body,
            "2024-02-01-preview",
            "2022-07-01, 2022-12-01-preview",
            false,
        ),
    ] {
        let answer = post(&url, &token, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(
            answer.json(),
            json!({"error": {"code": "UnsupportedApiVersionValue", "message": format!(
                "Unsupported api-version '{version}'. The supported api-versions are '{supported}'."
            )}})
        );
        // The header is declared by the STIX objects API's spec only.
        let expected = header.then_some("UnsupportedApiVersionValue");
        assert_eq!(answer.error_code.as_deref(), expected, "{url}");
    }
    assert!(sim.accepted().is_empty());
    for (url, body) in [
        (stix("2024-02-01-preview"), &stix_body),
        (legacy("2022-07-01"), &legacy_body),
        (legacy("2022-12-01-preview"), &legacy_body),
    ] {
        assert_eq!(
            post(&url, &token, body).await.status,
            StatusCode::OK,
            "{url}"
        );
    }
    assert_eq!(sim.accepted().len(), 2);
}

/// An object the service refuses: no `id`.
fn invalid(n: u32) -> Value {
    let mut o = indicator(n);
    o.as_object_mut().unwrap().remove("id");
    o
}

#[tokio::test]
async fn an_all_invalid_batch_gets_the_default_answer_without_a_record_list() {
    let sim = start(SimConfig::default()).await;
    let token = sim.token("app");
    for (url, key, header) in [
        (stix_url(&sim), "stixobjects", Some("BadRequest")),
        (legacy_url(&sim), "indicators", None),
    ] {
        let body = json!({"sourcesystem": "s", key: [invalid(1), invalid(2), invalid(3)]});
        let answer = post(&url, &token, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(
            answer.json(),
            json!({"error": {"code": "BadRequest", "message": format!(
                "None of the 3 object(s) in '{key}' passed validation; nothing was published."
            )}}),
            "{key}: the default answer, no errors[]"
        );
        assert_eq!(answer.error_code.as_deref(), header, "{key}");
    }
    assert!(sim.accepted().is_empty());
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| (r.status, r.objects, r.accepted) == (400, 3, 0)));

    // One valid object is enough for a 200 with the refused ones listed.
    let body = upload_body(vec![invalid(1), indicator(2)]);
    let answer = post(&stix_url(&sim), &token, &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"errors": [{"recordIndex": 0, "errorMessages":
            ["Error for Property=id: Required property is missing. Actual value: NULL."]}]})
    );
}

#[tokio::test]
async fn the_record_error_key_is_the_docs_or_the_specs_for_both_apis() {
    for (key_kind, key) in [
        (RecordErrorsKey::Docs, "errorMessages"),
        (RecordErrorsKey::Spec, "validationErrorMessages"),
    ] {
        let sim = start(SimConfig {
            record_errors_key: key_kind,
            ..SimConfig::default()
        })
        .await;
        let token = sim.token("app");
        for (url, array) in [
            (stix_url(&sim), "stixobjects"),
            (legacy_url(&sim), "indicators"),
        ] {
            let body = json!({"sourcesystem": "s", array: [indicator(1), invalid(2)]});
            let answer = post(&url, &token, &body).await;
            assert_eq!(answer.status, StatusCode::OK);
            let entry = answer.json()["errors"][0].clone();
            assert_eq!(entry.as_object().unwrap().len(), 2, "{entry}");
            assert_eq!(entry["recordIndex"], 1);
            assert_eq!(
                entry[key],
                json!(["Error for Property=id: Required property is missing. Actual value: NULL."]),
                "{array}: {entry}"
            );
        }
    }
}

#[tokio::test]
async fn server_errors_have_the_shape_seen_in_the_wild() {
    let sim = start(SimConfig {
        fault_5xx_share: 1.0,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    let token = sim.token("app");
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..12 {
        let answer = post(&stix_url(&sim), &token, &upload_body(vec![indicator(n)])).await;
        let status = answer.status.as_u16();
        let message = match status {
            500 => "Internal server error",
            503 => "Service Unavailable",
            other => panic!("unexpected {other}"),
        };
        seen.insert(status);
        let prefix = format!(r#"{{"statusCode":{status},"message":"{message}","activityId":""#);
        assert!(answer.text.starts_with(&prefix), "{}", answer.text);
        let body = answer.json();
        assert_eq!(body.as_object().unwrap().len(), 3);
        let id = body["activityId"].as_str().unwrap();
        assert_eq!(id.len(), 36, "a GUID: {id}");
    }
    assert_eq!(seen.len(), 2, "both 500 and 503 drawn: {seen:?}");
    assert!(sim.accepted().is_empty());
}

#[tokio::test]
async fn a_retired_graph_answers_as_a_removed_route() {
    let url = |sim: &Simulator| {
        format!(
            "{}/beta/security/tiIndicators/submitTiIndicators",
            sim.url()
        )
    };
    let body = json!({"value": [{"action": "alert", "description": "d",
        "expirationDateTime": "2030-01-01T00:00:00Z", "networkIPv4": "10.0.0.1",
        "targetProduct": "Azure Sentinel", "threatType": "WatchList", "tlpLevel": "green"}]});
    for (retired, status, code, message) in [
        (
            Retired::SegmentNotFound,
            400,
            "BadRequest",
            "Resource not found for the segment 'tiIndicators'.",
        ),
        (
            Retired::NotFound,
            404,
            "ResourceNotFound",
            "Resource could not be discovered.",
        ),
        (
            Retired::Gone,
            410,
            "Gone",
            "The requested resource is no longer available at the server.",
        ),
    ] {
        let sim = start(SimConfig {
            graph_api: GraphApi::Retired(retired),
            ..SimConfig::default()
        })
        .await;
        let answer = post(&url(&sim), &sim.graph_token("app"), &body).await;
        assert_eq!(answer.status.as_u16(), status);
        let error = answer.json()["error"].clone();
        assert_eq!(
            (error["code"].as_str(), error["message"].as_str()),
            (Some(code), Some(message))
        );
        assert!(error["innerError"]["request-id"].is_string(), "{error}");
        assert!(sim.graph_accepted().is_empty());
        let log = sim.requests();
        assert_eq!(log.len(), 1);
        assert_eq!(
            log[0].request_line(),
            "POST /beta/security/tiIndicators/submitTiIndicators"
        );
        // The Sentinel routes are unaffected.
        let stix = post(
            &stix_url(&sim),
            &sim.token("app"),
            &upload_body(vec![indicator(1)]),
        )
        .await;
        assert_eq!(stix.status, StatusCode::OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Defender for Endpoint indicators (src/defender.rs: shapes from Microsoft Learn)

fn defender_indicator(value: &str) -> Value {
    json!({
        "indicatorValue": value, "indicatorType": "IpAddress", "title": "t", "description": "d",
        "action": "Audit", "generateAlert": true, "expirationTime": "2099-01-01T00:00:00Z"
    })
}

#[tokio::test]
async fn defender_import_answers_per_indicator_and_enforces_its_documented_limits() {
    let sim = start(SimConfig {
        defender_max_active: 2,
        ..SimConfig::default()
    })
    .await;
    let url = format!("{}/api/indicators/import", sim.url());
    let token = sim.defender_token("client-1");
    // One result per indicator, in order: a bad value fails alone; the third new one finds the
    // tenant's cap (2 here) reached.
    let a = post(
        &url,
        &token,
        &json!({"Indicators": [
            defender_indicator("198.51.100.1"),
            defender_indicator("198.51.100.0/24"),
            defender_indicator("198.51.100.2"),
            defender_indicator("198.51.100.3"),
        ]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let results = a.json()["value"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    assert_eq!(
        results
            .iter()
            .map(|r| r["isFailed"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [false, true, false, true]
    );
    assert_eq!(results[0]["id"], "1");
    assert_eq!(
        results[1]["failureReason"],
        "IP address 198.51.100.0/24 is invalid."
    );
    assert_eq!(
        results[3]["failureReason"],
        "There's a limit of 2 active indicators per tenant; the limit is reached."
    );
    // An update of a held indicator takes no new place.
    let a = post(
        &url,
        &token,
        &json!({"Indicators": [defender_indicator("198.51.100.1")]}),
    )
    .await;
    assert_eq!(a.json()["value"][0]["isFailed"], false);
    assert_eq!(sim.defender_indicators().len(), 2);
    // Body parameters are case-sensitive; more than 500 is refused whole.
    let a = post(
        &url,
        &token,
        &json!({"indicators": [defender_indicator("198.51.100.9")]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], "MissingRequiredParameter");
    let many: Vec<Value> = (0..501)
        .map(|i| defender_indicator(&format!("10.1.{}.{}", i / 256, i % 256)))
        .collect();
    let a = post(&url, &token, &json!({ "Indicators": many })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json()["error"]["message"],
        "Maximum batch size exceeded. Received: 501, allowed: 500."
    );
    // A Sentinel token is another audience: 401 in Defender's error shape.
    let a = post(&url, &sim.token("client-1"), &json!({"Indicators": []})).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json()["error"]["code"], "Unauthorized");
}

#[tokio::test]
async fn defender_import_admits_30_calls_per_window_then_429_with_retry_after() {
    let sim = start(SimConfig::default()).await;
    let url = format!("{}/api/indicators/import", sim.url());
    let token = sim.defender_token("client-1");
    let body = json!({"Indicators": [defender_indicator("198.51.100.1")]});
    for _ in 0..30 {
        assert_eq!(post(&url, &token, &body).await.status, StatusCode::OK);
    }
    let a = post(&url, &token, &body).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.json()["error"]["code"], "TooManyRequests");
    let wait: u64 = a.retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}
