//! One project seen by the language server: built through
//! [`crate::pipeline`] (parsed, checked, compiled when it can be), with an
//! index of its symbols: each template, segment, event, schema field,
//! handle and journey with the spans that declare it, the spans that refer
//! to it ([`crate::check::Refs`], what the checker resolved) and the text
//! its hover shows. Everything here is in byte offsets; [`super::position`]
//! converts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::check::Model;
use crate::compile::Program;
use crate::diagnostic::{Diagnostic, suggested_name};
use crate::pipeline::{self, Build};
use crate::source::{FileId, SourceMap, Span};
use crate::syntax::ast::{self, Item, StepKind};

/// A built project and its symbols.
pub struct Analysis {
    /// The path of each file, by [`FileId`].
    pub paths: Vec<PathBuf>,
    pub build: Build,
    symbols: Vec<Symbol>,
}

/// Something a name can denote, with where it is declared and read.
#[derive(Debug)]
pub struct Symbol {
    pub kind: Kind,
    pub name: String,
    /// Where it is declared (a handle bound by several sends: each).
    pub defs: Vec<Span>,
    pub refs: Vec<Span>,
    /// Markdown.
    pub hover: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Template,
    Segment,
    Event,
    Field,
    Handle,
    Journey,
}

/// A quick fix: the text to put in place of a diagnostic's span.
#[derive(Debug)]
pub struct Fix<'a> {
    pub diagnostic: &'a Diagnostic,
    pub replacement: String,
}

impl Analysis {
    /// Builds the project of `files` (path, display name, text).
    pub fn new(files: Vec<(PathBuf, String, String)>) -> Analysis {
        let mut sources = SourceMap::new();
        let mut paths = Vec::with_capacity(files.len());
        for (path, name, text) in files {
            sources.add(name, text);
            paths.push(path);
        }
        let (build, mut symbols) = pipeline::build_inspecting(sources, index);
        add_journeys(&build, &mut symbols);
        Analysis {
            paths,
            build,
            symbols,
        }
    }

    pub fn sources(&self) -> &SourceMap {
        &self.build.project.sources
    }

    /// The file at `path`, when it is part of the project.
    pub fn file(&self, path: &std::path::Path) -> Option<FileId> {
        self.paths
            .iter()
            .position(|p| p == path)
            .map(|i| FileId(i as u32))
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.sources().get(file).text
    }

    /// The diagnostics of one file, in order.
    pub fn diagnostics(&self, file: FileId) -> impl Iterator<Item = &Diagnostic> {
        self.build
            .diagnostics
            .items
            .iter()
            .filter(move |d| d.span.file == file)
    }

    /// The symbol declared or read at `offset` of `file`, and the span
    /// there: the narrowest when spans nest (a send's template name inside
    /// the send that binds a handle).
    pub fn symbol_at(&self, file: FileId, offset: usize) -> Option<(&Symbol, Span)> {
        let offset = offset as u32;
        self.symbols
            .iter()
            .flat_map(|s| s.defs.iter().chain(&s.refs).map(move |span| (s, *span)))
            .filter(|(_, span)| span.file == file && span.start <= offset && offset <= span.end)
            .min_by_key(|(s, span)| (span.len(), s.kind))
    }

    /// Every symbol of a kind, in declaration order.
    pub fn symbols(&self, kind: Kind) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter().filter(move |s| s.kind == kind)
    }

    /// The quick fixes of the diagnostics of `file` that overlap `range`:
    /// each "did you mean `x`?" whose span holds exactly the name it
    /// corrects (a name, or an event name in quotes).
    pub fn fixes(&self, file: FileId, range: std::ops::Range<usize>) -> Vec<Fix<'_>> {
        let text = self.text(file);
        self.diagnostics(file)
            .filter(|d| d.span.start as usize <= range.end && range.start <= d.span.end as usize)
            .filter_map(|d| {
                let name = suggested_name(d.help.as_deref()?)?;
                let written = text.get(d.span.range())?;
                let replacement = if is_name(written) {
                    name.to_string()
                } else if written.len() >= 2 && written.starts_with('"') && written.ends_with('"') {
                    quote(name)
                } else {
                    return None;
                };
                Some(Fix {
                    diagnostic: d,
                    replacement,
                })
            })
            .collect()
    }

    pub fn program(&self) -> Option<&Program> {
        self.build.program.as_ref()
    }
}

/// An identifier as the grammar's `ident` rule reads it.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` as a string literal of the language.
pub fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The symbols the checker's model knows (every kind but journeys).
fn index(model: &Model<'_>) -> Vec<Symbol> {
    let project = model.project();
    let sources = &project.sources;
    let refs = &model.refs;
    let scope = &model.scope;
    let mut symbols = Vec::new();

    for template in scope
        .templates
        .names()
        .filter_map(|n| scope.templates.get(n))
    {
        let id = scope.template_id(&template.name.name);
        symbols.push(Symbol {
            kind: Kind::Template,
            name: template.name.name.clone(),
            defs: vec![template.name.span],
            refs: spans_where(&refs.templates, |&t| Some(t) == id),
            hover: template_hover(template),
        });
    }
    for (index, name) in scope.segments.names().enumerate() {
        let Some(segment) = scope.segments.get(name) else {
            continue;
        };
        symbols.push(Symbol {
            kind: Kind::Segment,
            name: name.to_string(),
            defs: vec![segment.name.span],
            refs: spans_where(&refs.segments, |&i| i == index),
            hover: code(
                &format!("segment `{name}`"),
                sources.get(segment.span.file).slice(segment.span),
            ),
        });
    }
    let mut fields = Vec::new();
    for item in project.items() {
        match item {
            Item::Event(e) => {
                symbols.push(Symbol {
                    kind: Kind::Event,
                    name: e.name.name.clone(),
                    defs: vec![e.name.span],
                    refs: spans_where(&refs.events, |&d| d == e.name.span),
                    hover: code(
                        &format!("event `{}`", e.name.name),
                        sources.get(e.span.file).slice(e.span),
                    ),
                });
                schema_fields(&e.fields, &format!("event `{}`", e.name.name), &mut fields);
            }
            Item::Profile(p) => schema_fields(&p.fields, "the profile", &mut fields),
            _ => {}
        }
    }
    for (field, owner) in fields {
        let text = sources.get(field.span.file).slice(field.span);
        symbols.push(Symbol {
            kind: Kind::Field,
            name: field.name.name.clone(),
            defs: vec![field.name.span],
            refs: spans_where(&refs.fields, |decls| decls.contains(&field.name.span)),
            hover: code(&format!("field of {owner}"), text),
        });
    }
    for journey in project.journeys() {
        handles(model, journey, &mut symbols);
    }
    symbols
}

/// The keys of `map` whose value passes `keep`, sorted.
fn spans_where<V>(map: &rustc_hash::FxHashMap<Span, V>, keep: impl Fn(&V) -> bool) -> Vec<Span> {
    let mut spans: Vec<Span> = map
        .iter()
        .filter(|(_, v)| keep(v))
        .map(|(s, _)| *s)
        .collect();
    spans.sort_unstable();
    spans
}

/// The fields of a schema, nested ones included, with the words naming
/// their owner.
fn schema_fields<'a>(
    fields: &'a [ast::FieldDecl],
    owner: &str,
    out: &mut Vec<(&'a ast::FieldDecl, String)>,
) {
    for field in fields {
        out.push((field, owner.to_string()));
        if let ast::TypeKind::Object(inner) = &field.ty.kind {
            schema_fields(inner, &format!("`{}` of {owner}", field.name.name), out);
        }
    }
}

/// The handles of one journey: each bound by the sends the checker
/// recorded, and read where it resolved them.
fn handles(model: &Model<'_>, journey: &ast::JourneyDecl, symbols: &mut Vec<Symbol>) {
    let sources = &model.project().sources;
    let inside = |span: &Span| {
        span.file == journey.span.file
            && journey.span.start <= span.start
            && span.end <= journey.span.end
    };
    let mut sends = Vec::new();
    collect_sends(&journey.steps, &mut sends);
    let mut by_id: BTreeMap<usize, Symbol> = BTreeMap::new();
    for (step, send) in sends {
        let Some(&id) = model.refs.binds.get(&step.span) else {
            continue;
        };
        let Some(name) = crate::check::handle_of(send) else {
            continue;
        };
        let def = send.handle.as_ref().map_or(step.span, |h| h.span);
        let text = sources.get(step.span.file).slice(step.span);
        let first_line = text.lines().next().unwrap_or_default();
        let symbol = by_id.entry(id).or_insert_with(|| Symbol {
            kind: Kind::Handle,
            name: name.to_string(),
            defs: Vec::new(),
            refs: spans_where(&model.refs.handles, |&h| h == id)
                .into_iter()
                .filter(inside)
                .collect(),
            hover: format!("**handle `{name}`**, the message of"),
        });
        symbol.defs.push(def);
        let _ = write!(symbol.hover, "\n```journey\n{first_line}\n```");
    }
    symbols.extend(by_id.into_values());
}

/// Every send step of `steps`, nested blocks included, in source order.
fn collect_sends<'a>(steps: &'a [ast::Step], out: &mut Vec<(&'a ast::Step, &'a ast::Send)>) {
    for step in steps {
        let blocks: Vec<&ast::Block> = match &step.kind {
            StepKind::Send(send) => {
                out.push((step, send));
                Vec::new()
            }
            StepKind::WaitForEvent {
                then, otherwise, ..
            }
            | StepKind::WaitForEngagement {
                then, otherwise, ..
            } => then.iter().chain(otherwise).collect(),
            StepKind::If {
                branches,
                otherwise,
            } => branches.iter().map(|(_, b)| b).chain(otherwise).collect(),
            StepKind::Split { arms, .. } => arms.iter().map(|a| &a.body).collect(),
            StepKind::Repeat { body, .. } => vec![body],
            _ => Vec::new(),
        };
        for block in blocks {
            collect_sends(&block.steps, out);
        }
    }
}

/// Journeys, with their limits as `journey check --summary` prints them
/// (once the project compiles).
fn add_journeys(build: &Build, symbols: &mut Vec<Symbol>) {
    for journey in build.project.journeys() {
        let name = &journey.name.name;
        let mut hover = format!("**journey `{name}`**");
        if let Some(doc) = &journey.doc {
            hover.push_str("\n\n");
            hover.push_str(doc);
        }
        let compiled = build
            .program
            .as_ref()
            .and_then(|p| p.journeys.iter().find(|j| j.name.as_ref() == name.as_str()));
        match compiled {
            Some(j) => {
                let row = crate::compile::summary_row(j);
                hover.push_str("\n\nLimits (`journey check --summary`):");
                for (column, cell) in crate::compile::SUMMARY_COLUMNS.iter().zip(&row).skip(1) {
                    let _ = write!(hover, "\n- {column}: {cell}");
                }
            }
            None => hover.push_str("\n\nlimits: once the project has no errors"),
        }
        symbols.push(Symbol {
            kind: Kind::Journey,
            name: name.clone(),
            defs: vec![journey.name.span],
            refs: Vec::new(),
            hover,
        });
    }
}

fn template_hover(t: &ast::TemplateDecl) -> String {
    let mut out = format!("**template `{}`** on `{}`", t.name.name, t.channel.name);
    for (part, text) in [
        ("subject", &t.subject),
        ("body", &t.body),
        ("html", &t.html),
    ] {
        if let Some(text) = text {
            let _ = write!(out, "\n\n{part}:\n```text\n{}\n```", text.value);
        }
    }
    out
}

/// A title over a block of the language's source.
fn code(title: &str, source: &str) -> String {
    format!("**{title}**\n```journey\n{source}\n```")
}
