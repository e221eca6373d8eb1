//! A file cut into its top-level items, read off the tokens of the
//! grammar's `split` rule: each item is then parsed on its own, so an error
//! in one never hides the errors in the next. The same tokens give the
//! file's comments, each item's doc comment and how deeply it nests.

use std::ops::Range;

use pest::Parser;

use super::ast::Comment;
use super::grammar::{JourneyParser, Rule};
use crate::source::{FileId, Span};

/// The deepest nesting of `{`, `[` and `(` an item may have. pest and the
/// visitors recurse once or more per level; this bound keeps any input far
/// from the end of the native stack (real journeys nest a handful of levels).
pub const MAX_NESTING: usize = 64;

/// One top-level item's text (or a run of text that starts no item).
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Byte range in the file; starts at the item's keyword.
    pub range: Range<usize>,
    /// The `///` lines directly above the item.
    pub doc: Option<String>,
    /// The first `{`, `[` or `(` that nests deeper than [`MAX_NESTING`].
    pub too_deep: Option<usize>,
}

/// A file's items and comments.
#[derive(Debug, Default)]
pub struct Split {
    pub chunks: Vec<Chunk>,
    pub comments: Vec<Comment>,
}

/// Where a run of `///` lines ends, and their text.
#[derive(Default)]
struct DocLines<'a> {
    lines: Vec<&'a str>,
    /// The line number of the last one.
    last: usize,
}

/// Splits `text`; text before the first item is its own chunk when it holds
/// anything but whitespace and comments.
pub fn split(file: FileId, text: &str) -> Split {
    let mut out = Split::default();
    // `split` matches any text: every byte is some token.
    let Ok(mut pairs) = JourneyParser::parse(Rule::split, text) else {
        return out;
    };
    let Some(tokens) = pairs.next() else {
        return out;
    };
    let mut starts: Vec<(usize, Option<String>)> = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut after_close = false;
    let mut leading_content = false;
    let mut line = 0usize;
    let mut line_begin = 0usize;
    let mut doc = DocLines::default();
    // The nesting of the current chunk, and where it first went too deep.
    let mut nesting = 0usize;
    let mut too_deep: Vec<Option<usize>> = vec![None];
    for token in tokens.into_inner() {
        let rule = token.as_rule();
        let start = token.as_span().start();
        match rule {
            Rule::newline => {
                line += 1;
                line_begin = start + 1;
                line_start = true;
                continue;
            }
            Rule::bom => continue,
            Rule::comment => {
                let body = token.as_str();
                out.comments.push(Comment {
                    text: body.to_owned(),
                    span: Span::new(file, start, start + body.len()),
                });
                let alone = text[line_begin..start].trim().is_empty();
                if let Some(rest) = body.strip_prefix("///").filter(|_| alone) {
                    if doc.lines.is_empty() || doc.last + 1 != line {
                        doc.lines.clear();
                    }
                    let rest = rest.strip_prefix(' ').unwrap_or(rest);
                    doc.lines.push(rest.trim_end());
                    doc.last = line;
                }
                continue;
            }
            Rule::open_brace | Rule::open_bracket => {
                if rule == Rule::open_brace {
                    depth += 1;
                }
                nesting += 1;
                let deepest = too_deep.last_mut().filter(|d| d.is_none());
                if nesting > MAX_NESTING
                    && let Some(slot) = deepest
                {
                    *slot = Some(start);
                }
            }
            Rule::close_brace | Rule::close_bracket => {
                if rule == Rule::close_brace {
                    depth = depth.saturating_sub(1);
                }
                nesting = nesting.saturating_sub(1);
            }
            Rule::item_word | Rule::resync_word => {
                let top = depth == 0 && (line_start || after_close);
                let column0 = start == 0 || text.as_bytes()[start - 1] == b'\n';
                let resync = rule == Rule::resync_word && depth > 0 && column0;
                if top || resync {
                    let alone = text[line_begin..start].trim().is_empty();
                    let above = alone && !doc.lines.is_empty() && doc.last + 1 == line;
                    starts.push((start, above.then(|| doc.lines.join("\n"))));
                    depth = 0;
                    nesting = 0;
                    too_deep.push(None);
                }
            }
            _ => {}
        }
        if starts.is_empty() {
            leading_content = true;
        }
        after_close = rule == Rule::close_brace;
        line_start = false;
    }

    let mut too_deep = too_deep.into_iter();
    let leading_too_deep = too_deep.next().flatten();
    if leading_content {
        out.chunks.push(Chunk {
            range: 0..starts.first().map_or(text.len(), |s| s.0),
            doc: None,
            too_deep: leading_too_deep,
        });
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|s| s.0)
        .chain([text.len()])
        .collect();
    for (((start, doc), end), too_deep) in starts.into_iter().zip(ends).zip(too_deep) {
        out.chunks.push(Chunk {
            range: start..end,
            doc,
            too_deep: too_deep.map(|at| at - start),
        });
    }
    out
}

/// The end of the grammar token `rule` (`comment` or `quoted`) that starts
/// at `at` in `text`; `at` itself when none does.
pub fn token_end(rule: Rule, text: &str, at: usize) -> usize {
    JourneyParser::parse(rule, &text[at..])
        .ok()
        .and_then(|mut pairs| pairs.next())
        .map_or(at, |pair| at + pair.as_span().end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        split(FileId(0), src)
            .chunks
            .into_iter()
            .map(|c| &src[c.range])
            .collect()
    }

    #[test]
    fn splits_at_top_level_keywords_only() {
        let src = "segment a = profile.x\nsegment b = a\njourney j {\n  trigger event\n  if profile.y { }\n}\n";
        assert_eq!(
            texts(src),
            vec![
                "segment a = profile.x\n",
                "segment b = a\n",
                "journey j {\n  trigger event\n  if profile.y { }\n}\n"
            ]
        );
    }

    #[test]
    fn ignores_keywords_in_strings_comments_and_paths() {
        let src =
            "template t { body \"\njourney x\" }\n// journey y\nsegment s = a\n  and profile.b\n";
        assert_eq!(texts(src).len(), 2);
        assert_eq!(texts("journey a { } journey b { }").len(), 2);
        assert_eq!(texts("segment a = x segment b = y").len(), 1);
    }

    #[test]
    fn leading_garbage_is_its_own_chunk() {
        let src = "oops\njourney j { }";
        assert_eq!(texts(src), vec!["oops\n", "journey j { }"]);
        assert_eq!(texts("// only a comment\n\njourney j { }").len(), 1);
        assert_eq!(texts("\u{FEFF}journey j { }"), vec!["journey j { }"]);
    }

    #[test]
    fn an_unclosed_journey_does_not_swallow_the_next() {
        let src = "journey a {\n  wait 1h\n\njourney b {\n}\n";
        assert_eq!(
            texts(src),
            vec!["journey a {\n  wait 1h\n\n", "journey b {\n}\n"]
        );
    }

    #[test]
    fn doc_comments_belong_to_the_next_item() {
        let src = "// not doc\n/// Line one.\n///   indented\njourney j { }";
        let split = split(FileId(0), src);
        assert_eq!(
            split.chunks[0].doc.as_deref(),
            Some("Line one.\n  indented")
        );
        assert_eq!(split.comments.len(), 3);
        assert_eq!(split.comments[1].text, "/// Line one.");
        assert_eq!(split.comments[1].span.start, 11);
        let src = "/// detached\n\njourney j { }";
        assert_eq!(super::split(FileId(0), src).chunks[0].doc, None);
    }

    #[test]
    fn nesting_depth_ignores_strings_and_comments() {
        let deep = |src: &str| {
            super::split(FileId(0), &format!("segment s = {src}")).chunks[0]
                .too_deep
                .map(|at| at - "segment s = ".len())
        };
        let open = "(".repeat(MAX_NESTING);
        assert_eq!(deep(&open), None);
        assert_eq!(deep(&format!("{open}[")), Some(MAX_NESTING));
        assert_eq!(deep(&format!("\"{open}(\" // {open}(\n")), None);
        assert_eq!(deep(&"{}".repeat(1000)), None);
    }

    #[test]
    fn tokens_end_where_the_grammar_says() {
        assert_eq!(token_end(Rule::quoted, "x \"a\\\"b\" y", 2), 8);
        assert_eq!(token_end(Rule::quoted, "\"open", 0), 5);
        assert_eq!(token_end(Rule::comment, "a // c\nb", 2), 6);
    }
}
