//! CSV: the header row (recognised by its column names, or found in a comment before the first
//! row), then one record per row; rows are split into fields with `csv-core`.

use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::lines::{bad_utf8, cut_note, lossy_within, Line, Lines};
use super::{Ctx, Decoded};
use crate::convert::{rows::CsvHeader, Defaults};
use crate::frame::FrameError;
use crate::report::Code;
use crate::stix::Problem;

/// Splits CSV rows into fields (RFC 4180: quoted fields, `""` for a quote, newlines inside
/// quotes) with `csv-core`, reusing its buffers from row to row.
pub(super) struct RowSplitter {
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
    pub(super) fn fields<'a>(&'a mut self, text: &str) -> Vec<&'a str> {
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
pub(super) fn csv_row(
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

/// CSV: a header row, then one record per row (rows may span lines inside quoted fields).
pub(super) struct CsvBody {
    lines: Lines,
    header: Option<Arc<CsvHeader>>,
    /// The header row's text, as the input has it.
    pub(super) header_text: Option<String>,
    next_index: u64,
}

impl CsvBody {
    pub(super) fn new(max: usize) -> Self {
        CsvBody {
            lines: Lines::new(max, true, 1).skipping_comments(),
            header: None,
            header_text: None,
            next_index: 0,
        }
    }

    /// A CSV whose header row was found in a comment before the first row.
    pub(super) fn with_header(max: usize, header: CsvHeader, text: String) -> Self {
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

    pub(super) fn push(
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

    pub(super) fn finish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
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
