//! Runtime values: what compiled expressions compute, profile slots hold and
//! event properties are read into. Shared by `compile` (constants) and
//! `runtime`; JSON in and out with whole numbers written without a fraction.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A value of the journey language. Timestamps are epoch milliseconds (UTC),
/// durations milliseconds.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(Arc<str>),
    Timestamp(i64),
    Duration(i64),
    List(Arc<[Value]>),
    Object(Arc<BTreeMap<Arc<str>, Value>>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Arc::from(s))
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

/// A JSON number: integral values within 2^53 are written as integers.
pub fn number_json(n: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// RFC 3339 in UTC with a `Z`, milliseconds only when present.
pub fn format_timestamp(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_timestamp(ms, &mut out);
    out
}

/// Appends [`format_timestamp`]'s text to `out`. Every action carries a
/// timestamp, so the years of real data (1970 to 9998) are written by hand
/// rather than through a general formatter.
pub fn write_timestamp(ms: i64, out: &mut String) {
    use std::fmt::Write as _;
    let seconds = ms.div_euclid(1_000);
    let millis = ms.rem_euclid(1_000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(1970..=9998).contains(&year) {
        out.push_str(&format_timestamp_jiff(ms));
        return;
    }
    let second_of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    );
    if millis != 0 {
        let _ = write!(out, ".{millis:03}");
    }
    out.push('Z');
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

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for t in [-1, -86_400_000, 253_402_300_799_999, 253_402_300_800_000] {
            assert_eq!(format_timestamp(t), format_timestamp_jiff(t), "{t}");
        }
    }

    #[test]
    fn timestamps_round_trip_in_utc() {
        let ms = parse_timestamp("2026-03-02T11:00:00+01:00").unwrap();
        assert_eq!(format_timestamp(ms), "2026-03-02T10:00:00Z");
        assert_eq!(format_timestamp(ms + 250), "2026-03-02T10:00:00.250Z");
    }
}
