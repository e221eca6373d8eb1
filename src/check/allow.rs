//! `allow <code>[, <code>]...` (LANGUAGE.md §4.4, "Silencing one warning"):
//! a top-level item silences those warnings in the whole project, a journey
//! header clause inside that journey. Only warnings can be silenced: an
//! `allow` that names an error, or no code at all, is itself an error
//! (E0215). The silencing is applied once every phase has spoken
//! ([`silence`], called by the pipeline), so the compiler's W0004 is
//! silenced like the checker's warnings.

use super::Checker;
use super::problem::Problem;
use crate::diagnostic::codes::{self, Code};
use crate::diagnostic::{Diagnostic, Severity, did_you_mean};
use crate::project::Project;
use crate::source::Span;
use crate::syntax::ast::{self, HeaderKind};

/// Every `allow` of the project with the span it covers: `None` for the
/// whole project, else the journey's.
fn allows(project: &Project) -> impl Iterator<Item = (&ast::Allow, Option<Span>)> {
    project.items().flat_map(|item| {
        let found: Vec<(&ast::Allow, Option<Span>)> = match item {
            ast::Item::Allow(a) => vec![(a, None)],
            ast::Item::Journey(j) => j
                .headers
                .iter()
                .filter_map(|h| match &h.kind {
                    HeaderKind::Allow(a) => Some((a, Some(j.span))),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        found
    })
}

/// E0215 for each code of an `allow` that is not a warning's.
pub(crate) fn check(cx: &mut Checker, project: &Project) {
    for (allow, _) in allows(project) {
        for code in &allow.codes {
            let error = match codes::lookup(&code.name) {
                Some(Code {
                    severity: Severity::Warning,
                    ..
                }) => continue,
                Some(c) => Some(c.title),
                None => None,
            };
            let warnings = codes::ALL
                .iter()
                .filter(|c| c.severity == Severity::Warning)
                .map(|c| c.id);
            cx.report(Problem::AllowNotAWarning {
                span: code.span,
                code: code.name.clone(),
                error,
                suggestion: error
                    .is_none()
                    .then(|| did_you_mean(&code.name, warnings))
                    .flatten(),
            });
        }
    }
}

/// Drops the warnings an `allow` silences: its code, inside its journey
/// (or anywhere, for a top-level `allow`). Errors are never dropped.
pub fn silence(project: &Project, diagnostics: &mut Vec<Diagnostic>) {
    let allowed: Vec<(&str, Option<Span>)> = allows(project)
        .flat_map(|(a, within)| a.codes.iter().map(move |c| (c.name.as_str(), within)))
        .collect();
    if allowed.is_empty() {
        return;
    }
    diagnostics.retain(|d| {
        d.severity != Severity::Warning
            || !allowed.iter().any(|(code, within)| {
                d.code.id.eq_ignore_ascii_case(code)
                    && within.is_none_or(|j| {
                        j.file == d.span.file && j.start <= d.span.start && d.span.end <= j.end
                    })
            })
    });
}
