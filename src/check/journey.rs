//! Checks of one journey: its header clauses (structure, triggers, goals,
//! caps, quiet hours) and its steps, walked in order with a path analysis
//! that knows, at every point, which handles are bound on every path (must)
//! and on some path (may), and whether the point is reachable at all.
//!
//! Path rules: an `if` without `else` binds nothing (the fall-through path
//! does not send); a `split` binds what all its arms bind; after a `wait
//! for`, the first block ran only on a match and the `else` block only on a
//! timeout, so a handle is bound after it only if both paths bind it; a
//! `repeat` body runs at least once, so it binds what its body binds. A
//! branch that ends in `exit` does not reach the join.

use std::cell::Cell;

use rustc_hash::FxHashMap;

use super::expr::{self, Env, EventEnv, TriggerEnv, TriggerEvent};
use super::problem::{Clause, Mismatch, Problem, UnknownNameKind};
use super::templates::Sends;
use super::types::Type;
use super::{Checker, Refs, lints};
use crate::builtins::{Engagement, HandleField};
use crate::diagnostic::did_you_mean;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, HeaderKind, StepKind};

/// A set of handles, by index; journeys have few, so a bitset is plenty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HandleSet(Vec<u64>);

impl HandleSet {
    fn empty(n: usize) -> HandleSet {
        HandleSet(vec![0; n.div_ceil(64)])
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn intersect(&mut self, other: &HandleSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    fn union(&mut self, other: &HandleSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// Every handle a journey's sends bind, with the sends that bind it.
#[derive(Default)]
pub(crate) struct Handles<'a> {
    index: FxHashMap<&'a str, usize>,
    names: Vec<&'a str>,
    /// The send steps that bind each handle.
    binders: Vec<Vec<Span>>,
    /// The send steps with `as`: bound at run time even when unread.
    named: Vec<Span>,
    /// Whether each handle is read somewhere in the journey.
    read: Vec<Cell<bool>>,
}

impl<'a> Handles<'a> {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.names.iter().copied()
    }

    fn add(&mut self, name: &'a str, send: Span, named: bool) {
        let id = *self.index.entry(name).or_insert_with(|| {
            self.names.push(name);
            self.binders.push(Vec::new());
            self.read.push(Cell::new(false));
            self.names.len() - 1
        });
        self.binders[id].push(send);
        if named {
            self.named.push(send);
        }
    }

    /// Records in `refs` each send whose handle is read at run time: it has
    /// `as`, or the journey reads the handle (compile gives only those a
    /// handle, so an unread one costs an instance nothing).
    fn record_binds(&self, refs: &mut Refs) {
        for (id, sends) in self.binders.iter().enumerate() {
            for &send in sends {
                if self.read[id].get() || self.named.contains(&send) {
                    refs.binds.insert(send, id);
                }
            }
        }
    }
}

/// The handles as seen from one point of the journey.
pub(crate) struct HandleView<'e> {
    pub handles: &'e Handles<'e>,
    pub must: &'e HandleSet,
    pub may: &'e HandleSet,
}

/// The handle a send binds: its `as` name, or the first template of its
/// chain (an external template only when its id is an identifier).
pub(crate) fn handle_of(send: &ast::Send) -> Option<&str> {
    if let Some(h) = &send.handle {
        return Some(&h.name);
    }
    match &send.alternatives.first()?.template {
        ast::TemplateRef::Named(i) => Some(&i.name),
        ast::TemplateRef::External(s) => is_identifier(&s.value).then_some(s.value.as_str()),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// E0211 unless handle `id` is bound on every path to here.
/// It is a read of the handle: recorded in the model by `at`.
pub(crate) fn check_bound(cx: &mut Checker, view: &HandleView, id: usize, name: &str, at: Span) {
    view.handles.read[id].set(true);
    cx.refs.handles.insert(at, id);
    if view.must.contains(id) {
        return;
    }
    let send = view.handles.binders[id]
        .first()
        .map(|&send| (send, cx.line(send)));
    cx.report(Problem::HandleNotBound {
        span: at,
        name: name.to_string(),
        send,
        on_some_paths: view.may.contains(id),
    });
}

/// The state of the walk at one point.
#[derive(Clone)]
struct Flow {
    must: HandleSet,
    may: HandleSet,
    live: bool,
}

impl Flow {
    /// The state after several paths meet; paths that ended in `exit` do not
    /// reach the join.
    fn join(paths: Vec<Flow>) -> Flow {
        let mut live = paths.iter().filter(|f| f.live);
        let mut out = match live.next() {
            Some(f) => f.clone(),
            None => {
                let mut dead = paths.into_iter();
                // `join` is always called with at least one path.
                let mut out = dead.next().unwrap_or_else(|| Flow {
                    must: HandleSet(Vec::new()),
                    may: HandleSet(Vec::new()),
                    live: false,
                });
                for f in dead {
                    out.may.union(&f.may);
                }
                out.live = false;
                return out;
            }
        };
        for f in live {
            out.must.intersect(&f.must);
            out.may.union(&f.may);
        }
        for f in paths.iter().filter(|f| !f.live) {
            out.may.union(&f.may);
        }
        out
    }
}

struct JourneyChecker<'c, 'a> {
    cx: &'c mut Checker<'a>,
    journey: &'a ast::JourneyDecl,
    /// Kept apart from `cx` so an [`Env`] can borrow it while `cx` reports.
    info: Info<'a>,
    /// A `quiet hours ... in` in the journey or the policy, or a `timezone`
    /// the profile may have.
    has_zone_source: bool,
    sends_something: bool,
    sends: &'c mut Sends<'a>,
}

/// What expressions of a journey may refer to.
struct Info<'a> {
    handles: Handles<'a>,
    triggers: Vec<TriggerEvent>,
    trigger_kind: TriggerKind,
}

impl<'a> Info<'a> {
    fn trigger_env(&self) -> TriggerEnv<'_> {
        match self.trigger_kind {
            TriggerKind::Events => TriggerEnv::Events(&self.triggers),
            TriggerKind::NoEvent => TriggerEnv::NoEvent,
        }
    }

    fn view<'v>(&'v self, must: &'v HandleSet, may: &'v HandleSet) -> HandleView<'v> {
        HandleView {
            handles: &self.handles,
            must,
            may,
        }
    }

    /// The environment of a step (no `event.`).
    fn env<'v>(&'v self, must: &'v HandleSet, may: &'v HandleSet) -> Env<'v> {
        Env {
            event: EventEnv::Outside,
            trigger: self.trigger_env(),
            handles: Some(self.view(must, may)),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum TriggerKind {
    Events,
    NoEvent,
}

/// Checks one journey.
pub(crate) fn check<'a>(
    cx: &mut Checker<'a>,
    journey: &'a ast::JourneyDecl,
    sends: &mut Sends<'a>,
) {
    let mut handles = Handles::default();
    collect_handles(&journey.steps, &mut handles);
    let has_zone_source = zone_source(cx, journey);
    let mut jc = JourneyChecker {
        cx,
        journey,
        info: Info {
            handles,
            triggers: Vec::new(),
            trigger_kind: TriggerKind::Events,
        },
        has_zone_source,
        sends_something: false,
        sends,
    };
    jc.check_headers();
    let n = jc.info.handles.names.len();
    let start = Flow {
        must: HandleSet::empty(n),
        may: HandleSet::empty(n),
        live: true,
    };
    jc.walk_block(&journey.steps, start);
    jc.info.handles.record_binds(&mut jc.cx.refs);
    if !jc.sends_something {
        lints::sends_nothing(jc.cx, journey);
    }
}

fn zone_source(cx: &Checker, journey: &ast::JourneyDecl) -> bool {
    let in_journey = journey
        .headers
        .iter()
        .any(|h| matches!(&h.kind, HeaderKind::QuietHours(q) if q.zone.is_some()));
    let in_policy = cx
        .scope
        .policy
        .is_some_and(|p| p.quiet_hours.iter().any(|q| q.zone.is_some()));
    let profile_zone = cx.scope.profile.is_none() || cx.scope.profile_declares("timezone");
    in_journey || in_policy || profile_zone
}

/// Gathers every handle. A name may be bound by several sends (one per
/// `if` branch, or each pass of a `repeat`): at run time it means the most
/// recent of them on the instance's path, so binding it again is no error.
fn collect_handles<'a>(steps: &'a [ast::Step], handles: &mut Handles<'a>) {
    for step in steps {
        match &step.kind {
            StepKind::Send(send) => {
                if let Some(name) = handle_of(send) {
                    handles.add(name, step.span, send.handle.is_some());
                }
            }
            _ => {
                for block in child_blocks(&step.kind) {
                    collect_handles(&block.steps, handles);
                }
            }
        }
    }
}

/// The nested blocks of a step, in source order.
pub(crate) fn child_blocks(kind: &StepKind) -> Vec<&ast::Block> {
    match kind {
        StepKind::WaitForEvent {
            then, otherwise, ..
        }
        | StepKind::WaitForEngagement {
            then, otherwise, ..
        } => then.iter().chain(otherwise.iter()).collect(),
        StepKind::If {
            branches,
            otherwise,
        } => branches
            .iter()
            .map(|(_, b)| b)
            .chain(otherwise.iter())
            .collect(),
        StepKind::Split { arms, .. } => arms.iter().map(|a| &a.body).collect(),
        StepKind::Repeat { body, .. } => vec![body],
        _ => Vec::new(),
    }
}

impl<'c, 'a> JourneyChecker<'c, 'a> {
    // ------------------------------------------------------------ headers

    fn check_headers(&mut self) {
        let j = self.journey;
        self.collect_triggers();
        let mut once: FxHashMap<&'static str, Span> = FxHashMap::default();
        let goal_window = j.headers.iter().any(|h| {
            matches!(
                &h.kind,
                HeaderKind::Goal {
                    within: Some(_),
                    ..
                }
            )
        });
        for h in &j.headers {
            if let Some(first_step) = j.first_step
                && h.span.start > first_step.start
            {
                let clause = self.cx.snippet(h.keyword);
                self.cx.report(Problem::HeaderAfterStep {
                    span: h.keyword,
                    clause,
                    first_step,
                });
            }
            if let Some(word) = once_only(&h.kind) {
                if let Some(&first) = once.get(word) {
                    self.cx.report(Problem::DuplicateClause {
                        span: h.keyword,
                        first,
                        clause: Clause::Journey(word),
                    });
                } else {
                    once.insert(word, h.keyword);
                }
            }
            self.check_header(h, goal_window);
        }
    }

    fn collect_triggers(&mut self) {
        let j = self.journey;
        let mut any = false;
        for h in &j.headers {
            match &h.kind {
                HeaderKind::Trigger { event, .. } => {
                    any = true;
                    let fields = self.cx.resolve_event(event);
                    self.info.triggers.push(TriggerEvent {
                        name: event.name.clone(),
                        fields,
                    });
                }
                HeaderKind::TriggerAbsence { event, .. } => {
                    any = true;
                    if let ast::EventPattern::Named(event) = event {
                        self.cx.resolve_event(event);
                    }
                }
                HeaderKind::TriggerEvery { .. }
                | HeaderKind::TriggerDate { .. }
                | HeaderKind::TriggerSegment { .. } => any = true,
                _ => {}
            }
        }
        if !any {
            self.cx.report(Problem::MissingTrigger {
                span: j.name.span,
                journey: j.name.name.clone(),
            });
        } else if self.info.triggers.is_empty() {
            self.info.trigger_kind = TriggerKind::NoEvent;
        }
    }

    fn check_header(&mut self, h: &'a ast::Header, goal_window: bool) {
        let none = HandleSet::empty(self.info.handles.names.len());
        match &h.kind {
            HeaderKind::Name(_) | HeaderKind::Reentry(_) => {}
            HeaderKind::Trigger { event, condition } => {
                if let Some(c) = condition {
                    let fields = self
                        .cx
                        .scope
                        .events
                        .get(&event.name)
                        .map(|e| e.fields.clone());
                    let env = Env {
                        event: EventEnv::Where {
                            name: &event.name,
                            fields,
                        },
                        trigger: TriggerEnv::OwnClause,
                        handles: Some(self.info.view(&none, &none)),
                    };
                    self.cx.expect_condition(&env, c, "a `where` condition");
                    lints::constant_condition(self.cx, c);
                }
            }
            HeaderKind::TriggerAbsence { .. } => {}
            HeaderKind::Per(path) => {
                let is_trigger_field = matches!(
                    &path.kind,
                    ExprKind::Path(p) if p.root == ast::PathRoot::Trigger && !p.fields.is_empty()
                );
                if is_trigger_field {
                    // Resolved as any `trigger.` path: an unknown field, or
                    // a journey with no trigger event, is reported there.
                    let env = self.info.env(&none, &none);
                    expr::infer(self.cx, &env, path);
                } else {
                    let snippet = self.cx.snippet(path.span);
                    self.cx.report(Problem::PerNotTrigger {
                        span: path.span,
                        snippet,
                    });
                }
            }
            HeaderKind::TriggerEvery { days, at } => {
                check_weekdays(self.cx, days);
                check_trigger_at(self.cx, at);
            }
            HeaderKind::TriggerDate { path, at, .. } => {
                check_date_path(self.cx, path);
                if let Some(at) = at {
                    check_trigger_at(self.cx, at);
                }
            }
            HeaderKind::TriggerSegment { enters, segment } => {
                check_segment_trigger(self.cx, *enters, segment);
            }
            HeaderKind::Audience(e) | HeaderKind::ExitIf(e) => {
                let env = self.info.env(&none, &none);
                let what = if matches!(h.kind, HeaderKind::Audience(_)) {
                    "an audience"
                } else {
                    "an `exit if` condition"
                };
                self.cx.expect_condition(&env, e, what);
                lints::constant_condition(self.cx, e);
            }
            HeaderKind::ExitOn { event, condition }
            | HeaderKind::Goal {
                event, condition, ..
            } => {
                let fields = self.cx.resolve_event(event);
                lints::exit_on_trigger(self.cx, self.journey, h, event);
                if let Some(c) = condition {
                    let env = Env {
                        event: EventEnv::Where {
                            name: &event.name,
                            fields,
                        },
                        trigger: self.info.trigger_env(),
                        handles: Some(self.info.view(&none, &none)),
                    };
                    self.cx.expect_condition(&env, c, "a `where` condition");
                    lints::constant_condition(self.cx, c);
                }
            }
            HeaderKind::Holdout(p) => {
                if !goal_window {
                    self.cx.report(Problem::HoldoutWithoutWindow {
                        span: h.span,
                        percent: p.value,
                    });
                }
            }
            HeaderKind::Cap(cap) => check_cap(self.cx, cap),
            HeaderKind::QuietHours(q) => {
                let env = self.info.env(&none, &none);
                check_quiet_hours(self.cx, &env, q);
            }
            // Checked with the project's `allow` items (`super::allow`).
            HeaderKind::Allow(_) => {}
        }
    }

    // ------------------------------------------------------------ steps

    fn walk_block(&mut self, steps: &'a [ast::Step], mut flow: Flow) -> Flow {
        let mut warned = false;
        for (i, step) in steps.iter().enumerate() {
            if !flow.live && !warned {
                warned = true;
                let last = steps.last().map_or(step.span, |s| s.span);
                lints::unreachable(self.cx, step.span.to(last), steps.len() - i);
            }
            flow = self.walk_step(step, flow);
        }
        flow
    }

    fn walk_step(&mut self, step: &'a ast::Step, flow: Flow) -> Flow {
        match &step.kind {
            StepKind::Wait(_) | StepKind::AudienceAdd { .. } | StepKind::AudienceRemove { .. } => {
                flow
            }
            StepKind::WaitUntilTime { time, days } => {
                check_weekdays(self.cx, days);
                if !self.has_zone_source {
                    lints::wait_until_without_zone(self.cx, step.span, *time);
                }
                flow
            }
            StepKind::WaitUntilExpr(e) => {
                let env = self.info.env(&flow.must, &flow.may);
                let ty = expr::infer(self.cx, &env, e);
                if !ty.compatible(&Type::Timestamp) {
                    let snippet = self.cx.snippet(e.span);
                    self.cx.report(Problem::TypeMismatch {
                        span: e.span,
                        kind: Mismatch::WaitUntil { snippet, found: ty },
                    });
                }
                flow
            }
            StepKind::WaitForEvent {
                alternatives,
                then,
                otherwise,
                ..
            } => {
                for (i, alt) in alternatives.iter().enumerate() {
                    let event = &alt.event;
                    if let Some(first) = alternatives[..i]
                        .iter()
                        .find(|a| a.event.name == event.name)
                    {
                        self.cx.report(Problem::DuplicateWaitEvent {
                            span: event.span,
                            first: first.event.span,
                            event: event.name.clone(),
                        });
                    }
                    let fields = self.cx.resolve_event(event);
                    if let Some(c) = &alt.condition {
                        let env = Env {
                            event: EventEnv::Where {
                                name: &event.name,
                                fields,
                            },
                            trigger: self.info.trigger_env(),
                            handles: Some(self.info.view(&flow.must, &flow.may)),
                        };
                        self.cx.expect_condition(&env, c, "a `where` condition");
                        lints::constant_condition(self.cx, c);
                    }
                }
                self.walk_wait_blocks(then, otherwise, flow)
            }
            StepKind::WaitForEngagement {
                handle,
                engagement,
                then,
                otherwise,
                ..
            } => {
                self.check_engagement_wait(handle, engagement, &flow);
                self.walk_wait_blocks(then, otherwise, flow)
            }
            StepKind::Send(send) => self.walk_send(send, flow),
            StepKind::If {
                branches,
                otherwise,
            } => {
                let mut paths = Vec::with_capacity(branches.len() + 1);
                for (cond, block) in branches {
                    let env = self.info.env(&flow.must, &flow.may);
                    self.cx.expect_condition(&env, cond, "an `if` condition");
                    lints::constant_condition(self.cx, cond);
                    paths.push(self.walk_block(&block.steps, flow.clone()));
                }
                match otherwise {
                    Some(block) => paths.push(self.walk_block(&block.steps, flow)),
                    None => paths.push(flow),
                }
                Flow::join(paths)
            }
            StepKind::Split { arms, .. } => {
                check_split(self.cx, step.span, arms);
                if arms.is_empty() {
                    return flow;
                }
                let paths = arms
                    .iter()
                    .map(|arm| self.walk_block(&arm.body.steps, flow.clone()))
                    .collect();
                Flow::join(paths)
            }
            StepKind::Repeat { count, body } => {
                if !(1..=50).contains(&count.value) {
                    self.cx.report(Problem::RepeatRange {
                        span: count.span,
                        count: count.value,
                    });
                }
                self.walk_block(&body.steps, flow)
            }
            StepKind::Set { path, value } => {
                self.check_set(path, value, &flow);
                flow
            }
            StepKind::Emit { event, with } => {
                self.check_emit(event, with, &flow);
                flow
            }
            StepKind::Exit => Flow {
                live: false,
                ..flow
            },
        }
    }

    fn walk_wait_blocks(
        &mut self,
        then: &'a Option<ast::Block>,
        otherwise: &'a Option<ast::Block>,
        flow: Flow,
    ) -> Flow {
        let matched = match then {
            Some(b) => self.walk_block(&b.steps, flow.clone()),
            None => flow.clone(),
        };
        let timed_out = match otherwise {
            Some(b) => self.walk_block(&b.steps, flow),
            None => flow,
        };
        Flow::join(vec![matched, timed_out])
    }

    fn check_engagement_wait(&mut self, handle: &ast::Ident, engagement: &ast::Ident, flow: &Flow) {
        match Engagement::from_name(&engagement.name) {
            Some(e) => {
                let field = HandleField::Engaged(e);
                self.cx.refs.handle_fields.insert(engagement.span, field);
            }
            None => expr::unknown_engagement(self.cx, engagement, false),
        }
        match self.info.handles.index(&handle.name) {
            Some(id) => {
                let view = self.info.view(&flow.must, &flow.may);
                check_bound(self.cx, &view, id, &handle.name, handle.span);
            }
            None => {
                let suggestion = did_you_mean(&handle.name, self.info.handles.names());
                self.cx.report(Problem::UnknownName {
                    span: handle.span,
                    name: handle.name.clone(),
                    suggestion,
                    kind: UnknownNameKind::Handle,
                });
            }
        }
    }

    fn walk_send(&mut self, send: &'a ast::Send, mut flow: Flow) -> Flow {
        self.sends_something = true;
        for alt in &send.alternatives {
            self.check_send_alt(alt, &flow);
        }
        lints::send_warnings(self.cx, send);
        if let Some(within) = send.best_hour.as_ref().and_then(|b| b.within)
            && (within.secs as i64).saturating_mul(1000) > crate::builtins::BEST_HOUR_WINDOW_MS
        {
            let window = self.cx.snippet(within.span);
            self.cx.report(Problem::BestHourWindow {
                span: within.span,
                window,
            });
        }
        if let Some(name) = handle_of(send)
            && let Some(id) = self.info.handles.index(name)
        {
            flow.must.insert(id);
            flow.may.insert(id);
        }
        flow
    }

    fn check_send_alt(&mut self, alt: &'a ast::SendAlt, flow: &Flow) {
        let channel_ok = self.cx.check_channel(&alt.channel);
        check_with_keys(self.cx, &alt.with);
        let env = self.info.env(&flow.must, &flow.may);
        for w in &alt.with {
            expr::infer(self.cx, &env, &w.value);
        }
        if let ast::TemplateRef::Named(t) = &alt.template {
            self.sends.record(&t.name, alt);
            self.check_template_ref(t, &alt.channel, channel_ok);
        }
    }

    /// E0204 (only when the project declares templates) and E0408.
    fn check_template_ref(&mut self, t: &ast::Ident, channel: &ast::Ident, channel_ok: bool) {
        if self.cx.scope.templates.is_empty() {
            return;
        }
        let Some(decl) = self.cx.scope.templates.get(&t.name).copied() else {
            let suggestion = did_you_mean(&t.name, self.cx.scope.templates.names());
            self.cx.report(Problem::UnknownTemplate {
                span: t.span,
                name: t.name.clone(),
                suggestion,
            });
            return;
        };
        if let Some(id) = self.cx.scope.template_id(&t.name) {
            self.cx.refs.templates.insert(t.span, id);
        }
        if channel_ok && decl.channel.name != channel.name {
            self.cx.report(Problem::TemplateChannelMismatch {
                span: t.span,
                template: t.name.clone(),
                made_for: decl.channel.name.clone(),
                made_for_span: decl.channel.span,
                sent_on: channel.name.clone(),
            });
        }
    }

    fn check_set(&mut self, path: &[ast::Ident], value: &ast::Expr, flow: &Flow) {
        let target = expr::profile_path(self.cx, path);
        let env = self.info.env(&flow.must, &flow.may);
        let ty = expr::infer(self.cx, &env, value);
        if !ty.compatible(&target) {
            let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
            let snippet = self.cx.snippet(value.span);
            self.cx.report(Problem::TypeMismatch {
                span: value.span,
                kind: Mismatch::Set {
                    path: names.join("."),
                    target,
                    snippet,
                    found: ty,
                },
            });
        }
    }

    fn check_emit(&mut self, event: &ast::EventRef, with: &[ast::WithEntry], flow: &Flow) {
        let fields = self.cx.resolve_event(event);
        check_with_keys(self.cx, with);
        let env = self.info.env(&flow.must, &flow.may);
        for w in with {
            let ty = expr::infer(self.cx, &env, &w.value);
            let Some(schema) = &fields else { continue };
            match schema.get(&w.key.name) {
                None => {
                    let owner = format!("event `{}`", event.name);
                    expr::unknown_field(self.cx, &w.key, schema, &owner);
                }
                Some(f) if !ty.compatible(&f.ty) => {
                    self.cx.refs.field(w.key.span, f.decl);
                    let snippet = self.cx.snippet(w.value.span);
                    self.cx.report(Problem::TypeMismatch {
                        span: w.value.span,
                        kind: Mismatch::EmitField {
                            key: w.key.name.clone(),
                            event: event.name.clone(),
                            expected: f.ty.clone(),
                            snippet,
                            found: ty,
                        },
                    });
                }
                Some(f) => self.cx.refs.field(w.key.span, f.decl),
            }
        }
    }
}

/// The clauses a journey may have once, by their keyword.
fn once_only(kind: &HeaderKind) -> Option<&'static str> {
    match kind {
        HeaderKind::Name(_) => Some("name"),
        HeaderKind::Audience(_) => Some("audience"),
        HeaderKind::Reentry(_) => Some("reentry"),
        HeaderKind::Per(_) => Some("per"),
        HeaderKind::Goal { .. } => Some("goal"),
        HeaderKind::Holdout(_) => Some("holdout"),
        HeaderKind::QuietHours(_) => Some("quiet hours"),
        _ => None,
    }
}

/// A cap's channel must exist and its limit be at least 1.
pub(crate) fn check_cap(cx: &mut Checker, cap: &ast::Cap) {
    if let ast::CapTarget::Channel(c) = &cap.target {
        cx.check_channel(c);
    }
    if cap.limit.value <= 0 {
        cx.report(Problem::CapLimit {
            span: cap.limit.span,
            limit: cap.limit.value,
        });
    }
}

/// The zone of quiet hours must be text; a known literal zone; from ≠ to.
pub(crate) fn check_quiet_hours(cx: &mut Checker, env: &Env, q: &ast::QuietHours) {
    if q.from.minutes == q.to.minutes {
        lints::empty_quiet_hours(cx, q);
    }
    if let Some(zone) = &q.zone {
        cx.expect_type(env, zone, &Type::String, "the time zone of quiet hours");
        lints::unknown_time_zone(cx, zone);
    }
}

/// `at HH:MM [in <zone>]` of a scheduled or date trigger: the zone is
/// text read from the profile (there is no trigger event).
fn check_trigger_at(cx: &mut Checker, at: &ast::TriggerAt) {
    if let Some(zone) = &at.zone {
        cx.expect_type(
            &Env::profile_only(),
            zone,
            &Type::String,
            "the time zone of a trigger",
        );
        lints::unknown_time_zone(cx, zone);
    }
}

/// A date trigger's path: a `profile.` field, of type `timestamp` when the
/// profile schema declares it (E0304).
fn check_date_path(cx: &mut Checker, path: &ast::Expr) {
    let text = cx.snippet(path.span);
    let fields = match &path.kind {
        ast::ExprKind::Path(p) if p.root == ast::PathRoot::Profile && !p.fields.is_empty() => {
            &p.fields
        }
        _ => {
            cx.report(Problem::DateTriggerType {
                span: path.span,
                path: text,
                found: None,
            });
            return;
        }
    };
    let ty = expr::profile_path(cx, fields);
    if !matches!(ty, Type::Timestamp | Type::Unknown) {
        cx.report(Problem::DateTriggerType {
            span: path.span,
            path: text,
            found: Some(ty),
        });
    }
}

/// `trigger enters|leaves <segment>`: a declared segment's name; a segment
/// that reads the clock only changes with the profile (W0011).
fn check_segment_trigger(cx: &mut Checker, enters: bool, segment: &ast::Expr) {
    let name = match &segment.kind {
        ast::ExprKind::Path(ast::Path {
            root: ast::PathRoot::Name(name),
            fields,
            ..
        }) if fields.is_empty() => name,
        _ => {
            let text = cx.snippet(segment.span);
            cx.report(Problem::InvalidPath {
                span: segment.span,
                kind: super::problem::InvalidPathKind::NotASegment { text },
            });
            return;
        }
    };
    if !cx.scope.segments.contains(name) {
        // Reported as an unknown name, with a suggestion.
        cx.expect_condition(&Env::profile_only(), segment, "a segment");
        return;
    }
    cx.expect_condition(&Env::profile_only(), segment, "a segment");
    let mut seen = Vec::new();
    if let Some(reads) = reads_clock(cx, name, &mut seen) {
        cx.report(Problem::TimeBasedSegmentTrigger {
            span: segment.span,
            segment: name.clone(),
            reads,
            enters,
        });
    }
}

/// The first clock function (`now()`, `days_since(...)`, ...) segment
/// `name` reads, through the segments it uses.
fn reads_clock(cx: &Checker, name: &str, seen: &mut Vec<String>) -> Option<String> {
    if seen.iter().any(|s| s == name) {
        return None;
    }
    seen.push(name.to_string());
    let decl = *cx.scope.segments.get(name)?;
    clock_read(cx, &decl.expr, seen)
}

fn clock_read(cx: &Checker, e: &ast::Expr, seen: &mut Vec<String>) -> Option<String> {
    match &e.kind {
        ast::ExprKind::Call { func, args } => {
            if matches!(func.name.as_str(), "now" | "days_since" | "hours_since") {
                return Some(format!("{}()", func.name));
            }
            args.iter().find_map(|a| clock_read(cx, a, seen))
        }
        ast::ExprKind::Path(ast::Path {
            root: ast::PathRoot::Name(n),
            fields,
            ..
        }) if fields.is_empty() => reads_clock(cx, n, seen),
        ast::ExprKind::List(items) => items.iter().find_map(|a| clock_read(cx, a, seen)),
        ast::ExprKind::Unary { operand, .. } => clock_read(cx, operand, seen),
        ast::ExprKind::Binary { lhs, rhs, .. } => {
            clock_read(cx, lhs, seen).or_else(|| clock_read(cx, rhs, seen))
        }
        _ => None,
    }
}

fn check_weekdays(cx: &mut Checker, days: &[(ast::Weekday, Span)]) {
    for (i, first) in super::repeats(days.iter().copied()) {
        let span = days[i].1;
        let day = cx.snippet(span);
        cx.report(Problem::DuplicateWeekday { span, first, day });
    }
}

fn check_with_keys(cx: &mut Checker, with: &[ast::WithEntry]) {
    for (i, first) in super::repeats(with.iter().map(|w| (w.key.name.as_str(), w.key.span))) {
        let key = &with[i].key;
        cx.report(Problem::DuplicateKey {
            span: key.span,
            first,
            key: key.name.clone(),
        });
    }
}

/// Percentages must sum to 100 (E0404); labels must differ (E0405).
fn check_split(cx: &mut Checker, span: Span, arms: &[ast::SplitArm]) {
    let sum: f64 = arms.iter().map(|a| a.percent.value).sum();
    if (sum - 100.0).abs() > 1e-9 && !arms.is_empty() {
        let keyword = if cx.sources.get(span.file).slice(span).starts_with("split") {
            Span {
                end: span.start + 5,
                ..span
            }
        } else {
            span
        };
        cx.report(Problem::SplitSum {
            span: keyword,
            arms: arms.len(),
            sum,
        });
    }
    for (i, first) in super::repeats(arms.iter().map(|a| (a.label.name.as_str(), a.label.span))) {
        let label = &arms[i].label;
        cx.report(Problem::DuplicateLabel {
            span: label.span,
            first,
            label: label.name.clone(),
        });
    }
}
