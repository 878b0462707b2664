//! The deployment package (scripts/package.sh → dist/ti-ingest.zip): the layout a Function App
//! deploys (host.json and the function folders at the root, the handler named as host.json says,
//! executable), a statically linked binary (it must run on every Functions Linux image whatever
//! its glibc), and the unpacked binary starting the way the host starts it and answering the
//! host's readiness probe (`GET /`).
//!
//! The suite must not spend a second, release build (a fresh clone's `.ci/run` has to stay within
//! six minutes on two cores), so it packs the debug handler cargo built for the tests, through the
//! script's test-only switches (`TI_PACKAGE_BIN`, `TI_PACKAGE_DYNAMIC_OK=1`). That a deployable zip
//! is static is the script's own guard, which refuses a dynamically linked handler: tested below on
//! the same debug binary. Set TI_PACKAGE_ZIP to a zip `scripts/package.sh` built for real to test
//! it instead, static link included.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One file of the zip: its Unix mode and contents.
struct Entry {
    mode: u32,
    data: Vec<u8>,
}

struct Package {
    entries: BTreeMap<String, Entry>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds (or takes) the zip once for every test in this file, and reads it whole.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let zip_path = match real_package() {
            Some(path) => path,
            None => {
                let out = out_dir().join("ti-ingest.zip");
                let output = package_script(&out)
                    .env("TI_PACKAGE_DYNAMIC_OK", "1")
                    .output()
                    .expect("running scripts/package.sh");
                assert!(
                    output.status.success(),
                    "scripts/package.sh failed ({}):\n{}\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                out
            }
        };
        read_zip(&zip_path)
    })
}

/// A zip built for real by `scripts/package.sh` (TI_PACKAGE_ZIP), if one was given.
fn real_package() -> Option<PathBuf> {
    std::env::var_os("TI_PACKAGE_ZIP").map(PathBuf::from)
}

/// A folder of this test binary's own under target/, for the zips it writes.
fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("package-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `scripts/package.sh` packing the debug handler cargo built for this test into `out`.
fn package_script(out: &Path) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(root().join("scripts/package.sh"))
        .current_dir(root())
        .env("OUT", out)
        .env("TI_PACKAGE_BIN", env!("CARGO_BIN_EXE_ti-ingest"))
        .env_remove("TI_PACKAGE_DYNAMIC_OK");
    command
}

/// Whether an x86-64 ELF names a loader in a PT_INTERP program header, as every dynamically
/// linked executable does (and with it a glibc version); a static one has none.
fn is_dynamically_linked(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36) as usize, u16_at(0x38));
    (0..phnum as usize).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP)
}

fn read_zip(path: &Path) -> Package {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {path:?}: {e}"));
    let mut archive = zip::ZipArchive::new(file).expect("reading the zip directory");
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("reading a zip entry");
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let mode = entry
            .unix_mode()
            .unwrap_or_else(|| panic!("{name}: the zip entry has no Unix mode"));
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("inflating a zip entry");
        entries.insert(name, Entry { mode, data });
    }
    Package { entries }
}

fn host_json(package: &Package) -> Value {
    let entry = package
        .entries
        .get("host.json")
        .expect("host.json at the root of the zip");
    serde_json::from_slice(&entry.data).expect("host.json is JSON")
}

fn executable_name(host: &Value) -> String {
    host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("host.json customHandler.description.defaultExecutablePath")
        .to_string()
}

#[test]
fn the_zip_has_the_layout_a_function_app_deploys() {
    let package = package();
    let repo_host = std::fs::read(root().join("host.json")).unwrap();
    assert_eq!(
        package.entries["host.json"].data, repo_host,
        "host.json in the zip differs from the repository's"
    );

    let mut expected = vec!["host.json".to_string()];
    let mut functions = Vec::new();
    for dir in std::fs::read_dir(root().join("functions")).unwrap() {
        let dir = dir.unwrap().path();
        let function_json = dir.join("function.json");
        if function_json.is_file() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let in_zip = format!("{name}/function.json");
            let entry = package
                .entries
                .get(&in_zip)
                .unwrap_or_else(|| panic!("{in_zip} missing from the zip"));
            assert_eq!(
                entry.data,
                std::fs::read(&function_json).unwrap(),
                "{in_zip} differs from functions/{in_zip}"
            );
            expected.push(in_zip);
            functions.push(name);
        }
    }
    assert!(
        functions.iter().any(|f| f == "IngestBlobEvent"),
        "no IngestBlobEvent function packaged: {functions:?}"
    );

    let host = host_json(package);
    let exe = executable_name(&host);
    assert!(
        !exe.contains('/'),
        "the handler is expected at the app root, host.json says {exe:?}"
    );
    let binary = package
        .entries
        .get(&exe)
        .unwrap_or_else(|| panic!("host.json starts {exe:?}, which is not in the zip"));
    assert_eq!(
        binary.mode & 0o170000,
        0o100000,
        "{exe} is not a regular file"
    );
    assert_eq!(
        binary.mode & 0o111,
        0o111,
        "{exe} is not executable in the zip (mode {:o})",
        binary.mode
    );
    expected.push(exe);

    let mut actual: Vec<_> = package.entries.keys().cloned().collect();
    actual.sort();
    expected.sort();
    assert_eq!(
        actual, expected,
        "the zip holds exactly host.json, <Function>/function.json and the handler"
    );
}

#[test]
fn the_handler_is_an_x86_64_linux_executable() {
    let package = package();
    let exe = executable_name(&host_json(package));
    let elf = &package.entries[&exe].data;
    assert_eq!(&elf[..4], b"\x7fELF", "{exe} is not an ELF file");
    assert_eq!(elf[4], 2, "{exe} is not a 64-bit ELF");
    assert_eq!(elf[5], 1, "{exe} is not little-endian");
    assert_eq!(
        u16::from_le_bytes([elf[0x12], elf[0x13]]),
        0x3e,
        "{exe} is not an x86-64 executable"
    );
    if real_package().is_some() {
        assert!(
            !is_dynamically_linked(elf),
            "{exe} is dynamically linked: it would need the image's glibc"
        );
    } else {
        // The test package holds the debug build, which is dynamic: the reader sees it so.
        assert!(
            is_dynamically_linked(elf),
            "the debug handler has no PT_INTERP"
        );
    }
}

#[test]
fn the_package_script_refuses_a_dynamically_linked_handler() {
    let out = out_dir().join("refused.zip");
    let _ = std::fs::remove_file(&out);
    let output = package_script(&out)
        .output()
        .expect("running scripts/package.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "package.sh: {stderr}");
    assert!(
        stderr.contains("is dynamically linked; it would depend on the image's glibc"),
        "package.sh said: {stderr}"
    );
    assert!(
        !out.exists(),
        "package.sh wrote a zip with a dynamic handler"
    );
}

/// Kills the handler when the test ends, passing or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host's readiness probe: any HTTP answer to `GET /` means the handler is up.
fn probe(port: u16) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    answer.starts_with("HTTP/1.").then_some(answer)
}

#[test]
fn the_unpacked_handler_starts_like_the_host_starts_it_and_answers_the_readiness_probe() {
    let package = package();
    let host = host_json(package);
    let app_root = tempfile::tempdir().unwrap();
    for (name, entry) in &package.entries {
        let path = app_root.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &entry.data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode & 0o7777))
            .unwrap();
    }

    // What the host does: resolve defaultExecutablePath against the app root, pass `arguments`,
    // set FUNCTIONS_CUSTOMHANDLER_PORT. The rest is what the app settings would provide; nothing
    // is reachable there, and nothing needs to be until an invocation arrives.
    let description = &host["customHandler"]["description"];
    let arguments: Vec<String> = description["arguments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let working_dir = match description["workingDirectory"].as_str() {
        Some(dir) if !dir.is_empty() => app_root.path().join(dir),
        _ => app_root.path().to_path_buf(),
    };
    let port = free_port();
    let log_path = app_root.path().join("handler.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(app_root.path().join(executable_name(&host)))
        .args(&arguments)
        .current_dir(working_dir)
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("TI_WORKSPACE_ID", "00000000-0000-4000-8000-000000000001")
        .env(
            "TI_STORAGE_BLOB_URL",
            "https://127.0.0.1:1/devstoreaccount1",
        )
        .env(
            "TI_STORAGE_QUEUE_URL",
            "https://127.0.0.1:1/devstoreaccount1",
        )
        .env("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
        .env("IDENTITY_HEADER", "x")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting the unpacked handler");
    let mut handler = Running(child);

    // The host polls every ~25 ms and gives up after its start-up timeout (30 s or more).
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(answer) = probe(port) {
            break answer;
        }
        if let Some(status) = handler.0.try_wait().unwrap() {
            panic!(
                "the handler exited ({status}) before answering GET /:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no answer to GET / on port {port} within 30 s:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(
        answer.starts_with("HTTP/1.1 "),
        "unexpected answer to GET /: {answer}"
    );
    assert!(
        handler.0.try_wait().unwrap().is_none(),
        "the handler stopped after answering the probe"
    );
}
