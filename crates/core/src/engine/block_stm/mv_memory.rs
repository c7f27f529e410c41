//! Multi-version memory: for every location, the values written by each transaction's latest
//! incarnation, or an ESTIMATE where that incarnation was aborted and will probably write again.

use crate::{
    block::TxIdx,
    engine::fast_paths::lazy_balance::HashCounts,
    state::storage::{Storage, StorageError},
    state::value::BasicValue,
    state::value::DeltaSum,
    state::value::Loc,
    state::value::Value,
    state::value::WriteValue,
};
use alloy_primitives::{Address, B256, U256};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};
use smallvec::SmallVec;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// The value a transaction observed at a location; compared during validation.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadValue {
    Basic(Option<BasicValue>),
    Code(Option<B256>),
    Storage(U256),
    Destroyed(bool),
    /// A slot read lazily: validation replays its checks on the current value.
    LazyStorage(Box<crate::engine::fast_paths::lazy_storage::SlotUse>),
}

impl Value {
    pub fn to_read(&self) -> ReadValue {
        match self {
            Value::Basic(b) => ReadValue::Basic(*b),
            Value::Code(c) => ReadValue::Code(c.as_ref().map(|c| c.hash)),
            Value::Storage(v) => ReadValue::Storage(*v),
            Value::Destroyed(d) => ReadValue::Destroyed(*d),
        }
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Estimate,
    Write(WriteValue),
}

/// Versions of one location, sorted by transaction. Most locations see one or two writers,
/// so a vector beats a tree (cache-friendly scans), and most exactly one: it is kept in the
/// map's own slot, next to the key (no allocation per location, and no second cache line to
/// fetch on each read of it).
#[derive(Debug, Default)]
struct Versions(SmallVec<[(TxIdx, Entry); 1]>, Sums);

/// A slot read lazily (`lazy_storage`) collects a delta from most transactions of the block,
/// and walking them all on every read made reads quadratic. Once a location holds
/// `SUMS_FROM` versions ending in a storage delta, each delta version keeps the deltas summed
/// from the closest lower version that is not one (exclusive), and that version's position
/// plus one (0: none); kept up to date on every change.
#[derive(Debug, Default)]
struct Sums(Vec<(U256, u32)>);

const SUMS_FROM: usize = 16;

fn storage_delta(entry: &Entry) -> Option<U256> {
    match entry {
        Entry::Write(WriteValue::StorageDelta(k)) => Some(*k),
        _ => None,
    }
}

impl Versions {
    fn insert(&mut self, tx: TxIdx, entry: Entry) {
        let at = match self.0.last() {
            Some((last, _)) if *last < tx => {
                self.0.push((tx, entry));
                self.0.len() - 1
            }
            None => {
                self.0.push((tx, entry));
                0
            }
            _ => match self.0.binary_search_by_key(&tx, |(t, _)| *t) {
                Ok(i) => {
                    self.0[i].1 = entry;
                    i
                }
                Err(i) => {
                    self.0.insert(i, (tx, entry));
                    i
                }
            },
        };
        self.refresh(at);
    }

    fn remove(&mut self, tx: TxIdx) {
        if let Ok(i) = self.0.binary_search_by_key(&tx, |(t, _)| *t) {
            self.0.remove(i);
            self.refresh(i);
        }
    }

    fn set(&mut self, tx: TxIdx, entry: Entry) {
        if let Ok(i) = self.0.binary_search_by_key(&tx, |(t, _)| *t) {
            self.0[i].1 = entry;
            self.refresh(i);
        }
    }

    /// Brings the sums up to date after a change at position `from`.
    fn refresh(&mut self, mut from: usize) {
        if self.1 .0.is_empty() {
            if self.0.len() < SUMS_FROM || self.0.last().and_then(|(_, e)| storage_delta(e)).is_none() {
                return;
            }
            from = 0;
        }
        let sums = &mut self.1 .0;
        sums.truncate(from);
        for i in from..self.0.len() {
            let sum = match (storage_delta(&self.0[i].1), i.checked_sub(1)) {
                (None, _) => (U256::ZERO, 0),
                (Some(k), None) => (k, 0),
                (Some(k), Some(p)) if storage_delta(&self.0[p].1).is_some() => (sums[p].0.wrapping_add(k), sums[p].1),
                (Some(k), Some(_)) => (k, i as u32),
            };
            sums.push(sum);
        }
    }

    /// For a read by `tx` with sums kept: the deltas to add, and how many versions remain to
    /// walk (up to and including the closest lower one that is not a delta).
    fn summed_below(&self, tx: TxIdx) -> Option<(U256, usize)> {
        if self.1 .0.is_empty() {
            return None;
        }
        let end = self.0.partition_point(|(t, _)| *t < tx);
        match end.checked_sub(1) {
            Some(last) if storage_delta(&self.0[last].1).is_some() => {
                let (sum, barrier) = self.1 .0[last];
                Some((sum, barrier as usize))
            }
            _ => Some((U256::ZERO, end)),
        }
    }

    /// Versions at `..end`, closest first.
    fn before(&self, end: usize) -> impl Iterator<Item = &(TxIdx, Entry)> {
        self.0[..end].iter().rev()
    }

    /// Entries of transactions below `tx`, closest first.
    fn below(&self, tx: TxIdx) -> impl Iterator<Item = &(TxIdx, Entry)> {
        self.before(self.0.partition_point(|(t, _)| *t < tx))
    }
}

/// Outcome of a read at a position in the block.
#[derive(Debug)]
pub enum MvRead {
    Value(Value),
    /// An ESTIMATE of this transaction lies on the path: the reader depends on it.
    Blocked(TxIdx),
}

/// Bits of the written-location filter (a power of two).
const FILTER_BITS: usize = 1 << 16;

/// Each account's final balance and nonce, and the first transaction an account rejected
/// (`MvMemory::final_accounts`).
pub type FinalAccounts = (Vec<(Address, Option<BasicValue>)>, Option<TxIdx>);

pub struct MvMemory {
    data: DashMap<Loc, Versions, FxBuildHasher>,
    /// The block's beneficiary, whose balance nearly every transaction credits with its fee.
    beneficiary: Address,
    /// Per transaction, its credit to the beneficiary's balance (a fee, or value and fee), kept
    /// here instead of as a version in `data`: every worker inserting into one location's
    /// versions, behind one shard lock, moved that lock and vector between the cores for each
    /// transaction (~0.2 us each on a 2-core VM). One word per transaction: `NO_CREDIT`,
    /// `CREDIT_ESTIMATE` (the incarnation was aborted), or the credit in wei. A credit of
    /// `CREDIT_ESTIMATE` wei or more stays a version in `data`.
    credits: Vec<AtomicU64>,
    /// One bit per hash bucket, set before a location's first version is stored. A read whose
    /// bit is clear goes straight to the pre-state without taking a shard lock; a write landing
    /// just after such a read is caught by validation like any concurrent lower write.
    written: Vec<AtomicU64>,
    /// Per transaction, one cache line apart: neighbouring transactions run on different cores.
    sets: Vec<CachePadded<TxSets>>,
    /// How often an account's balance and nonce made an execution fail validation.
    pub contended: HashCounts,
    /// How often an execution looked at an account's balance while it was handled lazily.
    pub balance_seen: HashCounts,
    /// How often a storage slot made an execution fail validation, and whether any did.
    pub contended_slots: HashCounts,
    pub any_slot_contended: std::sync::atomic::AtomicBool,
    /// How often an execution used a slot's lazy value in a way its checks cannot capture.
    pub slot_seen: HashCounts,
}

const NO_CREDIT: u64 = u64::MAX;
const CREDIT_ESTIMATE: u64 = u64::MAX - 1;

#[derive(Default)]
struct TxSets {
    last_written: Mutex<Vec<Loc>>,
    last_read: Mutex<Vec<(Loc, ReadValue)>>,
}

impl MvMemory {
    pub fn new(block_size: usize, beneficiary: Address) -> Self {
        Self {
            // Many shards: workers hit different locks (and lock cache lines) far more often.
            data: DashMap::with_capacity_and_hasher_and_shard_amount(block_size * 2, FxBuildHasher, 64),
            beneficiary,
            credits: (0..block_size).map(|_| AtomicU64::new(NO_CREDIT)).collect(),
            sets: (0..block_size).map(|_| CachePadded::new(TxSets::default())).collect(),
            written: (0..FILTER_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            contended: HashCounts::new(),
            balance_seen: HashCounts::new(),
            contended_slots: HashCounts::new(),
            any_slot_contended: Default::default(),
            slot_seen: HashCounts::new(),
        }
    }

    fn filter_bit(loc: &Loc) -> (usize, u64) {
        let h = (FxBuildHasher.hash_one(loc) as usize) & (FILTER_BITS - 1);
        (h / 64, 1u64 << (h % 64))
    }

    fn maybe_written(&self, loc: &Loc) -> bool {
        let (word, bit) = Self::filter_bit(loc);
        self.written[word].load(Ordering::Acquire) & bit != 0
    }

    fn mark_written(&self, loc: &Loc) {
        let (word, bit) = Self::filter_bit(loc);
        if self.written[word].load(Ordering::Relaxed) & bit == 0 {
            self.written[word].fetch_or(bit, Ordering::Release);
        }
    }

    /// The value transaction `tx` sees at `loc`: the closest lower write, with balance and
    /// storage deltas of lower transactions folded in, else the pre-state.
    pub fn read(&self, loc: &Loc, tx: TxIdx, base: &dyn Storage) -> Result<MvRead, StorageError> {
        if *loc == Loc::Basic(self.beneficiary) {
            return self.read_credited(loc, tx, base);
        }
        let mut deltas = DeltaSum::default();
        let mut added = U256::ZERO;
        // Storage of an account self-destructed below `tx` restarts from zero there: slot
        // versions at or below the closest destruction (and the pre-state) no longer count.
        let mut floor = None;
        if let Loc::Storage(address, _) = loc {
            let destruction = Loc::Destruction(*address);
            if self.maybe_written(&destruction) {
                if let Some(versions) = self.data.get(&destruction) {
                    match versions.below(tx).next() {
                        Some((idx, Entry::Estimate)) => return Ok(MvRead::Blocked(*idx)),
                        Some((idx, _)) => floor = Some(*idx),
                        None => {}
                    }
                }
            }
        }
        if !self.maybe_written(loc) {
            return Ok(MvRead::Value(if floor.is_some() { Value::Storage(U256::ZERO) } else { base.read(loc)? }));
        }
        if let Some(versions) = self.data.get(loc) {
            // With sums kept (and no destruction below), the deltas are added at once and the
            // walk starts at the closest version that is not one.
            let walk = match (floor, versions.summed_below(tx)) {
                (None, Some((sum, end))) => {
                    added = sum;
                    end
                }
                _ => versions.0.partition_point(|(t, _)| *t < tx),
            };
            for (idx, entry) in versions.before(walk) {
                if floor.is_some_and(|f| *idx <= f) {
                    return Ok(MvRead::Value(Value::Storage(added)));
                }
                match entry {
                    Entry::Estimate => return Ok(MvRead::Blocked(*idx)),
                    Entry::Write(WriteValue::StorageDelta(k)) => {
                        added = added.wrapping_add(*k);
                        continue;
                    }
                    Entry::Write(w @ (WriteValue::BalanceDelta(_) | WriteValue::SenderDelta(_) | WriteValue::BalanceDebit(_))) => {
                        deltas.add(w);
                    }
                    Entry::Write(WriteValue::Basic(b)) => return Ok(MvRead::Value(Value::Basic(deltas.apply(*b)))),
                    Entry::Write(WriteValue::Code(c)) => return Ok(MvRead::Value(Value::Code(c.as_deref().cloned()))),
                    Entry::Write(WriteValue::Storage(s)) => return Ok(MvRead::Value(Value::Storage(s.wrapping_add(added)))),
                    Entry::Write(WriteValue::Destroyed) => return Ok(MvRead::Value(Value::Destroyed(true))),
                }
            }
        }
        if floor.is_some() {
            return Ok(MvRead::Value(Value::Storage(added)));
        }
        let value = base.read(loc)?;
        Ok(match value {
            Value::Basic(b) => MvRead::Value(Value::Basic(deltas.apply(b))),
            Value::Storage(v) => MvRead::Value(Value::Storage(v.wrapping_add(added))),
            other => MvRead::Value(other),
        })
    }

    /// `read` of the beneficiary's balance and nonce: the closest lower version in `data` that
    /// is not a delta (or the pre-state), plus the deltas above it there and the credits of the
    /// transactions above it.
    fn read_credited(&self, loc: &Loc, tx: TxIdx, base: &dyn Storage) -> Result<MvRead, StorageError> {
        if !self.maybe_written(loc) {
            return Ok(MvRead::Value(base.read(loc)?));
        }
        let mut deltas = DeltaSum::default();
        let mut from = 0;
        let mut found = None;
        if let Some(versions) = self.data.get(loc) {
            for (idx, entry) in versions.below(tx) {
                match entry {
                    Entry::Estimate => return Ok(MvRead::Blocked(*idx)),
                    Entry::Write(WriteValue::Basic(b)) => {
                        (found, from) = (Some(*b), idx + 1);
                        break;
                    }
                    Entry::Write(w) => {
                        if !deltas.add(w) {
                            return Err(StorageError::Other(format!("transaction {idx} left {w:?} at {loc:?}")));
                        }
                    }
                }
            }
        }
        for (i, credit) in self.credits[from..tx].iter().enumerate().rev() {
            match credit.load(Ordering::Acquire) {
                NO_CREDIT => {}
                CREDIT_ESTIMATE => return Ok(MvRead::Blocked(from + i)),
                wei => {
                    deltas.add(&WriteValue::BalanceDelta(U256::from(wei)));
                }
            }
        }
        let before = match found {
            Some(b) => b,
            None => match base.read(loc)? {
                Value::Basic(b) => b,
                other => return Err(StorageError::Other(format!("{loc:?} holds {other:?}"))),
            },
        };
        Ok(MvRead::Value(Value::Basic(deltas.apply(before))))
    }

    /// Where in `writes` a credit to the beneficiary goes to `credits` rather than `data`, and
    /// its amount: the one write to the beneficiary's balance, when it is a credit that fits.
    fn credit_in(&self, writes: &[(Loc, WriteValue)]) -> Option<(usize, u64)> {
        let target = Loc::Basic(self.beneficiary);
        let mut at = writes.iter().enumerate().filter(|(_, (loc, _))| *loc == target);
        match (at.next(), at.next()) {
            (Some((i, (_, WriteValue::BalanceDelta(wei)))), None) => {
                u64::try_from(*wei).ok().filter(|w| *w < CREDIT_ESTIMATE).map(|w| (i, w))
            }
            _ => None,
        }
    }

    /// Records an incarnation's writes and reads. Returns whether it wrote a location that its
    /// previous incarnation did not (then higher transactions must be revalidated).
    /// The previous read set is handed back so its allocation can be reused.
    pub fn record(&self, tx: TxIdx, writes: &[(Loc, WriteValue)], reads: Vec<(Loc, ReadValue)>) -> (bool, Vec<(Loc, ReadValue)>) {
        let old_reads = std::mem::replace(&mut *self.sets[tx].last_read.lock(), reads);
        let credit = self.credit_in(writes);
        let in_data = |i: &usize| credit.is_none_or(|(c, _)| c != *i);
        let new_locs: Vec<Loc> = writes.iter().enumerate().filter(|(i, _)| in_data(i)).map(|(_, (l, _))| *l).collect();
        // A first credit is a location written anew: later readers of the beneficiary must
        // be validated again, as for a new version in `data`.
        let credited_anew = match credit {
            Some((_, wei)) => {
                self.mark_written(&Loc::Basic(self.beneficiary));
                self.credits[tx].swap(wei, Ordering::AcqRel) == NO_CREDIT
            }
            None => {
                self.credits[tx].store(NO_CREDIT, Ordering::Release);
                false
            }
        };
        for (_, (loc, value)) in writes.iter().enumerate().filter(|(i, _)| in_data(i)) {
            crate::engine::chaos::pause();
            self.mark_written(loc);
            self.data.entry(*loc).or_default().insert(tx, Entry::Write(value.clone()));
        }
        crate::engine::chaos::pause();
        let mut new_locs_guard = self.sets[tx].last_written.lock();
        let prev = std::mem::replace(&mut *new_locs_guard, new_locs);
        let new_locs = &*new_locs_guard;
        // Write sets are small: linear scans beat building hash sets.
        let contains = |set: &[Loc], l: &Loc| set.iter().any(|x| x == l);
        for loc in prev.iter().filter(|l| !contains(new_locs, l)) {
            if let Some(mut versions) = self.data.get_mut(loc) {
                versions.remove(tx);
            }
        }
        let wrote_new = credited_anew || new_locs.iter().any(|l| !contains(&prev, l));
        (wrote_new, old_reads)
    }

    /// Marks an aborted incarnation's writes as ESTIMATEs, so readers wait instead of reading
    /// values that are likely to change.
    pub fn convert_writes_to_estimates(&self, tx: TxIdx) {
        for loc in self.sets[tx].last_written.lock().iter() {
            if let Some(mut versions) = self.data.get_mut(loc) {
                versions.set(tx, Entry::Estimate);
            }
        }
        // No incarnation of `tx` runs while it is being aborted: nothing else writes its credit.
        if self.credits[tx].load(Ordering::Acquire) != NO_CREDIT {
            self.credits[tx].store(CREDIT_ESTIMATE, Ordering::Release);
        }
    }

    /// The beneficiary's versions in `data` with its credits merged in, in block order.
    fn credited_versions(&self) -> Result<Vec<(TxIdx, Entry)>, StorageError> {
        let mut merged: Vec<(TxIdx, Entry)> = self.data.get(&Loc::Basic(self.beneficiary)).map(|v| v.0.to_vec()).unwrap_or_default();
        let credits = self.credits.iter().enumerate().filter_map(|(tx, c)| match c.load(Ordering::Acquire) {
            NO_CREDIT => None,
            wei => Some((tx, wei)),
        });
        for (tx, wei) in credits {
            if wei == CREDIT_ESTIMATE {
                return Err(StorageError::Other(format!("transaction {tx} left an estimate of its credit to the beneficiary")));
            }
            merged.push((tx, Entry::Write(WriteValue::BalanceDelta(U256::from(wei)))));
        }
        // A transaction has a credit or a version there, never both (`credit_in`).
        merged.sort_by_key(|(tx, _)| *tx);
        Ok(merged)
    }

    /// The first location `tx` read that no longer holds what it saw (`None`: the read set is
    /// valid): its account, and whether that location had conflicted before. A first conflict
    /// marks the location contended, which lets lazy balances and slots absorb the next ones.
    pub fn first_invalid_read(&self, tx: TxIdx, base: &dyn Storage) -> Option<(Address, bool)> {
        let reads = self.sets[tx].last_read.lock();
        reads.iter().find_map(|(loc, seen)| {
            // No transaction has ever written there: the value read was, and still is, the
            // pre-state's (filter bits are never cleared).
            let valid = self.never_written(loc)
                || match (self.read(loc, tx, base), seen) {
                    (Ok(MvRead::Value(Value::Storage(v))), ReadValue::LazyStorage(u)) => u.admits(v),
                    (Ok(MvRead::Value(v)), seen) => v.to_read() == *seen,
                    (Ok(MvRead::Blocked(_)) | Err(_), _) => false,
                };
            if valid {
                return None;
            }
            let before = match loc {
                Loc::Basic(address) => {
                    let before = self.contended.get(address);
                    self.contended.add(address);
                    before
                }
                Loc::Storage(..) => {
                    let before = self.contended_slots.get(loc);
                    self.contended_slots.add(loc);
                    if !self.any_slot_contended.load(Ordering::Relaxed) {
                        self.any_slot_contended.store(true, Ordering::Relaxed);
                    }
                    before
                }
                _ => 1,
            };
            Some((loc.address(), before > 0))
        })
    }

    /// Whether no version can exist that a read of `loc` would consult.
    fn never_written(&self, loc: &Loc) -> bool {
        !self.maybe_written(loc)
            && match loc {
                Loc::Storage(address, _) => !self.maybe_written(&Loc::Destruction(*address)),
                _ => true,
            }
    }

    /// The final balance and nonce of every account written in the block that `keep` selects,
    /// each from one walk over its versions in block order; workers call it for disjoint sets
    /// of accounts. On the way, each `SenderDelta` meets its sender's value right before that
    /// transaction (`admits`), as does each transaction `checks` lists for an account
    /// (ascending; `admits` again, with the account), and the first transaction rejected is
    /// returned.
    pub fn final_accounts(
        &self,
        base: &dyn Storage,
        keep: impl Fn(&Address) -> bool,
        checks: &FxHashMap<Address, Vec<TxIdx>>,
        admits: impl Fn(&Address, TxIdx, Option<BasicValue>) -> bool,
    ) -> Result<FinalAccounts, StorageError> {
        let mut out = Vec::new();
        let mut rejected: Option<TxIdx> = None;
        let mut reject = |tx: TxIdx| {
            if rejected.is_none_or(|r| tx < r) {
                rejected = Some(tx);
            }
        };
        let mut walked = 0;
        let mut walk = |address: Address, versions: &[(TxIdx, Entry)]| -> Result<(), StorageError> {
            let mut value = base.basic(address)?;
            let mut pending = checks.get(&address).map(|c| c.as_slice()).unwrap_or_default().iter().peekable();
            walked += usize::from(checks.contains_key(&address));
            for (tx, entry) in versions {
                while let Some(j) = pending.next_if(|j| **j <= *tx) {
                    if !admits(&address, *j, value) {
                        reject(*j);
                    }
                }
                value = match entry {
                    Entry::Write(WriteValue::Basic(b)) => *b,
                    Entry::Write(w) if w.is_delta() => {
                        if matches!(w, WriteValue::SenderDelta(_)) && !admits(&address, *tx, value) {
                            reject(*tx);
                        }
                        DeltaSum::of(w).apply(value)
                    }
                    other => return Err(StorageError::Other(format!("transaction {tx} left {other:?} at {address}"))),
                };
            }
            for j in pending {
                if !admits(&address, *j, value) {
                    reject(*j);
                }
            }
            out.push((address, value));
            Ok(())
        };
        for item in self.data.iter() {
            let Loc::Basic(address) = *item.key() else { continue };
            if address != self.beneficiary && !item.value().0.is_empty() && keep(&address) {
                walk(address, &item.value().0)?;
            }
        }
        let mut beneficiary_written = false;
        if keep(&self.beneficiary) {
            let versions = self.credited_versions()?;
            beneficiary_written = !versions.is_empty();
            if beneficiary_written {
                walk(self.beneficiary, &versions)?;
            }
        }
        // Checked accounts that no transaction wrote: their pre-block value throughout.
        if walked < checks.len() {
            for (address, txs) in checks {
                let written = match *address == self.beneficiary {
                    true => beneficiary_written,
                    false => self.data.get(&Loc::Basic(*address)).is_some_and(|v| !v.0.is_empty()),
                };
                if written {
                    continue;
                }
                let value = base.basic(*address)?;
                for j in txs {
                    if !admits(address, *j, value) {
                        reject(*j);
                    }
                }
            }
        }
        Ok((out, rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::storage::InMemoryStorage;
    use rand::{Rng, SeedableRng};

    #[derive(Clone, Copy)]
    enum Model {
        Delta(U256),
        Value(U256),
        Estimate,
    }

    /// What a read by `tx` must see: lower versions walked one by one.
    fn expected(model: &std::collections::BTreeMap<TxIdx, Model>, tx: TxIdx, base: U256) -> Result<U256, TxIdx> {
        let mut added = U256::ZERO;
        for (idx, m) in model.range(..tx).rev() {
            match m {
                Model::Delta(k) => added = added.wrapping_add(*k),
                Model::Value(v) => return Ok(v.wrapping_add(added)),
                Model::Estimate => return Err(*idx),
            }
        }
        Ok(base.wrapping_add(added))
    }

    #[derive(Clone, Copy, Debug)]
    enum Credited {
        Delta(U256),
        Value(BasicValue),
        Estimate,
    }

    /// What a read of the beneficiary by `tx` must see, walking lower versions one by one:
    /// `Err` when an estimate lies on the way.
    fn expected_credited(model: &std::collections::BTreeMap<TxIdx, Credited>, tx: TxIdx, base: BasicValue) -> Result<BasicValue, ()> {
        let mut added = U256::ZERO;
        for (_, m) in model.range(..tx).rev() {
            match m {
                Credited::Delta(k) => added += *k,
                Credited::Value(v) => return Ok(BasicValue { balance: v.balance + added, ..*v }),
                Credited::Estimate => return Err(()),
            }
        }
        Ok(BasicValue { balance: base.balance + added, ..base })
    }

    #[test]
    fn credits_to_the_beneficiary_read_like_versions() {
        let beneficiary = Address::repeat_byte(0xbe);
        let other = Address::repeat_byte(0x0e);
        let start = BasicValue { balance: U256::from(1_000u64), nonce: 3 };
        let mut base = InMemoryStorage::default();
        base.insert_account(beneficiary, start.balance, start.nonce, None);
        let loc = Loc::Basic(beneficiary);
        let n = 48;
        let mv = MvMemory::new(n, beneficiary);
        let (new, _) = mv.record(5, &[(loc, WriteValue::BalanceDelta(U256::from(7u64)))], Vec::new());
        assert!(new, "a first credit is a new location for later readers");
        let (new, _) = mv.record(5, &[(loc, WriteValue::BalanceDelta(U256::from(8u64)))], Vec::new());
        assert!(!new);
        mv.record(5, &[], Vec::new());
        let mut model = std::collections::BTreeMap::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for step in 0..4_000 {
            let tx = rng.random_range(0..n);
            // Another account written too, now and then: only the beneficiary's credit moves.
            let mut writes =
                if rng.random_bool(0.3) { vec![(Loc::Basic(other), WriteValue::BalanceDelta(U256::from(1u64)))] } else { vec![] };
            match rng.random_range(0..10) {
                0..=4 => {
                    let k = U256::from(rng.random_range(0..1u64 << 40));
                    writes.push((loc, WriteValue::BalanceDelta(k)));
                    model.insert(tx, Credited::Delta(k));
                }
                5 => {
                    // Too large for a credit word: a version in `data`.
                    let k = (U256::from(1u64) << 70) + U256::from(rng.random_range(0..100u64));
                    writes.push((loc, WriteValue::BalanceDelta(k)));
                    model.insert(tx, Credited::Delta(k));
                }
                6 => {
                    let v = BasicValue { balance: U256::from(rng.random_range(0..1u64 << 50)), nonce: rng.random_range(0..100) };
                    writes.push((loc, WriteValue::Basic(Some(v))));
                    model.insert(tx, Credited::Value(v));
                }
                7 if model.contains_key(&tx) => {
                    mv.convert_writes_to_estimates(tx);
                    model.insert(tx, Credited::Estimate);
                    continue;
                }
                _ => {
                    model.remove(&tx);
                }
            }
            mv.record(tx, &writes, Vec::new());
            for reader in [0, n / 2, n, rng.random_range(0..=n)] {
                let got = match mv.read(&loc, reader, &base).unwrap() {
                    MvRead::Value(Value::Basic(Some(v))) => Ok(v),
                    MvRead::Blocked(j) => {
                        assert!(j < reader && matches!(model.get(&j), Some(Credited::Estimate)), "step {step}: blocked on {j}");
                        Err(())
                    }
                    other => panic!("{other:?}"),
                };
                assert_eq!(got, expected_credited(&model, reader, start), "step {step}, read by {reader}");
            }
        }
        // Every estimate written again, then the final value as the parallel engine takes it.
        let estimates: Vec<TxIdx> = model.iter().filter(|(_, m)| matches!(m, Credited::Estimate)).map(|(t, _)| *t).collect();
        for tx in estimates {
            mv.record(tx, &[(loc, WriteValue::BalanceDelta(U256::from(3u64)))], Vec::new());
            model.insert(tx, Credited::Delta(U256::from(3u64)));
        }
        let (accounts, rejected) = mv.final_accounts(&base, |_| true, &FxHashMap::default(), |_, _, _| true).unwrap();
        assert_eq!(rejected, None);
        let last = accounts.iter().find(|(a, _)| *a == beneficiary).map(|(_, v)| *v);
        assert_eq!(last, Some(expected_credited(&model, n, start).ok()), "final value");
        let (only_other, _) = mv.final_accounts(&base, |a| *a == other, &FxHashMap::default(), |_, _, _| true).unwrap();
        assert!(only_other.iter().all(|(a, _)| *a == other));
    }

    #[test]
    fn summed_storage_deltas_read_like_a_walk() {
        let (address, key, base_value) = (Address::repeat_byte(7), U256::from(3u64), U256::from(1_000u64));
        let mut base = InMemoryStorage::default();
        base.insert_storage(address, key, base_value);
        let loc = Loc::Storage(address, key);
        let n = 64;
        let mv = MvMemory::new(n, Address::repeat_byte(0xbe));
        let mut model = std::collections::BTreeMap::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for step in 0..3_000 {
            let tx = rng.random_range(0..n);
            match rng.random_range(0..10) {
                0..=5 => {
                    let k = if rng.random_bool(0.1) {
                        U256::MAX - U256::from(rng.random_range(0..5u64))
                    } else {
                        U256::from(rng.random_range(1..50u64))
                    };
                    mv.record(tx, &[(loc, WriteValue::StorageDelta(k))], Vec::new());
                    model.insert(tx, Model::Delta(k));
                }
                6 => {
                    let v = U256::from(rng.random_range(0..10_000u64));
                    mv.record(tx, &[(loc, WriteValue::Storage(v))], Vec::new());
                    model.insert(tx, Model::Value(v));
                }
                7 if model.contains_key(&tx) => {
                    mv.convert_writes_to_estimates(tx);
                    model.insert(tx, Model::Estimate);
                }
                _ => {
                    mv.record(tx, &[], Vec::new());
                    model.remove(&tx);
                }
            }
            for reader in [0, n / 2, n, rng.random_range(0..=n)] {
                let got = match mv.read(&loc, reader, &base).unwrap() {
                    MvRead::Value(Value::Storage(v)) => Ok(v),
                    MvRead::Blocked(j) => Err(j),
                    other => panic!("{other:?}"),
                };
                assert_eq!(got, expected(&model, reader, base_value), "step {step}, read by {reader}");
            }
        }
        assert!(!mv.data.get(&loc).unwrap().1 .0.is_empty(), "the sums were in use");
    }
}
