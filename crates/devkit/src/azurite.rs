//! Azurite, the Azure Storage emulator, started per test over HTTPS with OAuth, the way production
//! storage is reached: a bearer token over TLS, no shared key, no SAS.
//!
//! The binary is `<workspace>/node_modules/.bin/azurite` (pinned in `package.json`, installed by
//! `scripts/setup-azurite.sh`), or `AZURITE_BIN`. Azurite 3.37 accepts port 0 and prints the port
//! it bound ("… successfully listening at https://127.0.0.1:PORT"), so the first start never races
//! another process for a port; a restart asks for the same ports again so URLs handed to a handler
//! stay valid.

use crate::certs::TestCa;
use crate::process::{Spec, Supervised};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Azurite's well-known development account (the only one it serves by default).
pub const ACCOUNT: &str = "devstoreaccount1";

/// How long a start may take before we give up (a cold `node` start is ~1 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run Azurite.
#[derive(Debug, Clone, Default)]
pub struct AzuriteOptions {
    /// Keep data in memory only (fastest). When false, data lives in a temporary `--location`
    /// that survives [`Azurite::restart`] (Azurite saves on SIGTERM) and is deleted on drop.
    pub in_memory: bool,
    /// Copy Azurite's output to stderr (debugging).
    pub echo: bool,
    /// Also write Azurite's access log to the output (off by default: `--silent`).
    pub access_log: bool,
}

/// A running Azurite. Killed when dropped.
#[derive(Debug)]
pub struct Azurite {
    options: AzuriteOptions,
    bin: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    blob_port: u16,
    queue_port: u16,
    table_port: u16,
    workdir: TempDir,
    process: Option<Supervised>,
}

/// The workspace root (where `package.json` and `node_modules/` are).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// The Azurite executable: `AZURITE_BIN`, else `<workspace>/node_modules/.bin/azurite`.
pub fn azurite_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("AZURITE_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.exists() {
            bail!(
                "AZURITE_BIN is set to {}, which does not exist",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let bin = workspace_root().join("node_modules/.bin/azurite");
    if !bin.exists() {
        bail!(
            "Azurite is not installed ({} is missing): run scripts/setup-azurite.sh \
             (it runs `npm ci` from the pinned package-lock.json), or set AZURITE_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

impl Azurite {
    /// Starts Azurite with HTTPS (the CA's leaf) and `--oauth basic` on free ports and waits
    /// until blob and queue services listen.
    pub async fn start(ca: &TestCa, options: AzuriteOptions) -> Result<Azurite> {
        let workdir = crate::process::owned_tempdir("azurite")?;
        let mut azurite = Azurite {
            options,
            bin: azurite_bin()?,
            cert: ca.leaf_pem(),
            key: ca.leaf_key(),
            blob_port: 0,
            queue_port: 0,
            table_port: 0,
            workdir,
            process: None,
        };
        azurite.launch().await?;
        Ok(azurite)
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1` (no trailing slash: the SDK appends
    /// `/container`, and a trailing slash would make it `//container`).
    pub fn blob_url(&self) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}", self.blob_port)
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1`, for queues.
    pub fn queue_url(&self) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}", self.queue_port)
    }

    /// The blob service port.
    pub fn blob_port(&self) -> u16 {
        self.blob_port
    }

    /// The queue service port.
    pub fn queue_port(&self) -> u16 {
        self.queue_port
    }

    /// The `node` process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Supervised::pid)
    }

    /// Whether Azurite is running (not stopped).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Everything Azurite printed since its last start.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(Supervised::output)
            .unwrap_or_default()
    }

    /// Stops Azurite (storage outage). SIGTERM first so a persistent instance saves its data.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            let _ = process.signal("TERM");
            if process.wait_exit(Duration::from_secs(5)).await.is_err() {
                process.kill().await?;
            }
        }
        Ok(())
    }

    /// Stops (if running) and starts again on the same ports. Data survives unless
    /// [`AzuriteOptions::in_memory`].
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        // Another process may grab a freed port in between; retry briefly before giving up.
        let mut last = None;
        for _ in 0..20 {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("restart failed")))
    }

    async fn launch(&mut self) -> Result<()> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            self.blob_port.to_string().into(),
            "--queueHost".into(),
            "127.0.0.1".into(),
            "--queuePort".into(),
            self.queue_port.to_string().into(),
            "--tableHost".into(),
            "127.0.0.1".into(),
            "--tablePort".into(),
            self.table_port.to_string().into(),
            "--oauth".into(),
            "basic".into(),
            "--cert".into(),
            self.cert.clone().into(),
            "--key".into(),
            self.key.clone().into(),
            // Azurite phones home by default.
            "--disableTelemetry".into(),
            // The SDK sends the newest x-ms-version, which may be newer than the pinned Azurite.
            "--skipApiVersionCheck".into(),
        ];
        if !self.options.access_log {
            args.push("--silent".into());
        }
        if self.options.in_memory {
            args.push("--inMemoryPersistence".into());
        } else {
            args.push("--location".into());
            args.push(self.workdir.path().join("data").into());
        }
        let process = Supervised::spawn(Spec {
            program: self.bin.clone(),
            args,
            cwd: Some(self.workdir.path().to_path_buf()),
            echo: self.options.echo,
            label: "azurite".into(),
            ..Spec::default()
        })
        .await?;
        let mut process = process;
        let ports = wait_listening(&mut process).await?;
        self.blob_port = ports.blob;
        self.queue_port = ports.queue;
        self.table_port = ports.table;
        self.process = Some(process);
        Ok(())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Ports {
    blob: u16,
    queue: u16,
    table: u16,
}

/// Reads the "successfully listening at" lines Azurite prints for each service.
async fn wait_listening(process: &mut Supervised) -> Result<Ports> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let output = process.output();
        let ports = parse_ports(&output);
        if ports.blob != 0 && ports.queue != 0 && ports.table != 0 {
            return Ok(ports);
        }
        if let Some(status) = process.try_exit_status() {
            // Give the output drains a moment to catch the last lines.
            tokio::time::sleep(Duration::from_millis(100)).await;
            bail!(
                "Azurite exited ({status}) during start-up:\n{}",
                process.output()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "Azurite did not start listening within {START_TIMEOUT:?}:\n{}",
                output
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn parse_ports(output: &str) -> Ports {
    let mut ports = Ports::default();
    for line in output.lines() {
        let Some(rest) = line.split("successfully listening at ").nth(1) else {
            continue;
        };
        let Some(port) = rest
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        else {
            continue;
        };
        if line.contains("Blob service") {
            ports.blob = port;
        } else if line.contains("Queue service") {
            ports.queue = port;
        } else if line.contains("Table service") {
            ports.table = port;
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_lines() {
        let out = "Azurite Blob service is starting at https://127.0.0.1:0\n\
                   Azurite Blob service is successfully listening at https://127.0.0.1:43147\n\
                   Azurite Queue service is successfully listening at https://127.0.0.1:44113\n\
                   Azurite Table service is successfully listening at https://127.0.0.1:38029\n";
        let p = parse_ports(out);
        assert_eq!((p.blob, p.queue, p.table), (43147, 44113, 38029));
    }

    #[test]
    fn a_missing_binary_names_the_setup_script() {
        // Only meaningful when AZURITE_BIN is not set by the caller.
        if std::env::var_os("AZURITE_BIN").is_some() {
            return;
        }
        let root = workspace_root();
        assert!(root.join("Cargo.toml").exists(), "{}", root.display());
        if !root.join("node_modules/.bin/azurite").exists() {
            let err = azurite_bin().unwrap_err().to_string();
            assert!(err.contains("scripts/setup-azurite.sh"), "{err}");
        }
    }
}
