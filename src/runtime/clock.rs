//! Local time: time zones by name (cached, unknown names fall back to UTC),
//! quiet-hours windows and "the next HH:MM strictly after now", following
//! each zone's rules, daylight saving included (jiff's bundled database).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rustc_hash::FxHashMap;

use crate::value::MAX_TIME_MS;

/// Time zones by name, each looked up in the database once, each with the
/// offset of the last instant asked about and how long it holds: local time
/// is needed for every send under quiet hours, and the offset changes twice
/// a year, so the zone's transition table is searched only when a change
/// is passed.
///
/// Memory stays bounded whatever names the input carries: at most
/// [`Zones::MAX_NAMES`] names are remembered (past that, a name not yet
/// seen is looked up each time it comes), and a zone is kept once however
/// many names lead to it (`europe/paris`, `EUROPE/PARIS`, ...), so no more
/// zones than the database holds.
#[derive(Default)]
pub struct Zones {
    ids: FxHashMap<Box<str>, Option<ZoneId>>,
    /// The kept zones by their database name.
    by_name: FxHashMap<String, ZoneId>,
    zones: Vec<Cached>,
}

/// A known zone; [`Zones::tz`] and [`Zones::local_minute`] read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ZoneId(u32);

struct Cached {
    tz: TimeZone,
    /// `offset` (seconds east of UTC) holds on `[from, until)`.
    from: i64,
    until: i64,
    offset: i64,
}

static UTC: TimeZone = TimeZone::UTC;

impl Zones {
    /// The most time-zone names remembered (a customer's profile names
    /// one; the database has about 600 and their spellings vary in case).
    pub const MAX_NAMES: usize = 4_096;

    /// The zone of that name; `None` when the database does not know it.
    pub fn get(&mut self, name: &str) -> Option<ZoneId> {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = TimeZone::get(name).ok().map(|tz| self.keep(tz));
        if self.ids.len() < Self::MAX_NAMES {
            self.ids.insert(name.into(), id);
        }
        id
    }

    /// The id of `tz`, kept once per database name.
    fn keep(&mut self, tz: TimeZone) -> ZoneId {
        let name = tz.iana_name().unwrap_or_default().to_string();
        if let Some(&id) = self.by_name.get(&name) {
            return id;
        }
        self.zones.push(Cached {
            tz,
            from: 0,
            until: 0,
            offset: 0,
        });
        let id = ZoneId((self.zones.len() - 1) as u32);
        self.by_name.insert(name, id);
        id
    }

    /// The zone's rules (UTC for `None`).
    pub fn tz(&self, zone: Option<ZoneId>) -> &TimeZone {
        zone.and_then(|z| self.zones.get(z.0 as usize))
            .map_or(&UTC, |c| &c.tz)
    }

    /// Minute of the local day (0..1440) at `at` in `zone` (UTC for `None`).
    pub fn local_minute(&mut self, zone: Option<ZoneId>, at: i64) -> u16 {
        let offset = match zone.and_then(|z| self.zones.get_mut(z.0 as usize)) {
            None => 0,
            Some(c) if c.from <= at && at < c.until => c.offset,
            Some(c) => {
                let Ok(ts) = Timestamp::from_millisecond(at) else {
                    return 0;
                };
                c.offset = i64::from(c.tz.to_offset(ts).seconds());
                c.from = at;
                // The first transition after `at` (or at it: then nothing
                // is cached, which is still right).
                c.until =
                    c.tz.following(ts)
                        .next()
                        .map_or(i64::MAX, |t| t.timestamp().as_millisecond().max(at));
                c.offset
            }
        };
        ((at.div_euclid(1000) + offset).div_euclid(60)).rem_euclid(1440) as u16
    }
}

/// Whether `minute` lies in the window `[from, to)`, which wraps midnight
/// when `from > to`; an empty window (`from == to`) holds nothing.
pub fn in_window(minute: u16, from: u16, to: u16) -> bool {
    match from.cmp(&to) {
        std::cmp::Ordering::Less => minute >= from && minute < to,
        std::cmp::Ordering::Greater => minute >= from || minute < to,
        std::cmp::Ordering::Equal => false,
    }
}

/// The first instant strictly after `now` whose local time is `minute`
/// past midnight, on one of `weekdays` (bit 0 = Monday; 0 = any day). A
/// local time skipped by a daylight-saving jump resolves to the instant
/// just after the gap, as calendars do. `None` when there is no such
/// instant a timestamp can hold (the last days of year 9999).
pub fn next_local_time(now: i64, zone: &TimeZone, minute: u16, weekdays: u8) -> Option<i64> {
    let ts = Timestamp::from_millisecond(now).ok()?;
    let today = ts.to_zoned(zone.clone()).date();
    let (hour, min) = ((minute / 60) as i8, (minute % 60) as i8);
    // A week and a day hold every weekday after today's time has passed.
    for offset in 0..=8 {
        let date = add_days(today, offset)?;
        let day_bit = 1u8 << date.weekday().to_monday_zero_offset();
        if weekdays != 0 && weekdays & day_bit == 0 {
            continue;
        }
        let Ok(at) = date.at(hour, min, 0, 0).to_zoned(zone.clone()) else {
            continue;
        };
        let at = at.timestamp().as_millisecond();
        if at > now {
            return Some(at).filter(|&at| at <= MAX_TIME_MS);
        }
    }
    None
}

/// A profile value a date trigger reads: an instant (a timestamp, or text
/// in RFC 3339) or a date alone (`2026-03-20`), which means that day in
/// the user's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateValue {
    Instant(i64),
    Day(Date),
}

impl DateValue {
    /// `None` for anything else (null, a number, text of another shape).
    pub fn of(value: &crate::value::Value) -> Option<DateValue> {
        use crate::value::Value;
        match value {
            Value::Timestamp(t) => Some(DateValue::Instant(*t)),
            Value::String(s) => match crate::value::parse_timestamp(s) {
                Some(t) => Some(DateValue::Instant(t)),
                None if s.len() == 10 => s.parse::<Date>().ok().map(DateValue::Day),
                None => None,
            },
            _ => None,
        }
    }
}

/// The instant of local `date` at `minute` past midnight in `zone` (a
/// time skipped by daylight saving resolves to just after the gap).
fn at_minute(date: Date, minute: u16, zone: &TimeZone) -> Option<i64> {
    let (hour, min) = ((minute / 60) as i8, (minute % 60) as i8);
    let at = date.at(hour, min, 0, 0).to_zoned(zone.clone()).ok()?;
    Some(at.timestamp().as_millisecond()).filter(|t| (0..=MAX_TIME_MS).contains(t))
}

/// The moment of `trigger <d> before|after|on <path> [at HH:MM]`: the
/// value plus `offset_ms`, or with `at`, that moment's local date at that
/// local time. A date alone is midnight of that day in `zone`. An offset of
/// whole days counts calendar days in `zone` (the local time of day stays),
/// so "30d before 20 April" is 21 March across a daylight-saving change, as
/// a calendar says, not 20 March at 23:00.
pub fn date_moment(
    value: DateValue,
    offset_ms: i64,
    at: Option<u16>,
    zone: &TimeZone,
) -> Option<i64> {
    let base = match value {
        DateValue::Instant(t) => t,
        DateValue::Day(d) => at_minute(d, 0, zone)?,
    };
    const DAY_MS: i64 = 86_400_000;
    let zoned = Timestamp::from_millisecond(base)
        .ok()?
        .to_zoned(zone.clone());
    let moved = if offset_ms % DAY_MS == 0 {
        zoned
            .checked_add(jiff::Span::new().days(offset_ms / DAY_MS))
            .ok()?
    } else {
        Timestamp::from_millisecond(base.checked_add(offset_ms)?)
            .ok()?
            .to_zoned(zone.clone())
    };
    let moment = moved.timestamp().as_millisecond();
    if !(0..=MAX_TIME_MS).contains(&moment) {
        return None;
    }
    match at {
        None => Some(moment),
        Some(minute) => at_minute(moved.date(), minute, zone),
    }
}

/// The first anniversary of `value` strictly after `after`: every year on
/// its local month and day (29 February: 28 February in other years), at
/// its local time of day, or at `at`.
pub fn anniversary_after(
    value: DateValue,
    at: Option<u16>,
    zone: &TimeZone,
    after: i64,
) -> Option<i64> {
    let (month, day, time) = match value {
        DateValue::Instant(t) => {
            let z = Timestamp::from_millisecond(t).ok()?.to_zoned(zone.clone());
            (z.month(), z.day(), z.time())
        }
        DateValue::Day(d) => (d.month(), d.day(), jiff::civil::Time::midnight()),
    };
    let time = match at {
        Some(minute) => jiff::civil::time((minute / 60) as i8, (minute % 60) as i8, 0, 0),
        None => time,
    };
    let year = Timestamp::from_millisecond(after.max(0))
        .ok()?
        .to_zoned(zone.clone())
        .year();
    for y in year.saturating_sub(1)..=year.saturating_add(1) {
        let Ok(first) = Date::new(y, month, 1) else {
            continue;
        };
        let day = day.min(first.days_in_month());
        let Ok(date) = Date::new(y, month, day) else {
            continue;
        };
        let Ok(at) = date.to_datetime(time).to_zoned(zone.clone()) else {
            continue;
        };
        let at = at.timestamp().as_millisecond();
        if at > after {
            return Some(at).filter(|&t| t <= MAX_TIME_MS);
        }
    }
    None
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(jiff::Span::new().days(days)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{format_timestamp, parse_timestamp};

    /// Minute of the local day at `at` from the zone's rules alone: the
    /// reference the cached [`Zones::local_minute`] is held to.
    fn local_minute(at: i64, zone: &TimeZone) -> u16 {
        match Timestamp::from_millisecond(at) {
            Ok(ts) => {
                let z = ts.to_zoned(zone.clone());
                (z.hour() as u16) * 60 + z.minute() as u16
            }
            Err(_) => 0,
        }
    }

    fn ts(text: &str) -> i64 {
        parse_timestamp(text).unwrap_or_else(|| panic!("bad test timestamp {text}"))
    }

    #[test]
    fn next_time_is_strictly_after_now() {
        let utc = TimeZone::UTC;
        let now = ts("2026-03-02T09:00:00Z");
        assert_eq!(
            next_local_time(now, &utc, 9 * 60, 0)
                .map(format_timestamp)
                .unwrap_or_default(),
            "2026-03-03T09:00:00Z"
        );
        assert_eq!(
            next_local_time(now, &utc, 10 * 60, 0)
                .map(format_timestamp)
                .unwrap_or_default(),
            "2026-03-02T10:00:00Z"
        );
    }

    #[test]
    fn next_time_on_weekdays() {
        // 2026-03-02 is a Monday; next Saturday 10:00.
        let now = ts("2026-03-02T09:00:00Z");
        let saturday = 1 << 5;
        let at = next_local_time(now, &TimeZone::UTC, 600, saturday);
        assert_eq!(
            at.map(format_timestamp).as_deref(),
            Some("2026-03-07T10:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_in_paris() {
        let mut zones = Zones::default();
        let id = zones.get("Europe/Paris");
        let paris = zones.tz(id).clone();
        assert_eq!(paris.iana_name(), Some("Europe/Paris"));
        // Saturday 2026-03-28 22:00 local (21:00Z, UTC+1): 08:00 next day is
        // after the spring-forward jump, so UTC+2 → 06:00Z.
        let now = ts("2026-03-28T21:00:00Z");
        assert_eq!(
            next_local_time(now, &paris, 480, 0)
                .map(format_timestamp)
                .unwrap_or_default(),
            "2026-03-29T06:00:00Z"
        );
        assert!(zones.get("Mars/Olympus").is_none());
    }

    #[test]
    fn cached_offsets_agree_with_the_zone_rules() {
        let mut zones = Zones::default();
        for name in [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "UTC",
        ] {
            let zone = zones.get(name);
            assert!(zone.is_some(), "{name}");
            let tz = zones.tz(zone).clone();
            // Forward through two years in uneven steps (crossing every
            // transition), then a few steps back in time.
            let mut at = ts("2025-12-31T22:59:00Z");
            for step in 0..3_000 {
                at += 17 * 60_000 + 3_600_000 * (step % 11);
                assert_eq!(
                    zones.local_minute(zone, at),
                    local_minute(at, &tz),
                    "{name} {at}"
                );
            }
            for back in [1, 86_400_000, 40_000_000_000] {
                let t = at - back;
                assert_eq!(
                    zones.local_minute(zone, t),
                    local_minute(t, &tz),
                    "{name} {t}"
                );
            }
            // Exactly at and around a transition (Paris: 2026-03-29 01:00Z).
            let edge = ts("2026-03-29T01:00:00Z");
            for t in [edge - 1, edge, edge + 1] {
                assert_eq!(
                    zones.local_minute(zone, t),
                    local_minute(t, &tz),
                    "{name} {t}"
                );
            }
        }
        assert_eq!(zones.local_minute(None, ts("2026-03-02T09:05:00Z")), 545);
    }

    #[test]
    fn zone_names_from_input_cannot_grow_memory() {
        let mut zones = Zones::default();
        for i in 0..(Zones::MAX_NAMES * 3) {
            assert!(zones.get(&format!("Nowhere/Place_{i}")).is_none());
        }
        assert_eq!(zones.ids.len(), Zones::MAX_NAMES);
        // Every spelling of one zone leads to one kept zone.
        for name in [
            "Europe/Paris",
            "europe/paris",
            "EUROPE/PARIS",
            "Europe/PARIS",
        ] {
            assert!(zones.get(name).is_some(), "{name}");
        }
        assert_eq!(zones.zones.len(), 1);
        assert_eq!(zones.get("europe/paris"), zones.get("Europe/Paris"));
    }

    #[test]
    fn no_local_time_after_the_last_representable_day() {
        let late = MAX_TIME_MS - 12 * 3_600_000;
        for zone in ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"] {
            let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
            // Local time is not computed past the last day of year 9999.
            assert_eq!(next_local_time(late, &tz, 8 * 60, 0), None, "{zone}");
        }
        assert_eq!(next_local_time(i64::MAX, &TimeZone::UTC, 0, 0), None);
        assert_eq!(next_local_time(i64::MIN, &TimeZone::UTC, 0, 0), None);
    }

    fn text(at: Option<i64>) -> String {
        at.map(format_timestamp).unwrap_or_default()
    }

    #[test]
    fn date_moments_in_a_zone() {
        let paris = TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC);
        let renewal =
            DateValue::of(&crate::value::Value::str("2026-04-20")).unwrap_or(DateValue::Instant(0));
        // A date alone is midnight in the zone (UTC+2 in April).
        assert_eq!(
            text(date_moment(renewal, 0, None, &paris)),
            "2026-04-19T22:00:00Z"
        );
        // 30 days before, at 09:00 local: across the spring-forward change
        // (21 March is UTC+1).
        let day = 86_400_000;
        assert_eq!(
            text(date_moment(renewal, -30 * day, Some(9 * 60), &paris)),
            "2026-03-21T08:00:00Z"
        );
        let instant = DateValue::Instant(ts("2026-04-20T15:30:00Z"));
        assert_eq!(
            text(date_moment(instant, day, None, &paris)),
            "2026-04-21T15:30:00Z"
        );
        assert_eq!(DateValue::of(&crate::value::Value::str("soon")), None);
        assert_eq!(DateValue::of(&crate::value::Value::Null), None);
    }

    #[test]
    fn anniversaries_of_29_february() {
        let utc = TimeZone::UTC;
        let leap =
            DateValue::of(&crate::value::Value::str("1996-02-29")).unwrap_or(DateValue::Instant(0));
        let next = anniversary_after(leap, Some(10 * 60), &utc, ts("2026-01-01T00:00:00Z"));
        assert_eq!(text(next), "2026-02-28T10:00:00Z");
        let next = anniversary_after(leap, Some(10 * 60), &utc, ts("2027-03-01T00:00:00Z"));
        assert_eq!(text(next), "2028-02-29T10:00:00Z");
        // Strictly after: the same instant gives next year's.
        let next = anniversary_after(leap, Some(10 * 60), &utc, ts("2028-02-29T10:00:00Z"));
        assert_eq!(text(next), "2029-02-28T10:00:00Z");
        // Month and day read in the zone: 23:30Z on 14 May is 15 May in Tokyo.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap_or(TimeZone::UTC);
        let born = DateValue::Instant(ts("1990-05-14T23:30:00Z"));
        let next = anniversary_after(born, Some(9 * 60), &tokyo, ts("2026-01-01T00:00:00Z"));
        assert_eq!(text(next), "2026-05-15T00:00:00Z");
    }

    #[test]
    fn windows_wrap_midnight() {
        assert!(in_window(22 * 60, 21 * 60, 8 * 60));
        assert!(in_window(7 * 60, 21 * 60, 8 * 60));
        assert!(!in_window(8 * 60, 21 * 60, 8 * 60));
        assert!(in_window(12 * 60, 12 * 60, 14 * 60));
        assert!(!in_window(14 * 60, 12 * 60, 14 * 60));
    }
}
