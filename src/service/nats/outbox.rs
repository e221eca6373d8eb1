//! The outbox's messages: each holds the actions of a run of journal
//! positions of one partition, one simulate line each, separated by
//! newlines, and is published as one write expecting the owner's previous
//! message to be the subject's newest (the fence, SERVICE.md §9): a
//! partition pays one NATS round trip per message, not per action, and a
//! stale owner can write nothing at all once a new owner's fence is in.
//!
//! An action's `seq` in `/v1/actions` is its message's stream sequence
//! times [`SLOTS`] plus its index in the message: strictly increasing,
//! never reused, with gaps (fence records, and the slots a message does
//! not fill).

use crate::runtime::Action;

/// The most actions one outbox message holds; an action's `seq` is
/// `stream sequence × SLOTS + index`.
pub const SLOTS: u64 = 1_000;

/// The feed's `seq` of the action at `index` of the message at stream
/// sequence `sequence`.
pub fn seq(sequence: u64, index: usize) -> u64 {
    sequence * SLOTS + index as u64
}

/// Where a reader that has read up to `after` goes on: the message at
/// this stream sequence, from the action after this index (`None`: from
/// its first).
pub fn resume(after: u64) -> (u64, Option<u64>) {
    if after == 0 {
        return (1, None);
    }
    (after / SLOTS, Some(after % SLOTS))
}

/// The actions of one message, in order.
pub fn actions(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
}

/// The actions a partition has derived and not written yet: the next
/// outbox message.
#[derive(Default)]
pub struct Pending {
    payload: String,
    /// The `position.index` of its first and last action.
    first: Option<(u64, u32)>,
    last: (u64, u32),
    /// Each action's labels for the actions counter, counted once written.
    labels: Vec<(String, &'static str)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Whether `line_bytes` more would take it past `max_bytes` or
    /// [`SLOTS`] actions (an empty message takes any one action).
    pub fn full_for(&self, line_bytes: usize, max_bytes: usize) -> bool {
        !self.is_empty()
            && (self.labels.len() as u64 >= SLOTS
                || self.payload.len() + 1 + line_bytes > max_bytes)
    }

    pub fn push(&mut self, position: u64, index: u32, line: &str, action: &Action) {
        if !self.payload.is_empty() {
            self.payload.push('\n');
        }
        self.payload.push_str(line);
        self.first.get_or_insert((position, index));
        self.last = (position, index);
        self.labels
            .push((action.journey.to_string(), action.kind.name()));
    }

    /// The message's text, its first and last `position.index`, and its
    /// actions' labels; empty again.
    pub fn take(&mut self) -> Option<Written> {
        let first = self.first.take()?;
        Some(Written {
            payload: std::mem::take(&mut self.payload),
            first,
            last: self.last,
            labels: std::mem::take(&mut self.labels),
        })
    }
}

/// One outbox message, ready to publish.
pub struct Written {
    pub payload: String,
    pub first: (u64, u32),
    pub last: (u64, u32),
    pub labels: Vec<(String, &'static str)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_resume_agree() {
        assert_eq!(resume(0), (1, None));
        let s = seq(7, 3);
        assert_eq!(s, 7_003);
        assert_eq!(resume(s), (7, Some(3)));
        // The last slot of a message: the next message is read whole.
        assert_eq!(resume(seq(7, 999)), (7, Some(999)));
        assert!(seq(8, 0) > seq(7, (SLOTS - 1) as usize));
    }

    #[test]
    fn actions_split_on_newlines() {
        let payload = b"{\"a\":1}\n{\"b\":\"x\\ny\"}";
        let lines: Vec<&[u8]> = actions(payload).collect();
        assert_eq!(lines, vec![&b"{\"a\":1}"[..], &b"{\"b\":\"x\\ny\"}"[..]]);
        assert_eq!(actions(b"").count(), 0);
    }
}
