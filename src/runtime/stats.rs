//! Counters the runtime keeps instead of failing: data problems (late and
//! duplicate events, type mismatches, unknown time zones, render errors) and
//! the per-journey, per-step report of `journey simulate`.

use serde::{Deserialize, Serialize};

use super::action::ExitReason;
use crate::compile::program::Program;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Track and identify events handed to the runtime.
    pub events: u64,
    /// Track events whose name no journey uses (dropped at once).
    pub irrelevant: u64,
    /// Events older than the clock, processed at the clock's time.
    pub late: u64,
    /// Events dropped because their `messageId` was seen before.
    pub duplicates: u64,
    /// `page`, `screen`, `group`, `alias` messages.
    pub ignored_kinds: u64,
    /// Expressions whose operands had the wrong types (condition false).
    pub type_mismatches: u64,
    /// Time-zone names that are not in the database (UTC used).
    pub unknown_time_zones: u64,
    /// Template parts that failed to render (rendered as empty).
    pub render_errors: u64,
    /// Engagement events that named no message of an active instance.
    pub unmatched_engagements: u64,
    pub journeys: Vec<JourneyStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JourneyStats {
    pub entered: u64,
    pub held_out: u64,
    pub converted: u64,
    pub sent: u64,
    pub suppressed: u64,
    /// Exits by reason, in [`ExitReason::ALL`] order.
    pub exits: [u64; 6],
    /// Arrivals at each node (index = node id).
    pub nodes: Vec<u64>,
}

impl Stats {
    pub fn for_program(program: &Program) -> Stats {
        Stats {
            journeys: program
                .journeys
                .iter()
                .map(|j| JourneyStats {
                    nodes: vec![0; j.nodes.len()],
                    ..JourneyStats::default()
                })
                .collect(),
            ..Stats::default()
        }
    }

    pub(crate) fn journey(&mut self, journey: u32) -> &mut JourneyStats {
        let index = journey as usize;
        if index >= self.journeys.len() {
            self.journeys.resize_with(index + 1, JourneyStats::default);
        }
        &mut self.journeys[index]
    }
}

impl JourneyStats {
    pub fn exits(&self, reason: ExitReason) -> u64 {
        self.exits[reason as usize]
    }

    pub(crate) fn visit(&mut self, node: u32) {
        let index = node as usize;
        if index >= self.nodes.len() {
            self.nodes.resize(index + 1, 0);
        }
        self.nodes[index] += 1;
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
