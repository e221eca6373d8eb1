//! `journey serve --nats URL` (SERVICE.md §9): the journal, the outbox,
//! the checkpoints and the deployment's facts in NATS JetStream, so that
//! any number of processes share one deployment.
//!
//! ```text
//! ingest (any process) ──publish, Nats-Msg-Id──▶ JOURNEY_IN  journey.in.<p>
//!                                                   │ ordered consumer, from the checkpoint on
//!                                                   ▼
//!             the partition's owner (a lease in JOURNEY_LEASES): core::Partition
//!                                                   │ one message per run of actions, Nats-Msg-Id
//!                                                   ▼ p.position.index, expected last subject seq
//!                                               JOURNEY_OUT journey.out.<p>  ──▶ /v1/actions
//! ```
//!
//! - [`Deployment`]: the streams, buckets and object store, created by the
//!   first process; the deployment's fixed facts (partitions, clock, the
//!   de-duplication key) and its versions of the journeys in the `JOURNEY`
//!   bucket, the `--clock events` clock beside them.
//! - [`lease`]: which process runs which partition.
//! - [`partition`]: one held partition: fence, restore, replay, live.
//! - [`checkpoint`]: a partition's checkpoints, an object each, and the
//!   pointer to the newest, moved by compare-and-set.
//! - [`outbox`]: the outbox's messages (runs of actions) and the feed's
//!   `seq` of each action.
//! - [`http`]: the API of a process (ingest through the same handlers as
//!   one machine's).
//! - [`admin`]: `/admin/users/{key}`, `/admin/journeys` and
//!   `/admin/reload`, asked of the partitions' owners over NATS.
//! - [`deploy`]: deploys across processes, with one machine's rules.
//! - [`trim`]: the journal before a partition's checkpoint purged.
//! - [`inbox`]: the customers' in-app inboxes, a key each in
//!   `JOURNEY_INBOX`.

mod admin;
pub mod checkpoint;
pub mod delivery;
mod deploy;
pub mod http;
pub mod inbox;
mod lease;
mod outbox;
mod partition;
mod trim;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::core::{ClockMode, DeployError, wall_ms};
use super::delivery::inbox::InboxStore;
use super::storage::Meta;
use super::versions::{Record, Versions, diagnostics_text};
use super::{Log, ServeError, ServeOptions, check_meta, new_meta};
use crate::source::SourceMap;

/// The journal's stream: `journey.in.<p>` per partition.
pub const JOURNAL_STREAM: &str = "JOURNEY_IN";
/// The outbox's stream: `journey.out.<p>` per partition.
pub const OUTBOX_STREAM: &str = "JOURNEY_OUT";
/// The deployment's facts, its versions, its clock and each partition's
/// progress.
pub const STATE_BUCKET: &str = "JOURNEY";
/// Who holds which partition, and which processes are alive; every key
/// expires a lease's time after it was last written.
pub const LEASE_BUCKET: &str = "JOURNEY_LEASES";
/// The partitions' checkpoints, `partition-<p>.<position>.<random>`; the
/// newest is named by `checkpoint.<p>` in [`STATE_BUCKET`].
pub const CHECKPOINT_BUCKET: &str = "JOURNEY_CHECKPOINTS";

/// An outbox message's partition position (the journal's stream sequence)
/// of its last action.
const POSITION: &str = "Journey-Position";
/// The index of an outbox message's last action among its position's
/// actions.
const INDEX: &str = "Journey-Index";
/// A fence record: the process that wrote it.
const FENCE: &str = "Journey-Fence";
/// A fence record: the last `position.index` the outbox held before it.
const APPLIED: &str = "Journey-Applied";

fn journal_subject(p: u32) -> String {
    format!("journey.in.{p}")
}

fn outbox_subject(p: u32) -> String {
    format!("journey.out.{p}")
}

fn lease_key(p: u32) -> String {
    format!("lease.{p}")
}

fn progress_key(p: u32) -> String {
    format!("progress.{p}")
}

/// What `--nats` adds to [`ServeOptions`].
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// The server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// How long a lease outlives its last heartbeat (fixed when the
    /// deployment is created; a heartbeat is sent every third of it).
    pub lease_ttl: Duration,
    /// JetStream's replicas of every stream and bucket (at creation).
    pub replicas: usize,
    /// `max_deliver` and `ack_wait` of delivery's consumer.
    pub delivery: delivery::Settings,
    /// How often the in-app inboxes' expired messages are swept.
    pub inbox_sweep_every: Duration,
}

impl NatsOptions {
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
}

/// The deployment's JetStream handles and fixed facts.
pub struct Deployment {
    js: jetstream::Context,
    journal: stream::Stream,
    outbox: stream::Stream,
    state: kv::Store,
    leases: kv::Store,
    /// The lease bucket's stream: who is alive is the count of its
    /// `node.*` subjects, one request.
    lease_stream: stream::Stream,
    checkpoints: object_store::ObjectStore,
    meta: Meta,
    mode: ClockMode,
    dedup_key: [u8; 16],
    /// The lease bucket's time to live.
    lease_ttl: Duration,
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> ServeError {
    ServeError::refused(format!("NATS at `{url}`: {e}"))
}

impl Deployment {
    /// Connects, creates what is missing (the first process of a
    /// deployment), and checks the deployment's facts against `options`.
    async fn open(options: &ServeOptions, nats: &NatsOptions) -> Result<Deployment, ServeError> {
        let url = nats.url.as_str();
        let client = async_nats::ConnectOptions::new()
            .name("journey serve")
            .connect(url)
            .await
            .map_err(|e| unreachable(url, format!("cannot connect: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .backpressure_on_inflight(true)
            .build(client);
        let replicas = nats.replicas.max(1);
        let journal = made_stream(
            &js,
            url,
            "the journal stream",
            stream_config(JOURNAL_STREAM, "journey.in.*", replicas),
        )
        .await?;
        let outbox = made_stream(
            &js,
            url,
            "the outbox stream",
            stream::Config {
                max_age: options.action_retention,
                ..stream_config(OUTBOX_STREAM, "journey.out.*", replicas)
            },
        )
        .await?;
        let state = bucket(&js, url, STATE_BUCKET, Duration::ZERO, replicas).await?;
        let leases = bucket(&js, url, LEASE_BUCKET, nats.lease_ttl, replicas).await?;
        let lease_stream = js
            .get_stream(format!("KV_{LEASE_BUCKET}"))
            .await
            .map_err(|e| unreachable(url, format!("the lease bucket: {e}")))?;
        let lease_ttl = leases
            .status()
            .await
            .map(|s| s.max_age())
            .map_err(|e| unreachable(url, format!("the lease bucket: {e}")))?;
        if lease_ttl < Duration::from_millis(300) {
            return Err(ServeError::refused(format!(
                "the lease bucket `{LEASE_BUCKET}` keeps keys {lease_ttl:?}; leases need at \
                 least 300ms"
            )));
        }
        let checkpoints = match js.get_object_store(CHECKPOINT_BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: CHECKPOINT_BUCKET.into(),
                    storage: stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| unreachable(url, format!("the checkpoint store: {e}")))?,
        };
        let meta = deployment_meta(&state, options, url).await?;
        let mode = if meta.clock == "events" {
            ClockMode::Events
        } else {
            ClockMode::Wall
        };
        let dedup_key = super::dedup_key(&meta);
        Ok(Deployment {
            js,
            journal,
            outbox,
            state,
            leases,
            lease_stream,
            checkpoints,
            meta,
            mode,
            dedup_key,
            lease_ttl,
        })
    }

    pub fn partitions(&self) -> u32 {
        self.meta.partitions
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The stream sequence of the newest message on `subject` of
    /// `stream` (0: none).
    async fn last_on(stream: &stream::Stream, subject: &str) -> Result<u64, String> {
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(format!("`{subject}`: {e}")),
        }
    }

    /// The stream sequence of the oldest message on `subject` of `stream`
    /// still kept (0: none): where trimming left the partition's journal.
    async fn first_on(stream: &stream::Stream, subject: &str) -> Result<u64, String> {
        match stream.get_first_raw_message_by_subject(subject, 1).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(format!("`{subject}`: {e}")),
        }
    }

    /// The deployment's event clock and its revision (`--clock events`).
    async fn clock(&self) -> Result<(Option<i64>, Option<u64>), String> {
        match self.state.entry("clock").await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                let clock = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok());
                Ok((clock, Some(entry.revision)))
            }
            Ok(_) => Ok((None, None)),
            Err(e) => Err(format!("the deployment's clock: {e}")),
        }
    }

    /// Moves the clock to `to` unless it is there already, as one
    /// compare-and-set after the read that gave `revision`; false when
    /// another process moved it in between (read again and retry).
    async fn set_clock(&self, to: i64, revision: Option<u64>) -> Result<bool, String> {
        let value = Bytes::from(to.to_string());
        let written = match revision {
            Some(revision) => self
                .state
                .update("clock", value, revision)
                .await
                .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision),
            None => self
                .state
                .create("clock", value)
                .await
                .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists),
        };
        match written {
            Ok(_) => Ok(true),
            Err(true) => Ok(false),
            Err(false) => Err("the deployment's clock could not be written".into()),
        }
    }
}

/// A key-value bucket, created when missing. Its stream is made here, as
/// the client's `create_key_value` makes it: that asks the server for its
/// account's details first, in a form a 2.9 server does not answer.
/// How long a stream of the deployment drops a repeated `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The keys of `bucket` that begin with `prefix` (a key deleted last is
/// among them).
async fn keys_under(
    js: &jetstream::Context,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let head = format!("$KV.{bucket}.");
    subjects_after(js, &format!("KV_{bucket}"), &head, &format!("{prefix}>")).await
}

/// What follows `head` in each subject of `stream` matching `head` and
/// then `tail` (a subject filter): one request. async-nats's `keys()` and
/// `ObjectStore::list()` read these through a consumer that ends only on a
/// message with nothing pending after it, and can wait forever for one
/// rewritten or expired while it reads; the deployment's buckets are
/// rewritten all the time.
async fn subjects_after(
    js: &jetstream::Context,
    stream: &str,
    head: &str,
    tail: &str,
) -> Result<Vec<String>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("`{stream}` does not list: {e}");
    let stream = js.get_stream(stream).await.map_err(|e| failed(&e))?;
    let mut subjects = stream
        .info_with_subjects(format!("{head}{tail}"))
        .await
        .map_err(|e| failed(&e))?;
    let mut after = Vec::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _) = subject.map_err(|e| failed(&e))?;
        if let Some(rest) = subject.strip_prefix(head) {
            after.push(rest.to_string());
        }
    }
    Ok(after)
}

/// A stream of the deployment: `name` over `subject`, on file, with
/// `replicas` copies, a repeated `Nats-Msg-Id` dropped within
/// [`DUPLICATE_WINDOW`]; the rest as JetStream's defaults.
fn stream_config(name: &str, subject: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: vec![subject.into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// The stream `config` describes, made when missing; `what` names it in
/// the error.
async fn made_stream(
    js: &jetstream::Context,
    url: &str,
    what: &str,
    config: stream::Config,
) -> Result<stream::Stream, ServeError> {
    js.get_or_create_stream(config)
        .await
        .map_err(|e| unreachable(url, format!("{what}: {e}")))
}

async fn bucket(
    js: &jetstream::Context,
    url: &str,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, ServeError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        max_message_size: -1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    // Another process may make it first: then it is there to read.
    let created = js.get_or_create_stream(config).await.err();
    js.get_key_value(name).await.map_err(|e| {
        let why = created.map_or(String::new(), |c| format!("was not created ({c}) and "));
        unreachable(url, format!("the `{name}` bucket {why}does not read ({e})"))
    })
}

/// The deployment's fixed facts: written by the first process, checked by
/// every other against what it was asked for.
async fn deployment_meta(
    state: &kv::Store,
    options: &ServeOptions,
    url: &str,
) -> Result<Meta, ServeError> {
    let place = format!("the deployment at `{url}`");
    let instead = "point `--nats` at another server";
    loop {
        let found = state
            .get("meta")
            .await
            .map_err(|e| unreachable(url, format!("the deployment's facts: {e}")))?;
        if let Some(bytes) = found {
            let meta: Meta = serde_json::from_slice(&bytes)
                .map_err(|e| ServeError::refused(format!("{place}: its facts do not read: {e}")))?;
            check_meta(&meta, options, &place, instead)?;
            return Ok(meta);
        }
        let meta = new_meta(options)?;
        let bytes = serde_json::to_vec(&meta).map_err(|e| ServeError::refused(e.to_string()))?;
        match state.create("meta", bytes.into()).await {
            Ok(_) => return Ok(meta),
            // Another process created it first: read theirs.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
            Err(e) => return Err(unreachable(url, format!("the deployment's facts: {e}"))),
        }
    }
}

/// The deployment's versions of the journeys (`version.<n>` keys); the
/// first process writes version 1, `sources`. A process started with other
/// files deploys them once it has joined (as one machine does).
async fn deployment_versions(
    d: &Deployment,
    sources: &SourceMap,
) -> Result<Arc<Versions>, ServeError> {
    let failed = |e: String| ServeError::failed(format!("the deployment's versions: {e}"));
    loop {
        let records = deploy::records(d).await.map_err(failed)?;
        if records.is_empty() {
            let program = crate::pipeline::compile_sources(sources)
                .map_err(|diags| ServeError::refused(diagnostics_text(&diags, sources)))?;
            let record = Record::new(sources, Vec::new(), wall_ms(), &program);
            match d.state.create("version.1", record.encode().into()).await {
                Ok(_) => {
                    let versions = Versions::default();
                    versions.insert_compiled(1, record, Arc::new(program));
                    return Ok(Arc::new(versions));
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(failed(format!(
                        "version 1 was not written ({e}); a project's compiled record must fit \
                         the server's `max_payload`"
                    )));
                }
            }
        }
        let versions = Versions::from_records(records).map_err(|e| failed(e.0))?;
        return Ok(Arc::new(versions));
    }
}

/// One process of a `--nats` deployment: the partitions it holds.
pub struct Node {
    pub(crate) d: Deployment,
    /// This process's name in the leases: random, and its address.
    pub(crate) id: String,
    versions: Arc<Versions>,
    /// The version a partition without a checkpoint starts at.
    first: u32,
    checkpoint_every: Duration,
    checkpoint_entries: u64,
    /// How long journal a checkpoint covers is kept (`journal.retention`).
    journal_retention: Duration,
    /// The project's paths, read again by each deploy.
    project: Vec<std::path::PathBuf>,
    /// One deploy at a time from this process.
    deploying: tokio::sync::Mutex<()>,
    /// The partitions held here, by number; only the lease loop touches
    /// it (it waits for partitions to stop while it holds it).
    held: tokio::sync::Mutex<BTreeMap<u32, lease::Held>>,
    /// What the API sees of `held`: each partition and whether it is live.
    view: std::sync::Mutex<Vec<(u32, Arc<AtomicBool>)>>,
    /// The first round of leases is done.
    settled: AtomicBool,
    stopping: AtomicBool,
    /// The event clock as last read or written here.
    clock: AtomicI64,
    log: Log,
}

/// The clock value meaning "none yet".
const NO_CLOCK: i64 = i64::MIN;

impl Node {
    /// Whether every partition held here is live (restored and replayed)
    /// and the first round of leases is done.
    pub fn ready(&self) -> bool {
        self.settled.load(Ordering::Acquire) && self.held().iter().all(|(_, live)| *live)
    }

    /// The partitions held here, and whether each is live.
    pub fn held(&self) -> Vec<(u32, bool)> {
        self.view
            .lock()
            .map(|view| {
                view.iter()
                    .map(|(p, live)| (*p, live.load(Ordering::Acquire)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Shows the API what `held` holds now.
    fn show(&self, held: &BTreeMap<u32, lease::Held>) {
        if let Ok(mut view) = self.view.lock() {
            *view = held.iter().map(|(p, h)| (*p, h.live.clone())).collect();
        }
    }
}

/// The inboxes' sweep ([`inbox`]): once `every` (`nats.inbox_sweep_every`),
/// by the process running partition 0, so that one process sweeps at a
/// time (two at once, around a takeover, would only look twice).
async fn sweep_inboxes(node: Arc<Node>, inboxes: Arc<inbox::NatsInbox>, every: Duration) {
    let mut beat = tokio::time::interval(every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !node.stopping.load(Ordering::Acquire) {
        beat.tick().await;
        let sweeps = node.view.lock().is_ok_and(|view| {
            view.iter()
                .any(|(p, live)| *p == 0 && live.load(Ordering::Acquire))
        });
        if !sweeps {
            continue;
        }
        match inboxes.sweep(wall_ms()).await {
            Ok(swept) if swept.messages > 0 => (node.log)(&format!(
                "inboxes: swept {} expired messages of {} customers",
                swept.messages, swept.inboxes
            )),
            Ok(_) => {}
            Err(e) => (node.log)(&format!("inboxes: the sweep stopped: {e}")),
        }
    }
}

/// Runs one `--nats` process until SIGTERM or SIGINT.
pub fn serve(
    sources: SourceMap,
    options: ServeOptions,
    nats: NatsOptions,
    log: Log,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let d = Deployment::open(&options, &nats).await?;
        let inboxes = inbox::open(
            &d.js,
            &nats.url,
            nats.replicas.max(1),
            nats.inbox_sweep_every,
        )
        .await?;
        let shared_inboxes: Arc<dyn InboxStore> = inboxes.clone();
        let (channels, public) = delivery::channels(&options, &shared_inboxes)?;
        let versions = deployment_versions(&d, &sources).await?;
        let first = versions.first().map_or(1, |v| v.number);
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix)
            .map_err(|e| ServeError::refused(format!("no randomness for a process name: {e}")))?;
        let id = format!(
            "{}-{}",
            options.listen.to_string().replace([':', '.'], "_"),
            crate::compile::artifact::hex(&suffix)
        );
        log(&format!(
            "joined the deployment at `{}` as `{id}`: {} partitions, `--clock {}`, leases of {:?}",
            nats.url,
            d.partitions(),
            d.mode().name(),
            d.lease_ttl
        ));
        let node = Arc::new(Node {
            d,
            id,
            versions,
            first,
            checkpoint_every: options.checkpoint_every,
            checkpoint_entries: options.checkpoint_entries,
            journal_retention: options.journal_retention,
            project: options.project.clone(),
            deploying: tokio::sync::Mutex::new(()),
            held: tokio::sync::Mutex::new(BTreeMap::new()),
            view: std::sync::Mutex::new(Vec::new()),
            settled: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            clock: AtomicI64::new(NO_CLOCK),
            log: log.clone(),
        });
        let leasing = tokio::spawn(lease::run(node.clone()));
        tokio::spawn(sweep_inboxes(node.clone(), inboxes, nats.inbox_sweep_every));
        tokio::spawn(deploy::watch(node.clone()));
        // Other files than the live version's are deployed, as one machine
        // deploys them at a start.
        match node.deploy(sources).await {
            Ok(d) if d.deployed => log(&super::deployed_line(&d)),
            Ok(d) => log(&format!("running version {} of the journeys", d.version)),
            Err(e) => {
                node.stopping.store(true, Ordering::Release);
                let _ = leasing.await;
                lease::release_all(&node).await;
                return Err(match e {
                    DeployError::Invalid(why) => ServeError::refused(format!(
                        "the journeys differ from the deployment's version, and they cannot be \
                         deployed: {why}"
                    )),
                    DeployError::Unavailable(why) => ServeError::failed(why),
                });
            }
        }
        // As on one machine: SIGHUP deploys the files on disk.
        let hung_up = node.clone();
        tokio::spawn(super::reload_on_hangup(
            move || {
                let node = hung_up.clone();
                async move { node.redeploy().await }
            },
            log.clone(),
        ));
        // The recorder first: delivery takes its instruments' handles at start.
        let metrics = super::metrics::handle();
        let (mut engine, records) =
            delivery::start(node.clone(), channels, &options, &nats).await?;
        log(&engine.describe());
        let app = Arc::new(http::NatsApp {
            node: node.clone(),
            access: options.access.clone(),
            metrics,
            shutting_down: AtomicBool::new(false),
            public,
            records,
        });
        let listener = super::listen(options.listen, &log).await?;
        let router = http::router(app.clone()).layer(axum::extract::DefaultBodyLimit::max(
            super::http::MAX_REQUEST_BYTES,
        ));
        let shutdown = super::shutdown_signal();
        let shutdown_app = app.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                shutdown_app.shutting_down.store(true, Ordering::Release);
            })
            .await;
        // Delivery first: the outcomes of attempts in flight are journaled.
        engine.halt().await;
        node.stopping.store(true, Ordering::Release);
        let _ = leasing.await;
        lease::release_all(&node).await;
        served.map_err(|e| ServeError::failed(format!("the server failed: {e}")))?;
        log("stopped: every partition held here checkpointed and released");
        Ok(())
    })
}
