//! Runtime state as plain data: users interned to `u32` ids, per-user
//! profile and journey states in a `Vec`, one timer heap with lazy deletion,
//! the `messageId` de-duplication window and the clock. [`MemStore`] keeps it
//! in memory and is serde-serializable, so a snapshot restored later gives
//! the same output as an uninterrupted run.
//!
//! De-duplication keeps a 64-bit FNV-1a hash of every `messageId` seen in the
//! last 7 days of event time, and at most [`DEDUP_CAPACITY`] of them (the
//! oldest are forgotten first): bounded memory, about 30 bytes an id (the
//! hash in a set, and with its time in a queue in time order).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::packed::Packed;
use crate::compile::program::{JourneyId, NodeId};
use crate::value::Value;

pub type UserId = u32;

/// How long a `messageId` is remembered, in event time.
pub const DEDUP_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
/// The most `messageId`s remembered at once.
pub const DEDUP_CAPACITY: usize = 1 << 22;

/// Where the runtime keeps its state. Every method is plain data access, so
/// an implementation can page users in and out.
pub trait Store {
    fn clock(&self) -> Option<i64>;
    fn set_clock(&mut self, at: i64);
    fn find_user(&self, key: &str) -> Option<UserId>;
    fn intern_user(&mut self, key: &str) -> UserId;
    fn user_key(&self, user: UserId) -> &Arc<str>;
    fn user(&self, user: UserId) -> &UserState;
    fn user_mut(&mut self, user: UserId) -> &mut UserState;
    /// The user's key and state at once.
    fn user_entry(&mut self, user: UserId) -> (&Arc<str>, &mut UserState);
    fn push_timer(&mut self, timer: Timer);
    fn peek_timer(&self) -> Option<&Timer>;
    fn pop_timer(&mut self) -> Option<Timer>;
    /// Records a `messageId` hash; false when it was seen in the window.
    fn first_sighting(&mut self, id_hash: u64, at: i64) -> bool;
}

/// One user's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Profile slot values (index = slot id); empty until the first write,
    /// shorter than the slot list when the tail is all `null`.
    pub profile: Vec<Value>,
    /// The journeys this user has touched, sorted by journey id.
    pub journeys: Vec<JourneyState>,
    /// Non-transactional sends, oldest first, for caps; pruned to the
    /// program's longest cap window.
    pub sent: Vec<SentRecord>,
}

impl UserState {
    pub fn journey(&self, journey: JourneyId) -> Option<&JourneyState> {
        self.journeys
            .binary_search_by_key(&journey, |j| j.journey)
            .ok()
            .map(|i| &self.journeys[i])
    }

    pub fn journey_mut(&mut self, journey: JourneyId) -> Option<&mut JourneyState> {
        self.journeys
            .binary_search_by_key(&journey, |j| j.journey)
            .ok()
            .map(|i| &mut self.journeys[i])
    }

    /// The index of the journey's state, created when absent.
    pub fn journey_index(&mut self, journey: JourneyId) -> usize {
        match self.journeys.binary_search_by_key(&journey, |j| j.journey) {
            Ok(i) => i,
            Err(i) => {
                // Users touch few journeys: no room kept for more.
                self.journeys.reserve_exact(1);
                self.journeys.insert(i, JourneyState::new(journey));
                i
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    pub at: i64,
    pub journey: JourneyId,
    pub channel: u16,
}

/// One user's state in one journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyState {
    pub journey: JourneyId,
    /// Entries so far (held out included); the current entry's number.
    pub entries: u32,
    pub last_entry_at: i64,
    /// Generation of the instance's timer: a timer with another is stale.
    pub generation: u32,
    pub instance: Option<Box<Instance>>,
    /// An ended instance (completed or held out) whose goal window is open.
    pub watch: Option<Box<Instance>>,
    /// Each `trigger no ... for` silence of this user.
    pub silences: Vec<Silence>,
}

/// One silence of one user. Every event restarts it, so rather than push a
/// timer per event (the heap would grow with the stream), the state keeps
/// the true due time and at most one timer sits in the heap: when it comes
/// due early, it is pushed again at the true time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// When the silence is complete; `None` once it fired (it fires once).
    pub due: Option<i64>,
    /// Whether a timer for this silence is in the heap.
    pub queued: bool,
}

impl JourneyState {
    fn new(journey: JourneyId) -> JourneyState {
        JourneyState {
            journey,
            entries: 0,
            last_entry_at: i64::MIN,
            generation: 0,
            instance: None,
            watch: None,
            silences: Vec::new(),
        }
    }
}

/// A user's run through a journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The node the instance is at (suspended at, while waiting).
    pub node: NodeId,
    pub entry: u32,
    pub entered_at: i64,
    pub holdout: bool,
    /// Captured `trigger.<path>` values (index = trigger field).
    pub trigger: Packed,
    /// Per handle: the send that bound it and its engagements.
    pub handles: Box<[Handle]>,
    /// The messages sent, oldest first.
    pub sends: Box<[SendRef]>,
    /// `add to audience ... until exit` nodes, in the order run.
    pub audiences: Box<[NodeId]>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub sent: bool,
    /// Engagement bits ([`crate::compile::program::Engagement::bit`]).
    pub engaged: u8,
    /// The send node whose message bound it.
    pub node: NodeId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRef {
    pub node: NodeId,
    /// Which alternative of the chain went out.
    pub alt: u8,
    pub at: i64,
}

/// A pending wake-up. Ordered by due time, then journey id (= name order),
/// then user id; the runtime re-sorts each instant's batch by user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub due: i64,
    pub journey: JourneyId,
    pub user: UserId,
    pub generation: u32,
    pub kind: TimerKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimerKind {
    /// The instance's wait, window or deferral is over.
    Instance,
    /// The silence of the journey's absence trigger `i` is complete.
    Silence(u16),
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and the earliest must come first.
        (other.due, other.journey, other.user, other.kind).cmp(&(
            self.due,
            self.journey,
            self.user,
            self.kind,
        ))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `messageId` window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "VecDeque<(i64, u64)>", into = "VecDeque<(i64, u64)>")]
pub struct Dedup {
    order: VecDeque<(i64, u64)>,
    seen: FxHashSet<u64>,
}

impl From<VecDeque<(i64, u64)>> for Dedup {
    fn from(order: VecDeque<(i64, u64)>) -> Dedup {
        let seen = order.iter().map(|&(_, h)| h).collect();
        Dedup { order, seen }
    }
}

impl From<Dedup> for VecDeque<(i64, u64)> {
    fn from(dedup: Dedup) -> VecDeque<(i64, u64)> {
        dedup.order
    }
}

impl Dedup {
    pub fn first_sighting(&mut self, hash: u64, at: i64) -> bool {
        while let Some(&(t, h)) = self.order.front() {
            if t > at - DEDUP_WINDOW_MS && self.order.len() < DEDUP_CAPACITY {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&h);
        }
        if !self.seen.insert(hash) {
            return false;
        }
        self.order.push_back((at, hash));
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The in-memory store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "MemStoreRepr", into = "MemStoreRepr")]
pub struct MemStore {
    clock: Option<i64>,
    keys: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, UserId>,
    users: Vec<UserState>,
    timers: TimerQueue,
    dedup: Dedup,
}

/// Pending timers: a binary heap for those due before `horizon`, and the
/// later ones in hour-wide buckets, moved into the heap one bucket at a time
/// as time reaches them. The heap stays small enough to sit in cache however
/// many customers wait for days; the buckets only ever see appends.
///
/// Invariant: every heap timer is due before `horizon` and every bucketed
/// timer at or after it, and the heap is empty only when the buckets are,
/// so the heap's top is the earliest timer.
#[derive(Clone, Debug, Default)]
pub struct TimerQueue {
    near: BinaryHeap<Timer>,
    far: BTreeMap<i64, Vec<Timer>>,
    horizon: i64,
    len: usize,
}

impl TimerQueue {
    /// The width of a bucket.
    const BUCKET_MS: i64 = 3_600_000;

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, timer: Timer) {
        self.len += 1;
        if !self.near.is_empty() && timer.due < self.horizon {
            self.near.push(timer);
            return;
        }
        self.far
            .entry(timer.due.div_euclid(Self::BUCKET_MS))
            .or_default()
            .push(timer);
        if self.near.is_empty() {
            self.refill();
        }
    }

    pub fn peek(&self) -> Option<&Timer> {
        self.near.peek()
    }

    pub fn pop(&mut self) -> Option<Timer> {
        let timer = self.near.pop()?;
        self.len -= 1;
        if self.near.is_empty() {
            self.refill();
        }
        Some(timer)
    }

    /// Moves the earliest bucket into the empty heap.
    fn refill(&mut self) {
        if let Some((bucket, timers)) = self.far.pop_first() {
            self.horizon = (bucket + 1).saturating_mul(Self::BUCKET_MS);
            self.near.extend(timers);
        }
    }

    /// Every timer, earliest first.
    fn into_sorted(self) -> Vec<Timer> {
        let mut timers = self.near.into_vec();
        timers.extend(self.far.into_values().flatten());
        // Sorted descending by `Ord` = earliest first.
        timers.sort_by(|a, b| b.cmp(a));
        timers
    }
}

/// The serialized form: no hash map (rebuilt on load), timers sorted.
#[derive(Serialize, Deserialize)]
struct MemStoreRepr {
    clock: Option<i64>,
    keys: Vec<Arc<str>>,
    users: Vec<UserState>,
    timers: Vec<Timer>,
    dedup: Dedup,
}

impl From<MemStoreRepr> for MemStore {
    fn from(r: MemStoreRepr) -> MemStore {
        let index = r
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as UserId))
            .collect();
        MemStore {
            clock: r.clock,
            keys: r.keys,
            index,
            users: r.users,
            timers: r
                .timers
                .into_iter()
                .fold(TimerQueue::default(), |mut q, t| {
                    q.push(t);
                    q
                }),
            dedup: r.dedup,
        }
    }
}

impl From<MemStore> for MemStoreRepr {
    fn from(s: MemStore) -> MemStoreRepr {
        let timers = s.timers.into_sorted();
        MemStoreRepr {
            clock: s.clock,
            keys: s.keys,
            users: s.users,
            timers,
            dedup: s.dedup,
        }
    }
}

impl MemStore {
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

impl Store for MemStore {
    fn clock(&self) -> Option<i64> {
        self.clock
    }

    fn set_clock(&mut self, at: i64) {
        self.clock = Some(at);
    }

    fn find_user(&self, key: &str) -> Option<UserId> {
        self.index.get(key).copied()
    }

    fn intern_user(&mut self, key: &str) -> UserId {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.keys.len() as UserId;
        let key: Arc<str> = Arc::from(key);
        self.keys.push(key.clone());
        self.index.insert(key, id);
        self.users.push(UserState::default());
        id
    }

    fn user_key(&self, user: UserId) -> &Arc<str> {
        &self.keys[user as usize]
    }

    fn user(&self, user: UserId) -> &UserState {
        &self.users[user as usize]
    }

    fn user_mut(&mut self, user: UserId) -> &mut UserState {
        &mut self.users[user as usize]
    }

    fn user_entry(&mut self, user: UserId) -> (&Arc<str>, &mut UserState) {
        (&self.keys[user as usize], &mut self.users[user as usize])
    }

    fn push_timer(&mut self, timer: Timer) {
        self.timers.push(timer);
    }

    fn peek_timer(&self) -> Option<&Timer> {
        self.timers.peek()
    }

    fn pop_timer(&mut self) -> Option<Timer> {
        self.timers.pop()
    }

    fn first_sighting(&mut self, id_hash: u64, at: i64) -> bool {
        self.dedup.first_sighting(id_hash, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timer(due: i64, user: u32) -> Timer {
        Timer {
            due,
            journey: 0,
            user,
            generation: 0,
            kind: TimerKind::Instance,
        }
    }

    proptest! {
        /// The bucketed queue pops exactly what one binary heap would, for
        /// any mix of pushes (past, near and far, across bucket edges) and pops.
        #[test]
        fn the_timer_queue_pops_in_heap_order(
            ops in proptest::collection::vec((0u8..4, -3i64..400, 0u32..5), 0..300)
        ) {
            let mut queue = TimerQueue::default();
            let mut heap = BinaryHeap::new();
            let mut clock = 0i64;
            for (op, offset, user) in ops {
                if op == 0 {
                    prop_assert_eq!(queue.pop(), heap.pop());
                    if let Some(t) = queue.peek() {
                        clock = clock.max(t.due);
                    }
                } else {
                    // Minutes from the clock, some in the past, some hours ahead.
                    let t = timer(clock + offset * 60_000 * i64::from(op), user);
                    queue.push(t);
                    heap.push(t);
                }
                prop_assert_eq!(queue.peek(), heap.peek());
                prop_assert_eq!(queue.len(), heap.len());
            }
            let mut rest = Vec::new();
            while let Some(t) = queue.pop() {
                rest.push(t);
            }
            prop_assert_eq!(rest, heap.into_sorted_vec().into_iter().rev().collect::<Vec<_>>());
        }
    }
}
