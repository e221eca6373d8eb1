//! Deploys (SERVICE.md §8): what a new version of the journeys does to the
//! customers inside the old one.
//!
//! - [`shape`] is a journey's graph with templates, literals and waits'
//!   durations left out, ids named: two versions of a journey with the same
//!   shape number their steps alike, so an instance moves from one to the
//!   other at its current step.
//! - [`plan`] says, per journey, what a deploy does to the instances inside
//!   it (`journey diff` prints it).
//! - [`retire`] makes the earlier versions of journeys that
//!   [`crate::pipeline::merge`] compiled beside a new version admit no one
//!   ([`Journey::retired`]).

use std::fmt::Write as _;

use crate::compile::program::{CExpr, Journey, JourneyId, NodeKind, Program};

/// A journey's steps as a text with every template, literal and duration
/// left out and every id given by name: equal shapes number their steps
/// alike and read the same state (handles, captured trigger fields,
/// profile slots) the same way.
pub fn shape(program: &Program, journey: &Journey) -> String {
    let mut out = String::new();
    // A `per` key keeps one journey state per key: a version that keys
    // otherwise cannot take over the instances (none reads as before).
    if let Some(per) = journey.per {
        let path = journey.trigger_fields.get(per as usize);
        let _ = writeln!(
            out,
            "per trigger.{}",
            path.map_or("?".to_string(), |p| p.join("."))
        );
    }
    for (i, node) in journey.nodes.iter().enumerate() {
        let _ = write!(out, "{i}:");
        node_shape(program, journey, &node.kind, &mut out);
        out.push('\n');
    }
    out
}

fn node_shape(program: &Program, journey: &Journey, kind: &NodeKind, out: &mut String) {
    let event = |e: u32| program.events.get(e as usize).map_or("?", |e| &e.name);
    let handle = |h: u16| journey.handles.get(h as usize).map_or("?", |h| h);
    match kind {
        NodeKind::Wait { next, .. } => {
            let _ = write!(out, "wait>{next}");
        }
        NodeKind::WaitUntilTime { next, .. } => {
            let _ = write!(out, "wait_until_time>{next}");
        }
        NodeKind::WaitUntil { at, next } => {
            out.push_str("wait_until(");
            expr_shape(program, journey, at, out);
            let _ = write!(out, ")>{next}");
        }
        NodeKind::WaitForEvent {
            alternatives,
            matched,
            timeout,
            ..
        } => {
            // One event reads as before alternatives existed.
            out.push_str("wait_for");
            for (i, alt) in alternatives.iter().enumerate() {
                let _ = write!(
                    out,
                    "{}{}(",
                    if i == 0 { " " } else { " or " },
                    event(alt.event)
                );
                if let Some(c) = &alt.condition {
                    expr_shape(program, journey, c, out);
                }
                out.push(')');
            }
            let _ = write!(out, ">{matched}|{timeout}");
        }
        NodeKind::WaitForEngagement {
            handle: h,
            engagement,
            matched,
            timeout,
            ..
        } => {
            let _ = write!(
                out,
                "wait_for {}.{engagement:?}>{matched}|{timeout}",
                handle(*h)
            );
        }
        NodeKind::Send(send) => {
            out.push_str("send[");
            for alt in &send.alternatives {
                let channel = program
                    .channels
                    .get(alt.channel as usize)
                    .map_or("?", |c| &c.name);
                let _ = write!(out, "{channel}(");
                for (name, value) in &alt.with {
                    let _ = write!(out, "{name}=");
                    expr_shape(program, journey, value, out);
                    out.push(',');
                }
                out.push_str("),");
            }
            let _ = write!(
                out,
                "]{}{}{}>{}",
                send.handle.map_or("", |h| handle(h)),
                if send.transactional {
                    " transactional"
                } else {
                    ""
                },
                if send.wait_when_capped {
                    " wait_capped"
                } else {
                    ""
                },
                send.next
            );
        }
        NodeKind::Branch { arms, otherwise } => {
            out.push_str("if");
            for (condition, next) in arms {
                out.push('(');
                expr_shape(program, journey, condition, out);
                let _ = write!(out, ")>{next}");
            }
            let _ = write!(out, " else>{otherwise}");
        }
        NodeKind::Split { key, arms } => {
            // The key is part of each customer's sticky bucket; the
            // percentages are literals.
            let _ = write!(out, "split {key}");
            for arm in arms {
                let _ = write!(out, ">{}", arm.next);
            }
        }
        NodeKind::Set { slot, value, next } => {
            let path = program
                .profile_slots
                .get(*slot as usize)
                .map(|s| s.path.join("."))
                .unwrap_or_default();
            let _ = write!(out, "set {path}=");
            expr_shape(program, journey, value, out);
            let _ = write!(out, ">{next}");
        }
        NodeKind::Emit { event, with, next } => {
            let _ = write!(out, "emit {event}(");
            for (name, value) in with {
                let _ = write!(out, "{name}=");
                expr_shape(program, journey, value, out);
                out.push(',');
            }
            let _ = write!(out, ")>{next}");
        }
        NodeKind::Audience {
            add,
            audience,
            until_exit,
            next,
        } => {
            let _ = write!(out, "audience {add} {audience} {until_exit}>{next}");
        }
        NodeKind::Exit => out.push_str("exit"),
        NodeKind::End => out.push_str("end"),
    }
}

fn expr_shape(program: &Program, journey: &Journey, expr: &CExpr, out: &mut String) {
    match expr {
        CExpr::Const(_) => out.push('_'),
        CExpr::Profile(slot) => {
            let path = program
                .profile_slots
                .get(*slot as usize)
                .map(|s| s.path.join("."))
                .unwrap_or_default();
            let _ = write!(out, "profile.{path}");
        }
        // An event field's index is its place in the event's field list,
        // which other journeys' uses change: the index is all there is, so
        // it is shown as a field read.
        CExpr::Event(_) => out.push_str("event.?"),
        CExpr::Trigger(i) => {
            let path = journey
                .trigger_fields
                .get(*i as usize)
                .map(|p| p.join("."))
                .unwrap_or_default();
            let _ = write!(out, "trigger.{path}");
        }
        CExpr::EnteredAt => out.push_str("journey.entered_at"),
        CExpr::Engaged(h, e) => {
            let name = journey.handles.get(*h as usize).map_or("?", |h| h);
            let _ = write!(out, "{name}.{e:?}");
        }
        CExpr::Sent(h) => {
            let name = journey.handles.get(*h as usize).map_or("?", |h| h);
            let _ = write!(out, "{name}.sent");
        }
        CExpr::Reachable(c) => {
            let name = program.channels.get(*c as usize).map_or("?", |c| &c.name);
            let _ = write!(out, "reachable({name})");
        }
        CExpr::Now => out.push_str("now()"),
        CExpr::Call(f, args) => {
            let _ = write!(out, "{f:?}(");
            for a in args {
                expr_shape(program, journey, a, out);
                out.push(',');
            }
            out.push(')');
        }
        CExpr::List(items) => {
            out.push('[');
            for a in items {
                expr_shape(program, journey, a, out);
                out.push(',');
            }
            out.push(']');
        }
        CExpr::Not(a) => {
            out.push('!');
            expr_shape(program, journey, a, out);
        }
        CExpr::Neg(a) => {
            out.push('-');
            expr_shape(program, journey, a, out);
        }
        CExpr::Binary(op, a, b) => {
            out.push('(');
            expr_shape(program, journey, a, out);
            let _ = write!(out, " {op:?} ");
            expr_shape(program, journey, b, out);
            out.push(')');
        }
    }
}

/// What a deploy does to the instances inside one journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// The journey's text is the same (its templates may not be): nothing
    /// to say beyond that its instances go on.
    Unchanged,
    /// The steps are the same but for templates, literals and waits'
    /// durations: instances move to the new version at their step.
    Moves,
    /// The steps changed: instances finish on the version they entered;
    /// new entries take the new one.
    Stays,
    /// The new version has no such journey: instances finish on theirs.
    Removed,
    /// New in the new version.
    Added,
}

impl Fate {
    /// How `journey diff` and `/admin/reload` say it.
    pub fn describe(&self) -> &'static str {
        match self {
            Fate::Unchanged => "unchanged",
            Fate::Moves => "instances move to the new version at their step",
            Fate::Stays => "steps changed: instances finish on the version they entered",
            Fate::Removed => "journey removed: instances finish on the version they entered",
            Fate::Added => "new journey",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Fate::Unchanged => "same",
            Fate::Moves => "moves",
            Fate::Stays => "stays",
            Fate::Removed => "removed",
            Fate::Added => "added",
        }
    }
}

/// Per journey name (sorted), what a deploy from `old` to `new` does.
/// Only the live journeys of `old` count; earlier versions kept for their
/// instances stay as they are.
pub fn plan(old: &Program, new: &Program) -> Vec<(String, Fate)> {
    let mut out = Vec::new();
    for j in old.journeys.iter().filter(|j| j.retired.is_none()) {
        let fate = match new.live_journey(&j.name) {
            None => Fate::Removed,
            Some(n) if new.journeys[n as usize].content_hash == j.content_hash => Fate::Unchanged,
            Some(n) if shape(old, j) == shape(new, &new.journeys[n as usize]) => Fate::Moves,
            Some(_) => Fate::Stays,
        };
        out.push((j.name.to_string(), fate));
    }
    for j in new.journeys.iter().filter(|j| j.retired.is_none()) {
        if old.live_journey(&j.name).is_none() {
            out.push((j.name.to_string(), Fate::Added));
        }
    }
    out.sort();
    out
}

/// The separator of a kept journey's internal name while it is compiled:
/// below every character of a name, so that `cart#3` sorts right after
/// `cart` and before `cart2`, and journeys stay in name order once it is
/// taken off.
pub const VERSION_MARK: char = '#';

/// Takes the version mark off kept journeys' names and makes them admit no
/// one: no triggers, no silences.
pub fn retire(program: &mut Program) {
    let mut retired: Vec<JourneyId> = Vec::new();
    for (id, journey) in program.journeys.iter_mut().enumerate() {
        let Some((name, version)) = journey.name.split_once(VERSION_MARK) else {
            continue;
        };
        let Ok(version) = version.parse::<u32>() else {
            continue;
        };
        journey.name = name.into();
        journey.retired = Some(version);
        journey.triggers.clear();
        journey.absence.clear();
        retired.push(id as JourneyId);
    }
    if retired.is_empty() {
        return;
    }
    for event in &mut program.events {
        event.triggers.retain(|j| !retired.contains(j));
        event.silences.retain(|j| !retired.contains(j));
    }
    program.any_silence.retain(|j| !retired.contains(j));
}
