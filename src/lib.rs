//! ti-ingest: gets threat-intelligence indicators into Microsoft Sentinel.
//!
//! Layout (one module per pipeline stage; the I/O-free stages live in the `ti-core` crate):
//! - [`startup`]: builds the app once: every setting checked, the credential, storage, uploader
//!   and puller built and owned by the shared state.
//! - [`settings`]: app settings parsed once into typed values.
//! - [`auth`]: the token credential (managed identity, or Azure CLI for the CLI).
//! - [`storage`]: blobs through the official SDK: streamed reads, reports and rejected records.
//! - [`pipeline`]: input bytes → records → validation → batches → upload → report. Knows nothing
//!   of the Functions host, so the CLI runs exactly the same code.
//! - [`upload`]: the targets, the shared pacer and the retry decision.
//! - [`functions`]: the Functions custom-handler protocol and the handlers (orchestration only).
//! - [`checkpoint`]: checkpointed runs (record ranges kept as parts; one resume and assembly
//!   algorithm) over blobs and local files.
//! - [`work`]: work items: a large blob as a chain of ranges handed from invocation to invocation.
//! - [`pull`]: scheduled pulls of TAXII 2.1 collections and HTTPS feeds into the pipeline.
//! - [`lifecycle`]: list feeds' indicators retired when dropped and refreshed before expiry;
//!   revocation.
//! - [`doctor`]: `ti-ingest doctor` and the `Health` function: what is wrong, with the fix.
//! - [`cli`]: `serve`, `validate`, `upload`, `convert`, `pull`, `doctor`.
//!
//! Imports go one way: `cli` → `startup` → (`pull`, `storage`, `upload`, `settings`, `auth`);
//! `functions` → `startup`'s [`startup::AppState`]; nothing below reaches back up.

pub mod auth;
pub mod checkpoint;
pub mod cli;
pub mod doctor;
pub mod functions;
pub mod lifecycle;
pub mod pipeline;
pub mod pull;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod upload;
pub mod work;

/// Installs rustls' *ring* crypto provider as the process default, once; every HTTPS client of
/// the process (reqwest's, the Azure SDK's) uses it. reqwest is built with `rustls-no-provider`
/// (Cargo.toml says why), so a client built before this panics; `main` calls it first, and the
/// constructors of our clients call it too, so library users (tests) need not.
pub fn install_crypto_provider() {
    // Err only when a provider is already installed: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
