//! The post-state root from a witness: a block's state diff applied to the witness's sparse
//! account trie and to the storage tries it touched.

use crate::{
    result::{AccountDiff, StateDiff},
    state::witness::{SparseTrie, WitnessError, WitnessState},
};
use alloy_primitives::{Address, B256, U256};
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH};
use rayon::prelude::*;

/// The account leaf after the block (`None`: the account is gone), its storage trie updated.
fn account_after(state: &WitnessState, address: &Address, hashed: B256, diff: &AccountDiff) -> Result<Option<Vec<u8>>, WitnessError> {
    if diff.deleted {
        return Ok(None);
    }
    let before = state.account_by_hash(address, hashed)?;
    // A self-destructed (or new) account's storage is only what the block wrote.
    let base = match before {
        Some(account) if !diff.storage_cleared => account.storage_root,
        _ => EMPTY_ROOT_HASH,
    };
    let storage_root = if diff.storage.is_empty() {
        base
    } else {
        let trie_error = |source| WitnessError::Trie { what: format!("storage trie of {address}"), source };
        let mut trie = SparseTrie::new(&state.nodes, base);
        // Writes first, then deletions: a deletion then collapses onto what the block left.
        for (slot, value) in diff.storage.iter().filter(|(_, v)| !v.is_zero()) {
            trie.insert(&state.hashed_slot(slot), alloy_rlp::encode(U256::from_be_bytes(value.0))).map_err(trie_error)?;
        }
        for (slot, _) in diff.storage.iter().filter(|(_, v)| v.is_zero()) {
            trie.remove(&state.hashed_slot(slot)).map_err(trie_error)?;
        }
        trie.root()
    };
    let account = TrieAccount { nonce: diff.nonce, balance: diff.balance, storage_root, code_hash: diff.code_hash };
    Ok(Some(alloy_rlp::encode(account)))
}

/// The state root after the block: `diff` (the block's result) applied to the witness's tries.
/// Fails, naming the node, when a path or a sibling a deletion collapses onto is not in the
/// witness.
pub fn post_state_root(state: &WitnessState, diff: &StateDiff) -> Result<B256, WitnessError> {
    let accounts: Vec<(&Address, &AccountDiff)> = diff.iter().collect();
    // Storage tries are independent: hash them on all cores.
    let leaves = accounts
        .par_iter()
        .map(|(address, d)| {
            let hashed = state.hashed_address(address);
            Ok((hashed, account_after(state, address, hashed, d)?))
        })
        .collect::<Result<Vec<_>, WitnessError>>()?;
    let mut trie = SparseTrie::new(&state.nodes, state.state_root);
    trie.apply_parallel(&leaves).map_err(|source| WitnessError::Trie { what: "account trie".into(), source })
}
