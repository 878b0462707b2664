//! Format detection from the first bytes (JSON, CSV or text), streaming, with bounded memory and
//! the same outcome however the input is cut into chunks.

use super::csv::{CsvBody, RowSplitter};
use super::json::JsonBody;
use super::lines::LineBody;
use super::{is_ws, Body, Ctx};
use crate::convert::{self, rows::CsvHeader};

/// Format detection, streaming and with bounded memory, so that its outcome depends only on the
/// bytes, not on how they were cut into chunks (FUZZING.md F3):
/// - a first non-whitespace byte `[` or `{` means JSON;
/// - otherwise blank lines and `#` comment lines (whatever their length) are skipped, counted
///   but not kept, and the first other line decides: CSV when it is a known CSV header within
///   the record bound, else text. A first line over the record bound is text (it is then an
///   oversize record), decided as soon as it passes the bound;
/// - an input of nothing but whitespace is empty; one of only comments and blank lines is text.
#[derive(Default)]
pub(super) struct Detect {
    /// Complete blank or comment lines skipped.
    pub(super) skipped: u64,
    /// A byte other than JSON whitespace was seen: JSON is ruled out.
    started: bool,
    /// The current line so far, up to one byte over the record bound.
    pub(super) line: Vec<u8>,
    /// The current line's length: more than `line` holds when its leading whitespace alone is
    /// over the bound (the rest is whitespace, replayed as spaces).
    pub(super) line_len: u64,
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
    pub(super) fn push(&mut self, bytes: &[u8], ctx: &Ctx) -> Option<(Body, usize)> {
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
    pub(super) fn finish(&mut self, ctx: &Ctx) -> Option<Body> {
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
