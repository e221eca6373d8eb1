//! Scheduled, date and segment entry, per-key instances and best-hour
//! sends (LANGUAGE.md §4.4) across a restart: the fixtures of
//! `tests/fixtures/runtime/` that use them, stopped after every line,
//! checkpointed in the service's binary encoding, restored and resumed,
//! give exactly the uninterrupted run's actions. An occurrence never fires
//! twice across a restart, and none is lost; neither is a key's instance
//! or a customer's engagement history.

use std::path::Path;
use std::sync::Arc;

use journey::SourceMap;
use journey::compile::Program;
use journey::io::adapter::{Payload, event};
use journey::io::parse_line;
use journey::pipeline;
use journey::runtime::{Action, MemStore, Runtime, Snapshot};

const FIXTURES: [&str; 9] = [
    "schedule_zones_dst",
    "schedule_stops",
    "date_trigger",
    "anniversary",
    "segment_trigger",
    "per_key_receipt",
    "per_key_exit_goal",
    "per_key_reentry",
    "best_hour",
];

fn fixture(name: &str) -> (Arc<Program>, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtime");
    let read = |ext: &str| {
        let path = dir.join(format!("{name}.{ext}"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut sources = SourceMap::new();
    sources.add(format!("{name}.journey"), read("journey"));
    let program = pipeline::build(sources)
        .program
        .unwrap_or_else(|| panic!("{name} has errors"));
    let lines = read("ndjson").lines().map(str::to_string).collect();
    (Arc::new(program), lines)
}

fn feed(rt: &mut Runtime, lines: &[String], out: &mut Vec<String>) {
    for (i, line) in lines.iter().enumerate() {
        let raw = parse_line(line, i + 1).unwrap_or_else(|e| panic!("{e}"));
        let payload = Payload::of(&raw);
        let _ = rt.ingest(&event(&raw, &payload), &mut |a: Action| {
            out.push(a.to_json_line())
        });
    }
}

fn uninterrupted(program: &Arc<Program>, lines: &[String]) -> Vec<String> {
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    feed(&mut rt, lines, &mut out);
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    out
}

#[test]
fn a_checkpoint_at_any_line_resumes_without_a_second_or_a_lost_entry() {
    for name in FIXTURES {
        let (program, lines) = fixture(name);
        let whole = uninterrupted(&program, &lines);
        assert!(
            whole.iter().any(|a| a.contains("\"kind\":\"enter\"")),
            "{name}: nothing entered, so the fixture tests nothing"
        );
        for split in 0..=lines.len() {
            let mut rt = Runtime::new(program.clone());
            let mut out = Vec::new();
            feed(&mut rt, &lines[..split], &mut out);
            let bytes = rt
                .snapshot_ref()
                .to_binary()
                .unwrap_or_else(|e| panic!("{e}"));
            drop(rt);
            let snapshot: Snapshot<MemStore> =
                Snapshot::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
            let mut rt = Runtime::restore(program.clone(), snapshot)
                .unwrap_or_else(|e| panic!("{name} at line {split}: {e}"));
            feed(&mut rt, &lines[split..], &mut out);
            rt.finish(&mut |a: Action| out.push(a.to_json_line()));
            assert_eq!(out, whole, "{name}: restored after line {split}");
        }
    }
}

#[test]
fn a_live_service_keeps_firing_schedules_without_input() {
    // No end of input (a service's ticks): the weekly occurrences go on.
    let (program, lines) = fixture("schedule_stops");
    let mut rt = Runtime::new(program);
    let mut out = Vec::new();
    feed(&mut rt, &lines, &mut out);
    let before = out.len();
    let week = 7 * 86_400_000;
    let now = rt.now().unwrap_or(0);
    rt.advance_to(now + week, &mut |a: Action| out.push(a.to_json_line()));
    let daily = out[before..]
        .iter()
        .filter(|a| a.contains("\"template\":\"daily\""))
        .count();
    assert_eq!(daily, 7, "{:#?}", &out[before..]);
}

#[test]
fn a_deploy_keeps_the_pending_date_moments() {
    // The same journeys deployed again halfway: the date timers the deploy
    // drops are queued again from the profiles, so the run gives what an
    // uninterrupted one gives; a journey added by the deploy gets the
    // moments of customers whose date was set before it existed.
    for name in ["date_trigger", "anniversary", "schedule_zones_dst"] {
        let (program, lines) = fixture(name);
        let whole = uninterrupted(&program, &lines);
        let half = lines.len() / 2;
        let mut rt = Runtime::new(program.clone());
        let mut out = Vec::new();
        feed(&mut rt, &lines[..half], &mut out);
        rt.redeploy(program.clone(), 1);
        feed(&mut rt, &lines[half..], &mut out);
        rt.finish(&mut |a: Action| out.push(a.to_json_line()));
        assert_eq!(out, whole, "{name}");
    }
}

#[test]
fn per_key_instances_survive_a_deploy() {
    // Deployed again while several keys' instances wait: each goes on in
    // its own state, and entries (message ids) keep counting across keys.
    for name in ["per_key_receipt", "per_key_exit_goal", "best_hour"] {
        let (program, lines) = fixture(name);
        let whole = uninterrupted(&program, &lines);
        for split in 1..lines.len() {
            let mut rt = Runtime::new(program.clone());
            let mut out = Vec::new();
            feed(&mut rt, &lines[..split], &mut out);
            rt.redeploy(program.clone(), 1);
            feed(&mut rt, &lines[split..], &mut out);
            rt.finish(&mut |a: Action| out.push(a.to_json_line()));
            assert_eq!(out, whole, "{name}: deployed after line {split}");
        }
    }
}

#[test]
fn a_trigger_without_its_key_is_counted_not_admitted() {
    let (program, lines) = fixture("per_key_receipt");
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    feed(&mut rt, &lines, &mut out);
    let j = program
        .journey_id("order_receipt")
        .unwrap_or_else(|| panic!("no journey"));
    let stats = &rt.stats().journeys[j as usize];
    // One order event of five lacks its `order_id`.
    assert_eq!(stats.not_admitted.null_key, 1);
    // then A-1 again refused: two entries.
    assert_eq!(stats.entered, 2);
    let ids: Vec<&String> = out
        .iter()
        .filter(|a| a.contains("\"kind\":\"send\""))
        .collect();
    assert!(
        ids.iter().any(|a| a.contains("order_receipt:ana:2:0")),
        "{ids:#?}"
    );
}
