//! Every syntax diagnostic (E01xx) is worded here: pest failures (what was
//! expected, what was found, help for common mistakes) and the invalid
//! values the visitors find. And statement-level recovery: the failing
//! statement is blanked out and the item parsed again, so two bad steps in
//! one journey give two errors.

use std::ops::Range;

use pest::Parser;
use pest::error::{Error, ErrorVariant, InputLocation};

use super::describe::describe;
use super::grammar::{JourneyParser, Rule};
use super::literals::{CountError, DurationError, TimeOfDayError};
use super::split::{MAX_NESTING, token_end};
use crate::diagnostic::codes;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::source::{SourceFile, Span};

/// The keywords that start a step, a header clause and an item, for "did
/// you mean": the grammar's rules, spelled as [`describe`] spells them.
const STEP_KEYWORDS: &[Rule] = &[
    Rule::kw_wait,
    Rule::kw_send,
    Rule::kw_if,
    Rule::kw_split,
    Rule::kw_repeat,
    Rule::kw_set,
    Rule::kw_emit,
    Rule::kw_add,
    Rule::kw_remove,
    Rule::kw_exit,
];
const HEADER_KEYWORDS: &[Rule] = &[
    Rule::kw_name,
    Rule::kw_trigger,
    Rule::kw_audience,
    Rule::kw_reentry,
    Rule::kw_per,
    Rule::kw_exit,
    Rule::kw_goal,
    Rule::kw_holdout,
    Rule::kw_cap,
    Rule::kw_quiet,
    Rule::kw_allow,
];
const ITEM_KEYWORDS: &[Rule] = &[
    Rule::kw_event,
    Rule::kw_profile,
    Rule::kw_channel,
    Rule::kw_template,
    Rule::kw_segment,
    Rule::kw_policy,
    Rule::kw_attribution,
    Rule::kw_journey,
    Rule::kw_allow,
];
const TYPE_WORDS: &[&str] = &["string", "number", "bool", "timestamp", "duration", "list"];
const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// Words that continue a statement on its next line: recovery skips them
/// together with the statement they belong to.
const CONTINUATIONS: &[&str] = &[
    "else",
    "elif",
    "elsif",
    "elseif",
    "or",
    "and",
    "within",
    "where",
    "as",
    "with",
    "transactional",
    "on",
    "to",
    "per",
    "for",
    "until",
    "in",
];
const MAX_RECOVERIES: usize = 16;

/// The word of a keyword rule: `kw_wait` → `wait`.
fn keyword(rule: Rule) -> Option<&'static str> {
    let phrase = describe(rule);
    phrase.strip_prefix('`').and_then(|p| p.strip_suffix('`'))
}

fn keywords(rules: &[Rule]) -> impl Iterator<Item = &'static str> + '_ {
    rules.iter().filter_map(|&rule| keyword(rule))
}

/// Skips a string starting at the opening quote; returns the index after it.
fn skip_string(bytes: &[u8], i: usize) -> usize {
    lexed(Rule::quoted, bytes, i)
}

/// Skips a `//` comment; returns the index of its newline (or the end).
fn skip_comment(bytes: &[u8], i: usize) -> usize {
    lexed(Rule::comment, bytes, i)
}

/// The end of the grammar's token `rule` at `i`. The text is the file or
/// a copy with whole statements blanked out, so it is UTF-8 and `i` (a `"`
/// or a `/`) is on a character boundary.
fn lexed(rule: Rule, bytes: &[u8], i: usize) -> usize {
    std::str::from_utf8(bytes).map_or(bytes.len(), |text| token_end(rule, text, i))
}

fn error_pos(error: &Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((start, _)) => start,
    }
}

fn positives(error: &Error<Rule>) -> &[Rule] {
    match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { .. } => &[],
    }
}

/// Skips whitespace and `//` comments from `i`.
fn skip_trivia(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_comment(bytes, i),
            _ => break,
        }
    }
    i
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The token found where something else was expected.
struct Found<'a> {
    range: Range<usize>,
    text: Option<&'a str>,
}

impl<'a> Found<'a> {
    fn at(text: &'a str, pos: usize) -> Found<'a> {
        let bytes = text.as_bytes();
        let start = skip_trivia(bytes, pos.min(bytes.len()));
        if start >= bytes.len() {
            return Found {
                range: bytes.len()..bytes.len(),
                text: None,
            };
        }
        let first = bytes[start];
        let end = if first.is_ascii_alphabetic() || first == b'_' {
            start
                + bytes[start..]
                    .iter()
                    .take_while(|&&b| is_ident_byte(b))
                    .count()
        } else if first.is_ascii_digit() {
            start
                + bytes[start..]
                    .iter()
                    .take_while(|&&b| is_ident_byte(b) || matches!(b, b'.' | b':' | b'%'))
                    .count()
        } else if first == b'"' {
            let line_end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| start + p);
            skip_string(bytes, start).min(line_end)
        } else if b"=!<>".contains(&first) && bytes.get(start + 1) == Some(&b'=') {
            start + 2
        } else {
            start + text[start..].chars().next().map_or(1, char::len_utf8)
        };
        Found {
            range: start..end,
            text: Some(&text[start..end]),
        }
    }

    fn word(&self) -> Option<&'a str> {
        self.text.filter(|t| {
            t.as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic())
        })
    }

    fn describe(&self) -> String {
        match self.text {
            None => "end of file".to_owned(),
            Some(t) if t.len() > 40 => format!("`{}...`", truncate(t, 30)),
            Some(t) => format!("`{t}`"),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// "a, b or c"
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Rules that can start an expression: when pest lists several of them,
/// the user reads "an expression".
fn starts_expression(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::expr
            | Rule::path
            | Rule::path_root
            | Rule::call
            | Rule::ident
            | Rule::paren
            | Rule::list
            | Rule::lparen
            | Rule::lbracket
            | Rule::string
            | Rule::number
            | Rule::duration
            | Rule::wordy_duration
            | Rule::timestamp
            | Rule::kw_true
            | Rule::kw_false
            | Rule::kw_null
            | Rule::op_not
            | Rule::op_neg
    )
}

/// The phrases for what pest expected, most useful first.
fn expected_phrases(positives: &[Rule]) -> Vec<&'static str> {
    let expects_expr = positives
        .iter()
        .any(|r| matches!(r, Rule::expr | Rule::path | Rule::path_root | Rule::call))
        || positives.iter().filter(|&&r| starts_expression(r)).count() >= 3;
    let mut phrases: Vec<&'static str> = Vec::new();
    for &rule in positives {
        let rule = if expects_expr && starts_expression(rule) {
            Rule::expr
        } else {
            rule
        };
        let phrase = describe(rule);
        if !phrases.contains(&phrase) {
            phrases.push(phrase);
        }
    }
    // At a statement boundary, the optional tails of the previous statement
    // (`where`, `with`, an operator, `}`) are noise: name the statement kinds.
    for statement in [Rule::step, Rule::header, Rule::item] {
        if positives.contains(&statement) {
            return vec![describe(statement)];
        }
    }
    let rank = |p: &&str| match *p {
        "`}`" => 2,
        p if p.starts_with("an operator") => 1,
        _ => 0,
    };
    phrases.sort_by_key(rank);
    phrases
}

/// Keywords valid where pest failed, for "did you mean".
fn valid_words(positives: &[Rule]) -> Vec<&'static str> {
    let mut words = Vec::new();
    for &rule in positives {
        match rule {
            Rule::step => words.extend(keywords(STEP_KEYWORDS)),
            Rule::header => words.extend(keywords(HEADER_KEYWORDS)),
            Rule::item => words.extend(keywords(ITEM_KEYWORDS)),
            Rule::type_expr | Rule::type_name => words.extend_from_slice(TYPE_WORDS),
            Rule::weekday => words.extend_from_slice(WEEKDAYS),
            _ => {
                if let Some(word) =
                    keyword(rule).filter(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
                {
                    words.push(word);
                }
            }
        }
    }
    words
}

/// The first word of the statement around `pos` (the first token on its line).
fn statement_head(text: &str, pos: usize) -> &str {
    let line_start = text[..pos.min(text.len())].rfind('\n').map_or(0, |p| p + 1);
    let line = text[line_start..].trim_start();
    let len = line.bytes().take_while(|&b| is_ident_byte(b)).count();
    &line[..len]
}

/// The word just before `pos`.
fn previous_word(text: &str, pos: usize) -> &str {
    let before = text[..pos.min(text.len())].trim_end();
    let len = before
        .bytes()
        .rev()
        .take_while(|&b| is_ident_byte(b))
        .count();
    &before[before.len() - len..]
}

/// The innermost `{` of `text` that is never closed, as a range.
fn unclosed_brace(text: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = skip_comment(bytes, i);
                continue;
            }
            b'{' => stack.push(i),
            b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.pop().map(|p| p..p + 1)
}

/// The diagnostic for a pest failure in the chunk `chunk` of `file`.
pub fn syntax_error(file: &SourceFile, chunk: Range<usize>, error: &Error<Rule>) -> Diagnostic {
    let text: &str = &file.text;
    let pos = chunk.start + error_pos(error);
    let found = Found::at(text, pos);
    let span = file.span(found.range.start, found.range.end);
    let positives = positives(error);

    if let Some(t) = found.text
        && t.starts_with('"')
        && (t.len() < 2 || !t.ends_with('"'))
        && skip_string(text.as_bytes(), found.range.start) >= text.len()
        && !text.ends_with('"')
    {
        return Diagnostic::new(
            codes::SYNTAX,
            file.span(found.range.start, found.range.start + 1),
            "unterminated string",
        )
        .with_label("this string is never closed")
        .with_help("add the closing `\"`");
    }

    let at_chunk_end = skip_trivia(text.as_bytes(), pos) >= chunk.end;
    if at_chunk_end
        && positives.contains(&Rule::rbrace)
        && let Some(open) = unclosed_brace(&text[chunk.clone()])
    {
        let open = file.span(chunk.start + open.start, chunk.start + open.end);
        return Diagnostic::new(
            codes::SYNTAX,
            span,
            format!("expected `}}` to close a block, found {}", found.describe()),
        )
        .with_related(open, "this `{` is never closed")
        .with_help("add a `}` where the block ends");
    }

    let phrases = expected_phrases(positives);
    let message = if phrases.is_empty() {
        format!("unexpected {}", found.describe())
    } else {
        format!("expected {}, found {}", join_or(&phrases), found.describe())
    };
    let mut diagnostic = Diagnostic::new(codes::SYNTAX, span, message);
    if let Some(help) = help_for(text, pos, &found, positives) {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

/// Help for the common mistakes, most specific first.
fn help_for(text: &str, pos: usize, found: &Found, positives: &[Rule]) -> Option<String> {
    let word = found.word();
    let expects_step = positives.contains(&Rule::step);
    let expects_header = positives.contains(&Rule::header);
    if let Some(w @ ("elif" | "elsif" | "elseif")) = word {
        return Some(format!("write `else if` instead of `{w}`"));
    }
    if expects_step && !expects_header {
        let header = match word {
            Some("on") if previous_word(text, found.range.start) == "exit" => Some("exit on"),
            Some(w) if w != "exit" && keywords(HEADER_KEYWORDS).any(|h| h == w) => Some(w),
            _ => None,
        };
        if let Some(header) = header {
            return Some(format!(
                "header clauses such as `{header}` go at the top of the journey, before the first step, not inside a block"
            ));
        }
    }
    if let Some(help) = cap_help(text, pos) {
        return Some(help);
    }
    if statement_head(text, pos) == "wait" {
        // In a `wait for`, an `or` after a `where` condition starts the
        // next event: a condition that goes on after it needs parentheses.
        let before = &text[..pos.min(text.len())];
        let line = &before[before.rfind('\n').map_or(0, |p| p + 1)..];
        if previous_word(text, found.range.start) == "or" && line.contains(" where ") {
            return Some(
                "in a `wait for`, an `or` after a `where` condition starts the next event to wait for: write a condition with `or` in parentheses, as in `where (event.a == 1 or event.b == 2)`"
                    .to_owned(),
            );
        }
        if word == Some("or") {
            return Some(
                "`or` joins events, not engagements: write `wait for A or B within 1d { ... } else { ... }` for events, and wait for one engagement such as `reminder.opened` at a time"
                    .to_owned(),
            );
        }
    }
    if positives.contains(&Rule::kw_within) && statement_head(text, pos) == "wait" {
        return Some(
            "`wait for` needs a time limit, such as `within 1d`; add `else { ... }` for what happens when it runs out"
                .to_owned(),
        );
    }
    if found.text == Some("=") && positives.contains(&Rule::op_eq) {
        return Some("use `==` to compare".to_owned());
    }
    let word = word?;
    let candidates = valid_words(positives);
    did_you_mean(word, candidates.iter().copied())
        .or_else(|| transposed(word, &candidates).map(|c| format!("did you mean `{c}`?")))
}

/// Inside a `cap` written another way (`cap email 1/7d`, `cap 1 email`,
/// `cap email 1 per week`): the cap as it is written, from the words given.
fn cap_help(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let line_start = text[..pos].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[pos..].find('\n').map_or(text.len(), |p| pos + p);
    let line = &text[line_start..line_end];
    let at = pos - line_start;
    // The last `cap` word before the error, with no `}` between.
    let cap = line[..at]
        .rmatch_indices("cap")
        .map(|(i, _)| i)
        .find(|&i| {
            let before = line[..i].bytes().next_back();
            let after = line.as_bytes().get(i + 3);
            !before.is_some_and(is_ident_byte) && after.is_some_and(|b| *b == b' ' || *b == b'\t')
        })?;
    let rest = &line[cap + 3..];
    let rest = &rest[..rest.find(['}', '{']).unwrap_or(rest.len())];
    if cap + 3 + rest.len() < at {
        return None;
    }
    let words: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == '/')
        .filter(|w| !w.is_empty())
        .collect();
    let channel = words
        .iter()
        .find(|w| {
            w.bytes().all(is_ident_byte)
                && w.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && !matches!(**w, "per" | "a" | "every" | "each")
                && window_word(w).is_none()
        })
        .copied()
        .unwrap_or("email");
    let count = words
        .iter()
        .find(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .copied()
        .unwrap_or("1");
    let window = words
        .iter()
        .find_map(|w| {
            window_word(w).or_else(|| {
                (w.bytes().next().is_some_and(|b| b.is_ascii_digit())
                    && w.bytes().any(|b| b.is_ascii_alphabetic()))
                .then(|| (*w).to_owned())
            })
        })
        .unwrap_or_else(|| "7d".to_owned());
    let noun = if count == "1" { "message" } else { "messages" };
    let what = if channel == "messages" {
        noun.to_owned()
    } else {
        format!("{channel} {noun}")
    };
    Some(format!(
        "write `cap {channel} {count} per {window}`: at most {count} {what} in any {window}"
    ))
}

/// `week` → `7d`, and the other calendar words a cap's window is said in.
fn window_word(word: &str) -> Option<String> {
    let d = match word.to_ascii_lowercase().as_str() {
        "hour" | "hourly" | "hours" => "1h",
        "day" | "daily" | "days" => "1d",
        "week" | "weekly" | "weeks" => "7d",
        "month" | "monthly" | "months" => "30d",
        _ => return None,
    };
    Some(d.to_owned())
}

/// A candidate that is `word` with two adjacent letters swapped (`sned`).
fn transposed<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.as_bytes();
    candidates.iter().copied().find(|c| {
        let c = c.as_bytes();
        c.len() == w.len() && {
            let diff: Vec<usize> = (0..w.len()).filter(|&i| w[i] != c[i]).collect();
            diff.len() == 2
                && diff[1] == diff[0] + 1
                && w[diff[0]] == c[diff[1]]
                && w[diff[1]] == c[diff[0]]
        }
    })
}

/// After a failure at `first` in `chunk`, blanks the failing statement and
/// parses again, reporting each new error, until the item parses or no
/// progress is made. Returns the blanked text when it finally parses, so its
/// invalid values can be reported too.
pub fn recover(
    file: &SourceFile,
    chunk: Range<usize>,
    first: &Error<Rule>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let text = &file.text[chunk.clone()];
    let body_start = first_brace(text)?;
    let mut buf = text.as_bytes().to_vec();
    let mut pos = error_pos(first);
    let mut first_error = first.clone();
    for _ in 0..MAX_RECOVERIES {
        if pos <= body_start || skip_trivia(&buf, pos) >= buf.len() {
            return None;
        }
        let boundary = positives(&first_error)
            .iter()
            .any(|r| matches!(r, Rule::step | Rule::header));
        let region = recovery_region(&buf, pos, boundary)?;
        if region.start <= body_start || region.end <= pos {
            return None;
        }
        for b in &mut buf[region.clone()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        let source = std::str::from_utf8(&buf).ok()?;
        match JourneyParser::parse(Rule::item_chunk, source) {
            Ok(_) => return Some(source.to_owned()),
            Err(error) => {
                let next = error_pos(&error);
                if next < region.end {
                    return None;
                }
                diags.push(syntax_error(file, chunk.clone(), &error));
                pos = next;
                first_error = error;
            }
        }
    }
    None
}

/// The position of the item's first `{`.
fn first_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_comment(bytes, i),
            b'{' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The statement around `pos` to blank: from the first token of its line
/// (or from `pos` when the line starts with `}`) to the end of the line,
/// extended over balanced braces and continuation lines.
fn recovery_region(buf: &[u8], pos: usize, boundary: bool) -> Option<Range<usize>> {
    let mut start = first_on_line(buf, pos);
    if start == pos && !boundary {
        // The statement began on an earlier line (`trigger` with no event).
        let mut prev = pos;
        while prev > 0 && buf[prev - 1].is_ascii_whitespace() {
            prev -= 1;
        }
        if prev > 0 {
            start = first_on_line(buf, prev - 1);
        }
    }
    if buf.get(start) == Some(&b'}') {
        start = pos;
    }
    if buf.get(start).is_none_or(|&b| b == b'}') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < buf.len() {
        match buf[i] {
            b'"' => {
                i = skip_string(buf, i);
                continue;
            }
            b'/' if buf.get(i + 1) == Some(&b'/') => {
                i = skip_comment(buf, i);
                continue;
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(start..i),
            b'}' => depth -= 1,
            b'\n' if depth == 0 && i >= pos && !continues(buf, i) => return Some(start..i),
            _ => {}
        }
        i += 1;
    }
    // The statement runs to the end (an unterminated string or block):
    // nothing after it can be told apart, so stop here.
    None
}

/// The first non-blank byte of the line holding `pos`.
fn first_on_line(buf: &[u8], pos: usize) -> usize {
    let mut start = buf[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    while start < pos && matches!(buf[start], b' ' | b'\t' | b'\r') {
        start += 1;
    }
    start
}

/// Whether the line after the newline at `i` continues the statement.
fn continues(buf: &[u8], i: usize) -> bool {
    let next = skip_trivia(buf, i);
    let len = buf[next..]
        .iter()
        .take_while(|&&b| is_ident_byte(b))
        .count();
    std::str::from_utf8(&buf[next..next + len]).is_ok_and(|w| CONTINUATIONS.contains(&w))
}

/// An item nested deeper than [`MAX_NESTING`] is not parsed at all: one
/// error at the bracket that goes too deep.
pub fn too_deep(at: Span) -> Diagnostic {
    Diagnostic::new(codes::SYNTAX, at, "this item is nested too deeply")
        .with_label(format!("more than {MAX_NESTING} levels deep here"))
        .with_help("flatten the nested blocks, lists or parentheses")
}

/// A reserved word where the user names a `what` (template, handle, ...).
pub fn reserved_word(span: Span, word: &str, what: &str) -> Diagnostic {
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    Diagnostic::new(
        codes::RESERVED_WORD,
        span,
        format!("`{word}` is a reserved word and cannot name {article} {what}"),
    )
    .with_help(format!(
        "pick another name, such as `{word}_{}`",
        what.replace(' ', "_")
    ))
}

/// A bad escape in a string (`\\q`).
pub fn invalid_escape(span: Span, found: &str) -> Diagnostic {
    Diagnostic::new(
        codes::INVALID_ESCAPE,
        span,
        format!("invalid escape `{found}` in a string"),
    )
    .with_help("the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{...}` with 1 to 6 hex digits")
}

/// A long literal, cut short for a message.
fn shorten(text: &str) -> String {
    if text.len() > 24 {
        format!("{}...", &text[..20])
    } else {
        text.to_owned()
    }
}

/// A number literal too large for a 64-bit float.
pub fn number_too_large(span: Span, text: &str) -> Diagnostic {
    Diagnostic::new(
        codes::INVALID_NUMBER,
        span,
        format!("number `{}` is too large", shorten(text)),
    )
    .with_help("numbers are 64-bit floating point values")
}

/// A count (`cap email 2 ...`, `repeat 3 times`) that is not one.
pub fn invalid_count(span: Span, text: &str, error: CountError) -> Diagnostic {
    let (message, help) = match error {
        CountError::Fraction => (
            format!("expected a whole number, found `{text}`"),
            "a count has no fractional part",
        ),
        CountError::TooLarge => (
            format!("number `{}` is too large", shorten(text)),
            "a count must be at most 9007199254740992 (2^53)",
        ),
    };
    Diagnostic::new(codes::INVALID_NUMBER, span, message).with_help(help)
}

/// A duration that is not one; `None` for a zero duration where one is
/// not allowed.
pub fn invalid_duration(span: Span, text: &str, error: Option<DurationError>) -> Diagnostic {
    let (message, help) = match error {
        None => (
            format!("zero duration `{text}`"),
            "a duration must be at least `1s`".to_owned(),
        ),
        Some(DurationError::TooLong) => (
            format!("duration `{}` is too long", shorten(text)),
            "a duration must be shorter than 1000 years".to_owned(),
        ),
        Some(DurationError::Malformed) if text.bytes().all(|b| b.is_ascii_digit()) => (
            format!("invalid duration `{text}`"),
            format!("add a unit: `{text}s`, `{text}m`, `{text}h`, `{text}d` or `{text}w`"),
        ),
        Some(DurationError::Malformed) => (
            format!("invalid duration `{text}`"),
            "write whole numbers followed by a unit (`s`, `m`, `h`, `d` or `w`), such as `90m` or `1h30m`"
                .to_owned(),
        ),
    };
    Diagnostic::new(codes::INVALID_DURATION, span, message).with_help(help)
}

/// `1 day`, `2 hours`, `30min`, with the duration as it should be written.
pub fn wordy_duration(span: Span, text: &str, suggestion: &str) -> Diagnostic {
    Diagnostic::new(
        codes::INVALID_DURATION,
        span,
        format!("invalid duration `{text}`"),
    )
    .with_help(format!("write `{suggestion}`"))
}

/// A time of day that is not strictly `00:00`..`23:59`.
pub fn invalid_time_of_day(span: Span, text: &str, error: TimeOfDayError) -> Diagnostic {
    let help = match error {
        TimeOfDayError::Hours { midnight: true } => {
            "hours go from `00` to `23`; write `00:00` for midnight".to_owned()
        }
        TimeOfDayError::Hours { midnight: false } => "hours go from `00` to `23`".to_owned(),
        TimeOfDayError::Minutes => "minutes go from `00` to `59`".to_owned(),
        TimeOfDayError::Digits { hours, minutes } => {
            format!("write two digits for the hours and the minutes: `{hours:02}:{minutes:02}`")
        }
    };
    Diagnostic::new(
        codes::INVALID_TIME_OF_DAY,
        span,
        format!("invalid time of day `{text}`"),
    )
    .with_help(help)
}

/// A timestamp that is not RFC 3339.
pub fn invalid_timestamp(span: Span, text: &str) -> Diagnostic {
    let help = if text.contains(['T', 't']) {
        "write an RFC 3339 timestamp with its offset, such as `2026-12-24T09:00:00Z` or `2026-12-24T09:00:00+01:00`"
    } else {
        "add a time and an offset, such as `2026-12-24T09:00:00Z`"
    };
    Diagnostic::new(
        codes::INVALID_TIMESTAMP,
        span,
        format!("invalid timestamp `{text}`"),
    )
    .with_help(help)
}

/// A percentage outside `(0%, 100%]`.
pub fn invalid_percent(span: Span, text: &str) -> Diagnostic {
    Diagnostic::new(
        codes::INVALID_PERCENT,
        span,
        format!("invalid percentage `{text}`"),
    )
    .with_help("a percentage must be more than `0%` and at most `100%`")
}

/// An expression of more than `max` operators and operands.
pub fn expression_too_long(span: Span, max: usize) -> Diagnostic {
    Diagnostic::new(codes::SYNTAX, span, "this expression is too long")
        .with_label(format!("more than {max} operators and operands"))
        .with_help("split the condition into segments, each a part of it")
}

/// `=` where `==` was meant.
pub fn assign_in_condition(span: Span) -> Diagnostic {
    Diagnostic::new(codes::ASSIGN_IN_CONDITION, span, "found `=` in a condition")
        .with_label("this assigns; it does not compare")
        .with_help("use `==` to compare")
}

/// A part of a declaration or an option of a send given twice.
pub fn given_twice(span: Span, part: &str, owner: &str) -> Diagnostic {
    Diagnostic::new(
        codes::DUPLICATE_CLAUSE,
        span,
        format!("`{part}` given twice in {owner}"),
    )
    .with_help(format!("keep one `{part}`"))
}

/// A template with no `channel`.
pub fn template_without_channel(span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        codes::SYNTAX,
        span,
        format!("template `{name}` has no `channel`"),
    )
    .with_help("add the channel it is sent on, such as `channel email`")
}
