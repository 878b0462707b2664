//! Target `sentinel-indicators`: the legacy Sentinel Upload Indicators API
//! (`POST /workspaces/{id}/threatintelligenceindicators:upload`, the seed's OpenAPI), which many
//! tenants and tools still run on. Body key `indicators`; only `indicator` objects.
//!
//! - [`request`]: batch → request body, refusing other object types before sending (pure);
//! - the HTTP call: [`crate::upload::sentinel_stix::service`], shared by both Sentinel targets;
//! - [`mapping`]: the service's answer → one outcome per object (pure).

pub mod mapping;
pub mod request;
