//! Durable state of a deployment behind one trait ([`Storage`]): per
//! partition a journal of entries and a checkpoint (the runtime's snapshot
//! at a journal position), and one outbox of committed actions numbered by
//! `seq`, with, per partition, the last journal position whose actions it
//! holds. [`RedbStorage`] keeps it in one redb file in the data directory,
//! and the checkpoints' bytes in files beside it
//! ([`super::checkpoint_files`]), written outside the writer's
//! transactions; a scale-out backend is another implementation.
//!
//! Every [`Storage::write`] is one transaction, made durable before it
//! returns: the service batches many requests into one (group commit).
//!
//! Delivery (src/delivery) keeps its own records beside it — per `send` of
//! the outbox its status and every attempt, the sends not yet finished, and
//! how far it has read the outbox — in the same file, written with the
//! journal in the writer's transactions ([`WriteBatch::deliveries`]): one
//! stream of fsyncs on the disk. Measured (`cargo bench --bench delivery`,
//! 8 clients): with delivery committing to a second redb file of its own,
//! the two files' fsyncs waited on each other (one disk, one filesystem
//! journal) and ingest lost 27% of its rate while delivery ran, against
//! 1.6% with delivery's commits not synced at all. A data directory that
//! still has `delivery.redb` (an earlier build's) has its records moved
//! in at open. The outbox's retention never drops a send delivery has not
//! finished, and drops delivery's record of a send with its action, in the
//! same transaction.

use std::path::Path;
use std::sync::Mutex;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use super::checkpoint_files::{CheckpointFiles, HEADER};
use super::delivery::inbox::{make_room, mark_record, shown};
use super::journal::Entry;

/// The data directory's fixed facts, written when it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// [`STORAGE_FORMAT`] of the build that created it.
    pub format: u32,
    pub partitions: u32,
    /// `wall` or `events`.
    pub clock: String,
    /// The secret key of the `messageId` windows (hex), made at creation.
    pub dedup_key: String,
}

/// The storage format this build reads and writes.
pub const STORAGE_FORMAT: u32 = 1;

/// A storage failure: the service cannot go on safely.
#[derive(Debug)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageError {}

fn fail(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

/// Everything one durable write holds.
#[derive(Default)]
pub struct WriteBatch {
    /// Written once, when the directory is created.
    pub meta: Option<Meta>,
    /// The deployment's event clock (`--clock events`).
    pub clock: Option<i64>,
    /// `(version, record)`: a version of the journeys, deployed
    /// ([`super::versions`]).
    pub versions: Vec<(u32, Vec<u8>)>,
    /// `(partition, position, entry)`, positions new and ascending per
    /// partition.
    pub entries: Vec<(u32, u64, Entry)>,
    /// `(partition, position, action lines)`: the actions the entry at that
    /// position produced, in order; each gets the next `seq`, and the
    /// partition's applied position moves there.
    pub actions: Vec<(u32, u64, Vec<String>)>,
    /// `(partition, position)`: the checkpoint staged there
    /// ([`Storage::stage_checkpoint`]) becomes the partition's, unless it
    /// has a later one already; the one it replaces is deleted.
    pub checkpoints: Vec<(u32, u64)>,
    /// `(partition, position)`: journal entries before it are no longer
    /// needed (a checkpoint covers them); they are dropped once
    /// `journal_kept_after` passes the time of this write.
    pub truncate: Vec<(u32, u64)>,
    /// Journal no longer needed since before this (wall-clock ms) is
    /// dropped (`journal.retention` ago; `committed_ms` for none kept).
    pub journal_kept_after: i64,
    /// When the actions are committed (wall-clock ms; for retention).
    pub committed_ms: i64,
    /// Actions committed before this (wall-clock ms) are dropped, at most
    /// [`PRUNE_AT_ONCE`] of them, with delivery's records of them.
    pub prune_before: Option<i64>,
    /// Delivery's records, committed with the rest.
    pub deliveries: DeliveryBatch,
}

/// The most actions one write drops for retention (the rest go with the
/// next), so that no transaction grows with the backlog.
pub const PRUNE_AT_ONCE: usize = 50_000;

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.meta.is_none()
            && self.clock.is_none()
            && self.versions.is_empty()
            && self.entries.is_empty()
            && self.actions.is_empty()
            && self.checkpoints.is_empty()
            && self.truncate.is_empty()
            && self.prune_before.is_none()
            && self.deliveries.is_empty()
    }
}

/// One message kept in a customer's in-app inbox
/// ([`crate::service::delivery::inbox`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRecord {
    pub user_key: String,
    pub message_id: String,
    /// When it was kept (wall-clock ms).
    pub sent_ms: i64,
    /// From when it is no longer shown (wall-clock ms).
    pub expires_ms: i64,
    pub read_ms: Option<i64>,
    pub dismissed_ms: Option<i64>,
    /// What the inbox shows of it (the inbox's JSON; opaque here).
    pub content: Vec<u8>,
}

/// What an app says it did with an inbox message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxMark {
    Read,
    Dismissed,
}

/// Expired inbox messages dropped by one [`Storage::inbox_keep`], at most,
/// besides the customer's own: the sweep keeps pace with what is added.
pub const INBOX_SWEEP: usize = 64;

/// What a partition restarts from (its checkpoint's snapshot was handed to
/// [`Storage::recover`]'s reader).
pub struct Recovery {
    /// The checkpoint's position.
    pub checkpoint: Option<u64>,
    /// The last position whose actions the outbox holds (0: none).
    pub applied: u64,
    /// The journal after the checkpoint, in order.
    pub entries: Vec<(u64, Entry)>,
    /// Entries that could not be read, and everything after them: dropped,
    /// with the reason (a damaged record).
    pub dropped: Option<String>,
}

/// Where a send's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not finished: an attempt is due (at [`Delivery::next_at_ms`], or now).
    Pending,
    /// The provider accepted it (`message.sent`).
    Sent,
    /// Given up (`message.failed`, [`Delivery::error`] says why).
    Failed,
    /// Its channel has no provider (`log`): kept in the outbox and feed only.
    Logged,
}

/// What one attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Sent,
    /// A transient failure: tried again later (or given up when out of
    /// attempts or time).
    Retry,
    /// A permanent failure.
    Failed,
}

/// One attempt of one send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it started (wall-clock ms).
    pub at_ms: i64,
    pub outcome: AttemptOutcome,
    /// What the provider answered, or the error.
    pub response: String,
    pub latency_ms: u64,
}

/// One `send` of the outbox as delivery keeps it, under the send's `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub message_id: String,
    pub user_id: String,
    pub journey: String,
    pub template: String,
    pub channel: String,
    /// The provider the channel was bound to when the send was read.
    pub provider: String,
    pub status: DeliveryStatus,
    /// When the send was committed to the outbox (wall-clock ms).
    pub committed_ms: i64,
    /// When the next attempt is due (wall-clock ms), while pending after a
    /// transient failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at_ms: Option<i64>,
    /// Why it failed, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

/// Delivery's records in one durable write ([`WriteBatch::deliveries`]).
#[derive(Default)]
pub struct DeliveryBatch {
    /// Every outbox `seq` up to this one has been read by delivery (each
    /// send of them has its record).
    pub cursor: Option<u64>,
    /// `(seq, record)`: new or updated records.
    pub records: Vec<(u64, Delivery)>,
    /// In-app sends kept in their customers' inboxes
    /// ([`Storage::inbox_keep`]'s rules).
    pub inbox: Vec<InboxKeep>,
}

/// An in-app send to keep in its customer's inbox, at `now_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct InboxKeep {
    pub record: InboxRecord,
    pub max_per_user: usize,
    pub now_ms: i64,
}

impl DeliveryBatch {
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none() && self.records.is_empty() && self.inbox.is_empty()
    }

    /// Adds `other`'s records and inbox keeps after these (the later of a
    /// `seq`'s wins) and the further cursor.
    pub fn merge(&mut self, mut other: DeliveryBatch) {
        self.cursor = self.cursor.max(other.cursor);
        self.records.append(&mut other.records);
        self.inbox.append(&mut other.inbox);
    }
}

/// The durable state of one deployment.
pub trait Storage: Send + Sync + 'static {
    fn meta(&self) -> Result<Option<Meta>, StorageError>;
    /// The deployment's event clock, when one was written.
    fn clock(&self) -> Result<Option<i64>, StorageError>;
    /// Every version of the journeys deployed, ascending
    /// ([`super::versions`]).
    fn versions(&self) -> Result<Vec<(u32, Vec<u8>)>, StorageError>;
    /// Commits the batch durably, in one transaction; returns the `seq` of
    /// the last action written (the previous last when none).
    fn write(&self, batch: WriteBatch) -> Result<u64, StorageError>;
    /// Makes `snapshot` durable as partition `partition`'s checkpoint at
    /// `position`, without becoming it until a [`Storage::write`] names it
    /// ([`WriteBatch::checkpoints`]). Called beside the writer, not by it:
    /// a checkpoint's megabytes never hold up a write.
    fn stage_checkpoint(
        &self,
        partition: u32,
        position: u64,
        snapshot: &[u8],
    ) -> Result<(), StorageError>;
    /// Reads what partition `p` restarts from, handing its checkpoint's
    /// snapshot to `read` (read once, checked, and not copied again).
    fn recover(
        &self,
        partition: u32,
        read: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<Recovery, StorageError>;
    /// Committed actions with `seq > after`, at most `limit`, ascending.
    fn actions_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, StorageError> {
        Ok(self
            .outbox_after(after, limit)?
            .into_iter()
            .map(|(seq, _, line)| (seq, line))
            .collect())
    }
    /// [`Storage::actions_after`] with when each was committed: `(seq,
    /// committed wall-clock ms, line)`.
    fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, i64, String)>, StorageError>;
    /// The newest `seq` (0 when none).
    fn last_seq(&self) -> Result<u64, StorageError>;
    /// The newest `seq` dropped by retention (0 when none).
    fn pruned_through(&self) -> Result<u64, StorageError>;
    /// The journal entries kept, over every partition.
    fn journal_len(&self) -> Result<u64, StorageError>;
    /// Keeps `record` in its customer's inbox, durably, unless a message of
    /// that id is already kept (a retried delivery changes nothing). In the
    /// same transaction: the customer's expired messages are dropped, then
    /// their oldest until at most `max_per_user` remain ([`make_room`]), and up to
    /// [`INBOX_SWEEP`] expired messages of anyone. Returns whether it was
    /// kept now.
    fn inbox_keep(
        &self,
        record: &InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> Result<bool, StorageError>;
    /// The customer's messages not expired at `now_ms` nor dismissed,
    /// newest first.
    /// Whether the customer's inbox holds the message (expired or not).
    fn inbox_has(&self, user_key: &str, message_id: &str) -> Result<bool, StorageError>;
    fn inbox_list(&self, user_key: &str, now_ms: i64) -> Result<Vec<InboxRecord>, StorageError>;
    /// Marks a message read or dismissed at `at_ms` (the first time counts);
    /// returns it, and whether this mark is new, unless it is absent or
    /// expired.
    fn inbox_mark(
        &self,
        user_key: &str,
        message_id: &str,
        mark: InboxMark,
        at_ms: i64,
    ) -> Result<Option<(InboxRecord, bool)>, StorageError>;

    /// How far delivery has read the outbox; `None` when no delivery has
    /// ever run on this deployment (retention then waits for nothing).
    fn delivery_cursor(&self) -> Result<Option<u64>, StorageError>;
    /// Unfinished sends with `seq > after`, at most `limit`, ascending.
    fn pending_deliveries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, StorageError>;
    /// One customer's sends, newest first, at most `limit`.
    fn deliveries_of(
        &self,
        user_key: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, StorageError>;
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const JOURNAL: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("journal");
/// Checkpoints kept in the store itself, by builds before checkpoint files:
/// read when a partition has no file ([`CHECKPOINT_AT`]), and dropped when
/// one replaces it.
const CHECKPOINTS: TableDefinition<u32, (u64, &[u8])> = TableDefinition::new("checkpoints");
/// Partition → the position of its checkpoint, whose bytes are a file
/// ([`CheckpointFiles`]).
const CHECKPOINT_AT: TableDefinition<u32, u64> = TableDefinition::new("checkpoint_at");
const APPLIED: TableDefinition<u32, u64> = TableDefinition::new("applied");
/// `seq` → (when it was committed, wall-clock ms; the action's line).
const OUTBOX: TableDefinition<u64, (i64, &str)> = TableDefinition::new("outbox");
/// Version → its record ([`super::versions`]).
const VERSIONS: TableDefinition<u32, &[u8]> = TableDefinition::new("versions");
/// `(partition, position)` → when the journal before it stopped being
/// needed (wall-clock ms), until retention drops it.
const COVERED: TableDefinition<(u32, u64), i64> = TableDefinition::new("covered");
/// (user key, message id) → (sent, expires, read, dismissed, content).
type InboxRow<'a> = (i64, i64, Option<i64>, Option<i64>, &'a [u8]);
const INBOX: TableDefinition<(&str, &str), InboxRow<'static>> = TableDefinition::new("inbox");

/// A message's row in [`INBOX`].
fn inbox_row(record: &InboxRecord) -> InboxRow<'_> {
    (
        record.sent_ms,
        record.expires_ms,
        record.read_ms,
        record.dismissed_ms,
        &record.content,
    )
}
/// (expires, user key, message id): the inbox by expiry, for the sweep.
const INBOX_EXPIRY: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("inbox_expiry");

/// The memory redb may keep of the file's pages (its default is 1 GiB,
/// which a service holding a million customers would pay on top of their
/// state). Written pages are appended at the journal's and the outbox's
/// ends, and read back only by a restart and by the feed, near its end:
/// a small cache holds what is read again (docs/performance.md).
pub const CACHE_BYTES: usize = 64 << 20;

/// `cursor` → the outbox `seq` delivery has read through.
const DELIVERY_META: TableDefinition<&str, u64> = TableDefinition::new("delivery_meta");
/// A send's `seq` → its [`Delivery`] (JSON).
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// The `seq`s of the sends not finished.
const DELIVERY_PENDING: TableDefinition<u64, ()> = TableDefinition::new("delivery_pending");
/// (user key, `seq`): each customer's sends.
const DELIVERY_BY_USER: TableDefinition<(&str, u64), ()> = TableDefinition::new("delivery_by_user");

/// The file that held delivery's records before they moved into
/// `journey.redb`; moved in and deleted at open.
const OLD_DELIVERY_FILE: &str = "delivery.redb";

/// [`Storage`] in one redb file, `journey.redb`: the journal, the names of
/// the checkpoints, the outbox and delivery's records.
pub struct RedbStorage {
    db: Database,
    checkpoints: CheckpointFiles,
    /// The newest `seq`, kept by the writer.
    last_seq: Mutex<u64>,
    /// The newest `seq` dropped by retention.
    pruned: Mutex<u64>,
}

impl RedbStorage {
    /// Opens (or creates) `dir/journey.redb`.
    pub fn open(dir: &Path) -> Result<RedbStorage, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create `{}`: {e}", dir.display())))?;
        let path = dir.join("journey.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StorageError(format!("cannot open `{}`: {e}", path.display())))?;
        // Every table exists from the start, so readers never find one missing.
        let txn = db.begin_write().map_err(fail)?;
        {
            txn.open_table(META).map_err(fail)?;
            txn.open_table(JOURNAL).map_err(fail)?;
            txn.open_table(CHECKPOINTS).map_err(fail)?;
            txn.open_table(CHECKPOINT_AT).map_err(fail)?;
            txn.open_table(APPLIED).map_err(fail)?;
            txn.open_table(OUTBOX).map_err(fail)?;
            txn.open_table(VERSIONS).map_err(fail)?;
            txn.open_table(COVERED).map_err(fail)?;
            txn.open_table(INBOX).map_err(fail)?;
            txn.open_table(INBOX_EXPIRY).map_err(fail)?;
            txn.open_table(DELIVERY_META).map_err(fail)?;
            txn.open_table(DELIVERIES).map_err(fail)?;
            txn.open_table(DELIVERY_PENDING).map_err(fail)?;
            txn.open_table(DELIVERY_BY_USER).map_err(fail)?;
        }
        txn.commit().map_err(fail)?;
        move_old_deliveries(&db, dir)?;
        let storage = RedbStorage {
            db,
            checkpoints: CheckpointFiles::open(dir)?,
            last_seq: Mutex::new(0),
            pruned: Mutex::new(0),
        };
        // Files staged and never named (a stop between the two) go.
        let named = storage.named_checkpoints()?;
        storage.checkpoints.sweep(&named)?;
        let last = storage.read_last_seq()?;
        *storage.last_seq.lock().map_err(fail)? = last;
        let pruned = storage
            .meta_value("pruned_through")?
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        *storage.pruned.lock().map_err(fail)? = pruned;
        Ok(storage)
    }

    fn read_last_seq(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(OUTBOX).map_err(fail)?;
        Ok(table.last().map_err(fail)?.map_or(0, |(k, _)| k.value()))
    }

    /// The lowest outbox `seq` retention must keep for delivery: its first
    /// unfinished send, or the first it has not read (`u64::MAX` when no
    /// delivery ever ran), as `meta` and `pending` hold them.
    fn delivery_floor(
        meta: &impl ReadableTable<&'static str, u64>,
        pending: &impl ReadableTable<u64, ()>,
    ) -> Result<u64, StorageError> {
        let Some(cursor) = meta.get("cursor").map_err(fail)?.map(|v| v.value()) else {
            return Ok(u64::MAX);
        };
        let first_pending = pending.first().map_err(fail)?.map(|(k, _)| k.value());
        Ok(first_pending.map_or(cursor.saturating_add(1), |p| {
            p.min(cursor.saturating_add(1))
        }))
    }

    /// `(partition, position)` of every checkpoint file named.
    fn named_checkpoints(&self) -> Result<Vec<(u32, u64)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(CHECKPOINT_AT).map_err(fail)?;
        let mut named = Vec::new();
        for item in table.iter().map_err(fail)? {
            let (p, pos) = item.map_err(fail)?;
            named.push((p.value(), pos.value()));
        }
        Ok(named)
    }

    fn meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(META).map_err(fail)?;
        Ok(table.get(key).map_err(fail)?.map(|v| v.value().to_vec()))
    }
}

impl Storage for RedbStorage {
    fn meta(&self) -> Result<Option<Meta>, StorageError> {
        match self.meta_value("meta")? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError(format!("the data directory's facts do not read: {e}"))),
        }
    }

    fn clock(&self) -> Result<Option<i64>, StorageError> {
        Ok(self
            .meta_value("clock")?
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes))
    }

    fn versions(&self) -> Result<Vec<(u32, Vec<u8>)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(VERSIONS).map_err(fail)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(fail)? {
            let (k, v) = item.map_err(fail)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: WriteBatch) -> Result<u64, StorageError> {
        let mut last_seq = self.last_seq.lock().map_err(fail)?;
        let mut seq = *last_seq;
        let mut pruned = None;
        // Checkpoint files no longer named once this commits.
        let mut unnamed = Vec::new();
        let mut txn = self.db.begin_write().map_err(fail)?;
        txn.set_durability(Durability::Immediate).map_err(fail)?;
        {
            let mut meta = txn.open_table(META).map_err(fail)?;
            if let Some(m) = &batch.meta {
                let bytes = serde_json::to_vec(m).map_err(fail)?;
                meta.insert("meta", bytes.as_slice()).map_err(fail)?;
            }
            let mut versions = txn.open_table(VERSIONS).map_err(fail)?;
            for (version, record) in &batch.versions {
                versions.insert(*version, record.as_slice()).map_err(fail)?;
            }
            if let Some(clock) = batch.clock {
                meta.insert("clock", clock.to_le_bytes().as_slice())
                    .map_err(fail)?;
            }
            let mut journal = txn.open_table(JOURNAL).map_err(fail)?;
            for (p, pos, entry) in &batch.entries {
                journal
                    .insert((*p, *pos), entry.encode().as_slice())
                    .map_err(fail)?;
            }
            let mut covered = txn.open_table(COVERED).map_err(fail)?;
            for &(p, before) in &batch.truncate {
                covered
                    .insert((p, before), batch.committed_ms)
                    .map_err(fail)?;
            }
            // The newest mark per partition past retention: the journal
            // before it goes, and the marks up to it.
            let mut past: Vec<(u32, u64)> = Vec::new();
            for item in covered.iter().map_err(fail)? {
                let (key, at) = item.map_err(fail)?;
                if at.value() <= batch.journal_kept_after {
                    let (p, before) = key.value();
                    match past.iter_mut().find(|(q, _)| *q == p) {
                        Some((_, newest)) => *newest = (*newest).max(before),
                        None => past.push((p, before)),
                    }
                }
            }
            for (p, before) in past {
                journal
                    .retain_in((p, 0)..(p, before), |_, _| false)
                    .map_err(fail)?;
                covered
                    .retain_in((p, 0)..=(p, before), |_, _| false)
                    .map_err(fail)?;
            }
            // Delivery's tables only in the transactions that touch them
            // (most of the journal's do not).
            let mut delivery = if batch.deliveries.is_empty() && batch.prune_before.is_none() {
                None
            } else {
                Some(DeliveryTables {
                    meta: txn.open_table(DELIVERY_META).map_err(fail)?,
                    records: txn.open_table(DELIVERIES).map_err(fail)?,
                    pending: txn.open_table(DELIVERY_PENDING).map_err(fail)?,
                    by_user: txn.open_table(DELIVERY_BY_USER).map_err(fail)?,
                })
            };
            if let Some(delivery) = &mut delivery {
                delivery.write(&batch.deliveries)?;
            }
            if !batch.deliveries.inbox.is_empty() {
                let mut inboxes = InboxTables::open(&txn)?;
                for keep in &batch.deliveries.inbox {
                    inboxes.keep(&keep.record, keep.max_per_user, keep.now_ms)?;
                }
            }
            let mut outbox = txn.open_table(OUTBOX).map_err(fail)?;
            let mut applied = txn.open_table(APPLIED).map_err(fail)?;
            // Each partition's applied position is written once, the last.
            let mut newest: Vec<(u32, u64)> = Vec::new();
            for (p, pos, lines) in &batch.actions {
                for line in lines {
                    seq += 1;
                    outbox
                        .insert(seq, (batch.committed_ms, line.as_str()))
                        .map_err(fail)?;
                }
                match newest.iter_mut().find(|(q, _)| q == p) {
                    Some((_, newest)) => *newest = (*newest).max(*pos),
                    None => newest.push((*p, *pos)),
                }
            }
            for (p, pos) in newest {
                applied.insert(p, pos).map_err(fail)?;
            }
            if let (Some(before), Some(delivery)) = (batch.prune_before, &mut delivery) {
                // After this batch's delivery records: they only raise it.
                let floor = Self::delivery_floor(&delivery.meta, &delivery.pending)?;
                let mut through = None;
                for _ in 0..PRUNE_AT_ONCE {
                    let oldest = outbox
                        .first()
                        .map_err(fail)?
                        .map(|(k, v)| (k.value(), v.value().0));
                    match oldest {
                        Some((s, at)) if at < before && s < floor => {
                            outbox.remove(s).map_err(fail)?;
                            through = Some(s);
                        }
                        _ => break,
                    }
                }
                if let Some(s) = through {
                    meta.insert("pruned_through", s.to_le_bytes().as_slice())
                        .map_err(fail)?;
                    delivery.prune_through(s)?;
                    pruned = Some(s);
                }
            }
            let mut inline = txn.open_table(CHECKPOINTS).map_err(fail)?;
            let mut named = txn.open_table(CHECKPOINT_AT).map_err(fail)?;
            for &(p, pos) in &batch.checkpoints {
                let before = named.get(p).map_err(fail)?.map(|v| v.value());
                match before {
                    // A later one is the partition's already (a live
                    // checkpoint named after the last one of a shutdown).
                    Some(before) if before >= pos => {
                        if before > pos {
                            unnamed.push((p, pos));
                        }
                    }
                    _ => {
                        named.insert(p, pos).map_err(fail)?;
                        inline.remove(p).map_err(fail)?;
                        unnamed.extend(before.map(|before| (p, before)));
                    }
                }
            }
        }
        txn.commit().map_err(fail)?;
        for (p, pos) in unnamed {
            self.checkpoints.remove(p, pos);
        }
        *last_seq = seq;
        if let Some(s) = pruned {
            *self.pruned.lock().map_err(fail)? = s;
        }
        Ok(seq)
    }

    fn stage_checkpoint(
        &self,
        partition: u32,
        position: u64,
        snapshot: &[u8],
    ) -> Result<(), StorageError> {
        self.checkpoints.stage(partition, position, snapshot)
    }

    fn recover(
        &self,
        partition: u32,
        read: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<Recovery, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let named = txn
            .open_table(CHECKPOINT_AT)
            .map_err(fail)?
            .get(partition)
            .map_err(fail)?
            .map(|v| v.value());
        let checkpoint = match named {
            Some(pos) => {
                let file = self.checkpoints.read(partition, pos)?;
                read(&file[HEADER..])?;
                Some(pos)
            }
            None => match txn
                .open_table(CHECKPOINTS)
                .map_err(fail)?
                .get(partition)
                .map_err(fail)?
            {
                Some(v) => {
                    let (pos, bytes) = v.value();
                    read(bytes)?;
                    Some(pos)
                }
                None => None,
            },
        };
        let applied = txn
            .open_table(APPLIED)
            .map_err(fail)?
            .get(partition)
            .map_err(fail)?
            .map_or(0, |v| v.value());
        let from = checkpoint.map_or(0, |pos| pos + 1);
        let journal = txn.open_table(JOURNAL).map_err(fail)?;
        let mut entries = Vec::new();
        let mut dropped = None;
        for item in journal
            .range((partition, from)..=(partition, u64::MAX))
            .map_err(fail)?
        {
            let (key, value) = item.map_err(fail)?;
            let (_, pos) = key.value();
            match Entry::decode(value.value()) {
                Ok(entry) => entries.push((pos, entry)),
                Err(why) => {
                    dropped = Some(format!(
                        "partition {partition}: the journal entry at position {pos} does not \
                         read ({why}); it and every later entry of the partition are dropped"
                    ));
                    break;
                }
            }
        }
        Ok(Recovery {
            checkpoint,
            applied,
            entries,
            dropped,
        })
    }

    fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, i64, String)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let outbox = txn.open_table(OUTBOX).map_err(fail)?;
        let mut out = Vec::new();
        for item in outbox.range(after.saturating_add(1)..).map_err(fail)? {
            if out.len() >= limit {
                break;
            }
            let (seq, row) = item.map_err(fail)?;
            let (at, line) = row.value();
            out.push((seq.value(), at, line.to_string()));
        }
        Ok(out)
    }

    fn last_seq(&self) -> Result<u64, StorageError> {
        Ok(*self.last_seq.lock().map_err(fail)?)
    }

    fn pruned_through(&self) -> Result<u64, StorageError> {
        Ok(*self.pruned.lock().map_err(fail)?)
    }

    fn journal_len(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        txn.open_table(JOURNAL).map_err(fail)?.len().map_err(fail)
    }

    fn inbox_keep(
        &self,
        record: &InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let mut txn = self.db.begin_write().map_err(fail)?;
        txn.set_durability(Durability::Immediate).map_err(fail)?;
        let kept = InboxTables::open(&txn)?.keep(record, max_per_user, now_ms)?;
        txn.commit().map_err(fail)?;
        Ok(kept)
    }

    fn inbox_has(&self, user_key: &str, message_id: &str) -> Result<bool, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let inbox = txn.open_table(INBOX).map_err(fail)?;
        Ok(inbox.get((user_key, message_id)).map_err(fail)?.is_some())
    }

    fn inbox_list(&self, user_key: &str, now_ms: i64) -> Result<Vec<InboxRecord>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let inbox = txn.open_table(INBOX).map_err(fail)?;
        let mut out = Vec::new();
        for item in inbox.range((user_key, "")..).map_err(fail)? {
            let (key, row) = item.map_err(fail)?;
            let (user, id) = key.value();
            if user != user_key {
                break;
            }
            out.push(inbox_record(user, id, row.value()));
        }
        Ok(shown(out, now_ms))
    }

    fn inbox_mark(
        &self,
        user_key: &str,
        message_id: &str,
        mark: InboxMark,
        at_ms: i64,
    ) -> Result<Option<(InboxRecord, bool)>, StorageError> {
        let mut txn = self.db.begin_write().map_err(fail)?;
        txn.set_durability(Durability::Immediate).map_err(fail)?;
        let answer;
        {
            let mut inbox = txn.open_table(INBOX).map_err(fail)?;
            let found = inbox
                .get((user_key, message_id))
                .map_err(fail)?
                .map(|row| inbox_record(user_key, message_id, row.value()));
            answer = match found {
                Some(mut record) => match mark_record(&mut record, mark, at_ms) {
                    None => None,
                    Some(new) => {
                        if new {
                            let row = inbox_row(&record);
                            inbox.insert((user_key, message_id), row).map_err(fail)?;
                        }
                        Some((record, new))
                    }
                },
                None => None,
            };
        }
        txn.commit().map_err(fail)?;
        Ok(answer)
    }

    fn delivery_cursor(&self) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let meta = txn.open_table(DELIVERY_META).map_err(fail)?;
        Ok(meta.get("cursor").map_err(fail)?.map(|v| v.value()))
    }

    fn pending_deliveries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let pending = txn.open_table(DELIVERY_PENDING).map_err(fail)?;
        let records = txn.open_table(DELIVERIES).map_err(fail)?;
        let mut out = Vec::new();
        for item in pending.range(after.saturating_add(1)..).map_err(fail)? {
            if out.len() >= limit {
                break;
            }
            let seq = item.map_err(fail)?.0.value();
            if let Some(bytes) = records.get(seq).map_err(fail)? {
                out.push((seq, decode_delivery(seq, bytes.value())?));
            }
        }
        Ok(out)
    }

    fn deliveries_of(
        &self,
        user_key: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let by_user = txn.open_table(DELIVERY_BY_USER).map_err(fail)?;
        let records = txn.open_table(DELIVERIES).map_err(fail)?;
        let mut out = Vec::new();
        for item in by_user
            .range((user_key, 0)..=(user_key, u64::MAX))
            .map_err(fail)?
            .rev()
        {
            if out.len() >= limit {
                break;
            }
            let seq = item.map_err(fail)?.0.value().1;
            if let Some(bytes) = records.get(seq).map_err(fail)? {
                out.push((seq, decode_delivery(seq, bytes.value())?));
            }
        }
        Ok(out)
    }
}

/// (sent, expires, id) of each message a customer's inbox holds.
fn user_rows(
    inbox: &redb::Table<(&str, &str), InboxRow<'static>>,
    user_key: &str,
) -> Result<Vec<(i64, i64, String)>, StorageError> {
    let mut out = Vec::new();
    for item in inbox.range((user_key, "")..).map_err(fail)? {
        let (key, row) = item.map_err(fail)?;
        let (user, id) = key.value();
        if user != user_key {
            break;
        }
        let (sent, expires, ..) = row.value();
        out.push((sent, expires, id.to_string()));
    }
    Ok(out)
}

fn inbox_record(user_key: &str, message_id: &str, row: InboxRow<'_>) -> InboxRecord {
    let (sent_ms, expires_ms, read_ms, dismissed_ms, content) = row;
    InboxRecord {
        user_key: user_key.to_string(),
        message_id: message_id.to_string(),
        sent_ms,
        expires_ms,
        read_ms,
        dismissed_ms,
        content: content.to_vec(),
    }
}

/// The inbox's tables, open in one write transaction.
struct InboxTables<'t> {
    inbox: redb::Table<'t, (&'static str, &'static str), InboxRow<'static>>,
    expiry: redb::Table<'t, (i64, &'static str, &'static str), ()>,
}

impl<'t> InboxTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<InboxTables<'t>, StorageError> {
        Ok(InboxTables {
            inbox: txn.open_table(INBOX).map_err(fail)?,
            expiry: txn.open_table(INBOX_EXPIRY).map_err(fail)?,
        })
    }

    /// Keeps `record` by [`keep_in`](crate::service::delivery::inbox::keep_in)'s
    /// rules ([`make_room`]), and drops up to [`INBOX_SWEEP`] expired
    /// messages of anyone; whether it was kept now (false: it was there).
    fn keep(
        &mut self,
        record: &InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let (inbox, expiry) = (&mut self.inbox, &mut self.expiry);
        let user = record.user_key.as_str();
        let kept = inbox
            .get((user, record.message_id.as_str()))
            .map_err(fail)?
            .is_none();
        if kept {
            // The expired ones and those past the cap make room.
            let theirs = user_rows(inbox, user)?;
            let rows: Vec<(i64, i64, &str)> = theirs
                .iter()
                .map(|(sent, exp, id)| (*sent, *exp, id.as_str()))
                .collect();
            for i in make_room(&rows, max_per_user, now_ms) {
                let (_, exp, id) = rows[i];
                inbox.remove((user, id)).map_err(fail)?;
                expiry.remove((exp, user, id)).map_err(fail)?;
            }
            inbox
                .insert((user, record.message_id.as_str()), inbox_row(record))
                .map_err(fail)?;
            expiry
                .insert((record.expires_ms, user, record.message_id.as_str()), ())
                .map_err(fail)?;
        }
        let mut swept = Vec::new();
        for item in expiry.iter().map_err(fail)?.take(INBOX_SWEEP) {
            let (key, _) = item.map_err(fail)?;
            let (exp, user, id) = key.value();
            if exp > now_ms {
                break;
            }
            swept.push((exp, user.to_string(), id.to_string()));
        }
        for (exp, user, id) in swept {
            inbox.remove((user.as_str(), id.as_str())).map_err(fail)?;
            expiry
                .remove((exp, user.as_str(), id.as_str()))
                .map_err(fail)?;
        }
        Ok(kept)
    }
}

/// Delivery's tables, open in one write transaction.
struct DeliveryTables<'t> {
    meta: redb::Table<'t, &'static str, u64>,
    records: redb::Table<'t, u64, &'static [u8]>,
    pending: redb::Table<'t, u64, ()>,
    by_user: redb::Table<'t, (&'static str, u64), ()>,
}

impl DeliveryTables<'_> {
    fn write(&mut self, batch: &DeliveryBatch) -> Result<(), StorageError> {
        if let Some(cursor) = batch.cursor {
            let kept = self
                .meta
                .get("cursor")
                .map_err(fail)?
                .map_or(0, |v| v.value());
            self.meta.insert("cursor", cursor.max(kept)).map_err(fail)?;
        }
        for (seq, record) in &batch.records {
            let bytes = serde_json::to_vec(record).map_err(fail)?;
            self.records.insert(*seq, bytes.as_slice()).map_err(fail)?;
            if record.status == DeliveryStatus::Pending {
                self.pending.insert(*seq, ()).map_err(fail)?;
            } else {
                self.pending.remove(*seq).map_err(fail)?;
            }
            self.by_user
                .insert((record.user_id.as_str(), *seq), ())
                .map_err(fail)?;
        }
        Ok(())
    }

    /// Drops the records of sends up to `through` (their actions left the
    /// outbox), at most [`PRUNE_AT_ONCE`]; the rest go with the next.
    fn prune_through(&mut self, through: u64) -> Result<(), StorageError> {
        for _ in 0..PRUNE_AT_ONCE {
            let oldest = self
                .records
                .first()
                .map_err(fail)?
                .map(|(k, v)| (k.value(), v.value().to_vec()));
            let Some((seq, bytes)) = oldest.filter(|(seq, _)| *seq <= through) else {
                break;
            };
            // An unfinished send is never behind the outbox's retention (it
            // holds the retention back); kept all the same.
            if self.pending.get(seq).map_err(fail)?.is_some() {
                break;
            }
            self.records.remove(seq).map_err(fail)?;
            if let Ok(record) = decode_delivery(seq, &bytes) {
                self.by_user
                    .remove((record.user_id.as_str(), seq))
                    .map_err(fail)?;
            }
        }
        Ok(())
    }
}

/// Moves delivery's records out of the `delivery.redb` an earlier build
/// kept them in (when `dir` has one) into `db`, in one transaction, then
/// deletes the file. A stop in between leaves the file: the next open
/// moves it again (the same rows, written over).
fn move_old_deliveries(db: &Database, dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(OLD_DELIVERY_FILE);
    if !path.exists() {
        return Ok(());
    }
    let cannot = |e: &dyn std::fmt::Display| {
        StorageError(format!(
            "cannot move delivery's records from `{}`: {e}",
            path.display()
        ))
    };
    let old = Database::open(&path).map_err(|e| cannot(&e))?;
    let read = old.begin_read().map_err(|e| cannot(&e))?;
    let txn = db.begin_write().map_err(fail)?;
    {
        // A table the old file never made has nothing to move.
        if let Ok(from) = read.open_table(DELIVERY_META) {
            let mut to = txn.open_table(DELIVERY_META).map_err(fail)?;
            for item in from.iter().map_err(|e| cannot(&e))? {
                let (k, v) = item.map_err(|e| cannot(&e))?;
                to.insert(k.value(), v.value()).map_err(fail)?;
            }
        }
        if let Ok(from) = read.open_table(DELIVERIES) {
            let mut to = txn.open_table(DELIVERIES).map_err(fail)?;
            for item in from.iter().map_err(|e| cannot(&e))? {
                let (k, v) = item.map_err(|e| cannot(&e))?;
                to.insert(k.value(), v.value()).map_err(fail)?;
            }
        }
        if let Ok(from) = read.open_table(DELIVERY_PENDING) {
            let mut to = txn.open_table(DELIVERY_PENDING).map_err(fail)?;
            for item in from.iter().map_err(|e| cannot(&e))? {
                let (k, _) = item.map_err(|e| cannot(&e))?;
                to.insert(k.value(), ()).map_err(fail)?;
            }
        }
        if let Ok(from) = read.open_table(DELIVERY_BY_USER) {
            let mut to = txn.open_table(DELIVERY_BY_USER).map_err(fail)?;
            for item in from.iter().map_err(|e| cannot(&e))? {
                let (k, _) = item.map_err(|e| cannot(&e))?;
                to.insert(k.value(), ()).map_err(fail)?;
            }
        }
    }
    txn.commit().map_err(fail)?;
    drop(read);
    drop(old);
    std::fs::remove_file(&path).map_err(|e| cannot(&e))
}

fn decode_delivery(seq: u64, bytes: &[u8]) -> Result<Delivery, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StorageError(format!(
            "the delivery record of seq {seq} does not read: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("journey-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_write_is_read_back_after_reopening() {
        let dir = temp_dir("reopen");
        {
            let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(storage.meta().ok().flatten(), None);
            let meta = Meta {
                format: STORAGE_FORMAT,
                partitions: 2,
                clock: "events".into(),
                dedup_key: "00".into(),
            };
            let mut batch = WriteBatch {
                meta: Some(meta),
                clock: Some(42),
                ..WriteBatch::default()
            };
            for pos in 1..=3 {
                batch.entries.push((1, pos, Entry::Tick { to: pos as i64 }));
            }
            batch
                .actions
                .push((1, 1, vec!["{\"a\":1}".into(), "{\"a\":2}".into()]));
            assert_eq!(storage.write(batch).ok(), Some(2));
            storage
                .stage_checkpoint(1, 2, b"snap")
                .unwrap_or_else(|e| panic!("{e}"));
            let later = WriteBatch {
                actions: vec![(1, 2, vec!["{\"a\":3}".into()])],
                checkpoints: vec![(1, 2)],
                truncate: vec![(1, 2)],
                ..WriteBatch::default()
            };
            assert_eq!(storage.write(later).ok(), Some(3));
        }
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(storage.meta().ok().flatten().map(|m| m.partitions), Some(2));
        assert_eq!(storage.clock().ok().flatten(), Some(42));
        assert_eq!(storage.last_seq().ok(), Some(3));
        let mut snapshot = Vec::new();
        let r = storage
            .recover(1, &mut |bytes| {
                snapshot = bytes.to_vec();
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.checkpoint, snapshot), (Some(2), b"snap".to_vec()));
        assert_eq!(r.applied, 2);
        assert_eq!(r.entries, vec![(3, Entry::Tick { to: 3 })]);
        assert_eq!(
            storage.journal_len().ok(),
            Some(2),
            "position 1 was dropped"
        );
        let feed = storage.actions_after(1, 10).unwrap_or_default();
        assert_eq!(feed.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(storage.actions_after(0, 1).unwrap_or_default().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// In-app sends kept through the writer's transactions follow the
    /// rules of one kept on its own: once per message id, the customer's
    /// oldest leaving past `max_per_user`.
    #[test]
    fn inbox_keeps_in_a_write_follow_the_inbox_rules() {
        let dir = temp_dir("inbox-keeps");
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let t0 = 1_800_000_000_000;
        let keep = |id: &str, sent_ms: i64| InboxKeep {
            record: InboxRecord {
                user_key: "ana".into(),
                message_id: id.into(),
                sent_ms,
                expires_ms: sent_ms + 3_600_000,
                read_ms: None,
                dismissed_ms: None,
                content: id.as_bytes().to_vec(),
            },
            max_per_user: 2,
            now_ms: sent_ms,
        };
        let write = |keeps: Vec<InboxKeep>| {
            storage.write(WriteBatch {
                deliveries: DeliveryBatch {
                    inbox: keeps,
                    ..DeliveryBatch::default()
                },
                ..WriteBatch::default()
            })
        };
        assert!(write(vec![keep("m1", t0), keep("m2", t0 + 1)]).is_ok());
        assert_eq!(storage.inbox_has("ana", "m1").ok(), Some(true));
        assert_eq!(storage.inbox_has("ana", "m9").ok(), Some(false));
        assert_eq!(storage.inbox_has("bob", "m1").ok(), Some(false));
        // A repeat changes nothing; a third pushes the oldest out.
        let mut again = keep("m2", t0 + 1);
        again.record.content = b"changed".to_vec();
        assert!(write(vec![again, keep("m3", t0 + 2)]).is_ok());
        let listed = storage.inbox_list("ana", t0 + 3).unwrap_or_default();
        let shown: Vec<(&str, &[u8])> = listed
            .iter()
            .map(|r| (r.message_id.as_str(), r.content.as_slice()))
            .collect();
        assert_eq!(shown, vec![("m3", &b"m3"[..]), ("m2", &b"m2"[..])]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn delivery(user: &str, status: DeliveryStatus) -> Delivery {
        Delivery {
            message_id: format!("j:{user}:1:0"),
            user_id: user.into(),
            journey: "j".into(),
            template: "t".into(),
            channel: "email".into(),
            provider: "smtp".into(),
            status,
            committed_ms: 1,
            next_at_ms: None,
            error: None,
            attempts: Vec::new(),
        }
    }

    fn kept_seqs(storage: &RedbStorage) -> Vec<u64> {
        let feed = storage.outbox_after(0, 100).unwrap_or_default();
        feed.iter().map(|(s, _, _)| *s).collect()
    }

    /// Retention drops old actions, but never a send delivery has not
    /// finished, nor one it has not read; delivery's own records follow
    /// the outbox out.
    #[test]
    fn retention_waits_for_delivery() {
        let dir = temp_dir("retention-delivery");
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let old = WriteBatch {
            actions: vec![(0, 1, (1..=6).map(|i| format!("{{\"a\":{i}}}")).collect())],
            committed_ms: 1_000,
            ..WriteBatch::default()
        };
        assert_eq!(storage.write(old).ok(), Some(6));
        // No delivery ever ran: retention waits for nothing.
        assert_eq!(storage.delivery_cursor().ok(), Some(None));
        // Delivery has read through seq 5; seq 2 is a send not finished,
        // seq 1 one that was.
        let read = DeliveryBatch {
            cursor: Some(5),
            records: vec![
                (1, delivery("ana", DeliveryStatus::Sent)),
                (2, delivery("bob", DeliveryStatus::Pending)),
            ],
            ..DeliveryBatch::default()
        };
        let records = |deliveries| WriteBatch {
            deliveries,
            ..WriteBatch::default()
        };
        assert!(storage.write(records(read)).is_ok());
        let prune = |deliveries| WriteBatch {
            prune_before: Some(2_000),
            deliveries,
            ..WriteBatch::default()
        };
        assert!(storage.write(prune(DeliveryBatch::default())).is_ok());
        assert_eq!(kept_seqs(&storage), vec![2, 3, 4, 5, 6]);
        assert_eq!(storage.pruned_through().ok(), Some(1));
        let pending = storage.pending_deliveries(0, 10).unwrap_or_default();
        assert_eq!(pending.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2]);
        // Delivery's record of a pruned send goes with its action.
        assert!(
            storage
                .deliveries_of("ana", 10)
                .unwrap_or_default()
                .is_empty()
        );
        assert_eq!(
            storage.deliveries_of("bob", 10).unwrap_or_default().len(),
            1
        );
        // bob's send finishes in the transaction that prunes: everything up
        // to the cursor may go, bob's record with it.
        let done = DeliveryBatch {
            records: vec![(2, delivery("bob", DeliveryStatus::Failed))],
            ..DeliveryBatch::default()
        };
        assert!(storage.write(prune(done)).is_ok());
        assert_eq!(kept_seqs(&storage), vec![6], "seq 6 is not read yet");
        assert!(
            storage
                .pending_deliveries(0, 10)
                .unwrap_or_default()
                .is_empty()
        );
        assert!(
            storage
                .deliveries_of("bob", 10)
                .unwrap_or_default()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A data directory from before delivery's records moved into
    /// `journey.redb` keeps them: moved in at the next open, the old file
    /// deleted.
    #[test]
    fn delivery_records_of_an_older_directory_are_moved_in() {
        let dir = temp_dir("old-delivery");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        {
            let old =
                Database::create(dir.join(OLD_DELIVERY_FILE)).unwrap_or_else(|e| panic!("{e}"));
            let txn = old.begin_write().unwrap_or_else(|e| panic!("{e}"));
            {
                let mut meta = txn
                    .open_table(DELIVERY_META)
                    .unwrap_or_else(|e| panic!("{e}"));
                meta.insert("cursor", 7).unwrap_or_else(|e| panic!("{e}"));
                let mut records = txn.open_table(DELIVERIES).unwrap_or_else(|e| panic!("{e}"));
                let mut pending = txn
                    .open_table(DELIVERY_PENDING)
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut by_user = txn
                    .open_table(DELIVERY_BY_USER)
                    .unwrap_or_else(|e| panic!("{e}"));
                for (seq, user, status) in [
                    (3, "ana", DeliveryStatus::Sent),
                    (5, "bob", DeliveryStatus::Pending),
                ] {
                    let bytes = serde_json::to_vec(&delivery(user, status)).unwrap_or_default();
                    records
                        .insert(seq, bytes.as_slice())
                        .unwrap_or_else(|e| panic!("{e}"));
                    by_user
                        .insert((user, seq), ())
                        .unwrap_or_else(|e| panic!("{e}"));
                }
                pending.insert(5, ()).unwrap_or_else(|e| panic!("{e}"));
            }
            txn.commit().unwrap_or_else(|e| panic!("{e}"));
        }
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !dir.join(OLD_DELIVERY_FILE).exists(),
            "the old file is gone"
        );
        assert_eq!(storage.delivery_cursor().ok(), Some(Some(7)));
        let pending = storage.pending_deliveries(0, 10).unwrap_or_default();
        assert_eq!(pending.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![5]);
        let ana = storage.deliveries_of("ana", 10).unwrap_or_default();
        assert_eq!(ana.len(), 1);
        assert_eq!((ana[0].0, ana[0].1.status), (3, DeliveryStatus::Sent));
        drop(storage);
        // Opened again: nothing to move, the records stay.
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            storage.deliveries_of("bob", 10).unwrap_or_default().len(),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What partition `p` restarts from: its checkpoint's position and bytes.
    fn checkpoint_of(storage: &RedbStorage, p: u32) -> (Option<u64>, Vec<u8>) {
        let mut bytes = Vec::new();
        let r = storage
            .recover(p, &mut |b| {
                bytes = b.to_vec();
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        (r.checkpoint, bytes)
    }

    #[test]
    fn a_staged_checkpoint_counts_once_named_and_replaces_the_one_before() {
        let dir = temp_dir("checkpoint-files");
        let files = dir.join("checkpoints");
        let listed = || {
            let mut names: Vec<String> = std::fs::read_dir(&files)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        {
            let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            // A data directory of an earlier build: its checkpoint in the store.
            let txn = storage.db.begin_write().unwrap_or_else(|e| panic!("{e}"));
            {
                let mut table = txn
                    .open_table(CHECKPOINTS)
                    .unwrap_or_else(|e| panic!("{e}"));
                table
                    .insert(0, (3, b"inline".as_slice()))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            txn.commit().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(checkpoint_of(&storage, 0), (Some(3), b"inline".to_vec()));

            let stage = |pos: u64, body: &[u8]| {
                storage
                    .stage_checkpoint(0, pos, body)
                    .unwrap_or_else(|e| panic!("{e}"));
            };
            // Staged, not named: the partition restarts from the one before.
            stage(5, b"five");
            assert_eq!(checkpoint_of(&storage, 0), (Some(3), b"inline".to_vec()));
            let name = |pos: u64| {
                storage
                    .write(WriteBatch {
                        checkpoints: vec![(0, pos)],
                        ..WriteBatch::default()
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
            };
            name(5);
            assert_eq!(checkpoint_of(&storage, 0), (Some(5), b"five".to_vec()));
            stage(9, b"nine");
            name(9);
            assert_eq!(listed(), ["0-9.checkpoint"], "the one before is deleted");
            // Named late, after a later one: changes nothing, and goes.
            stage(7, b"seven");
            name(7);
            assert_eq!(checkpoint_of(&storage, 0), (Some(9), b"nine".to_vec()));
            assert_eq!(listed(), ["0-9.checkpoint"]);
            // Staged, and the service stopped before naming it.
            stage(12, b"twelve");
        }
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed(), ["0-9.checkpoint"], "an unnamed file is swept");
        assert_eq!(checkpoint_of(&storage, 0), (Some(9), b"nine".to_vec()));
        // A damaged file is refused with the reason, not restored.
        std::fs::write(
            files.join("0-9.checkpoint"),
            b"jckpt\x00\x00\x01 and no more",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Err(e) = storage.recover(0, &mut |_| Ok(())) else {
            panic!("a damaged checkpoint was read");
        };
        assert!(
            e.0.contains("checkpoint of partition 0 at position 9") && e.0.contains("cut short"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn covered_journal_stays_for_its_retention() {
        let dir = temp_dir("journal-retention");
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let entries = (1..=4).map(|pos| (0, pos, Entry::Tick { to: pos as i64 }));
        let first = WriteBatch {
            entries: entries.collect(),
            ..WriteBatch::default()
        };
        storage.write(first).unwrap_or_else(|e| panic!("{e}"));
        // A checkpoint at 2 covers 1 and 2, at 10:00; an hour of retention.
        let hour = 3_600_000;
        storage
            .stage_checkpoint(0, 2, b"snap")
            .unwrap_or_else(|e| panic!("{e}"));
        let checkpoint = WriteBatch {
            checkpoints: vec![(0, 2)],
            truncate: vec![(0, 3)],
            committed_ms: 10 * hour,
            journal_kept_after: 9 * hour,
            ..WriteBatch::default()
        };
        storage.write(checkpoint).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(storage.journal_len().ok(), Some(4), "kept for an hour");
        let recovery = storage
            .recover(0, &mut |_| Ok(()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            recovery.entries.len(),
            2,
            "a restart reads after the checkpoint"
        );
        let later = WriteBatch {
            committed_ms: 11 * hour,
            journal_kept_after: 10 * hour,
            ..WriteBatch::default()
        };
        storage.write(later).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(storage.journal_len().ok(), Some(2), "dropped an hour later");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_record_is_dropped_with_everything_after_it_and_said() {
        let dir = temp_dir("damaged");
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let batch = WriteBatch {
            entries: (1..=4)
                .map(|pos| (0, pos, Entry::Tick { to: pos as i64 }))
                .collect(),
            ..WriteBatch::default()
        };
        assert!(storage.write(batch).is_ok());
        // Damage position 3 as a torn or corrupted record would be.
        let txn = storage.db.begin_write().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut journal = txn.open_table(JOURNAL).unwrap_or_else(|e| panic!("{e}"));
            journal
                .insert((0u32, 3u64), b"{\"kind\":\"ti".as_slice())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        txn.commit().unwrap_or_else(|e| panic!("{e}"));
        let r = storage
            .recover(0, &mut |_| Ok(()))
            .unwrap_or_else(|e| panic!("{e}"));
        let kept: Vec<u64> = r.entries.iter().map(|(pos, _)| *pos).collect();
        assert_eq!(kept, vec![1, 2], "everything before the damage");
        let why = r.dropped.unwrap_or_default();
        assert!(
            why.contains("position 3") && why.contains("dropped"),
            "{why}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
