//! Input framing: splits a JSON input stream into raw records, incrementally.
//!
//! The framer finds record *boundaries* only (strings, escapes and bracket depth), so a whole
//! file is never parsed or held in memory: memory stays O(largest record + nesting depth)
//! whatever the input size. Decoding a record's insides is the next layer's job
//! ([`crate::stix::parse_record`]), so a record that is balanced but malformed (`{"a": tru}`)
//! is still emitted here and rejected there, on its own, while the rest of the file continues.
//!
//! Shapes (README.md, How it works):
//! - `[ ... ]`: each element is a record ([`InputFormat::StixJson`]).
//! - `{ ... }` with a key `objects`, `stixobjects`, `indicators` or `value` holding an array:
//!   each element of that array is a record, emitted as soon as it is complete
//!   ([`InputFormat::StixBundle`] or [`InputFormat::SentinelRequest`], decided at [`Framer::finish`] so a
//!   bundle's `type` may come after its `objects`).
//! - any other `{ ... }`: the whole object is one record ([`InputFormat::StixJson`]).
//!
//! [`Framer::finish`] names the shape with one of those three [`InputFormat`]s; whether a JSON
//! input is `graph` (tiIndicators) is the decoder's call, made on the records' contents.
//!
//! A trailing comma before `]` or `}` of the outer structure is tolerated, because the Graph
//! documentation's examples have them and people copy those.

use crate::input::InputFormat;

/// One record as it appeared in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// 0-based position of the record in the input.
    pub index: u64,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// The record's original text, exactly as in the input.
    pub text: String,
}

/// What the framer produces for each record position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameItem {
    Record(RawRecord),
    /// A record nested deeper than `FrameLimits::max_depth`: its end was found (brackets are
    /// counted past the limit without being kept), so the records after it are read; it is that
    /// record's error, not the input's.
    TooDeep(RawRecord),
    /// A record larger than `FrameLimits::max_record_bytes`; its bytes were skipped, not kept.
    Oversize {
        index: u64,
        line: u64,
        bytes: u64,
    },
}

/// Bounds applied while framing.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_record_bytes: usize,
    pub max_depth: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_record_bytes: 1 << 20,
            max_depth: 64,
        }
    }
}

/// The input is broken at the frame level (e.g. unbalanced brackets, not JSON at all); the file
/// stops here, but records already emitted still count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FrameError {
    pub line: u64,
    pub message: String,
}

/// Where the framer is in the outer grammar. Record insides are tracked by [`ValueScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the very start; the value counts the byte-order-mark bytes matched so far.
    Bom(u8),
    /// Whitespace before the top-level value.
    BeforeTop,
    /// In a record array, just after `[`: an element or `]`.
    ArrFirst,
    /// In a record array, after an element: `,` or `]`.
    ArrNext,
    /// In a record array, after `,`: an element, or `]` (trailing comma).
    ArrAfterComma,
    /// In the top-level object, just after `{`: a key or `}`.
    ObjFirst,
    /// In the top-level object, after `,`: a key, or `}` (trailing comma).
    ObjAfterComma,
    /// Inside a top-level key string.
    ObjKey,
    /// After a top-level key: `:`.
    ObjColon,
    /// After `:`: the member's value.
    ObjValue,
    /// After a member: `,` or `}`.
    ObjNext,
    /// Inside a value that is a record (an element of a record array).
    Record,
    /// Inside the value of a top-level member that is not a record array.
    Member,
    /// After the top-level value: only whitespace may follow.
    AfterTop,
}

/// The top-level keys whose array value holds the records.
const CONTAINER_KEYS: [&[u8]; 4] = [b"objects", b"stixobjects", b"indicators", b"value"];
/// Longer keys cannot be interesting; they are compared as "something else".
const MAX_KEY_BYTES: usize = 32;
/// Enough for `"bundle"` with its quotes; longer `type` values are not `bundle`.
const MAX_TYPE_BYTES: usize = 32;
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Push-based framer.
///
/// Feed it chunks split anywhere (inside strings, escapes or UTF-8 sequences) with
/// [`push`](Framer::push), then call [`finish`](Framer::finish). After an error every further
/// call returns the same error.
pub struct Framer {
    limits: FrameLimits,
    state: State,
    failed: Option<FrameError>,
    finished: Option<InputFormat>,

    /// Absolute offset of the current chunk's first byte.
    offset: u64,
    /// Line number at byte `line_pos` of the current chunk. Lines are counted lazily, only up to
    /// the positions that need one, which keeps newline counting out of the hot loops.
    line: u64,
    line_pos: usize,
    utf8: Utf8Carry,

    /// `true` once the top-level value is an object (rather than an array).
    top_object: bool,
    /// `true` once a record array was found inside the top-level object.
    container: bool,
    saw_sentinel_key: bool,
    key: Vec<u8>,
    key_escaped: bool,
    key_too_long: bool,
    member_is_type: bool,
    /// The top-level `type` member is `"bundle"`.
    type_is_bundle: bool,

    scan: ValueScan,
    /// The current record, or the whole top-level object while it may still be one record.
    record: Capture,
    /// The top-level `type` member's value, to recognise bundles.
    type_value: Capture,
    record_line: u64,
    next_index: u64,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Self {
        Framer {
            limits,
            state: State::Bom(0),
            failed: None,
            finished: None,
            offset: 0,
            line: 1,
            line_pos: 0,
            utf8: Utf8Carry::default(),
            top_object: false,
            container: false,
            saw_sentinel_key: false,
            key: Vec::with_capacity(MAX_KEY_BYTES),
            key_escaped: false,
            key_too_long: false,
            member_is_type: false,
            type_is_bundle: false,
            scan: ValueScan::default(),
            record: Capture::new(limits.max_record_bytes),
            type_value: Capture::new(MAX_TYPE_BYTES),
            record_line: 0,
            next_index: 0,
        }
    }

    /// Feeds the next chunk of input; complete records are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<FrameItem>) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.finished.is_some() {
            return self.fail_now("more input after the end of the input was signalled".into());
        }
        self.push_valid_utf8(chunk, out)
            .inspect_err(|e| self.failed = Some(e.clone()))
    }

    /// Scans the UTF-8-valid part of `chunk`. A character split across chunks is held back,
    /// unscanned, until the next chunk completes it, so what the framer emits (errors included)
    /// depends only on the bytes, never on where the chunks were cut.
    fn push_valid_utf8(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<FrameItem>,
    ) -> Result<(), FrameError> {
        let mut rest = chunk;
        if self.utf8.pending() {
            let (taken, completion) = self.utf8.complete(rest);
            rest = &rest[taken..];
            match completion {
                Completion::NeedMore => return Ok(()),
                Completion::Invalid => return Err(self.invalid_utf8()),
                Completion::Complete(bytes, len) => self.scan_chunk(&bytes[..len], out)?,
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => self.scan_chunk(rest, out),
            Err(e) => {
                let valid = e.valid_up_to();
                self.scan_chunk(&rest[..valid], out)?;
                if e.error_len().is_some() {
                    return Err(self.invalid_utf8());
                }
                self.utf8.hold(&rest[valid..]);
                Ok(())
            }
        }
    }

    fn invalid_utf8(&self) -> FrameError {
        // Held-back bytes are not scanned yet, so `offset` is where the bad sequence starts.
        self.error_now(format!(
            "invalid UTF-8 at byte offset {}: JSON input must be UTF-8",
            self.offset
        ))
    }

    /// Ends the input; any final record is appended to `out`. Returns the detected shape:
    /// [`InputFormat::StixBundle`], [`InputFormat::StixJson`] or [`InputFormat::SentinelRequest`].
    pub fn finish(&mut self, _out: &mut Vec<FrameItem>) -> Result<InputFormat, FrameError> {
        // Every record is emitted by `push` as soon as its last byte arrives (a top-level value
        // always ends with `]` or `}`), so nothing is left to emit here.
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(f) = self.finished {
            return Ok(f);
        }
        if self.utf8.pending() {
            return self
                .fail_now("invalid UTF-8: the input ends inside a multi-byte character".into());
        }
        let message = match self.state {
            State::AfterTop => {
                let format = self.format();
                self.finished = Some(format);
                return Ok(format);
            }
            State::Bom(_) | State::BeforeTop => {
                "empty input: expected a JSON array or object".to_string()
            }
            State::Record => format!(
                "unexpected end of input inside record {} (which starts on line {})",
                self.next_index, self.record_line
            ),
            _ if self.top_object => {
                "unexpected end of input: the top-level object is not closed".to_string()
            }
            _ => "unexpected end of input: the top-level array is not closed".to_string(),
        };
        self.fail_now(message)
    }

    /// Whether the records emitted are the top-level value itself (one object holding no record
    /// array) rather than the elements of an array.
    pub fn top_is_record(&self) -> bool {
        self.top_object && !self.container
    }

    fn format(&self) -> InputFormat {
        if !self.top_object || !self.container {
            InputFormat::StixJson
        } else if self.type_is_bundle {
            InputFormat::StixBundle
        } else if self.saw_sentinel_key {
            InputFormat::SentinelRequest
        } else {
            InputFormat::StixBundle
        }
    }

    fn error_now(&self, message: String) -> FrameError {
        FrameError {
            line: self.line,
            message,
        }
    }

    fn fail_now<T>(&mut self, message: String) -> Result<T, FrameError> {
        let e = self.error_now(message);
        self.failed = Some(e.clone());
        Err(e)
    }

    /// The line of byte `pos` of the current chunk; `pos` never goes backwards within a chunk.
    fn line_at(&mut self, chunk: &[u8], pos: usize) -> u64 {
        self.line += count_newlines(&chunk[self.line_pos..pos]);
        self.line_pos = pos;
        self.line
    }

    fn error_at(&mut self, chunk: &[u8], pos: usize, message: String) -> FrameError {
        let line = self.line_at(chunk, pos);
        FrameError { line, message }
    }

    fn unexpected(&mut self, chunk: &[u8], pos: usize, expected: &str) -> FrameError {
        let found = describe_byte(chunk[pos]);
        self.error_at(chunk, pos, format!("expected {expected}, found {found}"))
    }

    fn check_depth(&mut self, chunk: &[u8], pos: usize, depth: usize) -> Result<(), FrameError> {
        if depth > self.limits.max_depth {
            let max = self.limits.max_depth;
            return Err(self.error_at(chunk, pos, format!("nesting deeper than {max} levels")));
        }
        Ok(())
    }

    fn scan_chunk(&mut self, chunk: &[u8], out: &mut Vec<FrameItem>) -> Result<(), FrameError> {
        let n = chunk.len();
        let mut i = 0;
        while i < n {
            match self.state {
                State::Bom(k) => {
                    let b = chunk[i];
                    if b == BOM[usize::from(k)] {
                        i += 1;
                        self.state = if k == 2 {
                            State::BeforeTop
                        } else {
                            State::Bom(k + 1)
                        };
                    } else if k == 0 {
                        self.state = State::BeforeTop;
                    } else {
                        return Err(self.error_at(
                            chunk,
                            i,
                            "expected a JSON array or object, found a broken byte-order mark"
                                .into(),
                        ));
                    }
                }
                State::BeforeTop => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    match chunk[i] {
                        b'[' => {
                            self.check_depth(chunk, i, 1)?;
                            self.state = State::ArrFirst;
                        }
                        b'{' => {
                            self.check_depth(chunk, i, 1)?;
                            self.top_object = true;
                            self.record_line = self.line_at(chunk, i);
                            self.record.begin(i);
                            self.state = State::ObjFirst;
                        }
                        _ => {
                            return Err(self.unexpected(
                                chunk,
                                i,
                                "a JSON array '[' or object '{' at the start of the input",
                            ))
                        }
                    }
                    i += 1;
                }
                State::ArrFirst | State::ArrAfterComma => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    match chunk[i] {
                        b']' => {
                            i += 1;
                            self.close_record_array();
                        }
                        b',' | b'}' | b':' => {
                            let what = format!("record {} or ']'", self.next_index);
                            return Err(self.unexpected(chunk, i, &what));
                        }
                        b => {
                            self.record_line = self.line_at(chunk, i);
                            self.record.begin(i);
                            let base = if self.top_object { 2 } else { 1 };
                            self.begin_value(chunk, i, b, base, true)?;
                            self.state = State::Record;
                            i += 1;
                        }
                    }
                }
                State::ArrNext => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    match chunk[i] {
                        b',' => self.state = State::ArrAfterComma,
                        b']' => self.close_record_array(),
                        _ => {
                            let what = format!("',' or ']' after record {}", self.next_index - 1);
                            return Err(self.unexpected(chunk, i, &what));
                        }
                    }
                    i += 1;
                }
                State::ObjFirst | State::ObjAfterComma => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    match chunk[i] {
                        b'"' => {
                            self.key.clear();
                            self.key_escaped = false;
                            self.key_too_long = false;
                            self.state = State::ObjKey;
                        }
                        b'}' => self.close_top_object(chunk, i, out)?,
                        _ => return Err(self.unexpected(chunk, i, "a property name or '}'")),
                    }
                    i += 1;
                }
                State::ObjKey => {
                    // Top-level keys are few and short: byte at a time is fine here.
                    while i < n {
                        let b = chunk[i];
                        i += 1;
                        if self.key_escaped {
                            self.key_escaped = false;
                        } else if b == b'\\' {
                            self.key_escaped = true;
                        } else if b == b'"' {
                            self.state = State::ObjColon;
                            break;
                        }
                        if self.key.len() < MAX_KEY_BYTES {
                            self.key.push(b);
                        } else {
                            self.key_too_long = true;
                        }
                    }
                }
                State::ObjColon => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    if chunk[i] != b':' {
                        return Err(self.unexpected(chunk, i, "':' after a property name"));
                    }
                    self.state = State::ObjValue;
                    i += 1;
                }
                State::ObjValue => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    let b = chunk[i];
                    let key = if self.key_too_long {
                        &[][..]
                    } else {
                        &self.key[..]
                    };
                    let container_key = CONTAINER_KEYS.contains(&key);
                    let sentinel_key = key != b"objects";
                    if b == b'[' && container_key {
                        // This object is a bundle or request: its own text stops mattering, and
                        // its records are the elements of this array.
                        self.check_depth(chunk, i, 2)?;
                        self.container = true;
                        self.saw_sentinel_key |= sentinel_key;
                        self.record.abandon();
                        self.state = State::ArrFirst;
                    } else if matches!(b, b',' | b'}' | b']' | b':') {
                        return Err(self.unexpected(chunk, i, "a value after ':'"));
                    } else {
                        self.member_is_type = !self.key_too_long && self.key == b"type";
                        if self.member_is_type {
                            self.type_value.begin(i);
                        }
                        self.begin_value(chunk, i, b, 1, false)?;
                        self.state = State::Member;
                    }
                    i += 1;
                }
                State::ObjNext => {
                    i = skip_ws(chunk, i);
                    if i == n {
                        break;
                    }
                    match chunk[i] {
                        b',' => self.state = State::ObjAfterComma,
                        b'}' => self.close_top_object(chunk, i, out)?,
                        _ => return Err(self.unexpected(chunk, i, "',' or '}' after a value")),
                    }
                    i += 1;
                }
                State::Record | State::Member => {
                    let max_depth = self.limits.max_depth;
                    match self.scan.run(chunk, i, max_depth) {
                        Ok(Some(end)) => {
                            i = end;
                            if self.state == State::Record {
                                self.emit_record(chunk, end, out)?;
                                self.state = State::ArrNext;
                            } else {
                                if self.member_is_type {
                                    self.type_is_bundle = matches!(
                                        self.type_value.end(chunk, end),
                                        Ended::Kept(v) if v == b"\"bundle\""
                                    );
                                }
                                self.state = State::ObjNext;
                            }
                        }
                        Ok(None) => i = n,
                        Err((pos, message)) => return Err(self.error_at(chunk, pos, message)),
                    }
                }
                State::AfterTop => {
                    i = skip_ws(chunk, i);
                    if i < n {
                        return Err(self.unexpected(
                            chunk,
                            i,
                            "nothing after the end of the top-level value",
                        ));
                    }
                }
            }
        }
        // Keep what the open captures hold of this chunk; the chunk itself is gone after this.
        self.record.flush(chunk, n);
        self.record.start = 0;
        self.type_value.flush(chunk, n);
        self.type_value.start = 0;
        self.line += count_newlines(&chunk[self.line_pos..]);
        self.line_pos = 0;
        self.offset += n as u64;
        Ok(())
    }

    fn begin_value(
        &mut self,
        chunk: &[u8],
        pos: usize,
        first: u8,
        base: usize,
        record: bool,
    ) -> Result<(), FrameError> {
        let max_depth = self.limits.max_depth;
        self.scan
            .begin(first, base, max_depth, record)
            .map_err(|m| self.error_at(chunk, pos, m))
    }

    fn close_record_array(&mut self) {
        self.state = if self.top_object {
            State::ObjNext
        } else {
            State::AfterTop
        };
    }

    fn close_top_object(
        &mut self,
        chunk: &[u8],
        pos: usize,
        out: &mut Vec<FrameItem>,
    ) -> Result<(), FrameError> {
        self.state = State::AfterTop;
        if !self.container {
            // No record array inside: the object itself is the one record.
            self.emit_record(chunk, pos + 1, out)?;
        }
        Ok(())
    }

    fn emit_record(
        &mut self,
        chunk: &[u8],
        end: usize,
        out: &mut Vec<FrameItem>,
    ) -> Result<(), FrameError> {
        let index = self.next_index;
        self.next_index += 1;
        let line = self.record_line;
        let too_deep = std::mem::take(&mut self.scan.too_deep);
        match self.record.end(chunk, end) {
            Ended::Kept(bytes) => {
                // The stream was validated as UTF-8 before scanning, and a record starts and
                // ends on ASCII bytes, so this cannot fail; the check is kept as a safeguard.
                let text = String::from_utf8(bytes).map_err(|_| {
                    self.error_at(chunk, end, format!("record {index} is not valid UTF-8"))
                })?;
                let record = RawRecord { index, line, text };
                out.push(if too_deep {
                    FrameItem::TooDeep(record)
                } else {
                    FrameItem::Record(record)
                });
            }
            Ended::Oversize(bytes) => out.push(FrameItem::Oversize { index, line, bytes }),
        }
        Ok(())
    }
}

/// Tracks one JSON value (a record or a top-level member) until its end, without parsing it.
#[derive(Debug, Default)]
struct ValueScan {
    /// The open brackets inside the value, innermost last; bounded by `max_depth`.
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// A bare scalar (`true`, `12`, or garbage such as `tru`): ends before a delimiter.
    scalar: bool,
    /// Nesting depth of the value's container.
    base: usize,
    /// The value is a record: nesting past the limit makes it [`FrameItem::TooDeep`] instead
    /// of stopping the input.
    record: bool,
    /// Open brackets past the limit (counted, not kept: memory stays bounded by `max_depth`).
    deep: u64,
    /// The record went past the limit somewhere.
    too_deep: bool,
}

impl ValueScan {
    /// Starts a value at its first byte (which is consumed).
    fn begin(
        &mut self,
        first: u8,
        base: usize,
        max_depth: usize,
        record: bool,
    ) -> Result<(), String> {
        self.stack.clear();
        self.record = record;
        self.deep = 0;
        self.too_deep = false;
        self.in_string = false;
        self.escaped = false;
        self.scalar = false;
        self.base = base;
        match first {
            b'{' | b'[' => self.open(first, max_depth),
            b'"' => {
                self.in_string = true;
                Ok(())
            }
            _ => {
                self.scalar = true;
                Ok(())
            }
        }
    }

    fn open(&mut self, bracket: u8, max_depth: usize) -> Result<(), String> {
        if self.base + self.stack.len() >= max_depth {
            if !self.record {
                return Err(format!("nesting deeper than {max_depth} levels"));
            }
            // Only the depth matters from here on: the brackets past the limit are counted,
            // and the record is reported on its own once it ends.
            self.deep += 1;
            self.too_deep = true;
            return Ok(());
        }
        self.stack.push(bracket);
        Ok(())
    }

    /// Scans from `i`; returns the end offset (exclusive) when the value ends in this chunk.
    /// Errors carry the offending position.
    fn run(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        max_depth: usize,
    ) -> Result<Option<usize>, (usize, String)> {
        let n = chunk.len();
        if self.scalar {
            while i < n && !ends_scalar(chunk[i]) {
                i += 1;
            }
            if i < n {
                self.scalar = false;
                return Ok(Some(i));
            }
            return Ok(None);
        }
        loop {
            if self.in_string {
                if self.escaped {
                    if i >= n {
                        return Ok(None);
                    }
                    self.escaped = false;
                    i += 1;
                }
                match find_quote_or_backslash(chunk, i) {
                    None => return Ok(None),
                    Some(j) => {
                        if chunk[j] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.stack.is_empty() {
                                return Ok(Some(j + 1));
                            }
                        }
                        i = j + 1;
                    }
                }
            } else {
                let Some(j) = find_structural(chunk, i) else {
                    return Ok(None);
                };
                let b = chunk[j];
                i = j + 1;
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.open(b, max_depth).map_err(|m| (j, m))?,
                    _ if self.deep > 0 => self.deep -= 1,
                    _ => {
                        let open = self.stack.pop();
                        let expected = match open {
                            Some(b'{') => b'}',
                            _ => b']',
                        };
                        if b != expected {
                            return Err((
                                j,
                                format!(
                                    "unbalanced brackets: found '{}' where '{}' was expected",
                                    b as char, expected as char
                                ),
                            ));
                        }
                        if self.stack.is_empty() {
                            return Ok(Some(i));
                        }
                    }
                }
            }
        }
    }
}

/// Bytes that matter between strings inside a value.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// Finds the next structural byte. Pretty-printed files are mostly indentation between their
/// strings, so this skips eight bytes at a time: with the 0x20 bit set, `[`/`{` both read 0x7B
/// and `]`/`}` both 0x7D, and `"` stays 0x22, so three comparisons flag every candidate (and a few
/// others, such as 0x02, which the table then rules out).
fn find_structural(chunk: &[u8], from: usize) -> Option<usize> {
    const CASE: u64 = LO * 0x20;
    find_by_word(
        chunk,
        from,
        |v| {
            let v = v | CASE;
            zero_bytes(v ^ (LO * b'"' as u64))
                | zero_bytes(v ^ (LO * b'{' as u64))
                | zero_bytes(v ^ (LO * b'}' as u64))
        },
        |b| STRUCTURAL[usize::from(b)],
    )
}

/// Finds the next `"` or `\`: most of a STIX file is string contents, so this loop is where the
/// framer spends its time.
fn find_quote_or_backslash(chunk: &[u8], from: usize) -> Option<usize> {
    find_by_word(
        chunk,
        from,
        |v| zero_bytes(v ^ (LO * b'"' as u64)) | zero_bytes(v ^ (LO * b'\\' as u64)),
        |b| b == b'"' || b == b'\\',
    )
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of every zero byte of `v` is set, and possibly of some bytes above a zero byte
/// (borrows), never of a byte below the lowest zero byte.
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

/// The first position from `from` on whose byte `is_match`, eight bytes at a time: `flags` marks
/// (high bit of the byte) every byte of a little-endian word that may match, never missing one,
/// and each marked byte is confirmed with `is_match`.
fn find_by_word(
    chunk: &[u8],
    from: usize,
    flags: impl Fn(u64) -> u64,
    is_match: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut i = from;
    while i + 8 <= chunk.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&chunk[i..i + 8]);
        let mut hits = flags(u64::from_le_bytes(word));
        while hits != 0 {
            let k = i + (hits.trailing_zeros() / 8) as usize;
            if is_match(chunk[k]) {
                return Some(k);
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    chunk[i..].iter().position(|&b| is_match(b)).map(|k| i + k)
}

fn ends_scalar(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b']' | b'}' | b'[' | b'{' | b'"' | b':'
    )
}

fn skip_ws(chunk: &[u8], mut i: usize) -> usize {
    while i < chunk.len() && matches!(chunk[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn count_newlines(bytes: &[u8]) -> u64 {
    // Every byte of a JSON input passes through here once (for line numbers): SIMD counting.
    bytecount::count(bytes, b'\n') as u64
}

fn describe_byte(b: u8) -> String {
    match b {
        b'\n' | b'\r' | b'\t' | b' ' => "whitespace".into(),
        0x21..=0x7E => format!("'{}'", b as char),
        0x80..=0xFF => "a non-ASCII character".into(),
        _ => format!("control byte 0x{b:02X}"),
    }
}

/// A byte range of the input being collected across chunks, up to a limit. Past the limit the
/// bytes are only counted, so an oversized record costs no memory.
#[derive(Debug)]
struct Capture {
    active: bool,
    /// Where the uncollected part starts in the current chunk.
    start: usize,
    buf: Vec<u8>,
    len: u64,
    over: bool,
    limit: usize,
}

enum Ended {
    Kept(Vec<u8>),
    Oversize(u64),
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            active: false,
            start: 0,
            buf: Vec::new(),
            len: 0,
            over: false,
            limit,
        }
    }

    fn begin(&mut self, pos: usize) {
        self.active = true;
        self.start = pos;
        self.buf.clear();
        self.len = 0;
        self.over = false;
    }

    fn flush(&mut self, chunk: &[u8], end: usize) {
        if !self.active {
            return;
        }
        let part = &chunk[self.start..end];
        self.start = end;
        self.len += part.len() as u64;
        if self.over {
            return;
        }
        if self.buf.len() + part.len() > self.limit {
            self.over = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    fn end(&mut self, chunk: &[u8], end: usize) -> Ended {
        self.flush(chunk, end);
        self.active = false;
        if self.over {
            Ended::Oversize(self.len)
        } else {
            Ended::Kept(std::mem::take(&mut self.buf))
        }
    }

    fn abandon(&mut self) {
        self.active = false;
        self.buf = Vec::new();
    }
}

/// A multi-byte UTF-8 character cut by a chunk boundary (at most 3 bytes held, 4 once complete).
#[derive(Debug, Default)]
struct Utf8Carry {
    buf: [u8; 4],
    len: usize,
}

enum Completion {
    /// The chunk ended before the character did.
    NeedMore,
    /// The character is complete and valid: its bytes and length.
    Complete([u8; 4], usize),
    Invalid,
}

impl Utf8Carry {
    fn pending(&self) -> bool {
        self.len > 0
    }

    fn hold(&mut self, tail: &[u8]) {
        self.buf[..tail.len()].copy_from_slice(tail);
        self.len = tail.len();
    }

    /// Adds bytes from `chunk` to the held character; returns how many were taken.
    fn complete(&mut self, chunk: &[u8]) -> (usize, Completion) {
        let need = match self.buf[0] {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            _ => 2,
        };
        let mut taken = 0;
        while self.len < need && taken < chunk.len() {
            self.buf[self.len] = chunk[taken];
            self.len += 1;
            taken += 1;
        }
        let completion = match std::str::from_utf8(&self.buf[..self.len]) {
            Ok(_) => {
                let len = std::mem::take(&mut self.len);
                Completion::Complete(self.buf, len)
            }
            Err(e) if e.error_len().is_none() => Completion::NeedMore,
            Err(_) => Completion::Invalid,
        };
        (taken, completion)
    }
}

#[cfg(test)]
mod tests;
