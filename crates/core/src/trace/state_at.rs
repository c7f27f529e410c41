//! The state before any transaction of a committed block: the pre-state (with the pre-block
//! system calls' writes) plus the writes of the transactions before it, read without building
//! one state per transaction.

use crate::{
    storage::{Storage, StorageError},
    types::{DeltaSum, Loc, TxIdx, Value, WriteValue},
    vm::ReadError,
};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use revm::{bytecode::Bytecode, state::AccountInfo, DatabaseRef};
use rustc_hash::FxHashMap;

/// What one transaction wrote, as the engine recorded it (deltas included).
pub type TxWrites = Vec<(Loc, WriteValue)>;

/// Every transaction's writes, by location, in block order: an immutable multi-version memory
/// of the committed block.
#[derive(Debug, Default)]
pub struct BlockWrites {
    versions: FxHashMap<Loc, Vec<(u32, WriteValue)>>,
    /// Per account, the transactions that self-destructed it (its earlier storage is gone).
    destructions: FxHashMap<Address, Vec<u32>>,
    txs: usize,
}

impl BlockWrites {
    /// Indexes `writes` (one entry per transaction, in block order).
    pub fn new(writes: Vec<TxWrites>) -> Self {
        let mut versions: FxHashMap<Loc, Vec<(u32, WriteValue)>> = FxHashMap::default();
        versions.reserve(writes.iter().map(Vec::len).sum());
        let mut destructions: FxHashMap<Address, Vec<u32>> = FxHashMap::default();
        let txs = writes.len();
        for (tx, w) in writes.into_iter().enumerate() {
            for (loc, value) in w {
                match (loc, value) {
                    (Loc::Destruction(a), _) => destructions.entry(a).or_default().push(tx as u32),
                    (loc, value) => versions.entry(loc).or_default().push((tx as u32, value)),
                }
            }
        }
        Self {
            versions,
            destructions,
            txs,
        }
    }

    /// Transactions the block holds writes for.
    pub fn len(&self) -> usize {
        self.txs
    }

    pub fn is_empty(&self) -> bool {
        self.txs == 0
    }

    /// Writes to `loc` by transactions below `tx`, after the latest one at or below `after`.
    fn before(&self, loc: &Loc, tx: TxIdx, after: Option<u32>) -> &[(u32, WriteValue)] {
        let Some(v) = self.versions.get(loc) else {
            return &[];
        };
        let end = v.partition_point(|(t, _)| (*t as usize) < tx);
        let start = after.map_or(0, |d| v[..end].partition_point(|(t, _)| *t <= d));
        &v[start..end]
    }

    /// The value of `loc` right before transaction `tx`, over `base` (the block's pre-state).
    pub fn read(&self, base: &dyn Storage, loc: &Loc, tx: TxIdx) -> Result<Value, StorageError> {
        match loc {
            Loc::Basic(_) => {
                let writes = self.before(loc, tx, None);
                // From the last value written, the deltas after it, in order (as `Overlay::apply`).
                let from = writes
                    .iter()
                    .rposition(|(_, w)| matches!(w, WriteValue::Basic(_)));
                let mut basic = match from {
                    Some(i) => match &writes[i].1 {
                        WriteValue::Basic(b) => *b,
                        _ => unreachable!("found a basic value"),
                    },
                    None => base.basic(loc.address())?,
                };
                for (_, delta) in &writes[from.map_or(0, |i| i + 1)..] {
                    basic = DeltaSum::of(delta).apply(basic);
                }
                Ok(Value::Basic(basic))
            }
            Loc::Code(_) => match self.before(loc, tx, None).last() {
                Some((_, WriteValue::Code(c))) => Ok(Value::Code(c.as_deref().cloned())),
                Some((_, w)) => Err(StorageError::Other(format!("code write {w:?} of {loc:?}"))),
                None => base.read(loc),
            },
            Loc::Storage(address, _) => {
                let cleared = self.cleared_before(address, tx);
                let writes = self.before(loc, tx, cleared);
                let from = writes
                    .iter()
                    .rposition(|(_, w)| matches!(w, WriteValue::Storage(_)));
                let mut value = match from {
                    Some(i) => match writes[i].1 {
                        WriteValue::Storage(v) => v,
                        _ => unreachable!("found a storage value"),
                    },
                    None if cleared.is_some() => U256::ZERO,
                    None => match base.read(loc)? {
                        Value::Storage(v) => v,
                        _ => unreachable!("storage location yields a storage value"),
                    },
                };
                for (_, delta) in &writes[from.map_or(0, |i| i + 1)..] {
                    match delta {
                        WriteValue::StorageDelta(k) => value = value.wrapping_add(*k),
                        w => {
                            return Err(StorageError::Other(format!(
                                "storage write {w:?} of {loc:?}"
                            )))
                        }
                    }
                }
                Ok(Value::Storage(value))
            }
            Loc::Destruction(address) => match self.cleared_before(address, tx) {
                Some(_) => Ok(Value::Destroyed(true)),
                None => base.read(loc),
            },
        }
    }

    /// The last transaction below `tx` that self-destructed `address`.
    fn cleared_before(&self, address: &Address, tx: TxIdx) -> Option<u32> {
        let d = self.destructions.get(address)?;
        let end = d.partition_point(|t| (*t as usize) < tx);
        end.checked_sub(1).map(|i| d[i])
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
        let Value::Code(code) = self.read(Loc::Code(address))? else {
            unreachable!("code location yields code")
        };
        let Value::Basic(basic) = self.read(Loc::Basic(address))? else {
            unreachable!("basic location yields a basic value")
        };
        if basic.is_none() && code.is_none() {
            return Ok(None);
        }
        let b = basic.unwrap_or_default();
        Ok(Some(match code {
            Some(c) => AccountInfo::new(b.balance, b.nonce, c.hash, c.code),
            None => AccountInfo::new(b.balance, b.nonce, KECCAK256_EMPTY, Bytecode::default()),
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, ReadError> {
        // `basic_ref` always hands revm the code itself.
        Err(ReadError::Storage(StorageError::Other(format!(
            "code by hash {code_hash} requested"
        ))))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, ReadError> {
        let Value::Storage(v) = self.read(Loc::Storage(address, index))? else {
            unreachable!("storage location yields a storage value")
        };
        Ok(v)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, ReadError> {
        match self.parent {
            Some((n, hash)) if n == number => Ok(hash),
            _ => self
                .base
                .block_hash(number)
                .ok_or(ReadError::MissingBlockHash(number)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{storage::InMemoryStorage, types::BasicValue};

    #[test]
    fn reads_see_only_earlier_transactions_with_deltas_in_order_and_destructions() {
        let a = Address::repeat_byte(1);
        let mut base = InMemoryStorage::default();
        base.insert_account(a, U256::from(100), 0, None);
        base.insert_storage(a, U256::from(1), U256::from(7));
        base.insert_storage(a, U256::from(2), U256::from(9));
        let slot = |s: u64| Loc::Storage(a, U256::from(s));
        let writes = BlockWrites::new(vec![
            vec![
                (Loc::Basic(a), WriteValue::BalanceDelta(U256::from(5))),
                (slot(1), WriteValue::StorageDelta(U256::from(1))),
            ],
            vec![(
                Loc::Basic(a),
                WriteValue::Basic(Some(BasicValue {
                    balance: U256::from(3),
                    nonce: 1,
                })),
            )],
            vec![
                (Loc::Basic(a), WriteValue::SenderDelta(U256::from(1))),
                (Loc::Destruction(a), WriteValue::Destroyed),
            ],
            vec![(slot(2), WriteValue::Storage(U256::from(4)))],
            vec![],
        ]);
        let basic = |tx| writes.read(&base, &Loc::Basic(a), tx).unwrap();
        let storage = |s, tx| writes.read(&base, &slot(s), tx).unwrap();
        assert_eq!(
            basic(0),
            Value::Basic(Some(BasicValue {
                balance: U256::from(100),
                nonce: 0
            }))
        );
        assert_eq!(
            basic(1),
            Value::Basic(Some(BasicValue {
                balance: U256::from(105),
                nonce: 0
            }))
        );
        assert_eq!(
            basic(2),
            Value::Basic(Some(BasicValue {
                balance: U256::from(3),
                nonce: 1
            }))
        );
        assert_eq!(
            basic(3),
            Value::Basic(Some(BasicValue {
                balance: U256::from(2),
                nonce: 2
            }))
        );
        assert_eq!(storage(1, 0), Value::Storage(U256::from(7)));
        assert_eq!(storage(1, 1), Value::Storage(U256::from(8)));
        assert_eq!(
            storage(1, 3),
            Value::Storage(U256::ZERO),
            "destroyed by transaction 2"
        );
        assert_eq!(storage(2, 3), Value::Storage(U256::ZERO));
        assert_eq!(storage(2, 4), Value::Storage(U256::from(4)));
        assert_eq!(
            writes.read(&base, &Loc::Destruction(a), 2).unwrap(),
            Value::Destroyed(false)
        );
        assert_eq!(
            writes.read(&base, &Loc::Destruction(a), 3).unwrap(),
            Value::Destroyed(true)
        );
    }
}
