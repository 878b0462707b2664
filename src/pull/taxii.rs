//! A TAXII 2.1 client for one collection: `GET {api_root}collections/{id}/objects/` with
//! `added_after` (the bookmark), `limit` and the feed's `match[...]` filters, following
//! `more`/`next` (or, for servers without `next`, `added_after` the page's
//! `X-TAXII-Date-Added-Last`).
//!
//! The pages' objects are handed to the pipeline as records ([`crate::pipeline::run_records`]),
//! each object's JSON text as the server sent it (kept with `serde_json`'s `RawValue`, never
//! re-serialised or framed again), fetched lazily: the next page is requested only when the
//! pipeline has room for it, so memory holds about one page at a time (pages are bounded in
//! bytes) and the whole pull is one run with one report. A record's index is its 0-based
//! position in the pull and its line that position plus one (the line it would have in a JSON
//! array of the pull's objects, one per line). A failure after the first page ends the records
//! there and is recorded in [`Progress`], so the records already read are still uploaded and
//! reported, and the caller knows not to advance the bookmark. The feed's defaults are filled in
//! by the pipeline, once each object is decoded ([`fill`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::Stream;
use reqwest::header::{HeaderMap, ACCEPT};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use ti_core::convert::stix_timestamp;
use ti_core::frame::RawRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::config::{FeedDefaults, TaxiiFeed};
use super::FetchError;
use crate::pipeline::Fill;

/// The TAXII 2.1 media type, asked for in `Accept`.
pub const TAXII_21: &str = "application/taxii+json;version=2.1";

/// Bytes one envelope may have; a server sending more is misbehaving (pages are bounded by
/// `limit`, and TAXII servers cap their own pages too).
pub const MAX_PAGE_BYTES: usize = 64 << 20;

/// What a pull got through, shared between the page stream and the caller.
#[derive(Debug, Default)]
pub struct Progress {
    pub pages: u64,
    pub objects: u64,
    /// `X-TAXII-Date-Added-Last` of the last page read; the bookmark once everything read is
    /// uploaded or reported.
    pub last_added: Option<String>,
    /// Why the pull stopped early, if it did.
    pub error: Option<FetchError>,
    /// Stopped at `maxObjectsPerRun` or the soft deadline with more to fetch.
    pub truncated: bool,
}

/// One page pull's parameters.
#[derive(Debug, Clone)]
pub struct TaxiiPull {
    pub http: reqwest::Client,
    pub feed: TaxiiFeed,
    /// Authentication headers (already resolved).
    pub auth: HeaderMap,
    /// Where this run starts: the bookmark, else the feed's `addedAfter`.
    pub added_after: Option<String>,
    /// No new page is requested after this.
    pub soft_deadline: Option<Instant>,
}

/// One parsed envelope.
struct Page {
    /// Each object's JSON text, as the server sent it.
    objects: Vec<String>,
    more: bool,
    next: Option<String>,
    last_added: Option<String>,
}

/// Where the next request goes.
enum Cursor {
    Start,
    Next(String),
    AddedAfter(String),
    Done,
}

impl TaxiiPull {
    /// The pages' objects as records, a page at a time, and the progress they record.
    pub fn records(
        self,
    ) -> (
        impl Stream<Item = Vec<RawRecord>> + Unpin + Send,
        Arc<Mutex<Progress>>,
    ) {
        let progress = Arc::new(Mutex::new(Progress::default()));
        let shared = progress.clone();
        let stream = futures::stream::unfold((self, Cursor::Start), move |(pull, cursor)| {
            let progress = shared.clone();
            async move {
                if matches!(cursor, Cursor::Done) {
                    return None;
                }
                let (objects_so_far, stop_early) = {
                    let p = progress.lock().expect("progress lock");
                    let out_of_time = pull.soft_deadline.is_some_and(|d| Instant::now() >= d);
                    (
                        p.objects,
                        p.pages > 0 && (p.objects >= pull.feed.max_objects_per_run || out_of_time),
                    )
                };
                if stop_early {
                    progress.lock().expect("progress lock").truncated = true;
                    return None;
                }
                let page = match pull.fetch(&cursor).await {
                    Err(e) => {
                        progress.lock().expect("progress lock").error = Some(e);
                        return None;
                    }
                    Ok(page) => page,
                };
                let n = page.objects.len() as u64;
                let records: Vec<RawRecord> = page
                    .objects
                    .into_iter()
                    .zip(objects_so_far..)
                    .map(|(text, index)| RawRecord {
                        index,
                        line: index + 1,
                        text,
                    })
                    .collect();
                let next = if !page.more || n == 0 {
                    Cursor::Done
                } else if let Some(next) = page.next {
                    Cursor::Next(next)
                } else if let Some(last) = page.last_added.clone() {
                    Cursor::AddedAfter(last)
                } else {
                    progress.lock().expect("progress lock").error = Some(FetchError::Invalid(
                        "the server says there is more but gives neither `next` nor X-TAXII-Date-Added-Last".into(),
                    ));
                    Cursor::Done
                };
                {
                    let mut p = progress.lock().expect("progress lock");
                    p.pages += 1;
                    p.objects += n;
                    if page.last_added.is_some() {
                        p.last_added = page.last_added;
                    }
                }
                Some((records, (pull, next)))
            }
        });
        (Box::pin(stream), progress)
    }

    async fn fetch(&self, cursor: &Cursor) -> Result<Page, FetchError> {
        let mut url = self
            .feed
            .objects_url()
            .map_err(|e| FetchError::Invalid(format!("{e:#}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &self.feed.page_size.to_string());
            for (k, v) in &self.feed.filters {
                q.append_pair(k, v);
            }
            match cursor {
                Cursor::Start => {
                    if let Some(a) = &self.added_after {
                        q.append_pair("added_after", a);
                    }
                }
                Cursor::Next(next) => {
                    // TAXII 2.1 servers need the same filters with `next`; `added_after` is
                    // one of them.
                    if let Some(a) = &self.added_after {
                        q.append_pair("added_after", a);
                    }
                    q.append_pair("next", next);
                }
                Cursor::AddedAfter(a) => {
                    q.append_pair("added_after", a);
                }
                Cursor::Done => unreachable!("no request after the last page"),
            }
        }
        let response = self
            .http
            .get(url.clone())
            .header(ACCEPT, TAXII_21)
            .headers(self.auth.clone())
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                body: super::body_excerpt(response).await,
            });
        }
        let last_added = response
            .headers()
            .get("x-taxii-date-added-last")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = super::read_bounded(response, MAX_PAGE_BYTES).await?;
        let page = parse_envelope(&body)?;
        Ok(Page {
            last_added: last_added.filter(|_| !page.objects.is_empty()),
            ..page
        })
    }
}

/// Reads a TAXII envelope (`{"more": .., "next": .., "objects": [..]}`; `{}` when empty),
/// keeping each object's text as sent.
fn parse_envelope(body: &[u8]) -> Result<Page, FetchError> {
    let env: HashMap<String, &RawValue> = serde_json::from_slice(body).map_err(|e| {
        FetchError::Invalid(if e.is_data() {
            "the server's answer is not a TAXII envelope (not a JSON object)".to_string()
        } else {
            format!("the server's answer is not a TAXII envelope (not JSON: {e})")
        })
    })?;
    let member = |key: &str| env.get(key).map(|raw| raw.get());
    let objects = match member("objects") {
        None => Vec::new(),
        Some(raw) => match serde_json::from_str::<Option<Vec<&RawValue>>>(raw) {
            Ok(objects) => objects
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.get().to_string())
                .collect(),
            Err(_) => {
                return Err(FetchError::Invalid(
                    "the envelope's `objects` is not an array".into(),
                ))
            }
        },
    };
    let more =
        member("more").is_some_and(|raw| serde_json::from_str::<bool>(raw).ok() == Some(true));
    let next = member("next").and_then(|raw| serde_json::from_str::<String>(raw).ok());
    Ok(Page {
        objects,
        more,
        next,
        last_added: None,
    })
}

/// The feed's defaults as the pipeline's [`Fill`]: [`apply_defaults`] on every decoded object
/// (the ingestion time taken once, now).
pub fn fill(defaults: FeedDefaults) -> Fill {
    let now = OffsetDateTime::now_utc();
    Fill(Arc::new(move |o: &mut Map<String, Value>| {
        apply_defaults(o, &defaults, now)
    }))
}

/// Types that take `confidence`, `labels` and markings (SDOs and SROs have `created`).
fn is_domain_object(o: &Map<String, Value>) -> bool {
    o.contains_key("created") && o.get("type").and_then(Value::as_str) != Some("marking-definition")
}

/// The feed's own defaults, for what a STIX object leaves out: confidence, TLP marking,
/// `valid_until` (indicators). The feed's labels are not added here: the pipeline adds them to
/// every valid object, for every kind of feed (`RunContext::labels`).
pub fn apply_defaults(o: &mut Map<String, Value>, d: &FeedDefaults, now: OffsetDateTime) {
    if !is_domain_object(o) {
        return;
    }
    if let Some(c) = d.confidence {
        o.entry("confidence").or_insert_with(|| Value::from(c));
    }
    if let Some(tlp) = d.tlp {
        let has_marking = o
            .get("object_marking_refs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !has_marking {
            o.insert(
                "object_marking_refs".into(),
                Value::Array(vec![tlp.marking_ref().into()]),
            );
        }
    }
    if let Some(days) = d.valid_days.filter(|d| *d > 0) {
        let is_indicator = o.get("type").and_then(Value::as_str) == Some("indicator");
        if is_indicator && !o.contains_key("valid_until") {
            // Like the pipeline's default: from the later of `valid_from` and now. An
            // unparsable `valid_from` is left for validation to report.
            let from = o
                .get("valid_from")
                .and_then(Value::as_str)
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
            if let Some(from) = from {
                let until = from.max(now) + time::Duration::days(i64::from(days));
                o.insert("valid_until".into(), stix_timestamp(until).into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ti_core::convert::Tlp;

    #[test]
    fn envelopes_parse_including_the_empty_one() {
        let p =
            parse_envelope(br#"{"more": true, "next": "abc", "objects": [{"id": "x"}]}"#).unwrap();
        assert_eq!(
            (p.objects.len(), p.more, p.next.as_deref()),
            (1, true, Some("abc"))
        );
        let p = parse_envelope(b"{}").unwrap();
        assert!(p.objects.is_empty() && !p.more);
        let p = parse_envelope(br#"{"objects": null, "more": "yes", "next": 5}"#).unwrap();
        assert!(p.objects.is_empty() && !p.more && p.next.is_none());
        // Each object's text as sent: spacing, key order, numbers, escapes.
        let body = "{\"objects\": [ {\"type\" : \"indicator\",\n  \"confidence\": 7.50, \"name\": \"a\\u00e9\"} ,5,\"s\"]}";
        let p = parse_envelope(body.as_bytes()).unwrap();
        assert_eq!(
            p.objects,
            vec![
                "{\"type\" : \"indicator\",\n  \"confidence\": 7.50, \"name\": \"a\\u00e9\"}",
                "5",
                "\"s\""
            ]
        );
        for (bad, why) in [
            (&b"<html>"[..], "not JSON"),
            (b"", "not JSON"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"objects": 5}"#, "is not an array"),
        ] {
            match parse_envelope(bad) {
                Err(FetchError::Invalid(m)) => assert!(m.contains(why), "{m}"),
                _ => panic!("{bad:?} is no envelope"),
            }
        }
    }

    #[test]
    fn feed_defaults_fill_only_what_is_missing() {
        let d = FeedDefaults {
            confidence: Some(70),
            tlp: Some(Tlp::Amber),
            valid_days: Some(10),
            labels: vec!["osint".into(), "feed-a".into()],
        };
        let now = time::macros::datetime!(2026-01-05 00:00 UTC);
        let mut o = json!({
            "type": "indicator", "created": "2026-01-01T00:00:00Z",
            "valid_from": "2026-01-01T00:00:00Z", "labels": ["osint"], "confidence": 90
        });
        apply_defaults(o.as_object_mut().unwrap(), &d, now);
        assert_eq!(o["confidence"], 90);
        assert_eq!(
            o["labels"],
            json!(["osint"]),
            "labels are the pipeline's to add"
        );
        assert_eq!(o["valid_until"], "2026-01-15T00:00:00.000Z");
        assert_eq!(o["object_marking_refs"], json!([Tlp::Amber.marking_ref()]));
        // Cyber observables and markings are left alone.
        let mut sco = json!({"type": "ipv4-addr", "id": "ipv4-addr--x", "value": "1.2.3.4"});
        apply_defaults(sco.as_object_mut().unwrap(), &d, now);
        assert!(sco.get("labels").is_none());
    }
}
