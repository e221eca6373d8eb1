//! The trigger values an instance keeps, packed into one byte buffer.
//!
//! A waiting instance holds the trigger fields its journey reads for as long
//! as it lives, often days. As [`Value`]s, a cart id and a two-item list cost
//! a slice of 24-byte values plus one allocation per string and per list —
//! more than the rest of the instance. Packed, they cost their bytes and one
//! allocation. A value is unpacked when it is read (a goal or exit
//! condition, a template), which happens a few times per instance.
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
        Packed(out.into_boxed_slice())
    }

    /// The value at `index`; `None` past the end.
    pub fn get(&self, index: usize) -> Option<Value> {
        let mut reader = Reader { bytes: &self.0 };
        for _ in 0..index {
            reader.skip()?;
        }
        reader.value()
    }

    /// Every value, in order.
    pub fn to_vec(&self) -> Vec<Value> {
        let mut reader = Reader { bytes: &self.0 };
        let mut out = Vec::new();
        while !reader.bytes.is_empty() {
            match reader.value() {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
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
