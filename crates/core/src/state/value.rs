//! Memory locations and values shared by the sequential and parallel engines.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;

/// A 64-bit digest of an address (all 20 bytes folded), for maps where two accounts taken for
/// one only cost time: grouping and scheduling hints. Cheaper to hash than the address itself,
/// and, unlike a prefix, it tells apart addresses that share leading zeros (vanity addresses,
/// generated test accounts).
pub fn address_key(a: &alloy_primitives::Address) -> u64 {
    let word = |r: std::ops::Range<usize>| u64::from_le_bytes(a.0[r].try_into().expect("8 bytes"));
    word(0..8) ^ word(8..16).rotate_left(21) ^ (word(12..20) >> 32).rotate_left(42)
}

/// One unit of state that transactions read and write. Balance/nonce and code are separate
/// locations so that a plain value transfer can check that the receiver has no code without
/// depending on its balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loc {
    Basic(Address),
    Code(Address),
    Storage(Address, U256),
    /// Marks the self-destruct of an account that existed before the transaction: storage
    /// reads of that account by higher transactions ignore every slot version at or below it.
    Destruction(Address),
}

impl Loc {
    pub fn address(&self) -> Address {
        match self {
            Loc::Basic(a) | Loc::Code(a) | Loc::Storage(a, _) | Loc::Destruction(a) => *a,
        }
    }
}

/// Balance and nonce of an existing account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BasicValue {
    pub balance: U256,
    pub nonce: u64,
}

/// Deployed code of an account, analysed once.
#[derive(Clone, Debug)]
pub struct CodeValue {
    pub hash: B256,
    pub code: Bytecode,
}

impl PartialEq for CodeValue {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}

/// What one transaction wrote, as an engine recorded it (deltas included), in the order it
/// wrote: what tracing re-executes the block's later transactions on.
pub type TxWrites = Vec<(Loc, WriteValue)>;

/// A value as written by a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteValue {
    /// `None`: the account does not exist (never created, self-destructed, or cleared as empty).
    Basic(Option<BasicValue>),
    /// Balance increment applied lazily on top of whatever the account holds (fees to the
    /// beneficiary, value to a plain receiver): it does not read the account.
    BalanceDelta(U256),
    /// A plain transfer's effect on its sender: nonce + 1 and balance minus this amount (value
    /// and gas, net of a fee the sender earns as the beneficiary). The sender's nonce and
    /// balance are not read, so a run of transfers from one account does not form a chain;
    /// the parallel engine checks them once the block's final versions are known.
    SenderDelta(U256),
    /// Balance minus this, nonce unchanged: ether paid out of a contract whose balance was
    /// handled lazily (`lazy_balance`).
    BalanceDebit(U256),
    /// Boxed: code writes are rare and would otherwise bloat every version entry.
    Code(Option<Box<CodeValue>>),
    Storage(U256),
    /// Added (wrapping) to whatever the slot holds: what a transaction did to a slot it read
    /// lazily (`lazy_storage`).
    StorageDelta(U256),
    Destroyed,
}

impl WriteValue {
    /// A change to an account's balance or nonce rather than a value (`DeltaSum` adds it).
    pub fn is_delta(&self) -> bool {
        matches!(self, Self::BalanceDelta(_) | Self::SenderDelta(_) | Self::BalanceDebit(_))
    }
}

/// Resolved value of a location (no deltas).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Basic(Option<BasicValue>),
    Code(Option<CodeValue>),
    Storage(U256),
    /// Whether the account's pre-block storage has been wiped.
    Destroyed(bool),
}

/// Balance and nonce deltas summed over several writes (they commute). Credits are added
/// before debits are taken: a speculative sum may see a debit whose credit has not been
/// written yet, and saturates; validation discards what it then read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeltaSum {
    credit: U256,
    debit: U256,
    nonces: u64,
    any: bool,
}

impl DeltaSum {
    /// One write's delta (empty for a write that is not one).
    pub fn of(write: &WriteValue) -> Self {
        let mut sum = Self::default();
        sum.add(write);
        sum
    }

    /// Adds `write` when it is a delta; returns false for any other write.
    pub fn add(&mut self, write: &WriteValue) -> bool {
        match write {
            WriteValue::BalanceDelta(c) => self.credit = self.credit.saturating_add(*c),
            WriteValue::SenderDelta(d) => {
                self.debit = self.debit.saturating_add(*d);
                self.nonces = self.nonces.saturating_add(1);
            }
            WriteValue::BalanceDebit(d) => self.debit = self.debit.saturating_add(*d),
            _ => return false,
        }
        self.any = true;
        true
    }

    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// The account after the deltas (created when absent, like a credit to a new account).
    pub fn apply(&self, basic: Option<BasicValue>) -> Option<BasicValue> {
        if !self.any {
            return basic;
        }
        let mut b = basic.unwrap_or_default();
        b.balance = b.balance.saturating_add(self.credit).saturating_sub(self.debit);
        b.nonce = b.nonce.saturating_add(self.nonces);
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_entries_stay_small() {
        // Multi-version memory holds one per write: keep them a few words wide.
        assert!(std::mem::size_of::<super::WriteValue>() <= 48, "{}", std::mem::size_of::<super::WriteValue>());
    }
}
