//! Diagnostics: what every phase reports to the user, with a stable code,
//! a primary span, a message, optional labels and help. Printing them for
//! people and machines (human, one line, JSON, GitHub, SARIF) is in
//! [`mod@print`] and [`formats`]; the type itself knows nothing of output.

pub mod codes;
mod escape;
mod excerpt;
pub mod formats;
pub mod print;

use crate::diagnostic::codes::Code;
use crate::source::{SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the user's journeys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Lowercase, no final period, user input in backticks.
    pub message: String,
    /// The primary location.
    pub span: Span,
    /// Text shown under the primary span; empty for none.
    pub label: String,
    /// Secondary locations with their labels ("first declared here").
    pub related: Vec<(Span, String)>,
    /// A second sentence: how to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            span,
            label: String::new(),
            related: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// All diagnostics of a run, sorted by file, position and code so output
/// never depends on the order in which checks ran.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(ds);
    }

    pub fn errors(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.items.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Sorts and removes exact duplicates (two checks reaching the same fact).
    pub fn sort(&mut self, _sources: &SourceMap) {
        self.items.sort_by(|a, b| {
            (a.span.file, a.span.start, a.span.end, a.code.id, &a.message).cmp(&(
                b.span.file,
                b.span.start,
                b.span.end,
                b.code.id,
                &b.message,
            ))
        });
        self.items.dedup();
    }

    /// Turns every warning into an error (`--deny-warnings`).
    pub fn deny_warnings(&mut self) {
        for d in &mut self.items {
            d.severity = Severity::Error;
        }
    }
}

/// "did you mean `x`?" for any kind of name: a case-insensitive exact match
/// first, then the closest name within an edit distance of a third of its
/// length.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    let limit = (name.chars().count() / 3).max(1);
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        if candidate.eq_ignore_ascii_case(name) {
            return Some(format!("did you mean `{candidate}`?"));
        }
        let d = edit_distance(name, candidate);
        if d <= limit && best.is_none_or(|(bd, bc)| (d, candidate) < (bd, bc)) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

/// The name a [`did_you_mean`] help suggests (`total` of "did you mean
/// `total`?"): an editor offers it as a quick fix.
pub fn suggested_name(help: &str) -> Option<&str> {
    help.strip_prefix("did you mean `")?.strip_suffix("`?")
}

/// Edit distance over characters, two adjacent letters swapped counting as
/// one edit (`aks` is one edit from `ask`, as `sned` from `send`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for a swap), the previous, the current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["order_completed", "cart_abandoned", "signup"];
        assert_eq!(
            did_you_mean("order_complete", names).as_deref(),
            Some("did you mean `order_completed`?")
        );
        assert_eq!(
            did_you_mean("SIGNUP", names).as_deref(),
            Some("did you mean `signup`?")
        );
        assert_eq!(did_you_mean("refund", names), None);
    }

    #[test]
    fn the_suggested_name_is_read_back_from_the_help() {
        let help = did_you_mean("totl", ["total"]).unwrap();
        assert_eq!(suggested_name(&help), Some("total"));
        assert_eq!(suggested_name("declare it with `event x { }`"), None);
    }

    #[test]
    fn two_letters_swapped_are_one_edit() {
        assert_eq!(edit_distance("aks", "ask"), 1);
        assert_eq!(edit_distance("sned", "send"), 1);
        assert_eq!(edit_distance("defualt", "default"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("aks", ["ask", "reminder"]).as_deref(),
            Some("did you mean `ask`?")
        );
    }
}
