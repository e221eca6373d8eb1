//! The `messageId` window: which ids were seen in the last
//! [`DEDUP_WINDOW_MS`] of event time, at most [`DEDUP_CAPACITY`] of them.
//!
//! Every event that concerns a journey asks it once, so it is built for one
//! cache miss a question. Ids are remembered as 64-bit hashes in an
//! open-addressing table (linear probing), each tagged with its sequence
//! number; their times sit in a queue in arrival order. Forgetting the
//! oldest id only moves the queue's front: a table entry whose sequence
//! number is before the front is dead, skipped by lookups and reused by
//! inserts, and a rebuild drops the dead when they crowd the table. The
//! home slot is the top bits of the mixed hash, so the table is rebuilt in
//! one sequential sweep.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How long a `messageId` is remembered, in event time.
pub const DEDUP_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// The most `messageId`s remembered at once.
pub const DEDUP_CAPACITY: usize = 1 << 22;

/// The hash the window remembers of a `messageId`: stable across machines
/// and versions of Rust (snapshots hold it), and eight bytes at a time, as
/// every processed event takes one (FNV-1a's byte-at-a-time chain of
/// multiplies cost a 36-character id about 150 cycles).
///
/// Each word is mixed into the state by a bijection, so two ids of the same
/// length that differ in one word never collide; the length is mixed in
/// first, and the final avalanche (MurmurHash3's `fmix64`) spreads every
/// bit over the table's home-slot bits.
pub fn id_hash(id: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = id.as_bytes();
    let mut state = (bytes.len() as u64 ^ 0x243f_6a88_85a3_08d3).wrapping_mul(K);
    let mut mix = |word: u64| state = (state ^ word).wrapping_mul(K).rotate_left(31);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(word);
        mix(u64::from_le_bytes(buf));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        mix(u64::from_le_bytes(buf));
    }
    let mut h = state;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The home slot of `hash` in a table of `1 << bits` slots (`bits` ≥ 1).
fn home_in(hash: u64, bits: u32) -> usize {
    (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// The window. Serialized as the remembered `(time, hash)` pairs, oldest
/// first.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "VecDeque<(i64, u64)>", into = "VecDeque<(i64, u64)>")]
pub struct Dedup {
    /// The times of the remembered ids, oldest first.
    times: VecDeque<i64>,
    /// The sequence number of the oldest remembered id.
    front: u64,
    /// Empty, or a power of two long (at least [`Dedup::MIN_SLOTS`]).
    slots: Vec<Slot>,
    /// Slots that are not empty, live or dead.
    used: usize,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u64,
    /// The id's sequence number plus one; 0 for an empty slot.
    seq: u64,
}

impl Dedup {
    const MIN_SLOTS: usize = 16;

    /// Records `hash` seen at `at`; false when it is remembered already.
    pub fn first_sighting(&mut self, hash: u64, at: i64) -> bool {
        while let Some(&t) = self.times.front() {
            if t > at - DEDUP_WINDOW_MS && self.times.len() < DEDUP_CAPACITY {
                break;
            }
            self.times.pop_front();
            self.front += 1;
        }
        if self.slots.is_empty() {
            self.rebuild();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        let mut reusable = None;
        loop {
            let slot = self.slots[i];
            if slot.seq == 0 {
                break;
            }
            if slot.seq > self.front {
                if slot.hash == hash {
                    return false;
                }
            } else if reusable.is_none() {
                reusable = Some(i);
            }
            i = (i + 1) & mask;
        }
        let at_slot = reusable.unwrap_or_else(|| {
            self.used += 1;
            i
        });
        self.slots[at_slot] = Slot {
            hash,
            seq: self.front + self.times.len() as u64 + 1,
        };
        self.times.push_back(at);
        if self.used * 4 > self.slots.len() * 3 {
            self.rebuild();
        }
        true
    }

    /// Starts loading the slot where `hash`'s lookup begins.
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            super::prefetch(&self.slots[self.home(hash)]);
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The first slot to probe for `hash`: the top bits of its mix, so
    /// slot order follows hash order at every table size.
    fn home(&self, hash: u64) -> usize {
        home_in(hash, self.slots.len().trailing_zeros())
    }

    /// Re-makes the table with the live ids only, at most half full. At a
    /// steady rate of ids the size stays the same, and the table is swept
    /// in place: a fresh table would be fresh memory, and the kernel's
    /// zeroing of its pages cost more than the sweep.
    fn rebuild(&mut self) {
        let len = (self.times.len() * 2)
            .next_power_of_two()
            .max(Self::MIN_SLOTS);
        if len != self.slots.len() {
            let old = std::mem::replace(&mut self.slots, vec![Slot::default(); len]);
            self.used = 0;
            for slot in old {
                if slot.seq > self.front {
                    self.place(slot);
                }
            }
            return;
        }
        // Every live id is taken out and placed again from its home, in
        // slot order from just after a slot that was empty before the dead
        // were cleared (a rebuild comes as soon as just over three quarters
        // of the slots are used, so there is one), and no probe run crosses
        // the start: each id lands at or before where it
        // was, and no slot emptied later lies between an id placed earlier
        // and its home.
        let start = self.slots.iter().position(|s| s.seq == 0).unwrap_or(0);
        let front = self.front;
        for slot in &mut self.slots {
            if slot.seq <= front {
                *slot = Slot::default();
            }
        }
        let mask = len - 1;
        self.used = 0;
        for k in 1..=len {
            let i = (start + k) & mask;
            let slot = self.slots[i];
            if slot.seq != 0 {
                self.slots[i] = Slot::default();
                self.place(slot);
            }
        }
    }

    /// Puts a live id in the first empty slot from its home.
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(slot.hash);
        while self.slots[i].seq != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
        self.used += 1;
    }
}

impl From<VecDeque<(i64, u64)>> for Dedup {
    fn from(order: VecDeque<(i64, u64)>) -> Dedup {
        let mut dedup = Dedup::default();
        // Saved ids are in arrival order, all within the window and the
        // capacity of the newest: each is remembered again as it was (a
        // repeated one, in a hand-edited snapshot, once).
        for (at, hash) in order {
            dedup.first_sighting(hash, at);
        }
        dedup
    }
}

impl From<Dedup> for VecDeque<(i64, u64)> {
    fn from(dedup: Dedup) -> VecDeque<(i64, u64)> {
        let mut live: Vec<Slot> = dedup
            .slots
            .iter()
            .copied()
            .filter(|s| s.seq > dedup.front)
            .collect();
        live.sort_unstable_by_key(|s| s.seq);
        dedup
            .times
            .iter()
            .zip(live)
            .map(|(&at, slot)| (at, slot.hash))
            .collect()
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedup")
            .field("remembered", &self.times.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The window as its definition says: every sighting with its time, a
    /// hash remembered while it is among the last `capacity` sightings
    /// and younger than the window.
    struct Model {
        seen: VecDeque<(i64, u64)>,
        capacity: usize,
    }

    impl Model {
        fn first_sighting(&mut self, hash: u64, at: i64) -> bool {
            while let Some(&(t, _)) = self.seen.front() {
                if t > at - DEDUP_WINDOW_MS && self.seen.len() < self.capacity {
                    break;
                }
                self.seen.pop_front();
            }
            if self.seen.iter().any(|&(_, h)| h == hash) {
                return false;
            }
            self.seen.push_back((at, hash));
            true
        }
    }

    proptest! {
        /// Answers as the definition does, through expiry, reuse of dead
        /// slots and rebuilds, and survives a serde round trip anywhere.
        #[test]
        fn answers_as_the_definition(
            ops in proptest::collection::vec((0u64..40, 0i64..100), 1..600),
            save_at in 0usize..600,
        ) {
            let mut dedup = Dedup::default();
            let mut model = Model { seen: VecDeque::new(), capacity: DEDUP_CAPACITY };
            let mut at = 0;
            for (k, (hash, quarter_hours)) in ops.into_iter().enumerate() {
                // Up to a day apart: ids keep leaving the 7-day window.
                at += quarter_hours * 900_000;
                prop_assert_eq!(dedup.first_sighting(hash, at), model.first_sighting(hash, at));
                prop_assert_eq!(dedup.len(), model.seen.len());
                if k == save_at {
                    let saved: VecDeque<(i64, u64)> = dedup.clone().into();
                    prop_assert_eq!(&saved, &model.seen);
                    dedup = Dedup::from(saved);
                }
            }
            let saved: VecDeque<(i64, u64)> = dedup.into();
            prop_assert_eq!(saved, model.seen);
        }
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut dedup = Dedup::default();
        let n = DEDUP_CAPACITY as u64 + 3;
        for i in 0..n {
            assert!(dedup.first_sighting(i, 0));
        }
        assert_eq!(dedup.len(), DEDUP_CAPACITY);
        // The three oldest were forgotten; the next oldest is remembered.
        assert!(dedup.first_sighting(0, 0));
        assert!(!dedup.first_sighting(5, 0));
    }

    #[test]
    fn id_hashes_of_close_ids_differ_and_spread_over_home_slots() {
        // Ids as Segment libraries make them: same length, a few characters
        // apart; and ids that are prefixes of each other.
        let mut ids: Vec<String> = (0..200_000u32)
            .map(|i| format!("msg-{:08x}-4b1e-9c3a-{:012x}", i / 7, u64::from(i) * 31))
            .collect();
        ids.extend((0..64).map(|n| "a".repeat(n)));
        ids.extend((0..64).map(|n| "\0".repeat(n + 1)));
        let mut hashes: Vec<u64> = ids.iter().map(|id| id_hash(id)).collect();
        let mut homes = [0u32; 64];
        for &hash in &hashes {
            homes[home_in(hash, 6)] += 1;
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), ids.len(), "two ids share a hash");
        let mean = ids.len() as f64 / 64.0;
        for (slot, &n) in homes.iter().enumerate() {
            assert!(
                (f64::from(n) - mean).abs() < mean * 0.05,
                "home {slot}: {n} ids, {mean} expected"
            );
        }
    }
}
