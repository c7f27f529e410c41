//! Receipt blooms with the keccak of each log address and topic remembered for the block:
//! event signatures and busy contracts repeat from transaction to transaction, and hashing is
//! nearly all of a bloom's cost (a quarter of execution on log-heavy blocks).

use alloy_primitives::{keccak256, Address, Bloom, BloomInput, Log, B256};
use rustc_hash::FxHashMap;

/// Entries kept per map before it is emptied, so a block of unique topics cannot grow it
/// without bound.
const CAPACITY: usize = 1 << 14;

#[derive(Default)]
pub struct BloomHasher {
    addresses: FxHashMap<Address, B256>,
    topics: FxHashMap<B256, B256>,
}

impl BloomHasher {
    /// The bloom of `logs`, equal to `alloy_primitives::logs_bloom`.
    pub fn logs_bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            bloom.accrue(BloomInput::Hash(remembered(&mut self.addresses, log.address, keccak256)));
            for topic in log.topics() {
                bloom.accrue(BloomInput::Hash(remembered(&mut self.topics, *topic, keccak256)));
            }
        }
        bloom
    }
}

fn remembered<K: std::hash::Hash + Eq + Copy>(map: &mut FxHashMap<K, B256>, key: K, hash: impl Fn(K) -> B256) -> B256 {
    if let Some(h) = map.get(&key) {
        return *h;
    }
    if map.len() >= CAPACITY {
        map.clear();
    }
    let h = hash(key);
    map.insert(key, h);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{logs_bloom, Bytes, LogData};

    #[test]
    fn equals_the_plain_bloom_including_repeats() {
        let log = |a: u8, topics: &[u8]| Log {
            address: Address::repeat_byte(a),
            data: LogData::new_unchecked(topics.iter().map(|t| B256::repeat_byte(*t)).collect(), Bytes::new()),
        };
        let blocks = [vec![log(1, &[7, 8]), log(2, &[7])], vec![log(1, &[9, 8, 7]), log(3, &[])], vec![]];
        let mut hasher = BloomHasher::default();
        for logs in &blocks {
            assert_eq!(hasher.logs_bloom(logs), logs_bloom(logs.iter()));
        }
        assert_ne!(hasher.logs_bloom(&blocks[0]), Bloom::ZERO);
    }
}
