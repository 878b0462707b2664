//! The report files `validate` and `upload` write beside `--report`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ti_core::report::html::{write_page, PageFiles};

use crate::pipeline::RunOutcome;

/// Writes the report as the app writes its reports (docs/REPORTS.md): at most
/// [`ti_core::report::REPORT_MAX_ENTRIES`] errors and warnings listed, with complete counts per
/// code, the rest in `<stem>.errors.ndjson` / `<stem>.warnings.ndjson` beside it,
/// `<stem>.rejected.ndjson` when records were rejected, and the page a person reads,
/// `<stem>.report.html`. Overflow files of an earlier run at the same place are removed when this
/// one has none.
pub fn write_report_files(path: &Path, outcome: &RunOutcome) -> Result<()> {
    let s = path.to_string_lossy();
    let base = s.strip_suffix(".json").unwrap_or(&s);
    let base = base.strip_suffix(".report").unwrap_or(base);
    let errors_path = format!("{base}.errors.ndjson");
    let warnings_path = format!("{base}.warnings.ndjson");
    let (report, errors, warnings) = outcome.report.split(&errors_path, &warnings_path);
    for (content, file) in [(&errors, &errors_path), (&warnings, &warnings_path)] {
        if content.is_empty() {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing the stale {file}"))
                }
                _ => {}
            }
        } else {
            std::fs::write(file, content).with_context(|| format!("writing {file}"))?;
        }
    }
    let json = serde_json::to_vec_pretty(&report)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    let rejected = outcome.rejected_ndjson();
    let rpath = PathBuf::from(format!("{base}.rejected.ndjson"));
    if !rejected.is_empty() {
        std::fs::write(&rpath, rejected).with_context(|| format!("writing {}", rpath.display()))?;
    }
    // The page names its neighbours by file name: it sits in the same folder.
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let files = PageFiles {
        report: file_name(path),
        rejected: (!outcome.rejected.is_empty()).then(|| file_name(&rpath)),
        more_errors: report
            .more_errors_in
            .as_deref()
            .map(|f| file_name(Path::new(f))),
        more_warnings: report
            .more_warnings_in
            .as_deref()
            .map(|f| file_name(Path::new(f))),
    };
    let hpath = PathBuf::from(format!("{base}.report.html"));
    std::fs::File::create(&hpath)
        .and_then(|f| write_page(f, &outcome.report, |i| outcome.original(i), files))
        .with_context(|| format!("writing {}", hpath.display()))?;
    if outcome.report.summary.records == 0 && outcome.report.input_error.is_none() {
        bail!("the input held no records");
    }
    Ok(())
}
