//! The transport layer: gzip is recognised by its magic bytes and decompressed as it streams
//! (`flate2`'s push-based decoder), bounded by decompressed size and by compression ratio (a
//! guard against decompression bombs).

use std::io::Write;

use flate2::write::MultiGzDecoder;

use super::input_error;
use crate::frame::FrameError;

pub(super) enum Transport {
    /// The first bytes, until two are there to look for the gzip magic.
    Sniff(Vec<u8>),
    Plain,
    Gzip(Box<Gunzip>),
}

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a gzip output buffer is handed to: decodes it, and says whether enough records are
/// decoded for now (the rest of the input waits for the next call).
pub(super) type Sink<'a> = dyn FnMut(&[u8]) -> Result<bool, FrameError> + 'a;

/// Streaming gunzip with the size and ratio bounds.
pub(super) struct Gunzip {
    decoder: MultiGzDecoder<Vec<u8>>,
    compressed: u64,
    decompressed: u64,
    max_bytes: u64,
    max_ratio: u64,
}

/// Below this much output the ratio is not checked: small, highly repetitive files are normal.
const RATIO_GRACE_BYTES: u64 = 16 << 20;

impl Gunzip {
    pub(super) fn new(max_bytes: u64, max_ratio: u64) -> Self {
        Gunzip {
            decoder: MultiGzDecoder::new(Vec::new()),
            compressed: 0,
            decompressed: 0,
            max_bytes,
            max_ratio,
        }
    }

    fn corrupt(e: std::io::Error) -> FrameError {
        input_error(format!("the gzip data is corrupt: {e}"))
    }

    /// Each `write` decompresses at most one internal buffer (32 KiB) before returning, so the
    /// output is handed on in small pieces and the bounds are checked before memory grows.
    /// A `write` that fails may have decompressed data before the corruption, some of it still
    /// in `flate2`'s own buffer (a `flush` moves it out): that is handed on first, so the
    /// records before it count whatever the chunking (FUZZING.md F1).
    /// Returns the bytes of `input` consumed: all of them, unless `sink` said it had enough.
    pub(super) fn feed(
        &mut self,
        mut input: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<usize, FrameError> {
        let mut consumed = 0;
        while !input.is_empty() {
            let written = self.decoder.write(input);
            if written.is_err() {
                // Its own error is the same corruption again; only the data it moves matters.
                let _ = self.decoder.flush();
            }
            let enough = self.drain(sink)?;
            let n = written.map_err(Self::corrupt)?;
            if n == 0 {
                return Err(input_error(
                    "the gzip data is corrupt: unexpected bytes after the compressed stream".into(),
                ));
            }
            self.compressed += n as u64;
            consumed += n;
            input = &input[n..];
            if enough {
                break;
            }
        }
        Ok(consumed)
    }

    /// Hands on what was decompressed; `true` when the sink has enough for now.
    fn drain(&mut self, sink: &mut Sink<'_>) -> Result<bool, FrameError> {
        let out = self.decoder.get_mut();
        if out.is_empty() {
            return Ok(false);
        }
        let before = self.decompressed;
        self.decompressed += out.len() as u64;
        if self.decompressed > self.max_bytes {
            // The bytes up to the bound are handed on first, so where the pieces were cut does
            // not change which records come before the error.
            let within =
                usize::try_from(self.max_bytes.saturating_sub(before)).unwrap_or(usize::MAX);
            let r = sink(&out[..within.min(out.len())]);
            out.clear();
            r?;
            return Err(input_error(format!(
                "the gzip input decompresses to more than {} bytes, the decompressed-size bound",
                self.max_bytes
            )));
        }
        if self.decompressed > RATIO_GRACE_BYTES
            && self.decompressed > self.compressed.saturating_mul(self.max_ratio)
        {
            return Err(input_error(format!(
                "the gzip input expands more than {}× ({} compressed bytes gave {} bytes), the compression-ratio bound that guards against decompression bombs",
                self.max_ratio, self.compressed, self.decompressed
            )));
        }
        let r = sink(out);
        out.clear();
        r
    }

    pub(super) fn finish(&mut self, sink: &mut Sink<'_>) -> Result<(), FrameError> {
        if self.compressed == 0 {
            return Ok(());
        }
        // `try_finish` flushes what is left and checks the trailer (CRC and length), so a
        // truncated file is an error rather than silently short.
        loop {
            let before = self.decompressed;
            let r = self.decoder.flush();
            self.drain(sink)?;
            r.map_err(Self::corrupt)?;
            if self.decompressed == before {
                break;
            }
        }
        let r = self.decoder.try_finish();
        self.drain(sink)?;
        r.map_err(|e| input_error(format!("the gzip data is truncated or corrupt: {e}")))
    }
}
