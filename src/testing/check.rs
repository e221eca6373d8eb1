//! A test checked against its project, as the checker checks a journey:
//! an event the schema does not declare, a field its event or the profile
//! lacks, a template, channel or journey the project does not have. The
//! diagnostics are the checker's own ([`Problem`]), pointing into the test.

use std::collections::BTreeMap;

use super::{ExpectKind, InputKind, Named, Obj, Test, Val};
use crate::channels;
use crate::check::problem::{Problem, UnknownFieldKind, UnknownJourney};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::project::Project;
use crate::syntax::ast::{FieldDecl, Item, TypeKind};

/// What a test may name, read from the project's declarations.
struct Names<'p> {
    /// `None`: no event is declared, so any event may be sent (the
    /// project is not in strict mode).
    events: Option<BTreeMap<&'p str, &'p [FieldDecl]>>,
    profile: Option<Vec<&'p FieldDecl>>,
    /// Template → its channel.
    templates: BTreeMap<&'p str, &'p str>,
    channels: Vec<&'p str>,
    journeys: Vec<&'p str>,
}

impl<'p> Names<'p> {
    fn of(project: &'p Project) -> Names<'p> {
        let mut names = Names {
            events: None,
            profile: None,
            templates: BTreeMap::new(),
            channels: channels::names().collect(),
            journeys: Vec::new(),
        };
        for item in project.items() {
            match item {
                Item::Event(e) => {
                    names
                        .events
                        .get_or_insert_with(BTreeMap::new)
                        .insert(e.name.name.as_str(), &e.fields);
                }
                Item::Profile(p) => names.profile.get_or_insert_with(Vec::new).extend(&p.fields),
                Item::Template(t) => {
                    names
                        .templates
                        .insert(t.name.name.as_str(), t.channel.name.as_str());
                }
                Item::Channel(c) => names.channels.push(c.name.name.as_str()),
                Item::Journey(j) => names.journeys.push(j.name.name.as_str()),
                _ => {}
            }
        }
        names
    }
}

/// The diagnostics of `tests` against `project`.
pub fn check(project: &Project, tests: &[Test]) -> Vec<Diagnostic> {
    let names = Names::of(project);
    let mut out = Vec::new();
    for test in tests {
        for input in &test.inputs {
            match &input.kind {
                InputKind::Profile(traits) => {
                    if let Some(fields) = &names.profile {
                        let fields: Vec<&FieldDecl> = fields.clone();
                        fields_of(traits, &fields, "the profile", true, &mut out);
                    }
                }
                InputKind::Track { event, properties } => {
                    let Some(events) = &names.events else {
                        continue;
                    };
                    match events.get(event.name.as_str()) {
                        None => out.push(
                            Problem::UnknownEvent {
                                span: event.span,
                                name: event.name.clone(),
                                quoted: event.quoted,
                                suggestion: did_you_mean(&event.name, events.keys().copied()),
                            }
                            .into_diagnostic(),
                        ),
                        Some(fields) => {
                            if let Some(properties) = properties {
                                let fields: Vec<&FieldDecl> = fields.iter().collect();
                                let owner = format!("event `{}`", event.name);
                                fields_of(properties, &fields, &owner, false, &mut out);
                            }
                        }
                    }
                }
            }
        }
        for e in &test.expects {
            match &e.kind {
                ExpectKind::Send {
                    channel,
                    template,
                    journey,
                    ..
                } => {
                    channel_known(channel, &names, &mut out);
                    template_known(template, &names, &mut out);
                    if let Some(j) = journey {
                        journey_known(j, &names, &mut out);
                    }
                }
                ExpectKind::NoSend {
                    channel, template, ..
                } => {
                    if let Some(c) = channel {
                        channel_known(c, &names, &mut out);
                    }
                    if let Some(t) = template {
                        template_known(t, &names, &mut out);
                    }
                }
                ExpectKind::Exit { journey, .. } | ExpectKind::Convert { journey, .. } => {
                    if let Some(j) = journey {
                        journey_known(j, &names, &mut out);
                    }
                }
                ExpectKind::Enter { journey, .. } => journey_known(journey, &names, &mut out),
            }
        }
    }
    out
}

fn channel_known(channel: &Named, names: &Names<'_>, out: &mut Vec<Diagnostic>) {
    if !names.channels.contains(&channel.name.as_str()) {
        out.push(
            Problem::UnknownChannel {
                span: channel.span,
                name: channel.name.clone(),
                suggestion: did_you_mean(&channel.name, names.channels.iter().copied()),
            }
            .into_diagnostic(),
        );
    }
}

/// A template by name must be declared (when the project declares any); one
/// in quotes is an external id, as in a `send`.
fn template_known(template: &Named, names: &Names<'_>, out: &mut Vec<Diagnostic>) {
    if template.quoted
        || names.templates.is_empty()
        || names.templates.contains_key(template.name.as_str())
    {
        return;
    }
    out.push(
        Problem::UnknownTemplate {
            span: template.span,
            name: template.name.clone(),
            suggestion: did_you_mean(&template.name, names.templates.keys().copied()),
        }
        .into_diagnostic(),
    );
}

fn journey_known(journey: &Named, names: &Names<'_>, out: &mut Vec<Diagnostic>) {
    if names.journeys.contains(&journey.name.as_str()) {
        return;
    }
    let unknown = UnknownJourney {
        name: journey.name.clone(),
        suggestion: did_you_mean(&journey.name, names.journeys.iter().copied()),
        journeys: names.journeys.iter().map(|j| j.to_string()).collect(),
    };
    out.push(
        Diagnostic::new(UnknownJourney::CODE, journey.span, unknown.message())
            .with_help(unknown.help()),
    );
}

/// The keys of `object` against the declared `fields` of `owner`; nested
/// objects against their object types. The profile also has the built-in
/// fields (`email`, `consent`, ...).
fn fields_of(
    object: &Obj,
    fields: &[&FieldDecl],
    owner: &str,
    profile: bool,
    out: &mut Vec<Diagnostic>,
) {
    for (key, value) in &object.entries {
        let declared = fields.iter().find(|f| f.name.name == key.name);
        match declared {
            None if profile && channels::is_builtin_profile_field(&key.name) => {}
            None => {
                let names: Vec<&str> = fields.iter().map(|f| f.name.name.as_str()).collect();
                let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                out.push(
                    Problem::UnknownField {
                        span: key.span,
                        kind: UnknownFieldKind::Missing {
                            field: key.name.clone(),
                            owner: owner.to_owned(),
                            suggestion: did_you_mean(&key.name, names.iter().copied()),
                            declared: (!list.is_empty()).then(|| list.join(", ")),
                        },
                    }
                    .into_diagnostic(),
                );
            }
            Some(field) => {
                if let (TypeKind::Object(inner), Val::Obj(nested)) = (&field.ty.kind, value) {
                    let inner: Vec<&FieldDecl> = inner.iter().collect();
                    let owner = format!("`{}` of {owner}", key.name);
                    fields_of(nested, &inner, &owner, false, out);
                }
            }
        }
    }
}
