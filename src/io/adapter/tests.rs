//! Payload lookups: examples, and the indexed reading against the `serde_json`
//! one it replaced, on random objects and paths.

use super::*;
use crate::io::parse_line;
use crate::runtime::event::PathTree;
use crate::value::Value;

fn path(keys: &[&str]) -> Vec<Arc<str>> {
    keys.iter().map(|k| Arc::from(*k)).collect()
}

#[test]
fn track_reads_properties_and_identify_reads_traits() {
    let line = r#"{"type":"track","userId":"u1","event":"cart_abandoned","properties":{"total":80,"cart":{"id":"c1"}},"timestamp":"2026-03-02T10:00:00Z","messageId":"m1"}"#;
    let raw = parse_line(line, 1).unwrap();
    let payload = Payload::of(&raw);
    let e = event(&raw, &payload);
    assert_eq!(e.kind, EventKind::Track);
    assert_eq!(
        (e.user_key, e.name, e.message_id),
        ("u1", "cart_abandoned", Some("m1"))
    );
    assert_eq!(
        e.properties.lookup(&path(&["total"])),
        Lookup::Found(Value::Number(80.0))
    );
    assert_eq!(
        e.properties.lookup(&path(&["cart", "id"])),
        Lookup::Found(Value::str("c1"))
    );
    assert_eq!(e.properties.lookup(&path(&["nope"])), Lookup::Missing);

    let line = r#"{"type":"identify","anonymousId":"a1","traits":{"email":null},"context":{"timezone":"Europe/Paris"},"timestamp":"2026-03-02T09:00:00Z"}"#;
    let raw = parse_line(line, 2).unwrap();
    let payload = Payload::of(&raw);
    let e = event(&raw, &payload);
    assert_eq!(e.kind, EventKind::Identify);
    assert_eq!(e.user_key, "a1");
    assert_eq!(e.context_timezone, Some("Europe/Paris"));
    assert_eq!(e.properties.lookup(&path(&["email"])), Lookup::Cleared);
}

#[test]
fn a_missing_payload_says_nothing() {
    let line =
        r#"{"type":"track","userId":"u1","event":"app_opened","timestamp":"2026-03-02T10:00:00Z"}"#;
    let raw = parse_line(line, 1).unwrap();
    let payload = Payload::of(&raw);
    assert_eq!(
        event(&raw, &payload).properties.lookup(&path(&["x"])),
        Lookup::Missing
    );
}

/// The lookup this module replaced, kept verbatim as the oracle: one
/// `serde_json` field selection per key, the value built as a
/// `serde_json::Value`.
fn old_lookup(raw: Option<RawJson<'_>>, path: &[Arc<str>]) -> Lookup {
    let Some(mut at) = raw else {
        return Lookup::Missing;
    };
    for key in path {
        if !at.get().trim_start().starts_with('{') {
            return Lookup::Cleared;
        }
        let mut found = [None];
        if crate::io::segment::select_fields_serde(at, &[key], &mut found).is_err() {
            return Lookup::Cleared;
        }
        match found[0] {
            Some(next) => at = next,
            None => return Lookup::Missing,
        }
    }
    if at.get() == "null" {
        return Lookup::Cleared;
    }
    match serde_json::from_str::<serde_json::Value>(at.get()) {
        Ok(v) => Lookup::Found(Value::from_json(&v)),
        Err(_) => Lookup::Cleared,
    }
}

fn track_with(properties: &str) -> String {
    format!(
        r#"{{"type":"track","userId":"u1","event":"x","timestamp":"2026-03-02T10:00:00Z","properties":{properties}}}"#
    )
}

/// Every lookup of `paths` in `properties`, new and old, side by side.
fn both(properties: &str, paths: &[Vec<Arc<str>>]) -> Vec<(Lookup, Lookup)> {
    let line = track_with(properties);
    let raw = parse_line(&line, 1).unwrap_or_else(|e| panic!("{line}: {e}"));
    let payload = Payload::of(&raw);
    paths
        .iter()
        .map(|p| (payload.lookup(p), old_lookup(raw.properties, p)))
        .collect()
}

/// Every path of `paths` read in one [`Properties::lookup_all`] pass, by
/// index; `Missing` for those it does not report. Panics on an index
/// reported twice or a `Missing` reported.
fn all_at_once(properties: &str, paths: &[Vec<Arc<str>>]) -> Vec<Lookup> {
    let line = track_with(properties);
    let raw = parse_line(&line, 1).unwrap_or_else(|e| panic!("{line}: {e}"));
    let payload = Payload::of(&raw);
    let mut out = vec![None; paths.len()];
    payload.lookup_all(&PathTree::new(paths.to_vec()), &mut |index, lookup| {
        assert_ne!(
            lookup,
            Lookup::Missing,
            "{properties}: path {index} reported missing"
        );
        assert!(
            out[index].is_none(),
            "{properties}: path {index} reported twice"
        );
        out[index] = Some(lookup);
    });
    out.into_iter()
        .map(|l| l.unwrap_or(Lookup::Missing))
        .collect()
}

fn assert_same(properties: &str, paths: &[&[&str]]) {
    let paths: Vec<_> = paths.iter().map(|p| path(p)).collect();
    let at_once = all_at_once(properties, &paths);
    for (((new, old), p), all) in both(properties, &paths)
        .into_iter()
        .zip(&paths)
        .zip(at_once)
    {
        assert_eq!(new, old, "{properties} at {p:?}");
        assert_eq!(all, old, "{properties} at {p:?}, all at once");
    }
}

#[test]
fn every_path_at_once_reads_as_one_at_a_time() {
    // The profile's shape: top-level slots, a nested object, repeats, a
    // path that is a prefix of another, and the same path twice.
    let traits = r#"{"email":"a@b.c","consent":{"email":true,"sms":null},"plan":"pro","consent":{"push":false},"tz":null,"n":{"m":{"k":1}}}"#;
    assert_same(
        traits,
        &[
            &["email"],
            &["consent", "email"],
            &["consent", "push"],
            &["consent", "sms"],
            &["consent"],
            &["plan", "x"],
            &["tz", "x"],
            &["n", "m", "k"],
            &["n", "m"],
            &["email"],
            &["absent"],
            &[],
        ],
    );
    // An escaped key at either level: the one-at-a-time way for those.
    assert_same(
        r#"{"a":{"\u0062":1,"c":2},"\u0064":3,"e":4}"#,
        &[&["a", "b"], &["a", "c"], &["d"], &["e"]],
    );
}

#[test]
fn scalars_are_decoded_as_serde_json_reads_them() {
    let properties = r#"{"s":"plain","e":"caf\u00e9 \"q\"","lone":"\ud800","n":-0,"big":123456789012345678901234567890,"f":0.1,"x":1e400,"tiny":1e-400,"t":true,"f2":false,"z":null,"l":[1,"a",{"b":null}],"o":{"k":[]}}"#;
    let keys = [
        "s", "e", "lone", "n", "big", "f", "x", "tiny", "t", "f2", "z", "l", "o", "none",
    ];
    let paths: Vec<&[&str]> = keys.iter().map(std::slice::from_ref).collect();
    assert_same(properties, &paths);
    assert_same(
        properties,
        &[&[], &["o", "k"], &["s", "k"], &["z", "k"], &["o", "none"]],
    );
}

#[test]
fn many_keys_repeated_keys_and_escaped_keys() {
    let mut fields: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
    fields.push(r#""k3":"again""#.to_owned());
    fields.push(r#""k39":{"a":1,"a":2}"#.to_owned());
    let properties = format!("{{{}}}", fields.join(","));
    assert_same(
        &properties,
        &[&["k0"], &["k3"], &["k20"], &["k39", "a"], &["k40"]],
    );
    let escaped = r#"{"c\u0061rt":{"id":"c1"},"cart":{"i\u0064":"c2"},"total":5}"#;
    assert_same(
        escaped,
        &[&["cart"], &["cart", "id"], &["total"], &["cart", "x"]],
    );
    assert_eq!(
        both(escaped, &[path(&["cart", "id"])])[0].0,
        Lookup::Found(Value::str("c2"))
    );
}

#[test]
fn deep_values_are_cleared_as_before() {
    let deep = format!(r#"{{"a":{}{},"b":1}}"#, "[".repeat(300), "]".repeat(300));
    assert_same(&deep, &[&["a"], &["b"], &["a", "x"]]);
    assert_eq!(both(&deep, &[path(&["a"])])[0].0, Lookup::Cleared);
}

proptest::proptest! {
    #[test]
    fn lookups_agree_with_the_serde_json_reading(
        fields in proptest::collection::vec(
            (
                proptest::sample::select(vec!["a", "b", "ab", "c", "a\\u0062", "\\u0061"]),
                crate::io::json::tests::json_text(),
            ),
            0..6,
        ),
        paths in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(vec!["a", "b", "ab", "c", "bb"]), 0..4),
            1..6,
        ),
    ) {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let properties = format!("{{{}}}", fields.join(","));
        let paths: Vec<Vec<Arc<str>>> = paths.iter().map(|p| path(p)).collect();
        let at_once = all_at_once(&properties, &paths);
        for (((new, old), p), all) in both(&properties, &paths).into_iter().zip(&paths).zip(at_once) {
            proptest::prop_assert_eq!(&new, &old, "{} at {:?}", properties, p);
            proptest::prop_assert_eq!(all, old, "{} at {:?}, all at once", properties, p);
        }
    }
}
