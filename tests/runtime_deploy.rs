//! Deploys inside a running runtime (SERVICE.md §8): a new version of the
//! journeys compiled with [`merge`] beside the versions customers are
//! inside, and every customer's state moved by [`Runtime::redeploy`].

use std::sync::Arc;

use journey::compile::deploy::{Fate, plan};
use journey::compile::program::Program;
use journey::pipeline::{Retired, compile_sources, merge};
use journey::runtime::{Action, Event, EventKind, Runtime};
use journey::source::SourceMap;
use journey::value::parse_timestamp;
use serde_json::{Value, json};

fn sources(text: &str) -> SourceMap {
    let mut map = SourceMap::new();
    map.add("journeys.journey", text);
    map
}

fn ts(t: &str) -> i64 {
    parse_timestamp(t).unwrap_or_else(|| panic!("bad test timestamp {t}"))
}

fn feed(rt: &mut Runtime, messages: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let empty = json!({});
    for m in messages {
        let kind = match m["type"].as_str() {
            Some("track") => EventKind::Track,
            _ => EventKind::Identify,
        };
        let payload = if kind == EventKind::Identify {
            &m["traits"]
        } else {
            &m["properties"]
        };
        let event = Event {
            kind,
            user_key: m["userId"].as_str().unwrap_or(""),
            name: m["event"].as_str().unwrap_or(""),
            timestamp_ms: ts(m["timestamp"].as_str().unwrap_or("")),
            message_id: m["messageId"].as_str(),
            properties: if payload.is_object() { payload } else { &empty },
            context_timezone: None,
        };
        rt.ingest(&event, &mut |a: Action| {
            out.push(serde_json::from_str(&a.to_json_line()).unwrap())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

fn finish(rt: &mut Runtime) -> Vec<Value> {
    let mut out = Vec::new();
    rt.finish(&mut |a: Action| out.push(serde_json::from_str(&a.to_json_line()).unwrap()));
    out
}

fn identify(user: &str, at: &str) -> Value {
    json!({"type": "identify", "userId": user, "timestamp": at,
           "traits": {"email": format!("{user}@example.com")}})
}

fn track(user: &str, name: &str, at: &str, props: Value) -> Value {
    json!({"type": "track", "userId": user, "event": name, "timestamp": at, "properties": props})
}

/// `(user, body, message_id)` of every send, in order.
fn sends(actions: &[Value]) -> Vec<(String, String, String)> {
    actions
        .iter()
        .filter(|a| a["kind"] == "send")
        .map(|a| {
            (
                a["user_id"].as_str().unwrap().to_string(),
                a["body"].as_str().unwrap_or("").to_string(),
                a["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn send(user: &str, body: &str, id: &str) -> (String, String, String) {
    (user.into(), body.into(), id.into())
}

const V1: &str = r#"
template hello { channel email  subject "Hi"  body "Hello v1 {{ trigger.plan }}" }
template bye { channel email  subject "Bye"  body "Bye v1" }
journey welcome {
  trigger signed_up
  reentry after 1h
  wait 1d
  send email hello
  wait 1d
  send email bye
}
"#;

/// Deploys `next` over the runtime, whose live journeys are version
/// `live` and whose kept versions' sources are in `versions`.
fn deploy(
    rt: &mut Runtime,
    next: &SourceMap,
    live: u32,
    versions: &[(u32, &SourceMap)],
) -> Arc<Program> {
    let alone = compile_sources(next).expect("the next version compiles");
    let kept = rt.kept_after(&alone, live);
    let retired: Vec<Retired<'_>> = kept
        .iter()
        .map(|(name, version)| Retired {
            journey: name,
            version: *version,
            sources: versions
                .iter()
                .find(|(v, _)| v == version)
                .map(|(_, s)| *s)
                .expect("a kept version's sources"),
        })
        .collect();
    let program = Arc::new(merge(next, &retired).expect("the merge compiles"));
    rt.redeploy(program.clone(), live);
    program
}

fn start(text: &str) -> Runtime {
    Runtime::new(Arc::new(
        compile_sources(&sources(text)).expect("v1 compiles"),
    ))
}

fn entered(ana_at: &str) -> Vec<Value> {
    vec![
        identify("ana", "2026-03-02T09:00:00Z"),
        track("ana", "signed_up", ana_at, json!({"plan": "pro"})),
    ]
}

#[test]
fn a_template_and_duration_change_moves_instances_at_their_step() {
    let v1 = sources(V1);
    let v2 = sources(
        &V1.replace("Hello v1", "Hello v2")
            .replace("wait 1d\n  send email bye", "wait 2d\n  send email bye"),
    );
    assert_eq!(
        plan(
            &compile_sources(&v1).unwrap(),
            &compile_sources(&v2).unwrap()
        ),
        vec![("welcome".to_string(), Fate::Moves)]
    );
    let mut rt = start(V1);
    let mut out = feed(&mut rt, &entered("2026-03-02T10:00:00Z"));
    // Deployed an hour in: the waiting instance keeps its timer (1d), then
    // reads the new template and waits the new 2d.
    feed(&mut rt, &[identify("bob", "2026-03-02T11:00:00Z")]);
    let program = deploy(&mut rt, &v2, 1, &[(1, &v1)]);
    assert!(
        program.journeys.iter().all(|j| j.retired.is_none()),
        "nothing kept"
    );
    out.extend(finish(&mut rt));
    assert_eq!(
        sends(&out),
        vec![
            send("ana", "Hello v2 pro", "welcome:ana:1:1"),
            send("ana", "Bye v1", "welcome:ana:1:3"),
        ]
    );
    let at: Vec<&str> = out
        .iter()
        .filter(|a| a["kind"] == "send")
        .map(|a| a["at"].as_str().unwrap())
        .collect();
    assert_eq!(at, ["2026-03-03T10:00:00Z", "2026-03-05T10:00:00Z"]);
}

#[test]
fn changed_steps_finish_on_the_version_entered_and_new_entries_take_the_new_one() {
    let v1 = sources(V1);
    let v2 = sources(
        &V1.replace("send email hello\n", "send email hello\n  send email tip\n")
            .replace(
                "template bye",
                "template tip { channel email  subject \"Tip\"  body \"A tip\" }\ntemplate bye",
            ),
    );
    assert_eq!(
        plan(
            &compile_sources(&v1).unwrap(),
            &compile_sources(&v2).unwrap()
        ),
        vec![("welcome".to_string(), Fate::Stays)]
    );
    let mut rt = start(V1);
    let mut out = feed(&mut rt, &entered("2026-03-02T10:00:00Z"));
    let program = deploy(&mut rt, &v2, 1, &[(1, &v1)]);
    let kept: Vec<_> = program
        .journeys
        .iter()
        .map(|j| (j.name.to_string(), j.retired))
        .collect();
    assert_eq!(
        kept,
        [("welcome".into(), None), ("welcome".into(), Some(1))]
    );
    out.extend(feed(
        &mut rt,
        &[
            // Inside the kept version: not admitted again.
            track(
                "ana",
                "signed_up",
                "2026-03-02T12:00:00Z",
                json!({"plan": "max"}),
            ),
            identify("bob", "2026-03-02T12:00:00Z"),
            track(
                "bob",
                "signed_up",
                "2026-03-02T12:00:00Z",
                json!({"plan": "free"}),
            ),
        ],
    ));
    // Ana's old instance ends on 03-04; her next entry is her second, on v2.
    out.extend(feed(
        &mut rt,
        &[track(
            "ana",
            "signed_up",
            "2026-03-06T00:00:00Z",
            json!({"plan": "max"}),
        )],
    ));
    out.extend(finish(&mut rt));
    assert_eq!(
        sends(&out),
        vec![
            send("ana", "Hello v1 pro", "welcome:ana:1:1"),
            send("bob", "Hello v1 free", "welcome:bob:1:1"),
            send("bob", "A tip", "welcome:bob:1:2"),
            send("ana", "Bye v1", "welcome:ana:1:3"),
            send("bob", "Bye v1", "welcome:bob:1:4"),
            send("ana", "Hello v1 max", "welcome:ana:2:1"),
            send("ana", "A tip", "welcome:ana:2:2"),
            send("ana", "Bye v1", "welcome:ana:2:4"),
        ]
    );
    // Once Ana's old instance ended, a later deploy keeps nothing.
    let v3 = sources(&V1.replace("Bye v1", "Bye v3"));
    let program = deploy(&mut rt, &v3, 2, &[(1, &v1), (2, &v2)]);
    assert!(program.journeys.iter().all(|j| j.retired.is_none()));
}

#[test]
fn a_removed_journey_finishes_its_instances() {
    let v1 = sources(V1);
    let v2 = sources(
        r#"template hello { channel email  subject "Hi"  body "Hello v2" }
           journey other { trigger bought  send email hello }"#,
    );
    assert_eq!(
        plan(
            &compile_sources(&v1).unwrap(),
            &compile_sources(&v2).unwrap()
        ),
        vec![
            ("other".to_string(), Fate::Added),
            ("welcome".to_string(), Fate::Removed)
        ]
    );
    let mut rt = start(V1);
    let mut out = feed(&mut rt, &entered("2026-03-02T10:00:00Z"));
    deploy(&mut rt, &v2, 1, &[(1, &v1)]);
    out.extend(feed(
        &mut rt,
        &[track("ana", "signed_up", "2026-03-05T00:00:00Z", json!({}))],
    ));
    out.extend(finish(&mut rt));
    // The template `hello` is the new version's (templates take effect at
    // once); `bye`, which v2 dropped, is v1's; nobody enters `welcome` again.
    assert_eq!(
        sends(&out),
        vec![
            send("ana", "Hello v2", "welcome:ana:1:1"),
            send("ana", "Bye v1", "welcome:ana:1:3"),
        ]
    );
}

#[test]
fn a_snapshot_after_a_deploy_restores_over_the_merged_program() {
    let v1 = sources(V1);
    let v2 = sources(&V1.replace("wait 1d\n  send email hello", "send email hello"));
    let mut rt = start(V1);
    feed(&mut rt, &entered("2026-03-02T10:00:00Z"));
    let program = deploy(&mut rt, &v2, 1, &[(1, &v1)]);
    let later = [
        identify("bob", "2026-03-02T12:00:00Z"),
        track(
            "bob",
            "signed_up",
            "2026-03-02T12:00:00Z",
            json!({"plan": "free"}),
        ),
    ];
    let snapshot = rt.snapshot();
    let mut straight = feed(&mut rt, &later);
    straight.extend(finish(&mut rt));
    let mut restored = Runtime::restore(program, snapshot).expect("restores");
    let mut again = feed(&mut restored, &later);
    again.extend(finish(&mut restored));
    assert_eq!(straight, again);
    assert_eq!(sends(&straight).len(), 4);
}

#[test]
fn an_engagement_reaches_the_kept_instance_that_sent_the_message() {
    let v1 = r#"
template hello { channel email  subject "Hi"  body "Hello" }
template nudge { channel email  subject "Nudge"  body "Nudge v1" }
journey welcome {
  trigger signed_up
  send email hello as greeting
  wait for greeting.opened within 1d else {
    send email nudge
  }
}
"#;
    let v2 = v1.replace(
        "wait for greeting.opened within 1d else {",
        "wait 1h\n  wait for greeting.opened within 1d else {",
    );
    let mut rt = start(v1);
    let mut out = feed(&mut rt, &entered("2026-03-02T10:00:00Z"));
    deploy(&mut rt, &sources(&v2), 1, &[(1, &sources(v1))]);
    out.extend(feed(
        &mut rt,
        &[track(
            "ana",
            "message.opened",
            "2026-03-02T11:00:00Z",
            json!({"message_id": "welcome:ana:1:0"}),
        )],
    ));
    out.extend(finish(&mut rt));
    // Opened: no nudge.
    assert_eq!(sends(&out), vec![send("ana", "Hello", "welcome:ana:1:0")]);
}
