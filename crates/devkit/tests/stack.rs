//! End-to-end checks of the devkit against real Azurite: TLS trust, the SDK with
//! `ManagedIdentityCredential` over HTTPS + OAuth, the stack, a handler child process, and the
//! host driver's queue semantics. Needs `scripts/setup-azurite.sh` to have run.

use devkit::host::{self, QueueRoute};
use devkit::stack::{self, BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER};
use devkit::{Azurite, AzuriteOptions, Stack, StackConfig, Storage, TestCa, TestEnv};
use std::time::Duration;

const FAKE_HANDLER: &str = env!("CARGO_BIN_EXE_devkit-fake-handler");

async fn azurite(options: AzuriteOptions) -> (&'static TestEnv, Azurite) {
    let env = TestEnv::global().unwrap();
    let azurite = Azurite::start(env.ca(), options).await.unwrap();
    (env, azurite)
}

#[tokio::test]
async fn the_test_ca_is_trusted_by_rustls_and_a_foreign_one_is_not() {
    let (env, azurite) = azurite(AzuriteOptions {
        in_memory: true,
        ..AzuriteOptions::default()
    })
    .await;
    let url = format!("{}?comp=list", azurite.blob_url());

    // Through SSL_CERT_FILE, as the SDK and the handler see it.
    let rsp = reqwest::Client::new().get(&url).send().await.unwrap();
    // No token: Azurite answers (the TLS handshake worked) and refuses.
    assert!(rsp.status().is_client_error(), "{}", rsp.status());

    // With the CA as the only explicit root.
    let ca = reqwest::Certificate::from_pem(env.ca().ca_pem_text().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    client.get(&url).send().await.unwrap();

    // Another CA must not do.
    let other = TestCa::generate().unwrap();
    let other = reqwest::Certificate::from_pem(other.ca_pem_text().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([other])
        .build()
        .unwrap();
    let err = client.get(&url).send().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[tokio::test]
async fn the_sdk_works_against_azurite_with_a_managed_identity_token() {
    let (env, azurite) = azurite(AzuriteOptions {
        in_memory: true,
        ..AzuriteOptions::default()
    })
    .await;
    let storage =
        Storage::with_managed_identity(&azurite.blob_url(), &azurite.queue_url(), None).unwrap();

    storage.create_container("inbox").await.unwrap();
    storage.create_container("inbox").await.unwrap(); // idempotent
    storage
        .upload_blob("inbox", "feeds/2024/a b.json", b"{\"x\":1}".to_vec())
        .await
        .unwrap();
    storage
        .upload_blob("inbox", "other.txt", b"1.2.3.4".to_vec())
        .await
        .unwrap();
    assert_eq!(
        storage
            .read_blob("inbox", "feeds/2024/a b.json")
            .await
            .unwrap(),
        b"{\"x\":1}"
    );
    assert!(storage
        .try_read_blob("inbox", "missing")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        storage.list_blobs("inbox", Some("feeds/")).await.unwrap(),
        vec!["feeds/2024/a b.json".to_string()]
    );
    assert_eq!(storage.list_blobs("inbox", None).await.unwrap().len(), 2);

    storage.create_queue("work").await.unwrap();
    storage.create_queue("work").await.unwrap(); // idempotent
    storage.put_message("work", "{\"a\":1}").await.unwrap();
    assert_eq!(
        storage.peek_messages("work", 32).await.unwrap(),
        vec!["{\"a\":1}"]
    );
    let received = storage.receive_messages("work", 1, 30).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].dequeue_count, 1);
    storage.delete_message("work", &received[0]).await.unwrap();
    assert!(storage.peek_messages("work", 32).await.unwrap().is_empty());

    // The credential asked the local endpoint for the storage audience.
    assert!(env
        .identity()
        .issued_resources()
        .iter()
        .any(|r| r == "https://storage.azure.com"));
}

#[tokio::test]
async fn azurite_restart_keeps_data_and_drop_leaves_no_process() {
    let (env, mut azurite) = azurite(AzuriteOptions::default()).await;
    let blob_url = azurite.blob_url();
    let storage = Storage::with_managed_identity(&blob_url, &azurite.queue_url(), None).unwrap();
    storage.create_container("keep").await.unwrap();
    storage
        .upload_blob("keep", "a.txt", b"kept".to_vec())
        .await
        .unwrap();
    let first_pid = azurite.pid().unwrap();
    azurite.restart().await.unwrap();
    assert_eq!(azurite.blob_url(), blob_url, "restart keeps the ports");
    assert!(!devkit::process::process_exists(first_pid));
    // A fresh client: the old connection pool points at the dead process.
    let storage = Storage::with_managed_identity(&blob_url, &azurite.queue_url(), None).unwrap();
    assert_eq!(storage.read_blob("keep", "a.txt").await.unwrap(), b"kept");

    let pid = azurite.pid().unwrap();
    drop(azurite);
    assert!(!devkit::process::process_exists(pid));
    let _ = env;
}

#[tokio::test]
async fn stack_serves_a_handler_process_with_its_identity() {
    let stack = Stack::start(StackConfig::default()).await.unwrap();
    // The containers and queues exist.
    for container in [INBOX_CONTAINER, REPORTS_CONTAINER] {
        assert!(stack
            .storage()
            .list_blobs(container, None)
            .await
            .unwrap()
            .is_empty());
    }
    for queue in [
        "indicator-messages-poison",
        "indicator-work",
        BLOB_EVENTS_QUEUE,
    ] {
        assert!(stack
            .storage()
            .peek_messages(queue, 1)
            .await
            .unwrap()
            .is_empty());
    }
    let env = stack.handler_env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("TI_STORAGE_BLOB_URL"), Some(stack.blob_url()));
    assert!(!stack.blob_url().ends_with('/'));
    assert_eq!(get("TI_API_BASE_URL"), Some(stack.sim().url()));
    assert_eq!(
        get("AZURE_CLIENT_ID").as_deref(),
        Some(stack::DEFAULT_CLIENT_ID)
    );
    assert_eq!(
        get("TI_WORKSPACE_ID").as_deref(),
        Some(stack::DEFAULT_WORKSPACE_ID)
    );
    for key in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "SSL_CERT_FILE",
        "TI_STORAGE_QUEUE_URL",
        "TI_INBOX_CONTAINER",
        "TI_REPORTS_CONTAINER",
        "TI_BLOB_EVENTS_QUEUE",
        "TI_INBOX_QUEUE",
        "TI_WORK_QUEUE",
    ] {
        assert!(get(key).is_some(), "{key} missing");
    }

    let mut handler = stack.spawn_handler(FAKE_HANDLER).await.unwrap();
    let mut driver = handler.driver().clone();
    // Retried after 10 ms instead of host.json's 30 s: the attempts are under test, not the
    // delay between them.
    driver.queues.visibility_timeout = Duration::from_millis(10);

    // The child reads the blob named by an Event Grid event, over HTTPS with its own token.
    let delivery = {
        let len = stack
            .upload_inbox("x/feed.txt", b"8.8.8.8\n".to_vec())
            .await
            .unwrap();
        let event = host::blob_created_event(&stack.blob_url(), INBOX_CONTAINER, "x/feed.txt", len);
        driver
            .deliver_with_retries("ReadBlob", "message", &host::event_grid_message(&event))
            .await
            .unwrap()
    };
    assert_eq!(delivery.attempts, 1, "{}", handler.output());
    assert_eq!(delivery.last().return_value(), Some(&serde_json::json!(8)));
    let asked = stack.identity().requests();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|r| r.status == 200));
    assert!(asked
        .iter()
        .all(|r| r.client_id.as_deref() == Some(stack::DEFAULT_CLIENT_ID)));
    assert_eq!(
        stack.identity().issued_resources()[0],
        "https://storage.azure.com"
    );
    // A second read reuses the cached one-hour token.
    let len = stack
        .upload_inbox("y.txt", b"1.1.1.1\n".to_vec())
        .await
        .unwrap();
    let event = host::blob_created_event(&stack.blob_url(), INBOX_CONTAINER, "y.txt", len);
    let again = driver
        .deliver_with_retries("ReadBlob", "message", &host::event_grid_message(&event))
        .await
        .unwrap();
    assert!(!again.poisoned);
    assert_eq!(stack.identity().requests().len(), 1);

    // Retry semantics of the host.
    let d = driver
        .deliver_with_retries("FailUntil3", "message", "hi")
        .await
        .unwrap();
    assert_eq!((d.attempts, d.final_status, d.poisoned), (3, 200, false));
    let d = driver
        .deliver_with_retries("Fail", "message", "hi")
        .await
        .unwrap();
    // As many attempts as host.json's maxDequeueCount, then the poison queue.
    assert_eq!(
        (d.attempts, d.final_status, d.poisoned),
        (driver.queues.max_dequeue_count, 500, true)
    );

    // The handler receives the exact envelope.
    let rsp = driver
        .invoke_queue("Echo", "message", "hello!!", 2)
        .await
        .unwrap();
    let envelope = rsp.return_value().unwrap();
    assert_eq!(envelope["Data"]["message"], "\"hello!!\"");
    assert_eq!(envelope["Metadata"]["DequeueCount"], "2");
    assert_eq!(rsp.logs(), vec!["echo"]);

    // SIGKILL, like a function timeout.
    let pid = handler.pid();
    handler.kill().await.unwrap();
    assert!(!devkit::process::process_exists(pid));
    assert!(driver
        .invoke_queue("Echo", "message", "x", 1)
        .await
        .is_err());
}

#[tokio::test]
async fn pumping_real_queues_follows_the_host_retry_and_poison_rules() {
    let stack = Stack::start(StackConfig::default()).await.unwrap();
    let handler = stack.spawn_handler(FAKE_HANDLER).await.unwrap();
    let storage = stack.storage();
    let len = stack
        .upload_inbox("a.csv", b"type,value\n".to_vec())
        .await
        .unwrap();
    let event = host::blob_created_event(&stack.blob_url(), INBOX_CONTAINER, "a.csv", len);
    storage
        .put_message(BLOB_EVENTS_QUEUE, &host::event_grid_message(&event))
        .await
        .unwrap();
    storage
        .put_message("indicator-messages", "doomed")
        .await
        .unwrap();
    storage
        .put_message("indicator-work", "patient")
        .await
        .unwrap();

    let routes = [
        QueueRoute::new(BLOB_EVENTS_QUEUE, "ReadBlob"),
        QueueRoute::new("indicator-messages", "Fail"),
        QueueRoute::new("indicator-work", "FailUntil3"),
    ];
    let mut driver = handler.driver().clone();
    // Failed messages come back after 1 s instead of host.json's 30 s: the retry and poison
    // rules are under test, not the delay.
    driver.queues.visibility_timeout = Duration::from_secs(1);
    let deliveries = driver
        .pump_queues(storage, &routes, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    let by_queue = |q: &str| {
        deliveries
            .iter()
            .find(|(key, _)| key.starts_with(&format!("{q}/")))
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    let blob = by_queue(BLOB_EVENTS_QUEUE);
    assert_eq!(
        (blob.attempts, blob.poisoned),
        (1, false),
        "{}",
        handler.output()
    );
    let doomed = by_queue("indicator-messages");
    assert_eq!(
        (doomed.attempts, doomed.poisoned),
        (driver.queues.max_dequeue_count, true)
    );
    let patient = by_queue("indicator-work");
    assert_eq!((patient.attempts, patient.final_status), (3, 200));

    assert_eq!(
        storage
            .peek_messages("indicator-messages-poison", 32)
            .await
            .unwrap(),
        vec!["doomed"]
    );
    for q in [BLOB_EVENTS_QUEUE, "indicator-messages", "indicator-work"] {
        assert!(
            storage.peek_messages(q, 32).await.unwrap().is_empty(),
            "{q}"
        );
    }
}

#[tokio::test]
async fn short_lived_tokens_are_fetched_again() {
    // The SDK refreshes a token when 5 minutes or less remain, so a 4-minute token is refetched
    // on every use: the way to test that a long run keeps getting fresh tokens.
    let stack = Stack::start(StackConfig {
        token_lifetime: Duration::from_secs(240),
        ..StackConfig::default()
    })
    .await
    .unwrap();
    let handler = stack.spawn_handler(FAKE_HANDLER).await.unwrap();
    for name in ["a.txt", "b.txt"] {
        let len = stack.upload_inbox(name, b"x".to_vec()).await.unwrap();
        let event = host::blob_created_event(&stack.blob_url(), INBOX_CONTAINER, name, len);
        let read = handler
            .driver()
            .invoke_queue("ReadBlob", "message", &host::event_grid_message(&event), 1)
            .await
            .unwrap();
        assert!(read.is_success(), "{}", read.text);
    }
    assert!(stack.identity().requests().len() >= 2);
}

/// The driver runs a queue's messages as the host does with the repository's host.json
/// (`crates/devkit/src/host.rs`, `QueueSettings`): `batchSize` at once, the next batch when those
/// in flight get down to `newBatchThreshold`, so at most `batchSize + newBatchThreshold` at once.
/// The handler here is in-process: each invocation waits for a permit the test hands out, so
/// every step is seen, not timed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pumping_runs_batches_in_parallel_as_host_json_says() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Gate {
        arrived: AtomicUsize,
        in_flight: AtomicUsize,
        most: AtomicUsize,
        permits: tokio::sync::Semaphore,
    }
    async fn invoke(axum::extract::State(gate): axum::extract::State<Arc<Gate>>) -> String {
        gate.arrived.fetch_add(1, Ordering::SeqCst);
        let now = gate.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        gate.most.fetch_max(now, Ordering::SeqCst);
        gate.permits.acquire().await.unwrap().forget();
        gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        r#"{"ReturnValue":"ok"}"#.to_string()
    }

    let settings = host::QueueSettings::from_repo().unwrap();
    let (batch, threshold) = (
        settings.batch_size as usize,
        settings.new_batch_threshold as usize,
    );
    assert!(
        threshold < batch,
        "this test's steps assume newBatchThreshold < batchSize: {settings:?}"
    );
    let stack = Stack::start(StackConfig::default()).await.unwrap();
    let storage = stack.storage();
    let queue = "indicator-messages";
    let n = 3 * batch;
    for i in 0..n {
        storage.put_message(queue, &format!("m{i}")).await.unwrap();
    }
    let gate = Arc::new(Gate {
        arrived: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        permits: tokio::sync::Semaphore::new(0),
    });
    let app = axum::Router::new()
        .route("/{function}", axum::routing::post(invoke))
        .with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let driver = host::HostDriver::new(format!("http://{addr}"));
    assert_eq!(driver.queues, settings);

    let pump = {
        let (driver, storage) = (driver.clone(), storage.clone());
        tokio::spawn(async move {
            driver
                .pump_queues(
                    &storage,
                    &[QueueRoute::new(queue, "Hold")],
                    Duration::from_secs(60),
                )
                .await
        })
    };
    let wait_for = |want: usize| {
        let gate = gate.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while gate.arrived.load(Ordering::SeqCst) < want {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} invocations arrived, waiting for {want}",
                    gate.arrived.load(Ordering::SeqCst)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // The first batch arrives whole; no more until those in flight get down to the threshold.
    wait_for(batch).await;
    assert_eq!(gate.in_flight.load(Ordering::SeqCst), batch);
    gate.permits.add_permits(batch - threshold);
    // Then the second batch, beside the threshold's worth still running.
    wait_for(2 * batch).await;
    assert_eq!(gate.in_flight.load(Ordering::SeqCst), threshold + batch);
    gate.permits.add_permits(n);
    let deliveries = pump.await.unwrap().unwrap();
    assert_eq!(deliveries.len(), n);
    assert!(
        deliveries
            .iter()
            .all(|(_, d)| (d.attempts, d.final_status, d.poisoned) == (1, 200, false)),
        "{deliveries:?}"
    );
    assert_eq!(gate.arrived.load(Ordering::SeqCst), n);
    assert_eq!(gate.most.load(Ordering::SeqCst), batch + threshold);
    assert!(storage.peek_messages(queue, 32).await.unwrap().is_empty());
}

#[test]
fn queue_settings_come_from_host_json_with_the_documented_defaults() {
    // Every key given.
    let s = host::QueueSettings::from_host_json(
        r#"{"extensions":{"queues":{"batchSize":4,"newBatchThreshold":2,"visibilityTimeout":"00:00:30","maxDequeueCount":3,"messageEncoding":"none"}}}"#,
    )
    .unwrap();
    assert_eq!(
        s,
        host::QueueSettings {
            batch_size: 4,
            new_batch_threshold: 2,
            visibility_timeout: Duration::from_secs(30),
            max_dequeue_count: 3,
            message_encoding: host::MessageEncoding::Plain,
        }
    );
    assert_eq!(s.decode("e30="), Some("e30=".to_string()));
    // None given: Microsoft Learn's defaults (batchSize 16, newBatchThreshold batchSize/2,
    // visibilityTimeout 0, maxDequeueCount 5, base64).
    let d = host::QueueSettings::from_host_json(r#"{"version":"2.0"}"#).unwrap();
    assert_eq!(d, host::QueueSettings::default());
    assert_eq!(d.decode("e30="), Some("{}".to_string()));
    assert_eq!(d.decode("not base64!"), None);
    let t = host::QueueSettings::from_host_json(
        r#"{"extensions":{"queues":{"batchSize":10,"visibilityTimeout":"1.02:03:04.5"}}}"#,
    )
    .unwrap();
    assert_eq!(t.new_batch_threshold, 5);
    assert_eq!(
        t.visibility_timeout,
        Duration::from_secs(26 * 3600 + 3 * 60 + 4) + Duration::from_millis(500)
    );
    for (bad, says) in [
        (r#"{"extensions":{"queues":{"batchSize":33}}}"#, "1 to 32"),
        (
            r#"{"extensions":{"queues":{"batchSize":"4"}}}"#,
            "not a count",
        ),
        (
            r#"{"extensions":{"queues":{"visibilityTimeout":"30"}}}"#,
            "hh:mm:ss",
        ),
        (
            r#"{"extensions":{"queues":{"messageEncoding":"utf8"}}}"#,
            "base64 or none",
        ),
    ] {
        let e = host::QueueSettings::from_host_json(bad).unwrap_err();
        assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
    }
    // The repository's own file parses, and the driver uses it.
    let repo = host::QueueSettings::from_repo().unwrap();
    let raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../host.json")).unwrap(),
    )
    .unwrap();
    let q = &raw["extensions"]["queues"];
    assert_eq!(q["batchSize"].as_u64(), Some(u64::from(repo.batch_size)));
    assert_eq!(
        q["newBatchThreshold"].as_u64(),
        Some(u64::from(repo.new_batch_threshold))
    );
    assert_eq!(
        q["maxDequeueCount"].as_u64(),
        Some(u64::from(repo.max_dequeue_count))
    );
}
