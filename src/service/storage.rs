//! Durable state of a deployment behind one trait ([`Storage`]): per
//! partition a journal of entries and a checkpoint (the runtime's snapshot
//! at a journal position), and one outbox of committed actions numbered by
//! `seq`, with, per partition, the last journal position whose actions it
//! holds. [`RedbStorage`] keeps it all in one redb file in the data
//! directory; a scale-out backend is another implementation.
//!
//! Every [`Storage::write`] is one transaction, made durable before it
//! returns: the service batches many requests into one (group commit).

use std::path::Path;
use std::sync::Mutex;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

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
    /// The fingerprint of the program the journal is applied with.
    pub program: Option<String>,
    /// `(partition, position, entry)`, positions new and ascending per
    /// partition.
    pub entries: Vec<(u32, u64, Entry)>,
    /// `(partition, position, action lines)`: the actions the entry at that
    /// position produced, in order; each gets the next `seq`, and the
    /// partition's applied position moves there.
    pub actions: Vec<(u32, u64, Vec<String>)>,
    /// `(partition, position, snapshot)`.
    pub checkpoints: Vec<(u32, u64, Vec<u8>)>,
    /// `(partition, position)`: journal entries before it are dropped.
    pub truncate: Vec<(u32, u64)>,
    /// When the actions are committed (wall-clock ms; for retention).
    pub committed_ms: i64,
    /// Actions committed before this (wall-clock ms) are dropped, at most
    /// [`PRUNE_AT_ONCE`] of them.
    pub prune_before: Option<i64>,
}

/// The most actions one write drops for retention (the rest go with the
/// next), so that no transaction grows with the backlog.
pub const PRUNE_AT_ONCE: usize = 50_000;

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.meta.is_none()
            && self.clock.is_none()
            && self.program.is_none()
            && self.entries.is_empty()
            && self.actions.is_empty()
            && self.checkpoints.is_empty()
            && self.truncate.is_empty()
            && self.prune_before.is_none()
    }
}

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

/// The durable state of one deployment.
pub trait Storage: Send + Sync + 'static {
    fn meta(&self) -> Result<Option<Meta>, StorageError>;
    /// The deployment's event clock, when one was written.
    fn clock(&self) -> Result<Option<i64>, StorageError>;
    /// The fingerprint of the program the journal is applied with.
    fn program(&self) -> Result<Option<String>, StorageError>;
    /// Commits the batch durably, in one transaction; returns the `seq` of
    /// the last action written (the previous last when none).
    fn write(&self, batch: WriteBatch) -> Result<u64, StorageError>;
    /// Reads what partition `p` restarts from, handing its checkpoint's
    /// snapshot to `read` where it lies, not copied out first (at a million
    /// customers, a partition's is over a hundred megabytes).
    fn recover(
        &self,
        partition: u32,
        read: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<Recovery, StorageError>;
    /// Committed actions with `seq > after`, at most `limit`, ascending.
    fn actions_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, StorageError>;
    /// The newest `seq` (0 when none).
    fn last_seq(&self) -> Result<u64, StorageError>;
    /// The newest `seq` dropped by retention (0 when none).
    fn pruned_through(&self) -> Result<u64, StorageError>;
    /// The journal entries kept, over every partition.
    fn journal_len(&self) -> Result<u64, StorageError>;
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const JOURNAL: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("journal");
const CHECKPOINTS: TableDefinition<u32, (u64, &[u8])> = TableDefinition::new("checkpoints");
const APPLIED: TableDefinition<u32, u64> = TableDefinition::new("applied");
/// `seq` → (when it was committed, wall-clock ms; the action's line).
const OUTBOX: TableDefinition<u64, (i64, &str)> = TableDefinition::new("outbox");

/// The memory redb may keep of the file's pages (its default is 1 GiB,
/// which a service holding a million customers would pay on top of their
/// state). Written pages are appended at the journal's and the outbox's
/// ends, and read back only by a restart and by the feed, near its end:
/// a small cache holds what is read again (docs/performance.md).
pub const CACHE_BYTES: usize = 64 << 20;

/// [`Storage`] in one redb file.
pub struct RedbStorage {
    db: Database,
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
            txn.open_table(APPLIED).map_err(fail)?;
            txn.open_table(OUTBOX).map_err(fail)?;
        }
        txn.commit().map_err(fail)?;
        let storage = RedbStorage {
            db,
            last_seq: Mutex::new(0),
            pruned: Mutex::new(0),
        };
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

    fn program(&self) -> Result<Option<String>, StorageError> {
        Ok(self
            .meta_value("program")?
            .and_then(|b| String::from_utf8(b).ok()))
    }

    fn write(&self, batch: WriteBatch) -> Result<u64, StorageError> {
        let mut last_seq = self.last_seq.lock().map_err(fail)?;
        let mut seq = *last_seq;
        let mut pruned = None;
        let mut txn = self.db.begin_write().map_err(fail)?;
        txn.set_durability(Durability::Immediate).map_err(fail)?;
        {
            let mut meta = txn.open_table(META).map_err(fail)?;
            if let Some(m) = &batch.meta {
                let bytes = serde_json::to_vec(m).map_err(fail)?;
                meta.insert("meta", bytes.as_slice()).map_err(fail)?;
            }
            if let Some(program) = &batch.program {
                meta.insert("program", program.as_bytes()).map_err(fail)?;
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
            for &(p, before) in &batch.truncate {
                journal
                    .retain_in((p, 0)..(p, before), |_, _| false)
                    .map_err(fail)?;
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
            if let Some(before) = batch.prune_before {
                let mut through = None;
                for _ in 0..PRUNE_AT_ONCE {
                    let oldest = outbox
                        .first()
                        .map_err(fail)?
                        .map(|(k, v)| (k.value(), v.value().0));
                    match oldest {
                        Some((s, at)) if at < before => {
                            outbox.remove(s).map_err(fail)?;
                            through = Some(s);
                        }
                        _ => break,
                    }
                }
                if let Some(s) = through {
                    meta.insert("pruned_through", s.to_le_bytes().as_slice())
                        .map_err(fail)?;
                    pruned = Some(s);
                }
            }
            let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(fail)?;
            for (p, pos, bytes) in &batch.checkpoints {
                checkpoints
                    .insert(*p, (*pos, bytes.as_slice()))
                    .map_err(fail)?;
            }
        }
        txn.commit().map_err(fail)?;
        *last_seq = seq;
        if let Some(s) = pruned {
            *self.pruned.lock().map_err(fail)? = s;
        }
        Ok(seq)
    }

    fn recover(
        &self,
        partition: u32,
        read: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
    ) -> Result<Recovery, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let checkpoints = txn.open_table(CHECKPOINTS).map_err(fail)?;
        let checkpoint = match checkpoints.get(partition).map_err(fail)? {
            Some(v) => {
                let (pos, bytes) = v.value();
                read(bytes)?;
                Some(pos)
            }
            None => None,
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

    fn actions_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, StorageError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let outbox = txn.open_table(OUTBOX).map_err(fail)?;
        let mut out = Vec::new();
        for item in outbox.range(after.saturating_add(1)..).map_err(fail)? {
            if out.len() >= limit {
                break;
            }
            let (seq, row) = item.map_err(fail)?;
            out.push((seq.value(), row.value().1.to_string()));
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
            let later = WriteBatch {
                actions: vec![(1, 2, vec!["{\"a\":3}".into()])],
                checkpoints: vec![(1, 2, b"snap".to_vec())],
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
