//! Whether a [`MemStore`] (from a snapshot: it may be damaged or forged)
//! fits a program: ids in range, lists in the order the runtime keeps them,
//! times a timestamp holds, and every waiting instance and started silence
//! with the timer that will wake it. The runtime indexes by these ids
//! without checking, and an instance without its timer would wait forever.

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Instance, MemStore, TimerKind};
use crate::compile::program::{Journey, NodeKind, Program};
use crate::value::MAX_TIME_MS;

pub(super) fn mem_store(store: &MemStore, program: &Program) -> Result<(), String> {
    if store.keys.len() != store.users.len() {
        return Err(format!(
            "{} user keys for {} users",
            store.keys.len(),
            store.users.len()
        ));
    }
    if let Some(clock) = store.clock
        && !(0..=MAX_TIME_MS).contains(&clock)
    {
        return Err(format!(
            "the clock ({clock}) is outside the years 1970 to 9999"
        ));
    }
    let mut seen = FxHashSet::default();
    for key in &store.keys {
        if !seen.insert(&**key) {
            return Err(format!(
                "the user key `{}` appears twice",
                key.escape_debug()
            ));
        }
    }
    let silences: usize = program.journeys.iter().map(|j| j.absence.len()).sum();
    let silence_base: Vec<usize> = program
        .journeys
        .iter()
        .scan(0, |base, j| {
            let this = *base;
            *base += j.absence.len();
            Some(this)
        })
        .collect();
    // The timer that wakes each waiting instance and each started silence.
    let mut instance_timers = FxHashSet::default();
    let mut silence_timers: FxHashMap<(u32, u32, u16), i64> = FxHashMap::default();
    for timer in store.timers.iter() {
        let Some(journey) = program.journeys.get(timer.journey as usize) else {
            return Err(format!("a timer names journey {}", timer.journey));
        };
        if timer.user as usize >= store.users.len() {
            return Err(format!("a timer names user {}", timer.user));
        }
        if !(0..=MAX_TIME_MS).contains(&timer.due) {
            return Err(format!("a timer is due at {}", timer.due));
        }
        match timer.kind {
            TimerKind::Instance => {
                instance_timers.insert((timer.user, timer.journey, timer.generation));
            }
            TimerKind::Date(i) | TimerKind::Anniversary(i) => {
                let anniversary = matches!(timer.kind, TimerKind::Anniversary(_));
                let fits = journey.dates.get(i as usize).is_some_and(|d| {
                    (d.kind == crate::compile::program::DateKind::Anniversary) == anniversary
                });
                if !fits {
                    return Err(format!(
                        "a date timer of journey `{}` names date trigger {i}, which it has not",
                        journey.name
                    ));
                }
            }
            TimerKind::Schedule(_) => {
                return Err("a schedule occurrence is queued as a customer's timer".into());
            }
            TimerKind::Silence(i) => {
                if i as usize >= journey.absence.len() {
                    return Err(format!(
                        "a silence timer of journey `{}` names silence {i}",
                        journey.name
                    ));
                }
                let earliest = silence_timers
                    .entry((timer.user, timer.journey, i))
                    .or_insert(timer.due);
                *earliest = (*earliest).min(timer.due);
            }
        }
    }
    for (user, state) in store.users.iter().enumerate() {
        let who = || format!("user `{}`", store.keys[user].escape_debug());
        let user = user as u32;
        if state.profile.len() > program.profile_slots.len() {
            return Err(format!("{} has more profile slots than the program", who()));
        }
        if state.sent.iter().any(|r| {
            r.channel as usize >= program.channels.len()
                || program.journeys.get(r.journey as usize).is_none()
        }) {
            return Err(format!(
                "{} has a send on an unknown channel or journey",
                who()
            ));
        }
        if !state.sent.is_sorted_by_key(|r| r.at) {
            return Err(format!("{}'s sends are out of time order", who()));
        }
        let touches = state.touches.as_slice();
        if touches.iter().any(|t| {
            !matches!(
                program
                    .journeys
                    .get(t.journey as usize)
                    .and_then(|j| j.nodes.get(t.node as usize))
                    .map(|n| &n.kind),
                Some(NodeKind::Send(send)) if (t.alt as usize) < send.alternatives.len()
            )
        }) {
            return Err(format!(
                "{} has a touch that is no send of the program",
                who()
            ));
        }
        if !touches.is_sorted_by_key(|t| t.at) {
            return Err(format!("{}'s touches are out of time order", who()));
        }
        for js in &state.journeys {
            let Some(journey) = program.journeys.get(js.journey as usize) else {
                return Err(format!("{} is in journey {}", who(), js.journey));
            };
            let within = |what: &str| format!("{} in journey `{}`: {what}", who(), journey.name);
            if let Some(inst) = &js.instance {
                instance(inst, journey).map_err(|e| within(&e))?;
                if !instance_timers.contains(&(user, js.journey, js.generation)) {
                    return Err(within("a waiting instance without its timer"));
                }
            }
            if let Some(watch) = &js.watch {
                instance(watch, journey).map_err(|e| within(&e))?;
            }
        }
        if !state.journeys.is_sorted_by(|a, b| a.journey <= b.journey) {
            return Err(format!("{}'s journeys are out of order", who()));
        }
        // Several states of one journey: one per `per` key value, and
        // a timer names one of them by its generation.
        for (i, js) in state.journeys.iter().enumerate() {
            let same = |o: &&super::JourneyState| o.journey == js.journey;
            if let Some(other) = state.journeys[i + 1..].iter().take_while(same).find(|o| {
                o.key == js.key
                    || (o.instance.is_some()
                        && js.instance.is_some()
                        && o.generation == js.generation)
            }) {
                let what = if other.key == js.key {
                    "two states for one key"
                } else {
                    "two waiting instances of one generation"
                };
                return Err(format!("{} in journey {}: {what}", who(), js.journey));
            }
        }
        for slot in 0..silences.max(super::Silences::INLINE) {
            let Some(due) = state.silences.due(slot) else {
                continue;
            };
            let Some(j) = silence_base
                .iter()
                .rposition(|&base| base <= slot)
                .filter(|_| slot < silences)
            else {
                return Err(format!(
                    "{} has silence {slot}, and the program has {silences}",
                    who()
                ));
            };
            let i = (slot - silence_base[j]) as u16;
            // The one queued timer of a started silence is due at or before
            // its true due time (it is pushed again when it comes early).
            if silence_timers
                .get(&(user, j as u32, i))
                .is_none_or(|&earliest| earliest > due)
            {
                return Err(format!("{} has a started silence without its timer", who()));
            }
        }
    }
    Ok(())
}

/// Whether an instance's ids fit its journey.
fn instance(inst: &Instance, journey: &Journey) -> Result<(), String> {
    if inst.node as usize > journey.nodes.len() {
        return Err(format!("an instance at step {}", inst.node));
    }
    if inst.handles.len() != journey.handles.len() {
        return Err(format!(
            "an instance with {} handles, and the journey has {}",
            inst.handles.len(),
            journey.handles.len()
        ));
    }
    let is_send = |node: u32| {
        matches!(
            journey.nodes.get(node as usize).map(|n| &n.kind),
            Some(NodeKind::Send(_))
        )
    };
    if inst.handles.iter().any(|h| h.sent && !is_send(h.node)) {
        return Err("a handle bound to a step that is not a send".to_string());
    }
    for send in &inst.sends {
        let alternatives = match journey.nodes.get(send.node as usize).map(|n| &n.kind) {
            Some(NodeKind::Send(node)) => node.alternatives.len(),
            _ => return Err(format!("a send at step {}, which is not a send", send.node)),
        };
        if send.alt as usize >= alternatives {
            return Err(format!("a send of alternative {}", send.alt));
        }
    }
    let is_audience = |node: &u32| {
        matches!(
            journey.nodes.get(*node as usize).map(|n| &n.kind),
            Some(NodeKind::Audience { .. })
        )
    };
    if !inst.audiences.iter().all(is_audience) {
        return Err("an audience step that is not one".to_string());
    }
    Ok(())
}
