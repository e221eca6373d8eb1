//! A partition's checkpoints: each an object of the `JOURNEY_CHECKPOINTS`
//! object store, named `partition-<p>.<position>.<random>` and never
//! rewritten, and the key `checkpoint.<p>` of the state bucket pointing at
//! the newest (`{"object", "position"}`).
//!
//! **Fenced like the outbox.** An owner moves the pointer by
//! compare-and-set on the revision it last read (at its takeover) or
//! wrote, and only then trims the journal behind the new checkpoint and
//! deletes the one before. A stale owner (slowed past its lease while it
//! stored a checkpoint) holds an older revision: its move is refused, so
//! it can never put back an older checkpoint than one whose journal was
//! trimmed, and it stops ([`Stored::Fenced`]). A taker that finds the
//! pointer moved during its replay takes the partition again from the
//! newer one (`partition::still_newest`).
//!
//! **Reading never waits forever.** The object a taker began to read may
//! be deleted under it (a newer checkpoint stored meanwhile), and
//! async-nats's `Object` then waits for the purged chunks forever
//! (nats-io/nats.rs#1414). So each chunk must arrive within
//! [`CHUNK_WAIT`], and a read that stalls, or does not check out, starts
//! again from the pointer. A deadline on the whole read would not do: a
//! checkpoint of a million customers is about 46 MB, and how long that
//! takes depends on the machine.
//!
//! A deployment begun by an earlier build has one object per partition,
//! `partition-<p>`, and no pointer: it is read as the partition's
//! checkpoint until the first one stored here replaces it.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::object_store::{self, GetErrorKind, Object, ObjectStore};
use async_nats::jetstream::{self, kv};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// The longest a checkpoint's next chunk (128 KiB) may take to arrive.
pub const CHUNK_WAIT: Duration = Duration::from_secs(5);

/// How many times a checkpoint is read from the pointer before the
/// takeover gives up (and lets the lease go, to be tried again).
pub const READS: u32 = 5;

/// A partition's checkpoint as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The journal position it covers.
    pub position: u64,
    pub bytes: Vec<u8>,
}

/// What an owner knows of its partition's pointer: what its next store
/// expects to replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// The pointer's revision last read or written here (`None`: there
    /// was no pointer).
    revision: Option<u64>,
    /// The object it named (or a deployment's older `partition-<p>`).
    object: Option<String>,
}

/// How a store ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Stored,
    /// Another owner moved the pointer: nothing was replaced.
    Fenced,
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    object: String,
    position: u64,
}

/// The state bucket's key of partition `p`'s pointer.
pub fn pointer_key(p: u32) -> String {
    format!("checkpoint.{p}")
}

/// The head of every object name of partition `p`'s checkpoints.
fn object_prefix(p: u32) -> String {
    format!("partition-{p}.")
}

/// The one object of partition `p` a deployment of an earlier build wrote.
fn legacy_name(p: u32) -> String {
    format!("partition-{p}")
}

/// The pointer of partition `p` and its revision, if there is one.
async fn pointer(state: &kv::Store, p: u32) -> Result<Option<(Pointer, u64)>, String> {
    let key = pointer_key(p);
    match state.entry(&key).await {
        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
            let pointer = serde_json::from_slice(&entry.value)
                .map_err(|e| format!("`{key}` does not read: {e}"))?;
            Ok(Some((pointer, entry.revision)))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(format!("`{key}` does not read: {e}")),
    }
}

/// Stores `bytes` as partition `p`'s checkpoint at journal `position`,
/// replacing the one `held` knows of; `held` then knows the new one.
pub async fn store(
    objects: &ObjectStore,
    state: &kv::Store,
    p: u32,
    position: u64,
    bytes: &[u8],
    held: &mut Held,
) -> Result<Stored, String> {
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).map_err(|e| format!("no randomness for a name: {e}"))?;
    let object = format!(
        "{}{position}.{}",
        object_prefix(p),
        crate::compile::artifact::hex(&suffix)
    );
    let meta = object_store::ObjectMetadata {
        name: object.clone(),
        description: Some(position.to_string()),
        ..Default::default()
    };
    let mut reader = bytes;
    objects
        .put(meta, &mut reader)
        .await
        .map_err(|e| format!("the checkpoint was not written: {e}"))?;
    let value = serde_json::to_vec(&Pointer {
        object: object.clone(),
        position,
    })
    .map_err(|e| e.to_string())?;
    let key = pointer_key(p);
    let moved = match held.revision {
        Some(revision) => state
            .update(&key, value.into(), revision)
            .await
            .map_err(|e| {
                (
                    e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                    e.to_string(),
                )
            }),
        None => state.create(&key, value.into()).await.map_err(|e| {
            (
                e.kind() == kv::CreateErrorKind::AlreadyExists,
                e.to_string(),
            )
        }),
    };
    match moved {
        Ok(revision) => {
            if let Some(before) = held.object.replace(object) {
                // Left behind, it would only take room: an owner's first
                // store deletes it (`forget_others`).
                let _ = objects.delete(&before).await;
            }
            held.revision = Some(revision);
            Ok(Stored::Stored)
        }
        Err((true, _)) => {
            let _ = objects.delete(&object).await;
            Ok(Stored::Fenced)
        }
        // The move may have happened, its answer lost: the object stays
        // (if the pointer does not name it, an owner's first store
        // deletes it).
        Err((false, why)) => Err(format!("the checkpoint's pointer was not written: {why}")),
    }
}

/// Whether partition `p`'s pointer moved since `held` read or wrote it.
pub async fn moved_since(state: &kv::Store, p: u32, held: &Held) -> Result<bool, String> {
    let now = pointer(state, p).await?.map(|(_, revision)| revision);
    Ok(now != held.revision)
}

/// Deletes partition `p`'s checkpoints other than the one `held` knows:
/// objects a crash left between their store and the pointer's move, or
/// whose owner died before it deleted them. `bucket` is the object
/// store's name.
///
/// The names come from the subjects of the store's stream
/// (`super::subjects_after`), not from async-nats's `ObjectStore::list`,
/// which can wait forever.
pub async fn forget_others(
    js: &jetstream::Context,
    objects: &ObjectStore,
    bucket: &str,
    p: u32,
    held: &Held,
) -> Result<usize, String> {
    let meta = format!("$O.{bucket}.M.");
    let encoded = super::subjects_after(js, &format!("OBJ_{bucket}"), &meta, ">").await?;
    let prefix = object_prefix(p);
    let mut others = Vec::new();
    for encoded in encoded {
        let name = URL_SAFE
            .decode(encoded)
            .ok()
            .and_then(|name| String::from_utf8(name).ok());
        let Some(name) = name else { continue };
        let ours = name.starts_with(&prefix) || (name == legacy_name(p) && held.revision.is_some());
        if ours && Some(&name) != held.object.as_ref() {
            others.push(name);
        }
    }
    let mut deleted = 0;
    for name in others {
        match objects.info(&name).await {
            Ok(info) if !info.deleted => {}
            _ => continue,
        }
        objects
            .delete(&name)
            .await
            .map_err(|e| format!("checkpoint `{name}` was not deleted: {e}"))?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Reads partition `p`'s newest checkpoint (`None`: it has none yet), and
/// what its next store replaces; `log` hears of each read started again.
pub async fn read(
    objects: &ObjectStore,
    state: &kv::Store,
    p: u32,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<(Option<Checkpoint>, Held), String> {
    read_with(objects, state, p, CHUNK_WAIT, log, |_| async {}).await
}

/// [`read`], each chunk awaited up to `wait`, and `between(attempt)`
/// (attempts from 0) run after an object's metadata was read and before
/// its chunks are: where tests store a newer checkpoint.
pub async fn read_with<F, Between>(
    objects: &ObjectStore,
    state: &kv::Store,
    p: u32,
    wait: Duration,
    log: &(dyn Fn(&str) + Send + Sync),
    mut between: F,
) -> Result<(Option<Checkpoint>, Held), String>
where
    F: FnMut(u32) -> Between,
    Between: Future<Output = ()>,
{
    let mut why = String::new();
    for attempt in 0..READS {
        let (name, held) = match pointer(state, p).await? {
            Some((pointer, revision)) => (
                pointer.object.clone(),
                Held {
                    revision: Some(revision),
                    object: Some(pointer.object),
                },
            ),
            None => (legacy_name(p), Held::default()),
        };
        let mut object = match tokio::time::timeout(wait, objects.get(&name)).await {
            Ok(Ok(object)) => object,
            // No pointer and no object of an earlier build: no checkpoint.
            Ok(Err(e)) if e.kind() == GetErrorKind::NotFound && held.revision.is_none() => {
                return Ok((None, held));
            }
            Ok(Err(e)) => {
                why = format!("its object does not read: {e}");
                log(&format!("checkpoint `{name}`: {why}; reading it again"));
                continue;
            }
            Err(_) => {
                why = format!("its metadata did not arrive within {wait:?}");
                log(&format!("checkpoint `{name}`: {why}; reading it again"));
                continue;
            }
        };
        let position = object
            .info()
            .description
            .as_deref()
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| format!("checkpoint `{name}` does not say its position"))?;
        between(attempt).await;
        match read_all(&mut object, wait).await {
            Ok(bytes) => {
                let held = Held {
                    object: Some(name),
                    ..held
                };
                return Ok((Some(Checkpoint { position, bytes }), held));
            }
            Err(stalled) => {
                why = stalled;
                log(&format!(
                    "checkpoint `{name}` at position {position}: {why}; reading it again (a \
                     newer one may have replaced it)"
                ));
            }
        }
    }
    Err(format!(
        "partition {p}'s checkpoint does not read after {READS} tries: {why}"
    ))
}

/// The object's bytes, each read waiting at most `wait`; an error says why
/// it stopped (a stall, a damaged chunk, a size that does not match).
async fn read_all(object: &mut Object, wait: Duration) -> Result<Vec<u8>, String> {
    let size = object.info().size;
    let mut bytes = Vec::with_capacity(size);
    let mut buffer = vec![0; 128 * 1024];
    loop {
        match tokio::time::timeout(wait, object.read(&mut buffer)).await {
            Err(_) => {
                return Err(format!(
                    "no chunk arrived within {wait:?} after {} of {size} bytes",
                    bytes.len()
                ));
            }
            Ok(Err(e)) => return Err(format!("{e} after {} of {size} bytes", bytes.len())),
            Ok(Ok(0)) if bytes.len() == size => return Ok(bytes),
            Ok(Ok(0)) => {
                return Err(format!("it ended after {} of {size} bytes", bytes.len()));
            }
            Ok(Ok(n)) => {
                bytes.extend_from_slice(&buffer[..n]);
                if bytes.len() > size {
                    return Err(format!("it holds more than its {size} bytes"));
                }
            }
        }
    }
}
