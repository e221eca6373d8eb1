//! Runtime properties over generated Segment streams: the journeys in
//! `journeys/` run over small `io::synth` streams with random seeds, read
//! line by line through the Segment reader and the event adapter, and the
//! action stream must be deterministic, never send a message id twice,
//! never exceed a policy cap with non-transactional sends in any rolling
//! window, and be the same when the run is snapshotted (through JSON),
//! restored and resumed at any line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use journey::compile::program::{NodeKind, Program};
use journey::io::adapter::{Payload, event};
use journey::io::parse_line;
use journey::io::synth::{SynthOptions, generate};
use journey::pipeline::build;
use journey::project::load_paths_from;
use journey::runtime::parse_message_id;
use journey::runtime::{Action, ActionKind, MemStore, Runtime, Snapshot, SuppressReason};
use proptest::prelude::*;

/// The example project, compiled once for every case.
fn program() -> Arc<Program> {
    static PROGRAM: OnceLock<Arc<Program>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let sources = load_paths_from(&[PathBuf::from("journeys")], Some(root))
                .or_else(|_| load_paths_from(&[root.join("journeys")], Some(root)))
                .expect("the example journeys are readable");
            let built = build(sources);
            Arc::new(built.program.expect("the example journeys compile"))
        })
        .clone()
}

/// A small generated stream, one string per line.
fn stream(seed: u64, users: u32, events: u64, days: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = generate(SynthOptions {
        users,
        events,
        days,
        seed,
        malformed_rate: 0.01,
        ..SynthOptions::default()
    });
    let mut line = String::new();
    while lines.next_line(&mut line) {
        out.push(line.clone());
    }
    out
}

/// Feeds `lines` (numbered from `first_no`) to the runtime; malformed lines
/// are skipped, as the command line does.
fn feed(rt: &mut Runtime, lines: &[String], first_no: usize, out: &mut Vec<Action>) {
    for (i, line) in lines.iter().enumerate() {
        let Ok(raw) = parse_line(line, first_no + i) else {
            continue;
        };
        let payload = Payload::of(&raw);
        let ev = event(&raw, &payload);
        // A refused time is skipped, as the command line skips it.
        let _ = rt.ingest(&ev, &mut |a: Action| out.push(a));
    }
}

/// An uninterrupted run to the end of time.
fn run(program: &Arc<Program>, lines: &[String]) -> Vec<Action> {
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    feed(&mut rt, lines, 1, &mut out);
    rt.finish(&mut |a: Action| out.push(a));
    out
}

/// A run stopped after `split` lines, snapshotted, restored and resumed.
/// The snapshot goes through both encodings, JSON and the binary one (the
/// service's checkpoints); both restore to the same state, and the run
/// resumes from the binary one.
fn run_restored(program: &Arc<Program>, lines: &[String], split: usize) -> Vec<Action> {
    let mut rt = Runtime::new(program.clone());
    let mut out = Vec::new();
    feed(&mut rt, &lines[..split], 1, &mut out);
    let json = serde_json::to_string(&rt.snapshot()).expect("a snapshot serializes");
    let binary = rt.snapshot_ref().to_binary().expect("a snapshot encodes");
    drop(rt);
    let snapshot: Snapshot<MemStore> = serde_json::from_str(&json).expect("a snapshot restores");
    let from_json = Runtime::restore(program.clone(), snapshot).expect("a snapshot restores");
    let snapshot: Snapshot<MemStore> = Snapshot::decode(&binary).expect("a snapshot decodes");
    let mut rt = Runtime::restore(program.clone(), snapshot).expect("a snapshot restores");
    assert_eq!(
        serde_json::to_string(&rt.snapshot_ref()).ok(),
        serde_json::to_string(&from_json.snapshot_ref()).ok(),
        "the binary encoding restores what JSON does"
    );
    drop(from_json);
    feed(&mut rt, &lines[split..], split + 1, &mut out);
    rt.finish(&mut |a: Action| out.push(a));
    out
}

fn bytes(actions: &[Action]) -> String {
    let mut s = String::new();
    for a in actions {
        s.push_str(&a.to_json_line());
        s.push('\n');
    }
    s
}

/// Whether the send with this message id was made by a `transactional` step.
fn is_transactional(program: &Program, message_id: &str) -> bool {
    let Some((journey, _, _, node)) = parse_message_id(message_id) else {
        return false;
    };
    program
        .journeys
        .iter()
        .find(|j| &*j.name == journey)
        .and_then(|j| j.nodes.get(node as usize))
        .is_some_and(|n| matches!(&n.kind, NodeKind::Send(s) if s.transactional))
}

/// Every send's message id is unique.
fn check_unique_ids(actions: &[Action]) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for (i, a) in actions.iter().enumerate() {
        if let ActionKind::Send { message_id, .. } = &a.kind
            && let Some(first) = seen.insert(message_id.clone(), i)
        {
            return Err(format!(
                "message id `{message_id}` sent twice (actions {first} and {i})"
            ));
        }
    }
    Ok(())
}

/// No policy cap is exceeded by a user's non-transactional sends in any
/// window (T − w, T].
fn check_policy_caps(program: &Program, actions: &[Action]) -> Result<(), String> {
    // Per user: (time, channel) of each counted send, in output order
    // (which is time order).
    let mut sends: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for a in actions {
        if let ActionKind::Send {
            channel,
            message_id,
            ..
        } = &a.kind
            && !is_transactional(program, message_id)
        {
            sends.entry(&a.user_id).or_default().push((a.at, channel));
        }
    }
    for cap in &program.policy.caps {
        let channel = cap
            .channel
            .and_then(|c| program.channels.get(usize::from(c)))
            .map(|c| &*c.name);
        for (user, list) in &sends {
            let times: Vec<i64> = list
                .iter()
                .filter(|(_, ch)| channel.is_none_or(|c| c == *ch))
                .map(|(t, _)| *t)
                .collect();
            for (i, &t) in times.iter().enumerate() {
                let in_window = times[..=i]
                    .iter()
                    .filter(|&&s| s > t - cap.window_ms)
                    .count();
                if in_window > cap.limit as usize {
                    return Err(format!(
                        "user `{user}`: {in_window} sends ({}) in the window ending at {t}, cap {}",
                        channel.unwrap_or("messages"),
                        cap.limit
                    ));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn runs_are_deterministic_unique_capped_and_resumable(
        seed in any::<u64>(),
        users in 3u32..40,
        events in 60u64..600,
        days in 3u32..15,
        split_at in 0.0f64..=1.0,
    ) {
        let program = program();
        let lines = stream(seed, users, events, days);
        let first = run(&program, &lines);
        let again = run(&program, &lines);
        prop_assert_eq!(bytes(&first), bytes(&again), "same input, different output");

        if let Err(e) = check_unique_ids(&first) {
            prop_assert!(false, "{}", e);
        }
        if let Err(e) = check_policy_caps(&program, &first) {
            prop_assert!(false, "{}", e);
        }

        let split = ((lines.len() as f64) * split_at) as usize;
        let resumed = run_restored(&program, &lines, split.min(lines.len()));
        prop_assert_eq!(
            bytes(&first),
            bytes(&resumed),
            "restoring after line {} changed the output",
            split
        );
    }
}

/// The properties hold on a fixed stream where sends happen and caps bite,
/// so the checks above are not vacuous.
#[test]
fn example_stream_sends_within_the_policy() {
    let program = program();
    let lines = stream(2026, 40, 600, 14);
    let actions = run(&program, &lines);
    let sends = actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Send { .. }))
        .count();
    assert!(sends > 0, "no send in {} actions", actions.len());
    let capped = actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::Suppress {
                    reason: SuppressReason::Capped,
                    ..
                }
            )
        })
        .count();
    assert!(capped > 0, "no send was capped: the cap check is vacuous");
    assert!(
        !program.policy.caps.is_empty(),
        "the example policy has caps"
    );
    check_unique_ids(&actions).unwrap_or_else(|e| panic!("{e}"));
    check_policy_caps(&program, &actions).unwrap_or_else(|e| panic!("{e}"));
    let split = lines.len() / 2;
    assert_eq!(
        bytes(&actions),
        bytes(&run_restored(&program, &lines, split))
    );
}
