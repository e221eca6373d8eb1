//! The in-app inbox under `--nats`: every customer's inbox is one key of
//! the bucket `JOURNEY_INBOX` (their user key as one token of a key,
//! [`key_token`], as in the delivery records' keys), holding their messages, so any
//! process keeps a send there and any process answers `/v1/inbox`. A
//! change is a read, the inbox's rules
//! ([`crate::service::delivery::inbox`], the same as one machine's) and a
//! compare-and-set on the key's revision, read again and redone when
//! another process wrote it in between: two processes keeping or marking
//! at once lose nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use super::delivery::key_token;
use super::{ServeError, bucket};
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

/// The inboxes in [`INBOX_BUCKET`].
pub struct NatsInbox {
    kv: kv::Store,
    /// The most bytes a customer's inbox takes: the server's largest
    /// message, less [`HEADROOM`].
    max_bytes: usize,
}

/// The inboxes' bucket, made when missing.
pub async fn open(
    js: &jetstream::Context,
    url: &str,
    replicas: usize,
) -> Result<Arc<dyn InboxStore>, ServeError> {
    // Kept until rewritten: each message's own expiry drops it.
    let kv = bucket(js, url, INBOX_BUCKET, Duration::ZERO, replicas).await?;
    let max_bytes = js
        .client()
        .server_info()
        .max_payload
        .saturating_sub(HEADROOM);
    Ok(Arc::new(NatsInbox { kv, max_bytes }))
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
        value: Bytes,
        revision: Option<u64>,
    ) -> Result<bool, StorageError> {
        let written = match revision {
            Some(revision) => self.kv.update(key, value, revision).await.map_err(|e| {
                (
                    e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                    e.to_string(),
                )
            }),
            None => self.kv.create(key, value).await.map_err(|e| {
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
    /// when it says they changed (made to [`fit`], never dropping `new`), read again and redone while another
    /// process wins the compare-and-set; `change`'s answer.
    async fn change<T>(
        &self,
        user_key: &str,
        new: Option<&str>,
        mut change: impl FnMut(&mut Vec<InboxRecord>) -> (T, bool),
    ) -> Result<T, StorageError> {
        let key = key_token(user_key);
        let began = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let (mut records, revision) = self.read(&key).await?;
            let (answer, changed) = change(&mut records);
            if !changed {
                return Ok(answer);
            }
            let value = fit(&mut records, new, self.max_bytes)?;
            if self.write(&key, value, revision).await? {
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
}

impl InboxStore for NatsInbox {
    fn keep(
        &self,
        record: InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<bool, StorageError>> {
        Box::pin(async move {
            let (user_key, id) = (record.user_key.clone(), record.message_id.clone());
            self.change(&user_key, Some(&id), |records| {
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
            self.change(user_key, None, |records| {
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
