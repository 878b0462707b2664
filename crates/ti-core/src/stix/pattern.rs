//! The STIX 2.1 patterning grammar: a recursive-descent checker for `pattern_type: stix`.
//!
//! It follows the OASIS ANTLR grammar (`STIXPattern.g4`, STIX 2.1 part 9): observation
//! expressions in `[...]` joined by `AND`/`OR`/`FOLLOWEDBY`, qualifiers, comparison expressions
//! with `AND`/`OR`/parentheses, object paths and every literal kind. Keywords are case-sensitive
//! (`AND`, `true`) as in 2.1. On top of the grammar it applies the few semantic rules the spec
//! states for qualifiers (positive `WITHIN`/`REPEATS`, `STOP` after `START`) because a validator
//! that accepts them would let the service reject the record instead.
//!
//! Besides [`check`], [`single_comparison`] recognises the common one-observable indicator
//! (`[ipv4-addr:value = '198.51.100.1']`), so observable values can be checked for their type
//! and so targets that need one observable (Graph) can convert it.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Checks that `pattern` is a syntactically valid STIX 2.1 pattern.
///
/// The error names the 1-based character position and what was expected there, e.g.
/// `at position 24: expected ']' to close the observation expression, found end of pattern`.
pub fn check(pattern: &str) -> Result<(), String> {
    parse(pattern).map(|_| ())
}

/// When `pattern` is exactly one observation holding one `=` comparison with a string value and
/// no qualifiers (e.g. `[file:hashes.'SHA-256' = 'ab..']`), returns its object path in canonical
/// form and the unescaped value. Canonical paths quote a key only when it is not a plain
/// identifier: `ipv4-addr:value`, `file:hashes.MD5`, `file:hashes.'SHA-256'`.
pub fn single_comparison(pattern: &str) -> Option<(String, String)> {
    single_of(parse(pattern).ok()?)
}

/// [`check`] and [`single_comparison`] with one parse: the error of [`check`], else what
/// [`single_comparison`] returns.
pub fn check_single(pattern: &str) -> Result<Option<(String, String)>, String> {
    parse(pattern).map(single_of)
}

fn single_of(summary: Summary) -> Option<(String, String)> {
    if summary.observations != 1 || summary.qualifiers != 0 || summary.comparisons.len() != 1 {
        return None;
    }
    let c = summary.comparisons.into_iter().next()?;
    match (c.negated, c.op, c.value) {
        (false, Op::Eq, Some(Literal::Str(v))) => Some((c.path, v)),
        _ => None,
    }
}

/// Escapes a value for a STIX string literal: `\` and `'` get a backslash (the only two escapes
/// the grammar has).
pub fn escape_string(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Builds the single-comparison pattern `[<path> = '<value>']`, escaping the value.
/// `path` is written as given (e.g. `ipv4-addr:value`, `file:hashes.'SHA-256'`).
pub fn build_single(path: &str, value: &str) -> String {
    format!("[{path} = '{}']", escape_string(value))
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSuperset,
    IsSubset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    Within,
    Repeats,
    Times,
}

const KEYWORDS: &[(&str, Kw)] = &[
    ("AND", Kw::And),
    ("OR", Kw::Or),
    ("NOT", Kw::Not),
    ("FOLLOWEDBY", Kw::FollowedBy),
    ("LIKE", Kw::Like),
    ("MATCHES", Kw::Matches),
    ("ISSUPERSET", Kw::IsSuperset),
    ("ISSUBSET", Kw::IsSubset),
    ("EXISTS", Kw::Exists),
    ("LAST", Kw::Last),
    ("IN", Kw::In),
    ("START", Kw::Start),
    ("STOP", Kw::Stop),
    ("SECONDS", Kw::Seconds),
    ("WITHIN", Kw::Within),
    ("REPEATS", Kw::Repeats),
    ("TIMES", Kw::Times),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier; `true` when it contains a hyphen (only object types may).
    Ident(String, bool),
    Kw(Kw),
    Bool,
    /// A string literal, unescaped.
    Str(String),
    /// An integer literal; the flag is `true` when it had a `-` sign.
    Int(u64, bool),
    /// A float literal and its value.
    Float(f64),
    Hex,
    Binary,
    /// A timestamp literal's text (between the quotes).
    Timestamp(String),
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Colon,
    Dot,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Asterisk,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s, _) => format!("identifier '{s}'"),
            Tok::Kw(k) => {
                let name = KEYWORDS
                    .iter()
                    .find(|(_, kw)| kw == k)
                    .map_or("?", |(n, _)| n);
                format!("keyword {name}")
            }
            Tok::Bool => "a boolean".into(),
            Tok::Str(_) => "a string literal".into(),
            Tok::Int(..) => "an integer".into(),
            Tok::Float(_) => "a float".into(),
            Tok::Hex => "a hex literal".into(),
            Tok::Binary => "a binary literal".into(),
            Tok::Timestamp(_) => "a timestamp literal".into(),
            Tok::Eq => "'='".into(),
            Tok::Neq => "'!='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Colon => "':'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Comma => "','".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::Asterisk => "'*'".into(),
            Tok::Eof => "end of pattern".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
struct Spanned {
    tok: Tok,
    at: usize,
}

/// The whitespace the grammar skips (its `WS` rule).
fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\r'
            | '\n'
            | '\u{000B}'
            | '\u{000C}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// 1-based character position of byte offset `at`, for messages a person can count.
fn position(src: &str, at: usize) -> usize {
    src[..at.min(src.len())].chars().count() + 1
}

fn err_at(src: &str, at: usize, msg: impl std::fmt::Display) -> String {
    format!("at position {}: {msg}", position(src, at))
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            i: 0,
        }
    }

    fn tokens(mut self) -> Result<Vec<Spanned>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_space_and_comments()?;
            let at = self.i;
            let tok = self.next_token()?;
            let eof = tok == Tok::Eof;
            out.push(Spanned { tok, at });
            if eof {
                return Ok(out);
            }
        }
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.i + k).copied()
    }

    fn skip_space_and_comments(&mut self) -> Result<(), String> {
        loop {
            let rest = &self.src[self.i..];
            let Some(c) = rest.chars().next() else {
                return Ok(());
            };
            if is_pattern_space(c) {
                self.i += c.len_utf8();
            } else if let Some(comment) = rest.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.i += 2 + end + 2,
                    None => return Err(err_at(self.src, self.i, "comment '/*' is never closed")),
                }
            } else if rest.starts_with("//") {
                let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
                self.i += end;
            } else {
                return Ok(());
            }
        }
    }

    fn next_token(&mut self) -> Result<Tok, String> {
        let Some(b) = self.peek(0) else {
            return Ok(Tok::Eof);
        };
        let start = self.i;
        let one = |lx: &mut Self, t: Tok| {
            lx.i += 1;
            Ok(t)
        };
        match b {
            b'\'' => self.string_literal().map(Tok::Str),
            b'h' | b'b' | b't' if self.peek(1) == Some(b'\'') => self.prefixed_literal(b),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => Ok(self.identifier()),
            b'.' if !matches!(self.peek(1), Some(b'0'..=b'9')) => one(self, Tok::Dot),
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number(),
            b'=' => {
                // `==` is an accepted spelling of `=`.
                self.i += if self.peek(1) == Some(b'=') { 2 } else { 1 };
                Ok(Tok::Eq)
            }
            b'!' if self.peek(1) == Some(b'=') => {
                self.i += 2;
                Ok(Tok::Neq)
            }
            b'<' => match self.peek(1) {
                Some(b'>') => {
                    self.i += 2;
                    Ok(Tok::Neq)
                }
                Some(b'=') => {
                    self.i += 2;
                    Ok(Tok::Le)
                }
                _ => one(self, Tok::Lt),
            },
            b'>' => {
                if self.peek(1) == Some(b'=') {
                    self.i += 2;
                    Ok(Tok::Ge)
                } else {
                    one(self, Tok::Gt)
                }
            }
            b':' => one(self, Tok::Colon),
            b',' => one(self, Tok::Comma),
            b'(' => one(self, Tok::LParen),
            b')' => one(self, Tok::RParen),
            b'[' => one(self, Tok::LBrack),
            b']' => one(self, Tok::RBrack),
            b'*' => one(self, Tok::Asterisk),
            _ => {
                let c = self.src[start..].chars().next().unwrap_or('?');
                Err(err_at(
                    self.src,
                    start,
                    format!("unexpected character {c:?}"),
                ))
            }
        }
    }

    /// `'...'` with `\\` and `\'` as the only escapes.
    fn string_literal(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut value = String::new();
        loop {
            let rest = &self.src[self.i..];
            let Some(end) = rest.find(['\'', '\\']) else {
                return Err(err_at(
                    self.src,
                    start,
                    "string literal is never closed (missing ')",
                ));
            };
            value.push_str(&rest[..end]);
            self.i += end;
            if self.bytes[self.i] == b'\'' {
                self.i += 1;
                return Ok(value);
            }
            match self.peek(1) {
                Some(c @ (b'\\' | b'\'')) => {
                    value.push(c as char);
                    self.i += 2;
                }
                _ => {
                    return Err(err_at(
                        self.src,
                        self.i,
                        "invalid escape in string literal: only \\\\ and \\' are allowed",
                    ))
                }
            }
        }
    }

    /// `h'..'`, `b'..'` and `t'..'` literals; their contents have their own rules.
    fn prefixed_literal(&mut self, prefix: u8) -> Result<Tok, String> {
        let start = self.i;
        let body_start = self.i + 2;
        let Some(len) = self.src[body_start..].find('\'') else {
            return Err(err_at(
                self.src,
                start,
                "literal is never closed (missing ')",
            ));
        };
        let body = &self.src[body_start..body_start + len];
        self.i = body_start + len + 1;
        match prefix {
            b'h' => {
                if body.len().is_multiple_of(2) && body.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Tok::Hex)
                } else {
                    Err(err_at(
                        self.src,
                        start,
                        format!("hex literal h'{body}' must be pairs of hex digits"),
                    ))
                }
            }
            b'b' => {
                if is_base64(body) {
                    Ok(Tok::Binary)
                } else {
                    Err(err_at(
                        self.src,
                        start,
                        format!("binary literal b'{body}' is not padded base64"),
                    ))
                }
            }
            _ => {
                if is_pattern_timestamp(body) {
                    Ok(Tok::Timestamp(body.to_string()))
                } else {
                    Err(err_at(
                        self.src,
                        start,
                        format!(
                            "timestamp literal t'{body}' must be YYYY-MM-DDTHH:MM:SS[.s]Z (UTC)"
                        ),
                    ))
                }
            }
        }
    }

    fn identifier(&mut self) -> Tok {
        let start = self.i;
        let mut hyphen = false;
        while let Some(b) = self.peek(0) {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => {}
                b'-' => hyphen = true,
                _ => break,
            }
            self.i += 1;
        }
        let word = &self.src[start..self.i];
        if !hyphen {
            if word == "true" || word == "false" {
                return Tok::Bool;
            }
            if let Some((_, kw)) = KEYWORDS.iter().find(|(n, _)| *n == word) {
                return Tok::Kw(*kw);
            }
        }
        Tok::Ident(word.to_string(), hyphen)
    }

    /// `[+-]? digits` or `[+-]? digits? '.' digits`; integers have no leading zeros.
    fn number(&mut self) -> Result<Tok, String> {
        let start = self.i;
        let negative = self.peek(0) == Some(b'-');
        if matches!(self.peek(0), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let int_start = self.i;
        while matches!(self.peek(0), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let int_digits = &self.src[int_start..self.i];
        // A '.' belongs to the number only when digits follow (`5.` is `5` then a dot).
        if self.peek(0) == Some(b'.') && matches!(self.peek(1), Some(b'0'..=b'9')) {
            self.i += 1;
            while matches!(self.peek(0), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let text = &self.src[start..self.i];
            return text
                .parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| err_at(self.src, start, format!("invalid number '{text}'")));
        }
        let text = &self.src[start..self.i];
        if int_digits.is_empty() {
            return Err(err_at(self.src, start, format!("invalid number '{text}'")));
        }
        if int_digits.len() > 1 && int_digits.starts_with('0') {
            return Err(err_at(
                self.src,
                start,
                format!("integer '{text}' must not have leading zeros"),
            ));
        }
        int_digits
            .parse::<u64>()
            .map(|v| Tok::Int(v, negative))
            .map_err(|_| err_at(self.src, start, format!("integer '{text}' is too large")))
    }
}

fn is_base64(body: &str) -> bool {
    let b = body.as_bytes();
    // The 2.1 grammar wants at least one quantum and correct padding.
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// The grammar's `TimestampLiteral` body: `YYYY-MM-DDTHH:MM:SS(.d+)?Z` with the field ranges the
/// grammar spells out.
fn is_pattern_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| -> u32 {
        s.get(r).and_then(|t| t.parse().ok()).unwrap_or(u32::MAX)
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let (month, day, hour, minute, second) =
        (num(5..7), num(8..10), num(11..13), num(14..16), num(17..19));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let rest = &b[19..];
    match rest {
        [b'Z'] => true,
        [b'.', frac @ .., b'Z'] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Order,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
    Exists,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Other,
}

#[derive(Debug)]
struct Comparison {
    path: String,
    negated: bool,
    op: Op,
    value: Option<Literal>,
}

/// What a successful parse found, enough for [`single_comparison`].
#[derive(Debug, Default)]
struct Summary {
    observations: usize,
    qualifiers: usize,
    comparisons: Vec<Comparison>,
}

fn parse(src: &str) -> Result<Summary, String> {
    if src.trim_matches(is_pattern_space).is_empty() {
        return Err("pattern is empty".into());
    }
    let toks = Lexer::new(src).tokens()?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
        summary: Summary::default(),
    };
    p.observation_expressions()?;
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected(
            "AND, OR or FOLLOWEDBY between observation expressions, or end of pattern",
        ));
    }
    Ok(p.summary)
}

/// Parentheses nest; a bound keeps hostile input from exhausting the stack.
const MAX_NESTING: usize = 100;

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Spanned>,
    pos: usize,
    depth: usize,
    summary: Summary,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn at(&self) -> usize {
        self.toks[self.pos].at
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if t != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> String {
        let mut msg = format!("expected {expected}, found {}", self.peek().describe());
        // People write `and`/`or`; the 2.1 grammar only knows upper-case keywords.
        if let Tok::Ident(word, false) = self.peek() {
            let upper = word.to_ascii_uppercase();
            if KEYWORDS.iter().any(|(n, _)| *n == upper) {
                msg.push_str(&format!(" (keywords are upper-case: {upper})"));
            }
        }
        err_at(self.src, self.at(), msg)
    }

    fn expect(&mut self, t: &Tok, expected: &str) -> Result<(), String> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    /// Takes the next token when `f` accepts it; otherwise reports what was `expected`.
    fn take<T>(&mut self, expected: &str, f: impl FnOnce(&Tok) -> Option<T>) -> Result<T, String> {
        match f(self.peek()) {
            Some(v) => {
                self.bump();
                Ok(v)
            }
            None => Err(self.unexpected(expected)),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(err_at(
                self.src,
                self.at(),
                format!("parentheses nested deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    // observationExpressions: or (FOLLOWEDBY or)*; precedence FOLLOWEDBY < OR < AND.
    fn observation_expressions(&mut self) -> Result<(), String> {
        self.observation_or()?;
        while self.eat(&Tok::Kw(Kw::FollowedBy)) {
            self.observation_or()?;
        }
        Ok(())
    }

    fn observation_or(&mut self) -> Result<(), String> {
        self.observation_and()?;
        while self.eat(&Tok::Kw(Kw::Or)) {
            self.observation_and()?;
        }
        Ok(())
    }

    fn observation_and(&mut self) -> Result<(), String> {
        self.observation_qualified()?;
        while self.eat(&Tok::Kw(Kw::And)) {
            self.observation_qualified()?;
        }
        Ok(())
    }

    fn observation_qualified(&mut self) -> Result<(), String> {
        match self.peek() {
            Tok::LBrack => {
                self.bump();
                self.summary.observations += 1;
                self.comparison_or()?;
                self.expect(
                    &Tok::RBrack,
                    "AND, OR or ']' to close the observation expression",
                )?;
            }
            Tok::LParen => {
                self.bump();
                self.nest()?;
                self.observation_expressions()?;
                self.expect(
                    &Tok::RParen,
                    "')' to close the grouped observation expressions",
                )?;
                self.depth -= 1;
            }
            _ => return Err(self.unexpected("'[' starting an observation expression, or '('")),
        }
        loop {
            match self.peek() {
                Tok::Kw(Kw::Start) => self.start_stop()?,
                Tok::Kw(Kw::Within) => self.within()?,
                Tok::Kw(Kw::Repeats) => self.repeats()?,
                _ => return Ok(()),
            }
            self.summary.qualifiers += 1;
        }
    }

    fn start_stop(&mut self) -> Result<(), String> {
        self.bump();
        let timestamp = |t: &Tok| match t {
            Tok::Timestamp(s) => Some(s.clone()),
            _ => None,
        };
        let start_at = self.at();
        let start = self.take("a timestamp literal t'...' after START", timestamp)?;
        self.expect(&Tok::Kw(Kw::Stop), "STOP after the START timestamp")?;
        let stop_at = self.at();
        let stop = self.take("a timestamp literal t'...' after STOP", timestamp)?;
        let start_t = real_timestamp(self.src, start_at, &start)?;
        let stop_t = real_timestamp(self.src, stop_at, &stop)?;
        if let (Some(a), Some(b)) = (start_t, stop_t) {
            if b <= a {
                return Err(err_at(
                    self.src,
                    stop_at,
                    format!("STOP t'{stop}' must be later than START t'{start}'"),
                ));
            }
        }
        Ok(())
    }

    fn within(&mut self) -> Result<(), String> {
        self.bump();
        let at = self.at();
        let positive = self.take("a number of seconds after WITHIN", |t| match t {
            Tok::Int(v, negative) => Some(!negative && *v > 0),
            Tok::Float(v) => Some(*v > 0.0),
            _ => None,
        })?;
        if !positive {
            return Err(err_at(
                self.src,
                at,
                "WITHIN needs a positive number of seconds",
            ));
        }
        self.expect(&Tok::Kw(Kw::Seconds), "SECONDS after the WITHIN duration")
    }

    fn repeats(&mut self) -> Result<(), String> {
        self.bump();
        let at = self.at();
        let positive = self.take("a positive integer after REPEATS", |t| match t {
            Tok::Int(v, negative) => Some(!negative && *v > 0),
            Tok::Float(_) => Some(false),
            _ => None,
        })?;
        if !positive {
            return Err(err_at(self.src, at, "REPEATS needs a positive integer"));
        }
        self.expect(&Tok::Kw(Kw::Times), "TIMES after the REPEATS count")
    }

    fn comparison_or(&mut self) -> Result<(), String> {
        self.comparison_and()?;
        while self.eat(&Tok::Kw(Kw::Or)) {
            self.comparison_and()?;
        }
        Ok(())
    }

    fn comparison_and(&mut self) -> Result<(), String> {
        self.prop_test()?;
        while self.eat(&Tok::Kw(Kw::And)) {
            self.prop_test()?;
        }
        Ok(())
    }

    fn prop_test(&mut self) -> Result<(), String> {
        match self.peek() {
            Tok::LParen => {
                self.bump();
                self.nest()?;
                self.comparison_or()?;
                self.expect(
                    &Tok::RParen,
                    "AND, OR or ')' to close the parenthesised comparison",
                )?;
                self.depth -= 1;
                return Ok(());
            }
            Tok::Kw(Kw::Exists) => {
                self.bump();
                let path = self.object_path()?;
                self.summary.comparisons.push(Comparison {
                    path,
                    negated: false,
                    op: Op::Exists,
                    value: None,
                });
                return Ok(());
            }
            _ => {}
        }
        let path = self.object_path()?;
        let negated = self.eat(&Tok::Kw(Kw::Not));
        const OPERATORS: &str =
            "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)";
        let op = self.take(OPERATORS, |t| match t {
            Tok::Eq => Some(Op::Eq),
            Tok::Neq => Some(Op::Neq),
            Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => Some(Op::Order),
            Tok::Kw(Kw::In) => Some(Op::In),
            Tok::Kw(Kw::Like) => Some(Op::Like),
            Tok::Kw(Kw::Matches) => Some(Op::Matches),
            Tok::Kw(Kw::IsSubset) => Some(Op::IsSubset),
            Tok::Kw(Kw::IsSuperset) => Some(Op::IsSuperset),
            _ => None,
        })?;
        let value = match op {
            Op::Eq | Op::Neq => self.primitive_literal(true)?,
            Op::Order => self.primitive_literal(false)?,
            Op::In => self.set_literal()?,
            _ => self.take("a string literal", |t| match t {
                Tok::Str(s) => Some(Literal::Str(s.clone())),
                _ => None,
            })?,
        };
        self.summary.comparisons.push(Comparison {
            path,
            negated,
            op,
            value: Some(value),
        });
        Ok(())
    }

    /// `primitiveLiteral` (with booleans) or `orderableLiteral` (without).
    fn primitive_literal(&mut self, allow_bool: bool) -> Result<Literal, String> {
        let at = self.at();
        if *self.peek() == Tok::Bool && !allow_bool {
            return Err(self.unexpected("an orderable literal (a boolean cannot be ordered)"));
        }
        let lit = self.take("a literal value", |t| match t {
            Tok::Str(s) => Some(Ok(Literal::Str(s.clone()))),
            Tok::Int(..) | Tok::Float(_) | Tok::Hex | Tok::Binary | Tok::Bool => {
                Some(Ok(Literal::Other))
            }
            Tok::Timestamp(t) => Some(Err(t.clone())),
            _ => None,
        })?;
        match lit {
            Ok(l) => Ok(l),
            Err(t) => real_timestamp(self.src, at, &t).map(|_| Literal::Other),
        }
    }

    fn set_literal(&mut self) -> Result<Literal, String> {
        self.expect(&Tok::LParen, "'(' starting a set literal after IN")?;
        if self.eat(&Tok::RParen) {
            return Ok(Literal::Other);
        }
        loop {
            self.primitive_literal(true)?;
            if self.eat(&Tok::RParen) {
                return Ok(Literal::Other);
            }
            self.expect(&Tok::Comma, "',' or ')' in the set literal")?;
        }
    }

    /// `type:first(.key | [index])*`, returned in canonical form.
    fn object_path(&mut self) -> Result<String, String> {
        let mut path = self.take("an object path such as ipv4-addr:value", |t| match t {
            Tok::Ident(t, _) => Some(t.clone()),
            _ => None,
        })?;
        self.expect(&Tok::Colon, "':' after the object type")?;
        path.push(':');
        let first = self.path_key("a property name after ':'")?;
        push_key(&mut path, &first);
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let key = self.path_key("a property name after '.'")?;
                    path.push('.');
                    push_key(&mut path, &key);
                }
                Tok::LBrack => {
                    // `[` after a path is always an index step: observation brackets cannot
                    // follow a path directly.
                    self.bump();
                    let index = self.take("a list index (an integer or '*')", |t| match t {
                        Tok::Asterisk => Some("*".to_string()),
                        Tok::Int(v, true) => Some(format!("-{v}")),
                        Tok::Int(v, false) => Some(v.to_string()),
                        _ => None,
                    })?;
                    path.push('[');
                    path.push_str(&index);
                    path.push(']');
                    self.expect(&Tok::RBrack, "']' to close the list index")?;
                }
                _ => return Ok(path),
            }
        }
    }

    fn path_key(&mut self, expected: &str) -> Result<String, String> {
        if let Tok::Ident(k, true) = self.peek() {
            return Err(err_at(
                self.src,
                self.at(),
                format!("property name {k} contains '-': quote it as '{k}'"),
            ));
        }
        self.take(expected, |t| match t {
            Tok::Ident(k, _) | Tok::Str(k) => Some(k.clone()),
            _ => None,
        })
    }
}

/// Appends a path key, quoted only when it is not a plain identifier. Keywords (`AND`,
/// `WITHIN`, …) and `true`/`false` are quoted too: unquoted they lex as keywords, so the path
/// would not parse again.
fn push_key(path: &mut String, key: &str) {
    let plain = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !matches!(key, "true" | "false")
        && !KEYWORDS.iter().any(|(n, _)| *n == key);
    if plain {
        path.push_str(key);
    } else {
        path.push('\'');
        path.push_str(&escape_string(key));
        path.push('\'');
    }
}

/// Checks that a grammatically valid timestamp literal is a real instant (no 30 February).
/// Leap seconds (`:60`) are allowed by the grammar but not by the time library, so they are
/// accepted without a value.
fn real_timestamp(src: &str, at: usize, t: &str) -> Result<Option<OffsetDateTime>, String> {
    if t.get(17..19) == Some("60") {
        return Ok(None);
    }
    OffsetDateTime::parse(t, &Rfc3339).map(Some).map_err(|_| {
        err_at(
            src,
            at,
            format!("timestamp t'{t}' is not a real date and time"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[&str] = &[
        "[ipv4-addr:value = '198.51.100.1']",
        "[ipv4-addr:value = '198.51.100.0/24']",
        "[domain-name:value == 'example.com']",
        "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
        "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
        "[url:value = 'http://example.com/it\\'s']",
        "[file:name = 'C:\\\\Windows\\\\evil.exe']",
        "[email-message:from_ref.value MATCHES '.+@example\\\\.com$']",
        "[network-traffic:dst_port > 1024 AND network-traffic:dst_port <= 65535]",
        "[network-traffic:src_ref.value ISSUBSET '198.51.100.0/24']",
        "[ipv4-addr:value ISSUPERSET '198.51.100.7']",
        "[file:size >= -1 OR file:size < +10.5]",
        "[x-custom:prop = .5]",
        "[ipv4-addr:value NOT = '10.0.0.1']",
        "[ipv4-addr:value != '10.0.0.1' AND ipv4-addr:value <> '10.0.0.2']",
        "[domain-name:value IN ('a.example', 'b.example')]",
        "[x:y IN ()]",
        "[x:y NOT IN (1, 2.5, true, false, 'x', h'ff00', b'AAECAw==', t'2020-01-01T00:00:00Z')]",
        "[file:name LIKE 'evil%.exe']",
        "[EXISTS windows-registry-key:values[*].name]",
        "[windows-registry-key:values[0].data = 'x' AND windows-registry-key:values[-1].name = 'y']",
        "[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]",
        "[x:'quoted key'.'it\\'s' = 1]",
        "[(file:name = 'a' OR file:name = 'b') AND file:size = 0]",
        "[((file:name = 'a'))]",
        "[file:name = 'a'] AND [file:name = 'b']",
        "[file:name = 'a'] OR [file:name = 'b'] FOLLOWEDBY [file:name = 'c']",
        "([file:name = 'a'] FOLLOWEDBY [file:name = 'b']) WITHIN 300 SECONDS",
        "[file:name = 'a'] REPEATS 5 TIMES WITHIN 1.5 SECONDS",
        "[file:name = 'a'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00.123Z'",
        "[x:y = t'2016-12-31T23:59:60Z']",
        "[x:y = b'AAE=' OR x:y = b'AA==' OR x:y = h'']",
        "[x:y = true]",
        "  [file:name = 'a']  ",
        "[file:name = 'a'] /* comment */ AND // line comment\n [file:name = 'b']",
        "[file:name = 'ünïcödé ☃']",
        "[artifact:payload_bin = b'dGVzdA==']",
        "[process:pid = 0]",
    ];

    const INVALID: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        ("ipv4-addr:value = '1.2.3.4'", "expected '['"),
        ("[ipv4-addr:value = '1.2.3.4'", "expected AND, OR or ']'"),
        ("[ipv4-addr:value = '1.2.3.4']]", "end of pattern"),
        ("[ipv4-addr:value = 1.2.3.4]", "position"),
        ("[ipv4-addr:value = '1.2.3.4]", "never closed"),
        ("[ipv4-addr:value '1.2.3.4']", "comparison operator"),
        ("[ipv4-addr value = '1.2.3.4']", "':' after the object type"),
        ("[:value = '1']", "object path"),
        ("[ipv4-addr: = '1']", "property name"),
        ("[file:hashes.SHA-256 = 'x']", "quote it"),
        ("[ipv4-addr:value = ]", "literal value"),
        (
            "[ipv4-addr:value = '1' and ipv4-addr:value = '2']",
            "upper-case: AND",
        ),
        (
            "[ipv4-addr:value = '1'] and [ipv4-addr:value = '2']",
            "found identifier 'and'",
        ),
        ("[a:b = 'x\\n']", "invalid escape"),
        ("[a:b = h'abc']", "hex literal"),
        ("[a:b = h'zz']", "hex literal"),
        ("[a:b = b'abc']", "base64"),
        ("[a:b = b'']", "base64"),
        ("[a:b = t'2016-13-01T00:00:00Z']", "timestamp literal"),
        ("[a:b = t'2016-01-01 00:00:00Z']", "timestamp literal"),
        ("[a:b = t'2016-01-01T00:00:00+01:00']", "timestamp literal"),
        ("[a:b = t'2016-02-30T00:00:00Z']", "not a real date"),
        ("[a:b = 007]", "leading zeros"),
        ("[a:b = -]", "invalid number"),
        ("[a:b > true]", "orderable"),
        ("[a:b LIKE 5]", "string literal"),
        ("[a:b IN 'x']", "set literal"),
        ("[a:b IN ('x' 'y')]", "',' or ')'"),
        ("[a:b IN ('x',)]", "literal value"),
        ("[a:b[x] = 1]", "list index"),
        ("[a:b[1 = 1]", "']' to close the list index"),
        ("[a:b = 1] WITHIN SECONDS", "number of seconds"),
        ("[a:b = 1] WITHIN 0 SECONDS", "positive"),
        ("[a:b = 1] WITHIN 5", "SECONDS"),
        ("[a:b = 1] REPEATS 0 TIMES", "positive integer"),
        ("[a:b = 1] REPEATS 2.5 TIMES", "positive integer"),
        ("[a:b = 1] REPEATS 2", "TIMES"),
        (
            "[a:b = 1] START t'2016-07-01T00:00:00Z' STOP t'2016-06-01T00:00:00Z'",
            "later than START",
        ),
        ("[a:b = 1] START t'2016-07-01T00:00:00Z'", "STOP"),
        (
            "[a:b = 1] START '2016-07-01T00:00:00Z' STOP t'2016-08-01T00:00:00Z'",
            "timestamp literal",
        ),
        ("[a:b = 1] AND", "'[' starting an observation"),
        ("[a:b = 1] FOLLOWEDBY ()", "'[' starting an observation"),
        ("([a:b = 1]", "')' to close"),
        ("[(a:b = 1]", "')' to close the parenthesised"),
        ("[a:b = 1 AND]", "object path"),
        ("[a:b = 1 AND a:c = 2 OR]", "object path"),
        ("[a:b = 1 ;]", "unexpected character ';'"),
        ("[a:b = 1] /* open", "never closed"),
        ("[EXISTS]", "object path"),
        ("[a:b NOT EXISTS]", "comparison operator"),
        ("[a:b = 'x'] [a:b = 'y']", "AND, OR or FOLLOWEDBY"),
        ("[]", "object path"),
    ];

    #[test]
    fn valid_patterns_parse() {
        for p in VALID {
            if let Err(e) = check(p) {
                panic!("{p:?} should be valid: {e}");
            }
        }
    }

    #[test]
    fn invalid_patterns_are_rejected_with_a_useful_message() {
        for (p, want) in INVALID {
            match check(p) {
                Ok(()) => panic!("{p:?} should be invalid"),
                Err(e) => assert!(
                    e.contains(want),
                    "{p:?}: message {e:?} should contain {want:?}"
                ),
            }
        }
    }

    #[test]
    fn errors_name_the_position() {
        let e = check("[ipv4-addr:value = '1.2.3.4' AND ]").unwrap_err();
        assert!(e.starts_with("at position 34:"), "{e}");
        // Positions count characters, not bytes.
        let e = check("[file:name = 'é'] ;").unwrap_err();
        assert!(e.starts_with("at position 19:"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let p = format!("{}[a:b = 1]{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(check(&p).unwrap_err().contains("nested deeper"));
        let p = format!("[{}a:b = 1{}]", "(".repeat(10_000), ")".repeat(10_000));
        assert!(check(&p).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn single_comparison_extracts_path_and_unescaped_value() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "[ipv4-addr:value = '198.51.100.1']",
                Some(("ipv4-addr:value", "198.51.100.1")),
            ),
            (
                "  [ domain-name:value == 'example.com' ]",
                Some(("domain-name:value", "example.com")),
            ),
            (
                "[(url:value = 'http://x/it\\'s')]",
                Some(("url:value", "http://x/it's")),
            ),
            ("([file:'name' = 'a\\\\b'])", Some(("file:name", "a\\b"))),
            ("[file:hashes.'MD5' = 'x']", Some(("file:hashes.MD5", "x"))),
            (
                "[file:hashes.'AND' = 'x']",
                Some(("file:hashes.'AND'", "x")),
            ),
            ("[a:'true'.'IN' = 'x']", Some(("a:'true'.'IN'", "x"))),
            ("[a:'and'.'True' = 'x']", Some(("a:and.True", "x"))),
            (
                "[file:hashes.'SHA-256' = 'x']",
                Some(("file:hashes.'SHA-256'", "x")),
            ),
            (
                "[file:hashes.SHA256 = 'x']",
                Some(("file:hashes.SHA256", "x")),
            ),
            ("[a:b[*].c = 'x']", Some(("a:b[*].c", "x"))),
            ("[ipv4-addr:value != '1.2.3.4']", None),
            ("[ipv4-addr:value NOT = '1.2.3.4']", None),
            ("[ipv4-addr:value = 5]", None),
            ("[ipv4-addr:value LIKE '1.%']", None),
            ("[a:b = 'x' OR a:b = 'y']", None),
            ("[a:b = 'x'] AND [a:b = 'y']", None),
            ("[a:b = 'x'] WITHIN 5 SECONDS", None),
            ("[a:b = 'x'", None),
        ];
        for (p, want) in cases {
            let got = single_comparison(p);
            assert_eq!(check_single(p).ok().flatten(), got, "check_single: {p}");
            let want = want.map(|(a, b)| (a.to_string(), b.to_string()));
            assert_eq!(got, want, "{p}");
        }
    }

    #[test]
    fn built_patterns_round_trip() {
        for v in ["plain", "it's", "back\\slash", "both\\'", "", "ünï"] {
            let p = build_single("file:name", v);
            assert_eq!(
                single_comparison(&p),
                Some(("file:name".to_string(), v.to_string())),
                "{p}"
            );
        }
        assert_eq!(
            build_single("file:hashes.'SHA-256'", "ab"),
            "[file:hashes.'SHA-256' = 'ab']"
        );
    }
}
