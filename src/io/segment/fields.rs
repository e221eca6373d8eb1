//! Reads a few top-level fields of a JSON object (an event's `properties`)
//! by name, leaving the others unbuilt: the fast path when a loaded program
//! needs two fields of a ten-field payload.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Fills `out[i]` with the raw value of the field `names[i]` of `object`, or
/// `None` when the object lacks it; entries of `out` past `names` are left
/// alone. A field named twice keeps its last value, as JSON objects do.
///
/// Fails only when `object` is not a JSON object.
pub fn select_fields<'a>(
    object: &'a RawValue,
    names: &[&str],
    out: &mut [Option<&'a RawValue>],
) -> Result<(), serde_json::Error> {
    for slot in out.iter_mut().take(names.len()) {
        *slot = None;
    }
    let mut de = serde_json::Deserializer::from_str(object.get());
    de.deserialize_map(SelectVisitor { names, out })
}

struct SelectVisitor<'n, 'o, 'a> {
    names: &'n [&'n str],
    out: &'o mut [Option<&'a RawValue>],
}

impl<'de: 'a, 'a> Visitor<'de> for SelectVisitor<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(index) = map.next_key_seed(KeyIndex(self.names))? {
            match index.and_then(|i| self.out.get_mut(i)) {
                Some(slot) => *slot = Some(map.next_value()?),
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

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("test input {text}: {e}"))
    }

    #[test]
    fn picks_the_named_fields_and_skips_the_rest() {
        let object =
            raw(r#"{"cart_id":"c1","meta":{"a":[1,{"b":2}]},"total":80.5,"items":["x","y"]}"#);
        let mut out = [None; 3];
        select_fields(object, &["total", "cart_id", "missing"], &mut out).unwrap();
        let texts: Vec<_> = out.iter().map(|v| v.map(RawValue::get)).collect();
        assert_eq!(texts, [Some("80.5"), Some(r#""c1""#), None]);
    }

    #[test]
    fn escaped_keys_match_their_text() {
        let object = raw(r#"{"ca\u0072t_id":"c9"}"#);
        let mut out = [None; 1];
        select_fields(object, &["cart_id"], &mut out).unwrap();
        assert_eq!(out[0].map(RawValue::get), Some(r#""c9""#));
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
