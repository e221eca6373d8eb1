//! Escaping text that came from source files before it reaches a terminal
//! or a CI log: a raw control character or ANSI escape sequence in a
//! journey must show as `\u{1b}`, never recolour or rewrite the screen.

use std::borrow::Cow;

/// Whether `c` is printed escaped: control characters other than tab and
/// newline (ESC starts an ANSI sequence, U+009B is one on its own), and the
/// bidirectional formatting characters that reorder what a reader sees
/// ("Trojan Source").
pub fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every character of [`needs_escape`] written as `\u{1b}`;
/// borrowed when there is none, as in almost every message.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c`, escaped when it needs to be.
pub fn push(out: &mut String, c: char) {
    if needs_escape(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_but_not_tabs_newlines_or_unicode() {
        assert_eq!(text("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(text("\u{9b}2J\r\u{7f}\0"), "\\u{9b}2J\\u{d}\\u{7f}\\u{0}");
        assert_eq!(text("x\u{202e}y"), "x\\u{202e}y");
        assert!(matches!(text("tab\there\nnext é 日"), Cow::Borrowed(_)));
    }
}
