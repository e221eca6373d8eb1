//! [`MemStore`]'s half of a deploy ([`crate::runtime::deploy`]): every
//! user's state and every timer renumbered for the next program.

use super::{
    Instance, JourneyState, MemStore, SentRecord, Silences, Timer, TimerKind, TimerQueue, UserState,
};
use crate::compile::program::{NodeKind, Program};
use crate::runtime::deploy::Moves;
use crate::runtime::packed::Packed;
use crate::value::Value;

impl MemStore {
    /// Per journey id below `journeys`, whether some user is inside it (a
    /// running instance, or a goal window still open).
    pub(crate) fn journeys_in_use(&self, journeys: usize) -> Vec<bool> {
        let mut inside = vec![false; journeys];
        for user in &self.users {
            for js in &user.journeys {
                if (js.instance.is_some() || js.watch.is_some())
                    && let Some(slot) = inside.get_mut(js.journey as usize)
                {
                    *slot = true;
                }
            }
        }
        inside
    }

    /// Renumbers every user's state and every timer as `moves` says, for
    /// `program`.
    pub(crate) fn migrate(&mut self, moves: &Moves, program: &Program) {
        for user in &mut self.users {
            migrate_user(user, moves, program);
        }
        let timers = std::mem::take(&mut self.timers).sorted();
        let mut queue = TimerQueue::default();
        for timer in timers {
            // Silences are queued again below, from their due times.
            if let TimerKind::Instance = timer.kind
                && let Some(to) = moves
                    .journeys
                    .get(timer.journey as usize)
                    .and_then(|m| m.instance)
            {
                queue.push(Timer {
                    journey: to,
                    ..timer
                });
            }
        }
        let base = crate::runtime::engine::Layout::new(program).silence_base;
        for (id, user) in self.users.iter().enumerate() {
            for (j, window) in base.windows(2).enumerate() {
                for slot in window[0]..window[1] {
                    if let Some(due) = user.silences.due(slot) {
                        queue.push(Timer {
                            due,
                            journey: j as u32,
                            user: id as u32,
                            generation: 0,
                            kind: TimerKind::Silence((slot - window[0]) as u16),
                        });
                    }
                }
            }
        }
        self.timers = queue;
    }
}

fn migrate_user(user: &mut UserState, moves: &Moves, program: &Program) {
    let profile = std::mem::take(&mut user.profile).to_vec();
    let mut next: Vec<Value> = Vec::new();
    for (slot, value) in profile.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        if let Some(Some(to)) = moves.slots.get(slot) {
            let to = *to as usize;
            if next.len() <= to {
                next.resize(to + 1, Value::Null);
            }
            next[to] = value;
        }
    }
    user.profile = Packed::new(&next);

    let mut journeys: Vec<JourneyState> = Vec::new();
    let mut place = |state: JourneyState| {
        // Two old journey states for one new one (same journey, same `per`
        // key): cannot happen with the moves a deploy makes; the first is
        // kept. The states of one `per` journey stay in their order.
        let start = journeys.partition_point(|j| j.journey < state.journey);
        let end = start + journeys[start..].partition_point(|j| j.journey == state.journey);
        if !journeys[start..end].iter().any(|j| j.key == state.key) {
            journeys.insert(end, state);
        }
    };
    for js in std::mem::take(&mut user.journeys) {
        let Some(m) = moves.journeys.get(js.journey as usize) else {
            continue;
        };
        let running = js.instance.is_some() || js.watch.is_some();
        match (m.instance, m.counters) {
            (Some(to), Some(counters)) if to == counters => place(JourneyState {
                journey: to,
                instance: js.instance.map(|i| Box::new(move_instance(*i, m))),
                watch: js.watch.map(|w| Box::new(move_instance(*w, m))),
                ..js
            }),
            (instance, counters) => {
                if let Some(counters) = counters {
                    place(JourneyState {
                        journey: counters,
                        entries: js.entries,
                        last_entry_at: js.last_entry_at,
                        generation: 0,
                        instance: None,
                        watch: None,
                        key: js.key.clone(),
                    });
                }
                if let Some(to) = instance.filter(|_| running) {
                    place(JourneyState {
                        journey: to,
                        instance: js.instance.map(|i| Box::new(move_instance(*i, m))),
                        watch: js.watch.map(|w| Box::new(move_instance(*w, m))),
                        ..js
                    });
                }
            }
        }
    }
    user.journeys = journeys.into_boxed_slice();

    user.sent = std::mem::take(&mut user.sent)
        .into_iter()
        .filter_map(|s| {
            let m = moves.journeys.get(s.journey as usize)?;
            Some(SentRecord {
                at: s.at,
                journey: m.counters.or(m.instance)?,
                channel: (*moves.channels.get(usize::from(s.channel))?)?,
            })
        })
        .collect();

    // A touch follows its instance's journey (whose steps keep their
    // numbers); one whose journey is gone is dropped.
    user.touches.retain_map(|t| {
        let m = moves.journeys.get(t.journey as usize)?;
        let journey = m.instance?;
        let send = program
            .journeys
            .get(journey as usize)?
            .nodes
            .get(t.node as usize)
            .map(|n| &n.kind);
        matches!(send, Some(NodeKind::Send(s)) if usize::from(t.alt) < s.alternatives.len())
            .then_some(super::Touch { journey, ..t })
    });

    let silences = std::mem::take(&mut user.silences);
    let mut next = Silences::default();
    let old_len = moves.old_silence_base.last().copied().unwrap_or(0);
    for slot in 0..old_len {
        if let (Some(due), Some(Some((to, later)))) = (silences.due(slot), moves.silences.get(slot))
        {
            // One that would end past year 9999 never ends (as when it
            // starts).
            let due = due.saturating_add(*later);
            next.set_due(*to, (due <= crate::value::MAX_TIME_MS).then_some(due));
        }
    }
    user.silences = next;
}

/// An instance renumbered for the journey it continues in: trigger values
/// and handles matched by name; its node, sends and audiences keep their
/// numbers (the same shape numbers steps alike).
fn move_instance(mut instance: Instance, m: &crate::runtime::deploy::JourneyMove) -> Instance {
    let values: Vec<Value> = m
        .trigger
        .iter()
        .map(|from| {
            from.and_then(|i| instance.trigger.get(i))
                .unwrap_or(Value::Null)
        })
        .collect();
    instance.trigger = Packed::new(&values);
    let handles = std::mem::take(&mut instance.handles);
    instance.handles = m
        .handles
        .iter()
        .map(|from| {
            from.and_then(|i| handles.get(i).copied())
                .unwrap_or_default()
        })
        .collect();
    instance
}
