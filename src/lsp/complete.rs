//! Completion: what may be written at a point of a file. The statement
//! being typed does not parse yet (its item is left out of the syntax
//! tree), so the context is read from the text before the cursor; the
//! names offered come from the project's other, parsed, items: event
//! names, the fields of `profile.`, of the event a `where` matches
//! (`event.`) and of the events that start the journey (`trigger.`), the
//! templates of a send's channel, and otherwise keywords, segments and
//! functions.

use crate::builtins::{Engagement, Function};
use crate::source::FileId;
use crate::syntax::ast::{self, Item};

use super::analysis::{Analysis, Kind, is_name, quote};

/// One thing that may be written at the cursor.
#[derive(Debug, PartialEq)]
pub struct Completion {
    pub label: String,
    pub kind: What,
    /// A type, a channel, a signature.
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Keyword,
    Event,
    Field,
    Template,
    Segment,
    Function,
    Engagement,
}

/// The words after which an event name comes.
const BEFORE_EVENT: &[&str] = &["trigger", "goal", "emit", "conversion"];

/// What may be written at byte `offset` of `file`.
pub fn complete(analysis: &Analysis, file: FileId, offset: usize) -> Vec<Completion> {
    let text = analysis.text(file);
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let partial = before.len()
        - before
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
    let before = &before[..partial];
    if let Some(path) = before.strip_suffix('.') {
        return after_dot(analysis, text, before, dotted_path(path));
    }
    let line = before.rsplit('\n').next().unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [.., "send" | "or", channel] if is_channel(analysis, channel) => {
            templates(analysis, channel)
        }
        [.., "enters" | "leaves"] => segments(analysis),
        [.., last] if BEFORE_EVENT.contains(last) => events(analysis),
        [.., "exit", "on"] | [.., "wait", "for"] => events(analysis),
        [.., "or"] if line.contains("wait for") => events(analysis),
        _ => everything(analysis),
    }
}

/// The names of `a.b.c` (the text before a `.`), read backwards.
fn dotted_path(before: &str) -> Vec<&str> {
    let start = before.len()
        - before
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .count();
    before[start..].split('.').collect()
}

fn after_dot(analysis: &Analysis, text: &str, before: &str, path: Vec<&str>) -> Vec<Completion> {
    let Some((root, rest)) = path.split_first() else {
        return Vec::new();
    };
    let fields: Vec<&[ast::FieldDecl]> = match *root {
        "profile" => profile(analysis).into_iter().collect(),
        "event" => where_event(before)
            .and_then(|name| event_fields(analysis, &name))
            .into_iter()
            .collect(),
        "trigger" => trigger_events(text, before.len())
            .iter()
            .filter_map(|name| event_fields(analysis, name))
            .collect(),
        // Any other name with a field is a handle (a segment has none);
        // the journey being typed does not parse, so it is not looked up.
        "journey" => return Vec::new(),
        _ if rest.is_empty()
            && is_name(root)
            && !analysis.symbols(Kind::Segment).any(|s| s.name == *root) =>
        {
            return Engagement::names()
                .chain(["sent"])
                .map(|e| Completion {
                    label: e.to_string(),
                    kind: What::Engagement,
                    detail: None,
                })
                .collect();
        }
        _ => return Vec::new(),
    };
    // Nested objects: each name of `rest` goes one level down.
    let fields: Vec<&[ast::FieldDecl]> = fields
        .into_iter()
        .filter_map(|mut level| {
            for name in rest {
                let field = level.iter().find(|f| f.name.name == *name)?;
                match &field.ty.kind {
                    ast::TypeKind::Object(inner) => level = inner,
                    _ => return None,
                }
            }
            Some(level)
        })
        .collect();
    // `trigger.` offers the fields every starting event has.
    let Some((first, others)) = fields.split_first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|f| {
            others
                .iter()
                .all(|o| o.iter().any(|g| g.name.name == f.name.name))
        })
        .map(|f| Completion {
            label: f.name.name.clone(),
            kind: What::Field,
            detail: Some(field_type(analysis, f)),
        })
        .collect()
}

/// A field's type as written (`number`, `string?`).
fn field_type(analysis: &Analysis, f: &ast::FieldDecl) -> String {
    let ty = analysis.sources().get(f.ty.span.file).slice(f.ty.span);
    if f.optional {
        format!("{ty}?")
    } else {
        ty.to_string()
    }
}

fn profile(analysis: &Analysis) -> Option<&[ast::FieldDecl]> {
    analysis.build.project.items().find_map(|i| match i {
        Item::Profile(p) => Some(p.fields.as_slice()),
        _ => None,
    })
}

fn event_fields<'a>(analysis: &'a Analysis, name: &str) -> Option<&'a [ast::FieldDecl]> {
    analysis.build.project.items().find_map(|i| match i {
        Item::Event(e) if e.name.name == name => Some(e.fields.as_slice()),
        _ => None,
    })
}

/// The event a `where` clause being written matches: the name before the
/// last `where` of the statement (after the last brace).
fn where_event(before: &str) -> Option<String> {
    let statement = &before[before.rfind(['{', '}']).map_or(0, |i| i + 1)..];
    let mut at = statement.len();
    loop {
        let found = statement[..at].rfind("where")?;
        let end = found + "where".len();
        let bounded = |i: Option<u8>| i.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        let bytes = statement.as_bytes();
        if bounded(found.checked_sub(1).map(|i| bytes[i])) && bounded(bytes.get(end).copied()) {
            return event_before(statement[..found].trim_end());
        }
        at = found;
    }
}

/// The event name that ends `text`: an identifier or a string.
fn event_before(text: &str) -> Option<String> {
    if let Some(inner) = text.strip_suffix('"') {
        let open = inner.rfind('"')?;
        return Some(crate::syntax::unescape(&inner[open + 1..], |_, _, _| {}));
    }
    let word = text
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    is_name(word).then(|| word.to_string())
}

/// The events of the `trigger <event>` clauses of the journey the cursor
/// is in (a journey starts at a line `journey ...` and ends at a line `}`).
fn trigger_events(text: &str, cursor: usize) -> Vec<String> {
    let start = text[..cursor]
        .rmatch_indices("journey ")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n');
    let Some(start) = start else {
        return Vec::new();
    };
    let body = &text[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    const NOT_AN_EVENT: &[&str] = &["no", "every", "on", "enters", "leaves", "anniversary"];
    body.lines()
        .filter_map(|line| line.trim_start().strip_prefix("trigger "))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            let first = rest.split_whitespace().next()?;
            if NOT_AN_EVENT.contains(&first) || first.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            let name_end = if let Some(quoted) = rest.strip_prefix('"') {
                quoted.find('"').map(|i| i + 2)?
            } else {
                first.len()
            };
            event_before(&rest[..name_end])
        })
        .collect()
}

fn is_channel(analysis: &Analysis, word: &str) -> bool {
    crate::channels::names().any(|c| c == word)
        || analysis
            .build
            .project
            .items()
            .any(|i| matches!(i, Item::Channel(c) if c.name.name == word))
}

fn templates(analysis: &Analysis, channel: &str) -> Vec<Completion> {
    analysis
        .build
        .project
        .items()
        .filter_map(|i| match i {
            Item::Template(t) if t.channel.name == channel => Some(Completion {
                label: t.name.name.clone(),
                kind: What::Template,
                detail: t.subject.as_ref().map(|s| s.value.clone()),
            }),
            _ => None,
        })
        .collect()
}

fn events(analysis: &Analysis) -> Vec<Completion> {
    analysis
        .symbols(Kind::Event)
        .map(|e| Completion {
            label: if is_name(&e.name) {
                e.name.clone()
            } else {
                quote(&e.name)
            },
            kind: What::Event,
            detail: None,
        })
        .collect()
}

fn segments(analysis: &Analysis) -> Vec<Completion> {
    analysis
        .symbols(Kind::Segment)
        .map(|s| Completion {
            label: s.name.clone(),
            kind: What::Segment,
            detail: None,
        })
        .collect()
}

/// Keywords, segments and functions.
fn everything(analysis: &Analysis) -> Vec<Completion> {
    let mut out: Vec<Completion> = Vec::new();
    for word in crate::syntax::keywords() {
        if !out.iter().any(|c| c.label == word) {
            out.push(Completion {
                label: word.to_string(),
                kind: What::Keyword,
                detail: None,
            });
        }
    }
    out.extend(segments(analysis));
    out.extend(Function::ALL.into_iter().map(|f| Completion {
        label: f.name().to_string(),
        kind: What::Function,
        detail: Some(f.usage().to_string()),
    }));
    out
}
