//! The internal model (a STIX 2.1 object as a JSON map) and local validation.
//!
//! [`parse_record`] turns a framed record's text into a JSON object; [`validate`] checks it
//! against what the Sentinel STIX upload would reject (docs/ARCHITECTURE.md, The model) and normalises harmless
//! deviations (confidence given as a string, an empty `lang`, STIX 2.0 objects without
//! `spec_version`), so bad records cost no API call and get a precise message. Validation
//! collects every problem of a record, not just the first, so one fix-and-resubmit round is
//! enough; the first problem is the most fundamental one (type, then id, then the rest).

pub mod observable;
pub mod pattern;

use crate::report::Code;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The STIX object types the Sentinel STIX objects upload API accepts (Microsoft Learn,
/// https://learn.microsoft.com/azure/sentinel/stix-objects-api: indicator, attack pattern,
/// threat actor, identity, relationship): what validation lets through for every target. The one
/// list the app, the tests and the tools read.
pub const STIX_OBJECTS_API_TYPES: &[&str] = &[
    "indicator",
    "attack-pattern",
    "threat-actor",
    "identity",
    "relationship",
];

/// The types of the targets that take indicators only: the legacy Upload Indicators API, Graph
/// tiIndicators and Defender for Endpoint indicators. Each refuses any other object itself
/// (`unsupported_type`), so it costs no request.
pub const INDICATOR_TYPES: &[&str] = &["indicator"];

/// One reason a record is rejected or flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub message: String,
}

impl Problem {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
        }
    }
}

/// What validation needs to know besides the object.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    /// "Now", for the `expired` warning.
    pub now: OffsetDateTime,
    /// The STIX object types the target accepts.
    pub accepted_types: &'static [&'static str],
}

/// A validated (and normalised) object, ready to upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub id: String,
    pub object: Map<String, Value>,
    pub warnings: Vec<Problem>,
    /// Set when the object was STIX 2.0 (no `spec_version`, or `"2.0"`) and was upgraded to 2.1:
    /// what was done, as a `normalised` warning. Kept apart from `warnings` because a 2.0 input
    /// upgrades every object the same way: the pipeline reports it once per input, not once per
    /// object.
    pub upgrade: Option<Problem>,
}

/// A rejected object: its id when it had a usable one, and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The record's `id` when it is a non-empty string (even a malformed one: it is what the
    /// user will search their file for).
    pub id: Option<String>,
    pub problems: Vec<Problem>,
}

/// Parses one raw record's text into a JSON object (`json_invalid` / `not_an_object`).
///
/// Positions in a `json_invalid` message (serde_json's "at line L column C") are relative to the
/// record's text: line 1 is the record's first line in the input.
pub fn parse_record(text: &str) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Problem::new(
            Code::NotAnObject,
            format!("the record is {}, not a JSON object", kind_name(&other)),
        )),
        Err(e) => Err(Problem::new(
            Code::JsonInvalid,
            format!("the record is not valid JSON: {e}"),
        )),
    }
}

/// The object types whose `name` the spec requires.
const NAMED_TYPES: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "identity",
    "infrastructure",
    "intrusion-set",
    "malware",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
];

/// Optional list properties common to STIX objects; an empty one is dropped (harmless).
const OPTIONAL_LISTS: &[&str] = &[
    "labels",
    "indicator_types",
    "external_references",
    "object_marking_refs",
    "kill_chain_phases",
    "granular_markings",
];

/// Validates and normalises one object for upload.
///
/// The properties validation reads are found in one pass over the object ([`View`]) instead of
/// one map lookup each (about thirty per indicator); the checks read the view, and what they
/// normalise is applied to the object afterwards ([`Edits`]), in the order the checks asked.
pub fn validate(mut object: Map<String, Value>, ctx: &ValidationContext) -> Result<Valid, Invalid> {
    let mut f = Findings::default();
    let (ty, id, upgrade, edits) = {
        let (view, absent) = View::of(&object);
        absent.warn(&mut f);
        let mut edits = Edits {
            nulls: absent.nulls,
            empty_lists: absent.empty_lists,
            ..Edits::default()
        };
        let ty = check_type(view.ty, ctx, &mut f);
        let id = check_id(&view, &mut f);
        let upgrade = check_spec_version(view.spec_version, &mut edits, &mut f);
        check_created_modified(&view, &mut f);
        check_common(&view, &mut edits, &mut f);
        // A STIX 2.0 indicator without `pattern_type` is given `stix` (upgrade_2_0) before its
        // pattern is checked.
        let stix_type;
        let pattern_type = match view.pattern_type {
            None if upgrade.is_some() && ty == Some("indicator") => {
                stix_type = Value::String("stix".into());
                Some(&stix_type)
            }
            given => given,
        };
        match ty {
            Some("indicator") => check_indicator(&view, pattern_type, ctx, &mut f),
            Some("relationship") => check_relationship(&view, &mut f),
            Some(t) if NAMED_TYPES.contains(&t) => {
                non_empty_string(view.name, "name", true, &mut f);
            }
            _ => {}
        }
        // The types whose 2.0 form upgrade_2_0 changes beyond spec_version.
        let upgraded_type = match ty {
            Some("indicator") => Some("indicator"),
            Some("threat-actor") => Some("threat-actor"),
            _ => None,
        };
        (upgraded_type, id.map(str::to_string), upgrade, edits)
    };
    edits.apply(&mut object);
    let upgrade = upgrade.map(|mut done| {
        if let Some(ty) = ty {
            upgrade_2_0(&mut object, ty, &mut done);
        }
        done
    });

    match id {
        Some(id) if f.problems.is_empty() => Ok(Valid {
            id,
            object,
            warnings: f.warnings,
            upgrade: upgrade.map(|done| {
                Problem::new(
                    Code::Normalised,
                    format!("STIX 2.0 object upgraded to 2.1: {}", done.join("; ")),
                )
            }),
        }),
        _ => Err(Invalid {
            id: match object.get("id") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            },
            problems: f.problems,
        }),
    }
}

/// The properties validation reads, borrowed from the object in one pass. A property set to
/// `null`, or an optional list that is empty, is absent here (and removed by [`Edits`]).
#[derive(Debug, Default)]
struct View<'a> {
    ty: Option<&'a Value>,
    id: Option<&'a Value>,
    spec_version: Option<&'a Value>,
    created: Option<&'a Value>,
    modified: Option<&'a Value>,
    confidence: Option<&'a Value>,
    lang: Option<&'a Value>,
    name: Option<&'a Value>,
    description: Option<&'a Value>,
    labels: Option<&'a Value>,
    revoked: Option<&'a Value>,
    created_by_ref: Option<&'a Value>,
    granular_markings: Option<&'a Value>,
    object_marking_refs: Option<&'a Value>,
    external_references: Option<&'a Value>,
    pattern: Option<&'a Value>,
    pattern_type: Option<&'a Value>,
    pattern_version: Option<&'a Value>,
    indicator_types: Option<&'a Value>,
    kill_chain_phases: Option<&'a Value>,
    valid_from: Option<&'a Value>,
    valid_until: Option<&'a Value>,
    relationship_type: Option<&'a Value>,
    source_ref: Option<&'a Value>,
    target_ref: Option<&'a Value>,
}

/// What the pass found to drop: properties set to `null`, and empty optional lists.
#[derive(Debug, Default)]
struct Absent {
    nulls: Vec<String>,
    empty_lists: Vec<&'static str>,
}

impl<'a> View<'a> {
    fn of(object: &'a Map<String, Value>) -> (Self, Absent) {
        let mut v = View::default();
        let mut absent = Absent::default();
        for (k, value) in object {
            // STIX forbids `null` property values and empty lists; both carry no information,
            // so they are removed rather than rejected (a required property removed this way
            // is then reported missing).
            match value {
                Value::Null => {
                    absent.nulls.push(k.clone());
                    continue;
                }
                Value::Array(a) if a.is_empty() => {
                    if let Some(key) = OPTIONAL_LISTS.iter().find(|key| **key == k) {
                        absent.empty_lists.push(key);
                        continue;
                    }
                }
                _ => {}
            }
            let slot = match k.as_str() {
                "type" => &mut v.ty,
                "id" => &mut v.id,
                "spec_version" => &mut v.spec_version,
                "created" => &mut v.created,
                "modified" => &mut v.modified,
                "confidence" => &mut v.confidence,
                "lang" => &mut v.lang,
                "name" => &mut v.name,
                "description" => &mut v.description,
                "labels" => &mut v.labels,
                "revoked" => &mut v.revoked,
                "created_by_ref" => &mut v.created_by_ref,
                "granular_markings" => &mut v.granular_markings,
                "object_marking_refs" => &mut v.object_marking_refs,
                "external_references" => &mut v.external_references,
                "pattern" => &mut v.pattern,
                "pattern_type" => &mut v.pattern_type,
                "pattern_version" => &mut v.pattern_version,
                "indicator_types" => &mut v.indicator_types,
                "kill_chain_phases" => &mut v.kill_chain_phases,
                "valid_from" => &mut v.valid_from,
                "valid_until" => &mut v.valid_until,
                "relationship_type" => &mut v.relationship_type,
                "source_ref" => &mut v.source_ref,
                "target_ref" => &mut v.target_ref,
                _ => continue,
            };
            *slot = Some(value);
        }
        // In OPTIONAL_LISTS order, as the messages always were.
        absent
            .empty_lists
            .sort_by_key(|key| OPTIONAL_LISTS.iter().position(|k| k == key));
        (v, absent)
    }
}

impl Absent {
    fn warn(&self, f: &mut Findings) {
        if !self.nulls.is_empty() {
            f.warn(
                Code::Normalised,
                format!("removed properties set to null: {}", self.nulls.join(", ")),
            );
        }
        for key in &self.empty_lists {
            f.warn(Code::Normalised, format!("removed empty list {key}"));
        }
    }
}

/// What validation normalises, applied to the object once the checks are done, in this order.
#[derive(Debug, Default)]
struct Edits {
    nulls: Vec<String>,
    empty_lists: Vec<&'static str>,
    spec_version: bool,
    confidence: Option<i64>,
    remove_lang: bool,
    split_granular_markings: bool,
}

impl Edits {
    fn apply(self, object: &mut Map<String, Value>) {
        for k in &self.nulls {
            object.remove(k);
        }
        for k in self.empty_lists {
            object.remove(k);
        }
        if self.spec_version {
            object.insert("spec_version".into(), Value::String("2.1".into()));
        }
        if let Some(n) = self.confidence {
            object.insert("confidence".into(), Value::from(n));
        }
        if self.remove_lang {
            object.remove("lang");
        }
        if self.split_granular_markings {
            split_granular_markings(object);
        }
    }
}

#[derive(Debug, Default)]
struct Findings {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Findings {
    fn problem(&mut self, code: Code, message: impl Into<String>) {
        self.problems.push(Problem::new(code, message));
    }

    fn warn(&mut self, code: Code, message: impl Into<String>) {
        self.warnings.push(Problem::new(code, message));
    }
}

/// What a JSON value is, as a message names it (`a string`, `an array`, ...).
pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value shown in a message: strings without their quotes, others as JSON, and both cut
/// short so a huge value cannot flood a report.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => show_str(s),
        other => show_str(&other.to_string()),
    }
}

fn show_str(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

fn check_type<'a>(
    ty: Option<&'a Value>,
    ctx: &ValidationContext,
    f: &mut Findings,
) -> Option<&'a str> {
    match ty {
        None => {
            f.problem(Code::MissingProperty, "type is required");
            None
        }
        Some(Value::String(t)) if ctx.accepted_types.contains(&t.as_str()) => Some(t),
        Some(Value::String(t)) => {
            f.problem(
                Code::UnsupportedType,
                format!(
                    "type '{t}' is not accepted by this target (accepted: {})",
                    ctx.accepted_types.join(", ")
                ),
            );
            None
        }
        Some(other) => {
            f.problem(
                Code::InvalidProperty,
                format!("type must be a string, found {}", kind_name(other)),
            );
            None
        }
    }
}

/// `<type>--<uuid>`: a STIX type name, two hyphens and a hyphenated hex UUID. The UUID's version
/// is not checked: producers use v4 and v5 and the service does not insist.
pub fn is_identifier(s: &str) -> bool {
    identifier_type(s).is_some()
}

/// The type part of a well-formed identifier.
pub fn identifier_type(s: &str) -> Option<&str> {
    // The UUID is the last 36 bytes, after "--"; the type before it has no "--" of its own.
    // (Positional rather than `split_once("--")`: ids are checked for every record and every
    // reference, and a substring search costs more than the whole check.)
    let split = s.len().checked_sub(UUID_LEN + 2)?;
    let (ty, rest) = (s.get(..split)?, &s.as_bytes()[split..]);
    let mut prev = 0u8;
    let type_ok = !ty.is_empty()
        && ty.bytes().all(|b| {
            let ok = b.is_ascii_lowercase() || b.is_ascii_digit() || (b == b'-' && prev != b'-');
            prev = b;
            ok
        })
        && !ty.ends_with('-');
    (type_ok && rest.starts_with(b"--") && is_hyphenated_uuid(&rest[2..])).then_some(ty)
}

const UUID_LEN: usize = 36;

fn is_hyphenated_uuid(s: &[u8]) -> bool {
    s.len() == UUID_LEN
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn check_id<'a>(view: &View<'a>, f: &mut Findings) -> Option<&'a str> {
    let id = match view.id {
        None => {
            f.problem(Code::MissingProperty, "id is required");
            return None;
        }
        Some(Value::String(id)) => id,
        Some(other) => {
            f.problem(
                Code::InvalidId,
                format!("id must be a string, found {}", kind_name(other)),
            );
            return None;
        }
    };
    let declared = view.ty.and_then(Value::as_str);
    let example = declared.filter(|t| !t.is_empty()).unwrap_or("indicator");
    match identifier_type(id) {
        None => {
            f.problem(
                Code::InvalidId,
                format!(
                    "id '{}' must be '<type>--<uuid>', e.g. {example}--6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                    show_str(id)
                ),
            );
            None
        }
        Some(prefix) if declared.is_some_and(|t| t != prefix) => {
            f.problem(
                Code::InvalidId,
                format!(
                    "id '{id}' must start with the object's type: '{}--'",
                    declared.unwrap_or_default()
                ),
            );
            None
        }
        Some(_) => Some(id),
    }
}

/// Upgrades a STIX 2.0 object's `spec_version` (absent or `"2.0"`) to 2.1; returns what was done
/// when it did (`None` for a 2.1 object).
fn check_spec_version(
    spec_version: Option<&Value>,
    edits: &mut Edits,
    f: &mut Findings,
) -> Option<Vec<String>> {
    let done = match spec_version {
        Some(Value::String(v)) if v == "2.1" => return None,
        None => "spec_version was absent, set to 2.1",
        Some(Value::String(v)) if v == "2.0" => "spec_version 2.0 set to 2.1",
        Some(other) => {
            f.problem(
                Code::InvalidProperty,
                format!("spec_version ({}) must be \"2.1\"", show(other)),
            );
            return None;
        }
    };
    edits.spec_version = true;
    Some(vec![done.to_string()])
}

/// The STIX 2.0 → 2.1 changes to the types Sentinel accepts, beyond `spec_version` (STIX 2.1
/// §1.6 "Changes from STIX 2.0"; OASIS `stix2-elevator`/`stix2` do the same):
/// - indicator: 2.0 had only STIX patterns and no `pattern_type` (set to `stix`); 2.0's required
///   `labels` held the indicator-type vocabulary, which 2.1 moved to `indicator_types` (copied
///   there; `labels` is kept, as 2.1 tags);
/// - threat-actor: likewise 2.0 `labels` → 2.1 `threat_actor_types`.
///
/// Only properties the object lacks are set, so a 2.1 object that merely omits `spec_version`
/// keeps what it has.
fn upgrade_2_0(object: &mut Map<String, Value>, ty: &str, done: &mut Vec<String>) {
    let types_key = match ty {
        "indicator" => {
            if !object.contains_key("pattern_type") {
                object.insert("pattern_type".into(), Value::String("stix".into()));
                done.push("pattern_type was absent, set to stix".into());
            }
            "indicator_types"
        }
        "threat-actor" => "threat_actor_types",
        _ => return,
    };
    if object.contains_key(types_key) {
        return;
    }
    if let Some(Value::Array(labels)) = object.get("labels") {
        if !labels.is_empty() && labels.iter().all(Value::is_string) {
            let labels = labels.clone();
            object.insert(types_key.into(), Value::Array(labels));
            done.push(format!("labels copied to {types_key}"));
        }
    }
}

fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A timestamp property: `Some` when present and valid; problems recorded otherwise.
fn timestamp<'a>(
    value: Option<&'a Value>,
    key: &str,
    required: bool,
    f: &mut Findings,
) -> Option<(OffsetDateTime, &'a str)> {
    match value {
        None if required => {
            f.problem(
                Code::MissingProperty,
                format!("{key} is required (an RFC 3339 timestamp such as 2024-01-01T00:00:00Z)"),
            );
            None
        }
        None => None,
        Some(Value::String(s)) => match parse_timestamp(s) {
            Some(t) => Some((t, s.as_str())),
            None => {
                f.problem(
                    Code::InvalidTimestamp,
                    format!(
                        "{key} ({}) is not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z",
                        show_str(s)
                    ),
                );
                None
            }
        },
        Some(other) => {
            f.problem(
                Code::InvalidTimestamp,
                format!(
                    "{key} must be an RFC 3339 timestamp string, found {} ({})",
                    kind_name(other),
                    show(other)
                ),
            );
            None
        }
    }
}

fn check_created_modified(view: &View<'_>, f: &mut Findings) {
    let created = timestamp(view.created, "created", true, f);
    let modified = timestamp(view.modified, "modified", true, f);
    if let (Some((c, cs)), Some((m, ms))) = (created, modified) {
        if m < c {
            f.problem(
                Code::InvalidProperty,
                format!("modified ({ms}) must not be earlier than created ({cs})"),
            );
        }
    }
}

/// A string property; `required` ones must also be non-empty.
fn non_empty_string<'a>(
    value: Option<&'a Value>,
    key: &str,
    required: bool,
    f: &mut Findings,
) -> Option<&'a str> {
    match value {
        None if required => {
            f.problem(Code::MissingProperty, format!("{key} is required"));
            None
        }
        None => None,
        Some(Value::String(s)) if required && s.trim().is_empty() => {
            f.problem(Code::InvalidProperty, format!("{key} must not be empty"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            f.problem(
                Code::InvalidProperty,
                format!("{key} must be a string, found {}", kind_name(other)),
            );
            None
        }
    }
}

fn string_list(value: Option<&Value>, key: &str, f: &mut Findings) {
    match value {
        None => {}
        Some(Value::Array(items)) => {
            if let Some((i, v)) = items.iter().enumerate().find(|(_, v)| !v.is_string()) {
                f.problem(
                    Code::InvalidProperty,
                    format!("{key}[{i}] must be a string, found {}", kind_name(v)),
                );
            }
        }
        Some(other) => f.problem(
            Code::InvalidProperty,
            format!(
                "{key} must be an array of strings, found {}",
                kind_name(other)
            ),
        ),
    }
}

fn identifier_list(value: Option<&Value>, key: &str, f: &mut Findings) {
    match value {
        None => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                if !v.as_str().is_some_and(is_identifier) {
                    f.problem(
                        Code::InvalidProperty,
                        format!(
                            "{key}[{i}] ({}) must be an identifier '<type>--<uuid>'",
                            show(v)
                        ),
                    );
                    return;
                }
            }
        }
        Some(other) => f.problem(
            Code::InvalidProperty,
            format!(
                "{key} must be an array of identifiers, found {}",
                kind_name(other)
            ),
        ),
    }
}

fn reference(value: Option<&Value>, key: &str, required: bool, f: &mut Findings) {
    match value {
        None if required => f.problem(Code::MissingProperty, format!("{key} is required")),
        None => {}
        Some(v) if v.as_str().is_some_and(is_identifier) => {}
        Some(v) => f.problem(
            Code::InvalidProperty,
            format!("{key} ({}) must be an identifier '<type>--<uuid>'", show(v)),
        ),
    }
}

/// A list of objects each of which must carry the given string properties.
fn object_list(value: Option<&Value>, key: &str, required: &[&str], f: &mut Findings) {
    match value {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(entry) = item.as_object() else {
                    f.problem(
                        Code::InvalidProperty,
                        format!("{key}[{i}] must be an object, found {}", kind_name(item)),
                    );
                    return;
                };
                for prop in required {
                    if !entry.get(*prop).is_some_and(Value::is_string) {
                        f.problem(
                            Code::InvalidProperty,
                            format!("{key}[{i}].{prop} is required and must be a string"),
                        );
                        return;
                    }
                }
            }
        }
        Some(other) => f.problem(
            Code::InvalidProperty,
            format!(
                "{key} must be an array of objects, found {}",
                kind_name(other)
            ),
        ),
    }
}

fn check_common(view: &View<'_>, edits: &mut Edits, f: &mut Findings) {
    edits.confidence = check_confidence(view.confidence, f);
    match view.lang {
        Some(Value::String(s)) if s.is_empty() => {
            // Microsoft's own JSON import template carries `"lang": ""`.
            edits.remove_lang = true;
            f.warn(Code::Normalised, "removed empty lang");
        }
        Some(Value::String(_)) | None => {}
        Some(other) => f.problem(
            Code::InvalidProperty,
            format!("lang must be a string, found {}", kind_name(other)),
        ),
    }
    non_empty_string(view.name, "name", false, f);
    non_empty_string(view.description, "description", false, f);
    string_list(view.labels, "labels", f);
    if let Some(v) = view.revoked {
        if !v.is_boolean() {
            f.problem(
                Code::InvalidProperty,
                format!("revoked must be true or false, found {}", kind_name(v)),
            );
        }
    }
    reference(view.created_by_ref, "created_by_ref", false, f);
    edits.split_granular_markings = check_granular_markings(view.granular_markings, f);
    identifier_list(view.object_marking_refs, "object_marking_refs", f);
    object_list(
        view.external_references,
        "external_references",
        &["source_name"],
        f,
    );
}

/// A granular marking may carry `lang` or `marking_ref`, never both (STIX 2.1 CS02 §7.2.3,
/// Granular Markings: "If the marking_ref property is present, this property [lang] MUST NOT be
/// present"), and OASIS `stix2` refuses an object that has both. Microsoft's own sample bodies
/// (the stix-objects-api page) put both in one marking; Sentinel takes them. Such a marking says
/// two things about the same selectors, so it is split into two markings with those selectors,
/// one for each: nothing is lost and every STIX tool reads the result.
fn check_granular_markings(markings: Option<&Value>, f: &mut Findings) -> bool {
    let Some(Value::Array(markings)) = markings else {
        return false;
    };
    let split = markings.iter().filter(|m| has_lang_and_ref(m)).count();
    if split == 0 {
        return false;
    }
    f.warn(
        Code::Normalised,
        format!(
            "{split} granular marking(s) had both lang and marking_ref, which STIX 2.1 does not allow in one marking: each was split into two markings with the same selectors"
        ),
    );
    true
}

fn has_lang_and_ref(m: &Value) -> bool {
    m.get("lang").is_some() && m.get("marking_ref").is_some()
}

/// Splits each granular marking that has both `lang` and `marking_ref` (see
/// [`check_granular_markings`]).
fn split_granular_markings(object: &mut Map<String, Value>) {
    let Some(Value::Array(markings)) = object.get_mut("granular_markings") else {
        return;
    };
    let mut out = Vec::with_capacity(markings.len() + 1);
    for m in markings.drain(..) {
        match m {
            Value::Object(mut with_lang)
                if with_lang.contains_key("lang") && with_lang.contains_key("marking_ref") =>
            {
                let mut with_ref = with_lang.clone();
                with_lang.remove("marking_ref");
                with_ref.remove("lang");
                out.push(Value::Object(with_lang));
                out.push(Value::Object(with_ref));
            }
            other => out.push(other),
        }
    }
    *markings = out;
}

/// `confidence`: an integer 0–100. A number written as a string (`"95"`, as in Microsoft's import
/// template) or as `95.0` is normalised to the integer.
/// Returns the integer to store when the value was normalised.
fn check_confidence(value: Option<&Value>, f: &mut Findings) -> Option<i64> {
    let value = value?;
    let (number, normalised_from) = match value {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => (Some(i), None),
            (None, Some(x)) if x.fract() == 0.0 && (0.0..=100.0).contains(&x) => {
                (Some(x as i64), Some(n.to_string()))
            }
            _ => (None, None),
        },
        Value::String(s) => (s.trim().parse::<i64>().ok(), Some(format!("\"{s}\""))),
        _ => (None, None),
    };
    match number {
        Some(n) if (0..=100).contains(&n) => {
            if let Some(from) = normalised_from {
                f.warn(
                    Code::Normalised,
                    format!("confidence {from} normalised to the integer {n}"),
                );
                return Some(n);
            }
            None
        }
        _ => {
            f.problem(
                Code::ConfidenceOutOfRange,
                format!(
                    "confidence ({}) must be an integer from 0 to 100",
                    show(value)
                ),
            );
            None
        }
    }
}

fn check_indicator(
    view: &View<'_>,
    pattern_type: Option<&Value>,
    ctx: &ValidationContext,
    f: &mut Findings,
) {
    let pattern = non_empty_string(view.pattern, "pattern", true, f);
    let pattern_type = non_empty_string(pattern_type, "pattern_type", true, f);
    if let (Some(pattern), Some("stix")) = (pattern, pattern_type) {
        // One parse both checks the pattern and finds its single comparison, if it is one.
        match pattern::check_single(pattern) {
            Err(e) => f.problem(
                Code::PatternInvalid,
                format!("pattern is not a valid STIX pattern: {e}"),
            ),
            Ok(Some((path, value))) => {
                if let Some(Err(e)) = observable::check_path_value(&path, &value) {
                    f.problem(Code::InvalidObservable, format!("pattern: {e}"));
                }
            }
            Ok(None) => {}
        }
    }
    non_empty_string(view.pattern_version, "pattern_version", false, f);
    string_list(view.indicator_types, "indicator_types", f);
    object_list(
        view.kill_chain_phases,
        "kill_chain_phases",
        &["kill_chain_name", "phase_name"],
        f,
    );

    let from = timestamp(view.valid_from, "valid_from", true, f);
    let until = timestamp(view.valid_until, "valid_until", false, f);
    if let Some((until, until_s)) = until {
        match from {
            Some((from, from_s)) if until <= from => f.problem(
                Code::InvalidValidity,
                format!("valid_until ({until_s}) must be after valid_from ({from_s})"),
            ),
            _ if until < ctx.now => f.warn(
                Code::Expired,
                format!(
                    "valid_until ({until_s}) is in the past: the indicator is uploaded but already expired"
                ),
            ),
            _ => {}
        }
    }
}

fn check_relationship(view: &View<'_>, f: &mut Findings) {
    non_empty_string(view.relationship_type, "relationship_type", true, f);
    reference(view.source_ref, "source_ref", true, f);
    reference(view.target_ref, "target_ref", true, f);
}

#[cfg(test)]
mod tests;
