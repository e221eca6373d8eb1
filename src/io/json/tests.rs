//! The scanner against `serde_json`: a corpus of valid and invalid JSON of
//! every kind, deep nesting, and random JSON texts and their mutations. The
//! scanner must never accept what `serde_json` rejects; it may decline only
//! what it documents (nesting deeper than [`MAX_DEPTH`]).

use proptest::prelude::*;

use super::*;

/// Whether `serde_json` accepts `text` as one JSON value it skips.
fn serde_accepts(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn agrees(text: &str) {
    assert_eq!(
        validate(text).is_ok(),
        serde_accepts(text),
        "scanner and serde_json disagree on {text:?}"
    );
}

const VALID: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "12",
    "-12.50",
    "1e3",
    "1E+3",
    "1.5e-300",
    "1e400",
    "123456789012345678901234567890",
    r#""""#,
    r#""plain""#,
    r#""caf\u00e9 \" \\ \/ \b \f \n \r \t""#,
    r#""\ud83d\ude00""#,
    // A lone surrogate is skipped by `serde_json` too; decoding it fails.
    r#""\ud800""#,
    "\"é ü 日本 😀\"",
    "[]",
    "{}",
    " [ 1 , 2 ] ",
    "\t{\r\n\"a\" : [ ] }\n",
    r#"{"a":{"b":[1,{"c":null}],"d":"x"},"e":[[],[[]]]}"#,
    r#"{"a":1,"a":2}"#,
    r#"{"k\u0065y":"v"}"#,
    "\"01234567890123456789 long string with no escapes at all, past one word\"",
];

const INVALID: &[&str] = &[
    "",
    " ",
    "nul",
    "nulls",
    "tru",
    "True",
    "-",
    "01",
    "-01",
    "1.",
    ".5",
    "1e",
    "1e+",
    "+1",
    "0x10",
    "NaN",
    "Infinity",
    "1 2",
    r#"""#,
    r#""abc"#,
    r#""a\"#,
    r#""\x""#,
    r#""\u12""#,
    r#""\u12g4""#,
    "\"tab\tinside\"",
    "\"nul\u{0}inside\"",
    "\"line\nbreak\"",
    "[",
    "]",
    "[1,]",
    "[,1]",
    "[1 2]",
    "{",
    "}",
    r#"{"a"}"#,
    r#"{"a":}"#,
    r#"{"a":1,}"#,
    r#"{,"a":1}"#,
    r#"{"a" 1}"#,
    r#"{a:1}"#,
    r#"{1:1}"#,
    r#"{"a":1 "b":2}"#,
    r#"{"a":[1,2}"#,
    r#"[{"a":1]"#,
    r#"{"a":1}}"#,
    r#"{"a":1} x"#,
    "[1]\u{0}",
    "\u{a0}1",
];

#[test]
fn accepts_what_serde_json_accepts() {
    for text in VALID {
        assert!(validate(text).is_ok(), "{text:?} declined");
        agrees(text);
    }
}

#[test]
fn rejects_what_serde_json_rejects() {
    for text in INVALID {
        assert!(validate(text).is_err(), "{text:?} accepted");
        agrees(text);
    }
}

#[test]
fn values_are_returned_without_surrounding_whitespace() {
    assert_eq!(validate("  [1, 2]\n").map(RawJson::get), Ok("[1, 2]"));
    let mut scanner = Scanner::new(r#"{ "a" : "x" , "b":{"c":1} }"#);
    scanner.begin_object().unwrap();
    let mut first = true;
    let mut seen = Vec::new();
    while let Some(key) = scanner.next_key(&mut first).unwrap() {
        seen.push((key.text, scanner.value().unwrap().get()));
    }
    assert_eq!(seen, [("a", r#""x""#), ("b", r#"{"c":1}"#)]);
    assert!(scanner.at_end());
}

#[test]
fn escaped_keys_are_flagged() {
    let mut scanner = Scanner::new(r#"{"user\u0049d":1,"plain":2}"#);
    scanner.begin_object().unwrap();
    let mut first = true;
    let key = scanner.next_key(&mut first).unwrap().unwrap();
    assert!(key.escaped);
    assert_eq!(key.text, r"user\u0049d");
    scanner.value().unwrap();
    assert!(!scanner.next_key(&mut first).unwrap().unwrap().escaped);
}

#[test]
fn field_finds_the_last_of_a_repeated_key() {
    let object = validate(r#"{"a":1,"b":{"a":9},"a":[2]}"#).unwrap();
    assert_eq!(
        field(object, "a").map(|v| v.map(RawJson::get)),
        Ok(Some("[2]"))
    );
    assert_eq!(field(object, "z"), Ok(None));
    assert_eq!(field(validate("[1]").unwrap(), "a"), Err(Decline));
    let escaped = validate(r#"{"\u0061":1}"#).unwrap();
    assert_eq!(field(escaped, "a"), Err(Decline));
}

#[test]
fn nesting_is_limited_without_recursion() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(validate(&nested(MAX_DEPTH as usize)).is_ok());
    assert!(validate(&nested(MAX_DEPTH as usize + 1)).is_err());
    let objects = format!("{}1{}", r#"{"a":"#.repeat(128), "}".repeat(128));
    assert!(validate(&objects).is_ok());
    // Far deeper than any stack would allow a recursive scanner.
    let deep = "[".repeat(100_000);
    assert!(validate(&deep).is_err());
    assert!(validate(&nested(100_000)).is_err());
}

#[test]
fn special_bytes_are_found_in_every_position() {
    assert_eq!(next_special(b"0123456789\"", 3), 10);
    for len in 0..20 {
        for special in [b'"', b'\\', 0x1f, 0x00] {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = special;
                assert_eq!(next_special(&bytes, 0), at, "{bytes:?}");
            }
        }
        assert_eq!(next_special(&vec![b' '; len], 0), len);
        // Bytes of multi-byte characters are never special.
        let text = "é😀".repeat(len);
        assert_eq!(next_special(text.as_bytes(), 0), text.len());
    }
    // A special byte right after another one: the first is reported.
    assert_eq!(next_special(b"ab\x1f\"cdefgh", 0), 2);
    assert_eq!(next_special(b"abcdefg \x01\x20", 0), 8);
}

/// Random JSON text, with the spellings `serde_json` is picky about.
pub(crate) fn json_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(|n| format!("{n:e}")),
        "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
    ];
    let string = prop_oneof![
        "[a-z_ ]{0,12}",
        "([a-zé😀 ]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}){0,8}",
    ]
    .prop_map(|s| format!("\"{s}\""));
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number,
        string.clone(),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        let key = prop_oneof![
            "[abc]{1,2}",
            Just("a\\u0062".to_owned()),
            Just("\\u0061".to_owned()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((key, inner), 0..5).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Applies one edit at a character position: a deletion, or an insertion of
/// a token JSON is picky about.
pub(crate) fn mutate(text: &str, at: usize, len: usize, token: usize) -> String {
    const TOKENS: &[&str] = &[
        "", "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "0", "-", ".", "e", "1e400", "null",
        "\\u00", "\\ud800", "\u{1}", "\t", "é", "\"x\":1,", "\\\"",
    ];
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len % 3).min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    out.push_str(TOKENS[token % TOKENS.len()]);
    out.extend(&chars[end..]);
    out
}

/// [`next_special`] one byte at a time, the way the spec reads.
fn next_special_reference(bytes: &[u8], pos: usize) -> usize {
    bytes
        .get(pos..)
        .and_then(|rest| {
            rest.iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        })
        .map_or(pos.max(bytes.len()), |at| pos + at)
}

/// A byte the string scan could mistake: specials, and the bytes just past
/// them or with the top bit set (signed compares take those for controls).
fn tricky_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => Just(b'a'),
        1 => Just(b'"'),
        1 => Just(b'\\'),
        1 => Just(0x00u8),
        1 => Just(0x1fu8),
        1 => Just(0x20u8),
        1 => Just(0x7fu8),
        1 => Just(0x80u8),
        1 => Just(0x9fu8),
        1 => Just(0xa0u8),
        1 => Just(0xffu8),
        1 => any::<u8>(),
    ]
}

/// A piece of string content that shifts what follows it by a byte count
/// of its own: plain letters, multi-byte characters, escapes, and what a
/// string may not hold.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{0,17}",
        1 => Just("é".to_owned()),
        1 => Just("😀".to_owned()),
        1 => Just("\\\"".to_owned()),
        1 => Just("\\\\".to_owned()),
        1 => Just("\\n".to_owned()),
        1 => Just("\\u00e9".to_owned()),
        1 => Just("\\u00".to_owned()),
        1 => Just("\\x".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("\"".to_owned()),
        1 => Just("\u{1}".to_owned()),
        1 => Just("\u{1f}".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("\u{7f}".to_owned()),
    ]
}

proptest! {
    #[test]
    fn special_bytes_are_found_like_one_at_a_time(
        bytes in prop::collection::vec(tricky_byte(), 0..70),
        pos in 0usize..75,
    ) {
        let expected = next_special_reference(&bytes, pos);
        prop_assert_eq!(next_special(&bytes, pos), expected);
        prop_assert_eq!(next_special_swar(&bytes, pos), expected);
    }

    #[test]
    fn strings_agree_with_serde_json_at_every_offset(
        lead in 0usize..34,
        pieces in prop::collection::vec(string_piece(), 0..6),
        closed in any::<bool>(),
        after in prop_oneof![Just(""), Just(" "), Just("]"), Just(",1]")],
        in_array in any::<bool>(),
    ) {
        // `lead` letters move the pieces across sixteen-byte boundaries;
        // an unclosed string runs into the very end of the text.
        let mut text = String::new();
        if in_array {
            text.push('[');
        }
        text.push('"');
        text.push_str(&"x".repeat(lead));
        for piece in &pieces {
            text.push_str(piece);
        }
        if closed {
            text.push('"');
        }
        if in_array {
            text.push_str(after);
        }
        prop_assert_eq!(validate(&text).is_ok(), serde_accepts(&text), "{:?}", text);
    }
}

proptest! {
    #[test]
    fn random_json_is_accepted(text in json_text()) {
        prop_assert!(serde_accepts(&text), "generator made invalid JSON {text:?}");
        prop_assert!(validate(&text).is_ok(), "{text:?} declined");
    }

    #[test]
    fn mutated_json_agrees_with_serde_json(
        text in json_text(),
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 1..3),
    ) {
        let mut text = text;
        for (at, len, token) in edits {
            text = mutate(&text, at, len, token);
        }
        prop_assert_eq!(validate(&text).is_ok(), serde_accepts(&text), "{:?}", text);
    }
}
