//! Which process runs which partition: a lease per partition in the
//! `JOURNEY_LEASES` bucket (`lease.<p>`, its holder's name), taken with
//! `create` and renewed with `update` at the revision it holds, so that
//! only one process can hold it; every key of the bucket expires a lease's
//! time after it was last written, so a process that stops renewing loses
//! its leases. Processes say they are alive the same way (`node.<name>`),
//! and each holds at most `ceil(P / processes alive)` partitions: one that
//! holds more lets the extra ones go (a checkpoint first), one that holds
//! fewer takes free ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::partition::{self, Ended, Stop};
use super::{LEASE_BUCKET, Node, lease_key};
use crate::service::metrics;

/// A partition held here.
pub(super) struct Held {
    /// The lease's revision, as last written here.
    revision: u64,
    /// Restored and replayed: applying live.
    pub(super) live: Arc<AtomicBool>,
    stop: watch::Sender<Stop>,
    task: JoinHandle<Ended>,
}

/// The lease loop: a heartbeat every third of the lease's time, each a
/// round of renewing, letting go and taking.
pub(super) async fn run(node: Arc<Node>) {
    let mut beat = tokio::time::interval(node.d.lease_ttl / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !node.stopping.load(Ordering::Acquire) {
        beat.tick().await;
        if node.stopping.load(Ordering::Acquire) {
            break;
        }
        if let Err(why) = round(&node).await {
            (node.log)(&format!("leases: {why}"));
        }
        node.settled.store(true, Ordering::Release);
    }
}

async fn round(node: &Arc<Node>) -> Result<(), String> {
    let leases = &node.d.leases;
    leases
        .put(format!("node.{}", node.id), Bytes::from_static(b"alive"))
        .await
        .map_err(|e| format!("the heartbeat was not written: {e}"))?;
    let alive = alive(&node.d.lease_stream).await?.max(1);
    let partitions = node.d.partitions();
    let target = partitions.div_ceil(alive) as usize;
    let mut held = node.held.lock().await;
    let done = renew_release_take(node, &mut held, alive, target).await;
    node.show(&held);
    for p in 0..partitions {
        let value = if held.contains_key(&p) { 1.0 } else { 0.0 };
        ::metrics::gauge!(metrics::PARTITION_HELD, "partition" => p.to_string()).set(value);
    }
    done
}

async fn renew_release_take(
    node: &Arc<Node>,
    held: &mut BTreeMap<u32, Held>,
    alive: u32,
    target: usize,
) -> Result<(), String> {
    let leases = &node.d.leases;
    let partitions = node.d.partitions();
    // Renew what is held; what cannot be renewed is lost.
    let mut ended = Vec::new();
    for (&p, h) in held.iter_mut() {
        if h.task.is_finished() {
            ended.push(p);
            continue;
        }
        match leases
            .update(lease_key(p), Bytes::from(node.id.clone()), h.revision)
            .await
        {
            Ok(revision) => h.revision = revision,
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                (node.log)(&format!(
                    "partition {p}: the lease was lost (it expired, and another process may \
                     hold it); stopping it without writing anything more"
                ));
                let _ = h.stop.send(Stop::Lost);
                ended.push(p);
            }
            // A slow server: tried again at the next beat, while the
            // lease lasts.
            Err(e) => (node.log)(&format!("partition {p}: the lease was not renewed: {e}")),
        }
    }
    for p in ended {
        if let Some(h) = held.remove(&p) {
            finish(node, p, h).await;
        }
    }
    // Let go of the extra ones, the highest numbers first.
    while held.len() > target {
        let Some((p, h)) = held.pop_last() else {
            break;
        };
        node.show(held);
        let _ = h.stop.send(Stop::Release);
        let revision = h.revision;
        finish(node, p, h).await;
        let _ = leases
            .delete_expect_revision(lease_key(p), Some(revision))
            .await;
        (node.log)(&format!(
            "partition {p}: released ({alive} processes alive)"
        ));
    }
    // Take free ones, starting from a place of this process's own so that
    // processes starting together do not all race for the same.
    if held.len() < target {
        let start = crate::service::partitions::partition_of(&node.id, partitions);
        for i in 0..partitions {
            if held.len() >= target || node.stopping.load(Ordering::Acquire) {
                break;
            }
            let p = (start + i) % partitions;
            if held.contains_key(&p) {
                continue;
            }
            match leases
                .create(lease_key(p), Bytes::from(node.id.clone()))
                .await
            {
                Ok(revision) => {
                    (node.log)(&format!("partition {p}: taken"));
                    held.insert(p, start_partition(node, p, revision));
                    node.show(held);
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("partition {p}: the lease was not taken: {e}")),
            }
        }
    }
    Ok(())
}

/// How many processes said they are alive within a lease's time: the
/// `node.*` keys the bucket's stream still holds.
async fn alive(lease_stream: &async_nats::jetstream::stream::Stream) -> Result<u32, String> {
    let filter = format!("$KV.{LEASE_BUCKET}.node.>");
    let mut subjects = lease_stream
        .info_with_subjects(filter)
        .await
        .map_err(|e| format!("the processes alive do not read: {e}"))?;
    let mut n = 0;
    while let Some(subject) = subjects.next().await {
        let (_, count) = subject.map_err(|e| format!("the processes alive do not read: {e}"))?;
        if count > 0 {
            n += 1;
        }
    }
    Ok(n)
}

fn start_partition(node: &Arc<Node>, p: u32, revision: u64) -> Held {
    let live = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(Stop::Run);
    let task = tokio::spawn(partition::run(node.clone(), p, live.clone(), stopped));
    Held {
        revision,
        live,
        stop,
        task,
    }
}

/// Waits for a partition's task to end and says how it ended; one that
/// failed lets its lease go, so that a process (maybe this one) tries it
/// again.
async fn finish(node: &Node, p: u32, h: Held) {
    let ended = match tokio::time::timeout(Duration::from_secs(60), h.task).await {
        Ok(Ok(ended)) => ended,
        Ok(Err(e)) => Ended::Failed(format!("its task failed: {e}")),
        Err(_) => Ended::Failed("it did not stop within a minute".into()),
    };
    ::metrics::gauge!(metrics::PARTITION_HELD, "partition" => p.to_string()).set(0.0);
    match ended {
        Ended::Stopped => {}
        Ended::Fenced => (node.log)(&format!(
            "partition {p}: fenced (another process took it over); nothing more was written"
        )),
        Ended::Failed(why) => {
            (node.log)(&format!("partition {p}: stopped: {why}"));
            let _ = node
                .d
                .leases
                .delete_expect_revision(lease_key(p), Some(h.revision))
                .await;
        }
    }
}

/// At a clean stop: every partition held here checkpoints and lets its
/// lease go, so that the others take over at once.
pub(super) async fn release_all(node: &Node) {
    let mut held = node.held.lock().await;
    while let Some((p, h)) = held.pop_first() {
        let _ = h.stop.send(Stop::Release);
        let revision = h.revision;
        finish(node, p, h).await;
        let _ = node
            .d
            .leases
            .delete_expect_revision(lease_key(p), Some(revision))
            .await;
    }
    let _ = node.d.leases.delete(format!("node.{}", node.id)).await;
}
