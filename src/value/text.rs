//! [`Str`]: the text of a string [`Value`](super::Value). Short text (most
//! profile and event values: names, countries, time zones, plans, ids of
//! products) sits in the value itself; longer text is shared behind an
//! `Arc`. A short string costs no allocation and no pointer to follow, and
//! a `Value` stays 24 bytes either way.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Immutable text; equality, order and hash are those of the `str`.
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Shared(Arc<str>),
}

/// Text of at most [`Str::INLINE`] bytes, in place.
///
/// Invariant: `bytes[..len]` is valid UTF-8 (it is copied from a `&str`,
/// whole), and `len <= Str::INLINE`.
#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    bytes: [u8; Str::INLINE],
}

impl Str {
    /// The longest text kept in place: what fits beside the tag in the 24
    /// bytes a `Value` takes anyway.
    pub const INLINE: usize = 22;

    pub fn new(text: &str) -> Str {
        if text.len() <= Str::INLINE {
            let mut bytes = [0; Str::INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Str(Repr::Inline(Inline {
                len: text.len() as u8,
                bytes,
            }))
        } else {
            Str(Repr::Shared(Arc::from(text)))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(inline) => {
                let bytes = &inline.bytes[..usize::from(inline.len)];
                // SAFETY: `bytes` is a whole `&str` copied in by `Str::new`
                // (the only place an `Inline` is made, fields private): valid
                // UTF-8, by the invariant on `Inline`.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(text) => text,
        }
    }
}

impl Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    fn from(text: &str) -> Str {
        Str::new(text)
    }
}

impl From<String> for Str {
    fn from(text: String) -> Str {
        Str::new(&text)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON string, as `Arc<str>` was: snapshots read and write the same text.
impl Serialize for Str {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Str, D::Error> {
        String::deserialize(deserializer).map(Str::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_stays_three_words() {
        assert_eq!(std::mem::size_of::<Str>(), 24);
        assert_eq!(std::mem::size_of::<super::super::Value>(), 24);
    }

    #[test]
    fn text_round_trips_at_every_length_around_the_inline_limit() {
        let limit = Str::INLINE;
        let mut texts: Vec<String> = (limit - 2..=limit + 2).map(|n| "x".repeat(n)).collect();
        // Two-byte characters, so a character ends exactly at the limit,
        // and one ends a byte past it.
        texts.push("é".repeat(limit / 2));
        texts.push(format!("a{}", "é".repeat(limit / 2)));
        texts.push(String::new());
        for text in &texts {
            let s = Str::new(text);
            assert_eq!(s.as_str(), text);
            assert_eq!(
                matches!(s.0, Repr::Inline(_)),
                text.len() <= limit,
                "{text:?}"
            );
            assert_eq!(Str::from(text.clone()), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            let back: Str = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_str(), text);
        }
    }

    #[test]
    fn order_and_equality_are_the_texts_whatever_the_storage() {
        let short = Str::new("b");
        let long = Str::new("a much longer text than fits in place");
        assert!(long < short);
        assert_eq!(
            long,
            Str::from(String::from("a much longer text than fits in place"))
        );
        assert_ne!(short, Str::new("b "));
        assert_eq!(format!("{short:?}"), "\"b\"");
    }

    #[test]
    fn escaped_json_text_is_read_unescaped() {
        let s: Str = serde_json::from_str(r#""tab\there""#).unwrap();
        assert_eq!(&*s, "tab\there");
    }
}
