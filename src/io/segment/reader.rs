//! Reads Segment NDJSON from any `BufRead`, one reused line buffer, yielding
//! each non-blank line's number and its event or its error.

use std::io::{self, BufRead};

use super::{InputError, RawEvent, parse_line};

/// Reads events line by line; the events borrow the reader's buffer, so each
/// must be consumed before the next call.
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
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> EventReader<R> {
        EventReader {
            input,
            buffer: Vec::with_capacity(1024),
            line_no: 0,
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
        loop {
            self.buffer.clear();
            if self.input.read_until(b'\n', &mut self.buffer)? == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            trim_line_end(&mut self.buffer);
            if self.line_no == 1 && self.buffer.starts_with(UTF8_BOM) {
                self.buffer.drain(..UTF8_BOM.len());
            }
            if !self.buffer.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let line_no = self.line_no;
        let event = match std::str::from_utf8(&self.buffer) {
            Ok(line) => parse_line(line, line_no),
            Err(error) => Err(InputError {
                line: line_no,
                message: format!("not valid UTF-8 at byte {}", error.valid_up_to() + 1),
            }),
        };
        Ok(Some((line_no, event)))
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn trim_line_end(buffer: &mut Vec<u8>) {
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
    }
}
