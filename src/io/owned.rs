//! Segment messages read into the runtime's owned events
//! ([`OwnedEvent`]) for the tokio service ([`crate::runtime::service`]):
//! the input format stays here, out of the runtime.

use std::fmt;
use std::sync::Arc;

use super::{MessageKind, RawEvent};
use crate::runtime::EventKind;
use crate::runtime::service::OwnedEvent;

impl OwnedEvent {
    /// Reads one Segment message (LANGUAGE.md §6.1) with the same reader
    /// as `journey simulate` ([`crate::io::parse_line`]), so a service and
    /// the command line accept and refuse exactly the same lines.
    pub fn from_line(line: &str) -> Result<OwnedEvent, MalformedEvent> {
        let raw = crate::io::parse_line(line, 0).map_err(|e| MalformedEvent(e.message))?;
        OwnedEvent::from_raw(&raw)
    }

    /// [`OwnedEvent::from_line`] for a message already parsed as JSON.
    pub fn from_segment(message: &serde_json::Value) -> Result<OwnedEvent, MalformedEvent> {
        OwnedEvent::from_line(&message.to_string())
    }

    /// Owns a line read by [`crate::io::EventReader`]; the payload (traits
    /// for an identify, properties otherwise) must be a JSON object.
    pub fn from_raw(raw: &RawEvent<'_>) -> Result<OwnedEvent, MalformedEvent> {
        let (payload, key) = match raw.kind {
            MessageKind::Identify => (raw.traits, "traits"),
            _ => (raw.properties, "properties"),
        };
        let properties = match payload.map(|p| serde_json::from_str(p.get())) {
            None | Some(Ok(serde_json::Value::Null)) => {
                serde_json::Value::Object(Default::default())
            }
            Some(Ok(object @ serde_json::Value::Object(_))) => object,
            Some(_) => return Err(MalformedEvent(format!("`{key}` is not an object"))),
        };
        Ok(OwnedEvent {
            kind: match raw.kind {
                MessageKind::Track => EventKind::Track,
                MessageKind::Identify => EventKind::Identify,
                _ => EventKind::Other,
            },
            user_key: Arc::from(&*raw.user_key),
            name: Arc::from(raw.event_name()),
            timestamp_ms: raw.timestamp_ms,
            message_id: raw.message_id.as_deref().map(Arc::from),
            properties,
            context_timezone: raw.context_timezone.as_deref().map(Arc::from),
        })
    }
}

/// Why a Segment message could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedEvent(pub String);

impl fmt::Display for MalformedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MalformedEvent {}
