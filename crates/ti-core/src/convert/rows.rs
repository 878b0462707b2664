//! CSV rows → STIX indicator (text-list lines are `super::text`'s).
//!
//! Observable type names (the CSV `type`/`observableType` column) are the STIX names and the
//! aliases vendors write, case-insensitive ([`observable_for_type`]). A value cell with no type,
//! an empty one, or a type that leaves the kind to the value (a bare `hash`, `file`) is read as
//! a text-list line is ([`super::text::read_value`]: refanged, typed by its shape, domains checked
//! against the Public Suffix List and lower-cased, file names kept apart, a trailing comment or
//! port going to the description). Typed values analysts paste from reports are often defanged
//! (`hxxp://`, `example[.]com`) too: they are refanged. Every change comes with a `normalised`
//! warning naming the column, so it is visible in the report.
//!
//! CSV columns (header names are matched case-insensitively, ignoring spaces, `_`, `-` and `.`;
//! the `column` function lists them with where they come from):
//! - Microsoft Sentinel's "Import using a file" templates: `threatTypes, tags, name, description,
//!   confidence, revoked, validFrom, validUntil, tlpLevel, severity, observableType,
//!   observableValue` ("All other indicator types") and the "File indicators" variant, whose
//!   observable columns are file hashes and a file name: `fileHashType` + `fileHashValue`, or one
//!   column per algorithm (`MD5`, `SHA1`, `SHA256`, `SHA512`), and `fileName`.
//! - The short form `type, value`, vendor value/type pairs (`value,entity_type,description`,
//!   `ioc_value,ioc_type`, …) and columns named for an observable type (`dst_ip`, `url`, …).
//!
//! Other columns are ignored, as is `severity` (STIX indicators have no severity).

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{parse_timestamp, stix_timestamp, Comparison, Defaults, Draft, Tlp};
use crate::report::Code;
use crate::stix::observable::{self, Observable};
use crate::stix::Problem;

/// The type names accepted in a CSV type column, for messages.
pub const TYPE_NAMES: &str = "ipv4-addr, ipv6-addr, domain-name, url, email-addr, file, or ip, ipv4, ipv6, cidr, ipaddress, ip-dst, ip-src, ip:port, domain, hostname, fqdn, uri, email, md5, sha1, sha256, sha512, filehash-sha256 (and -md5, -sha1), hash, filename, filename|sha256 (and |md5, |sha1)";

/// The observable a CSV type name and value stand for (the value decides between IPv4 and IPv6
/// for `ip`/`cidr`, and between a hash and a name for `file`; a bare `hash` is typed by its
/// length).
///
/// Type names are matched case-insensitively, with `_` and spaces read as `-`. Besides the STIX
/// names, the names producers write:
/// - MISP attribute types (`describeTypes.json` in MISP/PyMISP): `ip-src`, `ip-dst`,
///   `ip-src|port`, `ip-dst|port` (value `1.2.3.4|443`), `hostname`, `domain`, `url`, `uri`,
///   `email`, `email-src`, `email-dst`, `md5`, `sha1`, `sha256`, `sha512`, `filename` (and the
///   composite `filename|sha256` & co., read by the CSV row: a file name and its hash);
/// - AlienVault OTX indicator types (OTX-Python-SDK `IndicatorTypes.py`): `IPv4`, `IPv6`,
///   `CIDR`, `domain`, `hostname`, `email`, `URL`, `URI`, `FileHash-MD5`, `FileHash-SHA1`,
///   `FileHash-SHA256`;
/// - Volexity's CSVs (volexity/threat-intel, e.g. `2025/2025-10-08 UTA0388/iocs.csv`):
///   `ipaddress`, `hostname`, `url`, `file` (a SHA-256);
/// - abuse.ch ThreatFox `ioc_type`: `ip:port`, `domain`, `url`, `md5_hash`, `sha1_hash`,
///   `sha256_hash`.
pub fn observable_for_type(type_name: &str, value: &str) -> Result<Observable, Problem> {
    let t = super::fold_type_name(type_name);
    let t = t.strip_prefix("filehash-").unwrap_or(&t);
    // `[2001:db8::1]:443` is IPv6 with a port.
    let ip = || {
        if value.starts_with('[') || observable::is_ipv6_or_cidr(value) {
            Observable::Ipv6
        } else {
            Observable::Ipv4
        }
    };
    let o = match t {
        "ipv4-addr" | "ipv4" | "ipv4-address" | "ipv4addr" => Observable::Ipv4,
        "ipv6-addr" | "ipv6" | "ipv6-address" | "ipv6addr" => Observable::Ipv6,
        "ip" | "ip-addr" | "ip-address" | "ipaddress" | "ipaddr" | "cidr" | "ip-dst" | "ip-src"
        | "ip-dst|port" | "ip-src|port" | "ip:port" | "ip-port" => ip(),
        "domain-name" | "domain" | "hostname" | "host-name" | "host" | "fqdn" => Observable::Domain,
        "url" | "uri" => Observable::Url,
        "email-addr" | "email" | "e-mail" | "email-address" | "emailaddress" | "email-src"
        | "email-dst" => Observable::Email,
        "md5" | "md5-hash" | "hash-md5" => Observable::Md5,
        "sha1" | "sha-1" | "sha1-hash" | "hash-sha1" => Observable::Sha1,
        "sha256" | "sha-256" | "sha256-hash" | "hash-sha256" => Observable::Sha256,
        "sha512" | "sha-512" | "sha512-hash" | "hash-sha512" => Observable::Sha512,
        "filename" | "file-name" | "file:name" => Observable::FileName,
        "file" => hash_by_length(value).unwrap_or(Observable::FileName),
        "hash" | "filehash" | "file-hash" => hash_by_length(value).ok_or_else(|| {
            Problem::new(
                Code::InvalidObservable,
                format!(
                    "'{}' (type '{type_name}') is not an MD5, SHA-1, SHA-256 or SHA-512 hash: a hash is typed by its length (32, 40, 64 or 128 hex digits)",
                    show(value)
                ),
            )
        })?,
        _ => {
            return Err(Problem::new(
                Code::UnknownObservableType,
                format!("unknown observable type '{type_name}' (accepted: {TYPE_NAMES})"),
            ))
        }
    };
    Ok(o)
}

fn hash_by_length(value: &str) -> Option<Observable> {
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match value.len() {
        32 => Some(Observable::Md5),
        40 => Some(Observable::Sha1),
        64 => Some(Observable::Sha256),
        128 => Some(Observable::Sha512),
        _ => None,
    }
}

// Text lists are read by `super::text`; CSV cells without a usable type use the same rules.
use super::show;
use super::text::{self, refang};

/// What a CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Type,
    Value,
    HashType,
    HashValue,
    Hash(Observable),
    /// A column named for an observable type (`dst_ip`, `domain`, `url`): each cell is one
    /// observable of that type, named as [`observable_for_type`] takes it.
    Typed(&'static str),
    FileName,
    ThreatTypes,
    Tags,
    Name,
    Description,
    Confidence,
    Revoked,
    ValidFrom,
    ValidUntil,
    Tlp,
    Id,
    /// Known but not carried (`severity`), or unknown: ignored.
    Ignored,
}

/// What a header name means. Names are matched case-insensitively, ignoring spaces, `_`, `-`
/// and `.`. Where the names come from:
/// - Microsoft Sentinel's "Import using a file" templates (`observableType`, `observableValue`,
///   `fileHashType`, `fileHashValue`, `threatTypes`, `tlpLevel`, …);
/// - value/type pairs: Volexity `value,type,notes` and `value,entity_type,description`
///   (volexity/threat-intel), MISP's CSV export `type,value,comment`, OTX's `indicator,type,
///   description` (OTX API pulse indicators), abuse.ch ThreatFox `ioc_value,ioc_type`;
/// - columns named for their observable: abuse.ch Feodo Tracker `dst_ip` (ipblocklist.csv),
///   URLhaus `url`, and the usual `ip`, `src_ip`, `domain`, `hostname`, `md5`, `sha256`, ….
fn column(name: &str) -> Column {
    let n: String = name
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    match n.as_str() {
        "type" | "observabletype" | "indicatortype" | "ioctype" | "entitytype"
        | "attributetype" | "valuetype" => Column::Type,
        "value" | "observablevalue" | "indicatorvalue" | "iocvalue" | "indicator" | "ioc"
        | "observable" | "entity" | "entityvalue" | "attributevalue" => Column::Value,
        "filehashtype" | "hashtype" => Column::HashType,
        "filehashvalue" | "hashvalue" | "hash" | "filehash" => Column::HashValue,
        "md5" | "filehashmd5" | "hashmd5" | "md5hash" => Column::Hash(Observable::Md5),
        "sha1" | "filehashsha1" | "hashsha1" | "sha1hash" => Column::Hash(Observable::Sha1),
        "sha256" | "filehashsha256" | "hashsha256" | "sha256hash" => {
            Column::Hash(Observable::Sha256)
        }
        "sha512" | "filehashsha512" | "hashsha512" | "sha512hash" => {
            Column::Hash(Observable::Sha512)
        }
        "ip" | "ipaddress" | "ipaddr" | "ipv4" | "ipv6" | "ipv4address" | "ipv6address"
        | "dstip" | "srcip" | "ipdst" | "ipsrc" | "destinationip" | "sourceip" | "cidr" => {
            Column::Typed("ip")
        }
        "domain" | "domainname" | "hostname" | "fqdn" => Column::Typed("domain"),
        "url" | "uri" => Column::Typed("url"),
        "email" | "emailaddress" | "emailaddr" => Column::Typed("email"),
        "filename" => Column::FileName,
        "threattypes" | "threattype" | "indicatortypes" => Column::ThreatTypes,
        "tags" | "labels" | "tag" => Column::Tags,
        "name" | "title" => Column::Name,
        "description" | "comment" | "comments" | "notes" | "note" => Column::Description,
        "confidence" | "confidencelevel" => Column::Confidence,
        "revoked" => Column::Revoked,
        "validfrom" => Column::ValidFrom,
        "validuntil" => Column::ValidUntil,
        "tlplevel" | "tlp" => Column::Tlp,
        "id" => Column::Id,
        _ => Column::Ignored,
    }
}

/// `true` when a column of that name would be read (for format detection: a first line with
/// one is a CSV header).
pub fn is_known_column(name: &str) -> bool {
    column(name) != Column::Ignored
}

/// A recognised CSV header: what each column holds, and its name as the input has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    columns: Vec<Column>,
    names: Vec<String>,
}

impl CsvHeader {
    /// Recognises a header row by what its columns mean: it must have a column to take an
    /// observable from — a value column (with or without a type column), a column named for an
    /// observable type, or file hash / file name columns. The error names the columns it saw.
    pub fn recognise<S: AsRef<str>>(fields: &[S]) -> Result<CsvHeader, String> {
        let columns: Vec<Column> = fields.iter().map(|f| column(f.as_ref())).collect();
        let observable = columns.iter().any(|c| {
            matches!(
                c,
                Column::Value
                    | Column::HashValue
                    | Column::FileName
                    | Column::Hash(_)
                    | Column::Typed(_)
            )
        });
        if !observable {
            let seen: Vec<String> = fields
                .iter()
                .take(20)
                .map(|f| format!("`{}`", show(f.as_ref().trim())))
                .collect();
            let more = if fields.len() > 20 { ", …" } else { "" };
            return Err(format!(
                "the CSV header has no column to take an indicator from (columns: {}{more}): it needs a value column (value, indicator, ioc, observable, observableValue, …; with a type column: type, entity_type, indicator_type, observableType, …), or a column named for an observable type (ip, dst_ip, src_ip, domain, hostname, url, email, md5, sha1, sha256, sha512, hash, fileName)",
                seen.join(", ")
            ));
        }
        Ok(CsvHeader {
            columns,
            names: fields
                .iter()
                .map(|f| f.as_ref().trim().to_string())
                .collect(),
        })
    }

    /// The 0-based positions of the first two header fields that name the same column (`type`
    /// twice, or `type` and `observableType`): each row could only keep one of their values.
    /// Columns that are ignored anyway, and columns named for an observable type (`src_ip` and
    /// `dst_ip` each give an indicator's comparison), may repeat.
    pub fn duplicate<S: AsRef<str>>(fields: &[S]) -> Option<(usize, usize)> {
        // At most one entry per kind of column, so this stays linear in the number of fields.
        let mut seen: Vec<(Column, usize)> = Vec::new();
        for (j, f) in fields.iter().enumerate() {
            let c = column(f.as_ref());
            if matches!(c, Column::Ignored | Column::Typed(_)) {
                continue;
            }
            if let Some(&(_, i)) = seen.iter().find(|(k, _)| *k == c) {
                return Some((i, j));
            }
            seen.push((c, j));
        }
        None
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    fn position(&self, c: Column) -> Option<usize> {
        self.columns.iter().position(|&k| k == c)
    }

    /// Converts one data row (fields in header order; missing trailing fields are empty).
    /// Messages name the input's own column (`column `dst_ip`: …`).
    pub fn row_to_stix<S: AsRef<str>>(
        &self,
        fields: &[S],
        defaults: &Defaults,
        now: OffsetDateTime,
    ) -> Result<(Map<String, Value>, Vec<Problem>), Problem> {
        let mut warnings = Vec::new();
        let cell = |i: usize| -> Option<&str> {
            fields
                .get(i)
                .map(|s| s.as_ref().trim())
                .filter(|s| !s.is_empty())
        };
        let get = |c: Column| self.position(c).and_then(cell);
        let name = |c: Column| self.position(c).map_or("", |i| self.names[i].as_str());
        let mut d = Draft::default();

        // What a value cell with no type (or a type that leaves the kind to the value: a bare
        // `hash`, `file`) holds, read as a text-list line is (`super::text::read_value`); with
        // a comment or a port, that goes to the description.
        let mut noted: Vec<String> = Vec::new();
        let type_cell = get(Column::Type);
        match (type_cell, get(Column::Value)) {
            (Some(t), Some(raw)) if by_value(t).is_some() => {
                let col = name(Column::Value);
                let wanted = by_value(t).expect("checked");
                match (read_cell(col, raw).ok().filter(is_hash), wanted) {
                    (Some(r), _) => noted.extend(take(col, r, &mut d, &mut warnings)),
                    // `file` with a value that is no hash: its file name, as written.
                    (None, ByValue::FileOrHash) => {
                        d.comparisons.push(checked(col, Observable::FileName, raw)?);
                    }
                    (None, ByValue::Hash) => {
                        return Err(Problem::new(
                            Code::InvalidObservable,
                            format!(
                                "column `{col}`: '{}' (type '{t}') is not an MD5, SHA-1, SHA-256 or SHA-512 hash: a hash is typed by its length (32, 40, 64 or 128 hex digits)",
                                show(raw)
                            ),
                        ));
                    }
                }
            }
            (Some(t), Some(raw)) => {
                let (vc, tc) = (name(Column::Value), name(Column::Type));
                let v = refanged_in(vc, raw, &mut warnings);
                match file_and_hash(t, &v) {
                    // MISP's `filename|sha256` (value `name|hash`): that file, by name and hash.
                    Some((hash_type, file, hash)) => {
                        d.comparisons.push(checked(vc, Observable::FileName, file)?);
                        let c = typed_comparison(vc, tc, hash_type, hash, &mut warnings)?;
                        d.comparisons.push(c);
                    }
                    None => {
                        let c = typed_comparison(vc, tc, t, &v, &mut warnings)?;
                        d.comparisons.push(c);
                    }
                }
            }
            (None, Some(raw)) => {
                let col = name(Column::Value);
                match read_cell(col, raw) {
                    Ok(r) => noted.extend(take(col, r, &mut d, &mut warnings)),
                    Err(Some(p)) => return Err(p),
                    Err(None) => {
                        let t = self.position(Column::Type).map_or(String::new(), |i| {
                            format!(", and its type column `{}` is empty", self.names[i])
                        });
                        return Err(Problem::new(
                            Code::UnknownObservableType,
                            format!(
                                "column `{col}`: '{}' is not a recognisable observable{t} (accepted types: {TYPE_NAMES})",
                                show(raw)
                            ),
                        ));
                    }
                }
            }
            (Some(t), None) if !self.has_file_columns() && !self.has_typed_columns() => {
                return Err(Problem::new(
                    Code::MissingProperty,
                    format!(
                        "column `{}` is empty for type '{t}': the row has no value",
                        name(Column::Value)
                    ),
                ))
            }
            _ => {}
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let Column::Typed(t) = c {
                if let Some(v) = cell(i) {
                    let col = self.names[i].as_str();
                    let v = refanged_in(col, v, &mut warnings);
                    d.comparisons
                        .push(typed_comparison(col, col, t, &v, &mut warnings)?);
                }
            }
        }
        if let Some(h) = get(Column::HashValue) {
            let col = name(Column::HashValue);
            match get(Column::HashType) {
                Some(t) => {
                    let o = observable_for_type(t, h)
                        .map_err(|p| in_column(p, name(Column::HashType)))?;
                    d.comparisons.push(checked(col, o, h)?);
                }
                // A bare hash column: the hash typed by its length, read as a text line is
                // (`<sha256> (loader)` keeps its comment).
                None => match read_cell(col, h).ok().filter(is_hash) {
                    Some(r) => noted.extend(take(col, r, &mut d, &mut warnings)),
                    None => return Err(Problem::new(
                        Code::InvalidObservable,
                        format!("column `{col}`: '{}' is not an MD5, SHA-1, SHA-256 or SHA-512 hash (32, 40, 64 or 128 hex digits) and no hash type column says what it is", show(h)),
                    )),
                },
            }
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let Column::Hash(o) = c {
                if let Some(h) = cell(i) {
                    d.comparisons.push(checked(&self.names[i], *o, h)?);
                }
            }
        }
        if let Some(n) = get(Column::FileName) {
            d.comparisons
                .push(checked(name(Column::FileName), Observable::FileName, n)?);
        }
        if d.comparisons.is_empty() {
            let cols: Vec<String> = self
                .columns
                .iter()
                .zip(&self.names)
                .filter(|(c, _)| {
                    matches!(
                        c,
                        Column::Value
                            | Column::HashValue
                            | Column::FileName
                            | Column::Hash(_)
                            | Column::Typed(_)
                    )
                })
                .map(|(_, n)| format!("`{n}`"))
                .collect();
            return Err(Problem::new(
                Code::MissingProperty,
                format!(
                    "the row has no observable: its {} column{} {} empty",
                    cols.join(", "),
                    if cols.len() == 1 { "" } else { "s" },
                    if cols.len() == 1 { "is" } else { "are" },
                ),
            ));
        }

        // A STIX id (`<type>--…`, checked by validation) is the indicator's id; any other `id` is
        // the publisher's own record number (URLhaus's `id`, ThreatFox's `ioc_id`), which would
        // collide across publishers: the id is then derived from the pattern as usual.
        d.id = get(Column::Id)
            .filter(|i| i.contains("--"))
            .map(str::to_owned);
        d.name = get(Column::Name).map(str::to_owned);
        // The description column, then the comment or port written beside the value.
        let description: Vec<String> = get(Column::Description)
            .map(str::to_owned)
            .into_iter()
            .chain(noted)
            .collect();
        d.description = (!description.is_empty()).then(|| description.join("; "));
        d.indicator_types = split_list(get(Column::ThreatTypes))
            .map(|t| t.to_ascii_lowercase())
            .collect();
        d.labels = split_list(get(Column::Tags)).map(str::to_owned).collect();
        d.confidence = get(Column::Confidence).map(|c| match c.parse::<i64>() {
            Ok(n) => Value::from(n),
            // Left as text for validation to reject with its usual message.
            Err(_) => Value::String(c.to_string()),
        });
        d.revoked = get(Column::Revoked).map(|r| match r.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => Value::String(r.to_string()),
        });
        d.valid_from = get(Column::ValidFrom).map(normalise_timestamp);
        d.valid_until = get(Column::ValidUntil).map(normalise_timestamp);
        if let Some(t) = get(Column::Tlp) {
            d.tlp = Some(t.parse::<Tlp>().map_err(|e| {
                Problem::new(
                    Code::InvalidProperty,
                    format!("column `{}`: {e}", name(Column::Tlp)),
                )
            })?);
        }
        Ok((d.into_stix(defaults, now), warnings))
    }

    fn has_file_columns(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c, Column::HashValue | Column::Hash(_) | Column::FileName))
    }

    fn has_typed_columns(&self) -> bool {
        self.columns.iter().any(|c| matches!(c, Column::Typed(_)))
    }
}

/// Type names that leave the kind of observable to the value (matched as
/// [`observable_for_type`] matches them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByValue {
    /// A bare `hash` (`filehash`, `file-hash`): a hash of any algorithm, typed by its length.
    Hash,
    /// `file` (Volexity's CSVs): a hash, else a file name.
    FileOrHash,
}

fn is_hash(r: &text::Reading) -> bool {
    matches!(
        r.observable,
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512
    )
}

fn by_value(type_name: &str) -> Option<ByValue> {
    let t = super::fold_type_name(type_name);
    match t.as_str() {
        "hash" | "filehash" | "file-hash" => Some(ByValue::Hash),
        "file" => Some(ByValue::FileOrHash),
        _ => None,
    }
}

/// A value cell read as a text-list line ([`text::read_value`]: refanged, typed by its shape,
/// domains checked against the Public Suffix List and lower-cased, file names kept apart, a
/// comment or port split off). `Err(None)`: it has no observable's shape (or is a `#` note);
/// `Err(Some(_))`: the shape of one but not a valid one, the message naming the column.
fn read_cell(column: &str, raw: &str) -> Result<text::Reading, Option<Problem>> {
    match text::read_value(raw) {
        text::ReadValue::Observable(r) => Ok(r),
        text::ReadValue::Refused(r) if r.code == Code::InvalidObservable => {
            Err(Some(in_column(r.problem(raw), column)))
        }
        text::ReadValue::Refused(_) | text::ReadValue::Empty => Err(None),
    }
}

/// Adds a reading's comparison to the draft, with a `normalised` warning (naming the column)
/// for what was changed; returns its comment and port, for the description.
fn take(
    column: &str,
    r: text::Reading,
    d: &mut Draft,
    warnings: &mut Vec<Problem>,
) -> Option<String> {
    if !r.changes.is_empty() {
        warnings.push(Problem::new(
            Code::Normalised,
            format!("column `{column}`: {}", r.changes.join("; ")),
        ));
    }
    let noted = r.description();
    d.comparisons.push(Comparison {
        observable: r.observable,
        value: r.value,
    });
    noted
}

/// MISP's composite `filename|md5`, `filename|sha1`, `filename|sha256`, `filename|sha512` types
/// (MISP `describeTypes.json`), whose value is `name|hash`: the hash type, the name and the hash.
fn file_and_hash<'a>(type_name: &'a str, value: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let (file, hash_type) = type_name.trim().split_once('|')?;
    if !file.eq_ignore_ascii_case("filename") {
        return None;
    }
    let (name, hash) = value.rsplit_once('|')?;
    let (name, hash) = (name.trim(), hash.trim());
    (!name.is_empty() && !hash.is_empty()).then_some((hash_type, name, hash))
}

/// A type-column problem, prefixed with the column it comes from.
fn in_column(p: Problem, column: &str) -> Problem {
    Problem::new(p.code, format!("column `{column}`: {}", p.message))
}

/// [`refang`] for a CSV cell, with a `normalised` warning naming the column.
fn refanged_in(column: &str, value: &str, warnings: &mut Vec<Problem>) -> String {
    let r = refang(value);
    if let Cow::Owned(new) = &r {
        warnings.push(Problem::new(
            Code::Normalised,
            format!("column `{column}`: refanged '{value}' to '{new}'"),
        ));
    }
    r.into_owned()
}

/// `1.2.3.4:443`, `[2001:db8::1]:443` or MISP's `1.2.3.4|443` → the address and the port, when
/// the address part is an IP address and the port a number.
fn split_port(value: &str) -> Option<(&str, &str)> {
    let (ip, port) = if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        (
            ip,
            after
                .strip_prefix(':')
                .or_else(|| after.strip_prefix('|'))?,
        )
    } else if let Some((ip, port)) = value.split_once('|') {
        (ip, port)
    } else {
        let (ip, port) = value.rsplit_once(':')?;
        // A bare IPv6 address has colons of its own: only IPv4 takes `:port` unbracketed.
        if ip.contains(':') {
            return None;
        }
        (ip, port)
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let ip_ok = ip.parse::<std::net::IpAddr>().is_ok();
    (port_ok && ip_ok).then_some((ip, port))
}

/// A cell whose type is known (from the type column `type_column`, or the cell's column's own
/// name) → its comparison.
/// What a type name says is taken for what the value is when the two obviously disagree the way
/// vendor files do: an `ip:port` (or a bare address) under `url` or an IP type is the address
/// (the port dropped: a STIX `ipv4-addr` has none), a bare host name under `url` is a domain
/// (Volexity's UTA0388 file lists C2s so), and an address under `hostname`/`domain` is the
/// address; each with a `normalised` warning.
fn typed_comparison(
    column: &str,
    type_column: &str,
    type_name: &str,
    value: &str,
    warnings: &mut Vec<Problem>,
) -> Result<Comparison, Problem> {
    let o = observable_for_type(type_name, value).map_err(|p| in_column(p, type_column))?;
    let ip_of = |v: &str| {
        if observable::is_ipv4_or_cidr(v) {
            Some(Observable::Ipv4)
        } else if observable::is_ipv6_or_cidr(v) {
            Some(Observable::Ipv6)
        } else {
            None
        }
    };
    let mut retyped = |o: Observable, v: &str, why: &str| {
        warnings.push(Problem::new(
            Code::Normalised,
            format!(
                "column `{column}`: '{}' (type '{}') {why}: taken as {} '{v}'",
                show(value),
                type_name.trim(),
                o.pattern_path()
            ),
        ));
        (o, v.to_string())
    };
    let (o, v) = match o {
        Observable::Ipv4 | Observable::Ipv6 => match (ip_of(value), split_port(value)) {
            (Some(ip), _) => (ip, value.to_string()),
            (None, Some((ip, _))) => match ip_of(ip) {
                Some(o) => retyped(o, ip, "is an address and port; the port is dropped"),
                None => (o, value.to_string()),
            },
            (None, None) => (o, value.to_string()),
        },
        Observable::Url if !value.contains("://") => {
            if let Some(ip) = ip_of(value) {
                retyped(ip, value, "is an address, not a URL")
            } else if let Some((ip, _)) = split_port(value) {
                match ip_of(ip) {
                    Some(o) => retyped(
                        o,
                        ip,
                        "is an address and port, not a URL; the port is dropped",
                    ),
                    None => (o, value.to_string()),
                }
            } else if !value.contains(['/', '?', '#', '@', ':'])
                && observable::check_domain(value).is_ok()
            {
                retyped(
                    Observable::Domain,
                    &value.to_ascii_lowercase(),
                    "is a host name, not a URL",
                )
            } else {
                (o, value.to_string())
            }
        }
        Observable::Domain => match ip_of(value) {
            Some(ip) => retyped(ip, value, "is an address, not a host name"),
            // Host names are case-insensitive: one id for `EVIL.example` and `evil.example`.
            None => (o, value.to_ascii_lowercase()),
        },
        _ => (o, value.to_string()),
    };
    checked(column, o, &v)
}

/// [`comparison`] with the message naming the column (formatted only when the value fails).
fn checked(column: &str, observable: Observable, v: &str) -> Result<Comparison, Problem> {
    let value = match observable {
        // Hashes are compared case-insensitively everywhere; lower case keeps ids stable.
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
            v.to_ascii_lowercase()
        }
        _ => v.to_string(),
    };
    match observable.check(&value) {
        Ok(()) => Ok(Comparison { observable, value }),
        Err(e) => Err(Problem::new(
            Code::InvalidObservable,
            format!("column `{column}`: {e}"),
        )),
    }
}

/// `a, b; c` → `a`, `b`, `c` (the portal template quotes multi-valued cells: `"demo, csv"`).
fn split_list(cell: Option<&str>) -> impl Iterator<Item = &str> {
    cell.into_iter()
        .flat_map(|c| c.split([',', ';']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A valid timestamp in STIX form (UTC, `Z`); anything else as written, for validation to reject
/// with its usual message.
fn normalise_timestamp(s: &str) -> String {
    parse_timestamp(s).map_or_else(|| s.to_string(), stix_timestamp)
}
