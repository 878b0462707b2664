//! Microsoft Graph `tiIndicator` ↔ STIX indicator, and the tiIndicator validator.
//!
//! Field mapping (docs/ARCHITECTURE.md, The model), the same both ways so a round trip keeps every mapped field:
//!
//! | tiIndicator | STIX indicator |
//! |---|---|
//! | `networkIPv4`, `networkIPv6`, `networkCidrBlock`, `domainName`, `url`, `emailSenderAddress`, `fileHashType`+`fileHashValue`, `fileName` (and, inbound only, the source/destination network fields and `emailRecipient`) | `pattern` |
//! | `expirationDateTime` | `valid_until` |
//! | `threatType` | `indicator_types` (lower-cased) |
//! | `tags` | `labels` |
//! | `killChain` | `kill_chain_phases` (`lockheed-martin-cyber-kill-chain`) |
//! | `tlpLevel` | `object_marking_refs` (standard TLP ids) |
//! | `confidence`, `description` | the same |
//! | `isActive` | `revoked` (negated) |
//! | `externalId` | `external_references[]` entry `microsoft-graph-tiindicator`, and the id |
//!
//! A tiIndicator has no start time, so its `valid_from` is the ingestion time and an
//! `expirationDateTime` already past is rejected. Outbound, `action` and `targetProduct` come from
//! settings, `description` is cut to Graph's 100 characters, and a pattern that is not exactly one
//! observable comparison is rejected: a tiIndicator holds one observable.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{derived_id, parse_timestamp, stix_timestamp, Comparison, Defaults, Draft, Tlp};
use crate::report::Code;
use crate::stix::observable::{self, Observable};
use crate::stix::Problem;

/// Graph's `threatType` values.
pub const THREAT_TYPES: [&str; 11] = [
    "Botnet",
    "C2",
    "CryptoMining",
    "Darknet",
    "DDoS",
    "MaliciousUrl",
    "Malware",
    "Phishing",
    "Proxy",
    "PUA",
    "WatchList",
];
/// Graph's `action` values.
pub const ACTIONS: [&str; 4] = ["unknown", "allow", "block", "alert"];
/// Graph's `tlpLevel` values.
pub const TLP_LEVELS: [&str; 5] = ["unknown", "white", "green", "amber", "red"];
/// Graph's `targetProduct` values.
pub const TARGET_PRODUCTS: [&str; 2] = ["Azure Sentinel", "Microsoft Defender ATP"];
/// Graph's `fileHashType` values.
pub const FILE_HASH_TYPES: [&str; 9] = [
    "unknown",
    "sha1",
    "sha256",
    "md5",
    "authenticodeHash256",
    "lsHash",
    "ctph",
    "peSha1",
    "peSha256",
];
/// Graph's `diamondModel` values.
pub const DIAMOND_MODEL: [&str; 5] = [
    "unknown",
    "adversary",
    "capability",
    "infrastructure",
    "victim",
];
/// Graph's `killChain` values and the Lockheed Martin phase names STIX uses for them.
pub const KILL_CHAIN: [(&str, &str); 7] = [
    ("Reconnaissance", "reconnaissance"),
    ("Weaponization", "weaponization"),
    ("Delivery", "delivery"),
    ("Exploitation", "exploitation"),
    ("Installation", "installation"),
    ("C2", "command-and-control"),
    ("Actions", "actions-on-objectives"),
];
pub const LOCKHEED_KILL_CHAIN: &str = "lockheed-martin-cyber-kill-chain";
/// `source_name` of the `external_references` entry that carries a tiIndicator's `externalId`.
pub const EXTERNAL_ID_SOURCE: &str = "microsoft-graph-tiindicator";
/// Graph's limit on `description`.
pub const MAX_DESCRIPTION_CHARS: usize = 100;

/// What a tiIndicator observable field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Ipv4,
    Ipv6,
    /// An IPv4 or IPv6 CIDR block.
    Cidr,
    Domain,
    Url,
    Email,
    FileName,
    /// `fileHashValue`, whose algorithm `fileHashType` names.
    FileHash,
}

/// The tiIndicator fields that hold an observable.
const OBSERVABLE_FIELDS: [(&str, FieldKind); 15] = [
    ("networkIPv4", FieldKind::Ipv4),
    ("networkDestinationIPv4", FieldKind::Ipv4),
    ("networkSourceIPv4", FieldKind::Ipv4),
    ("networkIPv6", FieldKind::Ipv6),
    ("networkDestinationIPv6", FieldKind::Ipv6),
    ("networkSourceIPv6", FieldKind::Ipv6),
    ("networkCidrBlock", FieldKind::Cidr),
    ("networkDestinationCidrBlock", FieldKind::Cidr),
    ("networkSourceCidrBlock", FieldKind::Cidr),
    ("domainName", FieldKind::Domain),
    ("url", FieldKind::Url),
    ("emailSenderAddress", FieldKind::Email),
    ("emailRecipient", FieldKind::Email),
    ("fileName", FieldKind::FileName),
    ("fileHashValue", FieldKind::FileHash),
];

/// Fields whose presence (without a STIX `type`) marks an object as a tiIndicator.
const TI_MARKERS: [&str; 6] = [
    "targetProduct",
    "threatType",
    "expirationDateTime",
    "tlpLevel",
    "externalId",
    "fileHashType",
];

/// Fields the inbound mapping uses or that are meaningless outside Graph (dropped silently);
/// any other non-empty field is reported as not carried over.
const MAPPED_OR_IGNORED: [&str; 15] = [
    "expirationDateTime",
    "threatType",
    "tags",
    "killChain",
    "tlpLevel",
    "confidence",
    "description",
    "isActive",
    "externalId",
    "fileHashType",
    "action",
    "targetProduct",
    "id",
    "azureTenantId",
    "@odata.type",
];

/// `true` when `object` is a Graph tiIndicator rather than a STIX object: it has no `type` (every
/// STIX object has one) and has a tiIndicator field.
pub fn is_ti_indicator(object: &Map<String, Value>) -> bool {
    !object.contains_key("type")
        && object.keys().any(|k| {
            TI_MARKERS.contains(&k.as_str()) || OBSERVABLE_FIELDS.iter().any(|(f, _)| f == k)
        })
}

/// An optional string field: `Ok(None)` when absent, null or empty.
fn opt_str<'a>(ti: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Problem> {
    match ti.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(Problem::new(
            Code::InvalidProperty,
            format!(
                "{key} must be a string, found {}",
                crate::stix::kind_name(other)
            ),
        )),
    }
}

fn opt_str_list(ti: &Map<String, Value>, key: &str) -> Result<Vec<String>, Problem> {
    match ti.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(Problem::new(
                    Code::InvalidProperty,
                    format!(
                        "{key}[{i}] must be a string, found {}",
                        crate::stix::kind_name(other)
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(Problem::new(
            Code::InvalidProperty,
            format!(
                "{key} must be an array of strings, found {}",
                crate::stix::kind_name(other)
            ),
        )),
    }
}

fn checked(field: &str, o: Observable, value: &str) -> Result<Comparison, Problem> {
    o.check(value)
        .map_err(|e| Problem::new(Code::InvalidObservable, format!("{field}: {e}")))?;
    Ok(Comparison {
        observable: o,
        value: value.to_string(),
    })
}

/// The STIX hash for a Graph `fileHashType`; `unknown` (or absent) is inferred from the length.
fn hash_observable(hash_type: Option<&str>, value: &str) -> Result<Observable, Problem> {
    let by_length = || match value.len() {
        32 => Some(Observable::Md5),
        40 => Some(Observable::Sha1),
        64 => Some(Observable::Sha256),
        _ => None,
    };
    let t = hash_type.map(str::to_ascii_lowercase);
    match t.as_deref() {
        Some("md5") => Ok(Observable::Md5),
        Some("sha1") => Ok(Observable::Sha1),
        Some("sha256") => Ok(Observable::Sha256),
        None | Some("unknown") => by_length().ok_or_else(|| {
            Problem::new(
                Code::InvalidObservable,
                format!(
                    "fileHashValue '{value}' is not an MD5, SHA-1 or SHA-256 hash (32, 40 or 64 hex digits), and no fileHashType says what it is"
                ),
            )
        }),
        Some(other) => Err(Problem::new(
            Code::NotConvertible,
            format!(
                "fileHashType '{other}' has no STIX equivalent ti-ingest converts (accepted: md5, sha1, sha256)"
            ),
        )),
    }
}

/// Converts a Graph tiIndicator into a STIX indicator; warnings say what was normalised or not
/// carried over. The result still goes through [`crate::stix::validate`].
pub fn ti_to_stix(
    ti: &Map<String, Value>,
    defaults: &Defaults,
    now: OffsetDateTime,
) -> Result<(Map<String, Value>, Vec<Problem>), Problem> {
    let mut warnings = Vec::new();
    let mut d = Draft::default();

    for (field, kind) in OBSERVABLE_FIELDS {
        if kind == FieldKind::FileHash {
            continue; // needs fileHashType: below
        }
        let Some(value) = opt_str(ti, field)? else {
            continue;
        };
        let o = match kind {
            FieldKind::Ipv4 => Observable::Ipv4,
            FieldKind::Ipv6 => Observable::Ipv6,
            FieldKind::Cidr if value.contains(':') => Observable::Ipv6,
            FieldKind::Cidr => Observable::Ipv4,
            FieldKind::Domain => Observable::Domain,
            FieldKind::Url => Observable::Url,
            FieldKind::Email => Observable::Email,
            FieldKind::FileName | FieldKind::FileHash => Observable::FileName,
        };
        d.comparisons.push(checked(field, o, value)?);
    }
    if let Some(hash) = opt_str(ti, "fileHashValue")? {
        let o = hash_observable(opt_str(ti, "fileHashType")?, hash)?;
        // File hashes are compared case-insensitively by everyone; lower case keeps ids stable.
        d.comparisons
            .push(checked("fileHashValue", o, &hash.to_ascii_lowercase())?);
    }
    if d.comparisons.is_empty() {
        return Err(Problem::new(
            Code::MissingProperty,
            "the tiIndicator has no observable: one of networkIPv4, networkIPv6, networkCidrBlock, domainName, url, emailSenderAddress, fileHashValue, fileName (or their source/destination variants) is required",
        ));
    }

    d.valid_from = Some(stix_timestamp(now));
    if let Some(exp) = opt_str(ti, "expirationDateTime")? {
        let Some(t) = parse_timestamp(exp) else {
            return Err(Problem::new(
                Code::InvalidTimestamp,
                format!(
                    "expirationDateTime ({exp}) is not an RFC 3339 timestamp such as 2026-01-01T00:00:00Z"
                ),
            ));
        };
        if t <= now {
            return Err(Problem::new(
                Code::InvalidValidity,
                format!(
                    "expirationDateTime ({exp}) is in the past: a tiIndicator has no start time, so it becomes valid when ingested ({}) and would expire before it starts",
                    stix_timestamp(now)
                ),
            ));
        }
        d.valid_until = Some(stix_timestamp(t));
    }
    if let Some(t) = opt_str(ti, "threatType")? {
        let canonical = THREAT_TYPES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(t))
            .copied()
            .unwrap_or(t);
        d.indicator_types = vec![canonical.to_ascii_lowercase()];
    }
    d.labels = opt_str_list(ti, "tags")?;
    for phase in opt_str_list(ti, "killChain")? {
        let name = KILL_CHAIN
            .iter()
            .find(|(g, _)| g.eq_ignore_ascii_case(&phase))
            .map(|(_, s)| s.to_string())
            .unwrap_or_else(|| phase.to_ascii_lowercase());
        d.kill_chain_phases.push(serde_json::json!({
            "kill_chain_name": LOCKHEED_KILL_CHAIN,
            "phase_name": name,
        }));
    }
    if let Some(level) = opt_str(ti, "tlpLevel")? {
        if !level.eq_ignore_ascii_case("unknown") {
            let tlp = level
                .parse::<Tlp>()
                .map_err(|e| Problem::new(Code::InvalidProperty, format!("tlpLevel: {e}")))?;
            d.tlp = Some(tlp);
        }
    }
    match ti.get("confidence") {
        None | Some(Value::Null) => {}
        Some(v) => d.confidence = Some(v.clone()),
    }
    d.description = opt_str(ti, "description")?.map(str::to_owned);
    match ti.get("isActive") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(active)) => d.revoked = Some(Value::Bool(!active)),
        Some(other) => {
            return Err(Problem::new(
                Code::InvalidProperty,
                format!(
                    "isActive must be true or false, found {}",
                    crate::stix::kind_name(other)
                ),
            ))
        }
    }
    if let Some(ext) = opt_str(ti, "externalId")? {
        d.id_name = Some(format!("tiIndicator externalId {ext}"));
        d.external_references.push(serde_json::json!({
            "source_name": EXTERNAL_ID_SOURCE,
            "external_id": ext,
        }));
    }

    let dropped: Vec<&str> = ti
        .iter()
        .filter(|(k, v)| {
            !MAPPED_OR_IGNORED.contains(&k.as_str())
                && !OBSERVABLE_FIELDS.iter().any(|(f, _)| f == k)
                && !is_empty_value(v)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    if !dropped.is_empty() {
        warnings.push(Problem::new(
            Code::Normalised,
            format!(
                "tiIndicator fields with no STIX equivalent were not carried over: {}",
                dropped.join(", ")
            ),
        ));
    }
    Ok((d.into_stix(defaults, now), warnings))
}

/// Null, `""`, `[]`, `{}`, `0` and `false` carry nothing worth a warning (Graph's own examples
/// send `"severity": 0` and empty lists).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// STIX indicator → Graph tiIndicator for the `graph` target. See
/// [`stix_to_ti_with_warnings`] for the warnings (a truncated description).
pub fn stix_to_ti(
    object: &Map<String, Value>,
    action: &str,
    target_product: &str,
) -> Result<Map<String, Value>, Problem> {
    stix_to_ti_with_warnings(object, action, target_product).map(|(ti, _)| ti)
}

/// STIX indicator → Graph tiIndicator, with a `value_shortened` warning when the description was
/// cut to Graph's 100 characters.
pub fn stix_to_ti_with_warnings(
    object: &Map<String, Value>,
    action: &str,
    target_product: &str,
) -> Result<(Map<String, Value>, Vec<Problem>), Problem> {
    let mut warnings = Vec::new();
    let not_convertible = |m: String| Problem::new(Code::NotConvertible, m);
    let (path, value) = super::single_observable(object, "Graph tiIndicator", "observable")?;
    let observable = Observable::from_pattern_path(&path).ok_or_else(|| {
        not_convertible(format!(
            "the pattern's object path {path} has no tiIndicator field (convertible: ipv4-addr:value, ipv6-addr:value, domain-name:value, url:value, email-addr:value, file:hashes.MD5/'SHA-1'/'SHA-256', file:name)"
        ))
    })?;

    let mut ti = Map::new();
    ti.insert("action".into(), action.into());
    ti.insert("targetProduct".into(), target_product.into());
    match observable {
        Observable::Ipv4 | Observable::Ipv6 if value.contains('/') => {
            ti.insert("networkCidrBlock".into(), value.clone().into());
        }
        Observable::Ipv4 => {
            ti.insert("networkIPv4".into(), value.clone().into());
        }
        Observable::Ipv6 => {
            ti.insert("networkIPv6".into(), value.clone().into());
        }
        Observable::Domain => {
            ti.insert("domainName".into(), value.clone().into());
        }
        Observable::Url => {
            ti.insert("url".into(), value.clone().into());
        }
        Observable::Email => {
            ti.insert("emailSenderAddress".into(), value.clone().into());
        }
        Observable::FileName => {
            ti.insert("fileName".into(), value.clone().into());
        }
        Observable::Md5 | Observable::Sha1 | Observable::Sha256 => {
            let t = match observable {
                Observable::Md5 => "md5",
                Observable::Sha1 => "sha1",
                _ => "sha256",
            };
            ti.insert("fileHashType".into(), t.into());
            ti.insert("fileHashValue".into(), value.clone().into());
        }
        Observable::Sha512 => return Err(not_convertible(
            "Graph has no SHA-512 fileHashType, so a SHA-512 indicator cannot become a tiIndicator"
                .into(),
        )),
    }

    let until = object
        .get("valid_until")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            not_convertible(
                "valid_until is absent (the indicator never expires) but a Graph tiIndicator requires expirationDateTime: set valid_until, or TI_DEFAULT_VALID_DAYS above 0".into(),
            )
        })?;
    ti.insert("expirationDateTime".into(), until.into());

    let types: Vec<&str> = object
        .get("indicator_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ti.insert("threatType".into(), threat_type(&types).into());

    let tlp = object
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .filter_map(Value::as_str)
                .find_map(Tlp::from_marking_ref)
        });
    ti.insert("tlpLevel".into(), tlp.map_or("unknown", Tlp::name).into());

    // Graph requires a description; the name, else the observable, stands in for a missing one.
    let description = object
        .get("description")
        .and_then(Value::as_str)
        .or_else(|| object.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| value.clone());
    let count = description.chars().count();
    let description = if count > MAX_DESCRIPTION_CHARS {
        warnings.push(Problem::new(
            Code::ValueShortened,
            format!(
                "description cut from {count} to {MAX_DESCRIPTION_CHARS} characters, Graph's limit"
            ),
        ));
        description.chars().take(MAX_DESCRIPTION_CHARS).collect()
    } else {
        description
    };
    ti.insert("description".into(), description.into());

    if let Some(c) = object.get("confidence") {
        ti.insert("confidence".into(), c.clone());
    }
    if let Some(labels) = object.get("labels").and_then(Value::as_array) {
        ti.insert("tags".into(), Value::Array(labels.clone()));
    }
    let phases: Vec<Value> = object
        .get("kill_chain_phases")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|p| p["kill_chain_name"] == LOCKHEED_KILL_CHAIN)
                .filter_map(|p| p["phase_name"].as_str())
                .map(|name| {
                    KILL_CHAIN
                        .iter()
                        .find(|(_, s)| *s == name)
                        .map_or_else(|| name.to_string(), |(g, _)| g.to_string())
                        .into()
                })
                .collect()
        })
        .unwrap_or_default();
    if !phases.is_empty() {
        ti.insert("killChain".into(), phases.into());
    }
    if let Some(Value::Bool(revoked)) = object.get("revoked") {
        ti.insert("isActive".into(), Value::Bool(!revoked));
    }
    if let Some(refs) = object.get("external_references").and_then(Value::as_array) {
        let ours = refs
            .iter()
            .find(|r| r["source_name"] == EXTERNAL_ID_SOURCE)
            .or_else(|| refs.iter().find(|r| r["external_id"].is_string()));
        if let Some(ext) = ours.and_then(|r| r["external_id"].as_str()) {
            ti.insert("externalId".into(), ext.into());
        }
    }
    Ok((ti, warnings))
}

/// Graph's `threatType` for STIX `indicator_types`: a Graph value itself (any case) wins, then
/// the nearest STIX vocabulary entry; `WatchList` (watch, take no automatic action) otherwise.
fn threat_type(types: &[&str]) -> &'static str {
    for t in types {
        if let Some(g) = THREAT_TYPES.iter().find(|g| g.eq_ignore_ascii_case(t)) {
            return g;
        }
    }
    for t in types {
        match *t {
            "malicious-activity" => return "Malware",
            "anonymization" => return "Proxy",
            "compromised" => return "Botnet",
            _ => {}
        }
    }
    "WatchList"
}

/// Checks a tiIndicator about to be sent to Graph: required fields, enums, ranges and observable
/// values (the Graph `tiIndicator` resource). Every problem is reported, most fundamental first.
pub fn validate_ti(ti: &Map<String, Value>) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut p = |code: Code, m: String| problems.push(Problem::new(code, m));

    let enum_field = |key: &str,
                      allowed: &[&str],
                      required: bool,
                      p: &mut dyn FnMut(Code, String)| match ti.get(key) {
        None | Some(Value::Null) if required => p(
            Code::MissingProperty,
            format!("{key} is required (one of {})", allowed.join(", ")),
        ),
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(v) => p(
            Code::InvalidProperty,
            format!("{key} ({v}) must be one of {}", allowed.join(", ")),
        ),
    };
    enum_field("action", &ACTIONS, true, &mut p);
    enum_field("targetProduct", &TARGET_PRODUCTS, true, &mut p);
    enum_field("threatType", &THREAT_TYPES, true, &mut p);
    enum_field("tlpLevel", &TLP_LEVELS, true, &mut p);
    enum_field("fileHashType", &FILE_HASH_TYPES, false, &mut p);
    enum_field("diamondModel", &DIAMOND_MODEL, false, &mut p);

    match ti.get("description") {
        None | Some(Value::Null) => p(Code::MissingProperty, "description is required".into()),
        Some(Value::String(s)) if s.trim().is_empty() => p(
            Code::InvalidProperty,
            "description must not be empty".into(),
        ),
        Some(Value::String(s)) if s.chars().count() > MAX_DESCRIPTION_CHARS => p(
            Code::InvalidProperty,
            format!(
                "description is {} characters; Graph accepts at most {MAX_DESCRIPTION_CHARS}",
                s.chars().count()
            ),
        ),
        Some(Value::String(_)) => {}
        Some(v) => p(
            Code::InvalidProperty,
            format!(
                "description must be a string, found {}",
                crate::stix::kind_name(v)
            ),
        ),
    }
    match ti.get("expirationDateTime") {
        None | Some(Value::Null) => p(
            Code::MissingProperty,
            "expirationDateTime is required".into(),
        ),
        Some(Value::String(s)) if parse_timestamp(s).is_some() => {}
        Some(v) => p(
            Code::InvalidTimestamp,
            format!("expirationDateTime ({v}) is not an RFC 3339 timestamp"),
        ),
    }
    let int_range = |key: &str, max: i64, p: &mut dyn FnMut(Code, String)| match ti.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_i64().is_some_and(|i| (0..=max).contains(&i)) => {}
        Some(v) => p(
            if key == "confidence" {
                Code::ConfidenceOutOfRange
            } else {
                Code::InvalidProperty
            },
            format!("{key} ({v}) must be an integer from 0 to {max}"),
        ),
    };
    int_range("confidence", 100, &mut p);
    int_range("severity", 5, &mut p);
    if let Some(Value::Array(items)) = ti.get("killChain") {
        for item in items {
            if !item
                .as_str()
                .is_some_and(|s| KILL_CHAIN.iter().any(|(g, _)| *g == s))
            {
                let allowed: Vec<&str> = KILL_CHAIN.iter().map(|(g, _)| *g).collect();
                p(
                    Code::InvalidProperty,
                    format!(
                        "killChain value {item} must be one of {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    let mut observables = 0;
    for (field, kind) in OBSERVABLE_FIELDS {
        let Some(v) = ti.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        observables += 1;
        let Some(s) = v.as_str() else {
            p(
                Code::InvalidProperty,
                format!(
                    "{field} must be a string, found {}",
                    crate::stix::kind_name(v)
                ),
            );
            continue;
        };
        let result = match kind {
            FieldKind::Ipv4 => Observable::Ipv4.check(s),
            FieldKind::Ipv6 => Observable::Ipv6.check(s),
            FieldKind::Cidr if observable::is_ipv4_or_cidr(s) || observable::is_ipv6_or_cidr(s) => {
                Ok(())
            }
            FieldKind::Cidr => Err(format!("'{s}' is not an IPv4 or IPv6 CIDR block")),
            FieldKind::Domain => Observable::Domain.check(s),
            FieldKind::Url => Observable::Url.check(s),
            FieldKind::Email => Observable::Email.check(s),
            FieldKind::FileHash => {
                let t = ti.get("fileHashType").and_then(Value::as_str);
                match t {
                    None => {
                        p(
                            Code::MissingProperty,
                            "fileHashType is required with fileHashValue".into(),
                        );
                        Ok(())
                    }
                    Some("md5") => Observable::Md5.check(s),
                    Some("sha1") => Observable::Sha1.check(s),
                    Some("sha256") => Observable::Sha256.check(s),
                    Some(_) => Ok(()),
                }
            }
            FieldKind::FileName => Observable::FileName.check(s),
        };
        if let Err(e) = result {
            p(Code::InvalidObservable, format!("{field}: {e}"));
        }
    }
    if observables == 0 {
        p(
            Code::MissingProperty,
            "a tiIndicator needs an observable field (networkIPv4, domainName, url, fileHashValue, ...)".into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The id [`ti_to_stix`] gives a tiIndicator with this `externalId`.
pub fn id_for_external_id(external_id: &str) -> String {
    derived_id(&format!("tiIndicator externalId {external_id}"))
}
