//! The in-app inbox under `--nats`: every customer's inbox is one key of
//! the bucket `JOURNEY_INBOX` (their user key as one token of a key,
//! [`key_token`], as in the delivery records' keys), holding their messages, so any
//! process keeps a send there and any process answers `/v1/inbox`. A
//! change is a read, the inbox's rules
//! ([`crate::service::delivery::inbox`], the same as one machine's) and a
//! compare-and-set on the key's revision, read again and redone when
//! another process wrote it in between: two processes keeping or marking
//! at once lose nothing.
//!
//! **The sweep.** A customer's expired messages are dropped when their key
//! is next written; for those who get no more messages, the stream
//! [`EXPIRY_STREAM`] says whose inbox to look at when: every keep first
//! publishes the customer's key to `journey.inbox.expiry.<end>`, `end`
//! the message's expiry rounded up to a slot as wide as the keeping
//! process's `nats.inbox_sweep_every` (milliseconds since the epoch). Once
//! a period, the process running partition 0 ([`super::sweep_inboxes`])
//! sweeps every slot whose end has passed: each customer named there
//! loses their expired messages (a key left empty is deleted), then the
//! slot's subject is purged up to what was read. So a message leaves the
//! bucket within two periods of its expiry. The index is written before
//! the inbox, so a crash leaves at most a name with nothing to sweep,
//! never a message nobody sweeps.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::delivery::key_token;
use super::{ServeError, bucket, made_stream, stream_config};
use crate::service::delivery::BoxFuture;
use crate::service::delivery::engine::jitter;
use crate::service::delivery::inbox::{InboxStore, keep_in, mark_record, shown};
use crate::service::storage::{InboxMark, InboxRecord, StorageError};

/// The customers' inboxes, a key each.
pub const INBOX_BUCKET: &str = "JOURNEY_INBOX";

/// The first byte of a key's value: its encoding (postcard of the
/// customer's [`InboxRecord`]s after it).
const FORMAT: u8 = 1;

/// How long a change goes on losing compare-and-sets to other changes of
/// the same customer's inbox before it gives up (each loss is another
/// change made, so this only ends under a storm of them).
const CONFLICTS_FOR: Duration = Duration::from_secs(10);
/// The longest wait between two tries of a change after a lost
/// compare-and-set; the waits double from 1 ms up to it, each a random
/// half to whole of it, so that changes that collided do not collide
/// again in step.
const CONFLICT_WAIT_MAX: Duration = Duration::from_millis(64);

/// Bytes of a message to the bucket kept for what is not the inbox (the
/// headers of a compare-and-set).
const HEADROOM: usize = 1_024;

/// Whose inbox holds messages expiring when: see the module's sweep.
pub const EXPIRY_STREAM: &str = "JOURNEY_INBOX_EXPIRY";

/// Its subjects' common head: a slot's end follows.
const EXPIRY_SUBJECT: &str = "journey.inbox.expiry.";

/// The index's subject of a message expiring at `expires_ms`: the end of
/// its slot of `slot_ms`, which no message named there outlives.
fn expiry_subject(expires_ms: i64, slot_ms: i64) -> String {
    let end = expires_ms
        .div_euclid(slot_ms)
        .saturating_add(1)
        .saturating_mul(slot_ms);
    format!("{EXPIRY_SUBJECT}{end}")
}

/// How many customers' names one slot's sweep remembers, so that a
/// customer named many times in a slot is looked at once; past it, the
/// set starts again (a second look finds nothing to drop).
const SWEEP_SEEN: usize = 65_536;

/// The longest the sweep waits for the next name of a slot it reads.
const SWEEP_WAIT: Duration = Duration::from_secs(10);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Slots of the index swept and purged.
    pub slots: usize,
    /// Customers' inboxes that lost expired messages.
    pub inboxes: usize,
    /// Messages dropped.
    pub messages: usize,
}

/// The inboxes in [`INBOX_BUCKET`].
pub struct NatsInbox {
    kv: kv::Store,
    js: jetstream::Context,
    /// The sweep's index, [`EXPIRY_STREAM`].
    expiry: stream::Stream,
    /// The width of the index's slots: the sweep's period.
    slot_ms: i64,
    /// The most bytes a customer's inbox takes: the server's largest
    /// message, less [`HEADROOM`].
    max_bytes: usize,
}

/// The inboxes' bucket and the sweep's index, made when missing; the
/// index's slots as wide as `sweep_every`.
pub async fn open(
    js: &jetstream::Context,
    url: &str,
    replicas: usize,
    sweep_every: Duration,
) -> Result<Arc<NatsInbox>, ServeError> {
    // Kept until rewritten: each message's own expiry drops it.
    let kv = bucket(js, url, INBOX_BUCKET, Duration::ZERO, replicas).await?;
    let expiry = made_stream(
        js,
        url,
        "the inbox's expiry index",
        stream_config(EXPIRY_STREAM, &format!("{EXPIRY_SUBJECT}*"), replicas),
    )
    .await?;
    let max_bytes = js
        .client()
        .server_info()
        .max_payload
        .saturating_sub(HEADROOM);
    Ok(Arc::new(NatsInbox {
        kv,
        js: js.clone(),
        expiry,
        slot_ms: i64::try_from(sweep_every.as_millis())
            .unwrap_or(i64::MAX)
            .max(1),
        max_bytes,
    }))
}

fn failed(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("the inbox bucket {what}: {e}"))
}

fn encode(records: &[InboxRecord]) -> Result<Bytes, StorageError> {
    let mut bytes = vec![FORMAT];
    bytes.extend(postcard::to_stdvec(records).map_err(|e| failed("cannot encode", e))?);
    Ok(bytes.into())
}

/// `records` encoded in at most `max_bytes`: while they take more, the
/// oldest message other than `new` (the one being kept) leaves, as past
/// `max_per_user`. A message that does not fit alone is refused. Each
/// message is measured once, not the whole inbox once per message left.
fn fit(
    records: &mut Vec<InboxRecord>,
    new: Option<&str>,
    max_bytes: usize,
) -> Result<Bytes, StorageError> {
    let bytes = encode(records)?;
    if bytes.len() <= max_bytes {
        return Ok(bytes);
    }
    // The format byte and the count's varint (10 bytes at most), then each
    // message's own encoding.
    let sizes = records
        .iter()
        .map(|r| postcard::to_stdvec(r).map(|b| b.len()))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|e| failed("cannot encode", e))?;
    let mut total = 1 + 10 + sizes.iter().sum::<usize>();
    let mut oldest_first: Vec<usize> = (0..records.len())
        .filter(|&i| Some(records[i].message_id.as_str()) != new)
        .collect();
    oldest_first.sort_by(|&a, &b| {
        let (a, b) = (&records[a], &records[b]);
        (a.sent_ms, &a.message_id).cmp(&(b.sent_ms, &b.message_id))
    });
    let mut leaving = vec![false; records.len()];
    for i in oldest_first {
        if total <= max_bytes {
            break;
        }
        leaving[i] = true;
        total -= sizes[i];
    }
    let mut index = 0;
    records.retain(|_| {
        index += 1;
        !leaving[index - 1]
    });
    let bytes = encode(records)?;
    if bytes.len() > max_bytes {
        return Err(failed(
            "cannot keep the message",
            format!(
                "it takes {} bytes, more than the server's largest message allows \
                 ({max_bytes} bytes for an inbox)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn decode(bytes: &[u8]) -> Result<Vec<InboxRecord>, StorageError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| failed("holds an inbox that does not read", e))
        }
        _ => Err(failed(
            "holds an inbox of another format",
            "its first byte is not 1",
        )),
    }
}

impl NatsInbox {
    /// The customer's messages and the revision they were read at (`None`:
    /// the key was never written).
    async fn read(&self, key: &str) -> Result<(Vec<InboxRecord>, Option<u64>), StorageError> {
        match self.kv.entry(key).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                Ok((decode(&entry.value)?, Some(entry.revision)))
            }
            Ok(Some(entry)) => Ok((Vec::new(), Some(entry.revision))),
            Ok(None) => Ok((Vec::new(), None)),
            Err(e) => Err(failed("does not read", e)),
        }
    }

    /// Writes `value` as the customer's inbox if the key is still at
    /// `revision`; false when another process wrote it in between.
    async fn write(
        &self,
        key: &str,
        value: Option<Bytes>,
        revision: Option<u64>,
    ) -> Result<bool, StorageError> {
        let written = match (value, revision) {
            // Emptied: deleted, unless written in between.
            (None, revision) => self
                .kv
                .delete_expect_revision(key, revision)
                .await
                .map_err(|e| {
                    (
                        e.kind() == kv::DeleteErrorKind::WrongLastRevision,
                        e.to_string(),
                    )
                }),
            (Some(value), Some(revision)) => self
                .kv
                .update(key, value, revision)
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                        e.to_string(),
                    )
                }),
            (Some(value), None) => self.kv.create(key, value).await.map(|_| ()).map_err(|e| {
                (
                    e.kind() == kv::CreateErrorKind::AlreadyExists,
                    e.to_string(),
                )
            }),
        };
        match written {
            Ok(_) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(failed("was not written", e)),
        }
    }

    /// Applies `change` to the customer's messages and writes them back
    /// when it says they changed (made to [`fit`], never dropping `new`;
    /// deleted when none is left), read again and redone while another
    /// process wins the compare-and-set; `change`'s answer. `key` is the
    /// customer's [`key_token`].
    async fn change<T>(
        &self,
        key: &str,
        new: Option<&str>,
        mut change: impl FnMut(&mut Vec<InboxRecord>) -> (T, bool),
    ) -> Result<T, StorageError> {
        let began = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let (mut records, revision) = self.read(key).await?;
            let (answer, changed) = change(&mut records);
            if !changed {
                return Ok(answer);
            }
            let value = match records.is_empty() {
                true => None,
                false => Some(fit(&mut records, new, self.max_bytes)?),
            };
            if self.write(key, value, revision).await? {
                return Ok(answer);
            }
            if began.elapsed() >= CONFLICTS_FOR {
                return Err(failed(
                    "was not written",
                    format!(
                        "other writes of the customer's inbox came first for {}s",
                        CONFLICTS_FOR.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait.mul_f64(0.5 + jitter() / 2.0)).await;
            wait = (wait * 2).min(CONFLICT_WAIT_MAX);
        }
    }

    /// Sweeps every slot of the index that ended at or before `now_ms`:
    /// the customers named there lose their messages expired at `now_ms`.
    pub async fn sweep(&self, now_ms: i64) -> Result<Swept, StorageError> {
        let mut ends = Vec::new();
        let mut subjects = self
            .expiry
            .info_with_subjects(format!("{EXPIRY_SUBJECT}*"))
            .await
            .map_err(|e| failed("index does not read", e))?;
        while let Some(subject) = subjects.next().await {
            let (subject, count) = subject.map_err(|e| failed("index does not read", e))?;
            let end = subject
                .strip_prefix(EXPIRY_SUBJECT)
                .and_then(|end| end.parse::<i64>().ok());
            if let Some(end) = end.filter(|&end| end <= now_ms && count > 0) {
                ends.push((end, subject));
            }
        }
        ends.sort_unstable();
        let mut swept = Swept::default();
        for (_, subject) in ends {
            self.sweep_slot(&subject, now_ms, &mut swept).await?;
            swept.slots += 1;
        }
        Ok(swept)
    }

    /// Sweeps the customers named on `subject`, then purges what was read.
    async fn sweep_slot(
        &self,
        subject: &str,
        now_ms: i64,
        swept: &mut Swept,
    ) -> Result<(), StorageError> {
        let last = super::Deployment::last_on(&self.expiry, subject)
            .await
            .map_err(|e| failed("index does not read", e))?;
        if last == 0 {
            return Ok(());
        }
        let mut names = self
            .expiry
            .create_consumer(OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: subject.to_string(),
                ..Default::default()
            })
            .await
            .map_err(|e| failed("index does not read", e))?
            .messages()
            .await
            .map_err(|e| failed("index does not read", e))?;
        let mut seen = HashSet::new();
        loop {
            let name = match tokio::time::timeout(SWEEP_WAIT, names.next()).await {
                Ok(Some(Ok(name))) => name,
                Ok(Some(Err(e))) => return Err(failed("index does not read", e)),
                Ok(None) => return Err(failed("index does not read", "its consumer ended")),
                Err(_) => {
                    return Err(failed(
                        "index does not read",
                        format!("no name arrived within {} s", SWEEP_WAIT.as_secs()),
                    ));
                }
            };
            let position = name
                .info()
                .map_err(|e| failed("index does not read", e))?
                .stream_sequence;
            if seen.len() >= SWEEP_SEEN {
                seen.clear();
            }
            // A name is a key token (base64url); anything else was not
            // written by a keep and names nobody.
            if let Ok(key) = std::str::from_utf8(&name.payload)
                && !key.is_empty()
                && seen.insert(key.to_string())
            {
                let dropped = self
                    .change(key, None, |records| {
                        let before = records.len();
                        records.retain(|r| r.expires_ms > now_ms);
                        let dropped = before - records.len();
                        (dropped, dropped > 0)
                    })
                    .await?;
                if dropped > 0 {
                    swept.inboxes += 1;
                    swept.messages += dropped;
                }
            }
            if position >= last {
                break;
            }
        }
        self.expiry
            .purge()
            .filter(subject)
            .sequence(last + 1)
            .await
            .map_err(|e| failed("index was not purged", e))?;
        Ok(())
    }
}

impl InboxStore for NatsInbox {
    fn keep(
        &self,
        record: InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<bool, StorageError>> {
        Box::pin(async move {
            let key = key_token(&record.user_key);
            // The index first: a crash between leaves a name with nothing
            // to sweep, never a message nobody sweeps. Also when the
            // message is there already (a redelivery after such a crash).
            self.js
                .publish(
                    expiry_subject(record.expires_ms, self.slot_ms),
                    key.clone().into(),
                )
                .await
                .map_err(|e| failed("index was not written", e))?
                .await
                .map_err(|e| failed("index was not written", e))?;
            let id = record.message_id.clone();
            self.change(&key, Some(&id), |records| {
                let kept = keep_in(records, record.clone(), max_per_user, now_ms);
                (kept, kept)
            })
            .await
        })
    }

    fn list<'a>(
        &'a self,
        user_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<InboxRecord>, StorageError>> {
        Box::pin(async move {
            let (records, _) = self.read(&key_token(user_key)).await?;
            Ok(shown(records, now_ms))
        })
    }

    fn mark<'a>(
        &'a self,
        user_key: &'a str,
        message_id: &'a str,
        mark: InboxMark,
        at_ms: i64,
    ) -> BoxFuture<'a, Result<Option<(InboxRecord, bool)>, StorageError>> {
        Box::pin(async move {
            self.change(&key_token(user_key), None, |records| {
                let found = records.iter_mut().find(|r| r.message_id == message_id);
                match found.and_then(|r| mark_record(r, mark, at_ms).map(|new| (r.clone(), new))) {
                    Some((record, new)) => (Some((record, new)), new),
                    None => (None, false),
                }
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbox_reads_back_as_written_and_another_format_is_refused() {
        let records = vec![InboxRecord {
            user_key: "ana".into(),
            message_id: "m1".into(),
            sent_ms: 1,
            expires_ms: 2,
            read_ms: Some(3),
            dismissed_ms: None,
            content: br#"{"journey":"welcome"}"#.to_vec(),
        }];
        let bytes = encode(&records).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode(&bytes).ok(), Some(records));
        assert!(decode(&[]).is_err());
        assert!(decode(&[2, 0]).is_err());
        assert!(decode(&[FORMAT, 9, 9]).is_err(), "a truncated inbox");
    }

    #[test]
    fn an_inbox_too_large_for_a_message_loses_its_oldest_but_never_the_new_one() {
        let record = |id: &str, sent_ms: i64| InboxRecord {
            user_key: "ana".into(),
            message_id: id.into(),
            sent_ms,
            expires_ms: i64::MAX,
            read_ms: None,
            dismissed_ms: None,
            content: vec![b'x'; 1_000],
        };
        // The new message is the oldest by its send: it stays regardless.
        let mut records = vec![
            record("b", 2),
            record("c", 3),
            record("new", 1),
            record("d", 4),
        ];
        let one = encode(&records[..1]).map_or(0, |b| b.len());
        let bytes = fit(&mut records, Some("new"), 2 * one + 10).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        assert_eq!(ids, vec!["new", "d"]);
        assert!(bytes.len() <= 2 * one + 10);
        assert_eq!(decode(&bytes).ok(), Some(records.clone()));
        // One that cannot fit alone is refused, with its size.
        let refused = fit(&mut records, Some("new"), 100).err().map(|e| e.0);
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("largest message")),
            "{refused:?}"
        );
        // Small enough: unchanged.
        let mut small = vec![record("a", 1)];
        assert!(fit(&mut small, None, 10_000).is_ok());
        assert_eq!(small.len(), 1);
    }
}
