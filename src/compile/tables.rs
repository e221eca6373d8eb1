//! The compiler's project-wide state: the checker's [`Model`] (declarations
//! in id order, what each name resolved to) and the interned ids of the
//! program (profile slots, events and their fields). Ids are handed out in a
//! fixed order (built-ins first, then journeys by name, steps in source
//! order) so the same project always compiles to the same program.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::journey::JourneyState;
use super::limits;
use super::program::{
    CExpr, Cap, Channel, ChannelId, EventId, EventInfo, FieldPath, JourneyId, Policy, ProfileSlot,
    Program, QuietHours, SlotId, Template, TemplateId,
};
use crate::channels;
use crate::check::{Model, Problem, Type};
use crate::diagnostic::Diagnostic;
use crate::project::Project;
use crate::source::Span;
use crate::syntax::ast;

/// What a journey does with an event, for [`EventInfo`]'s dispatch lists.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Trigger,
    Exit,
    Goal,
    Wait,
    Silence,
}

pub(crate) struct Compiler<'p> {
    pub(crate) project: &'p Project,
    /// What the checker resolved.
    pub(crate) model: &'p Model<'p>,
    /// Each segment compiled so far, by its index in the model.
    pub(crate) segment_cache: FxHashMap<usize, super::program::CExpr>,
    /// The segments being compiled (a cycle, which the checker reports, is
    /// broken with `null`).
    pub(crate) segment_stack: Vec<usize>,
    /// Memoized template variables (paths from the context root), per template.
    pub(crate) template_vars: FxHashMap<TemplateId, Arc<[FieldPath]>>,
    pub(crate) channels: Vec<Channel>,
    pub(crate) templates: Vec<Template>,
    slots: Vec<ProfileSlot>,
    slot_ids: FxHashMap<FieldPath, SlotId>,
    events: Vec<EventInfo>,
    event_ids: FxHashMap<Arc<str>, EventId>,
    event_field_ids: Vec<FxHashMap<FieldPath, u32>>,
    pub(crate) policy: Policy,
    /// The source of each of `policy.caps`.
    policy_cap_spans: Vec<Span>,
    /// The journey being compiled.
    pub(crate) journey: JourneyState,
    /// The event of the `where` clause being compiled (`event.x` reads it).
    pub(crate) event: Option<EventId>,
    /// Above 0 while a segment is compiled: it sees the profile only.
    pub(crate) neutral: u32,
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// References the checker did not resolve: the model had errors, and
    /// no program is made from it.
    unresolved: Vec<Span>,
}

impl<'p> Compiler<'p> {
    pub(crate) fn new(model: &'p Model<'p>) -> Compiler<'p> {
        Compiler {
            project: model.project,
            model,
            segment_cache: FxHashMap::default(),
            segment_stack: Vec::new(),
            template_vars: FxHashMap::default(),
            channels: Vec::new(),
            templates: Vec::new(),
            slots: Vec::new(),
            slot_ids: FxHashMap::default(),
            events: Vec::new(),
            event_ids: FxHashMap::default(),
            event_field_ids: Vec::new(),
            policy: Policy::default(),
            policy_cap_spans: Vec::new(),
            journey: JourneyState::default(),
            event: None,
            neutral: 0,
            diagnostics: Vec::new(),
            unresolved: Vec::new(),
        }
    }

    /// The back end's warnings, or what it found unresolved.
    pub(crate) fn finish(self) -> Result<Vec<Diagnostic>, Unresolved> {
        match self.unresolved.is_empty() {
            true => Ok(self.diagnostics),
            false => Err(Unresolved {
                spans: self.unresolved,
            }),
        }
    }

    /// Records a reference the checker left unresolved; the expression
    /// compiles to `null` only so the walk can go on, and no program is
    /// made ([`Compiler::finish`]).
    pub(crate) fn unresolved(&mut self, at: Span) -> CExpr {
        self.unresolved.push(at);
        CExpr::Const(crate::value::Value::Null)
    }

    /// The id of the channel a name (a send's, a template's, a cap's, or
    /// `reachable`'s argument) resolved to.
    pub(crate) fn channel_ref(&mut self, name: Span) -> Option<ChannelId> {
        let id = self.model.refs.channels.get(&name).copied();
        let id = id.and_then(|id| ChannelId::try_from(id).ok());
        if id.is_none() {
            self.unresolved.push(name);
        }
        id
    }

    /// The id of the declared template a send's template name resolved to.
    pub(crate) fn template_ref(&self, name: Span) -> Option<TemplateId> {
        let id = *self.model.refs.templates.get(&name)?;
        TemplateId::try_from(id).ok()
    }

    /// The whole program.
    pub(crate) fn program(&mut self) -> Program {
        self.build_channels();
        self.build_templates();
        self.build_policy();
        let journeys = self.build_journeys();
        let attribution = self.build_attribution();
        let mut program = Program {
            journeys,
            events: Vec::new(),
            channels: std::mem::take(&mut self.channels),
            templates: std::mem::take(&mut self.templates),
            profile_slots: std::mem::take(&mut self.slots),
            policy: std::mem::take(&mut self.policy),
            any_silence: Vec::new(),
            attribution,
        };
        // Handles read engagements; a best-hour send reads the customer's.
        let best_hour = |j: &super::program::Journey| {
            j.nodes.iter().any(|n| {
                matches!(&n.kind, super::program::NodeKind::Send(s) if s.best_hour_ms.is_some())
            })
        };
        if program
            .journeys
            .iter()
            .any(|j| !j.handles.is_empty() || best_hour(j))
        {
            self.register_engagement_events();
        }
        program.events = std::mem::take(&mut self.events);
        program.any_silence = program
            .journeys
            .iter()
            .enumerate()
            .filter(|(_, j)| j.absence.iter().any(|a| a.event.is_none()))
            .map(|(i, _)| i as JourneyId)
            .collect();
        let spans = std::mem::take(&mut self.journey.all_spans);
        for (journey, spans) in program.journeys.iter_mut().zip(&spans) {
            let analysis = limits::analyze(journey, &program.channels, &program.policy);
            journey.limits = analysis.limits;
            for (node, cap) in analysis.always_capped {
                // Journey caps first, then the policy's (the analysis's order).
                let cap_span = match cap.checked_sub(spans.caps.len()) {
                    None => spans.caps.get(cap),
                    Some(i) => self.policy_cap_spans.get(i),
                };
                if let (Some(&span), Some(&cap_span)) = (spans.nodes.get(node as usize), cap_span) {
                    self.diagnostics
                        .push(capped_send_warning(self.project, span, cap_span));
                }
            }
        }
        program
    }

    // ------------------------------------------------------------ channels

    fn build_channels(&mut self) {
        let model = self.model;
        let by_id = model.scope.channels_by_id();
        // The built-in rules' fields first, so their slots have fixed ids.
        for field in channels::address_fields() {
            self.slot(&[field]);
        }
        for (name, _) in &by_id {
            self.slot(&channels::consent_path(name));
        }
        self.slot(&[channels::UNSUBSCRIBED]);
        self.slot(&[channels::TIMEZONE]);
        for (name, info) in by_id {
            let channel = self.channel(name, info.builtin, info.decl);
            self.channels.push(channel);
        }
    }

    /// One channel's rule: the declaration's parts, else the defaults.
    fn channel(
        &mut self,
        name: &str,
        builtin: Option<&channels::Builtin>,
        decl: Option<&'p ast::ChannelDecl>,
    ) -> Channel {
        let default_address = builtin.and_then(|b| b.address);
        // A built-in that asks no consent, unless a declaration overrides it.
        let always_reachable = builtin.is_some_and(|b| !b.consent) && decl.is_none();
        let address = match decl.and_then(|d| d.address.as_ref()) {
            Some(e) => Some(self.expr(e)),
            None => default_address.map(|f| super::program::CExpr::Profile(self.slot(&[f]))),
        };
        let consent = match decl.and_then(|d| d.consent.as_ref()) {
            Some(e) => Some(self.expr(e)),
            None if always_reachable => None,
            None => Some(super::program::CExpr::Profile(
                self.slot(&channels::consent_path(name)),
            )),
        };
        Channel {
            name: Arc::from(name),
            address,
            consent,
        }
    }

    // ------------------------------------------------------------ templates

    fn build_templates(&mut self) {
        let model = self.model;
        for decl in &model.scope.templates_by_id {
            let Some(channel) = self.channel_ref(decl.channel.span) else {
                continue;
            };
            self.templates.push(Template {
                name: Arc::from(decl.name.name.as_str()),
                channel,
                subject: decl.subject.as_ref().map(|s| Arc::from(s.value.as_str())),
                body: Arc::from(decl.body.as_ref().map_or("", |b| b.value.as_str())),
                html: decl.html.as_ref().map(|h| Arc::from(h.value.as_str())),
            });
        }
    }

    // ------------------------------------------------------------ attribution

    /// The `attribution` item; its first `conversion`, `window` and `half
    /// life` (the checker refused repeats). Without `half life`, a seventh
    /// of the window (1d for 7d).
    fn build_attribution(&mut self) -> Option<super::program::Attribution> {
        let decl = self.model.scope.attribution?;
        let conversion = decl.conversions.first()?;
        let window_ms = duration_ms(*decl.windows.first()?);
        let half_life_ms = decl
            .half_lives
            .first()
            .map_or((window_ms / 7).max(1), |h| duration_ms(*h));
        let event = self.event_id(&conversion.event.name);
        let condition = self.clause_condition(event, conversion.condition.as_ref());
        let value = self.clause_condition(event, conversion.value.as_ref());
        Some(super::program::Attribution {
            event,
            condition,
            value,
            window_ms,
            half_life_ms,
        })
    }

    // ------------------------------------------------------------ policy

    fn build_policy(&mut self) {
        let Some(decl) = self.model.scope.policy else {
            return;
        };
        let mut caps = Vec::new();
        for cap in &decl.caps {
            if let Some(c) = self.cap(cap) {
                caps.push(c);
                self.policy_cap_spans.push(cap.span);
            }
        }
        let quiet_hours = decl.quiet_hours.first().map(|q| self.quiet_hours(q));
        self.policy = Policy { caps, quiet_hours };
    }

    pub(crate) fn cap(&mut self, cap: &ast::Cap) -> Option<Cap> {
        let channel = match &cap.target {
            ast::CapTarget::Messages(_) => None,
            ast::CapTarget::Channel(c) => Some(self.channel_ref(c.span)?),
        };
        let limit = u32::try_from(cap.limit.value).ok()?;
        Some(Cap {
            channel,
            limit,
            window_ms: duration_ms(cap.per),
        })
    }

    pub(crate) fn quiet_hours(&mut self, q: &'p ast::QuietHours) -> QuietHours {
        QuietHours {
            from: q.from.minutes,
            to: q.to.minutes,
            zone: q.zone.as_ref().map(|z| self.expr(z)),
        }
    }

    // ------------------------------------------------------------ journeys

    fn build_journeys(&mut self) -> Vec<super::program::Journey> {
        let mut decls: Vec<&'p ast::JourneyDecl> = self.project.journeys().collect();
        decls.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        decls.dedup_by(|a, b| a.name.name == b.name.name);
        decls
            .into_iter()
            .enumerate()
            .map(|(id, decl)| self.compile_journey(id as JourneyId, decl))
            .collect()
    }

    // ------------------------------------------------------------ interning

    /// The slot of a profile path, interned.
    pub(crate) fn slot(&mut self, path: &[&str]) -> SlotId {
        let key: FieldPath = path.iter().map(|s| Arc::from(*s)).collect();
        self.slot_of(key)
    }

    pub(crate) fn slot_of(&mut self, path: FieldPath) -> SlotId {
        if let Some(&id) = self.slot_ids.get(&path) {
            return id;
        }
        let id = self.slots.len() as SlotId;
        let timestamp = self.profile_type(&path) == Some(&Type::Timestamp);
        self.slots.push(ProfileSlot {
            path: path.clone(),
            timestamp,
        });
        self.slot_ids.insert(path, id);
        id
    }

    /// The declared type of a profile path, if the schema has it.
    fn profile_type(&self, path: &[Arc<str>]) -> Option<&'p Type> {
        let mut object = self.model.scope.profile.as_deref();
        let mut found = None;
        for part in path {
            let ty = &object?.get(part)?.ty;
            found = Some(ty);
            object = match ty {
                Type::Object(inner) => Some(&**inner),
                _ => None,
            };
        }
        found
    }

    /// The id of an event name, interned.
    pub(crate) fn event_id(&mut self, name: &str) -> EventId {
        if let Some(&id) = self.event_ids.get(name) {
            return id;
        }
        let id = self.events.len() as EventId;
        let name: Arc<str> = Arc::from(name);
        self.events.push(EventInfo {
            name: name.clone(),
            fields: Vec::new(),
            triggers: Vec::new(),
            exits: Vec::new(),
            goals: Vec::new(),
            waits: Vec::new(),
            silences: Vec::new(),
            engagement: None,
        });
        self.event_ids.insert(name, id);
        self.event_field_ids.push(FxHashMap::default());
        id
    }

    /// Records that journey `journey` reacts to `event` in `role`.
    pub(crate) fn add_role(&mut self, event: EventId, role: Role, journey: JourneyId) {
        let info = &mut self.events[event as usize];
        let list = match role {
            Role::Trigger => &mut info.triggers,
            Role::Exit => &mut info.exits,
            Role::Goal => &mut info.goals,
            Role::Wait => &mut info.waits,
            Role::Silence => &mut info.silences,
        };
        // Journeys are compiled in id order, so the lists stay ascending.
        if list.last() != Some(&journey) {
            list.push(journey);
        }
    }

    /// The index of a property path in an event's `fields`, interned.
    pub(crate) fn event_field(&mut self, event: EventId, path: FieldPath) -> u32 {
        let ids = &mut self.event_field_ids[event as usize];
        if let Some(&i) = ids.get(&path) {
            return i;
        }
        let fields = &mut self.events[event as usize].fields;
        let i = fields.len() as u32;
        fields.push(path.clone());
        ids.insert(path, i);
        i
    }

    /// Whether an event's schema (if the project declares events) has a
    /// top-level field: a trigger without it captures `null`.
    pub(crate) fn event_has_field(&self, event: EventId, field: &str) -> bool {
        let scope = &self.model.scope;
        if !scope.strict_events {
            return true;
        }
        let name = &*self.events[event as usize].name;
        scope
            .events
            .get(name)
            .and_then(|e| e.decl)
            .is_some_and(|d| d.fields.iter().any(|f| f.name.name == field))
    }

    /// `message.<engagement>` events, for journeys that use handles.
    fn register_engagement_events(&mut self) {
        for engagement in super::program::Engagement::ALL {
            let id = self.event_id(&format!("message.{}", engagement.name()));
            for field in ["message_id", "template", "journey"] {
                self.event_field(id, vec![Arc::from(field)]);
            }
            self.events[id as usize].engagement = Some(engagement);
        }
    }

    /// The waits on an engagement, for its `message.*` event's `waits` list.
    pub(crate) fn engagement_event(&mut self, e: super::program::Engagement) -> EventId {
        self.event_id(&format!("message.{}", e.name()))
    }
}

/// A duration literal in milliseconds.
pub(crate) fn duration_ms(d: ast::DurationLit) -> i64 {
    super::expr::secs_to_ms(d.secs)
}

fn capped_send_warning(project: &Project, send: Span, cap: Span) -> Diagnostic {
    let cap_text = project.sources.get(cap.file).slice(cap).trim();
    Problem::CappedSend {
        span: send,
        cap,
        cap_text: cap_text.to_string(),
    }
    .into()
}

/// A model with references the checker did not resolve: it had errors.
/// [`crate::compile::compile`] makes no program from it.
#[derive(Debug)]
pub struct Unresolved {
    /// Where each unresolved reference is.
    pub spans: Vec<Span>,
}

impl Unresolved {
    /// One E0001 a reference: after a check without errors, a bug of the
    /// checker, said as such.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.spans
            .iter()
            .map(|&span| Problem::Unresolved { span }.into_diagnostic())
            .collect()
    }
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reference(s) the checker did not resolve: compile a project only when `check` found no error",
            self.spans.len()
        )
    }
}

impl std::error::Error for Unresolved {}
