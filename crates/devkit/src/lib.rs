//! Local development and test support for ti-ingest: everything the handler talks to in Azure,
//! run for real on this machine, so tests and the demo exercise the production code paths
//! (managed-identity tokens over HTTPS to storage, Sentinel uploads, the Functions host protocol).
//!
//! Layout:
//! - [`certs`]: the test CA and the `localhost` leaf Azurite serves; trusted via `SSL_CERT_FILE`.
//! - [`identity`]: the managed-identity token endpoint (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`).
//! - [`azurite`]: starting and stopping Azurite over HTTPS with OAuth on free ports.
//! - [`storage`]: blob and queue helpers through the official SDK and `ManagedIdentityCredential`.
//! - [`host`]: the Functions host driver (invocation envelopes, Event Grid events, retries).
//! - [`stack`]: [`Stack`], one call that starts all of the above plus the Sentinel simulator,
//!   and [`HandlerProcess`], the handler binary running against it.
//! - [`process`]: child processes that cannot outlive the test process.
//! - this file: [`TestEnv`], the process-wide environment in-process SDK clients need.
//!
//! In-process SDK clients read their configuration from the process environment: the TLS roots
//! (`SSL_CERT_FILE`) when a client is built, and `IDENTITY_ENDPOINT` when a
//! `ManagedIdentityCredential` is built. So a test process calls [`TestEnv::global`] (or
//! [`init_test_tls`], or [`Stack::start`], which calls it) *before* building any SDK client; it
//! sets those variables exactly once, so parallel tests do not fight over them. Child processes
//! get the same values explicitly in their environment ([`Stack::handler_env`]).

#![forbid(unsafe_code)]

pub mod azurite;
pub mod certs;
pub mod host;
pub mod identity;
pub mod process;
pub mod stack;
pub mod storage;

pub use azurite::{workspace_root, Azurite, AzuriteOptions};
pub use certs::TestCa;
pub use host::{
    blob_created_event, event_grid_message, Delivery, HostDriver, HostResponse, MessageEncoding,
    QueueRoute, TriggerMessage,
};
pub use identity::{IdentityConfig, IdentityEndpoint, TokenRequest};
pub use stack::{HandlerProcess, Stack, StackConfig};
pub use storage::{ReceivedMessage, Storage};

use anyhow::{Context, Result};
use std::sync::OnceLock;

/// Makes this process trust the shared test CA: generates it once and points `SSL_CERT_FILE` at
/// its bundle (CA + system roots). Call before building the first TLS client.
pub fn init_test_tls() -> Result<&'static TestCa> {
    install_crypto_provider();
    static DONE: OnceLock<()> = OnceLock::new();
    let ca = TestCa::shared()?;
    DONE.get_or_init(|| std::env::set_var("SSL_CERT_FILE", ca.bundle_pem()));
    Ok(ca)
}

/// Installs rustls' *ring* provider as the process default (reqwest is built with
/// `rustls-no-provider`: the workspace Cargo.toml says why); idempotent. [`init_test_tls`] calls it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The process-wide test environment: the shared CA and a managed-identity endpoint running on
/// its own thread (so it outlives every per-test tokio runtime), with `SSL_CERT_FILE`,
/// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set in the process environment.
#[derive(Debug)]
pub struct TestEnv {
    ca: &'static TestCa,
    identity: IdentityEndpoint,
}

impl TestEnv {
    /// Starts the environment on first call; later calls return the same one.
    pub fn global() -> Result<&'static TestEnv> {
        static ENV: OnceLock<std::result::Result<TestEnv, String>> = OnceLock::new();
        ENV.get_or_init(|| TestEnv::create().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("starting the devkit test environment failed: {e}"))
    }

    fn create() -> Result<TestEnv> {
        let ca = init_test_tls()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("devkit-identity".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = IdentityEndpoint::start(IdentityConfig::default()).await;
                    let _ = tx.send(started);
                    // Serve for the life of the process.
                    std::future::pending::<()>().await;
                });
            })
            .context("starting the identity endpoint thread")?;
        let identity = rx
            .recv()
            .context("the identity endpoint thread died")?
            .context("starting the process-wide identity endpoint")?;

        // Service Fabric detection would take precedence over App Service in the SDK.
        std::env::remove_var("IDENTITY_SERVER_THUMBPRINT");
        std::env::set_var("IDENTITY_ENDPOINT", identity.endpoint());
        std::env::set_var("IDENTITY_HEADER", identity.header_secret());
        Ok(TestEnv { ca, identity })
    }

    /// The shared CA.
    pub fn ca(&self) -> &'static TestCa {
        self.ca
    }

    /// The identity endpoint in-process credentials use (its request log is shared by every
    /// test in the process).
    pub fn identity(&self) -> &IdentityEndpoint {
        &self.identity
    }
}
