//! The envelope read sixty-four bytes at a time, on processors with AVX2:
//! the fast path in front of the scanner of [`crate::io::json`].
//!
//! The scanner walks a line token by token, and half of a Segment line's
//! bytes sit in `context`, which the runtime reads one field of. Here the
//! whole line is checked a block at a time instead: each block's quotes
//! and structural bytes become one bit per byte, strings are marked by a
//! running XOR of the quotes (a carry-less multiply), and the grammar is
//! a handful of rules on neighbouring bits — what may follow `{`, `:`,
//! `,`, `}`, a key, a value. Only the keys of the top level and of
//! `context` are visited one by one, to capture the fields the runtime
//! reads; braces are counted to know the depth.
//!
//! It reads compact JSON whose values are strings, numbers, `true`,
//! `false`, `null` and objects: what the Segment libraries send. A line
//! with anything else (whitespace between tokens, a list, a backslash, a
//! control character, deep nesting, a `context` that is not an object, a
//! `timezone` that is an object) is declined, before or after it is read,
//! and the scanner reads it from the start. A line this path accepts is
//! JSON, and yields the envelope the scanner would: both are held to
//! `serde_json` by the same tests.

#[cfg(target_arch = "x86_64")]
use super::top_level::Captured;
use super::top_level::Envelope;
use crate::io::json::Decline;
#[cfg(target_arch = "x86_64")]
use crate::io::json::RawJson;

/// Reads `line` into `envelope` (which may be left half filled on a
/// decline).
pub(super) fn scan<'a>(line: &'a str, envelope: &mut Envelope<'a>) -> Result<(), Decline> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the processor has every feature `x86::scan` is compiled
        // with (checked just above).
        return unsafe { x86::scan(line, envelope) };
    }
    let _ = (line, envelope);
    Err(Decline)
}

/// Whether this processor takes the block path.
#[cfg(target_arch = "x86_64")]
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("pclmulqdq")
        && std::is_x86_feature_detected!("bmi1")
}

/// Other processors never take it (asked by the tests only).
#[cfg(all(test, not(target_arch = "x86_64")))]
pub(super) fn available() -> bool {
    false
}

/// `line[from..to]` as a captured value (`plain`: a string without
/// escapes). Only kept when the whole line is accepted.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn capture(line: &str, from: usize, to: usize, plain: bool) -> Result<Captured<'_>, Decline> {
    let text = line.get(from..to).ok_or(Decline)?;
    Ok(Captured {
        raw: RawJson::new_unchecked(text),
        plain,
    })
}

/// The closing quotes of one block's strings, as bits from `base`: where
/// a string that starts in the block most often ends.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Ends {
    base: usize,
    quotes: u64,
}

#[cfg(target_arch = "x86_64")]
impl Ends {
    /// The first closing quote at or after `from`, looked for in the block
    /// and then in the text.
    #[inline(always)]
    fn next(self, bytes: &[u8], from: usize) -> usize {
        if let Some(offset) = from.checked_sub(self.base).filter(|&o| o < 64) {
            let ahead = self.quotes & (u64::MAX << offset);
            if ahead != 0 {
                return self.base + ahead.trailing_zeros() as usize;
            }
        }
        crate::value::scan::next_special(bytes, from)
    }
}

/// The value at `start` when it is a string or a scalar: its end (just
/// past the closing quote, or at the `,` or `}` after the scalar), and
/// whether it is a string. `None` for an object. The blocks check the
/// value itself.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn flat_value_end(
    bytes: &[u8],
    start: usize,
    ends: Ends,
) -> Result<Option<(usize, bool)>, Decline> {
    match bytes.get(start) {
        Some(b'"') => {
            let end = ends.next(bytes, start + 1);
            if bytes.get(end) != Some(&b'"') {
                return Err(Decline);
            }
            Ok(Some((end + 1, true)))
        }
        Some(b'{') => Ok(None),
        Some(_) => {
            let mut end = start;
            while !matches!(bytes.get(end), Some(b',' | b'}') | None) {
                end += 1;
            }
            Ok(Some((end, false)))
        }
        None => Err(Decline),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256i, _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x, _mm_set1_epi8,
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };

    use super::{Ends, capture, flat_value_end};
    use crate::io::json::{Decline, scalar_end};
    use crate::io::segment::top_level::{Envelope, Field};

    /// Deeper nesting is declined (the scanner declines past its own limit).
    const MAX_DEPTH: u32 = 64;

    /// One bit per byte of a block, for the bytes the grammar looks at.
    struct Classes {
        quote: u64,
        open: u64,
        close: u64,
        colon: u64,
        comma: u64,
        /// Backslashes and control characters.
        other_special: u64,
    }

    impl Classes {
        /// The classes of the bytes from `n` on, moved to the start.
        fn shifted(&self, n: u32) -> Classes {
            Classes {
                quote: self.quote >> n,
                open: self.open >> n,
                close: self.close >> n,
                colon: self.colon >> n,
                comma: self.comma >> n,
                other_special: self.other_special >> n,
            }
        }
    }

    #[target_feature(enable = "avx2")]
    fn classify(block: &[u8; 64]) -> Classes {
        let half = |offset: usize| -> [u64; 6] {
            // SAFETY: the load reads the 32 bytes of `block` from
            // `offset` (0 or 32), inside the 64-byte array.
            let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(offset).cast::<__m256i>()) };
            let eq = |byte: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte as i8));
            let bits = |m: __m256i| u64::from(_mm256_movemask_epi8(m) as u32);
            // `max(x, 0x1f) == 0x1f` is an unsigned `x < 0x20`.
            let low = _mm256_set1_epi8(0x1f);
            let control = _mm256_cmpeq_epi8(_mm256_max_epu8(v, low), low);
            [
                bits(eq(b'"')),
                bits(eq(b'{')),
                bits(eq(b'}')),
                bits(eq(b':')),
                bits(eq(b',')),
                bits(_mm256_or_si256(eq(b'\\'), control)),
            ]
        };
        let [q0, o0, c0, l0, m0, s0] = half(0);
        let [q1, o1, c1, l1, m1, s1] = half(32);
        Classes {
            quote: q0 | q1 << 32,
            open: o0 | o1 << 32,
            close: c0 | c1 << 32,
            colon: l0 | l1 << 32,
            comma: m0 | m1 << 32,
            other_special: s0 | s1 << 32,
        }
    }

    /// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
    #[target_feature(enable = "pclmulqdq")]
    fn prefix_xor(x: u64) -> u64 {
        let product = _mm_clmulepi64_si128::<0>(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1));
        _mm_cvtsi128_si64(product) as u64
    }

    /// `x` moved one byte on: bit `i` is bit `i - 1` of `x`, bit 0 the last
    /// bit of the block before (`before`).
    fn after(x: u64, before: u64) -> u64 {
        (x << 1) | (before >> 63)
    }

    /// What carries from one block to the next.
    #[derive(Default)]
    struct Carry {
        /// All ones while inside a string.
        in_string: u64,
        /// The previous block's classes (only bit 63 is read).
        open: u64,
        close: u64,
        colon: u64,
        comma: u64,
        key_end: u64,
        value_end: u64,
        scalar: u64,
        /// A key's string runs on into this block.
        key_run: bool,
    }

    /// Where the walk of the keys is.
    struct Walk {
        depth: u32,
        /// The top-level object value being read, and where it starts.
        pending: Option<(Field, usize)>,
        /// Inside a `context` being read (its keys are at depth 2).
        in_context: bool,
        /// The top-level object has closed (at the line's last byte).
        closed: bool,
        /// A `context` was passed over unread, the message's `type` being
        /// one whose time zone is not read.
        context_passed: bool,
    }

    impl Walk {
        /// Whether keys here are read: at the top level, and directly in
        /// a `context` being read (not one passed over).
        fn reads_keys(&self) -> bool {
            self.depth == 1 || (self.depth == 2 && self.in_context)
        }
    }

    /// See [`super::scan`]. Safety: the processor has AVX2, PCLMULQDQ and
    /// BMI1.
    #[target_feature(enable = "avx2,pclmulqdq,bmi1")]
    pub(super) fn scan<'a>(line: &'a str, envelope: &mut Envelope<'a>) -> Result<(), Decline> {
        let bytes = line.as_bytes();
        let len = bytes.len();
        if bytes.first() != Some(&b'{') {
            return Err(Decline);
        }
        let mut carry = Carry::default();
        let mut walk = Walk {
            depth: 0,
            pending: None,
            in_context: false,
            closed: false,
            context_passed: false,
        };
        let mut base = 0;
        while base < len {
            let left = len - base;
            let (classes, valid) = match bytes[base..].first_chunk::<64>() {
                Some(block) => (classify(block), u64::MAX),
                None => match bytes.last_chunk::<64>() {
                    // The line's last 64 bytes, those before `base` (read
                    // already) shifted out.
                    Some(block) => (classify(block).shifted(64 - left as u32), (1 << left) - 1),
                    None => {
                        // A line shorter than a block, padded with spaces,
                        // which `valid` masks out.
                        let mut block = [b' '; 64];
                        block[..left].copy_from_slice(&bytes[base..]);
                        (classify(&block), (1 << left) - 1)
                    }
                },
            };
            block(line, base, &classes, valid, &mut carry, &mut walk, envelope)?;
            base += 64;
        }
        if walk.closed && carry.in_string == 0 {
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// Checks one block and visits its keys and braces.
    #[target_feature(enable = "avx2,pclmulqdq,bmi1")]
    fn block<'a>(
        line: &'a str,
        base: usize,
        c: &Classes,
        valid: u64,
        carry: &mut Carry,
        walk: &mut Walk,
        envelope: &mut Envelope<'a>,
    ) -> Result<(), Decline> {
        if c.other_special & valid != 0 {
            return Err(Decline);
        }
        let quote = c.quote & valid;
        // Inside a string: from its opening quote to its last byte.
        let inside = prefix_xor(quote) ^ carry.in_string;
        let opening = quote & inside;
        let closing = quote & !inside;
        let outside = valid & !inside;
        let open = c.open & outside;
        let close = c.close & outside;
        let colon = c.colon & outside;
        let comma = c.comma & outside;
        // Numbers and literals (anything else there fails their check).
        let scalar = outside & !closing & !(open | close | colon | comma);

        let after_open = after(open, carry.open);
        let after_close = after(close, carry.close);
        let after_colon = after(colon, carry.colon);
        let after_comma = after(comma, carry.comma);
        let after_scalar = after(scalar, carry.scalar);

        // A string opened after `{` or `,` is a key; after `:`, a value.
        let key_open = opening & (after_open | after_comma);
        // Adding a key's opening bit to the run of its string carries
        // past the run's end: onto the key's closing quote.
        let (sum, over1) = key_open.overflowing_add(inside);
        let (sum, over2) = sum.overflowing_add(u64::from(carry.key_run));
        let key_end = sum & !inside & valid;
        let value_end = closing & !key_end;
        let after_key_end = after(key_end, carry.key_end);
        let after_value_end = after(value_end, carry.value_end);

        // What may follow each kind of byte outside strings. A byte's
        // predecessor is one of these (or the string it closes), so these
        // rules also say what may precede it: a colon only a key, a key
        // only `{` or `,`, a value only `:`. The line's first byte is `{`.
        let mut wrong = after_open & !(opening | close);
        wrong |= after_colon & !(opening | open | scalar);
        wrong |= after_comma & !opening;
        wrong |= after_close & !(comma | close);
        wrong |= after_key_end & !colon;
        wrong |= after_value_end & !(comma | close);
        wrong |= after_scalar & !(scalar | comma | close);
        if wrong & valid != 0 {
            return Err(Decline);
        }

        // Each number or literal, checked where it starts.
        let mut starts = scalar & !after_scalar;
        while starts != 0 {
            let at = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            let end = scalar_end(line, at)?;
            if !matches!(line.as_bytes().get(end), Some(b',' | b'}')) {
                return Err(Decline);
            }
        }

        // The braces and keys in turn: keys are visited at the top level
        // and in `context` only.
        let names = Ends {
            base,
            quotes: key_end,
        };
        let values = Ends {
            base,
            quotes: value_end,
        };
        // Keys are read at the top level and in `context` only; inside
        // any other object they are dropped up to the next brace.
        let braces = open | close;
        let skip_keys = |events: u64| {
            let next = events & braces;
            let before = (next & next.wrapping_neg()).wrapping_sub(1);
            events & !(key_open & before)
        };
        let mut events = braces | key_open;
        if !walk.reads_keys() {
            events = skip_keys(events);
        }
        while events != 0 {
            let bit = events & events.wrapping_neg();
            events ^= bit;
            let at = base + bit.trailing_zeros() as usize;
            if open & bit != 0 {
                walk.depth += 1;
                if walk.depth > MAX_DEPTH {
                    return Err(Decline);
                }
            } else if close & bit != 0 {
                walk.depth = walk.depth.checked_sub(1).ok_or(Decline)?;
                match walk.depth {
                    0 => {
                        if at + 1 != line.len() {
                            return Err(Decline);
                        }
                        walk.closed = true;
                    }
                    1 => {
                        walk.in_context = false;
                        if let Some((field, start)) = walk.pending.take()
                            && let Some(slot) = envelope.slot(field)
                        {
                            *slot = Some(capture(line, start, at + 1, false)?);
                        }
                    }
                    _ => {}
                }
            } else if walk.depth == 1 {
                top_level_key(line, at, names, values, walk, envelope)?;
                continue;
            } else {
                context_key(line, at, values, envelope)?;
                continue;
            }
            if !walk.reads_keys() {
                events = skip_keys(events);
            }
        }

        carry.in_string = ((inside as i64) >> 63) as u64;
        carry.open = open;
        carry.close = close;
        carry.colon = colon;
        carry.comma = comma;
        carry.key_end = key_end;
        carry.value_end = value_end;
        carry.scalar = scalar;
        carry.key_run = over1 || over2;
        Ok(())
    }

    /// The key whose opening quote is at `at`, at the top level.
    fn top_level_key<'a>(
        line: &'a str,
        at: usize,
        names: Ends,
        values: Ends,
        walk: &mut Walk,
        envelope: &mut Envelope<'a>,
    ) -> Result<(), Decline> {
        let bytes = line.as_bytes();
        let name_end = names.next(bytes, at + 1);
        let field = bytes
            .get(at + 1..name_end)
            .map_or(Field::Other, Field::named);
        if field == Field::Other {
            return Ok(());
        }
        if field == Field::Type && walk.context_passed {
            // A second `type` after a `context` read as another type's.
            return Err(Decline);
        }
        let start = name_end + 2;
        match flat_value_end(bytes, start, values)? {
            Some(_) if field == Field::Context => return Err(Decline),
            Some((end, plain)) => {
                if let Some(slot) = envelope.slot(field) {
                    *slot = Some(capture(line, start, end, plain)?);
                }
            }
            None => {
                if field == Field::Context {
                    // Only an identify's time zone is read: once `type`
                    // says another kind, `context` is passed over like any
                    // object the runtime does not read.
                    let other_kind = envelope
                        .kind
                        .is_some_and(|kind| kind.raw.get() != "\"identify\"");
                    walk.in_context = !other_kind;
                    walk.context_passed |= other_kind;
                    // A later `context` without a `timezone` leaves none.
                    envelope.context_timezone = None;
                }
                walk.pending = Some((field, start));
            }
        }
        Ok(())
    }

    /// A key of `context`, whose opening quote is at `at`: its `timezone`.
    fn context_key<'a>(
        line: &'a str,
        at: usize,
        values: Ends,
        envelope: &mut Envelope<'a>,
    ) -> Result<(), Decline> {
        let bytes = line.as_bytes();
        // Eight bytes and a quote compared as words, not by a call.
        let name = bytes.get(at + 1..).and_then(<[u8]>::first_chunk::<9>);
        if name.is_none_or(|&[t, i, m, e, z, o, n, e2, quote]| {
            u64::from_le_bytes([t, i, m, e, z, o, n, e2]) != u64::from_le_bytes(*b"timezone")
                || quote != b'"'
        }) {
            return Ok(());
        }
        let start = at + 11;
        let (end, plain) = flat_value_end(bytes, start, values)?.ok_or(Decline)?;
        envelope.context_timezone = Some(capture(line, start, end, plain)?);
        Ok(())
    }
}
