//! Event Grid `Microsoft.Storage.BlobCreated` events and blob references in messages, checked so
//! that they can only name blobs of our own storage account in an allowed container (no SSRF).

use serde_json::Value;
use url::Url;

/// A blob the app may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub container: String,
    /// The blob name, percent-decoded.
    pub name: String,
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    Ingest(BlobRef),
    /// Not a BlobCreated event (e.g. a deletion): nothing to do.
    Ignore(String),
}

/// Parses an Event Grid event (or a one-element array of them, as some producers send).
pub fn parse_blob_event(
    text: &str,
    account: &Url,
    allowed_containers: &[&str],
) -> Result<EventAction, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("the message is not a JSON Event Grid event: {e}"))?;
    let event = match &v {
        Value::Array(a) if a.len() == 1 => &a[0],
        Value::Array(a) => {
            return Err(format!(
                "the message holds {} events; Event Grid delivers one event per queue message",
                a.len()
            ))
        }
        other => other,
    };
    let event_type = event
        .get("eventType")
        .or_else(|| event.get("type"))
        .and_then(Value::as_str)
        .ok_or("the event has no eventType")?;
    if event_type != "Microsoft.Storage.BlobCreated" {
        return Ok(EventAction::Ignore(format!(
            "event type {event_type} needs no ingestion"
        )));
    }
    let url = event
        .get("data")
        .and_then(|d| d.get("url"))
        .and_then(Value::as_str)
        .ok_or("the BlobCreated event has no data.url")?;
    resolve_blob_url(url, account, allowed_containers).map(EventAction::Ingest)
}

/// Resolves a blob URL to a container and name, only if it lies inside our own account
/// (same scheme, host, port and account path) and in an allowed container.
pub fn resolve_blob_url(
    url: &str,
    account: &Url,
    allowed_containers: &[&str],
) -> Result<BlobRef, String> {
    let u = Url::parse(url).map_err(|e| format!("the blob URL {url:?} is not a URL: {e}"))?;
    let same_origin = u.scheme() == account.scheme()
        && u.host_str().map(str::to_ascii_lowercase)
            == account.host_str().map(str::to_ascii_lowercase)
        && u.port_or_known_default() == account.port_or_known_default();
    if !same_origin || u.query().is_some() || u.username() != "" || u.password().is_some() {
        return Err(format!(
            "the blob URL {url:?} is not in this app's storage account ({account})"
        ));
    }
    let prefix = account.path().trim_end_matches('/');
    let path = u.path();
    let rest = path
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| {
            format!("the blob URL {url:?} is not in this app's storage account ({account})")
        })?;
    let (container, name) = rest
        .split_once('/')
        .ok_or_else(|| format!("the blob URL {url:?} names no blob"))?;
    blob_ref(
        &percent_decode(container)?,
        &percent_decode(name)?,
        allowed_containers,
    )
}

/// Checks a container/blob pair given directly.
pub fn blob_ref(
    container: &str,
    name: &str,
    allowed_containers: &[&str],
) -> Result<BlobRef, String> {
    if !allowed_containers.contains(&container) {
        return Err(format!(
            "container {container:?} is not one this app reads from (allowed: {})",
            allowed_containers.join(", ")
        ));
    }
    if name.is_empty() || name.len() > 1024 {
        return Err("the blob name must have 1 to 1024 characters".into());
    }
    if name.split('/').any(|seg| seg == ".." || seg == ".")
        || name.contains('\\')
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "the blob name {name:?} contains a '..', '.', '\\' or control character segment"
        ));
    }
    Ok(BlobRef {
        container: container.to_string(),
        name: name.to_string(),
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> Url {
        Url::parse("https://127.0.0.1:10000/devstoreaccount1").unwrap()
    }

    fn event(url: &str) -> String {
        json!({
            "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
            "subject": "/blobServices/default/containers/indicator-inbox/blobs/feeds/a.json",
            "eventType": "Microsoft.Storage.BlobCreated",
            "id": "1", "eventTime": "2026-11-24T10:00:00Z",
            "data": {"api": "PutBlob", "url": url, "contentLength": 10, "blobType": "BlockBlob"},
            "dataVersion": "", "metadataVersion": "1"
        })
        .to_string()
    }

    #[test]
    fn a_blob_created_event_in_our_inbox_resolves() {
        let got = parse_blob_event(
            &event("https://127.0.0.1:10000/devstoreaccount1/indicator-inbox/feeds/my%20file.json"),
            &account(),
            &["indicator-inbox"],
        )
        .unwrap();
        assert_eq!(
            got,
            EventAction::Ingest(BlobRef {
                container: "indicator-inbox".into(),
                name: "feeds/my file.json".into()
            })
        );
    }

    #[test]
    fn foreign_or_tricky_urls_are_refused() {
        for url in [
            "https://evil.example.com/devstoreaccount1/indicator-inbox/a.json",
            "https://127.0.0.1:10001/devstoreaccount1/indicator-inbox/a.json",
            "http://127.0.0.1:10000/devstoreaccount1/indicator-inbox/a.json",
            "https://127.0.0.1:10000/otheraccount/indicator-inbox/a.json",
            "https://127.0.0.1:10000/devstoreaccount1/indicator-reports/a.json",
            "https://127.0.0.1:10000/devstoreaccount1/indicator-inbox/a%2F..%2Fb.json",
            "https://127.0.0.1:10000/devstoreaccount1/indicator-inbox/a.json?sig=x",
            "https://user@127.0.0.1:10000/devstoreaccount1/indicator-inbox/a.json",
            "https://127.0.0.1:10000/devstoreaccount1/indicator-inbox",
        ] {
            assert!(
                parse_blob_event(&event(url), &account(), &["indicator-inbox"]).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn other_event_types_are_ignored_and_garbage_is_an_error() {
        let deleted = json!({"eventType": "Microsoft.Storage.BlobDeleted", "data": {}}).to_string();
        assert!(matches!(
            parse_blob_event(&deleted, &account(), &["indicator-inbox"]),
            Ok(EventAction::Ignore(_))
        ));
        assert!(parse_blob_event("nope", &account(), &["indicator-inbox"]).is_err());
        assert!(parse_blob_event("{}", &account(), &["indicator-inbox"]).is_err());
    }
}
