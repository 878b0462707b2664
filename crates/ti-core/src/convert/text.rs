//! Plain-text IOC lists read as vendors publish them: one observable per line, with what they put
//! around it (README.md, "Text lists", says what is read and how).
//!
//! A line is an observable (after a list bullet `-`, `*`, `•` and a label such as `SHA256:`, if
//! any), then optionally a comment: after whitespace (a blank, a tab), `#`, a comma or a
//! semicolon. A comment in `( )` or after `#` loses those marks and becomes the indicator's
//! `description`; an `ip:port`, `[ip]:port` or `host:port` is the IP (or domain) indicator with
//! `port N` in its description, since a STIX address has no port.
//!
//! Values are refanged ([`refang`]), then typed by shape: a URL (has `://`, or `host/path` without
//! a scheme, read as `http://`), an IPv4/IPv6 address or CIDR, an MD5/SHA-1/SHA-256/SHA-512 hash
//! (any case, stored lower case), an e-mail address, a file name, or a domain. Domains (also in
//! e-mail addresses and URL hosts) must end in a suffix of the Public Suffix List (the `psl`
//! crate, a compiled copy of <https://publicsuffix.org/list/>) or in a special-use name reserved
//! for documentation (`.example`, `.test`, RFC 2606 §2); they are lower-cased before the id is
//! derived, so `EVIL.COM` and `evil.com` are one indicator.
//!
//! A line is refused in one of two ways, each with its own code, and the message quotes the line
//! as written:
//! - `not_an_indicator`: it has no observable's shape at all (a heading such as `LEASHTEST`, a
//!   sentence): a list's titles are not failed indicators;
//! - `invalid_observable`: it has the shape of one kind (dotted digits, hex of a hash's size, a
//!   host with a path, an `@`) but is not a valid one (`1.2.3`, `a@b`, `evil.notatld`).

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{show, Comparison, Defaults, Draft};
use crate::report::Code;
use crate::stix::observable::{self, Observable};
use crate::stix::Problem;

/// Suffixes that are both a top-level domain in the Public Suffix List and a common file
/// extension, decided as a file name when the value is not defanged (`invoice.zip`, `run.sh`,
/// `notes.one`). A defanged value (`evil[.]zip`) is a domain: its author defanged it on purpose.
/// Other such suffixes (`.so`, `.pl`, `.rs`, `.md`, `.cc`, `.ps`, `.website`) are country or
/// generic domains far more often than files in an IOC list, so they stay domains.
/// The `psl_knows_ambiguous_suffixes_and_no_file_extension` test keeps this list honest.
pub const AMBIGUOUS_SUFFIXES: &[&str] = &["zip", "mov", "app", "sh", "py", "one", "cab"];

/// File extensions that are no top-level domain: a `name.ext` with one of them is a file name
/// (`Setup2.exe`, `invoice.pdf`), not an invalid domain.
pub const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "scr", "cpl", "ocx", "drv", "bat", "cmd", "ps1", "psm1", "vbs", "vbe",
    "js", "jse", "wsf", "hta", "lnk", "msi", "msix", "iso", "img", "vhd", "vhdx", "jar", "apk",
    "rb", "php", "asp", "aspx", "jsp", "pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt",
    "pptx", "rtf", "odt", "ods", "txt", "log", "csv", "json", "xml", "yml", "yaml", "ini", "cfg",
    "conf", "dat", "bin", "tmp", "bak", "rar", "7z", "gz", "tgz", "tar", "bz2", "xz", "png", "jpg",
    "jpeg", "gif", "bmp", "svg", "ico", "htm", "html", "css", "elf", "dylib", "plist", "deb",
    "rpm", "dmg", "pkg", "pem", "crt", "cer", "pfx", "key", "eml", "msg", "chm", "inf", "reg",
    "pif", "xll", "lua", "swf", "db", "sqlite",
];

/// Special-use top-level names accepted besides the Public Suffix List: RFC 2606 §2 reserves
/// `.example` and `.test` for documentation and testing, and examples are written with them.
const SPECIAL_USE: &[&str] = &["example", "test"];

/// Defang marks (letters matched in any case) and what they stand for.
const MARKS: [(&str, &str); 16] = [
    ("[://]", "://"),
    ("[:]", ":"),
    ("(:)", ":"),
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("[@]", "@"),
    ("(@)", "@"),
    ("{@}", "@"),
    ("[at]", "@"),
    ("(at)", "@"),
    ("{at}", "@"),
    ("[/]", "/"),
];

/// What the text lists hold, for messages.
const KINDS: &str = "an IPv4/IPv6 address or CIDR, a domain, a URL, an e-mail address, a file name or an MD5/SHA-1/SHA-256/SHA-512 hash";

/// A converted indicator and its warnings.
pub type Converted = (Map<String, Value>, Vec<Problem>);

/// An observable read from a line or cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub observable: Observable,
    /// The value as compared: refanged, lower-cased where case does not matter (domains, hashes,
    /// IPv6, a URL's scheme and host, an e-mail's domain), `http://` added to a scheme-less URL.
    pub value: String,
    /// The comment around it, without its marks (`( )`, `#`).
    pub comment: Option<String>,
    /// The port of an `ip:port` / `[ip]:port` / `host:port`.
    pub port: Option<u16>,
    /// What was changed on the way (refanged, scheme added, port moved), for a `normalised`
    /// warning; empty when the value was taken as written.
    pub changes: Vec<String>,
}

impl Reading {
    /// The comment and the port, for the indicator's `description`.
    pub fn description(&self) -> Option<String> {
        let port = self.port.map(|p| format!("port {p}"));
        match (&self.comment, port) {
            (Some(c), Some(p)) => Some(format!("{c}; {p}")),
            (Some(c), None) => Some(c.clone()),
            (None, p) => p,
        }
    }
}

/// Why a line or cell is not an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// [`Code::NotAnIndicator`] (no observable's shape) or [`Code::InvalidObservable`] (the
    /// shape of one, but not a valid one).
    pub code: Code,
    /// What is wrong, without the value (the caller quotes the value as written).
    pub reason: String,
}

impl Refusal {
    /// The problem for a value written as `written` (quoted as is, cut to 100 characters).
    pub fn problem(&self, written: &str) -> Problem {
        Problem::new(self.code, format!("'{}' {}", show(written), self.reason))
    }

    fn not_an_indicator() -> Refusal {
        Refusal {
            code: Code::NotAnIndicator,
            reason: format!("is not an indicator (a heading or a sentence?): a line should hold {KINDS}, optionally followed by a comment"),
        }
    }

    fn invalid(kind: &str, why: impl std::fmt::Display) -> Refusal {
        Refusal {
            code: Code::InvalidObservable,
            reason: format!("is not a valid {kind}: {why}"),
        }
    }
}

/// What one line of a text list, or one CSV cell without a usable type, holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadValue {
    /// Blank, or a comment line (`#` first).
    Empty,
    Observable(Reading),
    Refused(Refusal),
}

/// Whether a text-list line (or cell) is blank or a `#` comment: no record at all
/// ([`read_value`] reads it as [`ReadValue::Empty`], [`line_to_stix`] as `None`).
pub fn is_blank_or_comment(cell: &str) -> bool {
    let s = cell.trim();
    s.is_empty() || s.starts_with('#')
}

/// Reads one line of a text list (or one cell): the observable and the comment or port around it.
pub fn read_value(cell: &str) -> ReadValue {
    if is_blank_or_comment(cell) {
        return ReadValue::Empty;
    }
    let s = cell.trim();
    // A list item copied from a page or a Markdown file: `- value`, `* value`, `• value`.
    let s = match s.strip_prefix(['-', '*', '•', '+']) {
        Some(r) if r.starts_with(char::is_whitespace) => r.trim_start(),
        _ => s,
    };
    let s = strip_label(s);
    let joined = join_spaced_marks(s);
    let s: &str = &joined;
    let (token, rest) = match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let found = match classify(token) {
        Ok(f) => Ok((f, rest.map(str::to_string))),
        // `value,comment` / `value;comment`: the value before the first comma or semicolon,
        // when it is one (a URL keeps those it is valid with: RFC 3986 allows them in a path).
        Err(e) => match token.split_once([',', ';']) {
            Some((head, tail)) => match classify(head) {
                Ok(f) => Ok((f, Some(format!("{tail}{}", rest.unwrap_or(""))))),
                Err(_) => Err(e),
            },
            None => Err(e),
        },
    };
    match found {
        Ok((mut r, rest)) => {
            r.comment = rest.as_deref().and_then(comment);
            ReadValue::Observable(r)
        }
        Err(e) => ReadValue::Refused(e),
    }
}

/// The length of the defang mark `s` starts with, if any.
fn mark_at(s: &str) -> Option<usize> {
    if !s.starts_with(['[', '(', '{']) {
        return None;
    }
    MARKS
        .iter()
        .find(|(m, _)| s.get(..m.len()).is_some_and(|p| p.eq_ignore_ascii_case(m)))
        .map(|(m, _)| m.len())
}

/// `evil [.] example` → `evil[.]example`: blanks around a defang mark between two parts of a
/// value are dropped, so the value is one word again. Borrowed when there are none.
fn join_spaced_marks(s: &str) -> Cow<'_, str> {
    let word = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '/' | ']' | ')' | '}');
    let spaced = s.match_indices(['[', '(', '{']).any(|(i, _)| {
        mark_at(&s[i..]).is_some_and(|n| {
            s[..i].ends_with(char::is_whitespace) || s[i + n..].starts_with(char::is_whitespace)
        })
    });
    if !spaced {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(n) = mark_at(rest) {
            let kept = out.trim_end().len();
            if out[..kept].ends_with(word) {
                out.truncate(kept);
            }
            out.push_str(&rest[..n]);
            i += n;
            let after = &s[i..];
            let t = after.trim_start();
            if t.starts_with(|c: char| c.is_alphanumeric() || c == '[' || c == '(' || c == '{') {
                i += after.len() - t.len();
            }
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        i += c.len_utf8();
    }
    Cow::Owned(out)
}

/// Labels some lists put before the value (`SHA256: <hash>`, `md5=<hash>`, `domain: evil.com`).
const LABELS: &[&str] = &[
    "md5", "sha1", "sha-1", "sha256", "sha-256", "sha512", "sha-512", "hash", "ip", "ipv4", "ipv6",
    "domain", "hostname", "host", "url", "uri", "email", "e-mail",
];

/// The line without a [`LABELS`] label and its `:` or `=`, when one starts it and a value follows.
fn strip_label(s: &str) -> &str {
    let Some(i) = s.get(..9).unwrap_or(s).find([':', '=']) else {
        return s;
    };
    let rest = s[i + 1..].trim_start();
    let label = s[..i].trim_end();
    if !rest.is_empty() && LABELS.iter().any(|l| l.eq_ignore_ascii_case(label)) {
        rest
    } else {
        s
    }
}

/// A comment without its marks: `(c2)`, `# c2`, `// c2`, `- c2`, `, c2` → `c2`; `None` if empty.
fn comment(rest: &str) -> Option<String> {
    let mut c = rest.trim();
    loop {
        let before = c;
        c = c
            .trim_start_matches(['#', ',', ';', '-', '–', '—', ':', '|'])
            .trim_start_matches("//")
            .trim();
        if let Some(inner) = c.strip_prefix('(').and_then(|i| i.strip_suffix(')')) {
            if !inner.contains([')', '(']) {
                c = inner.trim();
            }
        }
        if c == before {
            break;
        }
    }
    (!c.is_empty()).then(|| c.to_string())
}

/// Undoes the usual defanging: `hxxp(s)://` and `fxp://` (any case), `[.]`, `(.)`, `{.}`,
/// `[dot]`, `(dot)`, `[:]`, `[://]`, `[@]`, `[at]`, `(at)`, `[/]` (letters in any case).
/// Borrowed when nothing changed.
pub fn refang(value: &str) -> Cow<'_, str> {
    let scheme = defanged_scheme(value);
    let marks = value.bytes().any(|b| matches!(b, b'[' | b'(' | b'{'));
    if scheme.is_none() && !marks {
        return Cow::Borrowed(value);
    }
    let mut s = String::with_capacity(value.len());
    let mut rest = value;
    if let Some((n, to)) = scheme {
        s.push_str(to);
        rest = &value[n..];
    }
    'scan: while !rest.is_empty() {
        if rest.starts_with(['[', '(', '{']) {
            for (m, to) in MARKS {
                if rest
                    .get(..m.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(m))
                {
                    s.push_str(to);
                    rest = &rest[m.len()..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        s.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if s == value {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(s)
    }
}

/// A defanged scheme at the start (`hxxp`, `hXXps`, `fxp`): its length and the real scheme.
fn defanged_scheme(value: &str) -> Option<(usize, &'static str)> {
    let starts = |p: &str| {
        value
            .get(..p.len())
            .is_some_and(|v| v.eq_ignore_ascii_case(p))
    };
    if starts("hxxps") {
        Some((5, "https"))
    } else if starts("hxxp") {
        Some((4, "http"))
    } else if starts("fxp:") || starts("fxp[") {
        Some((3, "ftp"))
    } else {
        None
    }
}

fn found(observable: Observable, value: String) -> Reading {
    Reading {
        observable,
        value,
        comment: None,
        port: None,
        changes: Vec::new(),
    }
}

/// Types one token (no whitespace) by its shape and checks it.
fn classify(token: &str) -> Result<Reading, Refusal> {
    let refanged = refang(token);
    let defanged = matches!(refanged, Cow::Owned(_));
    let v: &str = &refanged;
    let v = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => &v[7..],
        _ => v,
    };
    let mut f = shape(v, defanged)?;
    if defanged {
        f.changes
            .insert(0, format!("refanged '{token}' to '{refanged}'"));
    }
    Ok(f)
}

fn shape(v: &str, defanged: bool) -> Result<Reading, Refusal> {
    if v.contains("://") {
        let url = lower_scheme_and_host(v);
        check_url(&url).map_err(|e| Refusal::invalid("URL", e))?;
        return Ok(found(Observable::Url, url));
    }
    if let Some(inner) = v.strip_prefix('[') {
        // `[ip]:port` (and `[ip]`).
        if let Some((addr, after)) = inner.split_once(']') {
            let o = if observable::is_ipv4_or_cidr(addr) {
                Observable::Ipv4
            } else if observable::is_ipv6_or_cidr(addr) {
                Observable::Ipv6
            } else {
                return Err(Refusal::not_an_indicator());
            };
            let port = match after {
                "" => None,
                p => Some(port(p.strip_prefix(':').unwrap_or(p))?),
            };
            return Ok(with_port(o, addr.to_ascii_lowercase(), port));
        }
    }
    if observable::is_ipv4_or_cidr(v) {
        return Ok(found(Observable::Ipv4, v.to_string()));
    }
    if observable::is_ipv6_or_cidr(v) {
        return Ok(found(Observable::Ipv6, v.to_ascii_lowercase()));
    }
    if v.len() >= 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match hash_kind(v.len()) {
            Some(o) => Ok(found(o, v.to_ascii_lowercase())),
            None => Err(Refusal::invalid(
                "hash",
                format!(
                    "{} hex digits is not the length of an MD5 (32), SHA-1 (40), SHA-256 (64) or SHA-512 (128) hash",
                    v.len()
                ),
            )),
        };
    }
    // `host/path`, `host?query` without a scheme: a URL when the host is one (checked before `@`,
    // which a path may hold: `host/soft/name@_123.exe`).
    if let Some(i) = v.find(['/', '?', '#']) {
        let (host_port, _) = v.split_at(i);
        let host = strip_port(host_port).0;
        if observable::is_ipv4_or_cidr(host)
            && host == host_port
            && v[i..].starts_with('/')
            && v[i + 1..].bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Refusal::invalid(
                "IPv4 CIDR range",
                "the prefix length must be 0 to 32",
            ));
        }
        let ip_host = observable::is_ipv4_or_cidr(host);
        if ip_host || (looks_like_host(host) && check_public_domain(host).is_ok()) {
            let url = lower_scheme_and_host(&format!("http://{v}"));
            check_url(&url).map_err(|e| Refusal::invalid("URL", e))?;
            let mut f = found(Observable::Url, url);
            f.changes
                .push("read as a URL without a scheme: 'http://' added".into());
            return Ok(f);
        }
        if looks_like_host(host) {
            let e = check_public_domain(host).expect_err("checked above");
            return Err(Refusal::invalid("URL", format!("host '{host}': {e}")));
        }
    }
    // `ip:port`, `host:port`.
    if let (host, Some(p)) = strip_port(v) {
        if observable::is_ipv4_or_cidr(host) && !host.contains('/') {
            return Ok(with_port(
                Observable::Ipv4,
                host.to_string(),
                Some(port(p)?),
            ));
        }
        if looks_like_host(host) {
            let d = lower_domain(host);
            check_public_domain(&d).map_err(|e| Refusal::invalid("domain", e))?;
            return Ok(with_port(Observable::Domain, d, Some(port(p)?)));
        }
    }
    if let Some((local, domain)) = v.rsplit_once('@') {
        let email = format!("{local}@{}", lower_domain(domain));
        observable::check_email(&email).map_err(|e| Refusal::invalid("e-mail address", e))?;
        check_public_domain(&lower_domain(domain))
            .map_err(|e| Refusal::invalid("e-mail address", format!("domain '{domain}': {e}")))?;
        return Ok(found(Observable::Email, email));
    }
    let name = v.strip_suffix('.').unwrap_or(v);
    if name.contains('.') && looks_like_host(name) {
        let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        if !defanged
            && (AMBIGUOUS_SUFFIXES.contains(&ext.as_str())
                || FILE_EXTENSIONS.contains(&ext.as_str()))
        {
            return Ok(found(Observable::FileName, v.to_string()));
        }
        if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(Refusal::invalid(
                "IPv4 address",
                "an address is four numbers 0 to 255 separated by dots",
            ));
        }
        let d = lower_domain(name);
        check_public_domain(&d).map_err(|e| Refusal::invalid("domain", e))?;
        return Ok(found(Observable::Domain, d));
    }
    Err(Refusal::not_an_indicator())
}

fn with_port(o: Observable, value: String, port: Option<u16>) -> Reading {
    let mut f = found(o, value);
    if let Some(p) = port {
        f.port = Some(p);
        f.changes.push(format!(
            "port {p} kept in the description (a STIX address or domain has no port)"
        ));
    }
    f
}

fn port(p: &str) -> Result<u16, Refusal> {
    p.parse::<u16>()
        .ok()
        .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Refusal::invalid("port", format!("'{p}' is not a number from 0 to 65535")))
}

/// `host:digits` → (`host`, `Some(digits)`); anything else unchanged.
fn strip_port(v: &str) -> (&str, Option<&str>) {
    match v.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') =>
        {
            (h, Some(p))
        }
        _ => (v, None),
    }
}

fn hash_kind(len: usize) -> Option<Observable> {
    match len {
        32 => Some(Observable::Md5),
        40 => Some(Observable::Sha1),
        64 => Some(Observable::Sha256),
        128 => Some(Observable::Sha512),
        _ => None,
    }
}

/// Dotted labels of letters, digits, `-` and `_`: the shape of a host name.
fn looks_like_host(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.contains('.')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn lower_domain(d: &str) -> String {
    if d.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        d.to_string()
    } else {
        d.to_lowercase()
    }
}

/// A URL with its scheme and host in lower case (both are case-insensitive, RFC 3986 §3.1, §3.2.2),
/// so that case variants give one id.
fn lower_scheme_and_host(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut s = String::with_capacity(url.len());
    s.push_str(&scheme.to_ascii_lowercase());
    s.push_str("://");
    if let Some(u) = userinfo {
        s.push_str(u);
        s.push('@');
    }
    s.push_str(&lower_domain(host));
    s.push_str(path);
    s
}

/// A URL (as [`observable::check_url`] checks it) whose host, when a name, is under a public suffix.
fn check_url(url: &str) -> Result<(), String> {
    observable::check_url(url)?;
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return Ok(());
    }
    let host = strip_port(host_port).0;
    if host.is_empty() || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    check_public_domain(host).map_err(|e| format!("host '{host}': {e}"))
}

/// A domain name (lower case) that is valid ([`observable::check_domain`]) and under a suffix of
/// the Public Suffix List or a special-use documentation name ([`SPECIAL_USE`]). A private
/// suffix (`github.io`) is itself a registered name, so it passes; an ICANN suffix alone
/// (`co.uk`) does not.
pub fn check_public_domain(name: &str) -> Result<(), String> {
    observable::check_domain(name)?;
    let n = name.strip_suffix('.').unwrap_or(name);
    let tld = n.rsplit('.').next().unwrap_or(n);
    if !n.contains('.') {
        return Err("it has no dot: a domain is a name under a public suffix".into());
    }
    if SPECIAL_USE.contains(&tld) {
        return Ok(());
    }
    match psl::suffix(n.as_bytes()) {
        Some(s) if s.is_known() => {
            if s.as_bytes().len() == n.len() && s.typ() == Some(psl::Type::Icann) {
                Err(format!(
                    "'{n}' is a public suffix itself, not a name under one"
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "its top-level label '{tld}' is not in the Public Suffix List"
        )),
    }
}

/// The observable type of a bare value, as prose extraction (`crate::input::prose`) and CSV
/// header detection (a header field is no observable) ask: a URL
/// (has `://`), an IPv4/IPv6 address or CIDR, an MD5/SHA-1/SHA-256/SHA-512 hash (hex of that
/// length), an e-mail address (has `@`), or a domain (a valid host name with at least one dot).
/// Prose applies its own plausibility rules on top; a text list line is read by [`read_value`].
pub fn infer_observable(value: &str) -> Option<Observable> {
    if value.contains("://") {
        Some(Observable::Url)
    } else if observable::is_ipv4_or_cidr(value) {
        Some(Observable::Ipv4)
    } else if observable::is_ipv6_or_cidr(value) {
        Some(Observable::Ipv6)
    } else if value.bytes().all(|b| b.is_ascii_hexdigit()) && hash_kind(value.len()).is_some() {
        hash_kind(value.len())
    } else if value.contains('@') {
        Some(Observable::Email)
    } else if value.contains('.') && observable::check_domain(value).is_ok() {
        Some(Observable::Domain)
    } else {
        None
    }
}

/// Converts one line of a text list into a STIX indicator: `None` for a blank or comment line.
/// Messages quote the line as written.
pub fn line_to_stix(
    line: &str,
    defaults: &Defaults,
    now: OffsetDateTime,
) -> Option<Result<Converted, Problem>> {
    match read_value(line) {
        ReadValue::Empty => None,
        ReadValue::Refused(r) => Some(Err(r.problem(line.trim()))),
        ReadValue::Observable(r) => Some(Ok(reading_to_stix(r, defaults, now))),
    }
}

/// The STIX indicator of a reading, with a `normalised` warning for what was changed.
pub fn reading_to_stix(r: Reading, defaults: &Defaults, now: OffsetDateTime) -> Converted {
    let warnings = if r.changes.is_empty() {
        Vec::new()
    } else {
        vec![Problem::new(Code::Normalised, r.changes.join("; "))]
    };
    let description = r.description();
    let d = Draft {
        comparisons: vec![Comparison {
            observable: r.observable,
            value: r.value,
        }],
        description,
        ..Draft::default()
    };
    (d.into_stix(defaults, now), warnings)
}

/// Converts one bare observable (a word prose extraction found, possibly defanged) into a STIX
/// indicator, with the case rules of a text list (domains, hashes lower-cased).
pub fn text_to_stix(
    value: &str,
    defaults: &Defaults,
    now: OffsetDateTime,
) -> Result<Converted, Problem> {
    let mut warnings = Vec::new();
    let v = refang(value);
    if let Cow::Owned(new) = &v {
        warnings.push(Problem::new(
            Code::Normalised,
            format!("refanged '{value}' to '{new}'"),
        ));
    }
    let o = infer_observable(&v).ok_or_else(|| Refusal::not_an_indicator().problem(value))?;
    let checked = match o {
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
            v.to_ascii_lowercase()
        }
        Observable::Domain | Observable::Ipv6 => lower_domain(&v),
        Observable::Url => lower_scheme_and_host(&v),
        Observable::Email => match v.rsplit_once('@') {
            Some((l, d)) => format!("{l}@{}", lower_domain(d)),
            None => v.to_string(),
        },
        _ => v.to_string(),
    };
    o.check(&checked)
        .map_err(|e| Problem::new(Code::InvalidObservable, format!("the line: {e}")))?;
    let d = Draft {
        comparisons: vec![Comparison {
            observable: o,
            value: checked,
        }],
        ..Draft::default()
    };
    Ok((d.into_stix(defaults, now), warnings))
}

#[cfg(test)]
mod tests;
