//! The index from user keys to [`UserId`]s. Every event looks its user up,
//! and at a million users the lookup is a cache miss; so the index is one
//! open-addressing table (linear probing) whose entries hold a key up to
//! [`INLINE`] bytes long (most user ids: `user-11270`, a short numeric id)
//! in place, and a hit is confirmed without following a pointer to the
//! key's text. The home slot is the top bits of the mixed hash: a lookup
//! can be announced ([`UserIndex::prefetch`]) before it is made, and the
//! table grows in one sequential sweep.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use super::UserId;
use crate::prefetch::prefetch;
use crate::value::Str;

/// Key bytes kept in an entry: what fills it to 24 bytes (most keys,
/// `user-11270` or Segment's `anon-` ids, fit; a UUID does not, and is
/// confirmed against the key itself).
const INLINE: usize = 19;

/// The id of an empty entry (no user has it: ids count users from 0).
const EMPTY: UserId = UserId::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: UserId,
    /// The key's length, saturated.
    len: u8,
    /// The key's first bytes, zero-padded.
    head: [u8; INLINE],
}

const VACANT: Entry = Entry {
    id: EMPTY,
    len: 0,
    head: [0; INLINE],
};

impl Entry {
    fn new(key: &[u8], id: UserId) -> Entry {
        let mut head = [0; INLINE];
        let n = key.len().min(INLINE);
        head[..n].copy_from_slice(&key[..n]);
        Entry {
            id,
            len: u8::try_from(key.len()).unwrap_or(u8::MAX),
            head,
        }
    }

    /// Whether this (occupied) entry is `key`'s; `keys` holds every key by id.
    fn is(&self, key: &[u8], keys: &[Str]) -> bool {
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
    /// Empty, or a power of two long.
    slots: Vec<Entry>,
    len: usize,
}

impl UserIndex {
    const MIN_SLOTS: usize = 64;

    pub fn get(&self, key: &str, keys: &[Str]) -> Option<UserId> {
        if self.slots.is_empty() {
            return None;
        }
        let key = key.as_bytes();
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let entry = &self.slots[i];
            if entry.id == EMPTY {
                return None;
            }
            if entry.is(key, keys) {
                return Some(entry.id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `key` as `id`; the caller has checked it is absent and pushed
    /// it to `keys` at `id`.
    pub fn insert(&mut self, key: &str, id: UserId, keys: &[Str]) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(keys);
        }
        self.place(Entry::new(key.as_bytes(), id), key.as_bytes());
        self.len += 1;
    }

    /// The bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Entry>()
    }

    /// Starts loading the slot where `key`'s lookup begins.
    pub fn prefetch(&self, key: &str) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.home(key.as_bytes())]);
        }
    }

    /// The index of `keys` (id = position).
    pub fn of(keys: &[Str]) -> UserIndex {
        let mut index = UserIndex::default();
        for (id, key) in keys.iter().enumerate() {
            index.insert(key, id as UserId, keys);
        }
        index
    }

    fn home(&self, key: &[u8]) -> usize {
        let bits = self.slots.len().trailing_zeros();
        let hash = FxBuildHasher.hash_one(key);
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// Puts `entry` (of `key`) in the first free slot from its home.
    fn place(&mut self, entry: Entry, key: &[u8]) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].id != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = entry;
    }

    /// Doubles the table; entries move in home order. A key kept whole in
    /// its entry is hashed from there, not looked up in `keys` (a random
    /// read for every user).
    fn grow(&mut self, keys: &[Str]) {
        let len = (self.slots.len() * 2).max(Self::MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; len]);
        for entry in old.into_iter().filter(|e| e.id != EMPTY) {
            let inline = entry.len as usize;
            match entry.head.get(..inline) {
                Some(key) => self.place(entry, key),
                None => self.place(entry, keys[entry.id as usize].as_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_long_and_prefix_sharing_keys() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
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
        let mut keys: Vec<Str> = Vec::new();
        let mut index = UserIndex::default();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, &keys), None, "{name:?} before insert");
            keys.push(Str::new(name));
            index.insert(name, i as UserId, &keys);
        }
        // Enough to grow a few times, short and long keys mixed.
        for i in 0..5000u32 {
            let name = if i % 2 == 0 {
                format!("u{i}")
            } else {
                format!("u{i}-{long}")
            };
            let id = keys.len() as UserId;
            keys.push(Str::new(&name));
            index.insert(&name, id, &keys);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, &keys), Some(i as UserId), "{name:?}");
        }
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key, &keys), Some(id as UserId));
            index.prefetch(key);
        }
        assert_eq!(index.get("user-", &keys), None);
        assert_eq!(index.get(&format!("{long}c"), &keys), None);
        assert_eq!(index.get("u1", &keys), None);
        let rebuilt = UserIndex::of(&keys);
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(rebuilt.get(key, &keys), Some(id as UserId));
        }
    }
}
