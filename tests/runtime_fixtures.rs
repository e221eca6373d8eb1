//! Runtime fixtures: each `tests/fixtures/runtime/<name>.journey` is
//! compiled, run over `<name>.ndjson` until time runs out, and the action
//! stream is snapshotted under the source and the input.

use std::sync::Arc;

use journey::SourceMap;
use journey::compile;
use journey::project::check_sources;
use journey::runtime::{Action, Event, EventKind, Runtime};
use journey::value::parse_timestamp;

fn run(source: &str, events: &str) -> Vec<String> {
    let mut sources = SourceMap::new();
    sources.add("fixture.journey", source.to_string());
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
    let (program, _) = compile::compile(&project);
    let mut rt = Runtime::new(Arc::new(program));
    let mut out = Vec::new();
    let empty = serde_json::json!({});
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        let m: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
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
            timestamp_ms: m["timestamp"]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or(0),
            message_id: m["messageId"].as_str(),
            properties: if payload.is_object() { payload } else { &empty },
            context_timezone: m["context"]["timezone"].as_str(),
        };
        rt.ingest(&event, &mut |a: Action| out.push(a.to_json_line()));
    }
    rt.finish(&mut |a: Action| out.push(a.to_json_line()));
    out
}

#[test]
fn runtime_fixtures() {
    insta::glob!("fixtures/runtime/*.journey", |path| {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let events = std::fs::read_to_string(path.with_extension("ndjson")).unwrap_or_default();
        let actions = run(&source, &events).join("\n");
        insta::assert_snapshot!(format!(
            "----- SOURCE\n{source}\n----- EVENTS\n{events}\n----- ACTIONS\n{actions}\n"
        ));
    });
}
