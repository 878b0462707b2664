//! Line splitting for the line-oriented formats (NDJSON, CSV, text), push-based and bounded.
//!
//! A line longer than the record bound is counted, not kept, so memory stays bounded whatever
//! the input. In quote-aware mode (CSV) a newline inside a `"…"` field does not end the record,
//! as RFC 4180 allows; `""` inside a quoted field toggles twice, which keeps the count right.
//! With [`Lines::skipping_comments`] (text, CSV) a `#` comment line (`#` after optional
//! whitespace) is skipped whatever its length, and a quote in it does not open a field.

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
