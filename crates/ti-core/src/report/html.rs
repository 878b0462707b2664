//! The report as a page a person reads (`<path>.report.html`, beside `<path>.report.json`).
//!
//! One self-contained HTML document: inline CSS, no script, and a Content-Security-Policy that
//! forbids every fetch (scripts, images, fonts, frames, forms), so the page is safe to open from
//! blob storage or a laptop whatever the input held. Every value that comes from the input or the
//! service (names, ids, original record text, messages) is HTML-escaped.
//!
//! Built in streaming fashion: a [`Page`] is fed the report's entries one at a time and keeps only
//! the counts per code and the first [`SHOWN_PER_GROUP`] entries of each code (each cut to a
//! bounded length), so its memory does not grow with the report; [`Page::write_to`] then writes
//! the document to any [`Write`], and stops showing entries once [`ENTRY_BUDGET_BYTES`] of them
//! are written, so the page stays under 1 MB whatever the input (a test renders a
//! 1,000,000-record report).

use std::io::{self, Write};

use super::{Code, RecordError, RecordWarning, Report};

/// Entries shown per code; the rest are counted, with the file that has them all.
pub const SHOWN_PER_GROUP: usize = 20;
/// Characters of a record's original text shown (the whole text is in the rejected file).
pub const ORIGINAL_CHARS: usize = 2_000;
/// Characters of one message shown.
pub const MESSAGE_CHARS: usize = 500;
/// Messages shown per entry.
pub const MESSAGES_SHOWN: usize = 5;
/// Characters of an id or a name shown.
const NAME_CHARS: usize = 1_100;
/// Characters of the input error's message shown.
const INPUT_MESSAGE_CHARS: usize = 4_000;
/// Characters of a file name in a group's "more not shown" line (the page's foot names each
/// file whole).
const FILE_NAME_CHARS: usize = 100;
/// Bytes of entries written before the page stops showing more. A character is at most 12 bytes
/// written (`⟨U+0001⟩`; `&quot;` is 6), so one entry is at most about 12 × (2,000 + 5 × 500 +
/// 1,100) = 67 KB, and the rest of the page (heading, input error, a bar and a group head with
/// its file names for each of 33 codes in errors and in warnings, foot) at most about 420 KB: the
/// page stays below 1,000,000 bytes, as the worst-case test checks.
pub const ENTRY_BUDGET_BYTES: u64 = 500_000;

/// The files a page points to for what it does not show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageFiles {
    /// The JSON report, e.g. `indicator-reports/feeds/a.json.report.json`.
    pub report: String,
    /// The rejected records' original text, when records were rejected.
    pub rejected: Option<String>,
    /// The errors the JSON report does not list (`moreErrorsIn`), when there are more.
    pub more_errors: Option<String>,
    /// The warnings the JSON report does not list (`moreWarningsIn`), when there are more.
    pub more_warnings: Option<String>,
}

/// One shown entry, cut to bounded length.
#[derive(Debug, Clone)]
struct Shown {
    index: u64,
    line: Option<u64>,
    id: Option<Cut>,
    messages: Vec<Cut>,
    more_messages: usize,
    /// `None`: no original text kept for this record.
    original: Option<Cut>,
}

/// A text cut to a number of characters, with how many were left out.
#[derive(Debug, Clone)]
struct Cut {
    text: String,
    left_out: usize,
}

impl Cut {
    fn new(s: &str, max_chars: usize) -> Cut {
        match s.char_indices().nth(max_chars) {
            None => Cut {
                text: s.to_string(),
                left_out: 0,
            },
            Some((at, _)) => Cut {
                text: s[..at].to_string(),
                left_out: s[at..].chars().count(),
            },
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Group {
    count: u64,
    shown: Vec<Shown>,
}

impl Group {
    /// Counts one entry, and keeps it (built only then) when it is among the group's first.
    fn add(&mut self, entry: impl FnOnce() -> Shown) {
        self.count += 1;
        if self.shown.len() < SHOWN_PER_GROUP {
            self.shown.push(entry());
        }
    }
}

/// The page of one report, fed entry by entry (see the module docs).
#[derive(Debug, Clone)]
pub struct Page {
    source_kind: String,
    source_name: String,
    format: Option<String>,
    target: String,
    started_at: String,
    finished_at: String,
    records: u64,
    uploaded: u64,
    rejected: u64,
    input_error: Option<(String, String)>,
    files: PageFiles,
    errors: Vec<Group>,
    warnings: Vec<Group>,
}

impl Page {
    /// A page with `report`'s heading (source, target, times, summary, input error) and no
    /// entries yet: feed them with [`Page::add_error`] and [`Page::add_warning`].
    pub fn new(report: &Report, files: PageFiles) -> Page {
        Page {
            source_kind: report.source.kind.clone(),
            source_name: report.source.name.clone(),
            format: report.source.format.clone(),
            target: report.target.clone(),
            started_at: report.started_at.clone(),
            finished_at: report.finished_at.clone(),
            records: report.summary.records,
            uploaded: report.summary.uploaded,
            rejected: report.summary.rejected,
            input_error: report
                .input_error
                .as_ref()
                .map(|e| (e.code.clone(), e.message.clone())),
            files,
            errors: vec![Group::default(); Code::ALL.len()],
            warnings: vec![Group::default(); Code::ALL.len()],
        }
    }

    /// Takes `report`'s heading (source, target, times, summary, input error) again, keeping the
    /// entries fed so far: for a page fed while a report is assembled piece by piece, whose
    /// summary is known only at the end.
    pub fn set_heading(&mut self, report: &Report) {
        let entries = (
            std::mem::take(&mut self.errors),
            std::mem::take(&mut self.warnings),
        );
        let files = std::mem::take(&mut self.files);
        *self = Page::new(report, files);
        (self.errors, self.warnings) = entries;
    }

    /// The files the page points to for what it does not show.
    pub fn set_files(&mut self, files: PageFiles) {
        self.files = files;
    }

    /// Counts a rejected record, and keeps it for showing when it is among its code's first.
    pub fn add_error(&mut self, e: &RecordError, original: Option<&str>) {
        self.errors[e.code as usize].add(|| {
            shown(
                e.record_index,
                e.line,
                e.id.as_deref(),
                &e.messages,
                original,
            )
        });
    }

    /// Counts `n` more rejected records of `code` that are not fed one by one (e.g. a report
    /// whose entries past a limit are only counted): counted in the bar and the group, not shown.
    pub fn add_error_count(&mut self, code: Code, n: u64) {
        self.errors[code as usize].count += n;
    }

    /// Counts a warning, and keeps it for showing when it is among its code's first.
    pub fn add_warning(&mut self, w: &RecordWarning) {
        self.warnings[w.code as usize]
            .add(|| shown(w.record_index, w.line, w.id.as_deref(), &w.messages, None));
    }

    /// Writes the document.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<()> {
        let mut out = Counting {
            inner: io::BufWriter::new(out),
            written: 0,
        };
        self.write_head(&mut out)?;
        self.write_summary(&mut out)?;
        let entries_start = out.written;
        let budget = entries_start + ENTRY_BUDGET_BYTES;
        let errors = order(&self.errors);
        if !errors.is_empty() {
            out.write_all(b"<section id=\"errors\"><h2>Rejected records</h2>\n")?;
            for &code in &errors {
                self.write_group(&mut out, code, &self.errors[code as usize], true, budget)?;
            }
            out.write_all(b"</section>\n")?;
        }
        let warnings = order(&self.warnings);
        if !warnings.is_empty() {
            write!(
                out,
                "<section id=\"warnings\"><h2>Warnings</h2>\n\
                 <p class=\"note\">These records {} uploaded; each warning says what was \
                 changed or noticed.</p>\n",
                if self.sends() { "were" } else { "would be" }
            )?;
            for &code in &warnings {
                self.write_group(&mut out, code, &self.warnings[code as usize], false, budget)?;
            }
            out.write_all(b"</section>\n")?;
        }
        write!(
            out,
            "<footer><p>Written by ti-ingest {}. Every entry is in ",
            env!("CARGO_PKG_VERSION")
        )?;
        code_cut(&mut out, &Cut::new(&self.files.report, NAME_CHARS))?;
        for more in [&self.files.more_errors, &self.files.more_warnings]
            .into_iter()
            .flatten()
        {
            out.write_all(b" and ")?;
            code_cut(&mut out, &Cut::new(more, NAME_CHARS))?;
        }
        if let Some(rejected) = &self.files.rejected {
            out.write_all(b"; the original text of every rejected record is in ")?;
            code_cut(&mut out, &Cut::new(rejected, NAME_CHARS))?;
        }
        out.write_all(b".</p></footer>\n</body>\n</html>\n")?;
        out.inner.flush()
    }

    fn write_head<W: Write>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
        // Everything but the inline stylesheet is refused: no script, image, font, frame, form
        // target or base URL; a page opened from storage can make no request at all.
        out.write_all(
            b"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
              style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">\n\
              <meta name=\"referrer\" content=\"no-referrer\">\n\
              <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
              <title>ti-ingest report: ",
        )?;
        text(out, &Cut::new(&self.source_name, NAME_CHARS).text)?;
        out.write_all(b"</title>\n<style>")?;
        out.write_all(CSS.as_bytes())?;
        out.write_all(b"</style>\n</head>\n<body>\n<header>\n<h1>Report for <span id=\"source\">")?;
        cut(out, &Cut::new(&self.source_name, NAME_CHARS))?;
        out.write_all(b"</span></h1>\n")?;
        if let Some((code, message)) = &self.input_error {
            out.write_all(b"<section id=\"input-error\" class=\"input-error\">\n<h2>")?;
            out.write_all(input_error_title(code).as_bytes())?;
            write!(
                out,
                "</h2>\n<p class=\"words\">{}</p>\n",
                input_error_words(code)
            )?;
            out.write_all(b"<p>Code <code id=\"input-error-code\">")?;
            text(out, code)?;
            out.write_all(b"</code>: <span id=\"input-error-message\">")?;
            cut(out, &Cut::new(message, INPUT_MESSAGE_CHARS))?;
            out.write_all(b"</span></p>\n</section>\n")?;
        }
        out.write_all(b"<p id=\"outcome\" class=\"outcome\">")?;
        text(out, &self.outcome())?;
        out.write_all(b"</p>\n<dl class=\"facts\">\n<dt>Input</dt><dd>")?;
        text(out, &self.source_kind)?;
        out.write_all(b" <span class=\"name\">")?;
        cut(out, &Cut::new(&self.source_name, NAME_CHARS))?;
        out.write_all(b"</span>")?;
        if let Some(format) = &self.format {
            out.write_all(b", read as <code>")?;
            text(out, format)?;
            out.write_all(b"</code>")?;
        }
        out.write_all(b"</dd>\n<dt>Target</dt><dd><code id=\"target\">")?;
        text(out, &self.target)?;
        out.write_all(b"</code></dd>\n<dt>When</dt><dd>")?;
        text(out, &self.when())?;
        write!(
            out,
            "</dd>\n<dt>Records</dt><dd><span id=\"records\">{}</span> read, \
             <span id=\"uploaded\">{}</span> {}, <span id=\"rejected\">{}</span> rejected</dd>\n\
             </dl>\n</header>\n",
            thousands(self.records),
            thousands(self.uploaded),
            if self.sends() {
                "uploaded"
            } else {
                "would be uploaded"
            },
            thousands(self.rejected)
        )
    }

    fn write_summary<W: Write>(&self, out: &mut W) -> io::Result<()> {
        for (groups, id, title, anchor) in [
            (&self.errors, "codes", "Why records were rejected", "e"),
            (
                &self.warnings,
                "warning-codes",
                "Warnings (records not rejected)",
                "w",
            ),
        ] {
            let codes = order(groups);
            let Some(&first) = codes.first() else {
                continue;
            };
            let max = groups[first as usize].count.max(1);
            write!(
                out,
                "<section id=\"{id}\"><h2>{title}</h2>\n<ul class=\"bars\">\n"
            )?;
            for code in codes {
                let count = groups[code as usize].count;
                // Bars are relative to the largest group; a non-empty group gets a visible sliver.
                let width = ((count as f64 / max as f64) * 100.0).clamp(1.0, 100.0);
                write!(
                    out,
                    "<li class=\"bar\" data-code=\"{name}\" data-count=\"{count}\">\
                     <div class=\"label\"><a href=\"#{anchor}-{name}\"><code>{name}</code></a> \
                     <span class=\"count\">{shown}</span></div>\
                     <div class=\"track\"><div class=\"fill\" style=\"width:{width:.1}%\"></div></div>\
                     <p class=\"fix\">",
                    name = code.name(),
                    shown = thousands(count),
                )?;
                fix(out, code.fix())?;
                out.write_all(b"</p></li>\n")?;
            }
            out.write_all(b"</ul>\n</section>\n")?;
        }
        Ok(())
    }

    fn write_group<W: Write>(
        &self,
        out: &mut Counting<W>,
        code: Code,
        group: &Group,
        rejected: bool,
        budget: u64,
    ) -> io::Result<()> {
        let name = code.name();
        let anchor = if rejected { "e" } else { "w" };
        write!(
            out,
            "<section class=\"group\" id=\"{anchor}-{name}\" data-code=\"{name}\" data-count=\"{}\">\
             <h3><code>{name}</code> <span class=\"count\">{} {}</span></h3>\n<p class=\"fix\">",
            group.count,
            thousands(group.count),
            if group.count == 1 { "record" } else { "records" },
        )?;
        fix(out, code.fix())?;
        out.write_all(b"</p>\n<ol class=\"entries\">\n")?;
        let mut written = 0u64;
        for s in &group.shown {
            if out.written >= budget {
                break;
            }
            write_entry(out, s, rejected)?;
            written += 1;
        }
        out.write_all(b"</ol>\n")?;
        let rest = group.count - written;
        if rest > 0 {
            write!(
                out,
                "<p class=\"more\" data-not-shown=\"{rest}\">{} more not shown here; all {} are in ",
                thousands(rest),
                thousands(group.count)
            )?;
            short_file(out, &self.files.report)?;
            let more = if rejected {
                &self.files.more_errors
            } else {
                &self.files.more_warnings
            };
            if let Some(more) = more {
                out.write_all(b" and ")?;
                short_file(out, more)?;
            }
            if let (true, Some(rejected)) = (rejected, &self.files.rejected) {
                out.write_all(b", their original text in ")?;
                short_file(out, rejected)?;
            }
            out.write_all(b".</p>\n")?;
        }
        out.write_all(b"</section>\n")
    }

    /// Whether the target sends records (`validate` and `dry-run` only say what would be sent).
    fn sends(&self) -> bool {
        !matches!(self.target.as_str(), "validate" | "dry-run")
    }

    /// The outcome in one sentence, e.g. "2,912 of 3,000 uploaded; 88 rejected; nothing to retry."
    pub fn outcome(&self) -> String {
        if self.records == 0 {
            return if self.input_error.is_some() {
                "No record was read before the input error.".into()
            } else {
                "The input held no records.".into()
            };
        }
        let verb = if self.sends() {
            "uploaded"
        } else {
            "would be uploaded"
        };
        let transient = self.errors[Code::RetriesExhausted as usize].count
            + self.errors[Code::AuthFailed as usize].count;
        let retry = match transient {
            0 => "nothing to retry".to_string(),
            n => format!(
                "{} failed on transient errors: drop the input again to retry {}",
                thousands(n),
                if n == 1 { "it" } else { "them" }
            ),
        };
        let warned: u64 = self.warnings.iter().map(|g| g.count).sum();
        let warnings = match warned {
            0 => String::new(),
            1 => "; 1 warning".into(),
            n => format!("; {} warnings", thousands(n)),
        };
        let stopped = if self.input_error.is_some() {
            " Reading stopped at the input error."
        } else {
            ""
        };
        format!(
            "{} of {} {verb}; {} rejected; {retry}{warnings}.{stopped}",
            thousands(self.uploaded),
            thousands(self.records),
            thousands(self.rejected),
        )
    }

    /// The start and the duration, e.g. "2026-11-22 10:00:00 UTC, for 4 s".
    fn when(&self) -> String {
        use time::format_description::well_known::Rfc3339;
        let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
        match (parse(&self.started_at), parse(&self.finished_at)) {
            (Some(start), Some(end)) => {
                let secs = (end - start).as_seconds_f64().max(0.0);
                let start = start.to_offset(time::UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC, for {}",
                    start.year(),
                    u8::from(start.month()),
                    start.day(),
                    start.hour(),
                    start.minute(),
                    start.second(),
                    duration(secs)
                )
            }
            _ => format!("{} to {}", self.started_at, self.finished_at),
        }
    }
}

/// Writes the page of a whole in-memory report; `original` gives a rejected record's original
/// text by its `recordIndex`, when it was kept.
pub fn write_page<'a, W: Write>(
    out: W,
    report: &Report,
    original: impl Fn(u64) -> Option<&'a str>,
    files: PageFiles,
) -> io::Result<()> {
    let mut page = Page::new(report, files);
    for e in &report.errors {
        page.add_error(e, original(e.record_index));
    }
    for w in &report.warnings {
        page.add_warning(w);
    }
    page.write_to(out)
}

fn shown(
    index: u64,
    line: Option<u64>,
    id: Option<&str>,
    messages: &[String],
    original: Option<&str>,
) -> Shown {
    Shown {
        index,
        line,
        id: id.map(|i| Cut::new(i, NAME_CHARS)),
        messages: messages
            .iter()
            .take(MESSAGES_SHOWN)
            .map(|m| Cut::new(m, MESSAGE_CHARS))
            .collect(),
        more_messages: messages.len().saturating_sub(MESSAGES_SHOWN),
        original: original.map(|o| Cut::new(o, ORIGINAL_CHARS)),
    }
}

fn write_entry<W: Write>(out: &mut W, s: &Shown, rejected: bool) -> io::Result<()> {
    write!(out, "<li class=\"entry\" data-index=\"{}\"", s.index)?;
    if let Some(line) = s.line {
        write!(out, " data-line=\"{line}\"")?;
    }
    out.write_all(b"><p class=\"where\">")?;
    match s.line {
        Some(line) => write!(out, "Line {}", thousands(line))?,
        None => out.write_all(b"Line unknown")?,
    }
    write!(out, " &middot; record {}", thousands(s.index))?;
    if let Some(id) = &s.id {
        out.write_all(b" &middot; <code class=\"id\">")?;
        cut(out, id)?;
        out.write_all(b"</code>")?;
    }
    out.write_all(b"</p>\n")?;
    if rejected {
        match &s.original {
            Some(o) => {
                out.write_all(b"<pre class=\"original\">")?;
                cut(out, o)?;
                out.write_all(b"</pre>\n")?;
            }
            None => out.write_all(b"<p class=\"note\">The original text was not kept.</p>\n")?,
        }
    }
    out.write_all(b"<ul class=\"messages\">")?;
    for m in &s.messages {
        out.write_all(b"<li>")?;
        cut(out, m)?;
        out.write_all(b"</li>")?;
    }
    if s.more_messages > 0 {
        write!(
            out,
            "<li class=\"note\">{} more in the JSON report</li>",
            s.more_messages
        )?;
    }
    out.write_all(b"</ul></li>\n")
}

/// Codes with entries, the largest group first (ties in code order).
fn order(groups: &[Group]) -> Vec<Code> {
    let mut codes: Vec<Code> = Code::ALL
        .into_iter()
        .filter(|&c| groups[c as usize].count > 0)
        .collect();
    codes.sort_by_key(|&c| std::cmp::Reverse(groups[c as usize].count));
    codes
}

/// Escapes `s` for element content and double-quoted attributes alike.
/// Characters a reader cannot see are written as `⟨U+XXXX⟩`: C0 and C1 controls other than tab
/// and line breaks, and the bidirectional formatting characters, which can make text display in
/// an order other than its own ("Trojan Source", CVE-2021-42574; Unicode UAX #9 lists them).
fn text<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    let mut rest = s;
    while let Some(at) = rest.find(hidden) {
        html_escape::encode_quoted_attribute_to_writer(&rest[..at], out)?;
        let ch = rest[at..].chars().next().unwrap_or_default();
        write!(out, "\u{27e8}U+{:04X}\u{27e9}", ch as u32)?;
        rest = &rest[at + ch.len_utf8()..];
    }
    html_escape::encode_quoted_attribute_to_writer(rest, out)
}

fn hidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An escaped cut text with, when it was cut, how much was left out.
fn cut<W: Write>(out: &mut W, c: &Cut) -> io::Result<()> {
    text(out, &c.text)?;
    if c.left_out > 0 {
        write!(
            out,
            "<span class=\"cut\">&hellip; {} more characters</span>",
            thousands(c.left_out as u64)
        )?;
    }
    Ok(())
}

fn code_cut<W: Write>(out: &mut W, c: &Cut) -> io::Result<()> {
    out.write_all(b"<code>")?;
    cut(out, c)?;
    out.write_all(b"</code>")
}

/// A file by its name in its folder (the page is written beside it), cut short.
fn short_file<W: Write>(out: &mut W, path: &str) -> io::Result<()> {
    let name = path.rsplit('/').next().unwrap_or(path);
    code_cut(out, &Cut::new(name, FILE_NAME_CHARS))
}

fn code_text<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(b"<code>")?;
    text(out, s)?;
    out.write_all(b"</code>")
}

/// A fix from the code table: backtick spans become `<code>`.
fn fix<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            code_text(out, part)?;
        } else {
            text(out, part)?;
        }
    }
    Ok(())
}

fn input_error_title(code: &str) -> &'static str {
    match code {
        "blob_not_found" | "input_unreadable" => "The input could not be read",
        "input_too_large" => "The input is too large",
        "envelope_invalid" | "event_invalid" | "blob_reference_invalid" => {
            "The message could not be used"
        }
        "poisoned" => "The message was given up",
        c if c.starts_with("feed_") => "The feed could not be pulled",
        _ => "The input could not be read to its end",
    }
}

/// The input-level codes in words (docs/REPORTS.md, "Input-level codes"; docs/PULL.md for `feed_*`).
fn input_error_words(code: &str) -> &'static str {
    match code {
        "input_invalid" => "The input's structure, encoding or compression is broken; reading stopped there. Records read before the break are counted below. Fix the input where the message says and drop it again.",
        "input_too_large" => "The input is larger than TI_MAX_INPUT_BYTES allows; none of it was uploaded. Split it into smaller files.",
        "input_unreadable" => "The input could not be read from storage. Drop it again.",
        "blob_not_found" => "The file was gone (deleted or renamed) before it could be read.",
        "envelope_invalid" => "The message is not in a form ti-ingest reads (see the README, Inputs).",
        "event_invalid" => "The storage event is not one ti-ingest reads.",
        "blob_reference_invalid" => "The message names no blob of the inbox container.",
        "poisoned" => "The Functions host gave up on this message after it failed repeatedly; its whole text is kept beside this report.",
        c if c.starts_with("feed_") => "The feed pull failed; docs/PULL.md explains this code.",
        _ => "The input as a whole could not be used.",
    }
}

/// `2912` → `2,912`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{} s", secs.round() as u64)
    } else if secs < 3600.0 {
        format!(
            "{} min {} s",
            (secs / 60.0) as u64,
            (secs % 60.0).round() as u64
        )
    } else {
        format!(
            "{} h {} min",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// A writer that counts the bytes it passes on.
struct Counting<W: Write> {
    inner: io::BufWriter<W>,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The stylesheet: readable on a phone (one column, wrapped long values) and on a desk.
const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#fff;--box:#f6f8fa;--line:#d0d7de;--bar:#cf222e;--warn:#9a6700;--ok:#1a7f37}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--box:#161b22;--line:#30363d;--bar:#f85149;--warn:#d29922;--ok:#3fb950}}\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:60rem;padding:1rem;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg);overflow-wrap:anywhere}\
h1{font-size:1.35rem;margin:.2rem 0 .8rem}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}h3{font-size:1rem;margin:0 0 .3rem}\
code,pre{font:.88em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}\
.outcome{font-size:1.15rem;font-weight:600;margin:.6rem 0}\
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:0;color:var(--muted)}.facts dd{margin:0}\
.input-error{border:2px solid var(--bar);border-radius:6px;padding:.2rem 1rem;margin:.8rem 0}.input-error h2{margin:.6rem 0 .3rem;color:var(--bar)}\
.bars{list-style:none;padding:0;margin:0}.bar{margin:0 0 .9rem}\
.label{display:flex;justify-content:space-between;gap:1rem}.label a{color:inherit}.count{font-weight:600;white-space:nowrap}\
.track{height:.6rem;background:var(--box);border:1px solid var(--line);border-radius:3px;margin:.2rem 0}\
.fill{height:100%;background:var(--bar)}#warning-codes .fill{background:var(--warn)}\
.fix{margin:.1rem 0;color:var(--muted)}\
.group{border-top:1px solid var(--line);padding:.8rem 0}\
.entries{list-style:none;padding:0;margin:.4rem 0}.entry{background:var(--box);border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem;margin:0 0 .6rem}\
.where{margin:0 0 .3rem;font-weight:600}.id{font-weight:400}\
.original{white-space:pre-wrap;margin:.3rem 0;padding:.4rem;background:var(--bg);border-left:3px solid var(--bar);max-height:16rem;overflow:auto}\
.messages{margin:.3rem 0 0;padding-left:1.2rem}.note,.cut,.more{color:var(--muted)}.cut{font-style:italic}\
footer{border-top:1px solid var(--line);margin-top:1.5rem;color:var(--muted);font-size:.9rem}\
";

#[cfg(test)]
mod tests;
