//! Reads Segment NDJSON from any `BufRead`, yielding each non-blank line's
//! number and its event or its error. A line that lies whole in the input's
//! own buffer is parsed there, found and checked for ASCII in one pass;
//! one that straddles the buffer's end is copied into a reused line buffer.

use std::io::{self, BufRead};

use super::{InputError, RawEvent, parse_line};
use crate::prefetch::prefetch_lines;

/// Reads events line by line; the events borrow the reader's buffers, so
/// each must be consumed before the next call.
///
/// ```
/// # use journey::io::segment::EventReader;
/// let input = "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"app_opened\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\n\nnot json\n";
/// let mut reader = EventReader::new(input.as_bytes());
/// let mut seen = Vec::new();
/// while let Some((line, event)) = reader.next_event()? {
///     seen.push((line, event.map(|e| e.user_key.into_owned()).map_err(|e| e.to_string())));
/// }
/// assert_eq!(seen[0], (1, Ok("u1".to_owned())));
/// assert_eq!(seen[1].0, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventReader<R> {
    input: R,
    buffer: Vec<u8>,
    line_no: usize,
    /// Bytes of the input's buffer the last line was read from in place,
    /// consumed at the next call, once its event is dropped.
    pending: usize,
}

/// Where the next line's text lies.
enum Place {
    /// `start..end` of the input's buffer; `ascii` when every byte is.
    Input {
        start: usize,
        end: usize,
        ascii: bool,
    },
    /// The whole line buffer.
    Buffer,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> EventReader<R> {
        EventReader {
            input,
            buffer: Vec::with_capacity(1024),
            line_no: 0,
            pending: 0,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line_no(&self) -> usize {
        self.line_no
    }

    /// The next non-blank line: `Ok(None)` at the end of the input, `Err` only
    /// when reading fails; a bad line is an `InputError` and reading goes on.
    #[allow(clippy::type_complexity)]
    pub fn next_event(&mut self) -> io::Result<Option<(usize, Result<RawEvent<'_>, InputError>)>> {
        let Some(place) = self.next_line()? else {
            return Ok(None);
        };
        let line_no = self.line_no;
        let (bytes, ascii) = match place {
            Place::Input { start, end, ascii } => {
                // The buffer was not consumed since `next_line` saw the line
                // in it, so it is handed out again unchanged.
                let available = self.input.fill_buf()?;
                let bytes = available.get(start..end).ok_or_else(|| {
                    io::Error::other("the input's buffer changed without being read")
                })?;
                (bytes, ascii)
            }
            Place::Buffer => (self.buffer.as_slice(), false),
        };
        let text = if ascii {
            // SAFETY: every byte is ASCII (checked by `line_end`), and ASCII
            // text is valid UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes)
        };
        Ok(Some((
            line_no,
            match text {
                Ok(line) => parse_line(line, line_no),
                Err(error) => Err(InputError {
                    line: line_no,
                    message: format!("not valid UTF-8 at byte {}", error.valid_up_to() + 1),
                }),
            },
        )))
    }

    /// Finds the next non-blank line, its end of line and a first line's
    /// byte order mark trimmed; `None` at the end of the input.
    fn next_line(&mut self) -> io::Result<Option<Place>> {
        self.input.consume(std::mem::take(&mut self.pending));
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(None);
            }
            let place = match line_end(available) {
                Some((newline, ascii)) => {
                    self.pending = newline + 1;
                    prefetch_ahead(available, newline + 1);
                    let mut start = 0;
                    let mut end = newline;
                    if end > 0 && available[end - 1] == b'\r' {
                        end -= 1;
                    }
                    if self.line_no == 0 && available[..end].starts_with(UTF8_BOM) {
                        start = UTF8_BOM.len();
                    }
                    let blank = available[start..end].iter().all(u8::is_ascii_whitespace);
                    self.line_no += 1;
                    if blank {
                        self.input.consume(std::mem::take(&mut self.pending));
                        continue;
                    }
                    Place::Input { start, end, ascii }
                }
                None => {
                    // The line runs past the buffer (or is the last one,
                    // without a newline): read it whole into the line buffer.
                    self.buffer.clear();
                    if self.input.read_until(b'\n', &mut self.buffer)? == 0 {
                        return Ok(None);
                    }
                    self.line_no += 1;
                    trim_line_end(&mut self.buffer);
                    if self.line_no == 1 && self.buffer.starts_with(UTF8_BOM) {
                        self.buffer.drain(..UTF8_BOM.len());
                    }
                    if self.buffer.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    Place::Buffer
                }
            };
            return Ok(Some(place));
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Which bytes past a line's end are asked for while it is processed: a
/// line or two further on (lines run 250 to 500 bytes). A runtime does
/// enough between two lines to disturb the processor's own read-ahead, and
/// reading a line's bytes from memory stalled the pass (1.8–5.7% faster
/// with this, side by side at a million users; the next 512 bytes alone
/// gained nothing, as the processor has those coming already).
const AHEAD: std::ops::Range<usize> = 512..1024;

/// Starts loading the cache lines of `bytes[from + AHEAD]` (those there
/// are; `prefetch_lines` stops after as many lines as `AHEAD` spans): a
/// hint, with no effect on what is read.
fn prefetch_ahead(bytes: &[u8], from: usize) {
    let ahead = bytes.get(from + AHEAD.start..).unwrap_or_default();
    prefetch_lines(ahead, AHEAD.len() / 64);
}

fn trim_line_end(buffer: &mut Vec<u8>) {
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
    }
}

/// The position of the first `\n` in `bytes`, and whether every byte
/// before it is ASCII: sixty-four bytes at a time with SSE2 while no
/// newline is among them (one test a block instead of four), then sixteen.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn line_end(bytes: &[u8]) -> Option<(usize, bool)> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // Bits of `chunk`'s newlines, and of its bytes from 0x80 up.
    let masks = |chunk: &[u8; 16]| -> (u32, u32) {
        // SAFETY: the load reads exactly the sixteen bytes of `chunk`, and
        // the intrinsics need nothing but SSE2, which this code is compiled
        // only with (see its `cfg`).
        unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let newlines = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\n' as i8));
            (
                _mm_movemask_epi8(newlines) as u32,
                _mm_movemask_epi8(x) as u32,
            )
        }
    };
    // Whether `block` has a newline, and the bits of its bytes from 0x80 up
    // (any, not where).
    let block_masks = |block: &[u8; 64]| -> (bool, u32) {
        // SAFETY: the four loads read exactly the sixty-four bytes of
        // `block`, and the intrinsics need nothing but SSE2 (see above).
        unsafe {
            let p = block.as_ptr().cast::<__m128i>();
            let (a, b) = (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)));
            let (c, d) = (_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3)));
            let nl = _mm_set1_epi8(b'\n' as i8);
            let newlines = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(a, nl), _mm_cmpeq_epi8(b, nl)),
                _mm_or_si128(_mm_cmpeq_epi8(c, nl), _mm_cmpeq_epi8(d, nl)),
            );
            let high = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
            (
                _mm_movemask_epi8(newlines) != 0,
                _mm_movemask_epi8(high) as u32,
            )
        }
    };
    let mut pos = 0;
    let mut high = 0;
    while let Some(block) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<64>) {
        let (newline, high_bits) = block_masks(block);
        if newline {
            break;
        }
        high |= high_bits;
        pos += 64;
    }
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<16>) {
        let (newlines, high_bits) = masks(chunk);
        if newlines != 0 {
            let at = newlines.trailing_zeros();
            let before = high_bits & ((1 << at) - 1);
            return Some((pos + at as usize, high | before == 0));
        }
        high |= high_bits;
        pos += 16;
    }
    line_end_bytewise(bytes, pos).map(|(end, ascii)| (end, ascii && high == 0))
}

/// [`line_end`] on other targets.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn line_end(bytes: &[u8]) -> Option<(usize, bool)> {
    line_end_bytewise(bytes, 0)
}

/// [`line_end`] from `from`, one byte at a time.
fn line_end_bytewise(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    let rest = bytes.get(from..)?;
    let at = rest.iter().position(|&byte| byte == b'\n')?;
    Some((from + at, rest[..at].is_ascii()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reference(bytes: &[u8]) -> Option<(usize, bool)> {
        let at = bytes.iter().position(|&byte| byte == b'\n')?;
        Some((at, bytes[..at].is_ascii()))
    }

    #[test]
    fn newlines_and_non_ascii_bytes_are_found_in_every_position() {
        for len in (0..40).chain([63, 64, 65, 79, 80, 127, 128, 129, 150]) {
            let plain = vec![b'a'; len];
            assert_eq!(line_end(&plain), None);
            for at in 0..len {
                let mut bytes = plain.clone();
                bytes[at] = b'\n';
                assert_eq!(line_end(&bytes), Some((at, true)), "{bytes:?}");
                for high in 0..len {
                    let mut bytes = bytes.clone();
                    bytes[high] = 0x80;
                    assert_eq!(line_end(&bytes), reference(&bytes), "{bytes:?}");
                }
            }
        }
    }

    /// Every line number and event (or error) the reader yields.
    fn read_all(input: impl BufRead) -> Vec<String> {
        let mut reader = EventReader::new(input);
        let mut seen = Vec::new();
        while let Some((line, event)) = reader.next_event().unwrap_or(None) {
            seen.push(match event {
                Ok(event) => format!("{line} {} {}", event.kind.name(), event.user_key),
                Err(error) => format!("{line} {error}"),
            });
        }
        seen
    }

    #[test]
    fn lines_across_the_buffer_end_read_as_lines_inside_it() {
        let ok = |user: &str| {
            format!(
                r#"{{"type":"track","userId":"{user}","event":"a","timestamp":"2026-03-02T10:00:00Z"}}"#
            )
        };
        let mut input = b"\xEF\xBB\xBF".to_vec();
        for line in [
            ok("u1") + "\r\n",
            "\n   \t\n\r\n".to_owned(),
            ok("ü2") + "\n",
            "{oops\n".to_owned(),
            ok("u3") + "\n",
        ] {
            input.extend_from_slice(line.as_bytes());
        }
        input.extend_from_slice(b"{\"type\":\"track\",\"userId\":\"u\xff\"}\n");
        input.extend_from_slice(ok("u4").as_bytes());
        let whole = read_all(input.as_slice());
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert_eq!(whole[0], "1 track u1");
        assert_eq!(
            whole[2],
            "6 line 6: not valid JSON: key must be a string at column 2"
        );
        assert_eq!(whole[4], "8 line 8: not valid UTF-8 at byte 28");
        assert_eq!(whole[5], "9 track u4");
        for capacity in 1..100 {
            let small = io::BufReader::with_capacity(capacity, input.as_slice());
            assert_eq!(read_all(small), whole, "capacity {capacity}");
        }
    }

    proptest! {
        #[test]
        fn line_end_agrees_with_a_plain_search(
            bytes in prop::collection::vec(prop_oneof![Just(b'\n'), Just(0x80u8), Just(0xffu8), Just(b'a'), Just(b'a'), Just(b'a'), any::<u8>()], 0..300),
        ) {
            prop_assert_eq!(line_end(&bytes), reference(&bytes));
        }
    }
}
