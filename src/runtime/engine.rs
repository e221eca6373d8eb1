//! The interpreter proper: one user's state, one instant. Admits users into
//! journeys, runs instances from one suspension to the next, decides sends
//! (reachability, caps, quiet hours, fallbacks) and ends instances, writing
//! every effect as an [`Action`] and every wake-up as a [`Timer`].
//!
//! A send's `message_id` is `<journey>:<user>:<entry>:<node>`: the same
//! input gives the same ids, and a node runs at most once per entry (the
//! graph is a DAG), so ids are unique. Engagements find their instance by
//! parsing it back (from the right, as user keys may hold `:`).
//!
//! Where the spec is silent: a new entry drops the goal watch of the
//! previous one (one conversion per entry, the latest); `emit` is an output
//! action only (a driver may feed it back as input); `until exit` removals
//! follow the `exit` action; `exit if` is checked before every node, the
//! end included, so a `set` that makes it true ends the instance with
//! `exit_condition`; `reachable()` also honours `profile.unsubscribed`.

use std::sync::Arc;

use super::action::{Action, ActionKind, ExitReason, SuppressReason};
use super::clock::{self, ZoneId, Zones};
use super::eval::{Scope, ZoneRule};
use super::event::PathTree;
use super::packed::Packed;
use super::stats::{Stats, bucket, fnv1a};
use super::store::{
    Handle, Instance, SendRef, SentRecord, Timer, TimerKind, Touch, UserId, UserState,
};
use super::templates::{self, Renderer};
use crate::compile::program::{
    Cap, Engagement, EventId, JourneyId, NodeId, NodeKind, Program, Reentry, SendNode, SlotId,
};
use crate::value::{MAX_TIME_MS, Str, Value, write_int};

/// Facts about the program the engine needs on every event.
pub struct Layout {
    pub timezone: Option<SlotId>,
    pub unsubscribed: Option<SlotId>,
    /// The longest cap window: older sends are forgotten.
    pub max_cap_window: i64,
    /// Per journey, where its absence triggers start in a user's
    /// [`UserState::silences`]; the last entry is the length.
    pub silence_base: Box<[usize]>,
    /// Per event id, then one entry for names the program does not know,
    /// then one (empty) for the provider's outcomes it does not know: the
    /// journeys whose silence the event restarts (ascending). See
    /// [`Layout::restarts_of`].
    pub restarts: Box<[Box<[JourneyId]>]>,
    /// The profile slots' paths, for an identify's one pass over its traits.
    pub slot_paths: PathTree,
    /// The scheduled, date and segment triggers ([`super::entry`]).
    pub entry: super::entry::EntryLayout,
    /// Whether some `wait until` reads the profile: a profile change then
    /// computes it again ([`Cx::move_waits`]).
    pub profile_waits: bool,
    /// Whether some send waits for the customer's best hour: opens and
    /// clicks are then kept ([`super::store::Engaged`]).
    pub best_hour: bool,
    /// Per journey, the earlier versions of it kept for their instances
    /// ([`crate::compile::program::Journey::retired`]): a customer inside
    /// one is inside the journey, and is not admitted again until it ends.
    pub kept: Box<[Box<[JourneyId]>]>,
    /// Per journey, its split steps in node order ([`Instance::splits`]).
    pub splits: Box<[Box<[NodeId]>]>,
}

/// The events a provider reports about a message (SERVICE.md §6): they
/// are not the customer's activity, so they restart no `trigger no any`
/// silence (a `trigger no` that names one still counts it).
pub const PROVIDER_OUTCOMES: [&str; 4] = [
    "message.sent",
    "message.failed",
    "message.delivered",
    "message.bounced",
];

impl Layout {
    /// The index into [`Layout::restarts`] of a track event: its id's, or
    /// for a name the program does not know, the entry of such names (or
    /// the empty one of the provider's outcomes).
    pub fn restarts_of(&self, id: Option<EventId>, name: &str) -> usize {
        let unknown = self.restarts.len() - 2;
        match id {
            Some(e) => e as usize,
            None if PROVIDER_OUTCOMES.contains(&name) => unknown + 1,
            None => unknown,
        }
    }

    pub fn new(program: &Program) -> Layout {
        let slot = |name: &str| {
            program
                .profile_slots
                .iter()
                .position(|s| s.path.len() == 1 && &*s.path[0] == name)
                .map(|i| i as SlotId)
        };
        let max_cap_window = program
            .policy
            .caps
            .iter()
            .chain(program.journeys.iter().flat_map(|j| j.caps.iter()))
            .map(|c| c.window_ms)
            .max()
            .unwrap_or(0);
        let silence_base = std::iter::once(0)
            .chain(program.journeys.iter().scan(0, |n, j| {
                *n += j.absence.len();
                Some(*n)
            }))
            .collect();
        Layout {
            silence_base,
            restarts: (0..=program.events.len())
                .map(|e| {
                    silence_journeys(program, (e < program.events.len()).then_some(e as EventId))
                })
                .chain([Box::default()])
                .collect(),
            slot_paths: PathTree::new(
                program
                    .profile_slots
                    .iter()
                    .map(|s| s.path.clone())
                    .collect(),
            ),
            entry: super::entry::EntryLayout::new(program, slot(crate::channels::TIMEZONE)),
            timezone: slot(crate::channels::TIMEZONE),
            unsubscribed: slot(crate::channels::UNSUBSCRIBED),
            profile_waits: program.journeys.iter().any(|j| {
                j.nodes.iter().any(
                    |n| matches!(&n.kind, NodeKind::WaitUntil { at, .. } if at.reads_profile()),
                )
            }),
            best_hour: program.journeys.iter().any(|j| {
                j.nodes
                    .iter()
                    .any(|n| matches!(&n.kind, NodeKind::Send(s) if s.best_hour_ms.is_some()))
            }),
            max_cap_window,
            splits: program
                .journeys
                .iter()
                .map(|j| {
                    j.nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| matches!(n.kind, NodeKind::Split { .. }))
                        .map(|(i, _)| i as NodeId)
                        .collect()
                })
                .collect(),
            kept: program
                .journeys
                .iter()
                .map(|j| match j.retired {
                    Some(_) => Box::default(),
                    None => program
                        .journeys_named(&j.name)
                        .filter(|&k| program.journeys[k as usize].retired.is_some())
                        .collect(),
                })
                .collect(),
        }
    }
}

/// An engagement event's message, once found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub journey: JourneyId,
    pub entry: u32,
    pub node: NodeId,
    pub engagement: Engagement,
}

/// Where an instance's run stopped.
enum Stop {
    Suspend(i64),
    End(ExitReason),
}

/// How a run starts at the instance's node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Arriving at the node.
    Fresh,
    /// Deciding a deferred send again.
    Retry,
}

/// Everything one user operation may touch besides the user's own state.
pub struct Cx<'a> {
    pub program: &'a Program,
    pub layout: &'a Layout,
    pub zones: &'a mut Zones,
    pub renderer: &'a Renderer,
    pub stats: &'a mut Stats,
    pub timers: &'a mut Vec<Timer>,
    pub sink: &'a mut dyn FnMut(Action),
    pub user: UserId,
    pub user_key: &'a Str,
    pub now: i64,
    /// What the entry triggers saw before this operation's first profile
    /// change ([`super::entry`]).
    pub before: Option<super::entry::Before>,
    /// Known users by time zone, for scheduled entry.
    pub index: &'a mut super::entry::ZoneIndex,
}

impl<'a> Cx<'a> {
    fn scope<'s>(
        &self,
        user: &'s Packed,
        event: &'s [Value],
        inst: Option<&'s Instance>,
    ) -> Scope<'s>
    where
        Self: 's,
    {
        Scope {
            profile: user,
            event,
            instance: inst,
            now: self.now,
            channels: &self.program.channels,
            unsubscribed: self.layout.unsubscribed,
            zone: self.zone_rule(None),
        }
    }

    /// Where the user's time zone comes from: journey `j`'s quiet-hours
    /// `in` expression (or, for `None` or none there, the policy's), else
    /// `profile.timezone`.
    pub(super) fn zone_rule(&self, j: Option<JourneyId>) -> ZoneRule<'a> {
        let program = self.program;
        let journey = j.and_then(|j| program.journeys.get(j as usize));
        ZoneRule {
            expr: journey
                .and_then(|j| j.quiet_hours.as_ref())
                .or(program.policy.quiet_hours.as_ref())
                .and_then(|q| q.zone.as_ref()),
            slot: self.layout.timezone,
        }
    }

    fn emit(&mut self, journey: JourneyId, kind: ActionKind) {
        let name = self.program.journeys[journey as usize].name.clone();
        (self.sink)(Action {
            at: self.now,
            journey: name,
            user_id: self.user_key.clone(),
            kind,
        });
    }

    fn message_id(&self, journey: JourneyId, entry: u32, node: NodeId) -> String {
        let name = &self.program.journeys[journey as usize].name;
        let mut id = String::with_capacity(name.len() + self.user_key.len() + 16);
        id.push_str(name);
        id.push(':');
        id.push_str(self.user_key);
        id.push(':');
        write_int(&mut id, i64::from(entry));
        id.push(':');
        write_int(&mut id, i64::from(node));
        id
    }

    // ----- a track event -----

    /// §6.3 steps 1 and 2 for a track event of this user.
    pub fn track(
        &mut self,
        user: &mut UserState,
        event: Option<EventId>,
        fields: &[Value],
        target: Option<Target>,
    ) {
        if let Some(target) = target {
            self.record_engagement(user, target);
        }
        if let Some(event) = event {
            let program = self.program;
            let info = &program.events[event as usize];
            // Most events (a product view) concern no running journey:
            // their user's journey states are not even loaded.
            let reacts = !info.goals.is_empty()
                || !info.exits.is_empty()
                || !info.waits.is_empty()
                || target.is_some();
            let touched = if reacts { user.journeys.len() } else { 0 };
            for ji in 0..touched {
                // Only a journey whose goal, `exit on` or `wait for` names
                // the event, or the one an engagement targets, can react:
                // the others' instances are not even looked at.
                let j = user.journeys[ji].journey;
                if info.goals.contains(&j)
                    || info.exits.contains(&j)
                    || info.waits.contains(&j)
                    || target.is_some_and(|t| t.journey == j)
                {
                    self.react(user, ji, event, fields, target);
                }
            }
            for &j in &info.triggers {
                if let Some(trigger) = self.matching_trigger(user, j, event, fields) {
                    self.admit(user, j, trigger);
                }
            }
        }
    }

    fn record_engagement(&mut self, user: &mut UserState, target: Target) {
        let program = self.program;
        let journey = &program.journeys[target.journey as usize];
        let handle = match journey.nodes.get(target.node as usize).map(|n| &n.kind) {
            Some(NodeKind::Send(SendNode {
                handle: Some(h), ..
            })) => *h,
            _ => {
                self.stats.unmatched_engagements += 1;
                return;
            }
        };
        // Entries are numbered across the keys of a `per` journey: the
        // entry names the one instance.
        let range = user.journey_range(target.journey);
        let inst = user.journeys[range]
            .iter_mut()
            .filter_map(|js| js.instance.as_mut())
            .find(|inst| inst.entry == target.entry);
        match inst.and_then(|inst| inst.handles.get_mut(handle as usize)) {
            Some(h) if h.sent && h.node == target.node => h.engaged |= target.engagement.bit(),
            _ => self.stats.unmatched_engagements += 1,
        }
    }

    /// Step 1 for one journey of the user: goal, else exit on, else resume.
    fn react(
        &mut self,
        user: &mut UserState,
        ji: usize,
        event: EventId,
        fields: &[Value],
        target: Option<Target>,
    ) {
        let program = self.program;
        let j = user.journeys[ji].journey;
        let journey = &program.journeys[j as usize];
        let Some(inst) = user.journeys[ji].instance.take() else {
            self.watched_goal(user, ji, event, fields);
            return;
        };
        let mut m = 0;
        let scope = self.scope(&user.profile, fields, Some(&inst));
        let goal = journey.goal.as_ref().is_some_and(|g| {
            g.event == event
                && g.within_ms
                    .is_none_or(|w| self.now <= inst.entered_at.saturating_add(w))
                && g.condition.as_ref().is_none_or(|c| scope.holds(c, &mut m))
        });
        let exit = !goal
            && journey.exit_on.iter().any(|c| {
                c.event == event && c.condition.as_ref().is_none_or(|c| scope.holds(c, &mut m))
            });
        let resume = if goal || exit {
            None
        } else {
            match journey.nodes.get(inst.node as usize).map(|n| &n.kind) {
                // The first alternative on this event whose condition holds.
                Some(NodeKind::WaitForEvent {
                    alternatives,
                    matched,
                    ..
                }) if alternatives.iter().any(|alt| {
                    alt.event == event
                        && alt
                            .condition
                            .as_ref()
                            .is_none_or(|c| scope.holds(c, &mut m))
                }) =>
                {
                    Some(*matched)
                }
                Some(NodeKind::WaitForEngagement {
                    handle,
                    engagement,
                    matched,
                    ..
                }) if target.is_some_and(|t| {
                    t.journey == j && t.entry == inst.entry && t.engagement == *engagement
                }) && inst
                    .handles
                    .get(*handle as usize)
                    .is_some_and(|h| h.engaged & engagement.bit() != 0) =>
                {
                    Some(*matched)
                }
                _ => None,
            }
        };
        self.stats.type_mismatches += m;
        if goal {
            self.convert(j, &inst);
            self.end(user, ji, inst, ExitReason::Goal);
        } else if exit {
            self.end(user, ji, inst, ExitReason::ExitEvent);
        } else if let Some(next) = resume {
            let mut inst = inst;
            inst.node = next;
            self.drive(user, ji, inst, Start::Fresh);
        } else {
            user.journeys[ji].instance = Some(inst);
        }
    }

    /// A goal reached after the instance completed or was held out, inside
    /// its window: one conversion per entry.
    fn watched_goal(&mut self, user: &mut UserState, ji: usize, event: EventId, fields: &[Value]) {
        let program = self.program;
        let j = user.journeys[ji].journey;
        let Some(goal) = program.journeys[j as usize].goal.as_ref() else {
            return;
        };
        let Some(watch) = user.journeys[ji].watch.as_deref() else {
            return;
        };
        let open = goal
            .within_ms
            .is_some_and(|w| self.now <= watch.entered_at.saturating_add(w));
        if !open {
            user.journeys[ji].watch = None;
            return;
        }
        if goal.event != event {
            return;
        }
        let mut m = 0;
        let hit = goal.condition.as_ref().is_none_or(|c| {
            self.scope(&user.profile, fields, Some(watch))
                .holds(c, &mut m)
        });
        self.stats.type_mismatches += m;
        if hit && let Some(watch) = user.journeys[ji].watch.take() {
            self.convert(j, &watch);
        }
    }

    /// The split steps `inst` of journey `j` has passed, each with the
    /// arm it took there.
    fn arms_taken(&self, j: JourneyId, inst: &Instance) -> Vec<(NodeId, usize)> {
        if inst.splits == 0 {
            return Vec::new();
        }
        let journey = &self.program.journeys[j as usize];
        self.layout.splits[j as usize]
            .iter()
            .take(16)
            .enumerate()
            .filter(|(i, _)| inst.splits & (1 << i) != 0)
            .filter_map(|(_, &node)| match &journey.nodes.get(node as usize)?.kind {
                NodeKind::Split { key, arms } => {
                    Some((node, split_arm(&journey.name, key, self.user_key, arms)?))
                }
                _ => None,
            })
            .collect()
    }

    fn convert(&mut self, j: JourneyId, inst: &Instance) {
        let program = self.program;
        let Some(goal) = program.journeys[j as usize].goal.as_ref() else {
            return;
        };
        for (node, arm) in self.arms_taken(j, inst) {
            self.stats.journey(j).node(node).arm(arm).converted += 1;
        }
        let message_ids = inst
            .sends
            .iter()
            .map(|s| self.message_id(j, inst.entry, s.node))
            .collect();
        let stats = self.stats.journey(j);
        stats.converted += 1;
        stats.converted_held_out += u64::from(inst.holdout);
        self.emit(
            j,
            ActionKind::Convert {
                goal: goal.name.clone(),
                holdout: inst.holdout,
                message_ids,
            },
        );
    }

    /// The captured trigger values of the first trigger of journey `j`
    /// on this event whose condition holds.
    fn matching_trigger(
        &mut self,
        user: &UserState,
        j: JourneyId,
        event: EventId,
        fields: &[Value],
    ) -> Option<Box<[Value]>> {
        let program = self.program;
        let mut m = 0;
        let scope = self.scope(&user.profile, fields, None);
        let trigger = program.journeys[j as usize].triggers.iter().find(|t| {
            t.event == event && t.condition.as_ref().is_none_or(|c| scope.holds(c, &mut m))
        });
        self.stats.type_mismatches += m;
        trigger.map(|t| {
            t.capture
                .iter()
                .map(|c| {
                    c.and_then(|i| fields.get(i as usize))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        })
    }

    // ----- entering -----

    /// Step 2: admits the user when no instance is active, the re-entry
    /// rule allows and the audience holds.
    pub fn admit(&mut self, user: &mut UserState, j: JourneyId, trigger: Box<[Value]>) {
        let program = self.program;
        let journey = &program.journeys[j as usize];
        // `per trigger.<path>`: one state, and one active instance, per
        // value; an entry without a value is not admitted (counted).
        let key = match journey.per {
            None => None,
            Some(field) => match trigger.get(field as usize) {
                Some(value) if !value.is_null() => Some(Packed::new(std::slice::from_ref(value))),
                _ => {
                    self.stats.journey(j).not_admitted.null_key += 1;
                    return;
                }
            },
        };
        // An instance of a kept version blocks the entry: any of them, or
        // with a key, one of the same key.
        let inside = |k: JourneyId| {
            user.journeys[user.journey_range(k)].iter().any(|js| {
                js.instance.is_some()
                    && (key.is_none() || js.key.is_none() || js.key.as_deref() == key.as_ref())
            })
        };
        if self.layout.kept[j as usize].iter().any(|&k| inside(k)) {
            self.stats.journey(j).not_admitted.already_active += 1;
            return;
        }
        if let Some(js) = user.find_state(j, key.as_ref()).map(|i| &user.journeys[i]) {
            if js.instance.is_some() {
                self.stats.journey(j).not_admitted.already_active += 1;
                return;
            }
            let allowed = js.entries == 0
                || match journey.reentry {
                    Reentry::Never => false,
                    Reentry::Always => true,
                    Reentry::After { ms } => self.now - js.last_entry_at >= ms,
                };
            if !allowed {
                self.stats.journey(j).not_admitted.reentry += 1;
                return;
            }
        }
        if let Some(audience) = &journey.audience {
            let mut m = 0;
            let ok = self.scope(&user.profile, &[], None).holds(audience, &mut m);
            self.stats.type_mismatches += m;
            if !ok {
                self.stats.journey(j).not_admitted.audience += 1;
                return;
            }
        }
        let entry = user.next_entry(j);
        let ji = user.state_index(j, key.as_ref());
        let js = &mut user.journeys[ji];
        js.entries = entry;
        js.last_entry_at = self.now;
        js.watch = None;
        let inst = Box::new(Instance {
            node: 0,
            entry: js.entries,
            entered_at: self.now,
            holdout: false,
            trigger: Packed::new(&trigger),
            handles: vec![Handle::default(); journey.handles.len()].into_boxed_slice(),
            sends: Box::default(),
            audiences: Box::default(),
            splits: 0,
        });
        let held_out = journey.holdout.is_some_and(|p| {
            bucket(fnv1a(&[journey.name.as_bytes(), self.user_key.as_bytes()])) < p
        });
        self.stats.journey(j).entered += 1;
        self.emit(j, ActionKind::Enter { holdout: held_out });
        if held_out {
            let mut inst = inst;
            inst.holdout = true;
            self.stats.journey(j).held_out += 1;
            self.end(user, ji, inst, ExitReason::Holdout);
        } else {
            self.drive(user, ji, inst, Start::Fresh);
        }
    }

    // ----- running -----

    /// Runs the instance until it suspends (a timer is set) or ends.
    fn drive(&mut self, user: &mut UserState, ji: usize, mut inst: Box<Instance>, start: Start) {
        match self.run(user, ji, &mut inst, start) {
            // A moment past the last one a timestamp holds never comes: the
            // instance ends rather than wait forever (or overflow the clock).
            Stop::Suspend(due) if due > MAX_TIME_MS => {
                self.end(user, ji, inst, ExitReason::InvalidTime);
            }
            Stop::Suspend(due) => {
                let generation = user.next_generation(ji);
                let js = &mut user.journeys[ji];
                js.generation = generation;
                self.timers.push(Timer {
                    due,
                    journey: js.journey,
                    user: self.user,
                    generation: js.generation,
                    kind: TimerKind::Instance,
                });
                js.instance = Some(inst);
            }
            Stop::End(reason) => self.end(user, ji, inst, reason),
        }
    }

    fn run(&mut self, user: &mut UserState, ji: usize, inst: &mut Instance, start: Start) -> Stop {
        let program = self.program;
        let j = user.journeys[ji].journey;
        let journey = &program.journeys[j as usize];
        let mut start = start;
        loop {
            let id = inst.node;
            let Some(node) = journey.nodes.get(id as usize) else {
                return Stop::End(ExitReason::Completed);
            };
            let fresh = start == Start::Fresh;
            if fresh {
                self.stats.journey(j).visit(id);
            }
            start = Start::Fresh;
            if self.exit_condition(j, &user.profile, inst) {
                return Stop::End(ExitReason::ExitCondition);
            }
            let mut m = 0;
            let next = match &node.kind {
                NodeKind::Wait { ms, .. } => return Stop::Suspend(self.now.saturating_add(*ms)),
                NodeKind::WaitUntilTime {
                    minute, weekdays, ..
                } => {
                    let zone = self.zone(j, &user.profile, inst);
                    let due =
                        clock::next_local_time(self.now, self.zones.tz(zone), *minute, *weekdays);
                    return due.map_or(Stop::End(ExitReason::InvalidTime), Stop::Suspend);
                }
                NodeKind::WaitUntil { at, next } => {
                    let scope = Scope {
                        zone: self.zone_rule(Some(j)),
                        ..self.scope(&user.profile, &[], Some(inst))
                    };
                    let at = scope.value(at, &mut m);
                    let at = scope.timestamp(&at);
                    self.stats.type_mismatches += m;
                    match at {
                        Some(t) if t > self.now => return Stop::Suspend(t),
                        Some(_) => *next,
                        // No moment to wait for: continuing at once would
                        // send what was meant for later (LANGUAGE.md §4.4).
                        None => return Stop::End(ExitReason::InvalidTime),
                    }
                }
                NodeKind::WaitForEvent { within_ms, .. } => {
                    return Stop::Suspend(self.now.saturating_add(*within_ms));
                }
                NodeKind::WaitForEngagement {
                    handle,
                    engagement,
                    within_ms,
                    matched,
                    ..
                } => {
                    let done = inst
                        .handles
                        .get(*handle as usize)
                        .is_some_and(|h| h.engaged & engagement.bit() != 0);
                    if !done {
                        return Stop::Suspend(self.now.saturating_add(*within_ms));
                    }
                    *matched
                }
                NodeKind::Send(send) => {
                    // Arriving at a best-hour send: wait for the hour when
                    // it comes in the window; the send is decided then.
                    if fresh
                        && let Some(window) = send.best_hour_ms
                        && let Some(due) = self.best_hour(user, j, inst, window)
                    {
                        return Stop::Suspend(due);
                    }
                    match self.send(user, j, inst, id, send) {
                        Some(due) => return Stop::Suspend(due),
                        None => send.next,
                    }
                }
                NodeKind::Branch { arms, otherwise } => {
                    let scope = self.scope(&user.profile, &[], Some(inst));
                    let arm = arms.iter().find(|(c, _)| scope.holds(c, &mut m));
                    self.stats.type_mismatches += m;
                    arm.map_or(*otherwise, |(_, n)| *n)
                }
                NodeKind::Split { key, arms } => {
                    let Some(arm) = split_arm(&journey.name, key, self.user_key, arms) else {
                        return Stop::End(ExitReason::Completed);
                    };
                    if let Some(i) = self.layout.splits[j as usize]
                        .iter()
                        .position(|&s| s == id)
                        .filter(|&i| i < 16)
                    {
                        inst.splits |= 1 << i;
                    }
                    self.stats.journey(j).node(id).arm(arm).entered += 1;
                    arms[arm].next
                }
                NodeKind::Set { slot, value, next } => {
                    let v = self
                        .scope(&user.profile, &[], Some(inst))
                        .value(value, &mut m);
                    self.stats.type_mismatches += m;
                    self.set(user, j, *slot, v);
                    *next
                }
                NodeKind::Emit { event, with, next } => {
                    let scope = self.scope(&user.profile, &[], Some(inst));
                    let properties = with
                        .iter()
                        .map(|(k, e)| (k.clone(), scope.value(e, &mut m)))
                        .collect();
                    self.stats.type_mismatches += m;
                    self.emit(
                        j,
                        ActionKind::Emit {
                            event: event.clone(),
                            properties,
                        },
                    );
                    *next
                }
                NodeKind::Audience {
                    add,
                    audience,
                    until_exit,
                    next,
                } => {
                    if *add && *until_exit {
                        push_boxed(&mut inst.audiences, id);
                    }
                    self.emit(
                        j,
                        ActionKind::Audience {
                            add: *add,
                            audience: audience.clone(),
                        },
                    );
                    *next
                }
                NodeKind::Exit => return Stop::End(ExitReason::ExitStep),
                NodeKind::End => return Stop::End(ExitReason::Completed),
            };
            inst.node = next;
        }
    }

    fn exit_condition(&mut self, j: JourneyId, profile: &Packed, inst: &Instance) -> bool {
        let program = self.program;
        let mut m = 0;
        let scope = self.scope(profile, &[], Some(inst));
        let hit = program.journeys[j as usize]
            .exit_if
            .iter()
            .any(|c| scope.holds(c, &mut m));
        self.stats.type_mismatches += m;
        hit
    }

    /// `exit if` of every active instance, after a profile change.
    pub fn profile_changed(&mut self, user: &mut UserState) {
        for ji in 0..user.journeys.len() {
            let j = user.journeys[ji].journey;
            let Some(inst) = user.journeys[ji].instance.take() else {
                continue;
            };
            if self.exit_condition(j, &user.profile, &inst) {
                self.end(user, ji, inst, ExitReason::ExitCondition);
            } else {
                user.journeys[ji].instance = Some(inst);
            }
        }
    }

    /// Before a profile change: the moment each instance waiting at a
    /// `wait until` that reads the profile waits for, by journey index
    /// (`None`: no moment).
    pub fn profile_waits(&mut self, user: &UserState) -> Vec<(usize, Option<i64>)> {
        if !self.layout.profile_waits {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (ji, js) in user.journeys.iter().enumerate() {
            if let Some(inst) = js.instance.as_ref()
                && let Some(at) = self.profile_wait(&user.profile, js.journey, inst, &mut 0)
            {
                out.push((ji, at));
            }
        }
        out
    }

    /// The moment `inst` of journey `j` waits for, when it waits at a
    /// `wait until` that reads the profile (`Some(None)`: no moment).
    fn profile_wait(
        &self,
        profile: &Packed,
        j: JourneyId,
        inst: &Instance,
        mismatches: &mut u64,
    ) -> Option<Option<i64>> {
        let journey = &self.program.journeys[j as usize];
        let Some(NodeKind::WaitUntil { at, .. }) =
            journey.nodes.get(inst.node as usize).map(|n| &n.kind)
        else {
            return None;
        };
        if !at.reads_profile() {
            return None;
        }
        let scope = Scope {
            zone: self.zone_rule(Some(j)),
            ..self.scope(profile, &[], Some(inst))
        };
        let value = scope.value(at, mismatches);
        Some(scope.timestamp(&value))
    }

    /// After a profile change (identify or `set`), each `wait until` of
    /// [`Cx::profile_waits`] is computed again (LANGUAGE.md §4.4, "Dates"):
    /// a moment that changed moves the wait (a moment now past continues
    /// at once, at this instant), and no moment ends the instance
    /// (`invalid_time`).
    pub fn move_waits(&mut self, user: &mut UserState, before: Vec<(usize, Option<i64>)>) {
        for (ji, old) in before {
            let j = user.journeys[ji].journey;
            let Some(inst) = user.journeys[ji].instance.take() else {
                continue;
            };
            let mut m = 0;
            let new = self.profile_wait(&user.profile, j, &inst, &mut m);
            self.stats.type_mismatches += m;
            match new {
                Some(new) if new == old => user.journeys[ji].instance = Some(inst),
                None => user.journeys[ji].instance = Some(inst),
                Some(Some(due)) if due <= MAX_TIME_MS => {
                    let generation = user.next_generation(ji);
                    let js = &mut user.journeys[ji];
                    js.generation = generation;
                    self.timers.push(Timer {
                        due: due.max(self.now),
                        journey: j,
                        user: self.user,
                        generation: js.generation,
                        kind: TimerKind::Instance,
                    });
                    js.instance = Some(inst);
                }
                Some(_) => self.end(user, ji, inst, ExitReason::InvalidTime),
            }
        }
    }

    fn set(&mut self, user: &mut UserState, j: JourneyId, slot: SlotId, value: Value) {
        let program = self.program;
        let Some(info) = program.profile_slots.get(slot as usize) else {
            return;
        };
        let mut path = String::from("profile");
        for part in &info.path {
            path.push('.');
            path.push_str(part);
        }
        self.emit(
            j,
            ActionKind::Set {
                path,
                value: value.clone(),
            },
        );
        let before = self.profile_waits(user);
        let index = slot as usize;
        self.profile_will_change(user, Some(index));
        user.profile.set(index, &value);
        self.move_waits(user, before);
    }

    /// Ends the instance: `exit`, the `until exit` audience removals, and a
    /// goal watch for a completed or held-out instance with a goal window.
    fn end(&mut self, user: &mut UserState, ji: usize, inst: Box<Instance>, reason: ExitReason) {
        let program = self.program;
        let j = user.journeys[ji].journey;
        let journey = &program.journeys[j as usize];
        // A held-out instance never reached a step: its exit is the
        // journey's only.
        let at = (reason != ExitReason::Holdout && (inst.node as usize) < journey.nodes.len())
            .then_some(inst.node);
        self.stats.journey(j).record_exit(at, reason);
        self.emit(j, ActionKind::Exit { reason });
        for &node in &inst.audiences {
            if let Some(NodeKind::Audience { audience, .. }) =
                journey.nodes.get(node as usize).map(|n| &n.kind)
            {
                self.emit(
                    j,
                    ActionKind::Audience {
                        add: false,
                        audience: audience.clone(),
                    },
                );
            }
        }
        let generation = user.next_generation(ji);
        let js = &mut user.journeys[ji];
        js.generation = generation;
        let watched = matches!(reason, ExitReason::Completed | ExitReason::Holdout)
            && journey.goal.as_ref().is_some_and(|g| g.within_ms.is_some());
        js.instance = None;
        js.watch = watched.then_some(inst);
    }

    // ----- timers -----

    /// A timer of this user came due (already checked to be current).
    pub fn fire(&mut self, user: &mut UserState, timer: Timer) {
        match timer.kind {
            TimerKind::Instance => {
                // The journey's state this timer is for (one per key of a
                // `per` journey): the one of its generation, if still current.
                let Some(ji) = user
                    .journey_range(timer.journey)
                    .find(|&i| user.journeys[i].generation == timer.generation)
                else {
                    return;
                };
                let Some(mut inst) = user.journeys[ji].instance.take() else {
                    return;
                };
                let program = self.program;
                let journey = &program.journeys[timer.journey as usize];
                let start = match journey.nodes.get(inst.node as usize).map(|n| &n.kind) {
                    Some(
                        NodeKind::Wait { next, .. }
                        | NodeKind::WaitUntilTime { next, .. }
                        | NodeKind::WaitUntil { next, .. },
                    ) => {
                        inst.node = *next;
                        Start::Fresh
                    }
                    Some(
                        NodeKind::WaitForEvent { timeout, .. }
                        | NodeKind::WaitForEngagement { timeout, .. },
                    ) => {
                        inst.node = *timeout;
                        Start::Fresh
                    }
                    _ => Start::Retry,
                };
                self.drive(user, ji, inst, start);
            }
            TimerKind::Schedule(_) => self.admit_untriggered(user, timer.journey),
            TimerKind::Date(_) | TimerKind::Anniversary(_) => self.fire_date(user, timer),
            TimerKind::Silence(i) => {
                let slot = self.layout.silence_base[timer.journey as usize] + i as usize;
                let current = match user.silences.due(slot) {
                    Some(due) if due > timer.due => {
                        // Restarted since this timer was pushed: re-arm.
                        self.timers
                            .push(silence_timer(due, timer.journey, self.user, i as usize));
                        false
                    }
                    Some(_) => {
                        user.silences.set_due(slot, None);
                        true
                    }
                    None => false,
                };
                if current {
                    let program = self.program;
                    let fields = program.journeys[timer.journey as usize]
                        .trigger_fields
                        .len();
                    self.admit(
                        user,
                        timer.journey,
                        vec![Value::Null; fields].into_boxed_slice(),
                    );
                }
            }
        }
    }

    /// Step 3: restarts the silence timers of journey `j` that this event
    /// (`None`: one no journey names) restarts: `trigger no any` silences
    /// always, `trigger no X` ones when the event is `X`.
    pub fn restart_silences(&mut self, user: &mut UserState, j: JourneyId, event: Option<EventId>) {
        let program = self.program;
        let absences = &program.journeys[j as usize].absence;
        let first = self.layout.silence_base[j as usize];
        for (i, absence) in absences.iter().enumerate() {
            if absence.event.is_some() && absence.event != event {
                continue;
            }
            let due = self.now.saturating_add(absence.silence_ms);
            if due > MAX_TIME_MS {
                // A silence that would end past year 9999 never ends.
                user.silences.set_due(first + i, None);
                continue;
            }
            // A silence with a due time has its one timer queued already.
            if user.silences.due(first + i).is_none() {
                self.timers.push(silence_timer(due, j, self.user, i));
            }
            user.silences.set_due(first + i, Some(due));
        }
    }

    // ----- sends -----

    /// The user's time zone for journey `j`: the quiet-hours `in`
    /// expression, else `profile.timezone`, else UTC.
    fn zone(&mut self, j: JourneyId, profile: &Packed, inst: &Instance) -> Option<ZoneId> {
        let program = self.program;
        let journey = &program.journeys[j as usize];
        let expr = journey
            .quiet_hours
            .as_ref()
            .or(program.policy.quiet_hours.as_ref())
            .and_then(|q| q.zone.as_ref());
        let mut m = 0;
        let scope = self.scope(profile, &[], Some(inst));
        let name = match expr {
            Some(e) => scope.value(e, &mut m),
            None => self.layout.timezone.map_or(Value::Null, |s| scope.slot(s)),
        };
        self.stats.type_mismatches += m;
        match name {
            Value::String(name) => {
                let zone = self.zones.get(&name);
                if zone.is_none() {
                    self.stats.unknown_time_zones += 1;
                }
                zone
            }
            _ => None,
        }
    }

    /// `at best hour within window` (LANGUAGE.md §4.4): the next start of
    /// the local hour (the zone as for quiet hours) in which most of the
    /// customer's kept opens and clicks fell, ties to the one that comes
    /// first; `None` to decide the send now: no history, that hour starts
    /// now, or it does not come within the window.
    fn best_hour(
        &mut self,
        user: &UserState,
        j: JourneyId,
        inst: &Instance,
        window: i64,
    ) -> Option<i64> {
        let engaged = user.engaged.as_deref()?;
        let zone = self.zone(j, &user.profile, inst);
        let mut counts = [0u32; 24];
        for at in engaged.since(self.now) {
            let hour = usize::from(self.zones.local_minute(zone, at) / 60);
            if let Some(count) = counts.get_mut(hour) {
                *count += 1;
            }
        }
        let most = counts.iter().copied().max().filter(|&n| n > 0)?;
        let tz = self.zones.tz(zone);
        let next = (0..24u16)
            .filter(|&h| counts[usize::from(h)] == most)
            .filter_map(|h| clock::next_local_time(self.now.saturating_sub(1), tz, h * 60, 0))
            .min()?;
        (next > self.now && next - self.now <= window).then_some(next)
    }

    /// Decides a send: `Some(due)` to decide again then (quiet hours, or
    /// `on capped wait`), `None` once sent or suppressed.
    fn send(
        &mut self,
        user: &mut UserState,
        j: JourneyId,
        inst: &mut Instance,
        id: NodeId,
        send: &SendNode,
    ) -> Option<i64> {
        let program = self.program;
        let journey = &program.journeys[j as usize];
        let mut m = 0;
        let mut any_reachable = false;
        let mut frees_at: Option<i64> = None;
        let mut chosen = None;
        for (i, alt) in send.alternatives.iter().enumerate() {
            let scope = self.scope(&user.profile, &[], Some(inst));
            let reachable = scope
                .reachable(alt.channel, send.transactional)
                .unwrap_or_else(|_| {
                    m += 1;
                    false
                });
            if !reachable {
                continue;
            }
            any_reachable = true;
            if !send.transactional
                && let Some(free) = capped(
                    &journey.caps,
                    &program.policy.caps,
                    &user.sent,
                    j,
                    alt.channel,
                    self.now,
                )
            {
                frees_at = Some(frees_at.map_or(free, |f: i64| f.min(free)));
                continue;
            }
            chosen = Some(i);
            break;
        }
        self.stats.type_mismatches += m;
        let Some(alt_index) = chosen else {
            if send.wait_when_capped
                && let Some(due) = frees_at
            {
                return Some(due);
            }
            let first = send.alternatives.first()?;
            let reason = if any_reachable {
                SuppressReason::Capped
            } else {
                SuppressReason::Unreachable
            };
            self.stats.journey(j).record_suppress(id, reason);
            self.emit(
                j,
                ActionKind::Suppress {
                    channel: program.channels[first.channel as usize].name.clone(),
                    template: first.template.clone(),
                    reason,
                },
            );
            return None;
        };
        if !send.transactional
            && let Some(q) = journey
                .quiet_hours
                .as_ref()
                .or(program.policy.quiet_hours.as_ref())
        {
            let zone = self.zone(j, &user.profile, inst);
            if clock::in_window(self.zones.local_minute(zone, self.now), q.from, q.to) {
                // No end of the window a timestamp can hold: a moment past
                // every other, so the instance ends (`invalid_time`).
                let ends = clock::next_local_time(self.now, self.zones.tz(zone), q.to, 0);
                return Some(ends.unwrap_or(i64::MAX));
            }
        }
        self.deliver(user, j, inst, id, send, alt_index);
        None
    }

    fn deliver(
        &mut self,
        user: &mut UserState,
        j: JourneyId,
        inst: &mut Instance,
        id: NodeId,
        send: &SendNode,
        alt_index: usize,
    ) {
        let program = self.program;
        let alt = &send.alternatives[alt_index];
        let channel = &program.channels[alt.channel as usize];
        let message_id = self.message_id(j, inst.entry, id);
        let zone = alt
            .declared
            .filter(|&t| self.renderer.needs_zone(t))
            .and_then(|_| self.zone(j, &user.profile, inst))
            .and_then(|z| self.zones.tz(Some(z)).iana_name())
            .map(str::to_owned);
        let mut m = 0;
        let scope = self.scope(&user.profile, &[], Some(inst));
        let to = channel
            .address
            .as_ref()
            .map_or(Value::Null, |a| scope.value(a, &mut m));
        let vars: Vec<(Arc<str>, Value)> = alt
            .with
            .iter()
            .map(|(k, e)| (k.clone(), scope.value(e, &mut m)))
            .collect();
        let rendered = alt.declared.map(|t| {
            let reads: Vec<_> = alt
                .render
                .iter()
                .map(|(p, e)| (p.clone(), scope.value(e, &mut m)))
                .collect();
            let values = templates::Values {
                reads: &reads,
                with: &vars,
                message_id: &message_id,
                zone: zone.as_deref(),
            };
            self.renderer.render(t, &values)
        });
        self.stats.type_mismatches += m;
        // A message that cannot render is not sent, and nothing records it
        // as sent: no cap counts it, no handle is bound. The chain does not
        // fall through to the next alternative (docs/runtime.md).
        let rendered = match rendered.transpose() {
            Ok(rendered) => rendered,
            Err(error) => {
                self.stats.render_errors += 1;
                self.stats.journey(j).record_render_failure(
                    id,
                    &alt.template,
                    error.to_string(),
                    (self.now, self.user_key),
                );
                self.emit(
                    j,
                    ActionKind::Suppress {
                        channel: channel.name.clone(),
                        template: alt.template.clone(),
                        reason: SuppressReason::RenderFailed,
                    },
                );
                return;
            }
        };
        if let Some(h) = send.handle.and_then(|h| inst.handles.get_mut(h as usize)) {
            *h = Handle {
                sent: true,
                engaged: 0,
                node: id,
            };
        }
        push_boxed(
            &mut inst.sends,
            SendRef {
                node: id,
                alt: alt_index as u8,
                at: self.now,
            },
        );
        if !send.transactional {
            let horizon = self.now - self.layout.max_cap_window;
            let mut sent = std::mem::take(&mut user.sent).into_vec();
            sent.retain(|r| r.at > horizon);
            sent.reserve_exact(1);
            sent.push(SentRecord {
                at: self.now,
                journey: j,
                channel: alt.channel,
            });
            user.sent = sent.into_boxed_slice();
        }
        self.stats
            .journey(j)
            .record_send(id, alt_index as u8, alt.channel, self.now);
        for (node, arm) in self.arms_taken(j, inst) {
            self.stats.journey(j).node(node).arm(arm).sent += 1;
        }
        if let Some(attribution) = &program.attribution {
            // Kept while a conversion can still credit it.
            user.touches
                .prune(self.now.saturating_sub(attribution.window_ms));
            user.touches.push(Touch {
                at: self.now,
                journey: j,
                node: id,
                alt: alt_index as u8,
            });
        }
        let (subject, body, html) = match rendered {
            Some(r) => (r.subject, Some(r.body), r.html),
            None => (None, None, None),
        };
        self.emit(
            j,
            ActionKind::Send {
                channel: channel.name.clone(),
                template: alt.template.clone(),
                message_id,
                to,
                vars,
                subject,
                body,
                html,
            },
        );
    }
}

/// The arm of a sticky split a user takes: the user's bucket in [0, 100)
/// picks the arm whose cumulative percentage first exceeds it (the last
/// one when rounding leaves it past them all); `None` without arms.
fn split_arm(
    journey: &str,
    key: &str,
    user_key: &str,
    arms: &[crate::compile::program::SplitArm],
) -> Option<usize> {
    let b = bucket(fnv1a(&[
        journey.as_bytes(),
        key.as_bytes(),
        user_key.as_bytes(),
    ]));
    let mut total = 0.0;
    arms.iter()
        .position(|a| {
            total += a.percent;
            b < total
        })
        .or_else(|| arms.len().checked_sub(1))
}

/// When a send on `channel` is blocked by a journey or policy cap: the
/// earliest time every blocking cap frees up. Caps are rolling windows
/// over counted sends in `(now − window, now]`.
fn capped(
    journey_caps: &[Cap],
    policy_caps: &[Cap],
    sent: &[SentRecord],
    j: JourneyId,
    channel: u16,
    now: i64,
) -> Option<i64> {
    let caps = journey_caps
        .iter()
        .map(|c| (c, true))
        .chain(policy_caps.iter().map(|c| (c, false)));
    let mut frees_at: Option<i64> = None;
    for (cap, own_journey) in caps {
        if cap.channel.is_some_and(|c| c != channel) {
            continue;
        }
        let own = own_journey.then_some(j);
        let counts = |r: &&SentRecord| counts(cap, own, r, now);
        // Sends are recorded in time order; two passes, no allocation.
        let count = sent.iter().filter(counts).count();
        let limit = cap.limit as usize;
        if count >= limit {
            // The cap frees once all but `limit - 1` of these have left the window.
            let leaving = sent
                .iter()
                .filter(counts)
                .nth(count - limit)
                .map_or(now, |r| r.at);
            let free = if limit == 0 {
                i64::MAX
            } else {
                leaving.saturating_add(cap.window_ms)
            };
            frees_at = Some(frees_at.map_or(free, |f| f.max(free)));
        }
    }
    frees_at
}

/// Whether `cap` counts the send `r` at `now`: inside its window, on its
/// channel, and for a journey's own cap (`journey`), of that journey.
pub(crate) fn counts(cap: &Cap, journey: Option<JourneyId>, r: &SentRecord, now: i64) -> bool {
    r.at > now.saturating_sub(cap.window_ms)
        && journey.is_none_or(|j| r.journey == j)
        && cap.channel.is_none_or(|c| c == r.channel)
}

/// Appends to a boxed slice: instances keep their few sends and audiences
/// in exactly the room they need, as they wait for days.
fn push_boxed<T>(slice: &mut Box<[T]>, item: T) {
    let mut items = std::mem::take(slice).into_vec();
    items.reserve_exact(1);
    items.push(item);
    *slice = items.into_boxed_slice();
}

/// The heap timer of silence `index` of `journey` for `user`, due at `due`.
fn silence_timer(due: i64, journey: JourneyId, user: UserId, index: usize) -> Timer {
    Timer {
        due,
        journey,
        user,
        generation: 0,
        kind: TimerKind::Silence(index as u16),
    }
}

/// Reads a send's message id back: (journey name, user key, entry, node).
pub fn parse_message_id(id: &str) -> Option<(&str, &str, u32, NodeId)> {
    let mut parts = id.rsplitn(3, ':');
    let node = parts.next()?.parse().ok()?;
    let entry = parts.next()?.parse().ok()?;
    let (journey, user) = parts.next()?.split_once(':')?;
    Some((journey, user, entry, node))
}

/// The user's latest send of `template` among active instances (of
/// `journey` when given), as an engagement target.
pub fn latest_send(
    program: &Program,
    user: &UserState,
    template: &str,
    journey: Option<JourneyId>,
    engagement: Engagement,
) -> Option<Target> {
    let mut best: Option<(i64, Target)> = None;
    for js in &user.journeys {
        // A journey's kept versions are the journey too.
        let name = |j: JourneyId| &program.journeys[j as usize].name;
        if journey.is_some_and(|j| name(j) != name(js.journey)) {
            continue;
        }
        let Some(inst) = js.instance.as_ref() else {
            continue;
        };
        let nodes = &program.journeys[js.journey as usize].nodes;
        for s in &inst.sends {
            let Some(NodeKind::Send(send)) = nodes.get(s.node as usize).map(|n| &n.kind) else {
                continue;
            };
            let same = send
                .alternatives
                .get(s.alt as usize)
                .is_some_and(|a| &*a.template == template);
            if same && best.is_none_or(|(at, _)| s.at >= at) {
                best = Some((
                    s.at,
                    Target {
                        journey: js.journey,
                        entry: inst.entry,
                        node: s.node,
                        engagement,
                    },
                ));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Journeys whose silence this event restarts, ascending and once each;
/// computed once per event name when the runtime is built.
fn silence_journeys(program: &Program, event: Option<EventId>) -> Box<[JourneyId]> {
    let info = event.and_then(|e| program.events.get(e as usize));
    let outcome = info.is_some_and(|i| PROVIDER_OUTCOMES.contains(&&*i.name));
    let mut out: Vec<JourneyId> = if outcome {
        Vec::new()
    } else {
        program.any_silence.clone()
    };
    if let Some(info) = info {
        out.extend_from_slice(&info.silences);
    }
    out.sort_unstable();
    out.dedup();
    out.into_boxed_slice()
}
