//! Entry by time, by a date in the profile and by a segment (LANGUAGE.md
//! §4.4): `trigger every ...`, `trigger <d> before|after|on <path>`,
//! `trigger anniversary of <path>` and `trigger enters|leaves <segment>`.
//!
//! - **Schedules** are not a timer per user. Known users are grouped by
//!   their time zone (per zone expression: `in <zone>`, else
//!   `profile.timezone`, else UTC), and each (schedule, zone) pair has one
//!   pending occurrence ([`ZoneIndex`]). An occurrence offers entry to the
//!   members of its zone only: its work is proportional to the users it
//!   offers entry, and a pending occurrence costs a user six bytes (its
//!   zone group, two bytes, and its place in the group's list, four). The
//!   index is derived from the profiles and the clock, so a snapshot does
//!   not hold it: it is rebuilt on restore and after a deploy, and an
//!   occurrence is always the next one strictly after the clock, so none
//!   fires twice across a restart.
//! - **Dates** are one timer per user and trigger in the store's queue
//!   ([`TimerKind::Date`], [`TimerKind::Anniversary`]), pushed when the
//!   moment changes. A timer is checked when it fires by computing the
//!   moment again from the profile: a moved or removed date leaves its old
//!   timer stale, not cancelled.
//! - **Segments** are evaluated before and after each profile change that
//!   touches a slot they read; a flip offers entry.
//!
//! A profile change (an identify, a `set` step) is bracketed: before the
//! first write of an operation, [`Cx::profile_will_change`] records what the
//! triggers saw; once the operation is done, [`Cx::settle`] compares and
//! acts. Entries that `set` more profile fields are settled in turn, at most
//! [`MAX_SETTLE_ROUNDS`] times per operation (journeys that keep making
//! each other's segments flip stop there).

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use super::clock::{self, DateValue, ZoneId, Zones};
use super::engine::Cx;
use super::eval::{Scope, ZoneRule};
use super::packed::Packed;
use super::store::{Timer, TimerKind, UserId, UserState};
use crate::compile::program::{CExpr, DateKind, JourneyId, Program, SlotId};
use crate::value::Value;

/// How many times one operation settles profile changes that entries made.
pub const MAX_SETTLE_ROUNDS: usize = 8;

/// The program's scheduled, date and segment triggers, as the runtime
/// looks them up.
#[derive(Default)]
pub struct EntryLayout {
    /// Every `trigger every` of a live journey: (journey, index).
    pub schedules: Box<[(JourneyId, u16)]>,
    /// Per schedule, its zone class.
    pub schedule_class: Box<[u16]>,
    /// The distinct zone expressions of the schedules (`None`:
    /// `profile.timezone`, else UTC).
    pub classes: Box<[Option<CExpr>]>,
    /// Every date trigger of a live journey: (journey, index).
    pub dates: Box<[(JourneyId, u16)]>,
    /// Every segment trigger of a live journey: (journey, index).
    pub segments: Box<[(JourneyId, u16)]>,
    /// Per profile slot: whether a change to it concerns a trigger above.
    pub watched: Box<[bool]>,
    /// The `profile.timezone` slot, the zone when no `in` names one.
    pub timezone: Option<SlotId>,
}

impl EntryLayout {
    pub fn new(program: &Program, timezone: Option<SlotId>) -> EntryLayout {
        let mut layout = EntryLayout::default();
        let mut schedules = Vec::new();
        let mut schedule_class = Vec::new();
        let mut classes: Vec<Option<CExpr>> = Vec::new();
        let mut dates = Vec::new();
        let mut segments = Vec::new();
        let mut watched = vec![false; program.profile_slots.len()];
        let mut default_zone = false;
        for (j, journey) in program.journeys.iter().enumerate() {
            if journey.retired.is_some() {
                continue;
            }
            let j = j as JourneyId;
            for (i, s) in journey.schedules.iter().enumerate() {
                let class = match classes.iter().position(|c| *c == s.zone) {
                    Some(c) => c,
                    None => {
                        classes.push(s.zone.clone());
                        classes.len() - 1
                    }
                };
                schedules.push((j, i as u16));
                schedule_class.push(class as u16);
                match &s.zone {
                    Some(zone) => mark(zone, &mut watched),
                    None => default_zone = true,
                }
            }
            for (i, d) in journey.dates.iter().enumerate() {
                dates.push((j, i as u16));
                mark(&d.value, &mut watched);
                match &d.zone {
                    Some(zone) => mark(zone, &mut watched),
                    None => default_zone = true,
                }
            }
            for (i, s) in journey.segment_triggers.iter().enumerate() {
                segments.push((j, i as u16));
                mark(&s.condition, &mut watched);
            }
        }
        if default_zone && let Some(slot) = timezone.and_then(|s| watched.get_mut(s as usize)) {
            *slot = true;
        }
        layout.schedules = schedules.into();
        layout.schedule_class = schedule_class.into();
        layout.classes = classes.into();
        layout.dates = dates.into();
        layout.segments = segments.into();
        layout.watched = watched.into();
        layout.timezone = timezone;
        layout
    }

    /// Whether the program has any of these triggers.
    pub fn any(&self) -> bool {
        !self.schedules.is_empty() || !self.dates.is_empty() || !self.segments.is_empty()
    }

    /// Whether a change to profile slot `slot` concerns them.
    pub fn watches(&self, slot: usize) -> bool {
        self.watched.get(slot).copied().unwrap_or(false)
    }
}

/// Marks every profile slot `e` reads.
fn mark(e: &CExpr, watched: &mut [bool]) {
    match e {
        CExpr::Profile(slot) => {
            if let Some(w) = watched.get_mut(*slot as usize) {
                *w = true;
            }
        }
        CExpr::Call(_, args) | CExpr::List(args) => args.iter().for_each(|a| mark(a, watched)),
        CExpr::Not(a) | CExpr::Neg(a) => mark(a, watched),
        CExpr::Binary(_, a, b) => {
            mark(a, watched);
            mark(b, watched);
        }
        // `reachable()` reads the channel's address and consent.
        CExpr::Reachable(_) => watched.iter_mut().for_each(|w| *w = true),
        _ => {}
    }
}

/// What the triggers saw before a profile change.
#[derive(Clone, Debug, Default)]
pub struct Before {
    /// Per [`EntryLayout::segments`]: the segment's value.
    segments: Vec<bool>,
    /// Per [`EntryLayout::dates`]: the pending moment (the next
    /// anniversary), if any.
    moments: Vec<Option<i64>>,
}

/// Known users grouped by time zone, per zone class, and the pending
/// occurrence of each schedule in each zone that has members. Derived
/// state: `Runtime::rebuild_index` makes it again from the store.
#[derive(Default)]
pub struct ZoneIndex {
    classes: Vec<Class>,
    /// (due, schedule, group): one per schedule and zone with members.
    pending: BTreeSet<(i64, u32, u16)>,
}

#[derive(Default)]
struct Class {
    /// Per user id: its group + 1 (0: not placed yet).
    of_user: Vec<u16>,
    groups: Vec<Group>,
    by_zone: FxHashMap<Option<ZoneId>, u16>,
}

struct Group {
    zone: Option<ZoneId>,
    /// Users placed in this group, oldest first; a user who moved to
    /// another zone stays until the next occurrence sweeps it out.
    members: Vec<UserId>,
    /// Whether the group's occurrences are pending.
    scheduled: bool,
}

impl ZoneIndex {
    /// The earliest pending occurrence.
    pub fn next_due(&self) -> Option<i64> {
        self.pending.first().map(|&(due, _, _)| due)
    }

    /// Bytes held per user, for the bench: the index's lists and groups.
    pub fn heap_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| {
                c.of_user.capacity() * 2
                    + c.groups
                        .iter()
                        .map(|g| g.members.capacity() * 4 + std::mem::size_of::<Group>())
                        .sum::<usize>()
            })
            .sum::<usize>()
            + self.pending.len() * 16
    }

    /// Places `user` (of `profile`) in its zone group of every class, and
    /// schedules a group's occurrences when it gets its first member.
    pub fn place(
        &mut self,
        layout: &EntryLayout,
        program: &Program,
        zones: &mut Zones,
        user: UserId,
        profile: &Packed,
        now: i64,
    ) {
        if layout.schedules.is_empty() {
            return;
        }
        if self.classes.len() < layout.classes.len() {
            self.classes
                .resize_with(layout.classes.len(), Class::default);
        }
        for (c, expr) in layout.classes.iter().enumerate() {
            let zone = zone_of(program, zones, layout.timezone, expr.as_ref(), profile, now);
            let class = &mut self.classes[c];
            let g = match class.by_zone.get(&zone) {
                Some(&g) => g,
                None => {
                    class.groups.push(Group {
                        zone,
                        members: Vec::new(),
                        scheduled: false,
                    });
                    let g = (class.groups.len() - 1) as u16;
                    class.by_zone.insert(zone, g);
                    g
                }
            };
            let u = user as usize;
            if class.of_user.len() <= u {
                class.of_user.resize(u + 1, 0);
            }
            if class.of_user[u] == g + 1 {
                continue;
            }
            class.of_user[u] = g + 1;
            let group = &mut class.groups[g as usize];
            group.members.push(user);
            if !group.scheduled {
                group.scheduled = true;
                for (s, &sc) in layout.schedule_class.iter().enumerate() {
                    if sc as usize != c {
                        continue;
                    }
                    let (j, i) = layout.schedules[s];
                    let schedule = &program.journeys[j as usize].schedules[i as usize];
                    if let Some(due) = clock::next_local_time(
                        now,
                        zones.tz(zone),
                        schedule.minute,
                        schedule.weekdays,
                    ) {
                        self.pending.insert((due, s as u32, g));
                    }
                }
            }
        }
    }

    /// Takes every occurrence due at `due`: the entry offers it makes go to
    /// `batch` (as [`TimerKind::Schedule`] timers, not queued), and each
    /// occurrence is pending again at its next local time.
    pub fn take_due(
        &mut self,
        layout: &EntryLayout,
        program: &Program,
        zones: &Zones,
        due: i64,
        batch: &mut Vec<Timer>,
    ) {
        while let Some(&(at, s, g)) = self.pending.first() {
            if at != due {
                break;
            }
            self.pending.pop_first();
            let c = layout.schedule_class[s as usize] as usize;
            let (j, i) = layout.schedules[s as usize];
            let class = &mut self.classes[c];
            let group = &mut class.groups[g as usize];
            // Sweep out who moved away, and who came back twice.
            let of_user = &class.of_user;
            group
                .members
                .retain(|&u| of_user.get(u as usize) == Some(&(g + 1)));
            group.members.sort_unstable();
            group.members.dedup();
            if group.members.is_empty() {
                group.scheduled = false;
                // The group's other schedules find it empty in turn.
                continue;
            }
            batch.extend(group.members.iter().map(|&user| Timer {
                due,
                journey: j,
                user,
                generation: 0,
                kind: TimerKind::Schedule(i),
            }));
            let schedule = &program.journeys[j as usize].schedules[i as usize];
            if let Some(next) = clock::next_local_time(
                due,
                zones.tz(group.zone),
                schedule.minute,
                schedule.weekdays,
            ) {
                self.pending.insert((next, s, g));
            }
        }
    }

    /// Whether `user` has been placed in its zones.
    pub fn is_placed(&self, user: UserId) -> bool {
        self.classes
            .first()
            .is_some_and(|c| c.of_user.get(user as usize).is_some_and(|&g| g != 0))
    }

    /// Forgets everything (a rebuild follows).
    pub fn clear(&mut self) {
        self.classes.clear();
        self.pending.clear();
    }
}

/// The zone of zone expression `expr` (`None`: `profile.timezone`) for a
/// profile; an unknown or missing name is UTC.
fn zone_of(
    program: &Program,
    zones: &mut Zones,
    timezone: Option<SlotId>,
    expr: Option<&CExpr>,
    profile: &Packed,
    now: i64,
) -> Option<ZoneId> {
    let scope = Scope {
        profile,
        event: &[],
        instance: None,
        now,
        channels: &program.channels,
        unsubscribed: None,
        zone: ZoneRule {
            expr: None,
            slot: timezone,
        },
    };
    let mut m = 0;
    let name = match expr {
        Some(e) => scope.value(e, &mut m),
        None => timezone.map_or(Value::Null, |s| scope.slot(s).clone()),
    };
    match name {
        Value::String(name) => zones.get(&name),
        _ => None,
    }
}

impl Cx<'_> {
    /// Before the first profile write of an operation that touches a slot
    /// the triggers watch (`None`: any slot): records what they see now.
    pub fn profile_will_change(&mut self, user: &UserState, slot: Option<usize>) {
        let layout = &self.layout.entry;
        if self.before.is_some() || !layout.any() {
            return;
        }
        if slot.is_some_and(|s| !layout.watches(s)) {
            return;
        }
        self.before = Some(self.observe(user));
    }

    /// What the date and segment triggers see in `user`'s profile now.
    pub fn observe(&mut self, user: &UserState) -> Before {
        let whole = self.layout;
        let layout = &whole.entry;
        // No profile yet: every segment is false (LANGUAGE.md §4.4).
        let known = !user.profile.is_empty();
        let mut m = 0;
        let segments = layout
            .segments
            .iter()
            .map(|&(j, i)| {
                let t = &self.program.journeys[j as usize].segment_triggers[i as usize];
                known
                    && self
                        .profile_scope(&user.profile)
                        .holds(&t.condition, &mut m)
            })
            .collect();
        self.stats.type_mismatches += m;
        let moments = (0..layout.dates.len())
            .map(|d| self.moment(user, d, self.now))
            .collect();
        Before { segments, moments }
    }

    fn profile_scope<'s>(&self, profile: &'s Packed) -> Scope<'s>
    where
        Self: 's,
    {
        Scope {
            profile,
            event: &[],
            instance: None,
            now: self.now,
            channels: &self.program.channels,
            unsubscribed: self.layout.unsubscribed,
            zone: self.zone_rule(None),
        }
    }

    /// Date trigger `d`'s next moment strictly after `after` for this
    /// profile (a one-off's moment, whenever it is).
    fn moment(&mut self, user: &UserState, d: usize, after: i64) -> Option<i64> {
        let (j, i) = self.layout.entry.dates[d];
        let trigger = &self.program.journeys[j as usize].dates[i as usize];
        let mut m = 0;
        let value = self
            .profile_scope(&user.profile)
            .value(&trigger.value, &mut m);
        let value = DateValue::of(&value)?;
        let zone = zone_of(
            self.program,
            self.zones,
            self.layout.timezone,
            trigger.zone.as_ref(),
            &user.profile,
            self.now,
        );
        self.stats.type_mismatches += m;
        let tz = self.zones.tz(zone);
        match trigger.kind {
            DateKind::Once => clock::date_moment(value, trigger.offset_ms, trigger.at, tz),
            DateKind::Anniversary => clock::anniversary_after(value, trigger.at, tz, after),
        }
    }

    /// After an operation: acts on what its profile changes did to the
    /// triggers (see the module's documentation), and places a user seen
    /// for the first time (`new`) in its zone.
    pub fn settle(&mut self, user: &mut UserState) {
        let whole = self.layout;
        let layout = &whole.entry;
        if !layout.any() {
            return;
        }
        if !layout.schedules.is_empty() && !self.index.is_placed(self.user) {
            self.place(user);
        }
        for _ in 0..MAX_SETTLE_ROUNDS {
            let Some(before) = self.before.take() else {
                return;
            };
            self.place(user);
            let after = self.observe(user);
            for (d, (old, new)) in before.moments.iter().zip(&after.moments).enumerate() {
                if old == new {
                    continue;
                }
                if let Some(due) = new.filter(|&due| due > self.now) {
                    self.push_date_timer(d, due);
                }
            }
            for (s, (&old, &new)) in before.segments.iter().zip(&after.segments).enumerate() {
                let (j, i) = layout.segments[s];
                let enters = self.program.journeys[j as usize].segment_triggers[i as usize].enters;
                if old != new && new == enters {
                    self.admit_untriggered(user, j);
                }
            }
        }
        // Still changing after the last round: what is left is dropped.
        self.before = None;
    }

    fn place(&mut self, user: &UserState) {
        self.index.place(
            &self.layout.entry,
            self.program,
            self.zones,
            self.user,
            &user.profile,
            self.now,
        );
    }

    /// Offers entry to journey `j` with no trigger event (`trigger.` fields
    /// are null).
    pub fn admit_untriggered(&mut self, user: &mut UserState, j: JourneyId) {
        let fields = self.program.journeys[j as usize].trigger_fields.len();
        self.admit(user, j, vec![Value::Null; fields].into_boxed_slice());
    }

    /// A date timer came due: it offers entry when the profile still gives
    /// this moment (a moved or removed date left it stale); an anniversary
    /// is then pending again a year on.
    pub fn fire_date(&mut self, user: &mut UserState, timer: Timer) {
        let (i, anniversary) = match timer.kind {
            TimerKind::Date(i) => (i, false),
            TimerKind::Anniversary(i) => (i, true),
            _ => return,
        };
        let whole = self.layout;
        let layout = &whole.entry;
        let Some(d) = layout.dates.iter().position(|&t| t == (timer.journey, i)) else {
            return;
        };
        let current = if anniversary {
            self.moment(user, d, timer.due - 1)
        } else {
            self.moment(user, d, self.now)
        };
        if current != Some(timer.due) {
            return;
        }
        if anniversary && let Some(next) = self.moment(user, d, timer.due) {
            self.timers.push(Timer { due: next, ..timer });
        }
        self.admit_untriggered(user, timer.journey);
    }

    /// Pushes the pending date timers of a user (after a deploy dropped
    /// them, or for a store that never had them).
    pub fn queue_dates(&mut self, user: &UserState) {
        for d in 0..self.layout.entry.dates.len() {
            if let Some(due) = self.moment(user, d, self.now).filter(|&due| due > self.now) {
                self.push_date_timer(d, due);
            }
        }
    }

    /// The timer of date trigger `d` (an index in the layout's dates) for
    /// this user, due at `due`.
    fn push_date_timer(&mut self, d: usize, due: i64) {
        let (j, i) = self.layout.entry.dates[d];
        let kind = match self.program.journeys[j as usize].dates[i as usize].kind {
            DateKind::Once => TimerKind::Date(i),
            DateKind::Anniversary => TimerKind::Anniversary(i),
        };
        self.timers.push(Timer {
            due,
            journey: j,
            user: self.user,
            generation: 0,
            kind,
        });
    }
}

impl TimerKind {
    /// Whether the timer recurs (an anniversary): recurring timers fire
    /// only while input lasts (LANGUAGE.md §4.4), and never keep a run
    /// going after it.
    pub fn is_recurring(self) -> bool {
        matches!(self, TimerKind::Anniversary(_) | TimerKind::Schedule(_))
    }
}
