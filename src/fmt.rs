//! `journey fmt`: one canonical layout for a `.journey` file.
//!
//! The layout is printed from the syntax tree ([`crate::syntax::ast`]), never
//! from the text, so two files that differ only in spacing format alike:
//! two spaces of indentation, one clause per line, one blank line between
//! top-level items (blank lines inside an item kept, at most one), schema
//! fields one per line with their types aligned, and anything that does not
//! fit in [`WIDTH`] columns broken at its `and`s, `or`s, send alternatives
//! and `with` entries. Literals keep the spelling they were written with
//! (`48h` stays `48h`), operators get single spaces, parentheses only where
//! precedence needs them.
//!
//! Comments are not in the tree: the parser hands them over with their spans
//! ([`crate::syntax::ast::File::comments`]) and the printer puts each one back before the
//! first line that starts after it, or at the end of the line it followed.
//! A comment written inside an expression that is printed on one line goes
//! on its own line just before it.
//!
//! A file with syntax errors is not formatted. After formatting, the result
//! is parsed again and must give the same tree (spans aside) and the same
//! comments; if it ever did not, the file is left as it is and the command
//! says so, rather than change what a journey does.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceFile, Span};
use crate::syntax::ast::*;
use crate::syntax::{self};
use crate::{Severity, value};

/// The column a formatted line should not pass.
pub const WIDTH: usize = 100;

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The file has syntax errors (the parser's diagnostics).
    Syntax(Vec<Diagnostic>),
    /// The formatted text would not parse to the same tree: a bug of the
    /// formatter, reported instead of writing the file.
    Unstable,
}

/// The canonical text of `file`.
pub fn format_file(file: &SourceFile) -> Result<String, FormatError> {
    let (ast, diags) = syntax::parse(file);
    let errors: Vec<Diagnostic> = diags
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(FormatError::Syntax(errors));
    }
    let out = print(&file.text, &ast);
    // The safety net: same tree, same comments.
    let again = SourceFile::new(FileId(file.id.0), file.name.clone(), out.as_str());
    let (reparsed, rediags) = syntax::parse(&again);
    let same = rediags.iter().all(|d| d.severity != Severity::Error)
        && shape(&reparsed) == shape(&ast)
        && comments(&reparsed) == comments(&ast);
    if same {
        Ok(out)
    } else {
        Err(FormatError::Unstable)
    }
}

/// The canonical text of `text` (a file named `name`), for tests and
/// editors.
pub fn format_text(name: &str, text: &str) -> Result<String, FormatError> {
    format_file(&SourceFile::new(FileId(0), name, text))
}

/// The tree's debug text without its spans.
fn shape(file: &File) -> String {
    let text = format!("{:?}", file.items);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("Span { file: ") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest.find(" }") {
            Some(end) => rest = &rest[end + 2..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

fn comments(file: &File) -> Vec<&str> {
    file.comments.iter().map(|c| c.text.trim_end()).collect()
}

// ------------------------------------------------------------------ lines

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Code,
    Comment,
    Blank,
}

#[derive(Debug)]
struct Line {
    kind: Kind,
    indent: usize,
    text: String,
    /// A `//` comment at the end of the line.
    trailing: Option<String>,
    /// Ends with `{`: no blank line follows it.
    opens: bool,
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// The next comment not printed yet.
    next: usize,
    lines: Vec<Line>,
    indent: usize,
    /// Where the last printed thing ends in the source.
    last_end: usize,
}

fn print(src: &str, file: &File) -> String {
    let mut p = Printer {
        src,
        comments: &file.comments,
        next: 0,
        lines: Vec::new(),
        indent: 0,
        last_end: 0,
    };
    // Items on one line each (events, segments) may stand together, as
    // written; an item of several lines is set apart by one blank line.
    let mut previous_tall = false;
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            // What ends the previous line stays on it.
            p.flush_trailing(item.span().start as usize);
        }
        let mark = p.lines.len();
        p.item(item);
        let code = p.lines[mark..]
            .iter()
            .filter(|l| l.kind == Kind::Code)
            .count();
        let tall = code > 1;
        if i > 0 && (tall || previous_tall) && p.lines[mark - 1].kind != Kind::Blank {
            let blank = p.lines[mark].kind == Kind::Blank;
            if !blank {
                p.lines.insert(
                    mark,
                    Line {
                        kind: Kind::Blank,
                        indent: 0,
                        text: String::new(),
                        trailing: None,
                        opens: false,
                    },
                );
            }
        }
        previous_tall = tall;
    }
    p.flush(src.len());
    p.render()
}

impl Printer<'_> {
    fn slice(&self, span: Span) -> &str {
        &self.src[span.range()]
    }

    fn slice_of(&self, start: usize, end: usize) -> &str {
        &self.src[start..end]
    }

    /// Where the keyword before `pos` starts (`subject` of `subject "..."`).
    fn word_before(&self, pos: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = pos;
        while i > 0 && bytes[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        while i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            i -= 1;
        }
        i
    }

    /// Whether a comment starts inside `start..end`.
    fn has_comment(&self, start: usize, end: usize) -> bool {
        self.comments[self.next..]
            .iter()
            .any(|c| (c.span.start as usize) >= start && (c.span.start as usize) < end)
    }

    fn newlines(&self, from: usize, to: usize) -> usize {
        if from >= to {
            return 0;
        }
        self.src[from..to].matches('\n').count()
    }

    fn blank(&mut self) {
        if let Some(last) = self.lines.last()
            && last.kind != Kind::Blank
            && !last.opens
        {
            self.lines.push(Line {
                kind: Kind::Blank,
                indent: 0,
                text: String::new(),
                trailing: None,
                opens: false,
            });
        }
    }

    /// A blank line where the source has one between `from` and `to`.
    fn blank_if(&mut self, from: usize, to: usize) {
        if !self.lines.is_empty() && self.newlines(from, to) >= 2 {
            self.blank();
        }
    }

    /// The comment that ends the last printed line, if it is next.
    fn flush_trailing(&mut self, upto: usize) {
        if let Some(c) = self.comments.get(self.next)
            && (c.span.start as usize) < upto
            && self.is_trailing(c)
        {
            let text = c.text.trim_end().to_owned();
            if let Some(last) = self.lines.last_mut() {
                last.trailing = Some(text);
            }
            self.last_end = c.span.end as usize;
            self.next += 1;
        }
    }

    fn is_trailing(&self, c: &Comment) -> bool {
        let start = c.span.start as usize;
        start >= self.last_end
            && self.newlines(self.last_end, start) == 0
            && self
                .lines
                .last()
                .is_some_and(|l| l.kind == Kind::Code && l.trailing.is_none())
    }

    /// Prints every comment that starts before `upto`.
    fn flush(&mut self, upto: usize) {
        while let Some(c) = self.comments.get(self.next) {
            let start = c.span.start as usize;
            if start >= upto {
                break;
            }
            if self.is_trailing(c) {
                self.flush_trailing(upto);
                continue;
            }
            self.blank_if(self.last_end, start);
            self.lines.push(Line {
                kind: Kind::Comment,
                indent: self.indent,
                text: c.text.trim_end().to_owned(),
                trailing: None,
                opens: false,
            });
            self.last_end = self.last_end.max(c.span.end as usize);
            self.next += 1;
        }
    }

    /// A line of code for the source `start..end`, `extra` levels deeper
    /// than the block; a continuation line never has a blank line before
    /// it. Comments inside `start..end` go just before it.
    fn line(&mut self, start: usize, end: usize, extra: usize, text: String, continuation: bool) {
        self.flush(start);
        if !continuation {
            self.blank_if(self.last_end, start);
        }
        // Comments inside the line's source.
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start as usize >= end {
                break;
            }
            self.lines.push(Line {
                kind: Kind::Comment,
                indent: self.indent + extra,
                text: c.text.trim_end().to_owned(),
                trailing: None,
                opens: false,
            });
            self.next += 1;
        }
        let opens = text.ends_with('{');
        self.lines.push(Line {
            kind: Kind::Code,
            indent: self.indent + extra,
            text,
            trailing: None,
            opens,
        });
        self.last_end = self.last_end.max(end);
    }

    /// The `}` ending at `end` (exclusive): the comments before it stay
    /// inside the block.
    fn close(&mut self, end: usize, text: &str) {
        let start = end.saturating_sub(1);
        self.flush(start);
        self.indent -= 1;
        self.lines.push(Line {
            kind: Kind::Code,
            indent: self.indent,
            text: text.to_owned(),
            trailing: None,
            opens: text.ends_with('{'),
        });
        self.last_end = self.last_end.max(end);
    }

    fn fits(&self, extra: usize, text: &str) -> bool {
        2 * (self.indent + extra) + text.chars().count() <= WIDTH
    }

    fn render(mut self) -> String {
        while self.lines.last().is_some_and(|l| l.kind == Kind::Blank) {
            self.lines.pop();
        }
        // Trailing comments of consecutive lines line up.
        let mut columns = vec![0; self.lines.len()];
        let mut i = 0;
        while i < self.lines.len() {
            if self.lines[i].trailing.is_none() {
                i += 1;
                continue;
            }
            let mut j = i;
            let mut col = 0;
            while j < self.lines.len()
                && self.lines[j].trailing.is_some()
                && self.lines[j].indent == self.lines[i].indent
            {
                col = col.max(self.lines[j].text.chars().count());
                j += 1;
            }
            for c in &mut columns[i..j] {
                *c = col;
            }
            i = j;
        }
        let mut out = String::new();
        for (line, col) in self.lines.iter().zip(columns) {
            if line.kind != Kind::Blank {
                for _ in 0..line.indent {
                    out.push_str("  ");
                }
                out.push_str(&line.text);
            }
            if let Some(comment) = &line.trailing {
                let pad = col - line.text.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(comment);
            }
            out.push('\n');
        }
        out
    }
}

// ------------------------------------------------------------------ items

impl Printer<'_> {
    fn item(&mut self, item: &Item) {
        match item {
            Item::Event(e) => {
                let head = format!("event {}", self.slice(e.name.span));
                self.schema(e.span, e.name.span.end as usize, head, &e.fields);
            }
            Item::Profile(p) => self.schema(
                p.span,
                p.keyword.end as usize,
                "profile".to_owned(),
                &p.fields,
            ),
            Item::Channel(c) => {
                let start = c.span.start as usize;
                self.line(
                    start,
                    c.name.span.end as usize,
                    0,
                    format!("channel {} {{", c.name.name),
                    false,
                );
                self.indent += 1;
                let mut parts: Vec<(&str, &Expr)> = Vec::new();
                if let Some(a) = &c.address {
                    parts.push(("address", a));
                }
                if let Some(k) = &c.consent {
                    parts.push(("consent", k));
                }
                parts.sort_by_key(|(_, e)| e.span.start);
                for (word, e) in parts {
                    let start = self.word_before(e.span.start as usize);
                    let range = (start, e.span.end as usize);
                    self.clause(range, format!("{word} "), e, String::new(), false);
                }
                self.close(c.span.end as usize, "}");
            }
            Item::Template(t) => {
                let start = t.span.start as usize;
                self.line(
                    start,
                    t.name.span.end as usize,
                    0,
                    format!("template {} {{", t.name.name),
                    false,
                );
                self.indent += 1;
                let mut parts: Vec<(Span, String)> =
                    vec![(t.channel.span, format!("channel {}", t.channel.name))];
                for (word, s) in [
                    ("subject", &t.subject),
                    ("body", &t.body),
                    ("html", &t.html),
                ] {
                    if let Some(s) = s {
                        parts.push((s.span, format!("{word} {}", self.slice(s.span))));
                    }
                }
                parts.sort_by_key(|(span, _)| span.start);
                for (span, text) in parts {
                    let start = self.word_before(span.start as usize);
                    self.line(start, span.end as usize, 0, text, false);
                }
                self.close(t.span.end as usize, "}");
            }
            Item::Attribution(a) => {
                let start = a.span.start as usize;
                self.line(
                    start,
                    a.keyword.end as usize,
                    0,
                    "attribution {".to_owned(),
                    false,
                );
                self.indent += 1;
                // Each part as written, one a line: `conversion ...` (its
                // `where` and `value`), `window D`, `half life D`.
                let mut parts: Vec<(usize, usize)> = a
                    .conversions
                    .iter()
                    .map(|c| (c.span.start as usize, c.span.end as usize))
                    .collect();
                for w in &a.windows {
                    parts.push((self.word_before(w.span.start as usize), w.span.end as usize));
                }
                for h in &a.half_lives {
                    let life = self.word_before(h.span.start as usize);
                    parts.push((self.word_before(life), h.span.end as usize));
                }
                parts.sort_unstable();
                for (from, to) in parts {
                    let text = self.slice_of(from, to).to_owned();
                    self.line(from, to, 0, text, false);
                }
                self.close(a.span.end as usize, "}");
            }
            Item::Segment(s) => {
                let prefix = format!("segment {} = ", s.name.name);
                self.clause(
                    (s.span.start as usize, s.span.end as usize),
                    prefix,
                    &s.expr,
                    String::new(),
                    false,
                );
            }
            Item::Policy(p) => {
                let start = p.span.start as usize;
                self.line(
                    start,
                    p.keyword.end as usize,
                    0,
                    "policy {".to_owned(),
                    false,
                );
                self.indent += 1;
                let mut parts: Vec<(Span, Header)> = Vec::new();
                for cap in &p.caps {
                    parts.push((cap.span, header(HeaderKind::Cap(cap.clone()), cap.span)));
                }
                for q in &p.quiet_hours {
                    parts.push((q.span, header(HeaderKind::QuietHours(q.clone()), q.span)));
                }
                parts.sort_by_key(|(span, _)| span.start);
                for (_, h) in parts {
                    self.header(&h);
                }
                self.close(p.span.end as usize, "}");
            }
            Item::Allow(a) => {
                let text = self.allow(a);
                self.line(a.span.start as usize, a.span.end as usize, 0, text, false);
            }
            Item::Journey(j) => self.journey(j),
        }
    }

    /// `event x { ... }` / `profile { ... }`: on one line when it fits and
    /// holds no comment, else one field per line.
    fn schema(&mut self, span: Span, head_end: usize, head: String, fields: &[FieldDecl]) {
        let (start, end) = (span.start as usize, span.end as usize);
        let inline = format!("{head} {}", self.fields_inline(fields));
        if !self.has_comment(start, end) && self.fits(0, &inline) {
            self.line(start, end, 0, inline, false);
            return;
        }
        self.line(start, head_end, 0, format!("{head} {{"), false);
        self.indent += 1;
        self.fields_block(fields);
        self.close(end, "}");
    }

    fn fields_inline(&self, fields: &[FieldDecl]) -> String {
        if fields.is_empty() {
            return "{}".to_owned();
        }
        let list: Vec<String> = fields
            .iter()
            .map(|f| format!("{}: {}", f.name.name, self.ty_inline(&f.ty, f.optional)))
            .collect();
        format!("{{ {} }}", list.join(", "))
    }

    fn ty_inline(&self, ty: &TypeExpr, optional: bool) -> String {
        let q = if optional { "?" } else { "" };
        let text = match &ty.kind {
            TypeKind::String => "string".to_owned(),
            TypeKind::Number => "number".to_owned(),
            TypeKind::Bool => "bool".to_owned(),
            TypeKind::Timestamp => "timestamp".to_owned(),
            TypeKind::Duration => "duration".to_owned(),
            TypeKind::List(inner) => format!("list<{}>", self.ty_inline(inner, false)),
            TypeKind::Object(fields) => self.fields_inline(fields),
        };
        format!("{text}{q}")
    }

    /// One field per line, the types in one column.
    fn fields_block(&mut self, fields: &[FieldDecl]) {
        let width = fields
            .iter()
            .map(|f| f.name.name.chars().count())
            .max()
            .unwrap_or(0);
        for f in fields {
            let (start, end) = (f.span.start as usize, f.span.end as usize);
            let pad = " ".repeat(width - f.name.name.chars().count());
            let name = format!("{}:{pad} ", f.name.name);
            match &f.ty.kind {
                TypeKind::Object(inner) => {
                    let inline = format!("{name}{}", self.ty_inline(&f.ty, f.optional));
                    if !self.has_comment(start, end) && self.fits(0, &inline) {
                        self.line(start, end, 0, inline, false);
                    } else {
                        let open = f.ty.span.start as usize + 1;
                        self.line(start, open, 0, format!("{name}{{"), false);
                        self.indent += 1;
                        self.fields_block(inner);
                        let q = if f.optional { "}?" } else { "}" };
                        self.close(f.ty.span.end as usize, q);
                    }
                }
                _ => {
                    let text = format!("{name}{}", self.ty_inline(&f.ty, f.optional));
                    self.line(start, end, 0, text, false);
                }
            }
        }
    }

    fn allow(&self, a: &Allow) -> String {
        let codes: Vec<&str> = a.codes.iter().map(|c| c.name.as_str()).collect();
        format!("allow {}", codes.join(", "))
    }

    fn journey(&mut self, j: &JourneyDecl) {
        let start = j.span.start as usize;
        self.line(
            start,
            j.name.span.end as usize,
            0,
            format!("journey {} {{", j.name.name),
            false,
        );
        self.indent += 1;
        let mut headers = j.headers.iter().peekable();
        let mut steps = j.steps.iter().peekable();
        loop {
            let header_first = match (headers.peek(), steps.peek()) {
                (Some(h), Some(s)) => h.span.start < s.span.start,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if header_first {
                if let Some(h) = headers.next() {
                    self.header(h);
                }
            } else if let Some(s) = steps.next() {
                self.step(s);
            }
        }
        self.close(j.span.end as usize, "}");
    }
}

fn header(kind: HeaderKind, span: Span) -> Header {
    Header {
        kind,
        keyword: span,
        span,
    }
}

// ------------------------------------------------------------------ headers

impl Printer<'_> {
    fn header(&mut self, h: &Header) {
        let (start, end) = (h.span.start as usize, h.span.end as usize);
        let text = match &h.kind {
            HeaderKind::Name(s) => format!("name {}", self.slice(s.span)),
            HeaderKind::Per(e) => format!("per {}", self.slice(e.span)),
            HeaderKind::Trigger { event, condition } => {
                let head = format!("trigger {}", self.slice(event.span));
                return self.maybe_where((start, end), head, condition.as_ref(), String::new());
            }
            HeaderKind::TriggerAbsence { event, silence } => {
                let what = match event {
                    EventPattern::Any(_) => "any",
                    EventPattern::Named(e) => self.slice(e.span),
                };
                format!("trigger no {what} for {}", self.slice(silence.span))
            }
            HeaderKind::TriggerEvery { days, at } => {
                let days = if days.is_empty() {
                    "day".to_owned()
                } else {
                    self.days(days)
                };
                format!("trigger every {days} {}", self.at(at))
            }
            HeaderKind::TriggerDate { kind, path, at } => {
                let path = self.expr(path);
                let mut text = match kind {
                    DateTrigger::On => format!("trigger on {path}"),
                    DateTrigger::Before(d) => {
                        format!("trigger {} before {path}", self.slice(d.span))
                    }
                    DateTrigger::After(d) => format!("trigger {} after {path}", self.slice(d.span)),
                    DateTrigger::Anniversary => format!("trigger anniversary of {path}"),
                };
                if let Some(at) = at {
                    text.push(' ');
                    text.push_str(&self.at(at));
                }
                text
            }
            HeaderKind::TriggerSegment { enters, segment } => {
                let word = if *enters { "enters" } else { "leaves" };
                format!("trigger {word} {}", self.expr(segment))
            }
            HeaderKind::Audience(e) => {
                return self.clause(
                    (start, end),
                    "audience ".to_owned(),
                    e,
                    String::new(),
                    false,
                );
            }
            HeaderKind::Reentry(r) => match r {
                Reentry::Never => "reentry never".to_owned(),
                Reentry::Always => "reentry always".to_owned(),
                Reentry::After(d) => format!("reentry after {}", self.slice(d.span)),
            },
            HeaderKind::ExitOn { event, condition } => {
                let head = format!("exit on {}", self.slice(event.span));
                return self.maybe_where((start, end), head, condition.as_ref(), String::new());
            }
            HeaderKind::ExitIf(e) => {
                return self.clause((start, end), "exit if ".to_owned(), e, String::new(), false);
            }
            HeaderKind::Goal {
                event,
                condition,
                within,
            } => {
                let head = format!("goal {}", self.slice(event.span));
                let tail =
                    within.map_or(String::new(), |d| format!(" within {}", self.slice(d.span)));
                return self.maybe_where((start, end), head, condition.as_ref(), tail);
            }
            HeaderKind::Holdout(p) => format!("holdout {}", self.slice(p.span)),
            HeaderKind::Cap(cap) => {
                let target = match &cap.target {
                    CapTarget::Messages(_) => "messages".to_owned(),
                    CapTarget::Channel(c) => c.name.clone(),
                };
                format!(
                    "cap {target} {} per {}",
                    self.slice(cap.limit.span),
                    self.slice(cap.per.span)
                )
            }
            HeaderKind::QuietHours(q) => {
                let mut text = format!(
                    "quiet hours {} to {}",
                    self.slice(q.from.span),
                    self.slice(q.to.span)
                );
                if let Some(zone) = &q.zone {
                    text.push_str(" in ");
                    text.push_str(&self.expr(zone));
                }
                text
            }
            HeaderKind::Allow(a) => self.allow(a),
        };
        self.line(start, end, 0, text, false);
    }

    fn days(&self, days: &[(Weekday, Span)]) -> String {
        let names: Vec<&str> = days.iter().map(|(_, span)| self.slice(*span)).collect();
        names.join(", ")
    }

    fn at(&self, at: &TriggerAt) -> String {
        let mut text = format!("at {}", self.slice(at.time.span));
        if let Some(zone) = &at.zone {
            text.push_str(" in ");
            text.push_str(&self.expr(zone));
        }
        text
    }

    /// `<head> [where <cond>]<tail>` on one line or broken at the
    /// condition's `and`s/`or`s.
    fn maybe_where(
        &mut self,
        (start, end): (usize, usize),
        head: String,
        condition: Option<&Expr>,
        tail: String,
    ) {
        match condition {
            Some(c) => self.clause((start, end), format!("{head} where "), c, tail, false),
            None => self.line(start, end, 0, format!("{head}{tail}"), false),
        }
    }

    /// `<prefix><expr><suffix>` as one line if it fits, else broken before
    /// each `and`/`or` of the expression's outermost chain, the
    /// continuation lines two levels deeper.
    fn clause(
        &mut self,
        (start, end): (usize, usize),
        prefix: String,
        e: &Expr,
        suffix: String,
        continued: bool,
    ) {
        let one = format!("{prefix}{}{suffix}", self.expr(e));
        let ExprKind::Binary { op, .. } = &e.kind else {
            return self.line(start, end, 0, one, continued);
        };
        if self.fits(0, &one) || !matches!(op, BinaryOp::And | BinaryOp::Or) {
            return self.line(start, end, 0, one, continued);
        }
        let op = *op;
        let mut operands = Vec::new();
        chain(e, op, &mut operands);
        let p = prec(e);
        let first = self.operand(operands[0], p);
        let text = format!("{prefix}{first}");
        self.line(start, operands[0].span.end as usize, 0, text, continued);
        let last = operands.len() - 1;
        for (i, x) in operands.iter().enumerate().skip(1) {
            let mut text = format!("{} {}", op.as_str(), self.operand(x, p + 1));
            let mut to = x.span.end as usize;
            if i == last {
                text.push_str(&suffix);
                to = end;
            }
            self.line(x.span.start as usize, to, 2, text, true);
        }
    }
}

/// The operands of a left-leaning chain of `op`.
fn chain<'e>(e: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary { op: o, lhs, rhs } if *o == op => {
            chain(lhs, op, out);
            out.push(rhs);
        }
        _ => out.push(e),
    }
}

// ------------------------------------------------------------------ steps

impl Printer<'_> {
    fn step(&mut self, s: &Step) {
        let (start, end) = (s.span.start as usize, s.span.end as usize);
        match &s.kind {
            StepKind::Wait(d) => {
                self.line(start, end, 0, format!("wait {}", self.slice(d.span)), false)
            }
            StepKind::WaitUntilTime { time, days } => {
                let mut text = format!("wait until {}", self.slice(time.span));
                if !days.is_empty() {
                    text.push_str(" on ");
                    text.push_str(&self.days(days));
                }
                self.line(start, end, 0, text, false);
            }
            StepKind::WaitUntilExpr(e) => self.clause(
                (start, end),
                "wait until ".to_owned(),
                e,
                String::new(),
                false,
            ),
            StepKind::WaitForEvent {
                alternatives,
                within,
                then,
                otherwise,
            } if alternatives.len() > 1 => {
                // Each alternative as written (its condition's parentheses
                // are part of its meaning), one ` or ` apart.
                let alts: Vec<&str> = alternatives.iter().map(|a| self.slice(a.span)).collect();
                let opener = self.opener_suffix(then.as_ref(), otherwise.as_ref());
                let text = format!(
                    "wait for {} within {}{opener}",
                    alts.join(" or "),
                    self.slice(within.span)
                );
                self.line(start, within.span.end as usize, 0, text, false);
                self.wait_blocks(then.as_ref(), otherwise.as_ref());
            }
            StepKind::WaitForEvent {
                alternatives,
                within,
                then,
                otherwise,
            } => {
                let Some(WaitAlt {
                    event, condition, ..
                }) = alternatives.first()
                else {
                    return;
                };
                let head = format!("wait for {}", self.slice(event.span));
                let tail = format!(" within {}", self.slice(within.span));
                let head_end = within.span.end as usize;
                let opener = self.opener_suffix(then.as_ref(), otherwise.as_ref());
                match condition {
                    Some(c) => {
                        let suffix = format!("{tail}{opener}");
                        self.clause(
                            (start, within.span.end as usize),
                            format!("{head} where "),
                            c,
                            suffix,
                            false,
                        )
                    }
                    None => self.line(start, head_end, 0, format!("{head}{tail}{opener}"), false),
                }
                self.wait_blocks(then.as_ref(), otherwise.as_ref());
            }
            StepKind::WaitForEngagement {
                handle,
                engagement,
                within,
                then,
                otherwise,
            } => {
                let opener = self.opener_suffix(then.as_ref(), otherwise.as_ref());
                let text = format!(
                    "wait for {}.{} within {}{opener}",
                    handle.name,
                    engagement.name,
                    self.slice(within.span)
                );
                self.line(start, within.span.end as usize, 0, text, false);
                self.wait_blocks(then.as_ref(), otherwise.as_ref());
            }
            StepKind::Send(send) => self.send(start, end, send),
            StepKind::If {
                branches,
                otherwise,
            } => {
                let mut prev: Option<&Block> = None;
                for (cond, block) in branches {
                    match prev {
                        None => {
                            let open = block.span.start as usize + 1;
                            self.clause(
                                (start, open),
                                "if ".to_owned(),
                                cond,
                                " {".to_owned(),
                                false,
                            )
                        }
                        Some(p) => {
                            self.flush(p.span.end as usize - 1);
                            self.indent -= 1;
                            let from = p.span.end as usize - 1;
                            let open = block.span.start as usize + 1;
                            self.clause(
                                (from, open),
                                "} else if ".to_owned(),
                                cond,
                                " {".to_owned(),
                                true,
                            );
                        }
                    }
                    self.indent += 1;
                    self.block(block);
                    prev = Some(block);
                }
                let last = prev.expect("an `if` has a branch");
                match otherwise {
                    Some(o) => {
                        self.close(last.span.end as usize, "} else {");
                        self.indent += 1;
                        self.block(o);
                        self.close(o.span.end as usize, "}");
                    }
                    None => self.close(last.span.end as usize, "}"),
                }
            }
            StepKind::Split { name, arms } => {
                let text = match name {
                    Some(n) => format!("split {} {{", n.name),
                    None => "split {".to_owned(),
                };
                let head_end = name.as_ref().map_or(start + 5, |n| n.span.end as usize);
                self.line(start, head_end, 0, text, false);
                self.indent += 1;
                for arm in arms {
                    let text = format!("{} {} {{", self.slice(arm.percent.span), arm.label.name);
                    self.line(
                        arm.span.start as usize,
                        arm.body.span.start as usize + 1,
                        0,
                        text,
                        false,
                    );
                    self.indent += 1;
                    self.block(&arm.body);
                    self.close(arm.body.span.end as usize, "}");
                }
                self.close(end, "}");
            }
            StepKind::Repeat { count, body } => {
                let text = format!("repeat {} times {{", self.slice(count.span));
                self.line(start, body.span.start as usize + 1, 0, text, false);
                self.indent += 1;
                self.block(body);
                self.close(body.span.end as usize, "}");
            }
            StepKind::Set { path, value } => {
                let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                let prefix = format!("set profile.{} = ", names.join("."));
                self.clause((start, end), prefix, value, String::new(), false);
            }
            StepKind::Emit { event, with } => {
                let head = format!("emit {}", self.slice(event.span));
                self.with_line(start, end, 0, head, with, String::new(), false);
            }
            StepKind::AudienceAdd {
                audience,
                until_exit,
            } => {
                let until = if *until_exit { " until exit" } else { "" };
                let text = format!("add to audience {}{until}", audience.name);
                self.line(start, end, 0, text, false);
            }
            StepKind::AudienceRemove { audience } => {
                let text = format!("remove from audience {}", audience.name);
                self.line(start, end, 0, text, false);
            }
            StepKind::Exit => self.line(start, end, 0, "exit".to_owned(), false),
        }
    }

    /// The steps of a block whose opening line is printed and whose
    /// indentation is already one level deeper.
    fn block(&mut self, block: &Block) {
        for s in &block.steps {
            self.step(s);
        }
    }

    fn opener_suffix(&self, then: Option<&Block>, otherwise: Option<&Block>) -> &'static str {
        match (then, otherwise) {
            (Some(_), _) => " {",
            (None, Some(_)) => " else {",
            (None, None) => "",
        }
    }

    fn wait_blocks(&mut self, then: Option<&Block>, otherwise: Option<&Block>) {
        if let Some(t) = then {
            self.indent += 1;
            self.block(t);
            match otherwise {
                Some(_) => self.close(t.span.end as usize, "} else {"),
                None => self.close(t.span.end as usize, "}"),
            }
        }
        if let Some(o) = otherwise {
            self.indent += 1;
            self.block(o);
            self.close(o.span.end as usize, "}");
        }
    }

    /// `send <alt> [or <alt>]... [modifiers]`: one alternative on one line
    /// with its modifiers; several, each `or` on a line of its own and the
    /// modifiers on one more.
    fn send(&mut self, start: usize, end: usize, send: &Send) {
        let mut modifiers = Vec::new();
        if let Some(h) = &send.handle {
            modifiers.push((h.span.start, format!("as {}", h.name)));
        }
        if let Some(t) = send.transactional {
            modifiers.push((t.start, "transactional".to_owned()));
        }
        if let Some((on, span)) = send.on_capped {
            let what = match on {
                OnCapped::Skip => "skip",
                OnCapped::Wait => "wait",
            };
            modifiers.push((span.start, format!("on capped {what}")));
        }
        if let Some(b) = &send.best_hour {
            let within = b
                .within
                .as_ref()
                .map(|w| format!(" within {}", self.slice(w.span)))
                .unwrap_or_default();
            modifiers.push((b.span.start, format!("at best hour{within}")));
        }
        modifiers.sort_by_key(|(at, _)| *at);
        let modifiers: Vec<String> = modifiers.into_iter().map(|(_, m)| m).collect();
        // One alternative keeps its modifiers on its line when they fit
        // there (its `with` entries inline), else they get a line of their
        // own, as with several alternatives.
        let single = match send.alternatives.as_slice() {
            [alt] if !modifiers.is_empty() => {
                let line = format!("send {} {}", self.alt_inline(alt), modifiers.join(" "));
                self.fits(0, &line)
            }
            [_] => true,
            _ => false,
        };
        let tail = if single && !modifiers.is_empty() {
            format!(" {}", modifiers.join(" "))
        } else {
            String::new()
        };
        for (i, alt) in send.alternatives.iter().enumerate() {
            let head = format!("{} {}", alt.channel.name, self.slice(alt.template.span()));
            let (from, extra, word) = if i == 0 {
                (start, 0, "send ")
            } else {
                (alt.span.start as usize, 1, "or ")
            };
            let tail = if i == 0 { tail.clone() } else { String::new() };
            // The line of a lone alternative ends where the step does.
            let to = if single { end } else { alt.span.end as usize };
            self.with_line(
                from,
                to,
                extra,
                format!("{word}{head}"),
                &alt.with,
                tail,
                i > 0,
            );
        }
        if !single && !modifiers.is_empty() {
            let last = send
                .alternatives
                .last()
                .map_or(start, |a| a.span.end as usize);
            self.line(last, end, 1, modifiers.join(" "), true);
        }
    }

    /// `<channel> <template>[ with { k: v, ... }]` on one line.
    fn alt_inline(&self, alt: &SendAlt) -> String {
        let head = format!("{} {}", alt.channel.name, self.slice(alt.template.span()));
        if alt.with.is_empty() {
            return head;
        }
        let entries: Vec<String> = alt
            .with
            .iter()
            .map(|w| format!("{}: {}", w.key.name, self.expr(&w.value)))
            .collect();
        format!("{head} with {{ {} }}", entries.join(", "))
    }

    /// `<head> [with { k: v, ... }]<tail>`: the entries inline when they fit
    /// and hold no comment, else one per line.
    #[allow(clippy::too_many_arguments)]
    fn with_line(
        &mut self,
        start: usize,
        end: usize,
        extra: usize,
        head: String,
        with: &[WithEntry],
        tail: String,
        continuation: bool,
    ) {
        if with.is_empty() {
            return self.line(start, end, extra, format!("{head}{tail}"), continuation);
        }
        let entries: Vec<String> = with
            .iter()
            .map(|w| format!("{}: {}", w.key.name, self.expr(&w.value)))
            .collect();
        let inline = format!("{head} with {{ {} }}{tail}", entries.join(", "));
        let first = with[0].key.span.start as usize;
        let close = self.close_brace_after(with.last().map_or(end, |w| w.value.span.end as usize));
        if !self.has_comment(start, close) && self.fits(extra, &inline) {
            return self.line(start, end.max(close + 1), extra, inline, continuation);
        }
        self.line(start, first, extra, format!("{head} with {{"), continuation);
        let last = with.len() - 1;
        for (i, (w, text)) in with.iter().zip(entries).enumerate() {
            let comma = if i == last { "" } else { "," };
            let (s, e) = (w.key.span.start as usize, w.value.span.end as usize);
            self.line(s, e, extra + 1, format!("{text}{comma}"), false);
        }
        self.flush(close);
        self.lines.push(Line {
            kind: Kind::Code,
            indent: self.indent + extra,
            text: format!("}}{tail}"),
            trailing: None,
            opens: false,
        });
        self.last_end = self.last_end.max(end.max(close + 1));
    }

    /// The offset of the `}` that closes a `with` block, its last value
    /// ending at `from`: past spaces, commas and comments.
    fn close_brace_after(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < bytes.len() {
            match bytes[i] {
                b'}' => return i,
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        from
    }
}

// ------------------------------------------------------------------ expressions

/// Binding strength, as the Pratt parser of `syntax::expr` applies it.
fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary { op, .. } => op_prec(*op),
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => 3,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => 7,
        _ => 8,
    }
}

fn op_prec(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::In
        | BinaryOp::NotIn
        | BinaryOp::Contains => 4,
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div => 6,
    }
}

impl Printer<'_> {
    /// `e`, in parentheses when it binds less tightly than `min`.
    fn operand(&self, e: &Expr, min: u8) -> String {
        let text = self.expr(e);
        if prec(e) < min {
            format!("({text})")
        } else {
            text
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(n) => self.literal(e.span, || number_text(*n)),
            ExprKind::String(s) => self.literal(e.span, || quote(s)),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Null => "null".to_owned(),
            ExprKind::Duration(secs) => self.literal(e.span, || syntax::format_duration(*secs)),
            ExprKind::Timestamp(ms) => self.literal(e.span, || value::format_timestamp(*ms)),
            ExprKind::List(items) => {
                let items: Vec<String> = items.iter().map(|x| self.expr(x)).collect();
                format!("[{}]", items.join(", "))
            }
            ExprKind::Path(path) => {
                let mut text = match &path.root {
                    PathRoot::Profile => "profile".to_owned(),
                    PathRoot::Event => "event".to_owned(),
                    PathRoot::Trigger => "trigger".to_owned(),
                    PathRoot::Journey => "journey".to_owned(),
                    PathRoot::Name(n) => n.clone(),
                };
                for f in &path.fields {
                    text.push('.');
                    text.push_str(&f.name);
                }
                text
            }
            ExprKind::Call { func, args } => {
                let args: Vec<String> = args.iter().map(|x| self.expr(x)).collect();
                format!("{}({})", func.name, args.join(", "))
            }
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => format!("not {}", self.operand(operand, 3)),
                UnaryOp::Neg => format!("-{}", self.operand(operand, 7)),
            },
            ExprKind::Binary { op, lhs, rhs } => {
                let p = op_prec(*op);
                format!(
                    "{} {} {}",
                    self.operand(lhs, p),
                    op.as_str(),
                    self.operand(rhs, p + 1)
                )
            }
        }
    }

    /// A literal as written when its text is only the token (around it,
    /// parentheses and spaces at most), else `fallback()`.
    fn literal(&self, span: Span, fallback: impl FnOnce() -> String) -> String {
        let mut text = self.slice(span).trim();
        while text.len() >= 2 && text.starts_with('(') && text.ends_with(')') {
            text = text[1..text.len() - 1].trim();
        }
        let token = if let Some(rest) = text.strip_prefix('-') {
            // `-3` is the number -3, however it was spaced.
            let rest = rest.trim_start();
            (!rest.starts_with(['(', '-'])).then(|| format!("-{rest}"))
        } else {
            Some(text.to_owned())
        };
        match token {
            Some(t) if is_token(&t) => t,
            _ => fallback(),
        }
    }
}

/// One literal token: a quoted string with no unescaped quote inside, or a
/// run with no space, bracket or comment.
fn is_token(text: &str) -> bool {
    if let Some(inner) = text.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return false;
        };
        let mut escaped = false;
        for c in inner.chars() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => return false,
                _ => {}
            }
        }
        return !escaped;
    }
    !text.is_empty()
        && !text.contains("//")
        && !text
            .chars()
            .any(|c| c.is_whitespace() || "()[]{},\"".contains(c))
}

fn number_text(n: f64) -> String {
    format!("{n}")
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
