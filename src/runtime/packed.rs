//! Values packed into one byte buffer: the trigger values an instance
//! keeps, and a customer's profile.
//!
//! A waiting instance holds the trigger fields its journey reads for as long
//! as it lives, often days. As [`Value`]s, a cart id and a two-item list cost
//! a slice of 24-byte values plus one allocation per string and per list —
//! more than the rest of the instance. Packed, they cost their bytes and one
//! allocation. A value is unpacked when it is read (a goal or exit
//! condition, a template), which happens a few times per instance.
//!
//! A profile is the same trade at a larger scale: a slot a value (most of
//! them `null`, most of the rest a short string or a number) cost 24 bytes
//! each and text over 22 bytes an allocation apart; packed, a `null` is one
//! byte and a 30-byte email 32. Reads walk the entries before the slot
//! (a tag byte each, a length for text), which costs less than the cache
//! lines a slot a value spread the profile over. Writes (an `identify`, a
//! `set`) re-pack it.
//!
//! Layout: one entry per value, each a tag byte and its payload; strings and
//! object keys are a LEB128 length and UTF-8 bytes, lists and objects a
//! LEB128 count and their entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::Value;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const STRING: u8 = 4;
const TIMESTAMP: u8 = 5;
const DURATION: u8 = 6;
const LIST: u8 = 7;
const OBJECT: u8 = 8;

/// A packed sequence of values, read by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packed(Box<[u8]>);

impl Packed {
    pub fn new(values: &[Value]) -> Packed {
        let mut out = Vec::new();
        for value in values {
            pack(value, &mut out);
        }
        Packed(Box::from(&out[..]))
    }

    /// The value at `index`; `None` past the end.
    pub fn get(&self, index: usize) -> Option<Value> {
        let mut reader = Reader { bytes: &self.0 };
        for _ in 0..index {
            reader.skip()?;
        }
        reader.value()
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        let mut reader = Reader { bytes: &self.0 };
        let mut n = 0;
        while !reader.bytes.is_empty() && reader.skip().is_some() {
            n += 1;
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the value at `index` is `null` or past the end.
    pub fn is_null(&self, index: usize) -> bool {
        let mut reader = Reader { bytes: &self.0 };
        for _ in 0..index {
            if reader.skip().is_none() {
                return true;
            }
        }
        reader.bytes.first().is_none_or(|&tag| tag == NULL)
    }

    /// Whether the value at `index` is `null`, `""` or past the end (an
    /// address no one can be reached at), read without unpacking it.
    pub fn is_blank(&self, index: usize) -> bool {
        let mut reader = Reader { bytes: &self.0 };
        for _ in 0..index {
            if reader.skip().is_none() {
                return true;
            }
        }
        matches!(reader.bytes, [] | [NULL, ..] | [STRING, 0, ..])
    }

    /// Sets the value at `index`, with `null`s before it when it is past
    /// the end.
    pub fn set(&mut self, index: usize, value: &Value) {
        let mut reader = Reader { bytes: &self.0 };
        let mut at = 0;
        let mut len = 0;
        while at < index && !reader.bytes.is_empty() && reader.skip().is_some() {
            at += 1;
            len = self.0.len() - reader.bytes.len();
        }
        let mut entry = Vec::new();
        pack(value, &mut entry);
        let rest = if at == index && reader.skip().is_some() {
            reader.bytes
        } else {
            &[]
        };
        let nulls = index - at;
        let mut out = Vec::with_capacity(len + nulls + entry.len() + rest.len());
        out.extend_from_slice(&self.0[..len]);
        out.resize(len + nulls, NULL);
        out.extend_from_slice(&entry);
        out.extend_from_slice(rest);
        self.0 = out.into_boxed_slice();
    }

    /// Every value, in order.
    pub fn to_vec(&self) -> Vec<Value> {
        let mut out = Vec::new();
        self.unpack_into(&mut out);
        out
    }

    /// Every value, in order, pushed to `out`.
    pub fn unpack_into(&self, out: &mut Vec<Value>) {
        let mut reader = Reader { bytes: &self.0 };
        while !reader.bytes.is_empty() {
            match reader.value() {
                Some(v) => out.push(v),
                None => break,
            }
        }
    }

    /// The heap bytes the values take.
    pub fn heap_size(&self) -> usize {
        self.0.len()
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Packed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_vec().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Value>::deserialize(deserializer).map(|values| Packed::new(&values))
    }
}

fn pack(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            pack_str(s, out);
        }
        Value::Timestamp(ms) => {
            out.push(TIMESTAMP);
            out.extend_from_slice(&ms.to_le_bytes());
        }
        Value::Duration(ms) => {
            out.push(DURATION);
            out.extend_from_slice(&ms.to_le_bytes());
        }
        Value::List(items) => {
            out.push(LIST);
            pack_len(items.len(), out);
            for item in items.iter() {
                pack(item, out);
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            pack_len(map.len(), out);
            for (key, item) in map.iter() {
                pack_str(key, out);
                pack(item, out);
            }
        }
    }
}

fn pack_str(s: &str, out: &mut Vec<u8>) {
    pack_len(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn pack_len(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads entries off the front of a buffer [`pack`] wrote; `None` only on a
/// buffer it did not write (a corrupted snapshot cannot build one: they are
/// deserialized as values and packed again).
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            NUMBER => Value::Number(f64::from_le_bytes(self.eight()?)),
            STRING => Value::str(self.str()?),
            TIMESTAMP => Value::Timestamp(i64::from_le_bytes(self.eight()?)),
            DURATION => Value::Duration(i64::from_le_bytes(self.eight()?)),
            LIST => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n.min(self.bytes.len()));
                for _ in 0..n {
                    items.push(self.value()?);
                }
                Value::List(Arc::from(items))
            }
            OBJECT => {
                let n = self.len()?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let key: Arc<str> = Arc::from(self.str()?);
                    map.insert(key, self.value()?);
                }
                Value::Object(Arc::new(map))
            }
            _ => return None,
        })
    }

    fn skip(&mut self) -> Option<()> {
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            NUMBER | TIMESTAMP | DURATION => {
                self.take(8)?;
            }
            STRING => {
                let n = self.len()?;
                self.take(n)?;
            }
            LIST => {
                for _ in 0..self.len()? {
                    self.skip()?;
                }
            }
            OBJECT => {
                for _ in 0..self.len()? {
                    let n = self.len()?;
                    self.take(n)?;
                    self.skip()?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(Value::Number),
            ".{0,200}".prop_map(|s| Value::str(&s)),
            any::<i64>().prop_map(Value::Timestamp),
            any::<i64>().prop_map(Value::Duration),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| Value::List(Arc::from(items))),
                proptest::collection::btree_map("[a-z]{0,4}", inner, 0..4).prop_map(|map| {
                    Value::Object(Arc::new(
                        map.into_iter().map(|(k, v)| (Arc::from(k), v)).collect(),
                    ))
                }),
            ]
        })
    }

    /// Equal as values, with NaN equal to itself (packing keeps the bits).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn every_value_reads_back_by_index(values in proptest::collection::vec(value(), 0..6)) {
            let packed = Packed::new(&values);
            for (i, v) in values.iter().enumerate() {
                let got = packed.get(i);
                prop_assert!(got.as_ref().is_some_and(|g| same(g, v)), "{i}: {got:?} != {v:?}");
            }
            prop_assert_eq!(packed.get(values.len()), None);
            let all = packed.to_vec();
            prop_assert!(all.len() == values.len() && all.iter().zip(&values).all(|(a, b)| same(a, b)));
            prop_assert_eq!(packed.len(), values.len());
            for i in 0..values.len() + 2 {
                prop_assert_eq!(packed.is_null(i), values.get(i).is_none_or(Value::is_null));
                let blank = match values.get(i) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(_) => false,
                };
                prop_assert_eq!(packed.is_blank(i), blank);
            }
        }

        /// Setting a value packs the same bytes as setting it in a list of
        /// values (grown with `null`s) and packing that.
        #[test]
        fn set_is_set_in_the_values(
            values in proptest::collection::vec(value(), 0..6),
            index in 0usize..9,
            new in value(),
        ) {
            let mut packed = Packed::new(&values);
            packed.set(index, &new);
            let mut expected = values.clone();
            if expected.len() <= index {
                expected.resize(index + 1, Value::Null);
            }
            expected[index] = new;
            let want = Packed::new(&expected);
            prop_assert_eq!(packed.bytes(), want.bytes());
            prop_assert_eq!(packed.len(), expected.len());
        }
    }

    #[test]
    fn a_cart_trigger_packs_small() {
        let values = [
            Value::str("c-12345"),
            Value::Number(80.0),
            Value::List(Arc::from(vec![Value::str("p1"), Value::str("p2")])),
        ];
        let packed = Packed::new(&values);
        assert_eq!(packed.heap_size(), 9 + 9 + 2 + 4 + 4);
        let json = serde_json::to_string(&packed).unwrap();
        let back: Packed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, packed);
    }
}
