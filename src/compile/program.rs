//! The compiled program: what the runtime executes, what `journey compile`
//! serializes and what CI can diff. Immutable once built (`Send + Sync`).
//!
//! Names are resolved to small integer ids here so the runtime never looks a
//! name up by string per event: events, channels, templates, profile slots,
//! event-property fields and trigger fields are all indices. Each journey's
//! steps form a DAG of [`Node`]s whose index is its [`NodeId`]: ids are
//! assigned in source pre-order (with `repeat` unrolled), so the same source
//! always yields the same ids, and the serialized form names successors by id,
//! never by petgraph index. The petgraph view ([`Journey::graph`]) is derived
//! from the nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

pub use crate::builtins::Engagement;
use crate::value::Value;

/// Index of a node in its journey's `nodes`.
pub type NodeId = u32;
/// Index into [`Program::events`].
pub type EventId = u32;
/// Index into [`Program::channels`].
pub type ChannelId = u16;
/// Index into [`Program::templates`].
pub type TemplateId = u32;
/// Index into [`Program::journeys`] (journeys are sorted by name).
pub type JourneyId = u32;
/// Index into [`Program::profile_slots`].
pub type SlotId = u32;
/// Index of a handle in its journey's `handles`.
pub type HandleId = u16;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Sorted by name: the runtime's "journey-name order" is index order.
    pub journeys: Vec<Journey>,
    /// Every event name the program refers to (triggers, exits, goals, waits,
    /// absence triggers, plus the `message.*` engagement events).
    pub events: Vec<EventInfo>,
    /// Built-in channels first (email, sms, push, in_app, whatsapp, webhook),
    /// then declared custom channels by name.
    pub channels: Vec<Channel>,
    /// Declared templates by name.
    pub templates: Vec<Template>,
    /// Every profile path the program reads or writes, including the
    /// built-in channel rules' fields.
    pub profile_slots: Vec<ProfileSlot>,
    pub policy: Policy,
    /// Journeys with `trigger no any for ...`: every event restarts them.
    pub any_silence: Vec<JourneyId>,
    /// The project's `attribution` item (LANGUAGE.md §4.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// `attribution { conversion ... window ... half life ... }`: which events
/// are conversions, what each is worth, and how far back a send counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The conversion event; `CExpr::Event(i)` in `condition` and `value`
    /// reads its `fields[i]`.
    pub event: EventId,
    pub condition: Option<CExpr>,
    /// What a conversion is worth; `None`, or a value that is not a
    /// number, is 0.
    pub value: Option<CExpr>,
    /// A send at `t` is a touch of a conversion at `T` when
    /// `T - window_ms < t <= T`.
    pub window_ms: i64,
    /// The time-decay model's half life.
    pub half_life_ms: i64,
}

/// What the program does with one event name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    pub name: Arc<str>,
    /// Property paths the program reads from this event; `CExpr::Event(i)`
    /// in a clause matching this event reads `fields[i]`.
    pub fields: Vec<FieldPath>,
    /// Journeys (ids, ascending) that react to this event, by role.
    pub triggers: Vec<JourneyId>,
    pub exits: Vec<JourneyId>,
    pub goals: Vec<JourneyId>,
    /// Journeys with a `wait for <this event>` node.
    pub waits: Vec<JourneyId>,
    /// Journeys with `trigger no <this event> for ...`.
    pub silences: Vec<JourneyId>,
    /// `Some` for `message.<engagement>` events.
    pub engagement: Option<Engagement>,
}

/// A dotted path below a root (`["consent", "sms"]`).
pub type FieldPath = Vec<Arc<str>>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSlot {
    pub path: FieldPath,
    /// Declared in the profile schema as a timestamp: string traits are
    /// parsed into `Value::Timestamp` when stored.
    pub timestamp: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub name: Arc<str>,
    /// `None`: always reachable, no address (webhook).
    pub address: Option<CExpr>,
    /// `None`: no consent rule. A value of `false` is an opt-out.
    pub consent: Option<CExpr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: Arc<str>,
    pub channel: ChannelId,
    /// Jinja source (minijinja), checked at compile time.
    pub subject: Option<Arc<str>>,
    pub body: Arc<str>,
    /// The HTML part of an email, rendered with its values HTML-escaped.
    pub html: Option<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub caps: Vec<Cap>,
    pub quiet_hours: Option<QuietHours>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cap {
    /// `None`: `cap messages` (every non-transactional send).
    pub channel: Option<ChannelId>,
    pub limit: u32,
    pub window_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Minutes after local midnight; `from > to` wraps midnight.
    pub from: u16,
    pub to: u16,
    /// The time-zone expression (`in ...`); `None`: `profile.timezone`, else UTC.
    pub zone: Option<CExpr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub name: Arc<str>,
    pub display_name: Option<Arc<str>>,
    pub description: Option<Arc<str>>,
    /// Hex SHA-256 of the journey's source text (the `journey` item), for
    /// change detection in CI and safe resumption.
    pub content_hash: String,
    pub triggers: Vec<Trigger>,
    pub absence: Vec<Absence>,
    /// `trigger every ... at HH:MM` (LANGUAGE.md §4.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// `trigger on|before|after|anniversary of <profile path>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateTrigger>,
    /// `trigger enters|leaves <segment>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_triggers: Vec<SegmentTrigger>,
    pub audience: Option<CExpr>,
    pub reentry: Reentry,
    /// `per trigger.<path>`: the index of that path in `trigger_fields`.
    /// A user then has one active instance per value of it, each in a
    /// journey state of its own (LANGUAGE.md §4.4, "One instance per key").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<u32>,
    pub exit_on: Vec<EventClause>,
    pub exit_if: Vec<CExpr>,
    pub goal: Option<Goal>,
    /// Percentage of entrants held out, `0 < p <= 100`.
    pub holdout: Option<f64>,
    pub caps: Vec<Cap>,
    /// The journey's own quiet hours, else the policy's.
    pub quiet_hours: Option<QuietHours>,
    /// `trigger.<path>` values an instance keeps; `CExpr::Trigger(i)` reads
    /// `trigger_fields[i]`.
    pub trigger_fields: Vec<FieldPath>,
    /// Handle names; `HandleId` indexes this.
    pub handles: Vec<Arc<str>>,
    /// The DAG; node 0 is the entry.
    pub nodes: Vec<Node>,
    pub limits: Limits,
    /// `Some(v)`: this journey as version `v` of the service's journeys
    /// had it, kept after a deploy changed its steps so that the instances
    /// inside it finish where they entered (SERVICE.md §8). It admits no
    /// one (no triggers, no silences) and sits right after the live
    /// journey of its name, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub event: EventId,
    pub condition: Option<CExpr>,
    /// For each of the journey's `trigger_fields`, the index of the same path
    /// in this event's `fields` (`None`: the event has no such field → null).
    pub capture: Vec<Option<u32>>,
}

/// `trigger every day|<weekdays> at HH:MM [in <zone>]`: every known user
/// is offered entry at each local occurrence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Minutes after local midnight.
    pub minute: u16,
    /// Bit 0 = Monday; 0 = every day.
    pub weekdays: u8,
    /// `in <zone>`; `None`: `profile.timezone`, else UTC.
    pub zone: Option<CExpr>,
}

/// A date trigger: entry at a moment read from the profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DateTrigger {
    /// The profile value the moment is read from (a timestamp or a date).
    pub value: CExpr,
    /// `Once`: the value plus `offset_ms` (`before`: negative); `Anniversary`:
    /// every year on its month and day.
    pub kind: DateKind,
    pub offset_ms: i64,
    /// `at HH:MM`: minutes after local midnight.
    pub at: Option<u16>,
    /// `in <zone>`; `None`: `profile.timezone`, else UTC.
    pub zone: Option<CExpr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateKind {
    Once,
    Anniversary,
}

/// `trigger enters|leaves <segment>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentTrigger {
    pub segment: Arc<str>,
    /// `true`: on false → true; `false`: on true → false.
    pub enters: bool,
    /// The segment's condition (profile only).
    pub condition: CExpr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Absence {
    /// `None`: `any` event.
    pub event: Option<EventId>,
    pub silence_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reentry {
    Never,
    Always,
    After { ms: i64 },
}

/// `exit on <event> [where <cond>]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventClause {
    pub event: EventId,
    pub condition: Option<CExpr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub event: EventId,
    /// The event as written, for the `convert` action's `goal` field.
    pub name: Arc<str>,
    pub condition: Option<CExpr>,
    /// Counted from entry; `None`: while the instance is active only.
    pub within_ms: Option<i64>,
}

/// Static facts about a journey, exact over all paths of its DAG.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Most messages one user can receive per channel name, in one instance.
    pub max_sends: BTreeMap<String, u32>,
    /// Most messages of any channel in one instance.
    pub max_messages: u32,
    /// The longest an instance can stay active, in ms: waits, `within`
    /// windows, quiet-hours and `on capped wait` deferrals at their worst.
    pub max_active_ms: i64,
    /// A reachable `wait until <expr>` can hold an instance for as long as
    /// the data says: `max_active_ms` counts it as 0.
    #[serde(default)]
    pub unbounded: bool,
    /// Nodes no path from the entry reaches.
    pub unreachable: Vec<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub kind: NodeKind,
    /// The step as written (first line, trimmed), for graphs and reports.
    pub label: Arc<str>,
    /// 1-based source line of the step.
    pub line: u32,
    /// For an `if`: each arm's condition as written (segments by name, not
    /// inlined), for graph edge labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// `wait <duration>`
    Wait {
        ms: i64,
        next: NodeId,
    },
    /// `wait until HH:MM [on days]`: the next such local time strictly after now.
    WaitUntilTime {
        minute: u16,
        /// Bit `d` set (Monday = 0 .. Sunday = 6) when day `d` is allowed; 0: every day.
        weekdays: u8,
        next: NodeId,
    },
    /// `wait until <timestamp expr>`; a past or null time continues at once.
    WaitUntil {
        at: CExpr,
        next: NodeId,
    },
    /// `wait for <event> [where] [or <event> [where]]... within` —
    /// `matched` after the first event of `alternatives` that arrives and
    /// whose condition holds, `timeout` after the window.
    WaitForEvent {
        alternatives: Vec<EventClause>,
        within_ms: i64,
        matched: NodeId,
        timeout: NodeId,
    },
    /// `wait for <handle>.<engagement> within`
    WaitForEngagement {
        handle: HandleId,
        engagement: Engagement,
        within_ms: i64,
        matched: NodeId,
        timeout: NodeId,
    },
    Send(SendNode),
    /// `if/else if/else`: the first arm whose condition holds, else `otherwise`.
    Branch {
        arms: Vec<(CExpr, NodeId)>,
        otherwise: NodeId,
    },
    /// Sticky random split: the user's bucket in [0, 100) picks the arm whose
    /// cumulative percentage first exceeds it.
    Split {
        /// The split's name, or `split_<node id>`: part of the sticky hash.
        key: Arc<str>,
        arms: Vec<SplitArm>,
    },
    /// `set profile.<path> = <expr>`
    Set {
        slot: SlotId,
        value: CExpr,
        next: NodeId,
    },
    /// `emit <event> with { ... }`
    Emit {
        event: Arc<str>,
        with: Vec<(Arc<str>, CExpr)>,
        next: NodeId,
    },
    /// `add to audience` / `remove from audience`
    Audience {
        add: bool,
        audience: Arc<str>,
        until_exit: bool,
        next: NodeId,
    },
    /// `exit`: the instance ends with reason `exit_step`.
    Exit,
    /// The end of the steps: reason `completed`.
    End,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitArm {
    pub percent: f64,
    pub label: Arc<str>,
    pub next: NodeId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendNode {
    pub alternatives: Vec<SendAlt>,
    pub handle: Option<HandleId>,
    pub transactional: bool,
    /// `on capped wait`: suspend until a cap frees up instead of suppressing.
    pub wait_when_capped: bool,
    /// `at best hour [within W]`: the window W in ms (at most a day). The
    /// send waits for the customer's best hour when it comes within W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_hour_ms: Option<i64>,
    pub next: NodeId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendAlt {
    pub channel: ChannelId,
    /// The template name or external id, as written.
    pub template: Arc<str>,
    /// The declared template, if any (rendered into the action).
    pub declared: Option<TemplateId>,
    /// `with { k: v }`, in source order.
    pub with: Vec<(Arc<str>, CExpr)>,
    /// Values the declared template reads (`profile.first_name`,
    /// `trigger.total`, ...), as (path from the context root, value).
    pub render: Vec<(FieldPath, CExpr)>,
}

/// A compiled expression: names resolved to slots, segments inlined,
/// constants folded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CExpr {
    Const(Value),
    /// A profile slot.
    Profile(SlotId),
    /// A field of the event being matched (index into its `EventInfo::fields`).
    Event(u32),
    /// A captured trigger field (index into `Journey::trigger_fields`).
    Trigger(u32),
    /// `journey.entered_at`
    EnteredAt,
    /// `<handle>.<engagement>`: has it happened yet.
    Engaged(HandleId, Engagement),
    /// `<handle>.sent`
    Sent(HandleId),
    /// `reachable(<channel>)`
    Reachable(ChannelId),
    /// `now()`: the runtime's clock.
    Now,
    Call(Func, Vec<CExpr>),
    List(Vec<CExpr>),
    Not(Box<CExpr>),
    Neg(Box<CExpr>),
    Binary(BinOp, Box<CExpr>, Box<CExpr>),
}

impl CExpr {
    /// Whether its value depends on the profile (a slot, or `reachable`).
    pub fn reads_profile(&self) -> bool {
        match self {
            CExpr::Profile(_) | CExpr::Reachable(_) => true,
            CExpr::Call(_, args) | CExpr::List(args) => args.iter().any(CExpr::reads_profile),
            CExpr::Not(e) | CExpr::Neg(e) => e.reads_profile(),
            CExpr::Binary(_, a, b) => a.reads_profile() || b.reads_profile(),
            CExpr::Const(_)
            | CExpr::Event(_)
            | CExpr::Trigger(_)
            | CExpr::EnteredAt
            | CExpr::Engaged(..)
            | CExpr::Sent(_)
            | CExpr::Now => false,
        }
    }
}

/// A call the runtime evaluates on its arguments' values: the
/// [`crate::builtins::Function`]s other than `now()` and `reachable(..)`,
/// which read the clock and the channel rules and compile to nodes of their
/// own ([`CExpr::Now`], [`CExpr::Reachable`]). `compile/expr.rs` maps one to
/// the other with an exhaustive match, so a new function cannot be missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    Lower,
    Upper,
    Len,
    Coalesce,
    DaysSince,
    HoursSince,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    Add,
    Sub,
    Mul,
    Div,
}

/// An edge of the execution graph, labelled as `journey graph` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edge {
    Next,
    Matched,
    Timeout,
    /// `if` arm i (0-based), labelled with its condition.
    Arm(usize),
    Else,
    /// Split arm label with its percentage.
    Split(Arc<str>, String),
}

impl NodeKind {
    /// Successors with their edge labels, in a fixed order.
    pub fn successors(&self) -> Vec<(Edge, NodeId)> {
        match self {
            NodeKind::Wait { next, .. }
            | NodeKind::WaitUntilTime { next, .. }
            | NodeKind::WaitUntil { next, .. }
            | NodeKind::Set { next, .. }
            | NodeKind::Emit { next, .. }
            | NodeKind::Audience { next, .. } => vec![(Edge::Next, *next)],
            NodeKind::Send(s) => vec![(Edge::Next, s.next)],
            NodeKind::WaitForEvent {
                matched, timeout, ..
            }
            | NodeKind::WaitForEngagement {
                matched, timeout, ..
            } => vec![(Edge::Matched, *matched), (Edge::Timeout, *timeout)],
            NodeKind::Branch { arms, otherwise } => arms
                .iter()
                .enumerate()
                .map(|(i, (_, n))| (Edge::Arm(i), *n))
                .chain([(Edge::Else, *otherwise)])
                .collect(),
            NodeKind::Split { arms, .. } => arms
                .iter()
                .map(|a| {
                    (
                        Edge::Split(a.label.clone(), format!("{}%", a.percent)),
                        a.next,
                    )
                })
                .collect(),
            NodeKind::Exit | NodeKind::End => Vec::new(),
        }
    }
}

impl Journey {
    /// The petgraph view of the journey: node weights are node ids, so
    /// `NodeIndex::new(id)` is node `id`.
    pub fn graph(&self) -> DiGraph<NodeId, Edge> {
        let mut g = DiGraph::with_capacity(self.nodes.len(), self.nodes.len());
        for id in 0..self.nodes.len() {
            g.add_node(id as NodeId);
        }
        for (id, node) in self.nodes.iter().enumerate() {
            for (edge, to) in node.kind.successors() {
                g.add_edge(NodeIndex::new(id), NodeIndex::new(to as usize), edge);
            }
        }
        g
    }
}

impl Program {
    /// The id of an event name, if the program refers to it.
    pub fn event_id(&self, name: &str) -> Option<EventId> {
        self.events
            .iter()
            .position(|e| &*e.name == name)
            .map(|i| i as EventId)
    }

    /// The journey of this name that admits customers, or else the first
    /// kept version of it ([`Journey::retired`]).
    pub fn journey_id(&self, name: &str) -> Option<JourneyId> {
        self.journeys_named(name).next()
    }

    /// Every journey of this name: the live one first, then the versions
    /// kept for their instances.
    pub fn journeys_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = JourneyId> + 'a {
        let first = self.journeys.partition_point(|j| *j.name < *name);
        self.journeys[first..]
            .iter()
            .take_while(move |j| &*j.name == name)
            .enumerate()
            .map(move |(i, _)| (first + i) as JourneyId)
    }

    /// The live journey of this name (not a kept version).
    pub fn live_journey(&self, name: &str) -> Option<JourneyId> {
        self.journeys_named(name)
            .find(|&j| self.journeys[j as usize].retired.is_none())
    }
}
