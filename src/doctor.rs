//! `ti-ingest doctor` and the `Health` function: what is wrong with a deployment, component by
//! component, each failure with its fix in one line (docs/DEPLOY.md, Troubleshooting).
//!
//! The checks, in order (a later one is skipped when what it needs failed):
//! 1. settings: every setting parses ([`Settings::from_env`], [`StorageSettings::from_env`]) and
//!    the Sentinel targets have `TI_WORKSPACE_ID`;
//! 2. a token for each target's audience, from the identity the app (or the CLI) uses;
//! 3. storage: the inbox and reports containers and the three queues exist and answer the
//!    identity (one attempt each, no SDK retries, so an unreachable account fails in seconds);
//! 4. each target: a request that uploads nothing (an empty batch) to its real URL. Both
//!    Sentinel APIs answer `200` only "when at least one indicator is successfully validated and
//!    published" (seed `004`, the Upload Indicators spec; the 2024-02-01-preview STIX objects
//!    spec says the same of STIX objects), so an empty batch stores nothing and gets the
//!    `default` error answer; but the token (401), the role (403) and the workspace (404,
//!    Microsoft Learn, both API pages, "Process the response message": "Usually this error
//!    occurs when the workspace ID isn't found") are checked before the body is, so whatever else
//!    it answers proves reachability and authorisation. Graph's `submitTiIndicators` with an
//!    empty `value` creates nothing likewise (its retirement answers are recognised by the
//!    target's own mapping).

use std::collections::HashMap;
use std::time::Duration;

use azure_core::http::{ClientOptions, RetryOptions, StatusCode};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use serde::Serialize;
use serde_json::Value;
use ti_core::report::Code;

use crate::auth::{self, Credential};
use crate::settings::{Env, StorageSettings};
use crate::startup::Settings;
use crate::upload::target::TargetKind;
use crate::upload::UploadSettings;

/// How long one check may take (a token, a storage call, a probe request).
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// Which identity the checks use: the app's managed identity (`Health`), or the CLI's choice
/// (managed identity when `IDENTITY_ENDPOINT` is set, else the Azure CLI login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Managed,
    FromEnvironment,
}

impl Identity {
    fn credential(self, client_id: Option<&str>) -> anyhow::Result<Credential> {
        match self {
            Identity::Managed => auth::managed_identity(client_id),
            Identity::FromEnvironment => auth::from_environment(client_id),
        }
    }

    /// Whether the credential is the Azure CLI login.
    fn is_cli(self) -> bool {
        self == Identity::FromEnvironment && !auth::identity_endpoint_configured()
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `settings`, `token`, `storage` or `target`.
    pub component: &'static str,
    /// What was checked (`scope https://management.azure.com/.default`, `container indicator-inbox`).
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// The fix, in one line, when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(component: &'static str, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            component,
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(
        component: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            component,
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub healthy: bool,
    pub checks: Vec<Check>,
}

impl Diagnosis {
    fn new(checks: Vec<Check>) -> Self {
        Diagnosis {
            healthy: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// The JSON the `Health` function answers and `doctor --json` prints.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Lines for a terminal: `ok`/`FAIL`, component, name, what was found, and the fix.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{} {:<8} {}: {}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.component,
                c.name,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("     fix: {fix}\n"));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            out.push_str("all checks passed\n");
        } else {
            out.push_str(&format!("{failed} check(s) failed\n"));
        }
        out
    }
}

/// The token audience (scope) each real target calls with, each scope once, with its targets.
pub fn scopes(settings: &UploadSettings) -> Vec<(&'static str, Vec<TargetKind>)> {
    let mut out: Vec<(&'static str, Vec<TargetKind>)> = Vec::new();
    for &kind in &settings.targets {
        let Some(scope) = kind.scope(settings.cloud) else {
            continue;
        };
        match out.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, kinds)) => kinds.push(kind),
            None => out.push((scope, vec![kind])),
        }
    }
    out
}

fn names(kinds: &[TargetKind]) -> String {
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

/// The one-line fix for a token that cannot be had.
pub fn token_fix(cli: bool, client_id: Option<&str>) -> String {
    if cli {
        "install the Azure CLI and sign in with `az login` (az must be on PATH), or run where a managed identity is configured (IDENTITY_ENDPOINT and IDENTITY_HEADER)".into()
    } else {
        match client_id {
            Some(id) => format!(
                "assign the user-assigned identity with client id {id} (AZURE_CLIENT_ID) to the Function App, or correct AZURE_CLIENT_ID (infra/main.bicep assigns the identity it creates)"
            ),
            None => "enable the Function App's system-assigned identity, or set AZURE_CLIENT_ID to the client id of its user-assigned identity".into(),
        }
    }
}

/// Gets one token for each audience of `settings`' targets, before any record is read: a
/// credential that cannot work is one message (naming the cause and the fix), not a report of
/// every record `auth_failed` after each batch's retries.
pub async fn preflight(
    credential: &Credential,
    settings: &UploadSettings,
    cli: bool,
    client_id: Option<&str>,
) -> Result<(), String> {
    for (scope, kinds) in scopes(settings) {
        if let Err(why) = token(credential, scope).await {
            let how = if cli {
                "the Azure CLI login"
            } else {
                "the managed identity"
            };
            return Err(format!(
                "no token for {scope} (target {}) from {how}: {why}. Fix: {}. Nothing was read or uploaded.",
                names(&kinds),
                token_fix(cli, client_id)
            ));
        }
    }
    Ok(())
}

async fn token(credential: &Credential, scope: &str) -> Result<String, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, auth::bearer(credential, scope)).await {
        Ok(Ok(t)) => Ok(t),
        // The credential's message spans lines (a troubleshooting link on the second): one line.
        Ok(Err(e)) => Err(format!("{e:#}")
            .replace(&format!("getting a token for {scope}: "), "")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")),
        Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
    }
}

/// Runs every check with the settings in `env`.
pub async fn diagnose(env: &Env, identity: Identity) -> Diagnosis {
    diagnose_with(env, identity, None).await
}

/// [`diagnose`] with the credential the app already holds (`Health`: the app state's, so its
/// token cache serves the checks); `None` builds one for `identity`.
pub async fn diagnose_with(
    env: &Env,
    identity: Identity,
    credential: Option<Credential>,
) -> Diagnosis {
    let mut checks = Vec::new();
    let settings = match Settings::from_env(env) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(
                "settings",
                "app settings",
                format!("{e:#}"),
                "correct the setting named above (docs/SETTINGS.md lists every setting and what it accepts)",
            ));
            return Diagnosis::new(checks);
        }
    };
    let upload = &settings.upload;
    let identity_text = match (identity.is_cli(), settings.client_id.as_deref()) {
        (true, _) => "the Azure CLI login".to_string(),
        (false, Some(id)) => format!("user-assigned managed identity {id}"),
        (false, None) => "system-assigned managed identity".to_string(),
    };
    let mut upload_ok = true;
    match upload.require_workspace() {
        Ok(_) => checks.push(Check::pass(
            "settings",
            "upload",
            format!(
                "targets {}; cloud {}; workspace {}; identity: {identity_text}",
                upload.target_names(),
                upload.cloud.name(),
                upload.workspace_id.as_deref().unwrap_or("(none needed)")
            ),
        )),
        Err(e) => {
            upload_ok = false;
            checks.push(Check::fail(
                "settings",
                "upload",
                format!("{e:#}"),
                "set TI_WORKSPACE_ID to the workspace id of the Log Analytics workspace Sentinel runs on (its Overview page, \"Workspace ID\")",
            ))
        }
    }
    let storage = match StorageSettings::from_env(env) {
        Ok(s) => {
            checks.push(Check::pass(
                "settings",
                "storage",
                format!("blob {}; queue {}", s.blob_url, s.queue_url),
            ));
            Some(s)
        }
        Err(e) => {
            checks.push(Check::fail(
                "settings",
                "storage",
                format!("{e:#}"),
                "set AzureWebJobsStorage__blobServiceUri and __queueServiceUri (or TI_STORAGE_BLOB_URL and TI_STORAGE_QUEUE_URL) to the app's storage account endpoints",
            ));
            None
        }
    };
    let built = match credential {
        Some(c) => Ok(c),
        None => identity.credential(settings.client_id.as_deref()),
    };
    let credential = match built {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::fail(
                "token",
                "credential",
                format!("{e:#}"),
                token_fix(identity.is_cli(), settings.client_id.as_deref()),
            ));
            return Diagnosis::new(checks);
        }
    };
    let mut tokens: HashMap<&'static str, String> = HashMap::new();
    if upload_ok {
        for (scope, kinds) in scopes(upload) {
            match token(&credential, scope).await {
                Ok(t) => {
                    tokens.insert(scope, t);
                    checks.push(Check::pass(
                        "token",
                        scope,
                        format!("issued for target {} by {identity_text}", names(&kinds)),
                    ));
                }
                Err(why) => checks.push(Check::fail(
                    "token",
                    scope,
                    format!("no token from {identity_text}: {why}"),
                    token_fix(identity.is_cli(), settings.client_id.as_deref()),
                )),
            }
        }
    }
    if let Some(s) = &storage {
        checks.extend(check_storage(s, &credential).await);
    }
    if upload_ok {
        let http = match crate::upload::transport::http_client() {
            Ok(h) => h,
            Err(e) => {
                checks.push(Check::fail(
                    "target",
                    "HTTP client",
                    format!("{e:#}"),
                    "report this as a bug",
                ));
                return Diagnosis::new(checks);
            }
        };
        for (scope, kinds) in scopes(upload) {
            for kind in kinds {
                let check = match tokens.get(scope) {
                    Some(t) => probe(&http, upload, kind, t).await,
                    None => Check::fail(
                        "target",
                        kind.name(),
                        format!("not tried: no token for {scope}"),
                        "fix the token check above first",
                    ),
                };
                checks.push(check);
            }
        }
    }
    Diagnosis::new(checks)
}

/// The storage clients of the checks: one attempt per call (the SDK's default retries would keep
/// an unreachable account's check going for minutes).
fn storage_clients(
    s: &StorageSettings,
    credential: &Credential,
) -> azure_core::Result<(BlobServiceClient, QueueServiceClient)> {
    let options = || ClientOptions {
        retry: RetryOptions::none(),
        ..Default::default()
    };
    let blobs = BlobServiceClient::new(
        s.blob_url.clone(),
        Some(credential.clone()),
        Some(BlobServiceClientOptions {
            client_options: options(),
            ..Default::default()
        }),
    )?;
    let queues = QueueServiceClient::new(
        s.queue_url.clone(),
        Some(credential.clone()),
        Some(QueueServiceClientOptions {
            client_options: options(),
            ..Default::default()
        }),
    )?;
    Ok((blobs, queues))
}

async fn check_storage(s: &StorageSettings, credential: &Credential) -> Vec<Check> {
    let (blobs, queues) = match storage_clients(s, credential) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "storage",
                "clients",
                format!("{e}"),
                "correct the storage endpoint settings (https service URLs of the app's account)",
            )]
        }
    };
    // All five at once: an account that drops packets costs one timeout, not five (the Health
    // function must answer well within the front end's 230 s).
    let containers = [
        ("TI_INBOX_CONTAINER", &s.inbox_container),
        ("TI_REPORTS_CONTAINER", &s.reports_container),
    ]
    .map(|(setting, name)| {
        let client = blobs.blob_container_client(name);
        async move {
            let found = tokio::time::timeout(CHECK_TIMEOUT, client.exists()).await;
            storage_check(
                "container",
                name,
                setting,
                s.blob_url.as_str(),
                "Storage Blob Data Contributor",
                found,
            )
        }
    });
    let queues = [
        ("TI_BLOB_EVENTS_QUEUE", &s.blob_events_queue),
        ("TI_INBOX_QUEUE", &s.inbox_queue),
        ("TI_WORK_QUEUE", &s.work_queue),
    ]
    .map(|(setting, name)| {
        let client = queues.queue_client(name);
        async move {
            let found = match client {
                Ok(client) => tokio::time::timeout(CHECK_TIMEOUT, client.exists()).await,
                Err(e) => Ok(Err(e)),
            };
            storage_check(
                "queue",
                name,
                setting,
                s.queue_url.as_str(),
                "Storage Queue Data Contributor",
                found,
            )
        }
    });
    let (mut out, queues) = futures::future::join(
        futures::future::join_all(containers),
        futures::future::join_all(queues),
    )
    .await;
    out.extend(queues);
    out
}

fn storage_check(
    what: &str,
    name: &str,
    setting: &str,
    endpoint: &str,
    role: &str,
    found: Result<azure_core::Result<bool>, tokio::time::error::Elapsed>,
) -> Check {
    let label = format!("{what} {name}");
    match found {
        Ok(Ok(true)) => Check::pass("storage", label, format!("exists at {endpoint}")),
        Ok(Ok(false)) => Check::fail(
            "storage",
            label,
            format!("does not exist at {endpoint}"),
            format!("create the {what} {name} (infra/modules/storage.bicep creates it), or set {setting} to an existing one"),
        ),
        Ok(Err(e)) => match e.http_status() {
            Some(StatusCode::Forbidden) | Some(StatusCode::Unauthorized) => Check::fail(
                "storage",
                label,
                format!("the account refused the identity: HTTP {}", e.http_status().map(u16::from).unwrap_or(0)),
                format!("assign the identity {role} on the storage account (infra/modules/storage-roles.bicep does)"),
            ),
            Some(status) => Check::fail(
                "storage",
                label,
                format!("HTTP {}: {}", u16::from(status), first_line(&e.to_string())),
                "check the storage endpoint settings and the account's state",
            ),
            None => Check::fail(
                "storage",
                label,
                format!("storage unreachable at {endpoint}: {}", first_line(&error_chain(&e))),
                "check AzureWebJobsStorage__blobServiceUri/__queueServiceUri (or TI_STORAGE_BLOB_URL/TI_STORAGE_QUEUE_URL) and that the account's network rules let the app in",
            ),
        },
        Err(_) => Check::fail(
            "storage",
            label,
            format!("storage unreachable at {endpoint}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
            "check the storage endpoint settings and that the account's network rules let the app in",
        ),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

/// The URL and the empty body of target `kind`'s upload request.
fn empty_request(settings: &UploadSettings, kind: TargetKind) -> anyhow::Result<(String, Value)> {
    match kind.spec() {
        Some(spec) => (spec.probe)(settings),
        None => anyhow::bail!("dry-run sends nothing"),
    }
}

/// Posts an empty batch to target `kind` and says what the answer shows.
async fn probe(
    http: &reqwest::Client,
    settings: &UploadSettings,
    kind: TargetKind,
    token: &str,
) -> Check {
    let name = kind.name();
    let (url, body) = match empty_request(settings, kind) {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                "target",
                name,
                format!("{e:#}"),
                "correct the target settings",
            )
        }
    };
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let sent = tokio::time::timeout(
        CHECK_TIMEOUT,
        http.post(&url).bearer_auth(token).json(&body).send(),
    )
    .await;
    let response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Check::fail(
                "target",
                name,
                format!("{host} unreachable: {}", first_line(&error_chain(&e))),
                unreachable_fix(kind),
            )
        }
        Err(_) => {
            return Check::fail(
                "target",
                name,
                format!("{host}: no answer within {}s", CHECK_TIMEOUT.as_secs()),
                unreachable_fix(kind),
            )
        }
    };
    let status = response.status().as_u16();
    let header = |h: &str| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let challenge = header("www-authenticate");
    let error_code = header("x-ms-error-code");
    let text = response.text().await.unwrap_or_default();
    let answer: String = text.chars().take(300).collect();
    let scope = kind.scope(settings.cloud).unwrap_or_default();
    if kind == TargetKind::Graph && (200..300).contains(&status) {
        return Check::pass(
            "target",
            name,
            format!("{host} answered {status} to an empty batch: reachable and authorised; nothing uploaded"),
        );
    }
    if kind == TargetKind::Graph {
        let (code, _) = crate::upload::graph::mapping::permanent(status, &text, None);
        if code == Code::ApiRetired {
            return Check::fail(
                "target",
                name,
                format!("{host} answered HTTP {status}: Microsoft Graph tiIndicators is retired"),
                "use TI_TARGET=sentinel-stix (the Sentinel STIX objects upload API) instead of graph",
            );
        }
    }
    // The body's `error.code` (both Sentinel specs' ErrorResponseBody) or the header.
    let code = error_code.or_else(|| {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
    });
    match status {
        200..=299 => Check::pass(
            "target",
            name,
            format!("{host} answered {status} to an empty batch: reachable, token accepted, authorised; nothing uploaded"),
        ),
        401 => {
            // The gateway's 401 names the reason only in WWW-Authenticate's error_description.
            let why = challenge
                .as_deref()
                .and_then(|c| c.split("error_description=\"").nth(1))
                .and_then(|d| d.split('"').next())
                .map(str::to_string)
                .unwrap_or(answer);
            Check::fail(
                "target",
                name,
                format!("{host} refused the token for {scope} (HTTP 401): {why}"),
                match kind {
                    TargetKind::Graph => "Graph needs a token for https://graph.microsoft.com/.default: check TI_CLOUD=public and TI_GRAPH_BASE_URL".to_string(),
                    TargetKind::Defender => format!(
                        "Defender for Endpoint needs a token for {scope}: set TI_CLOUD to the tenant's cloud (usgov for GCC High and DoD), and TI_DEFENDER_BASE_URL only to that cloud's API host"
                    ),
                    _ => format!(
                        "TI_CLOUD={} asks tokens for {scope}: set TI_CLOUD to the cloud the workspace is in (public, usgov, china), and TI_API_BASE_URL only to that cloud's API host",
                        settings.cloud.name()
                    ),
                },
            )
        }
        403 => Check::fail(
            "target",
            name,
            format!("{host} refused the identity (HTTP 403): {answer}"),
            kind.spec().map_or("", |s| s.permission).to_string(),
        ),
        404 if kind.is_sentinel() => Check::fail(
            "target",
            name,
            format!(
                "{host} does not know workspace {} (HTTP 404): {answer}",
                settings.workspace_id.as_deref().unwrap_or_default()
            ),
            "set TI_WORKSPACE_ID to the workspace id (a UUID, the Log Analytics workspace's Overview page, \"Workspace ID\"), not its name or resource id; and TI_CLOUD to its cloud",
        ),
        400 if matches!(
            code.as_deref(),
            Some("MissingApiVersionParameter") | Some("UnsupportedApiVersionValue")
        ) =>
        {
            Check::fail(
                "target",
                name,
                format!("{host} refused the api-version {} (HTTP 400): {answer}", settings.api_version(kind)),
                "unset TI_SENTINEL_API_VERSION (each target has its own default), or set an api-version the API serves",
            )
        }
        400 | 422 => Check::pass(
            "target",
            name,
            format!("{host} accepted the token and the identity and refused the empty batch as expected (HTTP {status}{}): reachable and authorised; nothing uploaded", code.map(|c| format!(" {c}")).unwrap_or_default()),
        ),
        429 => Check::pass(
            "target",
            name,
            format!("{host} accepted the token and the identity but is throttling it now (HTTP 429): reachable and authorised; the workspace id was not checked"),
        ),
        _ => Check::fail(
            "target",
            name,
            format!("{host} answered HTTP {status}: {answer}"),
            match status {
                500..=599 => "the service failed: run doctor again later; if it persists, check the Azure status page".to_string(),
                _ => "check TI_API_BASE_URL / TI_GRAPH_BASE_URL (they must be the API's host, not a portal URL)".to_string(),
            },
        ),
    }
}

fn unreachable_fix(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Graph => "check TI_GRAPH_BASE_URL and that the app may reach graph.microsoft.com (outbound network, proxy)",
        TargetKind::Defender => "check TI_CLOUD and TI_DEFENDER_BASE_URL, and that the app may reach the Defender for Endpoint API host (outbound network, proxy, DNS)",
        _ => "check TI_CLOUD and TI_API_BASE_URL (unset it outside tests), and that the app may reach the API host (outbound network, proxy, DNS)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(pairs: &[(&str, &str)]) -> UploadSettings {
        UploadSettings::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn each_audience_is_asked_once_with_its_targets() {
        let s = upload(&[("TI_TARGET", "sentinel-stix,graph,sentinel-indicators")]);
        assert_eq!(
            scopes(&s),
            vec![
                (
                    "https://management.azure.com/.default",
                    vec![TargetKind::SentinelStix, TargetKind::SentinelIndicators]
                ),
                (
                    "https://graph.microsoft.com/.default",
                    vec![TargetKind::Graph]
                ),
            ]
        );
        let s = upload(&[("TI_TARGET", "sentinel-stix"), ("TI_CLOUD", "china")]);
        assert_eq!(
            scopes(&s),
            vec![(
                "https://management.chinacloudapi.cn/.default",
                vec![TargetKind::SentinelStix]
            )]
        );
        assert!(scopes(&upload(&[("TI_TARGET", "dry-run")])).is_empty());
        let s = upload(&[
            ("TI_TARGET", "sentinel-stix,defender"),
            ("TI_CLOUD", "usgov"),
        ]);
        assert_eq!(
            scopes(&s),
            vec![
                (
                    "https://management.usgovcloudapi.net/.default",
                    vec![TargetKind::SentinelStix]
                ),
                (
                    "https://api-gov.securitycenter.microsoft.us/.default",
                    vec![TargetKind::Defender]
                ),
            ]
        );
        assert_eq!(
            empty_request(&s, TargetKind::Defender).unwrap(),
            (
                "https://api-gov.securitycenter.microsoft.us/api/indicators/import".to_string(),
                serde_json::json!({"Indicators": []})
            )
        );
    }

    #[test]
    fn the_terminal_form_puts_each_fix_under_its_failure() {
        let d = Diagnosis::new(vec![
            Check::pass("settings", "upload", "targets sentinel-stix"),
            Check::fail("target", "sentinel-stix", "HTTP 403", "assign the role"),
        ]);
        assert!(!d.healthy);
        assert_eq!(
            d.render(),
            "ok   settings upload: targets sentinel-stix\nFAIL target   sentinel-stix: HTTP 403\n     fix: assign the role\n1 check(s) failed\n"
        );
        assert_eq!(d.to_json()["checks"][0].get("fix"), None);
        assert_eq!(d.to_json()["checks"][1]["fix"], "assign the role");
    }
}
