//! A stand-in for the Azure Functions host: posts invocations to a custom handler in exactly the
//! shape the real host uses (see docs/HOST-PROTOCOL.md), and replays the queue trigger's retry and
//! poison semantics.
//!
//! Encoding rules reproduced here, because the handler must survive them: a string binding value
//! is JSON-encoded *inside* a JSON string (`hello` arrives as `"\"hello\""`), numbers and booleans
//! arrive as strings (`"DequeueCount":"1"`), top-level dates are ISO 8601 truncated to seconds,
//! objects are real JSON, nulls and keys ending in "trigger" are left out, and a message that is a
//! JSON object also has its top-level fields copied into `Metadata` (where `Id` may overwrite the
//! message id). ti-ingest sets `messageEncoding: none`, so `Data.<binding>` carries the stored
//! message text as is: base64 for Event Grid messages, plain JSON for most other producers.
//!
//! The queue listener's settings are read from the repository's `host.json`
//! (`extensions.queues`, [`QueueSettings`]): the driver fetches and runs messages in the batches,
//! with the retry delay, dequeue limit and encoding the real host would use with that file.

use crate::storage::{ReceivedMessage, Storage};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use uuid::Uuid;

/// The Functions host version the driver claims to be (a 4.x runtime, as in production).
pub const HOST_VERSION: &str = "4.1041.200.1";
/// How long the host's queue listener keeps a message it dequeued invisible while the function
/// runs (it renews the lease while the invocation lasts); unrelated to host.json's
/// `visibilityTimeout`, which is the delay before a failed message is retried.
pub const PROCESSING_LEASE: Duration = Duration::from_secs(600);
/// The ti-ingest function fed by Event Grid BlobCreated events.
pub const INGEST_BLOB_EVENT: &str = "IngestBlobEvent";
/// The ti-ingest function fed by inline/reference messages.
pub const INGEST_MESSAGE: &str = "IngestMessage";
/// The binding name both queue functions use.
pub const QUEUE_BINDING: &str = "message";

/// Top-level dates: whole seconds with an explicit offset, as the host serialises them.
const HOST_DATE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
/// `sys.UtcNow`: seven fractional digits and `Z`, like .NET's round-trip format.
const HOST_UTC_NOW: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
/// Event Grid `eventTime`.
const EVENT_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");

/// One queue message as the trigger sees it; the id and insertion time stay the same across
/// retries, the pop receipt changes with every dequeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerMessage {
    /// Message id.
    pub id: String,
    /// The stored text (`Data.<binding>` after `messageEncoding: none`).
    pub text: String,
    /// Pop receipt of this dequeue.
    pub pop_receipt: String,
    /// When it was enqueued.
    pub insertion_time: OffsetDateTime,
    /// When it expires (7 days after insertion by default).
    pub expiration_time: OffsetDateTime,
    /// When it becomes visible again if not deleted (the host dequeues for 10 minutes).
    pub next_visible_time: OffsetDateTime,
}

impl TriggerMessage {
    /// A fresh message with this text, as if just enqueued.
    pub fn new(text: impl Into<String>) -> TriggerMessage {
        let now = OffsetDateTime::now_utc();
        TriggerMessage {
            id: Uuid::new_v4().to_string(),
            text: text.into(),
            pop_receipt: new_pop_receipt(),
            insertion_time: now,
            expiration_time: now + time::Duration::days(7),
            next_visible_time: now + time::Duration::minutes(10),
        }
    }

    /// The message as a dequeue from a real queue returned it.
    pub fn from_received(message: &ReceivedMessage) -> TriggerMessage {
        let now = OffsetDateTime::now_utc();
        let insertion_time = message.insertion_time.unwrap_or(now);
        TriggerMessage {
            id: message.id.clone(),
            text: message.text.clone(),
            pop_receipt: message.pop_receipt.clone(),
            insertion_time,
            expiration_time: message
                .expiration_time
                .unwrap_or(insertion_time + time::Duration::days(7)),
            next_visible_time: message
                .next_visible_time
                .unwrap_or(now + time::Duration::minutes(10)),
        }
    }

    /// The same message dequeued again: new pop receipt and visibility window.
    pub fn redelivered(&self) -> TriggerMessage {
        TriggerMessage {
            pop_receipt: new_pop_receipt(),
            next_visible_time: OffsetDateTime::now_utc() + time::Duration::minutes(10),
            ..self.clone()
        }
    }
}

fn new_pop_receipt() -> String {
    STANDARD.encode(Uuid::new_v4().as_bytes())
}

/// A string binding value as the host sends it: JSON text inside a JSON string.
pub fn double_encoded(text: &str) -> Value {
    Value::String(Value::String(text.to_string()).to_string())
}

/// A `Metadata` value as the host sends it; `None` for values the host leaves out (null).
pub fn metadata_value(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(double_encoded(s)),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Array(_) | Value::Object(_) => Some(value.clone()),
    }
}

fn host_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(HOST_DATE)
        .expect("a UTC date always formats")
}

/// `Metadata.sys` for an invocation of `function`.
pub fn sys_metadata(function: &str) -> Value {
    let now = OffsetDateTime::now_utc()
        .format(HOST_UTC_NOW)
        .expect("a UTC date always formats");
    json!({"MethodName": function, "UtcNow": now, "RandGuid": Uuid::new_v4().to_string()})
}

/// The body the host posts for a queue-triggered invocation.
pub fn queue_invocation(
    function: &str,
    binding: &str,
    message: &TriggerMessage,
    dequeue_count: u32,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert("DequeueCount".into(), json!(dequeue_count.to_string()));
    metadata.insert(
        "ExpirationTime".into(),
        json!(host_date(message.expiration_time)),
    );
    metadata.insert("Id".into(), double_encoded(&message.id));
    metadata.insert(
        "InsertionTime".into(),
        json!(host_date(message.insertion_time)),
    );
    metadata.insert(
        "NextVisibleTime".into(),
        json!(host_date(message.next_visible_time)),
    );
    metadata.insert("PopReceipt".into(), double_encoded(&message.pop_receipt));

    // The extension exposes a JSON object message's top-level fields as binding data too. Binding
    // data is case-insensitive, so a field `id` replaces the value of `Id` (keeping that key).
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&message.text) {
        for (key, value) in &fields {
            if key.to_ascii_lowercase().ends_with("trigger") {
                continue;
            }
            let Some(value) = metadata_value(value) else {
                continue;
            };
            let existing = metadata
                .keys()
                .find(|k| k.eq_ignore_ascii_case(key))
                .cloned();
            metadata.insert(existing.unwrap_or_else(|| key.clone()), value);
        }
    }
    metadata.insert("sys".into(), sys_metadata(function));

    json!({
        "Data": { binding: double_encoded(&message.text) },
        "Metadata": Value::Object(metadata),
    })
}

/// An HTTP request as a caller sends it to the Function App's front end, for
/// [`http_invocation`].
#[derive(Debug, Clone)]
pub struct HttpTriggerRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The public URL, e.g. `https://app.azurewebsites.net/api/indicators?code=...`.
    pub url: String,
    /// Header names as sent; the host forwards each as an array of values.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl HttpTriggerRequest {
    /// A `POST` of `body` with this content type to `https://<app>/api/<route>?code=<key>`.
    pub fn post(route: &str, content_type: &str, body: impl Into<Vec<u8>>) -> HttpTriggerRequest {
        HttpTriggerRequest {
            method: "POST".into(),
            url: format!("https://ti-ingest-test.azurewebsites.net/api/{route}?code=function-key"),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// Whether the host base64-encodes a body of this content type (binary and multipart bodies);
/// every other body is passed as text.
pub fn http_body_is_base64(content_type: &str) -> bool {
    let ct = content_type.trim().to_ascii_lowercase();
    ct.starts_with("application/octet-stream") || ct.starts_with("multipart/")
}

/// The body the host posts for an HTTP-triggered invocation when `enableForwardingHttpRequest`
/// is false: `Data.<binding>` is the request object (`Url`, `Method`, `Query`, `Headers` as
/// arrays, `Params`, `Identities`, `Body` as a string, base64 for binary content types), and
/// the query and headers are also trigger metadata.
pub fn http_invocation(function: &str, binding: &str, request: &HttpTriggerRequest) -> Value {
    let mut headers = Map::new();
    for (k, v) in &request.headers {
        match headers.get_mut(k) {
            Some(Value::Array(values)) => values.push(json!(v)),
            _ => {
                headers.insert(k.clone(), json!([v]));
            }
        }
    }
    let mut query = Map::new();
    if let Some((_, q)) = request.url.split_once('?') {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            query.insert(k.to_string(), json!(v));
        }
    }
    let content_type = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let body = if http_body_is_base64(content_type) {
        STANDARD.encode(&request.body)
    } else {
        String::from_utf8_lossy(&request.body).into_owned()
    };
    json!({
        "Data": { binding: {
            "Url": request.url,
            "Method": request.method,
            "Query": Value::Object(query.clone()),
            "Headers": Value::Object(headers.clone()),
            "Params": {},
            "Identities": [],
            "Body": body,
        }},
        "Metadata": {
            "Query": Value::Object(query),
            "Headers": Value::Object(headers),
            "sys": sys_metadata(function),
        }
    })
}

/// The HTTP response a function set through its HTTP output binding.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutput {
    /// `statusCode` (sent as a string, like the host expects; numbers are accepted too).
    pub status: u16,
    /// `body` (JSON value as given).
    pub body: Value,
    /// `headers`.
    pub headers: Map<String, Value>,
}

/// The body the host posts for a timer-triggered invocation.
pub fn timer_invocation(function: &str, binding: &str, is_past_due: bool) -> Value {
    let now = OffsetDateTime::now_utc();
    json!({
        "Data": { binding: {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": {
                "Last": "0001-01-01T00:00:00",
                "Next": host_date(now + time::Duration::minutes(15)),
                "LastUpdated": host_date(now),
            },
            "IsPastDue": is_past_due,
        }},
        "Metadata": { "sys": sys_metadata(function) },
    })
}

/// An Event Grid `Microsoft.Storage.BlobCreated` event (Event Grid schema) for a blob written
/// through `account_blob_url` (`https://…/devstoreaccount1` or `https://acct.blob.core.windows.net`).
pub fn blob_created_event(
    account_blob_url: &str,
    container: &str,
    blob_name: &str,
    content_length: u64,
) -> Value {
    let account_url = account_blob_url.trim_end_matches('/');
    let account = account_url.rsplit('/').next().unwrap_or("devstoreaccount1");
    let account = account.split('.').next().unwrap_or(account);
    let now = OffsetDateTime::now_utc();
    let request_id = Uuid::new_v4().to_string();
    json!({
        "topic": format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ti-ingest-dev/providers/Microsoft.Storage/storageAccounts/{account}"
        ),
        "subject": format!("/blobServices/default/containers/{container}/blobs/{blob_name}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": Uuid::new_v4().to_string(),
        "data": {
            "api": "PutBlob",
            "clientRequestId": Uuid::new_v4().to_string(),
            "requestId": request_id,
            "eTag": format!("0x8DD{}", &Uuid::new_v4().simple().to_string()[..12].to_uppercase()),
            "contentType": "application/octet-stream",
            "contentLength": content_length,
            "blobType": "BlockBlob",
            "url": blob_url(account_url, container, blob_name),
            "sequencer": format!("{:032X}", now.unix_timestamp_nanos()),
            "storageDiagnostics": { "batchId": Uuid::new_v4().to_string() },
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": now.format(EVENT_TIME).expect("a UTC date always formats"),
    })
}

/// The blob's URL as Event Grid reports it: `/` in the name stays a path separator, other
/// reserved characters are percent-encoded.
fn blob_url(account_url: &str, container: &str, blob_name: &str) -> String {
    match url::Url::parse(account_url) {
        Ok(mut url) if !url.cannot_be_a_base() => {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments
                    .pop_if_empty()
                    .push(container)
                    .extend(blob_name.split('/'));
            }
            url.to_string()
        }
        _ => format!("{account_url}/{container}/{blob_name}"),
    }
}

/// The queue message Event Grid writes for `event`: base64 of its JSON.
pub fn event_grid_message(event: &Value) -> String {
    STANDARD.encode(event.to_string())
}

/// How a queue message's text is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEncoding {
    /// Base64 of the bytes (Event Grid, the Functions SDKs' default).
    Base64,
    /// The text as is (Logic Apps, scripts, `az storage message put`).
    Plain,
}

impl MessageEncoding {
    /// The stored text for `payload`.
    pub fn encode(self, payload: &str) -> String {
        match self {
            MessageEncoding::Base64 => STANDARD.encode(payload),
            MessageEncoding::Plain => payload.to_string(),
        }
    }
}

/// The queue trigger's settings: `extensions.queues` in host.json, with the defaults of Microsoft
/// Learn's reference ("Azure Queue storage trigger and bindings for Azure Functions", section
/// "host.json settings": learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json)
/// for keys the file leaves out. What each setting does, as that page says and
/// docs/HOST-PROTOCOL.md records:
/// - `batchSize` (default 16, at most 32): messages retrieved at once and processed in parallel;
/// - `newBatchThreshold` (default `batchSize / 2` on one core): when the messages being
///   processed get down to this number, the next batch is retrieved, so at most
///   `batchSize + newBatchThreshold` run at once (per function);
/// - `visibilityTimeout` (default 0): the time between retries when processing a message fails;
/// - `maxDequeueCount` (default 5): the number of tries before the message moves to
///   `<queue>-poison`;
/// - `messageEncoding` (`base64`, the default, or `none`): how the stored text is decoded
///   before it becomes `Data.<binding>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// `batchSize`.
    pub batch_size: u32,
    /// `newBatchThreshold`.
    pub new_batch_threshold: u32,
    /// `visibilityTimeout`: the delay before a failed message is tried again.
    pub visibility_timeout: Duration,
    /// `maxDequeueCount`.
    pub max_dequeue_count: u32,
    /// `messageEncoding`: `Base64` decodes the stored text, `Plain` (`none`) passes it as is.
    pub message_encoding: MessageEncoding,
}

impl Default for QueueSettings {
    /// Microsoft Learn's defaults (see [`QueueSettings`]), one core.
    fn default() -> Self {
        QueueSettings {
            batch_size: 16,
            new_batch_threshold: 8,
            visibility_timeout: Duration::ZERO,
            max_dequeue_count: 5,
            message_encoding: MessageEncoding::Base64,
        }
    }
}

impl QueueSettings {
    /// The settings of the repository's `host.json` (the file deployed with the app).
    pub fn from_repo() -> Result<QueueSettings> {
        QueueSettings::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host.json"))
    }

    /// The settings of the host.json at `path`.
    pub fn from_file(path: &Path) -> Result<QueueSettings> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        QueueSettings::from_host_json(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The settings of a host.json text: `extensions.queues`, defaults for what is left out.
    pub fn from_host_json(text: &str) -> Result<QueueSettings> {
        let host: Value = serde_json::from_str(text).context("host.json is not JSON")?;
        let queues = host
            .pointer("/extensions/queues")
            .cloned()
            .unwrap_or(json!({}));
        let number = |key: &str| -> Result<Option<u32>> {
            match queues.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .with_context(|| format!("extensions.queues.{key} is not a count: {v}")),
            }
        };
        let batch_size = number("batchSize")?.unwrap_or(16);
        if !(1..=32).contains(&batch_size) {
            bail!("extensions.queues.batchSize is {batch_size}; the host takes 1 to 32");
        }
        let new_batch_threshold = number("newBatchThreshold")?.unwrap_or(batch_size / 2);
        let visibility_timeout = match queues.get("visibilityTimeout") {
            None => Duration::ZERO,
            Some(v) => v.as_str().and_then(parse_timespan).with_context(|| {
                format!("extensions.queues.visibilityTimeout is not hh:mm:ss: {v}")
            })?,
        };
        let max_dequeue_count = number("maxDequeueCount")?.unwrap_or(5);
        let message_encoding = match queues.get("messageEncoding").and_then(Value::as_str) {
            None | Some("base64") => MessageEncoding::Base64,
            Some("none") => MessageEncoding::Plain,
            Some(other) => bail!("extensions.queues.messageEncoding is {other:?}; base64 or none"),
        };
        Ok(QueueSettings {
            batch_size,
            new_batch_threshold,
            visibility_timeout,
            max_dequeue_count,
            message_encoding,
        })
    }

    /// `Data.<binding>` for a stored message text, or `None` when `messageEncoding: base64` and
    /// the text is no base64 of UTF-8 (the extension cannot decode it and moves it to the
    /// poison queue without an invocation).
    pub fn decode(&self, stored: &str) -> Option<String> {
        match self.message_encoding {
            MessageEncoding::Plain => Some(stored.to_string()),
            MessageEncoding::Base64 => STANDARD
                .decode(stored.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
        }
    }
}

/// A .NET TimeSpan as host.json writes it: `hh:mm:ss`, optionally `d.hh:mm:ss` and `.fff`.
fn parse_timespan(s: &str) -> Option<Duration> {
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let mut parts = rest.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let sec: f64 = sec.parse().ok()?;
    if m >= 60 || !(0.0..60.0).contains(&sec) {
        return None;
    }
    Some(Duration::from_secs((days * 24 + h) * 3600 + m * 60) + Duration::from_secs_f64(sec))
}

/// The handler's answer to one invocation.
#[derive(Debug, Clone)]
pub struct HostResponse {
    /// HTTP status.
    pub status: u16,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl HostResponse {
    /// 2xx: the invocation succeeded.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Logs` lines (the host keeps them only for a 2xx answer). Names match case-insensitively.
    pub fn logs(&self) -> Vec<String> {
        self.member("Logs")
            .and_then(Value::as_array)
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `ReturnValue`, if any.
    pub fn return_value(&self) -> Option<&Value> {
        self.member("ReturnValue")
    }

    /// `Outputs`, if any.
    pub fn outputs(&self) -> Option<&Value> {
        self.member("Outputs")
    }

    /// The HTTP response set on the output binding `name` (`Outputs.<name>`), as the host would
    /// return it to the caller.
    pub fn http_output(&self, name: &str) -> Option<HttpOutput> {
        let out = self
            .outputs()?
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?
            .1
            .as_object()?;
        let field = |n: &str| {
            out.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v)
        };
        let status = match field("statusCode") {
            Some(Value::String(s)) => s.parse().ok()?,
            Some(Value::Number(n)) => u16::try_from(n.as_u64()?).ok()?,
            None => 200,
            _ => return None,
        };
        Some(HttpOutput {
            status,
            body: field("body").cloned().unwrap_or(Value::Null),
            headers: field("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    fn member(&self, name: &str) -> Option<&Value> {
        self.body
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The outcome of delivering one queue message with the host's retry policy.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Invocations made (1..=max dequeue count).
    pub attempts: u32,
    /// Status of the last invocation.
    pub final_status: u16,
    /// The host would have moved the message to `<queue>-poison`.
    pub poisoned: bool,
    /// Every answer, in order.
    pub responses: Vec<HostResponse>,
}

impl Delivery {
    /// The last answer.
    pub fn last(&self) -> &HostResponse {
        self.responses
            .last()
            .expect("a delivery has at least one response")
    }
}

/// Which function a queue feeds (for [`HostDriver::pump_queues`]).
#[derive(Debug, Clone)]
pub struct QueueRoute {
    /// Queue name.
    pub queue: String,
    /// Function name.
    pub function: String,
    /// Binding name.
    pub binding: String,
}

impl QueueRoute {
    /// A route with the ti-ingest binding name `message`.
    pub fn new(queue: impl Into<String>, function: impl Into<String>) -> QueueRoute {
        QueueRoute {
            queue: queue.into(),
            function: function.into(),
            binding: QUEUE_BINDING.to_string(),
        }
    }
}

/// Posts invocations to a custom handler like the Functions host.
#[derive(Debug, Clone)]
pub struct HostDriver {
    base: String,
    client: reqwest::Client,
    /// The queue listener's settings, from the repository's host.json. A test that changes one
    /// says why (usually: a shorter retry delay, where the delay's length is not what it tests).
    pub queues: QueueSettings,
    /// How long a message `pump_queues` dequeues stays invisible while it runs
    /// ([`PROCESSING_LEASE`]): after a handler crash it reappears only then.
    pub processing_lease: Duration,
}

impl HostDriver {
    /// A driver for the handler at `handler_base_url` (`http://127.0.0.1:PORT`).
    pub fn new(handler_base_url: impl Into<String>) -> HostDriver {
        let base = handler_base_url.into().trim_end_matches('/').to_string();
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(format!("Azure-Functions-Host/{HOST_VERSION}"))
            // The host waits functionTimeout + 1 minute; 10 minutes covers the default timeout.
            .timeout(Duration::from_secs(11 * 60))
            .build()
            .expect("a plain reqwest client always builds");
        HostDriver {
            base,
            client,
            queues: QueueSettings::from_repo()
                .expect("the repository's host.json gives the queue settings"),
            processing_lease: PROCESSING_LEASE,
        }
    }

    /// The handler's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Polls `GET /` every 25 ms, like the host, until any HTTP answer arrives.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempt = self
                .client
                .get(format!("{}/", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if attempt.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the handler at {} did not answer GET / within {timeout:?}",
                    self.base
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Posts an invocation body to `/{function}`.
    pub async fn invoke(&self, function: &str, body: &Value) -> Result<HostResponse> {
        let rsp = self
            .client
            .post(format!("{}/{function}", self.base))
            .header("X-Azure-Functions-InvocationId", Uuid::new_v4().to_string())
            .header("X-Azure-Functions-HostVersion", HOST_VERSION)
            .json(body)
            .send()
            .await
            .with_context(|| format!("invoking {function} at {}", self.base))?;
        let status = rsp.status().as_u16();
        let text = rsp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(HostResponse { status, body, text })
    }

    /// One queue-triggered invocation of a fresh message with this stored text.
    pub async fn invoke_queue(
        &self,
        function: &str,
        binding: &str,
        message_text: &str,
        dequeue_count: u32,
    ) -> Result<HostResponse> {
        let message = TriggerMessage::new(message_text);
        self.invoke_queue_message(function, binding, &message, dequeue_count)
            .await
    }

    /// One queue-triggered invocation of `message`.
    pub async fn invoke_queue_message(
        &self,
        function: &str,
        binding: &str,
        message: &TriggerMessage,
        dequeue_count: u32,
    ) -> Result<HostResponse> {
        let body = queue_invocation(function, binding, message, dequeue_count);
        self.invoke(function, &body).await
    }

    /// One HTTP-triggered invocation (the host's envelope; read the caller's response with
    /// [`HostResponse::http_output`]).
    pub async fn invoke_http(
        &self,
        function: &str,
        binding: &str,
        request: &HttpTriggerRequest,
    ) -> Result<HostResponse> {
        self.invoke(function, &http_invocation(function, binding, request))
            .await
    }

    /// One timer-triggered invocation.
    pub async fn invoke_timer(&self, function: &str, binding: &str) -> Result<HostResponse> {
        self.invoke(function, &timer_invocation(function, binding, false))
            .await
    }

    /// Delivers a message with the queue trigger's retries: invoked again (same id, dequeue
    /// count + 1) `queues.visibility_timeout` after an answer that is not 2xx, until
    /// `queues.max_dequeue_count` attempts, after which the host would move it to
    /// `<queue>-poison`. `message_text` is the stored text, decoded as `queues.message_encoding`
    /// says. A transport error (handler down) is an error, and so is a text the encoding cannot
    /// decode (the host would poison it without an invocation).
    pub async fn deliver_with_retries(
        &self,
        function: &str,
        binding: &str,
        message_text: &str,
    ) -> Result<Delivery> {
        let Some(data) = self.queues.decode(message_text) else {
            bail!("the message is not base64 (host.json messageEncoding is base64): the host would move it to the poison queue");
        };
        let mut message = TriggerMessage::new(data);
        let mut responses = Vec::new();
        for dequeue_count in 1..=self.queues.max_dequeue_count.max(1) {
            if dequeue_count > 1 {
                tokio::time::sleep(self.queues.visibility_timeout).await;
                message = message.redelivered();
            }
            let rsp = self
                .invoke_queue_message(function, binding, &message, dequeue_count)
                .await?;
            let ok = rsp.is_success();
            responses.push(rsp);
            if ok {
                break;
            }
        }
        let last = responses.last().expect("at least one attempt");
        Ok(Delivery {
            attempts: u32::try_from(responses.len()).unwrap_or(u32::MAX),
            final_status: last.status,
            poisoned: !last.is_success(),
            responses,
        })
    }

    /// Delivers the Event Grid BlobCreated message for a blob to `IngestBlobEvent`.
    pub async fn deliver_blob_created(
        &self,
        account_blob_url: &str,
        container: &str,
        blob_name: &str,
        content_length: u64,
    ) -> Result<Delivery> {
        let event = blob_created_event(account_blob_url, container, blob_name, content_length);
        self.deliver_with_retries(
            INGEST_BLOB_EVENT,
            QUEUE_BINDING,
            &event_grid_message(&event),
        )
        .await
    }

    /// Drains real queues the way the host's queue listener does with `queues`
    /// (docs/HOST-PROTOCOL.md): per route (function), dequeue a batch of `batch_size` messages
    /// (invisible for `processing_lease`) and invoke them all at once; whenever the messages in
    /// flight get down to `new_batch_threshold`, dequeue the next batch, so at most
    /// `batch_size + new_batch_threshold` run at once. On 2xx the message is deleted; otherwise
    /// it is made visible again after `visibility_timeout`, or moved to `<queue>-poison` once its
    /// dequeue count reached `max_dequeue_count` (and so is a message `messageEncoding` cannot
    /// decode, without an invocation). Messages the handler enqueues meanwhile (work items) are
    /// picked up too, and a failed message is waited for until it has come back. Returns one
    /// [`Delivery`] per message, in the order first dequeued; gives up after `timeout`.
    pub async fn pump_queues(
        &self,
        storage: &Storage,
        routes: &[QueueRoute],
        timeout: Duration,
    ) -> Result<Vec<(String, Delivery)>> {
        let deadline = Instant::now() + timeout;
        let lease = i32::try_from(self.processing_lease.as_secs().max(1)).unwrap_or(i32::MAX);
        let batch = u8::try_from(self.queues.batch_size.clamp(1, 32)).unwrap_or(32);
        let threshold = self.queues.new_batch_threshold as usize;
        let mut order: Vec<String> = Vec::new();
        let mut deliveries: HashMap<String, Delivery> = HashMap::new();
        // Failed messages not seen again yet, and when they become visible.
        let mut coming_back: HashMap<String, Instant> = HashMap::new();
        let mut in_flight: Vec<usize> = vec![0; routes.len()];
        let mut running: tokio::task::JoinSet<(usize, Result<Done>)> = tokio::task::JoinSet::new();
        loop {
            let mut received_any = false;
            for (r, route) in routes.iter().enumerate() {
                if in_flight[r] > threshold {
                    continue;
                }
                let received = storage.receive_messages(&route.queue, batch, lease).await?;
                for message in received {
                    received_any = true;
                    let key = format!("{}/{}", route.queue, message.id);
                    coming_back.remove(&key);
                    if !deliveries.contains_key(&key) {
                        order.push(key.clone());
                        deliveries.insert(
                            key.clone(),
                            Delivery {
                                attempts: 0,
                                final_status: 0,
                                poisoned: false,
                                responses: Vec::new(),
                            },
                        );
                    }
                    in_flight[r] += 1;
                    let (driver, storage, route) = (self.clone(), storage.clone(), route.clone());
                    running.spawn(async move {
                        (r, driver.run_message(&storage, &route, key, message).await)
                    });
                }
            }
            if running.is_empty() && !received_any {
                match coming_back.values().min() {
                    None => break,
                    Some(&at) => {
                        // Nothing to run until a failed message is visible again.
                        if Instant::now() > deadline {
                            bail!("queues still not drained after {timeout:?}");
                        }
                        let wait = at.saturating_duration_since(Instant::now());
                        tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
                        continue;
                    }
                }
            }
            if Instant::now() > deadline {
                running.abort_all();
                bail!("queues still not drained after {timeout:?}");
            }
            // Wait for one invocation to finish (a slot may open) before looking again, unless
            // nothing runs (then the queues are looked at again at once: new work items).
            let Some(joined) = running.join_next().await else {
                continue;
            };
            let (r, done) = joined.context("an invocation task failed")?;
            in_flight[r] -= 1;
            let done = match done {
                Ok(done) => done,
                Err(e) => {
                    running.abort_all();
                    return Err(e);
                }
            };
            let entry = deliveries
                .get_mut(&done.key)
                .expect("every message run was registered");
            entry.attempts += 1;
            entry.final_status = done.response.status;
            entry.poisoned = done.poisoned;
            entry.responses.push(done.response);
            if let Some(at) = done.released_until {
                coming_back.insert(done.key, at);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|key| deliveries.remove(&key).map(|d| (key, d)))
            .collect())
    }

    /// One dequeued message: invoke, then delete, release or poison it as the host does.
    async fn run_message(
        &self,
        storage: &Storage,
        route: &QueueRoute,
        key: String,
        message: ReceivedMessage,
    ) -> Result<Done> {
        let poison = format!("{}-poison", route.queue);
        let Some(data) = self.queues.decode(&message.text) else {
            storage.put_message(&poison, &message.text).await?;
            storage.delete_message(&route.queue, &message).await?;
            return Ok(Done {
                key,
                response: HostResponse {
                    status: 0,
                    body: Value::Null,
                    text: "not base64: moved to the poison queue without an invocation".into(),
                },
                released_until: None,
                poisoned: true,
            });
        };
        let trigger = TriggerMessage {
            text: data,
            ..TriggerMessage::from_received(&message)
        };
        // The host renews the lease while the invocation runs, so a message reappears
        // `processing_lease` after a crash, never while its invocation is still running.
        let mut message = message;
        let lease = self.processing_lease.max(Duration::from_secs(1));
        let lease_secs = i32::try_from(lease.as_secs()).unwrap_or(i32::MAX);
        let invocation = self.invoke_queue_message(
            &route.function,
            &route.binding,
            &trigger,
            message.dequeue_count,
        );
        tokio::pin!(invocation);
        let response = loop {
            tokio::select! {
                response = &mut invocation => break response?,
                () = tokio::time::sleep(lease / 2) => {
                    message.pop_receipt =
                        storage.renew_message(&route.queue, &message, lease_secs).await?;
                }
            }
        };
        let (mut released_until, mut poisoned) = (None, false);
        if response.is_success() {
            storage.delete_message(&route.queue, &message).await?;
        } else if message.dequeue_count >= self.queues.max_dequeue_count {
            storage.put_message(&poison, &message.text).await?;
            storage.delete_message(&route.queue, &message).await?;
            poisoned = true;
        } else {
            let delay = self.queues.visibility_timeout;
            let secs = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
            storage
                .release_message(&route.queue, &message, secs)
                .await?;
            released_until = Some(Instant::now() + Duration::from_secs(secs.unsigned_abs().into()));
        }
        Ok(Done {
            key,
            response,
            released_until,
            poisoned,
        })
    }
}

/// One finished run of a dequeued message, for [`HostDriver::pump_queues`].
struct Done {
    key: String,
    response: HostResponse,
    /// Released for a retry, visible again at this instant.
    released_until: Option<Instant>,
    poisoned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_envelope_has_the_host_shape() {
        let message = TriggerMessage::new("hello!!");
        let body = queue_invocation("IngestMessage", "message", &message, 1);
        assert_eq!(body["Data"]["message"], json!("\"hello!!\""));
        let md = &body["Metadata"];
        assert_eq!(md["DequeueCount"], json!("1"));
        assert_eq!(md["Id"], json!(format!("\"{}\"", message.id)));
        assert_eq!(
            md["PopReceipt"],
            json!(format!("\"{}\"", message.pop_receipt))
        );
        for key in ["InsertionTime", "ExpirationTime", "NextVisibleTime"] {
            let t = md[key].as_str().unwrap();
            assert_eq!(t.len(), "2025-02-18T03:06:19+00:00".len(), "{key}: {t}");
            assert!(t.ends_with("+00:00"), "{key}: {t}");
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
        }
        assert_eq!(md["sys"]["MethodName"], json!("IngestMessage"));
        let now = md["sys"]["UtcNow"].as_str().unwrap();
        assert_eq!(now.len(), "2025-02-18T03:06:20.7562691Z".len(), "{now}");
        Uuid::parse_str(md["sys"]["RandGuid"].as_str().unwrap()).unwrap();
        // Nothing else: a non-JSON message adds no fields.
        assert_eq!(md.as_object().unwrap().len(), 7);
    }

    #[test]
    fn json_message_fields_are_copied_into_metadata() {
        let text = r#"{"container":"c","blob":"a/b.json","size":12,"ok":true,"none":null,"nested":{"x":1},"id":"mine","QueueTrigger":"x"}"#;
        let message = TriggerMessage::new(text);
        let body = queue_invocation("IngestMessage", "message", &message, 3);
        let md = body["Metadata"].as_object().unwrap();
        assert_eq!(
            body["Data"]["message"],
            json!(Value::String(text.to_string()).to_string())
        );
        assert_eq!(md["DequeueCount"], json!("3"));
        assert_eq!(md["container"], json!("\"c\""));
        assert_eq!(md["blob"], json!("\"a/b.json\""));
        assert_eq!(md["size"], json!("12"));
        assert_eq!(md["ok"], json!("true"));
        assert_eq!(md["nested"], json!({"x": 1}));
        assert!(!md.contains_key("none"));
        assert!(!md.contains_key("QueueTrigger"));
        // `id` overwrote the message id under the host's key.
        assert_eq!(md["Id"], json!("\"mine\""));
        assert!(!md.contains_key("id"));
    }

    #[test]
    fn event_grid_message_is_base64_of_the_event() {
        let event = blob_created_event(
            "https://127.0.0.1:10000/devstoreaccount1/",
            "indicator-inbox",
            "feeds/a.json",
            42,
        );
        assert_eq!(event["eventType"], "Microsoft.Storage.BlobCreated");
        assert_eq!(
            event["subject"],
            "/blobServices/default/containers/indicator-inbox/blobs/feeds/a.json"
        );
        assert_eq!(
            event["data"]["url"],
            "https://127.0.0.1:10000/devstoreaccount1/indicator-inbox/feeds/a.json"
        );
        assert_eq!(event["data"]["contentLength"], 42);
        let spaced = blob_created_event("https://a.blob.core.windows.net", "c", "x y/z.csv", 1);
        assert_eq!(
            spaced["data"]["url"],
            "https://a.blob.core.windows.net/c/x%20y/z.csv"
        );
        assert_eq!(event["data"]["blobType"], "BlockBlob");
        assert!(event["topic"]
            .as_str()
            .unwrap()
            .ends_with("/storageAccounts/devstoreaccount1"));
        let text = event_grid_message(&event);
        let decoded: Value = serde_json::from_slice(&STANDARD.decode(&text).unwrap()).unwrap();
        assert_eq!(decoded, event);

        // In the envelope the base64 text is double-encoded like any string, and since it is not
        // JSON no fields are copied into Metadata.
        let body = queue_invocation(
            INGEST_BLOB_EVENT,
            QUEUE_BINDING,
            &TriggerMessage::new(&text),
            1,
        );
        assert_eq!(body["Data"]["message"], json!(format!("\"{text}\"")));
        assert!(body["Metadata"].get("subject").is_none());
    }

    #[test]
    fn account_name_from_a_production_url() {
        let event = blob_created_event("https://acct.blob.core.windows.net", "c", "b", 1);
        assert!(event["topic"]
            .as_str()
            .unwrap()
            .ends_with("/storageAccounts/acct"));
        assert_eq!(
            event["data"]["url"],
            "https://acct.blob.core.windows.net/c/b"
        );
    }

    #[test]
    fn timer_envelope() {
        let body = timer_invocation("Sweep", "timer", false);
        assert_eq!(body["Data"]["timer"]["IsPastDue"], json!(false));
        assert_eq!(body["Metadata"]["sys"]["MethodName"], "Sweep");
    }

    #[test]
    fn response_members_match_case_insensitively() {
        let rsp = HostResponse {
            status: 200,
            body: json!({"logs": ["a", 1], "returnValue": {"x": 1}}),
            text: String::new(),
        };
        assert_eq!(rsp.logs(), vec!["a".to_string(), "1".to_string()]);
        assert_eq!(rsp.return_value(), Some(&json!({"x": 1})));
        assert!(rsp.outputs().is_none());
    }

    #[test]
    fn http_envelope_has_the_host_shape() {
        let req = HttpTriggerRequest::post("indicators", "application/json", "[1]");
        let body = http_invocation("Ingest", "req", &req);
        let r = &body["Data"]["req"];
        assert_eq!(r["Method"], "POST");
        assert_eq!(r["Body"], "[1]");
        assert_eq!(r["Headers"]["Content-Type"], json!(["application/json"]));
        assert_eq!(r["Query"]["code"], "function-key");
        assert_eq!(body["Metadata"]["sys"]["MethodName"], "Ingest");
        let bin =
            HttpTriggerRequest::post("indicators", "application/octet-stream", vec![0u8, 255]);
        let body = http_invocation("Ingest", "req", &bin);
        assert_eq!(body["Data"]["req"]["Body"], STANDARD.encode([0u8, 255]));

        let rsp = HostResponse {
            status: 200,
            body: json!({"Outputs": {"res": {"statusCode": "413", "body": {"x": 1}, "headers": {"A": "b"}}}}),
            text: String::new(),
        };
        let out = rsp.http_output("res").unwrap();
        assert_eq!(out.status, 413);
        assert_eq!(out.body, json!({"x": 1}));
        assert_eq!(out.headers["A"], "b");
        assert!(rsp.http_output("other").is_none());
    }

    #[test]
    fn plain_and_base64_encodings() {
        assert_eq!(MessageEncoding::Plain.encode("{}"), "{}");
        assert_eq!(MessageEncoding::Base64.encode("{}"), "e30=");
    }
}
