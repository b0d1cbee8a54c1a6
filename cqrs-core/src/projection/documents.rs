//! Documents: a read model as keyed serde documents, saved by the store
//! together with the projection's checkpoint.

use std::collections::HashSet;
use std::collections::btree_map::{self, BTreeMap};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A collection of documents (key -> `D`) inside a projection: the read model
/// a durable store keeps for you, no SQL written.
///
/// Mark the field `#[document]` in a `#[derive(Projection)]` struct. After each
/// batch of events the runner saves the documents that changed and the
/// projection's checkpoint in one transaction, so a restart resumes exactly
/// where the saved state is: every event counted once.
///
/// Reading a document (`get`, `iter`) changes nothing; `entry`, `get_mut`,
/// `insert` and `remove` mark it changed.
///
/// # Examples
///
/// ```
/// use cqrs_core::projection::Documents;
///
/// let mut balances = Documents::<u64>::new();
/// *balances.entry("ada").or_default() += 100;
/// assert_eq!(balances.get("ada"), Some(&100));
/// assert_eq!(balances.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Documents<D> {
    docs: BTreeMap<String, D>,
    changed: ChangedKeys,
}

/// The keys written since the last save. Checked on every write, so hashed
/// (with foldhash, randomly seeded) rather than ordered: a projection
/// writes on every event, and saves once a batch.
type ChangedKeys = HashSet<String, foldhash::fast::RandomState>;

impl<D> Default for Documents<D> {
    fn default() -> Self {
        Self {
            docs: BTreeMap::new(),
            changed: ChangedKeys::default(),
        }
    }
}

impl<D> PartialEq for Documents<D>
where
    D: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.docs == other.docs
    }
}

impl<D> Documents<D> {
    /// No documents.
    pub fn new() -> Self {
        Self::default()
    }

    /// The document at `key`.
    pub fn get(&self, key: &str) -> Option<&D> {
        self.docs.get(key)
    }

    /// The document at `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut D> {
        let doc = self.docs.get_mut(key)?;
        mark_changed(&mut self.changed, key);
        Some(doc)
    }

    /// The document at `key`, to change or create it.
    pub fn entry(&mut self, key: impl Into<String>) -> Entry<'_, D> {
        let key = key.into();
        mark_changed(&mut self.changed, &key);
        Entry {
            inner: self.docs.entry(key),
        }
    }

    /// Sets the document at `key`, returning the previous one.
    pub fn insert(&mut self, key: impl Into<String>, doc: D) -> Option<D> {
        let key = key.into();
        mark_changed(&mut self.changed, &key);
        self.docs.insert(key, doc)
    }

    /// Deletes the document at `key`.
    pub fn remove(&mut self, key: &str) -> Option<D> {
        let removed = self.docs.remove(key)?;
        mark_changed(&mut self.changed, key);
        Some(removed)
    }

    /// Every document, by key.
    pub fn iter(&self) -> btree_map::Iter<'_, String, D> {
        self.docs.iter()
    }

    /// How many documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// Adds `key` to the changed keys, copying it only if it is not there yet: a
/// projection writes the same documents over and over (an account per event)
/// between two saves.
fn mark_changed(changed: &mut ChangedKeys, key: &str) {
    if !changed.contains(key) {
        changed.insert(key.to_owned());
    }
}

impl<'a, D> IntoIterator for &'a Documents<D> {
    type Item = (&'a String, &'a D);
    type IntoIter = btree_map::Iter<'a, String, D>;

    fn into_iter(self) -> Self::IntoIter {
        self.docs.iter()
    }
}

/// One document of a [`Documents`], present or not.
#[derive(Debug)]
pub struct Entry<'a, D> {
    inner: btree_map::Entry<'a, String, D>,
}

impl<'a, D> Entry<'a, D> {
    /// The document, created with `make` if absent.
    pub fn or_insert_with(self, make: impl FnOnce() -> D) -> &'a mut D {
        self.inner.or_insert_with(make)
    }

    /// The document, created as `D::default()` if absent.
    pub fn or_default(self) -> &'a mut D
    where
        D: Default,
    {
        self.inner.or_default()
    }
}

/// Changed documents by key, encoded; `None` for a deleted one.
pub type Changes = Vec<(String, Option<Vec<u8>>)>;

/// A documents collection as the runner sees it, whatever its document type.
#[diagnostic::on_unimplemented(
    message = "a `#[document]` field must be a documents collection, not `{Self}`",
    label = "not a `Documents<D>`",
    note = "a `#[document]` field holds `cqrs_core::Documents<D>`: documents by key, `D` serializable"
)]
pub trait DocumentCollection: Send + Sync {
    /// The changed documents since the last call, encoded (`None`: deleted).
    ///
    /// # Errors
    ///
    /// When a document's `Serialize` fails; the changes stay pending.
    fn take_changes(&mut self) -> Result<Changes, serde_json::Error>;

    /// Puts back a saved document.
    ///
    /// # Errors
    ///
    /// When the bytes are not a `D`.
    fn restore(&mut self, key: String, body: &[u8]) -> Result<(), serde_json::Error>;

    /// Forgets every document (for a rebuild).
    fn clear(&mut self);
}

impl<D: Serialize + DeserializeOwned + Send + Sync> DocumentCollection for Documents<D> {
    fn take_changes(&mut self) -> Result<Changes, serde_json::Error> {
        // In key order, as the store is given them.
        let mut keys: Vec<&String> = self.changed.iter().collect();
        keys.sort_unstable();
        let mut changes = Vec::with_capacity(keys.len());
        for key in keys {
            let body = self.docs.get(key).map(serde_json::to_vec).transpose()?;
            changes.push((key.clone(), body));
        }
        self.changed.clear();
        Ok(changes)
    }

    fn restore(&mut self, key: String, body: &[u8]) -> Result<(), serde_json::Error> {
        self.docs.insert(key, serde_json::from_slice(body)?);
        Ok(())
    }

    fn clear(&mut self) {
        self.docs.clear();
        self.changed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_are_changes() {
        let mut docs = Documents::<u32>::new();
        docs.insert("a", 1);
        *docs.entry("b").or_default() += 2;
        let mut changes = docs.take_changes().unwrap();
        changes.sort();
        assert_eq!(
            changes,
            vec![
                ("a".into(), Some(b"1".to_vec())),
                ("b".into(), Some(b"2".to_vec()))
            ]
        );
        let _ = docs.get("a");
        assert!(
            docs.take_changes().unwrap().is_empty(),
            "reads are not changes"
        );
        docs.remove("a");
        assert!(docs.remove("zzz").is_none());
        assert_eq!(docs.take_changes().unwrap(), vec![("a".into(), None)]);
        docs.restore("c".into(), b"7").unwrap();
        assert_eq!(docs.get("c"), Some(&7));
        assert!(
            docs.take_changes().unwrap().is_empty(),
            "restoring is not a change"
        );
    }
}
