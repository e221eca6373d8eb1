//! A small service embedding journey: it compiles the project in
//! `journeys/` (or the directory given as the first argument; a `.json`
//! file there is loaded as a program written by `journey compile`), spawns the
//! tokio service over it, replays a backlog of events from
//! `journeys/events.ndjson` (or a generated one) into a deliberately slow
//! email provider to show backpressure, lets a simulated wall clock run so
//! the pending timers fire, shuts down cleanly and prints counts.
//!
//! ```text
//! cargo run --example embedded_service [-- JOURNEYS_DIR | PROGRAM.json]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use journey::SourceMap;
use journey::compile::{self, Program};
use journey::diagnostic::print;
use journey::pipeline;
use journey::project::{self, LoadError};
use journey::runtime::service::{
    ActionSink, Clock, ManualClock, OwnedEvent, Service, ServiceConfig, SinkError, TrySendError,
};
use journey::runtime::{Action, ActionKind, MemStore, Runtime, Snapshot};
use journey::value::format_timestamp;
use serde_json::json;

/// The most events read from the event file.
const MAX_EVENTS: usize = 400;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys"));
    let (program, events_file) = if dir.extension().is_some_and(|e| e == "json") {
        let events = dir.with_file_name("events.ndjson");
        (load_program(&dir)?, events)
    } else {
        (compile_project(&dir)?, dir.join("events.ndjson"))
    };
    let program = Arc::new(program);
    let events = load_events(&events_file)?;
    let Some(first) = events.first().map(|e| e.timestamp_ms) else {
        return Err("no events to replay".into());
    };
    println!(
        "{} journeys ready; replaying {} events from {}",
        program.journeys.len(),
        events.len(),
        format_timestamp(first)
    );

    // --8<-- [start:spawn]
    let clock = ManualClock::new(first);
    let provider = SlowEmailProvider::new(Duration::from_millis(2));
    let report = provider.report.clone();
    let config = ServiceConfig {
        event_capacity: 32,
        action_capacity: 4,
        max_batch: 16,
    };
    let service = Service::spawn(
        program.clone(),
        MemStore::default(),
        clock.clone(),
        provider,
        config,
    );
    // --8<-- [end:spawn]

    // Phase 1: a backlog arrives as fast as the producer can send it. The
    // events carry their own time, so the wall clock can stay put.
    // --8<-- [start:produce]
    let started = Instant::now();
    let mut waited = 0;
    for event in events.iter().cloned() {
        match service.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                // The provider is behind: wait for room (backpressure).
                waited += 1;
                service
                    .send(event)
                    .await
                    .map_err(|_| "the service stopped".to_string())?;
            }
            Err(TrySendError::Closed(_)) => return Err("the service stopped".into()),
        }
    }
    // --8<-- [end:produce]
    let stats = service
        .stats()
        .await
        .map_err(|_| "the service stopped".to_string())?;
    println!(
        "backlog: {} events in {:?}; the producer waited for room {waited} times",
        events.len(),
        started.elapsed()
    );
    println!(
        "  processed {}, irrelevant {}, duplicates {}, late {}",
        stats.events, stats.irrelevant, stats.duplicates, stats.late
    );

    // Phase 2: the wall clock runs on, an hour at a time, with no new
    // events: the service fires each timer when the clock reaches it.
    // --8<-- [start:clock]
    const HOUR: i64 = 3_600_000;
    while let Some(due) = service
        .next_timer_due()
        .await
        .map_err(|_| "the service stopped".to_string())?
    {
        // An hour on, or straight to the next timer when it is further.
        clock.set((clock.now_ms() + HOUR).max(due));
    }
    // --8<-- [end:clock]
    println!(
        "the wall clock ran to {} until no timer was pending",
        format_timestamp(clock.now_ms())
    );

    // --8<-- [start:shutdown]
    let stopped = service
        .shutdown()
        .await
        .map_err(|e| format!("the service failed: {e}"))?;
    if !stopped.is_clean() {
        return Err(format!(
            "stopped with {} undelivered actions and {} unprocessed events",
            stopped.undelivered.len(),
            stopped.unprocessed.len()
        ));
    }
    let snapshot: Snapshot = stopped.runtime.snapshot();
    let saved = serde_json::to_string(&snapshot).map_err(|e| e.to_string())?;
    // --8<-- [end:shutdown]
    println!(
        "shut down cleanly; the state to persist is {} bytes of JSON",
        saved.len()
    );

    let report = report.lock().map_err(|_| "the report was poisoned")?;
    println!(
        "delivered {} actions in {} batches:",
        report.lines.len(),
        report.batches
    );
    for (kind, count) in &report.by_kind {
        println!("  {kind:<9} {count}");
    }
    let expected = core_run(&program, &events);
    if expected != report.lines {
        return Err("the service's actions differ from the synchronous core's".into());
    }
    println!("identical, action for action, to the synchronous core over the same events");
    Ok(())
}

// --8<-- [start:sink]
/// An email provider that takes a while per request: every batch costs
/// `latency`, so the service can only go as fast as it.
struct SlowEmailProvider {
    latency: Duration,
    report: Arc<Mutex<Report>>,
}

#[derive(Default)]
struct Report {
    batches: usize,
    by_kind: BTreeMap<&'static str, usize>,
    lines: Vec<String>,
}

impl SlowEmailProvider {
    fn new(latency: Duration) -> SlowEmailProvider {
        SlowEmailProvider {
            latency,
            report: Arc::default(),
        }
    }
}

impl ActionSink for SlowEmailProvider {
    async fn deliver(&mut self, batch: Vec<Action>) -> Result<(), SinkError> {
        tokio::time::sleep(self.latency).await;
        let mut report = self.report.lock().map_err(|_| {
            SinkError::new("the report was poisoned").with_undelivered(batch.clone())
        })?;
        report.batches += 1;
        for action in batch {
            if let ActionKind::Send {
                channel,
                template,
                to,
                ..
            } = &action.kind
            {
                println!(
                    "{}  {:<8} {:<22} {:<10} {} to {}",
                    format_timestamp(action.at),
                    channel,
                    action.journey,
                    action.user_id,
                    template,
                    to.to_json()
                );
            }
            *report.by_kind.entry(action.kind.name()).or_default() += 1;
            report.lines.push(action.to_json_line());
        }
        Ok(())
    }
}
// --8<-- [end:sink]

/// Reads and checks every `*.journey` under `dir` and compiles them; an
/// empty or missing directory falls back to a small built-in project.
// --8<-- [start:compile]
fn compile_project(dir: &Path) -> Result<Program, String> {
    let sources = match project::load_paths(&[dir.to_path_buf()]) {
        Ok(sources) => sources,
        Err(LoadError::NotFound { .. } | LoadError::NoJourneyFiles { .. }) => {
            println!(
                "no journeys in `{}`: using the built-in project",
                dir.display()
            );
            let mut sources = SourceMap::new();
            sources.add("built-in.journey", BUILT_IN);
            sources
        }
        Err(e) => return Err(e.to_string()),
    };
    // Parse, check and, when there is no error, compile.
    let build = pipeline::build(sources);
    for d in &build.diagnostics.items {
        eprintln!("{}", print::one_line(d, &build.project.sources));
    }
    build
        .program
        .ok_or_else(|| format!("{} errors in the project", build.diagnostics.errors()))
}
// --8<-- [end:compile]

/// Loads a program compiled ahead of time (`journey compile -o FILE`).
// --8<-- [start:load]
fn load_program(path: &Path) -> Result<Program, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    compile::load(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}
// --8<-- [end:load]

/// The first [`MAX_EVENTS`] lines of the event file, or generated events
/// when there is no such file. Malformed lines are reported and skipped.
fn load_events(path: &Path) -> Result<Vec<OwnedEvent>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("no `{}`: generating events", path.display());
        return Ok(generated_events());
    };
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate().take(MAX_EVENTS) {
        if line.trim().is_empty() {
            continue;
        }
        match OwnedEvent::from_line(line) {
            Ok(event) => events.push(event),
            Err(e) => eprintln!("{}:{}: skipped: {e}", path.display(), index + 1),
        }
    }
    Ok(events)
}

/// The synchronous core over the same events, then time run out: what the
/// service must have delivered.
fn core_run(program: &Arc<Program>, events: &[OwnedEvent]) -> Vec<String> {
    let mut runtime = Runtime::new(program.clone());
    let mut lines = Vec::new();
    for event in events {
        // The example's events are all in range; a refused one would be
        // counted in the stats, as the service counts it.
        let _ = runtime.ingest(&event.as_event(), &mut |a: Action| {
            lines.push(a.to_json_line())
        });
    }
    runtime.finish(&mut |a: Action| lines.push(a.to_json_line()));
    lines
}

const BUILT_IN: &str = r#"
template cart_reminder { channel email  subject "{{ profile.first_name }}, your cart is waiting"  body "Your cart of {{ trigger.total }} is still here." }
template cart_push { channel push  body "Still thinking it over?" }
template welcome { channel email  subject "Welcome, {{ profile.first_name }}"  body "Glad you are here." }
template tips { channel email  subject "Three tips"  body "Make the most of your plan." }
template thanks { channel email  subject "Thank you"  body "Order {{ trigger.order_id }} is on its way." }

journey abandoned_cart {
  trigger cart_abandoned where event.total >= 20
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  goal "Order Completed" within 7d
  quiet hours 21:00 to 08:00 in profile.timezone

  wait 1h
  send email cart_reminder as reminder
  wait for reminder.opened within 1d else {
    send push cart_push
  }
}

journey onboarding {
  trigger signed_up
  send email welcome
  wait 2d
  send email tips
}

journey post_purchase {
  trigger "Order Completed"
  wait 10m
  send email thanks transactional
}
"#;

/// A few realistic days of a small shop: profiles, sign-ups, carts, opens
/// and orders for 100 customers, in time order.
fn generated_events() -> Vec<OwnedEvent> {
    const MINUTE: i64 = 60_000;
    let start = journey::value::parse_timestamp("2026-03-02T08:00:00Z").unwrap_or(0);
    let zones = [
        "Europe/Paris",
        "America/New_York",
        "Europe/London",
        "Asia/Tokyo",
    ];
    let mut events = Vec::new();
    for n in 0..100i64 {
        let user = format!("user-{n:03}");
        let at = start + n * 37 * MINUTE;
        events.push(OwnedEvent::identify(
            &user,
            at,
            json!({
                "email": format!("{user}@example.com"),
                "first_name": format!("Customer {n}"),
                "push_token": if n % 3 == 0 { json!(format!("push-{n}")) } else { json!(null) },
                "timezone": zones[(n % 4) as usize],
                "country": "FR",
                "lifetime_value": n * 10,
            }),
        ));
        events.push(OwnedEvent::track(
            &user,
            "signed_up",
            at + MINUTE,
            json!({ "source": "ads" }),
        ));
        if n % 2 == 0 {
            let total = 15 + n * 4;
            events.push(
                OwnedEvent::track(
                    &user,
                    "cart_abandoned",
                    at + 3 * 60 * MINUTE,
                    json!({ "cart_id": format!("cart-{n}"), "total": total, "items": ["sku-1"] }),
                )
                .with_message_id(format!("cart-{n}")),
            );
        }
        if n % 6 == 0 {
            events.push(OwnedEvent::track(
                &user,
                "message.opened",
                at + 5 * 60 * MINUTE,
                json!({ "template": "cart_reminder" }),
            ));
        }
        if n % 4 == 0 {
            events.push(OwnedEvent::track(
                &user,
                "Order Completed",
                at + 9 * 60 * MINUTE,
                json!({ "order_id": format!("order-{n}"), "cart_id": format!("cart-{n}"), "total": 15 + n * 4, "items": ["sku-1"] }),
            ));
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    events
}
