//! The global symbol table of a project, built once: journeys, segments,
//! templates, channels (the built-ins of [`crate::channels`] plus declared ones), event schemas,
//! the profile schema and the policy. Names are global across files, and a
//! name declared twice is reported here (E0201, E0209).

use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::problem::{Duplicated, Problem};
use super::types::{Field, Object, Type};
use crate::diagnostic::Diagnostic;
use crate::project::Project;
use crate::source::Span;
use crate::syntax::ast;

/// The engagement events the runtime produces (`message.opened`, ...), and
/// delivery's `message.sent` (SERVICE.md §6): known even in a project with
/// strict event schemas, unless it declares them.
const ENGAGEMENT_EVENTS: &[&str] = &[
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.bounced",
    "message.failed",
];

/// A name with the declarations it resolves to, in declaration order so that
/// suggestions never depend on hashing. An entry's index is its position in
/// that order.
pub struct Table<'a, T> {
    map: FxHashMap<&'a str, usize>,
    entries: Vec<(&'a str, T)>,
}

impl<'a, T> Default for Table<'a, T> {
    fn default() -> Self {
        Table {
            map: FxHashMap::default(),
            entries: Vec::new(),
        }
    }
}

impl<'a, T> Table<'a, T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        self.map.get(name).map(|&i| &self.entries[i].1)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.map.get(name).map(|&i| &mut self.entries[i].1)
    }

    /// The index of `name`, when declared.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.map.get(name).copied()
    }

    /// The entry at `index` (from [`Table::index`]).
    pub fn at(&self, index: usize) -> Option<&T> {
        self.entries.get(index).map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.entries.iter().map(|(n, _)| *n)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts `name` unless present; returns the existing entry otherwise.
    fn insert(&mut self, name: &'a str, value: T) -> Result<(), &T> {
        if let Some(&i) = self.map.get(name) {
            return Err(&self.entries[i].1);
        }
        self.map.insert(name, self.entries.len());
        self.entries.push((name, value));
        Ok(())
    }
}

/// A channel: a built-in (possibly overridden) or a custom declaration.
pub struct ChannelInfo<'a> {
    /// The built-in channel's facts, when it is one (a declaration may
    /// override them).
    pub builtin: Option<&'static crate::channels::Builtin>,
    pub decl: Option<&'a ast::ChannelDecl>,
    /// The channel's id in the program: the built-ins first, in
    /// [`crate::channels::names`]' order, then the others by name.
    pub id: usize,
}

/// An event schema: declared by the user, or built in (engagements).
pub struct EventInfo<'a> {
    pub fields: Rc<Object>,
    pub decl: Option<&'a ast::EventSchema>,
}

#[derive(Default)]
pub struct Scope<'a> {
    pub journeys: Table<'a, &'a ast::JourneyDecl>,
    pub segments: Table<'a, &'a ast::SegmentDecl>,
    pub templates: Table<'a, &'a ast::TemplateDecl>,
    pub channels: Table<'a, ChannelInfo<'a>>,
    pub events: Table<'a, EventInfo<'a>>,
    /// True once the project declares any event: every event referred to
    /// must then be declared.
    pub strict_events: bool,
    pub profile: Option<Rc<Object>>,
    pub policy: Option<&'a ast::PolicyDecl>,
    /// The project's `attribution` item, the first when there are more.
    pub attribution: Option<&'a ast::AttributionDecl>,
    /// The templates on a known channel, in id order (by name): a
    /// template's id is its index here.
    pub templates_by_id: Vec<&'a ast::TemplateDecl>,
    template_ids: FxHashMap<&'a str, usize>,
}

impl<'a> Scope<'a> {
    /// Builds the table from every file; duplicates go to `diags`.
    pub fn build(project: &'a Project, diags: &mut Vec<Diagnostic>) -> Scope<'a> {
        let mut scope = Scope::default();
        for (id, builtin) in crate::channels::BUILTINS.iter().enumerate() {
            // The table is empty and the built-in names are distinct.
            let _ = scope.channels.insert(
                builtin.name,
                ChannelInfo {
                    builtin: Some(builtin),
                    decl: None,
                    id,
                },
            );
        }
        let mut profile_decl: Option<&ast::ProfileSchema> = None;
        for item in project.items() {
            match item {
                ast::Item::Journey(j) => {
                    if let Err(first) = scope.journeys.insert(&j.name.name, j) {
                        diags.push(duplicate("journey", &j.name, first.name.span));
                    }
                }
                ast::Item::Segment(s) => {
                    if let Err(first) = scope.segments.insert(&s.name.name, s) {
                        diags.push(duplicate("segment", &s.name, first.name.span));
                    }
                }
                ast::Item::Template(t) => {
                    if let Err(first) = scope.templates.insert(&t.name.name, t) {
                        diags.push(duplicate("template", &t.name, first.name.span));
                    }
                }
                ast::Item::Channel(c) => scope.add_channel(c, diags),
                ast::Item::Event(e) => scope.add_event(e, diags),
                ast::Item::Profile(p) => {
                    check_fields(&p.fields, "the profile schema", diags);
                    if let Some(first) = profile_decl {
                        diags.push(
                            Problem::DuplicateName {
                                span: p.keyword,
                                first: first.keyword,
                                what: Duplicated::Profile,
                            }
                            .into(),
                        );
                    } else {
                        profile_decl = Some(p);
                        scope.profile = Some(Rc::new(Object::from_fields(&p.fields)));
                    }
                }
                ast::Item::Policy(p) => {
                    if let Some(first) = scope.policy {
                        diags.push(
                            Problem::DuplicatePolicy {
                                span: p.keyword,
                                first: first.keyword,
                            }
                            .into(),
                        );
                    } else {
                        scope.policy = Some(p);
                    }
                }
                ast::Item::Attribution(a) => {
                    if let Some(first) = scope.attribution {
                        diags.push(
                            Problem::DuplicateAttribution {
                                span: a.keyword,
                                first: first.keyword,
                            }
                            .into(),
                        );
                    } else {
                        scope.attribution = Some(a);
                    }
                }
                // Checked once every phase has spoken (`super::allow`).
                ast::Item::Allow(_) => {}
            }
        }
        scope.strict_events = !scope.events.is_empty();
        scope.add_engagement_events();
        scope.number_channels();
        scope.number_templates();
        scope
    }

    /// Gives the declared (not built-in) channels their ids, by name after
    /// the built-ins.
    fn number_channels(&mut self) {
        let builtins = crate::channels::names().count();
        let mut custom: Vec<&'a str> = self
            .channels
            .entries
            .iter()
            .filter(|(_, c)| c.builtin.is_none())
            .map(|(n, _)| *n)
            .collect();
        custom.sort_unstable();
        for (i, name) in custom.into_iter().enumerate() {
            if let Some(c) = self.channels.get_mut(name) {
                c.id = builtins + i;
            }
        }
    }

    /// Gives the templates on a known channel their ids, by name.
    fn number_templates(&mut self) {
        let mut decls: Vec<&'a ast::TemplateDecl> = self
            .templates
            .entries
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| self.channels.contains(&t.channel.name))
            .collect();
        decls.sort_unstable_by(|a, b| a.name.name.cmp(&b.name.name));
        self.template_ids = decls
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.name.as_str(), i))
            .collect();
        self.templates_by_id = decls;
    }

    /// The channels in id order.
    pub fn channels_by_id(&self) -> Vec<(&'a str, &ChannelInfo<'a>)> {
        let mut out: Vec<(&'a str, &ChannelInfo<'a>)> =
            self.channels.entries.iter().map(|(n, c)| (*n, c)).collect();
        out.sort_unstable_by_key(|(_, c)| c.id);
        out
    }

    /// The id of a template on a known channel.
    pub fn template_id(&self, name: &str) -> Option<usize> {
        self.template_ids.get(name).copied()
    }

    fn add_channel(&mut self, c: &'a ast::ChannelDecl, diags: &mut Vec<Diagnostic>) {
        let name = c.name.name.as_str();
        match self.channels.get_mut(name) {
            Some(info) if info.builtin.is_some() && info.decl.is_none() => info.decl = Some(c),
            Some(info) => {
                let first = info.decl.map_or(c.name.span, |d| d.name.span);
                diags.push(duplicate("channel", &c.name, first));
            }
            None => {
                let _ = self.channels.insert(
                    name,
                    ChannelInfo {
                        builtin: None,
                        decl: Some(c),
                        // Numbered once every channel is known.
                        id: 0,
                    },
                );
            }
        }
    }

    fn add_event(&mut self, e: &'a ast::EventSchema, diags: &mut Vec<Diagnostic>) {
        check_fields(&e.fields, &format!("event `{}`", e.name.name), diags);
        let info = EventInfo {
            fields: Rc::new(Object::from_fields(&e.fields)),
            decl: Some(e),
        };
        if let Err(first) = self.events.insert(&e.name.name, info) {
            let first = first.decl.map_or(e.name.span, |d| d.name.span);
            diags.push(
                Problem::DuplicateName {
                    span: e.name.span,
                    first,
                    what: Duplicated::Event {
                        name: e.name.name.clone(),
                    },
                }
                .into(),
            );
        }
    }

    fn add_engagement_events(&mut self) {
        let optional_string = |name: &str| Field {
            name: name.to_string(),
            ty: Type::String,
            optional: true,
            decl: None,
        };
        // What the service puts in each (SERVICE.md §6): `error` in a
        // failure or bounce, `url` in a click.
        let fields = Rc::new(Object {
            fields: vec![
                optional_string("message_id"),
                optional_string("template"),
                optional_string("journey"),
                optional_string("channel"),
                optional_string("error"),
                optional_string("url"),
            ],
        });
        for name in ENGAGEMENT_EVENTS {
            if !self.events.contains(name) {
                let _ = self.events.insert(
                    name,
                    EventInfo {
                        fields: fields.clone(),
                        decl: None,
                    },
                );
            }
        }
    }

    /// The events a user declared (for suggestions).
    pub fn declared_events(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.events
            .names()
            .filter(|n| self.events.get(n).is_some_and(|e| e.decl.is_some()))
    }

    /// Whether the profile schema declares `field` at its top level.
    pub fn profile_declares(&self, field: &str) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.get(field).is_some())
    }
}

/// E0201 for a field declared twice in one schema (nested objects included).
fn check_fields(fields: &[ast::FieldDecl], owner: &str, diags: &mut Vec<Diagnostic>) {
    for (i, first) in super::repeats(fields.iter().map(|f| (f.name.name.as_str(), f.name.span))) {
        let name = &fields[i].name;
        diags.push(
            Problem::DuplicateName {
                span: name.span,
                first,
                what: Duplicated::Field {
                    name: name.name.clone(),
                    owner: owner.to_string(),
                },
            }
            .into(),
        );
    }
    for f in fields {
        check_nested(&f.ty, owner, diags);
    }
}

fn check_nested(ty: &ast::TypeExpr, owner: &str, diags: &mut Vec<Diagnostic>) {
    match &ty.kind {
        ast::TypeKind::Object(fields) => check_fields(fields, owner, diags),
        ast::TypeKind::List(inner) => check_nested(inner, owner, diags),
        _ => {}
    }
}

/// E0201: `kind` `name` declared a second time.
pub fn duplicate(kind: &'static str, name: &ast::Ident, first: Span) -> Diagnostic {
    Problem::DuplicateName {
        span: name.span,
        first,
        what: Duplicated::Declaration {
            kind,
            name: name.name.clone(),
        },
    }
    .into()
}
