//! Conversions into and out of the internal model, a STIX 2.1 object (docs/ARCHITECTURE.md, The model).
//!
//! - [`graph`]: Microsoft Graph tiIndicator → STIX indicator (inputs), STIX indicator →
//!   tiIndicator (the `graph` target), and the tiIndicator validator.
//! - [`rows`]: CSV rows and plain-text lines → STIX indicator: observable type names and aliases,
//!   type inference, refanging.
//! - [`text`]: plain-text IOC lists read as vendors publish them (comments, ports, defanged
//!   forms, the Public Suffix List), and the value reader CSV cells without a type share.
//!
//! Everything here builds one kind of object, a STIX indicator with a single-observable pattern,
//! through [`Draft`], so the defaults (ids, timestamps, validity, confidence, TLP) are applied the
//! same way whatever the input format. The result is then checked by [`crate::stix::validate`]
//! like any STIX input: conversion only reports what validation could not see (an unknown type
//! name, an observable field without a value, an expiry in the past for a tiIndicator).

pub mod defender;
pub mod graph;
pub mod rows;
pub mod text;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::stix::observable::Observable;
use crate::stix::pattern;

pub use graph::{is_ti_indicator, stix_to_ti, stix_to_ti_with_warnings, ti_to_stix, validate_ti};

/// The namespace of every uuidv5 id ti-ingest derives (`indicator--<uuidv5(NAMESPACE, name)>`).
///
/// Chosen once at random for ti-ingest. It must never change: ids derived from it are how a
/// re-dropped file updates its indicators instead of duplicating them.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_7a4e_2d1b_4c39_8e6f_a1b2_c3d4_e5f6);

/// Settings defaults for what non-STIX inputs leave out (`TI_DEFAULT_*`, docs/SETTINGS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Days from ingestion (or from a later `valid_from`) to `valid_until`; `0` leaves
    /// `valid_until` absent, i.e. the indicator never expires.
    pub valid_days: u32,
    /// `confidence`, 0–100.
    pub confidence: u8,
    pub tlp: Tlp,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            valid_days: 90,
            confidence: 50,
            tlp: Tlp::Green,
        }
    }
}

/// Traffic Light Protocol level, carried in STIX as a reference to the standard TLP 1.0
/// marking-definition objects (STIX 2.1 §7.2.1.4), whose ids are fixed by the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tlp {
    White,
    Green,
    Amber,
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 4] = [Tlp::White, Tlp::Green, Tlp::Amber, Tlp::Red];

    /// The lower-case name, as Graph's `tlpLevel` and the portal CSV write it.
    pub fn name(self) -> &'static str {
        match self {
            Tlp::White => "white",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::Red => "red",
        }
    }

    /// The id of the standard TLP marking-definition object.
    pub fn marking_ref(self) -> &'static str {
        match self {
            Tlp::White => "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            Tlp::Green => "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            Tlp::Amber => "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            Tlp::Red => "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        }
    }

    pub fn from_marking_ref(id: &str) -> Option<Tlp> {
        Tlp::ALL.into_iter().find(|t| t.marking_ref() == id)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tlp {
    type Err = String;

    /// `white`, `green`, `amber`, `red`, case-insensitive, with or without a `TLP:` prefix;
    /// TLP 2.0's `clear` is `white` and `amber+strict` is `amber` (the closest 1.0 levels).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("tlp:").unwrap_or(&t);
        match t {
            "white" | "clear" => Ok(Tlp::White),
            "green" => Ok(Tlp::Green),
            "amber" | "amber+strict" => Ok(Tlp::Amber),
            "red" => Ok(Tlp::Red),
            _ => Err(format!(
                "'{s}' is not a TLP level (accepted: white, green, amber, red)"
            )),
        }
    }
}

/// Formats a timestamp as STIX wants it: RFC 3339 in UTC with a `Z`, to the millisecond
/// (`2026-12-02T15:55:18.734Z`).
///
/// STIX 2.1 §3.2 (Timestamp): "`created` and `modified` properties MUST be represented with at
/// least millisecond precision"; OASIS `stix2` 3.0.2 reads at most six fractional digits (Python's
/// `%f`), so the nine digits `time` writes by default made it refuse every converted object.
/// Millisecond precision (exactly three digits) is what the specification's examples and the
/// `stix2` library itself write.
pub fn stix_timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(UtcOffset::UTC)
        .format(FORMAT)
        .expect("UTC timestamps always format")
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

/// `indicator--<uuidv5(NAMESPACE, name)>`.
pub fn derived_id(name: &str) -> String {
    format!("indicator--{}", Uuid::new_v5(&NAMESPACE, name.as_bytes()))
}

/// One observable comparison of an indicator being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub observable: Observable,
    pub value: String,
}

/// Builds a pattern from comparisons: the comparisons on `file` (hashes, name) form one
/// observation, every other comparison its own, and observations are joined with `OR` (a
/// tiIndicator or a CSV row lists alternatives to watch for, not a sequence that must all be
/// seen). Within the file observation, several hashes of the same file are alternatives (`OR`),
/// and a file name narrows them (`AND`), since a name alone matches far too much.
pub(crate) fn build_pattern(comparisons: &[Comparison]) -> String {
    let is_hash = |o: Observable| {
        matches!(
            o,
            Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512
        )
    };
    let single = |c: &Comparison| {
        let p = pattern::build_single(c.observable.pattern_path(), &c.value);
        // `[x = 'v']` without its brackets, to join inside one observation.
        p[1..p.len() - 1].to_string()
    };
    let hashes: Vec<String> = comparisons
        .iter()
        .filter(|c| is_hash(c.observable))
        .map(single)
        .collect();
    let names: Vec<String> = comparisons
        .iter()
        .filter(|c| c.observable == Observable::FileName)
        .map(single)
        .collect();
    let mut observations = Vec::new();
    if !hashes.is_empty() || !names.is_empty() {
        let mut parts = Vec::new();
        match hashes.len() {
            0 => {}
            1 => parts.push(hashes[0].clone()),
            _ if names.is_empty() => parts.push(hashes.join(" OR ")),
            _ => parts.push(format!("({})", hashes.join(" OR "))),
        }
        parts.extend(names);
        observations.push(format!("[{}]", parts.join(" AND ")));
    }
    for c in comparisons {
        if !is_hash(c.observable) && c.observable != Observable::FileName {
            observations.push(format!("[{}]", single(c)));
        }
    }
    observations.join(" OR ")
}

/// The name of an indicator whose input gave none: its observable values, joined with ` / `
/// when it has several (a file's hashes, a tiIndicator's several fields), cut to 250 characters.
fn default_name(comparisons: &[Comparison]) -> Option<String> {
    const MAX: usize = 250;
    let joined = comparisons
        .iter()
        .map(|c| c.value.as_str())
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    if joined.is_empty() {
        return None;
    }
    if joined.chars().count() > MAX {
        let cut: String = joined.chars().take(MAX - 1).collect();
        return Some(format!("{cut}…"));
    }
    Some(joined)
}

/// A STIX indicator under construction, from any non-STIX input.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub id: Option<String>,
    /// The name from which the id is derived when `id` is absent (else the pattern).
    pub id_name: Option<String>,
    pub comparisons: Vec<Comparison>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub indicator_types: Vec<String>,
    pub labels: Vec<String>,
    pub confidence: Option<Value>,
    pub revoked: Option<Value>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub tlp: Option<Tlp>,
    pub kill_chain_phases: Vec<Value>,
    pub external_references: Vec<Value>,
}

impl Draft {
    /// The STIX indicator, with the defaults applied (docs/ARCHITECTURE.md, The model): id = uuidv5 of the pattern
    /// (or of `id_name`); `created`/`modified` = now; `valid_from` = now when absent; missing
    /// `valid_until` = the later of `valid_from` and now, plus `valid_days` (none when 0);
    /// missing confidence and TLP from the settings.
    pub fn into_stix(self, defaults: &Defaults, now: OffsetDateTime) -> Map<String, Value> {
        let pattern = build_pattern(&self.comparisons);
        // Sentinel's threat-intelligence list shows an indicator's name first: the input's name,
        // else the observable value(s) it watches for.
        let name = self
            .name
            .filter(|n| !n.trim().is_empty())
            .or_else(|| default_name(&self.comparisons));
        let id = self.id.unwrap_or_else(|| match &self.id_name {
            Some(n) => derived_id(n),
            None => derived_id(&pattern),
        });
        let now_s = stix_timestamp(now);
        let valid_from = self.valid_from.unwrap_or_else(|| now_s.clone());
        let valid_until = self.valid_until.or_else(|| {
            if defaults.valid_days == 0 {
                return None;
            }
            // An unparsable valid_from is left for validation to report; no default then.
            let from = parse_timestamp(&valid_from)?;
            Some(stix_timestamp(
                from.max(now) + Duration::days(i64::from(defaults.valid_days)),
            ))
        });

        let mut o = Map::new();
        o.insert("type".into(), "indicator".into());
        o.insert("spec_version".into(), "2.1".into());
        o.insert("id".into(), id.into());
        o.insert("created".into(), now_s.clone().into());
        o.insert("modified".into(), now_s.into());
        if let Some(n) = name {
            o.insert("name".into(), n.into());
        }
        if let Some(d) = self.description.filter(|d| !d.trim().is_empty()) {
            o.insert("description".into(), d.into());
        }
        if !self.indicator_types.is_empty() {
            o.insert("indicator_types".into(), self.indicator_types.into());
        }
        o.insert("pattern".into(), pattern.into());
        o.insert("pattern_type".into(), "stix".into());
        o.insert("valid_from".into(), valid_from.into());
        if let Some(u) = valid_until {
            o.insert("valid_until".into(), u.into());
        }
        if !self.kill_chain_phases.is_empty() {
            o.insert("kill_chain_phases".into(), self.kill_chain_phases.into());
        }
        if !self.labels.is_empty() {
            o.insert("labels".into(), self.labels.into());
        }
        o.insert(
            "confidence".into(),
            self.confidence
                .unwrap_or_else(|| Value::from(defaults.confidence)),
        );
        if let Some(r) = self.revoked {
            o.insert("revoked".into(), r);
        }
        if !self.external_references.is_empty() {
            o.insert(
                "external_references".into(),
                self.external_references.into(),
            );
        }
        let tlp = self.tlp.unwrap_or(defaults.tlp);
        o.insert(
            "object_marking_refs".into(),
            Value::Array(vec![tlp.marking_ref().into()]),
        );
        o
    }
}

/// A value as a message quotes it: at most 100 characters, then `…`.
pub(crate) fn show(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() > MAX {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A type name as CSV headers and vendors write it (`IP_Address`, `Domain Name`, `FileHash-SHA256`),
/// folded for lookup: trimmed, lowercase, `_` and spaces as `-`.
pub(crate) fn fold_type_name(type_name: &str) -> String {
    type_name
        .trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The one observable comparison of a STIX indicator that a one-value target (`target`: "Graph
/// tiIndicator", "Defender indicator", which "holds exactly one `holds`") can take: its object
/// path and value; or why there is none (not an indicator, not a STIX pattern, not one
/// comparison).
pub(crate) fn single_observable(
    object: &Map<String, Value>,
    target: &str,
    holds: &str,
) -> Result<(String, String), crate::stix::Problem> {
    let not_convertible =
        |m: String| crate::stix::Problem::new(crate::report::Code::NotConvertible, m);
    match object.get("type").and_then(Value::as_str) {
        Some("indicator") => {}
        Some(t) => {
            return Err(crate::stix::Problem::new(
                crate::report::Code::UnsupportedType,
                format!("a '{t}' object cannot become a {target}: only indicators can"),
            ))
        }
        None => {
            return Err(crate::stix::Problem::new(
                crate::report::Code::MissingProperty,
                "type is required",
            ))
        }
    }
    match object.get("pattern_type").and_then(Value::as_str) {
        None | Some("stix") => {}
        Some(t) => {
            return Err(not_convertible(format!(
                "pattern_type '{t}' cannot become a {target}: only STIX patterns can"
            )))
        }
    }
    let p = object
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            crate::stix::Problem::new(crate::report::Code::MissingProperty, "pattern is required")
        })?;
    let (path, value) = pattern::single_comparison(p).ok_or_else(|| {
        not_convertible(format!(
            "pattern {p} is not one observable comparison such as [ipv4-addr:value = '198.51.100.7']: a {target} holds exactly one {holds}"
        ))
    })?;
    Ok((path, value))
}

#[cfg(test)]
mod tests;
