//! A minimal Segment → runtime adapter for the benchmark: a parsed
//! [`RawEvent`] becomes a runtime [`Event`] whose payload stays raw JSON
//! text, read field by field (only the paths the program asks for) with
//! `select_fields`.

use std::sync::Arc;

use journey::io::segment::{MessageKind, RawEvent, select_fields};
use journey::runtime::{Event, EventKind, Lookup, Properties};
use journey::value::Value;
use serde_json::value::RawValue;

/// A payload (`properties` or `traits`) as unparsed JSON; `None` reads as `{}`.
pub struct RawProps<'a>(pub Option<&'a RawValue>);

impl Properties for RawProps<'_> {
    fn lookup(&self, path: &[Arc<str>]) -> Lookup {
        let Some(mut at) = self.0 else {
            return Lookup::Missing;
        };
        for key in path {
            if !at.get().trim_start().starts_with('{') {
                return Lookup::Cleared;
            }
            let mut out = [None];
            if select_fields(at, &[key], &mut out).is_err() {
                return Lookup::Cleared;
            }
            match out[0] {
                Some(next) => at = next,
                None => return Lookup::Missing,
            }
        }
        if at.get() == "null" {
            return Lookup::Cleared;
        }
        match serde_json::from_str::<serde_json::Value>(at.get()) {
            Ok(v) => Lookup::Found(Value::from_json(&v)),
            Err(_) => Lookup::Cleared,
        }
    }
}

/// The payload of `raw` as the runtime reads it.
pub fn payload<'a>(raw: &RawEvent<'a>) -> RawProps<'a> {
    RawProps(match raw.kind {
        MessageKind::Identify => raw.traits,
        _ => raw.properties,
    })
}

/// The runtime event of `raw`, its payload being `props`.
pub fn event<'a>(raw: &'a RawEvent<'a>, props: &'a RawProps<'a>) -> Event<'a> {
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
        properties: props,
        context_timezone: raw.context_timezone.as_deref(),
    }
}
