//! The service call for `sentinel-indicators`: the Sentinel service both Sentinel targets share
//! ([`Sentinel`]: token, lane, retries, the shared answer mapping) with this API's URL.

use crate::upload::sentinel_stix::Sentinel;
use crate::upload::target::TargetKind;
use crate::upload::transport::Outbound;
use crate::upload::UploadSettings;

pub fn new(settings: &UploadSettings, outbound: Outbound) -> anyhow::Result<Sentinel> {
    Sentinel::new(
        TargetKind::SentinelIndicators,
        settings,
        outbound,
        super::request::url,
    )
}
