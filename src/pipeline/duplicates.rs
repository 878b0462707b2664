//! Duplicate ids: the last record with an id wins. The ids of the last [`DEDUP_WINDOW`] valid
//! records are remembered (as 64-bit keys), so memory stays flat whatever the input size.

/// How many valid records' ids are remembered for the duplicate check (about 3 MiB).
pub const DEDUP_WINDOW: usize = 100_000;

/// A compact key for an id, so tracking the ids of a million records costs megabytes, not
/// the ids themselves. A 64-bit collision among one input's ids is vanishingly unlikely.
pub(super) fn id_key(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The ids of the latest valid records, each with where its latest record is.
#[derive(Default)]
pub(super) struct Duplicates {
    // id → (index, line) of the latest valid record with that id. The keys are already hashes
    // (`id_key`), so the table does not hash them again.
    seen: nohash_hasher::IntMap<u64, (u64, u64)>,
}

impl Duplicates {
    /// Records that the valid record `index` (on `line`) has `id`; returns the `(index, line)`
    /// of the earlier record with the same id, when one is remembered.
    pub(super) fn repeat_of(&mut self, id: &str, index: u64, line: u64) -> Option<(u64, u64)> {
        if self.seen.len() >= DEDUP_WINDOW {
            // Bounded memory whatever the input size: duplicates are found among records
            // up to DEDUP_WINDOW valid records apart.
            self.seen.clear();
        }
        self.seen.insert(id_key(id), (index, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_names_the_latest_earlier_record() {
        let mut d = Duplicates::default();
        assert_eq!(d.repeat_of("indicator--a", 0, 1), None);
        assert_eq!(d.repeat_of("indicator--b", 1, 2), None);
        assert_eq!(d.repeat_of("indicator--a", 2, 3), Some((0, 1)));
        assert_eq!(d.repeat_of("indicator--a", 3, 5), Some((2, 3)));
        assert_eq!(d.repeat_of("indicator--b", 4, 6), Some((1, 2)));
    }

    #[test]
    fn ids_further_apart_than_the_window_are_not_matched() {
        let mut d = Duplicates::default();
        assert_eq!(d.repeat_of("indicator--first", 0, 1), None);
        for i in 1..DEDUP_WINDOW as u64 {
            assert_eq!(d.repeat_of(&format!("indicator--{i}"), i, i + 1), None);
        }
        // The window is full: it starts again, and the first id is forgotten.
        let n = DEDUP_WINDOW as u64;
        assert_eq!(d.repeat_of("indicator--first", n, n + 1), None);
        assert_eq!(
            d.repeat_of("indicator--first", n + 1, n + 2),
            Some((n, n + 1))
        );
    }
}
