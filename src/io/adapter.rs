//! Segment lines → runtime events. The payload (track properties or
//! identify traits) stays raw JSON: the runtime asks only for the paths the
//! program uses. The first lookup indexes the payload's top-level keys once
//! (one scan with [`crate::io::json`], no value built), so the next are a
//! short search; a nested path scans the nested object it goes through, and
//! only the value found is decoded — scalars by hand, lists and objects by
//! `serde_json`. Events no journey cares about are never read past their
//! envelope. A payload with an escaped key is read the `serde_json` way,
//! which decodes keys.

use std::cell::OnceCell;
use std::sync::Arc;

use super::json::{self, Decline, RawJson, Scanner};
use super::segment::{MessageKind, RawEvent};
use crate::runtime::event::{PathNode, PathTree};
use crate::runtime::{Event, EventKind, Lookup, Properties};
use crate::value::Value;

/// A raw JSON payload; `None` reads as `{}`.
pub struct Payload<'a> {
    raw: Option<RawJson<'a>>,
    /// Built on the first lookup.
    index: OnceCell<Keys<'a>>,
}

impl<'a> Payload<'a> {
    /// The payload the runtime reads for this event: traits for an
    /// identify, properties otherwise.
    pub fn of(raw: &RawEvent<'a>) -> Payload<'a> {
        Payload {
            raw: match raw.kind {
                MessageKind::Identify => raw.traits,
                _ => raw.properties,
            },
            index: OnceCell::new(),
        }
    }
}

impl Properties for Payload<'_> {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup {
        let Some(raw) = self.raw else {
            return Lookup::Missing;
        };
        let Some((first, rest)) = path.split_first() else {
            return decode(raw);
        };
        let keys = self.index.get_or_init(|| Keys::index(raw));
        if keys.declined {
            return lookup_serde(raw, path);
        }
        let Some(mut at) = keys.find(first) else {
            return Lookup::Missing;
        };
        for (i, key) in rest.iter().enumerate() {
            // A non-object on the way (a `null` included) clears the path.
            if !at.get().starts_with('{') {
                return Lookup::Cleared;
            }
            match json::field(at, key) {
                Ok(Some(next)) => at = next,
                Ok(None) => return Lookup::Missing,
                Err(Decline) => return lookup_serde(at, &rest[i..]),
            }
        }
        decode(at)
    }

    fn lookup_all(&self, paths: &PathTree, found: &mut dyn FnMut(usize, Lookup)) {
        if let Some(raw) = self.raw {
            self.walk(paths, paths.root(), raw, found);
        }
    }
}

/// How many keys of one object [`Payload::walk`] tracks without allocating.
const INLINE_CHILDREN: usize = 32;

impl Payload<'_> {
    /// The paths at and below `node`, whose value is `at`: one scan of each
    /// object on the way, keeping the last value of a repeated key, as
    /// [`Properties::lookup`] does.
    fn walk(
        &self,
        tree: &PathTree,
        node: &PathNode,
        at: RawJson<'_>,
        found: &mut dyn FnMut(usize, Lookup),
    ) {
        for &index in &node.ends {
            found(index, decode(at));
        }
        if node.children.is_empty() {
            return;
        }
        // A non-object (a `null` included) clears the paths through it.
        if !at.get().starts_with('{') {
            for &index in &node.below {
                found(index, Lookup::Cleared);
            }
            return;
        }
        let n = node.children.len();
        let mut inline = [None; INLINE_CHILDREN];
        let mut heap = Vec::new();
        let values: &mut [Option<RawJson<'_>>] = if n <= INLINE_CHILDREN {
            &mut inline[..n]
        } else {
            heap.resize(n, None);
            &mut heap
        };
        let scanned = Scanner::new(at.get()).entries(|key, value| {
            if let Some(i) = node.position(key) {
                values[i] = Some(value);
            }
        });
        if scanned.is_err() {
            // An escaped key (or text the scanner leaves to `serde_json`):
            // each path the one-at-a-time way, which handles it.
            for &index in &node.below {
                match self.lookup(&tree.paths()[index]) {
                    Lookup::Missing => {}
                    lookup => found(index, lookup),
                }
            }
            return;
        }
        for (value, &(_, child)) in values.iter().zip(&node.children) {
            if let Some(value) = *value {
                self.walk(tree, tree.node(child), value, found);
            }
        }
    }
}

/// How many top-level keys are indexed without allocating.
const INLINE_KEYS: usize = 16;

/// A payload's top-level keys and their raw values, in text order.
struct Keys<'a> {
    inline: [(&'a str, RawJson<'a>); INLINE_KEYS],
    len: usize,
    more: Vec<(&'a str, RawJson<'a>)>,
    /// A key has escapes (or the scanner declined): lookups go through
    /// `serde_json`.
    declined: bool,
}

impl<'a> Keys<'a> {
    fn index(raw: RawJson<'a>) -> Keys<'a> {
        let mut keys = Keys {
            inline: [("", RawJson::new_unchecked("null")); INLINE_KEYS],
            len: 0,
            more: Vec::new(),
            declined: false,
        };
        if keys.scan(raw).is_err() {
            keys.declined = true;
        }
        keys
    }

    fn scan(&mut self, raw: RawJson<'a>) -> Result<(), Decline> {
        Scanner::new(raw.get()).entries(|key, value| match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = (key, value);
                self.len += 1;
            }
            None => self.more.push((key, value)),
        })
    }

    /// The value of `key`; the last one when it is repeated.
    fn find(&self, key: &str) -> Option<RawJson<'a>> {
        let inline = self.inline.get(..self.len).unwrap_or_default();
        self.more
            .iter()
            .rev()
            .chain(inline.iter().rev())
            .find(|(k, _)| *k == key)
            .map(|&(_, value)| value)
    }
}

/// The value at the end of a path, read from its raw text.
fn decode(raw: RawJson<'_>) -> Lookup {
    let text = raw.get();
    match text {
        "null" => return Lookup::Cleared,
        "true" => return Lookup::Found(Value::Bool(true)),
        "false" => return Lookup::Found(Value::Bool(false)),
        _ => {}
    }
    match text.as_bytes().first() {
        Some(b'"') => match json::decode_str(raw) {
            Some(s) => Lookup::Found(Value::str(&s)),
            None => Lookup::Cleared,
        },
        // `serde_json` (with `float_roundtrip`) and the standard library
        // both round a decimal to the nearest `f64`; a number too large for
        // one is an error there and infinite here.
        Some(b'-' | b'0'..=b'9') => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Lookup::Found(Value::Number(n)),
            _ => Lookup::Cleared,
        },
        _ => decode_serde(raw),
    }
}

/// A list or an object (or anything unexpected), through `serde_json`.
fn decode_serde(raw: RawJson<'_>) -> Lookup {
    // The reader validated the whole line as JSON, so a slice of it
    // parses; `Cleared` is the safe reading should it ever not.
    if raw.get() == "null" {
        return Lookup::Cleared;
    }
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(v) => Lookup::Found(Value::from_json(&v)),
        Err(_) => Lookup::Cleared,
    }
}

/// The lookup by `serde_json` alone, from `at` down `path`.
fn lookup_serde(mut at: RawJson<'_>, path: &[Arc<str>]) -> Lookup {
    for key in path {
        if !at.get().trim_start().starts_with('{') {
            return Lookup::Cleared;
        }
        let mut found = [None];
        if super::segment::select_fields_serde(at, &[key], &mut found).is_err() {
            return Lookup::Cleared;
        }
        match found[0] {
            Some(next) => at = next,
            None => return Lookup::Missing,
        }
    }
    decode_serde(at)
}

/// The runtime's view of a parsed line.
pub fn event<'a>(raw: &'a RawEvent<'a>, payload: &'a Payload<'a>) -> Event<'a> {
    Event {
        kind: match raw.kind {
            MessageKind::Track => EventKind::Track,
            MessageKind::Identify => EventKind::Identify,
            _ => EventKind::Other,
        },
        user_key: &raw.user_key,
        name: raw.event_name(),
        timestamp_ms: raw.timestamp_ms,
        message_id: raw.message_id.as_deref(),
        properties: payload,
        context_timezone: raw.context_timezone.as_deref(),
    }
}

#[cfg(test)]
mod tests;
