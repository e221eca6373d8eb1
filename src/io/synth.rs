//! A deterministic generator of realistic Segment streams: customers with
//! profiles, sessions of the shared event vocabulary, message engagements,
//! duplicates, late events and, on request, malformed lines — streamed one
//! day at a time so that ten million events never sit in memory at once.
//!
//! Everything is derived from the seed (splitmix64, no wall clock), one
//! generator per user and day, so the same options give the same bytes on
//! every machine.

mod activity;
mod catalog;
mod profile;
mod rng;
mod write;

use std::io::{self, Write};

use activity::Record;
use profile::Profile;
use rng::Rng;
use write::Shape;

const DAY_MS: i64 = 86_400_000;
const SALT_MALFORMED: u64 = 0x6d61_6c66;

/// Events a session brings on average, its consequences (orders after an
/// abandoned cart, reviews, opens and clicks) included; measured on the
/// generator itself and used to reach the events target.
const EVENTS_PER_SESSION: f64 = 4.0;
/// Events every user who appears brings besides sessions (the first
/// `identify`; for new users `signed_up` and the welcome engagement).
const EVENTS_PER_USER: f64 = 1.5;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    /// Customers (`user-00001` ...); not all of them are active.
    pub users: u32,
    /// The number of events to aim for; the stream comes within a few
    /// percent of it for more than a few hundred users.
    pub events: u64,
    /// The first day, in milliseconds since the Unix epoch (a UTC midnight
    /// reads best).
    pub start_ms: i64,
    pub days: u32,
    pub seed: u64,
    /// The share of extra lines that are malformed (`0.001`: one in a
    /// thousand), each next to a well-formed one.
    pub malformed_rate: f64,
}

/// 2026-03-02T00:00:00Z, the start of the example data.
const EXAMPLE_START_MS: i64 = 1_772_409_600_000;

impl Default for SynthOptions {
    fn default() -> SynthOptions {
        SynthOptions {
            users: 1_000,
            events: 10_000,
            start_ms: EXAMPLE_START_MS,
            days: 28,
            seed: 1,
            malformed_rate: 0.0,
        }
    }
}

impl SynthOptions {
    /// The options behind `journeys/events.ndjson`: 300 customers over four
    /// weeks from 2026-03-02, with a few malformed lines.
    pub fn example() -> SynthOptions {
        SynthOptions {
            users: 300,
            events: 3_000,
            start_ms: EXAMPLE_START_MS,
            days: 28,
            seed: 2026,
            malformed_rate: 0.001,
        }
    }
}

/// The lines of a stream, in time order but for duplicates and late events.
pub fn generate(options: SynthOptions) -> SynthStream {
    SynthStream::new(options)
}

/// Writes the whole stream, one line each, and returns the line count.
pub fn write_stream(options: SynthOptions, out: &mut impl Write) -> io::Result<u64> {
    let mut stream = SynthStream::new(options);
    let mut line = String::with_capacity(512);
    let mut count = 0;
    while stream.next_line(&mut line) {
        line.push('\n');
        out.write_all(line.as_bytes())?;
        count += 1;
    }
    Ok(count)
}

/// A stream being generated: one day's records at a time, plus the later
/// consequences already decided (a review in ten days).
pub struct SynthStream {
    options: SynthOptions,
    sessions_per_day: f64,
    /// The next day to generate.
    day: u32,
    /// The current day's records, sorted; `next` is the first not yet written.
    batch: Vec<Record>,
    next: usize,
    /// Records due after the current day.
    carry: Vec<Record>,
    scratch: Vec<Record>,
    identified: Vec<bool>,
    malformed: Rng,
    /// A malformed line to write after the current one.
    pending: Option<String>,
}

impl SynthStream {
    fn new(options: SynthOptions) -> SynthStream {
        let users = f64::from(options.users.max(1));
        let active_days = f64::from(options.days.max(1)) * (1.0 - profile::NEW_USER_SHARE / 2.0);
        let sessions_per_user =
            (options.events as f64 / users - EVENTS_PER_USER).max(0.0) / EVENTS_PER_SESSION;
        SynthStream {
            sessions_per_day: sessions_per_user / active_days / profile::ACTIVITY_MEAN,
            day: 0,
            batch: Vec::new(),
            next: 0,
            carry: Vec::new(),
            scratch: Vec::new(),
            identified: vec![false; options.users as usize],
            malformed: Rng::derive(&[options.seed, SALT_MALFORMED]),
            pending: None,
            options,
        }
    }

    /// Replaces `line` with the next line (no newline); false at the end.
    pub fn next_line(&mut self, line: &mut String) -> bool {
        line.clear();
        if let Some(pending) = self.pending.take() {
            line.push_str(&pending);
            return true;
        }
        if !self.fill() {
            return false;
        }
        let record = &self.batch[self.next];
        self.next += 1;
        let profile = Profile::derive(
            self.options.seed,
            record.user,
            self.options.start_ms,
            self.options.days,
        );
        write::line(self.options.seed, record, &profile, Shape::WellFormed, line);
        if self.malformed.chance(self.options.malformed_rate) {
            self.pending = Some(self.malformed_line(line, self.next - 1));
        }
        true
    }

    fn malformed_line(&mut self, good: &str, index: usize) -> String {
        let record = &self.batch[index];
        let profile = Profile::derive(
            self.options.seed,
            record.user,
            self.options.start_ms,
            self.options.days,
        );
        let is_track = !matches!(
            record.body,
            activity::Body::Identify | activity::Body::Traits(_)
        );
        let mut out = String::new();
        match self.malformed.below(6) {
            0 => {
                // A line cut short, as by a crashed writer.
                let mut cut = self.malformed.between(10, good.len().max(11) as i64 - 1) as usize;
                while !good.is_char_boundary(cut.min(good.len())) {
                    cut -= 1;
                }
                out.push_str(&good[..cut.min(good.len())]);
            }
            1 => write::line(
                self.options.seed,
                record,
                &profile,
                Shape::NoTimestamp,
                &mut out,
            ),
            2 => write::line(
                self.options.seed,
                record,
                &profile,
                Shape::BadTimestamp,
                &mut out,
            ),
            3 if is_track => write::line(
                self.options.seed,
                record,
                &profile,
                Shape::NoEvent,
                &mut out,
            ),
            3 | 4 => write::line(self.options.seed, record, &profile, Shape::NoUser, &mut out),
            _ => out.push_str("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        }
        out
    }

    /// Makes sure `batch[next]` exists, generating days as needed.
    fn fill(&mut self) -> bool {
        while self.next >= self.batch.len() {
            if self.day >= self.options.days {
                return false;
            }
            self.generate_day();
        }
        true
    }

    fn generate_day(&mut self) {
        let options = &self.options;
        let day_start = options.start_ms + i64::from(self.day) * DAY_MS;
        let day_end = day_start + DAY_MS;
        let range_end = options.start_ms + i64::from(options.days) * DAY_MS;
        let day = activity::Day {
            seed: options.seed,
            index: self.day,
            start_ms: day_start,
            range_start_ms: options.start_ms,
            sessions_per_day: self.sessions_per_day,
        };
        for (user, identified) in (0..options.users).zip(self.identified.iter_mut()) {
            let profile = Profile::derive(options.seed, user, options.start_ms, options.days);
            activity::user_day(&day, user, &profile, identified, &mut self.scratch);
        }
        self.carry.append(&mut self.scratch);
        self.batch.clear();
        self.next = 0;
        // Order within `carry` does not matter: the batch is sorted by a
        // unique key below.
        let mut i = 0;
        while i < self.carry.len() {
            let sort_at = self.carry[i].sort_at;
            if sort_at >= range_end {
                self.carry.swap_remove(i);
            } else if sort_at < day_end {
                self.batch.push(self.carry.swap_remove(i));
            } else {
                i += 1;
            }
        }
        self.batch.sort_unstable_by_key(Record::key);
        self.day += 1;
    }
}

impl Iterator for SynthStream {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut line = String::with_capacity(400);
        self.next_line(&mut line).then_some(line)
    }
}

#[cfg(test)]
mod tests;
