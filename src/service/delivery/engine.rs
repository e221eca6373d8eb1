//! The delivery engine (SERVICE.md §6): reads the `send` actions of the
//! outbox in `seq` order and delivers each through its channel's provider,
//! on tokio tasks beside the service's writer, never in its way.
//!
//! ```text
//! outbox ──reader (durable cursor)──▶ record `pending` ──▶ channel queue
//!   channel queue ──(concurrency permits, token-bucket rate)──▶ attempt
//!   attempt ──Sent/Fail──▶ outcome event (Core::append) ──▶ record ──▶ permit back
//!           ──Retry──────▶ record (next attempt due) ──▶ permit back ──sleep──▶ queue
//! ```
//!
//! Durability: each send gets its record (committed by the service's
//! writer with the journal, through [`Core::record_deliveries`]) before
//! its first attempt, in one write with the cursor that passed it; every attempt is recorded after the
//! provider answered, and the attempt's concurrency permit is given back
//! only then. So after a crash, the only attempts repeated are those in
//! flight or answered-but-unrecorded at that instant — at most a
//! channel's `concurrency`, each once, with the same idempotency key (the
//! message id). An outcome event is journaled before its record: a crash
//! between the two journals it again on the resend, under the same
//! `messageId` (`<message_id>:<outcome>`), which the runtime ignores.
//!
//! Where sends come from and where their records and outcomes go is the
//! engine's [`Backend`]: on one machine [`Local`], the outbox and the
//! service's writer, described here; under `--nats` the outbox stream's
//! shared consumer (`service::nats::delivery`). The channels' queues,
//! rate limits, attempts, retry decisions and records are the same.
//!
//! Delivery's records ride in the journal's transactions ([`Local`]): one
//! stream of fsyncs on the disk, not two that wait on each other
//! ([`crate::service::storage`]).
//!
//! Delivery stays out of ingest's way: its tasks run on a tokio runtime
//! of their own whose threads run under Linux's `SCHED_IDLE` policy
//! (elsewhere, [`DELIVERY_NICE`] nicer than the service). A thread of the
//! service that wakes takes the core from delivery at once, so delivery
//! runs on what the service leaves idle, at full speed when it leaves a
//! core idle (docs/performance.md has the figures). While the service
//! keeps every core busy, delivery waits (its backlog is
//! `journey_delivery_backlog`) and catches up once it does not. The op
//! channel it journals through takes no lock, so a delivery thread
//! descheduled mid-send holds up no one. Outcome events go through the
//! service's writer, as any event; so do the records. That work is the
//! service's own threads', at their priority, so while ingest keeps the
//! writer busy the reader starts no new sends, for up to a second at a
//! time ([`yield_to_ingest`]; measured in docs/performance.md: 8–10% of
//! ingest without it, 2–7% with it on two cores shared with the load).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::{BoxFuture, Channel, Message, Outcome, Policy, Rate};
use crate::service::core::{Core, IngestError, wall_ms};
use crate::service::http::Gate;
use crate::service::metrics;
use crate::service::storage::{
    Attempt, AttemptOutcome, Delivery, DeliveryBatch, DeliveryStatus, Storage,
};
use crate::service::tracking_http::{About, outcome_event};

/// Sends held in memory at once (queued, in flight or waiting to retry),
/// at most: past it, the reader waits. Unfinished sends beyond it stay in
/// the outbox and their records until there is room.
pub const MAX_IN_MEMORY: usize = 10_000;
/// Outbox rows read at once.
const READ_AT_ONCE: usize = 5_000;
/// The least time between two reads of the outbox, so that a busy ingest
/// (many small commits) is read in few rounds.
const ROUND_PAUSE: Duration = Duration::from_millis(10);
/// The writer's share of busy time over the last [`YIELD_STEP`] at or
/// above which ingest has the service's capacity and the reader waits.
const INGEST_BUSY: f64 = 0.8;
/// How long the reader waits for a busy writer at most before it reads
/// one round anyway, so that sustained ingest slows delivery but never
/// stops it.
const MAX_YIELD: Duration = Duration::from_secs(1);
/// How long the writer's busy share is measured over, each time the
/// reader looks.
const YIELD_STEP: Duration = Duration::from_millis(10);
/// How long a stop waits for attempts in flight.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How much nicer delivery's threads are than the thread that starts it
/// (the service's): under contention, a thread 10 nicer gets about a tenth
/// of the CPU of the other (Linux's weights for 10 and 0 are 110 and
/// 1024), and all of it when the cores are idle.
pub const DELIVERY_NICE: i32 = 10;
/// Worker threads of delivery's runtime: its work is waiting on providers,
/// so two are enough to keep thousands of attempts in flight.
const DELIVERY_THREADS: usize = 2;

/// Where the engine's sends come from, and where their records and
/// outcome events go: the one machine's core and outbox ([`Local`]), or a
/// `--nats` deployment's streams (`service::nats::delivery`). The
/// channels' queues, rate limits, attempts, retry decisions and records
/// are the engine's, whichever it is.
pub trait Backend: Send + Sync + 'static {
    /// A send's place in its source, kept with the send until it is
    /// finished or handed back.
    type Ticket: Send + Sync + 'static;

    /// Where outcome events are journaled, and how they are stamped.
    fn gate(&self) -> &dyn Gate;

    /// An audience sync's customer's email and phone
    /// ([`super::audience::contact`]).
    fn contact<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Value, String>>;

    /// Records a finished send (its outcome event journaled already) and
    /// lets its place in the source go.
    fn finish<'a>(
        &'a self,
        ticket: &'a Self::Ticket,
        record: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Records an attempt that another follows after `wait`, and says
    /// who holds the send until then.
    fn again<'a>(
        &'a self,
        ticket: &'a Self::Ticket,
        record: &'a Delivery,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Requeue, String>>;

    /// Why this attempt is the send's last whatever its channel allows
    /// (the source delivers it no more), or `None`.
    fn last_chance(&self, _ticket: &Self::Ticket) -> Option<String> {
        None
    }
}

/// Who holds a send between two attempts.
pub enum Requeue {
    /// The engine: it queues the send again after the wait.
    Here,
    /// The source, which gives the send to the engine again after the
    /// wait (maybe another process's engine).
    Source,
}

/// The running engine.
pub struct Engine<B: Backend = Local> {
    inner: Arc<Inner<B>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Delivery's own runtime, at a lower priority.
    runtime: Option<tokio::runtime::Runtime>,
}

impl<B: Backend> Drop for Engine<B> {
    /// An engine dropped without [`Engine::stop`] (a start that failed
    /// later) lets go of its runtime without waiting, which is allowed
    /// inside the service's own runtime, where a plain drop is not.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The calling thread's nice value (0 where there is none).
fn nice() -> i32 {
    #[cfg(unix)]
    {
        // SAFETY: getpriority only reads its two integer arguments and
        // returns the calling thread's nice value (`who` 0 is the caller);
        // it touches no memory of this process.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }
    #[cfg(not(unix))]
    0
}

/// Sets the calling thread's nice value to `service`'s plus
/// [`DELIVERY_NICE`] (19 at most) and, on Linux, its policy to
/// `SCHED_IDLE`. On Linux both belong to the thread, so the service's
/// other threads keep theirs. Where they cannot be set, delivery runs at
/// the service's priority.
fn lower_priority(service: i32) {
    #[cfg(unix)]
    {
        let target = (service + DELIVERY_NICE).min(19);
        // SAFETY: setpriority only reads its three integer arguments and
        // changes the scheduling priority of the calling thread (`who` 0);
        // it touches no memory of this process.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) };
        #[cfg(target_os = "linux")]
        {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sched_setscheduler reads `param`, a local that
            // outlives the call, and changes only the calling thread's
            // policy (`pid` 0); any process may lower itself to SCHED_IDLE.
            let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        }
    }
    #[cfg(not(unix))]
    let _ = service;
}

/// Delivery's runtime: its own threads, each [`DELIVERY_NICE`] nicer than
/// the caller (worker and blocking threads alike, wherever they are
/// started from).
fn delivery_runtime() -> Result<tokio::runtime::Runtime, String> {
    let service = nice();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(DELIVERY_THREADS)
        .thread_name("journey-delivery")
        .on_thread_start(move || lower_priority(service))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start delivery's runtime: {e}"))
}

struct Inner<B: Backend> {
    backend: B,
    /// The configured channels, by name; a channel without one is `log`.
    /// An audience table's lane is named `audiences.<table>`.
    lanes: FxHashMap<String, Lane<B::Ticket>>,
    /// The journeys' audiences that are synced, to their table's lane.
    audiences: FxHashMap<String, String>,
    stop: watch::Receiver<bool>,
    /// Sends in memory now, and at most (see [`MAX_IN_MEMORY`]).
    in_memory: AtomicUsize,
    max_in_memory: usize,
    /// Told when a send leaves memory.
    room: Notify,
}

impl<B: Backend> Inner<B> {
    /// Whether anything is delivered: a channel bound to a provider other
    /// than `log`, or an audience synced.
    fn delivers_any(&self) -> bool {
        !self.audiences.is_empty() || self.lanes.values().any(|l| l.channel.provider.delivers())
    }
}

/// One configured channel's queue and its instruments.
struct Lane<T> {
    channel: Channel,
    queue: mpsc::UnboundedSender<Job<T>>,
    permits: Arc<Semaphore>,
    pending: ::metrics::Gauge,
    latency: ::metrics::Histogram,
    /// Attempts by outcome: sent, retry, failed.
    attempts: [::metrics::Counter; 3],
    /// Finished sends by outcome: sent, failed.
    finished: [::metrics::Counter; 2],
}

impl<T> Lane<T> {
    fn new(channel: Channel, queue: mpsc::UnboundedSender<Job<T>>) -> Lane<T> {
        let labels = |outcome: &'static str| {
            [
                ("channel", channel.name.clone()),
                ("provider", channel.provider_name.clone()),
                ("outcome", outcome.to_string()),
            ]
        };
        let attempts = ["sent", "retry", "failed"]
            .map(|o| ::metrics::counter!(metrics::DELIVERY_ATTEMPTS, &labels(o)));
        let finished =
            ["sent", "failed"].map(|o| ::metrics::counter!(metrics::DELIVERIES, &labels(o)));
        let channel_label = [
            ("channel", channel.name.clone()),
            ("provider", channel.provider_name.clone()),
        ];
        Lane {
            pending: ::metrics::gauge!(metrics::OUTBOX_PENDING, "channel" => channel.name.clone()),
            latency: ::metrics::histogram!(metrics::DELIVERY_SECONDS, &channel_label),
            attempts,
            finished,
            permits: Arc::new(Semaphore::new(channel.policy.concurrency)),
            queue,
            channel,
        }
    }
}

/// One send on its way.
pub struct Job<T> {
    /// Its place in the source.
    pub ticket: T,
    pub record: Delivery,
    pub message: Message,
}

impl Engine<Local> {
    /// Starts delivery over the service's outbox with the configured
    /// channels (every other channel is `log`). A deployment where
    /// delivery never ran starts from the outbox's end: sends committed
    /// before are not delivered.
    pub async fn start(core: Arc<Core>, channels: Vec<Channel>) -> Result<Engine, String> {
        let storage = core.storage().clone();
        let local = Local { core, storage };
        if local.storage.delivery_cursor().map_err(|e| e.0)?.is_none() {
            let from = local.storage.last_seq().map_err(|e| e.0)?;
            local
                .write(DeliveryBatch {
                    cursor: Some(from),
                    ..DeliveryBatch::default()
                })
                .await?;
        }
        Engine::launch(local, channels, MAX_IN_MEMORY, |feed| read(feed.0))
    }

    /// Stops starting attempts, waits (a while) for those in flight to be
    /// recorded and their outcomes journaled, and stops the record writer.
    /// Call before the core stops: outcomes are journaled through it.
    pub async fn stop(mut self) {
        self.halt().await;
        if !self.inner.delivers_any() {
            // The cursor at the outbox's end, exactly (the reader writes it
            // at most once a second while nothing is delivered).
            let local = &self.inner.backend;
            let end = *local.core.seq().borrow();
            let _ = local
                .write(DeliveryBatch {
                    cursor: Some(end),
                    ..DeliveryBatch::default()
                })
                .await;
        }
    }
}

/// What a source of sends is given: room in memory, the channels' view of
/// an action, and the queues ([`Engine::launch`]).
pub struct Feed<B: Backend>(Arc<Inner<B>>);

impl<B: Backend> Feed<B> {
    pub fn backend(&self) -> &B {
        &self.0.backend
    }

    /// Whether any channel is bound to a provider other than `log`, or
    /// any audience is synced.
    pub fn delivers_any(&self) -> bool {
        self.0.delivers_any()
    }

    /// Resolves once the engine stops.
    pub async fn stopped(&self) {
        let mut stop = self.0.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Waits for room in memory; how many sends fit, or `None` once
    /// stopping.
    pub async fn room(&self) -> Option<usize> {
        self.0.room().await
    }

    /// The send (or synced `audience` action) that the outbox action
    /// `seq` is, if it is one.
    pub fn deliverable(&self, seq: u64, line: String, committed_ms: i64) -> Option<Message> {
        self.0.deliverable(seq, line, committed_ms)
    }

    /// A new send's record: `pending` when its channel delivers, `logged`
    /// when it is `log`.
    pub fn record(&self, message: &Message) -> Delivery {
        self.0.record(message)
    }

    /// Takes a pending send into memory and its channel's queue, now or
    /// after `delay`.
    pub fn take(&self, job: Job<B::Ticket>, delay: Duration) {
        if let Some(lane) = self.0.lanes.get(&job.record.channel) {
            self.0.held(lane);
            self.0.enqueue(job, delay);
        }
    }
}

impl<B: Backend> Engine<B> {
    /// Starts the channels' queues and `source`, which feeds them, on
    /// delivery's own runtime; at most `max_in_memory` sends are held.
    pub fn launch<S, F>(
        backend: B,
        channels: Vec<Channel>,
        max_in_memory: usize,
        source: S,
    ) -> Result<Engine<B>, String>
    where
        S: FnOnce(Feed<B>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop_tx, stop) = watch::channel(false);
        let mut queues = Vec::new();
        let mut lanes = FxHashMap::default();
        let mut audiences = FxHashMap::default();
        for channel in channels {
            for audience in channel.provider.audiences() {
                audiences.insert(audience, channel.name.clone());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push((channel.name.clone(), rx));
            lanes.insert(channel.name.clone(), Lane::new(channel, tx));
        }
        let inner = Arc::new(Inner {
            backend,
            lanes,
            audiences,
            stop,
            in_memory: AtomicUsize::new(0),
            max_in_memory,
            room: Notify::new(),
        });
        let runtime = delivery_runtime()?;
        let mut tasks = Vec::new();
        for (name, rx) in queues {
            tasks.push(runtime.spawn(dispatch(inner.clone(), name, rx)));
        }
        tasks.push(runtime.spawn(source(Feed(inner.clone()))));
        Ok(Engine {
            inner,
            stop: stop_tx,
            tasks,
            runtime: Some(runtime),
        })
    }

    /// One line for the log: which channel goes to which provider.
    pub fn describe(&self) -> String {
        let mut bound: Vec<String> = self
            .inner
            .lanes
            .values()
            .map(|l| format!("{} → {}", l.channel.name, l.channel.provider_name))
            .collect();
        bound.sort();
        if bound.is_empty() {
            "delivery: no channel has a provider; sends stay in the outbox and feed".into()
        } else {
            format!("delivery: {} (any other channel: log)", bound.join(", "))
        }
    }

    /// Stops starting attempts, waits (a while) for those in flight to be
    /// recorded and their outcomes journaled, and ends delivery's tasks.
    pub async fn halt(&mut self) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        for lane in self.inner.lanes.values() {
            let all = lane.channel.policy.concurrency as u32;
            let _ = tokio::time::timeout_at(deadline, lane.permits.acquire_many(all)).await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(runtime) = self.runtime.take() {
            // Its tasks have ended; what remains (an audience batch's
            // request, a retry's sleep) is dropped, as a crash would.
            runtime.shutdown_background();
        }
    }
}

impl<B: Backend> Inner<B> {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits until fewer than [`MAX_IN_MEMORY`] sends are held; the room
    /// left, or `None` once stopping.
    async fn room(&self) -> Option<usize> {
        let mut stop = self.stop.clone();
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let held = self.in_memory.load(Ordering::Acquire);
            if held < self.max_in_memory {
                return Some(self.max_in_memory - held);
            }
            tokio::select! {
                _ = notified => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }

    /// A send takes its place in memory and its lane's queue, now or after
    /// `delay`.
    fn enqueue(self: &Arc<Self>, job: Job<B::Ticket>, delay: Duration) {
        let Some(lane) = self.lanes.get(&job.record.channel) else {
            return;
        };
        if delay.is_zero() {
            let _ = lane.queue.send(job);
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let mut stop = inner.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    if let Some(lane) = inner.lanes.get(&job.record.channel) {
                        let _ = lane.queue.send(job);
                    }
                }
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }

    fn held(&self, lane: &Lane<B::Ticket>) {
        self.in_memory.fetch_add(1, Ordering::AcqRel);
        lane.pending.increment(1.0);
    }

    fn released(&self, lane: &Lane<B::Ticket>) {
        self.in_memory.fetch_sub(1, Ordering::AcqRel);
        lane.pending.decrement(1.0);
        self.room.notify_waiters();
    }

    /// Journals a finished send's outcome as a track event of its
    /// recipient (SERVICE.md §6); `false` when the service no longer takes
    /// events (it is stopping), and the send stays unfinished.
    async fn journal_outcome(&self, record: &Delivery) -> bool {
        if Channel::is_audience_lane(&record.channel) {
            // An audience sync is no message: its record tells.
            return true;
        }
        let outcome = match record.status {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending | DeliveryStatus::Logged => return true,
        };
        let about = About {
            user_id: &record.user_id,
            message_id: &record.message_id,
            journey: &record.journey,
            template: &record.template,
            channel: &record.channel,
        };
        let gate = self.backend.gate();
        loop {
            gate.refresh_clock().await;
            let incoming = match outcome_event(gate, &about, outcome, record.error.as_deref()) {
                Ok(incoming) => incoming,
                // Only an event the reader refuses gets here (a user key it
                // would not take): the send's record still tells.
                Err(_) => return true,
            };
            match gate.append(vec![incoming]).await {
                Ok(()) => return true,
                Err(IngestError::Overloaded) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(IngestError::Unavailable(_)) => return false,
            }
        }
    }

    /// A new send's record: `pending` when its channel delivers, `logged`
    /// when it is `log`.
    fn record(&self, message: &Message) -> Delivery {
        let lane = self.lanes.get(&message.channel);
        let delivers = lane.is_some_and(|l| l.channel.provider.delivers());
        Delivery {
            message_id: message.message_id.clone(),
            user_id: message.user_id.clone(),
            journey: message.journey.clone(),
            template: message.template.clone(),
            channel: message.channel.clone(),
            provider: lane.map_or_else(|| "log".into(), |l| l.channel.provider_name.clone()),
            status: if delivers {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Logged
            },
            committed_ms: message.committed_ms,
            next_at_ms: None,
            error: None,
            attempts: Vec::new(),
        }
    }
}

/// The reader: first the sends left unfinished by the last run, then the
/// outbox after the cursor, as it grows.
async fn read(inner: Arc<Inner<Local>>) {
    if resume(&inner).await.is_none() {
        return;
    }
    let storage = inner.backend.storage.clone();
    let Ok(Some(mut cursor)) = storage.delivery_cursor() else {
        return;
    };
    let mut durable = cursor;
    let mut written_at = Instant::now();
    let mut seq = inner.backend.core.seq();
    let mut stop = inner.stop.clone();
    let mut logged: FxHashMap<String, ::metrics::Counter> = FxHashMap::default();
    loop {
        ::metrics::gauge!(metrics::DELIVERY_BACKLOG)
            .set(seq.borrow().saturating_sub(cursor) as f64);
        tokio::select! {
            changed = seq.wait_for(|&s| s > cursor) => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if !inner.delivers_any() {
            // No channel is bound to a provider and no audience is synced:
            // the outbox and the feed are the whole output, so its rows are
            // not read back nor recorded again (a fifth of the service's
            // CPU under ingest). The cursor follows the outbox's end, so a
            // provider configured later starts there: written a second
            // after the last time at most, however the run ends.
            let wait = Duration::from_secs(1).saturating_sub(written_at.elapsed());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            cursor = *seq.borrow();
            let batch = DeliveryBatch {
                cursor: Some(cursor),
                ..DeliveryBatch::default()
            };
            if inner.backend.write(batch).await.is_err() {
                return;
            }
            durable = cursor;
            written_at = Instant::now();
            continue;
        }
        if yield_to_ingest(&inner, &mut stop).await.is_none() {
            return;
        }
        let Some(room) = inner.room().await else {
            return;
        };
        let reader = storage.clone();
        let after = cursor;
        let rows =
            match tokio::task::spawn_blocking(move || reader.outbox_after(after, READ_AT_ONCE))
                .await
            {
                Ok(Ok(rows)) => rows,
                _ => return,
            };
        let full = rows.len() == READ_AT_ONCE;
        let mut records = Vec::new();
        let mut jobs = Vec::new();
        for (s, committed_ms, line) in rows {
            if jobs.len() >= room {
                break;
            }
            cursor = s;
            let Some(message) = inner.deliverable(s, line, committed_ms) else {
                continue;
            };
            let record = inner.record(&message);
            if record.status == DeliveryStatus::Pending {
                jobs.push(Job {
                    ticket: s,
                    record: record.clone(),
                    message,
                });
            } else {
                logged
                    .entry(record.channel.clone())
                    .or_insert_with(|| logged_counter(&record))
                    .increment(1);
            }
            records.push((s, record));
        }
        // A cursor that passed only other actions is written at most once
        // a second: it bounds the next restart's reading and lets the
        // feed's retention go on.
        let due = !records.is_empty()
            || (cursor != durable && written_at.elapsed() >= Duration::from_secs(1));
        if due {
            let batch = DeliveryBatch {
                cursor: Some(cursor),
                records,
                ..DeliveryBatch::default()
            };
            if inner.backend.write(batch).await.is_err() {
                return;
            }
            durable = cursor;
            written_at = Instant::now();
        }
        for job in jobs {
            if let Some(lane) = inner.lanes.get(&job.record.channel) {
                inner.held(lane);
            }
            inner.enqueue(job, Duration::ZERO);
        }
        if !full {
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }
}

/// Ingest first: while the writer has been busy for [`INGEST_BUSY`] of the
/// last [`YIELD_STEP`], ingest is using the service's capacity, and the
/// reader starts no new sends (nor writes their records, nor makes their
/// outcome events, which the writer and the partitions would pay for at
/// the service's priority), for up to [`MAX_YIELD`] at a time. Sends
/// already read go on. Each look takes one step: a round of the reader
/// starts that much later. `None` once stopping.
async fn yield_to_ingest(inner: &Inner<Local>, stop: &mut watch::Receiver<bool>) -> Option<()> {
    let core = &inner.backend.core;
    let began = Instant::now();
    loop {
        let (busy, at) = (core.writer_busy(), Instant::now());
        tokio::select! {
            () = tokio::time::sleep(YIELD_STEP) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
        let share = busy_share(core.writer_busy().saturating_sub(busy), at.elapsed());
        if share < INGEST_BUSY || began.elapsed() >= MAX_YIELD {
            break;
        }
    }
    let waited = began.elapsed().saturating_sub(YIELD_STEP);
    if waited >= YIELD_STEP {
        ::metrics::counter!(metrics::DELIVERY_YIELDED).increment(waited.as_millis() as u64);
    }
    Some(())
}

/// The share of `span` that a busy-time counter grew by `grew` in.
fn busy_share(grew: Duration, span: Duration) -> f64 {
    if span.is_zero() {
        return 0.0;
    }
    (grew.as_secs_f64() / span.as_secs_f64()).min(1.0)
}

/// The count of sends of `record`'s channel that are only logged.
pub fn logged_counter(record: &Delivery) -> ::metrics::Counter {
    let labels = [
        ("channel", record.channel.clone()),
        ("provider", record.provider.clone()),
        ("outcome", "logged".to_string()),
    ];
    ::metrics::counter!(metrics::DELIVERIES, &labels)
}

/// Takes up the sends the last run left unfinished, in `seq` order, each
/// at its next attempt's time; `None` once stopping.
async fn resume(inner: &Arc<Inner<Local>>) -> Option<()> {
    let mut after = 0;
    loop {
        let room = inner.room().await?;
        let storage = inner.backend.storage.clone();
        let rows = tokio::task::spawn_blocking(move || {
            storage.pending_deliveries(after, room.min(READ_AT_ONCE))
        })
        .await
        .ok()?
        .ok()?;
        if rows.is_empty() {
            return Some(());
        }
        for (seq, record) in rows {
            after = seq;
            resume_one(inner, seq, record).await?;
        }
    }
}

async fn resume_one(inner: &Arc<Inner<Local>>, seq: u64, mut record: Delivery) -> Option<()> {
    let storage = inner.backend.storage.clone();
    let row = tokio::task::spawn_blocking(move || storage.outbox_after(seq - 1, 1))
        .await
        .ok()?
        .ok()?
        .into_iter()
        .find(|(s, _, _)| *s == seq);
    let lane = inner.lanes.get(&record.channel);
    let kept = row.is_some();
    let send = row
        .and_then(|(_, _, line)| inner.deliverable(seq, line, record.committed_ms))
        .filter(|message| message.channel == record.channel);
    match (lane, send) {
        (Some(lane), Some(message)) if lane.channel.provider.delivers() => {
            let delay = record
                .next_at_ms
                .map_or(0, |at| (at - wall_ms()).max(0) as u64);
            inner.held(lane);
            inner.enqueue(
                Job {
                    ticket: seq,
                    record,
                    message,
                },
                Duration::from_millis(delay),
            );
        }
        _ if !kept => {
            // Retention keeps every unfinished send: only damage gets here.
            record.status = DeliveryStatus::Failed;
            record.error = Some("its action is no longer in the outbox".into());
            if !inner.journal_outcome(&record).await {
                return None;
            }
            inner.backend.write(one(seq, record)).await.ok()?;
        }
        _ => {
            // The channel (or the audience) has no provider any more.
            record.status = DeliveryStatus::Logged;
            record.error = Some("its channel has no provider any more".into());
            inner.backend.write(one(seq, record)).await.ok()?;
        }
    }
    Some(())
}

fn one(seq: u64, record: Delivery) -> DeliveryBatch {
    DeliveryBatch {
        records: vec![(seq, record)],
        ..DeliveryBatch::default()
    }
}

/// An action's fields when it is of `kind`, else `None`.
fn parse_kind(line: &str, kind: &str) -> Option<Map<String, Value>> {
    // Most actions are not of the kind: no JSON tree for them.
    let needle = match kind {
        "send" => "\"kind\":\"send\"",
        "audience" => "\"kind\":\"audience\"",
        _ => return None,
    };
    if !line.contains(needle) {
        return None;
    }
    let map: Map<String, Value> = serde_json::from_str(line).ok()?;
    (map.get("kind").and_then(Value::as_str) == Some(kind)).then_some(map)
}

/// A `send` action's fields, or `None` for another kind of action.
fn parse_send(line: &str) -> Option<Map<String, Value>> {
    parse_kind(line, "send")
}

impl<B: Backend> Inner<B> {
    /// The provider's view of the outbox action `seq`: a send, or an
    /// `audience` action of an audience a table syncs; `None` for any
    /// other action.
    fn deliverable(&self, seq: u64, line: String, committed_ms: i64) -> Option<Message> {
        if let Some(send) = parse_send(&line) {
            return Some(message(&send, line, committed_ms));
        }
        if self.audiences.is_empty() {
            return None;
        }
        let action = parse_kind(&line, "audience")?;
        let audience = action.get("audience").and_then(Value::as_str)?;
        let lane = self.audiences.get(audience)?;
        Some(audience_message(&action, lane, seq, line, committed_ms))
    }
}

/// The provider's view of an `audience` action synced by `lane`: its
/// `message_id` is `audience:<audience>:<op>:<seq>`, its `template` the
/// audience, its `vars` `op` and `audience`; `to` is looked up when it is
/// attempted ([`super::audience::contact`]).
fn audience_message(
    action: &Map<String, Value>,
    lane: &str,
    seq: u64,
    line: String,
    committed_ms: i64,
) -> Message {
    let text = |key: &str| {
        action
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (audience, op) = (text("audience"), text("op"));
    let mut vars = Map::new();
    vars.insert("op".into(), Value::from(op.clone()));
    vars.insert("audience".into(), Value::from(audience.clone()));
    Message {
        message_id: format!("audience:{audience}:{op}:{seq}"),
        user_id: text("user_id"),
        journey: text("journey"),
        template: audience,
        channel: lane.to_string(),
        to: Value::Null,
        subject: None,
        body: None,
        html: None,
        vars,
        line,
        attempt: 1,
        committed_ms,
    }
}

/// The provider's view of a send (its first attempt).
fn message(send: &Map<String, Value>, line: String, committed_ms: i64) -> Message {
    let text = |key: &str| send.get(key).and_then(Value::as_str).map(str::to_string);
    Message {
        message_id: text("message_id").unwrap_or_default(),
        user_id: text("user_id").unwrap_or_default(),
        journey: text("journey").unwrap_or_default(),
        template: text("template").unwrap_or_default(),
        channel: text("channel").unwrap_or_default(),
        to: send.get("to").cloned().unwrap_or(Value::Null),
        subject: text("subject"),
        body: text("body"),
        html: text("html"),
        vars: match send.get("vars") {
            Some(Value::Object(vars)) => vars.clone(),
            _ => Map::new(),
        },
        line,
        attempt: 1,
        committed_ms,
    }
}

/// A channel's dispatcher: takes its queue in order, each send once a
/// concurrency permit and a rate token are free.
async fn dispatch<B: Backend>(
    inner: Arc<Inner<B>>,
    name: String,
    mut queue: mpsc::UnboundedReceiver<Job<B::Ticket>>,
) {
    let Some(lane) = inner.lanes.get(&name) else {
        return;
    };
    let mut bucket = lane.channel.policy.rate.map(Bucket::new);
    let mut stop = inner.stop.clone();
    loop {
        let job = tokio::select! {
            job = queue.recv() => match job { Some(job) => job, None => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        let permit = tokio::select! {
            permit = lane.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        if let Some(bucket) = &mut bucket {
            tokio::select! {
                _ = bucket.take() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        tokio::spawn(attempt(inner.clone(), job, permit));
    }
}

/// What comes after an attempt.
enum Next {
    /// Finished: `sent` or `failed` (with why).
    Finish(DeliveryStatus, Option<String>),
    /// Another attempt after this long.
    Again(Duration),
}

/// One attempt of one send, recorded before its permit is given back.
async fn attempt<B: Backend>(
    inner: Arc<Inner<B>>,
    mut job: Job<B::Ticket>,
    permit: OwnedSemaphorePermit,
) {
    let Some(lane) = inner.lanes.get(&job.record.channel) else {
        return;
    };
    let policy = &lane.channel.policy;
    let started_ms = wall_ms();
    let deadline = job
        .record
        .committed_ms
        .saturating_add(millis(policy.max_age));
    let next = if started_ms > deadline {
        Next::Finish(
            DeliveryStatus::Failed,
            Some(format!(
                "not sent within `max_age` ({})",
                words(policy.max_age)
            )),
        )
    } else {
        job.message.attempt = job.record.attempts.len() as u32 + 1;
        let clock = Instant::now();
        // An audience sync matches on the customer's email and phone as
        // their profile holds them when it is first attempted.
        let looked_up =
            if Channel::is_audience_lane(&job.record.channel) && job.message.to.is_null() {
                match inner.backend.contact(&job.message.user_id).await {
                    Ok(to) => {
                        job.message.to = to;
                        None
                    }
                    Err(error) => Some(Outcome::Retry {
                        error: format!("the customer's profile could not be read: {error}"),
                        after: None,
                    }),
                }
            } else {
                None
            };
        let outcome = match looked_up {
            Some(outcome) => outcome,
            None => {
                tokio::time::timeout(policy.timeout, lane.channel.provider.deliver(&job.message))
                    .await
                    .unwrap_or_else(|_| Outcome::Retry {
                        error: format!("no answer within {}", words(policy.timeout)),
                        after: None,
                    })
            }
        };
        let took = clock.elapsed();
        lane.latency.record(took.as_secs_f64());
        let (kind, index, response) = match &outcome {
            Outcome::Sent { response } => (AttemptOutcome::Sent, 0, response.clone()),
            Outcome::Retry { error, .. } => (AttemptOutcome::Retry, 1, error.clone()),
            Outcome::Fail { error } => (AttemptOutcome::Failed, 2, error.clone()),
        };
        lane.attempts[index].increment(1);
        job.record.attempts.push(Attempt {
            at_ms: started_ms,
            outcome: kind,
            response,
            latency_ms: took.as_millis() as u64,
        });
        // The source's own limit comes before the channel's.
        match (
            decide(policy, &job.record, outcome, deadline),
            inner.backend.last_chance(&job.ticket),
        ) {
            (Next::Again(_), Some(why)) => {
                let error = job.record.attempts.last().map_or("", |a| &a.response);
                Next::Finish(DeliveryStatus::Failed, Some(format!("{why}: {error}")))
            }
            (next, _) => next,
        }
    };
    match next {
        Next::Finish(status, error) => {
            job.record.status = status;
            job.record.error = error;
            job.record.next_at_ms = None;
            if !inner.journal_outcome(&job.record).await {
                // Stopping: unrecorded, it is attempted again at restart.
                return;
            }
            if inner
                .backend
                .finish(&job.ticket, &job.record)
                .await
                .is_err()
            {
                return;
            }
            lane.finished[usize::from(status != DeliveryStatus::Sent)].increment(1);
            drop(permit);
            inner.released(lane);
        }
        Next::Again(wait) => {
            job.record.next_at_ms = Some(wall_ms().saturating_add(millis(wait)));
            let requeue = match inner.backend.again(&job.ticket, &job.record, wait).await {
                Ok(requeue) => requeue,
                Err(_) => return,
            };
            drop(permit);
            match requeue {
                Requeue::Here if !inner.stopped() => inner.enqueue(job, wait),
                Requeue::Here => {}
                Requeue::Source => inner.released(lane),
            }
        }
    }
}

/// After an attempt: finished, or when to try again (a transient failure
/// with attempts and time left).
fn decide(policy: &Policy, record: &Delivery, outcome: Outcome, deadline: i64) -> Next {
    match outcome {
        Outcome::Sent { .. } => Next::Finish(DeliveryStatus::Sent, None),
        Outcome::Fail { error } => Next::Finish(DeliveryStatus::Failed, Some(error)),
        Outcome::Retry { error, after } => {
            let made = record.attempts.len();
            if made >= policy.max_attempts as usize {
                return Next::Finish(
                    DeliveryStatus::Failed,
                    Some(format!("gave up after {made} attempts: {error}")),
                );
            }
            let wait = backoff(policy, made, after, jitter());
            if wall_ms().saturating_add(millis(wait)) > deadline {
                return Next::Finish(
                    DeliveryStatus::Failed,
                    Some(format!(
                        "gave up: the next attempt would be past `max_age` ({}): {error}",
                        words(policy.max_age)
                    )),
                );
            }
            Next::Again(wait)
        }
    }
}

/// The wait after the `failures`th transient failure in a row: `backoff`
/// doubled each time up to `backoff_max`, of which a random half
/// (`jitter` in 0..1) is taken off ("equal jitter": never less than half,
/// and retries of many sends spread out); never less than the provider's
/// `Retry-After`.
fn backoff(policy: &Policy, failures: usize, after: Option<Duration>, jitter: f64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(31);
    let full = policy
        .backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.backoff_max);
    let wait = full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0);
    after.map_or(wait, |after| after.max(wait))
}

/// A random number in 0..1 for [`backoff`] and other waits that must not
/// fall in step (the delivery shell may use randomness: it is not the
/// deterministic core).
pub fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in words for a record: `250ms`, `30s`.
fn words(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// A token bucket: `rate.per_second` tokens a second, holding at most one
/// second's worth (at least one), full at the start.
struct Bucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(rate: Rate) -> Bucket {
        let capacity = rate.per_second.ceil().max(1.0);
        Bucket {
            per_second: rate.per_second,
            capacity,
            tokens: capacity,
            at: tokio::time::Instant::now(),
        }
    }

    /// Waits for a token and takes it.
    async fn take(&mut self) {
        loop {
            let now = tokio::time::Instant::now();
            let earned = now.duration_since(self.at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.capacity);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let short = (1.0 - self.tokens) / self.per_second;
            tokio::time::sleep(Duration::from_secs_f64(short)).await;
        }
    }
}

/// One machine's delivery: sends from the outbox of its storage, records
/// through the service's writer, which commits them with the journal's
/// next transaction (group commit; the records of sends the outbox's
/// retention drops go in the same transaction), and outcome events
/// journaled through its core.
pub struct Local {
    core: Arc<Core>,
    storage: Arc<dyn Storage>,
}

impl Local {
    /// Commits `batch` durably (with whatever else is waiting).
    async fn write(&self, batch: DeliveryBatch) -> Result<(), String> {
        self.core.record_deliveries(batch).await
    }
}

impl Backend for Local {
    /// The send's outbox `seq`.
    type Ticket = u64;

    fn gate(&self) -> &dyn Gate {
        &*self.core
    }

    fn contact<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(super::audience::contact(&self.core, user_id))
    }

    fn finish<'a>(
        &'a self,
        seq: &'a u64,
        record: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.write(one(*seq, record.clone())))
    }

    fn again<'a>(
        &'a self,
        seq: &'a u64,
        record: &'a Delivery,
        _wait: Duration,
    ) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            self.write(one(*seq, record.clone())).await?;
            Ok(Requeue::Here)
        })
    }
}

#[cfg(test)]
mod tests {

    /// Delivery's threads run below the service's priority, and the
    /// thread that built its runtime keeps its own.
    #[cfg(unix)]
    #[test]
    fn delivery_runs_below_the_service_priority() {
        let before = nice();
        let runtime = delivery_runtime().expect("a runtime");
        let priority = || (nice(), policy_of_this_thread());
        let worker = runtime.block_on(async { tokio::spawn(async move { priority() }).await });
        // A blocking thread started from a worker, already nicer: the same.
        let blocking = runtime.block_on(async {
            tokio::spawn(async move { tokio::task::spawn_blocking(priority).await })
                .await
                .expect("the task ran")
        });
        runtime.shutdown_background();
        let expected = (before + DELIVERY_NICE).min(19);
        #[cfg(target_os = "linux")]
        let idle = libc::SCHED_IDLE;
        #[cfg(not(target_os = "linux"))]
        let idle = policy_of_this_thread();
        assert_eq!(worker.expect("the task ran"), (expected, idle));
        assert_eq!(blocking.expect("the task ran"), (expected, idle));
        assert_eq!(
            priority(),
            (before, libc::SCHED_OTHER),
            "the caller's priority is unchanged"
        );
    }

    /// The writer's busy share of a look: all of it while ingest keeps it
    /// busy, none while it waits.
    #[test]
    fn the_busy_share_is_the_counter_s_growth_over_the_span() {
        let ms = Duration::from_millis;
        assert_eq!(busy_share(ms(10), ms(10)), 1.0);
        assert_eq!(busy_share(ms(12), ms(10)), 1.0, "at most all of it");
        assert!((busy_share(ms(4), ms(10)) - 0.4).abs() < 1e-9);
        assert_eq!(busy_share(ms(0), ms(10)), 0.0);
        assert_eq!(busy_share(ms(3), ms(0)), 0.0, "no span, no share");
    }

    fn policy_of_this_thread() -> i32 {
        // SAFETY: sched_getscheduler only reads its integer argument (0:
        // the calling thread) and returns its policy.
        unsafe { libc::sched_getscheduler(0) }
    }
    use super::*;

    fn policy() -> Policy {
        Policy {
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            ..Policy::default()
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let p = policy();
        assert_eq!(backoff(&p, 1, None, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 1, None, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&p, 2, None, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(&p, 3, None, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(&p, 10, None, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&p, 1_000, None, 0.0), Duration::from_secs(30));
        assert_eq!(
            backoff(&p, 1, Some(Duration::from_secs(7)), 1.0),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff(&p, 3, Some(Duration::from_secs(1)), 1.0),
            Duration::from_secs(8)
        );
        let r = jitter();
        assert!((0.0..1.0).contains(&r), "{r}");
    }

    fn record(attempts: usize) -> Delivery {
        Delivery {
            message_id: "j:u:1:2".into(),
            user_id: "u".into(),
            journey: "j".into(),
            template: "t".into(),
            channel: "webhook".into(),
            provider: "webhook".into(),
            status: DeliveryStatus::Pending,
            committed_ms: wall_ms(),
            next_at_ms: None,
            error: None,
            attempts: (0..attempts)
                .map(|_| Attempt {
                    at_ms: 0,
                    outcome: AttemptOutcome::Retry,
                    response: "503".into(),
                    latency_ms: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn transient_failures_retry_until_attempts_or_age_run_out() {
        let p = Policy {
            max_attempts: 3,
            ..policy()
        };
        let retry = || Outcome::Retry {
            error: "503".into(),
            after: None,
        };
        let far = i64::MAX;
        assert!(matches!(
            decide(&p, &record(1), retry(), far),
            Next::Again(_)
        ));
        assert!(matches!(
            decide(&p, &record(2), retry(), far),
            Next::Again(_)
        ));
        match decide(&p, &record(3), retry(), far) {
            Next::Finish(DeliveryStatus::Failed, Some(why)) => {
                assert!(why.contains("after 3 attempts"), "{why}");
            }
            _ => panic!("gives up after max_attempts"),
        }
        match decide(&p, &record(1), retry(), wall_ms()) {
            Next::Finish(DeliveryStatus::Failed, Some(why)) => {
                assert!(why.contains("max_age"), "{why}");
            }
            _ => panic!("gives up past max_age"),
        }
        let fail = Outcome::Fail {
            error: "404".into(),
        };
        assert!(matches!(
            decide(&p, &record(1), fail, far),
            Next::Finish(DeliveryStatus::Failed, Some(_))
        ));
        let sent = Outcome::Sent {
            response: "200".into(),
        };
        assert!(matches!(
            decide(&p, &record(1), sent, far),
            Next::Finish(DeliveryStatus::Sent, None)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_holds_a_second_and_then_paces() {
        let mut bucket = Bucket::new(Rate { per_second: 10.0 });
        let start = tokio::time::Instant::now();
        for _ in 0..30 {
            bucket.take().await;
        }
        // Ten at once, then twenty at ten a second.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1_900) && took <= Duration::from_millis(2_100),
            "{took:?}"
        );
    }

    #[test]
    fn only_sends_are_read() {
        let send = r#"{"at":"2026-03-02T10:00:00Z","kind":"send","journey":"j","user_id":"u","channel":"email","template":"t","message_id":"j:u:1:2","to":"u@example.com","vars":{"kind":"send"},"subject":"Hi","body":"Hello"}"#;
        let enter = r#"{"at":"2026-03-02T10:00:00Z","kind":"enter","journey":"j","user_id":"u","holdout":false,"vars":{"kind":"send"}}"#;
        let parsed = parse_send(send).unwrap_or_default();
        let m = message(&parsed, send.to_string(), 5);
        assert_eq!(m.message_id, "j:u:1:2");
        assert_eq!(m.to, Value::from("u@example.com"));
        assert_eq!(m.subject.as_deref(), Some("Hi"));
        assert_eq!(m.html, None);
        assert_eq!(m.committed_ms, 5);
        assert_eq!(m.line, send);
        assert!(parse_send(enter).is_none());
    }
}
