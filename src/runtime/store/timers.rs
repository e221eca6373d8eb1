//! Pending timers, earliest first, in the order of [`Timer`]'s `Ord`.
//!
//! Most timers are set days ahead, and a million waiting customers make a
//! heap of all of them slow: every pop walks a few megabytes. So timers
//! are bucketed by the hour they are due in; the earliest bucket is sorted
//! once when time reaches it and popped from its end, and a timer set
//! within that hour (a `wait 5m`, a re-armed silence) goes to a small heap
//! beside it. A pop takes the earlier of the two.

use std::collections::{BTreeMap, BinaryHeap};

use super::Timer;

/// Invariant: every timer in `current` and `near` is due before `horizon`
/// and every bucketed one at or after it, and `current` and `near` are both
/// empty only when the buckets are, so the earliest timer is the earlier of
/// `current`'s last and `near`'s top.
#[derive(Clone, Debug, Default)]
pub struct TimerQueue {
    /// The current hour's bucket, sorted so that the earliest is last.
    current: Vec<Timer>,
    /// Timers set during the current hour, due within it.
    near: BinaryHeap<Timer>,
    far: BTreeMap<i64, Vec<Timer>>,
    horizon: i64,
    len: usize,
}

impl TimerQueue {
    /// The width of a bucket.
    const BUCKET_MS: i64 = 3_600_000;

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, timer: Timer) {
        self.len += 1;
        if self.len > 1 && timer.due < self.horizon {
            self.near.push(timer);
            return;
        }
        self.far
            .entry(timer.due.div_euclid(Self::BUCKET_MS))
            .or_default()
            .push(timer);
        if self.len == 1 {
            self.refill();
        }
    }

    /// Whether the earliest timer is `near`'s (else `current`'s).
    fn near_first(&self) -> bool {
        match (self.near.peek(), self.current.last()) {
            // `Ord` is reversed: the greater timer is the earlier.
            (Some(n), Some(c)) => n > c,
            (near, _) => near.is_some(),
        }
    }

    pub fn peek(&self) -> Option<&Timer> {
        if self.near_first() {
            self.near.peek()
        } else {
            self.current.last()
        }
    }

    pub fn pop(&mut self) -> Option<Timer> {
        let timer = if self.near_first() {
            self.near.pop()
        } else {
            self.current.pop()
        }?;
        self.len -= 1;
        if self.current.is_empty() && self.near.is_empty() {
            self.refill();
        }
        Some(timer)
    }

    /// Makes the earliest bucket current (both current parts are empty).
    fn refill(&mut self) {
        if let Some((bucket, mut timers)) = self.far.pop_first() {
            self.horizon = (bucket + 1).saturating_mul(Self::BUCKET_MS);
            // Ascending by `Ord` puts the earliest last.
            timers.sort_unstable();
            self.current = timers;
        }
    }

    /// Every timer, earliest first.
    pub fn into_sorted(self) -> Vec<Timer> {
        let mut timers = self.current;
        timers.extend(self.near.into_vec());
        timers.extend(self.far.into_values().flatten());
        // Sorted descending by `Ord` = earliest first.
        timers.sort_by(|a, b| b.cmp(a));
        timers
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;

    use super::*;
    use crate::runtime::store::TimerKind;
    use proptest::prelude::*;

    fn timer(due: i64, user: u32) -> Timer {
        Timer {
            due,
            journey: 0,
            user,
            generation: 0,
            kind: TimerKind::Instance,
        }
    }

    proptest! {
        /// The bucketed queue pops exactly what one binary heap would, for
        /// any mix of pushes (past, near and far, across bucket edges) and pops.
        #[test]
        fn the_timer_queue_pops_in_heap_order(
            ops in proptest::collection::vec((0u8..4, -3i64..400, 0u32..5), 0..300)
        ) {
            let mut queue = TimerQueue::default();
            let mut heap = BinaryHeap::new();
            let mut clock = 0i64;
            for (op, offset, user) in ops {
                if op == 0 {
                    prop_assert_eq!(queue.pop(), heap.pop());
                    if let Some(t) = queue.peek() {
                        clock = clock.max(t.due);
                    }
                } else {
                    // Minutes from the clock, some in the past, some hours ahead.
                    let t = timer(clock + offset * 60_000 * i64::from(op), user);
                    queue.push(t);
                    heap.push(t);
                }
                prop_assert_eq!(queue.peek(), heap.peek());
                prop_assert_eq!(queue.len(), heap.len());
            }
            let mut rest = Vec::new();
            while let Some(t) = queue.pop() {
                rest.push(t);
            }
            prop_assert_eq!(rest, heap.into_sorted_vec().into_iter().rev().collect::<Vec<_>>());
        }
    }
}
