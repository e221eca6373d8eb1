//! A small validating JSON byte scanner: the fast path of the Segment reader
//! and of payload lookups. It walks the text without building anything and
//! without allocating, and hands out the raw text of the values it is asked
//! for ([`RawJson`]); decoding is left to the caller.
//!
//! It accepts exactly the JSON that `serde_json` accepts when it skips a
//! value (strings are checked for control characters and escape syntax, not
//! for lone surrogates, as `serde_json` does when it ignores a string), and
//! it may *decline* more: nesting deeper than [`MAX_DEPTH`] is declined
//! rather than recursed into. Every caller falls back to `serde_json` when
//! the scanner declines, so `serde_json` alone words every error.
//!
//! **Why hand-written, measured.** Reading every line with `serde_json`
//! alone (its derive into the same borrowed envelope, `IgnoredAny` for what
//! is skipped) makes the whole of `journey simulate journeys/` 16–21%
//! slower, and the reader alone 37–38% slower: `JOURNEY_BENCH_USERS=100000
//! JOURNEY_BENCH_ONLY=parse,full cargo bench --bench runtime`, one build
//! with the scanner switched off by an environment variable for the
//! experiment, two pairs run side by side (every journey 0.141 against
//! 0.179M events/s and 0.132 against 0.157M/s; the reader 0.360 against
//! 0.582M and 0.365 against 0.562M lines/s; load 11–15, 2026-12-06).
//! `sonic-rs` 0.5 read these lines no faster than `serde_json` without
//! `-C target-cpu=native` (`benches/parse_events.rs`). Past the 10% a
//! maintained crate may cost, so the scanner stays. A 64-byte AVX2 block
//! path in front of it (500 lines of `unsafe` SIMD) was removed by the same
//! rule: without it every journey ran within the noise (0.181 against
//! 0.186M/s and 0.132 against 0.129M/s, two pairs side by side, same load),
//! though the reader alone is 24–28% slower.

use std::borrow::Cow;
use std::fmt;

use crate::value::scan::next_special;
#[cfg(test)]
use crate::value::scan::next_special_swar;

/// The raw text of one JSON value, borrowed from its line; it has been
/// validated as JSON by whoever built it and has no surrounding whitespace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }

    /// Wraps text the caller has validated as one JSON value.
    pub(crate) fn new_unchecked(text: &'a str) -> RawJson<'a> {
        RawJson(text)
    }
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The scanner gave up: the text is not JSON, or it is JSON the fast path
/// leaves to `serde_json` (too deep, an escaped key, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decline;

/// How deep arrays and objects may nest inside one skipped value.
pub const MAX_DEPTH: u32 = 128;

/// A cursor over JSON text.
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

/// An object key as written between its quotes.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub text: &'a str,
    /// Whether the text has escapes (and so is not the key's decoded text).
    pub escaped: bool,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after any whitespace, not consumed.
    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        // Compact JSON has no whitespace: one look at the next byte.
        match self.bytes().get(self.pos) {
            Some(&byte) if byte > b' ' => Some(byte),
            _ => self.peek_past_whitespace(),
        }
    }

    #[inline(never)]
    fn peek_past_whitespace(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.pos).copied()
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        if self.bytes().get(self.pos).is_some_and(|&byte| byte > b' ') {
            return;
        }
        self.skip_whitespace_slow();
    }

    #[inline(never)]
    fn skip_whitespace_slow(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Result<(), Decline> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// Text between two positions that sit next to ASCII bytes.
    fn slice(&self, from: usize, to: usize) -> Result<&'a str, Decline> {
        self.text.get(from..to).ok_or(Decline)
    }

    /// Consumes the `{` that opens an object.
    pub fn begin_object(&mut self) -> Result<(), Decline> {
        self.eat(b'{')
    }

    /// The next key of an object opened by [`Scanner::begin_object`], its
    /// colon consumed; `None` once the closing `}` is consumed. `first` is
    /// true before the first key, and is kept up to date.
    #[inline(always)]
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<Key<'a>>, Decline> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.pos += 1;
                if self.peek() != Some(b'"') {
                    return Err(Decline);
                }
            }
            Some(b'"') if *first => {}
            _ => return Err(Decline),
        }
        *first = false;
        // The opening quote, seen above.
        self.pos += 1;
        let start = self.pos;
        let escaped = self.string_body()?;
        let text = self.slice(start, self.pos - 1)?;
        self.eat(b':')?;
        Ok(Some(Key { text, escaped }))
    }

    /// Walks the object at the scanner, its closing `}` included, handing
    /// each key and raw value to `f`; declines on a key with escapes (its
    /// decoded text could match a name the caller looks for).
    pub fn entries(&mut self, mut f: impl FnMut(&'a str, RawJson<'a>)) -> Result<(), Decline> {
        self.begin_object()?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            if key.escaped {
                return Err(Decline);
            }
            let value = self.value()?;
            f(key.text, value);
        }
        Ok(())
    }

    /// Consumes a string body after its opening quote, the closing quote
    /// included; returns whether it had escapes.
    #[inline(always)]
    fn string_body(&mut self) -> Result<bool, Decline> {
        let bytes = self.bytes();
        let mut pos = self.pos;
        let mut escaped = false;
        loop {
            pos = next_special(bytes, pos);
            match bytes.get(pos) {
                Some(b'"') => {
                    self.pos = pos + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                        Some(b'u') => {
                            let hex = bytes.get(pos + 2..pos + 6).ok_or(Decline)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Decline);
                            }
                            pos += 6;
                        }
                        _ => return Err(Decline),
                    }
                }
                // A control character, or the end of the text.
                _ => return Err(Decline),
            }
        }
    }

    fn number(&mut self) -> Result<(), Decline> {
        let bytes = self.bytes();
        let digits = |pos: &mut usize| {
            let start = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > start
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        match bytes.get(pos) {
            Some(b'0') => pos += 1,
            Some(b'1'..=b'9') => {
                digits(&mut pos);
            }
            _ => return Err(Decline),
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            if !digits(&mut pos) {
                return Err(Decline);
            }
        }
        if let Some(b'e' | b'E') = bytes.get(pos) {
            pos += 1;
            if let Some(b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return Err(Decline);
            }
        }
        // `01` is not a number, nor is `1` followed by more digits after a
        // leading zero: the caller's next expectation (`,`, `}`, `]`, end)
        // rejects whatever follows.
        self.pos = pos;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Decline> {
        let end = self.pos + word.len();
        if self.bytes().get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// Consumes one value of any kind and returns its text. Nesting is
    /// followed with a counter and a bit stack, never by recursion.
    #[inline(always)]
    pub fn value(&mut self) -> Result<RawJson<'a>, Decline> {
        self.value_flagged().map(|(value, _)| value)
    }

    /// [`Scanner::value`], and whether the value is a string without
    /// escapes (its text between the quotes is then the decoded string).
    #[inline(always)]
    pub fn value_flagged(&mut self) -> Result<(RawJson<'a>, bool), Decline> {
        self.skip_whitespace();
        let start = self.pos;
        // Bit `d` is set when the container at depth `d` is an object.
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        let mut plain = false;
        loop {
            // A value starts here.
            match self.bytes().get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    plain = !self.string_body()? && depth == 0;
                }
                Some(&open @ (b'{' | b'[')) => {
                    if depth >= MAX_DEPTH {
                        return Err(Decline);
                    }
                    let object = open == b'{';
                    self.pos += 1;
                    if object {
                        objects |= 1 << depth;
                    } else {
                        objects &= !(1 << depth);
                    }
                    depth += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        depth -= 1;
                    } else if object {
                        self.key()?;
                        self.skip_whitespace();
                        continue;
                    } else {
                        self.skip_whitespace();
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(Decline),
            }
            // After a value: close containers until one goes on.
            loop {
                if depth == 0 {
                    return Ok((RawJson(self.slice(start, self.pos)?), plain));
                }
                let object = objects & (1 << (depth - 1)) != 0;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.key()?;
                        }
                        self.skip_whitespace();
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    _ => return Err(Decline),
                }
            }
        }
    }

    /// A key and its colon, inside a skipped object.
    #[inline(always)]
    fn key(&mut self) -> Result<(), Decline> {
        self.eat(b'"')?;
        self.string_body()?;
        self.eat(b':')
    }
}

/// Whether the text between a validated JSON string's quotes has escapes:
/// its first special byte can only be a backslash.
pub(crate) fn has_escapes(inner: &str) -> bool {
    next_special(inner.as_bytes(), 0) < inner.len()
}

/// A JSON string's text (`None` for any other value): borrowed from the
/// input unless it has escapes.
pub(crate) fn decode_str(raw: RawJson<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !has_escapes(inner) {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// Skips one whole JSON text (one value and nothing after it) and returns
/// its value; `Decline` when the text is not JSON or too deep.
pub fn validate(text: &str) -> Result<RawJson<'_>, Decline> {
    let mut scanner = Scanner::new(text);
    let value = scanner.value()?;
    if scanner.at_end() {
        Ok(value)
    } else {
        Err(Decline)
    }
}

/// The raw value of the key `name` in the object `object` (the last one
/// when it is repeated): `Ok(None)` when absent, `Decline` when `object` is
/// not an object or a key has escapes (its decoded text could match).
pub fn field<'a>(object: RawJson<'a>, name: &str) -> Result<Option<RawJson<'a>>, Decline> {
    let mut found = None;
    Scanner::new(object.get()).entries(|key, value| {
        if key == name {
            found = Some(value);
        }
    })?;
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests;
