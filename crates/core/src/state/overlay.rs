//! Block-local state written on top of the pre-state: what sequential execution commits into,
//! what parallel execution's final values are gathered into, and what post-block transitions
//! (rewards, withdrawals) apply to before the diff is taken.

use crate::{
    state::storage::{Storage, StorageError},
    state::value::BasicValue,
    state::value::CodeValue,
    state::value::DeltaSum,
    state::value::Loc,
    state::value::Value,
    state::value::WriteValue,
};
use alloy_primitives::{Address, B256, U256};
use rustc_hash::FxHashMap;

/// Writes to one account during the block.
#[derive(Clone, Debug, Default)]
pub struct OverlayAccount {
    /// `Some(v)` once written; `v == None` means the account does not exist now.
    pub basic: Option<Option<BasicValue>>,
    pub code: Option<Option<CodeValue>>,
    pub storage: FxHashMap<U256, U256>,
    /// The account was self-destructed: its pre-block storage is gone.
    pub storage_cleared: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Overlay {
    pub accounts: FxHashMap<Address, OverlayAccount>,
}

impl Overlay {
    /// Reads a location: the block's writes first, then the pre-state.
    pub fn read(&self, base: &dyn Storage, loc: &Loc) -> Result<Value, StorageError> {
        if let Some(acc) = self.accounts.get(&loc.address()) {
            match loc {
                Loc::Basic(_) => {
                    if let Some(b) = acc.basic {
                        return Ok(Value::Basic(b));
                    }
                }
                Loc::Code(_) => {
                    if let Some(c) = &acc.code {
                        return Ok(Value::Code(c.clone()));
                    }
                }
                Loc::Storage(_, slot) => {
                    if let Some(v) = acc.storage.get(slot) {
                        return Ok(Value::Storage(*v));
                    }
                    if acc.storage_cleared {
                        return Ok(Value::Storage(U256::ZERO));
                    }
                }
                Loc::Destruction(_) => return Ok(Value::Destroyed(acc.storage_cleared)),
            }
        }
        base.read(loc)
    }

    /// An account's code and its balance and nonce (as two `read`s), with one lookup of the
    /// account here and at most one in the pre-state.
    pub fn account(&self, base: &dyn Storage, address: Address) -> Result<(Option<CodeValue>, Option<BasicValue>), StorageError> {
        match self.accounts.get(&address) {
            Some(OverlayAccount { basic: Some(basic), code: Some(code), .. }) => Ok((code.clone(), *basic)),
            Some(OverlayAccount { basic: Some(basic), code: None, .. }) => {
                let Value::Code(code) = base.read(&Loc::Code(address))? else { unreachable!("code location yields a code value") };
                Ok((code, *basic))
            }
            Some(OverlayAccount { basic: None, code: Some(code), .. }) => Ok((code.clone(), base.basic(address)?)),
            _ => base.account(address),
        }
    }

    pub fn basic(&self, base: &dyn Storage, address: Address) -> Result<Option<BasicValue>, StorageError> {
        match self.read(base, &Loc::Basic(address))? {
            Value::Basic(b) => Ok(b),
            _ => unreachable!("basic location yields a basic value"),
        }
    }

    /// Applies one write (deltas resolve against the current value).
    pub fn apply(&mut self, base: &dyn Storage, loc: Loc, value: WriteValue) -> Result<(), StorageError> {
        if let WriteValue::Destroyed = value {
            self.clear_storage(loc.address());
            return Ok(());
        }
        if let (Loc::Storage(_, slot), WriteValue::StorageDelta(k)) = (loc, &value) {
            let Value::Storage(current) = self.read(base, &loc)? else { unreachable!("storage location yields a storage value") };
            self.accounts.entry(loc.address()).or_default().storage.insert(slot, current.wrapping_add(*k));
            return Ok(());
        }
        // One lookup of the account, whatever the write.
        let acc = self.accounts.entry(loc.address()).or_default();
        match (loc, value) {
            (Loc::Basic(address), delta) if delta.is_delta() => {
                let current = match acc.basic {
                    Some(b) => b,
                    None => base.basic(address)?,
                };
                acc.basic = Some(DeltaSum::of(&delta).apply(current));
            }
            (Loc::Basic(_), WriteValue::Basic(b)) => acc.basic = Some(b),
            (Loc::Code(_), WriteValue::Code(c)) => acc.code = Some(c.map(|c| *c)),
            (Loc::Storage(_, slot), WriteValue::Storage(v)) => {
                acc.storage.insert(slot, v);
            }
            (loc, v) => unreachable!("write {v:?} does not fit location {loc:?}"),
        }
        Ok(())
    }

    /// Self-destruct: drops the account's storage, pre-block and written alike.
    pub fn clear_storage(&mut self, address: Address) {
        let acc = self.accounts.entry(address).or_default();
        acc.storage.clear();
        acc.storage_cleared = true;
    }

    /// Takes over `other`'s writes, which come after this overlay's.
    pub fn merge(&mut self, other: Overlay) {
        if self.accounts.is_empty() {
            self.accounts = other.accounts;
            return;
        }
        self.accounts.reserve(other.accounts.len());
        for (address, later) in other.accounts {
            match self.accounts.entry(address) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(later);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let acc = o.get_mut();
                    if later.storage_cleared {
                        acc.storage.clear();
                        acc.storage_cleared = true;
                    }
                    if later.basic.is_some() {
                        acc.basic = later.basic;
                    }
                    if later.code.is_some() {
                        acc.code = later.code;
                    }
                    acc.storage.extend(later.storage);
                }
            }
        }
    }

    pub fn add_balance(&mut self, base: &dyn Storage, address: Address, amount: U256) -> Result<(), StorageError> {
        self.apply(base, Loc::Basic(address), WriteValue::BalanceDelta(amount))
    }
}

/// The pre-state seen through a fixed overlay (used after pre-block system calls).
pub struct Layered<'a> {
    pub base: &'a dyn Storage,
    pub overlay: &'a Overlay,
}

impl Storage for Layered<'_> {
    fn read(&self, loc: &Loc) -> Result<Value, StorageError> {
        self.overlay.read(self.base, loc)
    }
    fn block_hash(&self, number: u64) -> Option<B256> {
        self.base.block_hash(number)
    }
    fn code_hash(&self, address: Address) -> Result<Option<B256>, StorageError> {
        match self.overlay.accounts.get(&address).and_then(|a| a.code.as_ref()) {
            Some(code) => Ok(code.as_ref().map(|c| c.hash)),
            None => self.base.code_hash(address),
        }
    }
}
