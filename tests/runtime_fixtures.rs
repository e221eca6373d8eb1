//! Runtime fixtures: each `tests/fixtures/runtime/<name>.journey` is
//! compiled, run over `<name>.ndjson` until time runs out, and the action
//! stream is snapshotted under the source and the input.

use std::sync::Arc;

use journey::SourceMap;
use journey::io::adapter::{Payload, event};
use journey::io::parse_line;
use journey::io::segment::is_blank;
use journey::pipeline;
use journey::runtime::{Action, Runtime};

/// Compiles the fixture and runs it over the events with the same reader
/// as `journey simulate`; returns the actions and the input errors.
fn run(source: &str, events: &str) -> (Vec<String>, Vec<String>) {
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
    (out, errors)
}

#[test]
fn runtime_fixtures() {
    insta::glob!("fixtures/runtime/*.journey", |path| {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let events = std::fs::read_to_string(path.with_extension("ndjson")).unwrap_or_default();
        let (actions, errors) = run(&source, &events);
        let mut snapshot = format!(
            "----- SOURCE\n{source}\n----- EVENTS\n{events}\n----- ACTIONS\n{}\n",
            actions.join("\n")
        );
        if !errors.is_empty() {
            snapshot.push_str(&format!("----- INPUT ERRORS\n{}\n", errors.join("\n")));
        }
        insta::assert_snapshot!(snapshot);
    });
}
