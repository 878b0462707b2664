//! Static checks of the Bicep deployment (infra/): runs scripts/check-infra.sh, which parses every
//! file with two Bicep grammars, checks symbols, module wiring and app settings, checks every
//! resource type, api-version and property against the published resource schemas
//! (scripts/infra_schema.py, type data in ../shared/azure-types/), and runs checkov with a failure
//! on any finding not skipped with a reason. The first run installs the pinned tools into
//! .venv-infra/ (about a minute); later runs take seconds.
//!
//! The schema check is proven to bite: each mutation test copies infra/ into a temp dir, breaks one
//! thing and asserts the exact finding.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The checks need Python (checkov and the schema check run in .venv-infra/) and the published
/// resource schemas next to the project (../shared/azure-types/). Nothing skips in CI: without
/// either the test fails and says what is missing (scripts/setup-tools.sh installs the tools).
fn require_tools() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    assert!(
        Command::new(&python)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{python} is missing: checkov and the schema check need it (scripts/setup-tools.sh \
         installs them into .venv-infra/)"
    );
    assert!(
        root().join("../shared/azure-types").is_dir(),
        "../shared/azure-types/ (the published resource schemas the schema check reads) is not \
         next to the project"
    );
}

fn check_infra(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/check-infra.sh"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running scripts/check-infra.sh")
}

#[test]
fn infra_passes_the_static_checks() {
    require_tools();
    let output = check_infra(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/check-infra.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("infra_lint: 10 Bicep files, 0 findings"),
        "infra_lint did not report a clean run:\n{stdout}"
    );
    // 26 resource declarations (existing ones included) in 10 files.
    assert!(
        stdout.lines().any(
            |l| l.starts_with("infra_schema: 10 Bicep files, 26 resources, ")
                && l.ends_with(" 0 findings")
        ),
        "infra_schema did not report a clean run:\n{stdout}"
    );
    assert!(
        stdout.contains(" 0 failed,") && stdout.contains(" 0 parse errors"),
        "checkov did not report a clean run:\n{stdout}"
    );
}

/// Copies infra/ into a temp dir, replaces `from` (which must occur exactly once) by `to` in
/// `file`, runs the schema check on the copy and returns its exit status, its output and the
/// 1-based line of the replacement.
fn schema_check_with(file: &str, from: &str, to: &str) -> (bool, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("infra"), &dir.path().join("infra"));
    let path = dir.path().join("infra").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {file}");
    let line = text[..text.find(from).unwrap()].lines().count().max(1);
    let line = if text[..text.find(from).unwrap()].ends_with('\n') {
        line + 1
    } else {
        line
    };
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    let output = check_infra(&["--schema", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), stdout, line)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn assert_single_finding(ok: bool, out: &str, expected: &str) {
    assert!(!ok, "the schema check passed a broken template:\n{out}");
    let findings: Vec<&str> = out.lines().filter(|l| l.starts_with("infra/")).collect();
    assert_eq!(findings, vec![expected], "{out}");
    assert!(out.contains(", 1 findings"), "{out}");
}

#[test]
fn a_misspelt_property_fails_the_schema_check() {
    require_tools();
    let (ok, out, line) = schema_check_with(
        "modules/site-flex.bicep",
        "httpsOnly: true",
        "httpsOnlyy: true",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/site-flex.bicep:{line}: Microsoft.Web/sites.properties.httpsOnlyy is not a property of SiteProperties in the schema (did you mean httpsOnly?)"),
    );
}

#[test]
fn a_misspelt_nested_property_fails_the_schema_check() {
    require_tools();
    // Set in a var of functionapp.bicep, passed to site-flex.bicep as a module param: the
    // finding names the line of the value.
    let (ok, out, line) = schema_check_with(
        "modules/functionapp.bicep",
        "maximumInstanceCount: maximumInstanceCount",
        "maximumInstanceCounts: maximumInstanceCount",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/functionapp.bicep:{line}: Microsoft.Web/sites.properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCounts is not a property of FunctionsScaleAndConcurrency in the schema (did you mean maximumInstanceCount?)"),
    );
}

#[test]
fn an_api_version_that_does_not_exist_fails_the_schema_check() {
    require_tools();
    let (ok, out, line) = schema_check_with(
        "modules/storage.bicep",
        "'Microsoft.Storage/storageAccounts@2025-01-01' = {",
        "'Microsoft.Storage/storageAccounts@2025-01-02' = {",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/storage.bicep:{line}: Microsoft.Storage/storageAccounts: api-version 2025-01-02 does not exist in the published schemas (known here: 2025-01-01)"),
    );
}

#[test]
fn a_value_outside_the_schema_fails_the_schema_check() {
    require_tools();
    // deleteRetentionPolicy.days is 1..365 in the storage schema.
    let (ok, out, line) = schema_check_with(
        "modules/storage.bicep",
        "    deleteRetentionPolicy: {\n      enabled: true\n      days: softDeleteDays",
        "    deleteRetentionPolicy: {\n      enabled: true\n      days: 400",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/storage.bicep:{}: Microsoft.Storage/storageAccounts/blobServices.properties.deleteRetentionPolicy.days: 400 is above the schema's maximum 365", line + 2),
    );
    // A string where the schema wants a bool.
    let (ok, out, line) = schema_check_with(
        "modules/site-premium.bicep",
        "http20Enabled: true",
        "http20Enabled: 'true'",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/site-premium.bicep:{line}: Microsoft.Web/sites.properties.siteConfig.http20Enabled: expected a bool, got a string"),
    );
}

#[test]
fn a_null_property_fails_the_schema_check() {
    require_tools();
    let (ok, out, line) = schema_check_with(
        "modules/site-premium.bicep",
        "minimumElasticInstanceCount: 1",
        "minimumElasticInstanceCount: null",
    );
    assert_single_finding(
        ok,
        &out,
        &format!("infra/modules/site-premium.bicep:{line}: null value: leave a property that does not apply out instead of setting it to null"),
    );
}
