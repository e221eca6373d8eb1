//! The index from user keys to [`UserId`]s. Every event looks its user up,
//! and at a million users the lookup is a cache miss or two; a key up to
//! [`INLINE`] bytes long (most user ids: `user-11270`, a short numeric id)
//! is stored in the index entry itself, so a hit is confirmed without
//! following a pointer to the key's text.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::UserId;

/// Key bytes kept in an entry.
const INLINE: usize = 24;

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: UserId,
    /// The key's length, saturated.
    len: u32,
    /// The key's first bytes, zero-padded.
    head: [u8; INLINE],
}

impl Entry {
    fn new(key: &str, id: UserId) -> Entry {
        let bytes = key.as_bytes();
        let mut head = [0; INLINE];
        let n = bytes.len().min(INLINE);
        head[..n].copy_from_slice(&bytes[..n]);
        Entry {
            id,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            head,
        }
    }

    /// Whether this entry is `key`'s; `keys` holds every key by id.
    fn is(&self, key: &[u8], keys: &[Arc<str>]) -> bool {
        if key.len() <= INLINE {
            self.len as usize == key.len() && self.head[..key.len()] == *key
        } else {
            self.head[..] == key[..INLINE] && keys[self.id as usize].as_bytes() == key
        }
    }
}

/// User keys to ids. The keys themselves live in the store's id-ordered
/// `keys`, which every call is given.
#[derive(Clone, Debug, Default)]
pub struct UserIndex {
    table: HashTable<Entry>,
}

fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl UserIndex {
    pub fn get(&self, key: &str, keys: &[Arc<str>]) -> Option<UserId> {
        let bytes = key.as_bytes();
        self.table
            .find(hash(bytes), |e| e.is(bytes, keys))
            .map(|e| e.id)
    }

    /// Adds `key` as `id`; the caller has checked it is absent and pushed
    /// it to `keys` at `id`.
    pub fn insert(&mut self, key: &str, id: UserId, keys: &[Arc<str>]) {
        let entry = Entry::new(key, id);
        self.table.insert_unique(hash(key.as_bytes()), entry, |e| {
            hash(keys[e.id as usize].as_bytes())
        });
    }

    /// The index of `keys` (id = position).
    pub fn of(keys: &[Arc<str>]) -> UserIndex {
        let mut index = UserIndex {
            table: HashTable::with_capacity(keys.len()),
        };
        for (id, key) in keys.iter().enumerate() {
            index.insert(key, id as UserId, keys);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_long_and_prefix_sharing_keys() {
        let long = "x".repeat(INLINE);
        let names = [
            "",
            "a",
            "user-1",
            "user-10",
            "user-1\0",
            long.as_str(),
            &format!("{long}a"),
            &format!("{long}b"),
            &format!("{long}ab"),
            "ü-ñ-日本",
        ];
        let mut keys: Vec<Arc<str>> = Vec::new();
        let mut index = UserIndex::default();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, &keys), None, "{name:?} before insert");
            keys.push(Arc::from(*name));
            index.insert(name, i as UserId, &keys);
        }
        // Enough to rehash a few times.
        for i in 0..5000u32 {
            let name = format!("u{i}-{long}");
            let id = keys.len() as UserId;
            keys.push(Arc::from(name.as_str()));
            index.insert(&name, id, &keys);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, &keys), Some(i as UserId), "{name:?}");
        }
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key, &keys), Some(id as UserId));
        }
        assert_eq!(index.get("user-", &keys), None);
        assert_eq!(index.get(&format!("{long}c"), &keys), None);
        let rebuilt = UserIndex::of(&keys);
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(rebuilt.get(key, &keys), Some(id as UserId));
        }
    }
}
