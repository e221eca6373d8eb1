//! Journal trimming: once a partition's checkpoint is stored, every action
//! of the positions it covers is in the outbox (a checkpoint is written
//! only then), so the partition's journal before the checkpoint's position
//! is no longer read by anyone: no takeover replays from before its newest
//! checkpoint. It goes as one machine's goes (`journal.retention`, default
//! 0): `retention` after the checkpoint that covers it was written, by a
//! JetStream purge of the partition's subject up to that position (the
//! checkpoint's own entry stays, so the subject's newest position is never
//! lost).
//!
//! A purge whose sequence is 0 or 1 purges the whole subject (nats-server
//! reads it as "no sequence"), so a checkpoint at position 0 or 1 trims
//! nothing: nothing is before it.
//!
//! Neither de-duplication window depends on the journal kept: JetStream's
//! `Nats-Msg-Id` window (2 minutes) is a table of the stream's apart from
//! its messages, and the runtime's own window of `(user, messageId)` is in
//! the checkpoint (SERVICE.md §4).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Deployment, journal_subject};

/// The checkpoints of a partition held here whose journal is still kept.
pub(super) struct Trim {
    retention: Duration,
    /// `(position, written)`, oldest first.
    marks: VecDeque<(u64, Instant)>,
}

impl Trim {
    pub(super) fn new(retention: Duration) -> Trim {
        Trim {
            retention,
            marks: VecDeque::new(),
        }
    }

    /// A checkpoint at `position` is stored.
    pub(super) fn checkpointed(&mut self, position: u64) {
        self.marks.push_back((position, Instant::now()));
    }

    /// The newest position whose checkpoint is past retention, and the
    /// marks up to it forgotten.
    fn due(&mut self) -> Option<u64> {
        let mut newest = None;
        while let Some(&(position, at)) = self.marks.front()
            && at.elapsed() >= self.retention
        {
            newest = Some(position);
            self.marks.pop_front();
        }
        newest
    }

    /// Purges partition `p`'s journal before the newest checkpoint past
    /// retention; says why when it could not (the journal stays, and the
    /// next checkpoint tries again).
    pub(super) async fn run(&mut self, d: &Deployment, p: u32) -> Result<(), String> {
        let Some(position) = self.due() else {
            return Ok(());
        };
        // Nothing is before position 1, and a purge request's sequence of
        // 0 or 1 means none: the whole subject would go.
        if position <= 1 {
            return Ok(());
        }
        d.journal
            .purge()
            .filter(journal_subject(p))
            .sequence(position)
            .await
            .map(|_| ())
            .map_err(|e| {
                // Tried again with the next checkpoint's mark, which covers
                // this one's journal too.
                format!("the journal before position {position} was not trimmed: {e}")
            })
    }
}
