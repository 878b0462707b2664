//! Prose input (`--format prose` / `TI_FORMAT=prose`, never auto-detected): indicators extracted
//! from running text — a threat report or blog post as plain text, Markdown or HTML.
//!
//! Each distinct indicator becomes one record (its first mention): line = the line it is on,
//! `description` and original text = the sentence it came from (whitespace collapsed, cut to
//! [`DESCRIPTION_MAX`] characters). Candidates are words of the text, with defanged forms kept
//! whole (`hxxp(s)://`, `fxp://`, `[.]`, `(.)`, `{.}`, `[dot]`, `(dot)`, `[:]`, `[://]`, `[@]`,
//! `[at]`, `(at)`, also with spaces around the brackets); each is classified and checked by the
//! same functions as a text line ([`text::refang`], [`text::infer_observable`],
//! [`Observable::check`], then [`text::text_to_stix`]). On top of those, prose rules that a
//! list of indicators does not need, since prose is mostly not indicators:
//! - a word that is not an observable is no record and no error (it is just a word);
//! - a domain's top-level label has at least two letters (`e.g`, `U.S`, `No.1` are no domains),
//!   and a name that is not defanged and ends in a file extension (`invoice.pdf`, `setup.exe`,
//!   `Node.js`) is a file name, not a domain — the author defangs a domain on purpose;
//! - an IPv4 address right after `version`, `build`, `release`, `firmware`… is a version number;
//! - an all-digit "hash" is a number; `::` is no IPv6 address;
//! - `host/path` without a scheme yields its host (a STIX URL needs the scheme, which the text
//!   does not give), `host:port` its host, `sha256:…`, `md5=…` and `mailto:` their value;
//! - link targets are references, not indicators: Markdown `](target)` and HTML attributes are
//!   not read; an indicator written in the visible text is.
//!
//! Markup: a first non-blank line that starts with a tag (`<!DOCTYPE`, `<html`, `<p>`…) makes the
//! input HTML (comments before it do not count): tags, comments, `<script>` and `<style>` contents are dropped and character
//! references decoded (by the `html-escape` crate, which knows every HTML5 named reference).
//! The tag stripper is a small state machine rather than an HTML parser crate because it must
//! stream line by line with bounded memory, and extraction needs only the text, not a tree.
//! Otherwise the input is plain text or Markdown: table rows, headings, list items and lines
//! of fenced code blocks are units of their own, paragraphs end at blank lines.
//!
//! Memory is bounded: lines come from the same bounded splitter as the other line formats, a
//! paragraph is split into sentences once it ends or passes [`PARA_CAP`] bytes, and only the set
//! of indicators already emitted (one entry per record) is kept for the whole input.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::lines::{Line, Lines};
use super::{Ctx, Decoded};
use crate::convert::text;
use crate::frame::FrameError;
use crate::stix::observable::Observable;

/// A paragraph longer than this (bytes) is processed at once rather than buffered further.
pub const PARA_CAP: usize = 32 * 1024;
/// A record's description (its sentence) is cut to this many characters, ending in `…`.
pub const DESCRIPTION_MAX: usize = 500;

/// Defang marks, lower case, and what they stand for (as `text::refang` reads them).
const MARKS: [(&str, &str); 16] = [
    ("[://]", "[://]"),
    ("[.]", "[.]"),
    ("(.)", "[.]"),
    ("{.}", "[.]"),
    ("[dot]", "[.]"),
    ("(dot)", "[.]"),
    ("{dot}", "[.]"),
    ("[:]", "[:]"),
    ("(:)", "[:]"),
    ("[@]", "[@]"),
    ("(@)", "[@]"),
    ("{@}", "[@]"),
    ("[at]", "[@]"),
    ("(at)", "[@]"),
    ("{at}", "[@]"),
    ("[/]", "/"),
];

/// Extensions that make a non-defanged `name.ext` a file name rather than a domain in prose.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "scr", "com_", "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse",
    "wsf", "hta", "lnk", "msi", "msix", "iso", "img", "vhd", "vhdx", "jar", "apk", "py", "sh",
    "pl", "rb", "php", "asp", "aspx", "jsp", "pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm",
    "ppt", "pptx", "rtf", "odt", "txt", "log", "csv", "json", "xml", "yml", "yaml", "ini", "cfg",
    "conf", "dat", "bin", "tmp", "bak", "zip", "rar", "7z", "gz", "tgz", "tar", "cab", "png",
    "jpg", "jpeg", "gif", "bmp", "svg", "ico", "htm", "html", "css", "md", "elf", "so", "dylib",
    "plist", "deb", "rpm", "dmg", "pkg", "ts", "go", "rs", "cpp", "c", "h", "cs", "db", "sqlite",
    "eml", "msg", "one", "chm", "inf", "reg", "pif", "gadget", "xll", "wll", "lock",
];

/// Words after which a dotted quad is a version number, not an address.
const VERSION_WORDS: &[&str] = &[
    "version", "versions", "ver", "v", "build", "builds", "release", "firmware", "patch", "update",
    "revision", "rev",
];

pub(super) struct ProseBody {
    lines: Lines,
    markup: Markup,
    /// Inside a Markdown fenced code block.
    fence: bool,
    /// The current paragraph's text, and where each of its lines starts in it.
    para: String,
    starts: Vec<(usize, u64)>,
    /// The indicators already emitted (observable, value as compared).
    seen: HashSet<(Observable, String)>,
    next_index: u64,
}

enum Markup {
    Undecided,
    /// Undecided, inside a comment (`<!-- … -->`) before any content: Markdown files start
    /// with one as often as HTML files do; it is not text in either.
    LeadingComment,
    Text,
    Html(Html),
}

impl ProseBody {
    pub(super) fn new(max: usize) -> Self {
        ProseBody {
            lines: Lines::new(max, false, 1),
            markup: Markup::Undecided,
            fence: false,
            para: String::new(),
            starts: Vec::new(),
            seen: HashSet::new(),
            next_index: 0,
        }
    }

    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let mut lines = std::mem::replace(&mut self.lines, Lines::new(0, false, 0));
        let r = lines.push(bytes, &mut |line, l| {
            self.line(ctx, out, line, l);
            Ok(())
        });
        self.lines = lines;
        r
    }

    pub(super) fn finish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<Decoded>,
    ) -> Result<(), FrameError> {
        let mut lines = std::mem::replace(&mut self.lines, Lines::new(0, false, 0));
        let r = lines.finish(&mut |line, l| {
            self.line(ctx, out, line, l);
            Ok(())
        });
        self.lines = lines;
        self.flush(ctx, out);
        r
    }

    fn line(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>, line: u64, l: Line<'_>) {
        let t = match l {
            Line::Oversize(bytes) => {
                self.flush(ctx, out);
                let index = self.take_index();
                out.push(ctx.oversize(index, line, bytes));
                return;
            }
            Line::Text(t) => t,
        };
        // A stray invalid byte in a report should not hide the indicators around it.
        let mut s = String::from_utf8_lossy(t);
        if matches!(self.markup, Markup::LeadingComment) {
            match s.find("-->") {
                Some(i) => {
                    s = Cow::Owned(s[i + 3..].to_string());
                    self.markup = Markup::Undecided;
                }
                None => return,
            }
        }
        while matches!(self.markup, Markup::Undecided) && s.trim_start().starts_with("<!--") {
            let rest = &s.trim_start()[4..];
            match rest.find("-->") {
                Some(i) => s = Cow::Owned(rest[i + 3..].to_string()),
                None => {
                    self.markup = Markup::LeadingComment;
                    return;
                }
            }
        }
        if matches!(self.markup, Markup::Undecided) {
            let first = s.trim_start();
            if first.is_empty() {
                return;
            }
            let tag = first.strip_prefix('<').and_then(|r| r.chars().next());
            self.markup = match tag {
                Some(c) if c.is_ascii_alphabetic() || c == '!' || c == '?' => {
                    Markup::Html(Html::default())
                }
                _ => Markup::Text,
            };
        }
        if let Markup::Html(h) = &mut self.markup {
            let mut pieces = Vec::new();
            h.feed(&s, &mut pieces);
            for p in pieces {
                match p {
                    Piece::Text(t) => self.append(line, &t),
                    Piece::Break => self.flush(ctx, out),
                }
            }
            self.append(line, "\n");
        } else {
            self.text_line(ctx, out, line, &s);
        }
        if self.para.len() > PARA_CAP {
            self.flush(ctx, out);
        }
    }

    /// A plain-text or Markdown line.
    fn text_line(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>, line: u64, s: &str) {
        let trimmed = s.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            self.flush(ctx, out);
            self.fence = !self.fence;
            return;
        }
        if trimmed.is_empty() {
            self.flush(ctx, out);
            return;
        }
        let s = without_link_targets(s);
        // Code lines, table rows and headings stand alone; a list item starts a paragraph.
        if self.fence || trimmed.starts_with('|') || trimmed.starts_with('#') {
            self.flush(ctx, out);
            self.append(line, &s);
            self.flush(ctx, out);
            return;
        }
        if is_list_item(trimmed) {
            self.flush(ctx, out);
        }
        self.append(line, &s);
        self.append(line, "\n");
    }

    fn append(&mut self, line: u64, s: &str) {
        if self.starts.last().is_none_or(|&(_, l)| l != line) {
            self.starts.push((self.para.len(), line));
        }
        self.para.push_str(s);
    }

    fn take_index(&mut self) -> u64 {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    /// Extracts the indicators of the buffered paragraph, sentence by sentence.
    fn flush(&mut self, ctx: &mut Ctx, out: &mut Vec<Decoded>) {
        let para = std::mem::take(&mut self.para);
        let starts = std::mem::take(&mut self.starts);
        for (a, b) in sentences(&para) {
            let sentence = &para[a..b];
            let mut description: Option<String> = None;
            let mut prev = "";
            for (ta, tb) in tokens(sentence) {
                let word = &sentence[ta..tb];
                let found = classify(word, prev);
                prev = word;
                let Some((o, value)) = found else {
                    continue;
                };
                if !self.seen.insert((o, key(o, &text::refang(&value)))) {
                    continue;
                }
                let Ok((mut object, warnings)) =
                    text::text_to_stix(&value, &ctx.opts.defaults, ctx.opts.now)
                else {
                    continue;
                };
                let d = description
                    .get_or_insert_with(|| describe(sentence))
                    .clone();
                object.insert("description".into(), Value::String(d.clone()));
                let at = a + ta;
                let line = starts[..starts.partition_point(|&(o, _)| o <= at)]
                    .last()
                    .map_or(0, |&(_, l)| l);
                let index = self.take_index();
                out.push(ctx.decoded(index, line, Some(d), Ok((object, warnings))));
            }
        }
    }
}

/// What identifies an indicator for de-duplication (case does not matter but in URL paths).
fn key(o: Observable, value: &str) -> String {
    match o {
        Observable::Url => value.to_string(),
        _ => value.to_lowercase(),
    }
}

fn is_list_item(t: &str) -> bool {
    let t = t.trim_start_matches(|c: char| c.is_ascii_digit());
    ["- ", "* ", "+ ", ". ", ") "]
        .iter()
        .any(|m| t.starts_with(m))
}

/// The line without Markdown link targets: `[text](target)` → `[text]`.
fn without_link_targets(s: &str) -> Cow<'_, str> {
    if !s.contains("](") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("](") {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => rest = &after[j + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The sentence as a description: whitespace collapsed, cut to [`DESCRIPTION_MAX`] characters.
fn describe(sentence: &str) -> String {
    let mut s = String::with_capacity(sentence.len().min(DESCRIPTION_MAX * 4));
    for (i, w) in sentence.split_whitespace().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(w);
    }
    if s.chars().count() > DESCRIPTION_MAX {
        let mut cut: String = s.chars().take(DESCRIPTION_MAX - 1).collect();
        cut.push('…');
        return cut;
    }
    s
}

/// Byte ranges of the sentences of a paragraph: a sentence ends after `.`, `!` or `?` followed by
/// whitespace (so the dots inside `example.com` or `198.51.100.7` do not end one).
fn sentences(p: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = p.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|&(_, n)| n.is_whitespace()) {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if p[start..].chars().any(|c| !c.is_whitespace()) {
        out.push((start, p.len()));
    }
    out.retain(|&(a, b)| p[a..b].chars().any(|c| !c.is_whitespace()));
    out
}

/// Characters that end a word, besides whitespace. Brackets do too, except in defang marks.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '|' | '`'
            | '"'
            | '\''
            | '<'
            | '>'
            | ','
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '*'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{00ab}'
            | '\u{00bb}'
    )
}

/// The length of the defang mark at the start of `s`, if one is there.
fn mark_at(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'[' | b'(' | b'{')) {
        return None;
    }
    MARKS.iter().map(|(m, _)| m.len()).find(|&n| {
        s.get(..n)
            .is_some_and(|p| MARKS.iter().any(|(m, _)| m.eq_ignore_ascii_case(p)))
    })
}

/// Byte ranges of the words of a sentence, defang marks kept inside words (also with spaces
/// around them: `evil [.] example [.] com`).
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(n) = mark_at(rest) {
            start.get_or_insert(i);
            i += n;
            // Spaces after a mark, when a word goes on after them, belong to the word.
            let ws = rest[n..].len() - rest[n..].trim_start().len();
            if ws > 0 && rest[n + ws..].chars().next().is_some_and(is_word_char) {
                i += ws;
            }
            continue;
        }
        let c = rest.chars().next().expect("within the string");
        if is_word_char(c) {
            start.get_or_insert(i);
            i += c.len_utf8();
            continue;
        }
        if c.is_whitespace() && start.is_some() {
            // Spaces before a mark that goes on into a word belong to the word.
            let ws = rest.len() - rest.trim_start().len();
            if let Some(n) = mark_at(&rest[ws..]) {
                let after = &rest[ws + n..];
                if after.trim_start().chars().next().is_some_and(is_word_char) {
                    i += ws;
                    continue;
                }
                let _ = n;
            }
        }
        if let Some(a) = start.take() {
            out.push((a, i));
        }
        i += c.len_utf8();
    }
    if let Some(a) = start {
        out.push((a, s.len()));
    }
    out
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !is_separator(c)
}

/// The word with its defang marks in the form `text::refang` reads, without the spaces around
/// them, and `fxp://` as `ftp://`.
fn canonical(word: &str) -> String {
    let mut s = String::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        let rest = &word[i..];
        if let Some(n) = mark_at(rest) {
            let m = &rest[..n];
            let (_, to) = MARKS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(m))
                .expect("mark_at found it");
            while s.ends_with(char::is_whitespace) {
                s.pop();
            }
            s.push_str(to);
            i += n;
            i += rest[n..].len() - rest[n..].trim_start().len();
            continue;
        }
        let c = rest.chars().next().expect("within the string");
        s.push(c);
        i += c.len_utf8();
    }
    if s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("fxp://")) {
        s.replace_range(..6, "ftp://");
    }
    s
}

/// Punctuation around a word that is not part of an indicator.
fn trim_word(w: &str) -> &str {
    w.trim_start_matches(['.', ':', ';', '!', '?', '~', '-', '='])
        .trim_end_matches(['.', ',', ':', ';', '!', '?', '='])
}

/// The observable a word of prose is, and its value as `text::text_to_stix` should get it (still
/// defanged); `prev` is the word before it in the sentence.
fn classify(word: &str, prev: &str) -> Option<(Observable, String)> {
    let w = canonical(word);
    let w = trim_word(&w);
    let w = match w.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => &w[7..],
        _ => w,
    };
    if let Some(found) = candidate(w, prev, None) {
        return Some(found);
    }
    if w.contains("://") {
        return None;
    }
    let hosts = Some(&[Observable::Domain, Observable::Ipv4][..]);
    // `host/path` without a scheme: its host.
    if let Some((host, _)) = w.split_once('/') {
        return candidate(trim_word(host), prev, hosts);
    }
    // `md5=…`, `sha256:…`, `ip:…`: the value; `host:port`: the host.
    if let Some((_, v)) = w.rsplit_once('=') {
        return candidate(trim_word(v), prev, None);
    }
    if let Some((a, b)) = w.split_once(':') {
        if b.bytes().all(|c| c.is_ascii_digit()) && !b.is_empty() {
            return candidate(trim_word(a), prev, hosts);
        }
        let (_, v) = w.rsplit_once(':').expect("has a ':'");
        return candidate(trim_word(v), prev, None);
    }
    None
}

/// `w` as an observable of one of `only` (any when `None`), when it is one and plausible in prose.
fn candidate(w: &str, prev: &str, only: Option<&[Observable]>) -> Option<(Observable, String)> {
    if w.is_empty() {
        return None;
    }
    let refanged = text::refang(w);
    let defanged = matches!(refanged, Cow::Owned(_));
    let v: &str = &refanged;
    let o = text::infer_observable(v)?;
    if only.is_some_and(|only| !only.contains(&o)) {
        return None;
    }
    let plausible = match o {
        Observable::Domain => plausible_domain(v, defanged),
        Observable::Email => v.rsplit_once('@').is_some_and(|(_, d)| plausible_tld(d)),
        Observable::Ipv4 => defanged || !is_version_word(prev),
        Observable::Ipv6 => v.matches(':').count() >= 2 && v.bytes().any(|b| b.is_ascii_hexdigit()),
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
            !v.bytes().all(|b| b.is_ascii_digit())
        }
        Observable::Url | Observable::FileName => true,
    };
    if !plausible {
        return None;
    }
    let checked = match o {
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
            o.check(&v.to_ascii_lowercase())
        }
        _ => o.check(v),
    };
    checked.ok()?;
    Some((o, w.to_string()))
}

/// A top-level label of two or more letters (or an `xn--` label).
fn plausible_tld(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let tld = d.rsplit('.').next().unwrap_or(d);
    tld.len() >= 2 && (tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--"))
}

fn plausible_domain(v: &str, defanged: bool) -> bool {
    if !plausible_tld(v) {
        return false;
    }
    if defanged {
        return true;
    }
    let d = v.strip_suffix('.').unwrap_or(v);
    let tld = d.rsplit('.').next().unwrap_or(d).to_ascii_lowercase();
    !FILE_EXTENSIONS.contains(&tld.as_str())
}

fn is_version_word(prev: &str) -> bool {
    let p = prev
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    VERSION_WORDS.contains(&p.as_str())
}

/// One step of the HTML stripper's output.
enum Piece {
    Text(String),
    /// A block boundary (`<p>`, `<br>`, `<li>`, `<tr>`…): the paragraph ends.
    Break,
}

/// A streaming HTML tag stripper: keeps the text, drops tags, comments and the contents of
/// `<script>`/`<style>`, turns block tags into paragraph breaks and table cells into `|`, and
/// decodes character references in the text.
#[derive(Default)]
struct Html {
    state: HState,
    /// The current tag's name so far (lower case, at most a few characters are needed).
    name: String,
    closing: bool,
    in_name: bool,
    quote: Option<char>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum HState {
    #[default]
    Text,
    Tag,
    Comment,
    /// Inside `<script>` or `<style>`, until the closing tag.
    Raw(&'static str),
}

const BLOCK_TAGS: &[&str] = &[
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "thead",
    "tbody",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "hr",
    "title",
    "dt",
    "dd",
    "dl",
    "figure",
    "figcaption",
    "main",
    "body",
    "head",
    "html",
];

impl Html {
    fn feed(&mut self, line: &str, out: &mut Vec<Piece>) {
        let mut text = String::new();
        let mut i = 0;
        let emit_text = |text: &mut String, out: &mut Vec<Piece>| {
            if !text.is_empty() {
                let decoded = html_escape::decode_html_entities(text.as_str()).into_owned();
                out.push(Piece::Text(decoded));
                text.clear();
            }
        };
        while i < line.len() {
            let rest = &line[i..];
            match self.state {
                HState::Raw(end) => match find_ignore_case(rest, end) {
                    Some(j) => {
                        i += j + end.len();
                        self.start_tag(true);
                    }
                    None => i = line.len(),
                },
                HState::Comment => match rest.find("-->") {
                    Some(j) => {
                        i += j + 3;
                        self.state = HState::Text;
                    }
                    None => i = line.len(),
                },
                HState::Text => {
                    let c = rest.chars().next().expect("within the line");
                    let next = if c == '<' {
                        rest[1..].chars().next()
                    } else {
                        None
                    };
                    if c == '<' && rest.starts_with("<!--") {
                        emit_text(&mut text, out);
                        self.state = HState::Comment;
                        i += 4;
                    } else if c == '<'
                        && next.is_some_and(|n| {
                            n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')
                        })
                    {
                        emit_text(&mut text, out);
                        let closing = next == Some('/');
                        self.start_tag(closing);
                        i += if closing { 2 } else { 1 };
                    } else {
                        text.push(c);
                        i += c.len_utf8();
                    }
                }
                HState::Tag => {
                    let c = rest.chars().next().expect("within the line");
                    i += c.len_utf8();
                    match (self.quote, c) {
                        (Some(q), _) if c == q => self.quote = None,
                        (Some(_), _) => {}
                        (None, '"' | '\'') if !self.in_name => self.quote = Some(c),
                        (None, '>') => {
                            if let Some(p) = self.end_tag() {
                                emit_text(&mut text, out);
                                out.push(p);
                            }
                        }
                        (None, c) if self.in_name && (c.is_ascii_alphanumeric() || c == '!') => {
                            if self.name.len() < 16 {
                                self.name.push(c.to_ascii_lowercase());
                            }
                        }
                        (None, _) => self.in_name = false,
                    }
                }
            }
        }
        // A line break inside a tag is whitespace inside the tag; in text it separates words.
        emit_text(&mut text, out);
    }

    fn start_tag(&mut self, closing: bool) {
        self.state = HState::Tag;
        self.name.clear();
        self.closing = closing;
        self.in_name = true;
        self.quote = None;
    }

    /// The tag ends: what it means for the text.
    fn end_tag(&mut self) -> Option<Piece> {
        self.state = HState::Text;
        let name = self.name.as_str();
        if !self.closing {
            match name {
                "script" => self.state = HState::Raw("</script"),
                "style" => self.state = HState::Raw("</style"),
                _ => {}
            }
        }
        if matches!(name, "td" | "th") {
            return Some(Piece::Text(" | ".into()));
        }
        BLOCK_TAGS.contains(&name).then_some(Piece::Break)
    }
}

fn find_ignore_case(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.len();
    (0..=hay.len().saturating_sub(n))
        .filter(|&i| hay.is_char_boundary(i))
        .find(|&i| {
            hay.get(i..i + n)
                .is_some_and(|s| s.eq_ignore_ascii_case(needle))
        })
}

#[cfg(test)]
mod tests;
