//! The window held to its definition, through expiry, early evictions,
//! reuse of dead slots, rebuilds and snapshots; and its hash.

use std::collections::{HashMap, VecDeque};

use proptest::prelude::*;

use super::*;

fn first(dedup: &mut Dedup, hash: u128, at: i64) -> bool {
    dedup.sight(hash, at).is_first()
}

/// Whether user `user`'s `id` is new to the window at `at`.
fn sees(dedup: &mut Dedup, user: &str, id: &str, at: i64) -> bool {
    let hash = dedup.id_hash(user, id);
    first(dedup, hash, at)
}

fn sized(capacity: usize, window_ms: i64) -> Dedup {
    Dedup::new(DedupConfig {
        capacity,
        window_ms,
        ..DedupConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Spreads a small number over all 128 bits, as a hash would.
fn spread(n: u64) -> u128 {
    u128::from(n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

/// The window as its definition says: every id remembered with its time,
/// while it is younger than the window and among the last `capacity`
/// remembered; an id remembered when the window is full forgets the
/// oldest, early. Counted per id, so that it runs in time.
struct Model {
    config: DedupConfig,
    seen: VecDeque<(i64, u128)>,
    count: HashMap<u128, u32>,
    evicted_early: u64,
}

impl Model {
    fn new(config: DedupConfig) -> Model {
        Model {
            config,
            seen: VecDeque::new(),
            count: HashMap::new(),
            evicted_early: 0,
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, h)) = self.seen.pop_front() {
            let n = self.count.get_mut(&h).expect("counted");
            *n -= 1;
            if *n == 0 {
                self.count.remove(&h);
            }
        }
    }

    fn first_sighting(&mut self, hash: u128, at: i64) -> bool {
        while self
            .seen
            .front()
            .is_some_and(|&(t, _)| t <= at - self.config.window_ms)
        {
            self.forget_oldest();
        }
        if self.count.contains_key(&hash) {
            return false;
        }
        if self.seen.len() == self.config.capacity {
            self.forget_oldest();
            self.evicted_early += 1;
        }
        self.seen.push_back((at, hash));
        *self.count.entry(hash).or_default() += 1;
        true
    }

    fn saved(&self) -> VecDeque<(i64, Words)> {
        self.seen.iter().map(|&(t, h)| (t, words(h))).collect()
    }
}

/// The remembered ids, oldest first, as a snapshot keeps them.
fn saved(dedup: &Dedup) -> VecDeque<(i64, Words)> {
    dedup.order.iter().copied().collect()
}

fn round_trip(dedup: &Dedup) -> Dedup {
    let json = serde_json::to_string(dedup).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"))
}

proptest! {
    /// Answers and counts as the definition does, at its capacity or
    /// under it, through expiry, reuse of dead slots and rebuilds, and
    /// survives a serde round trip anywhere.
    #[test]
    fn answers_as_the_definition(
        ops in proptest::collection::vec((0u64..40, 0i64..100), 1..600),
        save_at in 0usize..600,
        capacity in prop_oneof![1usize..40, Just(DEDUP_CAPACITY)],
    ) {
        let mut dedup = sized(capacity, DEDUP_WINDOW_MS);
        let mut model = Model::new(*dedup.config());
        let mut at = 0;
        for (k, (n, quarter_hours)) in ops.into_iter().enumerate() {
            // Up to a day apart: ids keep leaving the 7-day window.
            at += quarter_hours * 900_000;
            let hash = spread(n);
            prop_assert_eq!(first(&mut dedup, hash, at), model.first_sighting(hash, at));
            prop_assert_eq!(dedup.len(), model.seen.len());
            prop_assert_eq!(dedup.evicted_early(), model.evicted_early);
            if k == save_at {
                prop_assert_eq!(saved(&dedup), model.saved());
                dedup = round_trip(&dedup);
            }
        }
        prop_assert_eq!(saved(&dedup), model.saved());
    }
}

/// Many sightings of `(user, messageId)` pairs, a third of them repeats
/// and many sharing an id with another user's, through batches
/// and table rebuilds, at the default capacity and at one that
/// forgets early: every answer as the definition's, which tells pairs
/// apart by what they are, not by their hash.
#[test]
fn answers_as_the_definition_over_many_ids() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut sightings = Vec::new();
    let mut at = 0;
    for i in 0..300_000u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Fresh pairs, and repeats of ones from up to about 40,000 back;
        // pairs `2k` and `2k + 1` share their id, not their user.
        let n = if state.is_multiple_of(3) {
            i.saturating_sub(state % 40_000)
        } else {
            i
        };
        let user = format!("user-{}", n % 7_919);
        let hash = id_hash(&DEDUP_DEFAULT_KEY, &user, &format!("msg-{}", n / 2));
        at += (state >> 40) as i64 % 8_000;
        sightings.push((n, hash, at));
    }
    for capacity in [DEDUP_CAPACITY, 20_000] {
        let mut dedup = sized(capacity, DEDUP_WINDOW_MS);
        let mut model = Model::new(*dedup.config());
        for (i, &(n, hash, at)) in sightings.iter().enumerate() {
            let fresh = model.first_sighting(u128::from(n), at);
            assert_eq!(first(&mut dedup, hash, at), fresh, "sighting {i}");
        }
        assert_eq!(dedup.len(), model.seen.len());
        assert_eq!(dedup.evicted_early(), model.evicted_early);
        assert_eq!(model.evicted_early > 0, capacity == 20_000);
    }
}

#[test]
fn a_redelivery_after_capacity_newer_ids_is_new_again_and_counted() {
    let capacity = 1_000;
    let mut dedup = sized(capacity, DEDUP_WINDOW_MS);
    let hash = |i: u64| dedup_hash("ana", i);
    assert!(first(&mut dedup, hash(0), 0));
    // Fewer than `capacity` newer ids: still recognised.
    for i in 1..capacity as u64 {
        assert_eq!(
            dedup.sight(hash(i), 0),
            Sighting::First {
                evicted_early: false
            }
        );
    }
    assert!(!first(&mut dedup, hash(0), 0));
    assert_eq!(dedup.evicted_early(), 0);
    // The `capacity`-th newer one pushes it out, an hour into the window.
    assert_eq!(
        dedup.sight(hash(capacity as u64), 3_600_000),
        Sighting::First {
            evicted_early: true
        }
    );
    assert_eq!(dedup.len(), capacity);
    assert!(first(&mut dedup, hash(0), 3_600_000), "forgotten early");
    assert_eq!(dedup.evicted_early(), 2);
    // Ids that leave the window in time are not early.
    let later = 3_600_000 + DEDUP_WINDOW_MS;
    assert!(first(&mut dedup, hash(0), later));
    assert_eq!(dedup.len(), 1);
    assert_eq!(dedup.evicted_early(), 2);
}

fn dedup_hash(user: &str, i: u64) -> u128 {
    id_hash(&DEDUP_DEFAULT_KEY, user, &format!("m-{i}"))
}

#[test]
fn hashes_that_share_their_slot_bits_stay_apart() {
    let dedup = Dedup::default();
    let a = spread(1);
    // The same high word: the same slot bits, another low word.
    let b = a ^ 0x5555;
    // The same low word and slot bits (a high word's lowest bit is not
    // kept): only the whole hash in the queue tells them apart.
    let c = a ^ (1 << 64);
    for other in [b, c] {
        let (x, y) = (words(a), words(other));
        assert_eq!(dedup.hash_bits(x[0]), dedup.hash_bits(y[0]));
    }
    let mut dedup = dedup;
    for hash in [a, b, c] {
        assert!(first(&mut dedup, hash, 0));
    }
    for hash in [a, b, c] {
        assert!(!first(&mut dedup, hash, 1));
    }
}

#[test]
fn numbers_come_round_without_the_table_growing() {
    // Past the numbers a slot can tell apart many times over, with about
    // a thousand ids remembered at a time: forgotten by the window's
    // time, and then by its capacity.
    for (capacity, window_ms) in [(4_000, 1_000), (1_000, i64::MAX)] {
        let mut dedup = sized(capacity, window_ms);
        let n = 20 * (dedup.seq_mask + 1);
        let mut most = 0;
        for i in 0..n {
            let at = i as i64;
            assert!(first(&mut dedup, spread(i), at), "id {i} is new");
            if i % 4096 == 0 && i >= 10 {
                assert!(
                    !first(&mut dedup, spread(i - 10), at),
                    "id {} is recent",
                    i - 10
                );
            }
            most = most.max(dedup.slots());
        }
        assert!(dedup.len() <= 1_000);
        assert!(most <= 4096, "the table grew to {most} slots");
        // Long forgotten: new again.
        assert!(first(&mut dedup, spread(5), n as i64));
    }
}

#[test]
fn the_hash_depends_on_the_key_the_user_and_the_id() {
    let other_key = *b"a secret key 16b";
    let h = id_hash(&DEDUP_DEFAULT_KEY, "ana", "m-1");
    assert_eq!(h, id_hash(&DEDUP_DEFAULT_KEY, "ana", "m-1"));
    assert_ne!(h, id_hash(&other_key, "ana", "m-1"));
    assert_ne!(h, id_hash(&DEDUP_DEFAULT_KEY, "bob", "m-1"));
    assert_ne!(h, id_hash(&DEDUP_DEFAULT_KEY, "ana", "m-2"));
    // The user key's length comes first: a pair's split is part of it.
    assert_ne!(
        id_hash(&DEDUP_DEFAULT_KEY, "ab", "c"),
        id_hash(&DEDUP_DEFAULT_KEY, "a", "bc")
    );
    // Stable across machines and versions: snapshots hold it.
    assert_eq!(h, 0xf271_b7d3_d5cc_3b2f_65d0_6825_1495_eaa5);
    // One user's id never answers for another's.
    let mut dedup = Dedup::default();
    assert!(sees(&mut dedup, "ana", "m-1", 0));
    assert!(sees(&mut dedup, "bob", "m-1", 0));
    assert!(!sees(&mut dedup, "bob", "m-1", 0));
}

#[test]
fn hashes_of_close_pairs_differ_and_spread_over_home_lines() {
    // Ids as Segment libraries make them: same length, a few characters
    // apart; ids that are prefixes of each other; one id for many users.
    let mut pairs: Vec<(String, String)> = (0..200_000u32)
        .map(|i| {
            let id = format!("msg-{:08x}-4b1e-9c3a-{:012x}", i / 7, u64::from(i) * 31);
            (format!("user-{}", i % 3), id)
        })
        .collect();
    pairs.extend((0..64).map(|n| ("u".to_string(), "a".repeat(n))));
    pairs.extend((0..64).map(|n| ("u".repeat(n), "\0".to_string())));
    let dedup = Dedup::default();
    let mut hashes: Vec<u128> = pairs.iter().map(|(u, id)| dedup.id_hash(u, id)).collect();
    let mut homes = [0u32; 64];
    for &hash in &hashes {
        homes[home_line(dedup.hash_bits(words(hash)[0]), 64)] += 1;
    }
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), pairs.len(), "two pairs share a hash");
    // Within 10% of the mean: more than five standard deviations of a
    // uniform hash's spread.
    let mean = pairs.len() as f64 / 64.0;
    for (line, &n) in homes.iter().enumerate() {
        assert!(
            (f64::from(n) - mean).abs() < mean * 0.1,
            "home {line}: {n} pairs, {mean} expected"
        );
    }
}

#[test]
fn a_snapshot_keeps_the_key_the_config_the_count_and_the_answers() {
    let config = DedupConfig {
        capacity: 100,
        window_ms: 60_000,
        key: *b"a secret key 16b",
    };
    let mut dedup = Dedup::new(config).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..150 {
        sees(&mut dedup, "ana", &format!("m-{i}"), i);
    }
    let restored = round_trip(&dedup);
    assert_eq!(restored.config(), &config);
    assert_eq!(restored.evicted_early(), 50);
    assert_eq!(restored.id_hash("ana", "m-1"), dedup.id_hash("ana", "m-1"));
    let (mut a, mut b) = (dedup, restored);
    for i in 0..200 {
        let hash = a.id_hash("ana", &format!("m-{i}"));
        assert_eq!(a.sight(hash, 200), b.sight(hash, 200), "m-{i}");
    }
    assert_eq!(a.evicted_early(), b.evicted_early());
}

#[test]
fn a_config_out_of_range_is_refused() {
    let with = |capacity, window_ms| {
        Dedup::new(DedupConfig {
            capacity,
            window_ms,
            ..DedupConfig::default()
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(with(1, 1), Ok(()));
    assert_eq!(with(DEDUP_MAX_CAPACITY, DEDUP_WINDOW_MS), Ok(()));
    assert_eq!(
        with(0, DEDUP_WINDOW_MS),
        Err("the de-duplication capacity must be between 1 and 1073741824 ids, not `0`".into())
    );
    assert!(with(DEDUP_MAX_CAPACITY + 1, DEDUP_WINDOW_MS).is_err());
    assert_eq!(
        with(DEDUP_CAPACITY, 0),
        Err("the de-duplication window must be longer than 0 ms, not `0` ms".into())
    );
    // A snapshot with one is refused too, with the same words.
    let saved = r#"{"config":{"capacity":0,"window_ms":1,"key":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"evicted_early":0,"ids":[]}"#;
    let error = serde_json::from_str::<Dedup>(saved)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        error
            .as_ref()
            .is_err_and(|e| e.contains("capacity must be between 1")),
        "{error:?}"
    );
}
