//! Customers are split into partitions by a stable hash of their user key:
//! the same key goes to the same partition on every machine, in every
//! version, so a data directory (or a JetStream subject) keeps its
//! customers across restarts and deploys. Nothing in the language crosses
//! customers, so partitions never talk to each other.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// The default number of partitions of a new data directory.
pub const DEFAULT_PARTITIONS: u32 = 8;
/// The most partitions a deployment may have.
pub const MAX_PARTITIONS: u32 = 1_024;

/// The partition (`0..partitions`) of a user key: SipHash-1-3 of the key
/// under a fixed key, its high 32 bits multiplied into range. Fixed
/// forever, as data directories depend on it (the test pins values).
pub fn partition_of(user_key: &str, partitions: u32) -> u32 {
    let mut hasher = SipHasher13::new_with_keys(0x6a6f_7572_6e65_7900, 0x7061_7274_6974_696f);
    hasher.write(user_key.as_bytes());
    let high = hasher.finish() >> 32;
    ((high * u64::from(partitions.max(1))) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: a data directory depends on them.
        assert_eq!(partition_of("ana", 1), 0);
        let fixed: Vec<u32> = ["ana", "bob", "u1", "u2"]
            .iter()
            .map(|k| partition_of(k, 8))
            .collect();
        assert_eq!(fixed, PINNED);
        let mut counts = [0u32; 8];
        for i in 0..80_000 {
            counts[partition_of(&format!("user-{i}"), 8) as usize] += 1;
        }
        for n in counts {
            assert!((9_700..10_300).contains(&n), "{counts:?}");
        }
    }

    const PINNED: [u32; 4] = [0, 3, 0, 2];
}
