//! The cheap pre-pass of the parser: splits a file into top-level items
//! (tracking strings, comments and brace depth) so that each item is parsed on
//! its own and an error in one never hides the errors in the next.

use std::ops::Range;

/// Keywords that start a top-level item.
pub const ITEM_KEYWORDS: &[&str] = &[
    "event", "profile", "channel", "template", "segment", "policy", "journey",
];

/// Keywords that, at column 0, start a new item even inside an unclosed
/// block: a forgotten `}` then costs one item, not the rest of the file.
/// (`channel`, `event` and `profile` also appear inside items.)
const RESYNC_KEYWORDS: &[&str] = &["template", "segment", "policy", "journey"];

/// One top-level item's text (or a run of text that starts no item).
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Byte range in the file; starts at the item's keyword.
    pub range: Range<usize>,
    /// The `///` lines directly above the item.
    pub doc: Option<String>,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Skips a string starting at the opening quote; returns the index after it.
pub fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Skips a `//` comment; returns the index of its newline (or the end).
pub fn skip_comment(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| i + p)
}

/// The next byte after `i` that is not a space or tab.
fn next_significant(bytes: &[u8], mut i: usize) -> Option<u8> {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    bytes.get(i).copied()
}

/// Splits `text` into chunks, each starting at a top-level keyword; text
/// before the first item is its own chunk when it holds anything but
/// whitespace and comments.
pub fn split(text: &str) -> Vec<Chunk> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut prev = 0u8;
    let mut leading_content = false;
    // A byte-order mark is not part of the first item.
    let mut i = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = skip_comment(bytes, i);
                continue;
            }
            b'"' => i = skip_string(bytes, i),
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ if is_ident_byte(b) => {
                let end = i + bytes[i..].iter().take_while(|&&c| is_ident_byte(c)).count();
                let word = &text[i..end];
                let after = next_significant(bytes, end);
                let not_a_path = !matches!(after, Some(b'.') | Some(b':'));
                let top = depth == 0
                    && (line_start || prev == b'}')
                    && not_a_path
                    && ITEM_KEYWORDS.contains(&word);
                let column0 = i == 0 || bytes[i - 1] == b'\n';
                let resync = depth > 0
                    && column0
                    && RESYNC_KEYWORDS.contains(&word)
                    && matches!(after, Some(c) if c == b'{' || is_ident_byte(c))
                    && end < bytes.len()
                    && (bytes[end] == b' ' || bytes[end] == b'\t');
                if top || resync {
                    starts.push(i);
                    depth = 0;
                } else if starts.is_empty() {
                    leading_content = true;
                }
                i = end;
            }
            _ => {
                if starts.is_empty() {
                    leading_content = true;
                }
                i += 1;
            }
        }
        if starts.is_empty() && matches!(b, b'"' | b'{' | b'}') {
            leading_content = true;
        }
        prev = bytes[i - 1];
        line_start = false;
    }

    let mut chunks = Vec::with_capacity(starts.len() + 1);
    if leading_content {
        chunks.push(Chunk {
            range: 0..starts.first().copied().unwrap_or(text.len()),
            doc: None,
        });
    }
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        chunks.push(Chunk {
            range: start..end,
            doc: doc_above(text, start),
        });
    }
    chunks
}

/// The deepest nesting of `{`, `[` and `(` an item may have. pest and the
/// visitors recurse once or more per level; this bound keeps any input far
/// from the end of the native stack (real journeys nest a handful of levels).
pub const MAX_NESTING: usize = 64;

/// Where the nesting of `{`, `[` and `(` in `text` (outside strings and
/// comments) first goes deeper than [`MAX_NESTING`]: the offset of that
/// opening bracket.
pub fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
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
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The `///` lines directly above the line holding `pos`, without the
/// slashes and one leading space, joined by `\n`.
fn doc_above(text: &str, pos: usize) -> Option<String> {
    let line_start = text[..pos].rfind('\n').map_or(0, |p| p + 1);
    if !text[line_start..pos].trim().is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut end = line_start;
    while end > 0 {
        let above_start = text[..end - 1].rfind('\n').map_or(0, |p| p + 1);
        let line = text[above_start..end - 1].trim();
        let Some(doc) = line.strip_prefix("///") else {
            break;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        lines.push(doc.trim_end());
        end = above_start;
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        split(src).into_iter().map(|c| &src[c.range]).collect()
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
    }

    #[test]
    fn leading_garbage_is_its_own_chunk() {
        let src = "oops\njourney j { }";
        assert_eq!(texts(src), vec!["oops\n", "journey j { }"]);
        assert_eq!(texts("// only a comment\n\njourney j { }").len(), 1);
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
        let chunks = split(src);
        assert_eq!(chunks[0].doc.as_deref(), Some("Line one.\n  indented"));
        let src = "/// detached\n\njourney j { }";
        assert_eq!(split(src)[0].doc, None);
    }

    #[test]
    fn nesting_depth_ignores_strings_and_comments() {
        let deep = "(".repeat(MAX_NESTING);
        assert_eq!(too_deep(&deep), None);
        assert_eq!(too_deep(&format!("{deep}[")), Some(MAX_NESTING));
        assert_eq!(too_deep(&format!("\"{deep}(\" // {deep}(\n")), None);
        assert_eq!(too_deep(&"{}".repeat(1000)), None);
    }
}
