//! JSON: records framed by the [`Framer`] (bundle, array, single object, Sentinel request, Graph
//! `{"value":[…]}`), with the switch to NDJSON when a first one-line object is followed by another
//! object on a later line; each record's text parsed into a STIX object, tiIndicators converted,
//! trailing commas removed with a `normalised` warning.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::lines::LineBody;
use super::{is_ws, Ctx, Decoded, InputFormat};
use crate::convert::{self, Defaults};
use crate::frame::{FrameError, FrameItem, FrameLimits, Framer};
use crate::report::Code;
use crate::stix::{self, Problem};

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
pub(super) fn json_to_stix(
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
pub(super) fn nests_deeper(text: &str, max: usize) -> bool {
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
pub(super) fn without_trailing_commas(text: &str) -> Option<String> {
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

/// JSON through the framer, with the switch to NDJSON.
pub(super) struct JsonBody {
    framer: Framer,
    items: Vec<FrameItem>,
    /// Watches the first top-level object while NDJSON is still possible.
    top: Option<TopScan>,
    /// Set once the input turned out to be NDJSON.
    pub(super) ndjson: Option<LineBody>,
    /// The top-level value is an array (so a first STIX record makes it `stix-json`).
    pub(super) array: bool,
    /// Records the framer emitted, and the first one's size.
    framed: u64,
    first_len: Option<u64>,
    /// The input's one top-level object when it is of no known shape (no `type`, not a
    /// tiIndicator): held back until the input's end says whether it is the whole input (an
    /// input error) or the first line of NDJSON (a record like any other).
    held: Option<Decoded>,
}

impl JsonBody {
    pub(super) fn new(limits: FrameLimits, ndjson_possible: bool) -> Self {
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

    pub(super) fn push(
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

    pub(super) fn finish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<InputFormat, FrameError> {
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
            InputFormat::StixJson | InputFormat::SentinelRequest if ti => InputFormat::Graph,
            shape => shape,
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
