//! RFC 3339 text to epoch milliseconds: exactly the `date-time` of RFC 3339
//! §5.6, checked and converted in one pass. Event timestamps, timestamp
//! traits and properties, timestamps in `.journey` files and on the command
//! line all read through here.

/// Parses an RFC 3339 `date-time` to milliseconds since the Unix epoch, or
/// `None` when it is not one.
///
/// Accepted: `YYYY-MM-DD`, `T` or `t`, `HH:MM:SS`, an optional `.` and one
/// or more digits, then `Z`, `z` or `±HH:MM` (offset hours 00–23, minutes
/// 00–59); every field in its range (the day in its month). A leap second
/// (`:60`) is read as `:59`, as Unix time has none. Refused: a space for
/// the `T`, a missing part, the basic format (`20260302T100000Z`), more or
/// fewer digits than these, a year written with a sign. Digits of the
/// fraction past the third are dropped.
pub fn parse(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    if s.len() < 20 {
        return None;
    }
    let year = field(s, 0, 4, b'-')?;
    let month = field(s, 5, 2, b'-')?;
    let day = field(s, 8, 2, 0)?;
    if !matches!(s[10], b'T' | b't') {
        return None;
    }
    let hour = field(s, 11, 2, b':')?;
    let minute = field(s, 14, 2, b':')?;
    let second = digits(&s[17..19])?;
    let (millis, zone) = fraction(&s[19..])?;
    let offset_minutes = offset(zone)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// A date alone, exactly `YYYY-MM-DD` with the day in its month: its
/// year, month and day (LANGUAGE.md §4.4, "Dates").
pub fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let s = text.as_bytes();
    if s.len() != 10 {
        return None;
    }
    let year = field(s, 0, 4, b'-')?;
    let month = field(s, 5, 2, b'-')?;
    let day = digits(&s[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// The `len` digits at `s[at..]`, followed by `then` (none when `then` is
/// 0; the caller has checked that `s` is long enough).
fn field(s: &[u8], at: usize, len: usize, then: u8) -> Option<i64> {
    if then != 0 && s[at + len] != then {
        return None;
    }
    digits(&s[at..at + len])
}

/// An optional `.` and one or more digits at the start of `s`: the
/// milliseconds they make and what follows them.
fn fraction(s: &[u8]) -> Option<(i64, &[u8])> {
    let Some(rest) = s.strip_prefix(b".") else {
        return Some((0, s));
    };
    let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    let mut millis = 0;
    for i in 0..3 {
        millis = millis * 10
            + rest
                .get(i)
                .filter(|_| i < count)
                .map_or(0, |&b| i64::from(b - b'0'));
    }
    Some((millis, &rest[count..]))
}

/// `Z`, `z` or `±HH:MM` as minutes east of UTC; nothing may follow.
fn offset(s: &[u8]) -> Option<i64> {
    match s {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let east = hours * 60 + minutes;
            Some(if *sign == b'-' { -east } else { east })
        }
        _ => None,
    }
}

fn digit(b: u8) -> Option<i64> {
    b.is_ascii_digit().then(|| i64::from(b - b'0'))
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0, |acc, &b| Some(acc * 10 + digit(b)?))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, exact for every year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>()
            .map_or(i64::MIN, |t| t.as_millisecond())
    }

    #[test]
    fn accepted_forms_read_as_jiff_reads_them() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-03-02T10:00:00Z",
            "2026-03-02t10:00:00z",
            "2026-03-02T10:00:00.5Z",
            "2026-03-02T10:00:00.123Z",
            "2026-03-02T10:00:00.123456789Z",
            "2024-02-29T23:59:59.999Z",
            "2000-02-29T12:00:00Z",
            "2026-03-02T10:00:00+01:00",
            "2026-03-02T04:00:00-05:00",
            "2026-03-02T09:00:00.000+00:00",
            "2026-03-02T09:00:00.000-00:00",
            "2026-03-02T10:00:00.250+23:59",
            "2026-03-02T10:00:00.250-23:59",
            "1965-06-15T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "0000-02-29T00:00:00Z",
        ] {
            assert_eq!(parse(text), Some(jiff_ms(text)), "{text}");
        }
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1_000));
        // Past jiff's range, which leaves room for offsets: the last
        // millisecond before 10000-01-01.
        assert_eq!(parse("9999-12-31T23:59:59.999Z"), Some(253_402_300_799_999));
        assert_eq!(
            parse("2026-03-02T10:00:00.0009Z"),
            parse("2026-03-02T10:00:00Z")
        );
        assert_eq!(
            parse("2026-03-02T10:00:00.1234567890123Z"),
            parse("2026-03-02T10:00:00.123Z")
        );
    }

    #[test]
    fn a_leap_second_reads_as_the_second_before() {
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2016-12-31T23:59:59Z"));
        assert_eq!(
            parse("2016-12-31T23:59:60.5Z"),
            parse("2016-12-31T23:59:59.5Z")
        );
    }

    #[test]
    fn every_day_of_a_range_reads_as_jiff_writes_it() {
        let start = jiff_ms("1999-12-25T00:00:00Z");
        for day in 0..3_000 {
            let ms = start + day * 86_400_000 + 37_123_456;
            let text = jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            assert_eq!(parse(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn what_rfc_3339_does_not_allow_is_refused() {
        for text in [
            "",
            "yesterday",
            "1772445600000",
            // A part missing.
            "2026-03-02",
            "2026-03-02T10:00:00",
            "2026-03-02T10:00Z",
            "2026-03-02T10Z",
            "2026-03-02Z",
            // The basic format, and other separators.
            "20260302T100000Z",
            "2026-03-02T100000Z",
            "2026-03-02 10:00:00Z",
            "2026-03-02_10:00:00Z",
            "2026/03/02T10:00:00Z",
            "2026-03-02T10.00.00Z",
            // Other numbers of digits, and signed years.
            "20260-03-02T10:00:00Z",
            "+2026-03-02T10:00:00Z",
            "+002026-03-02T10:00:00Z",
            "-000001-03-02T10:00:00Z",
            "926-03-02T10:00:00Z",
            "2026-3-02T10:00:00Z",
            "2026-03-2T10:00:00Z",
            "2026-03-02T1:00:00Z",
            "2026-03-02T10:0:00Z",
            "2026-03-02T10:00:0Z",
            // Fields out of range.
            "2026-00-02T10:00:00Z",
            "2026-13-02T10:00:00Z",
            "2026-03-00T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "1900-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-03-32T10:00:00Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T10:60:00Z",
            "2026-03-02T10:00:61Z",
            // Fractions.
            "2026-03-02T10:00:00.Z",
            "2026-03-02T10:00:00,5Z",
            "2026-03-02T10:00:00.5.5Z",
            // Offsets.
            "2026-03-02T10:00:00+24:00",
            "2026-03-02T10:00:00-24:00",
            "2026-03-02T10:00:00+23:60",
            "2026-03-02T10:00:00+26:00",
            "2026-03-02T10:00:00+0100",
            "2026-03-02T10:00:00+01",
            "2026-03-02T10:00:00+1:00",
            "2026-03-02T10:00:00+01:00:00",
            "2026-03-02T10:00:00 +01:00",
            "2026-03-02T10:00:00UTC",
            "2026-03-02T10:00:00ZZ",
            "2026-03-02T10:00:00Z ",
            " 2026-03-02T10:00:00Z",
            "2026-03-02T10:00:00+01:00[Europe/Paris]",
            "2026-03-02T10:00:00Ž",
            "2026-03-02T10:00:00٣Z",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
