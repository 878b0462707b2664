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
//! Layout under the reports container, for run `<id>` = uuidv5(blob name, ETag):
//! - `runs/<id>/state.json`: blob, ETag, the next range's start, last activity (for Sweep);
//! - `runs/<id>/parts/<start>.json`: a range's partial report and rejected records;
//! - `runs/<id>/queued/<start>`: once-only marker: whoever creates it enqueues that range;
//! - `runs/<id>/done`: the final report was written.

use serde::{Deserialize, Serialize};
use ti_core::report::Report;
use time::OffsetDateTime;

use crate::pipeline::RunOutcome;

/// A message on the work queue: continue `blob` (version `etag`) from record `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            etag: etag.to_string(),
            start,
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let item: WorkItem = serde_json::from_str(text)
            .map_err(|e| format!("the work item is not the expected JSON: {e}"))?;
        if item.v != Self::VERSION {
            return Err(format!("work item version {} is not supported", item.v));
        }
        Ok(item)
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
    pub fn new(blob: &str, etag: &str) -> Self {
        let id = uuid::Uuid::new_v5(&RUN_NAMESPACE, format!("{blob}\n{etag}").as_bytes());
        Run {
            dir: format!("runs/{id}"),
        }
    }

    pub fn state(&self) -> String {
        format!("{}/state.json", self.dir)
    }

    pub fn parts_prefix(&self) -> String {
        format!("{}/parts/", self.dir)
    }

    pub fn part(&self, start: u64) -> String {
        format!("{}/parts/{start:015}.json", self.dir)
    }

    pub fn queued(&self, start: u64) -> String {
        format!("{}/queued/{start:015}", self.dir)
    }

    pub fn done(&self) -> String {
        format!("{}/done", self.dir)
    }
}

/// A checkpointed range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub start: u64,
    /// The next range's start, `None` when this range reached the end of the input.
    pub next: Option<u64>,
    pub report: Report,
    pub rejected: Vec<(u64, String)>,
    /// A CSV input's header row (see [`RunOutcome::csv_header`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_header: Option<String>,
}

impl Part {
    pub fn from_outcome(start: u64, outcome: &RunOutcome) -> Self {
        Part {
            start,
            next: outcome.next_start,
            report: outcome.report.clone(),
            rejected: outcome.rejected.clone(),
            csv_header: outcome.csv_header.clone(),
        }
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

/// Assembles the final outcome from a run's parts, which must cover the input from record 0 to
/// its end without gaps.
pub fn assemble(mut parts: Vec<Part>) -> Result<RunOutcome, String> {
    parts.sort_by_key(|p| p.start);
    let mut expect = 0u64;
    for (i, p) in parts.iter().enumerate() {
        if p.start != expect {
            return Err(format!(
                "the checkpoints are not contiguous: expected a range from record {expect}, found one from {}",
                p.start
            ));
        }
        match p.next {
            Some(n) => expect = n,
            None if i + 1 == parts.len() => {}
            None => return Err("a checkpoint before the last one ends the input".into()),
        }
    }
    let Some(last) = parts.last() else {
        return Err("no checkpoints".into());
    };
    if last.next.is_some() {
        return Err(format!(
            "the input is not finished: the next range starts at record {expect}"
        ));
    }
    let mut report = parts[0].report.clone();
    report.finished_at = last.report.finished_at.clone();
    report.input_error = last.report.input_error.clone();
    report.errors.clear();
    report.warnings.clear();
    report.summary = Default::default();
    let mut rejected = Vec::new();
    let mut csv_header = None;
    for p in parts {
        csv_header = csv_header.or(p.csv_header);
        report.summary.records += p.report.summary.records;
        report.summary.uploaded += p.report.summary.uploaded;
        report.summary.rejected += p.report.summary.rejected;
        report.errors.extend(p.report.errors);
        report.warnings.extend(p.report.warnings);
        rejected.extend(p.rejected);
        if report.source.format.is_none() {
            report.source.format = p.report.source.format;
        }
    }
    Ok(RunOutcome {
        report,
        rejected,
        next_start: None,
        csv_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ti_core::report::{Code, RecordError, Source, Stage, Summary};

    fn part(start: u64, next: Option<u64>, records: u64, rejected_at: &[u64]) -> Part {
        Part {
            start,
            next,
            report: Report {
                source: Source {
                    kind: "blob".into(),
                    name: "inbox/x".into(),
                    format: Some("stix-bundle".into()),
                },
                target: "sentinel-stix".into(),
                started_at: format!("t{start}"),
                finished_at: format!("f{start}"),
                summary: Summary {
                    records,
                    uploaded: records - rejected_at.len() as u64,
                    rejected: rejected_at.len() as u64,
                },
                input_error: None,
                errors: rejected_at
                    .iter()
                    .map(|i| RecordError {
                        record_index: *i,
                        line: Some(i + 2),
                        id: None,
                        stage: Stage::Validate,
                        code: Code::PatternInvalid,
                        messages: vec!["x".into()],
                    })
                    .collect(),
                warnings: vec![],
            },
            rejected: rejected_at.iter().map(|i| (*i, format!("r{i}"))).collect(),
            csv_header: None,
        }
    }

    #[test]
    fn parts_assemble_into_the_report_of_a_single_run() {
        let out = assemble(vec![
            part(100, None, 50, &[120]),
            part(0, Some(100), 100, &[3, 99]),
        ])
        .unwrap();
        out.report.check_invariants().unwrap();
        assert_eq!(out.report.summary.records, 150);
        assert_eq!(out.report.summary.rejected, 3);
        let idx: Vec<u64> = out.report.errors.iter().map(|e| e.record_index).collect();
        assert_eq!(idx, vec![3, 99, 120]);
        assert_eq!(out.report.started_at, "t0");
        assert_eq!(out.report.finished_at, "f100");
        assert_eq!(out.rejected.len(), 3);
    }

    #[test]
    fn a_csv_header_checkpointed_with_a_part_heads_the_assembled_rejected_file() {
        let mut first = part(0, Some(100), 100, &[]);
        first.csv_header = Some("type,value".into());
        // Checkpoints written before the field existed still read.
        let mut json = serde_json::to_value(part(100, None, 50, &[120])).unwrap();
        json.as_object_mut().unwrap().remove("csvHeader");
        json.as_object_mut().unwrap().remove("csv_header");
        let second: Part = serde_json::from_value(json).unwrap();
        assert_eq!(second.csv_header, None);
        let json = serde_json::to_string(&first).unwrap();
        let first: Part = serde_json::from_str(&json).unwrap();
        let out = assemble(vec![first, second]).unwrap();
        assert_eq!(out.rejected_ndjson(), "type,value\nr120\n");
    }

    #[test]
    fn gaps_and_unfinished_runs_are_refused() {
        assert!(assemble(vec![part(0, Some(100), 100, &[]), part(150, None, 1, &[])]).is_err());
        assert!(assemble(vec![part(0, Some(100), 100, &[])]).is_err());
        assert!(assemble(vec![part(10, None, 1, &[])]).is_err());
        assert!(assemble(vec![]).is_err());
    }

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
}
