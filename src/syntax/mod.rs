//! Text → typed AST. pest stays behind [`parse`]; callers see only
//! [`ast`] and [`Diagnostic`]s. The grammar, `grammar/journey.pest`, is the
//! language's only definition.
//!
//! A file is first cut into top-level items by the grammar's `split` rule
//! ([`split`]); each item is parsed by pest on its own and lowered to the AST
//! by one `visit_<rule>` function per grammar rule ([`items`], [`headers`],
//! [`steps`], [`expr`], [`literals`]). A pest failure becomes a worded
//! diagnostic ([`errors`], where every syntax diagnostic is worded), and the
//! failing statement is blanked out so the next one is still checked.

pub mod ast;
mod describe;
mod errors;
mod expr;
mod grammar;
mod headers;
mod items;
mod literals;
mod split;
mod steps;

use pest::Parser;
use pest::iterators::Pair;

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceFile, Span};
use grammar::{JourneyParser, Rule};

/// The language's duration text (`1h30m`) in seconds, for the command
/// line's durations: one rule for both.
pub use literals::{DurationError, format_duration, parse_duration, unescape};

/// The language's keywords, read from the grammar's `kw_<word>` rules and
/// its word operators (`op_and`, ...): `grammar/journey.pest` is their only
/// list. In the grammar's order, each once; what an editor completes and
/// highlights.
pub fn keywords() -> Vec<&'static str> {
    const GRAMMAR: &str = include_str!("../../grammar/journey.pest");
    let mut words: Vec<&'static str> = Vec::new();
    for line in GRAMMAR.lines() {
        if !(line.starts_with("kw_") || line.starts_with("op_")) {
            continue;
        }
        let Some(word) = line.split('"').nth(1) else {
            continue;
        };
        if word.bytes().all(|b| b.is_ascii_lowercase()) && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// Parses one file. Returns every item that parsed (an error in one item
/// never hides the next item), the file's comments, and the syntax
/// diagnostics.
///
/// An item with a syntax error is left out of the file; an item whose only
/// problems are invalid values (`wait 0s`, `24:00`, `=` for `==`, a reserved
/// word as a name) is kept, so the checker still reports what else is wrong.
pub fn parse(file: &SourceFile) -> (ast::File, Vec<Diagnostic>) {
    let split = split::split(file.id, &file.text);
    let mut out = ast::File {
        items: Vec::with_capacity(split.chunks.len()),
        comments: split.comments,
    };
    let mut diags = Vec::new();
    for chunk in split.chunks {
        if let Some(at) = chunk.too_deep {
            let at = chunk.range.start + at;
            diags.push(errors::too_deep(file.span(at, at + 1)));
            continue;
        }
        out.items.extend(parse_chunk(file, chunk, &mut diags));
    }
    // Recovery reports syntax errors before the values of earlier lines.
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    (out, diags)
}

/// One chunk through pest and the visitors: its item, if it has one, and
/// its diagnostics, pushed onto `diags`.
fn parse_chunk(
    file: &SourceFile,
    chunk: split::Chunk,
    diags: &mut Vec<Diagnostic>,
) -> Option<ast::Item> {
    let start = chunk.range.start;
    match JourneyParser::parse(Rule::item_chunk, &file.text[chunk.range.clone()]) {
        Ok(pairs) => visit_chunk(file, start, pairs, chunk.doc, diags),
        Err(error) => {
            diags.push(errors::syntax_error(file, chunk.range.clone(), &error));
            let recovered = errors::recover(file, chunk.range.clone(), &error, diags);
            // The item stays out of the AST, but the invalid values in
            // its other statements are still worth reporting.
            if let Some(recovered) = recovered
                && let Ok(pairs) = JourneyParser::parse(Rule::item_chunk, &recovered)
            {
                visit_chunk(file, start, pairs, None, diags);
            }
            None
        }
    }
}

/// Lowers one parsed item, collecting the diagnostics of invalid values.
fn visit_chunk(
    file: &SourceFile,
    offset: usize,
    mut pairs: pest::iterators::Pairs<Rule>,
    doc: Option<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ast::Item> {
    let mut ctx = Ctx {
        file: file.id,
        offset,
        diags: Vec::new(),
    };
    let item = pairs
        .next()
        .and_then(|pair| items::visit_item(&mut ctx, pair, doc));
    diags.append(&mut ctx.diags);
    item
}

/// What every visitor needs: where the chunk sits in the file, and where to
/// put the diagnostics of invalid values.
pub(crate) struct Ctx {
    file: FileId,
    /// Byte offset of the chunk in the file.
    offset: usize,
    diags: Vec<Diagnostic>,
}

impl Ctx {
    /// The file span of a pair.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        let start = s.start() + self.offset;
        Span::new(self.file, start, start + significant_len(s.as_str()))
    }

    /// A span from offsets that are already file offsets.
    fn span_at(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    /// An identifier from a `name`, `ident` or `path_root` pair.
    fn ident(&self, pair: &Pair<Rule>) -> ast::Ident {
        ast::Ident {
            name: pair.as_str().to_owned(),
            span: self.span(pair),
        }
    }

    /// A name the user declares or refers to as a `what` (template, handle,
    /// ...): reserved words are reported, and kept so checking goes on.
    fn name(&mut self, pair: &Pair<Rule>, what: &str) -> ast::Ident {
        let ident = self.ident(pair);
        if ast::is_reserved(&ident.name) {
            self.diags
                .push(errors::reserved_word(ident.span, &ident.name, what));
        }
        ident
    }
}

const TRIVIA: [char; 4] = [' ', '\t', '\r', '\n'];

/// The length of `text` without the whitespace and comments pest leaves at
/// the end of a rule that ends with an optional part.
fn significant_len(text: &str) -> usize {
    let mut t = text.trim_end_matches(TRIVIA);
    if t.len() == text.len() {
        return text.len();
    }
    loop {
        let line_start = t.rfind('\n').map_or(0, |p| p + 1);
        match comment_start(&t[line_start..]) {
            Some(c) => t = t[..line_start + c].trim_end_matches(TRIVIA),
            None => return t.len(),
        }
    }
}

/// Where a `//` comment starts on one line, as the grammar reads the line.
fn comment_start(line: &str) -> Option<usize> {
    if !line.contains("//") {
        return None;
    }
    let mut pairs = JourneyParser::parse(Rule::split, line).ok()?;
    pairs
        .next()?
        .into_inner()
        .find(|token| token.as_rule() == Rule::comment)
        .map(|comment| comment.as_span().start())
}

fn is_punctuation(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::lbrace
            | Rule::rbrace
            | Rule::lbracket
            | Rule::rbracket
            | Rule::lparen
            | Rule::rparen
            | Rule::colon
            | Rule::comma
            | Rule::eq_sign
            | Rule::langle
            | Rule::rangle
    )
}

/// The children of a pair, without punctuation.
fn children<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
    pair.into_inner().filter(|p| !is_punctuation(p.as_rule()))
}

/// The next child where the grammar makes one mandatory.
fn next<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>) -> Pair<'i, Rule> {
    // Only called where the grammar rule requires this child, so a missing
    // one is a bug in the visitor, never a property of the input.
    it.next().expect("the grammar guarantees this child")
}

/// Drops a keyword and returns its span.
fn keyword<'i>(ctx: &Ctx, it: &mut impl Iterator<Item = Pair<'i, Rule>>) -> Span {
    let pair = next(it);
    ctx.span(&pair)
}

#[cfg(test)]
mod tests;
