//! The Functions custom-handler protocol as the host really speaks it (docs/HOST-PROTOCOL.md):
//! `{"Data":{..},"Metadata":{..}}` in, `{"Outputs":{},"Logs":[..],"ReturnValue":..}` out.
//!
//! Strings arrive JSON-encoded twice, numbers as strings, objects as real JSON; queue messages may
//! be base64 (Event Grid writes them so) or plain JSON (most other producers).

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

/// A decoded queue-trigger invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInvocation {
    /// The message text after undoing the host's double encoding and any base64.
    pub message: String,
    pub dequeue_count: u32,
    /// The queue message's id (a GUID), when the host's Metadata still holds it.
    pub message_id: Option<String>,
}

/// Why an envelope could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(pub String);

fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Undoes the host's string encoding: `"\"hello\""` → `hello`. A value that is not a JSON string
/// literal is taken as is; objects and arrays are turned back into their JSON text.
pub fn host_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('"') {
                if let Ok(inner) = serde_json::from_str::<String>(s) {
                    return Some(inner);
                }
            }
            Some(s.clone())
        }
        Value::Object(_) | Value::Array(_) => Some(v.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
    }
}

/// Numbers arrive as strings (`"DequeueCount":"1"`); accept real numbers too.
fn host_number(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(_) => host_string(v)?.trim().parse().ok(),
        _ => None,
    }
}

/// Decodes a queue-trigger invocation body whose trigger binding is `binding`.
pub fn decode_queue(body: &[u8], binding: &str) -> Result<QueueInvocation, EnvelopeError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError(format!("the invocation body is not JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| EnvelopeError("the invocation body is not a JSON object".into()))?;
    let data = member(root, "Data")
        .and_then(Value::as_object)
        .ok_or_else(|| EnvelopeError("the invocation has no \"Data\" object".into()))?;
    let raw = member(data, binding)
        .ok_or_else(|| EnvelopeError(format!("the invocation has no \"Data.{binding}\" value")))?;
    let text =
        host_string(raw).ok_or_else(|| EnvelopeError(format!("\"Data.{binding}\" is null")))?;
    let empty = Map::new();
    let metadata = member(root, "Metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    Ok(QueueInvocation {
        message: decode_message_text(&text),
        dequeue_count: member(metadata, "DequeueCount")
            .and_then(host_number)
            .unwrap_or(1),
        // Queue message ids are GUIDs. The host also copies a JSON message's own top-level
        // fields into Metadata, so a STIX object's `id` can stand where the message id was: such
        // a value is not the message's id (two messages with one indicator would share it).
        message_id: member(metadata, "Id")
            .and_then(host_string)
            .filter(|id| uuid::Uuid::try_parse(id).is_ok()),
    })
}

/// A queue message is either JSON as is, or base64 of JSON (Event Grid, `messageEncoding: base64`
/// producers). Anything else is returned unchanged and fails later with a clear message.
pub fn decode_message_text(text: &str) -> String {
    let t = text.trim();
    if t.starts_with('{') || t.starts_with('[') {
        return text.to_string();
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        if let Ok(s) = String::from_utf8(bytes) {
            let s2 = s.trim_start();
            if s2.starts_with('{') || s2.starts_with('[') {
                return s;
            }
        }
    }
    text.to_string()
}

/// The handler's answer to the host.
#[derive(Debug, Default, Serialize)]
pub struct Answer {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_captured_host_sample_decodes() {
        let body = json!({
            "Data": { "queue": "\"hello!!\"" },
            "Metadata": {
                "DequeueCount": "1",
                "Id": "\"52d53c5f-e212-487e-998b-abbe3b9d51e4\"",
                "PopReceipt": "\"MThGZWIyMDI1MDM6MDY6MjA3NjM1\"",
                "sys": { "MethodName": "queue", "UtcNow": "2025-02-18T03:06:20.7562691Z", "RandGuid": "e59556b5-0000-0000-0000-000000000000" }
            }
        });
        let inv = decode_queue(body.to_string().as_bytes(), "queue").unwrap();
        assert_eq!(inv.message, "hello!!");
        assert_eq!(inv.dequeue_count, 1);
        assert_eq!(
            inv.message_id.as_deref(),
            Some("52d53c5f-e212-487e-998b-abbe3b9d51e4")
        );
    }

    #[test]
    fn dequeue_count_as_number_or_string_and_base64_or_plain_messages() {
        let msg = r#"{"type":"indicator"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(msg);
        for (data, count) in [
            (json!(serde_json::to_string(msg).unwrap()), json!("3")),
            (json!(serde_json::to_string(&b64).unwrap()), json!(3)),
            (json!({"type": "indicator"}), json!("3")),
        ] {
            let body = json!({"Data": {"message": data}, "Metadata": {"DequeueCount": count}});
            let inv = decode_queue(body.to_string().as_bytes(), "message").unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&inv.message).unwrap(),
                json!({"type": "indicator"})
            );
            assert_eq!(inv.dequeue_count, 3);
        }
    }

    #[test]
    fn a_message_id_overwritten_by_the_message_s_own_id_field_is_not_taken() {
        // The host copies the JSON message's top-level fields into Metadata; `id` lands on `Id`.
        let body = json!({
            "Data": { "queue": {"type": "indicator", "id": "indicator--6f1b5b7e-0000-4000-8000-000000000001"} },
            "Metadata": {
                "DequeueCount": "1",
                "Id": "\"indicator--6f1b5b7e-0000-4000-8000-000000000001\"",
            }
        });
        let inv = decode_queue(body.to_string().as_bytes(), "queue").unwrap();
        assert_eq!(inv.message_id, None);
    }

    #[test]
    fn malformed_envelopes_are_errors_not_panics() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"Data": 5}"#,
            br#"{"Data": {"other": "\"x\""}}"#,
            br#"{"Data": {"message": null}}"#,
        ] {
            assert!(
                decode_queue(body, "message").is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
