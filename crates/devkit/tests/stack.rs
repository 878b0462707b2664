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
    let driver = handler.driver().clone();

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
    assert_eq!((d.attempts, d.final_status, d.poisoned), (5, 500, true));

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
    let deliveries = handler
        .driver()
        .pump_queues(storage, &routes, Duration::from_secs(20))
        .await
        .unwrap();
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
    assert_eq!((doomed.attempts, doomed.poisoned), (5, true));
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
