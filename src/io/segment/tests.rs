//! The parsing rules of a Segment line, one test per rule.

use std::borrow::Cow;

use super::*;

const T0: i64 = 1_772_445_600_000; // 2026-03-02T10:00:00Z

fn parse(line: &str) -> RawEvent<'_> {
    parse_line(line, 7).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn error(line: &str) -> String {
    match parse_line(line, 12) {
        Ok(event) => panic!("{line} parsed as {event:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn track_with_user_id() {
    let line = r#"{"type":"track","userId":"u1","event":"cart_abandoned","properties":{"cart_id":"c1","total":80},"timestamp":"2026-03-02T10:00:00Z","messageId":"e-1"}"#;
    let event = parse(line);
    assert_eq!(event.kind, MessageKind::Track);
    assert_eq!(event.user_key, "u1");
    assert!(matches!(event.user_key, Cow::Borrowed(_)));
    assert_eq!(event.event_name(), "cart_abandoned");
    assert_eq!(event.timestamp_ms, T0);
    assert_eq!(event.message_id.as_deref(), Some("e-1"));
    assert_eq!(
        event.properties.map(RawJson::get),
        Some(r#"{"cart_id":"c1","total":80}"#)
    );
    assert!(event.traits.is_none());
    assert!(event.context_timezone.is_none());
}

#[test]
fn anonymous_id_when_user_id_is_absent_null_or_empty() {
    for user_id in ["", r#""userId":null,"#, r#""userId":"","#] {
        let line = format!(
            r#"{{"type":"track",{user_id}"anonymousId":"anon-9","event":"app_opened","timestamp":"2026-03-02T10:00:00Z"}}"#
        );
        assert_eq!(parse(&line).user_key, "anon-9", "{line}");
    }
    let both = r#"{"anonymousId":"anon-9","userId":"u2","type":"track","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(parse(both).user_key, "u2");
}

#[test]
fn numbers_as_ids_keep_their_json_text() {
    let line = r#"{"type":"identify","userId":12345,"messageId":-7.50,"timestamp":"2026-03-02T10:00:00Z"}"#;
    let event = parse(line);
    assert_eq!(event.user_key, "12345");
    assert_eq!(event.message_id.as_deref(), Some("-7.50"));
    let anon = r#"{"type":"identify","anonymousId":1e3,"timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(parse(anon).user_key, "1e3");
}

#[test]
fn identify_keeps_traits_raw_and_reads_context_timezone() {
    let line = r#"{"type":"identify","userId":"u1","traits":{"email":"ana@example.com","consent":{"sms":false}},"context":{"library":{"name":"analytics.js","version":"4.1.0"},"ip":"10.0.0.1","timezone":"Europe/Paris","page":{"path":"/"}},"timestamp":"2026-03-02T09:00:00Z"}"#;
    let event = parse(line);
    assert_eq!(event.kind, MessageKind::Identify);
    assert!(event.event.is_none());
    assert_eq!(event.timestamp_ms, T0 - 3_600_000);
    assert_eq!(
        event.traits.map(RawJson::get),
        Some(r#"{"email":"ana@example.com","consent":{"sms":false}}"#)
    );
    assert_eq!(event.context_timezone.as_deref(), Some("Europe/Paris"));
    let traits = event.traits_value().unwrap();
    assert_eq!(traits["consent"]["sms"], serde_json::Value::Bool(false));
    assert_eq!(event.properties_value().unwrap(), serde_json::json!({}));
}

#[test]
fn context_is_otherwise_ignored_whatever_its_shape() {
    for context in [
        r#"null"#,
        r#""web""#,
        r#"[1,{"timezone":"Asia/Tokyo"}]"#,
        r#"{"timezone":42}"#,
        r#"{"traits":{"timezone":"Asia/Tokyo"}}"#,
    ] {
        let line = format!(
            r#"{{"type":"track","userId":"u1","event":"x","context":{context},"timestamp":"2026-03-02T10:00:00Z"}}"#
        );
        assert!(parse(&line).context_timezone.is_none(), "{line}");
    }
}

#[test]
fn other_envelope_fields_are_skipped() {
    let line = r#"{"type":"track","userId":"u1","event":"x","integrations":{"All":true},"sentAt":"garbage","receivedAt":null,"version":2,"timestamp":"2026-03-02T10:00:00.250Z"}"#;
    assert_eq!(parse(line).timestamp_ms, T0 + 250);
}

#[test]
fn null_properties_mean_absent() {
    let line = r#"{"type":"track","userId":"u1","event":"x","properties":null,"timestamp":"2026-03-02T10:00:00Z"}"#;
    let event = parse(line);
    assert!(event.properties.is_none());
    assert_eq!(event.properties_value().unwrap(), serde_json::json!({}));
}

#[test]
fn escaped_strings_are_decoded() {
    let line = r#"{"type":"track","userId":"u\"1\\","event":"Order\u0020Completed","context":{"timezone":"America\/New_York"},"messageId":"caf\u00e9","timestamp":"2026-03-02T10:00:00Z","properties":{"title":"a \"b\""}}"#;
    let event = parse(line);
    assert_eq!(event.user_key, "u\"1\\");
    assert!(matches!(event.user_key, Cow::Owned(_)));
    assert_eq!(event.event_name(), "Order Completed");
    assert_eq!(event.message_id.as_deref(), Some("café"));
    assert_eq!(event.properties_value().unwrap()["title"], "a \"b\"");
    let line = r#"{"type":"identify","userId":"u1","context":{"timezone":"America\/New_York"},"timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(
        parse(line).context_timezone.as_deref(),
        Some("America/New_York")
    );
}

#[test]
fn only_an_identify_reads_its_time_zone() {
    // Whichever comes first, `type` or `context`, and whichever path reads
    // the line (a list sends it to the scanner, an escaped key on to
    // `serde_json`).
    for kind in ["track", "page", "identify"] {
        for (before, after) in [
            (format!(r#""type":"{kind}","#), String::new()),
            (String::new(), format!(r#","type":"{kind}""#)),
        ] {
            for extra in ["", r#","tags":["a"]"#, r#","n\u006fte":"a""#] {
                let line = format!(
                    r#"{{{before}"userId":"u1","event":"e","context":{{"timezone":"Europe/Paris"}}{after},"timestamp":"2026-03-02T10:00:00Z"{extra}}}"#
                );
                // The path the line takes, as intended.
                let scanned = top_level::parse_scanner(&line).is_some();
                match extra {
                    "" => assert!(scanned, "{line}"),
                    _ if extra.contains('[') => assert!(scanned, "{line}"),
                    _ => assert!(!scanned, "{line}"),
                }
                let zone = parse(&line).context_timezone;
                if kind == "identify" {
                    assert_eq!(zone.as_deref(), Some("Europe/Paris"), "{line}");
                } else {
                    assert!(zone.is_none(), "{line}");
                }
            }
        }
    }
    // A second `type` after the `context` decides, as it does for
    // `serde_json` (the last of a repeated key counts).
    let line = r#"{"type":"track","userId":"u1","context":{"timezone":"Europe/Paris"},"type":"identify","timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(
        parse(line).context_timezone.as_deref(),
        Some("Europe/Paris")
    );
}

#[test]
fn escaped_keys_are_recognised() {
    let line = r#"{"typ\u0065":"track","user\u0049d":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(parse(line).user_key, "u1");
}

#[test]
fn non_ascii_text_is_borrowed() {
    let line = r#"{"type":"track","userId":"usuário-ü","event":"café_visité","timestamp":"2026-03-02T10:00:00Z"}"#;
    let event = parse(line);
    assert_eq!(event.user_key, "usuário-ü");
    assert!(matches!(event.event, Some(Cow::Borrowed("café_visité"))));
}

#[test]
fn timestamps_with_offsets_and_fractions() {
    let cases = [
        ("2026-03-02T10:00:00Z", T0),
        ("2026-03-02T10:00:00.1Z", T0 + 100),
        ("2026-03-02T10:00:00.123456Z", T0 + 123),
        ("2026-03-02T11:00:00+01:00", T0),
        ("2026-03-02T11:00:00.5+01:00", T0 + 500),
        ("2026-03-01T23:30:00-10:30", T0),
        ("2026-03-02T10:00:00+00:00", T0),
    ];
    for (text, expected) in cases {
        let line = format!(r#"{{"type":"track","userId":"u1","event":"x","timestamp":"{text}"}}"#);
        assert_eq!(parse(&line).timestamp_ms, expected, "{text}");
    }
}

#[test]
fn bad_timestamps_are_errors() {
    for text in [
        "2026-03-02",
        "2026-02-30T10:00:00Z",
        "2026-03-02T10:00:00",
        "2026-03-02 10:00:00Z",
        "20260302T100000Z",
        "2026-03-02T10:00:00+24:00",
        "soon",
        "",
    ] {
        let line = format!(r#"{{"type":"track","userId":"u1","event":"x","timestamp":"{text}"}}"#);
        assert_eq!(
            error(&line),
            format!(
                "line 12: `timestamp` `{text}` is not an RFC 3339 time such as `2026-03-02T10:00:00Z`"
            )
        );
    }
    for (text, problem) in [
        ("1969-12-31T23:59:59.999Z", "is before 1970"),
        ("1970-01-01T00:30:00+01:00", "is before 1970"),
        ("0000-01-01T00:00:00Z", "is before 1970"),
        ("9999-12-31T23:59:59-00:01", "is after 9999"),
    ] {
        let line = format!(r#"{{"type":"track","userId":"u1","event":"x","timestamp":"{text}"}}"#);
        assert_eq!(
            error(&line),
            format!("line 12: `timestamp` `{text}` {problem}")
        );
    }
    for (text, ms) in [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:30:00-01:00", 5_400_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ] {
        let line = format!(r#"{{"type":"track","userId":"u1","event":"x","timestamp":"{text}"}}"#);
        assert_eq!(parse(&line).timestamp_ms, ms, "{text}");
    }
    let number = r#"{"type":"track","userId":"u1","event":"x","timestamp":1772445600}"#;
    assert_eq!(
        error(number),
        "line 12: `timestamp` must be a string, found a number"
    );
}

#[test]
fn missing_fields_are_errors() {
    let cases = [
        (
            r#"{"userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            "missing `type`",
        ),
        (
            r#"{"type":"track","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            "missing `userId` or `anonymousId`",
        ),
        (
            r#"{"type":"track","userId":"u1","event":"x"}"#,
            "missing `timestamp`",
        ),
        (
            r#"{"type":"track","userId":"u1","timestamp":"2026-03-02T10:00:00Z"}"#,
            "missing `event` in a track message",
        ),
        (
            r#"{"type":"track","userId":"u1","event":null,"timestamp":"2026-03-02T10:00:00Z"}"#,
            "missing `event` in a track message",
        ),
        (
            r#"{"type":"track","userId":"u1","event":"","timestamp":"2026-03-02T10:00:00Z"}"#,
            "empty `event` in a track message",
        ),
        (
            r#"{"type":"track","userId":null,"anonymousId":"","event":"x"}"#,
            "missing `userId` or `anonymousId`",
        ),
    ];
    for (line, message) in cases {
        assert_eq!(error(line), format!("line 12: {message}"), "{line}");
    }
}

#[test]
fn wrong_types_are_errors() {
    let cases = [
        (
            r#"{"type":"track","userId":true,"event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            "`userId` must be a string or a number, found a boolean",
        ),
        (
            r#"{"type":"track","userId":"u1","event":["x"],"timestamp":"2026-03-02T10:00:00Z"}"#,
            "`event` must be a string, found a list",
        ),
        (
            r#"{"type":"track","userId":"u1","event":"x","properties":[1],"timestamp":"2026-03-02T10:00:00Z"}"#,
            "`properties` must be an object, found a list",
        ),
        (
            r#"{"type":"identify","userId":"u1","traits":"vip","timestamp":"2026-03-02T10:00:00Z"}"#,
            "`traits` must be an object, found a string",
        ),
        (
            r#"{"type":"track","userId":"\ud800","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            r"`userId` is not valid text: it contains an unpaired surrogate `\ud800`",
        ),
        (
            r#"{"type":"track","anonymousId":"a\\ud800\ud83d\ude00\uDC01b","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            r"`anonymousId` is not valid text: it contains an unpaired surrogate `\uDC01`",
        ),
        (
            r#"{"type":"track","userId":"u1","event":"\ud83d\ud83d\ude00","timestamp":"2026-03-02T10:00:00Z"}"#,
            r"`event` is not valid text: it contains an unpaired surrogate `\ud83d`",
        ),
        (
            r#"{"type":"track","userId":"u1","event":"x","timestamp":"\udbff 2026"}"#,
            r"`timestamp` is not valid text: it contains an unpaired surrogate `\udbff`",
        ),
        (
            r#"{"type":{},"userId":"u1","timestamp":"2026-03-02T10:00:00Z"}"#,
            "`type` must be a string, found an object",
        ),
        (
            r#"{"type":"purchase","userId":"u1","timestamp":"2026-03-02T10:00:00Z"}"#,
            "unknown message type `purchase`; expected `track`, `identify`, `page`, `screen`, `group` or `alias`",
        ),
    ];
    for (line, message) in cases {
        assert_eq!(error(line), format!("line 12: {message}"), "{line}");
    }
}

#[test]
fn ignored_message_types_are_accepted() {
    for (kind, expected) in [
        ("page", MessageKind::Page),
        ("screen", MessageKind::Screen),
        ("group", MessageKind::Group),
        ("alias", MessageKind::Alias),
    ] {
        // No `event`, and payloads of any shape: still not malformed.
        let line = format!(
            r#"{{"type":"{kind}","userId":"u1","name":"Home","properties":"odd","traits":[1],"previousId":"a1","timestamp":"2026-03-02T10:00:00Z"}}"#
        );
        let event = parse(&line);
        assert_eq!(event.kind, expected);
        assert!(!event.kind.is_processed());
        assert_eq!(event.kind.name(), kind);
        assert!(event.event.is_none() && event.properties.is_none() && event.traits.is_none());
    }
    // Yet a user key and a timestamp are required of every message.
    assert_eq!(
        error(r#"{"type":"page","userId":"u1"}"#),
        "line 12: missing `timestamp`"
    );
}

#[test]
fn invalid_json_is_reported_with_its_column() {
    assert_eq!(
        error("not json"),
        "line 12: not valid JSON: expected ident at column 2"
    );
    assert_eq!(
        error(r#"{"type":"track","userId":"u1""#),
        "line 12: not valid JSON: EOF while parsing an object at column 29"
    );
    assert_eq!(
        error(r#"{"type":"track"} {}"#),
        "line 12: not valid JSON: trailing characters at column 18"
    );
    assert_eq!(
        error(r#"{"type":"track","context":{"a":[1,2}}"#),
        "line 12: not valid JSON: expected `,` or `]` at column 36"
    );
    assert_eq!(
        error(r#"["track"]"#),
        "line 12: a message must be a JSON object"
    );
    assert_eq!(error("42"), "line 12: a message must be a JSON object");
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    let line = r#"{"type":"track","userId":"u1","userId":"u2","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#;
    assert_eq!(parse(line).user_key, "u2");
}

#[test]
fn reader_skips_blank_lines_and_numbers_lines() {
    let input = concat!(
        "\u{feff}{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"a\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\r\n",
        "\n",
        "   \t\n",
        "{\"type\":\"track\",\"userId\":\"u1\"}\n",
        "{\"type\":\"page\",\"userId\":\"u1\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\n",
        "{oops\n",
        "{\"type\":\"identify\",\"userId\":\"u2\",\"timestamp\":\"2026-03-02T10:00:00Z\"}",
    );
    let mut reader = EventReader::new(input.as_bytes());
    let mut seen = Vec::new();
    while let Some((line, event)) = reader.next_event().unwrap() {
        seen.push(match event {
            Ok(event) => format!("{line} ok {} {}", event.kind.name(), event.user_key),
            Err(e) => format!("{line} {e}"),
        });
    }
    assert_eq!(
        seen,
        [
            "1 ok track u1",
            "4 line 4: missing `timestamp`",
            "5 ok page u1",
            "6 line 6: not valid JSON: key must be a string at column 2",
            "7 ok identify u2",
        ]
    );
    assert_eq!(reader.line_no(), 7);
}

#[test]
fn reader_reports_invalid_utf8_and_goes_on() {
    let mut input = b"{\"type\":\"track\",\"userId\":\"u\xff\"}\n".to_vec();
    input.extend_from_slice(
        b"{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"a\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\n",
    );
    let mut reader = EventReader::new(input.as_slice());
    let (line, first) = reader.next_event().unwrap().unwrap();
    assert_eq!(
        (line, first.unwrap_err().to_string()),
        (1, "line 1: not valid UTF-8 at byte 28".to_owned())
    );
    let (line, second) = reader.next_event().unwrap().unwrap();
    assert_eq!(
        (line, second.unwrap().user_key.into_owned()),
        (2, "u1".to_owned())
    );
    assert!(reader.next_event().unwrap().is_none());
}

mod fast_path {
    //! The scanner's reading of a line against `serde_json`'s: the same
    //! event, or the same error, on generated lines and their mutations.

    use proptest::prelude::*;

    use super::super::top_level;
    use super::{error, parse};
    use crate::io::json::tests::{json_text, mutate};
    use crate::io::synth::{SynthOptions, generate};

    fn generated_lines() -> Vec<String> {
        let options = SynthOptions {
            users: 200,
            events: 2_000,
            seed: 3,
            malformed_rate: 0.05,
            ..SynthOptions::default()
        };
        generate(options).collect()
    }

    /// Every path that reads `line` reads it as `serde_json` does.
    fn agree(line: &str) -> Result<(), TestCaseError> {
        let slow = format!("{:?}", top_level::parse_serde(line));
        let fast = format!("{:?}", top_level::parse(line));
        prop_assert_eq!(&fast, &slow, "{}", line);
        if let Some(scanned) = top_level::parse_scanner(line) {
            prop_assert_eq!(format!("{scanned:?}"), slow.as_str(), "scanner: {}", line);
        }
        Ok(())
    }

    #[test]
    fn well_formed_generated_lines_take_the_fast_path() {
        let mut fast = 0;
        for line in generated_lines() {
            agree(&line).unwrap_or_else(|e| panic!("{e}"));
            if serde_json::from_str::<serde_json::Value>(&line).is_ok() {
                assert!(top_level::takes_fast_path(&line), "{line}");
                fast += 1;
            }
        }
        assert!(fast > 1_000);
    }

    /// Every field of a line, shifted one byte at a time over the 16-byte
    /// steps of the string scan: strings, keys and numbers that straddle
    /// two steps read as those that do not.
    #[test]
    fn scan_boundaries_fall_anywhere() {
        let tail = r#""type":"identify","userId":"user-11270","traits":{"plan":"pro","ltv":22.5,"consent":{"email":true,"sms":null}},"context":{"library":{"name":"analytics.js"},"timezone":"America/New_York","page":{"path":"/a"}},"timestamp":"2026-03-02T00:00:02.428Z","messageId":"108dd879-539f-4be8-ae88-0a31a4f51d5b"}"#;
        for pad in 0..160 {
            let line = format!(r#"{{"integrations":"{}",{tail}"#, "x".repeat(pad));
            agree(&line).unwrap_or_else(|e| panic!("{e}"));
            assert!(top_level::takes_fast_path(&line), "{line}");
            let event = parse(&line);
            assert_eq!(event.user_key, "user-11270");
            assert_eq!(event.context_timezone.as_deref(), Some("America/New_York"));
        }
    }

    /// Deeply nested objects are read, or handed on past the scanner's
    /// depth, and read the same.
    #[test]
    fn deep_objects_are_handed_on() {
        for depth in [60, 63, 64, 65, 100, 200] {
            let line = format!(
                r#"{{"type":"track","userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z","context":{}1{}}}"#,
                r#"{"a":"#.repeat(depth),
                "}".repeat(depth),
            );
            agree(&line).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parse(&line).event_name(), "x");
        }
    }

    /// Every `context` of up to six grammar tokens, or four tokens with
    /// a stray one among them: the scanner accepts only JSON, reads it as
    /// `serde_json` does, and declines no compact JSON of its shape.
    #[test]
    fn scanner_accepts_exactly_compact_json_of_its_shape() {
        const GRAMMAR: [&str; 8] = ["{", "}", ":", ",", r#""a""#, r#""timezone""#, "1", "true"];
        const STRAY: [&str; 13] = [
            "{", "}", ":", ",", r#""a""#, "1", "-", "tru", "[", "]", " ", "\\", "\"",
        ];
        let start = r#"{"type":"track","userId":"u","event":"e","timestamp":"2026-03-02T10:00:00Z","context":"#;
        let mut line = String::new();
        let mut read = 0;
        let mut check = |tokens: &[&str], mut k: usize, n: u32, ends: (&str, &str)| {
            line.clear();
            line.push_str(start);
            line.push_str(ends.0);
            let mut plain = true;
            for _ in 0..n {
                let token = tokens[k % tokens.len()];
                plain &= GRAMMAR.contains(&token);
                line.push_str(token);
                k /= tokens.len();
            }
            line.push_str(ends.1);
            let json = serde_json::from_str::<serde_json::Value>(&line).is_ok();
            let scanned = top_level::parse_scanner(&line).is_some();
            assert!(!scanned || json, "accepted, not JSON: {line}");
            let shape = line[start.len()..].starts_with('{');
            assert!(scanned || !(json && plain && shape), "declined: {line}");
            if scanned {
                agree(&line).unwrap_or_else(|e| panic!("{e}"));
                read += 1;
            }
        };
        for ends in [("", "}"), ("{", "}}"), (r#"{"timezone":"#, "}}")] {
            for n in 0..=6u32 {
                for k in 0..GRAMMAR.len().pow(n) {
                    check(&GRAMMAR, k, n, ends);
                }
            }
            for n in 0..=4u32 {
                for k in 0..STRAY.len().pow(n) {
                    check(&STRAY, k, n, ends);
                }
            }
        }
        assert!(read > 200, "{read}");
    }

    #[test]
    fn declined_lines_read_as_before() {
        for line in [
            r#"{"typ\u0065":"track","userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
            r#"{"type":"track","userId":"u1","event":"x","context":"web","timestamp":"2026-03-02T10:00:00Z"}"#,
            r#"{"type":"track","userId":"u1","event":"x","context":1e400,"timestamp":"2026-03-02T10:00:00Z"}"#,
            r#"{"type":"track","userId":"u1","event":"x","context":{"time\u007Aone":"UTC"},"timestamp":"2026-03-02T10:00:00Z"}"#,
            r#"{"type":"tr\ud800ack","userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z"}"#,
        ] {
            agree(line).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_or_skipped_never_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(error(&deep), "line 12: a message must be a JSON object");
        let open = format!(r#"{{"type":"track","properties":{deep}"#);
        assert!(error(&open).starts_with("line 12: not valid JSON: "));
        // Closed, it is skipped like any value (`serde_json` skips without
        // recursing), and the line is read.
        let closed = format!(
            r#"{{"type":"track","userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z","context":{{"a":{deep}{}}},"properties":{{"a":{deep}{}}}}}"#,
            "]".repeat(100_000),
            "]".repeat(100_000),
        );
        let event = parse(&closed);
        assert_eq!(event.event_name(), "x");
        agree(&closed).unwrap_or_else(|e| panic!("{e}"));
    }

    fn envelope_line() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            json_text().prop_map(|v| format!(r#""type":{v}"#)),
            prop::sample::select(vec!["track", "identify", "page", "purchase", ""])
                .prop_map(|t| format!(r#""type":"{t}""#)),
            json_text().prop_map(|v| format!(r#""userId":{v}"#)),
            "[a-z0-9]{0,4}".prop_map(|v| format!(r#""anonymousId":"{v}""#)),
            json_text().prop_map(|v| format!(r#""event":{v}"#)),
            "[a-z_ ]{0,8}".prop_map(|v| format!(r#""event":"{v}""#)),
            Just(r#""timestamp":"2026-03-02T10:00:00Z""#.to_owned()),
            json_text().prop_map(|v| format!(r#""timestamp":{v}"#)),
            json_text().prop_map(|v| format!(r#""messageId":{v}"#)),
            json_text().prop_map(|v| format!(r#""properties":{v}"#)),
            json_text().prop_map(|v| format!(r#""traits":{v}"#)),
            json_text().prop_map(|v| format!(r#""context":{v}"#)),
            json_text().prop_map(|v| format!(r#""context":{{"ip":"1.2.3.4","timezone":{v}}}"#)),
            json_text().prop_map(|v| format!(r#""integrations":{v}"#)),
        ];
        prop::collection::vec(field, 0..9).prop_map(|fields| format!("{{{}}}", fields.join(",")))
    }

    proptest! {
        #[test]
        fn generated_lines_mutated_agree(
            index in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 1..4),
        ) {
            thread_local! {
                static LINES: Vec<String> = generated_lines();
            }
            let mut line = LINES.with(|lines| index.get(lines).clone());
            for (at, len, token) in edits {
                line = mutate(&line, at, len, token);
                agree(&line)?;
            }
        }

        #[test]
        fn random_envelopes_agree(
            line in envelope_line(),
            edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..3),
        ) {
            agree(&line)?;
            let mut line = line;
            for (at, len, token) in edits {
                line = mutate(&line, at, len, token);
                agree(&line)?;
            }
        }
    }
}
