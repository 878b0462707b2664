//! Target `graph`: Microsoft Graph `submitTiIndicators` (beta,
//! `POST /beta/security/tiIndicators/submitTiIndicators`), for tenants that still have it
//! (Microsoft announced its removal for 2026-04-10). Public cloud only.
//!
//! - [`request`]: batch → `{"value":[tiIndicator...]}`, converting each STIX indicator and
//!   refusing what cannot become a tiIndicator before sending (pure);
//! - [`service`]: the HTTP call through the shared outbound stack (scope
//!   `https://graph.microsoft.com/.default`);
//! - [`mapping`]: `200` (all created) / `206 Partial Content` (per-item `"Error"` strings, matched
//!   by position) → one outcome per object (pure).

pub mod mapping;
pub mod request;
pub mod service;

pub use service::Graph;
