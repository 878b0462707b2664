//! HTTPS feeds: one conditional GET (`If-None-Match` with the saved ETag, `If-Modified-Since`
//! with the saved Last-Modified), so an unchanged feed costs one request and uploads nothing.
//! A changed feed's body is streamed into the pipeline as it arrives, in whatever format it is
//! (gzip included: no `Accept-Encoding` is sent, so a `.gz` arrives as the file it is and the
//! pipeline's bounded decompression handles it).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;

use super::config::HttpsFeed;
use super::state::FeedState;
use super::FetchError;

/// The answer to the conditional GET.
pub enum Fetched {
    /// 304: nothing changed since the saved validators.
    NotModified,
    /// The feed's content, streamed; a transport error mid-body ends the stream and is put in
    /// `error` (so what was read is still processed, and the caller knows not to advance).
    Changed {
        body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::convert::Infallible>> + Send>>,
        error: Arc<Mutex<Option<FetchError>>>,
        etag: Option<String>,
        last_modified: Option<String>,
        len: Option<u64>,
    },
}

pub async fn fetch(
    http: &reqwest::Client,
    feed: &HttpsFeed,
    auth: HeaderMap,
    state: &FeedState,
) -> Result<Fetched, FetchError> {
    let mut request = http.get(feed.url.clone()).headers(auth);
    if let Some(etag) = &state.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &state.last_modified {
        request = request.header(IF_MODIFIED_SINCE, lm);
    }
    let response = request
        .send()
        .await
        .map_err(|e| FetchError::from_reqwest(&e))?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
            body: super::body_excerpt(response).await,
        });
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(ETAG);
    let last_modified = header(LAST_MODIFIED);
    let len = response.content_length();
    let error = Arc::new(Mutex::new(None));
    let cell = error.clone();
    let body = futures::stream::unfold(
        (Box::pin(response.bytes_stream()), cell),
        |(mut s, cell)| async move {
            match s.next().await {
                Some(Ok(b)) => Some((Ok(b), (s, cell))),
                Some(Err(e)) => {
                    *cell.lock().expect("error cell") = Some(FetchError::from_reqwest(&e));
                    None
                }
                None => None,
            }
        },
    );
    Ok(Fetched::Changed {
        body: Box::pin(body),
        error,
        etag,
        last_modified,
        len,
    })
}
