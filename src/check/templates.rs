//! Declared templates: channel, body, Jinja syntax (parsed with minijinja at
//! compile time) and variables.
//!
//! The variable rule: every variable a template reads without declaring it
//! (`{{ x }}`, `{% if x %}`, but not a `{% for x in ... %}` loop variable)
//! must be one of
//! - `profile` or `profile.<field>...`: checked against the profile schema
//!   when the project declares one (the built-in channel fields `email`,
//!   `phone`, `push_token`, `timezone`, `unsubscribed`, `consent` are always
//!   allowed);
//! - `trigger.*` (the event that started the journey; not checked here, as a
//!   template may serve journeys with different triggers), `journey.*`,
//!   `message_id`, or one of minijinja's global functions;
//! - anything else is a `with` variable: every send of the template must
//!   provide it with `with { key: ... }` (E0502 at each send that lacks it);
//!   when no send provides it, it is reported once, at the template (E0502),
//!   as it is most likely a typo.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Checker;
use super::problem::{Problem, RenderLimit, TemplateCall, TemplateName, UnknownVariable};
use super::types::Type;
use crate::diagnostic::did_you_mean;
use crate::dialect;
use crate::source::Span;
use crate::syntax::ast;

/// Roots a template can always read.
const KNOWN_ROOTS: &[&str] = &["profile", "trigger", "journey", "message_id"];

/// Names `undeclared_variables` reports that are not variables: the
/// dialect's functions, and `loop` (a recursive loop's call).
const GLOBALS: &[&str] = &["range", "loop"];

/// The `with` variables of one template, each with where it is first used.
pub(crate) struct WithVars<'a> {
    template: &'a ast::TemplateDecl,
    vars: BTreeMap<String, Span>,
}

/// The sends of each declared template, recorded while checking journeys.
#[derive(Default)]
pub(crate) struct Sends<'a> {
    by_template: FxHashMap<&'a str, Vec<&'a ast::SendAlt>>,
}

impl<'a> Sends<'a> {
    pub fn record(&mut self, template: &'a str, alt: &'a ast::SendAlt) {
        self.by_template.entry(template).or_default().push(alt);
    }
}

/// Checks every declared template; returns their `with` variables.
pub(crate) fn check_declarations<'a>(cx: &mut Checker<'a>) -> Vec<WithVars<'a>> {
    let templates: Vec<&'a ast::TemplateDecl> = cx
        .scope
        .templates
        .names()
        .filter_map(|n| cx.scope.templates.get(n).copied())
        .collect();
    let mut out = Vec::new();
    for t in templates {
        cx.check_channel(&t.channel);
        if t.body.is_none() {
            cx.report(Problem::TemplateWithoutBody {
                span: t.name.span,
                template: t.name.name.clone(),
            });
        }
        let mut vars = BTreeMap::new();
        if let Some(html) = &t.html
            && !crate::channels::takes_html(&t.channel.name)
        {
            cx.report(Problem::HtmlNotEmail {
                span: html.span,
                template: t.name.name.clone(),
                channel: t.channel.name.clone(),
            });
        }
        let parts = crate::channels::TEMPLATE_PARTS
            .iter()
            .copied()
            .zip([&t.subject, &t.body, &t.html]);
        for (part, lit) in parts {
            if let Some(lit) = lit {
                check_text(cx, t, part, lit, &mut vars);
            }
        }
        if !vars.is_empty() {
            out.push(WithVars { template: t, vars });
        }
    }
    out
}

/// Parses one subject or body; reports syntax errors and bad variables.
fn check_text(
    cx: &mut Checker,
    t: &ast::TemplateDecl,
    part: &'static str,
    lit: &ast::StrLit,
    vars: &mut BTreeMap<String, Span>,
) {
    // Parsing needs no filters or globals, so the empty environment does.
    let env = minijinja::Environment::empty();
    let template = match env.template_from_str(&lit.value) {
        Ok(template) => template,
        Err(e) => {
            syntax_error(cx, t, part, lit, &e);
            return;
        }
    };
    let called = check_names(cx, t, part, lit);
    // A HashSet: sorted so that diagnostics never depend on hashing.
    let mut names: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    names.sort();
    for name in names {
        let root = name.split('.').next().unwrap_or(&name);
        let known = GLOBALS.contains(&root) || called.iter().any(|c| c == root);
        if known || matches!(root, "trigger" | "journey" | "message_id") {
            continue;
        }
        if root == "profile" {
            check_profile_variable(cx, t, lit, &name);
            continue;
        }
        if !vars.contains_key(root) {
            let span = locate(cx, lit, root);
            vars.insert(root.to_string(), span);
        }
    }
}

fn syntax_error(
    cx: &mut Checker,
    t: &ast::TemplateDecl,
    part: &'static str,
    lit: &ast::StrLit,
    e: &minijinja::Error,
) {
    // minijinja gives the line (exact ranges need its `debug` feature,
    // which also brings the `debug()` function: off, see Cargo.toml).
    let value_range = e.line().and_then(|line| {
        let start = line_start(&lit.value, line)?;
        let end = lit.value[start..]
            .find('\n')
            .map_or(lit.value.len(), |n| start + n);
        Some(start..end)
    });
    let span = match value_range {
        Some(r) => literal_span(cx, lit, r.start, r.end.max(r.start)),
        None => lit.span,
    };
    let detail = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_string);
    cx.report(Problem::TemplateSyntax {
        span,
        template: t.name.name.clone(),
        part,
        detail,
    });
}

/// What the dialect (src/dialect.rs) does not know, and what is sure to
/// pass its limits, found in the template's tokens: unknown filters, tests
/// and functions, forbidden statements, a literal `range(N)` over
/// [`dialect::MAX_RANGE`], nested literal loops over the fuel, a literal
/// string repeated past the part size.
/// Returns the names called as functions, which are not variables.
fn check_names(
    cx: &mut Checker,
    t: &ast::TemplateDecl,
    part: &'static str,
    lit: &ast::StrLit,
) -> Vec<String> {
    use minijinja::machinery::{Token, WhitespaceConfig, tokenize};
    let tokens: Vec<(Token, Span)> = tokenize(
        &lit.value,
        false,
        Default::default(),
        WhitespaceConfig::default(),
    )
    .map_while(Result::ok)
    .map(|(token, span)| {
        let span = literal_span(
            cx,
            lit,
            span.start_offset as usize,
            span.end_offset as usize,
        );
        (token, span)
    })
    .collect();
    let ident = |i: usize| match tokens.get(i) {
        Some((Token::Ident(name), _)) => Some(*name),
        _ => None,
    };
    let int = |i: usize| match tokens.get(i) {
        Some((Token::Int(n), _)) => Some(*n),
        _ => None,
    };
    let is = |i: usize, want: &Token| {
        tokens
            .get(i)
            .is_some_and(|(tok, _)| std::mem::discriminant(tok) == std::mem::discriminant(want))
    };
    let template = &t.name.name;
    // Known sizes of the enclosing `for` loops.
    let mut loops: Vec<Option<u64>> = Vec::new();
    let mut called = Vec::new();
    for (i, (token, span)) in tokens.iter().enumerate() {
        let span = *span;
        let after_block = i > 0 && is(i - 1, &Token::BlockStart);
        match token {
            Token::Ident(name) if after_block => {
                if dialect::FORBIDDEN_STATEMENTS.contains(name) {
                    cx.report(Problem::TemplateUnknownName {
                        span,
                        template: template.clone(),
                        part,
                        kind: TemplateName::Forbidden {
                            statement: name.to_string(),
                        },
                    });
                } else if *name == "filter" {
                    if let Some(filter) = ident(i + 1) {
                        check_known(cx, tokens[i + 1].1, "filter", filter, template, part);
                    }
                } else if *name == "for" {
                    let size = (i + 2..tokens.len().min(i + 12))
                        .find(|&k| ident(k) == Some("in"))
                        .and_then(|k| {
                            (ident(k + 1) == Some("range")).then(|| range_size(&tokens, k + 3))
                        })
                        .flatten();
                    loops.push(size);
                    let runs = loops
                        .iter()
                        .flatten()
                        .try_fold(1u64, |acc, n| acc.checked_mul(*n));
                    if runs.is_none_or(|n| n > dialect::RENDER_FUEL)
                        && loops.iter().flatten().count() > 1
                    {
                        too_much(cx, span, RenderLimit::NestedLoops, template, part);
                    }
                } else if *name == "endfor" {
                    loops.pop();
                }
            }
            Token::Ident(name)
                if i > 0
                    && is(i - 1, &Token::Pipe)
                    && check_known(cx, span, "filter", name, template, part) =>
            {
                check_call(cx, &tokens, i, "filter", name, template, part);
            }
            Token::Ident(_) if i > 0 && is(i - 1, &Token::Pipe) => {}
            Token::Ident(name)
                if i > 0
                    && (ident(i - 1) == Some("is")
                        || (ident(i - 1) == Some("not")
                            && ident(i.wrapping_sub(2)) == Some("is"))) =>
            {
                check_known(cx, span, "test", name, template, part);
            }
            Token::Ident(name)
                if is(i + 1, &Token::ParenOpen) && !(i > 0 && is(i - 1, &Token::Dot)) =>
            {
                if *name == "range" {
                    check_call(cx, &tokens, i, "function", name, template, part);
                    if let Some(n) = range_size(&tokens, i + 2)
                        && n > dialect::MAX_RANGE
                    {
                        too_much(cx, span, RenderLimit::Range(n), template, part);
                    }
                } else if *name != "loop" {
                    if check_known(cx, span, "function", name, template, part) {
                        check_call(cx, &tokens, i, "function", name, template, part);
                    }
                    called.push(name.to_string());
                }
            }
            Token::Mul => {
                // `'text' * N` or `N * 'text'`, both written in the template.
                let text = |k: usize| match tokens.get(k) {
                    Some((Token::Str(s), _)) => Some(s.len() as u64),
                    Some((Token::String(s), _)) => Some(s.len() as u64),
                    _ => None,
                };
                let size = match (
                    text(i.wrapping_sub(1)),
                    int(i + 1),
                    int(i.wrapping_sub(1)),
                    text(i + 1),
                ) {
                    (Some(len), Some(n), _, _) | (_, _, Some(n), Some(len)) => len.checked_mul(n),
                    _ => Some(0),
                };
                if size.is_none_or(|s| s > dialect::MAX_PART_BYTES as u64) {
                    too_much(cx, span, RenderLimit::RepeatedText, template, part);
                }
            }
            _ => {}
        }
    }
    called
}

/// The count of a `range(` call's numbers when its arguments, from token
/// `at`, are whole numbers written in the template.
fn range_size(tokens: &[(minijinja::machinery::Token, Span)], at: usize) -> Option<u64> {
    use minijinja::machinery::Token;
    let mut args = Vec::new();
    let mut k = at;
    loop {
        match tokens.get(k).map(|(t, _)| t) {
            Some(Token::Int(n)) => args.push(*n),
            _ => return None,
        }
        match tokens.get(k + 1).map(|(t, _)| t) {
            Some(Token::Comma) => k += 2,
            Some(Token::ParenClose) => break,
            _ => return None,
        }
    }
    match args[..] {
        [n] => Some(n),
        [a, b] => Some(b.saturating_sub(a)),
        [a, b, step] if step > 0 => Some(b.saturating_sub(a).div_ceil(step)),
        _ => None,
    }
}

/// Reports `name` unless the dialect has it as a `kind`; whether it has.
fn check_known(
    cx: &mut Checker,
    span: Span,
    kind: &'static str,
    name: &str,
    template: &str,
    part: &'static str,
) -> bool {
    let known: Vec<&str> = match kind {
        "filter" => dialect::FILTERS.iter().map(|f| f.name).collect(),
        "test" => dialect::TESTS.to_vec(),
        _ => dialect::FUNCTIONS.iter().map(|f| f.name).collect(),
    };
    if known.contains(&name) {
        return true;
    }
    let alias = dialect::ALIASES
        .iter()
        .find(|(other, _)| *other == name)
        .map(|(_, ours)| *ours)
        .filter(|ours| known.contains(ours));
    let suggestion = did_you_mean(name, known.iter().copied()).or_else(|| {
        alias.map(|ours| {
            let usage = dialect::filter(ours)
                .or_else(|| dialect::function(ours))
                .map_or(ours, |c| c.usage);
            format!("did you mean `{ours}`? (write `{usage}`)")
        })
    });
    cx.report(Problem::TemplateUnknownName {
        span,
        template: template.to_string(),
        part,
        kind: TemplateName::Unknown {
            kind,
            name: name.to_string(),
            suggestion,
        },
    });
    false
}

/// The arguments of the filter or function named at token `at`: how many
/// (none without parentheses), and whether they fit the dialect's
/// [`dialect::Callable`]; a `date` pattern or `currency` code written in
/// the template is checked too.
fn check_call(
    cx: &mut Checker,
    tokens: &[(minijinja::machinery::Token, Span)],
    at: usize,
    kind: &'static str,
    name: &str,
    template: &str,
    part: &'static str,
) {
    use minijinja::machinery::Token;
    let callable = if kind == "filter" {
        dialect::filter(name)
    } else {
        dialect::function(name)
    };
    let Some(callable) = callable else { return };
    let (mut given, mut end) = (0, at);
    let mut literal: Option<&str> = None;
    if matches!(tokens.get(at + 1), Some((Token::ParenOpen, _))) {
        let mut depth = 0usize;
        let mut empty = true;
        for (k, (token, _)) in tokens.iter().enumerate().skip(at + 1) {
            match token {
                Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
                Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                Token::Comma if depth == 1 => given += 1,
                _ => {}
            }
            if depth >= 1 && k > at + 1 {
                empty = false;
            }
        }
        if !empty {
            given += 1;
        }
        if given == 1 && end == at + 3 {
            literal = match tokens.get(at + 2) {
                Some((Token::Str(text), _)) => Some(text),
                Some((Token::String(text), _)) => Some(&**text),
                _ => None,
            };
        }
    }
    let span = tokens[at].1.to(tokens[end].1);
    let (min, max) = callable.args;
    if given < usize::from(min) || given > usize::from(max) {
        cx.report(Problem::TemplateCall {
            span,
            template: template.to_string(),
            part,
            kind: TemplateCall::Arity {
                kind,
                name: name.to_string(),
                args: callable.args,
                given,
                usage: callable.usage,
            },
        });
        return;
    }
    let problem = match (name, literal) {
        ("date", Some(pattern)) => {
            dialect::valid_date_pattern(pattern)
                .err()
                .map(|error| TemplateCall::DatePattern {
                    pattern: pattern.to_string(),
                    error,
                })
        }
        ("currency", Some(code))
            if !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())) =>
        {
            Some(TemplateCall::Currency {
                code: code.to_string(),
            })
        }
        _ => None,
    };
    if let Some(kind) = problem {
        cx.report(Problem::TemplateCall {
            span,
            template: template.to_string(),
            part,
            kind,
        });
    }
}

fn too_much(cx: &mut Checker, span: Span, limit: RenderLimit, template: &str, part: &'static str) {
    cx.report(Problem::TemplateLimit {
        span,
        template: template.to_string(),
        part,
        limit,
    });
}

/// Byte offset of the start of 1-based line `line` in `text`.
fn line_start(text: &str, line: usize) -> Option<usize> {
    if line <= 1 {
        return Some(0);
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

/// `profile.a.b` in a template, against the profile schema if declared.
fn check_profile_variable(cx: &mut Checker, t: &ast::TemplateDecl, lit: &ast::StrLit, name: &str) {
    let Some(profile) = cx.scope.profile.clone() else {
        return;
    };
    let mut parts = name.split('.').skip(1);
    let Some(first) = parts.next() else { return };
    let mut ty = match profile.get(first) {
        Some(f) => f.ty.clone(),
        None if crate::channels::is_builtin_profile_field(first) => return,
        None => {
            let path = format!("profile.{first}");
            let kind = UnknownVariable::ProfileField {
                suggestion: did_you_mean(first, profile.names()),
                declared: profile.list_names(),
                path: path.clone(),
            };
            unknown_variable(cx, t, lit, &path, kind);
            return;
        }
    };
    let mut prefix = format!("profile.{first}");
    for part in parts {
        let next = match &ty {
            Type::Object(o) => match o.get(part) {
                Some(f) => f.ty.clone(),
                None => {
                    let path = format!("{prefix}.{part}");
                    let kind = UnknownVariable::NestedField {
                        suggestion: did_you_mean(part, o.names()),
                        declared: o.list_names(),
                        prefix: prefix.clone(),
                        path: path.clone(),
                    };
                    unknown_variable(cx, t, lit, &path, kind);
                    return;
                }
            },
            _ => return,
        };
        prefix.push('.');
        prefix.push_str(part);
        ty = next;
    }
}

fn unknown_variable(
    cx: &mut Checker,
    t: &ast::TemplateDecl,
    lit: &ast::StrLit,
    path: &str,
    kind: UnknownVariable,
) {
    cx.report(Problem::TemplateUnknownVariable {
        span: locate(cx, lit, path),
        template: t.name.name.clone(),
        kind,
    });
}

/// After every journey: each `with` variable must be provided by every send
/// of its template.
pub(crate) fn check_sends(cx: &mut Checker, templates: &[WithVars], sends: &Sends) {
    for tv in templates {
        let name = tv.template.name.name.as_str();
        let alts = sends.by_template.get(name).map_or(&[][..], Vec::as_slice);
        for (var, &used) in &tv.vars {
            let provides = |alt: &&ast::SendAlt| alt.with.iter().any(|w| &w.key.name == var);
            if !alts.iter().any(provides) {
                cx.report(Problem::TemplateUnknownVariable {
                    span: used,
                    template: name.to_string(),
                    kind: UnknownVariable::NotProvided {
                        var: var.clone(),
                        suggestion: did_you_mean(var, KNOWN_ROOTS.iter().copied()),
                    },
                });
                continue;
            }
            for alt in alts.iter().filter(|a| !provides(a)) {
                cx.report(Problem::TemplateUnknownVariable {
                    span: alt.span,
                    template: name.to_string(),
                    kind: UnknownVariable::SendLacks {
                        var: var.clone(),
                        used,
                    },
                });
            }
        }
    }
}

/// The span of the first `needle` in a literal's value, or the literal.
fn locate(cx: &Checker, lit: &ast::StrLit, needle: &str) -> Span {
    let found = lit.value.match_indices(needle).find(|&(i, _)| {
        let before = lit.value[..i].chars().next_back();
        let after = lit.value[i + needle.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    });
    match found {
        Some((i, _)) => literal_span(cx, lit, i, i + needle.len()),
        None => lit.span,
    }
}

/// Maps a byte range of a string's value (escapes decoded) to the span of
/// the source text that wrote it.
fn literal_span(cx: &Checker, lit: &ast::StrLit, start: usize, end: usize) -> Span {
    let raw = cx.sources.get(lit.span.file).slice(lit.span);
    let (Some(s), Some(e)) = (source_offset(raw, start), source_offset(raw, end)) else {
        return lit.span;
    };
    Span {
        file: lit.span.file,
        start: lit.span.start + s as u32,
        end: lit.span.start + e.max(s) as u32,
    }
}

/// The offset in `raw` (a string literal with its quotes) of the byte at
/// `value_offset` in its decoded value.
pub(crate) fn source_offset(raw: &str, value_offset: usize) -> Option<usize> {
    let body = raw.strip_prefix('"')?;
    let base = 1;
    let mut value = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if value >= value_offset {
            return Some(base + i);
        }
        if c == '"' {
            return None;
        }
        if c != '\\' {
            value += c.len_utf8();
            continue;
        }
        match chars.next() {
            Some((_, 'u')) => {
                let mut hex = String::new();
                for (_, h) in chars.by_ref() {
                    if h == '}' {
                        break;
                    }
                    if h != '{' {
                        hex.push(h);
                    }
                }
                let decoded = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or(1, char::len_utf8);
                value += decoded;
            }
            Some(_) => value += 1,
            None => return None,
        }
    }
    (value >= value_offset).then_some(raw.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::source_offset;

    #[test]
    fn maps_value_offsets_through_escapes() {
        let raw = r#""a\nb{{ x }}""#;
        // value: a, \n, b, {  → `{` is value byte 3, raw byte 5.
        assert_eq!(source_offset(raw, 0), Some(1));
        assert_eq!(source_offset(raw, 3), Some(5));
        let raw = r#""\u{1F600} {{""#;
        // the emoji is 4 value bytes, 9 raw bytes.
        assert_eq!(source_offset(raw, 5), Some(11));
    }

    #[test]
    fn end_of_value_maps_to_the_closing_quote() {
        assert_eq!(source_offset(r#""ab""#, 2), Some(3));
    }
}
