//! The progress bar of `upload` and `validate`.

use std::path::Path;

use crate::pipeline::RunContext;

/// The progress bar of `upload` and `validate` (drawn only on a terminal): records read,
/// uploaded (or valid) and rejected, and the upload rate against the identity's quota (or the
/// validation rate).
pub struct Bar {
    bar: indicatif::ProgressBar,
    done: std::sync::Arc<std::sync::Mutex<ti_core::report::Summary>>,
    current: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<crate::pipeline::Progress>>>>,
    ticker: tokio::task::JoinHandle<()>,
}

pub fn progress_bar(
    file: &Path,
    done: ti_core::report::Summary,
    ctx: &RunContext,
    validate_only: bool,
) -> Bar {
    use std::sync::{Arc, Mutex};
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(file.display().to_string());
    let settings = ctx.uploader.settings();
    let quota_per_min =
        (settings.max_requests_per_minute as f64) * (settings.batch_size as f64) * 60.0
            / settings.rate_window.as_secs_f64().max(1.0);
    let done = Arc::new(Mutex::new(done));
    let current: Arc<Mutex<Option<Arc<crate::pipeline::Progress>>>> = Arc::new(Mutex::new(None));
    let (b, d, c) = (bar.clone(), done.clone(), current.clone());
    let ticker = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let base = d.lock().map(|s| s.uploaded).unwrap_or(0);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let mut s = d.lock().map(|s| *s).unwrap_or_default();
            if let Some(p) = c.lock().ok().and_then(|c| c.clone()) {
                let now = p.snapshot();
                s.records += now.records;
                s.uploaded += now.uploaded;
                s.rejected += now.rejected;
            }
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            if validate_only {
                b.set_message(format!(
                    "read {} · valid {} · rejected {} · {:.0} records/s",
                    s.records,
                    s.uploaded,
                    s.rejected,
                    s.records as f64 / (minutes * 60.0).max(0.001)
                ));
                b.tick();
                continue;
            }
            let rate = if minutes > 0.0 {
                (s.uploaded.saturating_sub(base)) as f64 / minutes
            } else {
                0.0
            };
            b.set_message(format!(
                "read {} · uploaded {} · rejected {} · {:.0}/min ({:.0}% of the quota)",
                s.records,
                s.uploaded,
                s.rejected,
                rate,
                100.0 * rate / quota_per_min.max(1.0)
            ));
            b.tick();
        }
    });
    Bar {
        bar,
        done,
        current,
        ticker,
    }
}

impl Bar {
    pub fn attach(&self, p: std::sync::Arc<crate::pipeline::Progress>) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(p);
        }
    }

    /// A range finished: its counts move from the live counters to the done total.
    pub fn complete(&self, s: &ti_core::report::Summary) {
        if let (Ok(mut d), Ok(mut c)) = (self.done.lock(), self.current.lock()) {
            d.records += s.records;
            d.uploaded += s.uploaded;
            d.rejected += s.rejected;
            *c = None;
        }
    }

    pub fn finish(&self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
