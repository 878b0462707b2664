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
};
use azure_storage_blob::BlobServiceClient;
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use azure_storage_queue::QueueServiceClient;
use bytes::Bytes;
use futures::Stream;
use futures::TryStreamExt;
use ti_core::report::html::{write_page, PageFiles};
use ti_core::report::Report;
use time::OffsetDateTime;

use crate::auth::Credential;
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

    /// Writes `<path>.report.json` and, when records were rejected, `<path>.rejected.ndjson`.
    /// A stale `rejected.ndjson` from an earlier run of the same path is replaced by an empty one.
    pub async fn write_report(
        &self,
        path: &str,
        report: &Report,
        rejected_ndjson: &str,
        had_rejected_before: bool,
    ) -> Result<()> {
        if !rejected_ndjson.is_empty() || had_rejected_before {
            self.put_report_blob(
                &format!("{path}.rejected.ndjson"),
                rejected_ndjson.as_bytes().to_vec(),
            )
            .await?;
        }
        let json = serde_json::to_vec_pretty(report).context("serialising the report")?;
        // The report goes last: its presence means the run is complete.
        self.put_report_blob(&format!("{path}.report.json"), json)
            .await
    }

    /// Writes `<path>.report.html`, the report as a page a person reads (ti-core's
    /// `report::html`), as `text/html` so a browser opening the blob renders it. `original` gives a
    /// rejected record's original text by `recordIndex`. Called before [`Storage::write_report`]:
    /// the JSON report goes last, its presence meaning the run is complete.
    pub async fn put_report_page<'a>(
        &self,
        path: &str,
        report: &Report,
        original: impl Fn(u64) -> Option<&'a str>,
    ) -> Result<()> {
        let container = &self.settings.reports_container;
        let files = PageFiles {
            report: format!("{container}/{path}.report.json"),
            rejected: report
                .errors
                .iter()
                .any(|e| original(e.record_index).is_some())
                .then(|| format!("{container}/{path}.rejected.ndjson")),
        };
        // Bounded: a page stays under 1 MB whatever the report (ti-core's ENTRY_BUDGET_BYTES).
        let mut page = Vec::new();
        write_page(&mut page, report, original, files).context("rendering the report page")?;
        let name = format!("{path}.report.html");
        let options = BlobClientUploadOptions {
            blob_content_type: Some("text/html; charset=utf-8".into()),
            ..Default::default()
        };
        self.service
            .blob_container_client(container)
            .blob_client(&name)
            .upload(RequestContent::from(page), Some(options))
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

/// Azure's limit on a blob name: "A blob name must be at least one character long and cannot be
/// more than 1,024 characters long" (Microsoft Learn, "Naming and Referencing Containers, Blobs,
/// and Metadata", learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
pub const MAX_BLOB_NAME_CHARS: usize = 1024;
/// The longest suffix the app appends to a report path (`.rejected.ndjson`).
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
