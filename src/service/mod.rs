//! The live service (`journey serve`, SERVICE.md): partitions of customers,
//! each with a durable journal, a runtime and an outbox, behind the Segment
//! HTTP API. Drives [`crate::runtime`], never reimplements it.
//!
//! - [`partitions`]: which partition a customer belongs to (also used by
//!   `journey simulate --threads`).
//! - [`journal`]: what a journal entry holds.
//! - [`storage`]: the durable state behind one trait (redb on one machine).
//! - [`core`]: the writer (group commit) and the partition workers.
//! - [`delivery`]: every `send` of the outbox through its channel's
//!   provider, and what happened to it journaled back. It lives inside the
//!   service because it is the service's: it reads the service's outbox,
//!   keeps its records in the service's store and journals outcomes through
//!   the service's core; nothing else uses it.
//! - [`http`]: the API; [`admin`]: its operators' read endpoints;
//!   [`tracking_http`]: the public tracking and unsubscribe links;
//!   [`inbox_http`]: the in-app inbox's reads; [`twilio_http`]: Twilio's
//!   status callbacks;
//!   [`config`]: the config file; [`metrics`]: what `/metrics` shows.
//! - [`threads`]: `journey simulate --threads N`, the partitions on N
//!   threads, their actions merged back into one runtime's order.

pub mod admin;
pub mod checkpoint_files;
pub mod config;
pub mod core;
pub mod delivery;
pub mod http;
pub mod inbox_http;
pub mod journal;
pub mod metrics;
pub mod nats;
pub mod partitions;
pub mod storage;
pub mod threads;
pub mod tracking_http;
pub mod twilio_http;
pub mod versions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self::core::{ClockMode, Core, CoreConfig};
use self::core::{DeployError, wall_ms};
use self::http::{Access, App};
use self::storage::{Meta, RedbStorage, STORAGE_FORMAT, Storage, WriteBatch};
use self::versions::{Record, Versions};
use crate::runtime::RuntimeOptions;
use crate::source::SourceMap;

/// What `journey serve` was asked for.
pub struct ServeOptions {
    pub data: PathBuf,
    /// The project's paths, read again by each deploy.
    pub project: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// `None`: what the data directory holds (`wall` for a new one).
    pub clock: Option<ClockMode>,
    /// `None`: what the data directory holds ([`partitions::DEFAULT_PARTITIONS`] for a new one).
    pub partitions: Option<u32>,
    pub access: Access,
    pub checkpoint_every: Duration,
    pub checkpoint_entries: u64,
    /// How long committed actions stay in the feed.
    pub action_retention: Duration,
    /// How long journal a checkpoint covers is kept.
    pub journal_retention: Duration,
    /// `[tracking]`, when configured.
    pub tracking: Option<Arc<crate::service::delivery::tracking::Tracking>>,
    /// `[inbox]`, when configured.
    pub inbox: Option<Arc<crate::service::delivery::inbox::InboxKeys>>,
    /// The config's `[channels.<name>]` and `[audiences.<name>]`, built
    /// into providers once the data directory (or the `--nats`
    /// deployment) is open: the inbox keeps its messages there; any other
    /// channel is `log`.
    pub channels: BTreeMap<String, toml::Table>,
    pub audiences: BTreeMap<String, toml::Table>,
    /// What the providers share (the HTTP client, tracking's decorator).
    pub shared: crate::service::delivery::Shared,
    /// `--nats`: the deployment is in NATS JetStream, not `data`.
    pub nats: Option<nats::NatsOptions>,
}

/// Why the service could not start or stopped: a one-line reason.
#[derive(Debug)]
pub struct ServeError {
    pub message: String,
    /// The command line's exit code: 2 for a refusal before anything ran.
    pub exit: u8,
}

impl ServeError {
    fn refused(message: impl Into<String>) -> ServeError {
        ServeError {
            message: message.into(),
            exit: 2,
        }
    }

    fn failed(message: impl Into<String>) -> ServeError {
        ServeError {
            message: message.into(),
            exit: 1,
        }
    }
}

/// Opens the data directory (creating it with `options`' partitions and
/// clock), checks it matches what was asked, and returns it with its facts.
pub fn open_data(options: &ServeOptions) -> Result<(Arc<RedbStorage>, Meta), ServeError> {
    let storage = RedbStorage::open(&options.data).map_err(|e| ServeError::refused(e.0))?;
    let place = format!("`{}`", options.data.display());
    let meta = match storage.meta().map_err(|e| ServeError::refused(e.0))? {
        Some(meta) => {
            check_meta(&meta, options, &place, "give another `--data` directory")?;
            meta
        }
        None => {
            let meta = new_meta(options)?;
            storage
                .write(WriteBatch {
                    meta: Some(meta.clone()),
                    ..WriteBatch::default()
                })
                .map_err(|e| ServeError::refused(e.0))?;
            meta
        }
    };
    Ok((Arc::new(storage), meta))
}

/// Refuses a deployment (at `place`) whose fixed facts are not what
/// `options` asks for; `instead` says where else to go.
fn check_meta(
    meta: &Meta,
    options: &ServeOptions,
    place: &str,
    instead: &str,
) -> Result<(), ServeError> {
    if meta.format != STORAGE_FORMAT {
        return Err(ServeError::refused(format!(
            "{place} holds storage format {}, and this build reads format {STORAGE_FORMAT}",
            meta.format
        )));
    }
    let asked_partitions = options.partitions.filter(|&p| p != meta.partitions);
    let asked_clock = options.clock.filter(|c| c.name() != meta.clock);
    if asked_partitions.is_some() || asked_clock.is_some() {
        return Err(ServeError::refused(format!(
            "{place} holds {} partitions with `--clock {}`; start it with those (or without \
             `--partitions`/`--clock`), or {instead}",
            meta.partitions, meta.clock
        )));
    }
    Ok(())
}

/// The fixed facts of a new deployment: `options`' partitions and clock,
/// and a fresh de-duplication key.
fn new_meta(options: &ServeOptions) -> Result<Meta, ServeError> {
    let partitions = options.partitions.unwrap_or(partitions::DEFAULT_PARTITIONS);
    if !(1..=partitions::MAX_PARTITIONS).contains(&partitions) {
        return Err(ServeError::refused(format!(
            "`--partitions` must be between 1 and {}",
            partitions::MAX_PARTITIONS
        )));
    }
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| {
        ServeError::refused(format!("no randomness for the de-duplication key: {e}"))
    })?;
    Ok(Meta {
        format: STORAGE_FORMAT,
        partitions,
        clock: options.clock.unwrap_or(ClockMode::Wall).name().to_string(),
        dedup_key: crate::compile::artifact::hex(&key),
    })
}

fn dedup_key(meta: &Meta) -> [u8; 16] {
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = meta
            .dedup_key
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    key
}

/// Runs the service until SIGTERM or SIGINT; `log` gets one line per event
/// worth an operator's eye (stderr in the binary).
pub fn serve(sources: SourceMap, mut options: ServeOptions, log: Log) -> Result<(), ServeError> {
    if let Some(nats) = options.nats.take() {
        return nats::serve(sources, options, nats, log);
    }
    let (storage, meta) = open_data(&options)?;
    let clock = if meta.clock == "events" {
        ClockMode::Events
    } else {
        ClockMode::Wall
    };
    let config = CoreConfig {
        partitions: meta.partitions,
        clock,
        checkpoint_entries: options.checkpoint_entries,
        checkpoint_every: options.checkpoint_every,
        max_pending: 200_000,
        partition_queue: 8_192,
        dedup_key: dedup_key(&meta),
        max_clock_jump_ms: RuntimeOptions::MAX_CLOCK_JUMP_MS,
        action_retention: options.action_retention,
        journal_retention: options.journal_retention,
    };
    // The journal is applied with the versions it recorded: a new data
    // directory starts at version 1, these files; a start with other files
    // deploys them as the next version, once the journal is replayed.
    let versions = Arc::new(Versions::load(&*storage).map_err(|e| ServeError::failed(e.0))?);
    if versions.live().is_none() {
        let program = crate::pipeline::compile_sources(&sources)
            .map_err(|d| ServeError::refused(versions::diagnostics_text(&d, &sources)))?;
        let record = Record::new(&sources, Vec::new(), wall_ms(), &program);
        storage
            .write(WriteBatch {
                versions: vec![(1, record.encode())],
                ..WriteBatch::default()
            })
            .map_err(|e| ServeError::failed(e.0))?;
        versions.insert(1, record);
    }
    let storage: Arc<dyn Storage> = storage;
    let tables = crate::service::delivery::Tables {
        channels: &options.channels,
        audiences: &options.audiences,
    };
    let served = crate::service::delivery::inbox::ServedInbox::new(storage.clone());
    let inboxes: Arc<dyn crate::service::delivery::inbox::InboxStore> = served.clone();
    let channels = crate::service::delivery::channels(tables, &options.shared, Some(&inboxes))
        .map_err(ServeError::refused)?;
    let twilio = crate::service::delivery::twilio::providers(&channels);
    let started = Core::start(versions, storage, config).map_err(|e| ServeError::failed(e.0))?;
    served.serve(started.core.clone());
    for why in &started.dropped {
        log(&format!("dropped damaged journal records: {why}"));
    }
    log(&format!(
        "replayed {} journal entries over {} partitions (`--clock {}`)",
        started.replayed,
        meta.partitions,
        clock.name()
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::failed(format!("cannot start the async runtime: {e}")))?;
    // The recorder first: delivery takes its instruments' handles at start.
    let metrics = metrics::handle();
    let engine = runtime
        .block_on(crate::service::delivery::engine::Engine::start(
            started.core.clone(),
            channels,
        ))
        .map_err(ServeError::failed)?;
    log(&engine.describe());
    let app = Arc::new(App {
        metrics,
        core: started.core.clone(),
        project: options.project.clone(),
        access: options.access,
        shutting_down: AtomicBool::new(false),
        tracking: options.tracking,
        inbox: options.inbox,
        twilio,
    });
    runtime.block_on(async move {
        match app.core.deploy(sources).await {
            Ok(d) if d.deployed => log(&deployed_line(&d)),
            Ok(d) => log(&format!("running version {} of the journeys", d.version)),
            Err(e) => {
                app.core.stop().await;
                return Err(match e {
                    DeployError::Invalid(why) => ServeError::refused(format!(
                        "the journeys changed since the last start, and they cannot be deployed: \
                         {why}"
                    )),
                    DeployError::Unavailable(why) => ServeError::failed(why),
                });
            }
        }
        // Installed before the first request too: a SIGHUP's default
        // action would end the process.
        let hung_up = app.clone();
        tokio::spawn(reload_on_hangup(
            move || {
                let app = hung_up.clone();
                async move { admin::redeploy(&app).await }
            },
            log.clone(),
        ));
        let listener = listen(options.listen, &log).await?;
        let router = http::router(app.clone()).layer(axum::extract::DefaultBodyLimit::max(
            http::MAX_REQUEST_BYTES,
        ));
        // Listening for SIGTERM starts here, before the first request can
        // be answered: a SIGTERM that comes right after `/readyz` answers
        // stops the service cleanly instead of killing it.
        let shutdown = shutdown_signal();
        let shutdown_app = app.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                shutdown_app.shutting_down.store(true, Ordering::Release);
            })
            .await;
        // Delivery first: the outcomes of attempts in flight are journaled
        // through the core.
        engine.stop().await;
        app.core.stop().await;
        served.map_err(|e| ServeError::failed(format!("the server failed: {e}")))?;
        log("stopped: every partition checkpointed");
        Ok(())
    })
}

/// The service's listener on `addr`, said in the log (either backend).
async fn listen(addr: SocketAddr, log: &Log) -> Result<tokio::net::TcpListener, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::refused(format!("cannot listen on {addr}: {e}")))?;
    log(&format!("listening on http://{addr}"));
    Ok(listener)
}

/// Where the service writes a line worth an operator's eye.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// One line saying what a deploy did.
fn deployed_line(d: &core::Deployed) -> String {
    let moved: Vec<String> = d
        .plan
        .iter()
        .filter(|(_, fate)| *fate != crate::compile::deploy::Fate::Unchanged)
        .map(|(name, fate)| format!("{name}: {}", fate.name()))
        .collect();
    format!(
        "deployed version {} of the journeys ({}){}",
        d.version,
        if moved.is_empty() {
            "templates only".to_string()
        } else {
            moved.join(", ")
        },
        if d.kept.is_empty() {
            String::new()
        } else {
            format!(
                "; kept for the customers inside them: {}",
                d.kept
                    .iter()
                    .map(|(name, v)| format!("{name} version {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )
}

/// SIGHUP: read the project again and deploy it, as `POST /admin/reload`.
/// The handler is installed when this is called; the returned future
/// handles each signal in turn.
fn reload_on_hangup<F, D>(redeploy: F, log: Log) -> impl std::future::Future<Output = ()> + Send
where
    F: Fn() -> D + Send + 'static,
    D: std::future::Future<Output = Result<core::Deployed, DeployError>> + Send,
{
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        #[cfg(unix)]
        {
            let Ok(mut hangup) = hangup else {
                return;
            };
            while hangup.recv().await.is_some() {
                match redeploy().await {
                    Ok(d) if d.deployed => log(&deployed_line(&d)),
                    Ok(d) => log(&format!(
                        "SIGHUP: the journeys are unchanged (version {})",
                        d.version
                    )),
                    Err(DeployError::Invalid(why)) => {
                        log(&format!("SIGHUP: the project was not deployed: {why}"))
                    }
                    Err(DeployError::Unavailable(why)) => log(&format!("SIGHUP: {why}")),
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (redeploy, log);
        }
    }
}

/// SIGTERM or SIGINT (Ctrl-C). Both handlers are installed when this is
/// called, not when the returned future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                // No handler could be installed: the signals keep their
                // default action, and this never resolves.
                _ => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
