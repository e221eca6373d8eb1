//! The byte-level half of the fast path: the parser's state, trivia
//! skipping, words and the literal tokens (strings, durations, counts,
//! times, percentages), each matched exactly as the grammar's token rule
//! matches it and validated by the same helpers the visitors use.

use super::super::ast::{DurationLit, Ident, IntLit, Percent, StrLit, TimeOfDay};
use super::super::literals;
use super::super::significant_len;
use super::expr::Part;
use crate::source::{FileId, Span};

/// The state of one chunk's parse. Positions are byte offsets in the chunk.
///
/// Between two tokens `pos` always sits after the trivia (whitespace and
/// `//` comments), as pest's implicit whitespace leaves it.
pub(in crate::syntax) struct Parser<'a> {
    pub text: &'a str,
    pub bytes: &'a [u8],
    pub pos: usize,
    /// The end of the last token taken: where a node ends.
    pub last_end: usize,
    pub file: FileId,
    pub offset: usize,
    /// One past the start of the last string literal that spans lines; see
    /// [`Parser::open_span`].
    multiline_string: usize,
    /// Set when the input is well-formed but would get a diagnostic (or
    /// when pest would take a path this parser does not follow): the chunk
    /// then goes to pest.
    pub declined: bool,
    /// The flat operands and operators of the expressions being parsed,
    /// shared so that an expression costs no allocation of its own.
    pub parts: Vec<Part>,
}

pub fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Parser<'a> {
    pub fn new(file: FileId, offset: usize, text: &'a str) -> Parser<'a> {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            last_end: 0,
            file,
            offset,
            multiline_string: 0,
            declined: false,
            parts: Vec::new(),
        }
    }

    /// Gives the chunk to pest. Returns `None` so callers can write
    /// `return self.decline()`.
    pub fn decline<T>(&mut self) -> Option<T> {
        self.declined = true;
        None
    }

    /// The byte at `pos`, or 0 at the end (0 starts no token).
    pub fn peek(&self) -> u8 {
        self.byte(self.pos)
    }

    pub fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    /// Skips a run of whitespace and `//` comments.
    pub fn skip(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\n' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.byte(self.pos + 1) == b'/' => {
                    self.pos = self.bytes[self.pos..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(self.bytes.len(), |p| self.pos + p);
                }
                _ => break,
            }
        }
    }

    /// Takes a token ending at `end`, then the trivia after it.
    pub fn take_to(&mut self, end: usize) {
        self.pos = end;
        self.last_end = end;
        self.skip();
    }

    /// Whether only trivia is left.
    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// A span from chunk offsets.
    pub fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, self.offset + start, self.offset + end)
    }

    /// The span of a node that ends with its closing bracket (or any token
    /// pest does not follow with trivia of its own).
    pub fn closed_span(&self, start: usize) -> Span {
        self.span(start, self.last_end)
    }

    /// The span of a node that may end with an optional part: pest's pair
    /// then holds the trivia after the last token, which the visitors drop
    /// with `significant_len`. That gives the last token's end except when
    /// the node's last line starts inside a multi-line string, where its
    /// line-by-line comment search can be fooled; there the result is
    /// computed as pest's would be, and a disagreement goes to pest.
    pub fn open_span(&mut self, start: usize) -> Span {
        if self.multiline_string > start
            && self.pos > self.last_end
            && significant_len(&self.text[start..self.pos]) != self.last_end - start
        {
            self.declined = true;
        }
        self.closed_span(start)
    }

    /// The identifier starting at `pos`, or `""`.
    pub fn word(&self) -> &'a str {
        self.word_at(self.pos)
    }

    pub fn word_at(&self, at: usize) -> &'a str {
        if !is_ident_start(self.byte(at)) {
            return "";
        }
        let len = self.bytes[at..]
            .iter()
            .take_while(|&&b| is_ident_char(b))
            .count();
        &self.text[at..at + len]
    }

    pub fn at_word(&self, word: &str) -> bool {
        self.word() == word
    }

    /// Takes the keyword `word` (a whole word), returning its span.
    pub fn keyword(&mut self, word: &str) -> Option<Span> {
        if !self.at_word(word) {
            return None;
        }
        let start = self.pos;
        self.take_to(start + word.len());
        Some(self.span(start, self.last_end))
    }

    /// Any identifier, reserved or not (field names, `with` keys, ...).
    pub fn ident(&mut self) -> Option<Ident> {
        let word = self.word();
        if word.is_empty() {
            return None;
        }
        let start = self.pos;
        self.take_to(start + word.len());
        Some(Ident {
            name: word.to_owned(),
            span: self.span(start, self.last_end),
        })
    }

    /// A name the user declares or refers to: a reserved word would be
    /// reported, so it goes to pest.
    pub fn name(&mut self) -> Option<Ident> {
        if super::super::ast::is_reserved(self.word()) {
            return self.decline();
        }
        self.ident()
    }

    /// One punctuation byte.
    pub fn punct(&mut self, b: u8) -> Option<()> {
        if self.peek() != b {
            return None;
        }
        self.take_to(self.pos + 1);
        Some(())
    }

    /// `=` not followed by `=`.
    pub fn eq_sign(&mut self) -> Option<()> {
        if self.peek() != b'=' || self.byte(self.pos + 1) == b'=' {
            return None;
        }
        self.take_to(self.pos + 1);
        Some(())
    }

    /// A string literal, unescaped; a bad escape goes to pest.
    pub fn string(&mut self) -> Option<StrLit> {
        if self.peek() != b'"' {
            return None;
        }
        let start = self.pos;
        let mut i = start + 1;
        let mut newline = false;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                // `\` takes the next character, whatever it is; a
                // multi-byte one is skipped byte by byte below.
                b'\\' => {
                    newline |= self.byte(i + 1) == b'\n';
                    i += 2;
                }
                b'\n' => {
                    newline = true;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if newline {
            self.multiline_string = start + 1;
        }
        let mut bad = false;
        let value = literals::unescape(&self.text[start + 1..i], |_, _, _| bad = true);
        if bad {
            return self.decline();
        }
        self.take_to(i + 1);
        Some(StrLit {
            value,
            span: self.span(start, self.last_end),
        })
    }

    /// The number of ASCII digits at `at`.
    pub fn digits(&self, at: usize) -> usize {
        self.bytes.get(at..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    }

    /// `digits ("." digits)?` at `at`: the end, if there are digits.
    pub fn decimal(&self, at: usize) -> Option<usize> {
        let n = self.digits(at);
        if n == 0 {
            return None;
        }
        let end = at + n;
        if self.byte(end) == b'.' {
            let frac = self.digits(end + 1);
            if frac > 0 {
                return Some(end + 1 + frac);
            }
        }
        Some(end)
    }

    /// A duration after `wait`, `within`, `per`, `after` or `for`: the
    /// grammar takes any number-like word there, so it must be a strictly
    /// valid, non-zero duration (otherwise pest reports it). A valid one is
    /// never also a `1 day`-style duration, which pest tries first.
    pub fn duration_slot(&mut self) -> Option<DurationLit> {
        if !self.peek().is_ascii_digit() {
            return None;
        }
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .take_while(|&&b| is_ident_char(b) || b == b'.')
            .count();
        match literals::parse_duration(&self.text[start..start + len]) {
            Ok(secs) if secs > 0 => {
                self.take_to(start + len);
                Some(DurationLit {
                    secs,
                    span: self.span(start, self.last_end),
                })
            }
            _ => self.decline(),
        }
    }

    /// A count (`cap email 2 ...`, `repeat 3 times`): a whole number.
    pub fn count(&mut self) -> Option<IntLit> {
        let start = self.pos;
        let end = self.decimal(start)?;
        if is_ident_char(self.byte(end)) {
            return None;
        }
        let Ok(value) = literals::parse_count(&self.text[start..end]) else {
            return self.decline();
        };
        self.take_to(end);
        Some(IntLit {
            value,
            span: self.span(start, end),
        })
    }

    /// A `HH:MM` token at `pos`: its end, if the grammar's `time_of_day`
    /// matches there.
    pub fn time_of_day_end(&self) -> Option<usize> {
        let h = self.digits(self.pos).min(2);
        if h == 0 || self.byte(self.pos + h) != b':' {
            return None;
        }
        let m_start = self.pos + h + 1;
        let m = self.digits(m_start).min(2);
        let end = m_start + m;
        let after = self.byte(end);
        (m > 0 && !is_ident_char(after) && after != b':').then_some(end)
    }

    /// A strictly valid time of day, `00:00`..`23:59`.
    pub fn time_of_day(&mut self) -> Option<TimeOfDay> {
        let start = self.pos;
        let end = self.time_of_day_end()?;
        let (minutes, help) = literals::parse_time_of_day(&self.text[start..end]);
        if help.is_some() {
            return self.decline();
        }
        self.take_to(end);
        Some(TimeOfDay {
            minutes,
            span: self.span(start, end),
        })
    }

    /// A percentage in `(0, 100]`.
    pub fn percent(&mut self) -> Option<Percent> {
        let start = self.pos;
        let digits_at = start + usize::from(self.peek() == b'-');
        let end = self.decimal(digits_at)?;
        if self.byte(end) != b'%' {
            return None;
        }
        let (value, valid) = literals::parse_percent(&self.text[start..end + 1]);
        if !valid {
            return self.decline();
        }
        self.take_to(end + 1);
        Some(Percent {
            value,
            span: self.span(start, end + 1),
        })
    }
}
