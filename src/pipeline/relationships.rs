//! Dangling relationships: a relationship whose end is an object this input refused, or of a
//! type the target does not hold (`TI_DANGLING_RELATIONSHIPS`: a warning, or the relationship
//! reported rejected).

use serde_json::{Map, Value};
use ti_core::stix;

use super::duplicates::{id_key, DEDUP_WINDOW};

/// The ids of the objects refused in this input so far (rejected by validation or, in a
/// validate-only run, by a target's rules), for the dangling-relationship check: `id_key(id) →
/// record index`. Bounded like the duplicate check: it forgets everything after
/// [`DEDUP_WINDOW`] entries. Refusals by the service itself (an `errors[]` entry) are known only
/// after their request finished, so they are not counted.
#[derive(Default)]
pub(super) struct Refused {
    ids: nohash_hasher::IntMap<u64, u64>,
}

impl Refused {
    pub(super) fn insert(&mut self, id: &str, index: u64) {
        if self.ids.len() >= DEDUP_WINDOW {
            self.ids.clear();
        }
        self.ids.insert(id_key(id), index);
    }

    /// For a relationship: one message per end that is an object the target will not hold (a
    /// type outside `accepted`, or an object refused earlier in the input). Empty otherwise.
    pub(super) fn dangling_ends(
        &self,
        object: &Map<String, Value>,
        accepted: &[&str],
    ) -> Vec<String> {
        if object.get("type").and_then(Value::as_str) != Some("relationship") {
            return Vec::new();
        }
        let mut messages = Vec::new();
        for key in ["source_ref", "target_ref"] {
            let Some(r) = object.get(key).and_then(Value::as_str) else {
                continue;
            };
            let ty = stix::identifier_type(r).unwrap_or_default();
            if !accepted.contains(&ty) {
                messages.push(format!(
                    "{key} {r} is a '{ty}', a type the target does not accept (accepted: {}): the relationship points at an object the target will not hold",
                    accepted.join(", ")
                ));
            } else if let Some(i) = self.ids.get(&id_key(r)) {
                messages.push(format!(
                    "{key} {r} was refused (record {i} of this input): the relationship points at an object the target will not hold"
                ));
            }
        }
        messages
    }
}
