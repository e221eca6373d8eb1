//! The runtime's input: one event as the core sees it, whatever format it
//! was read from, with its payload behind [`Properties`] so a reader can hand
//! over only the few fields the program needs.

use std::sync::Arc;

use crate::compile::program::FieldPath;
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

    /// Every path of `paths` this payload says something about, as
    /// `(index, lookup)` with `lookup` never [`Lookup::Missing`], in no
    /// particular order: what [`Properties::lookup`] gives for each path.
    /// An identify reads every profile slot this way; a reader whose
    /// payload is text overrides it to read the text once rather than once
    /// a path.
    fn lookup_all(&self, paths: &PathTree, found: &mut dyn FnMut(usize, Lookup)) {
        for (index, path) in paths.paths().iter().enumerate() {
            match self.lookup(path) {
                Lookup::Missing => {}
                lookup => found(index, lookup),
            }
        }
    }
}

/// A list of paths (the profile's slots) as a tree of their keys, so that a
/// payload can be walked once for all of them.
#[derive(Clone, Debug)]
pub struct PathTree {
    paths: Vec<FieldPath>,
    /// Node 0 is the root, the payload itself.
    nodes: Vec<PathNode>,
}

/// One key of a [`PathTree`].
#[derive(Clone, Debug, Default)]
pub struct PathNode {
    /// The paths that end here, by index (more than one only when the
    /// list repeats a path).
    pub ends: Vec<usize>,
    /// The keys below, with their node.
    pub children: Vec<(Arc<str>, usize)>,
    /// The paths that end below this node (not at it), by index,
    /// ascending: those a non-object here clears.
    pub below: Vec<usize>,
}

impl PathTree {
    pub fn new(paths: Vec<FieldPath>) -> PathTree {
        let mut nodes = vec![PathNode::default()];
        for (index, path) in paths.iter().enumerate() {
            let mut at = 0;
            for key in path {
                nodes[at].below.push(index);
                let next = match nodes[at].position(key) {
                    Some(i) => nodes[at].children[i].1,
                    None => {
                        let node = nodes.len();
                        nodes.push(PathNode::default());
                        nodes[at].children.push((key.clone(), node));
                        node
                    }
                };
                at = next;
            }
            nodes[at].ends.push(index);
        }
        PathTree { paths, nodes }
    }

    /// The paths, by index.
    pub fn paths(&self) -> &[FieldPath] {
        &self.paths
    }

    /// The root: the payload itself.
    pub fn root(&self) -> &PathNode {
        &self.nodes[0]
    }

    pub fn node(&self, id: usize) -> &PathNode {
        &self.nodes[id]
    }
}

impl PathNode {
    /// Where `key` is in [`PathNode::children`] (a few short keys; `str`
    /// equality compares lengths before bytes).
    pub fn position(&self, key: &str) -> Option<usize> {
        self.children.iter().position(|(k, _)| **k == *key)
    }
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
