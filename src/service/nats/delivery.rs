//! Delivery under `--nats` (SERVICE.md §9): the one delivery engine
//! ([`engine`](crate::service::delivery::engine)) fed by a durable pull consumer that every process shares,
//! so each send is delivered by one process at a time.
//!
//! The outbox holds runs of actions, one message each (see
//! [`super::outbox`]), and a run's sends finish at different times, so
//! they are not delivered from the outbox itself: a first shared consumer,
//! `journey-fanout`, copies each run's sends to the work-queue stream
//! `JOURNEY_SEND` (`journey.send.<p>`, one message a send, `Nats-Msg-Id`
//! its feed `seq`, so a run copied again after a crash adds nothing within
//! the stream's de-duplication window, and after it the send's record says
//! it is done), and acknowledges the run once every copy is stored.
//!
//! ```text
//! JOURNEY_OUT ──`journey-fanout`──▶ JOURNEY_SEND, a send a message
//! JOURNEY_SEND ──pull consumer `journey-delivery` (explicit acks)──▶ engine
//!   engine ──attempt──▶ record in JOURNEY_DELIVERIES (by user and message id)
//!     Sent/Fail ──▶ outcome event to JOURNEY_IN (the recipient's partition)
//!               ──▶ record ──▶ failed: JOURNEY_DEAD journey.dead.<p> ──▶ ack
//!     Retry ──────▶ record ──▶ NAK with the backoff's delay (any process
//!                              takes it up again, with its record)
//! ```
//!
//! While a process holds an action (queued, waiting for its channel's
//! rate, or in an attempt) it tells JetStream so every third of the ack
//! wait (`+WPI`); a process that dies lets its actions go after one ack
//! wait, and another takes them up with their records: the attempt in
//! flight at the crash is made again, with the same idempotency key (the
//! message id), and no other. An outcome event is journaled before the
//! record that says it was: journaled again after a crash, it has the
//! same `Nats-Msg-Id` and `messageId` (`<message_id>:<outcome>`) and is
//! dropped as a repeat.
//!
//! An action delivered `nats.max_deliver` times is given up: its last
//! transient failure makes it `message.failed`, and it goes to the
//! dead-letter stream `JOURNEY_DEAD`, as every failed send does. An action
//! whose last delivery ended without an answer (its process died each
//! time) is there too, as JetStream's `MAX_DELIVERIES` advisory.
//!
//! Each record is kept under its recipient and message id
//! ([`record_key`]), so `/admin/users/{key}` reads a customer's records
//! with one filtered consumer ([`Records::of_user`]); the sends of a
//! `log` channel get their `logged` record from the fan-out. An audience
//! sync asks the customer's partition's owner for their email and phone
//! ([`Backend::contact`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::{AckKind, Acker, PublishMessage};
use async_nats::jetstream::{self, kv, stream};
use async_nats::subject::Subject;
use base64::Engine as _;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::admin::Ask;
use super::http::NatsApp;
use super::{
    FENCE, NatsOptions, Node, ServeError, ServeOptions, bucket, made_stream, stream_config,
    unreachable,
};
use crate::service::core::{ClockMode, wall_ms};
use crate::service::delivery::engine::{Backend, Engine, Feed, Job, Requeue, logged_counter};
use crate::service::delivery::inbox::{InboxKeys, InboxStore};
use crate::service::delivery::tracking::Tracking;
use crate::service::delivery::twilio::TwilioProvider;
use crate::service::delivery::{BoxFuture, Channel};
use crate::service::http::{Gate, Public};
use crate::service::inbox_http::Inboxes;
use crate::service::partitions::partition_of;
use crate::service::storage::{Delivery, DeliveryStatus};

/// The durable pull consumer every process delivers from.
pub const DELIVERY_CONSUMER: &str = "journey-delivery";
/// The durable pull consumer that copies the outbox's sends to
/// [`SEND_STREAM`].
pub const FANOUT_CONSUMER: &str = "journey-fanout";
/// The sends to deliver, one a message (`journey.send.<p>`), each removed
/// once delivered (a work queue).
pub const SEND_STREAM: &str = "JOURNEY_SEND";
/// A copied send's feed `seq` in the outbox.
const SEND_SEQ: &str = "Journey-Seq";
/// When the outbox took the send's run, in milliseconds since the epoch.
const SEND_COMMITTED: &str = "Journey-Committed";
/// Each delivered send's record, by its message id (base64url).
pub const DELIVERY_BUCKET: &str = "JOURNEY_DELIVERIES";
/// Failed sends (`journey.dead.<p>`) and JetStream's advisories of
/// actions that ran out of deliveries.
pub const DEAD_STREAM: &str = "JOURNEY_DEAD";
/// A dead letter's outbox stream sequence.
pub const DEAD_SEQ: &str = "Journey-Seq";
/// A dead letter's message id.
pub const DEAD_MESSAGE_ID: &str = "Journey-Message-Id";
/// Why a dead letter failed.
pub const DEAD_ERROR: &str = "Journey-Error";
/// Actions held in memory by one process at once, at most.
const MAX_HELD: usize = 2_000;
/// Actions asked for in one pull, at most.
const PULL_AT_ONCE: usize = 256;

impl Node {
    /// Takes the deployment's clock (`--clock events`) into this
    /// process's, which otherwise moves only with its own ingest.
    pub(super) async fn read_clock(&self) {
        if self.d.mode() != ClockMode::Events {
            return;
        }
        if let Ok((Some(clock), _)) = self.d.clock().await {
            self.clock
                .fetch_max(clock, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// `[nats]`'s delivery settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Deliveries of one action, at most (the consumer's `max_deliver`).
    pub max_deliver: i64,
    /// The consumer's ack wait, at least (raised to the longest channel
    /// `timeout` and a second).
    pub ack_wait: Duration,
}

fn dead_subject(p: u32) -> String {
    format!("journey.dead.{p}")
}

fn send_subject(p: u32) -> String {
    format!("journey.send.{p}")
}

/// JetStream's advisory of an action of the outbox that ran out of
/// deliveries.
fn max_deliveries_advisory() -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{SEND_STREAM}.{DELIVERY_CONSUMER}")
}

/// A send's key in [`DELIVERY_BUCKET`]: its recipient's key and its
/// message id, each in base64url, joined by `.` (a key takes letters,
/// digits, `-`, `_`, `=`, `.` and `/` only), so that a customer's records
/// are the keys under `<base64url(user key)>.`.
pub fn record_key(user_key: &str, message_id: &str) -> String {
    format!("{}.{}", key_token(user_key), key_token(message_id))
}

/// `text` as one token of a key: base64url, `=` for the empty text (a
/// token is never empty).
pub fn key_token(text: &str) -> String {
    if text.is_empty() {
        "=".into()
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
}

/// How long an audience sync waits for the customer's partition's owner
/// to say their email and phone (then the attempt is retried).
const CONTACT_WAIT: Duration = Duration::from_secs(5);
/// How long reading one customer's records waits for the next of them.
const RECORDS_WAIT: Duration = Duration::from_secs(5);

/// A record as [`DELIVERY_BUCKET`] keeps it: with its send's feed `seq`.
#[derive(Serialize, Deserialize)]
struct Kept {
    seq: u64,
    #[serde(flatten)]
    record: Delivery,
}

/// The sends' records: [`DELIVERY_BUCKET`], by [`record_key`].
#[derive(Clone)]
pub struct Records {
    store: kv::Store,
}

impl Records {
    /// Writes the record of the send `seq`.
    async fn put(&self, seq: u64, record: &Delivery) -> Result<(), String> {
        let kept = Kept {
            seq,
            record: record.clone(),
        };
        let bytes = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
        self.store
            .put(
                record_key(&record.user_id, &record.message_id),
                bytes.into(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("the delivery record was not written: {e}"))
    }

    /// The record of the send `message_id` to `user_key`, if written.
    async fn get(&self, user_key: &str, message_id: &str) -> Result<Option<Delivery>, String> {
        let bytes = self
            .store
            .get(record_key(user_key, message_id))
            .await
            .map_err(|e| format!("the delivery records do not read: {e}"))?;
        Ok(bytes
            .and_then(|b| serde_json::from_slice::<Kept>(&b).ok())
            .map(|kept| kept.record))
    }

    /// The newest `limit` records of `user_key`'s sends (by `seq`, newest
    /// first), as `/admin/users/{key}` shows them: every key under the
    /// customer's token, read through an ordered consumer (the bucket
    /// keeps one message a key).
    pub async fn of_user(
        &self,
        user_key: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, String> {
        let unread = |e: &dyn std::fmt::Display| format!("the delivery records do not read: {e}");
        let consumer = self
            .store
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("{}{}.>", self.store.prefix, key_token(user_key)),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| unread(&e))?;
        let mut left = consumer.cached_info().num_pending;
        let mut rows = Vec::new();
        if left > 0 {
            let mut messages = consumer.messages().await.map_err(|e| unread(&e))?;
            while left > 0 {
                // A record that expired meanwhile is not waited for long.
                let Ok(next) = tokio::time::timeout(RECORDS_WAIT, messages.next()).await else {
                    break;
                };
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(unread(&e)),
                    None => break,
                };
                left -= 1;
                if let Ok(kept) = serde_json::from_slice::<Kept>(&message.payload) {
                    rows.push((kept.seq, kept.record));
                }
            }
        }
        rows.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        rows.truncate(limit);
        Ok(rows)
    }
}

/// The `--nats` backend of the delivery engine.
pub struct Nats {
    node: Arc<Node>,
    records: Records,
    max_deliver: i64,
    ack_wait: Duration,
}

/// An action held by this process: how to answer JetStream for it.
pub struct Ticket {
    js: jetstream::Context,
    reply: Option<Subject>,
    /// Its outbox stream sequence and partition.
    seq: u64,
    partition: u32,
    /// Deliveries so far, this one included.
    delivered: i64,
    /// The action's JSON line (for the dead-letter stream).
    line: String,
    /// Tells JetStream the action is being worked on, while it is held.
    heartbeat: tokio::task::AbortHandle,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl Ticket {
    fn acker(&self) -> Acker {
        Acker::new(self.js.clone(), self.reply.clone())
    }
}

impl Nats {
    /// Publishes a failed send to the dead-letter stream (once: its
    /// `Nats-Msg-Id` is its message id).
    async fn dead_letter(&self, ticket: &Ticket, record: &Delivery) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert(DEAD_SEQ, ticket.seq.to_string().as_str());
        headers.insert(DEAD_MESSAGE_ID, record.message_id.as_str());
        let error = record.error.as_deref().unwrap_or_default();
        // A header value is one line.
        headers.insert(DEAD_ERROR, error.replace(['\r', '\n'], " ").as_str());
        let publish = PublishMessage::build()
            .payload(ticket.line.clone().into())
            .headers(headers)
            .message_id(format!("dead:{}", record.message_id));
        self.node
            .d
            .js
            .send_publish(dead_subject(ticket.partition), publish)
            .await
            .map_err(|e| format!("the dead-letter stream refused a send: {e}"))?
            .await
            .map(|_| ())
            .map_err(|e| format!("the dead-letter stream refused a send: {e}"))
    }
}

impl Backend for Nats {
    type Ticket = Ticket;

    fn gate(&self) -> &dyn Gate {
        &*self.node
    }

    /// Asked of the customer's partition's owner (`journey.admin.<p>`):
    /// an error, and so a retry, when no owner answers in time.
    fn contact<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let p = partition_of(user_id, self.node.d.partitions());
            let ask = Ask::Contact {
                key: user_id.to_string(),
            };
            self.node.ask_within(p, &ask, CONTACT_WAIT).await
        })
    }

    fn finish<'a>(
        &'a self,
        ticket: &'a Ticket,
        record: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            ticket.heartbeat.abort();
            self.records.put(ticket.seq, record).await?;
            if record.status == DeliveryStatus::Failed {
                self.dead_letter(ticket, record).await?;
            }
            ticket
                .acker()
                .double_ack()
                .await
                .map_err(|e| format!("the outbox did not take the ack: {e}"))
        })
    }

    fn again<'a>(
        &'a self,
        ticket: &'a Ticket,
        record: &'a Delivery,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            ticket.heartbeat.abort();
            self.records.put(ticket.seq, record).await?;
            ticket
                .acker()
                .ack_with(AckKind::Nak(Some(wait)))
                .await
                .map_err(|e| format!("the outbox did not take the NAK: {e}"))?;
            Ok(Requeue::Source)
        })
    }

    fn last_chance(&self, ticket: &Ticket) -> Option<String> {
        (ticket.delivered >= self.max_deliver).then(|| {
            format!(
                "gave up after {} deliveries (`nats.max_deliver`)",
                ticket.delivered
            )
        })
    }
}

/// What delivery's public routes (tracking links, Twilio's callbacks, the
/// in-app inbox) need under `--nats`.
pub struct PublicRoutes {
    tracking: Option<Arc<Tracking>>,
    twilio: Vec<Arc<TwilioProvider>>,
    /// `[inbox]`'s tokens and the inboxes' bucket.
    inbox: Option<(Arc<InboxKeys>, Arc<dyn InboxStore>)>,
}

impl Public for NatsApp {
    fn tracking(&self) -> Option<&Arc<Tracking>> {
        self.public.tracking.as_ref()
    }

    fn twilio(&self) -> &[Arc<TwilioProvider>] {
        &self.public.twilio
    }
}

impl Inboxes for NatsApp {
    fn inboxes(&self) -> Option<(&InboxKeys, &dyn InboxStore)> {
        let (keys, store) = self.public.inbox.as_ref()?;
        Some((&**keys, &**store))
    }
}

/// The config's channels, their providers built (`inbox` over `inboxes`,
/// the bucket every process shares), and what the public routes need.
pub fn channels(
    options: &ServeOptions,
    inboxes: &Arc<dyn InboxStore>,
) -> Result<(Vec<Channel>, PublicRoutes), ServeError> {
    let tables = crate::service::delivery::Tables {
        channels: &options.channels,
        audiences: &options.audiences,
    };
    let built = crate::service::delivery::channels(tables, &options.shared, Some(inboxes))
        .map_err(ServeError::refused)?;
    let public = PublicRoutes {
        tracking: options.tracking.clone(),
        twilio: crate::service::delivery::twilio::providers(&built),
        inbox: options.inbox.clone().map(|keys| (keys, inboxes.clone())),
    };
    Ok((built, public))
}

/// Starts delivery for this process: the dead-letter stream, the records'
/// bucket and the shared consumer, made when missing; the records for the
/// admin view.
pub async fn start(
    node: Arc<Node>,
    channels: Vec<Channel>,
    options: &ServeOptions,
    nats: &NatsOptions,
) -> Result<(Engine<Nats>, Records), ServeError> {
    let (settings, replicas) = (nats.delivery, nats.replicas.max(1));
    let d = &node.d;
    let url = nats.url.as_str();
    // A record is kept as long as its action is.
    let records = bucket(
        &d.js,
        url,
        DELIVERY_BUCKET,
        options.action_retention,
        replicas,
    )
    .await?;
    let mut dead = stream_config(DEAD_STREAM, "journey.dead.*", replicas);
    dead.subjects.push(max_deliveries_advisory());
    made_stream(&d.js, url, "the dead-letter stream", dead).await?;
    let longest = channels
        .iter()
        .map(|c| c.policy.timeout)
        .max()
        .unwrap_or_default();
    let ack_wait = settings
        .ack_wait
        .max(longest.saturating_add(Duration::from_secs(1)));
    let delivers = channels.iter().any(|c| c.provider.delivers());
    let consumers = if delivers {
        let sends = made_stream(
            &d.js,
            url,
            "the sends' stream",
            stream::Config {
                retention: stream::RetentionPolicy::WorkQueue,
                ..stream_config(SEND_STREAM, "journey.send.*", replicas)
            },
        )
        .await?;
        let fanout = fanout_consumer(&node, url).await?;
        Some((
            fanout,
            consumer(&sends, url, settings.max_deliver, ack_wait).await?,
        ))
    } else {
        None
    };
    let records = Records { store: records };
    let backend = Nats {
        node,
        records: records.clone(),
        max_deliver: settings.max_deliver,
        ack_wait,
    };
    let engine = Engine::launch(backend, channels, MAX_HELD, move |feed| async move {
        if let Some((fanout, consumer)) = consumers {
            tokio::join!(fan_out(&feed, fanout), pull(&feed, consumer));
        }
    })
    .map_err(ServeError::failed)?;
    Ok((engine, records))
}

/// The shared consumer of [`SEND_STREAM`], created by the first process
/// that delivers (the fan-out decides from where the outbox's sends are
/// delivered; a work queue takes only a consumer of all it holds).
async fn consumer(
    sends: &stream::Stream,
    url: &str,
    max_deliver: i64,
    ack_wait: Duration,
) -> Result<consumer::Consumer<pull::Config>, ServeError> {
    let config = pull::Config {
        durable_name: Some(DELIVERY_CONSUMER.into()),
        name: Some(DELIVERY_CONSUMER.into()),
        description: Some("journey delivery: every process pulls from it".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        max_deliver,
        max_ack_pending: 100_000,
        ..Default::default()
    };
    durable(sends, config, url, "the delivery consumer").await
}

/// The durable consumer of `config` on `stream`: created, or, made by
/// another process (with other settings, which a server before 2.10 does
/// not update), used as it is.
async fn durable(
    stream: &stream::Stream,
    config: pull::Config,
    url: &str,
    what: &str,
) -> Result<consumer::Consumer<pull::Config>, ServeError> {
    let name = config.durable_name.clone().unwrap_or_default();
    match stream.create_consumer(config).await {
        Ok(consumer) => Ok(consumer),
        Err(made) => stream
            .get_consumer(&name)
            .await
            .map_err(|e| unreachable(url, format!("{what}: {made}; {e}"))),
    }
}

/// The shared consumer of the outbox's runs, created by the first process
/// that delivers (from the outbox's end then: actions written before are
/// not delivered).
async fn fanout_consumer(
    node: &Node,
    url: &str,
) -> Result<consumer::Consumer<pull::Config>, ServeError> {
    let config = pull::Config {
        durable_name: Some(FANOUT_CONSUMER.into()),
        name: Some(FANOUT_CONSUMER.into()),
        description: Some("journey delivery: copies the outbox's sends to JOURNEY_SEND".into()),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        ack_wait: FANOUT_ACK_WAIT,
        max_ack_pending: 1_000,
        ..Default::default()
    };
    durable(&node.d.outbox, config, url, "the fan-out consumer").await
}

/// How long a run of the outbox is the fan-out's of one process before
/// another takes it: its copies are a few publishes.
const FANOUT_ACK_WAIT: Duration = Duration::from_secs(30);

/// Copies the sends of the outbox's runs to [`SEND_STREAM`], a run at a
/// time, acknowledging each run once its copies are stored.
async fn fan_out(feed: &Feed<Nats>, consumer: consumer::Consumer<pull::Config>) {
    each_message(feed, &consumer, Pulled::Runs).await;
}

/// Publishes the deliverable actions of one outbox run to
/// [`SEND_STREAM`]; `Err` when one was not stored.
async fn copy_sends(feed: &Feed<Nats>, run: &jetstream::Message) -> Result<(), String> {
    if run.headers.as_ref().is_some_and(|h| h.get(FENCE).is_some()) {
        return Ok(());
    }
    let info = run.info().map_err(|e| e.to_string())?;
    let committed_ms = i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or_else(|_| wall_ms());
    let sequence = info.stream_sequence;
    let partition = run
        .subject
        .as_str()
        .rsplit('.')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0);
    let subject = send_subject(partition);
    let js = &feed.backend().node.d.js;
    let mut stored = Vec::new();
    let mut logged = Vec::new();
    for (index, line) in super::outbox::actions(&run.payload).enumerate() {
        let seq = super::outbox::seq(sequence, index);
        let line = String::from_utf8_lossy(line).into_owned();
        let Some(send) = feed.deliverable(seq, line.clone(), committed_ms) else {
            continue;
        };
        let record = feed.record(&send);
        if record.status != DeliveryStatus::Pending {
            // A channel without a provider: the outbox is its output, and
            // its record says `logged`, as on one machine.
            logged_counter(&record).increment(1);
            logged.push((seq, record));
            continue;
        }
        let mut headers = HeaderMap::new();
        headers.insert(SEND_SEQ, seq.to_string().as_str());
        headers.insert(SEND_COMMITTED, committed_ms.to_string().as_str());
        let publish = PublishMessage::build()
            .payload(line.into())
            .headers(headers)
            .message_id(seq.to_string());
        let ack = js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| e.to_string())?;
        stored.push(ack);
    }
    let records = &feed.backend().records;
    let written = logged.iter().map(|(seq, record)| records.put(*seq, record));
    futures_util::future::try_join_all(written).await?;
    for ack in stored {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Pulls the sends as room is free, and hands each to the engine with its
/// record so far.
async fn pull(feed: &Feed<Nats>, consumer: consumer::Consumer<pull::Config>) {
    each_message(feed, &consumer, Pulled::Sends).await;
}

/// What a consumer's messages are.
#[derive(Clone, Copy)]
enum Pulled {
    /// The outbox's runs, for [`copy_sends`].
    Runs,
    /// Sends, for the engine ([`take`]), as its queues have room.
    Sends,
}

/// Pulls `consumer`'s messages and hands each on as `pulled` says, until
/// delivery stops.
async fn each_message(
    feed: &Feed<Nats>,
    consumer: &consumer::Consumer<pull::Config>,
    pulled: Pulled,
) {
    loop {
        let room = match pulled {
            Pulled::Runs => Some(PULL_AT_ONCE),
            Pulled::Sends => feed.room().await,
        };
        let Some(room) = room else {
            return;
        };
        let batch = consumer
            .batch()
            .max_messages(room.min(PULL_AT_ONCE))
            .expires(Duration::from_secs(2))
            .messages()
            .await;
        let mut messages = match batch {
            Ok(messages) => messages,
            Err(_) => {
                // The server is away: try again shortly.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = feed.stopped() => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = feed.stopped() => return,
            };
            match next {
                Some(Ok(message)) => match pulled {
                    Pulled::Runs => {
                        if copy_sends(feed, &message).await.is_ok() {
                            let _ = message.double_ack().await;
                        }
                        // Else it comes again after the ack wait.
                    }
                    Pulled::Sends => take(feed, message).await,
                },
                Some(Err(_)) | None => break,
            }
        }
    }
}

/// One action from the consumer: a send is given to the engine, anything
/// else acknowledged.
async fn take(feed: &Feed<Nats>, message: jetstream::Message) {
    let nats = feed.backend();
    let Ok(info) = message.info() else {
        return;
    };
    let delivered = info.delivered;
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str().parse::<i64>().ok())
    };
    let (Some(seq), Some(committed_ms)) = (header(SEND_SEQ), header(SEND_COMMITTED)) else {
        // Not a copy the fan-out made: nothing to deliver.
        let _ = message.ack().await;
        return;
    };
    let seq = u64::try_from(seq).unwrap_or_default();
    let partition = message
        .subject
        .as_str()
        .rsplit('.')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0);
    let line = String::from_utf8_lossy(&message.payload).into_owned();
    // Where to answer JetStream for it: `split` moves it into the acker.
    let reply = message.reply.clone();
    let acker = message.split().1;
    let Some(send) = feed.deliverable(seq, line.clone(), committed_ms) else {
        let _ = acker.ack().await;
        return;
    };
    let fresh = feed.record(&send);
    if fresh.status != DeliveryStatus::Pending {
        logged_counter(&fresh).increment(1);
        let _ = acker.ack().await;
        return;
    }
    let record = match nats.records.get(&send.user_id, &send.message_id).await {
        Ok(Some(record)) => record,
        Ok(None) => fresh,
        // Unread, the action comes again after the ack wait.
        Err(_) => return,
    };
    if record.status != DeliveryStatus::Pending {
        // Finished by a process that died before its ack.
        let _ = acker.double_ack().await;
        return;
    }
    let delay = record
        .next_at_ms
        .map_or(0, |at| u64::try_from(at - wall_ms()).unwrap_or(0));
    let ticket = Ticket {
        js: nats.node.d.js.clone(),
        reply: reply.clone(),
        seq,
        partition,
        delivered,
        line,
        heartbeat: heartbeat(Acker::new(nats.node.d.js.clone(), reply), nats.ack_wait),
    };
    feed.take(
        Job {
            ticket,
            record,
            message: send,
        },
        Duration::from_millis(delay),
    );
}

/// Tells JetStream every third of the ack wait that the action is being
/// worked on, until aborted.
fn heartbeat(acker: Acker, ack_wait: Duration) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ack_wait / 3);
        every.tick().await;
        loop {
            every.tick().await;
            let _ = acker.ack_with(AckKind::Progress).await;
        }
    })
    .abort_handle()
}
