//! The API of one `--nats` process: Segment ingest through the same
//! handlers as one machine's ([`super::super::http`]), published to the
//! partition's journal subject and answered once JetStream acknowledged
//! every message; the actions feed from the outbox stream (`seq` is its
//! stream sequence); the deployment's clock; health; who holds what.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use sha2::Digest;

use super::outbox;
use super::partition::Progress;
use super::{Deployment, FENCE, NO_CLOCK, Node, journal_subject, lease_key, progress_key};
use crate::runtime::RuntimeOptions;
use crate::service::core::{ClockMode, ClockState, ClockTo, Incoming, IngestError, wall_ms};
use crate::service::http::{
    Access, Appending, FeedQuery, Gate, Ingesting, MAX_FEED_LIMIT, MAX_FEED_WAIT_S, admin_allowed,
    batch, clock_answer, clock_target, error, feed_line, single,
};
use crate::service::journal::Entry;
use crate::service::metrics;
use crate::service::partitions::partition_of;

pub struct NatsApp {
    pub node: Arc<Node>,
    pub access: Access,
    pub metrics: Option<&'static PrometheusHandle>,
    pub shutting_down: AtomicBool,
    /// Delivery's public routes: `[tracking]` and the Twilio channels.
    pub public: super::delivery::PublicRoutes,
    /// The sends' records, for `/admin/users/{key}`.
    pub records: super::delivery::Records,
}

impl Ingesting for NatsApp {
    fn access(&self) -> &Access {
        &self.access
    }

    fn gate(&self) -> &dyn Gate {
        &*self.node
    }
}

impl Gate for Node {
    fn mode(&self) -> ClockMode {
        self.d.mode()
    }

    fn clock(&self) -> Option<i64> {
        Some(self.clock.load(Ordering::Acquire)).filter(|&c| c != NO_CLOCK)
    }

    fn max_clock_jump_ms(&self) -> i64 {
        RuntimeOptions::MAX_CLOCK_JUMP_MS
    }

    fn append(&self, messages: Vec<Incoming>) -> Appending<'_> {
        Box::pin(async move {
            self.publish_messages(messages)
                .await
                .map_err(IngestError::Unavailable)
        })
    }

    fn refresh_clock(&self) -> crate::service::delivery::BoxFuture<'_, ()> {
        Box::pin(self.read_clock())
    }
}

/// `Nats-Msg-Id` of a message: a hash of its user key and `messageId`
/// under the deployment's key, so a retried publish is dropped by
/// JetStream's window (the runtime's own window catches what is older).
fn message_id(key: &[u8; 16], user_key: &str, id: &str) -> String {
    let mut hash = sha2::Sha256::new();
    hash.update(key);
    hash.update(user_key.as_bytes());
    hash.update([0]);
    hash.update(id.as_bytes());
    crate::compile::artifact::hex(&hash.finalize()[..16])
}

impl Node {
    /// Stamps each message with the instant it takes effect (§3) and
    /// publishes it to its partition's subject; resolves once JetStream
    /// acknowledged every one.
    ///
    /// `--clock events`: each message at the later of its timestamp and
    /// the deployment's one clock, read before, and moved to the latest
    /// only after every message is journaled (compare-and-set in the state
    /// bucket). A request cut short by a crash then leaves the clock where
    /// it was, and posted again it gets the same stamps: the messages
    /// journaled already are dropped as duplicates, the others stamped as
    /// they would have been, not at the time of the cut request's last.
    async fn publish_messages(&self, messages: Vec<Incoming>) -> Result<(), String> {
        let stamps = match self.d.mode() {
            ClockMode::Events => {
                let mut running = self.d.clock().await?.0.unwrap_or(NO_CLOCK);
                messages
                    .iter()
                    .map(|m| {
                        running = running.max(m.timestamp_ms);
                        running
                    })
                    .collect()
            }
            ClockMode::Wall => vec![wall_ms(); messages.len()],
        };
        let latest = stamps.last().copied();
        let partitions = self.d.partitions();
        let mut acks = Vec::with_capacity(messages.len());
        for (m, at) in messages.into_iter().zip(stamps) {
            let p = partition_of(&m.user_key, partitions);
            let mut publish = PublishMessage::build()
                .payload(Entry::Message { at, line: m.line }.encode().into());
            if !m.message_id.is_empty() {
                publish =
                    publish.message_id(message_id(&self.d.dedup_key, &m.user_key, &m.message_id));
            }
            let ack = self
                .d
                .js
                .send_publish(journal_subject(p), publish)
                .await
                .map_err(|e| format!("the journal refused a message: {e}"))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| format!("the journal refused a message: {e}"))?;
        }
        if let (ClockMode::Events, Some(latest)) = (self.d.mode(), latest) {
            self.raise_clock(latest).await?;
        }
        Ok(())
    }

    /// Moves the deployment's clock to `to` unless it is there or later.
    async fn raise_clock(&self, to: i64) -> Result<(), String> {
        loop {
            let (clock, revision) = self.d.clock().await?;
            if clock.is_some_and(|c| c >= to) || self.d.set_clock(to, revision).await? {
                self.clock
                    .store(clock.map_or(to, |c| c.max(to)), Ordering::Release);
                return Ok(());
            }
        }
    }

    /// `POST /admin/clock`: journals the advance in every partition, after
    /// everything acknowledged before, and waits until every partition's
    /// owner has applied it.
    async fn advance(&self, to: ClockTo) -> Result<ClockState, String> {
        let (clock, entries) = loop {
            let (clock, revision) = self.d.clock().await?;
            match to {
                ClockTo::At(t) => {
                    let t = clock.map_or(t, |c| c.max(t));
                    if Some(t) == clock || self.d.set_clock(t, revision).await? {
                        break (Some(t), vec![Entry::Tick { to: t }]);
                    }
                }
                // Every partition is moved to the latest event's time
                // first, as one runtime would be (LANGUAGE.md §4.4).
                ClockTo::End => {
                    let mut entries: Vec<Entry> =
                        clock.map(|to| Entry::Tick { to }).into_iter().collect();
                    entries.push(Entry::End);
                    break (clock, entries);
                }
            }
        };
        if let Some(clock) = clock {
            self.clock.store(clock, Ordering::Release);
        }
        let mut waits = Vec::new();
        for p in 0..self.d.partitions() {
            let mut last = 0;
            for entry in &entries {
                let ack = self
                    .d
                    .js
                    .publish(journal_subject(p), entry.encode().into())
                    .await
                    .map_err(|e| format!("the journal refused the clock: {e}"))?
                    .await
                    .map_err(|e| format!("the journal refused the clock: {e}"))?;
                last = ack.sequence;
            }
            waits.push((p, last));
        }
        let mut state = ClockState {
            now: clock,
            active_instances: 0,
            pending_timers: 0,
        };
        for progress in self.wait_applied(waits, "the clock").await? {
            state.active_instances += progress.active_instances;
            state.pending_timers += progress.pending_timers;
        }
        Ok(state)
    }

    /// Waits until each partition `p` of `waits` has applied its journal
    /// up to `position` (its lease holder says so), for at most five
    /// minutes; returns what each said.
    pub(super) async fn wait_applied(
        &self,
        waits: Vec<(u32, u64)>,
        what: &str,
    ) -> Result<Vec<Progress>, String> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut said = Vec::with_capacity(waits.len());
        for (p, position) in waits {
            loop {
                if let Some(progress) = self.progress_of_holder(p).await?
                    && progress.position >= position
                {
                    said.push(progress);
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "partition {p} did not apply {what} within five minutes (is a process \
                         holding it?)"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(said)
    }

    /// The progress partition `p`'s lease holder last wrote (a stale
    /// owner's does not count).
    async fn progress_of_holder(&self, p: u32) -> Result<Option<Progress>, String> {
        let holder = self
            .d
            .leases
            .get(lease_key(p))
            .await
            .map_err(|e| format!("the leases do not read: {e}"))?;
        let Some(holder) = holder else {
            return Ok(None);
        };
        Ok(self
            .progress(p)
            .await?
            .filter(|progress| progress.owner.as_bytes() == &holder[..]))
    }

    async fn progress(&self, p: u32) -> Result<Option<Progress>, String> {
        let bytes = self
            .d
            .state
            .get(progress_key(p))
            .await
            .map_err(|e| format!("the progress does not read: {e}"))?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

pub fn router(app: Arc<NatsApp>) -> Router {
    super::admin::routes(Router::new())
        .route("/v1/batch", post(batch::<NatsApp>))
        .route("/v1/{kind}", post(single::<NatsApp>))
        .route("/v1/actions", get(actions))
        .route("/admin/clock", post(clock))
        .route("/admin/partitions", get(partitions))
        .merge(crate::service::http::public_routes::<NatsApp>())
        .merge(crate::service::inbox_http::routes::<NatsApp>())
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(crate::service::http::healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint under `--nats`")
}

/// Ready once the first round of leases is done and every partition held
/// here is replayed.
async fn readyz(State(app): State<Arc<NatsApp>>) -> Response {
    if app.shutting_down.load(Ordering::Acquire) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    if !app.node.ready() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "taking partitions: restoring and replaying",
        );
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// `GET /v1/actions` over the outbox stream: fence records are not
/// actions and are left out.
async fn actions(
    State(app): State<Arc<NatsApp>>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(1_000).clamp(1, MAX_FEED_LIMIT);
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_FEED_WAIT_S));
    match read_feed(&app.node.d, after, limit, wait).await {
        Ok(Feed::Lines(out)) => Response::builder()
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(out))
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        Ok(Feed::Gone(first)) => {
            let kept = outbox::seq(first, 0) - 1;
            error(
                StatusCode::GONE,
                format!(
                    "the actions up to seq {kept} are past the feed's retention; read from \
                     `after={kept}`"
                ),
            )
        }
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

enum Feed {
    Lines(String),
    /// The outbox starts at this sequence now.
    Gone(u64),
}

/// The actions after `after` (at most `limit`), waiting up to `wait` for
/// one when there is none yet.
async fn read_feed(
    d: &Deployment,
    after: u64,
    limit: usize,
    wait: Duration,
) -> Result<Feed, String> {
    let deadline = Instant::now() + wait;
    let (mut start, mut read_past) = outbox::resume(after);
    loop {
        let info = d
            .outbox
            .get_info()
            .await
            .map_err(|e| format!("the outbox does not read: {e}"))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        // The first message the reader may not have read whole is gone.
        let unread = if read_past.is_some() {
            start + 1
        } else {
            start
        };
        if first > 1 && unread < first {
            return Ok(Feed::Gone(first));
        }
        if last >= start {
            let out = read_messages(d, start.max(first), read_past, last, limit).await?;
            if !out.is_empty() || Instant::now() >= deadline {
                return Ok(Feed::Lines(out));
            }
            // The reader has every action up to `last`: wait for more.
            (start, read_past) = (last + 1, None);
        } else if Instant::now() >= deadline {
            return Ok(Feed::Lines(String::new()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The feed's lines of the outbox messages `start..=last`, leaving out
/// those of message `start` at or before index `read_past`, and fence
/// records; at most `limit`.
async fn read_messages(
    d: &Deployment,
    start: u64,
    read_past: Option<u64>,
    last: u64,
    limit: usize,
) -> Result<String, String> {
    let consumer = d
        .outbox
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: d.js.client().new_inbox(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the outbox does not read: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("the outbox does not read: {e}"))?;
    let mut out = String::new();
    let mut n = 0;
    while n < limit {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let Ok(Some(message)) = next else {
            return Err("the outbox stopped answering".into());
        };
        let message = message.map_err(|e| format!("the outbox does not read: {e}"))?;
        let sequence = message
            .info()
            .map_err(|e| format!("an outbox message without its sequence: {e}"))?
            .stream_sequence;
        let is_fence = message
            .headers
            .as_ref()
            .is_some_and(|h| h.get(FENCE).is_some());
        if !is_fence {
            for (index, line) in outbox::actions(&message.payload).enumerate() {
                let skipped = sequence == start && read_past.is_some_and(|i| index as u64 <= i);
                if skipped || n >= limit {
                    continue;
                }
                feed_line(
                    &mut out,
                    outbox::seq(sequence, index),
                    &String::from_utf8_lossy(line),
                );
                n += 1;
            }
        }
        if sequence >= last {
            break;
        }
    }
    Ok(out)
}

async fn clock(State(app): State<Arc<NatsApp>>, headers: HeaderMap, body: Bytes) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    if app.node.d.mode() != ClockMode::Events {
        return error(
            StatusCode::CONFLICT,
            "the clock moves by itself with `--clock wall`; `/admin/clock` is for `--clock events`",
        );
    }
    let to = match clock_target(&body) {
        Ok(to) => to,
        Err(response) => return response,
    };
    match app.node.advance(to).await {
        Ok(state) => clock_answer(state),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// One partition as `/admin/partitions` shows it.
async fn partition_view(node: &Node, p: u32, here: &[(u32, bool)]) -> Result<Value, String> {
    let owner = node
        .d
        .leases
        .get(lease_key(p))
        .await
        .map_err(|e| format!("the leases do not read: {e}"))?
        .map(|b| String::from_utf8_lossy(&b).to_string());
    let progress = node.progress(p).await?;
    let journal = Deployment::last_on(&node.d.journal, &journal_subject(p)).await?;
    let first = Deployment::first_on(&node.d.journal, &journal_subject(p)).await?;
    let position = progress.as_ref().map_or(0, |g| g.position);
    let lag = journal.saturating_sub(position);
    let held_here = here.iter().find(|(q, _)| *q == p);
    if held_here.is_some() {
        ::metrics::gauge!(metrics::PARTITION_LAG, "partition" => p.to_string()).set(lag as f64);
    }
    Ok(json!({
        "partition": p,
        "owner": owner,
        "here": held_here.is_some(),
        "live": held_here.is_some_and(|(_, live)| *live),
        "journal_first_position": first,
        "journal_position": journal,
        "applied_position": position,
        "lag": lag,
        "checkpoint_position": progress.as_ref().map(|g| g.checkpoint),
        "checkpoint_age_s": progress
            .as_ref()
            .map(|g| (wall_ms() - g.checkpoint_ms).max(0) as f64 / 1_000.0),
        "active_instances": progress.as_ref().map(|g| g.active_instances),
    }))
}

/// `GET /admin/partitions`: who holds each partition, how far it has
/// applied its journal, how old its checkpoint is.
async fn partitions(State(app): State<Arc<NatsApp>>, headers: HeaderMap) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let here = app.node.held();
    let mut rows = Vec::new();
    for p in 0..app.node.d.partitions() {
        match partition_view(&app.node, p, &here).await {
            Ok(row) => rows.push(row),
            Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, why),
        }
    }
    axum::Json(json!({ "process": app.node.id, "partitions": rows })).into_response()
}

async fn render_metrics(State(app): State<Arc<NatsApp>>) -> Response {
    let Some(handle) = app.metrics else {
        return error(
            StatusCode::NOT_FOUND,
            "metrics go to the process's own recorder",
        );
    };
    // The lag of the partitions held here, read now.
    let here = app.node.held();
    for (p, _) in &here {
        let _ = partition_view(&app.node, *p, &here).await;
    }
    handle.run_upkeep();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Body::from(handle.render()))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}
