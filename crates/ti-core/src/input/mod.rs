//! Input decoding: format detection, decompression, character decoding and per-format record
//! decoding, push-based, so the pipeline feeds it from blob streams or files alike. This module
//! holds the public API ([`Decoder`], [`Chunk`], [`Decoded`]) and the glue between the layers;
//! each layer is a module of its own.
//!
//! Layers, each streaming with bounded memory (README.md, How it works):
//! 1. **transport** ([`transport`]): gzip magic bytes → streaming gunzip (`flate2`'s push-based
//!    decoder), bounded by decompressed size and by compression ratio (a guard against
//!    decompression bombs);
//! 2. **characters** ([`charset`]): a UTF-8 byte-order mark is skipped; UTF-16 LE/BE (what
//!    Windows PowerShell 5.1's `Out-File` and `>` write, with or without a BOM) is decoded to
//!    UTF-8, chunk-boundary safe; UTF-32 is refused with a message naming it;
//! 3. **format** ([`detect`]): detected from the first bytes unless forced (`TI_FORMAT` /
//!    `--format`): `[`/`{` → JSON through the [`Framer`](crate::frame::Framer) (bundle, array,
//!    single object, Sentinel request, Graph `{"value":[…]}`), switching to NDJSON when a first
//!    one-line object is followed by another object on a later line; a first line (after blank
//!    and `#` comment lines) that is a known CSV header within the record bound → CSV; else text.
//!    Decided the same however the input is cut into chunks. `prose` (indicators in running
//!    text, [`prose`]) is only ever forced;
//! 4. **records** ([`json`], [`lines`] for NDJSON and text lines, [`csv`], [`prose`]): each
//!    record becomes a [`Decoded`] — a STIX 2.1 object ready for [`crate::stix::validate`]
//!    (tiIndicators, CSV rows and text lines are converted by [`crate::convert`]) or the problem
//!    that stopped it — with its 0-based index, 1-based line and original text.
//!
//! JSON records may carry trailing commas inside objects (the Graph documentation's example
//! does); they are removed with a `normalised` warning.

mod charset;
mod csv;
mod detect;
mod json;
mod lines;
mod prose;
mod transport;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::convert::{self, rows::CsvHeader, Defaults};
use crate::frame::{FrameError, FrameLimits, RawRecord};
use crate::report::Code;
use crate::stix::Problem;
use charset::{Encoding, LineEnds};
use csv::{csv_row, CsvBody, RowSplitter};
use detect::Detect;
use json::{json_to_stix, nests_deeper, JsonBody};
use lines::LineBody;
use transport::{Gunzip, Transport, GZIP_MAGIC};

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
                line_ends: LineEnds::default(),
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

/// A transport or encoding error: not tied to a line of the decoded text.
fn input_error(message: String) -> FrameError {
    FrameError { line: 0, message }
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
                format!("the record is {bytes} bytes; at most {max} bytes are accepted per record"),
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
    /// Records framed elsewhere, each one JSON text (the objects of a pulled TAXII page), as
    /// the framer would hand out the same texts as the elements of a JSON array: a text over
    /// `max_record_bytes` is `record_too_large` (its text not kept), one nesting deeper than an
    /// array's element may (`max_depth` counts the array) is `record_too_deep`, and the others
    /// are left to [`Chunk::decode`] to parse (and convert, for a tiIndicator). Only `limits`,
    /// `defaults` and `now` of `opts` matter here.
    pub fn of_json_records(records: Vec<RawRecord>, opts: &InputOptions) -> Chunk {
        let mut ctx = Ctx {
            opts: opts.clone(),
            // Known, so that every record is queued rather than the first parsed here: which
            // shape the first record has only names a detected format, and there is none.
            saw_ti: Some(false),
            deferred: Vec::new(),
            csv: None,
            skip_below: 0,
        };
        let limits = opts.limits;
        let mut out = Vec::with_capacity(records.len());
        for RawRecord { index, line, text } in records {
            if text.len() > limits.max_record_bytes {
                out.push(ctx.oversize(index, line, text.len() as u64));
            } else if nests_deeper(&text, limits.max_depth.saturating_sub(1)) {
                out.push(ctx.too_deep(index, line, text));
            } else {
                ctx.json_record(&mut out, index, line, text);
            }
        }
        ctx.take_chunk(out)
    }

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

/// Character decoding, then the format body.
struct TextStage {
    encoding: Encoding,
    scratch: Vec<u8>,
    /// Lines ended by a lone CR (classic Mac OS, Excel's "CSV (Macintosh)") are handed on as
    /// LF lines.
    line_ends: LineEnds,
    body: Body,
    ctx: Ctx,
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
            Encoding::Utf8 => self
                .line_ends
                .push(bytes, |text| self.body.push(text, &mut self.ctx, out)),
            Encoding::Utf16(d) => {
                // The text decoded before an unpaired surrogate is handed on before the error,
                // so the records before it count whatever the chunking (FUZZING.md F1).
                self.scratch.clear();
                let decoded = d.decode(bytes, &mut self.scratch);
                let (body, ctx) = (&mut self.body, &mut self.ctx);
                self.line_ends
                    .push(&self.scratch, |text| body.push(text, ctx, out))?;
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

    /// Decides the encoding from the first bytes ([`charset::sniff`]), then hands them on.
    fn decide_encoding(&mut self, held: &[u8], out: &mut Vec<Decoded>) -> Result<(), FrameError> {
        let (encoding, skip) = charset::sniff(held)?;
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
        let (body, ctx) = (&mut self.body, &mut self.ctx);
        self.line_ends.finish(|text| body.push(text, ctx, out))?;
        self.body.finish(&mut self.ctx, out)
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

/// JSON whitespace (RFC 8259), as format detection ([`detect`]) and the NDJSON scan ([`json`]) skip it.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[cfg(test)]
mod tests;
