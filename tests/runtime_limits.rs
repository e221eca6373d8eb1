//! The runtime's limits on its input, each from a defect that reached
//! customers: one event stamped far ahead moved every customer's clock; a
//! time past year 9999 looped for ever; a snapshot restored over another
//! program or forged panicked or sent other messages. Each test fails on
//! the runtime before its fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use journey::SourceMap;
use journey::compile::Program;
use journey::pipeline;
use journey::runtime::{
    Action, ActionKind, BINARY_SNAPSHOT_MAGIC, Event, ExitReason, MemStore, Rejected, RestoreError,
    Runtime, RuntimeOptions, SNAPSHOT_FORMAT, Snapshot,
};
use journey::value::{MAX_TIME_MS, format_timestamp, parse_timestamp};
use proptest::prelude::*;
use serde_json::json;

const DAY: i64 = 86_400_000;

const PROJECT: &str = r#"
template welcome { channel email  subject "Welcome"  body "Hello" }
template later { channel email  body "Three days on" }
template nudge { channel email  body "Still here?" }

journey onboarding {
  trigger signed_up
  quiet hours 21:00 to 08:00
  send email welcome
  wait 3d
  send email later
}

journey renewal {
  trigger renewal_set
  wait until profile.renews_at - 30d
  send email nudge
}

journey winback {
  trigger no any for 30d
  send email nudge
}
"#;

fn compile(source: &str) -> Arc<Program> {
    let mut sources = SourceMap::new();
    sources.add("limits.journey", source.to_string());
    let build = pipeline::build(sources);
    let messages: Vec<&String> = build.diagnostics.items.iter().map(|d| &d.message).collect();
    Arc::new(
        build
            .program
            .unwrap_or_else(|| panic!("the project has errors: {messages:?}")),
    )
}

fn ts(text: &str) -> i64 {
    parse_timestamp(text).unwrap_or_else(|| panic!("bad test timestamp {text}"))
}

fn email(user: &str, at: i64) -> serde_json::Value {
    json!({ "email": format!("{user}@example.com"), "renews_at": format_timestamp(at + 60 * DAY) })
}

/// Every action as its JSON line.
fn lines(actions: &[Action]) -> Vec<String> {
    actions.iter().map(Action::to_json_line).collect()
}

// ------------------------------------------------------------ time jumps

#[test]
fn one_event_far_ahead_moves_no_clock() {
    let program = compile(PROJECT);
    let mut rt = Runtime::new(program);
    let mut out = Vec::new();
    let t0 = ts("2026-03-02T09:00:00Z");
    let empty = json!({});
    let ana = email("ana", t0);
    rt.ingest(&Event::identify("ana", t0, &ana), &mut |a| out.push(a))
        .unwrap_or_else(|e| panic!("{e}"));
    rt.ingest(&Event::track("ana", "signed_up", t0, &empty), &mut |a| {
        out.push(a)
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // An event for no journey, stamped 2200: refused, and nothing moves.
    let far = ts("2200-01-01T00:00:00Z");
    let refused = rt.ingest(&Event::track("zed", "page_left", far, &empty), &mut |a| {
        out.push(a)
    });
    assert_eq!(
        refused,
        Err(Rejected::TooFarAhead {
            at: far,
            clock: t0,
            max_ms: RuntimeOptions::MAX_CLOCK_JUMP_MS
        })
    );
    assert_eq!(rt.now(), Some(t0), "the clock did not move");
    assert_eq!(rt.stats().rejected, 1);
    let text = refused.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        text.contains("2200-01-01T00:00:00Z") && text.contains("ahead of the clock"),
        "{text}"
    );

    // A customer who signs up an hour later waits three days from then.
    let t1 = t0 + 3_600_000;
    let bob = email("bob", t1);
    rt.ingest(&Event::identify("bob", t1, &bob), &mut |a| out.push(a))
        .unwrap_or_else(|e| panic!("{e}"));
    rt.ingest(&Event::track("bob", "signed_up", t1, &empty), &mut |a| {
        out.push(a)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    rt.advance_to(t0 + 2 * DAY, &mut |a| out.push(a));
    let early: Vec<_> = out
        .iter()
        .filter(|a| matches!(&a.kind, ActionKind::Send { template, .. } if &**template == "later"))
        .collect();
    assert!(early.is_empty(), "no follow-up before its time: {early:?}");
    rt.finish(&mut |a| out.push(a));
    let later: Vec<(String, i64)> = out
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Send { template, .. } if &**template == "later" => {
                Some((a.user_id.to_string(), a.at))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        later,
        vec![
            ("ana".to_string(), t0 + 3 * DAY),
            ("bob".to_string(), t1 + 3 * DAY)
        ]
    );
}

#[test]
fn times_outside_1970_to_9999_are_refused() {
    let mut rt = Runtime::new(compile(PROJECT));
    let empty = json!({});
    for at in [-1, i64::MIN, MAX_TIME_MS + 1, i64::MAX] {
        let refused = rt.ingest(&Event::track("ana", "signed_up", at, &empty), &mut |_| {});
        assert_eq!(refused, Err(Rejected::OutOfRange { at }));
    }
    assert_eq!(rt.now(), None);
    assert_eq!(rt.stats().rejected, 4);
    // The first event may start the clock anywhere in range; the jump is
    // measured from there.
    rt.ingest(&Event::track("ana", "signed_up", 0, &empty), &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"));
    let options = RuntimeOptions {
        max_clock_jump_ms: 10 * DAY,
    };
    let mut rt = rt.with_options(options);
    let ok = rt.ingest(&Event::track("bo", "x", 10 * DAY, &empty), &mut |_| {});
    assert_eq!(ok, Ok(()), "exactly the limit is allowed");
    let refused = rt.ingest(&Event::track("bo", "x", 20 * DAY + 1, &empty), &mut |_| {});
    assert!(matches!(refused, Err(Rejected::TooFarAhead { .. })));
}

// ------------------------------------------------------- year 9999, no loop

#[test]
fn quiet_hours_at_the_end_of_time_end_the_instance() {
    let mut rt = Runtime::new(compile(PROJECT));
    let mut out = Vec::new();
    // 21:30 on the last day a local time can be computed for: the quiet
    // window ends on a day there is no local time for.
    let at = MAX_TIME_MS - DAY - 2 * 3_600_000 - 1_800_000;
    let ana = json!({ "email": "ana@example.com" });
    let empty = json!({});
    rt.ingest(&Event::identify("ana", at, &ana), &mut |a| out.push(a))
        .unwrap_or_else(|e| panic!("{e}"));
    rt.ingest(&Event::track("ana", "signed_up", at, &empty), &mut |a| {
        out.push(a)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    rt.finish(&mut |a| out.push(a));
    let exits: Vec<_> = out
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::Exit { reason } => Some((a.journey.to_string(), reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        exits,
        vec![("onboarding".to_string(), ExitReason::InvalidTime)]
    );
    assert!(out.iter().all(|a| a.at <= MAX_TIME_MS), "{:?}", lines(&out));
    assert!(lines(&out).iter().all(|l| l.contains("\"at\":\"9999-")));
}

#[test]
fn a_wait_past_year_9999_ends_the_instance() {
    let mut rt = Runtime::new(compile(PROJECT));
    let mut out = Vec::new();
    let at = MAX_TIME_MS - DAY - 12 * 3_600_000; // 12:00 on 9999-12-30: not quiet
    let ana = json!({ "email": "ana@example.com" });
    let empty = json!({});
    rt.ingest(&Event::identify("ana", at, &ana), &mut |a| out.push(a))
        .unwrap_or_else(|e| panic!("{e}"));
    rt.ingest(&Event::track("ana", "signed_up", at, &empty), &mut |a| {
        out.push(a)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    rt.finish(&mut |a| out.push(a));
    let kinds: Vec<String> = out
        .iter()
        .map(|a| match &a.kind {
            ActionKind::Exit { reason } => format!("exit {}", reason.name()),
            ActionKind::Send { template, .. } => format!("send {template}"),
            ActionKind::Enter { .. } => "enter".to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    // `wait 3d` would end in year 10000; the silence of `winback` would
    // complete there too, so it never fires.
    assert_eq!(kinds, ["enter", "send welcome", "exit invalid_time"]);
    assert_eq!(rt.store().pending_timers(), 0);
}

// ------------------------------------------------------------- snapshots

fn busy_runtime(program: &Arc<Program>) -> (Runtime, Vec<Action>) {
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    let t0 = ts("2026-03-02T09:00:00Z");
    let empty = json!({});
    for (i, user) in ["ana", "bob", "cy"].into_iter().enumerate() {
        let at = t0 + i as i64 * 3_600_000;
        let traits = email(user, at);
        rt.ingest(&Event::identify(user, at, &traits), &mut |a| out.push(a))
            .unwrap_or_else(|e| panic!("{e}"));
        for name in ["signed_up", "renewal_set"] {
            rt.ingest(&Event::track(user, name, at, &empty), &mut |a| out.push(a))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    (rt, out)
}

fn snapshot_json(rt: &Runtime) -> serde_json::Value {
    serde_json::to_value(rt.snapshot()).unwrap_or_else(|e| panic!("{e}"))
}

fn restore(program: &Arc<Program>, json: serde_json::Value) -> Result<Runtime, RestoreError> {
    let snapshot: Snapshot =
        serde_json::from_value(json).unwrap_or_else(|e| panic!("the snapshot reads: {e}"));
    Runtime::restore(program.clone(), snapshot)
}

#[test]
fn a_snapshot_is_refused_over_another_program() {
    let program = compile(PROJECT);
    let (rt, _) = busy_runtime(&program);
    let json = snapshot_json(&rt);
    assert_eq!(json["format"], SNAPSHOT_FORMAT);
    // The same journeys with one more step: the snapshot's step numbers
    // would point elsewhere.
    let changed = compile(&PROJECT.replace(
        "  send email welcome\n",
        "  send email welcome\n  wait 1h\n",
    ));
    match restore(&changed, json.clone()) {
        Err(RestoreError::Program { found, expected }) => {
            assert_ne!(found, expected);
            let text = RestoreError::Program { found, expected }.to_string();
            assert!(text.contains("another program"), "{text}");
        }
        other => panic!("expected a program mismatch, got {:?}", other.err()),
    }
    let mut old = json.clone();
    old["format"] = json!(1);
    assert!(matches!(
        restore(&program, old),
        Err(RestoreError::Format { found: 1 })
    ));
    let mut none = json.clone();
    if let Some(map) = none.as_object_mut() {
        map.remove("format");
        map.remove("program");
    }
    assert!(matches!(
        restore(&program, none),
        Err(RestoreError::Format { found: 0 })
    ));
    assert!(restore(&program, json).is_ok());
}

/// Forged snapshots, each of a kind that panicked, hung or lost a
/// customer's messages: refused with the reason.
#[test]
fn an_inconsistent_snapshot_is_refused_with_the_reason() {
    let program = compile(PROJECT);
    let (rt, _) = busy_runtime(&program);
    let good = snapshot_json(&rt);
    let forge = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json = good.clone();
        edit(&mut json);
        match restore(&program, json) {
            Err(RestoreError::Inconsistent(why)) => why,
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a forged snapshot was restored"),
        }
    };
    let why = forge(&|j| j["store"]["users"][0]["journeys"][0]["instance"]["node"] = json!(999));
    assert!(why.contains("step 999"), "{why}");
    let why = forge(&|j| j["store"]["users"][0]["journeys"][0]["journey"] = json!(77));
    assert!(why.contains("journey 77"), "{why}");
    let why = forge(&|j| j["store"]["timers"][0]["user"] = json!(40));
    assert!(why.contains("user 40"), "{why}");
    let why = forge(&|j| j["store"]["timers"] = json!([]));
    assert!(why.contains("without its timer"), "{why}");
    let why = forge(&|j| j["store"]["keys"][1] = j["store"]["keys"][0].clone());
    assert!(why.contains("twice"), "{why}");
    let why = forge(&|j| j["store"]["clock"] = json!(i64::MAX));
    assert!(why.contains("clock"), "{why}");
    let why = forge(&|j| {
        let handles = &mut j["store"]["users"][0]["journeys"][0]["instance"]["handles"];
        *handles = json!(vec![json!({"sent": true, "engaged": 0, "node": 0}); 9]);
    });
    assert!(why.contains("handles"), "{why}");
    let why = forge(&|j| {
        j["stats"]["journeys"][0]["nodes"] =
            json!(vec![json!({"arrived": 0, "sent": 0, "suppressed": 0}); 40])
    });
    assert!(why.contains("counters"), "{why}");
}

/// The promise `ServiceHandle::snapshot` makes, exactly: restoring a
/// snapshot and feeding it every event after it loses nothing, and what the
/// sink took between the snapshot and a crash comes again, identical.
#[test]
fn after_a_crash_the_actions_since_the_snapshot_come_again_identical() {
    let program = compile(PROJECT);
    let t0 = ts("2026-03-02T09:00:00Z");
    let empty = json!({});
    let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
    let traits: Vec<serde_json::Value> = users
        .iter()
        .enumerate()
        .map(|(i, u)| email(u, t0 + i as i64 * 7_200_000))
        .collect();
    let mut events: Vec<Event<'_>> = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let at = t0 + i as i64 * 7_200_000;
        events.push(Event::identify(user, at, &traits[i]));
        events.push(Event::track(user, "signed_up", at, &empty));
        events.push(Event::track(user, "renewal_set", at, &empty));
    }
    let feed = |rt: &mut Runtime, events: &[Event<'_>], out: &mut Vec<String>| {
        for event in events {
            rt.ingest(event, &mut |a| out.push(a.to_json_line()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    let mut whole = Vec::new();
    let mut rt = Runtime::new(program.clone());
    feed(&mut rt, &events, &mut whole);
    rt.finish(&mut |a| whole.push(a.to_json_line()));

    let (snap_at, crash_at) = (10, 25);
    let mut sink = Vec::new();
    let mut rt = Runtime::new(program.clone());
    feed(&mut rt, &events[..snap_at], &mut sink);
    let saved = serde_json::to_string(&rt.snapshot()).unwrap_or_default();
    let at_snapshot = sink.len();
    feed(&mut rt, &events[snap_at..crash_at], &mut sink);
    drop(rt); // the crash
    let snapshot: Snapshot<MemStore> =
        serde_json::from_str(&saved).unwrap_or_else(|e| panic!("{e}"));
    let mut resumed = Runtime::restore(program, snapshot).unwrap_or_else(|e| panic!("{e}"));
    let mut replayed = Vec::new();
    feed(&mut resumed, &events[snap_at..], &mut replayed);
    resumed.finish(&mut |a| replayed.push(a.to_json_line()));

    // Nothing lost: the replay is exactly the uninterrupted run's rest.
    assert_eq!(replayed, whole[at_snapshot..]);
    // What the sink took after the snapshot came again, identical.
    let again = &sink[at_snapshot..];
    assert!(!again.is_empty(), "the test crashes after some actions");
    assert_eq!(&replayed[..again.len()], again);
    // A sink that drops lines it holds ends with the uninterrupted run.
    let mut kept = sink.clone();
    for line in replayed {
        if !kept[at_snapshot..].contains(&line) {
            kept.push(line);
        }
    }
    assert_eq!(kept, whole);
}

/// Every number in a JSON tree, by its path of keys and indices.
fn number_paths(json: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match json {
        serde_json::Value::Number(_) => out.push(path.clone()),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                number_paths(item, path, out);
                path.pop();
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                path.push(key.clone());
                number_paths(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(json: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(json, |node, key| match node {
        serde_json::Value::Array(items) => &mut items[key.parse::<usize>().unwrap_or(0)],
        other => &mut other[key.as_str()],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A snapshot with any of its numbers forged is refused, or restores
    /// to a runtime that takes events and runs to its end without a panic.
    #[test]
    fn a_forged_snapshot_never_panics(
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![
                Just(-1i64), Just(0i64), Just(1i64), Just(2i64), Just(7i64), Just(65_535i64),
                Just(i64::MAX), Just(u32::MAX as i64), any::<i64>(), 0i64..40,
            ]),
            1..4,
        ),
    ) {
        let program = compile(PROJECT);
        let (rt, _) = busy_runtime(&program);
        let mut json = snapshot_json(&rt);
        let mut paths = Vec::new();
        number_paths(&json, &mut Vec::new(), &mut paths);
        for (index, value) in &edits {
            let path = &paths[index.index(paths.len())];
            *at_path(&mut json, path) = json!(value);
        }
        // A number out of its type's range does not read: that is refusal too.
        let Ok(snapshot) = serde_json::from_value::<Snapshot>(json) else {
            return Ok(());
        };
        if let Ok(mut rt) = Runtime::restore(program, snapshot) {
            let empty = json!({});
            let later = ts("2026-03-20T09:00:00Z");
            for user in ["ana", "dee"] {
                let _ = rt.ingest(&Event::track(user, "signed_up", later, &empty), &mut |_| {});
            }
            rt.finish(&mut |_| {});
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A snapshot in the binary encoding (a service's checkpoint) with
    /// any of its bytes forged, or cut short anywhere, is refused with the
    /// reason, or restores to a runtime that takes events and runs to its
    /// end without a panic.
    #[test]
    fn a_forged_binary_snapshot_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let program = compile(PROJECT);
        let (rt, _) = busy_runtime(&program);
        let mut bytes = rt.snapshot_ref().to_binary().unwrap_or_else(|e| panic!("{e}"));
        for (index, byte) in &edits {
            let i = index.index(bytes.len());
            bytes[i] = *byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let snapshot = match Snapshot::<MemStore>::decode(&bytes) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        if let Ok(mut rt) = Runtime::restore(program, snapshot) {
            let empty = json!({});
            let later = ts("2026-03-20T09:00:00Z");
            for user in ["ana", "dee"] {
                let _ = rt.ingest(&Event::track(user, "signed_up", later, &empty), &mut |_| {});
            }
            rt.finish(&mut |_| {});
        }
    }
}

/// The binary encoding restores exactly what JSON does, and says why when
/// it cannot: cut short, bytes after its end, another format.
#[test]
fn a_binary_snapshot_restores_and_a_broken_one_says_why() {
    let program = compile(PROJECT);
    let (rt, _) = busy_runtime(&program);
    let bytes = rt
        .snapshot_ref()
        .to_binary()
        .unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_vec(&rt.snapshot_ref()).unwrap_or_default();
    assert!(
        bytes.len() * 2 < json.len(),
        "binary {} bytes, JSON {}",
        bytes.len(),
        json.len()
    );
    let restored = Runtime::restore(
        program.clone(),
        Snapshot::<MemStore>::decode(&bytes).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot_json(&restored), snapshot_json(&rt));
    // JSON reads through the same door.
    let from_json = Snapshot::<MemStore>::decode(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_json.program, rt.snapshot_ref().program);

    let refused = |bytes: &[u8]| match Snapshot::<MemStore>::decode(bytes) {
        Ok(_) => panic!("a broken snapshot decoded"),
        Err(e) => e.to_string(),
    };
    let cut = refused(&bytes[..bytes.len() - 3]);
    assert!(cut.starts_with("the snapshot does not read: "), "{cut}");
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        refused(&longer),
        "the snapshot does not read: 1 bytes follow its end"
    );
    let mut other = bytes.clone();
    other[BINARY_SNAPSHOT_MAGIC.len()] = 9;
    assert!(
        matches!(
            Snapshot::<MemStore>::decode(&other),
            Err(RestoreError::Format { found: 9 })
        ),
        "another format is refused before its body is read"
    );
    assert!(refused(b"not a snapshot").contains("as JSON"));
}

// --------------------------------------------- any time, bounded by users

fn event_names() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["signed_up", "renewal_set", "page_left", "identify"])
}

/// Timestamps from the whole of `i64`, weighted toward the edges and the
/// years of real data, where bugs live.
fn any_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(MAX_TIME_MS),
        Just(0i64),
        (MAX_TIME_MS - 40 * DAY)..=(MAX_TIME_MS + DAY),
        1_700_000_000_000i64..1_900_000_000_000,
        -DAY..DAY,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For any stream with timestamps drawn from the whole representable
    /// range, the runtime terminates, never panics, never stamps an action
    /// past year 9999, and its state is bounded by its customers, not by
    /// the clock.
    #[test]
    fn any_times_terminate_with_state_bounded_by_customers(
        stream in prop::collection::vec((0u8..6, event_names(), any_time()), 1..40),
        jump in prop_oneof![Just(RuntimeOptions::MAX_CLOCK_JUMP_MS), Just(i64::MAX)],
    ) {
        let program = compile(PROJECT);
        let mut rt = Runtime::new(program).with_options(RuntimeOptions { max_clock_jump_ms: jump });
        let mut out = Vec::new();
        let empty = json!({});
        let mut users = BTreeMap::new();
        for (user, name, at) in &stream {
            let key = format!("u{user}");
            let traits = json!({
                "email": format!("{key}@example.com"),
                "renews_at": *at,
            });
            let event = if *name == "identify" {
                Event::identify(&key, *at, &traits)
            } else {
                Event::track(&key, name, *at, &empty)
            };
            if rt.ingest(&event, &mut |a| out.push(a)).is_ok() {
                users.insert(key, ());
            }
        }
        rt.finish(&mut |a| out.push(a));
        prop_assert!(out.iter().all(|a| (0..=MAX_TIME_MS).contains(&a.at)));
        prop_assert!(rt.now().is_none_or(|t| (0..=MAX_TIME_MS).contains(&t)));
        prop_assert_eq!(rt.store().pending_timers(), 0);
        prop_assert!(rt.store().user_count() <= users.len());
        // Each admitted event adds a bounded number of actions (3 journeys,
        // a few steps each).
        prop_assert!(out.len() <= 12 * stream.len(), "{} actions", out.len());
        for line in lines(&out) {
            prop_assert!(!line.contains("\"at\":\"-") && line.contains("\"at\":\""), "{}", line);
        }
    }
}

// ------------------------------------------------------------ command line

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("limits-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn simulate(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey"))
        .arg("simulate")
        .arg(dir.join("project.journey"))
        .arg("--events")
        .arg(dir.join("events.ndjson"))
        .args(extra)
        .output()
        .expect("the journey binary runs")
}

#[test]
fn simulate_reports_an_event_too_far_ahead_and_skips_it() {
    let dir = scratch("jump");
    std::fs::write(dir.join("project.journey"), PROJECT).unwrap_or_default();
    let events = [
        r#"{"type":"identify","userId":"ana","traits":{"email":"ana@example.com"},"timestamp":"2026-03-02T09:00:00Z"}"#,
        r#"{"type":"track","userId":"ana","event":"signed_up","timestamp":"2026-03-02T09:00:00Z","messageId":"a1"}"#,
        r#"{"type":"track","userId":"zed","event":"page_left","timestamp":"2200-01-01T00:00:00Z","messageId":"z1"}"#,
        r#"{"type":"track","userId":"ana","event":"page_left","timestamp":"2027-01-15T00:00:00Z","messageId":"a2"}"#,
    ];
    std::fs::write(dir.join("events.ndjson"), events.join("\n")).unwrap_or_default();
    let output = simulate(&dir, &[]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("events.ndjson:3: `timestamp` 2200-01-01T00:00:00Z is")
            && err.contains("`--max-clock-jump` sets how far"),
        "{err}"
    );
    assert!(err.contains("1 events skipped for their time"), "{err}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains(r#""at":"2026-03-05T09:00:00Z","kind":"send""#),
        "{out}"
    );
    assert!(!out.contains("2200-"), "{out}");

    // A wider limit takes the 2027 event the default already takes, and a
    // bad one is refused before anything runs.
    let wide = simulate(&dir, &["--max-clock-jump", "100000d"]);
    let wide_err = String::from_utf8_lossy(&wide.stderr);
    assert!(!wide_err.contains("events.ndjson:3:"), "{wide_err}");
    let bad = simulate(&dir, &["--max-clock-jump", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--max-clock-jump soon"));
}

#[test]
fn simulate_sizes_the_dedup_window_and_reports_early_evictions() {
    let dir = scratch("dedup");
    std::fs::write(dir.join("project.journey"), PROJECT).unwrap_or_default();
    let events = [
        r#"{"type":"identify","userId":"ana","traits":{"email":"ana@example.com"},"timestamp":"2026-03-02T09:00:00Z"}"#,
        r#"{"type":"track","userId":"ana","event":"signed_up","timestamp":"2026-03-02T09:00:00Z","messageId":"m1"}"#,
        r#"{"type":"track","userId":"ana","event":"renewal_set","timestamp":"2026-03-02T09:01:00Z","messageId":"m2"}"#,
        r#"{"type":"track","userId":"ana","event":"signed_up","timestamp":"2026-03-02T09:02:00Z","messageId":"m1"}"#,
    ];
    std::fs::write(dir.join("events.ndjson"), events.join("\n")).unwrap_or_default();
    let default = simulate(&dir, &[]);
    let err = String::from_utf8_lossy(&default.stderr);
    assert!(err.contains("1 duplicates"), "{err}");
    let small = simulate(&dir, &["--dedup-capacity", "1"]);
    let err = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(0), "{err}");
    assert!(err.contains("0 duplicates"), "{err}");
    assert!(
        err.contains("2 message ids forgotten before their de-duplication window ended")
            && err.contains("raise `--dedup-capacity`"),
        "{err}"
    );
    // A window of a minute forgets `m1` by 09:02: no early eviction.
    let short = simulate(&dir, &["--dedup-window", "1m"]);
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(
        err.contains("0 duplicates") && !err.contains("forgotten"),
        "{err}"
    );
    for bad in [["--dedup-capacity", "0"], ["--dedup-window", "0s"]] {
        let output = simulate(&dir, &bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
}
