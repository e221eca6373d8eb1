//! Checkpoints as files in the data directory's `checkpoints/`, one a
//! partition (`{partition}-{position}.checkpoint`), beside the store
//! rather than in it: a partition's checkpoint is tens of megabytes at a
//! million customers, and written inside the store's transaction it held
//! up every request's acknowledgement while it went to disk (redb has one
//! writer). A checkpoint is first *staged* — written to a file of its own,
//! made durable, renamed into place — by a thread other than the writer;
//! only then does the writer's next transaction name it the partition's
//! ([`super::storage::WriteBatch::checkpoints`]) and let go of the journal
//! it covers. A file staged but never named (a crash between) is deleted
//! at the next open ([`CheckpointFiles::sweep`]).
//!
//! A file is [`MAGIC`], the length of its body (eight bytes,
//! little-endian), the CRC-32 of its body (four bytes), then the body:
//! a damaged or cut-short file is refused with the reason when read.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::storage::StorageError;

/// The first bytes of a checkpoint file.
pub const MAGIC: &[u8; 8] = b"jckpt\x00\x00\x01";

/// The bytes before a file's body.
pub const HEADER: usize = MAGIC.len() + 8 + 4;

/// The folder of a data directory's checkpoint files.
pub struct CheckpointFiles {
    dir: PathBuf,
    /// Numbers the files being staged, so two stages of one checkpoint
    /// (a live one and the last one of a shutdown) never share a file.
    staging: AtomicU64,
}

impl CheckpointFiles {
    /// `data/checkpoints`, created when absent.
    pub fn open(data: &Path) -> Result<CheckpointFiles, StorageError> {
        let dir = data.join("checkpoints");
        std::fs::create_dir_all(&dir)
            .map_err(|e| StorageError(format!("cannot create `{}`: {e}", dir.display())))?;
        Ok(CheckpointFiles {
            dir,
            staging: AtomicU64::new(0),
        })
    }

    /// The file of partition `partition`'s checkpoint at `position`.
    pub fn path(&self, partition: u32, position: u64) -> PathBuf {
        self.dir.join(format!("{partition}-{position}.checkpoint"))
    }

    /// Writes `body` as partition `partition`'s checkpoint at `position`,
    /// durably, under its own name; any file already there (the same
    /// checkpoint, staged before) is replaced whole, never half written.
    pub fn stage(&self, partition: u32, position: u64, body: &[u8]) -> Result<(), StorageError> {
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        let staging = self.dir.join(format!("{partition}-{position}.{n}.staging"));
        let path = self.path(partition, position);
        let failed = |what: &str, e: std::io::Error| {
            let _ = std::fs::remove_file(&staging);
            StorageError(format!("cannot {what} `{}`: {e}", staging.display()))
        };
        let mut file = File::create(&staging).map_err(|e| failed("create", e))?;
        file.write_all(&header(body))
            .and_then(|()| file.write_all(body))
            .map_err(|e| failed("write", e))?;
        file.sync_all().map_err(|e| failed("sync", e))?;
        drop(file);
        std::fs::rename(&staging, &path).map_err(|e| failed("rename", e))?;
        self.sync_dir()
    }

    /// Reads partition `partition`'s checkpoint at `position`, checked:
    /// the whole file, whose body starts at [`HEADER`].
    pub fn read(&self, partition: u32, position: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.path(partition, position);
        let refuse = |why: String| {
            StorageError(format!(
                "the checkpoint of partition {partition} at position {position} (`{}`) {why}",
                path.display()
            ))
        };
        let bytes = std::fs::read(&path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        check(&bytes).map_err(refuse)?;
        Ok(bytes)
    }

    /// Deletes partition `partition`'s checkpoint at `position` (one no
    /// longer named), if it is there.
    pub fn remove(&self, partition: u32, position: u64) {
        let _ = std::fs::remove_file(self.path(partition, position));
    }

    /// Deletes every file but the checkpoints `keep` names: files staged
    /// and never named, and half-written ones.
    pub fn sweep(&self, keep: &[(u32, u64)]) -> Result<(), StorageError> {
        let kept: Vec<PathBuf> = keep.iter().map(|&(p, pos)| self.path(p, pos)).collect();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| StorageError(format!("cannot read `{}`: {e}", self.dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !kept.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Makes the folder's names durable (a rename into it).
    fn sync_dir(&self) -> Result<(), StorageError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StorageError(format!("cannot sync `{}`: {e}", self.dir.display())))
    }
}

/// The header of a file of `body`.
fn header(body: &[u8]) -> [u8; HEADER] {
    let mut out = [0; HEADER];
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out[MAGIC.len() + 8..].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    out
}

/// Whether `file` is a whole, undamaged checkpoint file; else why not.
fn check(file: &[u8]) -> Result<(), String> {
    let Some((head, body)) = file.split_at_checked(HEADER) else {
        return Err(format!("is cut short: {} bytes", file.len()));
    };
    if !head.starts_with(MAGIC) {
        return Err("is not a checkpoint file".into());
    }
    let mut len = [0; 8];
    len.copy_from_slice(&head[MAGIC.len()..MAGIC.len() + 8]);
    let len = u64::from_le_bytes(len);
    if len != body.len() as u64 {
        return Err(format!(
            "is cut short or overlong: its body is {} bytes, its header says {len}",
            body.len()
        ));
    }
    let mut crc = [0; 4];
    crc.copy_from_slice(&head[MAGIC.len() + 8..]);
    if u32::from_le_bytes(crc) != crc32fast::hash(body) {
        return Err("is damaged: its CRC-32 does not match".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("journey-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_staged_checkpoint_reads_back_and_a_damaged_one_is_refused() {
        let data = dir("stage");
        let files = CheckpointFiles::open(&data).unwrap_or_else(|e| panic!("{e}"));
        files
            .stage(3, 17, b"the body")
            .unwrap_or_else(|e| panic!("{e}"));
        let read = files.read(3, 17).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&read[HEADER..], b"the body");
        // Staged again: replaced whole.
        files
            .stage(3, 17, b"the same, again")
            .unwrap_or_else(|e| panic!("{e}"));
        let read = files.read(3, 17).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&read[HEADER..], b"the same, again");

        let path = files.path(3, 17);
        let whole = std::fs::read(&path).unwrap_or_default();
        let mut flipped = whole.clone();
        if let Some(b) = flipped.last_mut() {
            *b ^= 1;
        }
        let cases: [(&[u8], &str); 4] = [
            (&flipped, "CRC-32 does not match"),
            (&whole[..whole.len() - 1], "cut short or overlong"),
            (&whole[..5], "cut short: 5 bytes"),
            (
                b"{\"format\":2,\"program\":\"\"}...........",
                "not a checkpoint file",
            ),
        ];
        for (bytes, says) in cases {
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
            let Err(e) = files.read(3, 17) else {
                panic!("a damaged file was read: {says}");
            };
            assert!(
                e.0.contains(says) && e.0.contains("partition 3 at position 17"),
                "{e}"
            );
        }
        let Err(e) = files.read(3, 18) else {
            panic!("a missing file was read")
        };
        assert!(e.0.contains("cannot be read"), "{e}");
        let _ = std::fs::remove_dir_all(&data);
    }

    #[test]
    fn a_sweep_keeps_the_named_checkpoints_only() {
        let data = dir("sweep");
        let files = CheckpointFiles::open(&data).unwrap_or_else(|e| panic!("{e}"));
        for (p, pos) in [(0, 5), (0, 9), (1, 2)] {
            files.stage(p, pos, b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(data.join("checkpoints/0-11.7.staging"), b"half")
            .unwrap_or_else(|e| panic!("{e}"));
        files
            .sweep(&[(0, 9), (1, 2)])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut left: Vec<String> = std::fs::read_dir(data.join("checkpoints"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["0-9.checkpoint", "1-2.checkpoint"]);
        files.remove(0, 9);
        assert!(files.read(0, 9).is_err());
        let _ = std::fs::remove_dir_all(&data);
    }
}
