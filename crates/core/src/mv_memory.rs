//! Multi-version memory: for every location, the values written by each transaction's latest
//! incarnation, or an ESTIMATE where that incarnation was aborted and will probably write again.
//!
//! Balance deltas (fees to the beneficiary, credits to plain receivers, a transfer's effect on
//! its sender) are kept apart, in each transaction's own slot: they are what nearly every
//! transaction writes to a few hot accounts, and a shared version list per account would make
//! every execution take the same lock. Which transactions may write a delta to an account is
//! known before the block runs (`DeltaSources`), so a reader of such an account sums the slots
//! of exactly those transactions.

use crate::{
    storage::{Storage, StorageError},
    types::{BasicValue, DeltaSum, Loc, ReadValue, TxIdx, Value, WriteValue},
};
use alloy_primitives::{Address, U256};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
enum Entry {
    Estimate,
    Write(WriteValue),
}

/// Versions of one location, sorted by transaction. Most locations see one or two writers,
/// so a vector beats a tree (one allocation, cache-friendly scans).
#[derive(Debug, Default)]
struct Versions(Vec<(TxIdx, Entry)>);

impl Versions {
    fn insert(&mut self, tx: TxIdx, entry: Entry) {
        match self.0.last() {
            Some((last, _)) if *last < tx => self.0.push((tx, entry)),
            None => self.0.push((tx, entry)),
            _ => match self.0.binary_search_by_key(&tx, |(t, _)| *t) {
                Ok(i) => self.0[i].1 = entry,
                Err(i) => self.0.insert(i, (tx, entry)),
            },
        }
    }

    fn remove(&mut self, tx: TxIdx) {
        if let Ok(i) = self.0.binary_search_by_key(&tx, |(t, _)| *t) {
            self.0.remove(i);
        }
    }

    fn get_mut(&mut self, tx: TxIdx) -> Option<&mut Entry> {
        self.0.binary_search_by_key(&tx, |(t, _)| *t).ok().map(|i| &mut self.0[i].1)
    }

    /// Entries of transactions below `tx`, closest first.
    fn below(&self, tx: TxIdx) -> impl Iterator<Item = &(TxIdx, Entry)> {
        let end = self.0.partition_point(|(t, _)| *t < tx);
        self.0[..end].iter().rev()
    }
}

/// Outcome of a read at a position in the block.
#[derive(Debug)]
pub enum MvRead {
    Value(Value),
    /// An ESTIMATE of this transaction lies on the path: the reader depends on it.
    Blocked(TxIdx),
}

/// The transactions that may write a balance delta to each account, known before the block
/// runs: every transaction to the beneficiary (its fee), and per other account the
/// transactions that may credit it as a plain receiver or debit it as a sender that is not
/// read. A delta from anywhere else is an engine bug (`MvMemory::record` refuses it).
#[derive(Debug, Default)]
pub struct DeltaSources {
    pub beneficiary: Address,
    /// Ascending transaction indices per account (the beneficiary excluded).
    pub accounts: FxHashMap<Address, Vec<TxIdx>>,
}

impl DeltaSources {
    /// Sources of `address` in `from..to` (ascending).
    fn range(&self, address: &Address, from: TxIdx, to: TxIdx) -> Sources<'_> {
        if *address == self.beneficiary {
            return Sources::All(from..to);
        }
        match self.accounts.get(address) {
            Some(txs) => {
                let lo = txs.partition_point(|t| *t < from);
                let hi = txs.partition_point(|t| *t < to);
                Sources::Some(txs[lo..hi].iter())
            }
            None => Sources::Some([].iter()),
        }
    }

    fn allows(&self, address: &Address, tx: TxIdx) -> bool {
        *address == self.beneficiary || self.accounts.get(address).is_some_and(|txs| txs.binary_search(&tx).is_ok())
    }
}

enum Sources<'a> {
    All(std::ops::Range<TxIdx>),
    Some(std::slice::Iter<'a, TxIdx>),
}

impl Iterator for Sources<'_> {
    type Item = TxIdx;
    fn next(&mut self) -> Option<TxIdx> {
        match self {
            Sources::All(r) => r.next(),
            Sources::Some(it) => it.next().copied(),
        }
    }
}

/// Bits of the written-location filter (a power of two).
const FILTER_BITS: usize = 1 << 16;

pub struct MvMemory {
    data: DashMap<Loc, Versions, FxBuildHasher>,
    /// One bit per hash bucket, set before a location's first version (or first delta) is
    /// stored. A read whose bit is clear goes straight to the pre-state without taking a
    /// shard lock; a write landing just after such a read is caught by validation like any
    /// concurrent lower write.
    written: Vec<AtomicU64>,
    /// Per transaction, one cache line apart: neighbouring transactions run on different cores.
    sets: Vec<CachePadded<TxSets>>,
    sources: DeltaSources,
}

#[derive(Default)]
struct TxSets {
    /// Locations of the last incarnation's writes, with whether each was a delta.
    last_written: Mutex<Vec<(Loc, bool)>>,
    last_read: Mutex<Vec<(Loc, ReadValue)>>,
    deltas: Mutex<TxDeltas>,
}

/// The balance deltas of a transaction's last incarnation (at most one per account).
#[derive(Default)]
struct TxDeltas {
    /// The incarnation was aborted: its deltas will probably change.
    estimate: bool,
    writes: Vec<(Address, WriteValue)>,
}

/// The account value a read starts from: the closest full write below the reader (or the
/// pre-state), and the index after which deltas count.
struct BasicStart {
    value: Option<BasicValue>,
    deltas_from: TxIdx,
}

impl MvMemory {
    pub fn new(block_size: usize, sources: DeltaSources) -> Self {
        Self {
            // Many shards: workers hit different locks (and lock cache lines) far more often.
            data: DashMap::with_capacity_and_hasher_and_shard_amount(block_size * 2, FxBuildHasher, 64),
            sets: (0..block_size).map(|_| CachePadded::new(TxSets::default())).collect(),
            written: (0..FILTER_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            sources,
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

    /// The value transaction `tx` sees at `loc`: the closest lower write, with balance deltas
    /// of lower transactions folded in, else the pre-state.
    pub fn read(&self, loc: &Loc, tx: TxIdx, base: &dyn Storage) -> Result<MvRead, StorageError> {
        if let Loc::Basic(address) = loc {
            if !self.maybe_written(loc) {
                return Ok(MvRead::Value(base.read(loc)?));
            }
            let start = match self.basic_start(address, tx, base)? {
                Ok(start) => start,
                Err(blocking) => return Ok(MvRead::Blocked(blocking)),
            };
            return Ok(match self.add_deltas(address, start, tx) {
                Ok(value) => MvRead::Value(Value::Basic(value)),
                Err(blocking) => MvRead::Blocked(blocking),
            });
        }
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
            if let Some((idx, entry)) = versions.below(tx).next() {
                if floor.is_some_and(|f| *idx <= f) {
                    return Ok(MvRead::Value(Value::Storage(U256::ZERO)));
                }
                return Ok(match entry {
                    Entry::Estimate => MvRead::Blocked(*idx),
                    Entry::Write(WriteValue::Code(c)) => MvRead::Value(Value::Code(c.as_deref().cloned())),
                    Entry::Write(WriteValue::Storage(s)) => MvRead::Value(Value::Storage(*s)),
                    Entry::Write(WriteValue::Destroyed) => MvRead::Value(Value::Destroyed(true)),
                    Entry::Write(w) => {
                        return Err(StorageError::Other(format!("write {w:?} stored at {loc:?}")));
                    }
                });
            }
        }
        if floor.is_some() {
            return Ok(MvRead::Value(Value::Storage(U256::ZERO)));
        }
        Ok(MvRead::Value(base.read(loc)?))
    }

    /// The closest full write of account `address` below `tx`, or the pre-state;
    /// `Err(blocking)` on an ESTIMATE.
    fn basic_start(&self, address: &Address, tx: TxIdx, base: &dyn Storage) -> Result<Result<BasicStart, TxIdx>, StorageError> {
        let loc = Loc::Basic(*address);
        if let Some(versions) = self.data.get(&loc) {
            if let Some((idx, entry)) = versions.below(tx).next() {
                return match entry {
                    Entry::Estimate => Ok(Err(*idx)),
                    Entry::Write(WriteValue::Basic(b)) => Ok(Ok(BasicStart { value: *b, deltas_from: idx + 1 })),
                    Entry::Write(w) => Err(StorageError::Other(format!("write {w:?} stored at {loc:?}"))),
                };
            }
        }
        let Value::Basic(value) = base.read(&loc)? else { unreachable!("basic location yields a basic value") };
        Ok(Ok(BasicStart { value, deltas_from: 0 }))
    }

    /// `start` with the deltas of transactions from `start.deltas_from` up to `tx` (excluded)
    /// folded in; `Err(blocking)` when one of them is an ESTIMATE.
    fn add_deltas(&self, address: &Address, start: BasicStart, tx: TxIdx) -> Result<Option<BasicValue>, TxIdx> {
        let mut sum = DeltaSum::default();
        for source in self.sources.range(address, start.deltas_from, tx) {
            let deltas = self.sets[source].deltas.lock();
            if deltas.estimate {
                return Err(source);
            }
            if let Some((_, w)) = deltas.writes.iter().find(|(a, _)| a == address) {
                sum.add(w);
            }
        }
        Ok(sum.apply(start.value))
    }

    /// Records an incarnation's writes and reads. Returns whether it wrote a location that its
    /// previous incarnation did not (then higher transactions must be revalidated).
    /// The previous read set is handed back so its allocation can be reused. A delta from a
    /// transaction that `DeltaSources` does not list is refused (an engine bug).
    pub fn record(
        &self,
        tx: TxIdx,
        writes: &[(Loc, WriteValue)],
        reads: Vec<(Loc, ReadValue)>,
    ) -> Result<(bool, Vec<(Loc, ReadValue)>), String> {
        let is_delta = |w: &WriteValue| matches!(w, WriteValue::BalanceDelta(_) | WriteValue::SenderDelta(_));
        for (loc, value) in writes {
            if is_delta(value) && !self.sources.allows(&loc.address(), tx) {
                return Err(format!("transaction {tx} wrote an undeclared balance delta to {}", loc.address()));
            }
        }
        let old_reads = std::mem::replace(&mut *self.sets[tx].last_read.lock(), reads);
        let new_locs: Vec<(Loc, bool)> = writes.iter().map(|(l, w)| (*l, is_delta(w))).collect();
        {
            let mut deltas = self.sets[tx].deltas.lock();
            deltas.estimate = false;
            deltas.writes.clear();
            for (loc, value) in writes.iter().filter(|(_, w)| is_delta(w)) {
                self.mark_written(loc);
                deltas.writes.push((loc.address(), value.clone()));
            }
        }
        for (loc, value) in writes.iter().filter(|(_, w)| !is_delta(w)) {
            crate::chaos::pause();
            self.mark_written(loc);
            self.data
                .entry(*loc)
                .or_insert_with(|| Versions(Vec::with_capacity(1)))
                .insert(tx, Entry::Write(value.clone()));
        }
        crate::chaos::pause();
        let mut new_locs_guard = self.sets[tx].last_written.lock();
        let prev = std::mem::replace(&mut *new_locs_guard, new_locs);
        let new_locs = &*new_locs_guard;
        // Write sets are small: linear scans beat building hash sets.
        let full = |set: &[(Loc, bool)], l: &Loc| set.iter().any(|(x, d)| x == l && !d);
        for (loc, _) in prev.iter().filter(|(l, d)| !d && !full(new_locs, l)) {
            if let Some(mut versions) = self.data.get_mut(loc) {
                versions.remove(tx);
            }
        }
        // A location now written in the other form (delta or full value) counts as new too:
        // readers between the slot update and the version update saw neither.
        let wrote_new = new_locs.iter().any(|w| !prev.contains(w));
        Ok((wrote_new, old_reads))
    }

    /// Marks an aborted incarnation's writes as ESTIMATEs, so readers wait instead of reading
    /// values that are likely to change.
    pub fn convert_writes_to_estimates(&self, tx: TxIdx) {
        self.sets[tx].deltas.lock().estimate = true;
        for (loc, delta) in self.sets[tx].last_written.lock().iter() {
            if *delta {
                continue;
            }
            if let Some(mut versions) = self.data.get_mut(loc) {
                if let Some(entry) = versions.get_mut(tx) {
                    *entry = Entry::Estimate;
                }
            }
        }
    }

    /// Whether every value `tx` read is still what it would read now.
    pub fn validate_read_set(&self, tx: TxIdx, base: &dyn Storage) -> bool {
        let reads = self.sets[tx].last_read.lock();
        reads.iter().all(|(loc, seen)| {
            // No transaction has ever written there: the value read was, and still is, the
            // pre-state's (filter bits are never cleared).
            self.never_written(loc)
                || match self.read(loc, tx, base) {
                    Ok(MvRead::Value(v)) => v.to_read() == *seen,
                    Ok(MvRead::Blocked(_)) | Err(_) => false,
                }
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

    /// The account `address` right before each of `txs` (ascending) in the final versions,
    /// in one walk over its full writes and delta sources (one read per transaction would
    /// fold every delta below it again: quadratic over a long run of transfers from one sender).
    pub fn basic_before(&self, address: Address, txs: &[TxIdx], base: &dyn Storage) -> Result<Vec<Option<BasicValue>>, StorageError> {
        let Value::Basic(mut current) = base.read(&Loc::Basic(address))? else {
            return Err(StorageError::Other(format!("no account value for {address}")));
        };
        let end = self.sets.len();
        let versions = self.data.get(&Loc::Basic(address));
        let mut full = versions.iter().flat_map(|v| v.0.iter()).peekable();
        let mut sources = self.sources.range(&address, 0, end).peekable();
        let mut out = Vec::with_capacity(txs.len());
        for &tx in txs {
            // Every full write and delta below `tx`, in block order.
            loop {
                let next_full = full.peek().map(|(i, _)| *i).filter(|i| *i < tx);
                let next_delta = sources.peek().copied().filter(|i| *i < tx);
                match (next_full, next_delta) {
                    (Some(f), d) if d.is_none_or(|d| f <= d) => {
                        let (idx, entry) = full.next().expect("peeked");
                        current = match entry {
                            Entry::Write(WriteValue::Basic(b)) => *b,
                            other => return Err(StorageError::Other(format!("transaction {idx} left {other:?} at {address}"))),
                        };
                        if next_delta == Some(f) {
                            sources.next();
                        }
                    }
                    (_, Some(_)) => {
                        let source = sources.next().expect("peeked");
                        let deltas = self.sets[source].deltas.lock();
                        if deltas.estimate {
                            return Err(StorageError::Other(format!("estimate of transaction {source} left after the block")));
                        }
                        if let Some((_, w)) = deltas.writes.iter().find(|(a, _)| *a == address) {
                            let mut sum = DeltaSum::default();
                            sum.add(w);
                            current = sum.apply(current);
                        }
                    }
                    _ => break,
                }
            }
            out.push(current);
        }
        Ok(out)
    }

    /// Every written location of the accounts `keep` selects, with its final value (after the
    /// whole block). Workers call it for disjoint sets of accounts at once.
    pub fn final_values(&self, base: &dyn Storage, keep: impl Fn(&Address) -> bool) -> Result<Vec<(Loc, Value)>, StorageError> {
        let end = self.sets.len();
        let leftover = |tx: TxIdx| StorageError::Other(format!("estimate of transaction {tx} left after the block"));
        // Accounts with deltas: their last full write, then the deltas after it, in one pass
        // over the transactions' slots.
        let mut accounts: FxHashMap<Address, (BasicStart, DeltaSum)> = FxHashMap::default();
        for (tx, set) in self.sets.iter().enumerate() {
            let deltas = set.deltas.lock();
            if deltas.estimate {
                return Err(leftover(tx));
            }
            for (address, write) in deltas.writes.iter().filter(|(a, _)| keep(a)) {
                let (start, sum) = match accounts.entry(*address) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let start = self.basic_start(address, end, base)?.map_err(leftover)?;
                        v.insert((start, DeltaSum::default()))
                    }
                };
                if tx >= start.deltas_from {
                    sum.add(write);
                }
            }
        }
        let mut out = Vec::with_capacity(accounts.len() * 2);
        for item in self.data.iter() {
            let loc = *item.key();
            if item.value().0.is_empty() || !keep(&loc.address()) {
                continue;
            }
            drop(item);
            if let Loc::Basic(address) = loc {
                // No delta was written to it (those are all in `accounts`): its last full write.
                if !accounts.contains_key(&address) {
                    let start = self.basic_start(&address, end, base)?.map_err(leftover)?;
                    out.push((loc, Value::Basic(start.value)));
                }
                continue;
            }
            match self.read(&loc, end, base)? {
                MvRead::Value(v) => out.push((loc, v)),
                MvRead::Blocked(tx) => return Err(leftover(tx)),
            }
        }
        out.extend(accounts.into_iter().map(|(a, (start, sum))| (Loc::Basic(a), Value::Basic(sum.apply(start.value)))));
        Ok(out)
    }
}
