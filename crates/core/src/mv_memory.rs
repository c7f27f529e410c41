//! Multi-version memory: for every location, the values written by each transaction's latest
//! incarnation, or an ESTIMATE where that incarnation was aborted and will probably write again.

use crate::{
    storage::{Storage, StorageError},
    types::{add_balance, Incarnation, Loc, ReadValue, TxIdx, Value, WriteValue},
};
use dashmap::DashMap;
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashSet};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Entry {
    Estimate,
    Write(WriteValue),
}

#[derive(Clone, Debug)]
struct Versioned {
    #[allow(dead_code)] // kept for debugging dumps of the memory
    incarnation: Incarnation,
    entry: Entry,
}

/// Outcome of a read at a position in the block.
#[derive(Debug)]
pub enum MvRead {
    Value(Value),
    /// An ESTIMATE of this transaction lies on the path: the reader depends on it.
    Blocked(TxIdx),
}

pub struct MvMemory {
    data: DashMap<Loc, BTreeMap<TxIdx, Versioned>, FxBuildHasher>,
    last_written: Vec<Mutex<Vec<Loc>>>,
    last_read: Vec<Mutex<Vec<(Loc, ReadValue)>>>,
}

impl MvMemory {
    pub fn new(block_size: usize) -> Self {
        Self {
            data: DashMap::with_capacity_and_hasher(block_size * 8, FxBuildHasher),
            last_written: (0..block_size).map(|_| Mutex::new(Vec::new())).collect(),
            last_read: (0..block_size).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// The value transaction `tx` sees at `loc`: the closest lower write, with balance deltas
    /// of lower transactions folded in, else the pre-state.
    pub fn read(&self, loc: &Loc, tx: TxIdx, base: &dyn Storage) -> Result<MvRead, StorageError> {
        let mut delta = alloy_primitives::U256::ZERO;
        let mut has_delta = false;
        if let Some(versions) = self.data.get(loc) {
            for (idx, v) in versions.range(..tx).rev() {
                match &v.entry {
                    Entry::Estimate => return Ok(MvRead::Blocked(*idx)),
                    Entry::Write(WriteValue::BalanceDelta(d)) => {
                        delta = delta.saturating_add(*d);
                        has_delta = true;
                    }
                    Entry::Write(WriteValue::Basic(b)) => {
                        let b = if has_delta { add_balance(*b, delta) } else { *b };
                        return Ok(MvRead::Value(Value::Basic(b)));
                    }
                    Entry::Write(WriteValue::Code(c)) => return Ok(MvRead::Value(Value::Code(c.clone()))),
                    Entry::Write(WriteValue::Storage(s)) => return Ok(MvRead::Value(Value::Storage(*s))),
                }
            }
        }
        let value = base.read(loc)?;
        Ok(MvRead::Value(match value {
            Value::Basic(b) if has_delta => Value::Basic(add_balance(b, delta)),
            other => other,
        }))
    }

    /// Records an incarnation's writes and reads. Returns whether it wrote a location that its
    /// previous incarnation did not (then higher transactions must be revalidated).
    pub fn record(
        &self,
        tx: TxIdx,
        incarnation: Incarnation,
        writes: &[(Loc, WriteValue)],
        reads: Vec<(Loc, ReadValue)>,
    ) -> bool {
        *self.last_read[tx].lock() = reads;
        let new_locs: Vec<Loc> = writes.iter().map(|(l, _)| *l).collect();
        for (loc, value) in writes {
            self.data
                .entry(*loc)
                .or_default()
                .insert(tx, Versioned { incarnation, entry: Entry::Write(value.clone()) });
        }
        let prev = std::mem::replace(&mut *self.last_written[tx].lock(), new_locs.clone());
        let new_set: FxHashSet<Loc> = new_locs.iter().copied().collect();
        let prev_set: FxHashSet<Loc> = prev.iter().copied().collect();
        for loc in prev.iter().filter(|l| !new_set.contains(l)) {
            if let Some(mut versions) = self.data.get_mut(loc) {
                versions.remove(&tx);
            }
        }
        new_locs.iter().any(|l| !prev_set.contains(l))
    }

    /// Marks an aborted incarnation's writes as ESTIMATEs, so readers wait instead of reading
    /// values that are likely to change.
    pub fn convert_writes_to_estimates(&self, tx: TxIdx) {
        for loc in self.last_written[tx].lock().iter() {
            if let Some(mut versions) = self.data.get_mut(loc) {
                if let Some(v) = versions.get_mut(&tx) {
                    v.entry = Entry::Estimate;
                }
            }
        }
    }

    /// Whether every value `tx` read is still what it would read now.
    pub fn validate_read_set(&self, tx: TxIdx, base: &dyn Storage) -> bool {
        let reads = self.last_read[tx].lock();
        reads.iter().all(|(loc, seen)| match self.read(loc, tx, base) {
            Ok(MvRead::Value(v)) => v.to_read() == *seen,
            Ok(MvRead::Blocked(_)) | Err(_) => false,
        })
    }

    /// Locations read and written by `tx`'s last incarnation.
    pub fn accessed(&self, tx: TxIdx) -> Vec<Loc> {
        let mut locs: Vec<Loc> = self.last_read[tx].lock().iter().map(|(l, _)| *l).collect();
        locs.extend(self.last_written[tx].lock().iter().copied());
        locs
    }

    /// Every written location with its final value (after the whole block).
    pub fn final_values(&self, base: &dyn Storage) -> Result<Vec<(Loc, Value)>, StorageError> {
        let end = self.last_written.len();
        let mut out = Vec::with_capacity(self.data.len());
        for item in self.data.iter() {
            if item.value().is_empty() {
                continue;
            }
            match self.read(item.key(), end, base)? {
                MvRead::Value(v) => out.push((*item.key(), v)),
                MvRead::Blocked(tx) => {
                    return Err(StorageError::Other(format!("estimate of transaction {tx} left after the block")))
                }
            }
        }
        Ok(out)
    }
}
