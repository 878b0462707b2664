//! Input decoding: format detection, decompression, character decoding and per-format record
//! decoding, push-based, so the pipeline feeds it from blob streams or files alike.
//!
//! Layers, each streaming with bounded memory (README.md, How it works):
//! 1. **transport**: gzip magic bytes → streaming gunzip (`flate2`'s push-based decoder), bounded
//!    by decompressed size and by compression ratio (a guard against decompression bombs);
//! 2. **characters**: a UTF-8 byte-order mark is skipped; UTF-16 LE/BE (what Windows PowerShell
//!    5.1's `Out-File` and `>` write, with or without a BOM) is decoded to UTF-8, chunk-boundary
//!    safe; UTF-32 is refused with a message naming it;
//! 3. **format**: detected from the first bytes unless forced (`TI_FORMAT` / `--format`): `[`/`{`
//!    → JSON through the [`Framer`] (bundle, array, single object, Sentinel request, Graph
//!    `{"value":[…]}`), switching to NDJSON when a first one-line object is followed by another
//!    object on a later line; a first line (after blank and `#` comment lines) that is a known
//!    CSV header within the record bound → CSV; else text. Decided the same however the input
//!    is cut into chunks. `prose` (indicators in running text, [`prose`]) is only ever forced;
//! 4. **records**: each record becomes a [`Decoded`] — a STIX 2.1 object ready for
//!    [`crate::stix::validate`] (tiIndicators, CSV rows and text lines are converted by
//!    [`crate::convert`]) or the problem that stopped it — with its 0-based index, 1-based line
//!    and original text.
//!
//! JSON records may carry trailing commas inside objects (the Graph documentation's example
//! does); they are removed with a `normalised` warning.

mod lines;
mod prose;

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use flate2::write::MultiGzDecoder;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::convert::{self, rows::CsvHeader, Defaults};
use crate::frame::{self, FrameError, FrameItem, FrameLimits, Framer};
use crate::report::Code;
use crate::stix::{self, Problem};
use lines::{Line, Lines};

/// The input formats of README.md, How it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    StixBundle,
    StixJson,
    Ndjson,
    SentinelRequest,
    Graph,
    Csv,
    Text,
    /// Indicators extracted from running text (a report, a blog post); only when forced.
    Prose,
}

impl InputFormat {
    pub const ALL: [InputFormat; 8] = [
        InputFormat::StixBundle,
        InputFormat::StixJson,
        InputFormat::Ndjson,
        InputFormat::SentinelRequest,
        InputFormat::Graph,
        InputFormat::Csv,
        InputFormat::Text,
        InputFormat::Prose,
    ];

    /// The name used by `TI_FORMAT`, `--format` and the report's `source.format`.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::StixBundle => "stix-bundle",
            InputFormat::StixJson => "stix-json",
            InputFormat::Ndjson => "ndjson",
            InputFormat::SentinelRequest => "sentinel-request",
            InputFormat::Graph => "graph",
            InputFormat::Csv => "csv",
            InputFormat::Text => "text",
            InputFormat::Prose => "prose",
        }
    }

    fn is_framed_json(self) -> bool {
        matches!(
            self,
            InputFormat::StixBundle
                | InputFormat::StixJson
                | InputFormat::SentinelRequest
                | InputFormat::Graph
        )
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = String;

    /// One of the names, case-insensitive (`auto` is the caller's `None`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        InputFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                let names: Vec<&str> = InputFormat::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown input format '{s}' (accepted: auto, {})",
                    names.join(", ")
                )
            })
    }
}

/// How to decode an input.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// A forced format; `None` detects it from the content.
    pub format: Option<InputFormat>,
    pub limits: FrameLimits,
    /// Defaults for what non-STIX inputs leave out.
    pub defaults: Defaults,
    /// The ingestion time: `created`/`modified`/`valid_from` of converted records.
    pub now: OffsetDateTime,
    /// A gzip input that decompresses to more than this stops with an error.
    pub max_decompressed_bytes: u64,
    /// A gzip input that expands more than this many times (once past 16 MiB) stops with an
    /// error: ordinary indicator files compress 5–20×, decompression bombs 1000×.
    pub max_ratio: u64,
}

impl InputOptions {
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;
    pub const DEFAULT_MAX_RATIO: u64 = 100;

    /// Auto-detection, default limits and defaults, ingestion time `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        InputOptions {
            format: None,
            limits: FrameLimits::default(),
            defaults: Defaults::default(),
            now,
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_ratio: Self::DEFAULT_MAX_RATIO,
        }
    }
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions::new(OffsetDateTime::now_utc())
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// 0-based position of the record in the input.
    pub index: u64,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// The record's original text (JSON text, NDJSON line, CSV row, text line); `None` for a
    /// record over the size bound, whose bytes were not kept.
    pub original: Option<String>,
    /// A STIX 2.1 object ready for [`stix::validate`], or why the record could not become one.
    pub object: Result<Map<String, Value>, Problem>,
    /// What was normalised on the way (refanged values, trailing commas, dropped fields).
    pub warnings: Vec<Problem>,
}

/// Push-based input decoder: feed chunks split anywhere with [`push`](Decoder::push), then call
/// [`finish`](Decoder::finish). After an error every further call returns the same error;
/// records decoded before it still count.
pub struct Decoder {
    failed: Option<FrameError>,
    finished: Option<InputFormat>,
    transport: Transport,
    text: TextStage,
}

enum Transport {
    /// The first bytes, until two are there to look for the gzip magic.
    Sniff(Vec<u8>),
    Plain,
    Gzip(Box<Gunzip>),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Decoder {
    pub fn new(opts: InputOptions) -> Self {
        let body = match opts.format {
            None => Body::Detect(Detect::default()),
            Some(f) => Body::forced(f, &opts),
        };
        Decoder {
            failed: None,
            finished: None,
            transport: Transport::Sniff(Vec::new()),
            text: TextStage {
                encoding: Encoding::Sniff(Vec::new()),
                scratch: Vec::new(),
                body,
                ctx: Ctx {
                    opts,
                    saw_ti: None,
                    deferred: Vec::new(),
                    csv: None,
                    skip_below: 0,
                },
            },
        }
    }

    /// Records of text and CSV inputs before `index` are only counted, never converted nor
    /// returned: a work item that continues an input from record `index` reads the records
    /// before it at the cost of splitting lines, not of converting each one. (JSON records are
    /// returned unparsed anyway, and the caller drops those outside its range unparsed.)
    pub fn skip_records_before(&mut self, index: u64) {
        self.text.ctx.skip_below = index;
    }

    /// The input's format: the forced one, else as far as detected (final after `finish`).
    pub fn format(&self) -> Option<InputFormat> {
        self.finished.or_else(|| self.text.format())
    }

    /// The character encoding the input was decoded from, when it was not UTF-8.
    pub fn transcoded_from(&self) -> Option<&'static str> {
        match &self.text.encoding {
            Encoding::Utf16(d) => Some(d.name()),
            _ => None,
        }
    }

    /// The header row of a CSV input (once read), as the input has it: a file of rejected rows
    /// needs it in front to be read as CSV again.
    pub fn csv_header(&self) -> Option<&str> {
        match &self.text.body {
            Body::Csv(c) => c.header_text.as_deref(),
            _ => None,
        }
    }

    /// `true` once the input was recognised as gzip.
    pub fn gzipped(&self) -> bool {
        matches!(self.transport, Transport::Gzip(_))
    }

    /// Feeds the next chunk; complete records are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        let (records, r) = self.push_chunk(chunk);
        out.extend(records.decode());
        r
    }

    /// Feeds the next chunk and returns its complete records with their JSON not parsed yet
    /// ([`Chunk::decode`] does that, on any thread), and whether the input broke in this chunk.
    /// Records framed before an error are returned too: they still count.
    pub fn push_chunk(&mut self, chunk: &[u8]) -> (Chunk, Result<(), FrameError>) {
        let (records, _, r) = self.push_chunk_limited(chunk, usize::MAX);
        (records, r)
    }

    /// [`Decoder::push_chunk`] that stops once about `max_records` records are decoded: it
    /// returns how many bytes of `chunk` it consumed, and the caller feeds the rest later. A
    /// few bytes of gzip can expand to megabytes of tiny lines (deflate reaches ~1000×), so
    /// bounding the bytes fed is not enough to bound the records held at once; this is. It
    /// goes over `max_records` by at most the records of one piece of text
    /// ([`LIMITED_PIECE_BYTES`], or one 32 KiB gzip output buffer). After an error the whole
    /// chunk counts as consumed.
    pub fn push_chunk_limited(
        &mut self,
        chunk: &[u8],
        max_records: usize,
    ) -> (Chunk, usize, Result<(), FrameError>) {
        let mut out = Vec::new();
        let (consumed, r) = if let Some(e) = &self.failed {
            (chunk.len(), Err(e.clone()))
        } else if self.finished.is_some() {
            let e = self.fail(FrameError {
                line: 0,
                message: "more input after the end of the input was signalled".into(),
            });
            (chunk.len(), Err(e))
        } else {
            match self.push_transport(chunk, &mut out, max_records) {
                Ok(n) => (n, Ok(())),
                Err(e) => (chunk.len(), Err(self.fail(e))),
            }
        };
        (self.text.ctx.take_chunk(out), consumed, r)
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        e
    }

    /// Feeds `chunk` on until `out` holds `max_records` records; returns the bytes consumed.
    fn push_transport(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<Decoded>,
        max_records: usize,
    ) -> Result<usize, FrameError> {
        match &mut self.transport {
            Transport::Plain => {
                if max_records == usize::MAX {
                    self.text.push(chunk, out)?;
                    return Ok(chunk.len());
                }
                let mut consumed = 0;
                for piece in chunk.chunks(LIMITED_PIECE_BYTES) {
                    self.text.push(piece, out)?;
                    consumed += piece.len();
                    if out.len() >= max_records {
                        break;
                    }
                }
                Ok(consumed)
            }
            Transport::Gzip(gz) => gz.feed(chunk, &mut |b| {
                self.text.push(b, out)?;
                Ok(out.len() >= max_records)
            }),
            Transport::Sniff(buf) => {
                if buf.is_empty() && chunk.len() >= GZIP_MAGIC.len() {
                    self.decide_transport(chunk[..2] == GZIP_MAGIC);
                    return self.push_transport(chunk, out, max_records);
                }
                let before = buf.len();
                buf.extend_from_slice(chunk);
                if buf.len() < GZIP_MAGIC.len() {
                    return Ok(chunk.len());
                }
                let held = std::mem::take(buf);
                self.decide_transport(held[..2] == GZIP_MAGIC);
                // The held byte is consumed with the first piece, so what is left over is a
                // suffix of `chunk`.
                let consumed = self.push_transport(&held, out, max_records)?;
                Ok(consumed.max(before) - before)
            }
        }
    }

    fn decide_transport(&mut self, gzip: bool) {
        let opts = &self.text.ctx.opts;
        self.transport = if gzip {
            Transport::Gzip(Box::new(Gunzip::new(
                opts.max_decompressed_bytes,
                opts.max_ratio,
            )))
        } else {
            Transport::Plain
        };
    }

    /// Ends the input; the last records are appended to `out`. Returns the format.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) -> Result<InputFormat, FrameError> {
        let (records, r) = self.finish_chunk();
        out.extend(records.decode());
        r
    }

    /// Ends the input: [`Decoder::finish`] with the last records left to [`Chunk::decode`].
    pub fn finish_chunk(&mut self) -> (Chunk, Result<InputFormat, FrameError>) {
        let mut out = Vec::new();
        let r = if let Some(e) = &self.failed {
            Err(e.clone())
        } else if let Some(f) = self.finished {
            Ok(f)
        } else {
            match self.finish_inner(&mut out) {
                Ok(f) => {
                    self.finished = Some(f);
                    Ok(f)
                }
                Err(e) => Err(self.fail(e)),
            }
        };
        (self.text.ctx.take_chunk(out), r)
    }

    fn finish_inner(&mut self, out: &mut Vec<Decoded>) -> Result<InputFormat, FrameError> {
        if let Transport::Sniff(buf) = &mut self.transport {
            let held = std::mem::take(buf);
            self.transport = Transport::Plain;
            self.text.push(&held, out)?;
        }
        if let Transport::Gzip(gz) = &mut self.transport {
            gz.finish(&mut |b| self.text.push(b, out).map(|()| false))?;
        }
        self.text.finish(out)
    }
}

/// The pieces a plain input is fed to the text stage in by [`Decoder::push_chunk_limited`]:
/// at most ~8,000 records of two bytes each.
pub const LIMITED_PIECE_BYTES: usize = 16 * 1024;

/// What a gzip output buffer is handed to: decodes it, and says whether enough records are
/// decoded for now (the rest of the input waits for the next call).
type Sink<'a> = dyn FnMut(&[u8]) -> Result<bool, FrameError> + 'a;

/// A transport or encoding error: not tied to a line of the decoded text.
fn input_error(message: String) -> FrameError {
    FrameError { line: 0, message }
}

/// Streaming gunzip with the size and ratio bounds.
struct Gunzip {
    decoder: MultiGzDecoder<Vec<u8>>,
    compressed: u64,
    decompressed: u64,
    max_bytes: u64,
    max_ratio: u64,
}

/// Below this much output the ratio is not checked: small, highly repetitive files are normal.
const RATIO_GRACE_BYTES: u64 = 16 << 20;

impl Gunzip {
    fn new(max_bytes: u64, max_ratio: u64) -> Self {
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
    fn feed(&mut self, mut input: &[u8], sink: &mut Sink<'_>) -> Result<usize, FrameError> {
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

    fn finish(&mut self, sink: &mut Sink<'_>) -> Result<(), FrameError> {
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

/// What the record decoders need: the options and what was seen so far.
struct Ctx {
    opts: InputOptions,
    /// Whether the first JSON record was a tiIndicator (decides `graph` vs the STIX formats).
    saw_ti: Option<bool>,
    /// Positions in the caller's output of records queued for decoding, and their kind.
    deferred: Vec<(usize, Queued)>,
    /// A CSV input's header, once read: what the queued CSV rows are decoded with.
    csv: Option<Arc<CsvHeader>>,
    /// Text lines and CSV rows with a lower index are counted but not emitted (see
    /// [`Decoder::skip_records_before`]).
    skip_below: u64,
}

/// What is still to be done to a record framed by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    /// Nothing: the record is final.
    No,
    /// A JSON record: parse it (and convert a tiIndicator).
    Json,
    /// A CSV row: split its fields and convert it with the header.
    Csv,
    /// A text-list line (not blank, not a comment): read its observable and convert it.
    Text,
}

impl Ctx {
    fn decoded(
        &self,
        index: u64,
        line: u64,
        original: Option<String>,
        result: Result<(Map<String, Value>, Vec<Problem>), Problem>,
    ) -> Decoded {
        let (object, warnings) = match result {
            Ok((o, w)) => (Ok(o), w),
            Err(p) => (Err(p), Vec::new()),
        };
        Decoded {
            index,
            line,
            original,
            object,
            warnings,
        }
    }

    fn oversize(&self, index: u64, line: u64, bytes: u64) -> Decoded {
        let max = self.opts.limits.max_record_bytes;
        self.decoded(
            index,
            line,
            None,
            Err(Problem::new(
                Code::RecordTooLarge,
                format!(
                    "the record is {bytes} bytes; at most {max} bytes are accepted per record (its text is not kept in the rejected file)"
                ),
            )),
        )
    }

    /// A record nested deeper than the frame limit: its own error, its text kept for the
    /// rejected file.
    fn too_deep(&self, index: u64, line: u64, text: String) -> Decoded {
        let max = self.opts.limits.max_depth;
        self.decoded(
            index,
            line,
            Some(text),
            Err(Problem::new(
                Code::RecordTooDeep,
                format!("the record nests arrays and objects deeper than {max} levels, the nesting bound"),
            )),
        )
    }

    /// A JSON record's text → STIX object (see [`json_to_stix`]), appended to `out`. The first
    /// record that parses decides `saw_ti` and is decoded at once; later ones are only queued,
    /// for [`Chunk::decode`].
    fn json_record(&mut self, out: &mut Vec<Decoded>, index: u64, line: u64, text: String) {
        if self.saw_ti.is_some() {
            self.deferred.push((out.len(), Queued::Json));
            out.push(Decoded {
                index,
                line,
                original: Some(text),
                object: Err(Problem::new(Code::JsonInvalid, "not decoded yet")),
                warnings: Vec::new(),
            });
            return;
        }
        let (result, ti) = json_to_stix(&text, &self.opts.defaults, self.opts.now);
        if let Some(ti) = ti {
            self.saw_ti = Some(ti);
        }
        out.push(self.decoded(index, line, Some(text), result));
    }

    /// A CSV data row's text, queued for [`Chunk::decode`] (on any thread) to split and convert.
    fn csv_record(&mut self, out: &mut Vec<Decoded>, index: u64, line: u64, text: String) {
        self.deferred.push((out.len(), Queued::Csv));
        out.push(Decoded {
            index,
            line,
            original: Some(text),
            // (An empty message does not allocate: this is per row, on the framing thread.)
            object: Err(Problem::new(Code::CsvInvalid, "")),
            warnings: Vec::new(),
        });
    }

    /// A text-list line, queued for [`Chunk::decode`] (on any thread) to convert: reading the
    /// observable (defangs, comments, the Public Suffix List) and building the STIX object is
    /// most of a text list's work, and the converted objects of the pieces read ahead are what
    /// peaked the memory of a text list when it was done here (BENCHMARKS.md, Lists).
    fn text_record(&mut self, out: &mut Vec<Decoded>, index: u64, line: u64, text: String) {
        self.deferred.push((out.len(), Queued::Text));
        out.push(Decoded {
            index,
            line,
            original: Some(text),
            // (An empty message does not allocate: this is per line, on the framing thread.)
            object: Err(Problem::new(Code::NotAnIndicator, "")),
            warnings: Vec::new(),
        });
    }

    /// The records decoded since the last call, with the ones [`Ctx::json_record`],
    /// [`Ctx::csv_record`] and [`Ctx::text_record`] queued.
    fn take_chunk(&mut self, items: Vec<Decoded>) -> Chunk {
        let mut queued = vec![Queued::No; items.len()];
        for &(p, q) in &self.deferred {
            queued[p] = q;
        }
        self.deferred.clear();
        Chunk {
            items,
            queued,
            csv: self.csv.clone(),
            defaults: self.opts.defaults,
            now: self.opts.now,
        }
    }
}

/// The records framed from one chunk of input, in input order. JSON records (after the first),
/// CSV rows and text-list lines are framed but not parsed yet: [`Chunk::decode`] parses and
/// converts them, on any thread, so
/// a caller can parse and validate several chunks on several cores while it frames the next one,
/// and can first drop the records it will not use ([`Chunk::keep_range`]) without paying for
/// their parsing. Framing is the cheap part (about a tenth of the work for STIX JSON).
#[derive(Debug)]
pub struct Chunk {
    items: Vec<Decoded>,
    /// Per item: what is still to be done to it.
    queued: Vec<Queued>,
    /// The CSV header the queued CSV rows are read with.
    csv: Option<Arc<CsvHeader>>,
    defaults: Defaults,
    now: OffsetDateTime,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of record text the chunk holds (what its parsed records will roughly scale with).
    pub fn text_bytes(&self) -> usize {
        self.items
            .iter()
            .map(|d| d.original.as_ref().map_or(0, String::len))
            .sum()
    }

    /// Keeps only the records whose index is in `range`; returns the index of the first record
    /// at or past its end, if the chunk reached it.
    pub fn keep_range(&mut self, range: &std::ops::Range<u64>) -> Option<u64> {
        let mut past_end = None;
        let items = std::mem::take(&mut self.items);
        let queued = std::mem::take(&mut self.queued);
        (self.items, self.queued) = items
            .into_iter()
            .zip(queued)
            .filter(|(d, _)| {
                if d.index >= range.end {
                    past_end.get_or_insert(d.index);
                }
                range.contains(&d.index)
            })
            .unzip();
        past_end
    }

    /// Parses and converts the queued JSON records, CSV rows and text lines; every record is
    /// then final.
    pub fn decode(self) -> Vec<Decoded> {
        self.decode_then(|d| d)
    }

    /// [`Chunk::decode`], then `then` on each record, in one pass; the results keep the
    /// records' order.
    pub fn decode_then<T, F>(self, then: F) -> Vec<T>
    where
        F: FnMut(Decoded) -> T,
    {
        let Chunk {
            items,
            queued,
            csv,
            defaults,
            now,
        } = self;
        let mut then = then;
        // Built on the first CSV row only: a chunk of JSON records has no use for it.
        let mut splitter: Option<RowSplitter> = None;
        let one = |(mut d, queued): (Decoded, Queued)| {
            let text = d.original.as_deref().unwrap_or_default();
            let result = match (queued, &csv) {
                (Queued::No, _) => return then(d),
                (Queued::Json, _) => json_to_stix(text, &defaults, now).0,
                (Queued::Csv, Some(header)) => {
                    let splitter = splitter.get_or_insert_with(RowSplitter::default);
                    csv_row(splitter, header, text, &defaults, now)
                }
                (Queued::Csv, None) => unreachable!("a CSV row is only queued after its header"),
                (Queued::Text, _) => convert::text::line_to_stix(text, &defaults, now)
                    .expect("blank and comment lines are never queued"),
            };
            match result {
                Ok((object, warnings)) => {
                    d.object = Ok(object);
                    d.warnings = warnings;
                }
                Err(p) => d.object = Err(p),
            }
            then(d)
        };
        items.into_iter().zip(queued).map(one).collect()
    }
}

impl Decoded {
    /// A JSON object that is neither a STIX object (it has no `type`) nor a tiIndicator (which
    /// decoding has already turned into a STIX indicator).
    fn is_of_no_known_shape(&self) -> bool {
        self.object.as_ref().is_ok_and(|o| !o.contains_key("type"))
    }
}

/// The input error for a whole input that is one JSON object of no known shape.
fn no_known_shape(held: &Decoded) -> String {
    let keys: Vec<String> = held
        .object
        .as_ref()
        .map(|o| o.keys().take(5).map(|k| format!("'{k}'")).collect())
        .unwrap_or_default();
    let keys = if keys.is_empty() {
        "no properties".to_string()
    } else {
        format!("properties {}", keys.join(", "))
    };
    format!(
        "the input is one JSON object ({keys}) of no shape ti-ingest reads. Accepted JSON inputs: a STIX object (with \"type\"), a STIX bundle {{\"type\": \"bundle\", \"objects\": [...]}}, a JSON array or NDJSON of STIX objects, a Sentinel upload request {{\"sourcesystem\": ..., \"stixobjects\": [...]}} (or \"indicators\"), a Graph tiIndicator or {{\"value\": [tiIndicators]}}"
    )
}

/// A JSON record's text → STIX object: tolerant of trailing commas; tiIndicators converted. Also
/// returns whether it was a tiIndicator, when it parsed as a JSON object.
#[allow(clippy::type_complexity)]
fn json_to_stix(
    text: &str,
    defaults: &Defaults,
    now: OffsetDateTime,
) -> (
    Result<(Map<String, Value>, Vec<Problem>), Problem>,
    Option<bool>,
) {
    let mut warnings = Vec::new();
    let parsed = match stix::parse_record(text) {
        Err(p) if p.code == Code::JsonInvalid => match without_trailing_commas(text) {
            Some(fixed) => stix::parse_record(&fixed)
                .inspect(|_| {
                    warnings.push(Problem::new(
                        Code::Normalised,
                        "removed trailing commas before '}' or ']' (as in the Graph documentation's example)",
                    ))
                })
                .map_err(|_| p),
            None => Err(p),
        },
        other => other,
    };
    let mut ti = None;
    let result = parsed.and_then(|object| {
        let is_ti = convert::is_ti_indicator(&object);
        ti = Some(is_ti);
        if is_ti {
            let (o, w) = convert::ti_to_stix(&object, defaults, now)?;
            warnings.extend(w);
            Ok(o)
        } else {
            Ok(object)
        }
    });
    (result.map(|o| (o, warnings)), ti)
}

/// Whether JSON text nests arrays and objects deeper than `max` levels (outside strings), the
/// bound the framer applies to the records of a JSON array or bundle: an NDJSON line gets the
/// same rule.
fn nests_deeper(text: &str, max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &c in text.as_bytes() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    false
}

/// The text with every `,` that precedes (after whitespace) a `}` or `]` removed, outside
/// strings; `None` when there is none.
fn without_trailing_commas(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let (mut in_str, mut esc, mut changed) = (false, false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b',' {
            let next = b[i + 1..]
                .iter()
                .find(|x| !matches!(x, b' ' | b'\t' | b'\r' | b'\n'));
            if matches!(next, Some(b'}') | Some(b']')) {
                changed = true;
                continue;
            }
        }
        out.push(c);
    }
    // Only ASCII commas were removed, so the bytes are still UTF-8.
    changed.then(|| String::from_utf8(out).ok()).flatten()
}

/// Character decoding, then the format body.
struct TextStage {
    encoding: Encoding,
    scratch: Vec<u8>,
    body: Body,
    ctx: Ctx,
}

enum Encoding {
    /// The first bytes, until four are there to look for a byte-order mark.
    Sniff(Vec<u8>),
    Utf8,
    Utf16(Utf16),
}

impl TextStage {
    fn format(&self) -> Option<InputFormat> {
        if let Some(f) = self.ctx.opts.format {
            return Some(f);
        }
        match &self.body {
            Body::Detect(_) => None,
            Body::Json(j) if j.ndjson.is_some() => Some(InputFormat::Ndjson),
            Body::Json(j) => match (j.array, self.ctx.saw_ti) {
                (_, Some(true)) => Some(InputFormat::Graph),
                (true, Some(false)) => Some(InputFormat::StixJson),
                _ => None,
            },
            Body::Ndjson(_) => Some(InputFormat::Ndjson),
            Body::Csv(_) => Some(InputFormat::Csv),
            Body::Text(_) => Some(InputFormat::Text),
            Body::Prose(_) => Some(InputFormat::Prose),
        }
    }

    fn push(&mut self, bytes: &[u8], out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        match &mut self.encoding {
            Encoding::Utf8 => self.body.push(bytes, &mut self.ctx, out),
            Encoding::Utf16(d) => {
                // The text decoded before an unpaired surrogate is handed on before the error,
                // so the records before it count whatever the chunking (FUZZING.md F1).
                self.scratch.clear();
                let decoded = d.decode(bytes, &mut self.scratch);
                self.body.push(&self.scratch, &mut self.ctx, out)?;
                decoded
            }
            Encoding::Sniff(buf) => {
                buf.extend_from_slice(bytes);
                if buf.len() < 4 {
                    return Ok(());
                }
                let held = std::mem::take(buf);
                self.decide_encoding(&held, out)
            }
        }
    }

    /// Looks for a byte-order mark (or the zero bytes of BOM-less UTF-16) in the first bytes.
    fn decide_encoding(&mut self, held: &[u8], out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        let refuse = |name: &str| {
            Err(input_error(format!(
                "the input is {name}, which ti-ingest does not read: save it as UTF-8 (or UTF-16)"
            )))
        };
        let (encoding, skip) = match held {
            [0xEF, 0xBB, 0xBF, ..] => (Encoding::Utf8, 3),
            [0xFF, 0xFE, 0, 0, ..] => return refuse("UTF-32LE"),
            [0, 0, 0xFE, 0xFF, ..] => return refuse("UTF-32BE"),
            [0xFF, 0xFE, ..] => (Encoding::Utf16(Utf16::new(false)), 2),
            [0xFE, 0xFF, ..] => (Encoding::Utf16(Utf16::new(true)), 2),
            [a, 0, 0, 0, ..] if *a != 0 => return refuse("UTF-32LE"),
            [0, 0, 0, a, ..] if *a != 0 => return refuse("UTF-32BE"),
            [a, 0, ..] if *a != 0 && a.is_ascii() => (Encoding::Utf16(Utf16::new(false)), 0),
            [0, a, ..] if *a != 0 && a.is_ascii() => (Encoding::Utf16(Utf16::new(true)), 0),
            _ => (Encoding::Utf8, 0),
        };
        self.encoding = encoding;
        self.push(&held[skip..], out)
    }

    fn finish(&mut self, out: &mut Vec<Decoded>) -> Result<InputFormat, FrameError> {
        if let Encoding::Sniff(buf) = &mut self.encoding {
            let held = std::mem::take(buf);
            // Fewer than four bytes in all: decide on what is there.
            let mut padded = held.clone();
            padded.resize(4, 0xAA);
            let utf16 = matches!(padded.as_slice(), [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..]);
            if utf16 || held.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.decide_encoding(&held, out)?;
            } else {
                self.encoding = Encoding::Utf8;
                self.push(&held, out)?;
            }
        }
        if let Encoding::Utf16(d) = &self.encoding {
            d.finish()?;
        }
        self.body.finish(&mut self.ctx, out)
    }
}

/// Streaming UTF-16 → UTF-8, safe across chunk boundaries (an odd byte or a high surrogate is
/// held until the next chunk).
struct Utf16 {
    big_endian: bool,
    odd: Option<u8>,
    high: Option<u16>,
    offset: u64,
}

impl Utf16 {
    fn new(big_endian: bool) -> Self {
        Utf16 {
            big_endian,
            odd: None,
            high: None,
            offset: 0,
        }
    }

    fn name(&self) -> &'static str {
        if self.big_endian {
            "UTF-16BE"
        } else {
            "UTF-16LE"
        }
    }

    fn decode(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut i = 0;
        if let Some(first) = self.odd {
            let Some(&second) = bytes.first() else {
                return Ok(());
            };
            self.odd = None;
            self.unit([first, second], out)?;
            i = 1;
        }
        while i + 1 < bytes.len() {
            self.unit([bytes[i], bytes[i + 1]], out)?;
            i += 2;
        }
        if i < bytes.len() {
            self.odd = Some(bytes[i]);
        }
        Ok(())
    }

    fn unit(&mut self, pair: [u8; 2], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let u = if self.big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        };
        let at = self.offset;
        self.offset += 2;
        let c = match (self.high.take(), u) {
            (Some(h), 0xDC00..=0xDFFF) => {
                0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(u) - 0xDC00)
            }
            (Some(_), _) | (None, 0xDC00..=0xDFFF) => {
                return Err(input_error(format!(
                    "the input is {} but has an unpaired surrogate at byte offset {at}",
                    self.name()
                )))
            }
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(u);
                return Ok(());
            }
            (None, u) => u32::from(u),
        };
        let c = char::from_u32(c).expect("valid scalar values by construction");
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        Ok(())
    }

    fn finish(&self) -> Result<(), FrameError> {
        if self.odd.is_some() || self.high.is_some() {
            return Err(input_error(format!(
                "the input is {} but ends in the middle of a character",
                self.name()
            )));
        }
        Ok(())
    }
}

/// The format-specific record decoder.
enum Body {
    /// Auto-detection, until the format is decided.
    Detect(Detect),
    Json(Box<JsonBody>),
    Ndjson(LineBody),
    Csv(CsvBody),
    Text(LineBody),
    Prose(Box<prose::ProseBody>),
}

impl Body {
    fn forced(format: InputFormat, opts: &InputOptions) -> Body {
        let max = opts.limits.max_record_bytes;
        match format {
            f if f.is_framed_json() => Body::Json(Box::new(JsonBody::new(opts.limits, false))),
            InputFormat::Ndjson => Body::Ndjson(LineBody::new(max, 1, 0)),
            InputFormat::Csv => Body::Csv(CsvBody::new(max)),
            InputFormat::Prose => Body::Prose(Box::new(prose::ProseBody::new(max))),
            _ => Body::Text(LineBody::text(max)),
        }
    }

    fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        match self {
            Body::Detect(d) => {
                let Some((body, at)) = d.push(bytes, ctx) else {
                    return Ok(());
                };
                let Body::Detect(d) = std::mem::replace(self, body) else {
                    unreachable!("detecting")
                };
                self.replay(&d, ctx, out)?;
                self.push(&bytes[at..], ctx, out)
            }
            Body::Json(j) => j.push(bytes, ctx, out),
            Body::Ndjson(l) => l.push(bytes, ctx, out),
            Body::Csv(c) => c.push(bytes, ctx, out),
            Body::Text(l) => l.push(bytes, ctx, out),
            Body::Prose(p) => p.push(bytes, ctx, out),
        }
    }

    /// Hands the chosen body what detection consumed without keeping: the skipped lines (as
    /// blank lines, so line numbers stay right), then the current line's beginning.
    fn replay(
        &mut self,
        d: &Detect,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        self.push_repeated(b'\n', d.skipped, ctx, out)?;
        self.push(&d.line, ctx, out)?;
        self.push_repeated(b' ', d.line_len - d.line.len() as u64, ctx, out)
    }

    fn push_repeated(
        &mut self,
        byte: u8,
        mut n: u64,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let filler = [byte; 4096];
        while n > 0 {
            let k = n.min(filler.len() as u64) as usize;
            self.push(&filler[..k], ctx, out)?;
            n -= k as u64;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) -> Result<InputFormat, FrameError> {
        if let Body::Detect(d) = self {
            let Some(body) = d.finish(ctx) else {
                return Err(FrameError {
                    line: 1,
                    message: "empty input: no records".into(),
                });
            };
            let Body::Detect(d) = std::mem::replace(self, body) else {
                unreachable!("detecting")
            };
            self.replay(&d, ctx, out)?;
        }
        let forced = ctx.opts.format;
        let detected = match self {
            Body::Detect(_) => unreachable!("decided above"),
            Body::Json(j) => j.finish(ctx, out)?,
            Body::Ndjson(l) => {
                l.finish(ctx, out)?;
                InputFormat::Ndjson
            }
            Body::Csv(c) => {
                c.finish(ctx, out)?;
                InputFormat::Csv
            }
            Body::Text(l) => {
                l.finish(ctx, out)?;
                InputFormat::Text
            }
            Body::Prose(p) => {
                p.finish(ctx, out)?;
                InputFormat::Prose
            }
        };
        Ok(forced.unwrap_or(detected))
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Format detection, streaming and with bounded memory, so that its outcome depends only on the
/// bytes, not on how they were cut into chunks (FUZZING.md F3):
/// - a first non-whitespace byte `[` or `{` means JSON;
/// - otherwise blank lines and `#` comment lines (whatever their length) are skipped, counted
///   but not kept, and the first other line decides: CSV when it is a known CSV header within
///   the record bound, else text. A first line over the record bound is text (it is then an
///   oversize record), decided as soon as it passes the bound;
/// - an input of nothing but whitespace is empty; one of only comments and blank lines is text.
#[derive(Default)]
struct Detect {
    /// Complete blank or comment lines skipped.
    skipped: u64,
    /// A byte other than JSON whitespace was seen: JSON is ruled out.
    started: bool,
    /// The current line so far, up to one byte over the record bound.
    line: Vec<u8>,
    /// The current line's length: more than `line` holds when its leading whitespace alone is
    /// over the bound (the rest is whitespace, replayed as spaces).
    line_len: u64,
    kind: DetectLine,
    /// The current comment line's text after its `#` (`None` once over the record bound), and
    /// the last complete one: abuse.ch's URLhaus and ThreatFox CSVs put their header row in a
    /// comment (`# id,dateadded,url,…`).
    comment: Option<Vec<u8>>,
    last_comment: Option<Vec<u8>>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum DetectLine {
    /// Only whitespace so far.
    #[default]
    Blank,
    /// A `#` comment: its bytes are not kept.
    Comment,
    /// The first data line, which decides the format.
    Data,
}

impl Detect {
    /// Looks at the next chunk: `Some((body, at))` once the format is decided, the body to
    /// replay [`Detect`]'s held bytes into and then `bytes[at..]`.
    fn push(&mut self, bytes: &[u8], ctx: &Ctx) -> Option<(Body, usize)> {
        let max = ctx.opts.limits.max_record_bytes;
        for (i, &b) in bytes.iter().enumerate() {
            match (self.kind, b) {
                (DetectLine::Data, b'\n') => {
                    let body = decide_line(&self.line, self.last_comment.as_deref(), ctx);
                    return Some((body, i));
                }
                (DetectLine::Blank | DetectLine::Comment, b'\n') => {
                    if self.kind == DetectLine::Comment {
                        self.last_comment = self.comment.take();
                    }
                    self.skipped += 1;
                    self.line.clear();
                    self.line_len = 0;
                    self.kind = DetectLine::Blank;
                    continue;
                }
                (DetectLine::Comment, _) => {
                    if let Some(c) = &mut self.comment {
                        if c.len() < max {
                            c.push(b);
                        } else {
                            self.comment = None;
                        }
                    }
                    continue;
                }
                (DetectLine::Blank, b'[' | b'{') if !self.started => {
                    // Whitespace before the JSON value does not matter to the framer.
                    self.line.clear();
                    self.line_len = 0;
                    let json = JsonBody::new(ctx.opts.limits, true);
                    return Some((Body::Json(Box::new(json)), i));
                }
                (DetectLine::Blank, b'#') => {
                    self.started = true;
                    self.kind = DetectLine::Comment;
                    self.comment = Some(Vec::new());
                    continue;
                }
                (DetectLine::Blank, _) if b.is_ascii_whitespace() => {
                    self.started |= !is_ws(b);
                }
                (DetectLine::Blank, _) => {
                    self.started = true;
                    self.kind = DetectLine::Data;
                }
                (DetectLine::Data, _) => {}
            }
            if self.kind == DetectLine::Data && self.line_len >= max as u64 {
                // This byte takes the first data line over the bound: text, whatever follows.
                return Some((Body::Text(LineBody::text(max)), i));
            }
            self.line_len += 1;
            if self.line.len() <= max {
                self.line.push(b);
            }
        }
        None
    }

    /// At the end of the input: the body, or `None` when the input is empty.
    fn finish(&mut self, ctx: &Ctx) -> Option<Body> {
        let max = ctx.opts.limits.max_record_bytes;
        match self.kind {
            DetectLine::Data => Some(decide_line(&self.line, self.last_comment.as_deref(), ctx)),
            _ if self.started => Some(Body::Text(LineBody::text(max))),
            _ => None,
        }
    }
}

/// The first data line (within the record bound, without its `\n`) decides: a line that looks
/// like a CSV header is CSV, anything else text. Looking like a header is decided on the form,
/// not on knowing the columns, so a header ti-ingest cannot place is an input error naming its
/// columns ([`CsvHeader::recognise`]) instead of a text list whose every line fails:
/// - two or more comma-separated fields, none of them an observable (`198.51.100.7,c2` is a
///   text line with a comment), and
/// - either a column ti-ingest reads (`value`, `type`, `dst_ip`, `description`, …), or every
///   field a plain column name: a letter, then letters, digits, `_` or `-`, at most 64 bytes
///   (`first_seen_utc,malware`; a heading such as `Network indicators, C2` has a space, a file
///   name such as `Setup2.exe` a dot).
///
/// Else, when the last `#` comment line before it (`comment`, its text after the `#`) is a CSV
/// header ti-ingest can place, with as many fields as the line, the input is CSV with that
/// header: abuse.ch's URLhaus and ThreatFox CSVs comment out their header row
/// (`# id,dateadded,url,url_status,…`).
fn decide_line(line: &[u8], comment: Option<&[u8]>, ctx: &Ctx) -> Body {
    let max = ctx.opts.limits.max_record_bytes;
    let mut splitter = RowSplitter::default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Body::Text(LineBody::text(max));
    };
    let row = splitter.fields(line);
    let n = row.len();
    if looks_like_header(&row) {
        return Body::Csv(CsvBody::new(max));
    }
    if let Some(c) = comment.and_then(|c| std::str::from_utf8(c).ok()) {
        let c = c.trim();
        let fields = splitter.fields(c);
        if fields.len() == n
            && looks_like_header(&fields)
            && CsvHeader::duplicate(&fields).is_none()
        {
            if let Ok(header) = CsvHeader::recognise(&fields) {
                return Body::Csv(CsvBody::with_header(max, header, c.to_string()));
            }
        }
    }
    Body::Text(LineBody::text(max))
}

fn looks_like_header(fields: &[&str]) -> bool {
    let plain_name = |f: &str| {
        let b = f.trim().as_bytes();
        b.len() <= 64
            && b.first().is_some_and(u8::is_ascii_alphabetic)
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    let observable = |f: &str| {
        let v = convert::text::refang(f.trim());
        convert::text::infer_observable(&v).is_some()
    };
    fields.len() >= 2
        && !fields.iter().any(|f| observable(f))
        && (fields.iter().any(|f| convert::rows::is_known_column(f))
            || fields.iter().all(|f| plain_name(f)))
}

/// Splits CSV rows into fields (RFC 4180: quoted fields, `""` for a quote, newlines inside
/// quotes) with `csv-core`, reusing its buffers from row to row.
struct RowSplitter {
    reader: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for RowSplitter {
    fn default() -> Self {
        RowSplitter {
            // `Reader::new`, not `Reader::default`: only the builder builds its state machine.
            reader: csv_core::Reader::new(),
            out: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl RowSplitter {
    /// The fields of one row's text (without its line end). Always a row: `csv-core` reads any
    /// text, a stray quote inside a field included, as a best effort. Spaces between a comma and
    /// a quoted field are skipped (as Python's `skipinitialspace`): abuse.ch's ThreatFox CSV
    /// writes `"2026-09-27 13:46:34", "1", "38.190.196.25:5638", …`.
    fn fields<'a>(&'a mut self, text: &str) -> Vec<&'a str> {
        let spaced;
        let text = if text.contains(", \"") || text.contains(",\t\"") {
            spaced = without_space_before_quotes(text);
            spaced.as_str()
        } else {
            text
        };
        let input = text.as_bytes();
        // Unquoting only shortens the text, and there is at most one field per comma, plus one.
        self.out.resize(input.len() + 1, 0);
        self.ends.resize(bytecount::count(input, b',') + 2, 0);
        let (mut nin, mut nout, mut nend) = (0, 0, 0);
        loop {
            let (r, i, o, e) = self.reader.read_record(
                &input[nin..],
                &mut self.out[nout..],
                &mut self.ends[nend..],
            );
            nin += i;
            nout += o;
            nend += e;
            match r {
                csv_core::ReadRecordResult::InputEmpty if nin == input.len() && i == 0 => {
                    // The end of the text ends the row.
                    let (r, _, o, e) =
                        self.reader
                            .read_record(&[], &mut self.out[nout..], &mut self.ends[nend..]);
                    nout += o;
                    nend += e;
                    debug_assert!(matches!(
                        r,
                        csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End
                    ));
                    break;
                }
                csv_core::ReadRecordResult::InputEmpty => continue,
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
                // Not expected (unquoting only shortens the text, and a field ends at a comma or
                // the row's end), but never a reason to stop: more room, and on.
                csv_core::ReadRecordResult::OutputFull => {
                    let more = self.out.len() + 64;
                    self.out.resize(more, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let more = self.ends.len() + 8;
                    self.ends.resize(more, 0);
                }
            }
        }
        self.reader.reset();
        let out = &self.out[..nout];
        let mut start = 0;
        self.ends[..nend]
            .iter()
            .map(|&end| {
                // Fields are cut at ASCII commas of UTF-8 text, so each one is UTF-8.
                let f = std::str::from_utf8(&out[start..end]).unwrap_or_default();
                start = end;
                f
            })
            .collect()
    }
}

/// `text` without the spaces and tabs between a comma (outside quotes) and the quote that opens
/// the next field.
fn without_space_before_quotes(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut in_quotes = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        out.push(c);
        i += 1;
        match c {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                let spaces = b[i..]
                    .iter()
                    .take_while(|&&x| x == b' ' || x == b'\t')
                    .count();
                if b.get(i + spaces) == Some(&b'"') {
                    i += spaces;
                }
            }
            _ => {}
        }
    }
    // Only ASCII spaces and tabs were dropped, so the bytes are still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// A queued CSV row → STIX indicator, or why not.
fn csv_row(
    splitter: &mut RowSplitter,
    header: &CsvHeader,
    text: &str,
    defaults: &Defaults,
    now: OffsetDateTime,
) -> Result<(Map<String, Value>, Vec<Problem>), Problem> {
    let fields = splitter.fields(text);
    if fields.len() > header.len() {
        return Err(Problem::new(
            Code::CsvInvalid,
            format!(
                "the row has {} fields but the header has {}: quote fields that contain commas",
                fields.len(),
                header.len()
            ),
        ));
    }
    header.row_to_stix(&fields, defaults, now)
}

/// JSON through the framer, with the switch to NDJSON.
struct JsonBody {
    framer: Framer,
    items: Vec<FrameItem>,
    /// Watches the first top-level object while NDJSON is still possible.
    top: Option<TopScan>,
    /// Set once the input turned out to be NDJSON.
    ndjson: Option<LineBody>,
    /// The top-level value is an array (so a first STIX record makes it `stix-json`).
    array: bool,
    /// Records the framer emitted, and the first one's size.
    framed: u64,
    first_len: Option<u64>,
    /// The input's one top-level object when it is of no known shape (no `type`, not a
    /// tiIndicator): held back until the input's end says whether it is the whole input (an
    /// input error) or the first line of NDJSON (a record like any other).
    held: Option<Decoded>,
}

impl JsonBody {
    fn new(limits: FrameLimits, ndjson_possible: bool) -> Self {
        JsonBody {
            framer: Framer::new(limits),
            items: Vec::new(),
            top: ndjson_possible.then(|| TopScan::new(limits.max_record_bytes as u64)),
            ndjson: None,
            array: false,
            framed: 0,
            first_len: None,
            held: None,
        }
    }

    fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        if let Some(nd) = &mut self.ndjson {
            return nd.push(bytes, ctx, out);
        }
        let Some(top) = &mut self.top else {
            return self.frame(bytes, ctx, out);
        };
        match top.scan(bytes) {
            Scan::Undecided => self.frame(bytes, ctx, out),
            Scan::Array => {
                self.array = true;
                self.top = None;
                self.frame(bytes, ctx, out)
            }
            Scan::NotNdjson => {
                self.top = None;
                self.frame(bytes, ctx, out)
            }
            Scan::Ndjson {
                at,
                line,
                value_len,
            } => {
                self.top = None;
                self.frame(&bytes[..at], ctx, out)?;
                // NDJSON only when the framer saw the first object as one whole record (not a
                // bundle or request whose elements it split out).
                if self.framed == 1 && self.first_len == Some(value_len) {
                    out.extend(self.held.take());
                    let mut nd = LineBody::new(ctx.opts.limits.max_record_bytes, line, 1);
                    nd.push(&bytes[at..], ctx, out)?;
                    self.ndjson = Some(nd);
                    Ok(())
                } else {
                    self.frame(&bytes[at..], ctx, out)
                }
            }
        }
    }

    fn frame(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let r = self.framer.push(bytes, &mut self.items);
        self.drain(ctx, out);
        if r.is_err() {
            // The input is broken anyway: the record counts as it was read.
            out.extend(self.held.take());
        }
        r
    }

    fn drain(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) {
        for item in self.items.drain(..) {
            self.framed += 1;
            match item {
                FrameItem::Record(r) => {
                    if self.first_len.is_none() {
                        self.first_len = Some(r.text.len() as u64);
                    }
                    let whole_input = self.framer.top_is_record();
                    ctx.json_record(out, r.index, r.line, r.text);
                    if whole_input && out.last().is_some_and(Decoded::is_of_no_known_shape) {
                        self.held = out.pop();
                    }
                }
                FrameItem::TooDeep(r) => {
                    if self.first_len.is_none() {
                        self.first_len = Some(r.text.len() as u64);
                    }
                    out.push(ctx.too_deep(r.index, r.line, r.text));
                }
                FrameItem::Oversize { index, line, bytes } => {
                    if self.first_len.is_none() {
                        self.first_len = Some(bytes);
                    }
                    out.push(ctx.oversize(index, line, bytes));
                }
            }
        }
    }

    fn finish(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) -> Result<InputFormat, FrameError> {
        if let Some(nd) = &mut self.ndjson {
            nd.finish(ctx, out)?;
            return Ok(InputFormat::Ndjson);
        }
        let r = self.framer.finish(&mut self.items);
        self.drain(ctx, out);
        if let Some(held) = self.held.take() {
            if r.is_ok() {
                return Err(FrameError {
                    line: held.line,
                    message: no_known_shape(&held),
                });
            }
            // The input is broken anyway: the record counts as it was read.
            out.push(held);
        }
        let ti = ctx.saw_ti == Some(true);
        Ok(match r? {
            frame::Format::StixBundle => InputFormat::StixBundle,
            frame::Format::StixJson | frame::Format::SentinelRequest if ti => InputFormat::Graph,
            frame::Format::StixJson => InputFormat::StixJson,
            frame::Format::SentinelRequest => InputFormat::SentinelRequest,
        })
    }
}

/// Finds where a first top-level object ends, to tell NDJSON (`{…}\n{…}\n`) from one object.
/// It gives up as soon as NDJSON is ruled out: the object spans lines (pretty-printed) or is
/// larger than a record may be. So a bundle costs it a few bytes, not a second pass.
struct TopScan {
    state: TopState,
    depth: u32,
    in_str: bool,
    esc: bool,
    value_len: u64,
    max: u64,
    /// 1-based line of the next byte.
    line: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TopState {
    Before,
    Inside,
    After,
}

enum Scan {
    Undecided,
    Array,
    NotNdjson,
    /// NDJSON: the second object starts at `at` in this chunk, on `line`; the first object was
    /// `value_len` bytes.
    Ndjson {
        at: usize,
        line: u64,
        value_len: u64,
    },
}

impl TopScan {
    fn new(max: u64) -> Self {
        TopScan {
            state: TopState::Before,
            depth: 0,
            in_str: false,
            esc: false,
            value_len: 0,
            max,
            line: 1,
        }
    }

    fn scan(&mut self, bytes: &[u8]) -> Scan {
        for (i, &b) in bytes.iter().enumerate() {
            match self.state {
                TopState::Before => match b {
                    b'\n' => self.line += 1,
                    b'{' => {
                        self.state = TopState::Inside;
                        self.depth = 1;
                        self.value_len = 1;
                    }
                    b'[' => return Scan::Array,
                    _ if is_ws(b) => {}
                    _ => return Scan::NotNdjson,
                },
                TopState::Inside => {
                    self.value_len += 1;
                    if b == b'\n' || self.value_len > self.max {
                        return Scan::NotNdjson;
                    }
                    if self.in_str {
                        match (self.esc, b) {
                            (true, _) => self.esc = false,
                            (false, b'\\') => self.esc = true,
                            (false, b'"') => self.in_str = false,
                            _ => {}
                        }
                    } else {
                        match b {
                            b'"' => self.in_str = true,
                            b'{' | b'[' => self.depth += 1,
                            b'}' | b']' => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    self.state = TopState::After;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                TopState::After => match b {
                    b'\n' => self.line += 1,
                    b'{' if self.line > 1 => {
                        return Scan::Ndjson {
                            at: i,
                            line: self.line,
                            value_len: self.value_len,
                        }
                    }
                    _ if is_ws(b) => {}
                    _ => return Scan::NotNdjson,
                },
            }
        }
        Scan::Undecided
    }
}

/// What a line becomes: [`LineBody::ndjson_line`] or [`LineBody::text_line`].
type OnLine = fn(&mut LineBody, &mut Ctx, &mut Vec<Decoded>, u64, Line<'_>);

/// NDJSON or text lines, with the record counter.
struct LineBody {
    lines: Lines,
    next_index: u64,
    on_line: OnLine,
}

impl LineBody {
    /// NDJSON lines, the first being line `first_line` and record `first_index`.
    fn new(max: usize, first_line: u64, first_index: u64) -> Self {
        LineBody {
            lines: Lines::new(max, false, first_line),
            next_index: first_index,
            on_line: Self::ndjson_line,
        }
    }

    /// Text lines: `#` comment lines are skipped whatever their length.
    fn text(max: usize) -> Self {
        LineBody {
            lines: Lines::new(max, false, 1).skipping_comments(),
            on_line: Self::text_line,
            next_index: 0,
        }
    }

    fn take_index(&mut self) -> u64 {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    fn ndjson_line(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>, line: u64, l: Line<'_>) {
        match l {
            Line::Oversize(bytes) => {
                let index = self.take_index();
                out.push(ctx.oversize(index, line, bytes));
            }
            Line::Text(t) if t.trim_ascii().is_empty() => {}
            Line::Text(t) => {
                let index = self.take_index();
                match std::str::from_utf8(t) {
                    Ok(s) if nests_deeper(s, ctx.opts.limits.max_depth) => {
                        out.push(ctx.too_deep(index, line, s.to_string()))
                    }
                    Ok(s) => ctx.json_record(out, index, line, s.to_string()),
                    Err(e) => out.push(bad_utf8(ctx, index, line, t, e)),
                }
            }
        }
    }

    fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        self.drive_lines(Some(bytes), ctx, out)
    }

    fn finish(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        self.drive_lines(None, ctx, out)
    }

    /// Feeds `bytes` (or the end of input, `None`) to the line splitter and hands every complete
    /// line to `on_line`; the splitter is taken out of `self` meanwhile so `on_line` may borrow it.
    fn drive_lines(
        &mut self,
        bytes: Option<&[u8]>,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let on_line = self.on_line;
        let mut lines = std::mem::replace(&mut self.lines, Lines::new(0, false, 0));
        let mut each = |line: u64, l: Line<'_>| {
            on_line(self, ctx, out, line, l);
            Ok(())
        };
        let r = match bytes {
            Some(b) => lines.push(b, &mut each),
            None => lines.finish(&mut each),
        };
        self.lines = lines;
        r
    }

    fn text_line(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>, line: u64, l: Line<'_>) {
        let t = match l {
            Line::Oversize(bytes) => {
                let index = self.take_index();
                out.push(ctx.oversize(index, line, bytes));
                return;
            }
            Line::Text(t) => t,
        };
        let s = match std::str::from_utf8(t) {
            Ok(s) => s,
            Err(_) if t.trim_ascii().starts_with(b"#") => return,
            Err(e) => {
                let index = self.take_index();
                out.push(bad_utf8(ctx, index, line, t, e));
                return;
            }
        };
        // Blank and comment lines are no records; every other line is one, converted later by
        // `Chunk::decode` (on the decode workers).
        if convert::text::is_blank_or_comment(s) {
            return;
        }
        let index = self.take_index();
        if index < ctx.skip_below {
            return;
        }
        ctx.text_record(out, index, line, s.to_string());
    }
}

fn bad_utf8(ctx: &Ctx, index: u64, line: u64, t: &[u8], e: std::str::Utf8Error) -> Decoded {
    let max = ctx.opts.limits.max_record_bytes;
    let (original, cut) = lossy_within(t, max);
    ctx.decoded(
        index,
        line,
        Some(original),
        Err(Problem::new(
            Code::InvalidEncoding,
            format!(
                "the line is not valid UTF-8 (at byte {} of the line): save the file as UTF-8{}",
                e.valid_up_to() + 1,
                cut_note(cut, max)
            ),
        )),
    )
}

/// A line's bytes as text for the rejected file, each invalid sequence as U+FFFD (as
/// `String::from_utf8_lossy` does). U+FFFD takes 3 bytes, so a line within the record bound can
/// be up to 3× over it as text: it is then cut on a character boundary, ending in `…`, to at
/// most `max` bytes. Returns the text and whether it was cut.
fn lossy_within(t: &[u8], max: usize) -> (String, bool) {
    const MARK: char = '…';
    let mut s = String::new();
    for chunk in t.utf8_chunks() {
        s.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            s.push(char::REPLACEMENT_CHARACTER);
        }
        if s.len() > max {
            break;
        }
    }
    if s.len() <= max {
        return (s, false);
    }
    let mut cut = max.saturating_sub(MARK.len_utf8());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    if s.len() + MARK.len_utf8() <= max {
        s.push(MARK);
    }
    (s, true)
}

/// The message's note for a text [`lossy_within`] cut.
fn cut_note(cut: bool, max: usize) -> String {
    if cut {
        format!(" (its text is kept with each invalid byte sequence as U+FFFD, cut to the {max}-byte record bound)")
    } else {
        String::new()
    }
}

/// CSV: a header row, then one record per row (rows may span lines inside quoted fields).
struct CsvBody {
    lines: Lines,
    header: Option<Arc<CsvHeader>>,
    /// The header row's text, as the input has it.
    header_text: Option<String>,
    next_index: u64,
}

impl CsvBody {
    fn new(max: usize) -> Self {
        CsvBody {
            lines: Lines::new(max, true, 1).skipping_comments(),
            header: None,
            header_text: None,
            next_index: 0,
        }
    }

    /// A CSV whose header row was found in a comment before the first row.
    fn with_header(max: usize, header: CsvHeader, text: String) -> Self {
        CsvBody {
            header: Some(Arc::new(header)),
            header_text: Some(text),
            ..CsvBody::new(max)
        }
    }

    fn row(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
        line: u64,
        l: Line<'_>,
    ) -> Result<(), FrameError> {
        let t = match l {
            Line::Oversize(bytes) if self.header.is_some() => {
                let index = self.next_index;
                self.next_index += 1;
                out.push(ctx.oversize(index, line, bytes));
                return Ok(());
            }
            Line::Oversize(_) => {
                return Err(FrameError {
                    line,
                    message: "the CSV header row is longer than a record may be".into(),
                })
            }
            Line::Text(t) => t,
        };
        let trimmed = t.trim_ascii();
        // Blank lines and `#` comment lines are not records, in CSV as in text.
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            return Ok(());
        }
        if self.header.is_none() {
            let text = String::from_utf8_lossy(t);
            let mut splitter = RowSplitter::default();
            let fields = splitter.fields(&text);
            let header =
                CsvHeader::recognise(&fields).map_err(|message| FrameError { line, message })?;
            if let Some((i, j)) = CsvHeader::duplicate(&fields) {
                let (a, b) = (fields[i].trim(), fields[j].trim());
                let what = if a == b {
                    format!(
                        "names the column '{a}' twice (columns {} and {})",
                        i + 1,
                        j + 1
                    )
                } else {
                    format!(
                        "has two columns for the same field: '{a}' (column {}) and '{b}' (column {})",
                        i + 1,
                        j + 1
                    )
                };
                return Err(FrameError {
                    line,
                    message: format!(
                        "the CSV header {what}: remove or rename one, a row can only have one value for it"
                    ),
                });
            }
            let header = Arc::new(header);
            ctx.csv = Some(header.clone());
            self.header = Some(header);
            self.header_text = Some(text.trim_end_matches('\r').to_string());
            return Ok(());
        }
        let index = self.next_index;
        self.next_index += 1;
        if index < ctx.skip_below {
            return Ok(());
        }
        let s = match std::str::from_utf8(t) {
            Ok(s) => s,
            Err(e) => {
                out.push(bad_utf8(ctx, index, line, t, e));
                return Ok(());
            }
        };
        if ctx.csv.is_none() {
            ctx.csv = self.header.clone();
        }
        ctx.csv_record(out, index, line, s.to_string());
        Ok(())
    }

    fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let mut lines = std::mem::replace(&mut self.lines, Lines::new(0, true, 0));
        let r = lines.push(bytes, &mut |line, l| self.row(ctx, out, line, l));
        self.lines = lines;
        r
    }

    fn finish(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        let mut lines = std::mem::replace(&mut self.lines, Lines::new(0, true, 0));
        let unterminated = lines.in_quotes();
        let r = lines.finish(&mut |line, l| {
            if unterminated {
                if let Line::Text(t) = l {
                    let index = self.next_index;
                    self.next_index += 1;
                    let max = ctx.opts.limits.max_record_bytes;
                    let (original, cut) = lossy_within(t, max);
                    out.push(ctx.decoded(
                        index,
                        line,
                        Some(original),
                        Err(Problem::new(
                            Code::CsvInvalid,
                            format!(
                                "the row has a quoted field that is never closed (a '\"' is missing){}",
                                cut_note(cut, max)
                            ),
                        )),
                    ));
                    return Ok(());
                }
            }
            self.row(ctx, out, line, l)
        });
        self.lines = lines;
        r?;
        if self.header.is_none() {
            return Err(FrameError {
                line: 1,
                message: "empty input: no CSV header row".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
