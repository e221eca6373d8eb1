//! A small seeded generator (splitmix64) and the draws the stream needs,
//! all in integer or exact floating-point arithmetic so every machine draws
//! the same numbers (no `exp`/`ln`, whose last bits vary between libms).

/// splitmix64: one word of state, good enough statistics for test data.
#[derive(Clone, Debug)]
pub(super) struct Rng(u64);

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a strong 64-bit mixer.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for one purpose (`parts`: seed, salt, user, day, ...), so
    /// that what one user does on one day never depends on anyone else.
    pub(super) fn derive(parts: &[u64]) -> Rng {
        let state = parts.iter().fold(GOLDEN_GAMMA, |h, &part| {
            mix(h ^ mix(part.wrapping_add(GOLDEN_GAMMA)))
        });
        Rng(state)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi`; `lo` when the range is empty.
    pub(super) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi.abs_diff(lo)) as i64
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        ((self.next_u64() >> 11) as f64) * SCALE < p
    }

    /// An element of a non-empty table.
    pub(super) fn pick<'t, T>(&mut self, table: &'t [T]) -> &'t T {
        // Every table passed here is a non-empty constant, so the index is
        // in bounds.
        &table[self.below(table.len() as u64) as usize]
    }

    /// An index drawn with the given weights (the last one when all are 0).
    pub(super) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut draw = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if draw < u64::from(w) {
                return i;
            }
            draw -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }

    /// An element of a non-empty table, drawn by the weights `weight` gives.
    pub(super) fn pick_weighted<'t, T>(
        &mut self,
        table: &'t [T],
        weight: impl Fn(&T) -> u32,
    ) -> &'t T {
        let total: u64 = table.iter().map(|t| u64::from(weight(t))).sum();
        let mut draw = self.below(total);
        for item in table {
            let w = u64::from(weight(item));
            if draw < w {
                return item;
            }
            draw -= w;
        }
        // Only reached when every weight is 0: fall back to a uniform pick.
        self.pick(table)
    }

    /// The number of successes in `n` trials of probability `p`.
    pub(super) fn binomial(&mut self, n: u32, p: f64) -> u32 {
        (0..n).map(|_| u32::from(self.chance(p))).sum()
    }

    /// Failures before the first success, when each trial goes on with
    /// probability `p_continue`, capped at `max`.
    pub(super) fn geometric(&mut self, p_continue: f64, max: u32) -> u32 {
        let mut count = 0;
        while count < max && self.chance(p_continue) {
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_same_numbers() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(&[1, 2, 3]);
                move |_| r.next_u64()
            })
            .collect();
        let mut b = Rng::derive(&[1, 2, 3]);
        assert!(a.iter().all(|&x| x == b.next_u64()));
        assert_ne!(Rng::derive(&[1, 2, 4]).next_u64(), a[0]);
        assert_ne!(Rng::derive(&[2, 1, 3]).next_u64(), a[0]);
    }

    #[test]
    fn draws_stay_in_range_and_follow_their_weights() {
        let mut rng = Rng::derive(&[7]);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            assert!(rng.below(10) < 10);
            let x = rng.between(-5, 5);
            assert!((-5..5).contains(&x));
            counts[rng.weighted(&[1, 2, 7])] += 1;
        }
        assert!((2_600..3_400).contains(&counts[0]), "{counts:?}");
        assert!((20_400..21_600).contains(&counts[2]), "{counts:?}");
        assert_eq!(rng.between(3, 3), 3);
        assert_eq!(rng.weighted(&[0, 0]), 1);
    }
}
