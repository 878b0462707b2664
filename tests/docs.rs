//! The documents in docs/ agree with the code they describe: ARCHITECTURE.md's module table names
//! every source module of the workspace, and nothing that is not there; SETTINGS.md every setting;
//! REPORTS.md (and PULL.md) every record and input-level code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Every `.rs` file under `dir`, relative to the repository root.
fn rust_files(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path: PathBuf = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root()).unwrap();
            out.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The first-column paths of the table under `## Modules`.
fn documented_modules(architecture: &str) -> BTreeSet<String> {
    let section = architecture
        .split("\n## Modules")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a `## Modules` section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn architecture_names_every_module_and_only_those() {
    let mut tree = BTreeSet::new();
    for dir in [
        "src",
        "crates/ti-core/src",
        "crates/sentinel-sim/src",
        "crates/devkit/src",
    ] {
        rust_files(&root().join(dir), &mut tree);
    }
    // Unit-test files are part of the module they test (`#[cfg(test)] mod tests;`).
    tree.retain(|path| !path.ends_with("/tests.rs"));
    let documented = documented_modules(&read("docs/ARCHITECTURE.md"));
    let missing: Vec<_> = tree.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&tree).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md's module table is out of date:\n  not documented: {missing:?}\n  no such file: {stale:?}"
    );
}

#[test]
fn every_path_the_architecture_names_exists() {
    let architecture = read("docs/ARCHITECTURE.md");
    let mut named = BTreeSet::new();
    for piece in architecture.split('`').skip(1).step_by(2) {
        let looks_like_path = (piece.starts_with("src/")
            || piece.starts_with("crates/")
            || piece.starts_with("tests/")
            || piece.starts_with("functions/"))
            && !piece.contains(' ')
            && !piece.contains('<');
        if looks_like_path {
            named.insert(piece.trim_end_matches('/').to_string());
        }
    }
    assert!(named.len() > 60, "found only {} paths", named.len());
    let gone: Vec<_> = named
        .iter()
        .filter(|path| !root().join(path).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "docs/ARCHITECTURE.md names paths that do not exist: {gone:?}"
    );
}

/// The source of a module without its unit tests (`#[cfg(test)] mod tests { ... }` at the end).
fn without_tests(source: &str) -> &str {
    match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    }
}

/// Every `TI_*` setting the code reads (string literals outside unit tests) and every `%SETTING%`
/// the function bindings expand.
fn settings_in_code() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    rust_files(&root().join("src"), &mut files);
    let mut names = BTreeSet::new();
    let mut take = |text: &str, open: char, close: char| {
        for (at, _) in text.match_indices(open) {
            let rest = &text[at + 1..];
            let Some(end) = rest.find(close) else {
                continue;
            };
            let name = &rest[..end];
            let is_setting = name.starts_with("TI_")
                && name.len() > 3
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_setting {
                names.insert(name.to_string());
            }
        }
    };
    for file in &files {
        let source = read(file);
        take(without_tests(&source), '"', '"');
    }
    for dir in std::fs::read_dir(root().join("functions")).unwrap() {
        let binding = dir.unwrap().path().join("function.json");
        if binding.is_file() {
            take(&std::fs::read_to_string(binding).unwrap(), '%', '%');
        }
    }
    names
}

/// The `TI_*` names in the first column of docs/SETTINGS.md's table.
fn settings_documented() -> BTreeSet<String> {
    let doc = read("docs/SETTINGS.md");
    let mut names = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap();
        for name in first_cell.split('`').skip(1).step_by(2) {
            if name.starts_with("TI_") {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn settings_md_documents_every_setting_the_code_reads_and_no_other() {
    let code = settings_in_code();
    let documented = settings_documented();
    assert!(
        code.len() >= 40,
        "found only {} settings in the code: {code:?}",
        code.len()
    );
    let undocumented: Vec<_> = code.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "docs/SETTINGS.md is out of date:\n  read by the code, not documented: {undocumented:?}\n  documented, read nowhere: {unread:?}"
    );
}

#[test]
fn settings_md_gives_the_defaults_settings_rs_uses() {
    // Each `env.number("TI_X", default, ...)` / `env.or("TI_X", "default")` in src/settings.rs and
    // src/upload/settings.rs and src/startup.rs (`Settings`), as the
    // default column of docs/SETTINGS.md must state it.
    let files = [
        read("src/settings.rs"),
        read("src/upload/settings.rs"),
        read("src/startup.rs"),
    ];
    let source: String = files.iter().map(|f| without_tests(f)).collect();
    let source = source.as_str();
    let doc = read("docs/SETTINGS.md");
    let mut checked = 0;
    for call in [".number(\"", ".or(\""] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at + call.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let after = rest[name.len() + 1..].trim_start_matches(',').trim_start();
            // Only literal defaults: a quoted string, or a number (`50_000`); constants and
            // expressions (`MAX_BATCH_SIZE`, `1 << 30`) are documented in words.
            let default = if let Some(quoted) = after.strip_prefix('"') {
                quoted[..quoted.find('"').unwrap()].to_string()
            } else {
                let number: String = after
                    .chars()
                    .take_while(|c| !matches!(c, ',' | ')'))
                    .collect();
                let number = number.trim().replace('_', "");
                if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                number
            };
            if !name.starts_with("TI_") {
                continue;
            }
            let row = doc
                .lines()
                .find(|l| {
                    l.starts_with("| ")
                        && l.split('|').nth(1).unwrap().contains(&format!("`{name}`"))
                })
                .unwrap_or_else(|| panic!("{name} has no row in docs/SETTINGS.md"));
            let defaults = row.split('|').nth(2).unwrap();
            assert!(
                defaults.contains(&format!("`{default}`")) || defaults.contains(&default),
                "docs/SETTINGS.md gives {name} the default {defaults:?}; the code uses {default}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "checked only {checked} defaults");
}

/// The rows of the markdown table that follows `heading` in `doc`: each row's cells, trimmed.
fn table_after(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let section = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{heading}` section"));
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Every `report::Code`, as the report spells it (`Code::ALL` is generated from the enum's
/// declaration, so it cannot miss a variant).
fn code_variants() -> BTreeSet<String> {
    ti_core::report::Code::ALL
        .iter()
        .map(|code| {
            let spelt = serde_json::to_value(code).unwrap();
            assert_eq!(spelt, code.name(), "{code:?}");
            code.name().to_string()
        })
        .collect()
}

#[test]
fn reports_md_documents_every_record_code_with_its_stage() {
    let doc = read("docs/REPORTS.md");
    let rows = table_after(&doc, "### Error and warning codes");
    let mut documented = BTreeSet::new();
    for row in &rows {
        let code = row[0].split('`').nth(1).expect("a code in backticks");
        let parsed: ti_core::report::Code = serde_json::from_value(serde_json::Value::String(
            code.to_string(),
        ))
        .unwrap_or_else(|e| panic!("docs/REPORTS.md documents `{code}`, no such code: {e}"));
        let stage = serde_json::to_value(parsed.stage()).unwrap();
        assert_eq!(
            row[1],
            stage.as_str().unwrap(),
            "docs/REPORTS.md gives `{code}` the stage {:?}; the code reports it at {stage}",
            row[1]
        );
        documented.insert(code.to_string());
    }
    let variants = code_variants();
    assert!(variants.len() >= 30, "read only {} codes", variants.len());
    let missing: Vec<_> = variants.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "codes with no row in docs/REPORTS.md: {missing:?}"
    );
}

/// The code-shaped string literals in `src/` (outside unit tests) that look like input-level codes.
fn input_level_literals_in_src() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    rust_files(&root().join("src"), &mut files);
    let mut found = BTreeSet::new();
    for file in &files {
        let source = read(file);
        // Every text between two consecutive quotes (both parities, so an escaped quote cannot
        // hide a literal); only code-shaped ones pass the filter below.
        let text = without_tests(&source);
        let quotes: Vec<usize> = text.match_indices('"').map(|(at, _)| at).collect();
        for pair in quotes.windows(2) {
            let literal = &text[pair[0] + 1..pair[1]];
            let input_level = [
                "input_",
                "blob_",
                "envelope_",
                "event_",
                "work_item_",
                "feed_",
                "report_",
            ]
            .iter()
            .any(|p| literal.starts_with(p))
                || literal == "poisoned";
            if input_level
                && literal.ends_with(|c: char| c.is_ascii_lowercase())
                && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && (literal.contains('_') || literal == "poisoned")
                && literal != "blob_url"
            {
                found.insert(format!("{file}: \"{literal}\""));
            }
        }
    }
    found
}

/// `report::InputErrorCode` is the one list of input-level codes: docs/REPORTS.md's table (with
/// `feed_*` pointing to docs/PULL.md) and docs/PULL.md's failure table document exactly its
/// codes, and the app writes none of them as a string literal of its own.
#[test]
fn reports_md_documents_every_input_level_code_and_only_those() {
    use ti_core::report::InputErrorCode;
    let reports: BTreeSet<String> = table_after(&read("docs/REPORTS.md"), "### Input-level codes")
        .iter()
        .map(|row| row[0].split('`').nth(1).unwrap().to_string())
        .collect();
    assert!(reports.contains("feed_*"), "{reports:?}");
    let pull: BTreeSet<String> = table_after(&read("docs/PULL.md"), "## Failures")
        .iter()
        .flat_map(|row| {
            row[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(pull.len() >= 10, "read only {pull:?} from docs/PULL.md");
    let codes: BTreeSet<String> = InputErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        codes.len(),
        InputErrorCode::ALL.len(),
        "a code is spelt twice"
    );
    assert!(codes.len() >= 15, "only {codes:?}");
    for code in &codes {
        let documented = if code.starts_with("feed_") {
            pull.contains(code)
        } else {
            reports.contains(code) || pull.contains(code)
        };
        assert!(
            documented,
            "input-level code `{code}` is not documented (docs/REPORTS.md, docs/PULL.md for the pull's own)"
        );
    }
    for code in reports.iter().chain(&pull).filter(|c| !c.ends_with('*')) {
        assert!(
            codes.contains(code),
            "the docs document the input-level code `{code}`, which InputErrorCode does not have"
        );
    }
    let literals = input_level_literals_in_src();
    assert!(
        literals.is_empty(),
        "input-level codes written as string literals (use report::InputErrorCode): {literals:?}"
    );
}

/// docs/ARCHITECTURE.md, "Settings, credentials, storage": imports go one way. `src/settings.rs`
/// is the leaf every module reads (the environment, the cloud, the input settings): it names no
/// other module of the app, so nothing it holds can pull the rest of the app into a cycle.
#[test]
fn settings_names_no_other_module_of_the_app() {
    let source = read("src/settings.rs");
    let reaching: Vec<&str> = source
        .lines()
        .filter(|line| {
            line.contains("crate::") || line.contains("super::") && !line.contains("use super::*")
        })
        .collect();
    assert!(
        reaching.is_empty(),
        "src/settings.rs reaches into the app: {reaching:?}"
    );
}
