//! Local time: time zones by name (cached, unknown names fall back to UTC),
//! quiet-hours windows and "the next HH:MM strictly after now", following
//! each zone's rules, daylight saving included (jiff's bundled database).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rustc_hash::FxHashMap;

/// Time zones by name, each looked up in the database once, each with the
/// offset of the last instant asked about and how long it holds: local time
/// is needed for every send under quiet hours, and the offset changes twice
/// a year, so the zone's transition table is searched only when a change
/// is passed.
#[derive(Default)]
pub struct Zones {
    ids: FxHashMap<Box<str>, Option<ZoneId>>,
    zones: Vec<Cached>,
}

/// A known zone; [`Zones::tz`] and [`Zones::local_minute`] read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The zone of that name; `None` when the database does not know it.
    pub fn get(&mut self, name: &str) -> Option<ZoneId> {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = TimeZone::get(name).ok().map(|tz| {
            self.zones.push(Cached {
                tz,
                from: 0,
                until: 0,
                offset: 0,
            });
            ZoneId((self.zones.len() - 1) as u32)
        });
        self.ids.insert(name.into(), id);
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
/// just after the gap, as calendars do.
pub fn next_local_time(now: i64, zone: &TimeZone, minute: u16, weekdays: u8) -> i64 {
    let Ok(ts) = Timestamp::from_millisecond(now) else {
        return now + 86_400_000;
    };
    let today = ts.to_zoned(zone.clone()).date();
    let (hour, min) = ((minute / 60) as i8, (minute % 60) as i8);
    for offset in 0..=8 {
        let Some(date) = add_days(today, offset) else {
            break;
        };
        let day_bit = 1u8 << date.weekday().to_monday_zero_offset();
        if weekdays != 0 && weekdays & day_bit == 0 {
            continue;
        }
        let Ok(at) = date.at(hour, min, 0, 0).to_zoned(zone.clone()) else {
            continue;
        };
        let at = at.timestamp().as_millisecond();
        if at > now {
            return at;
        }
    }
    // Unreachable for valid input (a week holds every weekday); stay safe.
    now + 86_400_000
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
            format_timestamp(next_local_time(now, &utc, 9 * 60, 0)),
            "2026-03-03T09:00:00Z"
        );
        assert_eq!(
            format_timestamp(next_local_time(now, &utc, 10 * 60, 0)),
            "2026-03-02T10:00:00Z"
        );
    }

    #[test]
    fn next_time_on_weekdays() {
        // 2026-03-02 is a Monday; next Saturday 10:00.
        let now = ts("2026-03-02T09:00:00Z");
        let saturday = 1 << 5;
        let at = next_local_time(now, &TimeZone::UTC, 600, saturday);
        assert_eq!(format_timestamp(at), "2026-03-07T10:00:00Z");
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
            format_timestamp(next_local_time(now, &paris, 480, 0)),
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
    fn windows_wrap_midnight() {
        assert!(in_window(22 * 60, 21 * 60, 8 * 60));
        assert!(in_window(7 * 60, 21 * 60, 8 * 60));
        assert!(!in_window(8 * 60, 21 * 60, 8 * 60));
        assert!(in_window(12 * 60, 12 * 60, 14 * 60));
        assert!(!in_window(14 * 60, 12 * 60, 14 * 60));
    }
}
