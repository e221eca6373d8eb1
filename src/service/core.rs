//! The service's engine: one writer thread that owns every durable write,
//! and one worker thread per partition that owns that partition's
//! [`Runtime`].
//!
//! ```text
//! HTTP ──Append──▶ writer ──(one transaction, one fsync: group commit)──▶ ack 200
//!                    │ entries, in journal order
//!                    ▼
//!                 worker p: Runtime::ingest / advance_to / finish
//!                    │ Applied { position, action lines }   │ its snapshot, when due
//!                    ▼                                       ▼
//!                 writer ◀── Checkpointed { position } ── checkpointer: the file, synced
//!                    │
//!                    ▼ outbox + applied position (+ the checkpoint named), one transaction
//! ```
//!
//! Checkpoints stop nothing for long. A partition's is its snapshot in the
//! binary encoding ([`Snapshot::to_binary`]), taken on its worker between
//! two entries; the checkpointer thread writes it to a file of its own and
//! syncs it ([`Storage::stage_checkpoint`]), and only then does the writer
//! name it the partition's, in its next transaction: no write waits for a
//! checkpoint's bytes to reach the disk. The partitions' checkpoints are
//! spread over `checkpoint.every` (partition `p` of `P` takes its first
//! `(p + 1) / P` of the way in) and taken one at a time: one that comes due
//! while another partition is taking its own waits for the next entry.
//!
//! The writer stamps each entry with the instant it takes effect (§3):
//! with `--clock events`, the later of the message's timestamp and the one
//! deployment clock; with `--clock wall`, the wall clock (never earlier
//! than the partition's previous entry). Workers never read a clock.
//!
//! Exactly once: a partition's actions are committed with the journal
//! position that produced them, in one transaction. A restart restores the
//! partition's checkpoint and replays the journal after it; the actions of
//! positions the outbox already holds are derived again (the runtime is
//! deterministic) and dropped, not written twice.
//!
//! Deploys (§8) are journal entries too: [`Core::deploy`] plans the new
//! version, records it ([`super::versions`]) and journals `Deploy` in every
//! partition in one transaction; each worker moves its customers to the
//! version's program when it reaches the entry, live or in a replay.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use tokio::sync::{oneshot, watch};

use super::journal::Entry;
use super::metrics;
use super::partitions::partition_of;
use super::storage::{DeliveryBatch, Recovery, Storage, StorageError, WriteBatch};
use super::versions::Versions;
use crate::compile::Program;
use crate::io::adapter::{Payload, event};
use crate::io::parse_line;
use crate::runtime::store::{DedupConfig, MemStore};
use crate::runtime::{Action, Runtime, RuntimeOptions, Snapshot};
use crate::source::SourceMap;

/// How time moves (`--clock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// The wall clock: timers fire when it reaches them.
    Wall,
    /// The events' time, as `journey simulate`; moves on with events and
    /// `POST /admin/clock`.
    Events,
}

impl ClockMode {
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Wall => "wall",
            ClockMode::Events => "events",
        }
    }
}

/// How the core runs.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub partitions: u32,
    pub clock: ClockMode,
    /// A checkpoint after this many entries of a partition...
    pub checkpoint_entries: u64,
    /// ...or this long after the previous one, whichever comes first.
    pub checkpoint_every: Duration,
    /// Messages accepted and not yet durable, at most; past it, ingest
    /// answers 503.
    pub max_pending: usize,
    /// Entries waiting for a partition's worker, at most ([`Backlog`]).
    pub partition_queue: usize,
    pub dedup_key: [u8; 16],
    pub max_clock_jump_ms: i64,
    /// How long committed actions stay in the feed.
    pub action_retention: Duration,
    /// How long journal a checkpoint covers is kept (0: dropped at once).
    pub journal_retention: Duration,
}

/// A message ready to be journaled: validated by the reader `journey
/// simulate` uses, with `type` and `messageId` filled in.
pub struct Incoming {
    /// The message's `type` (`track`, `identify`, ...).
    pub kind: &'static str,
    pub user_key: String,
    /// The message's `messageId` (empty when the system had no randomness
    /// to make one).
    pub message_id: String,
    pub timestamp_ms: i64,
    pub line: String,
}

/// `POST /admin/clock`'s target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockTo {
    At(i64),
    End,
}

/// The answer to a clock advance, once every action it caused is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockState {
    pub now: Option<i64>,
    pub active_instances: u64,
    pub pending_timers: u64,
}

/// Why ingest was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum IngestError {
    /// Too much is waiting to become durable: retry later.
    Overloaded,
    /// The service is stopping or failed.
    Unavailable(String),
}

enum Op {
    Append {
        messages: Vec<Incoming>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Clock {
        to: ClockTo,
        ack: oneshot::Sender<Result<ClockState, String>>,
    },
    Tick {
        partition: u32,
        to: i64,
    },
    Applied(Applied),
    /// The checkpoint of `partition` at `position` is staged: the writer
    /// names it the partition's.
    Checkpointed {
        partition: u32,
        position: u64,
    },
    Inspect {
        partition: u32,
        look: Inspection,
    },
    Deploy {
        version: u32,
        record: Vec<u8>,
        ack: oneshot::Sender<Result<ClockState, String>>,
    },
    /// Delivery's records, committed with the next transaction.
    Deliveries {
        batch: DeliveryBatch,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Stop {
        ack: oneshot::Sender<()>,
    },
}

/// A look at a partition's runtime, run by its worker between entries.
pub type Inspection = Box<dyn FnOnce(&Runtime) + Send>;

/// What the writer hands a partition's worker.
enum ToWorker {
    /// The partition's journal entries of one commit, in order, each at
    /// its position: handed over and reported back as one (one wake-up
    /// and one report a commit, not one an entry; with 8 clients the
    /// per-entry hand-over was a quarter of the writer's CPU time).
    Entries(Vec<(u64, Entry)>),
    /// A look at the runtime after the entries before it; not journaled,
    /// changes nothing.
    Inspect(Inspection),
}

/// The entries handed to a partition's worker and not applied yet, at
/// most `limit`: past it the writer waits (backpressure to ingest). Counted
/// in entries, not in hand-overs, which carry a commit's worth each: a
/// partition busy with its checkpoint for 300 ms must not stop the writer
/// while it has room for seconds of entries.
struct Backlog {
    queued: Mutex<usize>,
    drained: std::sync::Condvar,
    limit: usize,
    /// The worker is gone: nobody drains, nobody waits.
    closed: AtomicBool,
}

impl Backlog {
    fn new(limit: usize) -> Backlog {
        Backlog {
            queued: Mutex::new(0),
            drained: std::sync::Condvar::new(),
            limit: limit.max(1),
            closed: AtomicBool::new(false),
        }
    }

    /// Counts `n` more entries, once there is room for them (at once when
    /// none wait: a hand-over larger than the limit still goes).
    fn add(&self, n: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        while *queued > 0 && *queued + n > self.limit && !self.closed.load(Ordering::Acquire) {
            queued = self.drained.wait(queued).unwrap_or_else(|e| e.into_inner());
        }
        *queued += n;
    }

    /// `n` entries are applied.
    fn done(&self, n: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        *queued = queued.saturating_sub(n);
        self.drained.notify_one();
    }
}

/// A worker's hold on its [`Backlog`]: when the worker goes, however it
/// goes, the writer stops waiting for it (and hears it stopped from the
/// closed channel).
struct Draining(Arc<Backlog>);

impl Drop for Draining {
    fn drop(&mut self) {
        let _guard = self.0.queued.lock().unwrap_or_else(|e| e.into_inner());
        self.0.closed.store(true, Ordering::Release);
        self.0.drained.notify_all();
    }
}

/// One partition's active instances, per journey of its program.
type ActiveByJourney = Vec<(Arc<str>, u64)>;

/// What a worker reports after applying entries (the last at `position`).
struct Applied {
    partition: u32,
    position: u64,
    /// `None` for a position the outbox already held (a replay).
    lines: Option<Vec<String>>,
    /// A checkpoint staged at `position` by the worker itself (its last,
    /// at a stop): the writer names it.
    checkpoint: Option<u64>,
    active_instances: u64,
    pending_timers: u64,
    /// The worker's last report: it has applied everything and stops.
    last: bool,
}

/// The running core.
pub struct Core {
    /// Shared by every caller without a lock (`Sender` is `Sync`): no
    /// caller, delivery's idle-priority threads included, can hold up
    /// another's send by being descheduled inside one.
    ops: Sender<Op>,
    /// What the workers publish for `/metrics`.
    published: Arc<Published>,
    versions: Arc<Versions>,
    /// One deploy at a time.
    deploying: tokio::sync::Mutex<()>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    /// The writer's busy time ([`Core::writer_busy`]).
    writer_busy: Arc<AtomicU64>,
    storage: Arc<dyn Storage>,
    seq: watch::Receiver<u64>,
    clock: Arc<AtomicI64>,
    mode: ClockMode,
    max_clock_jump_ms: i64,
    partitions: u32,
    stopping: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What the workers publish for `/metrics`; only read elsewhere.
struct Published {
    /// Per partition, per journey: active instances.
    active: Vec<Mutex<ActiveByJourney>>,
    /// Per partition, the wall time of its last checkpoint (ms).
    checkpointed_at: Vec<AtomicI64>,
    /// Whether a checkpoint is being taken or written: one at a time, from
    /// a worker's encoding to the checkpointer's staging, so at most one
    /// checkpoint's bytes are in memory (tens of megabytes a partition at
    /// a million customers; eight queued after a replay were the restarted
    /// service's largest transient).
    checkpointing: AtomicBool,
}

/// A partition's checkpoint on its way to the checkpointer thread.
struct Staged {
    partition: u32,
    position: u64,
    bytes: Vec<u8>,
}

/// What a start reports about the replay.
pub struct Started {
    pub core: Arc<Core>,
    /// Entries replayed over every partition.
    pub replayed: u64,
    /// Damaged journal records dropped, with the reason.
    pub dropped: Vec<String>,
}

/// The clock value meaning "none yet".
const NO_CLOCK: i64 = i64::MIN;

impl Core {
    /// Restores every partition from its checkpoint, replays its journal
    /// (writing only the actions the outbox lacks), and starts the threads.
    /// Returns once every partition has caught up: the service is ready.
    pub fn start(
        versions: Arc<Versions>,
        storage: Arc<dyn Storage>,
        config: CoreConfig,
    ) -> Result<Started, StorageError> {
        let first = versions
            .first()
            .ok_or_else(|| {
                StorageError("the data directory holds no version of the journeys".into())
            })?
            .number;
        let (ops_tx, ops_rx) = mpsc::channel::<Op>();
        let (seq_tx, seq_rx) = watch::channel(storage.last_seq()?);
        let clock = Arc::new(AtomicI64::new(storage.clock()?.unwrap_or(NO_CLOCK)));
        let next_due: Arc<Vec<AtomicI64>> = Arc::new(
            (0..config.partitions)
                .map(|_| AtomicI64::new(i64::MAX))
                .collect(),
        );
        let ticking: Arc<Vec<AtomicBool>> = Arc::new(
            (0..config.partitions)
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        let published = Arc::new(Published {
            active: (0..config.partitions)
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            checkpointed_at: (0..config.partitions)
                .map(|_| AtomicI64::new(wall_ms()))
                .collect(),
            checkpointing: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        let mut threads = Vec::new();
        // The checkpointer: stops once every worker has let go of it.
        let (staged_tx, staged_rx) = mpsc::channel::<Staged>();
        {
            let (storage, ops, published) = (storage.clone(), ops_tx.clone(), published.clone());
            let handle = std::thread::Builder::new()
                .name("journey-checkpointer".into())
                .spawn(move || checkpointer(storage.as_ref(), staged_rx, ops, &published))
                .map_err(|e| StorageError(format!("cannot start the checkpointer thread: {e}")))?;
            threads.push(handle);
        }
        let (recovered_tx, recovered_rx) = mpsc::channel::<Result<Recovered, String>>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        // Each partition reads and restores its own checkpoint, on its own
        // thread: as many at once as there are cores (each holds its
        // checkpoint's bytes while it decodes them).
        let permits = Arc::new(Permits::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ));
        for p in 0..config.partitions {
            // Every hand-over carries at least one entry, so the backlog's
            // bound is reached before the channel's.
            let (tx, rx) = mpsc::sync_channel::<ToWorker>(config.partition_queue.max(1));
            let backlog = Arc::new(Backlog::new(config.partition_queue));
            workers.push((tx, backlog.clone()));
            let seed = Seed {
                partition: p,
                versions: versions.clone(),
                first,
                storage: storage.clone(),
                permits: permits.clone(),
                ops: ops_tx.clone(),
                config: config.clone(),
                next_due: next_due.clone(),
                ticking: ticking.clone(),
                published: published.clone(),
                checkpointer: staged_tx.clone(),
                backlog,
            };
            let (recovered, ready) = (recovered_tx.clone(), ready_tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("journey-partition-{p}"))
                .spawn(move || seed.run(rx, recovered, ready))
                .map_err(|e| StorageError(format!("cannot start a partition thread: {e}")))?;
            threads.push(handle);
        }
        drop(recovered_tx);
        drop(staged_tx);
        let mut next_position = vec![0; config.partitions as usize];
        let mut dropped = Vec::new();
        let mut replayed = 0;
        for _ in 0..config.partitions {
            match recovered_rx.recv() {
                Ok(Ok(r)) => {
                    next_position[r.partition as usize] = r.next_position;
                    replayed += r.replaying;
                    dropped.extend(r.dropped);
                }
                Ok(Err(why)) => return Err(StorageError(why)),
                Err(_) => return Err(StorageError("a partition stopped while restoring".into())),
            }
        }
        drop(ready_tx);
        let writer = Writer {
            storage: storage.clone(),
            ops: ops_rx,
            busy_ns: Arc::new(AtomicU64::new(0)),
            workers,
            next_position,
            last_at: vec![NO_CLOCK; config.partitions as usize],
            clock: clock.clone(),
            mode: config.clock,
            pending: Arc::new(AtomicUsize::new(0)),
            seq: seq_tx,
            barriers: Vec::new(),
            applied: vec![0; config.partitions as usize],
            states: vec![(0, 0); config.partitions as usize],
            retention_ms: i64::try_from(config.action_retention.as_millis()).unwrap_or(i64::MAX),
            journal_retention_ms: i64::try_from(config.journal_retention.as_millis())
                .unwrap_or(i64::MAX),
            pruned_at: None,
        };
        let pending = writer.pending.clone();
        let writer_busy = writer.busy_ns.clone();
        let handle = std::thread::Builder::new()
            .name("journey-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StorageError(format!("cannot start the writer thread: {e}")))?;
        threads.push(handle);
        for _ in 0..config.partitions {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(why)) => return Err(StorageError(why)),
                Err(_) => return Err(StorageError("a partition stopped while replaying".into())),
            }
        }
        let stopping = Arc::new(AtomicBool::new(false));
        if config.clock == ClockMode::Wall {
            let ops = ops_tx.clone();
            let stop = stopping.clone();
            let handle = std::thread::Builder::new()
                .name("journey-ticker".into())
                .spawn(move || ticker(ops, next_due, ticking, stop))
                .map_err(|e| StorageError(format!("cannot start the ticker thread: {e}")))?;
            threads.push(handle);
        }
        let core = Arc::new(Core {
            ops: ops_tx,
            published,
            versions,
            deploying: tokio::sync::Mutex::new(()),
            pending,
            max_pending: config.max_pending,
            writer_busy,
            storage,
            seq: seq_rx,
            clock,
            mode: config.clock,
            max_clock_jump_ms: config.max_clock_jump_ms,
            partitions: config.partitions,
            stopping,
            threads: Mutex::new(threads),
        });
        Ok(Started {
            core,
            replayed,
            dropped,
        })
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Active instances per journey (by name, every version of it), over
    /// every partition, sorted by name.
    pub fn active_instances(&self) -> Vec<(Arc<str>, u64)> {
        let mut sums: std::collections::BTreeMap<Arc<str>, u64> = Default::default();
        for partition in &self.published.active {
            if let Ok(active) = partition.lock() {
                for (name, n) in active.iter() {
                    *sums.entry(name.clone()).or_default() += n;
                }
            }
        }
        sums.into_iter().collect()
    }

    /// The versions of the journeys this deployment has run.
    pub fn versions(&self) -> &Arc<Versions> {
        &self.versions
    }

    /// Deploys `sources` as the next version (SERVICE.md §8): checks it,
    /// plans what happens to the customers inside each journey, keeps the
    /// earlier versions they stay on, journals the deploy in every
    /// partition, and resolves once every partition has applied it. A
    /// project with errors, or one beside which a kept journey no longer
    /// compiles, is refused and nothing is journaled; an unchanged one is
    /// not deployed again.
    pub async fn deploy(&self, sources: SourceMap) -> Result<Deployed, DeployError> {
        let _one = self.deploying.lock().await;
        let planned = match self.versions.plan_deploy(sources) {
            Ok(planned) => planned,
            Err(same) => return same,
        };
        let mut inside = Vec::new();
        for p in 0..self.partitions {
            let next = planned.next.clone();
            let number = planned.live;
            let kept = self
                .inspect_partition(p, move |runtime| runtime.kept_after(&next, number))
                .await
                .map_err(|e| DeployError::Unavailable(ingest_error_text(e)))?;
            inside.extend(kept.into_iter().map(|(name, v)| (name.to_string(), v)));
        }
        let next = self.versions.next_version(planned, inside, wall_ms())?;
        let version = next.number;
        let bytes = next.record.encode();
        self.versions
            .insert_compiled(version, next.record, next.program);
        let (ack, done) = oneshot::channel();
        self.send(Op::Deploy {
            version,
            record: bytes,
            ack,
        })
        .map_err(|e| DeployError::Unavailable(ingest_error_text(e)))?;
        match done.await {
            Ok(Ok(_)) => Ok(next.deployed),
            Ok(Err(why)) => Err(DeployError::Unavailable(why)),
            Err(_) => Err(DeployError::Unavailable("the service has stopped".into())),
        }
    }

    /// Seconds since the oldest partition checkpoint (or start).
    pub fn checkpoint_age_s(&self) -> f64 {
        let oldest = self
            .published
            .checkpointed_at
            .iter()
            .map(|t| t.load(Ordering::Acquire))
            .min()
            .unwrap_or_else(wall_ms);
        (wall_ms() - oldest).max(0) as f64 / 1_000.0
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The deployment's event clock (`--clock events`), once an event set it.
    pub fn clock(&self) -> Option<i64> {
        Some(self.clock.load(Ordering::Acquire)).filter(|&c| c != NO_CLOCK)
    }

    pub fn max_clock_jump_ms(&self) -> i64 {
        self.max_clock_jump_ms
    }

    /// Messages accepted and not yet durable.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// A receiver of the newest committed `seq`, for long polls.
    pub fn seq(&self) -> watch::Receiver<u64> {
        self.seq.clone()
    }

    fn send(&self, op: Op) -> Result<(), IngestError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(IngestError::Unavailable("the service is stopping".into()));
        }
        self.ops
            .send(op)
            .map_err(|_| IngestError::Unavailable("the service has stopped".into()))
    }

    /// How long the writer has spent journaling and committing since the
    /// start (from taking a first op to its commit's end; the rest of the
    /// time it waited for work). Delivery reads it to let ingest go first
    /// (`delivery::engine`).
    pub fn writer_busy(&self) -> Duration {
        Duration::from_nanos(self.writer_busy.load(Ordering::Relaxed))
    }

    /// Journals the messages, all or nothing; resolves once they are
    /// durable.
    pub async fn append(&self, messages: Vec<Incoming>) -> Result<(), IngestError> {
        if messages.is_empty() {
            return Ok(());
        }
        let n = messages.len();
        if self.pending.fetch_add(n, Ordering::AcqRel) + n > self.max_pending {
            self.pending.fetch_sub(n, Ordering::AcqRel);
            return Err(IngestError::Overloaded);
        }
        let (ack, done) = oneshot::channel();
        if let Err(e) = self.send(Op::Append { messages, ack }) {
            self.pending.fetch_sub(n, Ordering::AcqRel);
            return Err(e);
        }
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(IngestError::Unavailable(why)),
            Err(_) => Err(IngestError::Unavailable("the service has stopped".into())),
        }
    }

    /// Commits delivery's records with the journal's next transaction (one
    /// stream of fsyncs: see [`super::storage`]); resolves once they are
    /// durable.
    pub async fn record_deliveries(&self, batch: DeliveryBatch) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.send(Op::Deliveries { batch, ack })
            .map_err(|e| match e {
                IngestError::Unavailable(why) => why,
                IngestError::Overloaded => "the service is overloaded".into(),
            })?;
        done.await
            .map_err(|_| "the service has stopped".to_string())?
    }

    /// Moves the deployment clock (`--clock events`): every partition
    /// applies everything journaled before, then advances; resolves once
    /// every resulting action is committed.
    pub async fn advance(&self, to: ClockTo) -> Result<ClockState, IngestError> {
        let (ack, done) = oneshot::channel();
        self.send(Op::Clock { to, ack })?;
        match done.await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(why)) => Err(IngestError::Unavailable(why)),
            Err(_) => Err(IngestError::Unavailable("the service has stopped".into())),
        }
    }

    /// How many partitions the customers are spread over.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Runs `look` on partition `p`'s runtime, after every entry journaled
    /// before the call and without stopping the partition; resolves with
    /// its answer. Nothing is journaled: a look changes nothing.
    pub async fn inspect_partition<T: Send + 'static>(
        &self,
        p: u32,
        look: impl FnOnce(&Runtime) -> T + Send + 'static,
    ) -> Result<T, IngestError> {
        let (answer, answered) = oneshot::channel();
        let look: Inspection = Box::new(move |runtime| {
            let _ = answer.send(look(runtime));
        });
        self.send(Op::Inspect { partition: p, look })?;
        answered
            .await
            .map_err(|_| IngestError::Unavailable("the service has stopped".into()))
    }

    /// Stops taking work, lets every partition apply what is journaled,
    /// commits the outbox and a checkpoint of every partition, and joins
    /// the threads.
    pub async fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ack, done) = oneshot::channel();
        let sent = self.ops.send(Op::Stop { ack }).is_ok();
        if sent {
            let _ = done.await;
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// What [`Core::deploy`] did.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// The version running now.
    pub version: u32,
    /// False when the project was the running version already.
    pub deployed: bool,
    /// Per journey, what happened to the customers inside it.
    pub plan: Vec<(String, crate::compile::deploy::Fate)>,
    /// The earlier versions kept for the customers inside them.
    pub kept: Vec<(String, u32)>,
}

/// Why [`Core::deploy`] did not deploy.
#[derive(Debug)]
pub enum DeployError {
    /// The project (or a kept journey beside it) has errors, listed.
    Invalid(String),
    /// The service is stopping, or failed.
    Unavailable(String),
}

fn ingest_error_text(e: IngestError) -> String {
    match e {
        IngestError::Overloaded => "the service is overloaded".into(),
        IngestError::Unavailable(why) => why,
    }
}

/// A partition's runtime takes every stamped entry: ingest bounds the
/// deployment's one clock (as simulate bounds its one clock), and a
/// partition's own clock may lag it by any amount.
fn partition_options() -> RuntimeOptions {
    RuntimeOptions {
        max_clock_jump_ms: i64::MAX,
    }
}

/// What the process's allocator does to give back memory freed on the
/// calling thread (see [`on_restored`]).
static RELEASE_FREE_MEMORY: OnceLock<fn()> = OnceLock::new();

/// Sets a function each partition's worker calls on its own thread right
/// after it restored its checkpoint, and again once it has replayed the
/// journal after it: the checkpoint's bytes, the decoder's scratch and the
/// replayed entries are free then, and an allocator that keeps freed
/// pages for reuse (mimalloc purges them only after a delay) can give them
/// back before the service reports ready. The `journey` binary passes
/// mimalloc's `mi_collect(true)`: 940 MB resident after a restart at 1M
/// customers without it, about 800 MB with it (docs/performance.md). The
/// first call wins; an embedder that sets none loses nothing.
pub fn on_restored(release: fn()) {
    let _ = RELEASE_FREE_MEMORY.set(release);
}

fn release_free_memory() {
    if let Some(release) = RELEASE_FREE_MEMORY.get() {
        release();
    }
}

fn program_of(versions: &Versions, version: u32) -> Result<Arc<Program>, StorageError> {
    versions.program(version).map_err(|why| {
        StorageError(format!(
            "version {version} of the journeys does not compile: {why}"
        ))
    })
}

/// A checkpoint: `V`, the version of the journeys its partition ran (four
/// bytes, little-endian), then the runtime's snapshot in the binary
/// encoding ([`Snapshot::to_binary`]).
pub fn encode_checkpoint(version: u32, runtime: &Runtime) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(1 << 20);
    out.push(b'V');
    out.extend_from_slice(&version.to_le_bytes());
    runtime.snapshot_ref().write_binary(out)
}

/// Restores a checkpoint ([`encode_checkpoint`]) over its version's
/// program. A checkpoint of a build that wrote JSON snapshots reads too
/// ([`Snapshot::decode`]); the next one is binary.
pub fn restore_checkpoint(
    versions: &Versions,
    bytes: &[u8],
) -> Result<(u32, Runtime), StorageError> {
    let (version, snapshot) = match bytes {
        [b'V', a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]), rest),
        _ => {
            return Err(StorageError(
                "a checkpoint does not read: no version".into(),
            ));
        }
    };
    let program = program_of(versions, version)?;
    let snapshot: Snapshot<MemStore> = Snapshot::decode(snapshot)
        .map_err(|e| StorageError(format!("a checkpoint is refused: {e}")))?;
    Runtime::restore(program, snapshot)
        .map(|r| (version, r.with_options(partition_options())))
        .map_err(|e| StorageError(format!("a checkpoint is refused: {e}")))
}

/// One partition's runtime and the version of the journeys it runs: what
/// a journal entry is applied to, the same way live and in a replay,
/// whichever backend keeps the journal.
pub struct Partition {
    partition: u32,
    pub runtime: Runtime,
    version: u32,
    versions: Arc<Versions>,
}

impl Partition {
    /// Partition `partition` from its checkpoint ([`encode_checkpoint`]),
    /// or fresh at version `first` when it has none.
    pub fn restore(
        partition: u32,
        versions: &Arc<Versions>,
        first: u32,
        dedup_key: &[u8; 16],
        checkpoint: Option<&[u8]>,
    ) -> Result<Partition, StorageError> {
        let (version, runtime) = match checkpoint {
            Some(bytes) => restore_checkpoint(versions, bytes)?,
            None => {
                let store = MemStore::with_dedup(DedupConfig {
                    key: *dedup_key,
                    ..DedupConfig::default()
                })
                .map_err(|e| StorageError(e.to_string()))?;
                let program = program_of(versions, first)?;
                let runtime = Runtime::with_store(program, store).with_options(partition_options());
                (first, runtime)
            }
        };
        Ok(Partition {
            partition,
            runtime,
            version,
            versions: versions.clone(),
        })
    }

    /// Applies one journal entry; `emit` gets its actions in order.
    pub fn apply(&mut self, entry: &Entry, emit: &mut dyn FnMut(Action)) {
        match entry {
            Entry::Message { at, line } => match parse_line(line, 1) {
                Ok(raw) => {
                    let payload = Payload::of(&raw);
                    let mut ev = event(&raw, &payload);
                    ev.timestamp_ms = *at;
                    // Refused times are counted in the runtime's stats.
                    let _ = self.runtime.ingest(&ev, &mut |a| emit(a));
                }
                Err(_) => {
                    // Validated before it was journaled: only a damaged
                    // record gets here, and it changes nothing.
                }
            },
            Entry::Tick { to } => self.runtime.advance_to(*to, &mut |a| emit(a)),
            Entry::End => self.runtime.finish(&mut |a| emit(a)),
            Entry::Deploy { version } => self.deploy(*version),
        }
    }

    /// The version of the journeys the partition runs.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The partition's checkpoint ([`encode_checkpoint`]).
    pub fn checkpoint(&self) -> Result<Vec<u8>, String> {
        encode_checkpoint(self.version, &self.runtime)
    }

    /// Moves the partition's customers to version `version`. A version
    /// that does not compile cannot happen (a deploy compiles it before it
    /// is journaled); should one, the partition stays on its version and
    /// says so, the same way in every replay.
    fn deploy(&mut self, version: u32) {
        if version <= self.version {
            return;
        }
        match self.versions.program(version) {
            Ok(program) => {
                self.runtime.redeploy(program, self.version);
                self.version = version;
            }
            Err(why) => eprintln!(
                "journey serve: partition {} stays on version {}: version {version} does not \
                 compile: {why}",
                self.partition, self.version
            ),
        }
    }
}

/// Writes each checkpoint a worker hands it to its file, then tells the
/// writer to name it; stops when every worker has let go. A checkpoint
/// that cannot be written is reported and skipped: the partition's journal
/// stays until a later one is.
fn checkpointer(
    storage: &dyn Storage,
    staged: Receiver<Staged>,
    ops: Sender<Op>,
    published: &Published,
) {
    while let Ok(Staged {
        partition,
        position,
        bytes,
    }) = staged.recv()
    {
        let result = storage.stage_checkpoint(partition, position, &bytes);
        drop(bytes);
        published.checkpointing.store(false, Ordering::Release);
        if let Err(e) = result {
            eprintln!(
                "journey serve: partition {partition}'s checkpoint at position {position} was \
                 not written, its journal is kept: {e}"
            );
            continue;
        }
        if ops
            .send(Op::Checkpointed {
                partition,
                position,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Wall-clock milliseconds, read only by the shell (the writer, the
/// ticker, ingest and logs), never by a runtime.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `--clock wall`: asks a partition to fire its timers when the wall
/// clock reaches the earliest (one tick in flight per partition).
fn ticker(
    ops: Sender<Op>,
    next_due: Arc<Vec<AtomicI64>>,
    ticking: Arc<Vec<AtomicBool>>,
    stopping: Arc<AtomicBool>,
) {
    while !stopping.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        let now = wall_ms();
        for (p, due) in next_due.iter().enumerate() {
            let due = due.load(Ordering::Acquire);
            if due <= now && !ticking[p].swap(true, Ordering::AcqRel) {
                let lag = (now - due) as f64 / 1_000.0;
                ::metrics::gauge!(metrics::TIMER_LAG).set(lag);
                let op = Op::Tick {
                    partition: p as u32,
                    to: now,
                };
                if ops.send(op).is_err() {
                    return;
                }
            }
        }
    }
}

/// A clock advance waiting for each partition to reach its position.
type Barrier = (Vec<u64>, oneshot::Sender<Result<ClockState, String>>);

struct Writer {
    storage: Arc<dyn Storage>,
    ops: Receiver<Op>,
    /// Nanoseconds spent between taking a first op and finishing its
    /// commit, since the start ([`Core::writer_busy`]).
    busy_ns: Arc<AtomicU64>,
    workers: Vec<(SyncSender<ToWorker>, Arc<Backlog>)>,
    next_position: Vec<u64>,
    /// Per partition, the instant of its newest entry (`--clock wall`).
    last_at: Vec<i64>,
    clock: Arc<AtomicI64>,
    mode: ClockMode,
    pending: Arc<AtomicUsize>,
    seq: watch::Sender<u64>,
    /// Clock advances waiting for every partition to reach a position.
    barriers: Vec<Barrier>,
    /// Per partition, the newest position whose actions are committed.
    applied: Vec<u64>,
    /// Per partition, its active instances and pending timers.
    states: Vec<(u64, u64)>,
    /// Actions older than this leave the feed.
    retention_ms: i64,
    /// Journal covered by a checkpoint stays this long.
    journal_retention_ms: i64,
    /// When the writer last dropped old actions.
    pruned_at: Option<Instant>,
}

/// Ops taken into one transaction, at most.
const GROUP: usize = 4_096;

impl Writer {
    fn run(mut self) {
        let mut stop: Option<oneshot::Sender<()>> = None;
        while let Ok(first) = self.ops.recv() {
            let begun = Instant::now();
            let mut ops = vec![first];
            while ops.len() < GROUP {
                match self.ops.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit(ops, &mut stop) {
                eprintln!("journey serve: the store failed, stopping: {e}");
                std::process::exit(1);
            }
            let took = u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_ns.fetch_add(took, Ordering::Relaxed);
            if let Some(ack) = stop.take() {
                // Every worker has applied and reported everything: done.
                let _ = ack.send(());
                return;
            }
        }
    }

    fn commit(
        &mut self,
        ops: Vec<Op>,
        stop: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        let mut acks = Vec::new();
        let mut forward: Vec<(u32, u64, Entry)> = Vec::new();
        let mut accepted = 0;
        let mut barriers = Vec::new();
        let mut stopping = None;
        let mut inspections = Vec::new();
        for op in ops {
            match op {
                Op::Append { messages, ack } => {
                    accepted += messages.len();
                    for m in messages {
                        let p = partition_of(&m.user_key, self.workers.len() as u32);
                        let at = self.stamp(p, m.timestamp_ms);
                        forward.push((p, 0, Entry::Message { at, line: m.line }));
                    }
                    acks.push(ack);
                }
                Op::Clock { to, ack } => {
                    let entry = match to {
                        ClockTo::At(t) => {
                            let t = t.max(self.clock.load(Ordering::Acquire));
                            self.clock.store(t, Ordering::Release);
                            Entry::Tick { to: t }
                        }
                        ClockTo::End => Entry::End,
                    };
                    // With event time, a partition's clock is its own
                    // customers' latest event: before the input ends, each
                    // is moved to the latest of all, so that the recurring
                    // occurrences up to it fire there too, as in one
                    // runtime (LANGUAGE.md §4.4).
                    let clock = self.clock.load(Ordering::Acquire);
                    let catch_up = (matches!(entry, Entry::End)
                        && matches!(self.mode, ClockMode::Events)
                        && clock != NO_CLOCK)
                        .then_some(Entry::Tick { to: clock });
                    let mut positions = Vec::new();
                    for p in 0..self.workers.len() as u32 {
                        if let Some(tick) = &catch_up {
                            forward.push((p, 0, tick.clone()));
                        }
                        positions.push(self.next_position[p as usize] + forward_count(&forward, p));
                        forward.push((p, 0, entry.clone()));
                    }
                    barriers.push((positions, ack));
                }
                Op::Tick { partition, to } => {
                    let at = self.stamp(partition, to);
                    forward.push((partition, 0, Entry::Tick { to: at }));
                }
                Op::Applied(a) => {
                    let p = a.partition as usize;
                    self.states[p] = (a.active_instances, a.pending_timers);
                    if let Some(lines) = a.lines {
                        batch.actions.push((a.partition, a.position, lines));
                    }
                    if let Some(position) = a.checkpoint {
                        batch.checkpoints.push((a.partition, position));
                        batch.truncate.push((a.partition, position + 1));
                    }
                    self.applied[p] = self.applied[p].max(a.position);
                }
                Op::Checkpointed {
                    partition,
                    position,
                } => {
                    batch.checkpoints.push((partition, position));
                    // Nothing before a checkpoint is read again.
                    batch.truncate.push((partition, position + 1));
                }
                Op::Inspect { partition, look } => inspections.push((partition, look)),
                Op::Deploy {
                    version,
                    record,
                    ack,
                } => {
                    batch.versions.push((version, record));
                    let mut positions = Vec::new();
                    for p in 0..self.workers.len() as u32 {
                        positions.push(self.next_position[p as usize] + forward_count(&forward, p));
                        forward.push((p, 0, Entry::Deploy { version }));
                    }
                    barriers.push((positions, ack));
                }
                Op::Deliveries {
                    batch: records,
                    ack,
                } => {
                    batch.deliveries.merge(records);
                    acks.push(ack);
                }
                Op::Stop { ack } => stopping = Some(ack),
            }
        }
        for (p, position, entry) in &mut forward {
            *position = self.next_position[*p as usize];
            self.next_position[*p as usize] += 1;
            batch.entries.push((*p, *position, entry.clone()));
        }
        if self.mode == ClockMode::Events {
            batch.clock = Some(self.clock.load(Ordering::Acquire)).filter(|&c| c != NO_CLOCK);
        }
        let now = wall_ms();
        batch.committed_ms = now;
        batch.journal_kept_after = now.saturating_sub(self.journal_retention_ms);
        // Old actions leave the feed at most once a second.
        if self
            .pruned_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            self.pruned_at = Some(Instant::now());
            batch.prune_before = Some(now.saturating_sub(self.retention_ms));
        }
        if !batch.is_empty() {
            let seq = self.storage.write(batch)?;
            self.seq.send_replace(seq);
        }
        self.pending.fetch_sub(accepted, Ordering::AcqRel);
        for ack in acks {
            let _ = ack.send(Ok(()));
        }
        self.barriers.extend(barriers);
        let mut per_partition: Vec<Vec<(u64, Entry)>> =
            self.workers.iter().map(|_| Vec::new()).collect();
        for (p, position, entry) in forward {
            per_partition[p as usize].push((position, entry));
        }
        for (p, entries) in per_partition.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let (worker, backlog) = &self.workers[p];
            // Waits while the partition is behind: backpressure to ingest.
            backlog.add(entries.len());
            if worker.send(ToWorker::Entries(entries)).is_err() {
                return Err(StorageError(format!("partition {p} stopped")));
            }
        }
        self.forward_inspections(inspections);
        self.answer_barriers();
        if let Some(ack) = stopping {
            self.drain_and_stop(ack, stop)?;
        }
        Ok(())
    }

    /// Hands each look to its partition's worker, after the entries
    /// forwarded before it. One for a partition that does not exist, or
    /// has stopped, is dropped: its caller hears so.
    fn forward_inspections(&mut self, inspections: Vec<(u32, Inspection)>) {
        for (p, look) in inspections {
            if let Some((worker, _)) = self.workers.get(p as usize) {
                let _ = worker.send(ToWorker::Inspect(look));
            }
        }
    }

    /// The instant an entry of partition `p` stamped `timestamp` takes
    /// effect (§3).
    fn stamp(&mut self, p: u32, timestamp: i64) -> i64 {
        match self.mode {
            ClockMode::Events => {
                let at = timestamp.max(self.clock.load(Ordering::Acquire));
                self.clock.store(at, Ordering::Release);
                at
            }
            ClockMode::Wall => {
                let at = wall_ms().max(self.last_at[p as usize]);
                self.last_at[p as usize] = at;
                at
            }
        }
    }

    fn answer_barriers(&mut self) {
        let applied = &self.applied;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.barriers)
            .into_iter()
            .partition(|(positions, _)| {
                positions
                    .iter()
                    .zip(applied)
                    .all(|(want, have)| have >= want)
            });
        self.barriers = waiting;
        let state = ClockState {
            now: Some(self.clock.load(Ordering::Acquire)).filter(|&c| c != NO_CLOCK),
            active_instances: self.states.iter().map(|s| s.0).sum(),
            pending_timers: self.states.iter().map(|s| s.1).sum(),
        };
        for (_, ack) in done {
            let _ = ack.send(Ok(state));
        }
    }

    /// Shutdown: ask every worker for a final checkpoint after what it has,
    /// and commit what they report until each has reported it.
    fn drain_and_stop(
        &mut self,
        ack: oneshot::Sender<()>,
        stop: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), StorageError> {
        let workers = std::mem::take(&mut self.workers);
        drop(workers); // each worker finishes its queue, checkpoints, and reports Done
        let mut open = self.applied.len();
        let mut recorded = Vec::new();
        let mut batch = WriteBatch {
            // Retention counts from here: a batch stamped 0 would leave the
            // feed at the next start.
            committed_ms: wall_ms(),
            journal_kept_after: wall_ms().saturating_sub(self.journal_retention_ms),
            ..WriteBatch::default()
        };
        while open > 0 {
            match self.ops.recv() {
                Ok(Op::Applied(a)) => {
                    if a.last {
                        open -= 1;
                    }
                    if let Some(lines) = a.lines {
                        batch.actions.push((a.partition, a.position, lines));
                    }
                    if let Some(position) = a.checkpoint {
                        batch.checkpoints.push((a.partition, position));
                        batch.truncate.push((a.partition, position + 1));
                    }
                }
                Ok(Op::Checkpointed {
                    partition,
                    position,
                }) => {
                    batch.checkpoints.push((partition, position));
                    batch.truncate.push((partition, position + 1));
                }
                Ok(Op::Append { ack, .. }) => {
                    let _ = ack.send(Err("the service is stopping".into()));
                }
                Ok(Op::Deliveries {
                    batch: records,
                    ack,
                }) => {
                    batch.deliveries.merge(records);
                    recorded.push(ack);
                }
                Ok(Op::Clock { ack, .. } | Op::Deploy { ack, .. }) => {
                    let _ = ack.send(Err("the service is stopping".into()));
                }
                // Dropped unanswered: the caller hears the service stopped.
                Ok(Op::Tick { .. } | Op::Stop { .. } | Op::Inspect { .. }) => {}
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let seq = self.storage.write(batch)?;
            self.seq.send_replace(seq);
        }
        for ack in recorded {
            let _ = ack.send(Ok(()));
        }
        for (_, ack) in self.barriers.drain(..) {
            let _ = ack.send(Err("the service is stopping".into()));
        }
        *stop = Some(ack);
        Ok(())
    }
}

/// How many entries of partition `p` are already waiting in `forward`.
fn forward_count(forward: &[(u32, u64, Entry)], p: u32) -> u64 {
    forward.iter().filter(|(q, _, _)| *q == p).count() as u64
}

/// What a partition's thread starts from: it reads and restores its own
/// partition, then runs as its [`Worker`].
struct Seed {
    partition: u32,
    versions: Arc<Versions>,
    /// The version a partition without a checkpoint starts at.
    first: u32,
    storage: Arc<dyn Storage>,
    permits: Arc<Permits>,
    ops: Sender<Op>,
    config: CoreConfig,
    next_due: Arc<Vec<AtomicI64>>,
    ticking: Arc<Vec<AtomicBool>>,
    published: Arc<Published>,
    checkpointer: Sender<Staged>,
    backlog: Arc<Backlog>,
}

/// What a partition found on disk, for the writer.
struct Recovered {
    partition: u32,
    /// The position its next entry gets.
    next_position: u64,
    /// Journal entries after its checkpoint, to replay.
    replaying: u64,
    /// A damaged record dropped, with the reason.
    dropped: Option<String>,
}

impl Seed {
    fn run(
        self,
        rx: Receiver<ToWorker>,
        recovered: Sender<Result<Recovered, String>>,
        ready: Sender<Result<(), String>>,
    ) {
        let restored = {
            let _permit = self.permits.take();
            let restored = self.restore();
            release_free_memory();
            restored
        };
        let (part, mut recovery) = match restored {
            Ok(restored) => restored,
            Err(e) => {
                let _ = recovered.send(Err(e.0));
                return;
            }
        };
        let last = recovery
            .entries
            .last()
            .map(|(pos, _)| *pos)
            .into_iter()
            .chain(recovery.checkpoint)
            .chain([recovery.applied])
            .max()
            .unwrap_or(0);
        let report = Recovered {
            partition: self.partition,
            next_position: last + 1,
            replaying: recovery.entries.len() as u64,
            dropped: recovery.dropped.take(),
        };
        if recovered.send(Ok(report)).is_err() {
            return;
        }
        // The first checkpoint is `(p + 1) / P` of the way: spread out.
        let share = f64::from(self.partition + 1) / f64::from(self.config.partitions.max(1));
        let worker = Worker {
            partition: self.partition,
            part,
            ops: self.ops,
            applied: recovery.applied,
            since_checkpoint: 0,
            checkpoint_after: ((self.config.checkpoint_entries as f64 * share) as u64).max(1),
            checkpoint_at: Instant::now() + self.config.checkpoint_every.mul_f64(share),
            checkpoint_wanted: false,
            checkpointer: self.checkpointer,
            backlog: Draining(self.backlog),
            storage: self.storage,
            config: self.config,
            next_due: self.next_due,
            ticking: self.ticking,
            published: self.published,
            counters: FxHashMap::default(),
        };
        worker.run(recovery.entries, rx, ready);
    }

    /// The partition's runtime from its checkpoint (or a fresh one), and
    /// what else it restarts from.
    fn restore(&self) -> Result<(Partition, Recovery), StorageError> {
        let mut restored = None;
        let recovery = self.storage.recover(self.partition, &mut |bytes| {
            restored = Some(Partition::restore(
                self.partition,
                &self.versions,
                self.first,
                &self.config.dedup_key,
                Some(bytes),
            )?);
            Ok(())
        })?;
        let partition = match restored {
            Some(restored) => restored,
            None => Partition::restore(
                self.partition,
                &self.versions,
                self.first,
                &self.config.dedup_key,
                None,
            )?,
        };
        Ok((partition, recovery))
    }
}

/// At most so many holders at once (of the cores, while restoring).
struct Permits {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

/// One of [`Permits`], given back when dropped.
struct Permit<'a>(&'a Permits);

impl Permits {
    fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(n.max(1)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn take(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

struct Worker {
    partition: u32,
    part: Partition,
    ops: Sender<Op>,
    /// Positions up to this one have their actions in the outbox already.
    applied: u64,
    /// Entries applied since the last checkpoint; one is due after
    /// `checkpoint_after` of them, or at `checkpoint_at`, or when wanted.
    since_checkpoint: u64,
    checkpoint_after: u64,
    checkpoint_at: Instant,
    checkpoint_wanted: bool,
    checkpointer: Sender<Staged>,
    /// Tells the writer what this worker has applied.
    backlog: Draining,
    storage: Arc<dyn Storage>,
    config: CoreConfig,
    next_due: Arc<Vec<AtomicI64>>,
    ticking: Arc<Vec<AtomicBool>>,
    published: Arc<Published>,
    /// `journey_actions_total` by journey and kind.
    counters: FxHashMap<(Arc<str>, &'static str), ::metrics::Counter>,
}

impl Worker {
    fn run(
        mut self,
        replay: Vec<(u64, Entry)>,
        rx: Receiver<ToWorker>,
        ready: Sender<Result<(), String>>,
    ) {
        let mut last = None;
        for (position, entry) in replay {
            let mut lines = Vec::new();
            if self.apply(position, &entry, &mut lines) {
                self.report(position, Some(lines), false);
            }
            last = Some(position);
        }
        // The replayed entries are free now too.
        release_free_memory();
        let _ = ready.send(Ok(()));
        // A checkpoint after the replay, once ready: the next restart
        // replays nothing of it.
        if let Some(position) = last {
            self.checkpoint_wanted = true;
            self.report(position, None, true);
        }
        let mut last_position = last.unwrap_or(0);
        while let Ok(message) = rx.recv() {
            match message {
                ToWorker::Entries(entries) => {
                    let n = entries.len();
                    let mut lines = Vec::new();
                    for (position, entry) in entries {
                        // Live positions are past what the outbox holds.
                        self.apply(position, &entry, &mut lines);
                        last_position = position;
                    }
                    self.backlog.0.done(n);
                    self.report(last_position, Some(lines), true);
                }
                ToWorker::Inspect(look) => look(&self.part.runtime),
            }
        }
        // The writer let go: a last checkpoint, written here (nothing else
        // is left to do), then the last word.
        let checkpoint = (last_position > 0)
            .then(|| self.encode_checkpoint())
            .flatten()
            .and_then(|bytes| {
                match self
                    .storage
                    .stage_checkpoint(self.partition, last_position, &bytes)
                {
                    Ok(()) => Some(last_position),
                    Err(e) => {
                        eprintln!(
                            "journey serve: partition {}'s last checkpoint was not written: {e}",
                            self.partition
                        );
                        None
                    }
                }
            });
        let _ = self.ops.send(Op::Applied(Applied {
            partition: self.partition,
            position: last_position,
            lines: None,
            checkpoint,
            active_instances: 0,
            pending_timers: 0,
            last: true,
        }));
    }

    /// Applies the entry at `position` and adds its actions' lines to
    /// `lines`, unless the outbox holds them already (a replay): whether
    /// it did.
    fn apply(&mut self, position: u64, entry: &Entry, lines: &mut Vec<String>) -> bool {
        let mut actions: Vec<Action> = Vec::new();
        self.part.apply(entry, &mut |a| actions.push(a));
        if let Entry::Tick { .. } = entry {
            self.ticking[self.partition as usize].store(false, Ordering::Release);
        }
        let due = self.part.runtime.next_due().unwrap_or(i64::MAX);
        self.next_due[self.partition as usize].store(due, Ordering::Release);
        self.since_checkpoint += 1;
        if position <= self.applied {
            return false;
        }
        for a in &actions {
            self.action_counter(&a.journey, a.kind.name()).increment(1);
        }
        lines.extend(actions.iter().map(Action::to_json_line));
        true
    }

    /// The counter of one journey's actions of one kind, looked up in the
    /// metrics registry (and its labels made) once per worker.
    fn action_counter(&mut self, journey: &Arc<str>, kind: &'static str) -> &::metrics::Counter {
        self.counters
            .entry((journey.clone(), kind))
            .or_insert_with(|| {
                let labels = [("journey", journey.to_string()), ("kind", kind.to_string())];
                ::metrics::counter!(metrics::ACTIONS, &labels)
            })
    }

    /// The partition's checkpoint now; the next is due a whole interval on.
    fn encode_checkpoint(&mut self) -> Option<Vec<u8>> {
        self.since_checkpoint = 0;
        self.checkpoint_after = self.config.checkpoint_entries.max(1);
        self.checkpoint_at = Instant::now() + self.config.checkpoint_every;
        self.checkpoint_wanted = false;
        self.published.checkpointed_at[self.partition as usize].store(wall_ms(), Ordering::Release);
        match self.part.checkpoint() {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!(
                    "journey serve: partition {}'s checkpoint was not taken: {e}",
                    self.partition
                );
                None
            }
        }
    }

    /// Takes a checkpoint at `position` and hands it to the checkpointer,
    /// when one is due and no other partition is taking its own (else it
    /// is tried again after the next entry).
    fn checkpoint_if_due(&mut self, position: u64) {
        let due = self.checkpoint_wanted
            || self.since_checkpoint >= self.checkpoint_after
            || Instant::now() >= self.checkpoint_at;
        if !due || self.published.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        // The checkpointer lets the next one be taken once this one is
        // written.
        let sent = self.encode_checkpoint().is_some_and(|bytes| {
            self.checkpointer
                .send(Staged {
                    partition: self.partition,
                    position,
                    bytes,
                })
                .is_ok()
        });
        if !sent {
            self.published.checkpointing.store(false, Ordering::Release);
        }
    }

    /// Reports the entries up to `position` applied (with their actions,
    /// unless the outbox has them); then, if `live`, takes a checkpoint
    /// when one is due.
    fn report(&mut self, position: u64, lines: Option<Vec<String>>, live: bool) {
        let stats = self.part.runtime.stats();
        let per_journey: Vec<(Arc<str>, u64)> = self
            .part
            .runtime
            .program()
            .journeys
            .iter()
            .zip(&stats.journeys)
            .map(|(j, s)| (j.name.clone(), crate::runtime::report::active_instances(s)))
            .collect();
        let active = per_journey.iter().map(|(_, n)| n).sum();
        if let Ok(mut published) = self.published.active[self.partition as usize].lock() {
            *published = per_journey;
        }
        let _ = self.ops.send(Op::Applied(Applied {
            partition: self.partition,
            position,
            lines,
            checkpoint: None,
            active_instances: active,
            pending_timers: self.part.runtime.store().pending_timers() as u64,
            last: false,
        }));
        // After the report: its actions are committed without waiting for
        // the snapshot, and the writer names the checkpoint only after
        // them (the checkpointer's word comes after this one).
        if live {
            self.checkpoint_if_due(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::compile_sources;
    use crate::service::versions::Record;

    fn version(text: &str) -> Record {
        let mut sources = SourceMap::new();
        sources.add("p.journey", text);
        let program = compile_sources(&sources).expect("compiles");
        Record::new(&sources, Vec::new(), 0, &program)
    }

    const V1: &str = "journey ping {\n  trigger signed_up\n  wait 1h\n  send webhook \"ping\"\n}\n";

    /// The writer hands over while the partition has room in entries,
    /// however many hand-overs that is; past the limit it waits until the
    /// worker applies some, and a worker that is gone never keeps it
    /// waiting.
    #[test]
    fn the_backlog_bounds_entries_and_never_outlives_its_worker() {
        let backlog = Arc::new(Backlog::new(10));
        for _ in 0..10 {
            backlog.add(1);
        }
        let writer = {
            let backlog = backlog.clone();
            std::thread::spawn(move || backlog.add(5))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished(), "10 entries wait: the writer waits");
        backlog.done(5);
        writer
            .join()
            .expect("the writer goes on once 5 are applied");
        assert_eq!(*backlog.queued.lock().expect("a count"), 10);
        // A hand-over larger than the limit goes when nothing waits.
        let big = Backlog::new(10);
        big.add(50);
        // The worker goes: the writer stops waiting.
        let writer = {
            let backlog = backlog.clone();
            std::thread::spawn(move || backlog.add(1))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished());
        drop(Draining(backlog));
        writer.join().expect("the writer is let go");
    }

    #[test]
    fn a_version_carries_its_program_exactly() {
        let sources = crate::project::load_paths(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/journeys"
        ))])
        .expect("the example project loads");
        let compiled = compile_sources(&sources).expect("compiles");
        let versions = Versions::default();
        versions.insert(1, Record::new(&sources, Vec::new(), 0, &compiled));
        let carried = versions.program(1).expect("the record's program reads");
        assert_eq!(
            crate::compile::fingerprint(&carried),
            crate::compile::fingerprint(&compiled)
        );
    }

    #[test]
    fn a_checkpoint_is_restored_over_its_own_version_only() {
        let versions = Versions::default();
        versions.insert(1, version(V1));
        versions.insert(2, version(&V1.replace("1h", "2h")));
        let program = versions.program(1).expect("version 1 compiles");
        let runtime = Runtime::new(program);
        let restore = restore_checkpoint;

        let checkpoint = encode_checkpoint(1, &runtime).expect("encodes");
        assert_eq!(&checkpoint[5..13], crate::runtime::BINARY_SNAPSHOT_MAGIC);
        let (at, _) = restore(&versions, &checkpoint).expect("restores");
        assert_eq!(at, 1);
        // Said to be version 2's: another program, refused with the reason.
        let Err(e) = restore(&versions, &encode_checkpoint(2, &runtime).expect("encodes")) else {
            panic!("restored over another version");
        };
        assert!(e.0.contains("taken over another program"), "{e}");
        // A version the data directory does not hold.
        let Err(e) = restore(&versions, &encode_checkpoint(9, &runtime).expect("encodes")) else {
            panic!("restored over a missing version");
        };
        assert!(
            e.0.contains("version 9 of the journeys is not in the data directory"),
            "{e}"
        );
        // Cut short.
        let Err(e) = restore(&versions, &checkpoint[..checkpoint.len() - 1]) else {
            panic!("restored a checkpoint cut short");
        };
        assert!(
            e.0.starts_with("a checkpoint is refused: the snapshot does not read"),
            "{e}"
        );
        // Not a checkpoint at all.
        let Err(e) = restore(&versions, b"{}") else {
            panic!("restored without a version");
        };
        assert!(e.0.contains("does not read"), "{e}");
    }

    /// A checkpoint of a build that wrote JSON snapshots still restores.
    #[test]
    fn a_json_checkpoint_of_an_earlier_build_restores() {
        let versions = Versions::default();
        versions.insert(1, version(V1));
        let program = versions.program(1).expect("version 1 compiles");
        let json = serde_json::to_vec(&Runtime::new(program).snapshot_ref()).expect("JSON");
        let mut checkpoint = vec![b'V'];
        checkpoint.extend_from_slice(&1u32.to_le_bytes());
        checkpoint.extend_from_slice(&json);
        let (at, _) = restore_checkpoint(&versions, &checkpoint).expect("restores");
        assert_eq!(at, 1);
    }
}
