//! Reads a few top-level fields of a JSON object (an event's `properties`)
//! by name, leaving the others unbuilt: the fast path when a loaded program
//! needs two fields of a ten-field payload. The scanner of
//! [`crate::io::json`] does the work; an object it declines (an escaped key)
//! is read by `serde_json`, which decodes keys.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::io::json::{Decline, RawJson, Scanner};

/// Fills `out[i]` with the raw value of the field `names[i]` of `object`, or
/// `None` when the object lacks it; entries of `out` past `names` are left
/// alone. A field named twice keeps its last value, as JSON objects do.
///
/// Fails only when `object` is not a JSON object.
pub fn select_fields<'a>(
    object: RawJson<'a>,
    names: &[&str],
    out: &mut [Option<RawJson<'a>>],
) -> Result<(), serde_json::Error> {
    match scan_fields(object, names, out) {
        Ok(()) => Ok(()),
        Err(Decline) => select_fields_serde(object, names, out),
    }
}

fn scan_fields<'a>(
    object: RawJson<'a>,
    names: &[&str],
    out: &mut [Option<RawJson<'a>>],
) -> Result<(), Decline> {
    for slot in out.iter_mut().take(names.len()) {
        *slot = None;
    }
    Scanner::new(object.get()).entries(|key, value| {
        let index = names.iter().position(|name| *name == key);
        if let Some(slot) = index.and_then(|i| out.get_mut(i)) {
            *slot = Some(value);
        }
    })
}

/// [`select_fields`] by `serde_json` alone: the reading every fast path
/// must agree with.
pub(crate) fn select_fields_serde<'a>(
    object: RawJson<'a>,
    names: &[&str],
    out: &mut [Option<RawJson<'a>>],
) -> Result<(), serde_json::Error> {
    for slot in out.iter_mut().take(names.len()) {
        *slot = None;
    }
    let mut de = serde_json::Deserializer::from_str(object.get());
    de.deserialize_map(SelectVisitor { names, out })
}

struct SelectVisitor<'n, 'o, 'a> {
    names: &'n [&'n str],
    out: &'o mut [Option<RawJson<'a>>],
}

impl<'de: 'a, 'a> Visitor<'de> for SelectVisitor<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(index) = map.next_key_seed(KeyIndex(self.names))? {
            match index.and_then(|i| self.out.get_mut(i)) {
                Some(slot) => {
                    let value: &'a RawValue = map.next_value()?;
                    // `serde_json` validated the value while capturing it.
                    *slot = Some(RawJson::new_unchecked(value.get()));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, as its position among the wanted names.
struct KeyIndex<'n>(&'n [&'n str]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawJson<'_> {
        crate::io::json::validate(text).unwrap_or_else(|_| panic!("test input {text}"))
    }

    #[test]
    fn picks_the_named_fields_and_skips_the_rest() {
        let object =
            raw(r#"{"cart_id":"c1","meta":{"a":[1,{"b":2}]},"total":80.5,"items":["x","y"]}"#);
        let mut out = [None; 3];
        select_fields(object, &["total", "cart_id", "missing"], &mut out).unwrap();
        let texts: Vec<_> = out.iter().map(|v| v.map(RawJson::get)).collect();
        assert_eq!(texts, [Some("80.5"), Some(r#""c1""#), None]);
    }

    #[test]
    fn escaped_keys_match_their_text() {
        let object = raw(r#"{"ca\u0072t_id":"c9"}"#);
        let mut out = [None; 1];
        select_fields(object, &["cart_id"], &mut out).unwrap();
        assert_eq!(out[0].map(RawJson::get), Some(r#""c9""#));
    }

    #[test]
    fn stale_results_are_cleared_and_non_objects_fail() {
        let first = raw(r#"{"a":1}"#);
        let mut out = [None; 1];
        select_fields(first, &["a"], &mut out).unwrap();
        select_fields(raw("{}"), &["a"], &mut out).unwrap();
        assert!(out[0].is_none());
        assert!(select_fields(raw("[1]"), &["a"], &mut out).is_err());
    }
}
