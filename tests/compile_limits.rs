//! The compiler's static analyses and serialized form, on the fixtures of
//! `tests/fixtures/compile/`: exact limits, the cap warning and its near
//! miss, the JSON round trip and stable node ids.

use std::collections::BTreeMap;

use journey::compile::program::{CExpr, NodeKind, Program};
use journey::compile::{self, load, to_json};
use journey::pipeline::check_sources;
use journey::project::Project;
use journey::{Diagnostic, SourceMap};

const DAY: i64 = 24 * 3_600_000;
const HOUR: i64 = 3_600_000;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/compile/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn project(text: &str) -> Project {
    let mut sources = SourceMap::new();
    sources.add("test.journey", text.to_string());
    let (project, diagnostics) = check_sources(sources);
    assert!(
        !diagnostics.has_errors(),
        "{:?}",
        diagnostics
            .items
            .iter()
            .map(|d| &d.message)
            .collect::<Vec<_>>()
    );
    project
}

fn compile_text(text: &str) -> (Program, Vec<Diagnostic>) {
    let project = project(text);
    compile::compile(&journey::check::check(&project).0).expect("a checked project compiles")
}

fn compile_fixture(name: &str) -> (Program, Vec<Diagnostic>) {
    compile_text(&fixture(name))
}

fn max_sends(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

fn all_fixtures() -> Vec<String> {
    let dir = format!("{}/tests/fixtures/compile", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the fixture directory exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".journey"))
        .collect();
    names.sort();
    assert!(names.len() >= 5);
    names
}

#[test]
fn two_emails_one_sms_nine_days() {
    let (program, warnings) = compile_fixture("two_emails_one_sms.journey");
    let limits = &program.journeys[0].limits;
    assert_eq!(limits.max_sends, max_sends(&[("email", 2), ("sms", 1)]));
    assert_eq!(limits.max_messages, 3);
    assert_eq!(limits.max_active_ms, 9 * DAY);
    assert!(!limits.unbounded);
    assert!(limits.unreachable.is_empty());
    assert!(warnings.is_empty());
}

#[test]
fn a_split_counts_its_busiest_arm() {
    let (program, _) = compile_fixture("split_max.journey");
    let limits = &program.journeys[0].limits;
    assert_eq!(limits.max_sends, max_sends(&[("email", 3)]));
    assert_eq!(limits.max_messages, 3);
    assert_eq!(limits.max_active_ms, 2 * DAY + 12 * HOUR);
}

#[test]
fn the_third_email_in_a_day_is_always_capped() {
    let (_, warnings) = compile_fixture("capped_third_email.journey");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].code.id, "W0004");
    assert_eq!(
        warnings[0].message,
        "this send is always blocked by `cap email 2 per 1d`"
    );
    let text = fixture("capped_third_email.journey");
    assert_eq!(&text[warnings[0].span.range()], "send email \"c\"");
}

#[test]
fn waiting_long_enough_is_not_capped() {
    let (_, warnings) = compile_fixture("capped_near_miss.journey");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn policy_caps_count_the_journeys_own_sends() {
    let (_, warnings) = compile_fixture("capped_by_policy.journey");
    let text = fixture("capped_by_policy.journey");
    let spans: Vec<&str> = warnings.iter().map(|w| &text[w.span.range()]).collect();
    // The fallback chain can still go out as a push.
    assert_eq!(spans, ["send sms \"thanks_sms\""]);
}

#[test]
fn a_wait_for_that_may_end_at_once_does_not_prove_a_gap() {
    // The event may come at once (then the second email is capped) or never
    // (then it is 2 days later): not always capped.
    let text = r#"
        journey j {
          trigger signed_up
          cap email 1 per 1d
          send email "a"
          wait for app_opened within 2d
          send email "b"
        }"#;
    let (_, warnings) = compile_text(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    // Within 1 day either way: always capped.
    let (_, warnings) = compile_text(&text.replace("within 2d", "within 12h"));
    assert_eq!(warnings.len(), 1);
}

#[test]
fn a_send_skipped_by_the_cap_does_not_count() {
    // b is always capped; c, 23h after b would have gone and 25h after a,
    // is free.
    let text = r#"
        journey j {
          trigger signed_up
          cap email 1 per 1d
          send email "a"
          wait 2h
          send email "b"
          wait 23h
          send email "c"
        }"#;
    let (_, warnings) = compile_text(text);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(text[warnings[0].span.range()].contains("\"b\""));
}

#[test]
fn on_capped_wait_and_transactional_sends_are_not_warned() {
    let text = r#"
        journey j {
          trigger signed_up
          cap email 1 per 1d
          send email "a"
          send email "b" on capped wait
          send email "c" transactional
        }"#;
    let (program, warnings) = compile_text(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    // The capped wait lasts at most the cap's window.
    assert_eq!(program.journeys[0].limits.max_active_ms, DAY);
}

#[test]
fn quiet_hours_defer_a_send_only_after_time_passed() {
    let text = r#"
        journey j {
          trigger signed_up
          quiet hours 21:00 to 08:00
          send email "a"
          send sms "b"
          wait 1h
          send email "c"
        }"#;
    let (program, _) = compile_text(text);
    // a: 11h at worst; b goes at the same instant; c: 1h + 11h.
    assert_eq!(program.journeys[0].limits.max_active_ms, 23 * HOUR);
}

#[test]
fn a_best_hour_send_counts_its_window() {
    let text = r#"
        journey j {
          trigger signed_up
          quiet hours 21:00 to 08:00
          send email "a" at best hour within 6h
          send sms "b" transactional at best hour
          wait for app_opened or order_completed within 2d
        }"#;
    let (program, warnings) = compile_text(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    // a: 6h for the hour, then 11h of quiet hours; b: a day; the wait: 2d.
    assert_eq!(
        program.journeys[0].limits.max_active_ms,
        6 * HOUR + 11 * HOUR + DAY + 2 * DAY
    );
    let round = load(&to_json(&program)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(round, program);
}

#[test]
fn wait_until_an_expression_is_unbounded() {
    let (program, _) = compile_fixture("abandoned_cart.journey");
    let limits = &program.journeys[0].limits;
    assert!(limits.unbounded);
    assert_eq!(limits.max_active_ms, 8 * DAY + 10 * HOUR);
    assert_eq!(
        limits.max_sends,
        max_sends(&[("email", 2), ("push", 1), ("sms", 1)])
    );
}

#[test]
fn steps_after_exit_are_unreachable() {
    let (program, _) = compile_fixture("every_step.journey");
    let journey = &program.journeys[0];
    assert_eq!(journey.limits.unreachable, [20, 21]);
    assert!(matches!(journey.nodes[19].kind, NodeKind::Exit));
    assert!(matches!(journey.nodes[21].kind, NodeKind::End));
}

#[test]
fn repeat_is_unrolled_and_blocks_rejoin() {
    let (program, _) = compile_fixture("every_step.journey");
    let nodes = &program.journeys[0].nodes;
    let sends: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| &*n.label == "send push \"nudge\" on capped wait")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sends, [16, 18]);
    assert_eq!(nodes[16].line, nodes[18].line);
    // Both arms of the first `wait for` continue at the second one.
    match &nodes[4].kind {
        NodeKind::WaitForEngagement {
            matched, timeout, ..
        } => assert_eq!((*matched, *timeout), (5, 6)),
        other => panic!("{other:?}"),
    }
    assert_eq!(nodes[5].kind.successors()[0].1, 7);
    assert_eq!(nodes[6].kind.successors()[0].1, 7);
}

#[test]
fn expressions_resolve_and_fold() {
    let text = r#"
        segment vip = profile.lifetime_value >= 500 and 1 + 1 == 2
        journey j {
          trigger cart_abandoned where event.total >= 20 and not false
          audience vip
          exit if profile.country in ["FR", "DE"] and true
          send email "a" with { total: trigger.total, later: 2026-01-01T00:00:00Z + 1h }
        }"#;
    let (program, _) = compile_text(text);
    let journey = &program.journeys[0];
    let slot = |path: &str| {
        program
            .profile_slots
            .iter()
            .position(|s| s.path.join(".") == path)
            .map(|i| i as u32)
            .expect("slot registered")
    };
    // `and not false` and `1 + 1 == 2` fold away.
    assert!(matches!(
        journey.triggers[0].condition,
        Some(CExpr::Binary(_, ref l, _)) if **l == CExpr::Event(0)
    ));
    assert!(matches!(
        journey.audience,
        Some(CExpr::Binary(_, ref l, _)) if **l == CExpr::Profile(slot("lifetime_value"))
    ));
    assert!(matches!(journey.exit_if[0], CExpr::Binary(..)));
    let NodeKind::Send(send) = &journey.nodes[0].kind else {
        panic!("a send")
    };
    assert_eq!(send.alternatives[0].with[0].1, CExpr::Trigger(0));
    assert_eq!(
        send.alternatives[0].with[1].1,
        CExpr::Const(journey::value::Value::Timestamp(1_767_225_600_000 + HOUR))
    );
    assert_eq!(journey.trigger_fields, [vec!["total".into()]]);
    let event = &program.events[journey.triggers[0].event as usize];
    assert_eq!(&*event.name, "cart_abandoned");
    assert_eq!(journey.triggers[0].capture, [Some(0)]);
    assert_eq!(event.fields, [vec!["total".into()]]);
    // The built-in channel fields are registered first.
    assert_eq!(slot("email"), 0);
    assert!(slot("consent.whatsapp") > 0);
    assert!(slot("timezone") > 0);
}

#[test]
fn templates_render_values_are_compiled() {
    let (program, _) = compile_fixture("every_step.journey");
    let journey = &program.journeys[0];
    let NodeKind::Send(send) = &journey.nodes[0].kind else {
        panic!("a send")
    };
    let paths: Vec<String> = send.alternatives[0]
        .render
        .iter()
        .map(|(p, _)| p.join("."))
        .collect();
    assert_eq!(
        paths,
        ["journey.name", "profile.first_name", "trigger.plan"]
    );
    assert_eq!(
        send.alternatives[0].render[0].1,
        CExpr::Const(journey::value::Value::str("every_step"))
    );
    assert!(send.handle.is_some());
}

#[test]
fn events_index_roles_by_journey() {
    let (program, _) = compile_fixture("abandoned_cart.journey");
    let order = program.event_id("Order Completed").expect("registered");
    let info = &program.events[order as usize];
    assert_eq!(info.exits, [0]);
    assert_eq!(info.goals, [0]);
    assert!(info.triggers.is_empty());
    let opened = program
        .event_id("message.opened")
        .expect("handles are used");
    assert_eq!(program.events[opened as usize].waits, [0]);
    assert_eq!(program.events[opened as usize].fields.len(), 3);

    let (program, _) = compile_fixture("win_back.journey");
    assert_eq!(program.any_silence, [0]);
    let order = program.event_id("Order Completed").expect("registered");
    assert_eq!(program.events[order as usize].silences, [0]);
    assert!(program.event_id("message.opened").is_none());
    let journey = &program.journeys[0];
    assert_eq!(
        journey.description.as_deref(),
        Some("Bring back customers who stopped ordering.")
    );
    assert_eq!(journey.display_name.as_deref(), Some("Win back"));
    assert_eq!(journey.holdout, Some(10.0));
    assert_eq!(journey.content_hash.len(), 64);
}

#[test]
fn channels_have_their_default_rules() {
    let (program, _) = compile_fixture("abandoned_cart.journey");
    let names: Vec<&str> = program.channels.iter().map(|c| &*c.name).collect();
    assert_eq!(
        names,
        ["email", "sms", "push", "in_app", "whatsapp", "webhook"]
    );
    let webhook = &program.channels[5];
    assert_eq!((&webhook.address, &webhook.consent), (&None, &None));
    let slot_path = |e: &Option<CExpr>| match e {
        Some(CExpr::Profile(s)) => program.profile_slots[*s as usize].path.join("."),
        other => format!("{other:?}"),
    };
    assert_eq!(slot_path(&program.channels[0].address), "email");
    assert_eq!(slot_path(&program.channels[3].address), "push_token");
    // The fixture's declaration overrides whatsapp's consent.
    assert_eq!(slot_path(&program.channels[4].consent), "consent.sms");
    assert_eq!(slot_path(&program.channels[1].consent), "consent.sms");
}

#[test]
fn timestamp_slots_follow_the_profile_schema() {
    let text = r#"
        profile { email: string?, last_order_at: timestamp?, country: string }
        journey j {
          trigger signed_up
          set profile.last_order_at = now()
          send email "a"
        }"#;
    let (program, _) = compile_text(text);
    let slot = |path: &str| {
        program
            .profile_slots
            .iter()
            .find(|s| s.path.join(".") == path)
            .expect("slot registered")
    };
    assert!(slot("last_order_at").timestamp);
    assert!(!slot("email").timestamp);
}

#[test]
fn every_fixture_round_trips_through_json() {
    for name in all_fixtures() {
        let (program, _) = compile_fixture(&name);
        let text = to_json(&program);
        let loaded = load(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded, program, "{name}");
        assert_eq!(to_json(&loaded), text, "{name}");
    }
}

#[test]
fn node_ids_are_stable() {
    for name in all_fixtures() {
        let (a, wa) = compile_fixture(&name);
        let (b, wb) = compile_fixture(&name);
        assert_eq!(a, b, "{name}");
        assert_eq!(wa, wb, "{name}");
        assert_eq!(to_json(&a), to_json(&b), "{name}");
    }
}

#[test]
fn journeys_are_sorted_and_files_merge() {
    let mut sources = SourceMap::new();
    sources.add("b.journey", fixture("win_back.journey"));
    sources.add("a.journey", fixture("split_max.journey"));
    let (project, _) = check_sources(sources);
    let (program, _) =
        compile::compile(&journey::check::check(&project).0).expect("the fixtures compile");
    let names: Vec<&str> = program.journeys.iter().map(|j| &*j.name).collect();
    assert_eq!(names, ["split_max", "win_back"]);
    assert_eq!(program.journey_id("win_back"), Some(1));
}
