//! A local input (a file, or standard input) into the pipeline: the file read on a thread of
//! its own.

use std::path::Path;

use anyhow::{Context, Result};
use ti_core::report::{InputErrorCode, Source};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::pipeline::{self, RunContext, RunOutcome};
use crate::settings::OnInvalid;

/// Size of the reads of a local input file.
const FILE_READ_BYTES: usize = 256 * 1024;

/// A local file as a stream of chunks, read on a thread of its own with plain blocking reads
/// (`tokio::fs` would hand every read to the blocking pool and copy each chunk twice). Reads stay
/// at most two chunks ahead of the pipeline; a read buffer is reused once the pipeline has
/// dropped the chunk it held.
pub fn read_file(
    path: &Path,
) -> std::io::Result<impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    std::thread::Builder::new()
        .name("read-input".into())
        .spawn(move || {
            let mut buf = bytes::BytesMut::new();
            loop {
                buf.reserve(FILE_READ_BYTES);
                let start = buf.len();
                buf.resize(start + FILE_READ_BYTES, 0);
                let n = match f.read(&mut buf[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        buf.truncate(start);
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                buf.truncate(start + n);
                if n == 0 || tx.blocking_send(Ok(buf.split().freeze())).is_err() {
                    return;
                }
            }
        })?;
    let mut rx = rx;
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Runs `file` (`-`: standard input) through the pipeline with `ctx`.
pub async fn run_file(file: &Path, ctx: &RunContext) -> Result<RunOutcome> {
    let name = file.display().to_string();
    let source = Source {
        kind: "file".into(),
        name: if name == "-" {
            "stdin".into()
        } else {
            name.clone()
        },
        format: None,
    };
    // A file over the input bound is refused whole, as a blob is: nothing of it is uploaded.
    if let Ok(meta) = std::fs::metadata(file) {
        if meta.is_file() && meta.len() > ctx.max_input_bytes {
            let message = format!(
                "the file is {} bytes; TI_MAX_INPUT_BYTES allows {}",
                meta.len(),
                ctx.max_input_bytes
            );
            return Ok(RunOutcome::of_report(pipeline::input_error_report(
                source,
                ctx.report_target(),
                InputErrorCode::InputTooLarge,
                message,
            )));
        }
    }
    let outcome = if name == "-" {
        if ctx.uploader.settings().on_invalid == OnInvalid::RejectFile {
            // reject-file reads its input twice; standard input can only be read once.
            let mut bytes = Vec::new();
            tokio::io::stdin()
                .take(ctx.max_input_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
                .await
                .context("reading standard input")?;
            let open = || {
                let bytes = bytes.clone();
                async move { Ok::<_, std::io::Error>(ReaderStream::new(std::io::Cursor::new(bytes))) }
            };
            pipeline::run_input(open, source, ctx).await
        } else {
            pipeline::run(ReaderStream::new(tokio::io::stdin()), source, ctx).await
        }
    } else {
        let open = || async { read_file(file) };
        pipeline::run_input(open, source, ctx).await
    };
    outcome.with_context(|| format!("reading {name}"))
}
