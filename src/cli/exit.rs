//! The command line's exit codes (README.md, Command line), in one place: 0 every record fine,
//! 1 some records rejected, 2 unusable input or arguments (or no token for a target's audience,
//! a feed that failed, a check of `doctor` that failed), 130 stopped by Ctrl-C (the shell's
//! 128 + SIGINT, which `upload` resumes from).

use std::process::ExitCode;

use ti_core::report::Report;

use crate::pull::{FeedOutcome, FeedStatus};

/// An exit code; the worse of two is the larger (among 0, 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Fine = 0,
    Rejected = 1,
    Unusable = 2,
    Interrupted = 130,
}

impl Exit {
    /// A file's report: its input error, else its rejected records.
    pub fn of_report(report: &Report) -> Self {
        if report.input_error.is_some() {
            Exit::Unusable
        } else {
            Exit::of_rejected(report.summary.rejected)
        }
    }

    /// A feed's pull: failed (retried next run), else its rejected records.
    pub fn of_feed(outcome: &FeedOutcome) -> Self {
        match outcome.status {
            FeedStatus::Failed => Exit::Unusable,
            _ => Exit::of_rejected(outcome.summary.rejected),
        }
    }

    /// 1 when any record was rejected, else 0.
    pub fn of_rejected(rejected: u64) -> Self {
        if rejected > 0 {
            Exit::Rejected
        } else {
            Exit::Fine
        }
    }

    /// The worst of `codes` (0 when there are none).
    pub fn worst(codes: impl IntoIterator<Item = Exit>) -> Self {
        codes.into_iter().max().unwrap_or(Exit::Fine)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ti_core::report::{InputError, Summary};

    fn feed(status: FeedStatus, rejected: u64) -> FeedOutcome {
        FeedOutcome {
            feed: "f".into(),
            status,
            summary: Summary {
                records: 10,
                uploaded: 10 - rejected,
                rejected,
            },
            input_error: None,
            report: None,
            transient: 0,
            lifecycle: None,
        }
    }

    #[test]
    fn each_outcome_has_its_code_and_the_worst_wins() {
        assert_eq!(Exit::of_rejected(0) as u8, 0);
        assert_eq!(Exit::of_rejected(3) as u8, 1);
        assert_eq!(Exit::of_feed(&feed(FeedStatus::Pulled, 0)) as u8, 0);
        assert_eq!(Exit::of_feed(&feed(FeedStatus::Pulled, 2)) as u8, 1);
        assert_eq!(Exit::of_feed(&feed(FeedStatus::NotModified, 0)) as u8, 0);
        assert_eq!(Exit::of_feed(&feed(FeedStatus::Failed, 0)) as u8, 2);
        let mut report = crate::pipeline::empty_report(
            ti_core::report::Source {
                kind: "file".into(),
                name: "x".into(),
                format: None,
            },
            "dry-run",
            None,
        );
        report.summary.rejected = 1;
        assert_eq!(Exit::of_report(&report) as u8, 1);
        report.input_error = Some(InputError {
            code: "input_invalid".into(),
            message: "x".into(),
        });
        assert_eq!(Exit::of_report(&report) as u8, 2);
        assert_eq!(Exit::worst([]) as u8, 0);
        assert_eq!(Exit::worst([Exit::Rejected, Exit::Fine]) as u8, 1);
        assert_eq!(
            Exit::worst([Exit::Fine, Exit::Unusable, Exit::Rejected]) as u8,
            2
        );
        assert_eq!(Exit::Interrupted as u8, 130);
    }
}
