//! CSV rows and plain-text lines → STIX indicator.
//!
//! Observable type names (the CSV `type`/`observableType` column) are the STIX names and the
//! aliases people write, case-insensitive; a text line's type is inferred from its value. Values
//! analysts paste from reports are often defanged (`hxxp://`, `example[.]com`): they are refanged,
//! with a `normalised` warning so the change is visible in the report.
//!
//! CSV columns (header names are matched case-insensitively, ignoring spaces, `_` and `-`):
//! - Microsoft Sentinel's "Import using a file" templates: `threatTypes, tags, name, description,
//!   confidence, revoked, validFrom, validUntil, tlpLevel, severity, observableType,
//!   observableValue` ("All other indicator types") and the "File indicators" variant, whose
//!   observable columns are file hashes and a file name: `fileHashType` + `fileHashValue`, or one
//!   column per algorithm (`MD5`, `SHA1`, `SHA256`, `SHA512`), and `fileName`.
//! - The short form `type, value`, with the same optional columns (and `id`).
//!
//! Other columns are ignored, as is `severity` (STIX indicators have no severity).

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{parse_timestamp, stix_timestamp, Comparison, Defaults, Draft, Tlp};
use crate::report::Code;
use crate::stix::observable::Observable;
use crate::stix::Problem;

/// The type names accepted in a CSV `type` column, for messages.
pub const TYPE_NAMES: &str = "ipv4-addr, ipv6-addr, domain-name, url, email-addr, file, or ip, ipv4, ipv6, cidr, domain, hostname, email, md5, sha1, sha256, sha512, filename";

/// The observable a CSV type name and value stand for (the value decides between IPv4 and IPv6
/// for `ip`/`cidr`, and between a hash and a name for `file`).
pub fn observable_for_type(type_name: &str, value: &str) -> Result<Observable, Problem> {
    let t = type_name.trim().to_ascii_lowercase();
    let o = match t.as_str() {
        "ipv4-addr" | "ipv4" | "ipv4-address" => Observable::Ipv4,
        "ipv6-addr" | "ipv6" | "ipv6-address" => Observable::Ipv6,
        "ip" | "ip-addr" | "ip-address" | "cidr" if value.contains(':') => Observable::Ipv6,
        "ip" | "ip-addr" | "ip-address" | "cidr" => Observable::Ipv4,
        "domain-name" | "domain" | "hostname" | "host-name" | "fqdn" => Observable::Domain,
        "url" | "uri" => Observable::Url,
        "email-addr" | "email" | "e-mail" | "email-address" => Observable::Email,
        "md5" => Observable::Md5,
        "sha1" | "sha-1" => Observable::Sha1,
        "sha256" | "sha-256" => Observable::Sha256,
        "sha512" | "sha-512" => Observable::Sha512,
        "filename" | "file-name" | "file:name" => Observable::FileName,
        "file" => hash_by_length(value).unwrap_or(Observable::FileName),
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
pub use super::text::{infer_observable, refang};

/// A checked comparison (hashes lower-cased); `what` names the value in the message.
fn comparison(what: &str, observable: Observable, value: &str) -> Result<Comparison, Problem> {
    let value = match observable {
        // Hashes are compared case-insensitively everywhere; lower case keeps ids stable.
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
            value.to_ascii_lowercase()
        }
        _ => value.to_string(),
    };
    observable
        .check(&value)
        .map_err(|e| Problem::new(Code::InvalidObservable, format!("{what}: {e}")))?;
    Ok(Comparison { observable, value })
}

fn refanged<'a>(value: &'a str, warnings: &mut Vec<Problem>) -> Cow<'a, str> {
    let r = refang(value);
    if let Cow::Owned(new) = &r {
        warnings.push(Problem::new(
            Code::Normalised,
            format!("refanged '{value}' to '{new}'"),
        ));
    }
    r
}

fn show(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() > MAX {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    } else {
        s.to_string()
    }
}

/// What a CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Type,
    Value,
    HashType,
    HashValue,
    Hash(Observable),
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

fn column(name: &str) -> Column {
    let n: String = name
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    match n.as_str() {
        "type" | "observabletype" | "indicatortype" | "ioctype" => Column::Type,
        "value" | "observablevalue" | "indicatorvalue" | "iocvalue" => Column::Value,
        "filehashtype" | "hashtype" => Column::HashType,
        "filehashvalue" | "hashvalue" | "hash" => Column::HashValue,
        "md5" | "filehashmd5" | "hashmd5" => Column::Hash(Observable::Md5),
        "sha1" | "filehashsha1" | "hashsha1" => Column::Hash(Observable::Sha1),
        "sha256" | "filehashsha256" | "hashsha256" => Column::Hash(Observable::Sha256),
        "sha512" | "filehashsha512" | "hashsha512" => Column::Hash(Observable::Sha512),
        "filename" => Column::FileName,
        "threattypes" | "threattype" | "indicatortypes" => Column::ThreatTypes,
        "tags" | "labels" => Column::Tags,
        "name" => Column::Name,
        "description" => Column::Description,
        "confidence" => Column::Confidence,
        "revoked" => Column::Revoked,
        "validfrom" => Column::ValidFrom,
        "validuntil" => Column::ValidUntil,
        "tlplevel" | "tlp" => Column::Tlp,
        "id" => Column::Id,
        _ => Column::Ignored,
    }
}

/// A recognised CSV header: what each column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    columns: Vec<Column>,
}

impl CsvHeader {
    /// Recognises a header row: it must name an observable — `type` and `value` (or
    /// `observableType` and `observableValue`), or file hash / file name columns.
    pub fn recognise<S: AsRef<str>>(fields: &[S]) -> Option<CsvHeader> {
        let columns: Vec<Column> = fields.iter().map(|f| column(f.as_ref())).collect();
        let has = |c: Column| columns.contains(&c);
        let observable = (has(Column::Type) && has(Column::Value))
            || has(Column::HashValue)
            || has(Column::FileName)
            || columns.iter().any(|c| matches!(c, Column::Hash(_)));
        observable.then_some(CsvHeader { columns })
    }

    /// The 0-based positions of the first two header fields that name the same column (`type`
    /// twice, or `type` and `observableType`): each row could only keep one of their values.
    /// Columns that are ignored anyway may repeat.
    pub fn duplicate<S: AsRef<str>>(fields: &[S]) -> Option<(usize, usize)> {
        // At most one entry per kind of column, so this stays linear in the number of fields.
        let mut seen: Vec<(Column, usize)> = Vec::new();
        for (j, f) in fields.iter().enumerate() {
            let c = column(f.as_ref());
            if c == Column::Ignored {
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

    /// Converts one data row (fields in header order; missing trailing fields are empty).
    pub fn row_to_stix<S: AsRef<str>>(
        &self,
        fields: &[S],
        defaults: &Defaults,
        now: OffsetDateTime,
    ) -> Result<(Map<String, Value>, Vec<Problem>), Problem> {
        let mut warnings = Vec::new();
        let get = |c: Column| -> Option<&str> {
            self.columns
                .iter()
                .position(|&k| k == c)
                .and_then(|i| fields.get(i))
                .map(|s| s.as_ref().trim())
                .filter(|s| !s.is_empty())
        };
        let mut d = Draft::default();

        let value = get(Column::Value).map(|v| refanged(v, &mut warnings).into_owned());
        match (get(Column::Type), value) {
            (Some(t), Some(v)) => {
                let o = observable_for_type(t, &v)?;
                d.comparisons.push(comparison("observableValue", o, &v)?);
            }
            (None, Some(v)) => {
                let o = infer_observable(&v).ok_or_else(|| {
                    Problem::new(
                        Code::UnknownObservableType,
                        format!(
                            "the type column is empty and '{}' is not a recognisable observable (accepted types: {TYPE_NAMES})",
                            show(&v)
                        ),
                    )
                })?;
                d.comparisons.push(comparison("observableValue", o, &v)?);
            }
            (Some(t), None) if !self.has_file_columns() => {
                return Err(Problem::new(
                    Code::MissingProperty,
                    format!("observableValue (the value column) is empty for type '{t}'"),
                ))
            }
            _ => {}
        }
        if let Some(h) = get(Column::HashValue) {
            let o = match get(Column::HashType) {
                Some(t) => observable_for_type(t, h)?,
                None => hash_by_length(h).ok_or_else(|| {
                    Problem::new(
                        Code::InvalidObservable,
                        format!("fileHashValue '{h}' is not an MD5, SHA-1, SHA-256 or SHA-512 hash and no fileHashType says what it is"),
                    )
                })?,
            };
            d.comparisons.push(comparison("fileHashValue", o, h)?);
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let Column::Hash(o) = c {
                if let Some(h) = fields
                    .get(i)
                    .map(|s| s.as_ref().trim())
                    .filter(|s| !s.is_empty())
                {
                    d.comparisons.push(comparison(o.pattern_path(), *o, h)?);
                }
            }
        }
        if let Some(n) = get(Column::FileName) {
            d.comparisons
                .push(comparison("fileName", Observable::FileName, n)?);
        }
        if d.comparisons.is_empty() {
            return Err(Problem::new(
                Code::MissingProperty,
                "the row has no observable: observableType and observableValue (or type and value, or a file hash or file name) are required",
            ));
        }

        d.id = get(Column::Id).map(str::to_owned);
        d.name = get(Column::Name).map(str::to_owned);
        d.description = get(Column::Description).map(str::to_owned);
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
            d.tlp = Some(
                t.parse::<Tlp>()
                    .map_err(|e| Problem::new(Code::InvalidProperty, format!("tlpLevel: {e}")))?,
            );
        }
        Ok((d.into_stix(defaults, now), warnings))
    }

    fn has_file_columns(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c, Column::HashValue | Column::Hash(_) | Column::FileName))
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
