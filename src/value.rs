//! Runtime values: what compiled expressions compute, profile slots hold and
//! event properties are read into. Shared by `compile` (constants) and
//! `runtime`; JSON in and out with whole numbers written without a fraction.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) mod scan;
mod text;
mod timestamp;

pub use text::Str;

/// The first instant a timestamp value may hold: 0000-01-01T00:00:00Z
/// (RFC 3339's first year). Time arithmetic that leaves
/// [`MIN_TIME_MS`]..=[`MAX_TIME_MS`] has no timestamp for its answer.
pub const MIN_TIME_MS: i64 = -62_167_219_200_000;
/// The last instant a timestamp value may hold: 9999-12-31T23:59:59.999Z
/// (RFC 3339's last year). The runtime's clock never passes it.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Whether `ms` is an instant a timestamp value may hold.
pub fn representable(ms: i64) -> bool {
    (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms)
}

/// A value of the journey language. Timestamps are epoch milliseconds (UTC),
/// durations milliseconds.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(Str),
    Timestamp(i64),
    Duration(i64),
    List(Arc<[Value]>),
    Object(Arc<BTreeMap<Arc<str>, Value>>),
}

/// [`Value`] in a human-readable format (a JSON snapshot):
/// `{"t":"number","v":1.0}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Value", tag = "t", content = "v", rename_all = "snake_case")]
enum Tagged {
    Null,
    Bool(bool),
    Number(f64),
    String(Str),
    Timestamp(i64),
    Duration(i64),
    #[serde(deserialize_with = "nested")]
    List(Arc<[Value]>),
    #[serde(deserialize_with = "nested")]
    Object(Arc<BTreeMap<Arc<str>, Value>>),
}

/// [`Value`] in a binary format (a snapshot's binary encoding): the
/// variant's number, then its content. Such formats have no names to tag
/// with.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Value")]
enum Plain {
    Null,
    Bool(bool),
    Number(f64),
    String(Str),
    Timestamp(i64),
    Duration(i64),
    #[serde(deserialize_with = "nested")]
    List(Arc<[Value]>),
    #[serde(deserialize_with = "nested")]
    Object(Arc<BTreeMap<Arc<str>, Value>>),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            Tagged::serialize(self, serializer)
        } else {
            Plain::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        if deserializer.is_human_readable() {
            Tagged::deserialize(deserializer)
        } else {
            Plain::deserialize(deserializer)
        }
    }
}

/// How deep lists and objects may nest in a value read back (a snapshot's
/// profile, say): deeper is refused. Events' JSON nests at most 128 deep,
/// so no value the runtime made is refused; a forged snapshot in a format
/// without a nesting limit of its own (the binary one) cannot exhaust the
/// stack.
pub const MAX_NESTING: u32 = 128;

thread_local! {
    /// The lists and objects being read on this thread, outermost first.
    static READING_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Reads a list's or object's items, one level deeper ([`MAX_NESTING`]).
fn nested<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Level;
    impl Drop for Level {
        fn drop(&mut self) {
            READING_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let depth = READING_DEPTH.with(|d| {
        let depth = d.get() + 1;
        d.set(depth);
        depth
    });
    let _level = Level;
    if depth > MAX_NESTING {
        return Err(serde::de::Error::custom(format_args!(
            "a value nests lists and objects deeper than {MAX_NESTING}"
        )));
    }
    T::deserialize(deserializer)
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Str::new(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Reads a JSON value (traits, properties) into a [`Value`]; strings stay
    /// strings (a timestamp field is converted where its type is known).
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(Arc::new(
                o.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// The value as JSON for actions: whole numbers without a fractional part,
    /// timestamps as RFC 3339 UTC, durations as whole seconds.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_json(*n),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Timestamp(ms) => serde_json::Value::String(format_timestamp(*ms)),
            Value::Duration(ms) => number_json(*ms as f64 / 1000.0),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The field `key` of an object value; `Null` for anything else.
    pub fn field(&self, key: &str) -> &Value {
        match self {
            Value::Object(map) => map.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

static NULL: Value = Value::Null;

/// The integer a number stands for when it is whole and within 2^53 (where
/// every integer is exact): such numbers are written without a fraction.
pub fn as_whole(n: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (n.fract() == 0.0 && n.abs() <= EXACT).then_some(n as i64)
}

/// A JSON number: integral values within 2^53 are written as integers.
pub fn number_json(n: f64) -> serde_json::Value {
    match as_whole(n) {
        Some(i) => serde_json::Value::from(i),
        None => serde_json::Number::from_f64(n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
    }
}

/// RFC 3339 in UTC with a `Z`, milliseconds only when present.
pub fn format_timestamp(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_timestamp(ms, &mut out);
    out
}

/// Appends [`format_timestamp`]'s text to `out`. Every action carries a
/// timestamp, so the years of the runtime's clock (1970 to 9999) are written
/// by hand rather than through a general formatter.
pub fn write_timestamp(ms: i64, out: &mut String) {
    let seconds = ms.div_euclid(1_000);
    let millis = ms.rem_euclid(1_000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(1970..=9999).contains(&year) {
        out.push_str(&format_timestamp_jiff(ms));
        return;
    }
    let second_of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut buf[0..4], year);
    put_digits(&mut buf[5..7], month);
    put_digits(&mut buf[8..10], day);
    put_digits(&mut buf[11..13], hour);
    put_digits(&mut buf[14..16], minute);
    put_digits(&mut buf[17..19], second);
    let text: &[u8] = if millis != 0 {
        put_digits(&mut buf[20..23], millis);
        &buf
    } else {
        buf[19] = b'Z';
        &buf[..20]
    };
    // Only ASCII digits and punctuation were written.
    out.push_str(std::str::from_utf8(text).unwrap_or_default());
}

/// Writes `n` (non-negative, fitting) as zero-padded decimal into `slot`.
fn put_digits(slot: &mut [u8], n: i64) {
    // Callers pass 0..=9999; unsigned, the division by ten needs no sign
    // fix-up.
    let mut n = n.unsigned_abs();
    for b in slot.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `text` as a JSON string, escaped exactly as `serde_json` does
/// (`\"`, `\\`, the short escapes, `\u00XX` for other control characters).
pub fn write_json_str(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    // Most texts need no escape: one look for a quote, a backslash or a
    // control character, sixteen bytes at a time, then one copy.
    if scan::next_special(bytes, 0) == bytes.len() {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` and `i + 1` are character boundaries.
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends `value` as JSON, the same text as `value.to_json().to_string()`
/// without building the tree: whole numbers as integers, timestamps as RFC
/// 3339 UTC strings, durations as seconds.
pub fn write_json_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_json_number(out, *n),
        Value::String(s) => write_json_str(out, s),
        Value::Timestamp(ms) => {
            out.push('"');
            write_timestamp(*ms, out);
            out.push('"');
        }
        Value::Duration(ms) => write_json_number(out, *ms as f64 / 1000.0),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k);
                out.push(':');
                write_json_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_json_number(out: &mut String, n: f64) {
    if let Some(i) = as_whole(n) {
        write_int(out, i);
    } else {
        // Fractions are rarer: serde_json's own float formatting keeps the
        // text identical to `to_json`.
        use std::fmt::Write as _;
        let _ = write!(out, "{}", number_json(n));
    }
}

/// Appends a decimal integer without going through `fmt`.
pub fn write_int(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

fn format_timestamp_jiff(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) if ms % 1000 == 0 => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The proleptic Gregorian date (year, month, day) of a day count since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 timestamp into epoch milliseconds, `None` when it is
/// not one: exactly RFC 3339's `date-time`, the one rule for events, traits,
/// properties, `.journey` files and the command line (see [`timestamp`]).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    timestamp::parse(text)
}

/// A timestamp as [`parse_timestamp`] reads it, or a date alone
/// (`2026-03-20`, as Segment sends dates) at midnight of that day in
/// `zone` (LANGUAGE.md §4.4, "Dates"). On a day whose midnight a
/// daylight-saving change skips, the day's first instant (just after the
/// gap). `None` for any other text.
pub fn parse_timestamp_in(text: &str, zone: &jiff::tz::TimeZone) -> Option<i64> {
    if let Some(ms) = parse_timestamp(text) {
        return Some(ms);
    }
    let (year, month, day) = timestamp::parse_date(text)?;
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let ms = date
        .to_zoned(zone.clone())
        .ok()?
        .start_of_day()
        .ok()?
        .timestamp()
        .as_millisecond();
    representable(ms).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_json_and_in_a_binary_format() {
        let object: BTreeMap<Arc<str>, Value> = [(
            Arc::from("k"),
            Value::str("a text longer than twenty-two bytes"),
        )]
        .into();
        let all = Value::List(Arc::from(vec![
            Value::Null,
            Value::Bool(true),
            Value::Number(-1.5),
            Value::str("short"),
            Value::Timestamp(1_700_000_000_000),
            Value::Duration(-60_000),
            Value::List(Arc::from(vec![Value::Null])),
            Value::Object(Arc::new(object)),
        ]));
        let json = serde_json::to_string(&all).unwrap_or_default();
        assert!(
            json.starts_with(r#"{"t":"list","v":[{"t":"null"},{"t":"bool","v":true}"#),
            "{json}"
        );
        let back: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, all);
        let binary = postcard::to_stdvec(&all).unwrap_or_else(|e| panic!("{e}"));
        let back: Value = postcard::from_bytes(&binary).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, all);
    }

    #[test]
    fn a_value_nested_too_deep_is_refused_not_a_stack_overflow() {
        let nest = |depth: u32| {
            (0..depth).fold(Value::Null, |inner, _| Value::List(Arc::from(vec![inner])))
        };
        let fits = postcard::to_stdvec(&nest(MAX_NESTING)).unwrap_or_default();
        let back: Value = postcard::from_bytes(&fits).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, nest(MAX_NESTING));
        // Forged: far deeper than any value the runtime makes. Each level
        // is the list variant (6) and a length of one.
        let mut forged = [6u8, 1].repeat(100_000);
        forged.push(0);
        let Err(e) = postcard::from_bytes::<Value>(&forged) else {
            panic!("a value nested 100,000 deep was read");
        };
        assert!(e.to_string().contains("Serde Deserialization Error"), "{e}");
        // The depth count is back at zero: a shallow value reads after it.
        let back: Value = postcard::from_bytes(&fits).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, nest(MAX_NESTING));
    }

    #[test]
    fn whole_numbers_have_no_fraction() {
        assert_eq!(Value::Number(150.0).to_json().to_string(), "150");
        assert_eq!(Value::Number(19.99).to_json().to_string(), "19.99");
        assert_eq!(Value::Number(-3.0).to_json().to_string(), "-3");
    }

    #[test]
    fn the_fast_writer_agrees_with_jiff() {
        let mut ms = 0i64;
        // Every ~11.6 days with odd milliseconds, 1970 to past 2100, plus
        // whole seconds and the edges of the fast range.
        while ms < 4_200_000_000_000 {
            for t in [ms, ms - ms % 1000] {
                assert_eq!(format_timestamp(t), format_timestamp_jiff(t), "{t}");
            }
            ms += 1_000_000_007;
        }
        for t in [-1, -86_400_000, 253_402_300_800_000] {
            assert_eq!(format_timestamp(t), format_timestamp_jiff(t), "{t}");
        }
        // The last day of year 9999 is past jiff's range; the clock's last
        // instant is still written as a timestamp.
        assert_eq!(format_timestamp(MAX_TIME_MS), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_json_writers_agree_with_serde_json() {
        let mut text: String = (0u8..0x80).map(char::from).collect();
        text.push_str("é ü 😀 \u{2028} end");
        let mut out = String::new();
        write_json_str(&mut out, &text);
        assert_eq!(out, serde_json::Value::from(text.as_str()).to_string());

        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Number(150.0),
            Value::Number(-3.0),
            Value::Number(19.99),
            Value::Number(1e300),
            Value::Number(-0.5),
            Value::Number(9_007_199_254_740_993.0),
            Value::str("a \"quoted\" line\n"),
            Value::Timestamp(1_772_445_600_250),
            Value::Duration(90_500),
            Value::List(Arc::from(vec![Value::str("x"), Value::Number(2.0)])),
            Value::Object(Arc::new(BTreeMap::from([
                (Arc::from("k"), Value::Null),
                (Arc::from("n\"m"), Value::Bool(false)),
            ]))),
        ];
        for value in values {
            let mut out = String::new();
            write_json_value(&mut out, &value);
            assert_eq!(out, value.to_json().to_string(), "{value:?}");
        }
        for n in [0, 7, -7, 1_234_567_890, i64::MIN, i64::MAX] {
            let mut out = String::new();
            write_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    fn zone(name: &str) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(name).unwrap()
    }

    #[test]
    fn a_date_alone_is_midnight_in_the_zone() {
        let at = |text: &str, z: &str| parse_timestamp_in(text, &zone(z)).map(format_timestamp);
        assert_eq!(
            at("2026-03-20", "UTC").as_deref(),
            Some("2026-03-20T00:00:00Z")
        );
        // Paris in winter (+01:00) and in summer (+02:00).
        assert_eq!(
            at("2026-03-20", "Europe/Paris").as_deref(),
            Some("2026-03-19T23:00:00Z")
        );
        assert_eq!(
            at("2026-07-01", "Europe/Paris").as_deref(),
            Some("2026-06-30T22:00:00Z")
        );
        // The days of the changes: midnight is before the change in Europe
        // (at 02:00/03:00 local) and in New York.
        assert_eq!(
            at("2026-03-29", "Europe/Paris").as_deref(),
            Some("2026-03-28T23:00:00Z")
        );
        assert_eq!(
            at("2026-03-30", "Europe/Paris").as_deref(),
            Some("2026-03-29T22:00:00Z")
        );
        assert_eq!(
            at("2026-11-01", "America/New_York").as_deref(),
            Some("2026-11-01T04:00:00Z")
        );
        assert_eq!(
            at("2026-11-02", "America/New_York").as_deref(),
            Some("2026-11-02T05:00:00Z")
        );
        // Where the change happens at midnight, the day starts at 01:00
        // (Santiago, 2026-09-06: 00:00 -04 becomes 01:00 -03).
        assert_eq!(
            at("2026-09-06", "America/Santiago").as_deref(),
            Some("2026-09-06T04:00:00Z")
        );
        // Ahead of UTC by more than half a day.
        assert_eq!(
            at("2026-03-20", "Pacific/Auckland").as_deref(),
            Some("2026-03-19T11:00:00Z")
        );
        // A full timestamp is read as written, whatever the zone.
        assert_eq!(
            at("2026-03-20T09:00:00Z", "Asia/Tokyo").as_deref(),
            Some("2026-03-20T09:00:00Z")
        );
        for bad in [
            "2026-02-30",
            "2026-3-20",
            "2026-03-20 ",
            "20260320",
            "soon",
            "2026-13-01",
        ] {
            assert_eq!(at(bad, "UTC"), None, "{bad}");
        }
        assert_eq!(
            at("2024-02-29", "UTC").as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
    }

    #[test]
    fn timestamps_round_trip_in_utc() {
        let ms = parse_timestamp("2026-03-02T11:00:00+01:00").unwrap();
        assert_eq!(format_timestamp(ms), "2026-03-02T10:00:00Z");
        assert_eq!(format_timestamp(ms + 250), "2026-03-02T10:00:00.250Z");
    }
}
