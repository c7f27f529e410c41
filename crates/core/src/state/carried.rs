//! State carried from block to block in a range replay: the post-state of block N (its
//! pre-state plus its diff) is the pre-state of block N+1, so only keys never seen before have to
//! be fetched from a node. Reading a key the carried state does not hold records it as missing
//! and answers as if it were empty (as `partial` does): the caller fetches those keys, merges
//! them, and runs the block again (`engine::carried`); a run that missed a key never yields a
//! result.
//!
//! The state is bounded by a byte budget: after each block, when it holds more than the budget,
//! the least recently used slots and accounts leave first (down to three quarters of it, so that
//! eviction runs rarely), and a range of any length runs in flat memory. An evicted key is simply
//! fetched again when a later block reads it.
//!
//! Fetched values for keys the state already carries must equal the carried ones: a difference
//! means the node's chain is not the one replayed (a reorg under the range) or an engine bug, and
//! is reported as a `Mismatch` naming the key, never overwritten.

use crate::{
    error::EngineError,
    result::StateDiff,
    state::{
        partial::{Knowledge, MissingKeys},
        storage::{code_value, InMemoryStorage, Storage, StorageError},
        value::{BasicValue, CodeValue, Loc, Value},
    },
};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Default byte budget of a carried state (256 MiB).
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;
/// Approximate bytes of one account entry beyond its code and slots (key, entry, map overhead).
const ACCOUNT_BYTES: usize = 192;
/// Approximate bytes of one slot entry (key, value, stamp, map overhead).
const SLOT_BYTES: usize = 112;
/// BLOCKHASH reaches 256 blocks back.
const BLOCK_HASHES_KEPT: u64 = 256;

struct Slot {
    value: U256,
    /// The block (clock) that last read or wrote the slot.
    used: AtomicU32,
}

struct Known {
    basic: BasicValue,
    code: Option<CodeValue>,
    storage: FxHashMap<U256, Slot>,
    /// Every slot not in `storage` is zero (empty storage root, a fresh or cleared account).
    storage_complete: bool,
}

impl Known {
    fn bytes(&self) -> usize {
        ACCOUNT_BYTES + self.code.as_ref().map_or(0, |c| c.code.original_bytes().len()) + self.storage.len() * SLOT_BYTES
    }

    fn is_empty(&self) -> bool {
        self.basic == BasicValue::default() && self.code.is_none() && self.storage.values().all(|s| s.value.is_zero())
    }
}

struct Entry {
    /// `None`: the account does not exist (every slot of it is zero).
    known: Option<Known>,
    used: AtomicU32,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.known.as_ref().map_or(ACCOUNT_BYTES, Known::bytes)
    }
}

/// A fetched value that differs from the carried one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub address: Address,
    /// `balance`, `nonce`, `code`, `storage`, `existence` or `blockHash`.
    pub field: &'static str,
    /// The slot, for `storage`; the block number, for `blockHash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub carried: String,
    pub fetched: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.key.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
        write!(f, "{} {}{key}: carried {}, fetched {}", self.address, self.field, self.carried, self.fetched)
    }
}

/// Sizes and counters of a carried state, and what the last applied block used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CarriedStats {
    pub accounts: u64,
    pub slots: u64,
    pub bytes: u64,
    pub budget: u64,
    /// Blocks applied.
    pub blocks: u64,
    /// Keys (accounts and slots) the last block read from the carried state, not fetched for it.
    pub carried_keys: u64,
    /// Keys merged for the last block that the state did not hold.
    pub fetched_keys: u64,
    pub evicted_accounts: u64,
    pub evicted_slots: u64,
}

/// The post-state of the blocks applied so far, known in part (see the module docs).
pub struct CarriedState {
    accounts: FxHashMap<Address, Entry>,
    block_hashes: BTreeMap<u64, B256>,
    budget: usize,
    bytes: usize,
    slots: usize,
    /// Blocks applied; the stamp of keys used by the block being run.
    clock: u32,
    /// The next block's number and parent hash, once a block was applied.
    next: Option<(u64, Option<B256>)>,
    /// Keys the current block read that it had not read or merged before.
    touched: AtomicU64,
    fetched: u64,
    last: (u64, u64),
    evicted_accounts: u64,
    evicted_slots: u64,
}

impl Default for CarriedState {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl CarriedState {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            accounts: FxHashMap::default(),
            block_hashes: BTreeMap::new(),
            budget: budget_bytes,
            bytes: 0,
            slots: 0,
            clock: 0,
            next: None,
            touched: AtomicU64::new(0),
            fetched: 0,
            last: (0, 0),
            evicted_accounts: 0,
            evicted_slots: 0,
        }
    }

    pub fn stats(&self) -> CarriedStats {
        CarriedStats {
            accounts: self.accounts.len() as u64,
            slots: self.slots as u64,
            bytes: self.bytes as u64,
            budget: self.budget as u64,
            blocks: self.clock as u64,
            carried_keys: self.last.0,
            fetched_keys: self.last.1,
            evicted_accounts: self.evicted_accounts,
            evicted_slots: self.evicted_slots,
        }
    }

    /// Whether the account itself (balance, nonce, code) is carried.
    pub fn has_account(&self, address: &Address) -> bool {
        self.accounts.contains_key(address)
    }

    /// The code of a carried account (`None`: not carried, absent, or without code), so that a
    /// fetcher re-reading the account (for a slot it lacks) need not fetch its code again.
    pub fn code(&self, address: &Address) -> Option<alloy_primitives::Bytes> {
        self.accounts.get(address)?.known.as_ref()?.code.as_ref().map(|c| c.code.original_bytes())
    }

    /// Marks a key used by the current block, counting it once.
    fn touch(&self, used: &AtomicU32) {
        // A load first: hot keys are read by every transaction, and a store to a shared line on
        // each read would make the workers contend.
        if used.load(Relaxed) != self.clock && used.swap(self.clock, Relaxed) != self.clock {
            self.touched.fetch_add(1, Relaxed);
        }
    }

    /// Adds fetched values (the pre-state of the next block: `fetched` lists existing accounts
    /// and slots, `knowledge` absent accounts and complete storages). Keys already carried are
    /// compared, not overwritten: the first difference comes back as a `Mismatch`, and then
    /// nothing is merged. Returns how many keys were new.
    pub fn merge(&mut self, fetched: &InMemoryStorage, knowledge: &Knowledge) -> Result<Result<u64, Mismatch>, EngineError> {
        if knowledge.complete {
            return Err(EngineError::InvalidInput("a carried state takes fetched keys, not a complete pre-state".into()));
        }
        if let Err(m) = self.check(fetched, knowledge) {
            return Ok(Err(m));
        }
        let stamp = self.clock;
        let mut new = 0u64;
        for (address, acc) in &fetched.accounts {
            let complete = knowledge.complete_storage.contains(address);
            match self.accounts.get_mut(address) {
                None => {
                    let storage: FxHashMap<U256, Slot> =
                        acc.storage.iter().map(|(k, v)| (*k, Slot { value: *v, used: AtomicU32::new(stamp) })).collect();
                    new += 1 + storage.len() as u64;
                    self.slots += storage.len();
                    let known = Known { basic: acc.basic, code: acc.code.clone(), storage, storage_complete: complete };
                    self.bytes += known.bytes();
                    self.accounts.insert(*address, Entry { known: Some(known), used: AtomicU32::new(stamp) });
                }
                // Carried as absent and fetched as empty (checked): the same account.
                Some(Entry { known: None, .. }) => {}
                Some(Entry { known: Some(k), .. }) => {
                    for (slot, value) in &acc.storage {
                        if !k.storage.contains_key(slot) && !k.storage_complete {
                            k.storage.insert(*slot, Slot { value: *value, used: AtomicU32::new(stamp) });
                            self.slots += 1;
                            self.bytes += SLOT_BYTES;
                            new += 1;
                        }
                    }
                    k.storage_complete |= complete;
                }
            }
        }
        for address in &knowledge.absent {
            if !self.accounts.contains_key(address) {
                self.accounts.insert(*address, Entry { known: None, used: AtomicU32::new(stamp) });
                self.bytes += ACCOUNT_BYTES;
                new += 1;
            }
        }
        for (n, h) in &fetched.block_hashes {
            self.block_hashes.insert(*n, *h);
        }
        self.fetched += new;
        Ok(Ok(new))
    }

    /// The first fetched value that differs from a carried one.
    fn check(&self, fetched: &InMemoryStorage, knowledge: &Knowledge) -> Result<(), Mismatch> {
        let mismatch = |address: Address, field: &'static str, key: Option<String>, carried: String, fetched: String| Mismatch {
            address,
            field,
            key,
            carried,
            fetched,
        };
        let code_hash = |c: &Option<CodeValue>| c.as_ref().map_or(KECCAK256_EMPTY, |c| c.hash);
        // Sorted, so that the mismatch reported is the same on every run.
        let mut addresses: Vec<&Address> = fetched.accounts.keys().collect();
        addresses.sort_unstable();
        for address in addresses {
            let acc = &fetched.accounts[address];
            let Some(entry) = self.accounts.get(address) else {
                continue;
            };
            let Some(k) = &entry.known else {
                let empty = acc.basic == BasicValue::default() && acc.code.is_none() && acc.storage.values().all(|v| v.is_zero());
                if !empty {
                    return Err(mismatch(
                        *address,
                        "existence",
                        None,
                        "absent".into(),
                        format!("balance {} nonce {}", acc.basic.balance, acc.basic.nonce),
                    ));
                }
                continue;
            };
            if k.basic.balance != acc.basic.balance {
                return Err(mismatch(*address, "balance", None, k.basic.balance.to_string(), acc.basic.balance.to_string()));
            }
            if k.basic.nonce != acc.basic.nonce {
                return Err(mismatch(*address, "nonce", None, k.basic.nonce.to_string(), acc.basic.nonce.to_string()));
            }
            if code_hash(&k.code) != code_hash(&acc.code) {
                return Err(mismatch(*address, "code", None, code_hash(&k.code).to_string(), code_hash(&acc.code).to_string()));
            }
            let mut slots: Vec<(&U256, &U256)> = acc.storage.iter().collect();
            slots.sort_unstable();
            for (slot, value) in slots {
                let carried = match k.storage.get(slot) {
                    Some(s) => s.value,
                    None if k.storage_complete => U256::ZERO,
                    None => continue,
                };
                if carried != *value {
                    return Err(mismatch(
                        *address,
                        "storage",
                        Some(B256::from(*slot).to_string()),
                        B256::from(carried).to_string(),
                        B256::from(*value).to_string(),
                    ));
                }
            }
            if knowledge.complete_storage.contains(address) {
                if let Some((slot, s)) = k.storage.iter().find(|(slot, s)| !s.value.is_zero() && !acc.storage.contains_key(slot)) {
                    return Err(mismatch(
                        *address,
                        "storage",
                        Some(B256::from(*slot).to_string()),
                        B256::from(s.value).to_string(),
                        B256::ZERO.to_string(),
                    ));
                }
            }
        }
        for address in &knowledge.absent {
            if let Some(Entry { known: Some(k), .. }) = self.accounts.get(address) {
                if !k.is_empty() {
                    return Err(mismatch(
                        *address,
                        "existence",
                        None,
                        format!("balance {} nonce {}", k.basic.balance, k.basic.nonce),
                        "absent".into(),
                    ));
                }
            }
        }
        for (n, h) in &fetched.block_hashes {
            if let Some(carried) = self.block_hashes.get(n) {
                if carried != h {
                    return Err(mismatch(Address::ZERO, "blockHash", Some(n.to_string()), carried.to_string(), h.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Checks that the block numbered `number`, naming `parent_hash` as its parent, may run on
    /// this state: the one after the last block applied (any block, before the first).
    pub fn check_next(&self, number: u64, parent_hash: B256) -> Result<(), EngineError> {
        let Some((next, parent)) = self.next else { return Ok(()) };
        if number != next {
            return Err(EngineError::InvalidInput(format!(
                "the carried state is after block {}: block {number} cannot run on it",
                next - 1
            )));
        }
        match parent {
            Some(parent) if parent != parent_hash => Err(EngineError::InvalidInput(format!(
                "block {number} names {parent_hash} as its parent, the carried state is after {parent}"
            ))),
            _ => Ok(()),
        }
    }

    /// A reader for one execution: keys the state lacks read as empty and are recorded.
    pub fn view(&self) -> CarriedView<'_> {
        CarriedView { state: self, missing: Mutex::new(MissingKeys::default()) }
    }

    /// Balance and nonce of a carried account (`Some(None)`: carried as not existing).
    pub fn basic(&self, address: &Address) -> Option<Option<BasicValue>> {
        Some(self.accounts.get(address)?.known.as_ref().map(|k| k.basic))
    }

    /// A carried slot's value (zero when the account's whole storage is known and lacks it).
    pub fn slot(&self, address: &Address, slot: U256) -> Option<U256> {
        let Some(k) = &self.accounts.get(address)?.known else { return Some(U256::ZERO) };
        k.storage.get(&slot).map(|s| s.value).or(k.storage_complete.then_some(U256::ZERO))
    }

    /// Advances the state past block `number` (of hash `hash`), whose complete run on this state
    /// gave `diff`; then evicts the least recently used keys when over budget.
    pub fn apply(&mut self, number: u64, hash: Option<B256>, diff: &StateDiff) {
        let stamp = self.clock;
        for (address, d) in diff.iter() {
            let before = self.accounts.get(address).map_or(0, Entry::bytes);
            let slots_before = self.accounts.get(address).and_then(|e| e.known.as_ref()).map_or(0, |k| k.storage.len());
            if d.deleted {
                self.accounts.insert(*address, Entry { known: None, used: AtomicU32::new(stamp) });
            } else {
                let entry = self.accounts.entry(*address).or_insert_with(|| Entry { known: None, used: AtomicU32::new(stamp) });
                // A run reads every account it changes, so the entry was there; one carried as
                // absent now exists with nothing but what the block wrote.
                let k = entry.known.get_or_insert_with(|| Known {
                    basic: BasicValue::default(),
                    code: None,
                    storage: FxHashMap::default(),
                    storage_complete: true,
                });
                k.basic = BasicValue { balance: d.balance, nonce: d.nonce };
                if d.code_hash == KECCAK256_EMPTY {
                    k.code = None;
                } else if let Some(code) = &d.code {
                    k.code = code_value(code.clone());
                }
                if d.storage_cleared {
                    k.storage.clear();
                    k.storage_complete = true;
                }
                for (slot, value) in &d.storage {
                    k.storage
                        .insert(U256::from_be_bytes(slot.0), Slot { value: U256::from_be_bytes(value.0), used: AtomicU32::new(stamp) });
                }
            }
            let entry = &self.accounts[address];
            let slots_after = entry.known.as_ref().map_or(0, |k| k.storage.len());
            self.bytes = self.bytes + entry.bytes() - before;
            self.slots = self.slots + slots_after - slots_before;
        }
        if let Some(hash) = hash {
            self.block_hashes.insert(number, hash);
        }
        let oldest = number.saturating_sub(BLOCK_HASHES_KEPT);
        self.block_hashes = self.block_hashes.split_off(&oldest);
        self.next = Some((number + 1, hash));
        self.last = (self.touched.swap(0, Relaxed), std::mem::take(&mut self.fetched));
        self.clock += 1;
        self.evict();
    }

    /// Over budget: the least recently used slots and accounts leave until at most three quarters
    /// of the budget is used. Recency is counted in blocks: the keys of the oldest blocks leave
    /// first, whole blocks at a time (a histogram of bytes by block rather than a sorted list of
    /// every key, which would itself take memory in proportion to the state). An account leaves
    /// with its slots; an evicted slot makes its account's storage incomplete again.
    fn evict(&mut self) {
        if self.bytes <= self.budget {
            return;
        }
        let target = self.budget / 4 * 3;
        let mut by_block: BTreeMap<u32, usize> = BTreeMap::new();
        for e in self.accounts.values() {
            *by_block.entry(e.used.load(Relaxed)).or_default() += e.bytes();
            if let Some(k) = &e.known {
                // Slots count at their own block, not their account's.
                *by_block.entry(e.used.load(Relaxed)).or_default() -= k.storage.len() * SLOT_BYTES;
                for s in k.storage.values() {
                    *by_block.entry(s.used.load(Relaxed)).or_default() += SLOT_BYTES;
                }
            }
        }
        let mut left = self.bytes;
        let mut keep_from = 0u32;
        for (block, bytes) in by_block {
            if left <= target {
                break;
            }
            left = left.saturating_sub(bytes);
            keep_from = block + 1;
        }
        let (mut accounts, mut slots) = (0u64, 0u64);
        self.accounts.retain(|_, e| {
            if e.used.load(Relaxed) < keep_from {
                accounts += 1;
                slots += e.known.as_ref().map_or(0, |k| k.storage.len() as u64);
                return false;
            }
            if let Some(k) = &mut e.known {
                let before = k.storage.len();
                k.storage.retain(|_, s| s.used.load(Relaxed) >= keep_from);
                if k.storage.len() < before {
                    k.storage_complete = false;
                    slots += (before - k.storage.len()) as u64;
                }
            }
            true
        });
        self.evicted_accounts += accounts;
        self.evicted_slots += slots;
        self.bytes = self.accounts.values().map(Entry::bytes).sum();
        self.slots = self.accounts.values().filter_map(|e| e.known.as_ref()).map(|k| k.storage.len()).sum();
    }
}

/// Reads through a carried state, recording what it lacks. One per execution.
pub struct CarriedView<'a> {
    state: &'a CarriedState,
    missing: Mutex<MissingKeys>,
}

impl CarriedView<'_> {
    /// The keys the execution read and the state lacked.
    pub fn into_missing(self) -> MissingKeys {
        self.missing.into_inner()
    }

    fn miss(&self, loc: &Loc) {
        let mut missing = self.missing.lock();
        match loc {
            Loc::Storage(a, slot) => {
                missing.storage.entry(*a).or_default().insert(B256::from(*slot));
            }
            _ => {
                missing.accounts.insert(loc.address());
            }
        }
    }
}

/// What a key of an account that does not exist (or is not known yet) reads as.
fn empty(loc: &Loc) -> Value {
    match loc {
        Loc::Basic(_) => Value::Basic(None),
        Loc::Code(_) => Value::Code(None),
        Loc::Storage(..) => Value::Storage(U256::ZERO),
        Loc::Destruction(_) => Value::Destroyed(false),
    }
}

impl Storage for CarriedView<'_> {
    fn read(&self, loc: &Loc) -> Result<Value, StorageError> {
        let Some(entry) = self.state.accounts.get(&loc.address()) else {
            self.miss(loc);
            return Ok(empty(loc));
        };
        self.state.touch(&entry.used);
        let Some(k) = &entry.known else {
            return Ok(empty(loc));
        };
        Ok(match loc {
            Loc::Basic(_) => Value::Basic(Some(k.basic)),
            Loc::Code(_) => Value::Code(k.code.clone()),
            Loc::Storage(_, slot) => match k.storage.get(slot) {
                Some(s) => {
                    self.state.touch(&s.used);
                    Value::Storage(s.value)
                }
                None => {
                    if !k.storage_complete {
                        self.miss(loc);
                    }
                    Value::Storage(U256::ZERO)
                }
            },
            Loc::Destruction(_) => Value::Destroyed(false),
        })
    }

    fn block_hash(&self, number: u64) -> Option<B256> {
        let hash = self.state.block_hashes.get(&number).copied();
        if hash.is_none() {
            self.missing.lock().block_hashes.insert(number);
        }
        Some(hash.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::AccountDiff;

    fn account(balance: u64, slots: &[(u64, u64)]) -> InMemoryStorage {
        let mut s = InMemoryStorage::default();
        s.insert_account(Address::ZERO, U256::from(balance), 0, None);
        for (k, v) in slots {
            s.insert_storage(Address::ZERO, U256::from(*k), U256::from(*v));
        }
        s
    }

    fn moved(from: &InMemoryStorage, to: Address) -> InMemoryStorage {
        let mut s = InMemoryStorage::default();
        s.accounts.insert(to, from.accounts[&Address::ZERO].clone());
        s
    }

    #[test]
    fn apply_writes_the_diff_and_eviction_keeps_sizes_exact() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let slots: Vec<(u64, u64)> = (1..=20).map(|i| (i, i * 10)).collect();
        let mut carried = CarriedState::new(0);
        carried.budget = usize::MAX;
        carried.merge(&moved(&account(5, &slots), a), &Knowledge::default()).unwrap().unwrap();
        let diff = StateDiff::from_sorted(vec![(
            a,
            AccountDiff {
                deleted: false,
                created: false,
                storage_cleared: false,
                balance: U256::from(7),
                nonce: 1,
                code_hash: KECCAK256_EMPTY,
                code: None,
                storage: [(B256::from(U256::from(1)), B256::from(U256::from(99)))].into_iter().collect(),
            },
        )]);
        carried.apply(1, Some(B256::repeat_byte(1)), &diff);
        assert_eq!(carried.basic(&a), Some(Some(BasicValue { balance: U256::from(7), nonce: 1 })));
        assert_eq!(carried.slot(&a, U256::from(1)), Some(U256::from(99)));
        assert_eq!(carried.slot(&a, U256::from(2)), Some(U256::from(20)));
        assert_eq!(carried.slot(&a, U256::from(500)), None, "not known: storage incomplete");
        assert!(carried.check_next(3, B256::repeat_byte(1)).is_err());
        assert!(carried.check_next(2, B256::repeat_byte(2)).is_err());
        assert!(carried.check_next(2, B256::repeat_byte(1)).is_ok());

        // The next block brings b; with room for about one account of 20 slots, a leaves.
        let one = carried.bytes;
        carried.budget = one * 3 / 2;
        carried.merge(&moved(&account(1, &slots), b), &Knowledge::default()).unwrap().unwrap();
        carried.apply(2, None, &StateDiff::default());
        let stats = carried.stats();
        assert!(!carried.has_account(&a) && carried.has_account(&b), "{stats:?}");
        assert!(stats.bytes as usize <= one * 3 / 2 / 4 * 3);
        assert_eq!((stats.evicted_accounts, stats.evicted_slots), (1, 20));
        let slots: usize = carried.accounts.values().filter_map(|e| e.known.as_ref()).map(|k| k.storage.len()).sum();
        assert_eq!(slots as u64, stats.slots);
        assert_eq!(carried.accounts.values().map(Entry::bytes).sum::<usize>() as u64, stats.bytes);
    }

    #[test]
    fn absent_accounts_fetched_with_values_and_complete_storage_are_checked() {
        let a = Address::repeat_byte(1);
        let mut carried = CarriedState::default();
        carried.merge(&InMemoryStorage::default(), &Knowledge { absent: vec![a], ..Default::default() }).unwrap().unwrap();
        let mut fetched = InMemoryStorage::default();
        fetched.insert_account(a, U256::from(5), 0, None);
        let m = carried.merge(&fetched, &Knowledge::default()).unwrap().unwrap_err();
        assert_eq!((m.address, m.field), (a, "existence"));
        // Empty is the same as absent.
        let mut empty = InMemoryStorage::default();
        empty.insert_account(a, U256::ZERO, 0, None);
        assert_eq!(carried.merge(&empty, &Knowledge::default()).unwrap(), Ok(0));
        assert!(carried.merge(&empty, &Knowledge { complete: true, ..Default::default() }).is_err());

        let b = Address::repeat_byte(2);
        let mut with_slot = InMemoryStorage::default();
        with_slot.insert_account(b, U256::from(1), 1, None);
        with_slot.insert_storage(b, U256::from(9), U256::from(3));
        assert_eq!(carried.merge(&with_slot, &Knowledge::default()).unwrap(), Ok(2));
        let mut other = with_slot.clone();
        other.insert_storage(b, U256::from(9), U256::from(4));
        let m = carried.merge(&other, &Knowledge::default()).unwrap().unwrap_err();
        assert_eq!((m.field, m.key.as_deref()), ("storage", Some(B256::from(U256::from(9)).to_string().as_str())));
        // A fetched empty storage root contradicts a carried non-zero slot.
        let mut bare = InMemoryStorage::default();
        bare.insert_account(b, U256::from(1), 1, None);
        let m = carried.merge(&bare, &Knowledge { complete_storage: vec![b], ..Default::default() }).unwrap().unwrap_err();
        assert_eq!(m.field, "storage");
    }
}
