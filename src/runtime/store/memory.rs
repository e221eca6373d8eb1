//! Where a [`MemStore`]'s bytes go: the heap each part holds, counted from
//! the lengths and capacities of its tables (allocator rounding and
//! headers left out), for the service's figures (docs/performance.md) and
//! its operators. Counting walks every customer: call it rarely.

use std::mem::size_of;
use std::ops::AddAssign;

use super::{Instance, JourneyState, MemStore, SentRecord, UserState};
use crate::value::Str;

/// Heap bytes by part of the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// The user keys by id (a key longer than [`Str::INLINE`] bytes has its
    /// text apart).
    pub keys: usize,
    /// The index from user keys to ids.
    pub index: usize,
    /// The users' states in place (`UserState`: its lists' headers and
    /// three silences).
    pub users: usize,
    /// The profiles, packed: a tag byte and the bytes a value; and the
    /// engagement times of `at best hour` (`Engaged`, 64 bytes a customer
    /// who opened or clicked, when the program has such a send).
    pub profiles: usize,
    /// The journey states of the users (`JourneyState`), their running
    /// instances (boxed), and ended instances kept for a goal.
    pub journeys: usize,
    /// What running instances hold apart: trigger values, handles, sends,
    /// audiences.
    pub instances: usize,
    /// The sends kept for caps, and silences past the ones in place.
    pub sends: usize,
    /// The pending timers.
    pub timers: usize,
    /// The `messageId` window: its queue and table.
    pub dedup: usize,
    /// How many journey states there are (counts, not bytes)...
    pub journey_states: usize,
    /// ...and how many of them have a running instance.
    pub running: usize,
}

impl MemoryUse {
    pub fn total(&self) -> usize {
        self.keys
            + self.index
            + self.users
            + self.profiles
            + self.journeys
            + self.instances
            + self.sends
            + self.timers
            + self.dedup
    }
}

impl AddAssign for MemoryUse {
    fn add_assign(&mut self, other: MemoryUse) {
        self.keys += other.keys;
        self.index += other.index;
        self.users += other.users;
        self.profiles += other.profiles;
        self.journeys += other.journeys;
        self.instances += other.instances;
        self.sends += other.sends;
        self.timers += other.timers;
        self.dedup += other.dedup;
        self.journey_states += other.journey_states;
        self.running += other.running;
    }
}

impl MemStore {
    /// The heap bytes of each part of the state.
    pub fn memory(&self) -> MemoryUse {
        let mut use_ = MemoryUse {
            keys: self.keys.capacity() * size_of::<Str>()
                + self.keys.iter().map(text_heap).sum::<usize>(),
            index: self.index.heap_bytes(),
            users: self.users.capacity() * size_of::<UserState>(),
            timers: self.timers.heap_bytes(),
            dedup: self.dedup.heap_bytes(),
            ..MemoryUse::default()
        };
        for user in &self.users {
            use_.profiles += user.profile.heap_size()
                + user
                    .engaged
                    .as_ref()
                    .map_or(0, |_| size_of::<super::Engaged>());
            use_.journeys += user.journeys.len() * size_of::<JourneyState>();
            use_.journey_states += user.journeys.len();
            for journey in &user.journeys {
                if let Some(key) = &journey.key {
                    use_.journeys +=
                        size_of::<crate::runtime::packed::Packed>() + key.bytes().len();
                }
                if let Some(instance) = &journey.instance {
                    use_.running += 1;
                    use_.journeys += size_of::<Instance>();
                    use_.instances += instance_heap(instance);
                }
                if let Some(watch) = &journey.watch {
                    use_.journeys += size_of::<Instance>();
                    use_.instances += instance_heap(watch);
                }
            }
            use_.sends += user.sent.len() * size_of::<SentRecord>()
                + user.touches.heap_bytes()
                + user.silences.tail.as_ref().map_or(0, |tail| {
                    size_of::<Vec<i64>>() + tail.capacity() * size_of::<i64>()
                });
        }
        use_
    }
}

/// The text a `Str` holds apart (an `Arc<str>`: two counts and the text).
fn text_heap(s: &Str) -> usize {
    if s.len() > Str::INLINE {
        2 * size_of::<usize>() + s.len()
    } else {
        0
    }
}

fn instance_heap(instance: &Instance) -> usize {
    instance.trigger.bytes().len()
        + std::mem::size_of_val(&*instance.handles)
        + std::mem::size_of_val(&*instance.sends)
        + std::mem::size_of_val(&*instance.audiences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Store;
    use crate::runtime::packed::Packed;
    use crate::value::Value;

    #[test]
    fn each_part_counts_what_it_holds() {
        let mut store = MemStore::default();
        let empty = store.memory();
        assert_eq!(empty.total(), empty.dedup + empty.timers);
        let long = "a-user-key-longer-than-twenty-two-bytes";
        for key in ["ana", long] {
            let id = store.intern_user(key);
            store.user_mut(id).profile =
                Packed::new(&[Value::str("x".repeat(40).as_str()), Value::Null]);
        }
        let hash = store.message_id_hash("ana", "m1");
        store.sight_message_id(hash, 0);
        let used = store.memory();
        assert!(used.index > 0 && used.users >= 2 * size_of::<UserState>());
        assert_eq!(
            used.keys,
            store.keys.capacity() * size_of::<Str>() + 2 * size_of::<usize>() + long.len()
        );
        // A string's tag, length and text; a null's tag.
        assert_eq!(used.profiles, 2 * (1 + 1 + 40 + 1));
        assert!(used.dedup > empty.dedup, "{used:?}");
        assert_eq!(
            used.total(),
            used.keys + used.index + used.users + used.profiles + used.dedup + used.timers
        );
    }
}
