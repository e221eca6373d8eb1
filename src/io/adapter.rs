//! Segment lines → runtime events. The payload (track properties or
//! identify traits) stays raw JSON: the runtime asks only for the paths the
//! program uses, and each is read with [`select_fields`] without building
//! the rest — events no journey cares about are never parsed past their
//! envelope, and the ones that are cost a few field scans, not a tree.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::segment::{MessageKind, RawEvent, select_fields};
use crate::runtime::{Event, EventKind, Lookup, Properties};
use crate::value::Value;

/// A raw JSON payload; `None` reads as `{}`.
pub struct Payload<'a> {
    raw: Option<&'a RawValue>,
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
        }
    }
}

impl Properties for Payload<'_> {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup {
        let Some(mut at) = self.raw else {
            return Lookup::Missing;
        };
        for key in path {
            // A non-object on the way (a `null` included) clears the path.
            if !at.get().trim_start().starts_with('{') {
                return Lookup::Cleared;
            }
            let mut found = [None];
            if select_fields(at, &[key], &mut found).is_err() {
                return Lookup::Cleared;
            }
            match found[0] {
                Some(next) => at = next,
                None => return Lookup::Missing,
            }
        }
        if at.get() == "null" {
            return Lookup::Cleared;
        }
        // The reader validated the whole line as JSON, so a slice of it
        // parses; `Cleared` is the safe reading should it ever not.
        match serde_json::from_str::<serde_json::Value>(at.get()) {
            Ok(v) => Lookup::Found(Value::from_json(&v)),
            Err(_) => Lookup::Cleared,
        }
    }
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
mod tests {
    use super::*;
    use crate::io::parse_line;
    use crate::value::Value;

    fn path(keys: &[&str]) -> Vec<Arc<str>> {
        keys.iter().map(|k| Arc::from(*k)).collect()
    }

    #[test]
    fn track_reads_properties_and_identify_reads_traits() {
        let line = r#"{"type":"track","userId":"u1","event":"cart_abandoned","properties":{"total":80,"cart":{"id":"c1"}},"timestamp":"2026-03-02T10:00:00Z","messageId":"m1"}"#;
        let raw = parse_line(line, 1).unwrap();
        let payload = Payload::of(&raw);
        let e = event(&raw, &payload);
        assert_eq!(e.kind, EventKind::Track);
        assert_eq!(
            (e.user_key, e.name, e.message_id),
            ("u1", "cart_abandoned", Some("m1"))
        );
        assert_eq!(
            e.properties.lookup(&path(&["total"])),
            Lookup::Found(Value::Number(80.0))
        );
        assert_eq!(
            e.properties.lookup(&path(&["cart", "id"])),
            Lookup::Found(Value::str("c1"))
        );
        assert_eq!(e.properties.lookup(&path(&["nope"])), Lookup::Missing);

        let line = r#"{"type":"identify","anonymousId":"a1","traits":{"email":null},"context":{"timezone":"Europe/Paris"},"timestamp":"2026-03-02T09:00:00Z"}"#;
        let raw = parse_line(line, 2).unwrap();
        let payload = Payload::of(&raw);
        let e = event(&raw, &payload);
        assert_eq!(e.kind, EventKind::Identify);
        assert_eq!(e.user_key, "a1");
        assert_eq!(e.context_timezone, Some("Europe/Paris"));
        assert_eq!(e.properties.lookup(&path(&["email"])), Lookup::Cleared);
    }

    #[test]
    fn a_missing_payload_says_nothing() {
        let line = r#"{"type":"track","userId":"u1","event":"app_opened","timestamp":"2026-03-02T10:00:00Z"}"#;
        let raw = parse_line(line, 1).unwrap();
        let payload = Payload::of(&raw);
        assert_eq!(
            event(&raw, &payload).properties.lookup(&path(&["x"])),
            Lookup::Missing
        );
    }
}
