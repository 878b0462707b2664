//! One engine for checkpointed runs: an input processed as a chain of record ranges, each
//! range's outcome kept as a [`Part`] in a [`PartStore`]. Blob work items ([`blob`], the parts
//! under `runs/<id>/parts/` in the reports container: [`crate::work`]) and `ti-ingest upload`'s
//! file ranges ([`file`], `TI_CHECKPOINT_DIR`) use the same algorithms:
//!
//! - **resume**: follow the chain of parts from record 0 by each part's `next`; the first range
//!   without a part is where the run continues ([`Checkpoints::resume`]). Parts off the chain (a
//!   range run twice by duplicate items and cut at a different record) are never read, so the
//!   chain covers every record exactly once;
//! - **assembly**: the final report is the chain's parts in order, exactly as a single run would
//!   have written it ([`Checkpoints::stream`], one part in memory at a time, or
//!   [`Checkpoints::assemble`]).
//!
//! A range is run by the caller and kept with [`Checkpoints::record`]; a range that has a part is
//! done ([`Checkpoints::part`]) and is not run again.
//!
//! What happens between two ranges (a work item queued, a Ctrl-C) is the caller's business.

pub mod blob;
pub mod file;

use std::future::Future;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use ti_core::report::{Report, Summary};

use crate::pipeline::RunOutcome;

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
    /// The range's outcome, as a piece of the final report (its rejected texts one line each,
    /// as the pipeline keeps them; parts written by earlier versions may hold them as read).
    pub fn into_outcome(self) -> RunOutcome {
        RunOutcome {
            report: self.report,
            rejected: self
                .rejected
                .into_iter()
                .map(|(i, t)| (i, crate::pipeline::one_line(&t).into_owned()))
                .collect(),
            next_start: None,
            csv_header: self.csv_header,
        }
    }

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

/// Where a run's parts are kept, one per range start.
pub trait PartStore: Send + Sync {
    /// Where the part of the range from `start` is kept, for messages.
    fn name(&self, start: u64) -> String;
    /// The part of the range that starts at `start`; `None` when that range has none.
    fn read(&self, start: u64) -> impl Future<Output = Result<Option<Part>>> + Send;
    /// Keeps a range's part, replacing an earlier part of the same start.
    fn write(&self, part: &Part) -> impl Future<Output = Result<()>> + Send;
}

/// Where a run stands, from its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The chain of parts from record 0 ends at a range with no part: the first missing range.
    Missing(u64),
    /// The chain reaches the end of the input; its last range starts here.
    Complete { last: u64 },
}

/// A run's state when it is picked up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub progress: Progress,
    /// The counts of the ranges already done (along the chain).
    pub done: Summary,
}

/// The engine over one run's store.
#[derive(Debug, Clone)]
pub struct Checkpoints<S> {
    store: S,
}

impl<S: PartStore> Checkpoints<S> {
    pub fn new(store: S) -> Self {
        Checkpoints { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Follows the chain from record 0 (see the module doc), handing each part on it to
    /// `visit`, in order; returns where the chain ends.
    async fn walk(&self, mut visit: impl FnMut(Part)) -> Result<Progress> {
        let mut at = 0u64;
        loop {
            let Some(p) = self.store.read(at).await? else {
                return Ok(Progress::Missing(at));
            };
            let next = p.next;
            visit(p);
            match next {
                // A part can only point forward; anything else is a corrupt checkpoint.
                Some(n) if n > at => at = n,
                Some(_) => return Ok(Progress::Missing(at)),
                None => return Ok(Progress::Complete { last: at }),
            }
        }
    }

    /// Where the run continues, and the counts of the ranges already done.
    pub async fn resume(&self) -> Result<Resume> {
        let mut done = Summary::default();
        let progress = self
            .walk(|p| {
                done.records += p.report.summary.records;
                done.uploaded += p.report.summary.uploaded;
                done.rejected += p.report.summary.rejected;
            })
            .await?;
        Ok(Resume { progress, done })
    }

    /// The part of the range from `start`, when that range is done.
    pub async fn part(&self, start: u64) -> Result<Option<Part>> {
        self.store.read(start).await
    }

    /// Keeps the outcome of the range from `start`; returns its part.
    pub async fn record(&self, start: u64, outcome: &RunOutcome) -> Result<Part> {
        let part = Part::from_outcome(start, outcome);
        self.store.write(&part).await?;
        Ok(part)
    }

    /// The whole run as one outcome, exactly as a single run would have reported it, from the
    /// chain's parts held in memory. `Err` when the chain does not reach the end of the input.
    pub async fn assemble(&self) -> Result<RunOutcome> {
        let mut parts = Vec::new();
        match self.walk(|p| parts.push(p)).await? {
            Progress::Complete { .. } => Ok(concatenate(parts)),
            Progress::Missing(0) if parts.is_empty() => anyhow::bail!("no checkpoints"),
            Progress::Missing(at) => anyhow::bail!(
                "the checkpoints are not contiguous: no range from record {at} (the input is not finished)"
            ),
        }
    }
}

impl<S: PartStore + 'static> Checkpoints<S> {
    /// The run's parts along the chain from record 0, read one at a time as the stream is
    /// polled, each as the outcome of its range: what
    /// [`crate::storage::Storage::write_report`] writes the final report from, holding one part
    /// in memory at a time. A missing or corrupt link ends the stream with an error (before
    /// anything was written: the report's files are committed only at its end).
    pub fn stream(
        self,
    ) -> std::pin::Pin<Box<dyn futures::Stream<Item = Result<RunOutcome>> + Send>> {
        Box::pin(futures::stream::unfold(
            (Some(0u64), self.store),
            |(at, store)| async move {
                let at = at?;
                let item = match store.read(at).await {
                    Ok(Some(p)) => match p.next {
                        // A part can only point forward; anything else is a corrupt checkpoint.
                        Some(n) if n <= at => Err(anyhow::anyhow!(
                            "{}: its next range {n} does not follow its start {at}",
                            store.name(at)
                        )),
                        next => Ok((next, p.into_outcome())),
                    },
                    Ok(None) => Err(anyhow::anyhow!(
                        "the checkpoints are not contiguous: no range from record {at} (the input is not finished)"
                    )),
                    Err(e) => Err(e),
                };
                Some(match item {
                    Ok((next, outcome)) => (Ok(outcome), (next, store)),
                    Err(e) => (Err(e), (None, store)),
                })
            },
        ))
    }
}

/// The ranges of a complete chain, in order, as one outcome.
fn concatenate(parts: Vec<Part>) -> RunOutcome {
    let first = parts.first().expect("a complete chain has a part");
    let last = parts.last().expect("a complete chain has a part");
    let mut report = first.report.clone();
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
    RunOutcome {
        report,
        rejected,
        next_start: None,
        csv_header,
    }
}

#[cfg(test)]
mod tests {
    //! The engine against both stores: [`file::FileParts`] in a temporary folder and
    //! [`blob::BlobParts`] in Azurite (the local stack: scripts/setup-azurite.sh).
    use super::*;
    use ti_core::report::{Code, RecordError, Source, Stage};

    fn part(start: u64, next: Option<u64>, records: u64, rejected_at: &[u64]) -> Part {
        let source = Source {
            kind: "blob".into(),
            name: "inbox/x".into(),
            format: Some("stix-bundle".into()),
        };
        let mut report = crate::pipeline::empty_report(source, "sentinel-stix", None);
        report.started_at = format!("t{start}");
        report.finished_at = format!("f{start}");
        report.summary = Summary {
            records,
            uploaded: records - rejected_at.len() as u64,
            rejected: rejected_at.len() as u64,
        };
        report.errors = rejected_at
            .iter()
            .map(|i| RecordError {
                record_index: *i,
                line: Some(i + 2),
                id: None,
                stage: Stage::Validate,
                code: Code::PatternInvalid,
                messages: vec!["x".into()],
            })
            .collect();
        Part {
            start,
            next,
            report,
            rejected: rejected_at.iter().map(|i| (*i, format!("r{i}"))).collect(),
            csv_header: None,
        }
    }

    fn error_indexes(out: &RunOutcome) -> Vec<u64> {
        out.report.errors.iter().map(|e| e.record_index).collect()
    }

    async fn put<S: PartStore>(store: &S, parts: Vec<Part>) {
        for p in parts {
            store.write(&p).await.unwrap();
        }
    }

    async fn streamed<S: PartStore + 'static>(c: Checkpoints<S>) -> Vec<Result<RunOutcome>> {
        use futures::StreamExt;
        c.stream().collect().await
    }

    /// What every store must give the engine. `fresh` makes an empty store each time.
    async fn contract<S, F>(fresh: F)
    where
        S: PartStore + Clone + 'static,
        F: Fn() -> S,
    {
        // Nothing yet: the run starts at record 0 and cannot be assembled.
        let c = Checkpoints::new(fresh());
        assert_eq!(
            c.resume().await.unwrap(),
            Resume {
                progress: Progress::Missing(0),
                done: Summary::default()
            }
        );
        assert_eq!(
            format!("{:#}", c.assemble().await.unwrap_err()),
            "no checkpoints"
        );
        assert!(c.part(0).await.unwrap().is_none());

        // Ranges recorded one by one, as a run makes them: resume after each.
        let c = Checkpoints::new(fresh());
        let first = part(0, Some(100), 100, &[3, 99]).into_outcome();
        let first = RunOutcome {
            next_start: Some(100),
            ..first
        };
        let kept = c.record(0, &first).await.unwrap();
        assert_eq!((kept.start, kept.next), (0, Some(100)));
        let resume = c.resume().await.unwrap();
        assert_eq!(resume.progress, Progress::Missing(100));
        assert_eq!(
            resume.done,
            Summary {
                records: 100,
                uploaded: 98,
                rejected: 2
            }
        );
        let err = format!("{:#}", c.assemble().await.unwrap_err());
        assert_eq!(
            err,
            "the checkpoints are not contiguous: no range from record 100 (the input is not finished)"
        );
        c.record(100, &part(100, None, 50, &[120]).into_outcome())
            .await
            .unwrap();
        let resume = c.resume().await.unwrap();
        assert_eq!(resume.progress, Progress::Complete { last: 100 });
        assert_eq!(resume.done.records, 150);
        let out = c.assemble().await.unwrap();
        out.report.check_invariants().unwrap();
        assert_eq!(out.report.summary.records, 150);
        assert_eq!(out.report.summary.rejected, 3);
        assert_eq!(error_indexes(&out), vec![3, 99, 120]);
        assert_eq!(out.report.started_at, "t0");
        assert_eq!(out.report.finished_at, "f100");
        assert_eq!(out.rejected.len(), 3);
        // Streamed, one outcome per range, the same records.
        let pieces = streamed(c.clone()).await;
        assert_eq!(pieces.len(), 2);
        let pieces: Vec<RunOutcome> = pieces.into_iter().map(Result::unwrap).collect();
        assert_eq!(error_indexes(&pieces[0]), vec![3, 99]);
        assert_eq!(error_indexes(&pieces[1]), vec![120]);

        // A range run twice by duplicate items and cut at different records: the orphan at 150
        // is off the chain, so every record counts once.
        let c = Checkpoints::new(fresh());
        put(
            c.store(),
            vec![
                part(0, Some(100), 100, &[3]),
                part(100, Some(200), 100, &[120]),
                part(150, Some(250), 100, &[160]),
                part(200, None, 10, &[205]),
            ],
        )
        .await;
        assert_eq!(
            c.resume().await.unwrap().progress,
            Progress::Complete { last: 200 }
        );
        let out = c.assemble().await.unwrap();
        assert_eq!(out.report.summary.records, 210);
        assert_eq!(error_indexes(&out), vec![3, 120, 205]);
        let pieces = streamed(c).await;
        assert_eq!(pieces.len(), 3);

        // A gap: the first missing range is where a run resumes; streaming stops there.
        let c = Checkpoints::new(fresh());
        put(
            c.store(),
            vec![part(0, Some(100), 100, &[]), part(200, None, 1, &[])],
        )
        .await;
        assert_eq!(c.resume().await.unwrap().progress, Progress::Missing(100));
        assert!(c.assemble().await.is_err());
        let pieces = streamed(c).await;
        assert_eq!(pieces.len(), 2);
        assert!(pieces[0].is_ok());
        assert_eq!(
            format!("{:#}", pieces[1].as_ref().unwrap_err()),
            "the checkpoints are not contiguous: no range from record 100 (the input is not finished)"
        );

        // A part pointing backwards is corrupt: the run resumes at it, streaming refuses it.
        let c = Checkpoints::new(fresh());
        put(c.store(), vec![part(0, Some(0), 5, &[])]).await;
        assert_eq!(c.resume().await.unwrap().progress, Progress::Missing(0));
        let pieces = streamed(c.clone()).await;
        assert_eq!(pieces.len(), 1);
        assert_eq!(
            format!("{:#}", pieces[0].as_ref().unwrap_err()),
            format!(
                "{}: its next range 0 does not follow its start 0",
                c.store().name(0)
            )
        );

        // A CSV header kept with the first part heads the assembled rejected file; parts
        // written before the field existed still read.
        let c = Checkpoints::new(fresh());
        let mut first = part(0, Some(100), 100, &[]);
        first.csv_header = Some("type,value".into());
        let mut json = serde_json::to_value(part(100, None, 50, &[120])).unwrap();
        json.as_object_mut().unwrap().remove("csv_header");
        let second: Part = serde_json::from_value(json).unwrap();
        assert_eq!(second.csv_header, None);
        put(c.store(), vec![first, second]).await;
        let out = c.assemble().await.unwrap();
        assert_eq!(out.rejected_ndjson(), "type,value\nr120\n");
    }

    #[tokio::test]
    async fn the_engine_over_files() {
        let root = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU64::new(0);
        contract(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            file::FileParts::create(root.path().join(i.to_string())).unwrap()
        })
        .await;

        // A file store skips (with a warning) a checkpoint it cannot read: its range is run
        // again instead of the upload failing.
        let store = file::FileParts::create(root.path().join("corrupt")).unwrap();
        store.write(&part(0, Some(100), 100, &[])).await.unwrap();
        std::fs::write(store.dir().join(format!("{:015}.json", 100)), b"{").unwrap();
        let c = Checkpoints::new(store);
        assert_eq!(c.resume().await.unwrap().progress, Progress::Missing(100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engine_over_blobs() {
        use crate::settings::{Env, StorageSettings};
        use crate::storage::Storage;
        use crate::work::Run;

        let stack = devkit::Stack::start(Default::default())
            .await
            .expect("the stack starts (run scripts/setup-azurite.sh first)");
        let env = Env::from_pairs(stack.handler_env());
        let storage = Storage::new(
            StorageSettings::from_env(&env).unwrap(),
            crate::auth::managed_identity(None).unwrap(),
        )
        .unwrap();
        let n = std::sync::atomic::AtomicU64::new(0);
        contract(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            blob::BlobParts::new(storage.clone(), Run::new(&format!("b{i}.json"), "\"0x1\""))
        })
        .await;

        // A blob store refuses a part it cannot parse (the invocation fails and is redelivered).
        let store = blob::BlobParts::new(storage.clone(), Run::new("corrupt.json", "\"0x1\""));
        storage
            .put_report_blob(&store.name(0), b"{".to_vec())
            .await
            .unwrap();
        let err = format!(
            "{:#}",
            Checkpoints::new(store.clone()).resume().await.unwrap_err()
        );
        assert!(
            err.starts_with(&format!("{}: EOF while parsing an object", store.name(0))),
            "{err}"
        );
    }
}
