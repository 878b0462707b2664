//! Line splitting for the line-oriented formats (NDJSON, CSV, text), push-based and bounded, and
//! the NDJSON and text-list bodies ([`LineBody`]): one record per line.
//!
//! A line longer than the record bound is counted, not kept, so memory stays bounded whatever
//! the input. In quote-aware mode (CSV) a newline inside a `"…"` field does not end the record,
//! as RFC 4180 allows; `""` inside a quoted field toggles twice, which keeps the count right.
//! With [`Lines::skipping_comments`] (text, CSV) a `#` comment line (`#` after optional
//! whitespace) is skipped whatever its length, and a quote in it does not open a field.

use super::json::nests_deeper;
use super::{Ctx, Decoded};
use crate::convert;
use crate::frame::FrameError;
use crate::report::Code;
use crate::stix::Problem;

/// A complete line (without its `\n` or `\r\n`), or the size of one over the bound.
pub(super) enum Line<'a> {
    Text(&'a [u8]),
    Oversize(u64),
}

#[derive(Debug)]
pub(super) struct Lines {
    buf: Vec<u8>,
    /// Bytes of the current line, kept or not.
    len: u64,
    over: bool,
    max: usize,
    quote_aware: bool,
    in_quotes: bool,
    /// The 1-based line of the next byte.
    line: u64,
    /// The line on which the current record started.
    start_line: u64,
    /// `#` comment lines are skipped (not emitted, not kept, not over the bound).
    comments: bool,
    /// Only whitespace so far in the current record (it may still turn out to be a comment).
    at_start: bool,
    /// The current record is a `#` comment line.
    comment: bool,
}

impl Lines {
    pub fn new(max: usize, quote_aware: bool, first_line: u64) -> Self {
        Lines {
            buf: Vec::new(),
            len: 0,
            over: false,
            max,
            quote_aware,
            in_quotes: false,
            line: first_line,
            start_line: first_line,
            comments: false,
            at_start: true,
            comment: false,
        }
    }

    /// Skips `#` comment lines, as text and CSV do.
    pub fn skipping_comments(mut self) -> Self {
        self.comments = true;
        self
    }

    /// `true` when the input so far ends inside a quoted CSV field.
    pub fn in_quotes(&self) -> bool {
        self.in_quotes
    }

    fn keep(&mut self, part: &[u8]) {
        self.len += part.len() as u64;
        if self.over || self.comment {
            return;
        }
        if self.buf.len() + part.len() > self.max {
            self.over = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    /// Finds the end of the current record in `bytes[from..]`: the index of its `\n`.
    fn find_end(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        if self.comments && self.at_start {
            // The first byte that is not whitespace tells whether the record is a comment.
            let start = bytes[from..]
                .iter()
                .position(|&b| b == b'\n' || !b.is_ascii_whitespace());
            if let Some(k) = start {
                self.at_start = false;
                self.comment = bytes[from + k] == b'#';
            }
        }
        if !self.quote_aware || self.comment {
            return bytes[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|k| from + k);
        }
        for (k, &b) in bytes[from..].iter().enumerate() {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => return Some(from + k),
                b'\n' => self.line += 1,
                _ => {}
            }
        }
        None
    }

    /// Feeds bytes; `f` gets each complete line with the line number it starts on.
    pub fn push<E>(
        &mut self,
        bytes: &[u8],
        f: &mut impl FnMut(u64, Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < bytes.len() {
            match self.find_end(bytes, i) {
                Some(end) => {
                    self.keep(&bytes[i..end]);
                    i = end + 1;
                    self.emit(f)?;
                    self.line += 1;
                    self.start_line = self.line;
                }
                None => {
                    self.keep(&bytes[i..]);
                    i = bytes.len();
                }
            }
        }
        Ok(())
    }

    fn emit<E>(&mut self, f: &mut impl FnMut(u64, Line<'_>) -> Result<(), E>) -> Result<(), E> {
        let line = self.start_line;
        let r = if self.comment {
            Ok(())
        } else if self.over {
            f(line, Line::Oversize(self.len))
        } else {
            let text = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            f(line, Line::Text(text))
        };
        self.buf.clear();
        self.len = 0;
        self.over = false;
        self.at_start = true;
        self.comment = false;
        r
    }

    /// Ends the input: a last line without a newline is emitted too.
    pub fn finish<E>(
        &mut self,
        f: &mut impl FnMut(u64, Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.len > 0 {
            self.emit(f)?;
        }
        Ok(())
    }
}

/// What a line becomes: [`LineBody::ndjson_line`] or [`LineBody::text_line`].
type OnLine = fn(&mut LineBody, &mut Ctx, &mut Vec<Decoded>, u64, Line<'_>);

/// NDJSON or text lines, with the record counter.
pub(super) struct LineBody {
    lines: Lines,
    next_index: u64,
    on_line: OnLine,
}

impl LineBody {
    /// NDJSON lines, the first being line `first_line` and record `first_index`.
    pub(super) fn new(max: usize, first_line: u64, first_index: u64) -> Self {
        LineBody {
            lines: Lines::new(max, false, first_line),
            next_index: first_index,
            on_line: Self::ndjson_line,
        }
    }

    /// Text lines: `#` comment lines are skipped whatever their length.
    pub(super) fn text(max: usize) -> Self {
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

    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        self.drive_lines(Some(bytes), ctx, out)
    }

    pub(super) fn finish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
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

pub(super) fn bad_utf8(
    ctx: &Ctx,
    index: u64,
    line: u64,
    t: &[u8],
    e: std::str::Utf8Error,
) -> Decoded {
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
pub(super) fn lossy_within(t: &[u8], max: usize) -> (String, bool) {
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
pub(super) fn cut_note(cut: bool, max: usize) -> String {
    if cut {
        format!(" (its text is kept with each invalid byte sequence as U+FFFD, cut to the {max}-byte record bound)")
    } else {
        String::new()
    }
}
