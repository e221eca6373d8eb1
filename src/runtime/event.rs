//! The runtime's input: one event as the core sees it, whatever format it
//! was read from, with its payload behind [`Properties`] so a reader can hand
//! over only the few fields the program needs.

use std::sync::Arc;

use crate::value::{self, Value};

/// What a message asks of the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Track,
    Identify,
    /// `page`, `screen`, `group`, `alias`: counted and otherwise ignored.
    Other,
}

/// One input event. `properties` holds the track properties or, for an
/// identify, the traits.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub user_key: &'a str,
    /// The track event's name (`""` for other kinds).
    pub name: &'a str,
    pub timestamp_ms: i64,
    pub message_id: Option<&'a str>,
    pub properties: &'a dyn Properties,
    /// `context.timezone`, filling `profile.timezone` on identify when absent.
    pub context_timezone: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A track event with JSON properties.
    pub fn track(
        user_key: &'a str,
        name: &'a str,
        timestamp_ms: i64,
        properties: &'a serde_json::Value,
    ) -> Event<'a> {
        Event {
            kind: EventKind::Track,
            user_key,
            name,
            timestamp_ms,
            message_id: None,
            properties,
            context_timezone: None,
        }
    }

    /// An identify event with JSON traits.
    pub fn identify(
        user_key: &'a str,
        timestamp_ms: i64,
        traits: &'a serde_json::Value,
    ) -> Event<'a> {
        Event {
            kind: EventKind::Identify,
            user_key,
            name: "",
            timestamp_ms,
            message_id: None,
            properties: traits,
            context_timezone: None,
        }
    }

    pub fn with_message_id(mut self, id: &'a str) -> Event<'a> {
        self.message_id = Some(id);
        self
    }
}

/// What a payload holds at a path.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// A key on the way is absent: nothing said about this path.
    Missing,
    /// A `null`, or a value that is not an object, sits at or above the path:
    /// the path is cleared.
    Cleared,
    Found(Value),
}

impl Lookup {
    /// The value read as an event field: absent and cleared are both `null`.
    pub fn into_value(self) -> Value {
        match self {
            Lookup::Found(v) => v,
            Lookup::Missing | Lookup::Cleared => Value::Null,
        }
    }
}

/// An event payload (properties or traits) that can be read by path. The
/// runtime asks only for the paths the program uses.
pub trait Properties {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup;
}

/// An empty payload.
pub struct NoProperties;

impl Properties for NoProperties {
    fn lookup(&self, _path: &[Arc<str>]) -> Lookup {
        Lookup::Missing
    }
}

impl Properties for serde_json::Value {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup {
        let mut at = self;
        for key in path {
            match at {
                serde_json::Value::Object(map) => match map.get(&**key) {
                    Some(next) => at = next,
                    None => return Lookup::Missing,
                },
                _ => return Lookup::Cleared,
            }
        }
        if at.is_null() {
            Lookup::Cleared
        } else {
            Lookup::Found(Value::from_json(at))
        }
    }
}

impl Properties for Value {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup {
        let mut at = self;
        for key in path {
            match at {
                Value::Object(map) => match map.get(&**key) {
                    Some(next) => at = next,
                    None => return Lookup::Missing,
                },
                _ => return Lookup::Cleared,
            }
        }
        if at.is_null() {
            Lookup::Cleared
        } else {
            Lookup::Found(at.clone())
        }
    }
}

/// A string property read as a timestamp where the program expects one.
pub(crate) fn as_timestamp(v: Value) -> Value {
    match &v {
        Value::String(s) => value::parse_timestamp(s).map_or(v, Value::Timestamp),
        _ => v,
    }
}
