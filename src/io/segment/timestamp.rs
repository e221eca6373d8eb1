//! Epoch milliseconds to RFC 3339 text in the shape the Segment libraries
//! write; the reading is [`crate::value::parse_timestamp`].

use std::fmt::Write as _;

use crate::value::civil_from_days;

pub use crate::value::parse_timestamp as parse_timestamp_ms;

/// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, always three fraction
/// digits); years before 1970 or after 9998 are written by jiff, and times
/// outside jiff's range are clamped to it.
pub fn write_timestamp_ms(ms: i64, out: &mut String) {
    let seconds = ms.div_euclid(1_000);
    let millis = ms.rem_euclid(1_000);
    let days = seconds.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if (1970..=9998).contains(&year) {
        let second_of_day = seconds.rem_euclid(86_400);
        let (hour, minute, second) = (
            second_of_day / 3_600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        );
        return;
    }
    let clamped = ms.clamp(
        jiff::Timestamp::MIN.as_millisecond(),
        jiff::Timestamp::MAX.as_millisecond(),
    );
    let timestamp =
        jiff::Timestamp::from_millisecond(clamped).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let _ = write!(out, "{}", timestamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_timestamps_read_back() {
        let mut out = String::new();
        for ms in [
            0,
            1_772_445_600_123,
            951_782_400_000,
            253_390_000_000_000,
            -1,
            -86_400_001,
        ] {
            out.clear();
            write_timestamp_ms(ms, &mut out);
            assert_eq!(parse_timestamp_ms(&out), Some(ms), "{out}");
        }
        out.clear();
        write_timestamp_ms(1_772_445_600_007, &mut out);
        assert_eq!(out, "2026-03-02T10:00:00.007Z");
    }
}
