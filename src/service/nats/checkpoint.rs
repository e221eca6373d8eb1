//! A partition's checkpoint in the `JOURNEY_CHECKPOINTS` object store:
//! object `partition-<p>`, its description the journal position it
//! covers.
//!
//! **Reading never waits forever.** A `put` that replaces an object purges
//! the old one's chunks once the new one is written. A reader that got the
//! old object's metadata just before (a taker, while the previous owner
//! checkpoints during a handover) then waits for chunks that are gone:
//! async-nats's `Object` reads them through a consumer that never ends
//! (nats-io/nats.rs#1414). So each chunk must arrive within
//! [`CHUNK_WAIT`], and a read that stalls, or does not check out, starts
//! again from a fresh `get`, which finds the newer checkpoint. A deadline
//! on the whole read would not do: a checkpoint of a million customers is
//! about 46 MB, and how long that takes depends on the machine.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::object_store::{self, GetError, GetErrorKind, Object, ObjectStore};
use tokio::io::AsyncReadExt;

/// The longest a checkpoint's next chunk (128 KiB) may take to arrive.
pub const CHUNK_WAIT: Duration = Duration::from_secs(5);

/// How many times a checkpoint is read from a fresh `get` before the
/// takeover gives up (and lets the lease go, to be tried again).
pub const READS: u32 = 5;

/// A partition's checkpoint as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The journal position it covers.
    pub position: u64,
    pub bytes: Vec<u8>,
}

/// The object's name of partition `p`'s checkpoint.
pub fn name(p: u32) -> String {
    format!("partition-{p}")
}

/// Writes partition `p`'s checkpoint, covering journal `position`.
pub async fn write(store: &ObjectStore, p: u32, position: u64, bytes: &[u8]) -> Result<(), String> {
    let meta = object_store::ObjectMetadata {
        name: name(p),
        description: Some(position.to_string()),
        ..Default::default()
    };
    let mut bytes = bytes;
    store
        .put(meta, &mut bytes)
        .await
        .map(|_| ())
        .map_err(|e| format!("the checkpoint was not written: {e}"))
}

/// Reads partition `p`'s checkpoint (`None`: it has none yet); `log` hears
/// of each read started again.
pub async fn read(
    store: &ObjectStore,
    p: u32,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<Checkpoint>, String> {
    let name = name(p);
    read_opening(&name, CHUNK_WAIT, log, |_| store.get(&name)).await
}

/// [`read`], with the object opened by `open(attempt)` (attempts counted
/// from 0) and each chunk awaited up to `wait`: what tests drive.
pub async fn read_opening<F, Opened>(
    name: &str,
    wait: Duration,
    log: &(dyn Fn(&str) + Send + Sync),
    mut open: F,
) -> Result<Option<Checkpoint>, String>
where
    F: FnMut(u32) -> Opened,
    Opened: Future<Output = Result<Object, GetError>>,
{
    let mut why = String::new();
    for attempt in 0..READS {
        let mut object = match tokio::time::timeout(wait, open(attempt)).await {
            Ok(Ok(object)) => object,
            Ok(Err(e)) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Ok(Err(e)) => return Err(format!("checkpoint `{name}` does not read: {e}")),
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
        match read_all(&mut object, wait).await {
            Ok(bytes) => return Ok(Some(Checkpoint { position, bytes })),
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
        "checkpoint `{name}` does not read after {READS} tries: {why}"
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
