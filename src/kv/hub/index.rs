//! `WatchIndex`: the live watchers by exact key and by prefix, so that a change finds
//! the watchers it matches without looking at the others.
//!
//! A key's matching prefixes are its own byte prefixes that end on a char boundary; the
//! index keeps how many distinct prefixes it holds of each length, and a lookup tries
//! only those lengths (at most the key's length, usually a handful), one hash lookup
//! each. Invariants: an id is in the index at most once, under the filter it was
//! inserted with; `prefix_lens[l]` is the number of distinct prefixes of `l` bytes;
//! empty sets are removed.

use crate::kv::hub::filter::Filter;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A watcher's id in the hub (never reused while the process lives).
pub type WatcherId = u64;

/// The live watchers by what they follow.
#[derive(Default, Debug)]
pub struct WatchIndex {
    keys: HashMap<String, HashSet<WatcherId>>,
    prefixes: HashMap<String, HashSet<WatcherId>>,
    /// Prefix length in bytes -> how many distinct prefixes of that length are held.
    prefix_lens: BTreeMap<usize, usize>,
    len: usize,
}

impl WatchIndex {
    /// Adds watcher `id` following `filter`.
    pub fn insert(&mut self, filter: &Filter, id: WatcherId) {
        let fresh = match filter {
            Filter::Key(k) => self.keys.entry(k.clone()).or_default().insert(id),
            Filter::Prefix(p) => {
                let ids = self.prefixes.entry(p.clone()).or_default();
                if ids.is_empty() {
                    *self.prefix_lens.entry(p.len()).or_default() += 1;
                }
                ids.insert(id)
            }
        };
        assert!(fresh, "watcher {id} inserted twice");
        self.len += 1;
    }

    /// Removes watcher `id` that was inserted with `filter`; false if it was not there.
    pub fn remove(&mut self, filter: &Filter, id: WatcherId) -> bool {
        let (map, text) = match filter {
            Filter::Key(k) => (&mut self.keys, k),
            Filter::Prefix(p) => (&mut self.prefixes, p),
        };
        let Some(ids) = map.get_mut(text.as_str()) else {
            return false;
        };
        if !ids.remove(&id) {
            return false;
        }
        if ids.is_empty() {
            map.remove(text.as_str());
            if matches!(filter, Filter::Prefix(_)) {
                if let Some(n) = self.prefix_lens.get_mut(&text.len()) {
                    *n -= 1;
                    if *n == 0 {
                        self.prefix_lens.remove(&text.len());
                    }
                }
            }
        }
        self.len -= 1;
        true
    }

    /// How many watchers are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no watcher is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends to `out` every watcher a change of `key` matches (each once).
    pub fn matching(&self, key: &str, out: &mut Vec<WatcherId>) {
        if let Some(ids) = self.keys.get(key) {
            out.extend(ids.iter().copied());
        }
        for &len in self.prefix_lens.range(..=key.len()).map(|(l, _)| l) {
            let Some(prefix) = key.get(..len) else {
                continue; // not a char boundary: no UTF-8 prefix ends there
            };
            if let Some(ids) = self.prefixes.get(prefix) {
                out.extend(ids.iter().copied());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filter_strategy() -> impl Strategy<Value = Filter> {
        prop_oneof![
            "[ab/é]{0,4}".prop_map(Filter::Prefix),
            "[ab/é]{1,4}".prop_map(Filter::Key),
        ]
    }

    proptest! {
        /// The index finds exactly the watchers whose filter matches, after any mix of
        /// inserts and removals (the model: every live filter, checked one by one).
        #[test]
        fn matching_equals_checking_every_filter(
            filters in proptest::collection::vec(filter_strategy(), 0..40),
            removed in proptest::collection::vec(any::<bool>(), 40),
            keys in proptest::collection::vec("[ab/é]{1,5}", 1..20),
        ) {
            let mut index = WatchIndex::default();
            for (id, f) in filters.iter().enumerate() {
                index.insert(f, id as WatcherId);
            }
            let mut live = Vec::new();
            for (id, f) in filters.iter().enumerate() {
                if removed[id] {
                    prop_assert!(index.remove(f, id as WatcherId));
                    prop_assert!(!index.remove(f, id as WatcherId));
                } else {
                    live.push((id as WatcherId, f));
                }
            }
            prop_assert_eq!(index.len(), live.len());
            for key in &keys {
                let mut got = Vec::new();
                index.matching(key, &mut got);
                got.sort_unstable();
                let want: Vec<WatcherId> =
                    live.iter().filter(|(_, f)| f.matches(key)).map(|(id, _)| *id).collect();
                prop_assert_eq!(got, want, "key {:?}", key);
            }
            for (id, f) in &live {
                prop_assert!(index.remove(f, *id));
            }
            prop_assert!(index.is_empty());
            prop_assert!(index.prefix_lens.is_empty() && index.prefixes.is_empty());
            prop_assert!(index.keys.is_empty());
        }
    }
}
