//! Rendering diagnostics for people (miette's graphical report) and for
//! machines (the JSON shape of LANGUAGE.md §7). GitHub annotations and SARIF
//! live beside these in `formats`.

use std::cell::OnceCell;
use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};
use serde::Serialize;

use super::escape;
use super::excerpt::Excerpt;
use super::{Diagnostic, Severity};
use crate::source::{FileId, SourceMap};

/// How to draw the human report.
#[derive(Clone, Copy, Debug)]
pub struct HumanOptions {
    pub color: bool,
    pub width: usize,
}

impl HumanOptions {
    /// No colour, fixed width, no links: identical on every machine (tests).
    pub fn plain() -> HumanOptions {
        HumanOptions {
            color: false,
            width: 100,
        }
    }
}

/// Renders every diagnostic as miette's graphical report, one after another.
pub fn human(diagnostics: &[Diagnostic], sources: &SourceMap, options: HumanOptions) -> String {
    let renderer = Human::new(sources, options);
    let mut out = String::new();
    for d in diagnostics {
        renderer.render(d, &mut out);
    }
    out
}

/// The human report of the diagnostics of one set of sources: miette's
/// handler and, per file, the [`Excerpt`] it reads, built on first use, so
/// that each diagnostic costs work in proportion to what it shows.
pub struct Human<'a> {
    sources: &'a SourceMap,
    handler: GraphicalReportHandler,
    excerpts: Vec<OnceCell<Arc<Excerpt>>>,
}

impl<'a> Human<'a> {
    pub fn new(sources: &'a SourceMap, options: HumanOptions) -> Human<'a> {
        let theme = if options.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(options.width)
            .with_links(false)
            .with_urls(false);
        Human {
            sources,
            handler,
            excerpts: sources.files().iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// Appends the report of `d` to `out`.
    pub fn render(&self, d: &Diagnostic, out: &mut String) {
        let report = Report::new(d, |file| self.excerpt(file));
        // Writing into a String cannot fail; a miette rendering failure falls
        // back to the plain one-line form rather than losing the diagnostic.
        if self.handler.render_report(out, &report).is_err() {
            out.push_str(&one_line(d, self.sources));
            out.push('\n');
            return;
        }
        // A label in another file follows as a note of its own: no code and
        // no severity of its own (it is part of the diagnostic above).
        for note in &report.notes {
            let _ = self.handler.render_report(out, note);
        }
    }

    fn excerpt(&self, file: FileId) -> Arc<Excerpt> {
        self.excerpts[file.0 as usize]
            .get_or_init(|| Arc::new(Excerpt::new(self.sources.get(file))))
            .clone()
    }
}

/// `file:line:col: error[E0101]: message` — the compact form, escaped.
pub fn one_line(d: &Diagnostic, sources: &SourceMap) -> String {
    let file = sources.get(d.span.file);
    let (line, col) = file.line_col(d.span.start);
    format!(
        "{}:{line}:{col}: {}[{}]: {}",
        escape::text(&file.name),
        severity_word(d.severity),
        d.code.id,
        escape::text(&d.message)
    )
}

pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The closing line of a human report: "2 errors, 1 warning".
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// The last line of `journey check` for people: "checked 12 files: no
/// problems", or "checked 12 files: 1 error, 0 warnings".
pub fn checked(files: usize, errors: usize, warnings: usize) -> String {
    let files = if files == 1 {
        "1 file".to_string()
    } else {
        format!("{files} files")
    };
    if errors + warnings == 0 {
        format!("checked {files}: no problems")
    } else {
        format!("checked {files}: {}", summary(errors, warnings))
    }
}

/// The most diagnostics the human report draws. A hundred fill many
/// screens already, and past the first few the rest are usually one
/// mistake repeated; the JSON, GitHub and SARIF formats list every one.
pub const HUMAN_LIMIT: usize = 100;

/// The line that stands for the diagnostics past [`HUMAN_LIMIT`]:
/// "... and 15900 more not shown (15888 errors, 12 warnings); ...".
pub fn not_shown(rest: &[Diagnostic]) -> String {
    let errors = rest.iter().filter(|d| d.is_error()).count();
    format!(
        "... and {} more not shown ({}); `journey check --format json` lists them all",
        rest.len(),
        summary(errors, rest.len() - errors)
    )
}

/// One diagnostic in the §7 JSON shape, with 1-based lines and columns.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub code: &'static str,
    pub message: &'a str,
    pub help: Option<&'a str>,
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    errors: usize,
    warnings: usize,
}

impl<'a> JsonDiagnostic<'a> {
    pub fn new(d: &'a Diagnostic, sources: &'a SourceMap) -> JsonDiagnostic<'a> {
        let file = sources.get(d.span.file);
        let (line, column) = file.line_col(d.span.start);
        let (end_line, end_column) = file.line_col(d.span.end);
        JsonDiagnostic {
            severity: d.severity,
            code: d.code.id,
            message: &d.message,
            help: d.help.as_deref(),
            file: &file.name,
            line,
            column,
            end_line,
            end_column,
        }
    }
}

/// `{"diagnostics":[...],"errors":N,"warnings":N}` on one line.
pub fn json(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = JsonReport {
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic::new(d, sources))
            .collect(),
        errors,
        warnings: diagnostics.len() - errors,
    };
    escape::json(&report)
}

/// A [`Diagnostic`] dressed for miette: its own file as source code; labels
/// in the same file are drawn inline, those in other files as notes drawn
/// after it ([`Human::render`]).
/// Text from the user is escaped ([`escape`]).
struct Report {
    message: String,
    /// `None` for a note.
    code: Option<&'static str>,
    /// `None` for a note (miette's "advice").
    severity: Option<Severity>,
    help: Option<String>,
    source: Arc<Excerpt>,
    labels: Vec<LabeledSpan>,
    notes: Vec<Report>,
}

impl Report {
    fn new(d: &Diagnostic, excerpt: impl Fn(FileId) -> Arc<Excerpt>) -> Report {
        let source = excerpt(d.span.file);
        let label = (!d.label.is_empty()).then(|| escaped(&d.label));
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            label,
            source.span(d.span),
        )];
        let mut notes = Vec::new();
        for (span, label) in &d.related {
            if span.file == d.span.file {
                labels.push(LabeledSpan::new_with_span(
                    Some(escaped(label)),
                    source.span(*span),
                ));
            } else {
                let other = excerpt(span.file);
                notes.push(Report {
                    message: format!("note: {}", escaped(label)),
                    code: None,
                    severity: None,
                    help: None,
                    labels: vec![LabeledSpan::new_primary_with_span(None, other.span(*span))],
                    source: other,
                    notes: Vec::new(),
                });
            }
        }
        Report {
            message: escaped(&d.message),
            code: Some(d.code.id),
            severity: Some(d.severity),
            help: d.help.as_deref().map(escaped),
            source,
            labels,
            notes,
        }
    }
}

fn escaped(s: &str) -> String {
    escape::text(s).into_owned()
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Some(Severity::Error) => miette::Severity::Error,
            Some(Severity::Warning) => miette::Severity::Warning,
            None => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::codes;

    fn sample() -> (SourceMap, Vec<Diagnostic>) {
        let mut sources = SourceMap::new();
        let id = sources.add(
            "journeys/cart.journey",
            "journey cart {\n  trigger cart_abandonded\n}\n",
        );
        let span = sources.get(id).span(25, 40);
        let d = Diagnostic::new(
            codes::UNKNOWN_EVENT,
            span,
            "unknown event `cart_abandonded`",
        )
        .with_label("no event of this name is declared")
        .with_help("did you mean `cart_abandoned`?");
        (sources, vec![d])
    }

    #[test]
    fn human_report_names_file_line_code_and_help() {
        let (sources, ds) = sample();
        let out = human(&ds, &sources, HumanOptions::plain());
        assert!(out.contains("E0206"), "{out}");
        assert!(out.contains("journeys/cart.journey:2:11"), "{out}");
        assert!(out.contains("did you mean `cart_abandoned`?"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour codes: {out}");
    }

    #[test]
    fn a_label_in_another_file_is_a_note_of_the_same_diagnostic() {
        let mut sources = SourceMap::new();
        let templates = sources.add(
            "templates.journey",
            "template welcome_email {\n  channel email\n  body \"Hi\"\n}\n",
        );
        let journeys = sources.add(
            "journeys.journey",
            "journey welcome {\n  trigger signed_up\n  send sms welcome_email\n}\n",
        );
        let d = Diagnostic::new(
            codes::TEMPLATE_CHANNEL_MISMATCH,
            sources.get(journeys).span(49, 62),
            "template `welcome_email` is made for `email`, but this sends it by `sms`",
        )
        .with_label("made for `email`")
        .with_related(
            sources.get(templates).span(35, 40),
            "its channel is declared here",
        );
        let out = human(&[d], &sources, HumanOptions::plain());
        assert_eq!(out.matches("E0408").count(), 1, "{out}");
        assert!(!out.contains("Warning"), "{out}");
        assert!(!out.contains("Advice"), "{out}");
        assert!(out.contains("note: its channel is declared here"), "{out}");
        assert!(out.contains("templates.journey:2:11"), "{out}");
    }

    #[test]
    fn checked_line_counts_files_and_problems() {
        assert_eq!(checked(12, 0, 0), "checked 12 files: no problems");
        assert_eq!(checked(1, 0, 1), "checked 1 file: 0 errors, 1 warning");
        assert_eq!(checked(3, 2, 0), "checked 3 files: 2 errors, 0 warnings");
    }

    #[test]
    fn json_has_one_based_positions() {
        let (sources, ds) = sample();
        let v: serde_json::Value = serde_json::from_str(&json(&ds, &sources)).unwrap();
        let d = &v["diagnostics"][0];
        assert_eq!(d["line"], 2);
        assert_eq!(d["column"], 11);
        assert_eq!(d["end_column"], 26);
        assert_eq!(d["severity"], "error");
        assert_eq!(v["errors"], 1);
        assert_eq!(v["warnings"], 0);
    }
}
