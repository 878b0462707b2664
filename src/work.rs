//! Work items: an input is processed as a chain of record ranges, each within one invocation's
//! deadline. A range that ends before the input does is checkpointed as a *part* in the reports
//! container and the next range is queued on `%TI_WORK_QUEUE%`; the range that reaches the end
//! assembles the final report from all parts, exactly as a single run would have written it.
//!
//! Everything is keyed by the blob's name and ETag (its content version), so a redelivered event,
//! message or item finds its own checkpoints and resumes instead of reporting anything twice, and
//! a re-dropped file (new content, new ETag) is a new run. Uploads are idempotent by STIX id, so a
//! range retried after a crash re-sends records but never duplicates them at the service.
//!
//! The ETag is taken in one canonical form ([`canonical_etag`]: quoted, as a download's `ETag`
//! header gives it), because a blob listing gives the same value unquoted (Azure does so too:
//! "Get Blob" returns the `ETag` header as a quoted entity tag per RFC 9110 §8.8.3, while "List
//! Blobs" returns `<Etag>0x8D…</Etag>` without quotes — learn.microsoft.com/rest/api/storageservices/
//! list-blobs, sample response). Every path that names a run (ingest, work items, Sweep) computes
//! the same id; the quoted form is the one run ids were always computed from, so ids already in
//! storage stay valid.
//!
//! Layout under the reports container, for run `<id>` = uuidv5(blob name, quoted ETag):
//! - `runs/<id>/state.json`: blob, ETag, the furthest next range start, last activity (for Sweep);
//! - `runs/<id>/parts/<start>.json`: a range's partial report and rejected records (a
//!   checkpoint `Part`, kept, resumed and assembled by the engine in `src/checkpoint/`);
//! - `runs/<id>/queued/<start>`: written before the work item for `start` is sent; a work item
//!   whose start is neither 0 nor queued this way did not come from the app and is refused;
//! - `runs/<id>/sent/<start>`: written only *after* the work item for `start` was sent: a
//!   redelivery that finds the range's part but not this marker sends the item again (a kill
//!   between the send and the marker yields a duplicate item, which is harmless: a range whose
//!   part exists is not run again, and the report is assembled by following the chain of parts
//!   from record 0, so a range run twice is counted once);
//! - `runs/<id>/done`: the final report was written.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A message on the work queue: continue `blob` (version `etag`) from record `start`.
/// Unknown fields are refused: the app writes exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkItem {
    /// Message schema version.
    pub v: u32,
    pub container: String,
    pub blob: String,
    pub etag: String,
    pub start: u64,
}

impl WorkItem {
    pub const VERSION: u32 = 1;

    pub fn new(container: &str, blob: &str, etag: &str, start: u64) -> Self {
        WorkItem {
            v: Self::VERSION,
            container: container.to_string(),
            blob: blob.to_string(),
            etag: canonical_etag(etag),
            start,
        }
    }

    /// Parses a work item and checks the fields that do not need storage: the version, and an
    /// ETag of the form the app writes ([`is_app_etag`]). The container and the range start are
    /// checked by the caller (they need the settings and the run's checkpoints).
    pub fn parse(text: &str) -> Result<Self, String> {
        let item: WorkItem = serde_json::from_str(text)
            .map_err(|e| format!("the work item is not the expected JSON: {e}"))?;
        if item.v != Self::VERSION {
            return Err(format!(
                "work item version {} is not supported (expected {})",
                item.v,
                Self::VERSION
            ));
        }
        if !is_app_etag(&item.etag) {
            return Err(format!(
                "work item field etag {:?} is not an ETag as the app writes it (expected a quoted \"0x\" and 1 to 32 hex digits)",
                item.etag
            ));
        }
        Ok(item)
    }
}

/// The one form of an ETag the app uses everywhere: surrounding whitespace and quotes removed,
/// then quoted (`0x8D…` and `"0x8D…"` are the same version).
pub fn canonical_etag(etag: &str) -> String {
    format!("\"{}\"", etag.trim().trim_matches('"'))
}

/// Whether `etag` is a blob ETag in the canonical form the app writes into work items: `"0x`
/// and 1 to 32 hex digits, quoted. Blob ETags have this form in Azure Storage and Azurite (e.g.
/// `"0x8D4BCC2E4835CD0"` in the "Get Blob" sample response,
/// learn.microsoft.com/rest/api/storageservices/get-blob); anything else (CR/LF, spaces, other
/// text) did not come from the app.
pub fn is_app_etag(etag: &str) -> bool {
    etag.strip_prefix("\"0x")
        .and_then(|r| r.strip_suffix('"'))
        .is_some_and(|hex| {
            (1..=32).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Test-only fault injection, so the kill tests can aim at each hand-off point instead of
/// hoping a random kill lands there: `TI_TEST_ABORT_AT=<point>:<n>[,<point>:<n>...]` makes the
/// process abort (`std::process::abort`, as abrupt as `kill -9` for everything it has not
/// written yet) on the `n`-th arrival at `<point>`. Unset (always, outside tests): no effect.
pub mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// After a range's part was written, before the state and the next item.
    pub const PART_WRITTEN: &str = "part-written";
    /// After the state names the next range, before its work item is sent.
    pub const BEFORE_SEND: &str = "before-send";
    /// After the next work item was sent, before the `sent/<start>` marker.
    pub const AFTER_SEND: &str = "after-send";
    /// After the `sent/<start>` marker, before the invocation answers.
    pub const AFTER_MARKER: &str = "after-marker";
    /// During report assembly: the parts are read, nothing final is written.
    pub const ASSEMBLING: &str = "assembling";
    /// After the final report was written, before the run's `done` marker.
    pub const REPORT_WRITTEN: &str = "report-written";
    pub const POINTS: &[&str] = &[
        PART_WRITTEN,
        BEFORE_SEND,
        AFTER_SEND,
        AFTER_MARKER,
        ASSEMBLING,
        REPORT_WRITTEN,
    ];

    struct Plan(Vec<(String, u64, AtomicU64)>);

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let raw = std::env::var("TI_TEST_ABORT_AT").unwrap_or_default();
            Plan(
                raw.split(',')
                    .filter_map(|p| {
                        let (name, n) = p.trim().split_once(':')?;
                        Some((name.to_string(), n.parse().ok()?, AtomicU64::new(0)))
                    })
                    .collect(),
            )
        })
    }

    /// Marks an arrival at `point`; aborts the process when the plan says so.
    pub fn point(point: &str) {
        for (name, n, seen) in &plan().0 {
            if name == point && seen.fetch_add(1, Ordering::SeqCst) + 1 == *n {
                eprintln!("TI_TEST_ABORT_AT: aborting at {point} (arrival {n})");
                std::process::abort();
            }
        }
    }
}

/// Namespace of run ids (fixed forever: ids name checkpoints already in storage).
const RUN_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7d1f_3c2a_9b4e_4f6a_8c0d_2e5b_6a7f_8091);

/// The run of one version of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub dir: String,
}

impl Run {
    /// The run of `blob` in version `etag` (quoted or not: see [`canonical_etag`]).
    pub fn new(blob: &str, etag: &str) -> Self {
        let etag = canonical_etag(etag);
        let id = uuid::Uuid::new_v5(&RUN_NAMESPACE, format!("{blob}\n{etag}").as_bytes());
        Run {
            dir: format!("runs/{id}"),
        }
    }

    pub fn state(&self) -> String {
        format!("{}/state.json", self.dir)
    }

    pub fn part(&self, start: u64) -> String {
        format!("{}/parts/{start:015}.json", self.dir)
    }

    /// Written before the work item for `start` is sent: a work item for a range start other
    /// than 0 is genuine only if this exists.
    pub fn queued(&self, start: u64) -> String {
        format!("{}/queued/{start:015}", self.dir)
    }

    /// Written after the work item for `start` was sent.
    pub fn sent(&self, start: u64) -> String {
        format!("{}/sent/{start:015}", self.dir)
    }

    pub fn done(&self) -> String {
        format!("{}/done", self.dir)
    }
}

/// What Sweep reads to tell a live run from an abandoned one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub blob: String,
    pub etag: String,
    /// Where the run continues; `None` once complete.
    pub next: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_follow_the_content_version() {
        assert_eq!(Run::new("a.json", "e1"), Run::new("a.json", "e1"));
        assert_ne!(Run::new("a.json", "e1"), Run::new("a.json", "e2"));
        assert_ne!(Run::new("a.json", "e1"), Run::new("b.json", "e1"));
        let item = WorkItem::new("inbox", "a b.json", "\"0x8D\"", 5000);
        let text = serde_json::to_string(&item).unwrap();
        assert_eq!(WorkItem::parse(&text).unwrap(), item);
        assert!(WorkItem::parse("{}").is_err());
    }

    #[test]
    fn a_listed_and_a_downloaded_etag_name_the_same_run() {
        // Listing: unquoted; download: quoted. Same version, same run, same work item.
        assert_eq!(
            Run::new("a.json", "0x8DC0FFEE"),
            Run::new("a.json", "\"0x8DC0FFEE\"")
        );
        assert_eq!(canonical_etag(" 0x8DC0FFEE "), "\"0x8DC0FFEE\"");
        assert_eq!(
            WorkItem::new("i", "a", "0x8DC0FFEE", 0).etag,
            "\"0x8DC0FFEE\""
        );
        // Ids computed before the canonical form existed (from the quoted download ETag) hold.
        let old = uuid::Uuid::new_v5(&RUN_NAMESPACE, b"a.json\n\"0x8DC0FFEE\"");
        assert_eq!(Run::new("a.json", "0x8DC0FFEE").dir, format!("runs/{old}"));
    }

    #[test]
    fn work_items_the_app_did_not_write_are_refused() {
        let good =
            r#"{"v":1,"container":"inbox","blob":"a.json","etag":"\"0x8DC0FFEE\"","start":0}"#;
        assert!(WorkItem::parse(good).is_ok());
        for (bad, why) in [
            (
                r#"{"v":2,"container":"inbox","blob":"a.json","etag":"\"0x8DC0FFEE\"","start":0}"#,
                "version 2",
            ),
            (
                r#"{"v":1,"container":"inbox","blob":"a.json","etag":"\"0x8DC0FFEE\"","start":0,"x":1}"#,
                "unknown field",
            ),
            (
                r#"{"v":1,"container":"inbox","blob":"a.json","etag":"\"0x8D\r\nX: y\"","start":0}"#,
                "not an ETag",
            ),
            (
                r#"{"v":1,"container":"inbox","blob":"a.json","etag":"0x8DC0FFEE","start":0}"#,
                "not an ETag",
            ),
            (
                r#"{"v":1,"container":"inbox","blob":"a.json","etag":"\"*\"","start":0}"#,
                "not an ETag",
            ),
            (
                r#"{"v":1,"container":"inbox","blob":"a.json","etag":"\"0x8DC0FFEE\"","start":-1}"#,
                "expected JSON",
            ),
        ] {
            let err = WorkItem::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
