//! Storage through the official SDK (`azure_storage_blob` 1.x) with the token credential only:
//! inbox blobs are read as a stream of chunks (never held whole in memory), reports and rejected
//! records are written to the reports container (docs/REPORTS.md).

use std::num::NonZero;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use azure_core::http::Etag;
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
    BlockLookupList,
};
use azure_storage_blob::BlobServiceClient;
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use azure_storage_queue::QueueServiceClient;
use bytes::Bytes;
use futures::Stream;
use futures::{StreamExt, TryStreamExt};
use ti_core::report::html::{Page, PageFiles};
use ti_core::report::{Report, ReportSplit};
use time::OffsetDateTime;

use crate::auth::Credential;
use crate::pipeline::RunOutcome;
use crate::settings::StorageSettings;

/// A blob's content as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, azure_core::Error>> + Send>>;

/// Why a blob could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The blob (or its container) does not exist: retrying will not help.
    #[error("blob {container}/{name} not found")]
    NotFound { container: String, name: String },
    /// The blob was replaced since the version asked for: a newer run handles it.
    #[error("blob {container}/{name} changed since this work began")]
    Changed { container: String, name: String },
    /// Anything else (network, throttling, auth): worth retrying.
    #[error("opening blob {container}/{name}: {source}")]
    Other {
        container: String,
        name: String,
        source: azure_core::Error,
    },
}

/// A blob as a listing shows it.
#[derive(Debug, Clone)]
pub struct ListedBlob {
    pub name: String,
    pub modified: Option<OffsetDateTime>,
    pub etag: String,
}

/// A message received from a queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub pop_receipt: String,
    pub text: String,
    pub dequeue_count: i64,
}

/// An opened inbox blob.
pub struct OpenedBlob {
    pub stream: ByteStream,
    pub len: Option<u64>,
    /// The version read: work items carry it so every item reads the same content.
    pub etag: String,
}

/// The app's storage account.
#[derive(Clone)]
pub struct Storage {
    service: Arc<BlobServiceClient>,
    queues: Arc<QueueServiceClient>,
    pub settings: StorageSettings,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("blob_url", &self.settings.blob_url.as_str())
            .finish()
    }
}

impl Storage {
    pub fn new(settings: StorageSettings, credential: Credential) -> Result<Self> {
        crate::install_crypto_provider();
        let service =
            BlobServiceClient::new(settings.blob_url.clone(), Some(credential.clone()), None)
                .context("creating the blob service client")?;
        let queues =
            QueueServiceClient::new(settings.queue_url.clone(), Some(credential.clone()), None)
                .context("creating the queue service client")?;
        Ok(Storage {
            service: Arc::new(service),
            queues: Arc::new(queues),
            settings,
        })
    }

    /// The account's blob client, shared with what else reads the app's storage (the feeds
    /// configuration and state: [`crate::pull`]).
    pub fn blob_service(&self) -> Arc<BlobServiceClient> {
        self.service.clone()
    }

    /// Opens a blob of the inbox container for streaming; returns its length when known.
    pub async fn open_inbox_blob(
        &self,
        name: &str,
    ) -> Result<(ByteStream, Option<u64>), OpenError> {
        self.open_inbox_version(name, None)
            .await
            .map(|o| (o.stream, o.len))
    }

    /// Opens a blob of the inbox container for streaming, only in the version `etag` when given
    /// (a blob replaced since answers `Changed`).
    pub async fn open_inbox_version(
        &self,
        name: &str,
        etag: Option<&str>,
    ) -> Result<OpenedBlob, OpenError> {
        let container = &self.settings.inbox_container;
        let blob = self
            .service
            .blob_container_client(container)
            .blob_client(name);
        // The SDK's defaults (8 parallel 4 MiB ranges, up to 16 buffered ahead of the reader)
        // would hold ~64 MiB per open blob; the pipeline reads sequentially, so two 1 MiB
        // ranges keep the download ahead of it with a few MiB.
        let options = BlobClientDownloadOptions {
            if_match: etag.map(|e| Etag::from(e.to_string())),
            parallel: NonZero::new(2),
            partition_size: NonZero::new(1 << 20),
            ..Default::default()
        };
        match blob.download(Some(options)).await {
            Ok(result) => {
                let len = result.properties.content_length;
                let etag = result
                    .properties
                    .etag
                    .as_ref()
                    .map(|e| crate::work::canonical_etag(e.as_ref()))
                    .unwrap_or_default();
                Ok(OpenedBlob {
                    stream: Box::pin(result.body),
                    len,
                    etag,
                })
            }
            Err(e) if e.http_status() == Some(StatusCode::PreconditionFailed) => {
                Err(OpenError::Changed {
                    container: container.clone(),
                    name: name.to_string(),
                })
            }
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Err(OpenError::NotFound {
                container: container.clone(),
                name: name.to_string(),
            }),
            Err(e) => Err(OpenError::Other {
                container: container.clone(),
                name: name.to_string(),
                source: e,
            }),
        }
    }

    /// Writes a blob of the reports container, replacing any earlier version.
    pub async fn put_report_blob(&self, name: &str, content: Vec<u8>) -> Result<()> {
        let client = self
            .service
            .blob_container_client(&self.settings.reports_container)
            .blob_client(name);
        client
            .upload(RequestContent::from(content), None)
            .await
            .with_context(|| format!("writing {}/{}", self.settings.reports_container, name))?;
        Ok(())
    }

    /// Writes a report and the files beside it from its pieces in record order (one run's
    /// outcome, or a run's checkpointed ranges read one at a time), and returns the report as
    /// written:
    /// - `<path>.report.json`: the first [`ti_core::report::REPORT_MAX_ENTRIES`] errors and warnings, with
    ///   `errorCounts`/`warningCounts` for all of them, and `moreErrorsIn`/`moreWarningsIn`
    ///   naming the file with the rest when there are more;
    /// - `<path>.errors.ndjson` / `<path>.warnings.ndjson`: those further entries, one per line;
    /// - `<path>.rejected.ndjson`: every rejected record's text (after a CSV input's header);
    /// - `<path>.report.html`: the page a person reads (ti-core's `report::html`), fed the same
    ///   entries as they pass and bounded whatever the report (under 1 MB).
    ///
    /// Every file is streamed a block at a time ([`REPORT_BLOCK_BYTES`]), so memory holds one
    /// piece, the listed entries and one block per file, whatever the report's size. The report
    /// goes last: its presence means the run is complete. `replace`: an earlier report may exist
    /// at `path`, so a stale rejected file is replaced by an empty one and stale overflow files
    /// are removed, leaving nothing beside the new report that is not its own.
    pub async fn write_report<S>(&self, path: &str, mut pieces: S, replace: bool) -> Result<Report>
    where
        S: Stream<Item = Result<RunOutcome>> + Unpin,
    {
        let errors_name = format!("{path}.errors.ndjson");
        let warnings_name = format!("{path}.warnings.ndjson");
        let rejected_name = format!("{path}.rejected.ndjson");
        let mut errors = BlockWriter::new(self, &errors_name);
        let mut warnings = BlockWriter::new(self, &warnings_name);
        let mut rejected = BlockWriter::new(self, &rejected_name);
        let mut split: Option<ReportSplit> = None;
        let mut page: Option<Page> = None;
        let mut any_rejected_text = false;
        let mut csv_header: Option<String> = None;
        while let Some(piece) = pieces.next().await {
            let RunOutcome {
                report,
                rejected: lines,
                csv_header: header,
                ..
            } = piece?;
            csv_header = csv_header.or(header);
            let split = match &mut split {
                None => split.insert(ReportSplit::new(report.clone_head())),
                Some(s) => {
                    let head = s.head_mut();
                    head.finished_at = report.finished_at.clone();
                    head.input_error = report.input_error.clone();
                    head.summary.records += report.summary.records;
                    head.summary.uploaded += report.summary.uploaded;
                    head.summary.rejected += report.summary.rejected;
                    if head.source.format.is_none() {
                        head.source.format = report.source.format.clone();
                    }
                    s
                }
            };
            let page = page.get_or_insert_with(|| Page::new(&report, PageFiles::default()));
            for e in report.errors {
                // `rejected` is sorted by index (RunOutcome::original).
                let original = lines
                    .binary_search_by_key(&e.record_index, |(i, _)| *i)
                    .ok()
                    .map(|at| lines[at].1.as_str());
                page.add_error(&e, original);
                split.error(e, &mut errors.buf);
                errors.stage_full().await?;
            }
            for w in report.warnings {
                page.add_warning(&w);
                split.warning(w, &mut warnings.buf);
                warnings.stage_full().await?;
            }
            any_rejected_text |= !lines.is_empty();
            for (_, text) in lines {
                if rejected.is_empty() {
                    if let Some(h) = &csv_header {
                        rejected.buf.extend_from_slice(h.as_bytes());
                        rejected.buf.push(b'\n');
                    }
                }
                rejected.buf.extend_from_slice(text.as_bytes());
                rejected.buf.push(b'\n');
                rejected.stage_full().await?;
            }
        }
        let split = split.context("a report needs at least one piece")?;
        let wrote_errors = errors.finish().await?;
        let wrote_warnings = warnings.finish().await?;
        if !rejected.finish().await? && replace && self.report_blob_exists(&rejected_name).await? {
            self.put_report_blob(&rejected_name, Vec::new()).await?;
        }
        if replace {
            for (wrote, name) in [
                (wrote_errors, &errors_name),
                (wrote_warnings, &warnings_name),
            ] {
                if !wrote {
                    self.delete_report_blob(name).await?;
                }
            }
        }
        let report = split.finish(Some(errors_name), Some(warnings_name));
        // The page before the report: the report's presence means the run is complete.
        let container = &self.settings.reports_container;
        let mut page = page.context("a report needs at least one piece")?;
        page.set_heading(&report);
        page.set_files(PageFiles {
            report: format!("{container}/{path}.report.json"),
            rejected: any_rejected_text.then(|| format!("{container}/{rejected_name}")),
            more_errors: report
                .more_errors_in
                .as_ref()
                .map(|n| format!("{container}/{n}")),
            more_warnings: report
                .more_warnings_in
                .as_ref()
                .map(|n| format!("{container}/{n}")),
        });
        self.put_report_page(path, &page).await?;
        let json = serde_json::to_vec_pretty(&report).context("serialising the report")?;
        // The report goes last: its presence means the run is complete.
        self.put_report_blob(&format!("{path}.report.json"), json)
            .await?;
        Ok(report)
    }

    /// Whether a reports-container blob exists (its properties, not its content, are read).
    pub async fn report_blob_exists(&self, name: &str) -> Result<bool> {
        self.service
            .blob_container_client(&self.settings.reports_container)
            .blob_client(name)
            .exists()
            .await
            .with_context(|| format!("looking for {name}"))
    }

    /// Writes `<path>.report.html` as `text/html`, so a browser opening the blob renders it.
    async fn put_report_page(&self, path: &str, page: &Page) -> Result<()> {
        let container = &self.settings.reports_container;
        // Bounded: a page stays under 1 MB whatever the report (ti-core's ENTRY_BUDGET_BYTES).
        let mut html = Vec::new();
        page.write_to(&mut html)
            .context("rendering the report page")?;
        let name = format!("{path}.report.html");
        let options = BlobClientUploadOptions {
            blob_content_type: Some("text/html; charset=utf-8".into()),
            ..Default::default()
        };
        self.service
            .blob_container_client(container)
            .blob_client(&name)
            .upload(RequestContent::from(html), Some(options))
            .await
            .with_context(|| format!("writing {container}/{name}"))?;
        Ok(())
    }

    /// Creates a reports-container blob only if it does not exist yet; `false` when it did.
    /// Used as a once-only marker: whoever creates it does the guarded work.
    pub async fn create_report_blob_once(&self, name: &str, content: Vec<u8>) -> Result<bool> {
        let client = self
            .service
            .blob_container_client(&self.settings.reports_container)
            .blob_client(name);
        let options = BlobClientUploadOptions::default().if_not_exists();
        match client
            .upload(RequestContent::from(content), Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("creating {name}")),
        }
    }

    /// Names of the reports-container blobs starting with `prefix`, in name order.
    pub async fn list_report_blobs(&self, prefix: &str) -> Result<Vec<String>> {
        self.list_blobs(&self.settings.reports_container, prefix)
            .await
    }

    /// The inbox blobs (all pages).
    pub async fn list_inbox_blobs(&self) -> Result<Vec<ListedBlob>> {
        self.list_with_properties(&self.settings.inbox_container, None)
            .await
    }

    /// The reports-container blobs starting with `prefix`, with their properties.
    pub async fn list_report_blobs_with_properties(&self, prefix: &str) -> Result<Vec<ListedBlob>> {
        self.list_with_properties(&self.settings.reports_container, Some(prefix))
            .await
    }

    async fn list_with_properties(
        &self,
        container: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ListedBlob>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: prefix.map(str::to_string),
            ..Default::default()
        };
        let pager = self
            .service
            .blob_container_client(container)
            .list_blobs(Some(options))
            .with_context(|| format!("listing {container}"))?;
        let items: Vec<_> = pager
            .try_collect()
            .await
            .with_context(|| format!("listing {container}"))?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let (modified, etag) = i
                    .properties
                    .as_ref()
                    .map(|p| (p.last_modified, p.etag.as_ref().map(|e| e.to_string())))
                    .unwrap_or((None, None));
                i.name.map(|name| ListedBlob {
                    name,
                    modified,
                    // Listings give the ETag unquoted, downloads quoted: one form everywhere.
                    etag: etag
                        .map(|e| crate::work::canonical_etag(&e))
                        .unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Dequeues up to 32 messages of a queue (invisible to others for `visibility_secs`); a
    /// queue that does not exist is empty.
    pub async fn receive(&self, queue: &str, visibility_secs: i32) -> Result<Vec<Received>> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(32),
            visibility_timeout: Some(visibility_secs),
            ..Default::default()
        };
        let client = self
            .queues
            .queue_client(queue)
            .with_context(|| format!("the queue client for {queue}"))?;
        let received = match client.receive_messages(Some(options)).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(vec![]),
            Err(e) => return Err(e).with_context(|| format!("receiving from {queue}")),
        };
        Ok(received
            .into_model()?
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                id: m.message_id.unwrap_or_default(),
                pop_receipt: m.pop_receipt.unwrap_or_default(),
                text: m.message_text.unwrap_or_default(),
                dequeue_count: m.dequeue_count.unwrap_or(0),
            })
            .collect())
    }

    /// Deletes a received message.
    pub async fn delete_message(&self, queue: &str, message: &Received) -> Result<()> {
        self.queues
            .queue_client(queue)
            .with_context(|| format!("the queue client for {queue}"))?
            .delete_message(&message.id, &message.pop_receipt, None)
            .await
            .with_context(|| format!("deleting message {} from {queue}", message.id))?;
        Ok(())
    }

    async fn list_blobs(&self, container: &str, prefix: &str) -> Result<Vec<String>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        };
        let pager = self
            .service
            .blob_container_client(container)
            .list_blobs(Some(options))
            .with_context(|| format!("listing {container}/{prefix}"))?;
        let items: Vec<_> = pager
            .try_collect()
            .await
            .with_context(|| format!("listing {container}/{prefix}"))?;
        let mut names: Vec<String> = items.into_iter().filter_map(|i| i.name).collect();
        names.sort();
        Ok(names)
    }

    /// Deletes a reports-container blob; absent is fine.
    pub async fn delete_report_blob(&self, name: &str) -> Result<()> {
        let client = self
            .service
            .blob_container_client(&self.settings.reports_container)
            .blob_client(name);
        match client.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {name}")),
        }
    }

    /// Puts a message on one of the app's queues (JSON, as the app's own messages are).
    pub async fn enqueue(&self, queue: &str, text: &str) -> Result<()> {
        let message = QueueMessage {
            message_text: Some(text.to_string()),
        };
        self.queues
            .queue_client(queue)
            .with_context(|| format!("the queue client for {queue}"))?
            .send_message(message.try_into()?, None)
            .await
            .with_context(|| format!("sending a message to {queue}"))?;
        Ok(())
    }

    /// Reads a reports-container blob, `None` when absent.
    pub async fn read_report_blob(&self, name: &str) -> Result<Option<Bytes>> {
        let client = self
            .service
            .blob_container_client(&self.settings.reports_container)
            .blob_client(name);
        match client.download(None).await {
            Ok(r) => Ok(Some(
                r.body.collect().await.context("reading a report blob")?,
            )),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {name}")),
        }
    }
}

/// The size of the blocks a streamed report file is written in ("Put Block": a block blob is
/// up to 50,000 blocks of up to 4,000 MiB each, committed by "Put Block List" —
/// learn.microsoft.com/rest/api/storageservices/put-block). 4 MiB blocks hold a file of up to
/// ~195 GiB, far past what one input (`TI_MAX_INPUT_BYTES`) can produce.
pub const REPORT_BLOCK_BYTES: usize = 4 << 20;

/// One outcome as the pieces of [`Storage::write_report`].
pub fn single(
    outcome: RunOutcome,
) -> futures::stream::Iter<std::array::IntoIter<Result<RunOutcome>, 1>> {
    futures::stream::iter([Ok(outcome)])
}

/// A reports-container blob written a block at a time: the caller appends to `buf`, full
/// blocks are staged as they fill, and `finish` commits them (or, for a file that never filled
/// a block, uploads it in one request).
struct BlockWriter<'a> {
    storage: &'a Storage,
    name: &'a str,
    buf: Vec<u8>,
    blocks: Vec<Vec<u8>>,
}

impl<'a> BlockWriter<'a> {
    fn new(storage: &'a Storage, name: &'a str) -> Self {
        BlockWriter {
            storage,
            name,
            buf: Vec::new(),
            blocks: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.blocks.is_empty()
    }

    fn client(&self) -> azure_storage_blob::BlockBlobClient {
        self.storage
            .service
            .blob_container_client(&self.storage.settings.reports_container)
            .blob_client(self.name)
            .block_blob_client()
    }

    /// Stages `buf` as a block once it holds a block's worth.
    async fn stage_full(&mut self) -> Result<()> {
        if self.buf.len() >= REPORT_BLOCK_BYTES {
            self.stage().await?;
        }
        Ok(())
    }

    async fn stage(&mut self) -> Result<()> {
        // Block ids must all have the same length within a blob (Put Block).
        let id = format!("{:010}", self.blocks.len()).into_bytes();
        let body = std::mem::take(&mut self.buf);
        let len = body.len() as u64;
        self.client()
            .stage_block(&id, len, RequestContent::from(body), None)
            .await
            .with_context(|| format!("writing a block of {}", self.name))?;
        self.blocks.push(id);
        Ok(())
    }

    /// Writes what was appended; `false` when nothing was (nothing is written then).
    async fn finish(mut self) -> Result<bool> {
        if self.blocks.is_empty() {
            if self.buf.is_empty() {
                return Ok(false);
            }
            let content = std::mem::take(&mut self.buf);
            self.storage.put_report_blob(self.name, content).await?;
            return Ok(true);
        }
        if !self.buf.is_empty() {
            self.stage().await?;
        }
        let list = BlockLookupList {
            latest: Some(std::mem::take(&mut self.blocks)),
            ..Default::default()
        };
        self.client()
            .commit_block_list(list.try_into()?, None)
            .await
            .with_context(|| format!("committing {}", self.name))?;
        Ok(true)
    }
}

/// Azure's limit on a blob name: "A blob name must be at least one character long and cannot be
/// more than 1,024 characters long" (Microsoft Learn, "Naming and Referencing Containers, Blobs,
/// and Metadata", learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
pub const MAX_BLOB_NAME_CHARS: usize = 1024;
/// The longest suffix the app appends to a report path (`.rejected.ndjson`, as long as
/// `.warnings.ndjson`).
const LONGEST_REPORT_SUFFIX: usize = ".rejected.ndjson".len();
/// `~` and 16 hex digits of the name's hash.
const HASH_TAIL: usize = 17;

/// The reports-container path (before `.report.json` / `.rejected.ndjson`) for inbox blob `name`:
/// the name itself when `<name>.rejected.ndjson` fits Azure's 1,024-character limit on blob
/// names; otherwise the name's first 991 characters, `~`, and the first 16 hex digits of
/// uuidv5(name) (SHA-1 based), so the path stays within the limit, stays unique for different
/// names, and still begins with (most of) the input's name: list the reports container with the
/// input name's first characters as prefix to find it.
pub fn blob_report_base(name: &str) -> String {
    if name.chars().count() + LONGEST_REPORT_SUFFIX <= MAX_BLOB_NAME_CHARS {
        return name.to_string();
    }
    let keep = MAX_BLOB_NAME_CHARS - LONGEST_REPORT_SUFFIX - HASH_TAIL;
    let head: String = name.chars().take(keep).collect();
    let hash = uuid::Uuid::new_v5(&REPORT_NAME_NAMESPACE, name.as_bytes())
        .simple()
        .to_string();
    format!("{head}~{}", &hash[..16])
}

/// Namespace of [`blob_report_base`]'s hash (fixed forever: it names reports already written).
const REPORT_NAME_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x3b6f_0c1e_52a7_4d09_9e8b_71c4_d2a5_0f36);

/// The reports-container path for a queue or HTTP input: `messages/<yyyy>/<mm>/<dd>/<id>`.
pub fn message_report_path(message_id: &str, at: OffsetDateTime) -> String {
    let safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    format!(
        "messages/{:04}/{:02}/{:02}/{}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        if safe.is_empty() { "unnamed" } else { &safe }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_stay_within_the_blob_name_limit() {
        assert_eq!(blob_report_base("feeds/a.json"), "feeds/a.json");
        // The longest name kept whole: 1,008 + 16 characters for `.rejected.ndjson`.
        let fits = "a".repeat(1008);
        assert_eq!(blob_report_base(&fits), fits);
        for name in [
            "b".repeat(1009),
            "c".repeat(1024),
            format!("{}/x.json", "é".repeat(1010)),
        ] {
            let base = blob_report_base(&name);
            assert_eq!(
                base.chars().count() + ".rejected.ndjson".len(),
                1024,
                "{base}"
            );
            assert!(name.starts_with(&base[..base.len() - 17]));
            assert_eq!(base.as_bytes()[base.len() - 17], b'~');
        }
        // Unique: names differing only after the cut get different paths.
        let a = format!("{}a", "x".repeat(1020));
        let b = format!("{}b", "x".repeat(1020));
        assert_ne!(blob_report_base(&a), blob_report_base(&b));
        assert_eq!(
            blob_report_base(&a),
            format!(
                "{}~{}",
                "x".repeat(991),
                &uuid::Uuid::new_v5(&REPORT_NAME_NAMESPACE, a.as_bytes())
                    .simple()
                    .to_string()[..16]
            )
        );
    }

    #[test]
    fn message_report_paths_are_dated_and_safe() {
        let at = time::macros::datetime!(2026-11-02 10:00 UTC);
        assert_eq!(
            message_report_path("52d53c5f-e212-487e-998b-abbe3b9d51e4", at),
            "messages/2026/11/02/52d53c5f-e212-487e-998b-abbe3b9d51e4"
        );
        assert_eq!(
            message_report_path("../../x", at),
            "messages/2026/11/02/______x"
        );
    }
}
