//! The README's demo command, end to end: the `demo` binary (built by `scripts/test.sh` with the
//! rest of the workspace) drives the real handler against Azurite and the simulator with the
//! files under `examples/`.

use std::path::PathBuf;
use std::process::Command;

fn demo_binary() -> PathBuf {
    // target/debug/deps/demo-<hash> → target/debug/demo
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("demo")
}

#[test]
fn the_demo_ingests_the_examples() {
    let demo = demo_binary();
    assert!(
        demo.exists(),
        "{} is missing: build the workspace first (scripts/test.sh does)",
        demo.display()
    );
    let out = Command::new(demo)
        .arg("--handler")
        .arg(env!("CARGO_BIN_EXE_ti-ingest"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every example file got a report, and the simulator received the valid records.
    let examples = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .unwrap()
        .count();
    assert_eq!(
        stdout.matches("IngestBlobEvent → 200").count(),
        examples,
        "{stdout}"
    );
    assert!(stdout.contains("objects accepted"), "{stdout}");
    assert!(
        stdout.contains("records 4  uploaded 2  rejected 2"),
        "{stdout}"
    );
}
