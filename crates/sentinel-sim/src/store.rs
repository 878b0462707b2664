//! What the simulated workspace holds: accepted STIX objects keyed by `id`, so a re-upload
//! updates in place (the real service is idempotent by id) and tests count each object once.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

#[derive(Default)]
pub(crate) struct ObjectStore {
    /// In order of first acceptance; an update replaces the object where it stands.
    objects: Vec<Value>,
    position: HashMap<String, usize>,
}

impl ObjectStore {
    pub(crate) fn upsert(&mut self, id: String, object: Value) {
        match self.position.get(&id) {
            Some(&i) => self.objects[i] = object,
            None => {
                self.position.insert(id, self.objects.len());
                self.objects.push(object);
            }
        }
    }

    pub(crate) fn objects(&self) -> &[Value] {
        &self.objects
    }

    pub(crate) fn ids(&self) -> BTreeSet<String> {
        self.position.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reupload_updates_in_place_and_counts_once() {
        let mut store = ObjectStore::default();
        store.upsert("a".into(), json!({"v": 1}));
        store.upsert("b".into(), json!({"v": 2}));
        store.upsert("a".into(), json!({"v": 3}));
        assert_eq!(store.objects(), &[json!({"v": 3}), json!({"v": 2})]);
        assert_eq!(store.ids().len(), 2);
    }
}
