//! A read-only view of one customer's runtime state, for people ("why did
//! Ana not get the email?"): the profile, every journey's instance (the
//! step it waits at, until when, for what), its sends, the recent sends
//! caps count and the caps in force now. Reads the state; changes nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::counts;
use super::store::{Instance, JourneyState, TimerKind, UserState};
use super::{Runtime, Store};
use crate::compile::program::{Cap, Journey, NodeKind, Program};
use crate::value::format_timestamp;

/// One customer as the runtime holds them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserView {
    pub user: String,
    /// The runtime's clock (RFC 3339), against which windows are counted.
    pub now: Option<String>,
    /// Profile values by path (`address.city`), the unset ones left out.
    pub profile: BTreeMap<String, serde_json::Value>,
    /// Every journey the customer has entered, in the program's order.
    pub journeys: Vec<JourneyView>,
    /// The sends caps count (not transactional ones), oldest first: kept
    /// as long as the program's longest cap window.
    pub recent_sends: Vec<RecentSend>,
    /// The caps that apply to the customer, with what they count now.
    pub caps: Vec<CapView>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JourneyView {
    pub journey: String,
    pub version: u32,
    /// `active` (an instance runs), `goal_window` (ended, its goal may
    /// still convert it) or `ended`.
    pub state: &'static str,
    /// Entries so far, held-out ones included.
    pub entries: u32,
    pub last_entry_at: Option<String>,
    pub instance: Option<InstanceView>,
    /// The end of the goal window of an ended instance.
    pub goal_window_until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceView {
    /// The entry number (1 for the first).
    pub entry: u32,
    pub entered_at: String,
    pub held_out: bool,
    pub step: StepView,
    /// What it waits for, in words: `wait 1h`, `wait for reminder.clicked`,
    /// `quiet hours`.
    pub waiting_for: String,
    /// When its timer fires (a wait ends, a window times out, quiet hours
    /// end), when it has one.
    pub until: Option<String>,
    pub sends: Vec<InstanceSend>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepView {
    pub node: u32,
    /// The step as written.
    pub step: String,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceSend {
    pub message_id: String,
    pub at: String,
    pub channel: String,
    pub template: String,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecentSend {
    pub at: String,
    pub journey: String,
    pub channel: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapView {
    /// `policy`, or the journey whose `cap` it is (it counts only that
    /// journey's sends).
    pub scope: String,
    /// The channel it caps, or `messages` for every channel.
    pub channel: String,
    pub limit: u32,
    pub window_seconds: i64,
    /// Sends it counts now.
    pub counted: usize,
    /// Whether it stops the next send now.
    pub reached: bool,
}

/// The view of the customer `key`; `None` when the runtime has never seen
/// them.
///
/// `live_version` is the version of the journeys the runtime admits
/// customers into (1 for a runtime never deployed over); an earlier
/// version kept for the customers inside it says its own.
pub fn user<S: Store>(runtime: &Runtime<S>, key: &str, live_version: u32) -> Option<UserView> {
    let store = runtime.store();
    let id = store.find_user(key)?;
    let program: &Program = runtime.program();
    let state = store.user(id);
    let timers = store.user_timers(id);
    let now = store.clock();
    let journeys = state
        .journeys
        .iter()
        .filter(|js| js.entries > 0)
        .filter_map(|js| {
            let journey = program.journeys.get(js.journey as usize)?;
            let due = timers
                .iter()
                .filter(|t| {
                    t.journey == js.journey
                        && t.kind == TimerKind::Instance
                        && t.generation == js.generation
                })
                .map(|t| t.due)
                .min();
            Some(journey_view(program, journey, key, js, due, live_version))
        })
        .collect();
    Some(UserView {
        user: key.to_string(),
        now: now.map(format_timestamp),
        profile: profile(program, state),
        journeys,
        recent_sends: state
            .sent
            .iter()
            .map(|r| RecentSend {
                at: format_timestamp(r.at),
                journey: name_of(program.journeys.get(r.journey as usize).map(|j| &*j.name)),
                channel: name_of(program.channels.get(r.channel as usize).map(|c| &*c.name)),
            })
            .collect(),
        caps: caps(program, state, now),
    })
}

fn name_of(name: Option<&str>) -> String {
    name.unwrap_or("?").to_string()
}

fn profile(program: &Program, state: &UserState) -> BTreeMap<String, serde_json::Value> {
    program
        .profile_slots
        .iter()
        .zip(state.profile.to_vec())
        .filter(|(_, value)| !value.is_null())
        .map(|(slot, value)| (slot.path.join("."), value.to_json()))
        .collect()
}

fn journey_view(
    program: &Program,
    journey: &Journey,
    key: &str,
    js: &JourneyState,
    due: Option<i64>,
    live_version: u32,
) -> JourneyView {
    let goal_window_until = js.watch.as_deref().and_then(|watch| {
        let within = journey.goal.as_ref()?.within_ms?;
        Some(format_timestamp(watch.entered_at.saturating_add(within)))
    });
    let state = match (&js.instance, &goal_window_until) {
        (Some(_), _) => "active",
        (None, Some(_)) => "goal_window",
        (None, None) => "ended",
    };
    JourneyView {
        journey: journey.name.to_string(),
        version: journey.retired.unwrap_or(live_version),
        state,
        entries: js.entries,
        last_entry_at: (js.entries > 0).then(|| format_timestamp(js.last_entry_at)),
        instance: js
            .instance
            .as_ref()
            .map(|inst| instance_view(program, journey, key, inst, due)),
        goal_window_until,
    }
}

fn instance_view(
    program: &Program,
    journey: &Journey,
    key: &str,
    inst: &Instance,
    due: Option<i64>,
) -> InstanceView {
    let node = journey.nodes.get(inst.node as usize);
    let sends = inst
        .sends
        .iter()
        .map(|s| {
            let step = journey.nodes.get(s.node as usize);
            let alt = step.and_then(|n| match &n.kind {
                NodeKind::Send(send) => send.alternatives.get(usize::from(s.alt)),
                _ => None,
            });
            InstanceSend {
                // As the engine makes it: journey, user, entry, step.
                message_id: format!("{}:{key}:{}:{}", journey.name, inst.entry, s.node),
                at: format_timestamp(s.at),
                channel: name_of(
                    alt.and_then(|a| program.channels.get(a.channel as usize))
                        .map(|c| &*c.name),
                ),
                template: name_of(alt.map(|a| &*a.template)),
                line: step.map_or(0, |n| n.line),
            }
        })
        .collect();
    InstanceView {
        entry: inst.entry,
        entered_at: format_timestamp(inst.entered_at),
        held_out: inst.holdout,
        step: StepView {
            node: inst.node,
            step: node.map_or_else(String::new, |n| n.label.to_string()),
            line: node.map_or(0, |n| n.line),
        },
        waiting_for: node.map_or_else(String::new, |n| {
            waiting_for(program, journey, &n.kind, &n.label)
        }),
        until: due.map(format_timestamp),
        sends,
    }
}

/// What an instance suspended at a step of `kind` waits for, in words.
fn waiting_for(program: &Program, journey: &Journey, kind: &NodeKind, label: &str) -> String {
    match kind {
        NodeKind::Wait { .. } | NodeKind::WaitUntilTime { .. } | NodeKind::WaitUntil { .. } => {
            label.to_string()
        }
        NodeKind::WaitForEvent { alternatives, .. } => format!(
            "wait for {}",
            alternatives
                .iter()
                .map(|alt| name_of(program.events.get(alt.event as usize).map(|e| &*e.name)))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        NodeKind::WaitForEngagement {
            handle, engagement, ..
        } => format!(
            "wait for {}.{}",
            name_of(journey.handles.get(usize::from(*handle)).map(|h| &**h)),
            engagement.name()
        ),
        // A send waits only when deferred.
        NodeKind::Send(send) if send.wait_when_capped => "quiet hours or a cap".to_string(),
        NodeKind::Send(_) => "quiet hours".to_string(),
        _ => "nothing (runs on at once)".to_string(),
    }
}

/// The policy's caps and those of every journey the customer is in, with
/// what each counts at `now`, as the engine counts them.
fn caps(program: &Program, state: &UserState, now: Option<i64>) -> Vec<CapView> {
    let policy = program.policy.caps.iter().map(|c| (c, None));
    let journeys = state
        .journeys
        .iter()
        .filter(|js| js.entries > 0)
        .filter_map(|js| {
            program
                .journeys
                .get(js.journey as usize)
                .map(|j| (js.journey, j))
        })
        .flat_map(|(id, j)| j.caps.iter().map(move |c| (c, Some((id, &*j.name)))));
    policy
        .chain(journeys)
        .map(|(cap, journey)| cap_view(program, state, now, cap, journey))
        .collect()
}

fn cap_view(
    program: &Program,
    state: &UserState,
    now: Option<i64>,
    cap: &Cap,
    journey: Option<(u32, &str)>,
) -> CapView {
    let counted = now.map_or(0, |now| {
        state
            .sent
            .iter()
            .filter(|r| counts(cap, journey.map(|(j, _)| j), r, now))
            .count()
    });
    CapView {
        scope: journey.map_or_else(|| "policy".to_string(), |(_, name)| name.to_string()),
        channel: cap.channel.map_or_else(
            || "messages".to_string(),
            |c| name_of(program.channels.get(c as usize).map(|c| &*c.name)),
        ),
        limit: cap.limit,
        window_seconds: cap.window_ms / 1000,
        counted,
        reached: counted >= cap.limit as usize,
    }
}
