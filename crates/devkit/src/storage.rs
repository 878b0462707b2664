//! Storage helpers for tests and the demo, through the official SDK and a token credential over
//! HTTPS — the production path (no shared key, no SAS).
//!
//! [`Storage::with_managed_identity`] builds `ManagedIdentityCredential`, which reads
//! `IDENTITY_ENDPOINT` from the *process* environment when it is built (the SDK offers no way to
//! pass the endpoint), so call [`crate::TestEnv::global`] (or let [`crate::Stack::start`] do it)
//! before building one in-process.

use anyhow::{Context, Result};
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode, Url};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
use azure_storage_blob::BlobServiceClient;
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage,
};
use azure_storage_queue::QueueServiceClient;
use futures::TryStreamExt;
use std::sync::Arc;
use time::OffsetDateTime;

/// Blob and queue clients for one storage account. Cheap to clone (the SDK clients are not
/// `Clone`, so they are shared).
#[derive(Clone)]
pub struct Storage {
    blob: Arc<BlobServiceClient>,
    queue: Arc<QueueServiceClient>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("blob_url", &self.blob.url().as_str())
            .field("queue_url", &self.queue.url().as_str())
            .finish()
    }
}

/// A message taken from a queue (visible to nobody else until its visibility timeout ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message id.
    pub id: String,
    /// Needed to delete or update this dequeue of the message.
    pub pop_receipt: String,
    /// The message text exactly as stored.
    pub text: String,
    /// How many times it was dequeued, this time included.
    pub dequeue_count: u32,
    /// When it was enqueued.
    pub insertion_time: Option<OffsetDateTime>,
    /// When it expires.
    pub expiration_time: Option<OffsetDateTime>,
    /// When it becomes visible again.
    pub next_visible_time: Option<OffsetDateTime>,
}

/// A `ManagedIdentityCredential` for the system-assigned identity, or the user-assigned one with
/// this client id. The SDK never reads `AZURE_CLIENT_ID` itself.
pub fn managed_identity_credential(client_id: Option<&str>) -> Result<Arc<dyn TokenCredential>> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_string())),
        ..ManagedIdentityCredentialOptions::default()
    };
    crate::install_crypto_provider();
    let credential = ManagedIdentityCredential::new(Some(options))
        .context("building ManagedIdentityCredential")?;
    Ok(credential)
}

impl Storage {
    /// Clients for `blob_url`/`queue_url` (`https://…/devstoreaccount1`, no trailing slash).
    pub fn new(
        blob_url: &str,
        queue_url: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Storage> {
        let blob = BlobServiceClient::new(service_url(blob_url)?, Some(credential.clone()), None)
            .context("building the blob client")?;
        let queue = QueueServiceClient::new(service_url(queue_url)?, Some(credential), None)
            .context("building the queue client")?;
        Ok(Storage {
            blob: Arc::new(blob),
            queue: Arc::new(queue),
        })
    }

    /// Clients authenticated by `ManagedIdentityCredential` (see the module doc).
    pub fn with_managed_identity(
        blob_url: &str,
        queue_url: &str,
        client_id: Option<&str>,
    ) -> Result<Storage> {
        Storage::new(blob_url, queue_url, managed_identity_credential(client_id)?)
    }

    /// The SDK blob service client, for anything the helpers do not cover.
    pub fn blob_service(&self) -> &BlobServiceClient {
        &self.blob
    }

    /// The SDK queue service client.
    pub fn queue_service(&self) -> &QueueServiceClient {
        &self.queue
    }

    /// Creates a container; an existing one is fine.
    pub async fn create_container(&self, name: &str) -> Result<()> {
        match self.blob.blob_container_client(name).create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("creating container {name}")),
        }
    }

    /// Creates a queue; an existing one is fine.
    pub async fn create_queue(&self, name: &str) -> Result<()> {
        let client = self.queue.queue_client(name)?;
        match client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("creating queue {name}")),
        }
    }

    /// Uploads (or overwrites) a block blob.
    pub async fn upload_blob(
        &self,
        container: &str,
        name: &str,
        content: impl Into<Vec<u8>>,
    ) -> Result<()> {
        self.blob
            .blob_client(container, name)
            .upload(RequestContent::from(content.into()), None)
            .await
            .with_context(|| format!("uploading {container}/{name}"))?;
        Ok(())
    }

    /// Deletes a blob; absent is fine.
    pub async fn delete_blob(&self, container: &str, name: &str) -> Result<()> {
        match self.blob.blob_client(container, name).delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {container}/{name}")),
        }
    }

    /// Reads a whole blob.
    pub async fn read_blob(&self, container: &str, name: &str) -> Result<Vec<u8>> {
        self.try_read_blob(container, name)
            .await?
            .with_context(|| format!("blob {container}/{name} does not exist"))
    }

    /// Reads a whole blob, `None` when it (or its container) does not exist.
    pub async fn try_read_blob(&self, container: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let client = self.blob.blob_client(container, name);
        let download = match client.download(None).await {
            Ok(d) => d,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {container}/{name}")),
        };
        let bytes = download
            .body
            .collect()
            .await
            .with_context(|| format!("reading the body of {container}/{name}"))?;
        Ok(Some(bytes.to_vec()))
    }

    /// A blob's content and its `Content-Type`, `None` when it does not exist.
    pub async fn read_blob_typed(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let client = self.blob.blob_client(container, name);
        let download = match client.download(None).await {
            Ok(d) => d,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {container}/{name}")),
        };
        let content_type = download.properties.content_type.clone();
        let bytes = download
            .body
            .collect()
            .await
            .with_context(|| format!("reading the body of {container}/{name}"))?;
        Ok(Some((bytes.to_vec(), content_type)))
    }

    /// Names of the blobs in `container` starting with `prefix` (all pages), in service order.
    pub async fn list_blobs(&self, container: &str, prefix: Option<&str>) -> Result<Vec<String>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: prefix.map(str::to_string),
            ..Default::default()
        };
        let pager = self
            .blob
            .blob_container_client(container)
            .list_blobs(Some(options))
            .with_context(|| format!("listing {container}"))?;
        let items: Vec<_> = pager
            .try_collect()
            .await
            .with_context(|| format!("listing {container}"))?;
        Ok(items.into_iter().filter_map(|item| item.name).collect())
    }

    /// Puts a message on a queue, text as is (encode it yourself if the consumer expects base64).
    pub async fn put_message(&self, queue: &str, text: &str) -> Result<()> {
        self.put_message_with(queue, text, None).await
    }

    /// Puts a message that stays invisible for `visibility_secs`.
    pub async fn put_message_with(
        &self,
        queue: &str,
        text: &str,
        visibility_secs: Option<i32>,
    ) -> Result<()> {
        let message = QueueMessage {
            message_text: Some(text.to_string()),
        };
        let options = QueueClientSendMessageOptions {
            visibility_timeout: visibility_secs,
            ..Default::default()
        };
        self.queue
            .queue_client(queue)?
            .send_message(message.try_into()?, Some(options))
            .await
            .with_context(|| format!("sending a message to {queue}"))?;
        Ok(())
    }

    /// Texts of up to `max` (1–32) visible messages, without dequeuing them.
    pub async fn peek_messages(&self, queue: &str, max: u8) -> Result<Vec<String>> {
        let options = azure_storage_queue::models::QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::from(max.clamp(1, 32))),
            ..Default::default()
        };
        let peeked = self
            .queue
            .queue_client(queue)?
            .peek_messages(Some(options))
            .await
            .with_context(|| format!("peeking {queue}"))?
            .into_model()?;
        Ok(peeked
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.message_text)
            .collect())
    }

    /// Dequeues up to `max` (1–32) messages, invisible to others for `visibility_secs`.
    pub async fn receive_messages(
        &self,
        queue: &str,
        max: u8,
        visibility_secs: i32,
    ) -> Result<Vec<ReceivedMessage>> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::from(max.clamp(1, 32))),
            visibility_timeout: Some(visibility_secs),
            ..Default::default()
        };
        let received = self
            .queue
            .queue_client(queue)?
            .receive_messages(Some(options))
            .await
            .with_context(|| format!("receiving from {queue}"))?
            .into_model()?;
        Ok(received
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| ReceivedMessage {
                id: m.message_id.unwrap_or_default(),
                pop_receipt: m.pop_receipt.unwrap_or_default(),
                text: m.message_text.unwrap_or_default(),
                dequeue_count: m
                    .dequeue_count
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(1),
                insertion_time: m.insertion_time,
                expiration_time: m.expiration_time,
                next_visible_time: m.time_next_visible,
            })
            .collect())
    }

    /// Deletes a received message (the host does this after a successful invocation).
    pub async fn delete_message(&self, queue: &str, message: &ReceivedMessage) -> Result<()> {
        self.queue
            .queue_client(queue)?
            .delete_message(&message.id, &message.pop_receipt, None)
            .await
            .with_context(|| format!("deleting message {} from {queue}", message.id))?;
        Ok(())
    }

    /// Keeps a received message invisible for `visibility_secs` from now (the host renews the
    /// lease of a message whose invocation is still running); returns the new pop receipt,
    /// which the next renewal or the delete must use.
    pub async fn renew_message(
        &self,
        queue: &str,
        message: &ReceivedMessage,
        visibility_secs: i32,
    ) -> Result<String> {
        let rsp = self
            .queue
            .queue_client(queue)?
            .update_message(&message.id, &message.pop_receipt, visibility_secs, None)
            .await
            .with_context(|| format!("renewing message {} on {queue}", message.id))?;
        rsp.headers()
            .get_optional_string(&azure_core::http::headers::HeaderName::from_static(
                "x-ms-popreceipt",
            ))
            .with_context(|| format!("no new pop receipt renewing message {}", message.id))
    }

    /// Makes a received message visible again after `visibility_secs` (a failed invocation).
    pub async fn release_message(
        &self,
        queue: &str,
        message: &ReceivedMessage,
        visibility_secs: i32,
    ) -> Result<()> {
        self.queue
            .queue_client(queue)?
            .update_message(&message.id, &message.pop_receipt, visibility_secs, None)
            .await
            .with_context(|| format!("releasing message {} on {queue}", message.id))?;
        Ok(())
    }
}

fn service_url(url: &str) -> Result<Url> {
    // A trailing slash would make the SDK request `//container`.
    let trimmed = url.trim_end_matches('/');
    Url::parse(trimmed).with_context(|| format!("invalid storage URL {url}"))
}
