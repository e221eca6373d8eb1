//! Runtime fixtures: each `tests/fixtures/runtime/<name>.journey` is
//! compiled, run over `<name>.ndjson` until time runs out, and the action
//! stream is snapshotted under the source and the input. A fixture whose
//! event file is missing, empty or misnamed fails: it would test nothing.

use std::path::Path;
use std::sync::Arc;

use journey::SourceMap;
use journey::io::adapter::{Payload, event};
use journey::io::parse_line;
use journey::io::segment::is_blank;
use journey::pipeline;
use journey::runtime::report::AttributionReport;
use journey::runtime::{Action, Runtime};

/// Compiles the fixture and runs it over the events with the same reader
/// as `journey simulate`; returns the actions, the input errors and the
/// report's attribution table when the project has one.
fn run_with_report(
    source: &str,
    events: &str,
) -> (Vec<String>, Vec<String>, Option<AttributionReport>) {
    let mut sources = SourceMap::new();
    sources.add("fixture.journey", source.to_string());
    let build = pipeline::build(sources);
    let messages: Vec<&String> = build.diagnostics.items.iter().map(|d| &d.message).collect();
    let program = build
        .program
        .unwrap_or_else(|| panic!("the project has errors: {messages:?}"));
    let mut rt = Runtime::new(Arc::new(program));
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for (index, line) in events.lines().enumerate() {
        if is_blank(line) {
            continue;
        }
        match parse_line(line, index + 1) {
            Ok(raw) => {
                let payload = Payload::of(&raw);
                let ingested = rt.ingest(&event(&raw, &payload), &mut |a: Action| {
                    out.push(a.to_json_line())
                });
                if let Err(rejected) = ingested {
                    errors.push(format!("line {}: {rejected}", index + 1));
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    let attribution = AttributionReport::new(rt.program(), rt.stats());
    (out, errors, attribution)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture's events: its `.ndjson` beside it, which must hold some.
fn events_of(journey: &Path) -> String {
    let path = journey.with_extension("ndjson");
    let events = read(&path);
    assert!(
        events.lines().any(|line| !is_blank(line)),
        "{}: no events, so the fixture tests nothing",
        path.display()
    );
    events
}

/// Every file in the runtime fixtures directory is a `.journey` with its
/// `.ndjson`, or the reverse: a misnamed event file is an error.
fn unpaired(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let partner = match path.extension().and_then(|e| e.to_str()) {
            Some("journey") => "ndjson",
            Some("ndjson") => "journey",
            _ => {
                problems.push(format!(
                    "{}: not a .journey or .ndjson file",
                    path.display()
                ));
                continue;
            }
        };
        if !path.with_extension(partner).is_file() {
            problems.push(format!("{}: no .{partner} beside it", path.display()));
        }
    }
    problems.sort();
    problems
}

#[test]
fn every_fixture_has_its_events() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtime");
    assert_eq!(unpaired(&dir), Vec::<String>::new());
}

#[test]
fn a_misnamed_event_file_is_found() {
    let dir = std::env::temp_dir().join(format!("journey-fixture-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    };
    write("welcome.journey", "journey welcome { trigger signed_up }\n");
    write("welcome-events.ndjson", "{}\n");
    write("empty.journey", "journey empty { trigger signed_up }\n");
    write("empty.ndjson", "\n\n");
    let problems = unpaired(&dir);
    let missing = std::panic::catch_unwind(|| events_of(&dir.join("welcome.journey")));
    let empty = std::panic::catch_unwind(|| events_of(&dir.join("empty.journey")));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].ends_with("welcome-events.ndjson: no .journey beside it"));
    assert!(problems[1].ends_with("welcome.journey: no .ndjson beside it"));
    assert!(
        missing.is_err(),
        "a missing event file must fail the fixture"
    );
    assert!(empty.is_err(), "an empty event file must fail the fixture");
}

#[test]
fn runtime_fixtures() {
    insta::glob!("fixtures/runtime/*.journey", |path| {
        let source = read(path);
        let events = events_of(path);
        let (actions, errors, attribution) = run_with_report(&source, &events);
        let mut snapshot = format!(
            "----- SOURCE\n{source}\n----- EVENTS\n{events}\n----- ACTIONS\n{}\n",
            actions.join("\n")
        );
        if let Some(a) = attribution {
            let json = serde_json::to_string_pretty(&a).unwrap_or_default();
            snapshot.push_str(&format!("----- ATTRIBUTION\n{json}\n"));
        }
        if !errors.is_empty() {
            snapshot.push_str(&format!("----- INPUT ERRORS\n{}\n", errors.join("\n")));
        }
        insta::assert_snapshot!(snapshot);
    });
}

/// The attribution fixture's table, worked out by hand (its comment says
/// who is who): every model's credit and value per journey, channel and
/// template, to 1e-9.
#[test]
fn attribution_numbers_checked_by_hand() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtime");
    let source = read(&dir.join("attribution.journey"));
    let events = read(&dir.join("attribution.ndjson"));
    let (_, errors, report) = run_with_report(&source, &events);
    assert!(errors.is_empty(), "{errors:?}");
    let a = report.expect("the fixture has an attribution item");
    // bob 10, ana 70, cy 25, eve 5, fay 30; dan's 0 fails the `where`.
    assert_eq!((a.conversions, a.unattributed), (5, 2));
    assert!((a.value - 140.0).abs() < 1e-9, "{}", a.value);
    let rows: Vec<(&str, &str, &str, u64)> = a
        .touches
        .iter()
        .map(|t| (&*t.journey, &*t.channel, &*t.template, t.sends))
        .collect();
    assert_eq!(
        rows,
        [
            ("promo", "email", "promo_mail", 2),
            ("welcome", "email", "welcome_mail", 4),
            ("welcome", "push", "welcome_push", 4),
        ]
    );
    let third = 1.0 / 3.0;
    // [first, last, linear, time_decay]: bob's tie (promo first, welcome
    // last, halves), ana's three (1/3 each; 1/7, 2/7, 4/7), fay's one.
    let credit = [
        [1.0, 1.0, 0.5 + third, 0.5 + 4.0 / 7.0],
        [1.0, 1.0, 0.5 + third, 0.5 + 1.0 / 7.0],
        [1.0, 1.0, third + 1.0, 2.0 / 7.0 + 1.0],
    ];
    let value = [
        [10.0, 70.0, 5.0 + 70.0 * third, 5.0 + 40.0],
        [70.0, 10.0, 5.0 + 70.0 * third, 5.0 + 10.0],
        [30.0, 30.0, 70.0 * third + 30.0, 20.0 + 30.0],
    ];
    for (i, t) in a.touches.iter().enumerate() {
        for m in 0..4 {
            let (c, v) = (t.credit.all()[m], t.value.all()[m]);
            assert!((c - credit[i][m]).abs() < 1e-9, "row {i} credit {m}: {c}");
            assert!((v - value[i][m]).abs() < 1e-9, "row {i} value {m}: {v}");
        }
    }
}
