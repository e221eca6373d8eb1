//! Journey tests: `*.journey-test` files of scenarios written next to the
//! journeys (docs/testing.md). A test gives customers' profiles and events at
//! times, relative to its start (`+1h`) or absolute, and states what must
//! happen: a send (channel, template, customer, time, rendered subject), no
//! send, an exit and its reason, a conversion, an entry.
//!
//! [`syntax`] parses a file (its own small pest grammar,
//! `grammar/journey_test.pest`); [`check()`] checks a test against the
//! project like the checker checks a journey (unknown events, fields,
//! templates, channels and journeys are the checker's own diagnostics,
//! E0204–E0207 and E0202, with spans); [`run`] feeds the inputs to the
//! runtime ([`crate::runtime::Runtime`]) on its virtual clock, as `journey
//! simulate` does, and matches what it did against the expectations;
//! [`Outcome::timeline`] is the diff printed for a failure; [`junit`]
//! writes the JUnit XML report.

mod check;
pub mod junit;
mod syntax;

use std::sync::Arc;

pub use check::check;
pub use syntax::parse;

use crate::compile::Program;
use crate::runtime::{Action, ActionKind, ExitReason, Runtime};
use crate::source::Span;
use crate::value;

/// When a test without `start` begins: Monday 2 March 2026, 10:00 UTC
/// (a weekday morning, outside the usual quiet hours in Europe and the
/// Americas).
pub const DEFAULT_START: &str = "2026-03-02T10:00:00Z";

/// One `test "..." { ... }`.
#[derive(Clone, Debug)]
pub struct Test {
    pub name: String,
    pub name_span: Span,
    pub span: Span,
    /// `start <timestamp>`.
    pub start: Option<(i64, Span)>,
    /// `until <time>`: where the clock stops.
    pub until: Option<Time>,
    /// Profiles and events, in the order written.
    pub inputs: Vec<Input>,
    pub expects: Vec<Expect>,
}

/// A name as written: an identifier, or a string (`"Order Completed"`).
#[derive(Clone, Debug)]
pub struct Named {
    pub name: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug)]
pub enum Time {
    /// `+1h`: after the test's start.
    Relative { secs: u64, span: Span },
    /// A timestamp, epoch milliseconds.
    Absolute { ms: i64, span: Span },
}

impl Time {
    fn ms(self, start: i64) -> i64 {
        match self {
            Time::Relative { secs, .. } => {
                start.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
            }
            Time::Absolute { ms, .. } => ms,
        }
    }
}

/// `profile ana { ... }` (at the start) or `at <time> ana <event> { ... }`
/// / `at <time> ana profile { ... }`.
#[derive(Clone, Debug)]
pub struct Input {
    pub at: Time,
    pub user: Named,
    pub kind: InputKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum InputKind {
    /// An identify with these traits.
    Profile(Obj),
    /// A track event.
    Track {
        event: Named,
        properties: Option<Obj>,
    },
}

/// `{ key: value, ... }`.
#[derive(Clone, Debug)]
pub struct Obj {
    pub entries: Vec<(Named, Val)>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    List(Vec<Val>),
    Obj(Obj),
}

impl Val {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(s) => serde_json::Value::String(s.clone()),
            Val::Num(n) => value::number_json(*n),
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Null => serde_json::Value::Null,
            Val::List(items) => items.iter().map(Val::to_json).collect(),
            Val::Obj(o) => o.to_json(),
        }
    }
}

impl Obj {
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.entries
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect(),
        )
    }
}

/// `expect ...`.
#[derive(Clone, Debug)]
pub struct Expect {
    pub kind: ExpectKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExpectKind {
    /// `expect send <channel> <template> to <user> [from <journey>] [at <time>] [subject "..."]`
    Send {
        channel: Named,
        template: Named,
        user: Named,
        journey: Option<Named>,
        at: Option<Time>,
        subject: Option<String>,
    },
    /// `expect no send [<channel> [<template>]] to <user> [after <time>]`
    NoSend {
        channel: Option<Named>,
        template: Option<Named>,
        user: Named,
        after: Option<Time>,
    },
    /// `expect <user> exits [<journey>] [at <time>] [because <reason>]`
    Exit {
        user: Named,
        journey: Option<Named>,
        at: Option<Time>,
        reason: Option<ExitReason>,
    },
    /// `expect <user> converts [in <journey>] [at <time>]`
    Convert {
        user: Named,
        journey: Option<Named>,
        at: Option<Time>,
    },
    /// `expect <user> enters <journey> [at <time>]`
    Enter {
        user: Named,
        journey: Named,
        at: Option<Time>,
    },
}

/// What a test's run did, against what it expected.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub start: i64,
    pub lines: Vec<Line>,
}

/// One line of the timeline diff.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub mark: Mark,
    /// When, epoch milliseconds; `None` for an expectation without a time
    /// that did not happen.
    pub at: Option<i64>,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Expected, and it happened.
    Met,
    /// Expected, and it did not happen.
    Missing,
    /// It happened; nothing said it would.
    Unexpected,
    /// It happened, and an `expect no send` forbade it.
    Forbidden,
    /// An input the runtime refused (a time too far from the clock).
    Refused,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        !self
            .lines
            .iter()
            .any(|l| matches!(l.mark, Mark::Missing | Mark::Forbidden | Mark::Refused))
    }

    /// The timeline diff: `-` expected but did not happen, `+` happened
    /// without being expected, `!` happened though forbidden, and two
    /// spaces for what was expected and happened; times after the start.
    pub fn timeline(&self) -> String {
        let mut out = String::new();
        let width = self
            .lines
            .iter()
            .map(|l| self.when(l.at).len())
            .max()
            .unwrap_or(0);
        for l in &self.lines {
            let mark = match l.mark {
                Mark::Met => ' ',
                Mark::Missing => '-',
                Mark::Unexpected => '+',
                Mark::Forbidden => '!',
                Mark::Refused => '?',
            };
            let when = self.when(l.at);
            out.push_str(&format!("{mark} {when:<width$}  {}\n", l.text));
        }
        out
    }

    fn when(&self, at: Option<i64>) -> String {
        match at {
            None => "(any time)".to_owned(),
            Some(at) => relative(at, self.start),
        }
    }
}

/// `+1d2h` after the start, `-1h` before it; milliseconds when there are some.
pub fn relative(at: i64, start: i64) -> String {
    let diff = at - start;
    let sign = if diff < 0 { '-' } else { '+' };
    let ms = diff.unsigned_abs();
    // Days at most: `+19d`, which a reader counts more easily than `+2w5d`.
    let mut secs = ms / 1000;
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            text.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if !ms.is_multiple_of(1000) {
        text.push_str(&format!("{}ms", ms % 1000));
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    format!("{sign}{text}")
}

/// The test's start, epoch milliseconds.
pub fn start_of(test: &Test) -> i64 {
    test.start.map_or_else(
        || value::parse_timestamp(DEFAULT_START).expect("a valid default start"),
        |(ms, _)| ms,
    )
}

/// Runs one checked test on a fresh runtime over `program`: the inputs in
/// time order (those at the same time in the order written), then the
/// clock runs until nothing is left to do.
pub fn run(program: &Arc<Program>, test: &Test) -> Outcome {
    let start = start_of(test);
    let mut inputs: Vec<&Input> = test.inputs.iter().collect();
    inputs.sort_by_key(|i| i.at.ms(start));
    let mut runtime = Runtime::new(program.clone());
    let mut actions: Vec<Action> = Vec::new();
    let mut refused = Vec::new();
    for input in inputs {
        let at = input.at.ms(start);
        let result = match &input.kind {
            InputKind::Profile(traits) => {
                let traits = traits.to_json();
                let event = crate::runtime::Event::identify(&input.user.name, at, &traits);
                runtime.ingest(&event, &mut |a| actions.push(a))
            }
            InputKind::Track { event, properties } => {
                let properties = properties
                    .as_ref()
                    .map_or_else(|| serde_json::json!({}), Obj::to_json);
                let event =
                    crate::runtime::Event::track(&input.user.name, &event.name, at, &properties);
                runtime.ingest(&event, &mut |a| actions.push(a))
            }
        };
        if let Err(rejected) = result {
            refused.push(Line {
                mark: Mark::Refused,
                at: Some(at),
                text: format!("refused by the runtime: {rejected}"),
            });
        }
    }
    match test.until {
        // Schedules and anniversaries go on firing up to that time.
        Some(until) => runtime.advance_to(until.ms(start), &mut |a| actions.push(a)),
        // The last input is the end of the input, as in `journey simulate`:
        // the one-off timers run out, the recurring ones stop.
        None => {
            runtime.end_input();
            runtime.finish(&mut |a| actions.push(a));
        }
    }
    let mut lines = matches(test, start, &actions);
    lines.extend(refused);
    // Stable: at one time, expectations before what happened.
    lines.sort_by_key(|l| (l.at.is_none(), l.at));
    Outcome { start, lines }
}

fn matches(test: &Test, start: i64, actions: &[Action]) -> Vec<Line> {
    let mut used = vec![false; actions.len()];
    let mut forbidden = vec![false; actions.len()];
    let mut lines = Vec::new();
    for e in &test.expects {
        if let ExpectKind::NoSend {
            channel,
            template,
            user,
            after,
        } = &e.kind
        {
            let from = after.map_or(i64::MIN, |t| t.ms(start));
            for (i, a) in actions.iter().enumerate() {
                if let ActionKind::Send {
                    channel: c,
                    template: t,
                    ..
                } = &a.kind
                    && *a.user_id == *user.name
                    && a.at > from
                    && channel.as_ref().is_none_or(|ch| **c == *ch.name)
                    && template.as_ref().is_none_or(|tp| **t == *tp.name)
                {
                    forbidden[i] = true;
                }
            }
            continue;
        }
        let found = actions
            .iter()
            .enumerate()
            .find(|(i, a)| !used[*i] && satisfies(&e.kind, a, start));
        let at = expected_at(&e.kind).map(|t| t.ms(start));
        match found {
            Some((i, a)) => {
                used[i] = true;
                lines.push(Line {
                    mark: Mark::Met,
                    at: Some(a.at),
                    text: describe_action(a),
                });
            }
            None => lines.push(Line {
                mark: Mark::Missing,
                at,
                text: describe_expect(&e.kind),
            }),
        }
    }
    for (i, a) in actions.iter().enumerate() {
        if used[i] {
            continue;
        }
        let mark = if forbidden[i] {
            Mark::Forbidden
        } else {
            Mark::Unexpected
        };
        lines.push(Line {
            mark,
            at: Some(a.at),
            text: describe_action(a),
        });
    }
    lines
}

fn expected_at(e: &ExpectKind) -> Option<Time> {
    match e {
        ExpectKind::Send { at, .. }
        | ExpectKind::Exit { at, .. }
        | ExpectKind::Convert { at, .. }
        | ExpectKind::Enter { at, .. } => *at,
        ExpectKind::NoSend { after, .. } => *after,
    }
}

fn satisfies(e: &ExpectKind, a: &Action, start: i64) -> bool {
    let time_ok = |at: &Option<Time>| at.is_none_or(|t| t.ms(start) == a.at);
    let journey_ok = |j: &Option<Named>| j.as_ref().is_none_or(|j| *a.journey == *j.name);
    match (e, &a.kind) {
        (
            ExpectKind::Send {
                channel,
                template,
                user,
                journey,
                at,
                subject,
            },
            ActionKind::Send {
                channel: c,
                template: t,
                subject: s,
                ..
            },
        ) => {
            *a.user_id == *user.name
                && **c == *channel.name
                && **t == *template.name
                && journey_ok(journey)
                && time_ok(at)
                && subject
                    .as_ref()
                    .is_none_or(|want| s.as_deref() == Some(want.as_str()))
        }
        (
            ExpectKind::Exit {
                user,
                journey,
                at,
                reason,
            },
            ActionKind::Exit { reason: r },
        ) => {
            *a.user_id == *user.name
                && journey_ok(journey)
                && time_ok(at)
                && reason.is_none_or(|want| want == *r)
        }
        (ExpectKind::Convert { user, journey, at }, ActionKind::Convert { .. }) => {
            *a.user_id == *user.name && journey_ok(journey) && time_ok(at)
        }
        (ExpectKind::Enter { user, journey, at }, ActionKind::Enter { .. }) => {
            *a.user_id == *user.name && *a.journey == *journey.name && time_ok(at)
        }
        _ => false,
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| s.to_owned())
}

/// An action as a line of the timeline, in the words of the test syntax.
pub fn describe_action(a: &Action) -> String {
    let user = &a.user_id;
    let journey = &a.journey;
    match &a.kind {
        ActionKind::Enter { holdout } => {
            let held = if *holdout { " (held out)" } else { "" };
            format!("{user} enters {journey}{held}")
        }
        ActionKind::Send {
            channel,
            template,
            subject,
            ..
        } => {
            let subject = subject
                .as_ref()
                .map_or(String::new(), |s| format!(" subject {}", quoted(s)));
            format!("send {channel} {template} to {user} from {journey}{subject}")
        }
        ActionKind::Suppress {
            channel,
            template,
            reason,
        } => format!(
            "no send {channel} {template} to {user} from {journey}: {}",
            reason.name()
        ),
        ActionKind::Exit { reason } => {
            format!("{user} exits {journey} because {}", reason.name())
        }
        ActionKind::Convert { goal, holdout, .. } => {
            let held = if *holdout { " (held out)" } else { "" };
            format!("{user} converts in {journey} ({goal}){held}")
        }
        ActionKind::Set { path, value } => {
            format!("{journey} sets {path} of {user} to {}", value.to_json())
        }
        ActionKind::Emit { event, .. } => format!("{journey} emits {event} for {user}"),
        ActionKind::Audience { add, audience } => {
            let verb = if *add { "adds" } else { "removes" };
            let to = if *add { "to" } else { "from" };
            format!("{journey} {verb} {user} {to} audience {audience}")
        }
    }
}

fn named(n: &Named) -> String {
    if n.quoted {
        quoted(&n.name)
    } else {
        n.name.clone()
    }
}

/// An expectation as written (without its time, shown in its own column).
pub fn describe_expect(e: &ExpectKind) -> String {
    match e {
        ExpectKind::Send {
            channel,
            template,
            user,
            journey,
            subject,
            ..
        } => {
            let mut text = format!(
                "send {} {} to {}",
                named(channel),
                named(template),
                named(user)
            );
            if let Some(j) = journey {
                text.push_str(&format!(" from {}", named(j)));
            }
            if let Some(s) = subject {
                text.push_str(&format!(" subject {}", quoted(s)));
            }
            text
        }
        ExpectKind::NoSend {
            channel,
            template,
            user,
            ..
        } => {
            let mut what = String::new();
            for n in [channel, template].into_iter().flatten() {
                what.push_str(&named(n));
                what.push(' ');
            }
            format!("no send {what}to {}", named(user))
        }
        ExpectKind::Exit {
            user,
            journey,
            reason,
            ..
        } => {
            let mut text = format!("{} exits", named(user));
            if let Some(j) = journey {
                text.push_str(&format!(" {}", named(j)));
            }
            if let Some(r) = reason {
                text.push_str(&format!(" because {}", r.name()));
            }
            text
        }
        ExpectKind::Convert { user, journey, .. } => {
            let mut text = format!("{} converts", named(user));
            if let Some(j) = journey {
                text.push_str(&format!(" in {}", named(j)));
            }
            text
        }
        ExpectKind::Enter { user, journey, .. } => {
            format!("{} enters {}", named(user), named(journey))
        }
    }
}
