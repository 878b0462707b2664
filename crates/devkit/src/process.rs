//! Child processes that cannot outlive the test: Azurite and the handler under test.
//!
//! `kill_on_drop` only helps when `Drop` runs; a test binary killed by a timeout (or a SIGKILL)
//! would leave a `node` listening forever. So every child runs under a tiny `sh` supervisor
//! holding the read end of a pipe whose write end only this process has: when that end closes
//! (we dropped the handle, or this process died in any way), the supervisor SIGKILLs the child.
//! The supervisor writes the real child's pid to a file, so `kill()` hits the program itself
//! and not the shell. Linux/Unix only (`sh`, `kill`), like the rest of the devkit.

use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// `$1` = pid file, the rest = the program and its arguments.
const SUPERVISOR: &str = r#"
pidfile=$1; shift
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
echo "$child" > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
( while IFS= read -r _line; do :; done <&3; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// Lines kept from a child's stdout+stderr, so errors and tests can show what it said.
const MAX_OUTPUT_LINES: usize = 20_000;

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment (added to this process's environment).
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Copy every output line to this process's stderr, prefixed with `[label]`.
    pub echo: bool,
    /// A short name for messages and echoed lines.
    pub label: String,
}

/// A running supervised child.
pub struct Supervised {
    label: String,
    supervisor: Child,
    /// Held only to be closed: closing it is the supervisor's signal to kill the child.
    lifeline: Option<ChildStdin>,
    pid: u32,
    output: Arc<Mutex<VecDeque<String>>>,
    _pid_dir: TempDir,
}

impl std::fmt::Debug for Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised")
            .field("label", &self.label)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Supervised {
    /// Starts the program under the supervisor and waits until its pid is known.
    pub async fn spawn(spec: Spec) -> Result<Supervised> {
        let pid_dir = owned_tempdir("pid")?;
        let pid_file = pid_dir.path().join("pid");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("devkit-supervisor")
            .arg(&pid_file)
            .arg(&spec.program)
            .args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in &spec.env_remove {
            cmd.env_remove(key);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        let mut supervisor = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.label, spec.program.display()))?;
        let lifeline = supervisor.stdin.take();
        let output = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = supervisor.stdout.take() {
            drain(out, output.clone(), spec.label.clone(), spec.echo);
        }
        if let Some(err) = supervisor.stderr.take() {
            drain(err, output.clone(), spec.label.clone(), spec.echo);
        }

        let pid = read_pid(&pid_file, &mut supervisor, &spec.label).await?;
        Ok(Supervised {
            label: spec.label,
            supervisor,
            lifeline,
            pid,
            output,
            _pid_dir: pid_dir,
        })
    }

    /// The program's own pid (not the supervisor's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything the program printed so far (stdout and stderr interleaved by line).
    pub fn output(&self) -> String {
        let lines = self.output.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
    }

    /// `Some(exit status)` once the program has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.supervisor.try_wait().ok().flatten()
    }

    /// Waits until the program exits, up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        match tokio::time::timeout(timeout, self.supervisor.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!("{} did not exit within {timeout:?}", self.label),
        }
    }

    /// Sends `signal` (e.g. `"TERM"`, `"KILL"`) to the program itself.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} {} ({}) failed", self.pid, self.label);
        }
        Ok(())
    }

    /// SIGKILLs the program and waits until it is gone.
    pub async fn kill(&mut self) -> Result<()> {
        if self.try_exit_status().is_none() {
            // It may exit between the check and the signal; that is fine.
            let _ = self.signal("KILL");
        }
        self.wait_exit(Duration::from_secs(10)).await?;
        Ok(())
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Kill the program directly so it is gone by the time drop returns (a restarted Azurite
        // wants the same ports); closing the lifeline is the backstop, and `kill_on_drop` takes
        // the supervisor itself.
        if self.try_exit_status().is_none() {
            let _ = self.signal("KILL");
            // The supervisor exits right after reaping the program, so once it is gone so is
            // the program. Death after SIGKILL takes milliseconds; the bound only guards
            // against a wedged supervisor.
            for _ in 0..400 {
                if self.try_exit_status().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.lifeline.take();
    }
}

fn drain<R>(reader: R, output: Arc<Mutex<VecDeque<String>>>, label: String, echo: bool)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[{label}] {line}");
            }
            let mut kept = output.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= MAX_OUTPUT_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
}

async fn read_pid(pid_file: &Path, supervisor: &mut Child, label: &str) -> Result<u32> {
    for _ in 0..500 {
        if let Ok(text) = tokio::fs::read_to_string(pid_file).await {
            if let Ok(pid) = text.trim().parse() {
                return Ok(pid);
            }
        }
        if let Some(status) = supervisor.try_wait()? {
            // A program that ends at once takes its supervisor with it, maybe between the read
            // above and this check: the pid file then says whether it started.
            if let Some(pid) = tokio::fs::read_to_string(pid_file)
                .await
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                return Ok(pid);
            }
            bail!("{label}: supervisor exited ({status}) before starting the program");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("{label}: the supervisor did not report a pid within 5 s")
}

/// Every temporary directory the devkit makes starts with this, then `<kind>-<owner pid>-`.
const TEMPDIR_PREFIX: &str = "ti-ingest-devkit-";

/// A temporary directory named after this process, so a later run can tell it is stale if this
/// process dies without cleaning up (SIGKILL, or the process-wide CA, which is never dropped).
pub fn owned_tempdir(kind: &str) -> Result<TempDir> {
    let prefix = format!("{TEMPDIR_PREFIX}{kind}-{}-", std::process::id());
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .with_context(|| format!("creating a temporary directory {prefix}*"))
}

/// Removes devkit temporary directories whose owner process no longer exists.
pub fn sweep_stale_tempdirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMPDIR_PREFIX)) else {
            continue;
        };
        let owner = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(owner) = owner {
            if owner != std::process::id() && !process_exists(owner) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether a process with this pid exists (for tests that check nothing is left behind).
pub fn process_exists(pid: u32) -> bool {
    std::process::Command::new("kill")
        .arg("-0")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> Spec {
        Spec {
            program: "sleep".into(),
            args: vec!["300".into()],
            label: "sleep".into(),
            ..Spec::default()
        }
    }

    #[tokio::test]
    async fn drop_kills_the_program() {
        let child = Supervised::spawn(sleeper()).await.unwrap();
        let pid = child.pid();
        assert!(process_exists(pid));
        drop(child);
        // The direct SIGKILL is synchronous, but reaping by the supervisor may take a moment.
        for _ in 0..100 {
            if !process_exists(pid) || is_zombie(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("pid {pid} survived its handle");
    }

    #[tokio::test]
    async fn closing_the_lifeline_kills_the_program() {
        let mut child = Supervised::spawn(sleeper()).await.unwrap();
        let pid = child.pid();
        child.lifeline.take();
        child.wait_exit(Duration::from_secs(5)).await.unwrap();
        assert!(!process_exists(pid));
    }

    #[test]
    fn stale_tempdirs_are_swept_and_live_ones_kept() {
        let mine = owned_tempdir("test").unwrap();
        // A pid above the kernel's pid_max cannot be alive.
        let stale = std::env::temp_dir().join(format!("{TEMPDIR_PREFIX}test-999999999-x"));
        std::fs::create_dir_all(&stale).unwrap();
        sweep_stale_tempdirs();
        assert!(!stale.exists());
        assert!(mine.path().exists());
    }

    #[tokio::test]
    async fn captures_output_and_exit() {
        let mut child = Supervised::spawn(Spec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo out; echo err >&2; exit 3".into()],
            label: "sh".into(),
            ..Spec::default()
        })
        .await
        .unwrap();
        let status = child.wait_exit(Duration::from_secs(5)).await.unwrap();
        assert_eq!(status.code(), Some(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let out = child.output();
        assert!(out.contains("out") && out.contains("err"), "{out}");
    }

    fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
            .unwrap_or(false)
    }
}
