//! Deploys across processes (SERVICE.md §8, docs/scale-out.md): the rules
//! of one machine ([`crate::service::versions`]: checked, planned, the
//! versions kept for the customers inside them), the version recorded in
//! the `JOURNEY` bucket (`version.<n>`, created only if absent: of two
//! deploys at once one wins, and the other is planned again over it), then
//! a `Deploy` entry journaled in every partition's subject, so each owner
//! switches at a defined journal position and a replay after a takeover
//! applies each entry with the version live when it was journaled. Once
//! every partition's owner has applied it, `journaled.<n>` says so; a
//! deploy cut short by a crash is completed by the next deploy, reload or
//! start.
//!
//! Every process learns each version from the bucket: by watching it, and
//! by reading it when a partition meets a `Deploy` entry, or a checkpoint,
//! of a version it does not know yet.

use std::sync::Arc;

use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Deployment, Node, journal_subject};
use crate::service::core::{DeployError, Deployed, wall_ms};
use crate::service::journal::Entry;
use crate::service::versions::Record;
use crate::source::SourceMap;

fn version_key(n: u32) -> String {
    format!("version.{n}")
}

/// Set once every partition's owner applied version `n`'s deploy.
fn journaled_key(n: u32) -> String {
    format!("journaled.{n}")
}

/// Every `(number, encoded record)` of the deployment's versions.
pub(super) async fn records(d: &Deployment) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let mut numbers = Vec::new();
    for key in super::keys_under(&d.js, super::STATE_BUCKET, "version.").await? {
        if let Some(n) = key
            .strip_prefix("version.")
            .and_then(|n| n.parse::<u32>().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    let mut records = Vec::new();
    for n in numbers {
        if let Some(bytes) = d
            .state
            .get(version_key(n))
            .await
            .map_err(|e| e.to_string())?
        {
            records.push((n, bytes.to_vec()));
        }
    }
    Ok(records)
}

fn decode(n: u32, bytes: &[u8]) -> Result<Record, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| format!("version {n} of the journeys does not read: {e}"))
}

impl Node {
    /// Makes sure version `n` is known here: read from the bucket when not.
    pub(super) async fn learn_version(&self, n: u32) -> Result<(), String> {
        if self.versions.get(n).is_some() {
            return Ok(());
        }
        let bytes = self
            .d
            .state
            .get(version_key(n))
            .await
            .map_err(|e| format!("the deployment's versions: {e}"))?
            .ok_or_else(|| format!("version {n} of the journeys is not in the deployment"))?;
        let record = decode(n, &bytes)?;
        if self.versions.get(n).is_none() {
            self.versions.insert(n, record);
        }
        Ok(())
    }

    /// Reads every version this process does not know yet.
    pub(super) async fn learn_versions(&self) -> Result<(), String> {
        for (n, bytes) in records(&self.d)
            .await
            .map_err(|e| format!("the deployment's versions: {e}"))?
        {
            if self.versions.get(n).is_none() {
                self.versions.insert(n, decode(n, &bytes)?);
            }
        }
        Ok(())
    }

    /// Reads the project from disk again and deploys it: `POST
    /// /admin/reload`.
    pub(super) async fn redeploy(&self) -> Result<Deployed, DeployError> {
        let sources = crate::project::load_paths(&self.project)
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        self.deploy(sources).await
    }

    /// Deploys `sources` as the next version of the deployment, with one
    /// machine's rules and answers ([`crate::service::core::Core::deploy`]),
    /// and resolves once every partition's owner has applied it.
    pub(super) async fn deploy(&self, sources: SourceMap) -> Result<Deployed, DeployError> {
        let _one = self.deploying.lock().await;
        let unavailable = |why: String| DeployError::Unavailable(why);
        loop {
            self.learn_versions().await.map_err(unavailable)?;
            let planned = match self.versions.plan_deploy(sources.clone()) {
                Ok(planned) => planned,
                Err(same) => {
                    if let Ok(d) = &same {
                        self.complete(d.version).await.map_err(unavailable)?;
                    }
                    return same;
                }
            };
            // Every partition runs the live version before it is asked who
            // is inside the kept ones.
            self.complete(planned.live).await.map_err(unavailable)?;
            let next = crate::compile::to_json(&planned.next);
            let Some(inside) = self.kept_after(planned.live, next).await? else {
                // Another process deployed in between: planned again.
                continue;
            };
            let next = self.versions.next_version(planned, inside, wall_ms())?;
            let number = next.number;
            match self
                .d
                .state
                .create(version_key(number), next.record.encode().into())
                .await
            {
                Ok(_) => {}
                // Another process deployed version `number` first: this
                // one is planned again, over it.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(unavailable(format!(
                        "version {number} was not recorded ({e}); a project's compiled record \
                         must fit the server's `max_payload`"
                    )));
                }
            }
            if self.versions.get(number).is_none() {
                self.versions
                    .insert_compiled(number, next.record, next.program);
            }
            self.complete(number).await.map_err(unavailable)?;
            return Ok(next.deployed);
        }
    }

    /// What each partition's owner says of the planned program `next`
    /// ([`crate::runtime::Runtime::kept_after`]), asked until every one
    /// answers (a takeover, a replay in between) for five minutes at most;
    /// `None` when a version after `live` was recorded meanwhile.
    async fn kept_after(
        &self,
        live: u32,
        next: String,
    ) -> Result<Option<Vec<(String, u32)>>, DeployError> {
        let unavailable = |why: String| DeployError::Unavailable(why);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        let mut inside = Vec::new();
        for p in 0..self.d.partitions() {
            let ask = super::admin::Ask::KeptAfter {
                live,
                next: next.clone(),
            };
            let kept = loop {
                match self.ask(p, &ask).await {
                    Ok(kept) => break kept,
                    Err(why) => {
                        self.learn_versions().await.map_err(unavailable)?;
                        if self.versions.live().is_some_and(|v| v.number > live) {
                            return Ok(None);
                        }
                        if std::time::Instant::now() > deadline {
                            return Err(unavailable(format!("{why} (asked for five minutes)")));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            };
            let kept: Vec<(String, u32)> = serde_json::from_value(kept)
                .map_err(|e| unavailable(format!("partition {p}'s answer: {e}")))?;
            inside.extend(kept);
        }
        Ok(Some(inside))
    }

    /// Journals version `n`'s deploy in every partition unless
    /// `journaled.<n>` says it was, and waits until every owner applied it.
    /// Each partition's entry has a `Nats-Msg-Id` of its own: completing a
    /// deploy another process is journaling journals nothing twice within
    /// JetStream's window, and a `Deploy` of a version a partition runs
    /// already changes nothing.
    async fn complete(&self, n: u32) -> Result<(), String> {
        let first = self.versions.first().map_or(1, |v| v.number);
        if n <= first {
            return Ok(());
        }
        let done = self
            .d
            .state
            .get(journaled_key(n))
            .await
            .map_err(|e| format!("the deployment's versions: {e}"))?;
        if done.is_some() {
            return Ok(());
        }
        let entry = Bytes::from(Entry::Deploy { version: n }.encode());
        let mut acks = Vec::new();
        for p in 0..self.d.partitions() {
            let publish = PublishMessage::build()
                .payload(entry.clone())
                .message_id(format!("deploy.{n}.{p}"));
            let ack = self
                .d
                .js
                .send_publish(journal_subject(p), publish)
                .await
                .map_err(|e| format!("the journal refused the deploy: {e}"))?;
            acks.push((p, ack));
        }
        let mut waits = Vec::new();
        for (p, ack) in acks {
            let ack = ack
                .await
                .map_err(|e| format!("the journal refused the deploy: {e}"))?;
            waits.push((p, ack.sequence));
        }
        self.wait_applied(waits, "the deploy").await?;
        self.d
            .state
            .put(journaled_key(n), Bytes::from_static(b"applied"))
            .await
            .map_err(|e| format!("the deployment's versions: {e}"))?;
        Ok(())
    }
}

/// Learns each version as it is recorded (every process, owner or not).
pub(super) async fn watch(node: Arc<Node>) {
    loop {
        let watched = node.d.state.watch("version.*").await;
        let Ok(mut entries) = watched else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        };
        while let Some(entry) = entries.next().await {
            let Ok(entry) = entry else { break };
            let number = entry
                .key
                .strip_prefix("version.")
                .and_then(|n| n.parse::<u32>().ok());
            if let (Some(n), kv::Operation::Put) = (number, entry.operation)
                && node.versions.get(n).is_none()
            {
                match decode(n, &entry.value) {
                    Ok(record) => {
                        node.versions.insert(n, record);
                        (node.log)(&format!("version {n} of the journeys is deployed"));
                    }
                    Err(why) => (node.log)(&why),
                }
            }
        }
        if node.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
    }
}
