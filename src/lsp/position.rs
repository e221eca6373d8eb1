//! Byte offsets (the compiler's [`Span`]s) to and from LSP positions: a
//! line and a column counted in UTF-16 code units, as the protocol's
//! default position encoding says (`é` is one unit, `😀` two).

use tower_lsp_server::ls_types::{Position, Range};

use crate::source::Span;

/// The LSP position of byte `offset` of `text` (clamped to the text, and
/// to the start of the character it falls inside).
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count();
    let character: usize = before[line_start..].chars().map(char::len_utf16).sum();
    Position::new(line as u32, character as u32)
}

/// The byte offset of an LSP position: past the end of its line means the
/// line's end, past the last line the text's end.
pub fn offset(text: &str, at: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..at.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= at.character as usize {
            return line_start + i;
        }
        units += c.len_utf16();
    }
    line_end
}

/// The LSP range of a span of `text`.
pub fn range(text: &str, span: Span) -> Range {
    Range::new(
        position(text, span.start as usize),
        position(text, span.end as usize),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_utf16_units() {
        let text = "a\n  name \"Défi 😀 x\"\nb";
        let x = text.find('x').unwrap();
        // `  name "D` is 9 units, `éfi ` 4, the emoji 2, the space 1.
        assert_eq!(position(text, x), Position::new(1, 16));
        assert_eq!(offset(text, Position::new(1, 16)), x);
        let b = text.rfind('b').unwrap();
        assert_eq!(position(text, b), Position::new(2, 0));
        assert_eq!(offset(text, Position::new(2, 0)), b);
    }

    #[test]
    fn every_offset_survives_the_round_trip() {
        let text = "é😀\r\nab\n\nz日本";
        for (i, _) in text.char_indices().chain([(text.len(), ' ')]) {
            assert_eq!(offset(text, position(text, i)), i, "offset {i}");
        }
    }

    #[test]
    fn positions_out_of_the_text_are_clamped() {
        let text = "ab\ncd";
        assert_eq!(offset(text, Position::new(0, 99)), 2);
        assert_eq!(offset(text, Position::new(7, 1)), text.len());
        assert_eq!(position(text, 99), Position::new(1, 2));
        // Inside a character: its start.
        assert_eq!(position("é", 1), Position::new(0, 0));
    }
}
