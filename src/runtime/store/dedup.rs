//! The `messageId` window: which ids were seen in the last
//! [`DEDUP_WINDOW_MS`] of event time, at most [`DEDUP_CAPACITY`] of them.
//!
//! Every event that concerns a journey asks it once, so a question should
//! not wait on memory far from the cache. Ids are remembered as 64-bit
//! hashes, in arrival order, in a queue (with their times), and numbered
//! in that order: the queue's front is the oldest id, and forgetting it
//! only moves the front.
//!
//! A question first asks a Bloom filter of the remembered ids, small
//! enough to stay near the cache (four bits an id, one cache line a
//! question): most ids are new, and the filter says so without more. Only
//! when it passes an id (one that was seen, or 2–15% of the rest, the
//! more the longer since the filter was made) is the exact record asked: a table that finds an id's number
//! from its hash, in open addressing, 8-byte slots eight to a cache line,
//! each holding the top bits of the hash (which choose its home line) and
//! the low bits of the number. A slot whose number is before the front is
//! dead, skipped by lookups and reused by inserts; a rebuild drops the
//! dead when they crowd the table. The hash bits in a slot only filter: a
//! match is confirmed against the full hash in the queue, so two ids are
//! one only when their 64-bit hashes are.
//!
//! New ids join the table in batches of `BATCH` (64), whose lines are all
//! asked for before any is written, so their loads overlap; until then a
//! question looks through the batch too. The filter cannot forget an id:
//! it is made again from the queue once as many ids joined it as it held
//! when it was made.

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
/// bit over the table's home bits.
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

/// The bits of an id's number a slot keeps.
const SEQ_BITS: u32 = 24;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// A slot's top bit: set when the slot is used (an empty slot is 0).
const USED: u64 = 1 << 63;
/// The hash bits a slot keeps (shifted into place): 39 of them.
const HASH_MASK: u64 = !USED & !SEQ_MASK;
/// Slots a line (a bucket) holds.
const LINE: usize = 8;
/// Ids numbered between rebuilds, at most. A dead slot's number is read
/// modulo `1 << SEQ_BITS`; a rebuild clears every dead slot before the
/// numbers come round to it again (the oldest slot alive at a rebuild was
/// numbered at most [`DEDUP_CAPACITY`] before it).
const REBUILD_EVERY: u64 = (1 << SEQ_BITS) - DEDUP_CAPACITY as u64 * 2;

/// A slot's hash bits for `hash`, in place: the top bits of its product
/// with an odd constant, so that hashes that differ only in their low
/// bits (as an embedder's own may) still spread over the lines.
fn hash_bits(hash: u64) -> u64 {
    (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 1) & HASH_MASK
}

/// The home line of a slot (or of `hash_bits`) in a table of `1 << bits`
/// lines (`bits` ≥ 1: a table has at least [`Dedup::MIN_LINES`]): the top
/// bits of the hash.
fn home_line(slot: u64, bits: u32) -> usize {
    ((slot << 1) >> (64 - bits)) as usize
}

/// The line of a filter `lines` long (a power of two, at most `1 << 24`)
/// for `hash`, and the bits set there: the filter's own mix of the hash
/// (its high half folded into the low, so that every bit counts),
/// nine bits for each bit and the bits above them for the line.
fn filter_bits(lines: usize, hash: u64) -> (usize, [u32; FILTER_PROBES]) {
    let h = (hash ^ (hash >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
    let line = (h >> 40) as usize & (lines - 1);
    (line, std::array::from_fn(|i| ((h >> (9 * i)) & 511) as u32))
}

fn add_to_filter(filter: &mut [Line], hash: u64) {
    let (line, bits) = filter_bits(filter.len(), hash);
    let words = &mut filter[line].0;
    for b in bits {
        words[(b / 64) as usize] |= 1 << (b % 64);
    }
}

/// Eight slots, one cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Line([u64; LINE]);

/// Ids a batch holds before it is placed in the table.
const BATCH: usize = 64;
/// Filter bits an id, at the most ids the filter takes before it is made
/// again.
const FILTER_BITS: usize = 4;
/// Bits a filter sets for an id, all in one line.
const FILTER_PROBES: usize = 4;

/// The window. Serialized as the remembered `(time, hash)` pairs, oldest
/// first.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "VecDeque<(i64, u64)>", into = "VecDeque<(i64, u64)>")]
pub struct Dedup {
    /// The remembered ids, oldest first: when each was seen, and its hash.
    order: VecDeque<(i64, u64)>,
    /// The number of the oldest remembered id (ids are numbered from 0 in
    /// arrival order).
    front: u64,
    /// Empty, or a power of two long.
    lines: Vec<Line>,
    /// Slots that are not empty, live or dead.
    used: usize,
    /// The number the next id gets at which a rebuild is due regardless.
    rebuild_at: u64,
    /// The slots of the newest ids, not yet in the table.
    batch: Vec<u64>,
    /// A Bloom filter of every remembered id (and of ids forgotten since
    /// it was made): one line an id, [`FILTER_PROBES`] bits set in it.
    /// Empty, or a power of two long.
    filter: Vec<Line>,
    /// Ids the filter may take before it is made again.
    filter_room: usize,
}

impl Dedup {
    const MIN_LINES: usize = 2;

    /// Records `hash` seen at `at`; false when it is remembered already.
    pub fn first_sighting(&mut self, hash: u64, at: i64) -> bool {
        while let Some(&(t, _)) = self.order.front() {
            if t > at - DEDUP_WINDOW_MS && self.order.len() < DEDUP_CAPACITY {
                break;
            }
            self.order.pop_front();
            self.front += 1;
        }
        if self.lines.is_empty() {
            self.rebuild();
        }
        let bits = hash_bits(hash);
        if self.filter_has(hash) && self.remembers(bits, hash) {
            return false;
        }
        let seq = self.front + self.order.len() as u64;
        self.batch.push(USED | bits | (seq & SEQ_MASK));
        self.order.push_back((at, hash));
        add_to_filter(&mut self.filter, hash);
        self.filter_room -= 1;
        if self.batch.len() == BATCH {
            if (self.used + BATCH) * 8 > self.slots() * 5 || seq + 1 >= self.rebuild_at {
                self.rebuild();
            } else {
                self.place_batch();
            }
        }
        if self.filter_room == 0 {
            self.make_filter();
        }
        true
    }

    /// Starts loading the line where `hash`'s question begins: its line of
    /// the filter, which answers most of them.
    pub fn prefetch(&self, hash: u64) {
        if !self.filter.is_empty() {
            let (line, _) = filter_bits(self.filter.len(), hash);
            crate::prefetch::prefetch(&self.filter[line]);
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether `hash` (whose slot bits are `bits`) is remembered: in the
    /// batch or in the table.
    fn remembers(&self, bits: u64, hash: u64) -> bool {
        let matches = |slot: u64| {
            slot & HASH_MASK == bits && self.live(slot).is_some_and(|k| self.order[k].1 == hash)
        };
        if self.batch.iter().any(|&slot| matches(slot)) {
            return true;
        }
        let mask = self.slots() - 1;
        let mut i = self.home(bits) * LINE;
        loop {
            let slot = self.slot(i);
            if slot == 0 {
                return false;
            }
            if matches(slot) {
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// Places the batch's live ids in the table, their lines asked for
    /// first so that their loads overlap.
    fn place_batch(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        for &slot in &batch {
            crate::prefetch::prefetch(&self.lines[self.home(slot)]);
        }
        for &slot in &batch {
            if self.live(slot).is_some() {
                self.insert(slot);
            }
        }
        batch.clear();
        self.batch = batch;
    }

    fn slots(&self) -> usize {
        self.lines.len() * LINE
    }

    /// The home line of a slot (or of `hash_bits`) in this table.
    fn home(&self, slot: u64) -> usize {
        home_line(slot, self.lines.len().trailing_zeros())
    }

    fn slot(&self, i: usize) -> u64 {
        self.lines[i / LINE].0[i % LINE]
    }

    fn slot_mut(&mut self, i: usize) -> &mut u64 {
        &mut self.lines[i / LINE].0[i % LINE]
    }

    /// The queue position of a used slot's id, when it is remembered.
    fn live(&self, slot: u64) -> Option<usize> {
        let k = (slot.wrapping_sub(self.front) & SEQ_MASK) as usize;
        (k < self.order.len()).then_some(k)
    }

    fn filter_has(&self, hash: u64) -> bool {
        let (line, bits) = filter_bits(self.filter.len(), hash);
        let words = &self.filter[line].0;
        bits.iter()
            .all(|&b| words[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    /// Makes the filter again from the remembered ids, with room for as
    /// many more: forgotten ids no longer pass it, and it keeps at least
    /// [`FILTER_BITS`] bits an id (twice that just after it is made).
    fn make_filter(&mut self) {
        let room = self.order.len().max(BATCH * 16);
        let lines = (room * 2 * FILTER_BITS).div_ceil(512).next_power_of_two();
        if lines == self.filter.len() {
            self.filter.fill(Line::default());
        } else {
            self.filter = vec![Line::default(); lines];
        }
        self.filter_room = room;
        for &(_, hash) in &self.order {
            add_to_filter(&mut self.filter, hash);
        }
    }

    /// Re-makes the table, then places the batch in it (it is sized for
    /// every remembered id, the batch's included); the first time, makes
    /// the filter too.
    fn rebuild(&mut self) {
        if self.filter.is_empty() {
            self.make_filter();
        }
        self.rebuild_table();
        self.place_batch();
    }

    /// Re-makes the table with the live ids only, at most half full. At a
    /// steady rate of ids the size stays the same, and the table is swept
    /// in place: a fresh table would be fresh memory, and the kernel's
    /// zeroing of its pages cost more than the sweep.
    fn rebuild_table(&mut self) {
        self.rebuild_at = self.front + self.order.len() as u64 + REBUILD_EVERY;
        let lines = (self.order.len() * 2)
            .div_ceil(LINE)
            .next_power_of_two()
            .max(Self::MIN_LINES);
        if lines != self.lines.len() {
            let old = std::mem::replace(&mut self.lines, vec![Line::default(); lines]);
            self.used = 0;
            for &slot in old.iter().flat_map(|line| &line.0) {
                if slot != 0 && self.live(slot).is_some() {
                    self.insert(slot);
                }
            }
            return;
        }
        // Every live id is taken out and placed again from its home, in
        // slot order from just after a slot that was empty before the dead
        // were cleared (a rebuild comes once five eighths of the slots are
        // used, so there is one), and no probe run crosses the start: each
        // id lands at or before where it was, and no slot emptied later
        // lies between an id placed earlier and its home.
        let slots = self.slots();
        let start = (0..slots).find(|&i| self.slot(i) == 0).unwrap_or(0);
        for i in 0..slots {
            let slot = self.slot(i);
            if slot != 0 && self.live(slot).is_none() {
                *self.slot_mut(i) = 0;
            }
        }
        let mask = slots - 1;
        self.used = 0;
        for k in 1..=slots {
            let i = (start + k) & mask;
            let slot = self.slot(i);
            if slot != 0 {
                *self.slot_mut(i) = 0;
                self.insert(slot);
            }
        }
    }

    /// Puts a live id in the first empty or dead slot from its home (a
    /// lookup passes dead slots, so one on the way may be reused; a
    /// rebuild leaves none).
    fn insert(&mut self, slot: u64) {
        let mask = self.slots() - 1;
        let mut i = self.home(slot) * LINE;
        loop {
            let at = self.slot(i);
            if at == 0 {
                self.used += 1;
                break;
            }
            if self.live(at).is_none() {
                break;
            }
            i = (i + 1) & mask;
        }
        *self.slot_mut(i) = slot;
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
        dedup.order
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedup")
            .field("remembered", &self.order.len())
            .field("slots", &self.slots())
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

    /// Many sightings, a third of them repeats, through batches, filter
    /// remakes and table rebuilds: every answer as the definition's (kept
    /// with a count of each remembered hash, so that it runs in time).
    #[test]
    fn answers_as_the_definition_over_many_ids() {
        let mut dedup = Dedup::default();
        let mut seen: VecDeque<(i64, u64)> = VecDeque::new();
        let mut count: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut at = 0;
        for i in 0..300_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Fresh ids, and repeats of ones from up to about 40,000 back.
            let hash = if state.is_multiple_of(3) {
                i.saturating_sub(state % 40_000) * 0x9e37_79b9
            } else {
                i * 0x9e37_79b9
            };
            at += (state >> 40) as i64 % 8_000;
            while let Some(&(t, h)) = seen.front() {
                if t > at - DEDUP_WINDOW_MS {
                    break;
                }
                seen.pop_front();
                let n = count.get_mut(&h).expect("counted");
                *n -= 1;
                if *n == 0 {
                    count.remove(&h);
                }
            }
            let fresh = !count.contains_key(&hash);
            if fresh {
                seen.push_back((at, hash));
                *count.entry(hash).or_default() += 1;
            }
            assert_eq!(dedup.first_sighting(hash, at), fresh, "sighting {i}");
        }
        assert_eq!(dedup.len(), seen.len());
        let saved: VecDeque<(i64, u64)> = dedup.into();
        assert_eq!(saved, seen);
    }

    /// The filter answers for most new ids: few reach the table.
    #[test]
    fn the_filter_passes_few_new_ids() {
        let mut dedup = Dedup::default();
        let mut passed_at_most = 0.0f64;
        for round in 0..8u64 {
            for i in 0..100_000u64 {
                dedup.first_sighting(id_hash(&format!("seen-{round}-{i}")), 0);
            }
            let passed = (0..10_000)
                .filter(|i| dedup.filter_has(id_hash(&format!("new-{round}-{i}"))))
                .count();
            passed_at_most = passed_at_most.max(passed as f64 / 10_000.0);
        }
        assert!(
            passed_at_most < 0.2,
            "the filter passed {passed_at_most} of new ids"
        );
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
    fn hashes_that_share_their_slot_bits_stay_apart() {
        // The inverse of the slot mix's constant: `a` and `a + INV` differ
        // by one in the mixed value, so their slots' hash bits are equal.
        const INV: u64 = {
            let k: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut inv: u64 = 1;
            let mut i = 0;
            while i < 6 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(inv)));
                i += 1;
            }
            inv
        };
        let a = 0x0123_4567_89ab_cdef_u64;
        let b = a.wrapping_add(INV);
        assert_eq!(hash_bits(a), hash_bits(b));
        let mut dedup = Dedup::default();
        assert!(dedup.first_sighting(a, 0));
        assert!(dedup.first_sighting(b, 0));
        assert!(!dedup.first_sighting(a, 1));
        assert!(!dedup.first_sighting(b, 1));
    }

    #[test]
    fn numbers_come_round_without_the_table_growing() {
        // Past the numbers a slot can tell apart (`1 << SEQ_BITS`), with
        // about a thousand ids remembered at a time.
        let step = DEDUP_WINDOW_MS / 1000;
        let n = (1u64 << SEQ_BITS) + 100_000;
        let mut dedup = Dedup::default();
        let mut most = 0;
        for i in 0..n {
            let at = i as i64 * step;
            assert!(dedup.first_sighting(i, at), "id {i} is new");
            if i % 4096 == 0 && i >= 10 {
                assert!(!dedup.first_sighting(i - 10, at), "id {} is recent", i - 10);
            }
            most = most.max(dedup.slots());
        }
        assert!(dedup.len() <= 1001);
        assert!(most <= 4096, "the table grew to {most} slots");
        // Long forgotten: new again.
        assert!(dedup.first_sighting(5, n as i64 * step));
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
            homes[home_line(hash_bits(hash), 6)] += 1;
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
