//! Events out of time order in an input file: how many, how late at most,
//! and the lines of the first few, so that the report can say which lines
//! to look at and how to sort the file (LANGUAGE.md §6.2: a late event is
//! processed at the clock's time).

use serde::Serialize;

/// How many late lines [`LateEvents`] remembers.
pub const LATE_LINES_KEPT: usize = 5;

/// The late events of one input, as its reader saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LateEvents {
    /// Events stamped before the clock (the latest time seen before them).
    pub count: u64,
    /// The most one of them was behind the clock, in milliseconds.
    pub max_behind_ms: i64,
    /// The first lines with a late event (1-based), in input order.
    #[serde(skip)]
    lines: [u64; LATE_LINES_KEPT],
}

impl LateEvents {
    /// An event on `line` stamped `at` while the clock read `clock`;
    /// counted when it is late.
    pub fn see(&mut self, line: u64, at: i64, clock: Option<i64>) {
        let Some(clock) = clock.filter(|&c| at < c) else {
            return;
        };
        if let Some(slot) = self.lines.get_mut(self.count as usize) {
            *slot = line;
        }
        self.count += 1;
        self.max_behind_ms = self.max_behind_ms.max(clock - at);
    }

    /// The first late lines (at most [`LATE_LINES_KEPT`]).
    pub fn lines(&self) -> &[u64] {
        &self.lines[..(self.count as usize).min(LATE_LINES_KEPT)]
    }

    /// The command that sorts an NDJSON file by `timestamp`, keeping the
    /// order of lines stamped alike (for timestamps written alike, such as
    /// UTC with `Z` and the same digits, as Segment exports them).
    pub fn sort_command(file: &str) -> String {
        format!("jq -c -s 'sort_by(.timestamp)[]' {file} > sorted.ndjson")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_late_keeps_the_first_lines_and_the_most_behind() {
        let mut late = LateEvents::default();
        late.see(1, 100, None);
        late.see(2, 100, Some(100));
        assert_eq!(late.count, 0);
        for line in 3..10 {
            late.see(line, 100 - line as i64, Some(100));
        }
        assert_eq!(late.count, 7);
        assert_eq!(late.max_behind_ms, 9);
        assert_eq!(late.lines(), [3, 4, 5, 6, 7]);
    }
}
