//! Target `defender`: Microsoft Defender for Endpoint indicators, through the Import Indicators
//! API (`POST {host}/api/indicators/import`, body `{"Indicators":[...]}`; Microsoft Learn,
//! https://learn.microsoft.com/defender-endpoint/api/import-ti-indicators), the successor for
//! what teams sent to Defender through Graph `submitTiIndicators`.
//!
//! - [`SPEC`]: name, token scope and host per cloud, accepted types;
//! - [`request`]: STIX indicator → Defender indicator (`ti_core::convert::defender`), refusing
//!   what cannot become one (CIDR, several observables, an e-mail address ...) before sending;
//! - [`budget`]: the tenant's 15,000 active indicators as a budget ti-ingest keeps in storage;
//! - [`service`]: the call through the shared outbound stack, in its own lane (30 calls/min);
//! - [`mapping`]: the 200 answer's per-indicator `isFailed` / `failureReason` → one outcome per
//!   record (pure).

pub mod budget;
pub mod mapping;
pub mod request;
pub mod service;

use anyhow::{bail, Context, Result};
use ti_core::convert::defender::{DefenderFields, ACTIONS};

use crate::settings::{Cloud, Env};
use crate::upload::target::TargetKind;
use crate::upload::target::{RequestBuilder, Spec};

/// Import calls per minute per identity (import-ti-indicators, "Limitations": "Rate
/// limitations for this API are 30 calls per minute").
pub const CALLS_PER_MINUTE: u32 = 30;
/// Active indicators per tenant (import-ti-indicators, "Limitations": "There's a limit of
/// 15,000 active Indicators per tenant").
pub const MAX_ACTIVE: usize = 15_000;
/// Indicators per import call (import-ti-indicators: "Maximum batch size for one API call is
/// 500"); the pipeline's batches (≤ 100) always fit.
pub const MAX_BATCH: usize = 500;

pub static SPEC: Spec = Spec {
    name: "defender",
    accepted_types: ti_core::stix::INDICATOR_TYPES,
    scope,
    default_host,
    host_setting: "TI_DEFENDER_BASE_URL",
    workspace: false,
    api_version: None,
    max_requests_per_minute: Some(|_| CALLS_PER_MINUTE),
    check: |s, sends| {
        if sends && s.base_url(TargetKind::Defender).is_err() {
            bail!(
                "setting TI_TARGET: defender (Microsoft Defender for Endpoint indicators) has no published API host in TI_CLOUD={}; set TI_DEFENDER_BASE_URL to the host Microsoft gave you",
                s.cloud.name()
            );
        }
        Ok(())
    },
    request: |s| RequestBuilder::new(request::Defender::new(s)),
    service: |s, outbound| Ok(Box::new(service::Defender::new(s, outbound)?)),
    probe: |s| {
        Ok((
            request::url(s.base_url(TargetKind::Defender)?),
            serde_json::json!({"Indicators": []}),
        ))
    },
    permission: "grant the identity the application permission Ti.ReadWrite.All of WindowsDefenderATP (Microsoft Defender for Endpoint) and admin consent; README.md, Upload targets, shows the commands",
};

/// The token audience: the API's resource, `https://api.securitycenter.microsoft.com` ("Use
/// https://api.securitycenter.microsoft.com as the resource or scope when acquiring tokens",
/// Microsoft Learn, https://learn.microsoft.com/defender-endpoint/api/run-advanced-query-sample-python);
/// US Government (GCC High and DoD): the API URI Microsoft lists in place of the public one,
/// `https://api-gov.securitycenter.microsoft.us` (Microsoft Learn,
/// https://learn.microsoft.com/defender-endpoint/gov, "API").
fn scope(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::UsGov => "https://api-gov.securitycenter.microsoft.us/.default",
        Cloud::Public | Cloud::China => "https://api.securitycenter.microsoft.com/.default",
    }
}

/// The API host: public `api.securitycenter.microsoft.com` (import-ti-indicators, "HTTP
/// request"); US Government GCC High / DoD `api-gov.securitycenter.microsoft.us` (Microsoft
/// Learn, defender-endpoint/gov, "API"; GCC's `api-gcc.securitycenter.microsoft.us` goes in
/// `TI_DEFENDER_BASE_URL`). Microsoft publishes no Defender for Endpoint API host for Azure
/// China, so none is guessed.
fn default_host(cloud: Cloud) -> Option<&'static str> {
    match cloud {
        Cloud::Public => Some("https://api.securitycenter.microsoft.com"),
        Cloud::UsGov => Some("https://api-gov.securitycenter.microsoft.us"),
        Cloud::China => None,
    }
}

/// Which records go first when the budget cannot take them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Higher `confidence` first, then the more recently `modified`.
    Confidence,
    /// The more recently `modified` first, then higher `confidence`.
    Recency,
}

/// The `TI_DEFENDER_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefenderSettings {
    /// `action`, `generateAlert`, `rbacGroupNames` (and `application`, from
    /// `TI_SOURCE_SYSTEM`).
    pub fields: DefenderFields,
    /// `TI_DEFENDER_MAX_ACTIVE` (15,000): the active indicators ti-ingest may place.
    pub max_active: usize,
    /// `TI_DEFENDER_PRIORITY` (`confidence`).
    pub priority: Priority,
}

impl DefenderSettings {
    pub fn from_env(env: &Env, application: &str) -> Result<Self> {
        let action = env.or("TI_DEFENDER_ACTION", "Audit");
        let action = ACTIONS
            .iter()
            .find(|a| a.eq_ignore_ascii_case(action))
            .with_context(|| {
                format!(
                    "setting TI_DEFENDER_ACTION={action:?}: accepted values are {}",
                    ACTIONS.join(", ")
                )
            })?
            .to_string();
        let generate_alert = match env.or("TI_DEFENDER_GENERATE_ALERT", "true") {
            v if v.eq_ignore_ascii_case("true") => true,
            v if v.eq_ignore_ascii_case("false") => false,
            v => bail!("setting TI_DEFENDER_GENERATE_ALERT={v:?}: accepted values are true, false"),
        };
        // post-ti-indicator: "The GenerateAlert parameter must be set to TRUE when creating an
        // action with Audit".
        if action == "Audit" && !generate_alert {
            bail!("setting TI_DEFENDER_GENERATE_ALERT=false: Defender requires generateAlert true for TI_DEFENDER_ACTION=Audit");
        }
        let rbac_group_names = env
            .or("TI_DEFENDER_RBAC_GROUPS", "")
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        let priority = match env.or("TI_DEFENDER_PRIORITY", "confidence") {
            "confidence" => Priority::Confidence,
            "recency" => Priority::Recency,
            other => bail!(
                "setting TI_DEFENDER_PRIORITY={other:?}: accepted values are confidence (then recency), recency (then confidence)"
            ),
        };
        Ok(DefenderSettings {
            fields: DefenderFields {
                action,
                generate_alert,
                application: application.to_string(),
                rbac_group_names,
            },
            max_active: env.number("TI_DEFENDER_MAX_ACTIVE", MAX_ACTIVE, (1, MAX_ACTIVE))?,
            priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::UploadSettings;

    fn upload(pairs: &[(&str, &str)]) -> Result<UploadSettings> {
        UploadSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_never_block_and_each_setting_is_checked() {
        let s = upload(&[("TI_TARGET", "defender")]).unwrap();
        assert_eq!(s.defender.fields.action, "Audit");
        assert!(s.defender.fields.generate_alert);
        assert_eq!(s.defender.fields.application, "ti-ingest");
        assert!(s.defender.fields.rbac_group_names.is_empty());
        assert_eq!(s.defender.max_active, 15_000);
        assert_eq!(s.defender.priority, Priority::Confidence);
        let s = upload(&[
            ("TI_DEFENDER_ACTION", "block"),
            ("TI_DEFENDER_RBAC_GROUPS", "servers, laptops"),
            ("TI_DEFENDER_MAX_ACTIVE", "10000"),
            ("TI_DEFENDER_PRIORITY", "recency"),
        ])
        .unwrap();
        assert_eq!(s.defender.fields.action, "Block");
        assert_eq!(s.defender.fields.rbac_group_names, ["servers", "laptops"]);
        assert_eq!(s.defender.max_active, 10_000);
        assert_eq!(s.defender.priority, Priority::Recency);
        for (k, v) in [
            ("TI_DEFENDER_ACTION", "Quarantine"),
            ("TI_DEFENDER_GENERATE_ALERT", "false"),
            ("TI_DEFENDER_MAX_ACTIVE", "15001"),
            ("TI_DEFENDER_PRIORITY", "size"),
        ] {
            let text = format!("{:#}", upload(&[(k, v)]).unwrap_err());
            assert!(text.contains(k), "{k}={v}: {text}");
        }
    }

    #[test]
    fn each_cloud_has_its_host_and_audience() {
        for (cloud, host, scope) in [
            (
                "public",
                Some("https://api.securitycenter.microsoft.com"),
                "https://api.securitycenter.microsoft.com/.default",
            ),
            (
                "usgov",
                Some("https://api-gov.securitycenter.microsoft.us"),
                "https://api-gov.securitycenter.microsoft.us/.default",
            ),
        ] {
            let s = upload(&[("TI_TARGET", "defender"), ("TI_CLOUD", cloud)]).unwrap();
            assert_eq!(s.base_url(TargetKind::Defender).ok(), host);
            assert_eq!(TargetKind::Defender.scope(s.cloud), Some(scope));
        }
        let text = format!(
            "{:#}",
            upload(&[("TI_TARGET", "defender"), ("TI_CLOUD", "china")]).unwrap_err()
        );
        assert!(text.contains("TI_DEFENDER_BASE_URL"), "{text}");
        upload(&[
            ("TI_TARGET", "defender"),
            ("TI_CLOUD", "china"),
            ("TI_DEFENDER_BASE_URL", "https://defender.example.internal"),
        ])
        .unwrap();
    }
}
