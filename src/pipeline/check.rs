//! Decode and validate: each record parsed or converted into a STIX object and checked, a
//! piece of records at a time on the blocking pool while the pipeline reads the next pieces.

use std::sync::Arc;

use serde_json::{Map, Value};
use ti_core::input::{Chunk, Decoded};
use ti_core::report::Code;
use ti_core::stix::{self, ValidationContext};

use super::sink::TargetRules;
use super::Fill;

/// A rejected record, as [`check`] found it.
pub struct Rejected {
    pub index: u64,
    pub line: u64,
    pub id: Option<String>,
    pub code: Code,
    pub messages: Vec<String>,
    /// The original text, when it was kept.
    pub text: Option<String>,
}

/// The verdict on one decoded record.
pub enum Checked {
    Rejected(Rejected),
    Valid {
        index: u64,
        line: u64,
        text: String,
        valid: stix::Valid,
    },
}

/// Decoding and validation of one record: the part of the pipeline every command shares.
pub fn check(item: Decoded, validation: &ValidationContext) -> Checked {
    let Decoded {
        index,
        line,
        original,
        object,
        warnings: decode_warnings,
    } = item;
    let object = match object {
        Ok(o) => o,
        Err(p) => {
            let mut message = p.message;
            if original.is_none() {
                message.push_str(" (its text is not kept in the rejected file)");
            }
            return Checked::Rejected(Rejected {
                index,
                line,
                id: None,
                code: p.code,
                messages: vec![message],
                text: original,
            });
        }
    };
    let text = original.unwrap_or_default();
    match stix::validate(object, validation) {
        Err(invalid) => {
            let code = invalid
                .problems
                .first()
                .map(|p| p.code)
                .unwrap_or(Code::InvalidProperty);
            Checked::Rejected(Rejected {
                index,
                line,
                id: invalid.id,
                code,
                messages: invalid.problems.into_iter().map(|p| p.message).collect(),
                text: Some(text),
            })
        }
        Ok(mut valid) => {
            valid.warnings.splice(0..0, decode_warnings);
            Checked::Valid {
                index,
                line,
                text,
                valid,
            }
        }
    }
}

impl Checked {
    /// The record's 0-based position in the input.
    pub fn index(&self) -> u64 {
        match self {
            Checked::Rejected(r) => r.index,
            Checked::Valid { index, .. } => *index,
        }
    }
}

/// Chunks in flight at once (each at most [`DECODE_SLICE_BYTES`] of input): one per core plus
/// one, so every core parses and validates a chunk while this task frames the next; at least 2,
/// at most 9 (memory).
pub(super) fn stages_ahead() -> usize {
    static STAGES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *STAGES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores + 1).clamp(2, 9)
    })
}

/// Chunks with fewer records (a queue message, the end of an input) are checked in place: a
/// thread hand-off would cost more than it saves.
const INLINE_MAX_RECORDS: usize = 16;

/// One chunk's records on their way through [`check`]: done at once when they are few, else
/// parsed and checked on a blocking-pool thread while the pipeline frames the next chunks.
pub(super) enum Stage {
    Ready(Vec<Checked>),
    Running(tokio::task::JoinHandle<Vec<Checked>>),
}

impl Stage {
    pub(super) fn start(
        records: Chunk,
        validation: &ValidationContext,
        rules: &Arc<TargetRules>,
        fill: Option<&Fill>,
    ) -> Stage {
        if records.len() < INLINE_MAX_RECORDS {
            return Stage::Ready(check_chunk(records, validation, rules, fill));
        }
        let validation = validation.clone();
        let rules = rules.clone();
        let fill = fill.cloned();
        // CPU-bound work belongs on the blocking pool, not on the runtime's workers; the runtime
        // then also knows work is under way (a paused test clock does not jump ahead meanwhile),
        // and a panic comes back through the join handle.
        Stage::Running(tokio::task::spawn_blocking(move || {
            check_chunk(records, &validation, &rules, fill.as_ref())
        }))
    }

    pub(super) async fn wait(self) -> Vec<Checked> {
        match self {
            Stage::Ready(checked) => checked,
            Stage::Running(task) => match task.await {
                Ok(checked) => checked,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a record check task did not finish: {e}"),
            },
        }
    }
}

/// Parses (JSON records) and checks a chunk's records, in order, adding the targets'
/// `value_shortened` warnings; `fill` first fills in each decoded object. In validate-only runs
/// the targets' own refusals are checked too, and the objects are then dropped here, on the same
/// thread, since nothing will be sent (all but a relationship's ends, which the
/// dangling-relationship check needs).
fn check_chunk(
    records: Chunk,
    validation: &ValidationContext,
    rules: &TargetRules,
    fill: Option<&Fill>,
) -> Vec<Checked> {
    records.decode_then(|mut item| {
        if let (Some(Fill(fill)), Ok(object)) = (fill, &mut item.object) {
            fill(object);
        }
        checked_for_targets(check(item, validation), rules)
    })
}

/// A verdict with what the targets say of it: their refusals (validate-only runs) and
/// shortenings.
fn checked_for_targets(checked: Checked, rules: &TargetRules) -> Checked {
    match checked {
        Checked::Valid {
            index,
            line,
            text,
            mut valid,
        } => {
            if rules.validate_only {
                if let Some(f) = rules.refusal(&valid.object) {
                    return Checked::Rejected(Rejected {
                        index,
                        line,
                        id: Some(valid.id),
                        code: f.code,
                        messages: f.messages,
                        text: Some(text),
                    });
                }
            }
            let shortened = rules.shortenings(&valid.object);
            valid.warnings.extend(shortened);
            if rules.validate_only {
                valid.object = relationship_ends(&valid.object);
            }
            Checked::Valid {
                index,
                line,
                text,
                valid,
            }
        }
        checked => checked,
    }
}

/// What a validate-only run keeps of a valid object: a relationship's `type` and ends.
fn relationship_ends(object: &Map<String, Value>) -> Map<String, Value> {
    if object.get("type").and_then(Value::as_str) != Some("relationship") {
        return Map::new();
    }
    ["type", "source_ref", "target_ref"]
        .into_iter()
        .filter_map(|k| object.get(k).map(|v| (k.to_string(), v.clone())))
        .collect()
}
