//! Counters the runtime keeps instead of failing: data problems (late and
//! duplicate events, type mismatches, unknown time zones, render errors) and
//! the per-journey, per-step report of `journey simulate`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::action::{ExitReason, SuppressReason};
use super::attribution::AttributionStats;
use crate::compile::program::Program;
use crate::value::Str;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Track and identify events handed to the runtime.
    pub events: u64,
    /// Track events whose name no journey uses (dropped at once).
    pub irrelevant: u64,
    /// Events older than the clock, processed at the clock's time.
    pub late: u64,
    /// Events refused for their time: before 1970, after 9999, or too far
    /// ahead of the clock ([`super::Rejected`]).
    #[serde(default)]
    pub rejected: u64,
    /// Events dropped because their `messageId` was seen before.
    pub duplicates: u64,
    /// `messageId`s the de-duplication window forgot before their time,
    /// because it held as many as its capacity: a redelivery of one would
    /// be processed again.
    #[serde(default)]
    pub dedup_evicted_early: u64,
    /// `page`, `screen`, `group`, `alias` messages.
    pub ignored_kinds: u64,
    /// Expressions whose operands had the wrong types (condition false).
    pub type_mismatches: u64,
    /// Time-zone names that are not in the database (UTC used).
    pub unknown_time_zones: u64,
    /// Sends not made because their template failed to render.
    pub render_errors: u64,
    /// Engagement events that named no message of an active instance.
    pub unmatched_engagements: u64,
    pub journeys: Vec<JourneyStats>,
    /// Conversions and the credit of the sends before them (LANGUAGE.md
    /// §4.4); all zero without an `attribution` item.
    #[serde(default)]
    pub attribution: AttributionStats,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JourneyStats {
    /// Entries, held-out ones included.
    pub entered: u64,
    pub held_out: u64,
    /// Conversions, held-out ones included.
    pub converted: u64,
    pub converted_held_out: u64,
    pub sent: u64,
    /// Sends per channel (index = channel id).
    pub sent_by_channel: Vec<u64>,
    pub suppressed: u64,
    /// Suppressions by reason, in [`SuppressReason::ALL`] order.
    pub suppressed_by_reason: [u64; 3],
    /// Sends suppressed because their template failed to render, per step
    /// and template, in the order first seen.
    pub render_failures: Vec<RenderFailure>,
    /// Exits by reason, in [`ExitReason::ALL`] order.
    pub exits: [u64; ExitReason::ALL.len()],
    /// Per node (index = node id).
    pub nodes: Vec<NodeStats>,
    /// Sends per UTC day of the clock (sorted by day, each once), per
    /// channel (index = channel id).
    #[serde(default)]
    pub sent_by_day: Vec<DaySends>,
    /// Users offered entry (a trigger matched, a schedule, a date or a
    /// segment) who were not admitted, by reason.
    #[serde(default)]
    pub not_admitted: NotAdmitted,
}

/// Why users offered entry were not admitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAdmitted {
    /// Already inside the journey (one active instance at a time).
    pub already_active: u64,
    /// The re-entry rule said no (`reentry never`, or `after` too soon).
    pub reentry: u64,
    /// The audience did not hold.
    pub audience: u64,
    /// The trigger's `per trigger.<path>` key was null.
    pub null_key: u64,
}

impl NotAdmitted {
    /// The reasons and their counts, in the report's order.
    pub fn all(&self) -> [(&'static str, u64); 4] {
        [
            ("already_active", self.already_active),
            ("reentry", self.reentry),
            ("audience", self.audience),
            ("null_key", self.null_key),
        ]
    }

    fn merge(&mut self, other: &NotAdmitted) {
        self.already_active += other.already_active;
        self.reentry += other.reentry;
        self.audience += other.audience;
        self.null_key += other.null_key;
    }
}

/// One arm of a split step: the instances that took it, the messages sent
/// to them from then on, and their conversions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmStats {
    pub entered: u64,
    pub sent: u64,
    pub converted: u64,
}

/// The sends of one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySends {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Sends per channel (index = channel id).
    pub by_channel: Vec<u64>,
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The render failures of one template at one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderFailure {
    pub node: u32,
    pub template: Arc<str>,
    pub count: u64,
    /// The first and the latest error, in words (`body: ...`).
    pub first: String,
    pub last: String,
    /// When the first and the latest happened, and to whom: "first" and
    /// "latest" are by (time, user key), so that the counters of runtimes
    /// that each held some of the customers merge to one runtime's.
    pub first_at: (i64, Str),
    pub last_at: (i64, Str),
}

impl RenderFailure {
    /// Folds another failure of the same step and template into this one.
    fn absorb(&mut self, other: RenderFailure) {
        self.count += other.count;
        if other.first_at < self.first_at {
            self.first = other.first;
            self.first_at = other.first_at;
        }
        if other.last_at >= self.last_at {
            self.last = other.last;
            self.last_at = other.last_at;
        }
    }
}

/// What happened at one step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Instances that reached the step.
    pub arrived: u64,
    /// Messages the step sent.
    pub sent: u64,
    /// Messages the step sent per alternative of its `send` (index =
    /// alternative, in source order).
    #[serde(default)]
    pub sent_by_alternative: Vec<u64>,
    /// Times the step was skipped with a `suppress`.
    pub suppressed: u64,
    /// Its suppressions by reason, in [`SuppressReason::ALL`] order.
    #[serde(default)]
    pub suppressed_by_reason: [u64; SuppressReason::ALL.len()],
    /// Instances that ended at this step, by reason, in
    /// [`ExitReason::ALL`] order (held-out ones end at no step).
    #[serde(default)]
    pub exits: [u64; ExitReason::ALL.len()],
    /// For a split step, per arm (in source order).
    #[serde(default)]
    pub arms: Vec<ArmStats>,
}

impl Stats {
    pub fn for_program(program: &Program) -> Stats {
        Stats {
            journeys: program
                .journeys
                .iter()
                .map(|j| JourneyStats {
                    nodes: vec![NodeStats::default(); j.nodes.len()],
                    sent_by_channel: vec![0; program.channels.len()],
                    ..JourneyStats::default()
                })
                .collect(),
            ..Stats::default()
        }
    }

    /// Whether these counters can be the program's (a restored snapshot's
    /// may be damaged or forged): no more journeys, steps or channels than
    /// it has.
    pub fn validate(&self, program: &Program) -> Result<(), String> {
        if self.journeys.len() > program.journeys.len() {
            return Err(format!(
                "counters for {} journeys, and the program has {}",
                self.journeys.len(),
                program.journeys.len()
            ));
        }
        for (stats, journey) in self.journeys.iter().zip(&program.journeys) {
            if stats.nodes.len() > journey.nodes.len()
                || stats.sent_by_channel.len() > program.channels.len()
                || stats
                    .sent_by_day
                    .iter()
                    .any(|d| d.by_channel.len() > program.channels.len())
                || !stats.sent_by_day.is_sorted_by(|a, b| a.day < b.day)
            {
                return Err(format!(
                    "the counters of journey `{}` do not fit its steps and channels",
                    journey.name
                ));
            }
        }
        Ok(())
    }

    /// Adds `other`'s counters to these: the counters of two runtimes that
    /// ran disjoint sets of customers over one program (the partitions of
    /// `journey serve`) are the sum of theirs, every vector element-wise.
    pub fn merge(&mut self, other: &Stats) {
        self.events += other.events;
        self.irrelevant += other.irrelevant;
        self.late += other.late;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
        self.dedup_evicted_early += other.dedup_evicted_early;
        self.ignored_kinds += other.ignored_kinds;
        self.type_mismatches += other.type_mismatches;
        self.unknown_time_zones += other.unknown_time_zones;
        self.render_errors += other.render_errors;
        self.unmatched_engagements += other.unmatched_engagements;
        for (j, theirs) in other.journeys.iter().enumerate() {
            self.journey(j as u32).merge(theirs);
        }
        self.attribution.merge(&other.attribution);
    }

    pub(crate) fn journey(&mut self, journey: u32) -> &mut JourneyStats {
        let index = journey as usize;
        if index >= self.journeys.len() {
            self.journeys.resize_with(index + 1, JourneyStats::default);
        }
        &mut self.journeys[index]
    }
}

impl NodeStats {
    /// The counters of arm `arm` of this split step, made when new.
    pub(crate) fn arm(&mut self, arm: usize) -> &mut ArmStats {
        if arm >= self.arms.len() {
            self.arms.resize(arm + 1, ArmStats::default());
        }
        &mut self.arms[arm]
    }
}

impl JourneyStats {
    pub fn exits(&self, reason: ExitReason) -> u64 {
        self.exits[reason as usize]
    }

    /// Adds `other`'s counters to these ([`Stats::merge`]). A render
    /// failure of a step and template both saw keeps this one's first
    /// error and `other`'s latest.
    pub fn merge(&mut self, other: &JourneyStats) {
        self.entered += other.entered;
        self.held_out += other.held_out;
        self.converted += other.converted;
        self.converted_held_out += other.converted_held_out;
        self.sent += other.sent;
        add_elementwise(&mut self.sent_by_channel, &other.sent_by_channel);
        self.suppressed += other.suppressed;
        for (mine, theirs) in self
            .suppressed_by_reason
            .iter_mut()
            .zip(other.suppressed_by_reason)
        {
            *mine += theirs;
        }
        for (mine, theirs) in self.exits.iter_mut().zip(other.exits) {
            *mine += theirs;
        }
        for (node, theirs) in other.nodes.iter().enumerate() {
            let mine = self.node(node as u32);
            mine.arrived += theirs.arrived;
            mine.sent += theirs.sent;
            add_elementwise(&mut mine.sent_by_alternative, &theirs.sent_by_alternative);
            mine.suppressed += theirs.suppressed;
            for (m, t) in mine
                .suppressed_by_reason
                .iter_mut()
                .zip(theirs.suppressed_by_reason)
            {
                *m += t;
            }
            for (m, t) in mine.exits.iter_mut().zip(theirs.exits) {
                *m += t;
            }
            for (arm, t) in theirs.arms.iter().enumerate() {
                let m = mine.arm(arm);
                m.entered += t.entered;
                m.sent += t.sent;
                m.converted += t.converted;
            }
        }
        for day in &other.sent_by_day {
            add_elementwise(self.day(day.day), &day.by_channel);
        }
        self.not_admitted.merge(&other.not_admitted);
        for f in &other.render_failures {
            self.add_render_failure(f.clone());
        }
    }

    pub(crate) fn visit(&mut self, node: u32) {
        self.node(node).arrived += 1;
    }

    pub(crate) fn node(&mut self, node: u32) -> &mut NodeStats {
        let index = node as usize;
        if index >= self.nodes.len() {
            self.nodes.resize(index + 1, NodeStats::default());
        }
        &mut self.nodes[index]
    }

    /// A send at `node` (its alternative `alternative`) on `channel` at
    /// `at` (epoch milliseconds).
    pub(crate) fn record_send(&mut self, node: u32, alternative: u8, channel: u16, at: i64) {
        self.sent += 1;
        let n = self.node(node);
        n.sent += 1;
        count(&mut n.sent_by_alternative, alternative as usize);
        count(&mut self.sent_by_channel, channel as usize);
        count(self.day(at.div_euclid(DAY_MS)), channel as usize);
    }

    /// An instance ended at `node` for `reason`.
    pub(crate) fn record_exit(&mut self, node: Option<u32>, reason: ExitReason) {
        self.exits[reason as usize] += 1;
        if let Some(node) = node {
            self.node(node).exits[reason as usize] += 1;
        }
    }

    /// The per-channel sends of `day`, added in order when new.
    fn day(&mut self, day: i64) -> &mut Vec<u64> {
        let i = match self.sent_by_day.binary_search_by_key(&day, |d| d.day) {
            Ok(i) => i,
            Err(i) => {
                self.sent_by_day.insert(
                    i,
                    DaySends {
                        day,
                        by_channel: Vec::new(),
                    },
                );
                i
            }
        };
        &mut self.sent_by_day[i].by_channel
    }

    /// A send at `node` to `user` at `at` that was not made: `template`
    /// failed to render.
    pub(crate) fn record_render_failure(
        &mut self,
        node: u32,
        template: &Arc<str>,
        error: String,
        (at, user): (i64, &Str),
    ) {
        self.record_suppress(node, SuppressReason::RenderFailed);
        self.add_render_failure(RenderFailure {
            node,
            template: template.clone(),
            count: 1,
            first: error.clone(),
            last: error,
            first_at: (at, user.clone()),
            last_at: (at, user.clone()),
        });
    }

    /// Kept sorted by step and template, each once.
    fn add_render_failure(&mut self, failure: RenderFailure) {
        let key = |f: &RenderFailure| (f.node, f.template.clone());
        match self
            .render_failures
            .binary_search_by_key(&key(&failure), key)
        {
            Ok(i) => self.render_failures[i].absorb(failure),
            Err(i) => self.render_failures.insert(i, failure),
        }
    }

    pub(crate) fn record_suppress(&mut self, node: u32, reason: SuppressReason) {
        self.suppressed += 1;
        self.suppressed_by_reason[reason as usize] += 1;
        let n = self.node(node);
        n.suppressed += 1;
        n.suppressed_by_reason[reason as usize] += 1;
    }
}

/// Adds one at `index`, growing `counts` to hold it.
fn count(counts: &mut Vec<u64>, index: usize) {
    if index >= counts.len() {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}

fn add_elementwise(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

/// FNV-1a, 64 bits: stable across machines and versions, so sticky choices
/// (holdout, splits) and de-duplication survive restarts.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator keeps ("ab", "c") and ("a", "bc") apart.
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A hash mapped to a bucket in [0, 100) with two decimals.
pub fn bucket(hash: u64) -> f64 {
    (hash % 10_000) as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_counters_add_up_element_by_element() {
        let mut ours = Stats {
            events: 2,
            duplicates: 1,
            ..Stats::default()
        };
        ours.journey(0).record_send(1, 0, 0, 0);
        let mut theirs = Stats {
            events: 3,
            late: 4,
            ..Stats::default()
        };
        theirs.journey(0).record_send(1, 0, 2, DAY_MS);
        theirs.journey(0).exits[ExitReason::Goal as usize] = 5;
        theirs.journey(1).visit(3);
        ours.merge(&theirs);
        assert_eq!((ours.events, ours.duplicates, ours.late), (5, 1, 4));
        let first = &ours.journeys[0];
        assert_eq!(first.sent, 2);
        assert_eq!(first.sent_by_channel, [1, 0, 1]);
        assert_eq!(first.nodes[1].sent, 2);
        assert_eq!(first.nodes[1].sent_by_alternative, [2]);
        let days: Vec<(i64, &[u64])> = first
            .sent_by_day
            .iter()
            .map(|d| (d.day, d.by_channel.as_slice()))
            .collect();
        assert_eq!(days, [(0, &[1][..]), (1, &[0, 0, 1][..])]);
        assert_eq!(first.exits(ExitReason::Goal), 5);
        assert_eq!(ours.journeys[1].nodes[3].arrived, 1);
    }

    fn journey(
        entered: u64,
        nodes: &[u64],
        channels: &[u64],
        failure: Option<(u64, &str, i64)>,
    ) -> JourneyStats {
        JourneyStats {
            entered,
            held_out: 1,
            sent: channels.iter().sum(),
            sent_by_channel: channels.to_vec(),
            suppressed_by_reason: [1, 2, 3],
            exits: [entered; ExitReason::ALL.len()],
            nodes: nodes
                .iter()
                .map(|&arrived| NodeStats {
                    arrived,
                    sent: 1,
                    ..NodeStats::default()
                })
                .collect(),
            render_failures: failure
                .map(|(count, error, at)| RenderFailure {
                    node: 2,
                    template: Arc::from("t"),
                    count,
                    first: error.to_string(),
                    last: error.to_string(),
                    first_at: (at, Str::new("u")),
                    last_at: (at, Str::new("u")),
                })
                .into_iter()
                .collect(),
            ..JourneyStats::default()
        }
    }

    #[test]
    fn merge_sums_every_counter_and_vectors_element_wise() {
        let mut mine = Stats {
            events: 3,
            late: 1,
            journeys: vec![journey(2, &[2, 1], &[1], Some((1, "a", 20)))],
            ..Stats::default()
        };
        let theirs = Stats {
            events: 4,
            duplicates: 2,
            journeys: vec![
                journey(5, &[5, 4, 3], &[0, 2], Some((2, "b", 10))),
                journey(1, &[1], &[1], None),
            ],
            ..Stats::default()
        };
        mine.merge(&theirs);
        assert_eq!((mine.events, mine.late, mine.duplicates), (7, 1, 2));
        assert_eq!(mine.journeys.len(), 2);
        let j = &mine.journeys[0];
        assert_eq!((j.entered, j.held_out, j.sent), (7, 2, 3));
        assert_eq!(j.sent_by_channel, vec![1, 2]);
        assert_eq!(j.suppressed_by_reason, [2, 4, 6]);
        assert_eq!(j.exits, [7; ExitReason::ALL.len()]);
        let arrived: Vec<u64> = j.nodes.iter().map(|n| n.arrived).collect();
        assert_eq!(arrived, vec![7, 5, 3]);
        assert_eq!(j.nodes[2].sent, 1);
        assert_eq!(j.render_failures.len(), 1);
        let f = &j.render_failures[0];
        // "b" happened first, "a" last: by time, whichever runtime saw it.
        assert_eq!((f.count, f.first.as_str(), f.last.as_str()), (3, "b", "a"));
        assert_eq!(mine.journeys[1], theirs.journeys[1]);
    }
}
