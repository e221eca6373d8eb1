//! Runtime rules (LANGUAGE.md §6), one test per rule, over hand-built
//! programs: a small vocabulary of events, the built-in channels and a few
//! profile slots, and journeys assembled from compiled nodes.

use std::sync::Arc;

use journey::compile::program::*;
use journey::runtime::store::DedupConfig;
use journey::runtime::{Action, Event, EventKind, MemStore, Runtime, Snapshot};
use journey::value::{Value, parse_timestamp};
use serde_json::json;

// ----- the vocabulary -----

const SIGNED_UP: EventId = 0;
const ORDER: EventId = 1;
const CART: EventId = 2;
const APP_OPENED: EventId = 4;

const EMAIL: ChannelId = 0;
const SMS: ChannelId = 1;
const PUSH: ChannelId = 2;

const S_EMAIL: SlotId = 0;
const S_PHONE: SlotId = 1;
const S_PUSH: SlotId = 2;
const S_TIER: SlotId = 8;

fn path(p: &str) -> FieldPath {
    p.split('.').map(Arc::from).collect()
}

fn event(name: &str, fields: &[&str]) -> EventInfo {
    EventInfo {
        name: name.into(),
        fields: fields.iter().map(|f| path(f)).collect(),
        triggers: vec![],
        exits: vec![],
        goals: vec![],
        waits: vec![],
        silences: vec![],
        engagement: name
            .strip_prefix("message.")
            .and_then(Engagement::from_name),
    }
}

fn channel(name: &str, address: Option<SlotId>, consent: Option<SlotId>) -> Channel {
    Channel {
        name: name.into(),
        address: address.map(CExpr::Profile),
        consent: consent.map(CExpr::Profile),
    }
}

fn base() -> Program {
    let slots = [
        "email",
        "phone",
        "push_token",
        "timezone",
        "unsubscribed",
        "consent.email",
        "consent.sms",
        "consent.push",
        "loyalty_tier",
    ];
    Program {
        journeys: vec![],
        events: vec![
            event("signed_up", &["plan"]),
            event("Order Completed", &["cart_id", "total"]),
            event("cart_abandoned", &["cart_id", "total"]),
            event("message.opened", &[]),
            event("app_opened", &[]),
        ],
        channels: vec![
            channel("email", Some(S_EMAIL), Some(5)),
            channel("sms", Some(S_PHONE), Some(6)),
            channel("push", Some(S_PUSH), Some(7)),
            channel("webhook", None, None),
        ],
        templates: vec![],
        profile_slots: slots
            .iter()
            .map(|s| ProfileSlot {
                path: path(s),
                timestamp: false,
            })
            .collect(),
        policy: Policy::default(),
        any_silence: vec![],
        attribution: None,
    }
}

fn journey(name: &str, trigger: EventId, nodes: Vec<NodeKind>) -> Journey {
    Journey {
        name: name.into(),
        display_name: None,
        description: None,
        content_hash: String::new(),
        triggers: vec![Trigger {
            event: trigger,
            condition: None,
            capture: vec![],
        }],
        absence: vec![],
        schedules: vec![],
        dates: vec![],
        segment_triggers: vec![],
        audience: None,
        reentry: Reentry::Never,
        per: None,
        exit_on: vec![],
        exit_if: vec![],
        goal: None,
        holdout: None,
        caps: vec![],
        quiet_hours: None,
        trigger_fields: vec![],
        handles: vec![],
        nodes: nodes
            .into_iter()
            .map(|kind| Node {
                kind,
                label: "".into(),
                line: 1,
                conditions: Vec::new(),
            })
            .collect(),
        limits: Limits::default(),
        retired: None,
    }
}

/// Sorts journeys and fills each event's roles, as the compiler does.
fn finish(mut p: Program) -> Arc<Program> {
    p.journeys.sort_by(|a, b| a.name.cmp(&b.name));
    for (j, journey) in p.journeys.iter().enumerate() {
        let j = j as JourneyId;
        for t in &journey.triggers {
            p.events[t.event as usize].triggers.push(j);
        }
        for e in &journey.exit_on {
            p.events[e.event as usize].exits.push(j);
        }
        if let Some(g) = &journey.goal {
            p.events[g.event as usize].goals.push(j);
        }
        for a in &journey.absence {
            match a.event {
                Some(e) => p.events[e as usize].silences.push(j),
                None => p.any_silence.push(j),
            }
        }
        for n in &journey.nodes {
            if let NodeKind::WaitForEvent { alternatives, .. } = &n.kind {
                for alt in alternatives {
                    p.events[alt.event as usize].waits.push(j);
                }
            }
        }
    }
    Arc::new(p)
}

fn send(alts: &[(ChannelId, &str)], next: NodeId) -> SendNode {
    SendNode {
        alternatives: alts
            .iter()
            .map(|(c, t)| SendAlt {
                channel: *c,
                template: (*t).into(),
                declared: None,
                with: vec![],
                render: vec![],
            })
            .collect(),
        handle: None,
        transactional: false,
        wait_when_capped: false,
        best_hour_ms: None,
        next,
    }
}

fn wait(ms: i64, next: NodeId) -> NodeKind {
    NodeKind::Wait { ms, next }
}

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn ts(t: &str) -> i64 {
    parse_timestamp(t).unwrap_or_else(|| panic!("bad test timestamp {t}"))
}

// ----- running -----

/// Runs Segment-shaped messages through a runtime and lets time run out.
fn run(program: &Arc<Program>, messages: &[serde_json::Value]) -> Vec<String> {
    let mut rt = Runtime::new(program.clone());
    let mut out = feed(&mut rt, messages);
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    out
}

fn feed(rt: &mut Runtime, messages: &[serde_json::Value]) -> Vec<String> {
    let mut out = Vec::new();
    let empty = json!({});
    for m in messages {
        let kind = match m["type"].as_str() {
            Some("track") => EventKind::Track,
            Some("identify") => EventKind::Identify,
            _ => EventKind::Other,
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
            context_timezone: m["context"]["timezone"].as_str(),
        };
        rt.ingest(&event, &mut |a: Action| out.push(a.to_json_line()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

fn track(user: &str, name: &str, at: &str, props: serde_json::Value) -> serde_json::Value {
    json!({"type": "track", "userId": user, "event": name, "timestamp": at, "properties": props})
}

fn identify(user: &str, at: &str, traits: serde_json::Value) -> serde_json::Value {
    json!({"type": "identify", "userId": user, "timestamp": at, "traits": traits})
}

fn kinds(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            let extra = ["reason", "template", "op", "holdout"]
                .iter()
                .filter_map(|k| v.get(*k).map(|x| format!("{x}")))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "{} {} {} {} {}",
                v["at"].as_str().unwrap_or(""),
                v["journey"].as_str().unwrap_or(""),
                v["user_id"].as_str().unwrap_or(""),
                v["kind"].as_str().unwrap_or(""),
                extra
            )
        })
        .collect()
}

fn email_user(user: &str, at: &str) -> serde_json::Value {
    identify(
        user,
        at,
        json!({"email": format!("{user}@example.com"), "phone": "+33600000000"}),
    )
}

// ----- the rules -----

#[test]
fn action_lines_have_fixed_field_order() {
    let mut p = base();
    p.journeys.push(journey(
        "welcome",
        SIGNED_UP,
        vec![NodeKind::Send(send(&[(EMAIL, "hello")], 1)), NodeKind::End],
    ));
    let p = finish(p);
    let out = run(
        &p,
        &[
            email_user("u1", "2026-03-02T09:00:00Z"),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    );
    assert_eq!(
        out,
        vec![
            r#"{"at":"2026-03-02T10:00:00Z","kind":"enter","journey":"welcome","user_id":"u1","holdout":false}"#,
            r#"{"at":"2026-03-02T10:00:00Z","kind":"send","journey":"welcome","user_id":"u1","channel":"email","template":"hello","message_id":"welcome:u1:1:0","to":"u1@example.com","vars":{}}"#,
            r#"{"at":"2026-03-02T10:00:00Z","kind":"exit","journey":"welcome","user_id":"u1","reason":"completed"}"#,
        ]
    );
}

#[test]
fn timers_fire_by_due_time_then_journey_then_user_key() {
    let mut p = base();
    for name in ["b_journey", "a_journey"] {
        p.journeys.push(journey(
            name,
            SIGNED_UP,
            vec![
                wait(H, 1),
                NodeKind::Send(send(&[(EMAIL, "t")], 2)),
                NodeKind::End,
            ],
        ));
    }
    let p = finish(p);
    let mut msgs = vec![];
    for u in ["zed", "amy"] {
        msgs.push(email_user(u, "2026-03-02T09:00:00Z"));
        msgs.push(track(u, "signed_up", "2026-03-02T10:00:00Z", json!({})));
    }
    // An unrelated later event moves the clock past the timers.
    msgs.push(track("x", "app_opened", "2026-03-02T12:00:00Z", json!({})));
    let out = kinds(&run(&p, &msgs));
    let sends: Vec<_> = out
        .iter()
        .filter(|l| l.contains(" send "))
        .cloned()
        .collect();
    assert_eq!(
        sends,
        vec![
            "2026-03-02T11:00:00Z a_journey amy send \"t\"",
            "2026-03-02T11:00:00Z a_journey zed send \"t\"",
            "2026-03-02T11:00:00Z b_journey amy send \"t\"",
            "2026-03-02T11:00:00Z b_journey zed send \"t\"",
        ]
    );
}

#[test]
fn late_events_run_at_the_clock_and_are_counted() {
    let mut p = base();
    p.journeys
        .push(journey("welcome", SIGNED_UP, vec![NodeKind::End]));
    let p = finish(p);
    let mut rt = Runtime::new(p);
    let out = feed(
        &mut rt,
        &[
            track("a", "app_opened", "2026-03-02T12:00:00Z", json!({})),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    );
    assert_eq!(rt.stats().late, 1);
    assert!(
        out[0].starts_with(r#"{"at":"2026-03-02T12:00:00Z","kind":"enter""#),
        "{out:?}"
    );
}

#[test]
fn duplicate_message_ids_are_processed_once() {
    let mut p = base();
    let mut j = journey("welcome", SIGNED_UP, vec![NodeKind::End]);
    j.reentry = Reentry::Always;
    p.journeys.push(j);
    let p = finish(p);
    let mut e = track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({}));
    e["messageId"] = json!("m-1");
    let mut rt = Runtime::new(p);
    let out = feed(&mut rt, &[e.clone(), e.clone(), e]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(rt.stats().duplicates, 2);
}

/// Two users may send the same `messageId`: each user's is processed once.
#[test]
fn message_ids_are_per_user() {
    let mut p = base();
    let mut j = journey("welcome", SIGNED_UP, vec![NodeKind::End]);
    j.reentry = Reentry::Always;
    p.journeys.push(j);
    let p = finish(p);
    let sign_up = |user: &str| {
        let mut e = track(user, "signed_up", "2026-03-02T10:00:00Z", json!({}));
        e["messageId"] = json!("m-1");
        e
    };
    let mut rt = Runtime::new(p);
    let out = feed(&mut rt, &[sign_up("u1"), sign_up("u2"), sign_up("u2")]);
    let entered: Vec<&str> = out
        .iter()
        .filter(|line| line.contains(r#""kind":"enter""#))
        .filter_map(|line| line.split(r#""user_id":""#).nth(1)?.split('"').next())
        .collect();
    assert_eq!(entered, ["u1", "u2"]);
    assert_eq!(rt.stats().duplicates, 1);
}

/// With the window sized to three ids, a redelivery after three newer ids
/// (well within its 7 days) is processed again, and the id the window
/// forgot early is counted; the configuration survives a snapshot.
#[test]
fn a_window_at_capacity_forgets_early_and_counts_it() {
    let mut p = base();
    let mut j = journey("welcome", SIGNED_UP, vec![NodeKind::End]);
    j.reentry = Reentry::Always;
    p.journeys.push(j);
    let p = finish(p);
    let sign_up = |id: &str, at: &str| {
        let mut e = track("u1", "signed_up", at, json!({}));
        e["messageId"] = json!(id);
        e
    };
    let config = DedupConfig {
        capacity: 3,
        ..DedupConfig::default()
    };
    let store = MemStore::with_dedup(config).unwrap_or_else(|e| panic!("{e}"));
    let mut rt = Runtime::with_store(p.clone(), store);
    let first = ["m-1", "m-2", "m-3", "m-1"].map(|id| sign_up(id, "2026-03-02T10:00:00Z"));
    assert_eq!(feed(&mut rt, &first).len(), 6, "m-1 again is a duplicate");
    assert_eq!(rt.stats().dedup_evicted_early, 0);
    let text = serde_json::to_string(&rt.snapshot()).unwrap_or_default();
    let snapshot: Snapshot = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut rt = Runtime::restore(p, snapshot).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rt.store().dedup().config(), &config);
    let later = ["m-4", "m-1"].map(|id| sign_up(id, "2026-03-02T11:00:00Z"));
    assert_eq!(feed(&mut rt, &later).len(), 4, "m-1 was forgotten early");
    assert_eq!(rt.stats().dedup_evicted_early, 2);
    assert_eq!(rt.store().dedup().evicted_early(), 2);
    assert_eq!(rt.stats().duplicates, 1);
}

#[test]
fn reentry_rules() {
    let at = [
        "2026-03-02T10:00:00Z",
        "2026-03-03T10:00:00Z",
        "2026-03-10T10:00:00Z",
    ];
    let entries = |reentry: Reentry| {
        let mut p = base();
        let mut j = journey("j", SIGNED_UP, vec![wait(D, 1), NodeKind::End]);
        j.reentry = reentry;
        p.journeys.push(j);
        let msgs: Vec<_> = at
            .iter()
            .map(|t| track("u1", "signed_up", t, json!({})))
            .collect();
        run(&finish(p), &msgs)
            .iter()
            .filter(|l| l.contains("\"enter\""))
            .count()
    };
    assert_eq!(entries(Reentry::Never), 1);
    // The second event comes exactly when the first instance ends (its
    // timer fires first), so it may enter again.
    assert_eq!(entries(Reentry::Always), 3);
    assert_eq!(entries(Reentry::After { ms: 7 * D }), 2);
}

fn goal(event: EventId, within_ms: Option<i64>) -> Goal {
    Goal {
        event,
        name: "Order Completed".into(),
        condition: None,
        within_ms,
    }
}

#[test]
fn holdout_is_sticky_and_converts_within_its_window() {
    let mut p = base();
    let mut j = journey(
        "promo",
        SIGNED_UP,
        vec![NodeKind::Send(send(&[(EMAIL, "t")], 1)), NodeKind::End],
    );
    j.holdout = Some(50.0);
    j.reentry = Reentry::Always;
    j.goal = Some(goal(ORDER, Some(7 * D)));
    p.journeys.push(j);
    let p = finish(p);
    let users: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let mut msgs = vec![];
    for u in &users {
        msgs.push(email_user(u, "2026-03-02T09:00:00Z"));
        msgs.push(track(u, "signed_up", "2026-03-02T10:00:00Z", json!({})));
        msgs.push(track(u, "signed_up", "2026-03-02T11:00:00Z", json!({})));
        msgs.push(track(
            u,
            "Order Completed",
            "2026-03-03T10:00:00Z",
            json!({}),
        ));
    }
    let out = run(&p, &msgs);
    let mut held = 0;
    for u in &users {
        let mine: Vec<_> = out
            .iter()
            .filter(|l| l.contains(&format!("\"user_id\":\"{u}\"")))
            .collect();
        let enters: Vec<_> = mine
            .iter()
            .filter(|l| l.contains("\"kind\":\"enter\""))
            .collect();
        assert_eq!(enters.len(), 2);
        // Sticky: both entries agree.
        assert_eq!(
            enters[0].contains("\"holdout\":true"),
            enters[1].contains("\"holdout\":true")
        );
        if enters[0].contains("\"holdout\":true") {
            held += 1;
            assert!(mine.iter().any(|l| l.contains("\"reason\":\"holdout\"")));
            assert!(!mine.iter().any(|l| l.contains("\"kind\":\"send\"")));
            let convert = mine.iter().find(|l| l.contains("\"kind\":\"convert\""));
            assert!(
                convert.is_some_and(|c| c.contains("\"holdout\":true,\"message_ids\":[]")),
                "{mine:?}"
            );
        }
    }
    assert!(held > 5 && held < 35, "held out {held} of 40");
}

#[test]
fn goal_after_completion_converts_once_inside_the_window() {
    let mut p = base();
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![NodeKind::Send(send(&[(EMAIL, "t")], 1)), NodeKind::End],
    );
    j.goal = Some(goal(ORDER, Some(2 * D)));
    p.journeys.push(j);
    let p = finish(p);
    let out = run(
        &p,
        &[
            email_user("u1", "2026-03-02T09:00:00Z"),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
            track("u1", "Order Completed", "2026-03-03T10:00:00Z", json!({})),
            track("u1", "Order Completed", "2026-03-03T11:00:00Z", json!({})),
        ],
    );
    let converts: Vec<_> = out.iter().filter(|l| l.contains("\"convert\"")).collect();
    assert_eq!(converts.len(), 1);
    assert!(
        converts[0]
            .contains(r#""goal":"Order Completed","holdout":false,"message_ids":["j:u1:1:0"]"#),
        "{converts:?}"
    );
    // Outside the window: nothing.
    let out = run(
        &p,
        &[
            email_user("u1", "2026-03-02T09:00:00Z"),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
            track("u1", "Order Completed", "2026-03-05T10:00:00Z", json!({})),
        ],
    );
    assert!(!out.iter().any(|l| l.contains("\"convert\"")));
}

#[test]
fn goal_wins_over_exit_on_and_exit_on_ends_without_watch() {
    let mut p = base();
    let mut j = journey("j", CART, vec![wait(D, 1), NodeKind::End]);
    j.goal = Some(goal(ORDER, Some(7 * D)));
    j.exit_on = vec![EventClause {
        event: ORDER,
        condition: None,
    }];
    let mut k = journey("k", CART, vec![wait(D, 1), NodeKind::End]);
    k.exit_on = vec![EventClause {
        event: ORDER,
        condition: None,
    }];
    p.journeys.extend([j, k]);
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            track(
                "u1",
                "cart_abandoned",
                "2026-03-02T10:00:00Z",
                json!({"cart_id": "c1", "total": 80}),
            ),
            track(
                "u1",
                "Order Completed",
                "2026-03-02T11:00:00Z",
                json!({"cart_id": "c1"}),
            ),
        ],
    ));
    assert_eq!(
        out,
        vec![
            "2026-03-02T10:00:00Z j u1 enter false",
            "2026-03-02T10:00:00Z k u1 enter false",
            "2026-03-02T11:00:00Z j u1 convert false",
            "2026-03-02T11:00:00Z j u1 exit \"goal\"",
            "2026-03-02T11:00:00Z k u1 exit \"exit_event\"",
        ]
    );
}

#[test]
fn quiet_hours_defer_across_a_daylight_saving_change() {
    let mut p = base();
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![NodeKind::Send(send(&[(EMAIL, "t")], 1)), NodeKind::End],
    );
    j.quiet_hours = Some(QuietHours {
        from: 21 * 60,
        to: 8 * 60,
        zone: None,
    });
    p.journeys.push(j);
    let p = finish(p);
    // Saturday 2026-03-28 22:30 in Paris (UTC+1); clocks jump on Sunday at
    // 02:00, so 08:00 local on Sunday is 06:00Z.
    let out = kinds(&run(
        &p,
        &[
            identify(
                "u1",
                "2026-03-28T20:00:00Z",
                json!({"email": "a@b.c", "timezone": "Europe/Paris"}),
            ),
            track("u1", "signed_up", "2026-03-28T21:30:00Z", json!({})),
        ],
    ));
    assert_eq!(out[1], "2026-03-29T06:00:00Z j u1 send \"t\"");
}

#[test]
fn unknown_time_zone_counts_as_utc() {
    let mut p = base();
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![NodeKind::Send(send(&[(EMAIL, "t")], 1)), NodeKind::End],
    );
    j.quiet_hours = Some(QuietHours {
        from: 21 * 60,
        to: 8 * 60,
        zone: None,
    });
    p.journeys.push(j);
    let mut rt = Runtime::new(finish(p));
    let mut out = feed(
        &mut rt,
        &[
            identify(
                "u1",
                "2026-03-02T20:00:00Z",
                json!({"email": "a@b.c", "timezone": "Mars/Olympus"}),
            ),
            track("u1", "signed_up", "2026-03-02T22:00:00Z", json!({})),
        ],
    );
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    assert_eq!(kinds(&out)[1], "2026-03-03T08:00:00Z j u1 send \"t\"");
    assert!(rt.stats().unknown_time_zones >= 1);
}

fn cap(channel: Option<ChannelId>, limit: u32, window_ms: i64) -> Cap {
    Cap {
        channel,
        limit,
        window_ms,
    }
}

#[test]
fn caps_are_rolling_windows_and_fall_back() {
    let mut p = base();
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::Send(send(&[(EMAIL, "e1")], 1)),
            wait(12 * H, 2),
            NodeKind::Send(send(&[(EMAIL, "e2"), (SMS, "s2")], 3)),
            wait(13 * H, 4),
            NodeKind::Send(send(&[(EMAIL, "e3")], 5)),
            NodeKind::End,
        ],
    );
    j.caps = vec![cap(Some(EMAIL), 1, D)];
    p.journeys.push(j);
    let out = kinds(&run(
        &finish(p),
        &[
            email_user("u1", "2026-03-02T09:00:00Z"),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    ));
    assert_eq!(
        out,
        vec![
            "2026-03-02T10:00:00Z j u1 enter false",
            "2026-03-02T10:00:00Z j u1 send \"e1\"",
            // Email capped 12h later: the chain falls back to sms.
            "2026-03-02T22:00:00Z j u1 send \"s2\"",
            // 25h after the first email, it left the window.
            "2026-03-03T11:00:00Z j u1 send \"e3\"",
            "2026-03-03T11:00:00Z j u1 exit \"completed\"",
        ]
    );
}

#[test]
fn capped_sends_are_suppressed_or_wait() {
    let build = |wait_when_capped: bool| {
        let mut p = base();
        let mut second = send(&[(EMAIL, "e2")], 3);
        second.wait_when_capped = wait_when_capped;
        let mut j = journey(
            "j",
            SIGNED_UP,
            vec![
                NodeKind::Send(send(&[(EMAIL, "e1")], 1)),
                wait(H, 2),
                NodeKind::Send(second),
                NodeKind::End,
            ],
        );
        j.caps = vec![cap(None, 1, D)];
        p.journeys.push(j);
        finish(p)
    };
    let msgs = [
        email_user("u1", "2026-03-02T09:00:00Z"),
        track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
    ];
    let out = kinds(&run(&build(false), &msgs));
    assert_eq!(
        out[2],
        "2026-03-02T11:00:00Z j u1 suppress \"capped\",\"e2\""
    );
    let out = kinds(&run(&build(true), &msgs));
    assert_eq!(out[2], "2026-03-03T10:00:00Z j u1 send \"e2\"");
}

#[test]
fn unreachable_and_unsubscribed_and_transactional() {
    let mut p = base();
    let mut receipt = send(&[(EMAIL, "receipt")], 2);
    receipt.transactional = true;
    p.journeys.push(journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::Send(send(&[(PUSH, "p"), (EMAIL, "e")], 1)),
            NodeKind::Send(receipt),
            NodeKind::End,
        ],
    ));
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            identify(
                "u1",
                "2026-03-02T09:00:00Z",
                json!({"email": "a@b.c", "unsubscribed": true, "consent": {"email": false}}),
            ),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    ));
    assert_eq!(
        out[1],
        "2026-03-02T10:00:00Z j u1 suppress \"unreachable\",\"p\""
    );
    assert_eq!(out[2], "2026-03-02T10:00:00Z j u1 send \"receipt\"");
}

fn handle_journey() -> Program {
    let mut p = base();
    let mut s = send(&[(EMAIL, "hello")], 1);
    s.handle = Some(0);
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::Send(s),
            NodeKind::WaitForEngagement {
                handle: 0,
                engagement: Engagement::Opened,
                within_ms: D,
                matched: 2,
                timeout: 3,
            },
            NodeKind::Send(send(&[(EMAIL, "thanks")], 4)),
            NodeKind::Send(send(&[(EMAIL, "nudge")], 4)),
            NodeKind::End,
        ],
    );
    j.handles = vec!["hello".into()];
    p.journeys.push(j);
    p
}

#[test]
fn engagement_by_message_id_and_by_template() {
    let p = finish(handle_journey());
    let start = [
        email_user("u1", "2026-03-02T09:00:00Z"),
        track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
    ];
    let with = |props: serde_json::Value| {
        let mut msgs = start.to_vec();
        msgs.push(track("u1", "message.opened", "2026-03-02T12:00:00Z", props));
        kinds(&run(&p, &msgs))
    };
    let by_id = with(json!({"message_id": "j:u1:1:0"}));
    assert_eq!(by_id[2], "2026-03-02T12:00:00Z j u1 send \"thanks\"");
    let by_template = with(json!({"template": "hello", "journey": "j"}));
    assert_eq!(by_template, by_id);
    let wrong = with(json!({"message_id": "j:u1:2:0"}));
    assert_eq!(wrong[2], "2026-03-03T10:00:00Z j u1 send \"nudge\"");
}

#[test]
fn split_is_sticky_per_user() {
    let mut p = base();
    let mut j = journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::Split {
                key: "ab".into(),
                arms: vec![
                    SplitArm {
                        percent: 50.0,
                        label: "a".into(),
                        next: 1,
                    },
                    SplitArm {
                        percent: 50.0,
                        label: "b".into(),
                        next: 2,
                    },
                ],
            },
            NodeKind::Send(send(&[(EMAIL, "a")], 3)),
            NodeKind::Send(send(&[(EMAIL, "b")], 3)),
            NodeKind::End,
        ],
    );
    j.reentry = Reentry::Always;
    p.journeys.push(j);
    let p = finish(p);
    let mut a = 0;
    for i in 0..40 {
        let u = format!("user{i}");
        let out = run(
            &p,
            &[
                email_user(&u, "2026-03-02T09:00:00Z"),
                track(&u, "signed_up", "2026-03-02T10:00:00Z", json!({})),
                track(&u, "signed_up", "2026-03-05T10:00:00Z", json!({})),
            ],
        );
        let sends: Vec<_> = kinds(&out)
            .into_iter()
            .filter(|l| l.contains(" send "))
            .map(|l| l[21..].to_string())
            .collect();
        assert_eq!(sends.len(), 2);
        assert_eq!(sends[0], sends[1]);
        if sends[0].ends_with("\"a\"") {
            a += 1;
        }
    }
    assert!(a > 5 && a < 35, "{a} of 40 in arm a");
}

#[test]
fn until_exit_audiences_are_removed_whatever_the_reason() {
    let mut p = base();
    let mut j = journey(
        "j",
        CART,
        vec![
            NodeKind::Audience {
                add: true,
                audience: "retarget".into(),
                until_exit: true,
                next: 1,
            },
            wait(D, 2),
            NodeKind::End,
        ],
    );
    j.exit_on = vec![EventClause {
        event: ORDER,
        condition: None,
    }];
    p.journeys.push(j);
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            track("u1", "cart_abandoned", "2026-03-02T10:00:00Z", json!({})),
            track("u2", "cart_abandoned", "2026-03-02T10:00:00Z", json!({})),
            track("u1", "Order Completed", "2026-03-02T11:00:00Z", json!({})),
        ],
    ));
    assert_eq!(
        out,
        vec![
            "2026-03-02T10:00:00Z j u1 enter false",
            "2026-03-02T10:00:00Z j u1 audience \"add\"",
            "2026-03-02T10:00:00Z j u2 enter false",
            "2026-03-02T10:00:00Z j u2 audience \"add\"",
            "2026-03-02T11:00:00Z j u1 exit \"exit_event\"",
            "2026-03-02T11:00:00Z j u1 audience \"remove\"",
            "2026-03-03T10:00:00Z j u2 exit \"completed\"",
            "2026-03-03T10:00:00Z j u2 audience \"remove\"",
        ]
    );
}

#[test]
fn exit_if_on_identify_and_after_set() {
    let mut p = base();
    let gold = CExpr::Binary(
        BinOp::Eq,
        Box::new(CExpr::Profile(S_TIER)),
        Box::new(CExpr::Const(Value::str("gold"))),
    );
    let mut j = journey("j", SIGNED_UP, vec![wait(D, 1), NodeKind::End]);
    j.exit_if = vec![gold.clone()];
    let mut k = journey(
        "k",
        CART,
        vec![
            NodeKind::Set {
                slot: S_TIER,
                value: CExpr::Const(Value::str("gold")),
                next: 1,
            },
            wait(H, 2),
            NodeKind::End,
        ],
    );
    k.exit_if = vec![gold];
    p.journeys.extend([j, k]);
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
            identify(
                "u1",
                "2026-03-02T11:00:00Z",
                json!({"loyalty_tier": "gold"}),
            ),
            track("u2", "cart_abandoned", "2026-03-02T12:00:00Z", json!({})),
        ],
    ));
    assert_eq!(
        out,
        vec![
            "2026-03-02T10:00:00Z j u1 enter false",
            "2026-03-02T11:00:00Z j u1 exit \"exit_condition\"",
            "2026-03-02T12:00:00Z k u2 enter false",
            "2026-03-02T12:00:00Z k u2 set ",
            "2026-03-02T12:00:00Z k u2 exit \"exit_condition\"",
        ]
    );
}

#[test]
fn silence_trigger_fires_once_after_the_last_event() {
    let mut p = base();
    let mut j = journey("winback", SIGNED_UP, vec![NodeKind::End]);
    j.triggers.clear();
    j.absence = vec![Absence {
        event: Some(APP_OPENED),
        silence_ms: 3 * D,
    }];
    p.journeys.push(j);
    let out = kinds(&run(
        &finish(p),
        &[
            track("u1", "app_opened", "2026-03-02T10:00:00Z", json!({})),
            track("u1", "app_opened", "2026-03-03T10:00:00Z", json!({})),
        ],
    ));
    assert_eq!(
        out,
        vec![
            "2026-03-06T10:00:00Z winback u1 enter false",
            "2026-03-06T10:00:00Z winback u1 exit \"completed\""
        ]
    );
}

#[test]
fn identify_merges_deeply_and_null_clears() {
    let mut p = base();
    let consented = CExpr::Reachable(SMS);
    p.journeys.push(journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::Branch {
                arms: vec![(consented, 1)],
                otherwise: 2,
            },
            NodeKind::Send(send(&[(SMS, "yes")], 3)),
            NodeKind::Send(send(&[(WEBHOOK_CH, "no")], 3)),
            NodeKind::End,
        ],
    ));
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            identify(
                "u1",
                "2026-03-02T09:00:00Z",
                json!({"phone": "+1", "consent": {"sms": false, "email": true}}),
            ),
            identify(
                "u1",
                "2026-03-02T09:30:00Z",
                json!({"consent": {"email": false}}),
            ),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    ));
    assert_eq!(out[1], "2026-03-02T10:00:00Z j u1 send \"no\"");
    let out = kinds(&run(
        &p,
        &[
            identify(
                "u1",
                "2026-03-02T09:00:00Z",
                json!({"phone": "+1", "consent": {"sms": false}}),
            ),
            identify("u1", "2026-03-02T09:30:00Z", json!({"consent": null})),
            track("u1", "signed_up", "2026-03-02T10:00:00Z", json!({})),
        ],
    ));
    assert_eq!(out[1], "2026-03-02T10:00:00Z j u1 send \"yes\"");
}

const WEBHOOK_CH: ChannelId = 3;

fn busy_program() -> Arc<Program> {
    let mut p = handle_journey();
    let mut k = journey(
        "k",
        CART,
        vec![
            wait(H, 1),
            NodeKind::Send(send(&[(PUSH, "p"), (SMS, "s"), (EMAIL, "e")], 2)),
            NodeKind::End,
        ],
    );
    k.goal = Some(goal(ORDER, Some(2 * D)));
    k.holdout = Some(20.0);
    k.reentry = Reentry::Always;
    k.quiet_hours = Some(QuietHours {
        from: 21 * 60,
        to: 8 * 60,
        zone: None,
    });
    p.journeys.push(k);
    p.policy.caps = vec![cap(None, 2, D)];
    finish(p)
}

fn busy_messages() -> Vec<serde_json::Value> {
    let mut msgs = vec![];
    for i in 0..30 {
        let u = format!("u{}", (i * 7) % 11);
        let t = ts("2026-03-02T08:00:00Z") + i * 47 * 60_000;
        let at = journey::value::format_timestamp(t);
        msgs.push(email_user(&u, &at));
        let name = [
            "signed_up",
            "cart_abandoned",
            "Order Completed",
            "message.opened",
        ][(i % 4) as usize];
        msgs.push(track(
            &u,
            name,
            &at,
            json!({"template": "hello", "cart_id": "c"}),
        ));
    }
    msgs
}

#[test]
fn same_input_same_output() {
    let p = busy_program();
    let a = run(&p, &busy_messages());
    let b = run(&p, &busy_messages());
    assert!(a.len() > 20);
    assert_eq!(a, b);
}

#[test]
fn snapshot_and_restore_give_the_uninterrupted_output() {
    let p = busy_program();
    let msgs = busy_messages();
    let whole = run(&p, &msgs);
    let (first, second) = msgs.split_at(msgs.len() / 2);
    let mut rt = Runtime::new(p.clone());
    let mut out = feed(&mut rt, first);
    let text = serde_json::to_string(&rt.snapshot()).unwrap_or_default();
    drop(rt);
    let snapshot =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("snapshot does not load: {e}"));
    let mut rt = Runtime::restore(p, snapshot).unwrap_or_else(|e| panic!("{e}"));
    out.extend(feed(&mut rt, second));
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    assert_eq!(out, whole);
}

#[test]
fn declared_templates_render_subject_and_body() {
    let mut p = base();
    p.templates.push(Template {
        name: "cart_reminder".into(),
        channel: EMAIL,
        subject: Some("{{ profile.first_name }}, your cart".into()),
        body: "Use {{ code }} on {{ trigger.total }} ({{ message_id }})".into(),
        html: None,
    });
    p.profile_slots.push(ProfileSlot {
        path: path("first_name"),
        timestamp: false,
    });
    let mut s = send(&[(EMAIL, "cart_reminder")], 1);
    s.alternatives[0].declared = Some(0);
    s.alternatives[0].with = vec![("code".into(), CExpr::Const(Value::str("SAVE10")))];
    s.alternatives[0].render = vec![
        (path("profile.first_name"), CExpr::Profile(9)),
        (path("trigger.total"), CExpr::Trigger(0)),
    ];
    let mut j = journey("cart", CART, vec![NodeKind::Send(s), NodeKind::End]);
    j.trigger_fields = vec![path("total")];
    j.triggers[0].capture = vec![Some(1)];
    p.journeys.push(j);
    let out = run(
        &finish(p),
        &[
            identify(
                "u1",
                "2026-03-02T09:00:00Z",
                json!({"email": "a@b.c", "first_name": "Ana"}),
            ),
            track(
                "u1",
                "cart_abandoned",
                "2026-03-02T10:00:00Z",
                json!({"cart_id": "c1", "total": 80}),
            ),
        ],
    );
    assert_eq!(
        out[1],
        r#"{"at":"2026-03-02T10:00:00Z","kind":"send","journey":"cart","user_id":"u1","channel":"email","template":"cart_reminder","message_id":"cart:u1:1:0","to":"a@b.c","vars":{"code":"SAVE10"},"subject":"Ana, your cart","body":"Use SAVE10 on 80 (cart:u1:1:0)"}"#
    );
}

#[test]
fn wait_for_event_matches_with_condition_or_times_out() {
    let mut p = base();
    let same_cart = CExpr::Binary(
        BinOp::Eq,
        Box::new(CExpr::Event(0)),
        Box::new(CExpr::Trigger(0)),
    );
    let mut j = journey(
        "j",
        CART,
        vec![
            NodeKind::WaitForEvent {
                alternatives: vec![EventClause {
                    event: ORDER,
                    condition: Some(same_cart),
                }],
                within_ms: D,
                matched: 1,
                timeout: 2,
            },
            NodeKind::Send(send(&[(WEBHOOK_CH, "bought")], 3)),
            NodeKind::Send(send(&[(WEBHOOK_CH, "missed")], 3)),
            NodeKind::End,
        ],
    );
    j.trigger_fields = vec![path("cart_id")];
    j.triggers[0].capture = vec![Some(0)];
    p.journeys.push(j);
    let p = finish(p);
    let out = kinds(&run(
        &p,
        &[
            track(
                "u1",
                "cart_abandoned",
                "2026-03-02T10:00:00Z",
                json!({"cart_id": "c1"}),
            ),
            track(
                "u2",
                "cart_abandoned",
                "2026-03-02T10:00:00Z",
                json!({"cart_id": "c2"}),
            ),
            track(
                "u1",
                "Order Completed",
                "2026-03-02T12:00:00Z",
                json!({"cart_id": "c1"}),
            ),
            track(
                "u2",
                "Order Completed",
                "2026-03-02T12:00:00Z",
                json!({"cart_id": "other"}),
            ),
        ],
    ));
    assert!(
        out.contains(&"2026-03-02T12:00:00Z j u1 send \"bought\"".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&"2026-03-03T10:00:00Z j u2 send \"missed\"".to_string()),
        "{out:?}"
    );
}

#[test]
fn wait_until_time_of_day_and_timestamp() {
    let mut p = base();
    p.journeys.push(journey(
        "j",
        SIGNED_UP,
        vec![
            NodeKind::WaitUntilTime {
                minute: 9 * 60,
                weekdays: 0,
                next: 1,
            },
            NodeKind::Send(send(&[(WEBHOOK_CH, "morning")], 2)),
            NodeKind::WaitUntil {
                at: CExpr::Binary(
                    BinOp::Add,
                    Box::new(CExpr::EnteredAt),
                    Box::new(CExpr::Const(Value::Duration(2 * D))),
                ),
                next: 3,
            },
            NodeKind::Send(send(&[(WEBHOOK_CH, "later")], 4)),
            NodeKind::End,
        ],
    ));
    let out = kinds(&run(
        &finish(p),
        &[
            identify(
                "u1",
                "2026-03-02T08:00:00Z",
                json!({"timezone": "America/New_York"}),
            ),
            track("u1", "signed_up", "2026-03-02T16:00:00Z", json!({})),
        ],
    ));
    // 09:00 in New York (UTC-5) the next day, then two days after entry.
    assert_eq!(out[1], "2026-03-03T14:00:00Z j u1 send \"morning\"");
    assert_eq!(out[2], "2026-03-04T16:00:00Z j u1 send \"later\"");
}

#[test]
fn irrelevant_events_cost_nothing_and_intern_no_user() {
    let mut p = base();
    p.journeys
        .push(journey("j", SIGNED_UP, vec![NodeKind::End]));
    let mut rt = Runtime::new(finish(p));
    let out = feed(
        &mut rt,
        &[
            track("u1", "page_viewed", "2026-03-02T10:00:00Z", json!({})),
            track("u2", "app_opened", "2026-03-02T10:00:00Z", json!({})),
            json!({"type": "page", "userId": "u3", "timestamp": "2026-03-02T10:00:00Z"}),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(rt.store().user_count(), 0);
    assert_eq!(rt.stats().irrelevant, 2);
    assert_eq!(rt.stats().ignored_kinds, 1);
}
