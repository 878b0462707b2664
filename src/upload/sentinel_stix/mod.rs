//! Target `sentinel-stix`: the Sentinel STIX objects upload API
//! (`POST /workspaces/{id}/threat-intelligence-stix-objects:upload`).
//!
//! - [`request`]: batch → request body (pure);
//! - [`service`]: the HTTP call with auth, pacing and retries (for both Sentinel targets);
//! - [`mapping`]: the service's answer → one outcome per object (pure).

pub mod mapping;
pub mod request;
pub mod service;

pub use service::Sentinel;
