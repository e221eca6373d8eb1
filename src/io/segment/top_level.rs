//! The one pass over a message's top-level object: the fields the runtime
//! reads are captured as raw JSON slices, everything else is skipped without
//! being built, then each capture is checked and decoded.
//!
//! The pass is made by the hand-written scanner of [`crate::io::json`];
//! when it declines (the line is not JSON, a key has escapes, `context` is
//! not an object, ...), by `serde_json`, whose errors are the ones
//! reported. Both fill the same [`Envelope`] through the same map of names
//! ([`Field::named`], [`Envelope::slot`]), and the checks after it are
//! shared, so the paths cannot disagree on a field.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::timestamp::parse_timestamp_ms;
use super::{MessageKind, RawEvent};
use crate::io::json::{Decline, RawJson, Scanner, decode_str};

/// Parses one line; the error is the message of an `InputError`.
pub(super) fn parse(line: &str) -> Result<RawEvent<'_>, String> {
    // Filled in place: the envelope is a few hundred bytes, and moving it
    // out of each call was a copy a line.
    let mut envelope = Envelope::default();
    if scan_envelope(line, &mut envelope).is_err() {
        envelope = read_envelope_serde(line)?;
    }
    decode(&envelope)
}

/// [`parse`] by `serde_json` alone: the reading the fast path is held to.
#[cfg(test)]
pub(super) fn parse_serde(line: &str) -> Result<RawEvent<'_>, String> {
    decode(&read_envelope_serde(line)?)
}

/// Whether the scanner reads `line` without handing it to `serde_json`.
#[cfg(test)]
pub(super) fn takes_fast_path(line: &str) -> bool {
    scan_envelope(line, &mut Envelope::default()).is_ok()
}

/// [`parse`] by the scanner alone (`None` when it declines).
#[cfg(test)]
pub(super) fn parse_scanner(line: &str) -> Option<Result<RawEvent<'_>, String>> {
    let mut envelope = Envelope::default();
    scan_envelope(line, &mut envelope).ok()?;
    Some(decode(&envelope))
}

/// Checks and decodes the captured fields.
fn decode<'a>(envelope: &Envelope<'a>) -> Result<RawEvent<'a>, String> {
    let kind_name = text_field(envelope.kind, "type")?.ok_or("missing `type`")?;
    let kind = MessageKind::from_name(&kind_name).ok_or_else(|| {
        format!(
            "unknown message type `{kind_name}`; expected `track`, `identify`, `page`, `screen`, `group` or `alias`"
        )
    })?;
    let user_key = user_key(envelope)?;
    let timestamp = text_field(envelope.timestamp, "timestamp")?.ok_or("missing `timestamp`")?;
    let timestamp_ms = event_time(&timestamp)?;
    let message_id = id_field(envelope.message_id, "messageId")?.filter(|id| !id.is_empty());
    // Only an identify's time zone is read (it fills the profile's).
    let context_timezone = match kind {
        MessageKind::Identify => envelope.context_timezone.and_then(decode_captured),
        _ => None,
    };

    // The kinds the runtime ignores are accepted whatever their payload.
    if !kind.is_processed() {
        return Ok(RawEvent {
            kind,
            user_key,
            event: None,
            timestamp_ms,
            message_id,
            properties: envelope
                .properties
                .map(|c| c.raw)
                .filter(|raw| is_object(*raw)),
            traits: envelope.traits.map(|c| c.raw).filter(|raw| is_object(*raw)),
            context_timezone,
        });
    }
    let event = if kind == MessageKind::Track {
        let name =
            text_field(envelope.event, "event")?.ok_or("missing `event` in a track message")?;
        if name.is_empty() {
            return Err("empty `event` in a track message".to_owned());
        }
        Some(name)
    } else {
        None
    };
    Ok(RawEvent {
        kind,
        user_key,
        event,
        timestamp_ms,
        message_id,
        properties: object_field(envelope.properties.map(|c| c.raw), "properties")?,
        traits: object_field(envelope.traits.map(|c| c.raw), "traits")?,
        context_timezone,
    })
}

/// An event's `timestamp`: RFC 3339, from 1970 to 9999 (UTC). Other
/// timestamps (a birthday in a trait) may lie before 1970; the time an
/// event happened may not.
fn event_time(text: &str) -> Result<i64, String> {
    let ms = parse_timestamp_ms(text).ok_or_else(|| {
        format!("`timestamp` `{text}` is not an RFC 3339 time such as `2026-03-02T10:00:00Z`")
    })?;
    if ms < 0 {
        return Err(format!("`timestamp` `{text}` is before 1970"));
    }
    if ms > crate::value::MAX_TIME_MS {
        return Err(format!("`timestamp` `{text}` is after 9999"));
    }
    Ok(ms)
}

/// `userId`, else `anonymousId`; an empty string counts as absent, as the
/// Segment libraries send `""` or `null` for an unknown user.
fn user_key<'a>(envelope: &Envelope<'a>) -> Result<Cow<'a, str>, String> {
    if let Some(id) = id_field(envelope.user_id, "userId")?.filter(|id| !id.is_empty()) {
        return Ok(id);
    }
    id_field(envelope.anonymous_id, "anonymousId")?
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "missing `userId` or `anonymousId`".to_owned())
}

/// The fast pass: one scan of the line, `context` but its `timezone` and
/// every other unread field skipped without being decoded.
fn scan_envelope<'a>(line: &'a str, envelope: &mut Envelope<'a>) -> Result<(), Decline> {
    let mut scanner = Scanner::new(line);
    scanner.begin_object()?;
    let mut first = true;
    while let Some(key) = scanner.next_key(&mut first)? {
        // An escaped key could spell a field name: `serde_json` decodes it.
        if key.escaped {
            return Err(Decline);
        }
        // A repeated key keeps its last value, as on the `serde_json` path.
        let field = Field::named(key.text.as_bytes());
        if field == Field::Context {
            envelope.context_timezone = scan_context(&mut scanner)?;
            continue;
        }
        let Some(slot) = envelope.slot(field) else {
            scanner.value()?;
            continue;
        };
        let (raw, plain) = scanner.value_flagged()?;
        *slot = Some(Captured { raw, plain });
    }
    if scanner.at_end() {
        Ok(())
    } else {
        Err(Decline)
    }
}

/// `context.timezone`; a `context` that is not an object is left to the
/// `serde_json` path (it is read there as a plain value, and is rare).
fn scan_context<'a>(scanner: &mut Scanner<'a>) -> Result<Option<Captured<'a>>, Decline> {
    let mut timezone = None;
    scanner.entries(|key, value| {
        if key == "timezone" {
            timezone = Some(Captured::unseen(value));
        }
    })?;
    Ok(timezone)
}

/// The slow pass, for the lines the scanner declines.
fn read_envelope_serde(line: &str) -> Result<Envelope<'_>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    Envelope::deserialize(&mut de)
        .and_then(|envelope| de.end().map(|()| envelope))
        .map_err(describe_json_error)
}

fn describe_json_error(error: serde_json::Error) -> String {
    match error.classify() {
        // The only data error the visitors below can raise: no other value
        // is converted, every field is captured raw or skipped.
        Category::Data => "a message must be a JSON object".to_owned(),
        Category::Syntax | Category::Eof | Category::Io => {
            let text = error.to_string();
            let reason = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(reason, _)| reason);
            format!("not valid JSON: {reason} at column {}", error.column())
        }
    }
}

/// The top-level fields the runtime reads, as raw JSON text.
#[derive(Default)]
pub(super) struct Envelope<'a> {
    pub(super) kind: Option<Captured<'a>>,
    pub(super) user_id: Option<Captured<'a>>,
    pub(super) anonymous_id: Option<Captured<'a>>,
    pub(super) event: Option<Captured<'a>>,
    pub(super) timestamp: Option<Captured<'a>>,
    pub(super) message_id: Option<Captured<'a>>,
    pub(super) properties: Option<Captured<'a>>,
    pub(super) traits: Option<Captured<'a>>,
    pub(super) context_timezone: Option<Captured<'a>>,
}

impl<'a> Envelope<'a> {
    /// Where a captured value of `field` goes: `None` for `context` (its
    /// `timezone` is captured apart) and for the fields skipped.
    #[inline(always)]
    pub(super) fn slot(&mut self, field: Field) -> Option<&mut Option<Captured<'a>>> {
        Some(match field {
            Field::Type => &mut self.kind,
            Field::UserId => &mut self.user_id,
            Field::AnonymousId => &mut self.anonymous_id,
            Field::Event => &mut self.event,
            Field::Timestamp => &mut self.timestamp,
            Field::MessageId => &mut self.message_id,
            Field::Properties => &mut self.properties,
            Field::Traits => &mut self.traits,
            Field::Context | Field::Other => return None,
        })
    }
}

/// A captured field: its raw text, and whether the scanner saw that it is
/// a string without escapes, which then needs no second look to decode.
#[derive(Clone, Copy)]
pub(super) struct Captured<'a> {
    pub(super) raw: RawJson<'a>,
    pub(super) plain: bool,
}

impl<'a> Captured<'a> {
    /// A value whose escapes nobody looked at.
    fn unseen(raw: RawJson<'a>) -> Captured<'a> {
        Captured { raw, plain: false }
    }
}

/// A value `serde_json` captured, as raw text.
fn raw<'a>(value: &'a RawValue) -> RawJson<'a> {
    // `serde_json` validated the value while capturing it.
    RawJson::new_unchecked(value.get())
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Envelope<'a>, M::Error> {
        let mut envelope = Envelope::default();
        // A repeated key keeps its last value, as JSON objects do elsewhere.
        while let Some(field) = map.next_key::<Field>()? {
            if field == Field::Context {
                envelope.context_timezone = map
                    .next_value::<ContextTimezone<'a>>()?
                    .0
                    .map(Captured::unseen);
                continue;
            }
            match envelope.slot(field) {
                Some(slot) => *slot = Some(Captured::unseen(raw(map.next_value()?))),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// A top-level key of a message, as the runtime reads it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Type,
    UserId,
    AnonymousId,
    Event,
    Timestamp,
    MessageId,
    Properties,
    Traits,
    /// Read for its `timezone` alone.
    Context,
    /// Skipped.
    Other,
}

impl Field {
    /// The field a key names (by its length first: one comparison or two).
    #[inline(always)]
    pub(super) fn named(name: &[u8]) -> Field {
        let is = |text: &[u8]| name == text;
        match name.len() {
            4 if is(b"type") => Field::Type,
            5 if is(b"event") => Field::Event,
            6 if is(b"userId") => Field::UserId,
            6 if is(b"traits") => Field::Traits,
            7 if is(b"context") => Field::Context,
            9 if is(b"timestamp") => Field::Timestamp,
            9 if is(b"messageId") => Field::MessageId,
            10 if is(b"properties") => Field::Properties,
            11 if is(b"anonymousId") => Field::AnonymousId,
            _ => Field::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(Field::named(name.as_bytes()))
    }
}

/// `context.timezone` as raw JSON; the rest of `context` is skipped, and a
/// `context` that is not an object is ignored like any unread field.
struct ContextTimezone<'a>(Option<RawJson<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ContextTimezone<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContextVisitor(std::marker::PhantomData))
    }
}

struct ContextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ContextVisitor<'a> {
    type Value = ContextTimezone<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut timezone = None;
        while let Some(key) = map.next_key::<ContextField>()? {
            match key {
                ContextField::Timezone => timezone = Some(raw(map.next_value()?)),
                ContextField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ContextTimezone(timezone))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ContextTimezone(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(ContextTimezone(None))
    }
}

enum ContextField {
    Timezone,
    Other,
}

impl<'de> Deserialize<'de> for ContextField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(ContextFieldVisitor)
    }
}

struct ContextFieldVisitor;

impl Visitor<'_> for ContextFieldVisitor {
    type Value = ContextField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<ContextField, E> {
        Ok(if name == "timezone" {
            ContextField::Timezone
        } else {
            ContextField::Other
        })
    }
}

/// What a raw JSON value is, in words, for error messages.
fn describe(raw: RawJson<'_>) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "a list",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn is_null(raw: RawJson<'_>) -> bool {
    raw.get() == "null"
}

fn is_object(raw: RawJson<'_>) -> bool {
    raw.get().starts_with('{')
}

fn is_number(raw: RawJson<'_>) -> bool {
    matches!(raw.get().as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// A captured string's text: between its quotes when the scanner saw no
/// escapes, else decoded.
fn decode_captured(captured: Captured<'_>) -> Option<Cow<'_, str>> {
    let text = captured.raw.get();
    match text.get(1..text.len().saturating_sub(1)) {
        Some(inner) if captured.plain => Some(Cow::Borrowed(inner)),
        _ => decode_str(captured.raw),
    }
}

/// A field that must be a string when present and not `null`.
fn text_field<'a>(field: Option<Captured<'a>>, name: &str) -> Result<Option<Cow<'a, str>>, String> {
    match field {
        None => Ok(None),
        Some(c) if is_null(c.raw) => Ok(None),
        Some(c) => decode_captured(c)
            .map(Some)
            .ok_or_else(|| match describe(c.raw) {
                "a string" => not_text(name, c.raw),
                other => format!("`{name}` must be a string, found {other}"),
            }),
    }
}

/// An identifier: a string, or a number kept as its JSON text.
fn id_field<'a>(field: Option<Captured<'a>>, name: &str) -> Result<Option<Cow<'a, str>>, String> {
    let Some(c) = field else {
        return Ok(None);
    };
    let raw = c.raw;
    match raw {
        raw if is_null(raw) => Ok(None),
        raw if is_number(raw) => Ok(Some(Cow::Borrowed(raw.get()))),
        _ => decode_captured(c)
            .map(Some)
            .ok_or_else(|| match describe(raw) {
                "a string" => not_text(name, raw),
                other => format!("`{name}` must be a string or a number, found {other}"),
            }),
    }
}

/// Why a JSON string is no text: JSON lets an escaped surrogate such as
/// `\ud800` stand alone, text does not (and only that fails to decode).
fn not_text(name: &str, raw: RawJson<'_>) -> String {
    match unpaired_surrogate(raw.get()) {
        Some(escape) => {
            format!("`{name}` is not valid text: it contains an unpaired surrogate `{escape}`")
        }
        None => format!("`{name}` is not valid text"),
    }
}

/// The first `\uXXXX` escape of a surrogate in the JSON string `text` that
/// is not half of a pair (a high one followed at once by a low one).
fn unpaired_surrogate(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut high: Option<&str> = None;
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'u'))
            .then(|| text.get(i..i + 6))
            .flatten();
        let unit = escape.and_then(|e| u16::from_str_radix(&e[2..], 16).ok());
        match (unit, high) {
            (Some(0xDC00..=0xDFFF), Some(_)) => high = None,
            (Some(0xDC00..=0xDFFF), None) => return escape,
            (_, Some(lone)) => return Some(lone),
            (Some(0xD800..=0xDBFF), None) => high = escape,
            _ => {}
        }
        // An escape's six bytes, another escape's two (`\\` is one), or a byte.
        i += match (unit, bytes[i]) {
            (Some(_), _) => 6,
            (None, b'\\') => 2,
            _ => 1,
        };
    }
    high
}

/// `properties` or `traits`: an object, or absent (`null` counts as absent).
fn object_field<'a>(raw: Option<RawJson<'a>>, name: &str) -> Result<Option<RawJson<'a>>, String> {
    match raw {
        None => Ok(None),
        Some(raw) if is_null(raw) => Ok(None),
        Some(raw) if is_object(raw) => Ok(Some(raw)),
        Some(raw) => Err(format!(
            "`{name}` must be an object, found {}",
            describe(raw)
        )),
    }
}
