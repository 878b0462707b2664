//! Reading a local input file on a thread of its own.

use std::path::Path;

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
