//! The `messageId` window: which `(user, messageId)` pairs were seen in the
//! last `window_ms` of event time, at most `capacity` of them
//! ([`DedupConfig`]; by default 7 days and 4,194,304).
//!
//! A pair is remembered as its 128-bit SipHash-1-3 ([`id_hash`]) under the
//! window's 128-bit key, over the user's key (length first) and then the
//! id: two users' ids never meet, and without the key no one can aim for
//! a collision. Every event that concerns a journey asks the window once,
//! so a question should not wait on memory far from the cache. Hashes are
//! kept in arrival order, in a queue (with their times), and numbered in
//! that order: the queue's front is the oldest, and forgetting it only
//! moves the front. An id forgotten because the capacity was reached while
//! it was still inside the window is an early eviction, and is counted.
//!
//! The queue is kept in fixed blocks ([`queue`]): it costs the 24 bytes of
//! each id it holds, not the room of its last doubling.
//!
//! A question is asked of a table that finds an id's number from its
//! hash, in open addressing, 8-byte slots eight to a cache line, each
//! holding bits of the hash's high word (the top ones choose its home
//! line, scaled to the number of lines: a table is any number of lines
//! long, sized to its ids, not to a power of two) and the low bits of the
//! number. A slot whose number is before the
//! front is dead, skipped by lookups and reused by inserts; a rebuild drops
//! the dead when they crowd the table. The hash bits in a slot only filter:
//! a match is confirmed against the whole hash in the queue, so two pairs
//! are one only when their 128-bit hashes are.
//!
//! New ids join the table in batches of `BATCH` (64), whose lines are all
//! asked for before any is written, so their loads overlap; until then a
//! question looks through the batch too.
//!
//! A Bloom filter in front of the table (one line a question, four bits an
//! id) made a whole `journey simulate journeys/` run 2.3–4.2% faster (five
//! pairs side by side, 1M users): within the 10% a hand-written piece has to
//! beat to stay, so it is gone, and with it up to 4 MB a window.

use std::fmt;
use std::hash::Hasher as _;

use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128 as _, SipHasher13};

/// How long a `messageId` is remembered by default, in event time.
pub const DEDUP_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// The most `messageId`s remembered at once, by default.
pub const DEDUP_CAPACITY: usize = 1 << 22;
/// The most `messageId`s a window can be configured to remember: a slot
/// keeps 31 bits of the hash and 32 of the id's number at this size.
pub const DEDUP_MAX_CAPACITY: usize = 1 << 30;
/// The key of a window not given one: public, so that `journey simulate`
/// gives the same output everywhere. Accidental collisions are as unlikely
/// as with any key (2^-128 a pair); an adversary who knows it could in
/// principle search for one, so a service fed untrusted input sets its own.
pub const DEDUP_DEFAULT_KEY: [u8; 16] = *b"journey-dedup-v1";

/// How a window is sized and keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupConfig {
    /// The most ids remembered at once (1 to [`DEDUP_MAX_CAPACITY`]): past
    /// it the oldest is forgotten early, and counted.
    pub capacity: usize,
    /// How long an id is remembered, in milliseconds of event time (> 0).
    pub window_ms: i64,
    /// The SipHash key of the window's hashes.
    pub key: [u8; 16],
}

impl Default for DedupConfig {
    fn default() -> DedupConfig {
        DedupConfig {
            capacity: DEDUP_CAPACITY,
            window_ms: DEDUP_WINDOW_MS,
            key: DEDUP_DEFAULT_KEY,
        }
    }
}

impl DedupConfig {
    /// Whether the window can be built as configured.
    pub fn validate(&self) -> Result<(), DedupConfigError> {
        if !(1..=DEDUP_MAX_CAPACITY).contains(&self.capacity) {
            return Err(DedupConfigError::Capacity(self.capacity));
        }
        if self.window_ms <= 0 {
            return Err(DedupConfigError::Window(self.window_ms));
        }
        Ok(())
    }
}

/// A [`DedupConfig`] the window cannot be built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupConfigError {
    Capacity(usize),
    Window(i64),
}

impl fmt::Display for DedupConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DedupConfigError::Capacity(n) => write!(
                f,
                "the de-duplication capacity must be between 1 and {DEDUP_MAX_CAPACITY} ids, not `{n}`"
            ),
            DedupConfigError::Window(ms) => write!(
                f,
                "the de-duplication window must be longer than 0 ms, not `{ms}` ms"
            ),
        }
    }
}

impl std::error::Error for DedupConfigError {}

/// The hash a window remembers of the `messageId` `id` of user `user`:
/// SipHash-1-3, 128 bits, keyed by `key`, over the user key's length (8
/// bytes, little-endian), the user key and the id. Stable across machines
/// and versions (snapshots hold it).
pub fn id_hash(key: &[u8; 16], user: &str, id: &str) -> u128 {
    let mut hasher = SipHasher13::new_with_key(key);
    hasher.write(&(user.len() as u64).to_le_bytes());
    hasher.write(user.as_bytes());
    hasher.write(id.as_bytes());
    hasher.finish128().as_u128()
}

/// What a window made of a sighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sighting {
    /// Remembered already: a duplicate.
    Repeat,
    /// Not remembered: it is now. With `evicted_early`, remembering it
    /// made the window (at its capacity) forget its oldest id while that
    /// one was still inside the window.
    First { evicted_early: bool },
}

impl Sighting {
    pub fn is_first(self) -> bool {
        matches!(self, Sighting::First { .. })
    }
}

/// A slot's top bit: set when the slot is used (an empty slot is 0).
const USED: u64 = 1 << 63;
/// Slots a line (a bucket) holds.
const LINE: usize = 8;

/// The home line of a slot's hash bits (without its number's) in a table
/// of `lines` lines: the hash bits as a fraction of the whole range, times
/// the lines (the top bits of the hash choose, as in a table a power of
/// two long, but any length will do).
fn home_line(hash_bits: u64, lines: usize) -> usize {
    ((u128::from(hash_bits << 1) * lines as u128) >> 64) as usize
}

/// A hash as the queue keeps it: high word, low word (8-byte aligned, so a
/// queue entry is 24 bytes, not 32).
type Words = [u64; 2];

fn words(hash: u128) -> Words {
    [(hash >> 64) as u64, hash as u64]
}

/// Eight slots, one cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Line([u64; LINE]);

/// Ids a batch holds before it is placed in the table.
const BATCH: usize = 64;
/// The window. Serialized as its configuration, its count of early
/// evictions and the remembered `(time, hash)` pairs, oldest first.
#[derive(Clone, Deserialize)]
#[serde(try_from = "DedupRepr")]
pub struct Dedup {
    config: DedupConfig,
    /// Ids forgotten early: at capacity, still inside the window.
    evicted_early: u64,
    /// The remembered ids, oldest first: when each was seen, and its hash.
    order: Queue,
    /// The number of the oldest remembered id (ids are numbered from 0 in
    /// arrival order).
    front: u64,
    /// The low bits of its number a slot keeps: enough to tell apart
    /// twice the capacity and a batch, and more (`seq_mask + 1` is at least
    /// `2 * (capacity + BATCH + 1)`), so that no dead slot is read as live
    /// between rebuilds. The rest below [`USED`] are hash bits.
    seq_mask: u64,
    /// Empty, or at least [`Dedup::MIN_LINES`] long.
    lines: Vec<Line>,
    /// Slots that are not empty, live or dead.
    used: usize,
    /// The number the next id gets at which a rebuild is due regardless.
    rebuild_at: u64,
    /// The slots of the newest ids, not yet in the table.
    batch: Vec<u64>,
}

impl Default for Dedup {
    fn default() -> Dedup {
        Dedup::with_valid(DedupConfig::default())
    }
}

impl Dedup {
    const MIN_LINES: usize = 2;

    /// An empty window sized and keyed by `config`.
    pub fn new(config: DedupConfig) -> Result<Dedup, DedupConfigError> {
        config.validate()?;
        Ok(Dedup::with_valid(config))
    }

    fn with_valid(config: DedupConfig) -> Dedup {
        let numbers = (2 * (config.capacity as u64 + BATCH as u64 + 1)).next_power_of_two();
        Dedup {
            config,
            evicted_early: 0,
            order: Queue::default(),
            front: 0,
            seq_mask: numbers - 1,
            lines: Vec::new(),
            used: 0,
            rebuild_at: 0,
            batch: Vec::new(),
        }
    }

    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    /// Ids forgotten because the capacity was reached while they were
    /// still inside the window: a redelivery of one was not recognised.
    pub fn evicted_early(&self) -> u64 {
        self.evicted_early
    }

    /// The hash of user `user`'s `messageId` `id` under this window's key.
    pub fn id_hash(&self, user: &str, id: &str) -> u128 {
        id_hash(&self.config.key, user, id)
    }

    /// Records `hash` (an [`Dedup::id_hash`]) seen at `at`: whether it is
    /// remembered already, and whether remembering it forgot another early.
    pub fn sight(&mut self, hash: u128, at: i64) -> Sighting {
        let oldest_kept = at.saturating_sub(self.config.window_ms);
        while self.order.front().is_some_and(|&(t, _)| t <= oldest_kept) {
            self.forget_oldest();
        }
        if self.lines.is_empty() {
            self.rebuild();
        }
        let hash = words(hash);
        let bits = self.hash_bits(hash[0]);
        if self.remembers(bits, hash) {
            return Sighting::Repeat;
        }
        let evicted_early = self.order.len() >= self.config.capacity;
        if evicted_early {
            self.forget_oldest();
            self.evicted_early += 1;
        }
        let seq = self.front + self.order.len() as u64;
        self.batch.push(USED | bits | (seq & self.seq_mask));
        self.order.push_back((at, hash));
        if self.batch.len() == BATCH {
            if (self.used + BATCH) * 8 > self.slots() * 5 || seq + 1 >= self.rebuild_at {
                self.rebuild();
            } else {
                self.place_batch();
            }
        }
        Sighting::First { evicted_early }
    }

    /// Starts loading the line where `hash`'s question begins: its home
    /// line in the table.
    pub fn prefetch(&self, hash: u128) {
        if !self.lines.is_empty() {
            let bits = self.hash_bits(words(hash)[0]);
            crate::prefetch::prefetch(&self.lines[self.home(bits)]);
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The bytes of the window's queue, table and batch.
    pub fn heap_bytes(&self) -> usize {
        self.order.heap_bytes()
            + self.lines.capacity() * std::mem::size_of::<Line>()
            + self.batch.capacity() * std::mem::size_of::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn forget_oldest(&mut self) {
        self.order.pop_front();
        self.front += 1;
    }

    /// A slot's hash bits for a hash's high word, in place: its top bits
    /// below [`USED`], down to the number's.
    fn hash_bits(&self, high: u64) -> u64 {
        (high >> 1) & !USED & !self.seq_mask
    }

    /// Whether `hash` (whose slot bits are `bits`) is remembered: in the
    /// batch or in the table.
    fn remembers(&self, bits: u64, hash: Words) -> bool {
        let hash_mask = !USED & !self.seq_mask;
        let matches = |slot: u64| {
            slot & hash_mask == bits && self.live(slot).is_some_and(|k| self.order.get(k).1 == hash)
        };
        if self.batch.iter().any(|&slot| matches(slot)) {
            return true;
        }
        let mut i = self.home(bits) * LINE;
        loop {
            let slot = self.slot(i);
            if slot == 0 {
                return false;
            }
            if matches(slot) {
                return true;
            }
            i = self.next(i);
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
        home_line(slot & !USED & !self.seq_mask, self.lines.len())
    }

    /// The slot after slot `i`, round to the first after the last.
    fn next(&self, i: usize) -> usize {
        let i = i + 1;
        if i == self.slots() { 0 } else { i }
    }

    fn slot(&self, i: usize) -> u64 {
        self.lines[i / LINE].0[i % LINE]
    }

    fn slot_mut(&mut self, i: usize) -> &mut u64 {
        &mut self.lines[i / LINE].0[i % LINE]
    }

    /// The queue position of a used slot's id, when it is remembered.
    fn live(&self, slot: u64) -> Option<usize> {
        let k = (slot.wrapping_sub(self.front) & self.seq_mask) as usize;
        (k < self.order.len()).then_some(k)
    }

    /// Re-makes the table, then places the batch in it (it is sized for
    /// every remembered id, the batch's included).
    fn rebuild(&mut self) {
        self.rebuild_table();
        self.place_batch();
    }

    /// Re-makes the table with the live ids only, at most half full (two
    /// fifths when it is made anew). At a steady rate of ids the size
    /// stays the same, and the table is swept
    /// in place: a fresh table would be fresh memory, and the kernel's
    /// zeroing of its pages cost more than the sweep.
    fn rebuild_table(&mut self) {
        // A dead slot's number is read modulo `seq_mask + 1`: a rebuild
        // clears every dead slot before the numbers come round to it
        // again. The oldest slot alive at a rebuild was numbered at most
        // the capacity before it, and between rebuilds at most half the
        // numbers and a batch are given, less than the rest.
        let every = self.seq_mask.div_ceil(2);
        self.rebuild_at = self.front + self.order.len() as u64 + every;
        // Two and a half slots an id when made; kept while between two and
        // four: ids come and go at a steady rate without a new table.
        let len = self.order.len();
        let lines = (len * 5 / 2).div_ceil(LINE).max(Self::MIN_LINES);
        let keep = self.lines.len() == lines
            || (!self.lines.is_empty() && (2 * len..=4 * len).contains(&self.slots()));
        if !keep {
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
        self.used = 0;
        for k in 1..=slots {
            let i = (start + k) % slots;
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
            i = self.next(i);
        }
        *self.slot_mut(i) = slot;
    }
}

/// The window as saved: its configuration, its count of early evictions
/// and the remembered ids, oldest first (each its time and hash, high word
/// first).
#[derive(Deserialize)]
struct DedupRepr {
    config: DedupConfig,
    evicted_early: u64,
    ids: Vec<(i64, Words)>,
}

impl TryFrom<DedupRepr> for Dedup {
    type Error = DedupConfigError;

    fn try_from(saved: DedupRepr) -> Result<Dedup, DedupConfigError> {
        let mut dedup = Dedup::new(saved.config)?;
        // Saved ids are in arrival order, all within the window and the
        // capacity of the newest: each is remembered again as it was (a
        // repeated one, in a hand-edited snapshot, once).
        for (at, [high, low]) in saved.ids {
            dedup.sight((u128::from(high) << 64) | u128::from(low), at);
        }
        dedup.evicted_early = saved.evicted_early;
        Ok(dedup)
    }
}

/// [`DedupRepr`] borrowed from the window, written in its place (no copy
/// of the window's table first).
#[derive(Serialize)]
struct DedupReprRef<'a> {
    config: &'a DedupConfig,
    evicted_early: u64,
    ids: Ids<'a>,
}

/// The queue's ids, written as a list.
struct Ids<'a>(&'a Queue);

impl Serialize for Ids<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl Serialize for Dedup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DedupReprRef {
            config: &self.config,
            evicted_early: self.evicted_early,
            ids: Ids(&self.order),
        }
        .serialize(serializer)
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is left out: it may be a secret.
        f.debug_struct("Dedup")
            .field("capacity", &self.config.capacity)
            .field("window_ms", &self.config.window_ms)
            .field("remembered", &self.order.len())
            .field("evicted_early", &self.evicted_early)
            .field("slots", &self.slots())
            .finish()
    }
}

mod queue;
use queue::Queue;

#[cfg(test)]
mod tests;
