//! Drives users through a [`Program`]: the clock, timers, instances, caps,
//! quiet hours and the state store. Synchronous and deterministic: time is
//! the events' time, hashing uses fixed functions (FNV-1a for holdouts and
//! splits, keyed SipHash ([`store::id_hash`]) for `messageId`s), and no hash-map order
//! reaches the output. Knows nothing of pest, miette or the input format.
//!
//! - [`event`]: the input ([`Event`], payloads behind [`Properties`]).
//! - [`action`]: the output ([`Action`], one JSON line each).
//! - [`store`]: all state as plain data ([`Store`], [`MemStore`]).
//! - [`engine`]: §6.3–6.4 for one user at one instant.
//! - [`inspect`]: a read-only view of one customer, for operators.
//! - [`eval`], [`clock`], [`templates`], [`stats`], [`report`]: expressions, local time,
//!   templates, counters.
//!
//! Events whose name the program does not use (and no `trigger no any`
//! journey) cost one hash lookup and never intern the user; a duplicate
//! `messageId` is only looked for on events that reach a journey.

// The interpreter's internals (`deploy`, `engine`, `eval`, `packed`,
// `templates`) are the crate's own; an embedder sees the runtime, its
// input, output, state and the tokio shell.
pub mod action;
pub mod attribution;
pub mod clock;
pub(crate) mod deploy;
pub(crate) mod engine;
pub(crate) mod entry;
pub(crate) mod eval;
pub mod event;
pub mod inspect;
pub(crate) mod packed;
pub mod report;
pub mod service;
pub mod stats;
pub mod store;
pub(crate) mod templates;

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use action::{Action, ActionKind, ExitReason, SuppressReason};
pub use engine::parse_message_id;
pub use event::{Event, EventKind, Lookup, NoProperties, Properties};
pub use stats::{ArmStats, DaySends, JourneyStats, NodeStats, NotAdmitted, RenderFailure, Stats};
pub use store::{MemStore, Store, UserState};

use crate::compile::program::{Engagement, EventId, FieldPath, Program};
use crate::value::{MAX_TIME_MS, Value, format_timestamp};
use clock::Zones;
use engine::{Cx, Layout, Target};
use packed::Packed;
use store::{Sighting, Timer, TimerKind, UserId};
use templates::Renderer;

/// The runtime over one program and one store.
pub struct Runtime<S: Store = MemStore> {
    program: Arc<Program>,
    options: RuntimeOptions,
    /// The program's fingerprint, computed when a snapshot first needs it.
    fingerprint: OnceLock<String>,
    store: S,
    stats: Stats,
    names: FxHashMap<Box<str>, EventId>,
    layout: Layout,
    zones: Zones,
    renderer: Renderer,
    /// Timers set during one user operation, moved to the store after it.
    timers: Vec<Timer>,
    /// The slot values an identify carries, reused from one to the next.
    traits: Vec<(usize, Value)>,
    /// A profile's values while identify traits merge into it.
    profile_values: Vec<Value>,
    paths: EngagementPaths,
    /// Known users by time zone and the pending schedule occurrences:
    /// derived from the store, rebuilt by [`Runtime::build`].
    index: entry::ZoneIndex,
    /// Set once the input has ended ([`Runtime::end_input`]): recurring
    /// occurrences no longer fire.
    input_ended: bool,
}

struct EngagementPaths {
    message_id: FieldPath,
    template: FieldPath,
    journey: FieldPath,
}

/// The limits a runtime holds its input to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// How far ahead of the clock an event may be, in milliseconds: one
    /// stamped later is refused ([`Rejected::TooFarAhead`]), so that one
    /// event cannot move every customer's clock (default one year).
    pub max_clock_jump_ms: i64,
}

impl RuntimeOptions {
    /// The default [`RuntimeOptions::max_clock_jump_ms`]: 365 days.
    pub const MAX_CLOCK_JUMP_MS: i64 = 365 * 86_400_000;
}

impl RuntimeOptions {
    /// Whether an event stamped `at` is refused when the clock reads
    /// `clock`, and why: the rule of [`Runtime::admits_time`], for a caller
    /// that keeps the clock itself (`journey simulate --threads`, whose
    /// partitions each see only some of the events).
    pub fn admits(&self, at: i64, clock: Option<i64>) -> Result<(), Rejected> {
        if !(0..=MAX_TIME_MS).contains(&at) {
            return Err(Rejected::OutOfRange { at });
        }
        match clock {
            Some(clock) if at.saturating_sub(clock) > self.max_clock_jump_ms => {
                Err(Rejected::TooFarAhead {
                    at,
                    clock,
                    max_ms: self.max_clock_jump_ms,
                })
            }
            _ => Ok(()),
        }
    }
}

impl Default for RuntimeOptions {
    fn default() -> RuntimeOptions {
        RuntimeOptions {
            max_clock_jump_ms: RuntimeOptions::MAX_CLOCK_JUMP_MS,
        }
    }
}

/// The timer an action of [`Runtime::advance_to_tagged`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// When the timer was due.
    pub due: i64,
    /// Which batch of the timers due at `due` it fired in, within one
    /// advance: 0 for those pending when the clock reached `due`, 1 for
    /// those that firing them set for the same instant, and so on.
    pub round: u32,
    /// The timer's journey (ids are in name order).
    pub journey: u32,
}

/// Why [`Runtime::ingest`] refused an event. A refused event changes
/// nothing (not even the clock) and is counted in [`Stats::rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The timestamp is before 1970 or after 9999.
    OutOfRange { at: i64 },
    /// The timestamp is further ahead of the clock than
    /// [`RuntimeOptions::max_clock_jump_ms`].
    TooFarAhead { at: i64, clock: i64, max_ms: i64 },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rejected::OutOfRange { at } => write!(
                f,
                "`timestamp` {} is outside the years 1970 to 9999",
                format_timestamp(at)
            ),
            Rejected::TooFarAhead { at, clock, max_ms } => write!(
                f,
                "`timestamp` {} is {} ahead of the clock ({}); events more than {} ahead are \
                 skipped, as one would move every customer's time",
                format_timestamp(at),
                days(at.saturating_sub(clock)),
                format_timestamp(clock),
                days(max_ms)
            ),
        }
    }
}

impl std::error::Error for Rejected {}

/// A span of milliseconds in days (`400 days`), or hours below two days.
fn days(ms: i64) -> String {
    let hours = ms / 3_600_000;
    if hours < 48 {
        format!("{hours} hours")
    } else {
        format!("{} days", hours / 24)
    }
}

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 3;

/// Everything a runtime needs to go on where it stopped: its state, its
/// counters, and what it was taken over (the format of this build, and the
/// program's fingerprint, [`crate::compile::fingerprint`]), which
/// [`Runtime::restore`] checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot<S = MemStore> {
    /// [`SNAPSHOT_FORMAT`] of the build that took it (0 when absent: a
    /// snapshot of a build before formats were written).
    #[serde(default)]
    pub format: u32,
    /// The fingerprint of the program it was taken over.
    #[serde(default)]
    pub program: String,
    pub store: S,
    pub stats: Stats,
}

/// The first bytes of a snapshot in the binary encoding
/// ([`Snapshot::to_binary`]); the snapshot's format follows (four bytes,
/// little-endian), then the snapshot in postcard's encoding.
pub const BINARY_SNAPSHOT_MAGIC: &[u8; 8] = b"journey\x00";

impl<S: Serialize> Snapshot<S> {
    /// The snapshot in the binary encoding: [`BINARY_SNAPSHOT_MAGIC`], the
    /// format, then the same fields as the JSON form in postcard's
    /// encoding (lengths and integers as varints, no field names). About a
    /// third of the JSON's size, and written and read several times faster:
    /// what the service's checkpoints are.
    pub fn to_binary(&self) -> Result<Vec<u8>, String> {
        self.write_binary(Vec::with_capacity(1 << 16))
    }

    /// [`Snapshot::to_binary`] after the bytes `out` holds.
    pub fn write_binary(&self, mut out: Vec<u8>) -> Result<Vec<u8>, String> {
        out.extend_from_slice(BINARY_SNAPSHOT_MAGIC);
        out.extend_from_slice(&self.format.to_le_bytes());
        postcard::to_extend(self, out).map_err(|e| format!("the snapshot does not encode: {e}"))
    }
}

impl<'de, S: Deserialize<'de>> Snapshot<S> {
    /// Reads a snapshot in either encoding: the binary one
    /// ([`Snapshot::to_binary`]) or JSON (what [`Runtime::snapshot`] gives
    /// serde_json). A binary snapshot of another format is refused before
    /// its body is read (its fields may differ); one that does not decode,
    /// or has bytes after its end, is refused with the reason. What reads
    /// is not yet trusted: [`Runtime::restore`] checks it.
    pub fn decode(bytes: &'de [u8]) -> Result<Snapshot<S>, RestoreError> {
        let unreadable = |why: String| RestoreError::Unreadable(why);
        if let Some(rest) = bytes.strip_prefix(BINARY_SNAPSHOT_MAGIC.as_slice()) {
            let (format, body) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| unreadable("it ends before its format".into()))?;
            let format = u32::from_le_bytes(*format);
            if format != SNAPSHOT_FORMAT {
                return Err(RestoreError::Format { found: format });
            }
            let (snapshot, left): (Snapshot<S>, _) =
                postcard::take_from_bytes(body).map_err(|e| unreadable(binary_error(&e)))?;
            if !left.is_empty() {
                return Err(unreadable(format!("{} bytes follow its end", left.len())));
            }
            if snapshot.format != format {
                return Err(unreadable(format!(
                    "its header says format {format}, its body {}",
                    snapshot.format
                )));
            }
            return Ok(snapshot);
        }
        serde_json::from_slice(bytes).map_err(|e| unreadable(format!("as JSON: {e}")))
    }
}

/// What a binary snapshot's decoding error says. postcard keeps no text of
/// the checks the snapshot's own types make while they are read; those are
/// named here.
fn binary_error(e: &postcard::Error) -> String {
    match e {
        postcard::Error::SerdeDeCustom => format!(
            "a part of it is out of range (a value nested deeper than {}, or a `messageId` \
             window of a size or duration no window has)",
            crate::value::MAX_NESTING
        ),
        other => other.to_string(),
    }
}

/// Why [`Runtime::restore`] refused a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// Its bytes do not read as a snapshot ([`Snapshot::decode`]): cut
    /// short, damaged, or not a snapshot.
    Unreadable(String),
    /// Taken by a build that writes another snapshot format.
    Format { found: u32 },
    /// Taken over another program (another version of the journeys).
    Program { found: String, expected: String },
    /// Its parts do not fit together or do not fit the program: damaged or
    /// forged.
    Inconsistent(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Unreadable(why) => write!(f, "the snapshot does not read: {why}"),
            RestoreError::Format { found } => write!(
                f,
                "the snapshot has format {found}, and this build reads format {SNAPSHOT_FORMAT}: \
                 restore it with the build that took it, or start from an empty state"
            ),
            RestoreError::Program { found, expected } => write!(
                f,
                "the snapshot was taken over another program (fingerprint {}, this one is {}): \
                 restore it over the journeys it was taken with",
                short(found),
                short(expected)
            ),
            RestoreError::Inconsistent(why) => write!(f, "the snapshot is inconsistent: {why}"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// The first 12 digits of a fingerprint, as `git` shows a commit.
fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

impl Runtime<MemStore> {
    pub fn new(program: Arc<Program>) -> Runtime<MemStore> {
        Runtime::with_store(program, MemStore::default())
    }
}

impl<S: Store> Runtime<S> {
    /// The store's prefetch hints, when it is the memory store (the only
    /// one that has them). The type test is decided when the runtime is
    /// compiled for `S`: no cost at run time for either answer.
    #[inline(always)]
    fn hints(&self) -> Option<&MemStore> {
        (&self.store as &dyn std::any::Any).downcast_ref::<MemStore>()
    }

    /// A runtime over `store` as it is, with fresh counters; the store's
    /// state is trusted (see [`Runtime::restore`] for state from outside).
    pub fn with_store(program: Arc<Program>, store: S) -> Runtime<S> {
        let stats = Stats::for_program(&program);
        Runtime::build(program, store, stats)
    }

    /// Resumes from a snapshot taken by [`Runtime::snapshot`] over the same
    /// program. The snapshot is checked first: its format, the program's
    /// fingerprint, and that every part of its state fits the program and
    /// the rest ([`Store::validate`]); a snapshot that fails is refused
    /// with the reason, never half restored.
    pub fn restore(
        program: Arc<Program>,
        snapshot: Snapshot<S>,
    ) -> Result<Runtime<S>, RestoreError> {
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(RestoreError::Format {
                found: snapshot.format,
            });
        }
        let expected = crate::compile::fingerprint(&program);
        if snapshot.program != expected {
            return Err(RestoreError::Program {
                found: snapshot.program,
                expected,
            });
        }
        snapshot
            .stats
            .validate(&program)
            .and_then(|()| snapshot.store.validate(&program))
            .map_err(RestoreError::Inconsistent)?;
        let runtime = Runtime::build(program, snapshot.store, snapshot.stats);
        let _ = runtime.fingerprint.set(expected);
        Ok(runtime)
    }

    fn build(program: Arc<Program>, store: S, stats: Stats) -> Runtime<S> {
        let names = program
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (Box::from(&*e.name), i as EventId))
            .collect();
        let path = |name: &str| vec![Arc::from(name)];
        let mut runtime = Runtime {
            layout: Layout::new(&program),
            renderer: Renderer::new(&program.templates),
            names,
            zones: Zones::default(),
            timers: Vec::new(),
            traits: Vec::new(),
            profile_values: Vec::new(),
            paths: EngagementPaths {
                message_id: path("message_id"),
                template: path("template"),
                journey: path("journey"),
            },
            store,
            stats,
            options: RuntimeOptions::default(),
            fingerprint: OnceLock::new(),
            program,
            index: entry::ZoneIndex::default(),
            input_ended: false,
        };
        runtime.rebuild_index();
        runtime
    }

    /// Places every known user in its time zones ([`entry::ZoneIndex`]),
    /// each schedule's occurrences the next ones strictly after the clock:
    /// those at or before it have fired.
    fn rebuild_index(&mut self) {
        self.index.clear();
        if self.layout.entry.schedules.is_empty() {
            return;
        }
        let now = self.store.clock().unwrap_or(0);
        for user in 0..self.store.user_count() as UserId {
            let profile = &self.store.user(user).profile;
            self.index.place(
                &self.layout.entry,
                &self.program,
                &mut self.zones,
                user,
                profile,
                now,
            );
        }
    }

    /// Queues every user's pending date moments again (after a deploy,
    /// which drops them: the journeys' ids and triggers may have changed).
    pub(crate) fn requeue_dates(&mut self) {
        if self.layout.entry.dates.is_empty() {
            return;
        }
        let now = self.store.clock().unwrap_or(0);
        for user in 0..self.store.user_count() as UserId {
            self.with_user(user, now, &mut |_| {}, |cx, state| cx.queue_dates(state));
        }
    }

    /// Says the input has ended: from now on recurring occurrences
    /// (`trigger every`, `trigger anniversary of`) no longer fire, and
    /// [`Runtime::finish`] and [`Runtime::advance_to`] let time run on for
    /// the one-off timers only (LANGUAGE.md §4.4, §7).
    pub fn end_input(&mut self) {
        self.input_ended = true;
    }

    /// The time of the next timer that will fire: once the input has
    /// ended, recurring ones at the head of the queue are dropped first.
    pub fn next_due(&mut self) -> Option<i64> {
        if self.input_ended {
            while self
                .store
                .peek_timer()
                .is_some_and(|t| t.kind.is_recurring())
            {
                self.store.pop_timer();
            }
            return self.store.peek_timer().map(|t| t.due);
        }
        self.pending_due()
    }

    /// The time of the next pending timer or schedule occurrence, without
    /// dropping anything ([`Runtime::next_due`] is exact after the input).
    pub fn pending_due(&self) -> Option<i64> {
        let queued = self.store.peek_timer().map(|t| t.due);
        let occurrence = (!self.input_ended).then(|| self.index.next_due()).flatten();
        match (queued, occurrence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The bytes the scheduled-entry index holds (for the benches).
    pub fn schedule_index_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    /// Sets the limits on input ([`RuntimeOptions`]).
    pub fn with_options(mut self, options: RuntimeOptions) -> Runtime<S> {
        self.options = options;
        self
    }

    pub fn options(&self) -> RuntimeOptions {
        self.options
    }

    /// The runtime's state and counters now, with this build's format and
    /// the program's fingerprint. Restoring it over the same program and
    /// feeding it the events that came after it gives exactly the actions
    /// an uninterrupted run gives after that point.
    pub fn snapshot(&self) -> Snapshot<S>
    where
        S: Clone,
    {
        let borrowed = self.snapshot_ref();
        Snapshot {
            format: borrowed.format,
            program: borrowed.program,
            store: self.store.clone(),
            stats: borrowed.stats,
        }
    }

    /// The snapshot with the state borrowed, not copied: it serializes
    /// exactly as [`Runtime::snapshot`]'s does, and a service writing a
    /// checkpoint of a million customers does not hold their state twice.
    pub fn snapshot_ref(&self) -> Snapshot<&S> {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            program: self
                .fingerprint
                .get_or_init(|| crate::compile::fingerprint(&self.program))
                .clone(),
            store: &self.store,
            stats: self.stats.clone(),
        }
    }

    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock: the latest event or timer time seen.
    pub fn now(&self) -> Option<i64> {
        self.store.clock()
    }

    /// Processes one event, first firing every timer due at or before it.
    ///
    /// An event stamped outside the years 1970 to 9999, or further ahead
    /// of the clock than [`RuntimeOptions::max_clock_jump_ms`], is refused:
    /// it changes nothing, is counted ([`Stats::rejected`]), and the reason
    /// comes back for the caller to report.
    pub fn ingest(
        &mut self,
        event: &Event<'_>,
        sink: &mut impl FnMut(Action),
    ) -> Result<(), Rejected> {
        self.ingest_dyn(event, sink)
    }

    /// Whether an event stamped `at` would be refused, and why.
    pub fn admits_time(&self, at: i64) -> Result<(), Rejected> {
        self.options.admits(at, self.store.clock())
    }

    fn ingest_dyn(
        &mut self,
        event: &Event<'_>,
        sink: &mut dyn FnMut(Action),
    ) -> Result<(), Rejected> {
        if let Err(rejected) = self.admits_time(event.timestamp_ms) {
            self.stats.rejected += 1;
            return Err(rejected);
        }
        let now = match self.store.clock() {
            Some(clock) if event.timestamp_ms < clock => {
                self.stats.late += 1;
                clock
            }
            _ => event.timestamp_ms,
        };
        let mut id_hash = None;
        if event.kind != EventKind::Other {
            id_hash = event
                .message_id
                .map(|id| self.store.message_id_hash(event.user_key, id));
            // The user and the id are looked up below, most likely in
            // memory far from the cache: start both loads now, so they
            // overlap each other and the timers' work.
            if let Some(store) = self.hints() {
                store.prefetch_event(event.user_key, id_hash);
            }
        }
        self.advance_dyn(now, sink);
        match event.kind {
            EventKind::Other => self.stats.ignored_kinds += 1,
            EventKind::Identify => self.identify(event, id_hash, now, sink),
            EventKind::Track => self.track(event, id_hash, now, sink),
        }
        Ok(())
    }

    /// Fires every timer due at or before `t` and moves the clock there
    /// (at most to the end of year 9999: the clock never passes the last
    /// instant a timestamp holds).
    pub fn advance_to(&mut self, t: i64, sink: &mut impl FnMut(Action)) {
        self.advance_dyn(t.min(MAX_TIME_MS), sink);
    }

    /// [`Runtime::advance_to`], telling the sink which timer each action
    /// comes from ([`Fired`]). The actions come in the order `advance_to`
    /// gives them, which is the order of (`due`, `round`, journey id, user
    /// key) — the key that merges the actions of runtimes holding different
    /// users back into one runtime's order.
    pub fn advance_to_tagged(&mut self, t: i64, sink: &mut impl FnMut(Fired, Action)) {
        self.advance_fired(t.min(MAX_TIME_MS), sink);
    }

    /// Ends the input ([`Runtime::end_input`]) and lets time run on until
    /// no one-off timer is pending (every instance has ended and every
    /// silence has fired); recurring occurrences do not keep it going.
    pub fn finish(&mut self, sink: &mut impl FnMut(Action)) {
        self.end_input();
        while let Some(due) = self.next_due() {
            self.advance_dyn(due, sink);
        }
    }

    fn advance_dyn(&mut self, t: i64, sink: &mut dyn FnMut(Action)) {
        self.advance_fired(t, &mut |_, action| sink(action));
    }

    fn advance_fired(&mut self, t: i64, sink: &mut dyn FnMut(Fired, Action)) {
        let mut batch = Vec::new();
        let mut round = Fired {
            due: i64::MIN,
            round: 0,
            journey: 0,
        };
        while let Some(due) = self.next_due().filter(|&due| due <= t) {
            batch.clear();
            while let Some(timer) = self.store.peek_timer().filter(|t| t.due == due).copied() {
                self.store.pop_timer();
                if self.input_ended && timer.kind.is_recurring() {
                    continue;
                }
                batch.push(timer);
            }
            if !self.input_ended {
                self.index.take_due(
                    &self.layout.entry,
                    &self.program,
                    &self.zones,
                    due,
                    &mut batch,
                );
            }
            // Same instant: journey-name order, then user-key order.
            let store = &self.store;
            batch.sort_by(|a, b| {
                (a.journey, &**store.user_key(a.user), a.kind).cmp(&(
                    b.journey,
                    &**store.user_key(b.user),
                    b.kind,
                ))
            });
            // A date moved away and back queues its moment twice: one offer.
            batch.dedup_by(|a, b| {
                a == b && matches!(a.kind, TimerKind::Date(_) | TimerKind::Anniversary(_))
            });
            if self.store.clock().is_none_or(|c| c < due) {
                self.store.set_clock(due);
            }
            let now = self.store.clock().unwrap_or(due);
            // Firing sets no timer due before `now`, so the batches come in
            // (due, round) order.
            round.round = if round.due == due { round.round + 1 } else { 0 };
            round.due = due;
            for (i, &timer) in batch.iter().enumerate() {
                // Start loading the next timer's user while this one fires,
                // and what the timers after it will read.
                if let Some(next) = batch.get(i + 1).or(self.store.peek_timer())
                    && let Some(store) = self.hints()
                {
                    store.prefetch_user(next.user);
                }
                if let Some(store) = self.hints() {
                    store.prefetch_timers(&batch[i + 1..]);
                }
                let fired = Fired {
                    journey: timer.journey,
                    ..round
                };
                self.with_user(
                    timer.user,
                    now,
                    &mut |action| sink(fired, action),
                    |cx, user| cx.fire(user, timer),
                );
            }
        }
        if self.store.clock().is_none_or(|c| c < t) {
            self.store.set_clock(t);
        }
    }

    fn with_user(
        &mut self,
        user: UserId,
        now: i64,
        sink: &mut dyn FnMut(Action),
        f: impl FnOnce(&mut Cx<'_>, &mut UserState),
    ) {
        self.with_user_from(user, now, sink, Some(None), f);
    }

    /// [`Runtime::with_user`] that settles no profile change: for a look
    /// at the user before one.
    fn with_user_raw(
        &mut self,
        user: UserId,
        now: i64,
        sink: &mut dyn FnMut(Action),
        f: impl FnOnce(&mut Cx<'_>, &mut UserState),
    ) {
        self.with_user_from(user, now, sink, None, f);
    }

    /// [`Runtime::with_user`] for an operation whose profile change began
    /// before it (`settle: Some(before)`, what the entry triggers saw then),
    /// and which settles it once done ([`entry`]); `None`: settles nothing.
    fn with_user_from(
        &mut self,
        user: UserId,
        now: i64,
        sink: &mut dyn FnMut(Action),
        settle: Option<Option<entry::Before>>,
        f: impl FnOnce(&mut Cx<'_>, &mut UserState),
    ) {
        let settles = settle.is_some();
        let (key, state) = self.store.user_entry(user);
        let mut cx = Cx {
            program: &self.program,
            layout: &self.layout,
            zones: &mut self.zones,
            renderer: &self.renderer,
            stats: &mut self.stats,
            timers: &mut self.timers,
            sink,
            user,
            user_key: key,
            now,
            before: settle.flatten(),
            index: &mut self.index,
        };
        f(&mut cx, state);
        if settles {
            cx.settle(state);
        }
        for timer in self.timers.drain(..) {
            self.store.push_timer(timer);
        }
    }

    /// Whether the event is a duplicate (and counts it, or the id the
    /// window forgot early to remember this one).
    fn duplicate(&mut self, id_hash: Option<u128>, now: i64) -> bool {
        let Some(hash) = id_hash else {
            return false;
        };
        match self.store.sight_message_id(hash, now) {
            Sighting::Repeat => {
                self.stats.duplicates += 1;
                true
            }
            Sighting::First { evicted_early } => {
                self.stats.dedup_evicted_early += u64::from(evicted_early);
                false
            }
        }
    }

    fn identify(
        &mut self,
        event: &Event<'_>,
        id_hash: Option<u128>,
        now: i64,
        sink: &mut dyn FnMut(Action),
    ) {
        if self.duplicate(id_hash, now) {
            return;
        }
        self.stats.events += 1;
        let user = self.store.intern_user(event.user_key);
        let mut waits = Vec::new();
        if self.layout.profile_waits {
            self.with_user(user, now, sink, |cx, user| waits = cx.profile_waits(user));
        }
        // The time zone from `context` fills its slot when it is empty.
        let zone = event
            .context_timezone
            .zip(self.layout.timezone.map(|slot| slot as usize));
        lookup_traits(
            &self.program,
            &self.layout,
            event.properties,
            &mut self.traits,
        );
        // What the entry triggers see before the change, when it touches a
        // slot they read.
        let entry = &self.layout.entry;
        let before = (entry.any()
            && (self.traits.iter().any(|&(slot, _)| entry.watches(slot))
                || zone.is_some_and(|(_, slot)| entry.watches(slot))))
        .then(|| {
            let mut before = None;
            self.with_user_raw(user, now, &mut |_| {}, |cx, state| {
                before = Some(cx.observe(state));
            });
            before
        })
        .flatten();
        let state = self.store.user_mut(user);
        apply_traits(state, &mut self.traits, &mut self.profile_values, zone);
        self.with_user_from(user, now, sink, Some(before), |cx, user| {
            cx.profile_changed(user);
            cx.move_waits(user, waits);
        });
    }

    fn track(
        &mut self,
        event: &Event<'_>,
        id_hash: Option<u128>,
        now: i64,
        sink: &mut dyn FnMut(Action),
    ) {
        let id = self.names.get(event.name).copied();
        let info = id.map(|i| &self.program.events[i as usize]);
        // The journeys whose silence this event restarts.
        let index = self.layout.restarts_of(id, event.name);
        let silences = !self.layout.restarts[index].is_empty();
        let admits = info.is_some_and(|i| !i.triggers.is_empty());
        // A schedule offers entry to every known user: all are interned.
        let known = !self.layout.entry.schedules.is_empty();
        // Every open and click counts toward the customer's best hour,
        // whichever message it is about.
        let engaged =
            self.layout.best_hour && info.and_then(|i| i.engagement).is_some_and(|e| e.engaged());
        // A conversion counts for every user, known or not.
        let converts = id.is_some()
            && self
                .program
                .attribution
                .as_ref()
                .is_some_and(|a| Some(a.event) == id);
        let user = if admits || silences || known || engaged {
            Some(self.store.intern_user(event.user_key))
        } else {
            // Only users already in a journey can be affected, and only by
            // an event the program names: one hash lookup for the rest.
            match id.and_then(|_| self.store.find_user(event.user_key)) {
                Some(u) if converts || !self.store.user(u).journeys.is_empty() => Some(u),
                None if converts => None,
                _ => {
                    self.stats.irrelevant += 1;
                    return;
                }
            }
        };
        // The state is read once the fields are out and the id is checked;
        // the id's slot, asked for before the timers ran, is asked last.
        if let (Some(store), Some(user)) = (self.hints(), user) {
            store.prefetch_user(user);
        }
        let fields: Vec<Value> = info.map_or_else(Vec::new, |i| {
            i.fields
                .iter()
                .map(|p| event.properties.lookup(p).into_value())
                .collect()
        });
        let engagement = info.and_then(|i| i.engagement);
        if self.duplicate(id_hash, now) {
            return;
        }
        self.stats.events += 1;
        let Some(user) = user else {
            // A conversion of a user the runtime does not know: no touch.
            let mut nobody = UserState::default();
            convert(
                &self.program,
                &self.layout,
                &mut self.stats,
                &mut nobody,
                &fields,
                now,
            );
            return;
        };
        if converts {
            let state = self.store.user_mut(user);
            convert(
                &self.program,
                &self.layout,
                &mut self.stats,
                state,
                &fields,
                now,
            );
        }
        let target = engagement.and_then(|e| self.engagement_target(event, user, e));
        if engagement.is_some() && target.is_none() {
            self.stats.unmatched_engagements += 1;
        }
        self.with_user(user, now, sink, |cx, state| {
            if engaged {
                store::Engaged::record(&mut state.engaged, now);
            }
            cx.track(state, id, &fields, target);
            let layout = cx.layout;
            for &j in &*layout.restarts[index] {
                cx.restart_silences(state, j, id);
            }
        });
    }

    /// The message an engagement event refers to: by `message_id`, else
    /// the user's latest send of `template` (within `journey` when given).
    fn engagement_target(
        &self,
        event: &Event<'_>,
        user: UserId,
        engagement: Engagement,
    ) -> Option<Target> {
        let text = |path: &FieldPath| match event.properties.lookup(path) {
            Lookup::Found(Value::String(s)) => Some(s),
            _ => None,
        };
        if let Some(id) = text(&self.paths.message_id) {
            let (journey, key, entry, node) = engine::parse_message_id(&id)?;
            if key != event.user_key {
                return None;
            }
            // The live journey, or the kept version whose instance sent it.
            let state = self.store.user(user);
            let journey = self
                .program
                .journeys_named(journey)
                .find(|&j| {
                    state
                        .journey(j)
                        .and_then(|js| js.instance.as_ref())
                        .is_some_and(|i| i.entry == entry)
                })
                .or_else(|| self.program.journey_id(journey))?;
            return Some(Target {
                journey,
                entry,
                node,
                engagement,
            });
        }
        let template = text(&self.paths.template)?;
        let journey = match text(&self.paths.journey) {
            Some(name) => Some(self.program.journey_id(&name)?),
            None => None,
        };
        engine::latest_send(
            &self.program,
            self.store.user(user),
            &template,
            journey,
            engagement,
        )
    }
}

/// Counts a conversion event of a user (`state`: its profile and
/// touches) at `now`, when it matches the `where` of `attribution`.
fn convert(
    program: &Program,
    layout: &Layout,
    stats: &mut Stats,
    state: &mut UserState,
    fields: &[Value],
    now: i64,
) {
    let Some(attribution) = &program.attribution else {
        return;
    };
    let scope = eval::Scope {
        profile: &state.profile,
        event: fields,
        instance: None,
        now,
        channels: &program.channels,
        unsubscribed: layout.unsubscribed,
        zone: eval::ZoneRule {
            expr: program
                .policy
                .quiet_hours
                .as_ref()
                .and_then(|q| q.zone.as_ref()),
            slot: layout.timezone,
        },
    };
    let mut mismatches = 0;
    let holds = attribution
        .condition
        .as_ref()
        .is_none_or(|c| scope.holds(c, &mut mismatches));
    let value = holds.then(|| {
        attribution.value.as_ref().map_or(0.0, |v| {
            attribution::value_of(&scope.value(v, &mut mismatches))
        })
    });
    stats.type_mismatches += mismatches;
    if let Some(value) = value {
        let touches = attribution::window(attribution, &mut state.touches, now);
        stats.attribution.record(program, touches, now, value);
    }
}

/// Deep-merges identify traits into the profile slots the program knows:
/// each slot's path is walked in the traits; a `null` (or a non-object) at
/// or above it clears the slot, objects merge into object-valued slots, and
/// a slot the traits do not mention is left alone. The traits are read for
/// every slot at once ([`Properties::lookup_all`]): a reader of JSON text
/// walks each object on the slots' paths once, instead of once a slot.
///
fn lookup_traits(
    program: &Program,
    layout: &Layout,
    traits: &dyn Properties,
    found: &mut Vec<(usize, Value)>,
) {
    found.clear();
    traits.lookup_all(&layout.slot_paths, &mut |index, lookup| {
        let timestamp = program
            .profile_slots
            .get(index)
            .is_some_and(|s| s.timestamp);
        found.push((
            index,
            match lookup {
                Lookup::Missing => return,
                Lookup::Cleared => Value::Null,
                Lookup::Found(v) if timestamp => event::as_timestamp(v),
                Lookup::Found(v) => v,
            },
        ));
    });
}

/// The second half of [`lookup_traits`]: merges what it found into the
/// profile; then the time zone of `zone` (`context.timezone`, and the slot
/// of `profile.timezone`) fills its slot when it is still empty.
///
/// The profile is unpacked into `values` (a scratch list, left empty),
/// merged there, grown to exactly the last slot given a value (or to the
/// time zone's), and packed again once.
fn apply_traits(
    user: &mut UserState,
    found: &mut Vec<(usize, Value)>,
    values: &mut Vec<Value>,
    zone: Option<(&str, usize)>,
) {
    // A `null` past the end changes nothing: the end is already `null`.
    let valued = found
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|&(index, _)| index + 1)
        .max()
        .unwrap_or(0);
    if found.is_empty() && zone.is_none() {
        return;
    }
    let len = valued.max(zone.map_or(0, |(_, slot)| slot + 1));
    values.clear();
    user.profile.unpack_into(values);
    if values.len() < len {
        values.resize(len, Value::Null);
    }
    for (index, new) in found.drain(..) {
        if let Some(old) = values.get_mut(index) {
            *old = deep_merge(old, new);
        }
    }
    if let Some((zone, slot)) = zone
        && let Some(value) = values.get_mut(slot).filter(|v| v.is_null())
    {
        *value = Value::str(zone);
    }
    user.profile = Packed::new(values);
    values.clear();
}

fn deep_merge(old: &Value, new: Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut out = (**old).clone();
            for (k, v) in new.iter() {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = deep_merge(out.get(k).unwrap_or(&Value::Null), v.clone());
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(Arc::new(out))
        }
        (_, new) => new,
    }
}

impl Timer {
    /// Whether this is a silence timer (for reports).
    pub fn is_silence(&self) -> bool {
        matches!(self.kind, TimerKind::Silence(_))
    }
}
