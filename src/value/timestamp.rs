//! RFC 3339 text to epoch milliseconds: a fast path for the shape every
//! Segment library writes (`2026-03-02T10:00:00.123Z`), jiff for the rest.
//! Event timestamps, timestamp traits and properties, and timestamps in
//! expressions all read through here.

/// Parses an RFC 3339 timestamp (any offset, any fraction) to milliseconds
/// since the Unix epoch, or `None` when it is not one.
///
/// Sub-millisecond digits are dropped.
pub fn parse(text: &str) -> Option<i64> {
    parse_utc_fast(text.as_bytes()).or_else(|| parse_with_jiff(text))
}

fn parse_with_jiff(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z` for years 1970 to 9998 (jiff's own range ends
/// in 9999), with every field in its
/// ordinary range; anything else (offsets, leap seconds, lowercase letters,
/// early years) goes to jiff, which also produces the verdict on bad input.
fn parse_utc_fast(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[s.len() - 1] != b'Z' {
        return None;
    }
    if s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    let second = digits(&s[17..19])?;
    let millis = fraction_millis(&s[19..s.len() - 1])?;
    if !(1970..=9998).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000 + millis)
}

/// An empty fraction, or `.` and one to nine digits; the first three count.
fn fraction_millis(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let digits_part = s.strip_prefix(b".")?;
    if digits_part.is_empty() || digits_part.len() > 9 {
        return None;
    }
    let mut millis = 0;
    for (i, &b) in digits_part.iter().enumerate() {
        let d = digit(b)?;
        if i < 3 {
            millis = millis * 10 + d;
        }
    }
    for _ in digits_part.len()..3 {
        millis *= 10;
    }
    Some(millis)
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
/// `days_from_civil`), for the years the fast path accepts.
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
        parse_with_jiff(text).unwrap_or(i64::MIN)
    }

    #[test]
    fn fast_path_matches_jiff() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:00:00.5Z",
            "2026-03-02T10:00:00.123Z",
            "2026-03-02T10:00:00.123456789Z",
            "2024-02-29T23:59:59.999Z",
            "2000-02-29T12:00:00Z",
            "2099-12-31T23:59:59Z",
            "9998-12-31T23:59:59Z",
        ] {
            assert_eq!(
                parse_utc_fast(text.as_bytes()),
                Some(jiff_ms(text)),
                "{text}"
            );
        }
    }

    #[test]
    fn fast_path_agrees_with_jiff_on_every_day_of_a_range() {
        let start = jiff_ms("1999-12-25T00:00:00Z");
        for day in 0..3_000 {
            let ms = start + day * 86_400_000 + 37_123_456;
            let text = jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            assert_eq!(parse_utc_fast(text.as_bytes()), Some(ms), "{text}");
        }
    }

    #[test]
    fn offsets_and_fractions_use_the_fallback() {
        let utc = parse("2026-03-02T09:00:00Z");
        assert_eq!(parse("2026-03-02T10:00:00+01:00"), utc);
        assert_eq!(parse("2026-03-02T04:00:00-05:00"), utc);
        assert_eq!(parse("2026-03-02T09:00:00.000+00:00"), utc);
        assert_eq!(
            parse("2026-03-02T10:00:00.250+01:00").zip(utc),
            Some((utc.unwrap_or(0) + 250, utc.unwrap_or(0)))
        );
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1_000));
    }

    #[test]
    fn invalid_timestamps_are_rejected() {
        for text in [
            "",
            "yesterday",
            "2026-03-02",
            "2026-03-02T10:00:00",
            "2026-13-02T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-03-32T10:00:00Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T10:60:00Z",
            "2026-03-02T10:00:00.Z",
            "2026-03-02T10:00:00+26:00",
            "2026-03-02T10:00:00ZZ",
            "1772445600000",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
