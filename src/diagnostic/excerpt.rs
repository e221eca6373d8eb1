//! A source file as miette reads it for the human report: its text with
//! control characters escaped, and a line index so each excerpt costs work
//! in proportion to the lines it shows, not to the file before it.

use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use super::escape;
use crate::source::{SourceFile, Span};

/// One file as shown: built once per file and report, read per diagnostic.
#[derive(Debug)]
pub struct Excerpt {
    /// The display name, escaped.
    name: String,
    /// The text with every character of [`escape::needs_escape`] escaped,
    /// except a carriage return before a newline (a CRLF line end).
    text: Arc<str>,
    /// Byte offset in `text` of the start of every line.
    line_starts: Vec<usize>,
    /// For every escaped character: its offset in the original text and the
    /// bytes that escaping added up to and including it, in order.
    shifts: Vec<(u32, usize)>,
}

impl Excerpt {
    pub fn new(file: &SourceFile) -> Excerpt {
        let original = &file.text;
        let mut shifts = Vec::new();
        let mut escaped = String::new();
        let mut copied = 0;
        let mut added = 0;
        for (at, c) in original.char_indices() {
            let crlf = c == '\r' && original.as_bytes().get(at + 1) == Some(&b'\n');
            if !escape::needs_escape(c) || crlf {
                continue;
            }
            escaped.push_str(&original[copied..at]);
            let before = escaped.len();
            escape::push(&mut escaped, c);
            added += escaped.len() - before - c.len_utf8();
            shifts.push((at as u32, added));
            copied = at + c.len_utf8();
        }
        let text = if shifts.is_empty() {
            original.clone()
        } else {
            escaped.push_str(&original[copied..]);
            Arc::from(escaped)
        };
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Excerpt {
            name: escape::text(&file.name).into_owned(),
            text,
            line_starts,
            shifts,
        }
    }

    /// Where `span` of the original text lies in the shown text.
    pub fn span(&self, span: Span) -> SourceSpan {
        let start = self.shown(span.start);
        let end = self.shown(span.end);
        (start, end - start).into()
    }

    /// An original offset in the shown text: moved on by the escapes before it.
    fn shown(&self, offset: u32) -> usize {
        let before = self.shifts.partition_point(|&(at, _)| at < offset);
        let added = before.checked_sub(1).map_or(0, |i| self.shifts[i].1);
        offset as usize + added
    }

    /// The 0-based line of a byte offset of the shown text.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) - 1
    }

    /// miette's answer for `span` read from the whole text: its name added.
    fn named<'a>(
        &self,
        contents: &dyn SpanContents<'a>,
        from: usize,
        first_line: usize,
    ) -> Box<dyn SpanContents<'a> + 'a> {
        let span = contents.span();
        Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            (span.offset() + from, span.len()).into(),
            contents.line() + first_line,
            contents.column(),
            contents.line_count() + first_line,
        ))
    }
}

impl SourceCode for Excerpt {
    /// Gives miette's own reading of a window of whole lines around the
    /// span (one more line than asked on either side, so that its scan
    /// ends inside the window), moved to the window's place in the file:
    /// the same answer as reading from the start of the file, in time
    /// proportional to the window.
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let start = span.offset();
        let end = start + span.len();
        if end > self.text.len() {
            // Only a span past the end gets here; miette says what it does.
            let whole = (*self.text).read_span(span, context_lines_before, context_lines_after)?;
            return Ok(self.named(&*whole, 0, 0));
        }
        let first_line = self.line_of(start).saturating_sub(context_lines_before + 1);
        let past_line = self.line_of(end) + context_lines_after + 2;
        let from = self.line_starts[first_line];
        let to = self
            .line_starts
            .get(past_line)
            .map_or(self.text.len(), |&s| s);
        let window = &self.text[from..to];
        let inner = window.read_span(
            &(start - from, span.len()).into(),
            context_lines_before,
            context_lines_after,
        )?;
        Ok(self.named(&*inner, from, first_line))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::source::FileId;

    fn excerpt(text: &str) -> Excerpt {
        Excerpt::new(&SourceFile::new(FileId(0), "a.journey", text))
    }

    /// Everything miette reads from a span's contents.
    fn parts(
        c: &dyn SpanContents<'_>,
    ) -> (Vec<u8>, SourceSpan, usize, usize, usize, Option<String>) {
        (
            c.data().to_vec(),
            *c.span(),
            c.line(),
            c.column(),
            c.line_count(),
            c.name().map(str::to_string),
        )
    }

    /// The char boundary at or before `at`, within `text`.
    fn char_boundary(text: &str, at: usize) -> usize {
        (0..=at.min(text.len()))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0)
    }

    proptest! {
        /// The window gives what miette's reading of the whole text gives.
        #[test]
        fn a_window_reads_as_the_whole_text(
            pieces in proptest::collection::vec(
                prop::sample::select(vec!["a", "bc", "\n", "\r\n", "é", "\t", "  "]),
                0..60,
            ),
            start in 0usize..200,
            len in 0usize..40,
            before in 0usize..3,
            after in 0usize..3,
        ) {
            let text: String = pieces.concat();
            let start = char_boundary(&text, start);
            let end = char_boundary(&text, start + len);
            let span: SourceSpan = (start, end - start).into();
            let e = excerpt(&text);
            let whole = miette::NamedSource::new("a.journey", text.clone());
            let expected = whole.read_span(&span, before, after).map(|c| parts(&*c));
            let got = e.read_span(&span, before, after).map(|c| parts(&*c));
            prop_assert_eq!(format!("{expected:?}"), format!("{got:?}"));
        }
    }

    #[test]
    fn escapes_move_spans_and_keep_crlf() {
        let e = excerpt("a\u{1b}[2Jb\r\nc\rd");
        assert_eq!(&*e.text, "a\\u{1b}[2Jb\r\nc\\u{d}d");
        let file = FileId(0);
        // `b`, after the escape: 5 bytes further on.
        assert_eq!(e.span(Span::new(file, 5, 6)), (10, 1).into());
        // The escape itself grows from one byte to six.
        assert_eq!(e.span(Span::new(file, 1, 2)), (1, 6).into());
        // `d`, after the lone carriage return.
        assert_eq!(e.span(Span::new(file, 10, 11)), (19, 1).into());
    }
}
