//! Runtime state as plain data: users interned to `u32` ids (an index that
//! keeps short keys inline), per-user profile, journey states and
//! silences in a `Vec`, the pending timers in hour buckets ([`TimerQueue`]),
//! the `messageId` de-duplication window ([`Dedup`]) and the clock.
//! [`MemStore`] keeps it in memory and is serde-serializable, so a snapshot
//! restored later gives the same output as an uninterrupted run.
//!
//! De-duplication remembers a 128-bit keyed hash ([`id_hash`]) of every
//! `(user, messageId)` pair seen in the window ([`DedupConfig`]: by default
//! the last 7 days of event time, and at most [`DEDUP_CAPACITY`] pairs, the
//! oldest forgotten first and counted when still inside the window):
//! bounded memory, 40 to 56 bytes a pair (its time and hash in a queue of
//! fixed blocks, and two to four 8-byte slots of a table).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use self::users::UserIndex;
use super::packed::Packed;
use crate::compile::program::{JourneyId, NodeId, Program};
use crate::prefetch::{prefetch, prefetch_lines};
use crate::value::Str;

mod dedup;
mod memory;
mod migrate;
mod timers;
mod users;

pub use self::dedup::{
    DEDUP_CAPACITY, DEDUP_DEFAULT_KEY, DEDUP_MAX_CAPACITY, DEDUP_WINDOW_MS, Dedup, DedupConfig,
    DedupConfigError, Sighting, id_hash,
};
pub use self::memory::MemoryUse;
pub use self::timers::TimerQueue;

pub type UserId = u32;

/// Where the runtime keeps its state. Every method is plain data access, so
/// an implementation can page users in and out.
pub trait Store: 'static {
    fn clock(&self) -> Option<i64>;
    fn set_clock(&mut self, at: i64);
    fn find_user(&self, key: &str) -> Option<UserId>;
    /// How many users are interned (their ids are `0..user_count()`).
    fn user_count(&self) -> usize;
    fn intern_user(&mut self, key: &str) -> UserId;
    fn user_key(&self, user: UserId) -> &Str;
    fn user(&self, user: UserId) -> &UserState;
    fn user_mut(&mut self, user: UserId) -> &mut UserState;
    /// The user's key and state at once.
    fn user_entry(&mut self, user: UserId) -> (&Str, &mut UserState);
    fn push_timer(&mut self, timer: Timer);
    fn peek_timer(&self) -> Option<&Timer>;
    fn pop_timer(&mut self) -> Option<Timer>;
    /// The hash the de-duplication window remembers of user `key`'s
    /// `messageId` `id`: keyed, so it is the store's to compute.
    fn message_id_hash(&self, key: &str, id: &str) -> u128;
    /// Records a sighting of a `messageId` hash ([`Store::message_id_hash`])
    /// at `at`: a repeat when it was seen in the window.
    fn sight_message_id(&mut self, id_hash: u128, at: i64) -> Sighting;
    /// The pending timers of `user`, in no particular order, for
    /// inspection ([`super::inspect`]); never read while running. A store
    /// that cannot say keeps the default (none).
    fn user_timers(&self, _user: UserId) -> Vec<Timer> {
        Vec::new()
    }
    /// Whether the state fits `program` and holds together: every id in
    /// range, every waiting instance and started silence with its timer.
    /// [`super::Runtime::restore`] asks it of a snapshot's store, which may
    /// be damaged or forged, so that a bad one is refused with the reason
    /// instead of panicking or losing customers later. A store that cannot
    /// say keeps the default (trusted).
    fn validate(&self, _program: &Program) -> Result<(), String> {
        Ok(())
    }
}

/// One user's state.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UserState {
    /// Profile slot values (index = slot id), packed ([`Packed`]: a tag
    /// byte and the bytes each); empty until the first write, shorter than
    /// the slot list when the tail is all `null`. Written as the list of
    /// values.
    pub profile: Packed,
    /// The journeys this user has touched, sorted by journey id. A slice,
    /// not a `Vec`: the room a `Vec` keeps for more and its word of
    /// capacity are a million customers' bytes, and a journey is joined
    /// rarely.
    #[serde(deserialize_with = "exact")]
    pub journeys: Box<[JourneyState]>,
    /// Non-transactional sends, oldest first, for caps; pruned to the
    /// program's longest cap window. A slice, as `journeys`.
    #[serde(deserialize_with = "exact")]
    pub sent: Box<[SentRecord]>,
    /// Every `trigger no ... for` silence of the program for this user.
    /// Kept apart from `journeys`: a silence is touched by most events, and
    /// a journey state is only made on entry.
    #[serde(default)]
    pub silences: Silences,
    /// When the customer last opened or clicked a message, for `send ...
    /// at best hour` ([`Engaged`]); kept only when the program has such a
    /// send, and `None` (one word, no allocation) until the first.
    #[serde(default)]
    pub engaged: Option<Box<Engaged>>,
    /// The user's sends inside the attribution window, oldest first
    /// ([`super::attribution`]); empty without an `attribution` item.
    #[serde(default)]
    pub touches: Touches,
}

/// The times of a customer's latest `message.opened` and `message.clicked`
/// events within [`crate::builtins::BEST_HOUR_HISTORY_MS`], oldest first,
/// in whole minutes since 1970 (UTC; `u32` minutes reach past year 9999),
/// at most [`Engaged::CAPACITY`] of them: the oldest is forgotten first.
/// A fixed block of 64 bytes: the best hour is the local hour most of them
/// fell in, read in the customer's time zone when a send asks, so a zone
/// changed since still gives the right hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engaged {
    /// Minutes since 1970; 0 = no entry (the unused tail).
    minutes: [u32; Engaged::CAPACITY],
}

impl Engaged {
    /// How many engagements a customer's history keeps.
    pub const CAPACITY: usize = 16;

    /// Records an engagement at `at` (ms), forgetting what is older than
    /// the history's span, and the oldest when full.
    pub fn record(slot: &mut Option<Box<Engaged>>, at: i64) {
        let minute = u32::try_from(at.div_euclid(60_000))
            .unwrap_or(u32::MAX)
            .max(1);
        let this = slot.get_or_insert_with(|| {
            Box::new(Engaged {
                minutes: [0; Engaged::CAPACITY],
            })
        });
        let horizon = at.saturating_sub(crate::builtins::BEST_HOUR_HISTORY_MS);
        let mut kept: Vec<u32> = this
            .minutes
            .iter()
            .copied()
            .filter(|&m| m != 0 && i64::from(m) * 60_000 > horizon)
            .collect();
        kept.push(minute);
        kept.sort_unstable();
        let skip = kept.len().saturating_sub(Engaged::CAPACITY);
        this.minutes = [0; Engaged::CAPACITY];
        for (to, from) in this.minutes.iter_mut().zip(&kept[skip..]) {
            *to = *from;
        }
    }

    /// The engagements inside the history's span before `now`, in ms.
    pub fn since(&self, now: i64) -> impl Iterator<Item = i64> + '_ {
        let horizon = now.saturating_sub(crate::builtins::BEST_HOUR_HISTORY_MS);
        self.minutes
            .iter()
            .filter(|&&m| m != 0)
            .map(|&m| i64::from(m) * 60_000)
            .filter(move |&at| at > horizon && at <= now)
    }
}

/// Written with its fields in order; in JSON, `silences` is left out when
/// none has started. A binary encoding (a snapshot's, [`super::Snapshot`])
/// has no field names to tell what is left out, so there it is always
/// written.
impl Serialize for UserState {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeStruct;
        let binary = !serializer.is_human_readable();
        let silences = binary || !self.silences.is_empty();
        let engaged = binary || self.engaged.is_some();
        let touches = binary || !self.touches.is_empty();
        let mut state = serializer.serialize_struct(
            "UserState",
            3 + usize::from(silences) + usize::from(engaged) + usize::from(touches),
        )?;
        state.serialize_field("profile", &self.profile)?;
        state.serialize_field("journeys", &self.journeys)?;
        state.serialize_field("sent", &self.sent)?;
        if silences {
            state.serialize_field("silences", &self.silences)?;
        } else {
            state.skip_field("silences")?;
        }
        if engaged {
            state.serialize_field("engaged", &self.engaged)?;
        } else {
            state.skip_field("engaged")?;
        }
        if touches {
            state.serialize_field("touches", &self.touches)?;
        } else {
            state.skip_field("touches")?;
        }
        state.end()
    }
}

/// A list read back as long as it is: a JSON list comes without its
/// length, and one read item by item keeps the room of its last doubling.
/// The allocator does not shrink a block in place, so the items move to
/// one of their size.
fn exact<'de, D, T>(deserializer: D) -> Result<Box<[T]>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let read = Vec::<T>::deserialize(deserializer)?;
    if read.len() == read.capacity() {
        return Ok(read.into_boxed_slice());
    }
    let mut exact = Vec::with_capacity(read.len());
    exact.extend(read);
    Ok(exact.into_boxed_slice())
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
            Err(i) => self.insert_state(i, JourneyState::new(journey)),
        }
    }

    /// Where the states of `journey` are: one, or for a journey with a
    /// `per` key one per key value seen, in the order first entered.
    pub fn journey_range(&self, journey: JourneyId) -> std::ops::Range<usize> {
        let start = self.journeys.partition_point(|j| j.journey < journey);
        let end = start + self.journeys[start..].partition_point(|j| j.journey == journey);
        start..end
    }

    /// The state of `journey` for `key` (`None`: a journey without `per`).
    pub fn find_state(&self, journey: JourneyId, key: Option<&Packed>) -> Option<usize> {
        self.journey_range(journey)
            .find(|&i| self.journeys[i].key.as_deref() == key)
    }

    /// The index of the state of `journey` for `key`, created when absent.
    pub fn state_index(&mut self, journey: JourneyId, key: Option<&Packed>) -> usize {
        if let Some(i) = self.find_state(journey, key) {
            return i;
        }
        let at = self.journey_range(journey).end;
        let mut state = JourneyState::new(journey);
        state.key = key.map(|k| Box::new(k.clone()));
        self.insert_state(at, state)
    }

    fn insert_state(&mut self, at: usize, state: JourneyState) -> usize {
        // Users touch few journeys: no room kept for more.
        let mut journeys = std::mem::take(&mut self.journeys).into_vec();
        journeys.reserve_exact(1);
        journeys.insert(at, state);
        self.journeys = journeys.into_boxed_slice();
        at
    }

    /// The number the next entry into `journey` gets: one past the latest
    /// of all its states, so that entries (and the `messageId`s made of
    /// them) stay unique across the keys of a `per` journey.
    pub fn next_entry(&self, journey: JourneyId) -> u32 {
        let last = self
            .journey_range(journey)
            .map(|i| self.journeys[i].entries)
            .max();
        last.unwrap_or(0).wrapping_add(1)
    }

    /// A new generation for state `ji`: past every generation of its
    /// journey's states, so that a timer names one state of a `per`
    /// journey, and a stale timer none.
    pub fn next_generation(&self, ji: usize) -> u32 {
        let range = self.journey_range(self.journeys[ji].journey);
        let last = range.map(|i| self.journeys[i].generation).max();
        last.unwrap_or(0).wrapping_add(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    pub at: i64,
    pub journey: JourneyId,
    pub channel: u16,
}

/// A send that may still be credited with a conversion: when, and which
/// journey, step and alternative of its chain sent it (the channel and the
/// template are the alternative's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub at: i64,
    pub journey: JourneyId,
    pub node: NodeId,
    pub alt: u8,
}

/// A user's [`Touch`]es, oldest first (in action order at one instant).
/// One word in every user's state, and nothing more for a user with none:
/// most customers of most projects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Touches(
    #[allow(clippy::box_collection)] // One word in place, not a `Vec`'s three.
    Option<Box<Vec<Touch>>>,
);

impl Touches {
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|t| t.is_empty())
    }

    /// The touches, oldest first.
    pub fn as_slice(&self) -> &[Touch] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Drops the touches at or before `horizon`.
    pub fn prune(&mut self, horizon: i64) {
        if let Some(list) = &mut self.0 {
            list.retain(|t| t.at > horizon);
            if list.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Adds the latest touch.
    pub fn push(&mut self, touch: Touch) {
        self.0.get_or_insert_with(Default::default).push(touch);
    }

    /// Keeps the touches `f` maps to one, renumbered (a deploy).
    pub fn retain_map(&mut self, f: impl FnMut(Touch) -> Option<Touch>) {
        if let Some(list) = self.0.take() {
            let next: Vec<Touch> = list.into_iter().filter_map(f).collect();
            if !next.is_empty() {
                self.0 = Some(Box::new(next));
            }
        }
    }

    /// The heap bytes it holds.
    pub fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |list| {
            size_of::<Vec<Touch>>() + list.capacity() * size_of::<Touch>()
        })
    }
}

/// One user's state in one journey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyState {
    pub journey: JourneyId,
    /// Entries so far (held out included); the current entry's number.
    /// For a `per` journey, entries are numbered across all its keys: the
    /// latest entry's number of any key, when this key entered.
    pub entries: u32,
    pub last_entry_at: i64,
    /// Generation of the instance's timer: a timer with another is stale.
    pub generation: u32,
    /// The running instance, apart: at a million customers five journey
    /// states in six have none (the journey ended, its counters stay for
    /// re-entry), and in place it made each of them 120 bytes rather than
    /// 40. A timer that fires has the box fetched ahead
    /// ([`MemStore::prefetch_timers`]).
    pub instance: Option<Box<Instance>>,
    /// An ended instance (completed or held out) whose goal window is open;
    /// rarer, so boxed, and a journey state without one stays small.
    pub watch: Option<Box<Instance>>,
    /// For a journey with `per trigger.<path>`: the key value (packed)
    /// this state is for; `None` otherwise: one word (a state is 128
    /// bytes with it, 120 without) and no allocation for a customer
    /// outside `per` journeys.
    #[serde(default)]
    pub key: Option<Box<Packed>>,
}

/// The silences of one user: per `trigger no ... for` of the program (in
/// journey order, `Layout::silence_base`), when it is complete. Every event
/// restarts them, so rather than push a timer per event (the queue would
/// grow with the stream), the state keeps the true due time and exactly one
/// timer sits in the queue while a silence has one: when that timer comes
/// due early, it is pushed again at the true time. A silence without a due
/// time never started, or has fired (it fires once per start).
///
/// The first [`Silences::INLINE`] sit in the user's state itself: nearly
/// every event touches them, and a separate allocation would cost each
/// event one more cache miss at a million users. More go to one slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silences {
    head: [i64; Silences::INLINE],
    /// The rest, when one has had a due time: one word in every user's
    /// state, for programs with more silences than [`Silences::INLINE`].
    #[allow(clippy::box_collection)] // One word in place, not a `Vec`'s three.
    tail: Option<Box<Vec<i64>>>,
}

/// A silence without a due time.
const NO_DUE: i64 = i64::MIN;

impl Silences {
    /// How many silences a user state holds in place.
    pub const INLINE: usize = 3;

    /// When silence `slot` is complete, if it has started and not fired.
    pub fn due(&self, slot: usize) -> Option<i64> {
        let due = match slot.checked_sub(Self::INLINE) {
            None => self.head[slot],
            Some(i) => self.tail().get(i).copied().unwrap_or(NO_DUE),
        };
        (due != NO_DUE).then_some(due)
    }

    /// Sets (or with `None`, clears) when silence `slot` is complete.
    pub fn set_due(&mut self, slot: usize, due: Option<i64>) {
        // `i64::MIN` means none: a due time there (no event carries one)
        // is kept a millisecond later.
        let due = due.map_or(NO_DUE, |due| due.max(NO_DUE + 1));
        match slot.checked_sub(Self::INLINE) {
            None => self.head[slot] = due,
            Some(i) => {
                if i >= self.tail().len() {
                    if due == NO_DUE {
                        return;
                    }
                    let tail = self.tail.get_or_insert_default();
                    tail.reserve_exact(i + 1 - tail.len());
                    tail.resize(i + 1, NO_DUE);
                }
                if let Some(tail) = &mut self.tail {
                    tail[i] = due;
                }
            }
        }
    }

    /// Whether no silence has a due time.
    pub fn is_empty(&self) -> bool {
        self.head.iter().chain(self.tail()).all(|&d| d == NO_DUE)
    }

    /// The silences past the ones in place.
    pub fn tail(&self) -> &[i64] {
        self.tail.as_deref().map_or(&[], |tail| &tail[..])
    }

    /// Every slot's due time, up to the last one that has one.
    fn to_list(&self) -> Vec<Option<i64>> {
        let mut all: Vec<Option<i64>> = (0..Self::INLINE + self.tail().len())
            .map(|slot| self.due(slot))
            .collect();
        let len = all.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        all.truncate(len);
        all
    }
}

impl Default for Silences {
    fn default() -> Silences {
        Silences {
            head: [NO_DUE; Silences::INLINE],
            tail: None,
        }
    }
}

/// Serialized as the list of due times (`null` for none), trailing `null`s
/// left out.
impl Serialize for Silences {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.to_list().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Silences {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Silences, D::Error> {
        let list = Vec::<Option<i64>>::deserialize(deserializer)?;
        let mut silences = Silences::default();
        for (slot, due) in list.into_iter().enumerate() {
            silences.set_due(slot, due);
        }
        Ok(silences)
    }
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
            key: None,
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
    /// The splits the instance has passed: bit `i` for its journey's
    /// `i`-th split step (in node order; the first 16). Which arm it took
    /// is the user's sticky choice, computed again when needed, so the
    /// report can count each arm's sends and conversions. It fits in the
    /// room the other fields leave.
    #[serde(default)]
    pub splits: u16,
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
    /// The moment of the journey's date trigger `i` (`on`, `before`,
    /// `after`) has come, if the profile still gives it.
    Date(u16),
    /// An anniversary of the journey's date trigger `i`; recurring.
    Anniversary(u16),
    /// An occurrence of the journey's schedule `i`: an entry offer made
    /// when the occurrence fires, never queued ([`super::entry::ZoneIndex`]).
    Schedule(u16),
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

/// The in-memory store.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "MemStoreRepr")]
pub struct MemStore {
    clock: Option<i64>,
    keys: Vec<Str>,
    index: UserIndex,
    users: Vec<UserState>,
    timers: TimerQueue,
    dedup: Dedup,
}

/// The serialized form: no hash map (rebuilt on load), timers sorted.
#[derive(Deserialize)]
struct MemStoreRepr {
    clock: Option<i64>,
    keys: Vec<Str>,
    users: Vec<UserState>,
    timers: Vec<Timer>,
    dedup: Dedup,
}

/// [`MemStoreRepr`] borrowed from the store, written in its place: a
/// checkpoint of a million customers does not copy their state first.
#[derive(Serialize)]
struct MemStoreReprRef<'a> {
    clock: Option<i64>,
    keys: &'a [Str],
    users: &'a [UserState],
    timers: Vec<Timer>,
    dedup: &'a Dedup,
}

impl Serialize for MemStore {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        MemStoreReprRef {
            clock: self.clock,
            keys: &self.keys,
            users: &self.users,
            timers: self.timers.sorted(),
            dedup: &self.dedup,
        }
        .serialize(serializer)
    }
}

impl From<MemStoreRepr> for MemStore {
    fn from(r: MemStoreRepr) -> MemStore {
        let index = UserIndex::of(&r.keys);
        MemStore {
            clock: r.clock,
            keys: r.keys,
            index,
            users: r.users,
            timers: TimerQueue::of(r.timers),
            dedup: r.dedup,
        }
    }
}

/// The checks of [`Store::validate`] for the in-memory store.
mod validate;

impl MemStore {
    /// An empty store whose `messageId` window is sized and keyed by
    /// `config` (a service fed untrusted input sets a secret key).
    pub fn with_dedup(config: DedupConfig) -> Result<MemStore, DedupConfigError> {
        Ok(MemStore {
            dedup: Dedup::new(config)?,
            ..MemStore::default()
        })
    }

    /// The `messageId` window: its configuration and early evictions.
    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

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
        self.index.get(key, &self.keys)
    }

    fn user_count(&self) -> usize {
        self.users.len()
    }

    fn intern_user(&mut self, key: &str) -> UserId {
        if let Some(id) = self.index.get(key, &self.keys) {
            return id;
        }
        let id = self.keys.len() as UserId;
        self.keys.push(Str::new(key));
        self.index.insert(key, id, &self.keys);
        self.users.push(UserState::default());
        id
    }

    fn user_key(&self, user: UserId) -> &Str {
        &self.keys[user as usize]
    }

    fn user(&self, user: UserId) -> &UserState {
        &self.users[user as usize]
    }

    fn user_mut(&mut self, user: UserId) -> &mut UserState {
        &mut self.users[user as usize]
    }

    fn user_entry(&mut self, user: UserId) -> (&Str, &mut UserState) {
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

    fn message_id_hash(&self, key: &str, id: &str) -> u128 {
        self.dedup.id_hash(key, id)
    }

    fn sight_message_id(&mut self, id_hash: u128, at: i64) -> Sighting {
        self.dedup.sight(id_hash, at)
    }

    fn validate(&self, program: &Program) -> Result<(), String> {
        validate::mem_store(self, program)
    }

    /// Walks every pending timer: inspection is rare, and an index by user
    /// would cost every timer set and fired.
    fn user_timers(&self, user: UserId) -> Vec<Timer> {
        self.timers
            .iter()
            .filter(|t| t.user == user)
            .copied()
            .collect()
    }
}

/// Prefetch hints: the runtime announces what it is about to read, so
/// that the loads overlap other work. They change no result, and they are
/// the memory store's own, not the [`Store`] trait's: the runtime asks for
/// them only when its store is a [`MemStore`] (`Runtime::hints`).
impl MemStore {
    /// The user `key` and the `messageId` hash are about to be asked for
    /// (by [`Store::intern_user`] or [`Store::find_user`], and
    /// [`Store::sight_message_id`]).
    pub(crate) fn prefetch_event(&self, key: &str, id_hash: Option<u128>) {
        self.index.prefetch(key);
        if let Some(hash) = id_hash {
            self.dedup.prefetch(hash);
        }
    }

    /// The same for the state of `user`.
    pub(crate) fn prefetch_user(&self, user: UserId) {
        if let Some(state) = self.users.get(user as usize) {
            prefetch(state);
        }
    }

    /// Timers fire for customers far apart in memory, each a chain of
    /// loads: the user's state, then its journey states, profile and
    /// sends, then the running instance's box, then the instance's own
    /// lists. The chain is walked ahead in stages, each one step further
    /// for a timer nearer its turn: the state of the timer five turns
    /// ahead, what the state of the one four turns ahead points to, the
    /// instance of the one three turns ahead and that instance's lists two
    /// turns ahead (each stage's lines should have come by the next; the
    /// next one's state is asked for by [`MemStore::prefetch_user`]). The
    /// timers to come are `batch` (the rest of the instant's, in the order
    /// they fire), then the current hour's sorted timers.
    pub(crate) fn prefetch_timers(&self, batch: &[Timer]) {
        let ahead = |k: usize| match batch.get(k) {
            Some(t) => Some(t),
            None => self.timers.upcoming(k - batch.len()),
        };
        let state = |k| ahead(k).map(|t| (t, self.users.get(t.user as usize)));
        let instance = |k| {
            let (timer, user) = state(k)?;
            user?.journey(timer.journey)?.instance.as_deref()
        };
        if let Some((_, Some(far))) = state(4) {
            prefetch_lines(std::slice::from_ref(far), 3);
        }
        if let Some((_, Some(near))) = state(3) {
            prefetch_lines(&near.journeys, 3);
            prefetch_lines(near.profile.bytes(), 2);
            prefetch_lines(&near.sent, 1);
        }
        if let Some(inst) = instance(2) {
            prefetch_lines(std::slice::from_ref(inst), 2);
        }
        if let Some(inst) = instance(1) {
            prefetch_lines(&inst.handles, 1);
            prefetch_lines(&inst.sends, 1);
            prefetch_lines(inst.trigger.bytes(), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn silences_past_the_inline_ones_keep_their_due_times() {
        let mut silences = Silences::default();
        assert!(silences.is_empty());
        let slots = Silences::INLINE + 3;
        for slot in 0..slots {
            assert_eq!(silences.due(slot), None);
        }
        silences.set_due(1, Some(-5));
        silences.set_due(Silences::INLINE + 1, Some(7));
        assert!(!silences.is_empty());
        let dues: Vec<_> = (0..slots).map(|slot| silences.due(slot)).collect();
        let mut expected = vec![None; slots];
        expected[1] = Some(-5);
        expected[Silences::INLINE + 1] = Some(7);
        assert_eq!(dues, expected);
        // Clearing a slot never set past the end allocates nothing.
        silences.set_due(Silences::INLINE + 9, None);
        assert_eq!(silences.tail().len(), 2);
        // A due time on the sentinel is kept a millisecond later.
        silences.set_due(0, Some(i64::MIN));
        assert_eq!(silences.due(0), Some(i64::MIN + 1));
        silences.set_due(0, None);
        silences.set_due(1, None);
        silences.set_due(Silences::INLINE + 1, None);
        assert!(silences.is_empty());
    }

    #[test]
    fn a_users_lists_are_read_back_as_long_as_they_are() {
        let json = r#"{"profile":[{"t":"number","v":1.0},{"t":"null"},{"t":"string","v":"a"}],
            "journeys":[],"sent":[{"at":5,"journey":0,"channel":1}]}"#;
        let user: UserState = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(user.profile.len(), 3);
        assert_eq!(user.profile.get(2), Some(Value::str("a")));
        assert_eq!(user.sent.len(), 1);
        assert!(user.journeys.is_empty());
    }

    #[test]
    fn the_per_key_and_the_best_hour_history_cost_one_word_unused() {
        use std::mem::size_of;
        assert_eq!(size_of::<Option<Box<Packed>>>(), 8);
        assert_eq!(size_of::<Option<Box<Engaged>>>(), 8);
        assert_eq!(size_of::<Engaged>(), 64);
        assert!(size_of::<JourneyState>() <= 128);
    }

    #[test]
    fn the_engagement_history_keeps_the_latest_within_90_days() {
        const MIN: i64 = 60_000;
        const DAY: i64 = 1_440 * MIN;
        let mut slot = None;
        // Twenty engagements a day apart: the latest 16 are kept.
        for day in 0..20 {
            Engaged::record(&mut slot, 100 * DAY + day * DAY + 5 * MIN);
        }
        let now = 120 * DAY;
        let kept: Vec<i64> = slot
            .as_deref()
            .map(|e| e.since(now).collect())
            .unwrap_or_default();
        assert_eq!(kept.len(), Engaged::CAPACITY);
        assert_eq!(kept.first(), Some(&(104 * DAY + 5 * MIN)));
        assert_eq!(kept.last(), Some(&(119 * DAY + 5 * MIN)));
        // 90 days on, the oldest have aged out; a new one forgets them.
        let later = 119 * DAY + 95 * DAY;
        let aged: Vec<i64> = slot
            .as_deref()
            .map(|e| e.since(later).collect())
            .unwrap_or_default();
        assert!(aged.iter().all(|&t| t > later - 90 * DAY), "{aged:?}");
        assert!(aged.len() < Engaged::CAPACITY);
        Engaged::record(&mut slot, later);
        let after: Vec<i64> = slot
            .as_deref()
            .map(|e| e.since(later).collect())
            .unwrap_or_default();
        assert_eq!(after.len(), aged.len() + 1);
    }

    #[test]
    fn silences_serialize_as_due_times_without_trailing_nulls() {
        let mut silences = Silences::default();
        silences.set_due(0, Some(1_000));
        silences.set_due(Silences::INLINE, Some(2_000));
        silences.set_due(Silences::INLINE + 2, Some(3_000));
        silences.set_due(Silences::INLINE + 2, None);
        let json = serde_json::to_string(&silences).unwrap_or_default();
        assert_eq!(json, "[1000,null,null,2000]");
        let back: Silences = serde_json::from_str(&json).unwrap_or_default();
        for slot in 0..Silences::INLINE + 3 {
            assert_eq!(back.due(slot), silences.due(slot), "slot {slot}");
        }
        let user = UserState::default();
        let json = serde_json::to_string(&user).unwrap_or_default();
        assert!(!json.contains("silences"), "{json}");
    }
}
