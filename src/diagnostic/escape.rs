//! Escaping text that came from source files before it reaches a terminal
//! or a CI log: a raw control character or ANSI escape sequence in a
//! journey must show as `\u{1b}`, never recolour or rewrite the screen.

use std::borrow::Cow;
use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

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

/// `value` as JSON on one line, with [`needs_escape`] characters escaped.
pub fn json(value: &impl Serialize) -> String {
    to_json(value, Safe(CompactFormatter))
}

/// `value` as indented JSON, with [`needs_escape`] characters escaped.
pub fn json_pretty(value: &impl Serialize) -> String {
    to_json(value, Safe(PrettyFormatter::new()))
}

fn to_json(value: &impl Serialize, formatter: impl Formatter) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing plain strings and integers into a Vec cannot fail, and
    // serde_json writes UTF-8.
    let _ = value.serialize(&mut serializer);
    String::from_utf8(out).unwrap_or_default()
}

/// A serde_json formatter that also writes DEL, the C1 controls and the
/// bidirectional formatting characters as `\u009b`: JSON escapes only the
/// C0 controls, and JSON on a terminal or in a CI log would carry them raw.
/// Delegates what the compact and pretty formatters override.
struct Safe<F>(F);

impl<F: Formatter> Formatter for Safe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut copied = 0;
        for (at, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[copied..at])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                copied = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[copied..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_json_leaves_raw_and_reads_back_the_same() {
        let value = serde_json::json!({"m": "a\u{1b}b\u{9b}c\u{7f}d\u{202e}é", "n": [1, 2]});
        let compact = json(&value);
        assert_eq!(
            compact,
            r#"{"m":"a\u001bb\u009bc\u007fd\u202eé","n":[1,2]}"#
        );
        let pretty = json_pretty(&value);
        assert_eq!(
            pretty,
            serde_json::to_string_pretty(&value)
                .unwrap()
                .replace('\u{9b}', "\\u009b")
                .replace('\u{7f}', "\\u007f")
                .replace('\u{202e}', "\\u202e")
        );
        for text in [compact, pretty] {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                value
            );
        }
    }

    #[test]
    fn escapes_controls_and_bidi_but_not_tabs_newlines_or_unicode() {
        assert_eq!(text("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(text("\u{9b}2J\r\u{7f}\0"), "\\u{9b}2J\\u{d}\\u{7f}\\u{0}");
        assert_eq!(text("x\u{202e}y"), "x\\u{202e}y");
        assert!(matches!(text("tab\there\nnext é 日"), Cow::Borrowed(_)));
    }
}
