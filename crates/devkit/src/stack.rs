//! [`Stack`]: everything a ti-ingest integration test or the demo needs, started with one call —
//! Azurite (HTTPS + OAuth) with the app's containers and queues, a managed-identity endpoint for
//! the handler, and the Sentinel simulator — plus [`HandlerProcess`], the real handler binary
//! started against it the way the Functions host starts it.
//!
//! The handler gets its own identity endpoint (only the handler's token requests land in its
//! log, and it issues tokens only to the configured user-assigned client id, like an app with
//! just that identity). In-process helpers ([`Stack::storage`]) use the process-wide
//! [`TestEnv`] endpoint, because the SDK reads `IDENTITY_ENDPOINT` from the
//! process environment.

use crate::azurite::{Azurite, AzuriteOptions};
use crate::host::{HostDriver, QueueRoute, INGEST_BLOB_EVENT, INGEST_MESSAGE};
use crate::identity::{IdentityConfig, IdentityEndpoint};
use crate::process::{Spec, Supervised};
use crate::storage::Storage;
use crate::TestEnv;
use anyhow::{bail, Context, Result};
use sentinel_sim::{SimConfig, Simulator};
use std::path::Path;
use std::time::{Duration, Instant};

/// The user-assigned identity's client id the handler is given (`AZURE_CLIENT_ID`).
pub const DEFAULT_CLIENT_ID: &str = "c11e0000-0000-4000-8000-00000000c11e";
/// The Log Analytics workspace id the handler is given (`TI_WORKSPACE_ID`).
/// The simulator knows this workspace by default (and only this one), so the stack's handler
/// reaches it and any other id gets the 404 Azure gives.
pub const DEFAULT_WORKSPACE_ID: &str = sentinel_sim::DEFAULT_WORKSPACE_ID;
/// Default inbox container.
pub const INBOX_CONTAINER: &str = "indicator-inbox";
/// Default reports container.
pub const REPORTS_CONTAINER: &str = "indicator-reports";
/// The container of the feeds configuration (`TI_FEEDS_CONFIG`'s default,
/// `indicator-config/feeds.json`), created empty.
pub const CONFIG_CONTAINER: &str = "indicator-config";
/// Queue fed by Event Grid BlobCreated events.
pub const BLOB_EVENTS_QUEUE: &str = "indicator-blob-events";
/// Queue of inline/reference indicator messages.
pub const INBOX_QUEUE: &str = "indicator-messages";
/// Queue of work items (ranges of large inputs).
pub const WORK_QUEUE: &str = "indicator-work";

/// How long a handler may take to answer its first `GET /`.
const HANDLER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// What to start.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The simulator's behaviour.
    pub sim: SimConfig,
    /// The handler's user-assigned identity (`AZURE_CLIENT_ID`); `None` = system-assigned.
    pub client_id: Option<String>,
    /// `TI_WORKSPACE_ID`. The simulator knows only `sim.workspaces` (by default this same
    /// [`DEFAULT_WORKSPACE_ID`]): another id here needs it there too, or uploads get the 404 of
    /// an unknown workspace, as in Azure.
    pub workspace_id: String,
    /// Lifetime of the handler's tokens (5 minutes or less: the SDK refetches on every use).
    pub token_lifetime: Duration,
    /// How Azurite runs.
    pub azurite: AzuriteOptions,
    /// Copy the handler's output to stderr.
    pub echo_handler: bool,
    /// More handler settings (`TI_TARGET`, `TI_ON_INVALID`, ...), applied last.
    pub extra_env: Vec<(String, String)>,
}

impl StackConfig {
    /// The default stack with `sim` and more handler settings (`TI_TARGET`, ...).
    pub fn with(sim: SimConfig, extra_env: &[(&str, &str)]) -> StackConfig {
        StackConfig {
            sim,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..StackConfig::default()
        }
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            sim: SimConfig::default(),
            client_id: Some(DEFAULT_CLIENT_ID.to_string()),
            workspace_id: DEFAULT_WORKSPACE_ID.to_string(),
            token_lifetime: Duration::from_secs(3600),
            azurite: AzuriteOptions::default(),
            echo_handler: false,
            extra_env: Vec::new(),
        }
    }
}

/// A running stack. Everything stops when it is dropped.
pub struct Stack {
    config: StackConfig,
    env: &'static TestEnv,
    azurite: Azurite,
    identity: IdentityEndpoint,
    sim: Simulator,
    storage: Storage,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("blob_url", &self.azurite.blob_url())
            .field("queue_url", &self.azurite.queue_url())
            .field("identity", &self.identity.endpoint())
            .field("sim", &self.sim.url())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts Azurite, the handler's identity endpoint and the simulator, and creates the
    /// containers and queues (with their `-poison` twins).
    pub async fn start(config: StackConfig) -> Result<Stack> {
        let env = TestEnv::global()?;
        let azurite = Azurite::start(env.ca(), config.azurite.clone()).await?;
        let identity = IdentityEndpoint::start(IdentityConfig {
            token_lifetime: config.token_lifetime,
            allowed_client_ids: config.client_id.clone().map(|id| vec![id]),
            allow_system_assigned: config.client_id.is_none(),
            ..IdentityConfig::default()
        })
        .await?;
        let sim = Simulator::start(config.sim.clone())
            .await
            .context("starting the Sentinel simulator")?;
        let storage =
            Storage::with_managed_identity(&azurite.blob_url(), &azurite.queue_url(), None)?;
        for container in [INBOX_CONTAINER, REPORTS_CONTAINER, CONFIG_CONTAINER] {
            storage.create_container(container).await?;
        }
        for queue in [BLOB_EVENTS_QUEUE, INBOX_QUEUE, WORK_QUEUE] {
            storage.create_queue(queue).await?;
            storage.create_queue(&format!("{queue}-poison")).await?;
        }
        Ok(Stack {
            config,
            env,
            azurite,
            identity,
            sim,
            storage,
        })
    }

    /// [`Stack::start`] for a test: a stack that cannot start fails the test with what to do.
    pub async fn for_test(config: StackConfig) -> Stack {
        match Stack::start(config).await {
            Ok(stack) => stack,
            Err(e) => panic!("the stack starts (run scripts/setup-azurite.sh first): {e:#}"),
        }
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1`.
    pub fn blob_url(&self) -> String {
        self.azurite.blob_url()
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1`.
    pub fn queue_url(&self) -> String {
        self.azurite.queue_url()
    }

    /// Azurite (stop/restart it for outage tests).
    pub fn azurite(&self) -> &Azurite {
        &self.azurite
    }

    /// Azurite, mutably.
    pub fn azurite_mut(&mut self) -> &mut Azurite {
        &mut self.azurite
    }

    /// The handler's identity endpoint (its request log is the handler's alone).
    pub fn identity(&self) -> &IdentityEndpoint {
        &self.identity
    }

    /// The Sentinel simulator.
    pub fn sim(&self) -> &Simulator {
        &self.sim
    }

    /// In-process storage clients (process-wide identity endpoint).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The configuration the stack was started with.
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Everything the handler process needs in its environment.
    pub fn handler_env(&self) -> Vec<(String, String)> {
        let mut env = self.identity.env();
        if let Some(id) = &self.config.client_id {
            env.push(("AZURE_CLIENT_ID".into(), id.clone()));
        }
        let pairs = [
            (
                "SSL_CERT_FILE",
                self.env.ca().bundle_pem().display().to_string(),
            ),
            ("TI_STORAGE_BLOB_URL", self.blob_url()),
            ("TI_STORAGE_QUEUE_URL", self.queue_url()),
            ("TI_API_BASE_URL", self.sim.url()),
            ("TI_WORKSPACE_ID", self.config.workspace_id.clone()),
            ("TI_INBOX_CONTAINER", INBOX_CONTAINER.into()),
            ("TI_REPORTS_CONTAINER", REPORTS_CONTAINER.into()),
            ("TI_BLOB_EVENTS_QUEUE", BLOB_EVENTS_QUEUE.into()),
            ("TI_INBOX_QUEUE", INBOX_QUEUE.into()),
            ("TI_WORK_QUEUE", WORK_QUEUE.into()),
        ];
        env.extend(pairs.into_iter().map(|(k, v)| (k.to_string(), v)));
        env.extend(self.config.extra_env.iter().cloned());
        env
    }

    /// Starts `<binary> serve` with [`Stack::handler_env`] and `FUNCTIONS_CUSTOMHANDLER_PORT`,
    /// like the host, and waits until it answers `GET /`.
    pub async fn spawn_handler(&self, binary: impl AsRef<Path>) -> Result<HandlerProcess> {
        self.spawn_handler_with(binary, &[]).await
    }

    /// Like [`Stack::spawn_handler`], with extra settings applied last.
    pub async fn spawn_handler_with(
        &self,
        binary: impl AsRef<Path>,
        extra_env: &[(String, String)],
    ) -> Result<HandlerProcess> {
        let mut env = self.handler_env();
        env.extend(extra_env.iter().cloned());
        HandlerProcess::spawn(binary.as_ref(), env, self.config.echo_handler).await
    }

    /// Uploads a blob into the inbox container.
    pub async fn upload_inbox(&self, name: &str, content: impl Into<Vec<u8>>) -> Result<u64> {
        let content = content.into();
        let len = content.len() as u64;
        self.storage
            .upload_blob(INBOX_CONTAINER, name, content)
            .await?;
        Ok(len)
    }

    /// Uploads a blob into the inbox and delivers its BlobCreated event to `IngestBlobEvent`.
    pub async fn ingest_blob(
        &self,
        driver: &HostDriver,
        name: &str,
        content: impl Into<Vec<u8>>,
    ) -> Result<crate::Delivery> {
        let len = self.upload_inbox(name, content).await?;
        driver
            .deliver_blob_created(&self.blob_url(), INBOX_CONTAINER, name, len)
            .await
    }

    /// The report written for inbox blob `name` (`<report base>.report.json`, see
    /// [`report_base`]), if any.
    pub async fn report(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let Some(bytes) = self
            .storage
            .try_read_blob(
                REPORTS_CONTAINER,
                &format!("{}.report.json", report_base(name)),
            )
            .await?
        else {
            return Ok(None);
        };
        let report = serde_json::from_slice(&bytes)
            .with_context(|| format!("{name}.report.json is not JSON"))?;
        Ok(Some(report))
    }

    /// Routes for the queues whose functions are fixed by the design.
    pub fn default_routes() -> Vec<QueueRoute> {
        vec![
            QueueRoute::new(BLOB_EVENTS_QUEUE, INGEST_BLOB_EVENT),
            QueueRoute::new(INBOX_QUEUE, INGEST_MESSAGE),
            QueueRoute::new(WORK_QUEUE, "IngestWorkItem"),
        ]
    }
}

/// The reports-container path (before `.report.json` / `.rejected.ndjson`) the handler uses for
/// inbox blob `name`, written out here independently of the handler (README, "Reports"): the name
/// itself when `<name>.rejected.ndjson` fits Azure's 1,024-character blob-name limit (Microsoft
/// Learn, "Naming and Referencing Containers, Blobs, and Metadata"), else its first 991
/// characters, `~`, and the first 16 hex digits of uuidv5(namespace
/// 3b6f0c1e-52a7-4d09-9e8b-71c4d2a50f36, name).
pub fn report_base(name: &str) -> String {
    const LIMIT: usize = 1024;
    let suffix = ".rejected.ndjson".len();
    if name.chars().count() + suffix <= LIMIT {
        return name.to_string();
    }
    let head: String = name.chars().take(LIMIT - suffix - 17).collect();
    let ns = uuid::Uuid::parse_str("3b6f0c1e-52a7-4d09-9e8b-71c4d2a50f36").expect("a valid uuid");
    let hash = uuid::Uuid::new_v5(&ns, name.as_bytes())
        .simple()
        .to_string();
    format!("{head}~{}", &hash[..16])
}

/// The handler binary, started like the Functions host starts a custom handler. Killed on drop.
#[derive(Debug)]
pub struct HandlerProcess {
    process: Supervised,
    port: u16,
    driver: HostDriver,
}

/// Settings inherited from the developer's shell that would change what the handler does.
fn is_ambient_setting(key: &str) -> bool {
    key.starts_with("TI_")
        || matches!(
            key,
            "AZURE_CLIENT_ID"
                | "IDENTITY_ENDPOINT"
                | "IDENTITY_HEADER"
                | "IDENTITY_SERVER_THUMBPRINT"
                | "IMDS_ENDPOINT"
                | "MSI_ENDPOINT"
                | "MSI_SECRET"
                | "FUNCTIONS_CUSTOMHANDLER_PORT"
                | "SSL_CERT_FILE"
                | "SSL_CERT_DIR"
        )
}

impl HandlerProcess {
    /// Starts `<binary> serve` with exactly `env` (plus the ordinary inherited environment) on a
    /// free port and waits until it answers.
    pub async fn spawn(
        binary: &Path,
        env: Vec<(String, String)>,
        echo: bool,
    ) -> Result<HandlerProcess> {
        if !binary.exists() {
            bail!(
                "handler binary {} does not exist (build it with `cargo build --bin ti-ingest`)",
                binary.display()
            );
        }
        let env_remove: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| is_ambient_setting(k))
            .collect();
        let mut last_error = None;
        // The port is free when picked but could be taken before the handler binds it.
        for _ in 0..3 {
            let port = free_port()?;
            let mut child_env = env.clone();
            child_env.push(("FUNCTIONS_CUSTOMHANDLER_PORT".into(), port.to_string()));
            let mut process = Supervised::spawn(Spec {
                program: binary.to_path_buf(),
                args: vec!["serve".into()],
                env: child_env,
                env_remove: env_remove.clone(),
                echo,
                label: "handler".into(),
                ..Spec::default()
            })
            .await?;
            let driver = HostDriver::new(format!("http://127.0.0.1:{port}"));
            match wait_handler_ready(&mut process, &driver).await {
                Ok(()) => {
                    return Ok(HandlerProcess {
                        process,
                        port,
                        driver,
                    })
                }
                Err(e) => {
                    let output = process.output();
                    let port_taken = output.contains("in use") || output.contains("AddrInUse");
                    last_error = Some(e);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the handler did not start")))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.driver.base_url().to_string()
    }

    /// `FUNCTIONS_CUSTOMHANDLER_PORT`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A host driver aimed at this handler.
    pub fn driver(&self) -> &HostDriver {
        &self.driver
    }

    /// The handler's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the handler printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.process.output()
    }

    /// `Some(status)` once the handler has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_exit_status()
    }

    /// SIGKILLs the handler (what a function timeout or a host recycle does) and waits.
    pub async fn kill(&mut self) -> Result<()> {
        self.process.kill().await
    }

    /// Sends SIGTERM and waits up to `timeout` for a graceful exit.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.process.signal("TERM")?;
        self.process.wait_exit(timeout).await
    }
}

async fn wait_handler_ready(process: &mut Supervised, driver: &HostDriver) -> Result<()> {
    let deadline = Instant::now() + HANDLER_START_TIMEOUT;
    loop {
        if let Some(status) = process.try_exit_status() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bail!(
                "the handler exited ({status}) before answering:\n{}",
                process.output()
            );
        }
        if driver.wait_ready(Duration::from_millis(200)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the handler did not answer GET / within {HANDLER_START_TIMEOUT:?}:\n{}",
                process.output()
            );
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
