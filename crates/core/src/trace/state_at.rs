//! The state before any transaction of a committed block: the pre-state (with the pre-block
//! system calls' writes) plus the writes of the transactions before it, read without building
//! one state per transaction.

use crate::{
    block::TxIdx,
    engine::vm::ReadError,
    state::{
        storage::{Storage, StorageError},
        value::{DeltaSum, Loc, TxWrites, Value, WriteValue},
    },
};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use revm::{bytecode::Bytecode, state::AccountInfo, DatabaseRef};
use rustc_hash::FxHashMap;

/// Every transaction's writes, by location, in block order, each resolved to the value it left
/// (deltas applied in block order, as `Overlay::apply` does): an immutable multi-version memory
/// of the committed block, read in O(log n). Resolving once matters: the beneficiary, credited
/// by a delta from every transaction of a parallel run, would otherwise cost each read a walk
/// back over all the earlier ones.
#[derive(Debug, Default)]
pub struct BlockWrites {
    versions: FxHashMap<Loc, Vec<(u32, WriteValue)>>,
    /// Per account, the transactions that self-destructed it (its earlier storage is gone).
    destructions: FxHashMap<Address, Vec<u32>>,
    txs: usize,
}

impl BlockWrites {
    /// Indexes `writes` (one entry per transaction, in block order) over `base`, the block's
    /// pre-state after the pre-block system calls.
    pub fn new(writes: Vec<TxWrites>, base: &dyn Storage) -> Result<Self, StorageError> {
        let mut versions: FxHashMap<Loc, Vec<(u32, WriteValue)>> = FxHashMap::default();
        versions.reserve(writes.iter().map(Vec::len).sum());
        let mut destructions: FxHashMap<Address, Vec<u32>> = FxHashMap::default();
        let txs = writes.len();
        for (tx, w) in writes.into_iter().enumerate() {
            for (loc, value) in w {
                match loc {
                    Loc::Destruction(a) => destructions.entry(a).or_default().push(tx as u32),
                    loc => versions.entry(loc).or_default().push((tx as u32, value)),
                }
            }
        }
        let mut this = Self { versions, destructions, txs };
        let mut versions = std::mem::take(&mut this.versions);
        for (loc, entries) in versions.iter_mut() {
            this.resolve(base, loc, entries)?;
        }
        this.versions = versions;
        Ok(this)
    }

    /// Turns `loc`'s deltas into the values they leave, in block order.
    fn resolve(&self, base: &dyn Storage, loc: &Loc, entries: &mut [(u32, WriteValue)]) -> Result<(), StorageError> {
        if !entries.iter().any(|(_, w)| matches!(w, WriteValue::StorageDelta(_)) || w.is_delta()) {
            return Ok(());
        }
        match loc {
            Loc::Basic(address) => {
                let mut current = None;
                for (_, w) in entries.iter_mut() {
                    let now = match &*w {
                        WriteValue::Basic(b) => *b,
                        delta => {
                            let before = match current {
                                Some(b) => b,
                                None => base.basic(*address)?,
                            };
                            DeltaSum::of(delta).apply(before)
                        }
                    };
                    *w = WriteValue::Basic(now);
                    current = Some(now);
                }
            }
            Loc::Storage(address, _) => {
                let mut current: Option<(u32, U256)> = None;
                for (tx, w) in entries.iter_mut() {
                    let now = match &*w {
                        WriteValue::Storage(v) => *v,
                        WriteValue::StorageDelta(k) => {
                            // The value before: the last one written, unless a self-destruct
                            // cleared the account since; the pre-state's otherwise.
                            let cleared = self.cleared_before(address, *tx as TxIdx);
                            let before = match current {
                                Some((t, v)) if cleared.is_none_or(|d| d < t) => v,
                                _ if cleared.is_some() => U256::ZERO,
                                _ => match base.read(loc)? {
                                    Value::Storage(v) => v,
                                    _ => unreachable!("storage location yields a storage value"),
                                },
                            };
                            before.wrapping_add(*k)
                        }
                        other => return Err(StorageError::Other(format!("storage write {other:?} of {loc:?}"))),
                    };
                    *w = WriteValue::Storage(now);
                    current = Some((*tx, now));
                }
            }
            _ => return Err(StorageError::Other(format!("delta written to {loc:?}"))),
        }
        Ok(())
    }

    /// Transactions the block holds writes for.
    pub fn len(&self) -> usize {
        self.txs
    }

    pub fn is_empty(&self) -> bool {
        self.txs == 0
    }

    /// The last write to `loc` by a transaction below `tx`, after the latest one at or below `after`.
    fn last_before(&self, loc: &Loc, tx: TxIdx, after: Option<u32>) -> Option<&WriteValue> {
        let v = self.versions.get(loc)?;
        let end = v.partition_point(|(t, _)| (*t as usize) < tx);
        let (t, w) = v[..end].last()?;
        after.is_none_or(|d| *t > d).then_some(w)
    }

    /// The value of `loc` right before transaction `tx`, over `base` (the block's pre-state).
    pub fn read(&self, base: &dyn Storage, loc: &Loc, tx: TxIdx) -> Result<Value, StorageError> {
        let cleared = match loc {
            Loc::Storage(address, _) => self.cleared_before(address, tx),
            _ => None,
        };
        match (loc, self.last_before(loc, tx, cleared)) {
            (Loc::Basic(_), Some(WriteValue::Basic(b))) => Ok(Value::Basic(*b)),
            (Loc::Code(_), Some(WriteValue::Code(c))) => Ok(Value::Code(c.as_deref().cloned())),
            (Loc::Storage(..), Some(WriteValue::Storage(v))) => Ok(Value::Storage(*v)),
            (Loc::Storage(..), None) if cleared.is_some() => Ok(Value::Storage(U256::ZERO)),
            (Loc::Destruction(address), _) => match self.cleared_before(address, tx) {
                Some(_) => Ok(Value::Destroyed(true)),
                None => base.read(loc),
            },
            (_, None) => base.read(loc),
            (loc, Some(w)) => Err(StorageError::Other(format!("write {w:?} of {loc:?}"))),
        }
    }

    /// The last transaction below `tx` that self-destructed `address`.
    fn cleared_before(&self, address: &Address, tx: TxIdx) -> Option<u32> {
        let d = self.destructions.get(address)?;
        let end = d.partition_point(|t| (*t as usize) < tx);
        end.checked_sub(1).map(|i| d[i])
    }
}

/// One thread's own copies of the code it runs (as the engine's workers keep them, see
/// `vm::worker_copy`): revm clones and drops an account's code several times per load, and
/// with one shared `Arc` per contract (and one process-wide for empty code) the threads'
/// reference counts bounced between cores.
pub struct CodeCopies {
    empty: Bytecode,
    by_hash: std::cell::RefCell<FxHashMap<B256, Bytecode>>,
}

impl Default for CodeCopies {
    fn default() -> Self {
        Self { empty: crate::engine::vm::own_empty_code(), by_hash: Default::default() }
    }
}

impl CodeCopies {
    fn of(&self, code: &crate::state::value::CodeValue) -> Bytecode {
        self.by_hash.borrow_mut().entry(code.hash).or_insert_with(|| crate::engine::vm::worker_copy(&code.code)).clone()
    }
}

/// The state right before transaction `tx`, as revm reads it (`DatabaseRef`).
#[derive(Clone, Copy)]
pub struct StateAt<'a> {
    pub writes: &'a BlockWrites,
    /// The block's pre-state, after the pre-block system calls.
    pub base: &'a dyn Storage,
    pub tx: TxIdx,
    /// The parent block's hash is always known from the header.
    pub parent: Option<(u64, B256)>,
    /// The reading thread's code copies.
    pub codes: &'a CodeCopies,
}

impl StateAt<'_> {
    fn read(&self, loc: Loc) -> Result<Value, ReadError> {
        Ok(self.writes.read(self.base, &loc, self.tx)?)
    }
}

impl DatabaseRef for StateAt<'_> {
    type Error = ReadError;

    /// As the engine's `VmDb::basic`: an account with code but no balance entry exists.
    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, ReadError> {
        let Value::Code(code) = self.read(Loc::Code(address))? else { unreachable!("code location yields code") };
        let Value::Basic(basic) = self.read(Loc::Basic(address))? else { unreachable!("basic location yields a basic value") };
        if basic.is_none() && code.is_none() {
            return Ok(None);
        }
        let b = basic.unwrap_or_default();
        Ok(Some(match code {
            Some(c) => AccountInfo::new(b.balance, b.nonce, c.hash, self.codes.of(&c)),
            None => AccountInfo::new(b.balance, b.nonce, KECCAK256_EMPTY, self.codes.empty.clone()),
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, ReadError> {
        // `basic_ref` always hands revm the code itself.
        Err(ReadError::Storage(StorageError::Other(format!("code by hash {code_hash} requested"))))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, ReadError> {
        let Value::Storage(v) = self.read(Loc::Storage(address, index))? else { unreachable!("storage location yields a storage value") };
        Ok(v)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, ReadError> {
        match self.parent {
            Some((n, hash)) if n == number => Ok(hash),
            _ => self.base.block_hash(number).ok_or(ReadError::MissingBlockHash(number)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{storage::InMemoryStorage, value::BasicValue};

    #[test]
    fn reads_see_only_earlier_transactions_with_deltas_in_order_and_destructions() {
        let a = Address::repeat_byte(1);
        let mut base = InMemoryStorage::default();
        base.insert_account(a, U256::from(100), 0, None);
        base.insert_storage(a, U256::from(1), U256::from(7));
        base.insert_storage(a, U256::from(2), U256::from(9));
        let slot = |s: u64| Loc::Storage(a, U256::from(s));
        let basic_of = |balance: u64, nonce| WriteValue::Basic(Some(BasicValue { balance: U256::from(balance), nonce }));
        let writes = BlockWrites::new(
            vec![
                vec![(Loc::Basic(a), WriteValue::BalanceDelta(U256::from(5))), (slot(1), WriteValue::StorageDelta(U256::from(1)))],
                vec![(Loc::Basic(a), basic_of(3, 1)), (slot(1), WriteValue::StorageDelta(U256::from(2)))],
                vec![(Loc::Basic(a), WriteValue::SenderDelta(U256::from(1))), (Loc::Destruction(a), WriteValue::Destroyed)],
                vec![(slot(2), WriteValue::Storage(U256::from(4))), (slot(1), WriteValue::StorageDelta(U256::from(6)))],
                vec![(Loc::Basic(a), WriteValue::BalanceDelta(U256::from(10)))],
                vec![],
            ],
            &base,
        )
        .unwrap();
        let basic = |tx| writes.read(&base, &Loc::Basic(a), tx).unwrap();
        let storage = |s, tx| writes.read(&base, &slot(s), tx).unwrap();
        let b = |balance: u64, nonce| Value::Basic(Some(BasicValue { balance: U256::from(balance), nonce }));
        assert_eq!([basic(0), basic(1), basic(2), basic(3), basic(5)], [b(100, 0), b(105, 0), b(3, 1), b(2, 2), b(12, 2)]);
        let v = |x: u64| Value::Storage(U256::from(x));
        assert_eq!(
            [storage(1, 0), storage(1, 1), storage(1, 2), storage(1, 3), storage(1, 4)],
            [v(7), v(8), v(10), v(0), v(6)],
            "a delta after the self-destruct adds to zero"
        );
        assert_eq!([storage(2, 3), storage(2, 4)], [v(0), v(4)]);
        assert_eq!(writes.read(&base, &Loc::Destruction(a), 2).unwrap(), Value::Destroyed(false));
        assert_eq!(writes.read(&base, &Loc::Destruction(a), 3).unwrap(), Value::Destroyed(true));
    }
}
