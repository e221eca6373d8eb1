//! Pending timers, earliest first, in the order of [`Timer`]'s `Ord`.
//!
//! Most timers are set days ahead, and a million waiting customers make a
//! heap of all of them slow: every pop walks a few megabytes. So timers
//! are bucketed by the hour they are due in. The earliest bucket is
//! current: it is sorted once when it becomes current and popped from its
//! end, and a timer set for its hour meanwhile (a `wait 5m`, a re-armed
//! silence) goes to a small heap beside it. A pop takes the earlier of the
//! two. A timer for an hour before the current one (the first silences are
//! set days ahead, then a `wait 1h` comes) makes its hour current and sends
//! the current one back among the buckets.

use std::collections::{BTreeMap, BinaryHeap};

use super::Timer;

/// Invariant: every timer in `current` and `near` is due in hour `bucket`
/// and every bucketed one in a later hour, and `current` and `near` are
/// both empty only when the buckets are; so the earliest timer is the
/// earlier of `current`'s last and `near`'s top.
#[derive(Clone, Debug, Default)]
pub struct TimerQueue {
    /// The current hour's timers as they were when it became current,
    /// sorted so that the earliest is last.
    current: Vec<Timer>,
    /// Timers set for the current hour since.
    near: BinaryHeap<Timer>,
    /// Later hours, unsorted.
    far: BTreeMap<i64, Vec<Timer>>,
    /// The current hour (the due time divided by [`TimerQueue::BUCKET_MS`]).
    bucket: i64,
    len: usize,
}

impl TimerQueue {
    /// The width of a bucket.
    const BUCKET_MS: i64 = 3_600_000;

    /// A queue of `timers` (a snapshot's, restored), each hour's list
    /// exactly as long as it is: pushed one by one, every list would keep
    /// the room of its last doubling, a third more on average.
    pub fn of(mut timers: Vec<Timer>) -> TimerQueue {
        // Descending by `Ord` = earliest first; stable, as in `sorted`.
        timers.sort_by(|a, b| b.cmp(a));
        let hour = |t: &Timer| t.due.div_euclid(Self::BUCKET_MS);
        let mut queue = TimerQueue {
            len: timers.len(),
            ..TimerQueue::default()
        };
        let mut rest = &timers[..];
        while let Some(first) = rest.first() {
            let bucket = hour(first);
            let n = rest
                .iter()
                .position(|t| hour(t) != bucket)
                .unwrap_or(rest.len());
            let (this, after) = rest.split_at(n);
            if queue.current.is_empty() {
                // The earliest hour is current, sorted with its earliest last.
                queue.bucket = bucket;
                queue.current = this.iter().rev().copied().collect();
            } else {
                queue.far.insert(bucket, this.to_vec());
            }
            rest = after;
        }
        queue
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, timer: Timer) {
        let bucket = timer.due.div_euclid(Self::BUCKET_MS);
        self.len += 1;
        if self.len == 1 {
            self.bucket = bucket;
            self.current.push(timer);
        } else if bucket == self.bucket {
            self.near.push(timer);
        } else if bucket > self.bucket {
            self.far.entry(bucket).or_default().push(timer);
        } else {
            // An earlier hour: it becomes current, the current one waits
            // among the buckets (none of which is for its hour).
            let mut demoted = std::mem::replace(&mut self.current, vec![timer]);
            demoted.extend(self.near.drain());
            self.far.insert(self.bucket, demoted);
            self.bucket = bucket;
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

    /// The timer `k` places after the next one in the current hour's
    /// sorted part (a hint: timers set for the hour since may come between).
    pub fn upcoming(&self, k: usize) -> Option<&Timer> {
        self.current
            .len()
            .checked_sub(k + 1)
            .map(|i| &self.current[i])
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
            self.bucket = bucket;
            // Ascending by `Ord` puts the earliest last.
            timers.sort_unstable();
            self.current = timers;
        }
    }

    /// The bytes of the lists of timers (a later hour's entry in the
    /// B-tree counted as its key and list header, twice: nodes are about
    /// half full).
    pub fn heap_bytes(&self) -> usize {
        let timer = std::mem::size_of::<Timer>();
        let entry = 2 * (std::mem::size_of::<i64>() + std::mem::size_of::<Vec<Timer>>());
        (self.current.capacity() + self.near.capacity()) * timer
            + self
                .far
                .values()
                .map(|list| entry + list.capacity() * timer)
                .sum::<usize>()
    }

    /// Every timer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Timer> {
        self.current
            .iter()
            .chain(self.near.iter())
            .chain(self.far.values().flatten())
    }

    /// Every timer, earliest first (a copy: a snapshot writes it).
    pub fn sorted(&self) -> Vec<Timer> {
        let mut timers: Vec<Timer> = self.iter().copied().collect();
        // Sorted descending by `Ord` = earliest first; stable, so that
        // timers equal but for their generation keep one order.
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

    /// A timer set days ahead does not make every earlier timer go to the
    /// heap: the heap only ever holds timers of the current hour.
    #[test]
    fn the_heap_holds_only_the_current_hour() {
        let hour = TimerQueue::BUCKET_MS;
        let mut queue = TimerQueue::default();
        queue.push(timer(14 * 24 * hour, 0));
        for i in 0..100 {
            queue.push(timer(i * hour / 2, 1));
            assert!(
                queue
                    .near
                    .iter()
                    .all(|t| t.due.div_euclid(hour) == queue.bucket)
            );
        }
        assert_eq!(queue.near.len(), 1);
        assert_eq!(queue.pop().map(|t| t.due), Some(0));
    }

    /// `upcoming(k)` is the timer the pop after the next `k` returns, while
    /// the hour's timers were all there when it became current.
    #[test]
    fn upcoming_names_the_timers_popped_next() {
        let hour = TimerQueue::BUCKET_MS;
        let mut queue = TimerQueue::default();
        for (i, due) in [30, 10, 50, 20, 40].into_iter().enumerate() {
            queue.push(timer(5 * hour + due, i as u32));
        }
        // A later hour's timer waits among the buckets: not upcoming yet.
        queue.push(timer(9 * hour, 9));
        queue.push(timer(hour, 7));
        queue.pop();
        let ahead: Vec<_> = (0..6).map(|k| queue.upcoming(k).map(|t| t.due)).collect();
        let mut popped = Vec::new();
        while let Some(t) = queue.pop().filter(|t| t.due < 9 * hour) {
            popped.push(Some(t.due));
        }
        popped.push(None);
        assert_eq!(ahead, popped);
        assert_eq!(queue.upcoming(0), None);
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

        /// A queue made of a list of timers (a restore) pops them in heap
        /// order, keeps popping right after more pushes, and each of its
        /// lists is exactly as long as it is.
        #[test]
        fn a_queue_of_timers_pops_in_heap_order(
            listed in proptest::collection::vec((-3i64..400, 0u32..5), 0..300),
            pushed in proptest::collection::vec((-3i64..400, 0u32..5), 0..20),
        ) {
            let listed: Vec<Timer> =
                listed.into_iter().map(|(m, u)| timer(m * 600_000, u)).collect();
            let mut queue = TimerQueue::of(listed.clone());
            prop_assert!(queue.current.len() == queue.current.capacity());
            prop_assert!(queue.far.values().all(|l| l.len() == l.capacity()));
            let mut heap: BinaryHeap<Timer> = listed.into_iter().collect();
            prop_assert_eq!(queue.len(), heap.len());
            for (m, u) in pushed {
                let t = timer(m * 60_000, u);
                queue.push(t);
                heap.push(t);
                prop_assert_eq!(queue.pop(), heap.pop());
            }
            let mut rest = Vec::new();
            while let Some(t) = queue.pop() {
                rest.push(t);
            }
            prop_assert_eq!(rest, heap.into_sorted_vec().into_iter().rev().collect::<Vec<_>>());
        }
    }
}
