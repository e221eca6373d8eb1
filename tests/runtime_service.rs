//! The tokio shell (`runtime::service`): its action stream equals the
//! synchronous core's for the same events, backpressure reaches the
//! producers, timers fire from the wall clock alone, a shutdown or a live
//! snapshot resumes to the same output as an uninterrupted run, and a
//! failing sink stops the service without losing anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use journey::SourceMap;
use journey::compile::Program;
use journey::pipeline;
use journey::runtime::service::{
    ActionSink, Clock, ManualClock, OwnedEvent, ScaledClock, Service, ServiceConfig, SinkError,
    TrySendError,
};
use journey::runtime::{Action, Event, MemStore, Runtime, Snapshot};
use journey::value::{format_timestamp, parse_timestamp};
use serde_json::json;
use tokio::sync::Semaphore;

const CART: &str = r#"
template cart_reminder { channel email  subject "{{ profile.first_name }}, your cart"  body "Total {{ trigger.total }}" }
template cart_push { channel push  body "Still there?" }
template cart_sms { channel sms  body "Your cart {{ trigger.cart_id }}" }
template welcome { channel email  body "Welcome" }
template miss_you { channel email  body "We miss you" }

journey abandoned_cart {
  trigger cart_abandoned where event.total >= 20
  reentry after 7d
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  goal "Order Completed" within 7d
  cap email 2 per 1d
  quiet hours 21:00 to 08:00 in profile.timezone

  wait 1h
  send email cart_reminder as reminder
  wait for reminder.opened within 1d else {
    send push cart_push or sms cart_sms
  }
  wait 2d
  if trigger.total > 100 {
    send email cart_reminder with { code: "SAVE10" }
  }
}

journey onboarding {
  trigger signed_up
  send email welcome
  wait 1d
  send email welcome
}

journey win_back {
  trigger no app_opened for 3d
  send email miss_you
}
"#;

const T0: &str = "2026-03-02T09:00:00Z";

fn ts(text: &str) -> i64 {
    parse_timestamp(text).unwrap_or_else(|| panic!("bad test timestamp {text}"))
}

fn program() -> Arc<Program> {
    let mut sources = SourceMap::new();
    sources.add("service.journey", CART);
    let build = pipeline::build(sources);
    let messages: Vec<&String> = build.diagnostics.items.iter().map(|d| &d.message).collect();
    let program = build
        .program
        .unwrap_or_else(|| panic!("the project has errors: {messages:?}"));
    Arc::new(program)
}

/// A deterministic stream over a few days: profiles, carts, opens, orders,
/// sign-ups and app opens, in time order, with one duplicate `messageId`.
fn events() -> Vec<OwnedEvent> {
    let start = ts(T0);
    let hour = 3_600_000;
    let mut out = Vec::new();
    for u in 0..24i64 {
        let user = format!("u{u:02}");
        let zones = ["Europe/Paris", "America/New_York", "Asia/Tokyo"];
        out.push(OwnedEvent::identify(
            &user,
            start + u * 60_000,
            json!({
                "email": format!("{user}@example.com"),
                "first_name": format!("User{u}"),
                "phone": if u % 3 == 0 { json!(null) } else { json!(format!("+3360000{u:04}")) },
                "push_token": if u % 4 == 0 { json!(format!("tok-{u}")) } else { json!(null) },
                "timezone": zones[(u % 3) as usize],
            }),
        ));
    }
    for u in 0..24i64 {
        let user = format!("u{u:02}");
        let at = start + hour + u * 17 * 60_000;
        out.push(
            OwnedEvent::track(
                &user,
                "cart_abandoned",
                at,
                json!({ "cart_id": format!("c{u}"), "total": 15 + u * 9, "items": ["sku"] }),
            )
            .with_message_id(format!("cart-{u}")),
        );
        if u % 5 == 0 {
            out.push(OwnedEvent::track(
                &user,
                "app_opened",
                at + 60_000,
                json!({}),
            ));
        }
        if u % 6 == 1 {
            out.push(OwnedEvent::track(
                &user,
                "signed_up",
                at + 120_000,
                json!({ "source": "ad" }),
            ));
        }
    }
    // A duplicate delivery of an earlier event.
    out.push(
        OwnedEvent::track(
            "u03",
            "cart_abandoned",
            start + 20 * hour,
            json!({ "cart_id": "c3", "total": 42, "items": [] }),
        )
        .with_message_id("cart-3"),
    );
    for u in (0..24i64).step_by(3) {
        let user = format!("u{u:02}");
        out.push(OwnedEvent::track(
            &user,
            "message.opened",
            start + 30 * hour + u * 60_000,
            json!({ "template": "cart_reminder", "journey": "abandoned_cart" }),
        ));
    }
    for u in (1..24i64).step_by(4) {
        let user = format!("u{u:02}");
        out.push(OwnedEvent::track(
            &user,
            "Order Completed",
            start + 40 * hour + u * 60_000,
            json!({ "order_id": format!("o{u}"), "cart_id": format!("c{u}"), "total": 50, "items": [] }),
        ));
    }
    out.sort_by_key(|e| e.timestamp_ms);
    out
}

/// The synchronous core over the same events, then time run out.
fn core_run(program: &Arc<Program>, events: &[OwnedEvent]) -> (Vec<String>, Runtime) {
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    for event in events {
        rt.ingest(&event.as_event(), &mut |a: Action| {
            out.push(a.to_json_line())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    (out, rt)
}

/// Keeps every action and the size of each batch.
#[derive(Clone, Default)]
struct Collect {
    actions: Arc<Mutex<Vec<Action>>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Collect {
    fn lines(&self) -> Vec<String> {
        self.actions
            .lock()
            .map(|a| a.iter().map(Action::to_json_line).collect())
            .unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.actions.lock().map(|a| a.len()).unwrap_or(0)
    }
}

impl ActionSink for Collect {
    async fn deliver(&mut self, batch: Vec<Action>) -> Result<(), SinkError> {
        if let Ok(mut sizes) = self.batches.lock() {
            sizes.push(batch.len());
        }
        if let Ok(mut actions) = self.actions.lock() {
            actions.extend(batch);
        }
        Ok(())
    }
}

/// Waits for a permit per batch: a sink as slow as the test wants.
struct Gated {
    gate: Arc<Semaphore>,
    inner: Collect,
}

impl ActionSink for Gated {
    async fn deliver(&mut self, batch: Vec<Action>) -> Result<(), SinkError> {
        match self.gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(SinkError::new("gate closed")),
        }
        self.inner.deliver(batch).await
    }
}

const FAR: &str = "2026-06-01T00:00:00Z";

#[tokio::test]
async fn service_output_equals_the_core() {
    let program = program();
    let events = events();
    let (expected, core) = core_run(&program, &events);
    assert!(expected.len() > 60, "the scenario produces a real stream");

    let clock = ManualClock::new(ts(T0));
    let sink = Collect::default();
    let handle = Service::spawn(
        program.clone(),
        MemStore::default(),
        clock.clone(),
        sink.clone(),
        ServiceConfig::default(),
    );
    for event in events.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    handle
        .stats()
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    clock.set(ts(FAR));
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
    assert_eq!(sink.lines(), expected);
    assert_eq!(stopped.runtime.stats(), core.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_buffers_and_many_producers_keep_the_order() {
    let program = program();
    let events = events();
    let (expected, _) = core_run(&program, &events);
    let clock = ManualClock::new(ts(T0));
    let sink = Collect::default();
    let config = ServiceConfig {
        event_capacity: 1,
        action_capacity: 1,
        max_batch: 3,
    };
    let handle = Service::spawn(
        program,
        MemStore::default(),
        clock.clone(),
        sink.clone(),
        config,
    );
    // One producer after another through cloned senders: each keeps its order.
    let (first, second) = events.split_at(events.len() / 2);
    let sender = handle.sender();
    let first = first.to_vec();
    tokio::spawn(async move {
        for event in first {
            sender
                .send(event)
                .await
                .unwrap_or_else(|_| panic!("service stopped"));
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for event in second.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    handle
        .stats()
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    clock.set(ts(FAR));
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
    assert_eq!(sink.lines(), expected);
    let sizes = sink.batches.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(sizes.iter().all(|&n| (1..=3).contains(&n)), "{sizes:?}");
}

#[tokio::test(start_paused = true)]
async fn a_blocked_sink_stops_the_producers_until_it_resumes() {
    let program = program();
    let clock = ManualClock::new(ts(T0));
    let gate = Arc::new(Semaphore::new(0));
    let collect = Collect::default();
    let sink = Gated {
        gate: gate.clone(),
        inner: collect.clone(),
    };
    let config = ServiceConfig {
        event_capacity: 4,
        action_capacity: 2,
        max_batch: 1,
    };
    let handle = Service::spawn(program, MemStore::default(), clock.clone(), sink, config);
    // Every sign-up makes an `enter` and a `send` at once.
    let signup = |n: i64| {
        OwnedEvent::track(
            format!("s{n:03}"),
            "signed_up",
            ts(T0) + n,
            json!({"source": "ad"}),
        )
    };
    let mut accepted = 0;
    let mut full = None;
    for n in 0..100 {
        match handle.try_send(signup(n)) {
            Ok(()) => accepted += 1,
            Err(TrySendError::Full(event)) => {
                full = Some(event);
                break;
            }
            Err(TrySendError::Closed(_)) => panic!("service stopped"),
        }
        // Let the runtime task take what it can.
        tokio::task::yield_now().await;
    }
    let Some(blocked) = full else {
        panic!("the queue never filled: {accepted} events accepted");
    };
    // Bounded: the event queue, the action queue, the sink's batch and the
    // one event being processed hold all there is.
    assert!(accepted <= 4 + 2 + 1 + 2, "{accepted} events accepted");
    assert_eq!(collect.len(), 0);

    // `send` does not complete while the sink is blocked (paused time runs
    // forward through the timeout, so this is no race).
    let waited =
        tokio::time::timeout(Duration::from_secs(3600), handle.send(blocked.clone())).await;
    assert!(waited.is_err(), "send completed while the sink was blocked");

    gate.add_permits(Semaphore::MAX_PERMITS / 2);
    tokio::time::timeout(Duration::from_secs(5), handle.send(blocked))
        .await
        .unwrap_or_else(|_| panic!("send still blocked after the sink resumed"))
        .unwrap_or_else(|_| panic!("service stopped"));
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
    // Each accepted sign-up, then the one that had to wait, entered.
    let entries = collect
        .actions
        .lock()
        .map(|a| a.iter().filter(|a| a.kind.name() == "enter").count())
        .unwrap_or(0);
    assert_eq!(entries, accepted + 1);
}

#[tokio::test]
async fn timers_fire_from_the_wall_clock_without_new_events() {
    let program = program();
    let clock = ManualClock::new(ts(T0));
    let sink = Collect::default();
    let handle = Service::spawn(
        program,
        MemStore::default(),
        clock.clone(),
        sink.clone(),
        ServiceConfig::default(),
    );
    handle
        .send(OwnedEvent::identify(
            "ana",
            ts(T0),
            json!({"email": "ana@example.com"}),
        ))
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    handle
        .send(OwnedEvent::track(
            "ana",
            "signed_up",
            ts(T0),
            json!({"source": "ad"}),
        ))
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    let due = handle
        .next_timer_due()
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    assert_eq!(
        due.map(format_timestamp).as_deref(),
        Some("2026-03-03T09:00:00Z")
    );
    let before = sink.len();
    assert!(before >= 2, "enter and the first welcome");

    // Not yet due: nothing happens.
    clock.set(ts("2026-03-03T08:59:59Z"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sink.len(), before);

    // Due: the service wakes on its own; no event, no inspection.
    clock.set(ts("2026-03-03T09:00:00Z"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.len() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timer did not fire"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lines = sink.lines();
    let last_send = lines
        .iter()
        .rev()
        .find(|l| l.contains("\"kind\":\"send\""))
        .cloned()
        .unwrap_or_default();
    assert!(
        last_send.starts_with("{\"at\":\"2026-03-03T09:00:00Z\""),
        "{last_send}"
    );
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_scaled_clock_under_paused_time_fires_at_the_due_time() {
    let program = program();
    let clock = ScaledClock::new(ts(T0), 1);
    let sink = Collect::default();
    let handle = Service::spawn(
        program,
        MemStore::default(),
        clock,
        sink.clone(),
        ServiceConfig::default(),
    );
    handle
        .send(OwnedEvent::identify(
            "bo",
            ts(T0),
            json!({"email": "bo@example.com"}),
        ))
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    handle
        .send(OwnedEvent::track("bo", "signed_up", ts(T0), json!({})))
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    // A day and a bit of tokio time passes in no real time.
    tokio::time::sleep(Duration::from_secs(86_400 + 1)).await;
    let welcomes: Vec<String> = sink
        .lines()
        .into_iter()
        .filter(|l| l.contains("\"kind\":\"send\""))
        .collect();
    assert_eq!(welcomes.len(), 2, "{welcomes:?}");
    assert!(welcomes[1].starts_with("{\"at\":\"2026-03-03T09:00:00Z\""));
    assert!(clock.now_ms() > ts("2026-03-03T09:00:00Z"));
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
}

#[tokio::test]
async fn shutdown_state_resumes_to_the_uninterrupted_output() {
    let program = program();
    let events = events();
    let (expected, _) = core_run(&program, &events);
    let (first, second) = events.split_at(events.len() / 3);

    let clock = ManualClock::new(ts(T0));
    let sink = Collect::default();
    let handle = Service::spawn(
        program.clone(),
        MemStore::default(),
        clock.clone(),
        sink.clone(),
        ServiceConfig::default(),
    );
    for event in first.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());

    // Persist and load the state as an embedder would.
    let saved =
        serde_json::to_string(&stopped.runtime.snapshot()).unwrap_or_else(|e| panic!("{e}"));
    drop(stopped);
    let snapshot: Snapshot = serde_json::from_str(&saved).unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::restore(program, snapshot).unwrap_or_else(|e| panic!("{e}"));

    let handle = Service::spawn_runtime(
        runtime,
        clock.clone(),
        sink.clone(),
        ServiceConfig::default(),
    );
    for event in second.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    handle
        .stats()
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    clock.set(ts(FAR));
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());
    assert_eq!(sink.lines(), expected);
}

#[tokio::test]
async fn a_live_snapshot_resumes_to_the_uninterrupted_output() {
    let program = program();
    let events = events();
    let (expected, _) = core_run(&program, &events);
    let (first, second) = events.split_at(events.len() / 2);

    let clock = ManualClock::new(ts(T0));
    let sink = Collect::default();
    let handle = Service::spawn(
        program.clone(),
        MemStore::default(),
        clock.clone(),
        sink.clone(),
        ServiceConfig::default(),
    );
    for event in first.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    let snapshot = handle
        .snapshot()
        .await
        .unwrap_or_else(|_| panic!("service stopped"));
    // Every action the snapshot implies has already reached the sink.
    let at_snapshot = sink.len();
    // The service goes on; a crash now would restart from the snapshot.
    for event in second.iter().cloned() {
        handle
            .send(event)
            .await
            .unwrap_or_else(|_| panic!("service stopped"));
    }
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stopped.is_clean());

    let mut resumed = Runtime::restore(program, snapshot).unwrap_or_else(|e| panic!("{e}"));
    let mut lines: Vec<String> = sink.lines().into_iter().take(at_snapshot).collect();
    for event in second {
        resumed
            .ingest(&event.as_event(), &mut |a: Action| {
                lines.push(a.to_json_line())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    resumed.finish(&mut |a: Action| lines.push(a.to_json_line()));
    assert_eq!(lines, expected);
}

/// Accepts `ok` batches, then fails, giving its batch back.
struct Failing {
    ok: usize,
    inner: Collect,
}

impl ActionSink for Failing {
    async fn deliver(&mut self, batch: Vec<Action>) -> Result<(), SinkError> {
        if self.ok == 0 {
            return Err(SinkError::new("provider unavailable").with_undelivered(batch));
        }
        self.ok -= 1;
        self.inner.deliver(batch).await
    }
}

#[tokio::test]
async fn a_failing_sink_stops_the_service_and_loses_nothing() {
    let program = program();
    let events = events();
    let (expected, _) = core_run(&program, &events);
    let clock = ManualClock::new(ts(T0));
    let collect = Collect::default();
    let sink = Failing {
        ok: 3,
        inner: collect.clone(),
    };
    let config = ServiceConfig {
        event_capacity: 8,
        action_capacity: 2,
        max_batch: 4,
    };
    let handle = Service::spawn(program.clone(), MemStore::default(), clock, sink, config);
    let mut refused = None;
    for (i, event) in events.iter().cloned().enumerate() {
        if let Err(closed) = handle.send(event).await {
            refused = Some((i, closed.0));
            break;
        }
    }
    let Some((refused_at, refused_event)) = refused else {
        panic!("the service kept accepting events after its sink failed");
    };
    assert_eq!(refused_event, events[refused_at]);
    assert!(handle.stats().await.is_err());
    let stopped = handle.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!stopped.is_clean());
    let error = stopped
        .sink_error
        .clone()
        .unwrap_or_else(|| SinkError::new("none"));
    assert_eq!(error.message, "provider unavailable");
    let batches = collect.batches.lock().map(|b| b.len()).unwrap_or(0);
    assert_eq!(batches, 3, "three batches were delivered");

    // Delivered + undelivered is the core's stream for the processed
    // events; the unprocessed ones are exactly those that follow them.
    let processed = refused_at - stopped.unprocessed.len();
    assert_eq!(stopped.unprocessed, events[processed..refused_at]);
    let mut core = Runtime::new(program);
    let mut lines = Vec::new();
    for event in &events[..processed] {
        core.ingest(&event.as_event(), &mut |a: Action| {
            lines.push(a.to_json_line())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut got = collect.lines();
    got.extend(stopped.undelivered.iter().map(Action::to_json_line));
    assert_eq!(got, lines);
    assert_eq!(expected[..lines.len()], lines[..]);
}

#[test]
fn segment_messages_are_read_or_reported() {
    let track = json!({
        "type": "track", "anonymousId": "anon-1", "event": "cart_abandoned",
        "properties": {"cart_id": "c1", "total": 80},
        "timestamp": "2026-03-02T10:00:00+01:00", "messageId": "e-1",
        "context": {"timezone": "Europe/Paris"}, "sentAt": "2026-03-02T09:00:01Z"
    });
    let event = OwnedEvent::from_segment(&track).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&*event.user_key, "anon-1");
    assert_eq!(&*event.name, "cart_abandoned");
    assert_eq!(format_timestamp(event.timestamp_ms), "2026-03-02T09:00:00Z");
    assert_eq!(event.message_id.as_deref(), Some("e-1"));
    // Only an identify's time zone is read.
    assert_eq!(event.context_timezone, None);

    let identify = json!({"type": "identify", "userId": "u1", "timestamp": T0});
    let event = OwnedEvent::from_segment(&identify).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(event.properties, json!({}));
    let identify = json!({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "context": {"timezone": "Europe/Paris"}
    });
    let event = OwnedEvent::from_segment(&identify).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(event.context_timezone.as_deref(), Some("Europe/Paris"));
    let page = json!({"type": "page", "userId": "u1", "timestamp": T0});
    assert!(OwnedEvent::from_segment(&page).is_ok());

    let cases = [
        (json!({"userId": "u1", "timestamp": T0}), "missing `type`"),
        (
            json!({"type": "track", "event": "x", "timestamp": T0}),
            "missing `userId` or `anonymousId`",
        ),
        (
            json!({"type": "track", "userId": "u1", "event": "x"}),
            "missing `timestamp`",
        ),
        (
            json!({"type": "track", "userId": "u1", "event": "x", "timestamp": "yesterday"}),
            "`timestamp` `yesterday` is not an RFC 3339 time such as `2026-03-02T10:00:00Z`",
        ),
        (
            json!({"type": "track", "userId": "u1", "timestamp": T0}),
            "missing `event` in a track message",
        ),
        (
            json!({"type": "track", "userId": "u1", "event": "x", "timestamp": T0, "properties": [1]}),
            "`properties` must be an object, found a list",
        ),
        (
            json!({"type": "purchase", "userId": "u1", "timestamp": T0}),
            "unknown message type `purchase`; expected `track`, `identify`, `page`, `screen`, `group` or `alias`",
        ),
    ];
    for (message, expected) in cases {
        let error = OwnedEvent::from_segment(&message)
            .err()
            .map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected), "{message}");
    }
}

#[test]
fn actions_of_every_kind_reach_the_core_stream() {
    // A guard that the scenario above exercises the shell with more than
    // enter and send: waits, suppressions, exits and conversions.
    let program = program();
    let (lines, _) = core_run(&program, &events());
    for kind in ["enter", "send", "exit", "convert", "suppress"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("\"kind\":\"{kind}\""))),
            "no `{kind}` in the stream"
        );
    }
}

#[test]
fn the_core_by_hand() {
    let program = program();
    // --8<-- [start:core]
    let mut runtime = Runtime::new(program.clone());
    let mut actions: Vec<Action> = Vec::new();
    let traits = json!({ "email": "ana@example.com", "timezone": "Europe/Paris" });
    let properties = json!({ "source": "ad" });
    let t0 = ts("2026-03-02T09:00:00Z");
    runtime
        .ingest(&Event::identify("ana", t0, &traits), &mut |a| {
            actions.push(a)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let signed_up = Event::track("ana", "signed_up", t0, &properties).with_message_id("evt-1");
    for _ in 0..2 {
        // The second is a duplicate: ignored.
        runtime
            .ingest(&signed_up, &mut |a| actions.push(a))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Time moves only when told: an event's timestamp, or advance_to.
    runtime.advance_to(t0 + 86_400_000, &mut |a| actions.push(a));
    // Or: run on until no timer is pending (end of a replay).
    runtime.finish(&mut |a| actions.push(a));
    for action in &actions {
        println!("{}", action.to_json_line());
    }
    // --8<-- [end:core]
    // --8<-- [start:persist]
    let saved: String = serde_json::to_string(&runtime.snapshot()).unwrap_or_default();
    // ... later, maybe in another process, over the same program:
    let snapshot: Snapshot = serde_json::from_str(&saved).unwrap_or_else(|e| panic!("{e}"));
    let resumed = Runtime::restore(program.clone(), snapshot).unwrap_or_else(|e| panic!("{e}"));
    // --8<-- [end:persist]
    let borrowed = serde_json::to_string(&runtime.snapshot_ref()).unwrap_or_default();
    assert_eq!(
        borrowed, saved,
        "the borrowed snapshot writes the same JSON"
    );
    let kinds: Vec<&str> = actions.iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["enter", "send", "send", "exit"]);
    assert_eq!(format_timestamp(actions[2].at), "2026-03-03T09:00:00Z");
    assert_eq!(runtime.stats().duplicates, 1);
    assert_eq!(resumed.stats(), runtime.stats());
    assert_eq!(resumed.now(), runtime.now());
    // The binary encoding, as `journey serve`'s checkpoints hold it.
    let bytes = runtime
        .snapshot_ref()
        .to_binary()
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot: Snapshot = Snapshot::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let resumed = Runtime::restore(program.clone(), snapshot).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resumed.stats(), runtime.stats());
    assert_eq!(
        serde_json::to_string(&resumed.snapshot_ref()).unwrap_or_default(),
        saved
    );
}

/// Every ```rust block of docs/embedding.md is copied from code that
/// compiles: the example or this file (indentation aside).
#[test]
fn the_embedding_guide_quotes_compiled_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let normalize = |text: &str| -> String {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let compiled = format!(
        "{}\n{}",
        normalize(&read("examples/embedded_service.rs")),
        normalize(&read("tests/runtime_service.rs"))
    );
    let guide = read("docs/embedding.md");
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```rust\n") {
        let body = &rest[start + "```rust\n".len()..];
        let Some(end) = body.find("```") else {
            panic!("an unclosed code block in docs/embedding.md");
        };
        let block = normalize(&body[..end]);
        assert!(
            compiled.contains(&block),
            "this block of docs/embedding.md is not in the example or the tests:\n{block}"
        );
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert!(blocks >= 6, "only {blocks} code blocks");
}
