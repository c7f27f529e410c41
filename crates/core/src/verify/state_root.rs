//! Post-state root: a full pre-state with a block's diff applied, hashed as Ethereum's
//! Merkle-Patricia state trie (accounts keyed by keccak(address), one storage trie per account).
//!
//! Only meaningful when the pre-state holds every account of the chain: a `prestateTracer`
//! pre-state holds only what the block touched, and its root is not the chain's.

use crate::{
    error::EngineError,
    result::{AccountDiff, StateDiff},
    state::storage::{AccountState, InMemoryStorage},
};
use alloy_primitives::{keccak256, Address, B256, KECCAK256_EMPTY, U256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};
use rayon::prelude::*;

/// Root of a storage trie from `(slot, value)` pairs; zero values are absent from the trie.
pub fn storage_root<'a>(slots: impl IntoIterator<Item = (&'a U256, &'a U256)>) -> B256 {
    let mut leaves: Vec<(B256, U256)> =
        slots.into_iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (keccak256(B256::from(*k)), *v)).collect();
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    // HashBuilder needs its keys in order.
    leaves.sort_unstable_by_key(|(k, _)| *k);
    let mut hb = HashBuilder::default();
    for (key, value) in &leaves {
        hb.add_leaf(Nibbles::unpack(key), &alloy_rlp::encode_fixed_size(value));
    }
    hb.root()
}

/// Root of the account trie from `(address, account)` pairs.
pub fn accounts_root(accounts: impl IntoIterator<Item = (Address, TrieAccount)>) -> B256 {
    let mut leaves: Vec<(B256, TrieAccount)> = accounts.into_iter().map(|(a, acc)| (keccak256(a), acc)).collect();
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    leaves.sort_unstable_by_key(|(k, _)| *k);
    let mut hb = HashBuilder::default();
    let mut buf = Vec::with_capacity(128);
    for (key, account) in &leaves {
        buf.clear();
        alloy_rlp::Encodable::encode(account, &mut buf);
        hb.add_leaf(Nibbles::unpack(key), &buf);
    }
    hb.root()
}

/// One account after the block: the pre-state account (if any) with its diff (if any) applied.
/// `None` when the account does not exist after the block.
fn account_after(address: &Address, pre: Option<&AccountState>, diff: Option<&AccountDiff>) -> Result<Option<TrieAccount>, EngineError> {
    let Some(d) = diff else {
        let Some(p) = pre else { return Ok(None) };
        return Ok(Some(TrieAccount {
            nonce: p.basic.nonce,
            balance: p.basic.balance,
            storage_root: storage_root(&p.storage),
            code_hash: p.code.as_ref().map(|c| c.hash).unwrap_or(KECCAK256_EMPTY),
        }));
    };
    // The diff's own EIP-161 decision: touched empty accounts come out as deleted.
    if d.deleted {
        return Ok(None);
    }
    if pre.is_none() && !d.created {
        return Err(EngineError::State(format!(
            "the block changed account {address}, which the pre-state lacks: the pre-state is not the full state"
        )));
    }
    let root = match pre {
        Some(p) if !d.storage_cleared => {
            let mut slots = p.storage.clone();
            for (slot, value) in &d.storage {
                slots.insert(U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0));
            }
            storage_root(&slots)
        }
        // A created or self-destructed account's storage is only what the block wrote.
        _ => {
            let slots: Vec<(U256, U256)> = d.storage.iter().map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))).collect();
            storage_root(slots.iter().map(|(k, v)| (k, v)))
        }
    };
    Ok(Some(TrieAccount { nonce: d.nonce, balance: d.balance, storage_root: root, code_hash: d.code_hash }))
}

/// The state root after the block: `pre` must be the full state before it.
pub fn post_state_root(pre: &InMemoryStorage, diff: &StateDiff) -> Result<B256, EngineError> {
    let mut addresses: Vec<&Address> = pre.accounts.keys().collect();
    addresses.extend(diff.keys().filter(|a| !pre.accounts.contains_key(*a)));
    // Storage tries are independent: hash them on all cores (a large contract dominates).
    let accounts = addresses
        .par_iter()
        .map(|a| Ok(account_after(a, pre.accounts.get(*a), diff.get(a))?.map(|acc| (**a, acc))))
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(accounts_root(accounts.into_iter().flatten()))
}

/// The state root of a pre-state on its own (the parent block's state root when it is full).
pub fn pre_state_root(pre: &InMemoryStorage) -> Result<B256, EngineError> {
    post_state_root(pre, &StateDiff::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, Bytes};
    use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};

    fn diff(balance: u64, nonce: u64) -> AccountDiff {
        AccountDiff {
            deleted: false,
            created: false,
            storage_cleared: false,
            balance: U256::from(balance),
            nonce,
            code_hash: KECCAK256_EMPTY,
            code: None,
            storage: Default::default(),
        }
    }

    #[test]
    fn empty_state_is_the_empty_trie_root() {
        // keccak256(rlp("")) = keccak256(0x80).
        let expected = keccak256([0x80u8]);
        assert_eq!(expected, b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"));
        assert_eq!(pre_state_root(&InMemoryStorage::default()).unwrap(), expected);
        assert_eq!(storage_root(std::iter::empty()), expected);
    }

    #[test]
    fn single_account_matches_alloy_helpers() {
        let a = address!("000000000000000000000000000000000000beef");
        let mut pre = InMemoryStorage::default();
        pre.insert_account(a, U256::from(1_000_000_007u64), 3, None);
        let expected = state_root_unhashed([(a, TrieAccount { nonce: 3, balance: U256::from(1_000_000_007u64), ..Default::default() })]);
        assert_eq!(pre_state_root(&pre).unwrap(), expected);
        assert_ne!(expected, EMPTY_ROOT_HASH);
    }

    /// A pre-state with a contract and two accounts; a diff that changes, creates, deletes and
    /// clears; the expected root built from the final state with alloy's own helpers.
    #[test]
    fn diff_applies_like_a_rebuilt_state() {
        let (eoa, contract, gone, fresh) = (
            address!("1000000000000000000000000000000000000001"),
            address!("2000000000000000000000000000000000000002"),
            address!("3000000000000000000000000000000000000003"),
            address!("4000000000000000000000000000000000000004"),
        );
        let code = Bytes::from_static(&[0x60, 0x00, 0x54, 0x00]);
        let code_hash = keccak256(&code);
        let mut pre = InMemoryStorage::default();
        pre.insert_account(eoa, U256::from(100), 1, None);
        pre.insert_account(contract, U256::ZERO, 1, Some(code.clone()));
        pre.insert_storage(contract, U256::from(1), U256::from(11));
        pre.insert_storage(contract, U256::from(2), U256::from(22));
        pre.insert_account(gone, U256::from(5), 0, None);

        let mut d = StateDiff::new();
        d.insert(eoa, diff(90, 2));
        let mut c = diff(0, 1);
        c.code_hash = code_hash;
        c.storage.insert(B256::from(U256::from(1)), B256::ZERO); // cleared slot
        c.storage.insert(B256::from(U256::from(3)), B256::from(U256::from(33))); // new slot
        d.insert(contract, c);
        d.insert(gone, AccountDiff { deleted: true, ..diff(0, 0) });
        d.insert(fresh, AccountDiff { created: true, ..diff(10, 0) });

        let storage = storage_root_unhashed([(B256::from(U256::from(2)), U256::from(22)), (B256::from(U256::from(3)), U256::from(33))]);
        let expected = state_root_unhashed([
            (eoa, TrieAccount { nonce: 2, balance: U256::from(90), ..Default::default() }),
            (contract, TrieAccount { nonce: 1, balance: U256::ZERO, storage_root: storage, code_hash }),
            (fresh, TrieAccount { nonce: 0, balance: U256::from(10), ..Default::default() }),
        ]);
        assert_eq!(post_state_root(&pre, &d).unwrap(), expected);

        // A self-destruct wipes the storage from before the block.
        d.get_mut(&contract).unwrap().storage_cleared = true;
        let only_new = storage_root_unhashed([(B256::from(U256::from(3)), U256::from(33))]);
        let expected = state_root_unhashed([
            (eoa, TrieAccount { nonce: 2, balance: U256::from(90), ..Default::default() }),
            (contract, TrieAccount { nonce: 1, balance: U256::ZERO, storage_root: only_new, code_hash }),
            (fresh, TrieAccount { nonce: 0, balance: U256::from(10), ..Default::default() }),
        ]);
        assert_eq!(post_state_root(&pre, &d).unwrap(), expected);
    }

    #[test]
    fn a_partial_pre_state_is_refused() {
        let mut d = StateDiff::new();
        d.insert(address!("5000000000000000000000000000000000000005"), diff(1, 1));
        let err = post_state_root(&InMemoryStorage::default(), &d).unwrap_err();
        assert!(err.to_string().contains("not the full state"), "{err}");
    }
}
