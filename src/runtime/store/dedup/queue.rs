//! The window's queue: the remembered ids, oldest first, each with the
//! time it was seen, in fixed blocks of [`BLOCK`] entries. A `VecDeque`
//! of them kept room for up to twice as many as it held (it doubles, and
//! a window's length rises and falls with the traffic) and moved all of
//! them at each doubling; blocks cost what they hold, give or take a
//! block at each end, and an emptied block at the front is reused at the
//! back.

use std::collections::VecDeque;

use super::Words;

/// An id as the queue keeps it: when it was seen, and its hash.
pub(super) type Entry = (i64, Words);

/// Entries a block holds (24 KiB of them).
const BLOCK: usize = 1024;

#[derive(Clone, Default)]
pub(super) struct Queue {
    /// Every block holds `BLOCK` entries; the queue's are from `head` in
    /// the first block to `head + len` counted on through the next ones.
    blocks: VecDeque<Box<[Entry]>>,
    head: usize,
    len: usize,
    /// A block emptied at the front, for the next one at the back.
    spare: Option<Box<[Entry]>>,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry `k` places after the oldest; `k < len`.
    pub fn get(&self, k: usize) -> &Entry {
        debug_assert!(k < self.len);
        let i = self.head + k;
        &self.blocks[i / BLOCK][i % BLOCK]
    }

    pub fn front(&self) -> Option<&Entry> {
        (self.len > 0).then(|| self.get(0))
    }

    pub fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        self.head += 1;
        if self.head == BLOCK || self.len == 0 {
            // The first block is done with (or the queue is empty: start
            // again at the beginning of the block).
            if self.head == BLOCK {
                self.spare = self.blocks.pop_front();
            }
            self.head = 0;
            if self.len == 0 {
                while self.blocks.len() > 1 {
                    self.spare = self.blocks.pop_back();
                }
            }
        }
    }

    pub fn push_back(&mut self, entry: Entry) {
        let i = self.head + self.len;
        if i == self.blocks.len() * BLOCK {
            let block = self
                .spare
                .take()
                .unwrap_or_else(|| vec![(0, [0; 2]); BLOCK].into_boxed_slice());
            self.blocks.push_back(block);
        }
        self.blocks[i / BLOCK][i % BLOCK] = entry;
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        (0..self.len).map(|k| self.get(k))
    }

    /// The bytes of its blocks (the spare's included) and their list.
    pub fn heap_bytes(&self) -> usize {
        let blocks = self.blocks.len() + usize::from(self.spare.is_some());
        blocks * BLOCK * std::mem::size_of::<Entry>()
            + self.blocks.capacity() * std::mem::size_of::<Box<[Entry]>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_blocks_and_reuses_emptied_ones() {
        let mut queue = Queue::default();
        let mut model: VecDeque<Entry> = VecDeque::new();
        let mut next = 0i64;
        // Grow to three blocks and a bit, drain most, grow again, empty.
        for (push, pop) in [
            (3 * BLOCK + 7, 0),
            (0, 2 * BLOCK + 5),
            (BLOCK, 0),
            (0, usize::MAX),
        ] {
            for _ in 0..push {
                let entry = (next, [next as u64, !(next as u64)]);
                queue.push_back(entry);
                model.push_back(entry);
                next += 1;
            }
            for _ in 0..pop.min(model.len()) {
                queue.pop_front();
                model.pop_front();
            }
            assert_eq!(queue.len(), model.len());
            assert_eq!(queue.front(), model.front());
            assert!(queue.iter().eq(model.iter()));
            let blocks = model.len().div_ceil(BLOCK) + 1;
            assert!(
                queue.blocks.len() <= blocks,
                "{} blocks",
                queue.blocks.len()
            );
        }
        assert!(queue.is_empty() && queue.blocks.len() <= 1);
        queue.pop_front();
        assert!(queue.is_empty());
    }
}
