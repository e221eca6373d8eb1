//! One journey: its header clauses, the trigger fields and handles it uses,
//! and each trigger's captures. The steps themselves are lowered by `lower`.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::program::{
    Absence, CExpr, DateKind, DateTrigger, EventClause, FieldPath, Goal, HandleId, Journey,
    JourneyId, Limits, Node, Reentry, Schedule, SegmentTrigger, Trigger,
};
use super::tables::{Compiler, Role, duration_ms};
use crate::source::Span;
use crate::syntax::ast;

/// What the compiler knows about the journey being compiled.
#[derive(Default)]
pub(crate) struct JourneyState {
    pub(crate) id: JourneyId,
    pub(crate) name: Arc<str>,
    pub(crate) display_name: Option<Arc<str>>,
    /// Inside a journey: `trigger.x` and handles resolve.
    pub(crate) active: bool,
    pub(crate) trigger_fields: Vec<FieldPath>,
    trigger_field_ids: FxHashMap<FieldPath, u32>,
    /// The program's handles: their names, by [`HandleId`].
    pub(crate) handles: Vec<Arc<str>>,
    /// The program's id of each handle the checker numbered, given in the
    /// order of first use.
    handle_ids: FxHashMap<usize, HandleId>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) spans: Vec<Span>,
    cap_spans: Vec<Span>,
    /// Spans of every compiled journey, by journey id (for warnings only:
    /// they are not part of the serialized program).
    pub(crate) all_spans: Vec<JourneySpans>,
}

/// Source spans of a compiled journey's nodes and caps.
pub(crate) struct JourneySpans {
    pub(crate) nodes: Vec<Span>,
    pub(crate) caps: Vec<Span>,
}

impl JourneyState {
    fn start(&mut self, id: JourneyId, name: &str) {
        let all_spans = std::mem::take(&mut self.all_spans);
        *self = JourneyState {
            id,
            name: Arc::from(name),
            active: true,
            all_spans,
            ..JourneyState::default()
        };
    }

    pub(crate) fn trigger_field(&mut self, path: FieldPath) -> u32 {
        if let Some(&i) = self.trigger_field_ids.get(&path) {
            return i;
        }
        let i = self.trigger_fields.len() as u32;
        self.trigger_fields.push(path.clone());
        self.trigger_field_ids.insert(path, i);
        i
    }

    /// The program's id of the checker's handle `checked`, named `name`.
    pub(crate) fn handle(&mut self, checked: usize, name: &str) -> HandleId {
        if let Some(&h) = self.handle_ids.get(&checked) {
            return h;
        }
        let h = self.handles.len() as HandleId;
        self.handles.push(Arc::from(name));
        self.handle_ids.insert(checked, h);
        h
    }
}

impl<'p> Compiler<'p> {
    pub(crate) fn compile_journey(&mut self, id: JourneyId, decl: &'p ast::JourneyDecl) -> Journey {
        self.journey.start(id, &decl.name.name);
        let mut journey = Journey {
            name: Arc::from(decl.name.name.as_str()),
            display_name: None,
            description: decl.doc.as_deref().map(Arc::from),
            content_hash: self.content_hash(decl.span),
            triggers: Vec::new(),
            absence: Vec::new(),
            schedules: Vec::new(),
            dates: Vec::new(),
            segment_triggers: Vec::new(),
            audience: None,
            reentry: Reentry::Never,
            per: None,
            exit_on: Vec::new(),
            exit_if: Vec::new(),
            goal: None,
            holdout: None,
            caps: Vec::new(),
            quiet_hours: None,
            trigger_fields: Vec::new(),
            handles: Vec::new(),
            nodes: Vec::new(),
            retired: None,
            limits: Limits::default(),
        };
        for header in &decl.headers {
            self.header(&mut journey, header);
        }
        self.journey.display_name = journey.display_name.clone();
        self.lower_journey(decl);
        journey.nodes = std::mem::take(&mut self.journey.nodes);
        journey.handles = std::mem::take(&mut self.journey.handles);
        journey.trigger_fields = std::mem::take(&mut self.journey.trigger_fields);
        for trigger in &mut journey.triggers {
            trigger.capture = journey
                .trigger_fields
                .iter()
                .map(|path| self.capture(trigger.event, path))
                .collect();
        }
        let spans = JourneySpans {
            nodes: std::mem::take(&mut self.journey.spans),
            caps: std::mem::take(&mut self.journey.cap_spans),
        };
        self.journey.all_spans.push(spans);
        self.journey.active = false;
        journey
    }

    fn content_hash(&self, span: Span) -> String {
        let text = self.project.sources.get(span.file).slice(span);
        super::artifact::sha256_hex(text.as_bytes())
    }

    /// Where a trigger event keeps a `trigger.<path>` value.
    fn capture(&mut self, event: u32, path: &FieldPath) -> Option<u32> {
        let first = path.first()?;
        if !self.event_has_field(event, first) {
            return None;
        }
        Some(self.event_field(event, path.clone()))
    }

    fn header(&mut self, journey: &mut Journey, header: &'p ast::Header) {
        let id = self.journey.id;
        match &header.kind {
            ast::HeaderKind::Name(s) => {
                journey
                    .display_name
                    .get_or_insert_with(|| Arc::from(s.value.as_str()));
            }
            ast::HeaderKind::Trigger { event, condition } => {
                let event = self.event_id(&event.name);
                self.add_role(event, Role::Trigger, id);
                let condition = self.clause_condition(event, condition.as_ref());
                journey.triggers.push(Trigger {
                    event,
                    condition,
                    capture: Vec::new(),
                });
            }
            ast::HeaderKind::TriggerAbsence { event, silence } => {
                let event = match event {
                    ast::EventPattern::Named(e) => {
                        let event = self.event_id(&e.name);
                        self.add_role(event, Role::Silence, id);
                        Some(event)
                    }
                    ast::EventPattern::Any(_) => None,
                };
                journey.absence.push(Absence {
                    event,
                    silence_ms: duration_ms(*silence),
                });
            }
            ast::HeaderKind::TriggerEvery { days, at } => {
                let weekdays = days
                    .iter()
                    .fold(0u8, |bits, (day, _)| bits | (1 << (*day as u8)));
                let zone = at.zone.as_ref().map(|z| self.expr(z));
                journey.schedules.push(Schedule {
                    minute: at.time.minutes,
                    weekdays,
                    zone,
                });
            }
            ast::HeaderKind::TriggerDate { kind, path, at } => {
                let (kind, offset_ms) = match kind {
                    ast::DateTrigger::On => (DateKind::Once, 0),
                    ast::DateTrigger::Before(d) => (DateKind::Once, -duration_ms(*d)),
                    ast::DateTrigger::After(d) => (DateKind::Once, duration_ms(*d)),
                    ast::DateTrigger::Anniversary => (DateKind::Anniversary, 0),
                };
                let value = self.expr(path);
                let zone = at
                    .as_ref()
                    .and_then(|a| a.zone.as_ref())
                    .map(|z| self.expr(z));
                journey.dates.push(DateTrigger {
                    value,
                    kind,
                    offset_ms,
                    at: at.as_ref().map(|a| a.time.minutes),
                    zone,
                });
            }
            ast::HeaderKind::TriggerSegment { enters, segment } => {
                let condition = self.expr(segment);
                journey.segment_triggers.push(SegmentTrigger {
                    segment: Arc::from(
                        self.project
                            .sources
                            .get(segment.span.file)
                            .slice(segment.span),
                    ),
                    enters: *enters,
                    condition,
                });
            }
            ast::HeaderKind::Audience(e) => {
                if journey.audience.is_none() {
                    journey.audience = Some(self.expr(e));
                }
            }
            ast::HeaderKind::Reentry(r) => {
                journey.reentry = match r {
                    ast::Reentry::Never => Reentry::Never,
                    ast::Reentry::Always => Reentry::Always,
                    ast::Reentry::After(d) => Reentry::After {
                        ms: duration_ms(*d),
                    },
                };
            }
            ast::HeaderKind::Per(path) => {
                if let ast::ExprKind::Path(p) = &path.kind {
                    let fields = p
                        .fields
                        .iter()
                        .map(|f| Arc::from(f.name.as_str()))
                        .collect();
                    journey.per = Some(self.journey.trigger_field(fields));
                }
            }
            ast::HeaderKind::ExitOn { event, condition } => {
                let event = self.event_id(&event.name);
                self.add_role(event, Role::Exit, id);
                let condition = self.clause_condition(event, condition.as_ref());
                journey.exit_on.push(EventClause { event, condition });
            }
            ast::HeaderKind::ExitIf(e) => {
                let condition = self.expr(e);
                journey.exit_if.push(condition);
            }
            ast::HeaderKind::Goal {
                event: name,
                condition,
                within,
            } => {
                if journey.goal.is_some() {
                    return;
                }
                let event = self.event_id(&name.name);
                self.add_role(event, Role::Goal, id);
                let condition = self.clause_condition(event, condition.as_ref());
                journey.goal = Some(Goal {
                    event,
                    name: Arc::from(name.name.as_str()),
                    condition,
                    within_ms: within.map(duration_ms),
                });
            }
            ast::HeaderKind::Holdout(p) => {
                journey.holdout.get_or_insert(p.value);
            }
            ast::HeaderKind::Cap(cap) => {
                if let Some(c) = self.cap(cap) {
                    journey.caps.push(c);
                    self.journey.cap_spans.push(cap.span);
                }
            }
            ast::HeaderKind::QuietHours(q) => {
                if journey.quiet_hours.is_none() {
                    journey.quiet_hours = Some(self.quiet_hours(q));
                }
            }
            ast::HeaderKind::Allow(_) => {}
        }
    }

    /// A `where` condition, with `event.x` reading `event`'s fields.
    pub(crate) fn clause_condition(
        &mut self,
        event: u32,
        condition: Option<&'p ast::Expr>,
    ) -> Option<CExpr> {
        let condition = condition?;
        let outer = self.event.replace(event);
        let compiled = self.expr(condition);
        self.event = outer;
        Some(compiled)
    }
}
