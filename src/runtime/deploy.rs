//! A deploy inside a running runtime (SERVICE.md §8): every customer's state
//! moved from the program it was made by to the next one.
//!
//! The next program is [`crate::pipeline::merge`]'s: the new version
//! of the journeys, plus the earlier versions of journeys whose steps
//! changed, kept while customers are inside them. The move:
//!
//! - an instance of a journey whose [`shape`] is unchanged moves to the new
//!   version at its step, with its timers, captured trigger values and
//!   handles (matched by name);
//! - an instance of a journey whose steps changed, or that the new version
//!   removed, moves to the kept copy of the version it entered, and
//!   finishes there;
//! - what the journey remembers of a customer across instances (the number
//!   of entries, so that message ids stay unique and `once` stays once;
//!   the last entry, for re-entry cool-downs; its silences) stays with the
//!   journey's name, in the new version;
//! - profile values, sends counted by caps and counters follow their
//!   slot's path, their channel's and their journey's name.
//!
//! Nothing here reads a clock: a deploy applied at the same journal position
//! moves the same state the same way, so replay reproduces it.

use std::sync::Arc;

use super::Runtime;
use super::engine::Layout;
use super::store::MemStore;
use super::{JourneyStats, Stats};
use crate::compile::deploy::shape;
use crate::compile::program::{ChannelId, JourneyId, Program, SlotId};

/// Where one journey's state goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct JourneyMove {
    /// The journey its running instance (and goal window) continues in.
    pub instance: Option<JourneyId>,
    /// The journey that keeps its entry count, last entry and silences.
    pub counters: Option<JourneyId>,
    /// Per trigger field of `instance`, the old field it takes its value
    /// from.
    pub trigger: Vec<Option<usize>>,
    /// Per handle of `instance`, the old handle it is.
    pub handles: Vec<Option<usize>>,
}

/// Every id of a state, old to new.
#[derive(Clone, Debug, Default)]
pub(crate) struct Moves {
    pub journeys: Vec<JourneyMove>,
    pub slots: Vec<Option<SlotId>>,
    pub channels: Vec<Option<ChannelId>>,
    /// Per old silence slot: the new slot, and how much later it is due
    /// (the new duration less the old).
    pub silences: Vec<Option<(usize, i64)>>,
    pub old_silence_base: Box<[usize]>,
}

impl Moves {
    pub(crate) fn between(old: &Program, new: &Program, live_version: u32) -> Moves {
        let journeys: Vec<JourneyMove> = old
            .journeys
            .iter()
            .map(|j| {
                let live = new.live_journey(&j.name);
                let instance = match j.retired {
                    Some(v) => kept(new, &j.name, v),
                    None => match live {
                        Some(n) if shape(old, j) == shape(new, &new.journeys[n as usize]) => {
                            Some(n)
                        }
                        _ => kept(new, &j.name, live_version),
                    },
                };
                let counters = match j.retired {
                    Some(_) => instance,
                    None => live,
                };
                let (trigger, handles) = match instance {
                    Some(n) => {
                        let n = &new.journeys[n as usize];
                        (
                            n.trigger_fields
                                .iter()
                                .map(|p| j.trigger_fields.iter().position(|q| q == p))
                                .collect(),
                            n.handles
                                .iter()
                                .map(|h| j.handles.iter().position(|g| g == h))
                                .collect(),
                        )
                    }
                    None => (Vec::new(), Vec::new()),
                };
                JourneyMove {
                    instance,
                    counters,
                    trigger,
                    handles,
                }
            })
            .collect();
        let slots = old
            .profile_slots
            .iter()
            .map(|s| {
                new.profile_slots
                    .iter()
                    .position(|n| n.path == s.path)
                    .map(|i| i as SlotId)
            })
            .collect();
        let channels = old
            .channels
            .iter()
            .map(|c| {
                new.channels
                    .iter()
                    .position(|n| n.name == c.name)
                    .map(|i| i as ChannelId)
            })
            .collect();
        let old_layout = Layout::new(old);
        let new_layout = Layout::new(new);
        let mut silences = Vec::new();
        for (j, journey) in old.journeys.iter().enumerate() {
            let target = journeys[j].counters.map(|n| (n, &new.journeys[n as usize]));
            for absence in &journey.absence {
                let event = |e: Option<u32>| e.map(|e| &*old.events[e as usize].name);
                let to = target.and_then(|(n, next)| {
                    let i = next.absence.iter().position(|a| {
                        a.event.map(|e| &*new.events[e as usize].name) == event(absence.event)
                    })?;
                    Some((
                        new_layout.silence_base[n as usize] + i,
                        next.absence[i].silence_ms - absence.silence_ms,
                    ))
                });
                silences.push(to);
            }
        }
        Moves {
            journeys,
            slots,
            channels,
            silences,
            old_silence_base: old_layout.silence_base,
        }
    }
}

/// The kept copy of version `version` of journey `name` in `program`.
fn kept(program: &Program, name: &str, version: u32) -> Option<JourneyId> {
    program
        .journeys_named(name)
        .find(|&j| program.journeys[j as usize].retired == Some(version))
}

impl Runtime<MemStore> {
    /// The earlier versions of journeys this runtime's customers are
    /// inside and would stay on if `next` (a version of the journeys
    /// compiled alone) were deployed over it: the live journeys of
    /// `live_version` whose steps `next` changes or drops, and the versions
    /// already kept that still have someone inside. The names are sorted.
    pub fn kept_after(&self, next: &Program, live_version: u32) -> Vec<(Arc<str>, u32)> {
        let program = &self.program;
        let inside = self.store.journeys_in_use(program.journeys.len());
        let mut out: Vec<(Arc<str>, u32)> = Vec::new();
        for (j, journey) in program.journeys.iter().enumerate() {
            if !inside[j] {
                continue;
            }
            let version = match journey.retired {
                Some(v) => v,
                None => match next.live_journey(&journey.name) {
                    Some(n)
                        if shape(program, journey) == shape(next, &next.journeys[n as usize]) =>
                    {
                        continue;
                    }
                    _ => live_version,
                },
            };
            out.push((journey.name.clone(), version));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Deploys `program` (a [`crate::pipeline::merge`] of the new
    /// version and the versions [`Runtime::kept_after`] named) over this
    /// runtime, whose live journeys are version `live_version`: every
    /// customer's state moves as the module says.
    pub fn redeploy(&mut self, program: Arc<Program>, live_version: u32) {
        let moves = Moves::between(&self.program, &program, live_version);
        let mut store = std::mem::take(&mut self.store);
        store.migrate(&moves, &program);
        let stats = migrate_stats(
            &self.program,
            &program,
            &moves,
            std::mem::take(&mut self.stats),
        );
        let options = self.options;
        *self = Runtime::build(program, store, stats).with_options(options);
        // The deploy dropped the date timers: queue them for the new
        // journeys from the profiles.
        self.requeue_dates();
    }
}

/// The counters, by journey and channel name: a journey's go where its
/// instances go.
fn migrate_stats(old: &Program, new: &Program, moves: &Moves, stats: Stats) -> Stats {
    let mut next = Stats::for_program(new);
    let Stats {
        journeys: old_journeys,
        ..
    } = &stats;
    for (j, counters) in old_journeys.iter().enumerate() {
        let Some(m) = moves.journeys.get(j) else {
            continue;
        };
        let Some(target) = m.instance.or(m.counters) else {
            continue;
        };
        let mut moved: JourneyStats = counters.clone();
        let by_channel = |counts: &[u64]| {
            let mut moved = vec![0; new.channels.len()];
            for (c, n) in counts.iter().enumerate() {
                if let Some(Some(to)) = moves.channels.get(c) {
                    moved[*to as usize] += n;
                }
            }
            moved
        };
        moved.sent_by_channel = by_channel(&counters.sent_by_channel);
        for day in &mut moved.sent_by_day {
            day.by_channel = by_channel(&day.by_channel);
        }
        let steps = new.journeys[target as usize].nodes.len();
        moved.nodes.resize(steps, Default::default());
        if old.journeys[j].nodes.len() != steps || m.instance != Some(target) {
            // Another graph: its steps' counters start afresh.
            moved.nodes = vec![Default::default(); steps];
        }
        next.journeys[target as usize] = moved;
    }
    Stats {
        journeys: next.journeys,
        ..stats
    }
}
