//! Static checks of the Bicep deployment (infra/): runs scripts/check-infra.sh, which parses every
//! file with two Bicep grammars, checks symbols, module wiring and app settings, and runs checkov
//! with a failure on any finding not skipped with a reason. The first run installs the pinned
//! tools into .venv-infra/ (about a minute); later runs take seconds.

use std::path::Path;
use std::process::Command;

#[test]
fn infra_passes_the_static_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    if Command::new(&python).arg("--version").output().is_err() {
        eprintln!("SKIPPED infra_passes_the_static_checks: {python} is not installed, so checkov cannot run");
        return;
    }

    let output = Command::new("bash")
        .arg(root.join("scripts/check-infra.sh"))
        .current_dir(root)
        .output()
        .expect("running scripts/check-infra.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/check-infra.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("infra_lint: ") && stdout.contains(" 0 findings"),
        "infra_lint did not report a clean run:\n{stdout}"
    );
    assert!(
        stdout.contains(" 0 failed,") && stdout.contains(" 0 parse errors"),
        "checkov did not report a clean run:\n{stdout}"
    );
}
