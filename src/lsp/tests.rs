//! The language server's analysis without the protocol: completion in
//! contexts the integration test (tests/lsp.rs) does not reach, and no
//! panic on any prefix of the example journeys at any point.

use std::path::PathBuf;

use super::analysis::{Analysis, Kind};
use super::complete::complete;
use crate::source::FileId;

const SCHEMA: &str = r#"
profile {
  email:   string?
  address: { city: string, zip: string? }
}
event signed_up { source: string, plan: string? }
event "Order Completed" { order_id: string, plan: string, total: number }
template hello { channel email subject "Hi" body "Hello" }
template hello_sms { channel sms body "Hi" }
segment everyone = true
"#;

fn analysis(journey: &str) -> Analysis {
    Analysis::new(vec![
        (
            PathBuf::from("/p/schema.journey"),
            "schema.journey".into(),
            SCHEMA.into(),
        ),
        (
            PathBuf::from("/p/j.journey"),
            "j.journey".into(),
            journey.into(),
        ),
    ])
}

/// The labels offered where `|` is in `journey` (the `|` taken out).
fn labels(journey: &str) -> Vec<String> {
    let at = journey.find('|').unwrap();
    let text = journey.replacen('|', "", 1);
    let analysis = analysis(&text);
    complete(&analysis, FileId(1), at)
        .into_iter()
        .map(|c| c.label)
        .collect()
}

#[test]
fn trigger_fields_are_those_of_every_starting_event() {
    let journey = "journey j {\n  trigger signed_up\n  trigger \"Order Completed\"\n  if trigger.| == \"x\" { exit }\n}\n";
    assert_eq!(labels(journey), ["plan"]);
    let one = "journey j {\n  trigger signed_up\n  if trigger.| == \"x\" { exit }\n}\n";
    assert_eq!(labels(one), ["source", "plan"]);
}

#[test]
fn nested_profile_fields_handles_and_channels() {
    assert_eq!(labels("segment s = profile.address.|"), ["city", "zip"]);
    assert_eq!(labels("segment s = profile.|"), ["email", "address"]);
    let handle = "journey j {\n  trigger signed_up\n  send email hello\n  if hello.| { exit }\n}\n";
    assert_eq!(
        labels(handle),
        [
            "delivered",
            "opened",
            "clicked",
            "bounced",
            "failed",
            "sent"
        ]
    );
    let sms = "journey j {\n  trigger signed_up\n  send sms |\n}\n";
    assert_eq!(labels(sms), ["hello_sms"]);
    let quoted =
        "journey j {\n  trigger signed_up\n  exit on \"Order Completed\" where event.|\n}\n";
    assert_eq!(labels(quoted), ["order_id", "plan", "total"]);
    let events = "journey j {\n  trigger |\n}\n";
    assert_eq!(labels(events), ["signed_up", "\"Order Completed\""]);
}

#[test]
fn a_handle_reads_resolve_to_the_send_that_binds_it() {
    let journey = "journey j {\n  trigger signed_up\n  send email hello as h\n  wait for h.opened within 1d\n}\n";
    let analysis = analysis(journey);
    let read = journey.find("h.opened").unwrap();
    let (symbol, _) = analysis.symbol_at(FileId(1), read).unwrap();
    assert_eq!(symbol.kind, Kind::Handle);
    let bound = journey.find("as h").unwrap() + 3;
    assert_eq!(symbol.defs[0].start as usize, bound);
}

/// Every prefix of every example journey, cut every few bytes (and on
/// character boundaries), is analysed, and completion, hover and
/// definitions are asked at several points of it: nothing panics.
#[test]
fn no_prefix_of_the_examples_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys");
    let sources = crate::project::load_paths_from(std::slice::from_ref(&dir), Some(&dir)).unwrap();
    let files: Vec<(PathBuf, String, String)> = sources
        .files()
        .iter()
        .map(|f| (dir.join(&f.name), f.name.clone(), f.text.to_string()))
        .collect();
    let (schema_at, _) = files
        .iter()
        .enumerate()
        .find(|(_, f)| f.1 == "schema.journey")
        .unwrap();
    for (i, (_, name, text)) in files.iter().enumerate() {
        if i == schema_at {
            continue;
        }
        for cut in (0..text.len())
            .step_by(97)
            .filter(|c| text.is_char_boundary(*c))
        {
            let prefix = &text[..cut];
            let analysis = Analysis::new(vec![
                files[schema_at].clone(),
                (dir.join(name), name.clone(), prefix.to_string()),
            ]);
            let file = FileId(1);
            for at in [0, cut / 2, cut.saturating_sub(1), cut, cut + 10] {
                complete(&analysis, file, at);
                analysis.symbol_at(file, at);
                analysis.fixes(file, at..at + 1);
            }
        }
    }
}
