//! One partition held by this process: fenced, restored, replayed, then
//! applied live, with [`crate::service::core::Partition`] (the one place
//! entries are applied, on one machine too).
//!
//! Exactly once across owners (SERVICE.md §9):
//!
//! 1. **Fence.** The new owner reads the newest message of the partition's
//!    outbox subject and publishes a fence record after it, expecting it
//!    to be the newest (`Nats-Expected-Last-Subject-Sequence`); the fence
//!    carries the last `position.index` the outbox held.
//! 2. The actions are published in outbox messages of a run of positions
//!    each ([`super::outbox`]: what the journal had ready, up to
//!    [`super::outbox::SLOTS`] actions), every message expecting the
//!    owner's previous one (the fence, then its own) to be the subject's
//!    newest: once another process has fenced the subject, a stale owner's
//!    next write is refused and it stops ([`Ended::Fenced`]). No write is
//!    unfenced, so a stale owner writes nothing after a fence, however
//!    long it was paused.
//! 3. **Replay** from the checkpoint: actions at or before the fence's
//!    `position.index` are derived again (the runtime is deterministic)
//!    and dropped; the rest are published. An entry whose actions were cut
//!    short by a crash is completed from its next index.
//!
//! A checkpoint is written only after every action of the positions it
//! covers is in the outbox, so any owner's checkpoint is a valid place to
//! restart from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::outbox::{Pending, Written};
use super::{
    APPLIED, Deployment, FENCE, INDEX, Node, POSITION, journal_subject, lease_key, outbox_subject,
    progress_key,
};
use crate::runtime::Action;
use crate::service::core::{ClockMode, Partition, wall_ms};
use crate::service::journal::Entry;
use crate::service::metrics;

/// What the lease loop asks of a partition's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    Run,
    /// Checkpoint and stop: another process will take it.
    Release,
    /// The lease is gone: stop at once, writing nothing more.
    Lost,
}

/// How a partition's task ended.
pub(super) enum Ended {
    Stopped,
    /// Another process fenced the outbox: nothing more was written.
    Fenced,
    Failed(String),
}

/// What an owner says of its partition (`progress.<p>` in the state
/// bucket): for `/admin/clock`'s barrier, `/admin/partitions` and lag.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    pub owner: String,
    /// The newest journal position applied (its actions published).
    pub position: u64,
    pub active_instances: u64,
    pub pending_timers: u64,
    /// The position of the newest checkpoint, and when it was written
    /// (wall-clock ms).
    pub checkpoint: u64,
    pub checkpoint_ms: i64,
}

/// The newest `position.index` an outbox message stands for (an action's
/// own, or what a fence record says the outbox held).
fn applied_of(message: &async_nats::jetstream::message::StreamMessage) -> Option<(u64, u32)> {
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
    if let (Some(position), Some(index)) = (header(POSITION), header(INDEX)) {
        return Some((position.parse().ok()?, index.parse().ok()?));
    }
    let (position, index) = header(APPLIED)?
        .split_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))?;
    Some((position.parse().ok()?, index.parse().ok()?))
}

/// Step 1: the fence. Returns its sequence (what the next write expects)
/// and what the outbox held before it.
async fn fence(d: &Deployment, p: u32, owner: &str) -> Result<(u64, Option<(u64, u32)>), String> {
    let subject = outbox_subject(p);
    loop {
        let newest = match d.outbox.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Some(message),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                None
            }
            Err(e) => return Err(format!("the outbox does not read: {e}")),
        };
        let expected = newest.as_ref().map_or(0, |m| m.sequence);
        let applied = newest.as_ref().and_then(applied_of);
        let mut publish = PublishMessage::build()
            .payload(Bytes::new())
            .header(FENCE, owner)
            .expected_last_subject_sequence(expected);
        if let Some((position, index)) = applied {
            publish = publish.header(APPLIED, format!("{position}.{index}").as_str());
        }
        let acked = match d.js.send_publish(subject.clone(), publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => return Ok((ack.sequence, applied)),
            // The old owner wrote in between: read again.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
            Err(e) => return Err(format!("the fence was not written: {e}")),
        }
    }
}

/// The partition from its checkpoint, the position it covers (0: none),
/// and what the next checkpoint stored replaces.
async fn restore(node: &Node, p: u32) -> Result<(Partition, u64, super::checkpoint::Held), String> {
    let d = &node.d;
    // The checkpoint may be of a version deployed since this process read
    // the versions.
    within("reading the deployment's versions", node.learn_versions()).await?;
    let log = |line: &str| (node.log)(&format!("partition {p}: {line}"));
    let (checkpoint, held) = super::checkpoint::read(&d.checkpoints, &d.state, p, &log).await?;
    let position = checkpoint.as_ref().map_or(0, |c| c.position);
    let partition = tokio::task::block_in_place(|| {
        Partition::restore(
            p,
            &node.versions,
            node.first,
            &d.dedup_key,
            checkpoint.as_ref().map(|c| c.bytes.as_slice()),
        )
    })
    .map_err(|e| e.0)?;
    Ok((partition, position, held))
}

/// Before a replay goes live: the checkpoint it restored from is still the
/// newest. A stale owner (past its lease, not fenced yet: it writes no
/// action after the fence, but it may be storing a checkpoint when the
/// lease changes hands) can move the pointer during the replay and trim
/// the journal behind its checkpoint, entries the replay may then never
/// have read; the takeover then fails, its lease goes, and the next one
/// restores the newer checkpoint. Once live, the stale owner's moves are
/// refused ([`super::checkpoint`]), and its trim can only reach entries
/// the replay has read (its checkpoint covers at most the journal's end
/// when the lease changed hands).
async fn still_newest(
    d: &Deployment,
    p: u32,
    held: &super::checkpoint::Held,
) -> Result<(), String> {
    if super::checkpoint::moved_since(&d.state, p, held).await? {
        return Err(
            "a newer checkpoint (a stale owner's) was stored during the replay: the partition \
             is taken again from it"
                .into(),
        );
    }
    Ok(())
}

/// The longest one step of a takeover (the fence, the journal's end, its
/// consumer, ...) may take: each is a request or a few to the server, which
/// answers in milliseconds, so a step past this is stuck, not slow. The
/// takeover then fails with the step's name, and its lease is let go to be
/// tried again, instead of holding the partition without running it.
const TAKEOVER_STEP: Duration = Duration::from_secs(30);

/// `step` within [`TAKEOVER_STEP`].
async fn within<T>(
    step: &str,
    future: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(TAKEOVER_STEP, future)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{step}: no answer within {} s",
                TAKEOVER_STEP.as_secs()
            ))
        })
}

/// A partition being applied here.
struct Owned<'a> {
    node: &'a Node,
    p: u32,
    partition: Partition,
    /// The sequence of the newest outbox message of the partition (the
    /// fence, then this owner's own): what the next write expects.
    newest: u64,
    /// What the outbox held at the fence: derived again, not written.
    applied: Option<(u64, u32)>,
    /// The newest position applied.
    position: u64,
    since_checkpoint: u64,
    checkpoint_after: u64,
    checkpoint_at: Instant,
    progress: Progress,
    /// What was last written, and when.
    progress_written: Option<(Progress, Instant)>,
    /// A wall-clock tick is journaled and not applied yet.
    ticking: bool,
    /// The actions derived and not written yet: the next outbox message.
    pending: Pending,
    /// The most bytes of an outbox message (below the server's
    /// `max_payload`).
    max_message: usize,
    /// The journal its checkpoints cover, until it is trimmed.
    trim: super::trim::Trim,
    /// The checkpoint its next one replaces.
    stored: super::checkpoint::Held,
    /// The partition's other checkpoints were deleted (after this owner's
    /// first store).
    forgot_others: bool,
}

/// The most journal entries applied into one outbox message before it is
/// written, so that a stop is seen within a bounded time.
const MAX_DRAIN: usize = 4_096;

/// Runs partition `p` until the lease loop stops it, or another process
/// fences it.
pub(super) async fn run(
    node: Arc<Node>,
    p: u32,
    live: Arc<AtomicBool>,
    mut stop: watch::Receiver<Stop>,
) -> Ended {
    match held(&node, p, &live, &mut stop).await {
        Ok(ended) => ended,
        Err(Failure::Fenced) => Ended::Fenced,
        Err(Failure::Other(why)) => Ended::Failed(why),
    }
}

enum Failure {
    Fenced,
    Other(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Other(why)
    }
}

async fn held(
    node: &Node,
    p: u32,
    live: &AtomicBool,
    stop: &mut watch::Receiver<Stop>,
) -> Result<Ended, Failure> {
    let d = &node.d;
    let (newest, applied) = within("fencing the outbox", fence(d, p, &node.id)).await?;
    let (partition, checkpoint, stored) = restore(node, p).await?;
    let subject = journal_subject(p);
    let end = within(
        "reading the journal's end",
        Deployment::last_on(&d.journal, &subject),
    )
    .await?;
    let config = consumer::push::OrderedConfig {
        deliver_subject: d.js.client().new_inbox(),
        filter_subject: subject.clone(),
        deliver_policy: if checkpoint == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: checkpoint + 1,
            }
        },
        ..Default::default()
    };
    let mut entries = within("reading the journal", async {
        let consumer = d
            .journal
            .create_consumer(config)
            .await
            .map_err(|e| format!("the journal does not read: {e}"))?;
        consumer
            .messages()
            .await
            .map_err(|e| format!("the journal does not read: {e}"))
    })
    .await?;
    // The first checkpoint is `(p + 1) / P` of the way: spread out.
    let share = f64::from(p + 1) / f64::from(d.partitions().max(1));
    let mut owned = Owned {
        node,
        p,
        partition,
        newest,
        applied,
        position: checkpoint,
        since_checkpoint: 0,
        checkpoint_after: ((node.checkpoint_entries as f64 * share) as u64).max(1),
        checkpoint_at: Instant::now() + node.checkpoint_every.mul_f64(share),
        progress: Progress {
            owner: node.id.clone(),
            position: checkpoint,
            checkpoint,
            checkpoint_ms: wall_ms(),
            ..Progress::default()
        },
        progress_written: None,
        ticking: false,
        pending: Pending::default(),
        // Headers and the protocol's framing take the rest.
        max_message: (d.js.client().server_info().max_payload)
            .saturating_sub(4_096)
            .max(4_096),
        trim: super::trim::Trim::new(node.journal_retention),
        stored,
        forgot_others: false,
    };
    // The views and deploys of other processes ask this partition here
    // (super::admin), answered between entries.
    let client = d.js.client();
    let mut asked = within("subscribing to the partition's requests", async {
        client
            .subscribe(super::admin::admin_subject(p))
            .await
            .map_err(|e| format!("the partition's requests were not subscribed: {e}"))
    })
    .await?;
    (node.log)(&format!(
        "partition {p}: restored at position {checkpoint}, replaying to {end}"
    ));
    if end <= checkpoint {
        live.store(true, Ordering::Release);
    }
    owned.write_progress().await?;
    let mut replayed_at = Instant::now();
    let mut beat = tokio::time::interval(Duration::from_millis(50));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                let asked = if changed.is_err() { Stop::Lost } else { *stop.borrow() };
                match asked {
                    Stop::Run => {}
                    Stop::Lost => return Ok(Ended::Stopped),
                    Stop::Release => {
                        if live.load(Ordering::Acquire) {
                            owned.checkpoint().await?;
                        }
                        return Ok(Ended::Stopped);
                    }
                }
            }
            // Before the journal: a busy journal never starves a question.
            request = asked.next() => {
                let request = request
                    .ok_or_else(|| "the partition's requests ended".to_string())?;
                if let Some(reply) = request.reply {
                    let answer = super::admin::answer(
                        p,
                        &owned.partition,
                        live.load(Ordering::Acquire),
                        &node.versions,
                        &request.payload,
                    );
                    // A requester gone is no failure of the partition.
                    let _ = client.publish(reply, answer.into()).await;
                }
            }
            message = entries.next() => {
                replayed_at = Instant::now();
                // This entry, and every one the journal has ready behind
                // it, into one outbox message.
                let ended = || Failure::from("the journal's consumer ended".to_string());
                let mut next = Some(message.ok_or_else(ended)?);
                let mut drained = 0;
                while let Some(message) = next.take() {
                    let position = owned.receive(message).await?;
                    if position >= end && !live.load(Ordering::Acquire) {
                        within(
                            "reading the checkpoint's pointer",
                            still_newest(d, p, &owned.stored),
                        )
                        .await?;
                        live.store(true, Ordering::Release);
                    }
                    drained += 1;
                    if drained < MAX_DRAIN {
                        next = match entries.next().now_or_never() {
                            Some(Some(message)) => Some(message),
                            Some(None) => return Err(ended()),
                            None => None,
                        };
                    }
                }
                owned.flush().await?;
                if live.load(Ordering::Acquire) && owned.checkpoint_due() {
                    owned.checkpoint().await?;
                }
            }
            _ = beat.tick() => {
                if live.load(Ordering::Acquire) {
                    owned.tick_if_due().await;
                    if owned.checkpoint_due() {
                        owned.checkpoint().await?;
                    }
                    owned.trim().await;
                } else if replayed_at.elapsed() >= TAKEOVER_STEP {
                    // The journal up to `end` is there to read: a replay
                    // that gets none of it is stuck, like any step.
                    return Err(Failure::Other(format!(
                        "replaying: no journal entry arrived within {} s, at position {} of {end}",
                        TAKEOVER_STEP.as_secs(),
                        owned.position
                    )));
                }
                owned.write_progress().await?;
            }
        }
    }
}

impl Owned<'_> {
    /// Applies the journal entry at `position` and publishes its actions
    /// the outbox does not hold yet.
    async fn apply(&mut self, position: u64, payload: &[u8]) -> Result<(), Failure> {
        let entry = match Entry::decode(payload) {
            Ok(entry) => entry,
            Err(why) => {
                // Written by ingest, which encodes; only damage gets here,
                // the same for every owner: skipped.
                (self.node.log)(&format!(
                    "partition {}: the journal entry at position {position} does not read \
                     ({why}); skipped",
                    self.p
                ));
                self.position = position;
                return Ok(());
            }
        };
        if let Entry::Deploy { version } = entry {
            // Recorded before it was journaled: read when not known yet.
            if let Err(why) = self.node.learn_version(version).await {
                return Err(Failure::Other(why));
            }
        }
        let mut actions: Vec<Action> = Vec::new();
        tokio::task::block_in_place(|| self.partition.apply(&entry, &mut |a| actions.push(a)));
        if let Entry::Tick { .. } = entry {
            self.ticking = false;
        }
        for (index, action) in actions.iter().enumerate() {
            let index = index as u32;
            if self.applied.is_some_and(|held| (position, index) <= held) {
                continue;
            }
            let line = action.to_json_line();
            if self.pending.full_for(line.len(), self.max_message) {
                self.flush().await?;
            }
            self.pending.push(position, index, &line, action);
        }
        self.position = position;
        self.since_checkpoint += 1;
        let stats = self.partition.runtime.stats();
        self.progress.position = position;
        self.progress.active_instances = stats
            .journeys
            .iter()
            .map(crate::runtime::report::active_instances)
            .sum();
        self.progress.pending_timers = self.partition.runtime.store().pending_timers() as u64;
        // A clock advance waits for every partition's word: say it now.
        if matches!(entry, Entry::Tick { .. } | Entry::End) {
            self.flush().await?;
            self.write_progress().await?;
        }
        Ok(())
    }

    /// Writes the pending actions as one outbox message, expecting the
    /// subject's newest message to be this owner's previous one.
    async fn flush(&mut self) -> Result<(), Failure> {
        let Some(Written {
            payload,
            first,
            last,
            labels,
        }) = self.pending.take()
        else {
            return Ok(());
        };
        let p = self.p;
        let publish = PublishMessage::build()
            .payload(Bytes::from(payload))
            .message_id(format!("{p}.{}.{}", first.0, first.1))
            .expected_last_subject_sequence(self.newest)
            .header(POSITION, last.0.to_string().as_str())
            .header(INDEX, last.1.to_string().as_str());
        let acked = match self
            .node
            .d
            .js
            .send_publish(outbox_subject(p), publish)
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => {
                self.newest = ack.sequence;
                for (journey, kind) in labels {
                    let labels = [("journey", journey), ("kind", kind.to_string())];
                    ::metrics::counter!(metrics::ACTIONS, &labels).increment(1);
                }
                Ok(())
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(Failure::Fenced),
            Err(e) => Err(Failure::Other(format!("actions were not written: {e}"))),
        }
    }

    /// Applies one journal message; returns its position.
    async fn receive(
        &mut self,
        message: Result<async_nats::jetstream::Message, impl std::fmt::Display>,
    ) -> Result<u64, Failure> {
        let message = message.map_err(|e| format!("the journal does not read: {e}"))?;
        let position = message
            .info()
            .map_err(|e| format!("a journal message without its position: {e}"))?
            .stream_sequence;
        self.apply(position, &message.payload).await?;
        Ok(position)
    }

    fn checkpoint_due(&self) -> bool {
        self.since_checkpoint > 0
            && (self.since_checkpoint >= self.checkpoint_after
                || Instant::now() >= self.checkpoint_at)
    }

    /// Writes the partition's checkpoint at the position applied, while
    /// this process still holds the lease (a stale owner's would be valid,
    /// only older).
    async fn checkpoint(&mut self) -> Result<(), Failure> {
        self.flush().await?;
        self.since_checkpoint = 0;
        self.checkpoint_after = self.node.checkpoint_entries.max(1);
        self.checkpoint_at = Instant::now() + self.node.checkpoint_every;
        let d = &self.node.d;
        let bytes = tokio::task::block_in_place(|| self.partition.checkpoint())?;
        // The lease after the encoding (a second at a million customers):
        // an owner that lost it meanwhile stops here instead of storing a
        // checkpoint whose pointer move would be refused.
        let holder = d
            .leases
            .get(lease_key(self.p))
            .await
            .map_err(|e| format!("the lease does not read: {e}"))?;
        if holder.as_deref() != Some(self.node.id.as_bytes()) {
            return Err(Failure::Fenced);
        }
        let stored = super::checkpoint::store(
            &d.checkpoints,
            &d.state,
            self.p,
            self.position,
            &bytes,
            &mut self.stored,
        )
        .await?;
        if stored == super::checkpoint::Stored::Fenced {
            // A stale owner's older checkpoint, or this process is the
            // stale one: either way the partition is taken again, from
            // the pointer's checkpoint, whose journal is all kept.
            return Err(Failure::Other(
                "another owner stored a checkpoint since this one's takeover: the partition \
                 is taken again from it"
                    .into(),
            ));
        }
        if !self.forgot_others {
            // Only now: before this owner's first store a stale owner's
            // may still become the newest, and its object must stay.
            self.forgot_others = true;
            self.forget_other_checkpoints().await;
        }
        self.progress.checkpoint = self.position;
        self.progress.checkpoint_ms = wall_ms();
        self.trim.checkpointed(self.position);
        self.trim().await;
        Ok(())
    }

    /// Deletes the partition's checkpoints other than its newest: what
    /// crashes and stale owners left (a failure is only logged).
    async fn forget_other_checkpoints(&self) {
        let d = &self.node.d;
        let forgot = within(
            "deleting older checkpoints",
            super::checkpoint::forget_others(
                &d.js,
                &d.checkpoints,
                super::CHECKPOINT_BUCKET,
                self.p,
                &self.stored,
            ),
        );
        match forgot.await {
            Ok(0) => {}
            Ok(n) => (self.node.log)(&format!(
                "partition {}: deleted {n} checkpoints a crash or a stale owner left",
                self.p
            )),
            Err(why) => (self.node.log)(&format!("partition {}: {why}", self.p)),
        }
    }

    /// Trims the journal its checkpoints past retention cover
    /// ([`super::trim`]).
    async fn trim(&mut self) {
        if let Err(why) = self.trim.run(&self.node.d, self.p).await {
            (self.node.log)(&format!("partition {}: {why}", self.p));
        }
    }

    /// `--clock wall`: journals a tick when a timer is due (one in flight).
    async fn tick_if_due(&mut self) {
        if self.node.d.mode() != ClockMode::Wall || self.ticking {
            return;
        }
        let now = wall_ms();
        if self
            .partition
            .runtime
            .next_due()
            .is_none_or(|due| due > now)
        {
            return;
        }
        let entry = Entry::Tick { to: now }.encode();
        let sent = match self
            .node
            .d
            .js
            .publish(journal_subject(self.p), entry.into())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        self.ticking = sent;
    }

    /// Says where the partition stands (when that changed, and once a
    /// second: a stale owner's word, written over it, does not stay), and
    /// sets its gauges.
    async fn write_progress(&mut self) -> Result<(), Failure> {
        let p = self.p.to_string();
        let age = (wall_ms() - self.progress.checkpoint_ms).max(0) as f64 / 1_000.0;
        ::metrics::gauge!(metrics::PARTITION_CHECKPOINT_AGE, "partition" => p.clone()).set(age);
        ::metrics::gauge!(metrics::PARTITION_POSITION, "partition" => p).set(self.position as f64);
        if let Some((written, at)) = &self.progress_written
            && *written == self.progress
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.progress).map_err(|e| e.to_string())?;
        self.node
            .d
            .state
            .put(progress_key(self.p), bytes.into())
            .await
            .map_err(|e| format!("the progress was not written: {e}"))?;
        self.progress_written = Some((self.progress.clone(), Instant::now()));
        Ok(())
    }
}
