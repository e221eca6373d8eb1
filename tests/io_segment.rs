//! Properties of the Segment parser: it never panics, and on generated
//! streams it agrees with a plain `serde_json::Value` reading of each line.

use journey::io::segment::{parse_line, parse_timestamp_ms};
use journey::io::synth::{SynthOptions, generate};
use proptest::prelude::*;
use serde_json::Value;

/// What the parser should find, read the slow way.
fn oracle(line: &str) -> Option<(String, String, i64, Option<String>)> {
    let value: Value = serde_json::from_str(line).ok()?;
    let user = value
        .get("userId")
        .or_else(|| value.get("anonymousId"))?
        .as_str()?
        .to_owned();
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let timestamp = parse_timestamp_ms(value.get("timestamp")?.as_str()?)?;
    // Only an identify's time zone is read.
    let timezone = value
        .pointer("/context/timezone")
        .and_then(Value::as_str)
        .filter(|_| value.get("type").is_some_and(|t| t == "identify"))
        .map(str::to_owned);
    if value.get("type")? == "track" && event.is_empty() {
        return None;
    }
    Some((user, event, timestamp, timezone))
}

#[test]
fn generated_lines_agree_with_a_value_reading() {
    let options = SynthOptions {
        users: 500,
        events: 5_000,
        seed: 99,
        malformed_rate: 0.02,
        ..SynthOptions::default()
    };
    for (i, line) in generate(options).enumerate() {
        let parsed = parse_line(&line, i + 1).ok().map(|e| {
            let event = e.event_name().to_owned();
            (
                e.user_key.into_owned(),
                event,
                e.timestamp_ms,
                e.context_timezone.map(|t| t.into_owned()),
            )
        });
        assert_eq!(parsed, oracle(&line), "line {}: {line}", i + 1);
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(line in "\\PC{0,200}") {
        let _ = parse_line(&line, 1);
    }

    #[test]
    fn json_shaped_text_never_panics(
        line in r#"\{("(type|userId|event|timestamp|context|properties)":("[a-z0-9:\-T\\\\]{0,25}"|[0-9\-.e]{1,6}|null|true|\{\}|\[\]|\{"timezone":"[A-Za-z/]{0,12}"\}),?){0,6}\}?"#
    ) {
        let _ = parse_line(&line, 1);
    }
}
