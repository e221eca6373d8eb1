//! The tokio shell around the synchronous core: one task owns the
//! [`Runtime`] (single writer, no locks), takes events from a bounded
//! channel, fires timers when the wall [`Clock`] reaches them, and hands
//! actions in batches to an [`ActionSink`] through a second bounded channel
//! drained by a sink task. A slow sink fills the action channel, which stops
//! the runtime task, which fills the event channel, which makes
//! [`EventSender::send`] wait: backpressure from the sink to the producers,
//! and no unbounded buffer on the way.
//!
//! The core never reads the wall clock; only this shell does, through the
//! [`Clock`] trait ([`SystemClock`] in production, [`ManualClock`] in tests,
//! [`ScaledClock`] for demos and paused-time tests).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Action, Event, EventKind, Runtime, Snapshot, Stats, Store};
use crate::compile::Program;

// ---------------------------------------------------------------------------
// Clocks

/// Wall time for the shell, in epoch milliseconds (the core's unit).
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;

    /// Completes once `now_ms()` may have reached `at_ms`. Completing early
    /// is allowed (the service reads `now_ms()` again and goes back to
    /// sleep), so an implementation may cap its sleep to notice clock jumps.
    fn wait_until(&self, at_ms: i64) -> impl Future<Output = ()> + Send + '_;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// The longest a [`SystemClock`] sleeps before looking at the time again,
/// so a wall-clock adjustment (NTP, suspend) delays a timer by at most this.
const SYSTEM_CLOCK_RECHECK: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }

    fn wait_until(&self, at_ms: i64) -> impl Future<Output = ()> + Send + '_ {
        let wait = millis(at_ms.saturating_sub(self.now_ms())).min(SYSTEM_CLOCK_RECHECK);
        async move {
            if !wait.is_zero() {
                tokio::time::sleep_until(tokio::time::Instant::now() + wait).await;
            }
        }
    }
}

/// A clock that moves only when told to: tests and replays set it, and a
/// service waiting on it wakes as soon as it reaches the awaited time.
/// Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(now_ms)),
        }
    }

    /// Sets the time. Going back is allowed; the core ignores time that
    /// does not move forward.
    pub fn set(&self, now_ms: i64) {
        self.now.send_replace(now_ms);
    }

    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    fn wait_until(&self, at_ms: i64) -> impl Future<Output = ()> + Send + '_ {
        let mut rx = self.now.subscribe();
        async move {
            // The sender lives in `self`, which outlives this future, so the
            // wait only ends when the time is reached.
            if rx.wait_for(|&now| now >= at_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Wall time that starts at `origin_ms` and runs `speed` times faster than
/// tokio's clock: a day in a second for a demo, or, at speed 1 under
/// `tokio::time::pause`, a clock that jumps straight to the next timer.
#[derive(Clone, Copy, Debug)]
pub struct ScaledClock {
    origin_ms: i64,
    started: tokio::time::Instant,
    speed: u32,
}

impl ScaledClock {
    /// Starts now (tokio time); a `speed` of 0 counts as 1.
    pub fn new(origin_ms: i64, speed: u32) -> ScaledClock {
        ScaledClock {
            origin_ms,
            started: tokio::time::Instant::now(),
            speed: speed.max(1),
        }
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_millis();
        let scaled = elapsed.saturating_mul(u128::from(self.speed));
        self.origin_ms
            .saturating_add(i64::try_from(scaled).unwrap_or(i64::MAX))
    }

    fn wait_until(&self, at_ms: i64) -> impl Future<Output = ()> + Send + '_ {
        let ahead = millis(at_ms.saturating_sub(self.now_ms()));
        // Round up so the wake-up is never before the due time.
        let wait = div_ceil(ahead, self.speed);
        async move {
            if !wait.is_zero() {
                tokio::time::sleep_until(tokio::time::Instant::now() + wait).await;
            }
        }
    }
}

/// `by` divided by `speed`, rounded up to the nanosecond.
fn div_ceil(by: Duration, speed: u32) -> Duration {
    let nanos = by.as_nanos().div_ceil(u128::from(speed.max(1)));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

// ---------------------------------------------------------------------------
// Sinks

/// Where actions go: the channel adapters (an email provider, an SMS
/// gateway, a queue). Called from the sink task, one batch at a time, in the
/// order the runtime produced them; the next batch waits for this one, so a
/// slow sink slows the runtime down instead of piling actions up.
///
/// Returning an error stops the service (retrying transient failures is the
/// sink's own business): no more events are taken, and
/// [`ServiceHandle::shutdown`] hands back the runtime, the error, the actions
/// not delivered and the events not processed.
pub trait ActionSink: Send + 'static {
    fn deliver(
        &mut self,
        batch: Vec<Action>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send + '_;
}

/// A sink's failure.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkError {
    pub message: String,
    /// The actions of the failing batch the sink did not deliver, when it
    /// chose to give them back.
    pub undelivered: Vec<Action>,
}

impl SinkError {
    pub fn new(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            undelivered: Vec::new(),
        }
    }

    pub fn with_undelivered(mut self, actions: Vec<Action>) -> SinkError {
        self.undelivered = actions;
        self
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the action sink failed: {}", self.message)
    }
}

impl std::error::Error for SinkError {}

// ---------------------------------------------------------------------------
// Owned events

/// An event that owns its data, so it can cross tasks; [`OwnedEvent::as_event`]
/// borrows it as the core's [`Event`].
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedEvent {
    pub kind: EventKind,
    pub user_key: Arc<str>,
    /// The track event's name (`""` for other kinds).
    pub name: Arc<str>,
    pub timestamp_ms: i64,
    pub message_id: Option<Arc<str>>,
    /// Track properties or identify traits (an object).
    pub properties: serde_json::Value,
    /// An identify's `context.timezone` (it fills the profile's time zone
    /// when the profile has none); the runtime reads no other event's.
    pub context_timezone: Option<Arc<str>>,
}

impl OwnedEvent {
    pub fn track(
        user_key: impl AsRef<str>,
        name: impl AsRef<str>,
        timestamp_ms: i64,
        properties: serde_json::Value,
    ) -> OwnedEvent {
        OwnedEvent {
            kind: EventKind::Track,
            user_key: Arc::from(user_key.as_ref()),
            name: Arc::from(name.as_ref()),
            timestamp_ms,
            message_id: None,
            properties,
            context_timezone: None,
        }
    }

    pub fn identify(
        user_key: impl AsRef<str>,
        timestamp_ms: i64,
        traits: serde_json::Value,
    ) -> OwnedEvent {
        OwnedEvent {
            kind: EventKind::Identify,
            user_key: Arc::from(user_key.as_ref()),
            name: Arc::from(""),
            timestamp_ms,
            message_id: None,
            properties: traits,
            context_timezone: None,
        }
    }

    pub fn with_message_id(mut self, id: impl AsRef<str>) -> OwnedEvent {
        self.message_id = Some(Arc::from(id.as_ref()));
        self
    }

    pub fn as_event(&self) -> Event<'_> {
        Event {
            kind: self.kind,
            user_key: &self.user_key,
            name: &self.name,
            timestamp_ms: self.timestamp_ms,
            message_id: self.message_id.as_deref(),
            properties: &self.properties,
            context_timezone: self.context_timezone.as_deref(),
        }
    }
}

// ---------------------------------------------------------------------------
// The service

/// Channel sizes. Every buffer between a producer and the sink is bounded by
/// these: at most `event_capacity` events and `action_capacity` batches of
/// at most `max_batch` actions wait at any time (plus the one batch the sink
/// is delivering and the actions of the one instant being processed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    pub event_capacity: usize,
    pub action_capacity: usize,
    pub max_batch: usize,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            event_capacity: 1024,
            action_capacity: 16,
            max_batch: 256,
        }
    }
}

/// Starts services.
pub struct Service;

impl Service {
    /// Spawns the runtime and sink tasks over a fresh runtime on `store`.
    /// Must be called inside a tokio runtime.
    pub fn spawn<S, C, K>(
        program: Arc<Program>,
        store: S,
        clock: C,
        sink: K,
        config: ServiceConfig,
    ) -> ServiceHandle<S>
    where
        S: Store + Send + 'static,
        C: Clock,
        K: ActionSink,
    {
        Service::spawn_runtime(Runtime::with_store(program, store), clock, sink, config)
    }

    /// Spawns the service over an existing runtime, e.g. one restored from
    /// a snapshot ([`Runtime::restore`]) or handed back by a shutdown.
    pub fn spawn_runtime<S, C, K>(
        runtime: Runtime<S>,
        clock: C,
        sink: K,
        config: ServiceConfig,
    ) -> ServiceHandle<S>
    where
        S: Store + Send + 'static,
        C: Clock,
        K: ActionSink,
    {
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (actions_tx, actions_rx) = mpsc::channel(config.action_capacity.max(1));
        let sink_task = tokio::spawn(drain_sink(sink, actions_rx));
        let driver = Driver {
            runtime,
            clock,
            events: events_rx,
            actions: actions_tx,
            pending: Vec::new(),
            max_batch: config.max_batch.max(1),
            undelivered: Vec::new(),
        };
        let task = tokio::spawn(driver.run(sink_task));
        ServiceHandle {
            sender: EventSender { tx: events_tx },
            task,
        }
    }
}

/// The service's input side; cheap to clone, one per producer.
pub struct EventSender<S: Store> {
    tx: mpsc::Sender<Message<S>>,
}

impl<S: Store> Clone for EventSender<S> {
    fn clone(&self) -> Self {
        EventSender {
            tx: self.tx.clone(),
        }
    }
}

impl<S: Store> EventSender<S> {
    /// Queues an event; waits while the queue is full (backpressure). Fails,
    /// giving the event back, once the service has stopped.
    pub async fn send(&self, event: OwnedEvent) -> Result<(), Closed<OwnedEvent>> {
        match self.tx.reserve().await {
            Ok(permit) => {
                permit.send(Message::Event(event));
                Ok(())
            }
            Err(_) => Err(Closed(event)),
        }
    }

    /// Queues an event if there is room now.
    pub fn try_send(&self, event: OwnedEvent) -> Result<(), TrySendError> {
        match self.tx.try_reserve() {
            Ok(permit) => {
                permit.send(Message::Event(event));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TrySendError::Full(event)),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TrySendError::Closed(event)),
        }
    }
}

/// The handle on a running service.
pub struct ServiceHandle<S: Store> {
    sender: EventSender<S>,
    task: JoinHandle<Stopped<S>>,
}

impl<S: Store + Send + 'static> ServiceHandle<S> {
    /// A sender for another producer.
    pub fn sender(&self) -> EventSender<S> {
        self.sender.clone()
    }

    /// Queues an event; see [`EventSender::send`].
    pub async fn send(&self, event: OwnedEvent) -> Result<(), Closed<OwnedEvent>> {
        self.sender.send(event).await
    }

    /// Queues an event if there is room now.
    pub fn try_send(&self, event: OwnedEvent) -> Result<(), TrySendError> {
        self.sender.try_send(event)
    }

    /// Runs `f` on the runtime once every event queued before this call has
    /// been processed, every timer the wall clock has reached has fired, and
    /// the sink has accepted every action that came of them.
    pub async fn inspect<R, F>(&self, f: F) -> Result<R, Closed<()>>
    where
        R: Send + 'static,
        F: FnOnce(&Runtime<S>) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let ask: Inspect<S> = Box::new(move |runtime| {
            // The asker may have given up waiting; nothing to do then.
            let _ = tx.send(f(runtime));
        });
        self.sender
            .tx
            .send(Message::Inspect(ask))
            .await
            .map_err(|_| Closed(()))?;
        rx.await.map_err(|_| Closed(()))
    }

    /// The runtime's counters; see [`ServiceHandle::inspect`] for what they
    /// include.
    pub async fn stats(&self) -> Result<Stats, Closed<()>> {
        self.inspect(|runtime| runtime.stats().clone()).await
    }

    /// The time of the next pending timer, if any (epoch milliseconds).
    pub async fn next_timer_due(&self) -> Result<Option<i64>, Closed<()>> {
        self.inspect(|runtime| runtime.pending_due()).await
    }

    /// Stops taking events, processes the ones already queued, fires the
    /// timers the wall clock has reached, waits for the sink to accept every
    /// action, and hands back the runtime so its state can be persisted.
    pub async fn shutdown(self) -> Result<Stopped<S>, ServiceError> {
        // Fails only when the service already stopped on a sink error; the
        // task's result says so.
        let _ = self.sender.tx.send(Message::Shutdown).await;
        drop(self.sender);
        self.task
            .await
            .map_err(|e| ServiceError(format!("the runtime task ended abnormally: {e}")))
    }
}

impl<S: Store + Clone + Send + 'static> ServiceHandle<S> {
    /// A consistent snapshot while running: it holds exactly the events
    /// queued before this call, and every action they imply has reached the
    /// sink.
    ///
    /// What holds after a crash: restoring the last snapshot and sending
    /// again every event queued after it (the embedder keeps them, e.g. in
    /// a log, until a later snapshot is saved) produces exactly the actions
    /// an uninterrupted run produces after the snapshot, with the same
    /// message ids. Nothing is lost. But the actions the sink accepted
    /// between the snapshot and the crash come again, identical: a sink
    /// must drop what it already holds (a send by its `message_id`, any
    /// action by its JSON line), or snapshots must be saved in the same
    /// transaction as the actions they follow. `journey serve` does the
    /// latter: see docs/embedding.md.
    pub async fn snapshot(&self) -> Result<Snapshot<S>, Closed<()>> {
        self.inspect(Runtime::snapshot).await
    }
}

/// What a stopped service hands back.
pub struct Stopped<S: Store> {
    pub runtime: Runtime<S>,
    /// Set when the service stopped because the sink failed.
    pub sink_error: Option<SinkError>,
    /// Actions the runtime produced that the sink did not accept, oldest
    /// first (empty after a clean shutdown).
    pub undelivered: Vec<Action>,
    /// Events that were queued but not processed (empty after a clean
    /// shutdown).
    pub unprocessed: Vec<OwnedEvent>,
}

impl<S: Store> Stopped<S> {
    /// Whether everything was processed and delivered.
    pub fn is_clean(&self) -> bool {
        self.sink_error.is_none() && self.undelivered.is_empty() && self.unprocessed.is_empty()
    }
}

/// The service has stopped; the value could not be handed over.
#[derive(Clone, Debug, PartialEq)]
pub struct Closed<T>(pub T);

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the journey service has stopped")
    }
}

impl<T: fmt::Debug> std::error::Error for Closed<T> {}

/// [`EventSender::try_send`]'s failure, giving the event back.
#[derive(Clone, Debug, PartialEq)]
pub enum TrySendError {
    /// The queue is full: try later or use [`EventSender::send`].
    Full(OwnedEvent),
    Closed(OwnedEvent),
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the journey service's event queue is full"),
            TrySendError::Closed(_) => f.write_str("the journey service has stopped"),
        }
    }
}

impl std::error::Error for TrySendError {}

/// The runtime task itself failed (a bug: the core does not panic on data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError(pub String);

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServiceError {}

// ---------------------------------------------------------------------------
// The tasks

type Inspect<S> = Box<dyn FnOnce(&Runtime<S>) + Send>;

/// What producers and the handle put in the event queue. Control messages
/// share the queue so they are ordered with the events.
enum Message<S: Store> {
    Event(OwnedEvent),
    Inspect(Inspect<S>),
    Shutdown,
}

enum SinkMessage {
    Batch(Vec<Action>),
    /// Answered once every batch before it was delivered.
    Flush(oneshot::Sender<()>),
}

/// The sink stopped: its error, and what it did not deliver.
struct SinkFailed {
    error: SinkError,
    undelivered: Vec<Action>,
}

/// The sink task: delivers batches in order until the runtime task drops
/// its sender, or the sink fails.
async fn drain_sink<K: ActionSink>(
    mut sink: K,
    mut rx: mpsc::Receiver<SinkMessage>,
) -> Option<SinkFailed> {
    while let Some(message) = rx.recv().await {
        match message {
            SinkMessage::Batch(batch) => {
                if let Err(mut error) = sink.deliver(batch).await {
                    let mut undelivered = std::mem::take(&mut error.undelivered);
                    rx.close();
                    while let Some(message) = rx.recv().await {
                        if let SinkMessage::Batch(batch) = message {
                            undelivered.extend(batch);
                        }
                    }
                    return Some(SinkFailed { error, undelivered });
                }
            }
            SinkMessage::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
    None
}

/// The sink task has gone (it failed); the runtime task stops.
struct SinkGone;

/// The runtime task's state.
struct Driver<S: Store, C: Clock> {
    runtime: Runtime<S>,
    clock: C,
    events: mpsc::Receiver<Message<S>>,
    actions: mpsc::Sender<SinkMessage>,
    /// Actions produced and not yet handed to the sink.
    pending: Vec<Action>,
    max_batch: usize,
    /// Actions the sink task could no longer take.
    undelivered: Vec<Action>,
}

impl<S: Store + Send + 'static, C: Clock> Driver<S, C> {
    async fn run(mut self, sink_task: JoinHandle<Option<SinkFailed>>) -> Stopped<S> {
        let outcome = self.serve().await;
        let mut unprocessed = Vec::new();
        if outcome.is_err() {
            // The sink failed: keep what is queued for the caller.
            self.events.close();
            while let Some(message) = self.events.recv().await {
                match message {
                    Message::Event(event) => unprocessed.push(event),
                    // Dropping the inspection tells its asker the service stopped.
                    Message::Inspect(_) | Message::Shutdown => {}
                }
            }
            self.undelivered.append(&mut self.pending);
        }
        let Driver {
            runtime,
            actions,
            undelivered: mut late,
            ..
        } = self;
        drop(actions);
        let (sink_error, mut undelivered) = match sink_task.await {
            Ok(Some(failed)) => (Some(failed.error), failed.undelivered),
            Ok(None) => (None, Vec::new()),
            Err(e) => (
                Some(SinkError::new(format!(
                    "the sink task ended abnormally: {e}"
                ))),
                Vec::new(),
            ),
        };
        undelivered.append(&mut late);
        Stopped {
            runtime,
            sink_error,
            undelivered,
            unprocessed,
        }
    }

    /// The main loop; returns when asked to shut down (after draining), when
    /// every sender is gone, or when the sink fails.
    async fn serve(&mut self) -> Result<(), SinkGone> {
        loop {
            self.fire_due().await?;
            if !self.pending.is_empty() && self.events.is_empty() {
                self.ship().await?;
            }
            let next_due = self.runtime.pending_due();
            let clock = &self.clock;
            let wake = async move {
                match next_due {
                    Some(due) => clock.wait_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Queued work first; the timer check at the top of the loop
                // still runs between any two events, so timers cannot starve.
                biased;
                message = self.events.recv() => match message {
                    Some(Message::Event(event)) => self.ingest(&event).await?,
                    Some(Message::Inspect(ask)) => {
                        self.settle().await?;
                        ask(&self.runtime);
                    }
                    Some(Message::Shutdown) | None => return self.drain().await,
                },
                () = wake => {}
            }
        }
    }

    async fn ingest(&mut self, event: &OwnedEvent) -> Result<(), SinkGone> {
        let pending = &mut self.pending;
        // A refused event is counted in the runtime's stats, which the
        // handle reads; the queue has no one to answer.
        let _ = self
            .runtime
            .ingest(&event.as_event(), &mut |action| pending.push(action));
        if self.pending.len() >= self.max_batch {
            self.ship().await?;
        }
        Ok(())
    }

    /// Fires every timer due at or before the wall clock's time, one instant
    /// at a time so a long gap never builds one huge batch. The core's clock
    /// moves to each timer's time, not to the wall clock's: an event stamped
    /// a moment ago is not "late" just because the wall clock ticked.
    async fn fire_due(&mut self) -> Result<(), SinkGone> {
        let now = self.clock.now_ms();
        while let Some(due) = self.runtime.pending_due().filter(|&due| due <= now) {
            let pending = &mut self.pending;
            self.runtime
                .advance_to(due, &mut |action| pending.push(action));
            if self.pending.len() >= self.max_batch {
                self.ship().await?;
            }
        }
        Ok(())
    }

    /// Hands the pending actions to the sink task in batches of at most
    /// `max_batch`; waits while its queue is full.
    async fn ship(&mut self) -> Result<(), SinkGone> {
        while !self.pending.is_empty() {
            let rest = if self.pending.len() > self.max_batch {
                self.pending.split_off(self.max_batch)
            } else {
                Vec::new()
            };
            let batch = std::mem::replace(&mut self.pending, rest);
            if let Err(mpsc::error::SendError(message)) =
                self.actions.send(SinkMessage::Batch(batch)).await
            {
                if let SinkMessage::Batch(batch) = message {
                    self.undelivered.extend(batch);
                }
                return Err(SinkGone);
            }
        }
        Ok(())
    }

    /// Brings the runtime up to the wall clock and waits until the sink has
    /// accepted every action so far.
    async fn settle(&mut self) -> Result<(), SinkGone> {
        self.fire_due().await?;
        self.ship().await?;
        let (done, delivered) = oneshot::channel();
        if self.actions.send(SinkMessage::Flush(done)).await.is_err() {
            return Err(SinkGone);
        }
        delivered.await.map_err(|_| SinkGone)
    }

    /// Shutdown: no new events; the queued ones (and inspections) are
    /// processed, then everything is delivered.
    async fn drain(&mut self) -> Result<(), SinkGone> {
        self.events.close();
        while let Some(message) = self.events.recv().await {
            match message {
                Message::Event(event) => self.ingest(&event).await?,
                Message::Inspect(ask) => {
                    self.settle().await?;
                    ask(&self.runtime);
                }
                Message::Shutdown => {}
            }
        }
        self.settle().await
    }
}
