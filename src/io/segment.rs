//! Segment NDJSON input: one line of JSON to a borrowed [`RawEvent`], keeping
//! `properties` and `traits` as unparsed JSON and skipping the rest of the
//! envelope (`context` but its `timezone`, `integrations`, ...) unbuilt.
//! Well-formed lines are read by the hand-written scanner of
//! [`crate::io::json`]; the others are read again by `serde_json`, which
//! words their errors.

mod fields;
mod reader;
mod timestamp;
mod top_level;

use std::borrow::Cow;
use std::fmt;

pub use super::json::RawJson;
pub use fields::select_fields;
pub(crate) use fields::select_fields_serde;
pub use reader::{DEFAULT_MAX_LINE_BYTES, EventReader};
pub use timestamp::{parse_timestamp_ms, write_timestamp_ms};

/// The `type` of a Segment message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Track,
    Identify,
    /// Accepted, counted and otherwise ignored, like the three below.
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageKind {
    /// The kind named by a message's `type`.
    pub fn from_name(name: &str) -> Option<MessageKind> {
        Some(match name {
            "track" => MessageKind::Track,
            "identify" => MessageKind::Identify,
            "page" => MessageKind::Page,
            "screen" => MessageKind::Screen,
            "group" => MessageKind::Group,
            "alias" => MessageKind::Alias,
            _ => return None,
        })
    }

    /// The name as written in `type`.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Track => "track",
            MessageKind::Identify => "identify",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Group => "group",
            MessageKind::Alias => "alias",
        }
    }

    /// Whether the runtime acts on this kind (`track` and `identify`).
    pub fn is_processed(self) -> bool {
        matches!(self, MessageKind::Track | MessageKind::Identify)
    }
}

/// One Segment message, borrowing from its line wherever the JSON text can be
/// used as it is (strings without escapes, `properties`, `traits`).
#[derive(Clone, Debug)]
pub struct RawEvent<'a> {
    pub kind: MessageKind,
    /// `userId`, else `anonymousId`; a number is kept as its JSON text.
    pub user_key: Cow<'a, str>,
    /// The track event's name; `None` for other kinds when absent.
    pub event: Option<Cow<'a, str>>,
    /// `timestamp` in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub message_id: Option<Cow<'a, str>>,
    /// The `properties` object as JSON text; `None` when absent or `null`.
    pub properties: Option<RawJson<'a>>,
    /// The `traits` object as JSON text; `None` when absent or `null`.
    pub traits: Option<RawJson<'a>>,
    /// `context.timezone` of an identify message, when it is a string
    /// (the runtime reads no other message's time zone: it fills the
    /// profile's); `None` for every other kind.
    pub context_timezone: Option<Cow<'a, str>>,
}

impl RawEvent<'_> {
    /// The event name, `""` when there is none.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or("")
    }

    /// `properties` as a JSON value for the slow path: `{}` when absent.
    pub fn properties_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        object_value(self.properties)
    }

    /// `traits` as a JSON value for the slow path: `{}` when absent.
    pub fn traits_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        object_value(self.traits)
    }
}

fn object_value(raw: Option<RawJson<'_>>) -> Result<serde_json::Value, serde_json::Error> {
    match raw {
        Some(raw) => serde_json::from_str(raw.get()),
        None => Ok(serde_json::Value::Object(serde_json::Map::new())),
    }
}

/// A line that is not a usable Segment message; the caller reports it and
/// goes on with the next line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// 1-based line number in the input.
    pub line: usize,
    /// Lowercase, no final period, field names in backticks.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for InputError {}

/// Whether a line holds nothing but whitespace (skipped without a report).
pub fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b.is_ascii_whitespace())
}

/// Parses one non-blank NDJSON line; `line_no` only labels the error.
#[inline]
pub fn parse_line(line: &str, line_no: usize) -> Result<RawEvent<'_>, InputError> {
    top_level::parse(line).map_err(|message| InputError {
        line: line_no,
        message,
    })
}

#[cfg(test)]
mod tests;
