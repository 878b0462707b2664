//! The feeds configuration (`TI_FEEDS_CONFIG`, docs/PULL.md): a JSON document in the app's
//! storage listing TAXII 2.1 collections and HTTPS feeds, parsed into typed feeds.
//!
//! One bad feed must not stop the others, so the document is parsed in two layers: the
//! document itself (JSON, a `feeds` array, no inline secrets anywhere — any of those stops
//! the whole run), then each feed on its own (a feed that does not parse becomes
//! [`FeedEntry::Invalid`], which is reported like a failed pull).
//!
//! Credentials are references only: the managed identity, an app setting (which in Azure is
//! normally a Key Vault reference resolved by the platform), or a Key Vault secret name. A
//! document holding anything that looks like a secret value is refused as a whole, so a
//! secret pasted into it is noticed instead of being used.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use ti_core::convert::{Defaults, Tlp};
use ti_core::input::InputFormat;
use url::Url;

use crate::settings::Env;
use crate::upload::target::TargetKind;

/// Where the feeds configuration lives when `TI_FEEDS_CONFIG` is not set.
pub const DEFAULT_FEEDS_CONFIG: &str = "indicator-config/feeds.json";

/// TAXII `limit` when a feed does not set `pageSize`.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// Objects one run pulls from a TAXII collection at most; the rest waits for the next run, so
/// a first pull of a large collection advances its bookmark run by run instead of never
/// finishing within one invocation (10,000 objects is one identity's upload minute).
pub const DEFAULT_MAX_OBJECTS_PER_RUN: u64 = 10_000;

/// The settings `PullFeeds` and `ti-ingest pull` read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSettings {
    /// `TI_FEEDS_CONFIG`: the container and blob path of the feeds configuration.
    pub config_container: String,
    pub config_blob: String,
}

impl PullSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let raw = env.get("TI_FEEDS_CONFIG").unwrap_or(DEFAULT_FEEDS_CONFIG);
        let (container, blob) = raw.split_once('/').unwrap_or((raw, ""));
        let container_ok = (3..=63).contains(&container.len())
            && container
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !container_ok || blob.is_empty() {
            bail!(
                "setting TI_FEEDS_CONFIG={raw:?}: expected <container>/<blob path>, e.g. {DEFAULT_FEEDS_CONFIG}"
            );
        }
        Ok(PullSettings {
            config_container: container.to_string(),
            config_blob: blob.to_string(),
        })
    }

    /// `container/path`, for messages.
    pub fn location(&self) -> String {
        format!("{}/{}", self.config_container, self.config_blob)
    }
}

/// How a feed authenticates. Never a secret value: only where to get one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// A bearer token of the app's managed identity for `scope`.
    ManagedIdentity {
        scope: String,
    },
    /// HTTP basic authentication; the password is the value of an app setting.
    Basic {
        username: String,
        password_setting: String,
    },
    /// A request header (an API key) whose value is an app setting.
    Header {
        name: String,
        value_setting: String,
    },
    /// A Key Vault secret by name: a valid reference, but not reachable from here yet.
    KeyVaultSecret {
        name: String,
    },
}

/// Per-feed defaults; unset fields fall back to the app's `TI_DEFAULT_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedDefaults {
    pub confidence: Option<u8>,
    pub tlp: Option<Tlp>,
    pub valid_days: Option<u32>,
    /// Added to every valid object's `labels` (by the pipeline: `RunContext::labels`), for
    /// every kind of feed.
    pub labels: Vec<String>,
}

impl FeedDefaults {
    /// The pipeline's defaults for this feed's non-STIX records.
    pub fn apply_to(&self, app: Defaults) -> Defaults {
        Defaults {
            valid_days: self.valid_days.unwrap_or(app.valid_days),
            confidence: self.confidence.unwrap_or(app.confidence),
            tlp: self.tlp.unwrap_or(app.tlp),
        }
    }
}

/// A TAXII 2.1 collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiFeed {
    /// The API root, always ending with `/`.
    pub api_root: Url,
    pub collection: String,
    /// Where the first run starts (`added_after`) when there is no bookmark yet.
    pub added_after: Option<String>,
    /// `match[...]` filters, sent as given.
    pub filters: BTreeMap<String, String>,
    pub page_size: u32,
    pub max_objects_per_run: u64,
}

impl TaxiiFeed {
    /// `{api_root}collections/{id}/objects/`.
    pub fn objects_url(&self) -> Result<Url> {
        self.api_root
            .join(&format!("collections/{}/objects/", self.collection))
            .context("building the collection's objects URL")
    }
}

/// A file served over HTTPS in any supported input format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsFeed {
    pub url: Url,
    /// Forced input format; detected from the content when `None`.
    pub format: Option<InputFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedSource {
    Taxii(TaxiiFeed),
    Https(HttpsFeed),
}

impl FeedSource {
    pub fn kind(&self) -> &'static str {
        match self {
            FeedSource::Taxii(_) => "taxii",
            FeedSource::Https(_) => "https",
        }
    }

    /// What the saved state was made for: a feed pointed somewhere else (or filtered
    /// differently) starts afresh instead of reusing another source's bookmark or ETag.
    pub fn identity(&self) -> String {
        match self {
            FeedSource::Taxii(t) => {
                let filters: Vec<String> =
                    t.filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{}#{}?{}", t.api_root, t.collection, filters.join("&"))
            }
            FeedSource::Https(h) => h.url.to_string(),
        }
    }
}

/// One validated feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub name: String,
    pub source: FeedSource,
    pub auth: Auth,
    pub defaults: FeedDefaults,
    /// The targets this feed's records go to; `None` = the app's `TI_TARGET`.
    pub targets: Option<Vec<TargetKind>>,
    /// Bound on the bytes pulled in one run; `None` = `TI_MAX_INPUT_BYTES`.
    pub max_bytes: Option<u64>,
    /// The feed is a list (`list`: HTTPS feeds by default, TAXII when set): each run reads
    /// it whole, indicators it stops listing are retired and those it keeps listing are
    /// refreshed (src/lifecycle).
    pub list: bool,
}

/// A feed as the configuration lists it: usable, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEntry {
    Valid(Box<Feed>),
    Disabled { name: String },
    Invalid { name: String, error: String },
}

impl FeedEntry {
    pub fn name(&self) -> &str {
        match self {
            FeedEntry::Valid(f) => &f.name,
            FeedEntry::Disabled { name } | FeedEntry::Invalid { name, .. } => name,
        }
    }
}

/// Field names that hold secret values; compared lower-case with `_` and `-` removed.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "accesstoken",
    "bearertoken",
    "apikey",
    "secret",
    "clientsecret",
    "accountkey",
    "sharedkey",
    "sastoken",
    "authorization",
    "cookie",
];

/// Query parameters that carry credentials in a URL.
const SECRET_QUERY_PARAMS: &[&str] = &[
    "apikey",
    "key",
    "token",
    "accesstoken",
    "secret",
    "password",
    "sig",
    "code",
];

fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every path in the document whose field name says it holds a secret value.
fn inline_secrets(v: &Value, path: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{path}.{k}");
                if SECRET_FIELDS.contains(&normalised(k).as_str()) {
                    found.push(here.clone());
                }
                inline_secrets(child, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                inline_secrets(child, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    feeds: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFeed {
    name: String,
    kind: String,
    #[serde(default)]
    enabled: Option<bool>,
    // taxii
    #[serde(default)]
    api_root: Option<String>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    added_after: Option<String>,
    #[serde(default)]
    filters: BTreeMap<String, String>,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    max_objects_per_run: Option<u64>,
    // https
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    format: Option<String>,
    // both
    #[serde(default)]
    auth: Option<Value>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    max_bytes: Option<u64>,
    #[serde(default)]
    list: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    confidence: Option<u8>,
    #[serde(default)]
    tlp: Option<String>,
    #[serde(default)]
    valid_days: Option<u32>,
    #[serde(default)]
    labels: Vec<String>,
}

/// Parses the whole document. `Err` only for problems of the document itself (not JSON, no
/// `feeds` array, inline secrets, duplicate names); a bad feed is a [`FeedEntry::Invalid`].
pub fn parse_document(text: &[u8]) -> Result<Vec<FeedEntry>> {
    let doc: Value = serde_json::from_slice(text).context("the feeds configuration is not JSON")?;
    let mut secrets = Vec::new();
    inline_secrets(&doc, "$", &mut secrets);
    if !secrets.is_empty() {
        bail!(
            "the feeds configuration holds secret values inline ({}); refer to them instead: \
             \"auth\": {{\"basic\": {{\"username\": .., \"passwordSetting\": \"APP_SETTING\"}}}}, \
             {{\"header\": {{\"name\": .., \"valueSetting\": \"APP_SETTING\"}}}} or {{\"managedIdentity\": {{\"scope\": ..}}}}, \
             and remove the secret from the document",
            secrets.join(", ")
        );
    }
    let raw: RawDocument = serde_json::from_value(doc)
        .context("the feeds configuration must be {\"feeds\": [ ... ]}")?;
    let mut entries = Vec::with_capacity(raw.feeds.len());
    let mut names = std::collections::HashSet::new();
    for (i, v) in raw.feeds.into_iter().enumerate() {
        let fallback = v
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| valid_name(n))
            .map(str::to_string)
            .unwrap_or_else(|| format!("feed-{i}"));
        let entry = match parse_feed(v) {
            Ok(Some(feed)) => FeedEntry::Valid(Box::new(feed)),
            Ok(None) => FeedEntry::Disabled { name: fallback },
            Err(e) => FeedEntry::Invalid {
                name: fallback,
                error: format!("{e:#}"),
            },
        };
        if !names.insert(entry.name().to_string()) {
            bail!(
                "the feeds configuration names two feeds {:?}: names identify a feed's state and reports, so they must be unique",
                entry.name()
            );
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Feed names become blob path segments and `--feed` values.
fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Feed URLs must be https; plain http only to this machine (a local mirror, the tests).
fn feed_url(raw: &str, field: &str) -> Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("{field} {raw:?} is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!("{field} carries credentials in the URL; use \"auth\" with an app setting instead");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => bail!("{field} must be an https URL (got {other}://)"),
    }
    for (k, _) in url.query_pairs() {
        if SECRET_QUERY_PARAMS.contains(&normalised(&k).as_str()) {
            bail!(
                "{field} carries a credential in its query ({k}=...); use \"auth\": {{\"header\": ..}} with an app setting instead"
            );
        }
    }
    Ok(url)
}

fn setting_name(raw: &str, field: &str) -> Result<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 256
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if !ok {
        bail!("{field} {raw:?} is not an app setting name");
    }
    Ok(raw.to_string())
}

fn parse_auth(v: Option<Value>) -> Result<Auth> {
    let Some(v) = v else { return Ok(Auth::None) };
    const FORMS: &str = "\"none\", {\"managedIdentity\": {\"scope\": ..}}, {\"basic\": {\"username\": .., \"passwordSetting\": ..}}, {\"header\": {\"name\": .., \"valueSetting\": ..}} or {\"keyVaultSecret\": \"name\"}";
    match &v {
        Value::String(s) if s == "none" => return Ok(Auth::None),
        Value::String(s) if s == "managed-identity" || s == "managedIdentity" => {
            bail!("auth {s:?} needs the token scope: {{\"managedIdentity\": {{\"scope\": \"api://<app>/.default\"}}}}")
        }
        Value::Object(map) if map.len() == 1 => {}
        _ => bail!("auth must be one of {FORMS}"),
    }
    let (kind, body) = v
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("checked: one member");
    let field = |name: &str| -> Result<String> {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("auth.{kind}.{name} is required (a string)"))
    };
    let only = |allowed: &[&str]| -> Result<()> {
        if let Some(map) = body.as_object() {
            if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                bail!("auth.{kind} has an unknown field {extra:?}");
            }
        }
        Ok(())
    };
    match kind.as_str() {
        "managedIdentity" => {
            only(&["scope"])?;
            let scope = field("scope")?;
            if scope.trim().is_empty() {
                bail!("auth.managedIdentity.scope is empty");
            }
            Ok(Auth::ManagedIdentity { scope })
        }
        "basic" => {
            only(&["username", "passwordSetting"])?;
            Ok(Auth::Basic {
                username: field("username")?,
                password_setting: setting_name(
                    &field("passwordSetting")?,
                    "auth.basic.passwordSetting",
                )?,
            })
        }
        "header" => {
            only(&["name", "valueSetting"])?;
            let name = field("name")?;
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .ok()
                .with_context(|| format!("auth.header.name {name:?} is not a header name"))?;
            Ok(Auth::Header {
                name,
                value_setting: setting_name(&field("valueSetting")?, "auth.header.valueSetting")?,
            })
        }
        "keyVaultSecret" => {
            let name = body
                .as_str()
                .context("auth.keyVaultSecret is the secret's name (a string)")?;
            // Key Vault secret names: 1-127 alphanumerics and dashes.
            let ok = (1..=127).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                bail!("auth.keyVaultSecret {name:?} is not a Key Vault secret name (1-127 letters, digits, '-')");
            }
            Ok(Auth::KeyVaultSecret {
                name: name.to_string(),
            })
        }
        other => bail!("unknown auth {other:?}: expected {FORMS}"),
    }
}

fn parse_rfc3339(raw: &str, field: &str) -> Result<String> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{field} {raw:?} is not an RFC 3339 timestamp"))?;
    Ok(raw.to_string())
}

/// Parses one feed; `Ok(None)` when it is disabled.
fn parse_feed(v: Value) -> Result<Option<Feed>> {
    let raw: RawFeed = serde_json::from_value(v)?;
    if !valid_name(&raw.name) {
        bail!(
            "name {:?}: 1-63 lowercase letters, digits, '-' or '_'",
            raw.name
        );
    }
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let only_for = |present: bool, field: &str, kind: &str| -> Result<()> {
        if present {
            bail!("{field} applies only to {kind} feeds");
        }
        Ok(())
    };
    let source = match raw.kind.as_str() {
        "taxii" => {
            only_for(raw.url.is_some(), "url", "https")?;
            only_for(raw.format.is_some(), "format", "https")?;
            let api_root = raw
                .api_root
                .context("apiRoot is required for a taxii feed")?;
            let mut api_root = feed_url(&api_root, "apiRoot")?;
            if !api_root.path().ends_with('/') {
                // `join` would otherwise replace the last path segment.
                api_root.set_path(&format!("{}/", api_root.path()));
            }
            if api_root.query().is_some() {
                bail!("apiRoot must not have a query");
            }
            let collection = raw
                .collection
                .context("collection (the collection id) is required for a taxii feed")?;
            let ok = !collection.is_empty()
                && collection
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if !ok {
                bail!("collection {collection:?} is not a collection id");
            }
            for k in raw.filters.keys() {
                let allowed = [
                    "match[type]",
                    "match[id]",
                    "match[spec_version]",
                    "match[version]",
                ];
                if !allowed.contains(&k.as_str()) {
                    bail!(
                        "filter {k:?} is not supported: use {} (pagination parameters are the puller's)",
                        allowed.join(", ")
                    );
                }
            }
            let page_size = raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
            if !(1..=10_000).contains(&page_size) {
                bail!("pageSize {page_size}: expected 1..=10000");
            }
            let max_objects_per_run = raw
                .max_objects_per_run
                .unwrap_or(DEFAULT_MAX_OBJECTS_PER_RUN);
            if max_objects_per_run == 0 {
                bail!("maxObjectsPerRun must be at least 1");
            }
            FeedSource::Taxii(TaxiiFeed {
                api_root,
                collection,
                added_after: raw
                    .added_after
                    .map(|a| parse_rfc3339(&a, "addedAfter"))
                    .transpose()?,
                filters: raw.filters,
                page_size,
                max_objects_per_run,
            })
        }
        "https" => {
            for (present, field) in [
                (raw.api_root.is_some(), "apiRoot"),
                (raw.collection.is_some(), "collection"),
                (raw.added_after.is_some(), "addedAfter"),
                (!raw.filters.is_empty(), "filters"),
                (raw.page_size.is_some(), "pageSize"),
                (raw.max_objects_per_run.is_some(), "maxObjectsPerRun"),
            ] {
                only_for(present, field, "taxii")?;
            }
            let url = feed_url(
                &raw.url.context("url is required for an https feed")?,
                "url",
            )?;
            let format = match raw.format.as_deref() {
                None => None,
                Some(f) if f.eq_ignore_ascii_case("auto") => None,
                Some(f) => Some(f.parse::<InputFormat>().map_err(anyhow::Error::msg)?),
            };
            FeedSource::Https(HttpsFeed { url, format })
        }
        other => bail!("kind {other:?}: expected \"taxii\" or \"https\""),
    };
    let auth = parse_auth(raw.auth)?;
    let d = raw.defaults;
    if let Some(c) = d.confidence {
        if c > 100 {
            bail!("defaults.confidence {c}: expected 0..=100");
        }
    }
    let tlp = d
        .tlp
        .map(|t| t.parse::<Tlp>().map_err(anyhow::Error::msg))
        .transpose()
        .context("defaults.tlp")?;
    if let Some(days) = d.valid_days {
        if days > 36_500 {
            bail!("defaults.validDays {days}: expected 0..=36500");
        }
    }
    for l in &d.labels {
        if l.trim().is_empty() || l.len() > 256 {
            bail!("defaults.labels: {l:?} is not a label (1-256 characters)");
        }
    }
    let targets = match raw.targets {
        None => None,
        Some(list) if list.is_empty() => bail!("targets is empty: omit it for the app's TI_TARGET"),
        Some(list) => {
            let mut kinds = Vec::new();
            for t in list {
                let k = TargetKind::parse(&t).context("targets")?;
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            Some(kinds)
        }
    };
    // An HTTPS feed is read whole every time it changes: a list unless said otherwise. A
    // TAXII collection is read incrementally unless it is declared a list.
    let list = raw.list.unwrap_or(matches!(source, FeedSource::Https(_)));
    if raw.max_bytes == Some(0) {
        bail!("maxBytes must be at least 1");
    }
    Ok(Some(Feed {
        name: raw.name,
        source,
        auth,
        defaults: FeedDefaults {
            confidence: d.confidence,
            tlp,
            valid_days: d.valid_days,
            labels: d.labels,
        },
        targets,
        max_bytes: raw.max_bytes,
        list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<FeedEntry>> {
        parse_document(v.to_string().as_bytes())
    }

    fn one(feed: Value) -> FeedEntry {
        parse(json!({ "feeds": [feed] })).unwrap().remove(0)
    }

    fn invalid(feed: Value) -> String {
        match one(feed) {
            FeedEntry::Invalid { error, .. } => error,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_taxii_feed_with_everything() {
        let FeedEntry::Valid(f) = one(json!({
            "name": "osint", "kind": "taxii",
            "apiRoot": "https://taxii.example.com/api1",
            "collection": "91a7b528-80eb-42ed-a74d-c6fbd5a26116",
            "addedAfter": "2026-01-01T00:00:00Z",
            "filters": {"match[type]": "indicator"},
            "pageSize": 100,
            "auth": {"managedIdentity": {"scope": "api://taxii/.default"}},
            "defaults": {"confidence": 70, "tlp": "amber", "validDays": 30, "labels": ["osint"]},
            "targets": ["sentinel-stix"]
        })) else {
            panic!()
        };
        let FeedSource::Taxii(t) = &f.source else {
            panic!()
        };
        assert_eq!(
            t.objects_url().unwrap().as_str(),
            "https://taxii.example.com/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/"
        );
        assert_eq!(t.page_size, 100);
        assert_eq!(
            f.auth,
            Auth::ManagedIdentity {
                scope: "api://taxii/.default".into()
            }
        );
        assert_eq!(f.defaults.tlp, Some(Tlp::Amber));
        assert_eq!(f.targets, Some(vec![TargetKind::SentinelStix]));
        let d = f.defaults.apply_to(Defaults::default());
        assert_eq!((d.confidence, d.valid_days), (70, 30));
    }

    #[test]
    fn an_https_feed_with_labels_and_its_own_targets() {
        let FeedEntry::Valid(f) = one(json!({
            "name": "blocklist", "kind": "https", "url": "https://x.example/f.txt",
            "defaults": {"labels": ["blocklist", "osint"]},
            "targets": ["sentinel-indicators", "dry-run", "sentinel-indicators"]
        })) else {
            panic!()
        };
        assert_eq!(f.defaults.labels, vec!["blocklist", "osint"]);
        assert_eq!(
            f.targets,
            Some(vec![TargetKind::SentinelIndicators, TargetKind::DryRun])
        );
        assert!(invalid(json!({
            "name": "a", "kind": "https", "url": "https://x.example/f.txt",
            "defaults": {"labels": [" "]}
        }))
        .contains("labels"));
    }

    #[test]
    fn inline_secrets_refuse_the_whole_document() {
        for secret in [
            json!({"password": "x"}),
            json!({"apiKey": "x"}),
            json!({"basic": {"username": "u", "token": "x"}}),
            json!({"client_secret": "x"}),
        ] {
            let err = parse(json!({"feeds": [
                {"name": "a", "kind": "https", "url": "https://x.example/a.txt", "auth": secret}
            ]}))
            .unwrap_err();
            assert!(
                format!("{err:#}").contains("secret values inline"),
                "{err:#}"
            );
        }
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        for url in [
            "https://user:pw@x.example/feed.txt",
            "https://x.example/feed.txt?apikey=123",
            "https://x.example/feed.txt?api_key=123",
            "http://x.example/feed.txt",
            "ftp://x.example/feed.txt",
        ] {
            invalid(json!({"name": "a", "kind": "https", "url": url}));
        }
        // Plain http is for this machine only.
        assert!(matches!(
            one(json!({"name": "a", "kind": "https", "url": "http://127.0.0.1:8080/f.csv"})),
            FeedEntry::Valid(_)
        ));
    }

    #[test]
    fn auth_is_by_reference_only() {
        let f = |auth: Value| {
            one(json!({"name": "a", "kind": "https", "url": "https://x.example/f", "auth": auth}))
        };
        let FeedEntry::Valid(feed) = f(json!({"keyVaultSecret": "taxii-password"})) else {
            panic!()
        };
        assert_eq!(
            feed.auth,
            Auth::KeyVaultSecret {
                name: "taxii-password".into()
            }
        );
        let FeedEntry::Valid(feed) =
            f(json!({"basic": {"username": "u", "passwordSetting": "TI_FEED_A_PASSWORD"}}))
        else {
            panic!()
        };
        assert!(matches!(feed.auth, Auth::Basic { .. }));
        for bad in [
            json!("managed-identity"),
            json!({"keyVaultSecret": "bad name!"}),
            json!({"basic": {"username": "u"}}),
            json!({"oauth": {}}),
            json!({"header": {"name": "bad header", "valueSetting": "X"}}),
        ] {
            assert!(matches!(f(bad.clone()), FeedEntry::Invalid { .. }), "{bad}");
        }
    }

    #[test]
    fn one_bad_feed_does_not_spoil_the_others() {
        let entries = parse(json!({"feeds": [
            {"name": "good", "kind": "https", "url": "https://x.example/f.txt", "format": "text"},
            {"name": "typo", "kind": "https", "url": "https://x.example/f.txt", "formt": "text"},
            {"name": "off", "kind": "https", "url": "https://x.example/f.txt", "enabled": false},
            {"kind": "taxii"}
        ]}))
        .unwrap();
        assert!(matches!(entries[0], FeedEntry::Valid(_)));
        assert!(matches!(&entries[1], FeedEntry::Invalid { name, .. } if name == "typo"));
        assert!(matches!(&entries[2], FeedEntry::Disabled { name } if name == "off"));
        assert!(matches!(&entries[3], FeedEntry::Invalid { name, .. } if name == "feed-3"));
        // Duplicate names would share state: the document is refused.
        assert!(parse(json!({"feeds": [
            {"name": "a", "kind": "https", "url": "https://x.example/1"},
            {"name": "a", "kind": "https", "url": "https://x.example/2"}
        ]}))
        .is_err());
    }

    #[test]
    fn fields_of_the_other_kind_and_bad_values_are_refused() {
        for (feed, needle) in [
            (
                json!({"name": "a", "kind": "https", "url": "https://x.example/f", "collection": "c"}),
                "taxii",
            ),
            (
                json!({"name": "a", "kind": "taxii", "apiRoot": "https://x.example/r/", "collection": "c", "filters": {"limit": "5"}}),
                "limit",
            ),
            (
                json!({"name": "a", "kind": "taxii", "apiRoot": "https://x.example/r/", "collection": "c", "addedAfter": "yesterday"}),
                "addedAfter",
            ),
            (
                json!({"name": "a", "kind": "https", "url": "https://x.example/f", "defaults": {"tlp": "purple"}}),
                "tlp",
            ),
            (
                json!({"name": "a", "kind": "https", "url": "https://x.example/f", "targets": ["splunk"]}),
                "targets",
            ),
            (
                json!({"name": "A B", "kind": "https", "url": "https://x.example/f"}),
                "name",
            ),
            (
                json!({"name": "a", "kind": "rss", "url": "https://x.example/f"}),
                "kind",
            ),
        ] {
            let e = invalid(feed.clone());
            assert!(e.contains(needle), "{feed}: {e}");
        }
    }

    #[test]
    fn the_config_location_setting() {
        let s = PullSettings::from_env(&Env::from_pairs([("X", "y")])).unwrap();
        assert_eq!(s.config_container, "indicator-config");
        assert_eq!(s.config_blob, "feeds.json");
        let s = PullSettings::from_env(&Env::from_pairs([(
            "TI_FEEDS_CONFIG",
            "cfg/pull/feeds.json",
        )]))
        .unwrap();
        assert_eq!(s.config_blob, "pull/feeds.json");
        for bad in ["feeds.json", "Bad_Container/x.json", "cfg/"] {
            let e = PullSettings::from_env(&Env::from_pairs([("TI_FEEDS_CONFIG", bad)]));
            assert!(format!("{:#}", e.unwrap_err()).contains("TI_FEEDS_CONFIG"));
        }
    }
}
