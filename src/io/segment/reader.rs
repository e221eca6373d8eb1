//! Reads Segment NDJSON from any `BufRead`, yielding each non-blank line's
//! number and its event or its error. A line that lies whole in the input's
//! own buffer is parsed there; one that straddles the buffer's end is copied
//! into a reused line buffer, at most [`DEFAULT_MAX_LINE_BYTES`] (or the
//! chosen limit) of it: a longer line is reported and its bytes are dropped
//! as they are read.

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
    max_line_bytes: usize,
}

/// Where the next line's text lies.
enum Place {
    /// `start..end` of the input's buffer.
    Input { start: usize, end: usize },
    /// The whole line buffer.
    Buffer,
    /// Nowhere: the line was longer than the limit, and dropped.
    TooLong,
}

/// The longest line an [`EventReader`] reads by default, in bytes (1 MiB;
/// Segment's own limit on a message is 32 KB): a longer line is malformed.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> EventReader<R> {
        EventReader {
            input,
            buffer: Vec::with_capacity(1024),
            line_no: 0,
            pending: 0,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Sets the longest line read, in bytes, not counting its `\n` or
    /// `\r\n`: a longer line is reported as malformed and skipped, and no
    /// more than this (about) is ever held of it.
    pub fn with_max_line_bytes(mut self, max: usize) -> EventReader<R> {
        self.max_line_bytes = max;
        self
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
        let bytes = match place {
            Place::Input { start, end } => {
                // The buffer was not consumed since `next_line` saw the line
                // in it, so a well-behaved input hands it out again unchanged.
                // Nothing rests on that: the bytes are checked again below.
                let available = self.input.fill_buf()?;
                available.get(start..end).ok_or_else(|| {
                    io::Error::other("the input's buffer changed without being read")
                })?
            }
            Place::Buffer => self.buffer.as_slice(),
            Place::TooLong => {
                let message = format!("line longer than {} bytes", self.max_line_bytes);
                return Ok(Some((
                    line_no,
                    Err(InputError {
                        line: line_no,
                        message,
                    }),
                )));
            }
        };
        Ok(Some((
            line_no,
            match std::str::from_utf8(bytes) {
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
            let place = match memchr::memchr(b'\n', available) {
                Some(newline) => {
                    prefetch_ahead(available, newline + 1);
                    let mut start = 0;
                    let mut end = newline;
                    if end > 0 && available[end - 1] == b'\r' {
                        end -= 1;
                    }
                    let too_long = end > self.max_line_bytes;
                    if self.line_no == 0 && available[..end].starts_with(UTF8_BOM) {
                        start = UTF8_BOM.len();
                    }
                    let blank = available[start..end].iter().all(u8::is_ascii_whitespace);
                    self.line_no += 1;
                    if blank || too_long {
                        self.input.consume(newline + 1);
                        if too_long {
                            return Ok(Some(Place::TooLong));
                        }
                        continue;
                    }
                    self.pending = newline + 1;
                    Place::Input { start, end }
                }
                None => {
                    // The line runs past the buffer (or is the last one,
                    // without a newline): read it into the line buffer.
                    if !self.read_line_into_buffer()? {
                        self.line_no += 1;
                        return Ok(Some(Place::TooLong));
                    }
                    self.line_no += 1;
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

    /// Reads the rest of a line (its first bytes at least are in the input's
    /// buffer) into the line buffer, without its `\n` or `\r\n`; `false`
    /// when it is longer than the limit: its bytes are then consumed and
    /// dropped as they come, and the line buffer is left empty.
    fn read_line_into_buffer(&mut self) -> io::Result<bool> {
        self.buffer.clear();
        // Room for a `\r` before the `\n`, which does not count.
        let room = self.max_line_bytes.saturating_add(1);
        let mut fits = true;
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            let (part, used, ended) = match memchr::memchr(b'\n', available) {
                Some(newline) => (&available[..newline], newline + 1, true),
                None => (available, available.len(), false),
            };
            if fits && part.len() <= room - self.buffer.len() {
                self.buffer.extend_from_slice(part);
            } else if fits {
                fits = false;
                self.buffer.clear();
            }
            self.input.consume(used);
            if ended {
                if self.buffer.last() == Some(&b'\r') {
                    self.buffer.pop();
                }
                break;
            }
        }
        Ok(fits && self.buffer.len() <= self.max_line_bytes)
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn ok(user: &str) -> String {
        format!(
            r#"{{"type":"track","userId":"{user}","event":"a","timestamp":"2026-03-02T10:00:00Z"}}"#
        )
    }

    /// Every line number and event (or error) `reader` yields.
    fn read_with<R: BufRead>(mut reader: EventReader<R>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some((line, event)) = reader.next_event().unwrap_or(None) {
            seen.push(match event {
                Ok(event) => format!("{line} {} {}", event.kind.name(), event.user_key),
                Err(error) => format!("{line} {error}"),
            });
        }
        seen
    }

    fn read_all(input: impl BufRead) -> Vec<String> {
        read_with(EventReader::new(input))
    }

    #[test]
    fn lines_across_the_buffer_end_read_as_lines_inside_it() {
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

    #[test]
    fn lines_over_the_limit_are_reported_and_skipped_wherever_they_lie() {
        let user = "x".repeat(100);
        let long = ok(&user);
        let limit = long.len();
        // The long line ends in `\r\n`, which does not count; the last line
        // has no end of line.
        let input = format!(
            "{}\n{long}\r\n\n{}\n{}",
            ok("u1"),
            ok("u2"),
            "x".repeat(limit + 1)
        );
        for capacity in [1, 7, 64, 150, 200, 300, 1 << 16] {
            let read = |max| {
                let input = io::BufReader::with_capacity(capacity, input.as_bytes());
                read_with(EventReader::new(input).with_max_line_bytes(max))
            };
            let too_long = |line, max| format!("{line} line {line}: line longer than {max} bytes");
            assert_eq!(
                read(limit),
                [
                    "1 track u1".to_owned(),
                    format!("2 track {user}"),
                    "4 track u2".to_owned(),
                    too_long(5, limit),
                ],
                "capacity {capacity}"
            );
            assert_eq!(
                read(limit - 1),
                [
                    "1 track u1".to_owned(),
                    too_long(2, limit - 1),
                    "4 track u2".to_owned(),
                    too_long(5, limit - 1),
                ],
                "capacity {capacity}"
            );
        }
    }

    /// An input of `len` bytes of `fill`, then `rest`, never all in memory.
    struct Generated {
        fill: u8,
        left: usize,
        rest: io::Cursor<Vec<u8>>,
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return self.rest.read(out);
            }
            let n = out.len().min(self.left);
            out[..n].fill(self.fill);
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_line_of_fifty_megabytes_is_dropped_as_it_is_read() {
        let input = Generated {
            fill: b'{',
            left: 50 << 20,
            rest: io::Cursor::new(format!("\n{}\n", ok("u1")).into_bytes()),
        };
        let mut reader = EventReader::new(io::BufReader::with_capacity(1 << 16, input));
        let mut seen = Vec::new();
        while let Some((line, event)) = reader.next_event().unwrap_or(None) {
            seen.push(match event {
                Ok(event) => format!("{line} {}", event.user_key),
                Err(error) => format!("{line} {error}"),
            });
        }
        assert_eq!(seen, ["1 line 1: line longer than 1048576 bytes", "2 u1"]);
        assert!(
            reader.buffer.capacity() <= 3 << 20,
            "{} bytes held",
            reader.buffer.capacity()
        );
    }

    /// A safe input that hands out ASCII bytes at the first `fill_buf` and
    /// others, not valid UTF-8, at the next, though nothing was consumed.
    struct Fickle {
        calls: usize,
        done: bool,
    }

    impl Read for Fickle {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    impl BufRead for Fickle {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            const ASCII: &[u8] = b"{\"type\":\"track\",\"userId\":\"ab\",\"event\":\"a\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\n";
            const NOT_UTF8: &[u8] = b"{\"type\":\"track\",\"userId\":\"\xff\xfe\",\"event\":\"a\",\"timestamp\":\"2026-03-02T10:00:00Z\"}\n";
            self.calls += 1;
            Ok(match (self.done, self.calls % 2) {
                (true, _) => &[],
                (false, 1) => ASCII,
                (false, _) => NOT_UTF8,
            })
        }

        fn consume(&mut self, amount: usize) {
            self.done |= amount > 0;
        }
    }

    #[test]
    fn an_input_whose_buffer_changes_yields_no_invalid_text() {
        let mut reader = EventReader::new(Fickle {
            calls: 0,
            done: false,
        });
        let mut seen = Vec::new();
        while let Some((line, event)) = reader.next_event().unwrap_or(None) {
            seen.push(match event {
                // `user_key` is a `&str`: its bytes are UTF-8 if it is sound.
                Ok(event) => format!(
                    "{line} {:?}",
                    std::str::from_utf8(event.user_key.as_bytes()).map_err(|_| "invalid")
                ),
                Err(error) => format!("{line} {error}"),
            });
        }
        assert_eq!(seen, ["1 line 1: not valid UTF-8 at byte 27"]);
    }
}
