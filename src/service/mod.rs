//! The live service (`journey serve`, SERVICE.md): partitions of customers,
//! each with a durable journal, a runtime and an outbox, behind the Segment
//! HTTP API. Drives [`crate::runtime`], never reimplements it.
//!
//! - [`partitions`]: which partition a customer belongs to (also used by
//!   `journey simulate --threads`).
//! - [`journal`]: what a journal entry holds.
//! - [`storage`]: the durable state behind one trait (redb on one machine).
//! - [`core`]: the writer (group commit) and the partition workers.
//! - [`http`]: the API; [`admin`]: its operators' read endpoints;
//!   [`config`]: the config file; [`metrics`]: what `/metrics` shows.
//! - [`threads`]: `journey simulate --threads N`, the partitions on N
//!   threads, their actions merged back into one runtime's order.

pub mod admin;
pub mod config;
pub mod core;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod partitions;
pub mod storage;
pub mod threads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self::core::{ClockMode, Core, CoreConfig};
use self::http::{Access, App};
use self::storage::{Meta, RedbStorage, STORAGE_FORMAT, Storage, WriteBatch};
use crate::compile::Program;
use crate::runtime::RuntimeOptions;

/// What `journey serve` was asked for.
pub struct ServeOptions {
    pub data: PathBuf,
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
    /// The channels bound to a provider (`[channels.<name>]`); any other
    /// channel is `log`.
    pub channels: Vec<crate::delivery::Channel>,
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
    let meta = match storage.meta().map_err(|e| ServeError::refused(e.0))? {
        Some(meta) => {
            if meta.format != STORAGE_FORMAT {
                return Err(ServeError::refused(format!(
                    "`{}` holds storage format {}, and this build reads format {STORAGE_FORMAT}",
                    options.data.display(),
                    meta.format
                )));
            }
            let asked_partitions = options.partitions.filter(|&p| p != meta.partitions);
            let asked_clock = options.clock.filter(|c| c.name() != meta.clock);
            if asked_partitions.is_some() || asked_clock.is_some() {
                return Err(ServeError::refused(format!(
                    "`{}` holds {} partitions with `--clock {}`; start it with those (or without \
                     `--partitions`/`--clock`), or give another `--data` directory",
                    options.data.display(),
                    meta.partitions,
                    meta.clock
                )));
            }
            meta
        }
        None => {
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
            let meta = Meta {
                format: STORAGE_FORMAT,
                partitions,
                clock: options.clock.unwrap_or(ClockMode::Wall).name().to_string(),
                dedup_key: crate::compile::envelope::hex(&key),
            };
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
pub fn serve(
    program: Arc<Program>,
    options: ServeOptions,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ServeError> {
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
    };
    // The journal is applied with one program: a changed project would
    // replay customers' past differently (deploys are journaled versions,
    // not a restart with other files).
    let fingerprint = crate::compile::fingerprint(&program);
    match storage.program().map_err(|e| ServeError::failed(e.0))? {
        Some(kept) if kept != fingerprint => {
            return Err(ServeError::refused(format!(
                "`{}` runs another version of the journeys (program {}, these are {}); start \
                 the journeys it was created with, or give another `--data` directory",
                options.data.display(),
                kept.get(..12).unwrap_or(&kept),
                fingerprint.get(..12).unwrap_or(&fingerprint)
            )));
        }
        Some(_) => {}
        None => {
            storage
                .write(WriteBatch {
                    program: Some(fingerprint),
                    ..WriteBatch::default()
                })
                .map_err(|e| ServeError::failed(e.0))?;
        }
    }
    let storage: Arc<dyn Storage> = storage;
    let started = Core::start(program, storage, config).map_err(|e| ServeError::failed(e.0))?;
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
        .block_on(crate::delivery::engine::Engine::start(
            started.core.clone(),
            options.channels,
        ))
        .map_err(ServeError::failed)?;
    log(&engine.describe());
    let app = Arc::new(App {
        metrics,
        core: started.core.clone(),
        access: options.access,
        shutting_down: AtomicBool::new(false),
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| {
                ServeError::refused(format!("cannot listen on {}: {e}", options.listen))
            })?;
        log(&format!("listening on http://{}", options.listen));
        let router = http::router(app.clone()).layer(axum::extract::DefaultBodyLimit::max(
            http::MAX_REQUEST_BYTES,
        ));
        let shutdown_app = app.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
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

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
