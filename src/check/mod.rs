//! Names, schemas, types and lints over all files of a project at once.
//! Input: the parsed files; output: the resolved [`Model`] that compile
//! consumes, and diagnostics (unsorted: the caller sorts).
//!
//! The checks are split by concern: [`scope`] builds the global symbol table
//! once, [`expr`] infers and checks expression types, [`journey`] checks
//! headers and steps (with the handle-binding path analysis), [`segments`]
//! finds segment cycles, [`templates`] parses templates and checks their
//! variables, and [`lints`] holds the warnings.

pub mod allow;
pub mod explain;
mod expr;
mod journey;
mod lints;
pub mod problem;
pub(crate) mod scope;
mod segments;
mod templates;
mod types;

use crate::builtins::{Function, HandleField};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::project::Project;
use crate::source::{SourceMap, Span};
use crate::syntax::ast;

pub use problem::Problem;
pub use types::Type;

use expr::Env;
pub(crate) use journey::handle_of;
use rustc_hash::FxHashMap;
use scope::Scope;

/// What the checker resolved, for compile: the symbol table (declarations
/// in id order) and what each name reference in the project resolved to,
/// keyed by the reference's span. It borrows the [`Project`].
pub struct Model<'a> {
    pub(crate) project: &'a Project,
    pub(crate) scope: Scope<'a>,
    pub(crate) refs: Refs,
}

/// Each name reference the checker resolved, by the span of the name.
#[derive(Default)]
pub(crate) struct Refs {
    /// A channel name (a send's, a template's, a cap's, `reachable`'s
    /// argument): its id ([`scope::ChannelInfo::id`]).
    pub channels: FxHashMap<Span, usize>,
    /// A send's template name: its id ([`Scope::template_id`]).
    pub templates: FxHashMap<Span, usize>,
    /// A bare name that is a segment: its index in [`Scope::segments`].
    pub segments: FxHashMap<Span, usize>,
    /// A function's name in a call.
    pub functions: FxHashMap<Span, Function>,
    /// A handle's name where it is read (`h` of `h.opened`, of `wait for
    /// h.clicked`): the handle, numbered per journey in the order of the
    /// sends that bind it.
    pub handles: FxHashMap<Span, usize>,
    /// What a handle read asks, by the span of the field after the handle
    /// (`opened`, `sent`).
    pub handle_fields: FxHashMap<Span, HandleField>,
    /// A send step (by its span) whose handle is read at run time: it has
    /// `as`, or its journey reads the handle it binds. Sends not here bind
    /// no handle.
    pub binds: FxHashMap<Span, usize>,
    /// An event name that resolved to a declared schema: the span of the
    /// declaration's name (for the language server).
    pub events: FxHashMap<Span, Span>,
    /// A field name of a `profile.`, `event.` or `trigger.` path, or an
    /// `emit`'s `with` key, that resolved to declared fields: their
    /// declarations' names (a `trigger.` field may be declared by each
    /// event that starts the journey).
    pub fields: FxHashMap<Span, Vec<Span>>,
}

impl Refs {
    /// Records that the field named at `at` is the one declared at `decl`
    /// (nothing for a built-in field).
    pub fn field(&mut self, at: Span, decl: Option<Span>) {
        if let Some(decl) = decl {
            let decls = self.fields.entry(at).or_default();
            if !decls.contains(&decl) {
                decls.push(decl);
            }
        }
    }
}

impl<'a> Model<'a> {
    /// The project the model resolves.
    pub fn project(&self) -> &'a Project {
        self.project
    }
}

/// Runs every compile-time check over the project: the resolved model and
/// the diagnostics found (compile the model only when they hold no error).
pub fn check(project: &Project) -> (Model<'_>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let scope = Scope::build(project, &mut diags);
    let mut cx = Checker {
        sources: &project.sources,
        scope,
        refs: Refs::default(),
        diags,
    };
    let template_vars = templates::check_declarations(&mut cx);
    segments::check(&mut cx);
    check_channels(&mut cx);
    if let Some(policy) = cx.scope.policy {
        check_policy(&mut cx, policy);
    }
    if let Some(attribution) = cx.scope.attribution {
        check_attribution(&mut cx, attribution);
    }
    let mut sends = templates::Sends::default();
    let journeys: Vec<&ast::JourneyDecl> = project.journeys().collect();
    for j in journeys {
        journey::check(&mut cx, j, &mut sends);
    }
    templates::check_sends(&mut cx, &template_vars, &sends);
    allow::check(&mut cx, project);
    let model = Model {
        project,
        scope: cx.scope,
        refs: cx.refs,
    };
    (model, cx.diags)
}

/// What every check shares: the sources (to quote the user's text), the
/// symbol table and the diagnostics found so far.
pub(crate) struct Checker<'a> {
    pub sources: &'a SourceMap,
    pub scope: Scope<'a>,
    pub refs: Refs,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn report(&mut self, p: Problem) {
        self.diags.push(p.into_diagnostic());
    }

    /// The user's text under `span`, on one line and at most 40 characters,
    /// for quoting in a message.
    pub fn snippet(&self, span: Span) -> String {
        let text = self.sources.get(span.file).slice(span);
        let mut out = String::new();
        for word in text.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        if out.chars().count() > 40 {
            let cut: String = out.chars().take(37).collect();
            return format!("{cut}…");
        }
        out
    }

    /// The 1-based line of a span's start.
    pub fn line(&self, span: Span) -> usize {
        self.sources.get(span.file).line_col(span.start).0
    }

    /// Checks a channel name (E0205) and records what it resolves to; true
    /// when it exists.
    pub fn check_channel(&mut self, name: &ast::Ident) -> bool {
        if let Some(channel) = self.scope.channels.get(&name.name) {
            self.refs.channels.insert(name.span, channel.id);
            return true;
        }
        let suggestion = did_you_mean(&name.name, self.scope.channels.names());
        self.report(Problem::UnknownChannel {
            span: name.span,
            name: name.name.clone(),
            suggestion,
        });
        false
    }

    /// Resolves an event reference: its schema, or `None` when the project
    /// has no event schemas (anything goes) or the event is unknown (E0206,
    /// reported here).
    pub fn resolve_event(&mut self, event: &ast::EventRef) -> Option<std::rc::Rc<types::Object>> {
        if let Some(info) = self.scope.events.get(&event.name) {
            if let Some(decl) = info.decl {
                self.refs.events.insert(event.span, decl.name.span);
            }
            return Some(info.fields.clone());
        }
        if self.scope.strict_events {
            let suggestion = did_you_mean(&event.name, self.scope.declared_events());
            self.report(Problem::UnknownEvent {
                span: event.span,
                name: event.name.clone(),
                quoted: event.quoted,
                suggestion,
            });
        }
        None
    }

    /// Checks that a condition is true/false (E0303).
    pub fn expect_condition(&mut self, env: &Env, e: &ast::Expr, what: &str) {
        let ty = expr::infer(self, env, e);
        if !matches!(ty, Type::Bool | Type::Unknown | Type::Null) {
            let snippet = self.snippet(e.span);
            self.report(Problem::NotACondition {
                span: e.span,
                what: what.to_string(),
                snippet,
                found: ty,
            });
        }
    }

    /// Checks that an expression has the `expected` type (E0301).
    pub fn expect_type(&mut self, env: &Env, e: &ast::Expr, expected: &Type, what: &str) {
        let ty = expr::infer(self, env, e);
        if !ty.compatible(expected) {
            let snippet = self.snippet(e.span);
            self.report(Problem::TypeMismatch {
                span: e.span,
                kind: problem::Mismatch::Expected {
                    what: what.to_string(),
                    snippet,
                    expected: expected.clone(),
                    found: ty,
                },
            });
        }
    }
}

/// For every item whose key an earlier item already had: (its index, the
/// first item's span). One pass over a list, for every "given twice" check.
pub(crate) fn repeats<K: Eq + std::hash::Hash>(
    items: impl IntoIterator<Item = (K, Span)>,
) -> Vec<(usize, Span)> {
    let mut first: rustc_hash::FxHashMap<K, Span> = rustc_hash::FxHashMap::default();
    let mut out = Vec::new();
    for (i, (key, span)) in items.into_iter().enumerate() {
        match first.get(&key) {
            Some(&earlier) => out.push((i, earlier)),
            None => {
                first.insert(key, span);
            }
        }
    }
    out
}

/// A channel declaration's address must be text and its consent a condition;
/// both see only the profile, segments and functions.
fn check_channels(cx: &mut Checker) {
    let decls: Vec<&ast::ChannelDecl> = cx
        .scope
        .channels
        .names()
        .filter_map(|n| cx.scope.channels.get(n).and_then(|c| c.decl))
        .collect();
    let env = Env::profile_only();
    for c in decls {
        if let Some(address) = &c.address {
            cx.expect_type(&env, address, &Type::String, "a channel address");
        }
        if let Some(consent) = &c.consent {
            cx.expect_condition(&env, consent, "a channel's consent");
        }
    }
}

fn check_policy(cx: &mut Checker, policy: &ast::PolicyDecl) {
    for cap in &policy.caps {
        journey::check_cap(cx, cap);
    }
    if let [first, rest @ ..] = policy.quiet_hours.as_slice() {
        for again in rest {
            cx.report(Problem::DuplicateClause {
                span: again.span,
                first: first.span,
                clause: problem::Clause::PolicyQuietHours,
            });
        }
    }
    for qh in &policy.quiet_hours {
        journey::check_quiet_hours(cx, &Env::profile_only(), qh);
    }
}

/// The `attribution` item: one `conversion` and one `window` (E0421,
/// E0403), at most one `half life`; `where` is a condition and `value` a
/// number over the conversion event (`event.`) and the profile.
fn check_attribution(cx: &mut Checker, a: &ast::AttributionDecl) {
    let parts: [(&'static str, Vec<Span>); 3] = [
        ("conversion", a.conversions.iter().map(|c| c.span).collect()),
        ("window", a.windows.iter().map(|w| w.span).collect()),
        ("half life", a.half_lives.iter().map(|h| h.span).collect()),
    ];
    for (word, spans) in parts {
        if let [first, rest @ ..] = spans.as_slice() {
            for again in rest {
                cx.report(Problem::DuplicateClause {
                    span: *again,
                    first: *first,
                    clause: problem::Clause::Attribution(word),
                });
            }
        } else if word != "half life" {
            cx.report(Problem::AttributionMissing {
                span: a.keyword,
                part: word,
            });
        }
    }
    for c in &a.conversions {
        let fields = cx.resolve_event(&c.event);
        let env = Env {
            event: expr::EventEnv::Where {
                name: &c.event.name,
                fields,
            },
            trigger: expr::TriggerEnv::NotInJourney,
            handles: None,
        };
        if let Some(condition) = &c.condition {
            cx.expect_condition(&env, condition, "a conversion's `where`");
        }
        if let Some(value) = &c.value {
            cx.expect_type(&env, value, &Type::Number, "a conversion's `value`");
        }
    }
}

#[cfg(test)]
mod tests;
