//! Indicator lifecycle (README, "Indicator lifecycle"; docs/PULL.md): a list feed is a
//! statement of what is bad *now*, so an indicator it stops listing is retired, and one it
//! keeps listing is refreshed before it expires. Also revocation: objects sent `revoked`.
//!
//! Per list feed, the indicators sent are kept in an index in storage ([`store`]: sorted
//! records of id, content hash, times and the object as sent, streamed). A run of the
//! feed tells a [`Snapshot`] (a pipeline hook) of every indicator the targets accepted; once the
//! run has settled, [`apply`] merges the saved index with the snapshot, one record at a time:
//! - listed before, not now: **retired** — sent again as a new version with `valid_until` =
//!   now (STIX 2.1 §4.7: the time from which the indicator is no longer valid) and a later
//!   `modified` (§3.6: each new version's `modified` is later than the previous one's);
//! - still listed and past half its validity (`validDays` / `TI_DEFAULT_VALID_DAYS`):
//!   **refreshed** — sent again with `modified` = now and `valid_until` = now + validDays;
//! - arrived `revoked: true` (§3.2: revoked objects are no longer valid, and revoking is
//!   permanent): sent as it is (by the pipeline) and forgotten.
//!
//! Retiring uses `valid_until`, not `revoked`, because a revoked id can never be sent again
//! (§3.2), and a feed may list an indicator again. A retirement or refresh left by a transient
//! failure stays in the index (a retiring one flagged) and is tried again next run; the index is
//! written only by a run whose pipeline part settled (docs/PULL.md, "What a run does").

pub mod store;

use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

use anyhow::{Context, Result};
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::BlockLookupList;
use azure_storage_blob::BlobClient;
use futures::StreamExt;
use serde_json::{Map, Value};
use ti_core::convert::stix_timestamp;
use ti_core::report::{Code, Lifecycle};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tokio::time::Instant;

use crate::upload::Uploader;
use store::{
    Change, IndexReader, IndexWriter, Merge, Record, Sorted, Sorter, FLAG_RETIRING, NEVER,
};

/// A snapshot record's flag: the object arrived revoked (it leaves the index).
const FLAG_REVOKED: u8 = 2;

/// Bytes of snapshot records held before a sorted run is spilled to a temporary file.
pub const SORT_BUDGET_BYTES: usize = 32 << 20;

/// Records held back behind a pending retirement or refresh before that batch is sent
/// anyway (they are written to the index in order once it is settled).
const MAX_QUEUED: usize = 10_000;

/// Block size of the index upload (Put Block).
const BLOCK_BYTES: usize = 4 << 20;

/// Properties left out of the content hash: set from the time of conversion or moved by
/// this module, they change without the feed's content changing.
const VOLATILE: &[&str] = &["created", "modified", "valid_from", "valid_until"];

/// The UUID of an indicator id (`indicator--<uuid>`); other objects are not tracked (only
/// indicators have a validity to end, STIX 2.1 §4.7).
pub fn key_of(id: &str) -> Option<[u8; 16]> {
    let uuid = id.strip_prefix("indicator--")?;
    uuid::Uuid::parse_str(uuid).ok().map(|u| *u.as_bytes())
}

/// A hash of the object's content (without [`VOLATILE`] properties), stable across
/// processes and versions (SipHash-1-3 with fixed keys), so a saved index stays comparable.
pub fn content_hash(object: &Map<String, Value>) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    let mut keys: Vec<&String> = object
        .keys()
        .filter(|k| !VOLATILE.contains(&k.as_str()))
        .collect();
    keys.sort();
    for k in keys {
        h.write(k.as_bytes());
        h.write_u8(0);
        h.write(object[k].to_string().as_bytes());
        h.write_u8(0);
    }
    h.finish()
}

fn unix(t: &str) -> Option<i64> {
    OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// Inbox blobs under this prefix are revoke files: every indicator they list is sent revoked
/// (README, "Indicator lifecycle").
pub const REVOKE_PREFIX: &str = "revoke/";

/// Whether an inbox blob is a revoke file.
pub fn is_revoke_blob(name: &str) -> bool {
    name.starts_with(REVOKE_PREFIX)
}

/// Makes `object` a revoked new version (a revoke file, `ti-ingest revoke`): `revoked` true
/// (STIX 2.1 §3.2) and `modified` later than before (§3.6).
pub fn mark_revoked(object: &mut Map<String, Value>, now: OffsetDateTime) {
    object.insert("revoked".into(), Value::Bool(true));
    bump_modified(object, now);
}

/// `modified` = now, or 1 ms after the object's own when that is not earlier (§3.6: a new
/// version's `modified` is later than the previous one's).
fn bump_modified(object: &mut Map<String, Value>, now: OffsetDateTime) {
    let own = object
        .get("modified")
        .and_then(Value::as_str)
        .and_then(|m| OffsetDateTime::parse(m, &Rfc3339).ok());
    let at = match own {
        Some(m) if m >= now => m + Duration::milliseconds(1),
        _ => now,
    };
    object.insert("modified".into(), stix_timestamp(at).into());
}

/// Collects a run's accepted indicators, sorted by id with bounded memory.
pub struct Snapshot {
    now: i64,
    inner: Mutex<(Sorter, Option<io::Error>)>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("now", &self.now).finish()
    }
}

impl Snapshot {
    pub fn new(now: OffsetDateTime, budget: usize) -> Self {
        Snapshot {
            now: now.unix_timestamp(),
            inner: Mutex::new((Sorter::new(budget), None)),
        }
    }

    /// The pipeline's hook: a target accepted `object`.
    pub fn accepted(&self, object: &Map<String, Value>) {
        let Some(key) = object.get("id").and_then(Value::as_str).and_then(key_of) else {
            return;
        };
        let revoked = object.get("revoked").and_then(Value::as_bool) == Some(true);
        let record = Record {
            key,
            hash: content_hash(object),
            sent: self.now,
            until: object
                .get("valid_until")
                .and_then(Value::as_str)
                .and_then(unix)
                .unwrap_or(NEVER),
            flags: if revoked { FLAG_REVOKED } else { 0 },
            object: serde_json::to_vec(object).expect("a JSON map serialises"),
        };
        let mut inner = self.inner.lock().expect("snapshot lock");
        if inner.1.is_none() {
            if let Err(e) = inner.0.push(record) {
                inner.1 = Some(e);
            }
        }
    }

    /// The accepted indicators in key order (what was collected so far: the run is over).
    pub fn finish(&self) -> io::Result<Sorted> {
        let mut inner = self.inner.lock().expect("snapshot lock");
        if let Some(e) = inner.1.take() {
            return Err(e);
        }
        std::mem::replace(&mut inner.0, Sorter::new(0)).finish()
    }
}

/// What a run does with the merge: the time, the validity refreshes give, the targets.
pub struct Step<'a> {
    pub uploader: &'a Uploader,
    pub deadline: Option<Instant>,
    pub now: OffsetDateTime,
    /// The feed's validity in days (`0`: indicators never expire, nothing is refreshed).
    pub valid_days: u32,
}

enum Action {
    Write(Record),
    Retire(Record, Map<String, Value>),
    Refresh(Record, Map<String, Value>),
}

impl Step<'_> {
    /// Whether a listed indicator is past half its validity (or expired): refresh it.
    fn refresh_due(&self, r: &Record) -> bool {
        self.valid_days > 0
            && r.until != NEVER
            && r.until - self.now.unix_timestamp() < i64::from(self.valid_days) * 86_400 / 2
    }

    fn object(r: &Record) -> Result<Map<String, Value>> {
        serde_json::from_slice(&r.object).context("a lifecycle record's object is not JSON")
    }

    /// The retired version: `valid_until` = now, a later `modified`. An indicator not valid
    /// yet (`valid_from` after now) ends 1 ms after its start, as `valid_until` must be later
    /// than `valid_from` (STIX 2.1 §4.7).
    fn retired(&self, r: &Record) -> Result<Map<String, Value>> {
        let mut o = Self::object(r)?;
        let from = o
            .get("valid_from")
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        let until = match from {
            Some(f) if f >= self.now => f + Duration::milliseconds(1),
            _ => self.now,
        };
        o.insert("valid_until".into(), stix_timestamp(until).into());
        bump_modified(&mut o, self.now);
        Ok(o)
    }

    /// The refreshed version: `valid_until` = the later of `valid_from` and now, plus
    /// validDays (as a converted record gets it, docs/SETTINGS.md `TI_DEFAULT_VALID_DAYS`).
    fn refreshed(&self, r: &Record) -> Result<Map<String, Value>> {
        let mut o = Self::object(r)?;
        let from = o
            .get("valid_from")
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map_or(self.now, |f| f.max(self.now));
        let until = from + Duration::days(i64::from(self.valid_days));
        o.insert("valid_until".into(), stix_timestamp(until).into());
        bump_modified(&mut o, self.now);
        Ok(o)
    }
}

/// Merges the saved index with the run's snapshot (`None`: the feed was not re-read, so
/// nothing is retired but what is already retiring), sends the retirements and refreshes,
/// and writes the new index to a temporary file. `complete`: the snapshot is the whole feed
/// (otherwise nothing missing from it is retired: an incomplete read says nothing about what
/// was dropped).
pub async fn apply(
    saved: IndexReader,
    snapshot: Option<Sorted>,
    complete: bool,
    step: &Step<'_>,
) -> Result<(File, Lifecycle)> {
    let mut out = IndexWriter::create(tempfile::tempfile()?)?;
    let mut summary = Lifecycle::default();
    let mut queue: std::collections::VecDeque<Action> = Default::default();
    let mut sends = 0usize;
    let batch = step.uploader.settings().batch_size;
    for merged in Merge::new(saved, snapshot) {
        let m = merged.context("reading the lifecycle index")?;
        let action = match m.change {
            Change::Added | Change::Kept => {
                let current = m.now.or(m.saved.clone()).expect("a kept record");
                if current.flags & FLAG_REVOKED != 0 {
                    summary.revoked += 1;
                    continue;
                }
                if m.change == Change::Added {
                    summary.added += 1;
                } else if m.saved.as_ref().is_some_and(|s| s.hash != current.hash) {
                    summary.changed += 1;
                }
                if step.refresh_due(&current) {
                    match step.refreshed(&current) {
                        Ok(o) => Action::Refresh(current, o),
                        Err(e) => {
                            summary.failed += 1;
                            summary.failures.push(format!("{e:#}"));
                            Action::Write(current)
                        }
                    }
                } else {
                    Action::Write(current)
                }
            }
            Change::Dropped if !complete && !m.saved.as_ref().is_some_and(Record::retiring) => {
                Action::Write(m.saved.expect("a dropped record"))
            }
            Change::Dropped => {
                let saved = m.saved.expect("a dropped record");
                match step.retired(&saved) {
                    Ok(o) => Action::Retire(saved, o),
                    Err(e) => {
                        summary.failed += 1;
                        summary.failures.push(format!("{e:#}"));
                        continue;
                    }
                }
            }
        };
        match action {
            Action::Write(r) if queue.is_empty() => {
                summary.listed += 1;
                out.push(&r)?;
            }
            a => {
                if !matches!(a, Action::Write(_)) {
                    sends += 1;
                }
                queue.push_back(a);
            }
        }
        if sends >= batch || queue.len() >= MAX_QUEUED {
            settle(&mut queue, step, &mut out, &mut summary).await?;
            sends = 0;
        }
    }
    settle(&mut queue, step, &mut out, &mut summary).await?;
    summary.failures.truncate(5);
    Ok((out.finish()?, summary))
}

/// Sends the queued retirements and refreshes as one batch and writes the queue, in order,
/// to the index according to the answers.
async fn settle(
    queue: &mut std::collections::VecDeque<Action>,
    step: &Step<'_>,
    out: &mut IndexWriter,
    summary: &mut Lifecycle,
) -> Result<()> {
    let objects: Vec<Map<String, Value>> = queue
        .iter()
        .filter_map(|a| match a {
            Action::Retire(_, o) | Action::Refresh(_, o) => Some(o.clone()),
            Action::Write(_) => None,
        })
        .collect();
    let outcome = if objects.is_empty() {
        Vec::new()
    } else {
        step.uploader.upload(&objects, step.deadline).await
    };
    let mut outcome = outcome.into_iter();
    let now = step.now.unix_timestamp();
    for action in queue.drain(..) {
        let (record, object, retire) = match action {
            Action::Write(r) => {
                summary.listed += 1;
                out.push(&r)?;
                continue;
            }
            Action::Retire(r, o) => (r, o, true),
            Action::Refresh(r, o) => (r, o, false),
        };
        let failure = outcome.next().context("an answer per object")?;
        let transient = failure
            .as_ref()
            .is_some_and(|f| matches!(f.code, Code::RetriesExhausted | Code::AuthFailed));
        match (retire, failure) {
            (true, None) => summary.retired += 1,
            (false, None) => {
                summary.refreshed += 1;
                summary.listed += 1;
                out.push(&Record {
                    sent: now,
                    until: object
                        .get("valid_until")
                        .and_then(Value::as_str)
                        .and_then(unix)
                        .unwrap_or(NEVER),
                    object: serde_json::to_vec(&object).expect("a JSON map serialises"),
                    ..record
                })?;
            }
            (_, Some(f)) => {
                if transient {
                    summary.pending += 1;
                } else {
                    summary.failed += 1;
                    if summary.failures.len() < 5 {
                        summary.failures.push(format!(
                            "{} {}: {}: {}",
                            if retire { "retiring" } else { "refreshing" },
                            object.get("id").and_then(Value::as_str).unwrap_or("?"),
                            f.code.name(),
                            f.messages.join("; ")
                        ));
                    }
                }
                if retire && !transient {
                    // Refused for good: retrying would be refused again.
                    continue;
                }
                // Still listed (a refresh), or to retire next run.
                let flags = if retire {
                    record.flags | FLAG_RETIRING
                } else {
                    record.flags
                };
                summary.listed += u64::from(!retire);
                out.push(&Record { flags, ..record })?;
            }
        }
    }
    Ok(())
}

/// Reads a feed's index blob into a temporary file (streamed); no blob = an empty index.
pub async fn load(blob: &BlobClient) -> Result<IndexReader> {
    let response = match blob.download(None).await {
        Ok(r) => r,
        Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(IndexReader::empty()),
        Err(e) => return Err(e).context("reading the lifecycle index"),
    };
    let mut file = io::BufWriter::new(tempfile::tempfile()?);
    let mut body = response.body;
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.context("reading the lifecycle index")?)?;
    }
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    IndexReader::open(file).context("reading the lifecycle index")
}

/// Writes an index file to the blob, a block at a time.
pub async fn save(blob: &BlobClient, file: File) -> Result<()> {
    use std::io::Read;
    let client = blob.block_blob_client();
    let mut file = io::BufReader::new(file);
    let mut blocks = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(BLOCK_BYTES);
        (&mut file).take(BLOCK_BYTES as u64).read_to_end(&mut buf)?;
        if buf.is_empty() {
            break;
        }
        // Block ids must all have the same length within a blob (Put Block).
        let id = format!("{:010}", blocks.len()).into_bytes();
        let len = buf.len() as u64;
        client
            .stage_block(&id, len, RequestContent::from(buf), None)
            .await
            .context("writing a block of the lifecycle index")?;
        blocks.push(id);
    }
    let list = BlockLookupList {
        latest: Some(blocks),
        ..Default::default()
    };
    client
        .commit_block_list(list.try_into()?, None)
        .await
        .context("committing the lifecycle index")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_content_hash_ignores_times_and_order_but_not_content() {
        let a = obj(
            json!({"type": "indicator", "pattern": "[ipv4-addr:value = '1.2.3.4']",
            "modified": "2026-01-01T00:00:00.000Z", "valid_until": "2026-02-01T00:00:00.000Z"}),
        );
        let b = obj(json!({"valid_until": "2027-02-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '1.2.3.4']", "type": "indicator"}));
        let c = obj(json!({"type": "indicator", "pattern": "[ipv4-addr:value = '1.2.3.5']"}));
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        // Fixed: a saved index stays comparable across builds.
        assert_eq!(content_hash(&c), content_hash(&c.clone()));
    }

    #[test]
    fn revoking_sets_revoked_and_a_later_modified() {
        let now = time::macros::datetime!(2026-12-01 10:00:00 UTC);
        let mut o = obj(json!({"modified": "2026-01-01T00:00:00.000Z"}));
        mark_revoked(&mut o, now);
        assert_eq!(o["revoked"], true);
        assert_eq!(o["modified"], "2026-12-01T10:00:00.000Z");
        // A modified at or after now is passed by 1 ms.
        let mut o = obj(json!({"modified": "2026-12-01T10:00:00.000Z"}));
        mark_revoked(&mut o, now);
        assert_eq!(o["modified"], "2026-12-01T10:00:00.001Z");
    }

    fn record(object: Value) -> Record {
        Record {
            key: [0; 16],
            hash: 0,
            sent: 0,
            until: NEVER,
            flags: 0,
            object: serde_json::to_vec(&object).unwrap(),
        }
    }

    #[test]
    fn retired_and_refreshed_versions_keep_valid_until_after_valid_from() {
        let uploader = Uploader::new(
            crate::upload::UploadSettings::from_env(&crate::settings::Env::from_pairs([(
                "TI_TARGET",
                "dry-run",
            )]))
            .unwrap(),
            None,
        )
        .unwrap();
        let step = Step {
            uploader: &uploader,
            deadline: None,
            now: time::macros::datetime!(2026-12-01 10:00:00 UTC),
            valid_days: 30,
        };
        let listed = json!({"id": "indicator--x", "modified": "2026-11-01T00:00:00.000Z",
            "valid_from": "2026-11-01T00:00:00Z", "valid_until": "2026-12-02T00:00:00.000Z"});
        let r = step.retired(&record(listed.clone())).unwrap();
        assert_eq!(r["valid_until"], "2026-12-01T10:00:00.000Z");
        assert_eq!(r["modified"], "2026-12-01T10:00:00.000Z");
        let r = step.refreshed(&record(listed)).unwrap();
        assert_eq!(r["valid_until"], "2026-12-31T10:00:00.000Z");
        // Not valid yet: it ends 1 ms after it starts; a refresh counts from its start.
        let future = json!({"id": "indicator--x", "modified": "2026-11-01T00:00:00.000Z",
            "valid_from": "2027-01-01T00:00:00Z"});
        let r = step.retired(&record(future.clone())).unwrap();
        assert_eq!(r["valid_until"], "2027-01-01T00:00:00.001Z");
        let r = step.refreshed(&record(future)).unwrap();
        assert_eq!(r["valid_until"], "2027-01-31T00:00:00.000Z");
        // Due: under half of 30 days left, or no longer valid; never without an expiry.
        let now = step.now.unix_timestamp();
        let due = |until: i64| {
            step.refresh_due(&Record {
                until,
                ..record(json!({}))
            })
        };
        assert!(due(now + 14 * 86_400));
        assert!(due(now - 1));
        assert!(!due(now + 16 * 86_400));
        assert!(!due(NEVER));
    }

    #[test]
    fn keys_are_indicator_uuids_only() {
        assert_eq!(
            key_of("indicator--00000000-0000-0000-0000-000000000001").map(|k| k[15]),
            Some(1)
        );
        assert_eq!(
            key_of("attack-pattern--00000000-0000-0000-0000-000000000001"),
            None
        );
        assert_eq!(key_of("indicator--nope"), None);
    }
}
