//! Contracts whose callers chain. Today's blocks carry runs of transactions from many senders
//! into one contract (a searcher's bot paying the builder out of its own balance, a pool
//! swapped against directly) that each read and write the contract's own account or storage.
//! Sender hints cannot see that chain, and Block-STM runs each of those transactions early on
//! a stale value, then aborts it: Osaka block 24628608 re-executed 183 times for 146
//! transactions, slower than sequential at 2 threads.
//!
//! Once a validation fails on a location of the very contract the transaction called, that
//! contract is hot for the rest of the block: a later transaction calling it waits until the
//! previous transaction calling it has executed, instead of running on a value about to
//! change (the wait Block-STM's estimates would impose only after an abort). A wrong guess
//! costs a wait, never correctness: validation still decides.

use crate::{block::BlockInput, block::TxIdx, engine::fast_paths::lazy_balance::HashCounts, state::value::address_key};
use alloy_primitives::Address;
use parking_lot::Mutex;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Release};

/// Most contracts marked hot in one block: a handful dominate a contended block, and a short
/// list is cheap to scan before every execution.
const MAX_HOT: usize = 8;

/// Conflicts a contract's callers must have before it is hot: a few aborts are cheaper than
/// chaining every later caller (transfers of a token to one receiver abort two or three times
/// before lazy slots absorb them, up to eight when threads preempt each other).
const HOT_AFTER: u8 = 8;

pub struct HotTargets {
    /// Each transaction's called contract key, and the previous transaction calling it.
    targets: Vec<Option<(u64, Option<TxIdx>)>>,
    keys: [AtomicU64; MAX_HOT],
    len: AtomicUsize,
    adding: Mutex<()>,
    conflicts: HashCounts,
}

impl HotTargets {
    pub fn new(block: &BlockInput) -> Self {
        let mut last: FxHashMap<u64, TxIdx> = FxHashMap::default();
        let targets = block
            .txs
            .iter()
            .enumerate()
            .map(|(j, tx)| match tx.env.kind {
                TxKind::Call(to) => {
                    let key = address_key(&to);
                    Some((key, last.insert(key, j)))
                }
                TxKind::Create => None,
            })
            .collect();
        Self { targets, keys: Default::default(), len: AtomicUsize::new(0), adding: Mutex::new(()), conflicts: HashCounts::new() }
    }

    /// Transaction `tx` failed validation on a location of `address`: when that is the contract
    /// it called, the contract's later callers wait for each other.
    pub fn conflict(&self, block: &BlockInput, tx: TxIdx, address: Address) {
        if block.txs[tx].env.kind != TxKind::Call(address) {
            return;
        }
        let key = address_key(&address);
        if self.is_hot(key) {
            return;
        }
        self.conflicts.add(&key);
        if self.conflicts.get(&key) < HOT_AFTER {
            return;
        }
        let _adding = self.adding.lock();
        let len = self.len.load(Acquire);
        if len < MAX_HOT && !self.is_hot(key) {
            self.keys[len].store(key, Release);
            self.len.store(len + 1, Release);
        }
    }

    fn is_hot(&self, key: u64) -> bool {
        let len = self.len.load(Acquire);
        self.keys[..len].iter().any(|k| k.load(Acquire) == key)
    }

    /// The transaction `tx` should wait for: the previous caller of its contract, once that
    /// contract is hot.
    pub fn wait_for(&self, tx: TxIdx) -> Option<TxIdx> {
        if self.len.load(Acquire) == 0 {
            return None;
        }
        let (key, previous) = self.targets[tx]?;
        previous.filter(|_| self.is_hot(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_of_a_contract_with_repeated_conflicts_wait_for_the_previous_caller() {
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let block = crate::block::test_blocks::calls(&[a, b, a, b, a]);
        let hot = HotTargets::new(&block);
        assert_eq!((0..5).map(|t| hot.wait_for(t)).collect::<Vec<_>>(), vec![None; 5], "nothing is hot at first");
        hot.conflict(&block, 2, b);
        assert_eq!(hot.wait_for(4), None, "a conflict on another contract than the one called marks nothing");
        for _ in 1..HOT_AFTER {
            hot.conflict(&block, 2, a);
        }
        assert_eq!(hot.wait_for(4), None, "a few conflicts are left to lazy handling and aborts");
        hot.conflict(&block, 2, a);
        assert_eq!((0..5).map(|t| hot.wait_for(t)).collect::<Vec<_>>(), vec![None, None, Some(0), None, Some(2)]);
    }
}
