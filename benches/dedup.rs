//! The `messageId` window's hash: keyed SipHash-1-3 with 128-bit output
//! over a user key and a Segment-style id, beside the unkeyed 64-bit
//! word-at-a-time hash it replaced (kept here only as the yardstick), and
//! one question to a window of 100,000 ids for scale.
//!
//! `cargo bench --bench dedup` (a few seconds).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use journey::runtime::store::{DEDUP_DEFAULT_KEY, Dedup, id_hash};

/// The hash the window used before it was keyed: eight bytes of the id at
/// a time, then MurmurHash3's `fmix64`.
fn word_hash(id: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = id.as_bytes();
    let mut state = (bytes.len() as u64 ^ 0x243f_6a88_85a3_08d3).wrapping_mul(K);
    let mut mix = |word: u64| state = (state ^ word).wrapping_mul(K).rotate_left(31);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(word);
        mix(u64::from_le_bytes(buf));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        mix(u64::from_le_bytes(buf));
    }
    let mut h = state;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn bench(c: &mut Criterion) {
    let user = "user-0004217";
    let id = "0a3f9c2e-4b1e-9c3a-8d7f-12ab34cd56ef";
    let mut group = c.benchmark_group("dedup");
    group.bench_function("siphash13_128 user+id", |b| {
        b.iter(|| id_hash(&DEDUP_DEFAULT_KEY, black_box(user), black_box(id)))
    });
    group.bench_function("word_hash64 id (old)", |b| {
        b.iter(|| word_hash(black_box(id)))
    });
    let mut window = Dedup::default();
    for i in 0..100_000 {
        window.sight(window.id_hash(user, &format!("seen-{i}")), 0);
    }
    let hashes: Vec<u128> = (0..4096)
        .map(|i| window.id_hash(user, &format!("new-{i}")))
        .collect();
    let mut i = 0;
    group.bench_function("sight, 100k remembered", |b| {
        b.iter(|| {
            i = (i + 1) % hashes.len();
            // A repeat after the first round: the question, not the insert.
            window.sight(black_box(hashes[i]), 0)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
