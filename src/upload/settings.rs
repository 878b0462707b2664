//! The upload side's settings (docs/SETTINGS.md, "Upload"): the targets and their hosts, the
//! quota, the retry budget, what happens to invalid records. Read once at start-up
//! ([`UploadSettings::from_env`]); a bad value stops start-up with the setting's name and what it
//! accepts.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use url::Url;

use super::target::TargetKind;
use crate::settings::{
    Cloud, DanglingRelationships, Env, OnInvalid, MAX_BATCH_SIZE, MAX_REQUESTS_PER_MINUTE,
};

/// Graph tiIndicator `action` values.
pub const GRAPH_ACTIONS: [&str; 4] = ["unknown", "allow", "block", "alert"];
/// Graph tiIndicator `targetProduct` values.
pub const GRAPH_TARGET_PRODUCTS: [&str; 2] = ["Azure Sentinel", "Microsoft Defender ATP"];

/// The upload-side settings, shared by the handler and the CLI.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// The first of [`UploadSettings::targets`] (the only one unless several are configured).
    pub target: TargetKind,
    /// `TI_TARGET`, in the order given; every record goes to each of them.
    pub targets: Vec<TargetKind>,
    pub cloud: Cloud,
    pub workspace_id: Option<String>,
    /// The host overrides set (each target's `host_setting`: `TI_API_BASE_URL` for both
    /// Sentinel targets, `TI_GRAPH_BASE_URL`, ...), without a trailing '/'; a target without one
    /// calls its own host in [`UploadSettings::cloud`] ([`UploadSettings::base_url`]).
    pub host_overrides: Vec<(&'static str, String)>,
    /// `TI_SENTINEL_API_VERSION`: overrides each Sentinel target's own default api-version.
    pub sentinel_api_version: Option<String>,
    pub source_system: String,
    /// `TI_GRAPH_ACTION`: the tiIndicator `action` the Graph target sets.
    pub graph_action: String,
    /// `TI_GRAPH_TARGET_PRODUCT`: the tiIndicator `targetProduct` the Graph target sets.
    pub graph_target_product: String,
    /// Requests admitted per identity and API in any rolling [`UploadSettings::rate_window`].
    pub max_requests_per_minute: u32,
    /// `TI_RATE_WINDOW_SECS` (60): the window the request quota counts over. Only a simulator
    /// with a scaled-down minute needs anything else.
    pub rate_window: Duration,
    pub batch_size: usize,
    /// Requests in flight at once, per identity and API, across every invocation of the process.
    pub max_concurrency: usize,
    /// How many times one batch is tried before its records are reported `retries_exhausted`.
    pub max_attempts: u32,
    /// Upper bound on the time one batch spends retrying.
    pub max_retry_time: Duration,
    pub on_invalid: OnInvalid,
    pub dangling_relationships: DanglingRelationships,
    /// `TI_DRY_RUN_AS` (`sentinel-stix`): which target's requests the dry run builds.
    pub dry_run_as: TargetKind,
    /// `TI_DRY_RUN_DIR`: where the dry run writes each request body it would send.
    pub dry_run_dir: Option<std::path::PathBuf>,
    /// `TI_DEFENDER_*`: the `defender` target's fields and budget.
    pub defender: super::defender::DefenderSettings,
    /// Not a setting: where targets keep state (the Defender budget): the app's storage, when
    /// the app has one; `None` keeps it for the process only.
    pub state_store: Option<std::sync::Arc<dyn super::defender::budget::StateStore>>,
    /// Not a setting: the targets whose rules a validate-only run applies (`ti-ingest validate
    /// --target`); empty means the configured targets.
    pub validate_as: Vec<TargetKind>,
}

impl UploadSettings {
    pub fn from_env(env: &Env) -> Result<Self> {
        let targets = TargetKind::parse_list(env.or("TI_TARGET", "sentinel-stix"))
            .context("setting TI_TARGET")?;
        let cloud = Cloud::parse(env.or("TI_CLOUD", "public"))?;
        let workspace_id = match env.get("TI_WORKSPACE_ID") {
            Some(w) => {
                uuid::Uuid::parse_str(w).ok().with_context(|| {
                    format!("setting TI_WORKSPACE_ID={w:?} is not a workspace id (a UUID)")
                })?;
                Some(w.to_ascii_lowercase())
            }
            None => None,
        };
        let mut host_overrides: Vec<(&'static str, String)> = Vec::new();
        for spec in TargetKind::ALL.iter().filter_map(|k| k.spec()) {
            let name = spec.host_setting;
            if host_overrides.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if let Some(u) = env.get(name) {
                Url::parse(u).with_context(|| format!("setting {name}={u:?} is not a URL"))?;
                host_overrides.push((name, u.trim_end_matches('/').to_string()));
            }
        }
        let dry_run_as = match env.get("TI_DRY_RUN_AS") {
            Some(t) => {
                let k = TargetKind::parse(t).context("setting TI_DRY_RUN_AS")?;
                if k == TargetKind::DryRun {
                    bail!("setting TI_DRY_RUN_AS=dry-run: name the target whose requests the dry run builds");
                }
                k
            }
            None => TargetKind::SentinelStix,
        };
        let source_system = env.or("TI_SOURCE_SYSTEM", "ti-ingest").to_string();
        if source_system.chars().count() > 256 || source_system == "Microsoft Sentinel" {
            bail!(
                "setting TI_SOURCE_SYSTEM={source_system:?}: must be at most 256 characters and not \"Microsoft Sentinel\""
            );
        }
        let graph_action = env.or("TI_GRAPH_ACTION", "alert").to_string();
        if !GRAPH_ACTIONS.contains(&graph_action.as_str()) {
            bail!(
                "setting TI_GRAPH_ACTION={graph_action:?}: accepted values are {}",
                GRAPH_ACTIONS.join(", ")
            );
        }
        let graph_target_product = env
            .or("TI_GRAPH_TARGET_PRODUCT", "Azure Sentinel")
            .to_string();
        if !GRAPH_TARGET_PRODUCTS.contains(&graph_target_product.as_str()) {
            bail!(
                "setting TI_GRAPH_TARGET_PRODUCT={graph_target_product:?}: accepted values are {}",
                GRAPH_TARGET_PRODUCTS.join(", ")
            );
        }
        let on_invalid = match env.or("TI_ON_INVALID", "skip") {
            "skip" => OnInvalid::Skip,
            "reject-file" => OnInvalid::RejectFile,
            other => {
                bail!("setting TI_ON_INVALID={other:?}: accepted values are skip, reject-file")
            }
        };
        let dangling_relationships = match env.or("TI_DANGLING_RELATIONSHIPS", "warn") {
            "warn" => DanglingRelationships::Warn,
            "skip" => DanglingRelationships::Skip,
            other => bail!(
                "setting TI_DANGLING_RELATIONSHIPS={other:?}: accepted values are warn (upload them with a warning), skip (report them rejected)"
            ),
        };
        let defender = super::defender::DefenderSettings::from_env(env, &source_system)?;
        let settings = UploadSettings {
            target: targets[0],
            targets,
            cloud,
            workspace_id,
            host_overrides,
            sentinel_api_version: env.get("TI_SENTINEL_API_VERSION").map(str::to_string),
            source_system,
            graph_action,
            graph_target_product,
            max_requests_per_minute: env.number(
                "TI_MAX_REQUESTS_PER_MINUTE",
                MAX_REQUESTS_PER_MINUTE,
                (1, 100_000),
            )?,
            rate_window: Duration::from_secs(env.number("TI_RATE_WINDOW_SECS", 60, (1, 3600))?),
            batch_size: env.number("TI_BATCH_SIZE", MAX_BATCH_SIZE, (1, MAX_BATCH_SIZE))?,
            max_concurrency: env.number("TI_MAX_CONCURRENCY", 4, (1, 64))?,
            max_attempts: env.number("TI_MAX_ATTEMPTS", 8, (1, 100))?,
            max_retry_time: Duration::from_secs(env.number(
                "TI_MAX_RETRY_SECS",
                300,
                (1, 86_400),
            )?),
            on_invalid,
            dangling_relationships,
            dry_run_as,
            defender,
            state_store: None,
            validate_as: Vec::new(),
            dry_run_dir: env.get("TI_DRY_RUN_DIR").map(std::path::PathBuf::from),
        };
        // Each target's own start-up check (a host in this cloud, ...); the dry run's target
        // too, though it sends nothing.
        let dry_run = settings.targets.contains(&TargetKind::DryRun);
        let checked = settings
            .targets
            .iter()
            .map(|&k| (k, true))
            .chain(dry_run.then_some((settings.dry_run_as, false)));
        for (kind, sends) in checked {
            if let Some(spec) = kind.spec() {
                (spec.check)(&settings, sends)?;
            }
        }
        Ok(settings)
    }

    /// The api-version a Sentinel target calls with: `TI_SENTINEL_API_VERSION`, else the
    /// target's own default.
    pub fn api_version(&self, target: TargetKind) -> &str {
        self.sentinel_api_version
            .as_deref()
            .or(target.default_api_version())
            .unwrap_or_default()
    }

    /// Whether any target calls a service (dry-run alone needs no token).
    pub fn needs_credential(&self) -> bool {
        self.targets.iter().any(|t| *t != TargetKind::DryRun)
    }

    /// The configured targets as `TI_TARGET` writes them (`sentinel-stix,graph`).
    pub fn target_names(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The host override `setting` (`TI_API_BASE_URL`, ...) when it is set.
    pub fn host_override(&self, setting: &str) -> Option<&str> {
        self.host_overrides
            .iter()
            .find(|(n, _)| *n == setting)
            .map(|(_, u)| u.as_str())
    }

    /// The base URL target `kind` posts to: its host setting when set, else its own host in
    /// this cloud (the target's `default_host`). Start-up already refused a configured target
    /// without one; this errs only for a target that was not configured.
    pub fn base_url(&self, kind: TargetKind) -> Result<&str> {
        let Some(spec) = kind.spec() else {
            bail!("dry-run sends nothing");
        };
        match (
            self.host_override(spec.host_setting),
            (spec.default_host)(self.cloud),
        ) {
            (Some(u), _) | (None, Some(u)) => Ok(u),
            (None, None) => bail!(
                "{} has no published host in TI_CLOUD={}: set {}",
                kind.name(),
                self.cloud.name(),
                spec.host_setting
            ),
        }
    }

    /// The base URL a Sentinel target posts to ([`UploadSettings::base_url`]); errs for the
    /// others.
    pub fn sentinel_base_url(&self, kind: TargetKind) -> Result<&str> {
        if !kind.is_sentinel() {
            bail!("{} is not a Sentinel target", kind.name());
        }
        self.base_url(kind)
    }

    /// The workspace id, required by the Sentinel targets.
    pub fn require_workspace(&self) -> Result<&str> {
        match &self.workspace_id {
            Some(w) => Ok(w),
            None => match self.targets.iter().find(|t| t.is_sentinel()) {
                Some(t) => bail!(
                    "setting TI_WORKSPACE_ID is required for target {}: the Log Analytics workspace id (a UUID)",
                    t.name()
                ),
                None => Ok("00000000-0000-0000-0000-000000000000"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::*;

    fn upload(pairs: &[(&str, &str)]) -> Result<UploadSettings> {
        UploadSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn each_cloud_has_its_sentinel_host_per_target_and_management_scope() {
        // (cloud, sentinel-stix host, sentinel-indicators host, token scope); sources at each
        // target's `default_host` (src/upload/<target>/mod.rs).
        for (cloud, stix, indicators, scope) in [
            (
                "public",
                Some("https://api.ti.sentinel.azure.com"),
                Some("https://sentinelus.azure-api.net"),
                "https://management.azure.com/.default",
            ),
            (
                "usgov",
                Some("https://api.ti.sentinel.azure.us"),
                None,
                "https://management.usgovcloudapi.net/.default",
            ),
            (
                "china",
                Some("https://api.ti.sentinel.azure.cn"),
                None,
                "https://management.chinacloudapi.cn/.default",
            ),
        ] {
            let s = upload(&[("TI_CLOUD", cloud)]).unwrap();
            assert_eq!(s.host_override("TI_API_BASE_URL"), None, "{cloud}");
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelStix).ok(),
                stix,
                "{cloud}"
            );
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelIndicators).ok(),
                indicators,
                "{cloud}"
            );
            assert_eq!(s.cloud.management_scope(), scope, "{cloud}");
            assert!(s.sentinel_base_url(TargetKind::Graph).is_err());
            assert_eq!(
                s.base_url(TargetKind::Graph).ok(),
                (cloud == "public").then_some("https://graph.microsoft.com"),
                "{cloud}"
            );
        }
        assert_eq!(
            TargetKind::Graph.scope(Cloud::Public),
            Some("https://graph.microsoft.com/.default")
        );
    }

    #[test]
    fn the_legacy_api_without_a_sovereign_host_fails_start_up_unless_overridden() {
        for cloud in ["usgov", "china"] {
            for target in ["sentinel-indicators", "sentinel-stix,sentinel-indicators"] {
                let err = upload(&[("TI_CLOUD", cloud), ("TI_TARGET", target)]).unwrap_err();
                assert_eq!(
                    format!("{err:#}"),
                    format!("setting TI_TARGET: sentinel-indicators (the legacy Upload Indicators API) has no published host in TI_CLOUD={cloud}; use sentinel-stix there, or set TI_API_BASE_URL to the host Microsoft gave you")
                );
            }
            let s = upload(&[
                ("TI_CLOUD", cloud),
                ("TI_TARGET", "sentinel-indicators"),
                ("TI_API_BASE_URL", "https://ti.example.internal/"),
            ])
            .unwrap();
            assert_eq!(
                s.sentinel_base_url(TargetKind::SentinelIndicators).unwrap(),
                "https://ti.example.internal"
            );
            // A dry run sends nothing, so it needs no host.
            upload(&[
                ("TI_CLOUD", cloud),
                ("TI_TARGET", "dry-run"),
                ("TI_DRY_RUN_AS", "sentinel-indicators"),
            ])
            .unwrap();
        }
    }

    #[test]
    fn graph_outside_the_public_cloud_fails_start_up_clearly() {
        for cloud in ["usgov", "china"] {
            let err =
                upload(&[("TI_CLOUD", cloud), ("TI_TARGET", "sentinel-stix,graph")]).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("graph") && text.contains("public cloud"),
                "{text}"
            );
            // Without graph the same cloud is fine.
            upload(&[("TI_CLOUD", cloud), ("TI_TARGET", "sentinel-stix")]).unwrap();
        }
    }

    #[test]
    fn base_urls_can_be_overridden_per_api() {
        let s = upload(&[
            ("TI_API_BASE_URL", "http://127.0.0.1:9/"),
            ("TI_GRAPH_BASE_URL", "http://127.0.0.1:10"),
        ])
        .unwrap();
        assert_eq!(
            s.host_override("TI_API_BASE_URL"),
            Some("http://127.0.0.1:9")
        );
        // TI_API_BASE_URL overrides the host of both Sentinel targets.
        for kind in [TargetKind::SentinelStix, TargetKind::SentinelIndicators] {
            assert_eq!(s.sentinel_base_url(kind).unwrap(), "http://127.0.0.1:9");
        }
        let err = upload(&[("TI_API_BASE_URL", "not a url")]).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("setting TI_API_BASE_URL=\"not a url\" is not a URL"),
            "{err:#}"
        );
        assert_eq!(
            s.base_url(TargetKind::Graph).ok(),
            Some("http://127.0.0.1:10")
        );
        assert!(upload(&[("TI_GRAPH_BASE_URL", "not a url")]).is_err());
    }

    #[test]
    fn targets_parse_as_a_list_and_api_versions_default_per_target() {
        let s = upload(&[("TI_TARGET", "sentinel-stix, graph,sentinel-stix")]).unwrap();
        assert_eq!(s.targets, vec![TargetKind::SentinelStix, TargetKind::Graph]);
        assert_eq!(s.target, TargetKind::SentinelStix);
        assert_eq!(s.target_names(), "sentinel-stix,graph");
        assert_eq!(
            s.api_version(TargetKind::SentinelStix),
            "2024-02-01-preview"
        );
        assert_eq!(s.api_version(TargetKind::SentinelIndicators), "2022-07-01");
        let s = upload(&[("TI_SENTINEL_API_VERSION", "2022-12-01-preview")]).unwrap();
        assert_eq!(
            s.api_version(TargetKind::SentinelIndicators),
            "2022-12-01-preview"
        );
        for bad in ["dry-run,graph", "", "graph,splunk"] {
            let err = upload(&[("TI_TARGET", bad)]);
            // An empty value means the default.
            if bad.is_empty() {
                assert!(err.is_ok());
            } else {
                assert!(
                    format!("{:#}", err.unwrap_err()).contains("TI_TARGET"),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn graph_fields_and_dry_run_and_window_settings() {
        let s = upload(&[]).unwrap();
        assert_eq!(s.graph_action, "alert");
        assert_eq!(s.graph_target_product, "Azure Sentinel");
        assert_eq!(s.rate_window, Duration::from_secs(60));
        assert_eq!(s.dry_run_as, TargetKind::SentinelStix);
        assert!(s.dry_run_dir.is_none());
        for (k, v) in [
            ("TI_GRAPH_ACTION", "deny"),
            ("TI_GRAPH_TARGET_PRODUCT", "Splunk"),
            ("TI_DRY_RUN_AS", "dry-run"),
            ("TI_RATE_WINDOW_SECS", "0"),
        ] {
            let text = format!("{:#}", upload(&[(k, v)]).unwrap_err());
            assert!(text.contains(k), "{k}={v}: {text}");
        }
        let s = upload(&[
            ("TI_TARGET", "dry-run"),
            ("TI_DRY_RUN_AS", "graph"),
            ("TI_DRY_RUN_DIR", "/tmp/x"),
            ("TI_RATE_WINDOW_SECS", "6"),
        ])
        .unwrap();
        assert_eq!(s.dry_run_as, TargetKind::Graph);
        assert_eq!(s.rate_window, Duration::from_secs(6));
        assert!(!s.needs_credential());
    }

    #[test]
    fn sentinel_targets_need_a_workspace_and_graph_does_not() {
        let s = upload(&[("TI_TARGET", "graph")]).unwrap();
        assert!(s.require_workspace().is_ok());
        let s = upload(&[("TI_TARGET", "graph,sentinel-indicators")]).unwrap();
        let text = format!("{:#}", s.require_workspace().unwrap_err());
        assert!(text.contains("sentinel-indicators"), "{text}");
    }
}
