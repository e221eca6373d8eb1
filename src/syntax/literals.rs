//! Literal tokens → values: strings (escapes), numbers, counts, durations,
//! times of day, timestamps, percentages and weekdays, each with the
//! diagnostic of its own code when the text is well-formed for the grammar
//! but not a valid value.

use pest::iterators::Pair;

use super::Ctx;
use super::ast::{DurationLit, IntLit, Percent, StrLit, TimeOfDay, Weekday};
use super::errors;
use super::grammar::Rule;

/// Integers are exact up to 2^53.
pub const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// A string literal, unescaped; each bad escape is reported and skipped.
pub fn visit_string(ctx: &mut Ctx, pair: Pair<Rule>) -> StrLit {
    debug_assert_eq!(pair.as_rule(), Rule::string);
    let span = ctx.span(&pair);
    let raw = pair.as_str();
    let inner = &raw[1..raw.len() - 1];
    let value = unescape(inner, |at, len, found| {
        let start = span.start as usize + 1 + at;
        let espan = ctx.span_at(start, start + len);
        ctx.diags.push(errors::invalid_escape(espan, found));
    });
    StrLit { value, span }
}

/// Unescapes the text between the quotes; `bad(offset, len, text)` is called
/// for every invalid escape.
pub fn unescape(inner: &str, mut bad: impl FnMut(usize, usize, &str)) -> String {
    if !inner.contains('\\') {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((j, e)) = chars.next() else {
            bad(i, 1, "\\");
            break;
        };
        match e {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'u' => {
                let rest = &inner[j + 1..];
                let close = rest.find('}');
                let scalar = match close {
                    Some(close) if rest.starts_with('{') => {
                        let hex = &rest[1..close];
                        let valid = (1..=6).contains(&hex.len())
                            && hex.bytes().all(|b| b.is_ascii_hexdigit());
                        let ch = valid
                            .then(|| u32::from_str_radix(hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                        Some((ch, close))
                    }
                    _ => None,
                };
                match scalar {
                    Some((Some(ch), close)) => {
                        out.push(ch);
                        // Skip `{hex}`: the chars up to and including `}`.
                        while chars.next_if(|&(k, _)| k <= j + 1 + close).is_some() {}
                    }
                    Some((None, close)) => {
                        let end = j + 1 + close + 1;
                        bad(i, end - i, &inner[i..end]);
                        while chars.next_if(|&(k, _)| k < end).is_some() {}
                    }
                    None => bad(i, 2, "\\u"),
                }
            }
            other => bad(i, 1 + other.len_utf8(), &inner[i..j + other.len_utf8()]),
        }
    }
    out
}

/// A number literal in an expression.
pub fn visit_number(ctx: &mut Ctx, pair: Pair<Rule>) -> f64 {
    debug_assert_eq!(pair.as_rule(), Rule::number);
    let text = pair.as_str();
    let Some(value) = parse_number(text) else {
        let span = ctx.span(&pair);
        ctx.diags.push(errors::number_too_large(span, text));
        return 0.0;
    };
    value
}

/// The value of a number token, `None` when it is not finite.
pub fn parse_number(text: &str) -> Option<f64> {
    let value: f64 = text.parse().unwrap_or(f64::INFINITY);
    value.is_finite().then_some(value)
}

/// Why a count token is not a count.
#[derive(Debug, PartialEq, Eq)]
pub enum CountError {
    Fraction,
    TooLarge,
}

/// A count token → its value: a whole number from 0 to 2^53.
pub fn parse_count(text: &str) -> Result<i64, CountError> {
    if text.contains('.') {
        return Err(CountError::Fraction);
    }
    match text.parse::<i64>() {
        Ok(value) if value <= MAX_EXACT as i64 => Ok(value),
        _ => Err(CountError::TooLarge),
    }
}

/// A count: a whole number from 0 to 2^53.
pub fn visit_count(ctx: &mut Ctx, pair: Pair<Rule>) -> IntLit {
    debug_assert_eq!(pair.as_rule(), Rule::count);
    let span = ctx.span(&pair);
    let text = pair.as_str();
    match parse_count(text) {
        Ok(value) => return IntLit { value, span },
        Err(error) => ctx.diags.push(errors::invalid_count(span, text, error)),
    }
    // 1 is valid wherever a count goes, so no follow-on error hides this one.
    IntLit { value: 1, span }
}

/// Seconds in one unit of a duration.
fn unit_secs(unit: u8) -> Option<u64> {
    match unit {
        b's' => Some(1),
        b'm' => Some(60),
        b'h' => Some(3_600),
        b'd' => Some(86_400),
        b'w' => Some(604_800),
        _ => None,
    }
}

/// Why a duration text is not a duration.
#[derive(Debug, PartialEq, Eq)]
pub enum DurationError {
    Malformed,
    TooLong,
}

/// `1h30m` → 5400. Zero is returned as is; callers decide if it is allowed.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(DurationError::Malformed);
    }
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(DurationError::Malformed);
        }
        let unit = bytes
            .get(i + digits)
            .and_then(|&u| unit_secs(u))
            .ok_or(DurationError::Malformed)?;
        let n: u64 = text[i..i + digits]
            .parse()
            .map_err(|_| DurationError::TooLong)?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or(DurationError::TooLong)?;
        i += digits + 1;
    }
    // Durations are added to millisecond timestamps: keep them far from overflow.
    if total > (i64::MAX / 1000 / 4) as u64 {
        return Err(DurationError::TooLong);
    }
    Ok(total)
}

/// Seconds → the shortest duration text (`5400` → `1h30m`).
pub fn format_duration(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ('w', 604_800),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A strictly valid duration in an expression (`now() - 2d`).
pub fn visit_duration(ctx: &mut Ctx, pair: Pair<Rule>) -> DurationLit {
    debug_assert_eq!(pair.as_rule(), Rule::duration);
    checked_duration(ctx, pair, true)
}

/// A duration after `wait`, `within`, `per`, `after` or `for`: any of the
/// three duration rules; zero is an error there.
pub fn visit_duration_slot(ctx: &mut Ctx, pair: Pair<Rule>) -> DurationLit {
    match pair.as_rule() {
        Rule::wordy_duration => visit_wordy_duration(ctx, pair),
        _ => checked_duration(ctx, pair, false),
    }
}

fn checked_duration(ctx: &mut Ctx, pair: Pair<Rule>, zero_ok: bool) -> DurationLit {
    let span = ctx.span(&pair);
    let text = pair.as_str();
    let (error, secs) = match parse_duration(text) {
        Ok(0) if !zero_ok => (None, 0),
        Ok(secs) => return DurationLit { secs, span },
        Err(error) => (Some(error), 1),
    };
    ctx.diags.push(errors::invalid_duration(span, text, error));
    DurationLit { secs, span }
}

/// `1 day`, `2 hours`, `30min`: reported with the right spelling, then read
/// as that duration so checking goes on.
pub fn visit_wordy_duration(ctx: &mut Ctx, pair: Pair<Rule>) -> DurationLit {
    debug_assert_eq!(pair.as_rule(), Rule::wordy_duration);
    let span = ctx.span(&pair);
    let text = pair.as_str();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, word) = (&text[..split], text[split..].trim());
    let unit = match word.as_bytes().first() {
        Some(b's') => b's',
        Some(b'm') => b'm',
        Some(b'h') => b'h',
        Some(b'd') => b'd',
        _ => b'w',
    };
    let size = unit_secs(unit).unwrap_or(1);
    let value: f64 = number.parse().unwrap_or(0.0);
    let secs = (value * size as f64).round().max(1.0) as u64;
    let suggestion = if number.contains('.') {
        format_duration(secs)
    } else {
        format!("{number}{}", unit as char)
    };
    ctx.diags
        .push(errors::wordy_duration(span, text, &suggestion));
    DurationLit { secs, span }
}

/// Why a `time_of_day` token is not strictly `00:00`..`23:59`.
#[derive(Debug, PartialEq, Eq)]
pub enum TimeOfDayError {
    /// Hours past 23 (`24:00` is `midnight`).
    Hours {
        midnight: bool,
    },
    Minutes,
    /// Not two digits each: the time as it should be written.
    Digits {
        hours: u16,
        minutes: u16,
    },
}

/// A `time_of_day` token → minutes after midnight (clamped into the day),
/// and what is wrong with it when it is not strictly `00:00`..`23:59`.
pub fn parse_time_of_day(text: &str) -> (u16, Option<TimeOfDayError>) {
    let (h, m) = text.split_once(':').unwrap_or((text, "0"));
    let hours: u16 = h.parse().unwrap_or(99);
    let minutes: u16 = m.parse().unwrap_or(99);
    let error = if hours > 23 {
        Some(TimeOfDayError::Hours {
            midnight: hours == 24 && minutes == 0,
        })
    } else if minutes > 59 {
        Some(TimeOfDayError::Minutes)
    } else if h.len() != 2 || m.len() != 2 {
        Some(TimeOfDayError::Digits { hours, minutes })
    } else {
        None
    };
    let value = (hours.min(23) * 60 + minutes.min(59)).min(1439);
    (value, error)
}

/// `HH:MM`, strictly two digits each, `00:00`..`23:59`.
pub fn visit_time_of_day(ctx: &mut Ctx, pair: Pair<Rule>) -> TimeOfDay {
    debug_assert_eq!(pair.as_rule(), Rule::time_of_day);
    let span = ctx.span(&pair);
    let text = pair.as_str();
    let (minutes, error) = parse_time_of_day(text);
    if let Some(error) = error {
        ctx.diags
            .push(errors::invalid_time_of_day(span, text, error));
    }
    TimeOfDay { minutes, span }
}

/// An RFC 3339 timestamp, as epoch milliseconds.
pub fn visit_timestamp(ctx: &mut Ctx, pair: Pair<Rule>) -> i64 {
    debug_assert_eq!(pair.as_rule(), Rule::timestamp);
    let text = pair.as_str();
    match parse_timestamp(text) {
        Some(ms) => ms,
        None => {
            let span = ctx.span(&pair);
            ctx.diags.push(errors::invalid_timestamp(span, text));
            0
        }
    }
}

/// A `timestamp` token → epoch milliseconds, `None` when it is not RFC 3339
/// (the one rule of [`crate::value::parse_timestamp`], as at run time).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    crate::value::parse_timestamp(text)
}

/// A `percent` token → its value, and whether it is in `(0, 100]`.
pub fn parse_percent(text: &str) -> (f64, bool) {
    let value: f64 = text[..text.len() - 1].parse().unwrap_or(f64::NAN);
    (value, value > 0.0 && value <= 100.0)
}

/// `12.5%`, with 0 < p <= 100.
pub fn visit_percent(ctx: &mut Ctx, pair: Pair<Rule>) -> Percent {
    debug_assert_eq!(pair.as_rule(), Rule::percent);
    let span = ctx.span(&pair);
    let text = pair.as_str();
    let (value, valid) = parse_percent(text);
    if !valid {
        ctx.diags.push(errors::invalid_percent(span, text));
    }
    Percent { value, span }
}

pub fn visit_weekday(ctx: &mut Ctx, pair: Pair<Rule>) -> (Weekday, super::Span) {
    debug_assert_eq!(pair.as_rule(), Rule::weekday);
    // The grammar admits only the seven names.
    let day = parse_weekday(pair.as_str()).unwrap_or(Weekday::Sunday);
    (day, ctx.span(&pair))
}

/// The day a lowercase weekday name stands for.
pub fn parse_weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1h30"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.5h"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("h"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("99999999999999999999w"),
            Err(DurationError::TooLong)
        );
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_duration(694_800), "1w1d1h");
    }

    #[test]
    fn escapes() {
        let mut bad = Vec::new();
        let s = unescape(r#"a\"b\\c\nd\te\u{1F600}f"#, |a, l, t| {
            bad.push((a, l, t.to_owned()))
        });
        assert_eq!(s, "a\"b\\c\nd\te\u{1F600}f");
        assert!(bad.is_empty());
        let s = unescape(r"x\qy\u{110000}z\u12", |a, l, t| {
            bad.push((a, l, t.to_owned()))
        });
        assert_eq!(s, "xyz12");
        assert_eq!(
            bad,
            vec![
                (1, 2, r"\q".to_owned()),
                (4, 10, r"\u{110000}".to_owned()),
                (15, 2, r"\u".to_owned())
            ]
        );
    }
}
