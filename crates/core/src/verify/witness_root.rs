//! The post-state root from a witness: a block's state diff applied to the witness's sparse
//! account trie and to the storage tries it touched.

use crate::{
    result::{AccountDiff, StateDiff},
    state::witness::{SparseTrie, Update, WitnessError, WitnessState},
    threads::{available_threads, pool},
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
        let updates: Vec<Update> = diff
            .storage
            .iter()
            .map(|(slot, value)| (state.hashed_slot(slot), (!value.is_zero()).then(|| alloy_rlp::encode(U256::from_be_bytes(value.0)))))
            .collect();
        SparseTrie::new(&state.nodes, base)
            .root_after(&updates)
            .map_err(|source| WitnessError::Trie { what: format!("storage trie of {address}"), source })?
    };
    let account = TrieAccount { nonce: diff.nonce, balance: diff.balance, storage_root, code_hash: diff.code_hash };
    Ok(Some(alloy_rlp::encode(account)))
}

/// The state root after the block: `diff` (the block's result) applied to the witness's tries.
/// Fails, naming the node, when a path or a sibling a deletion collapses onto is not in the
/// witness. Runs on the calling rayon pool, or else on the engine's (whose threads a block's
/// execution just used): storage tries on all cores, then the account trie, whose large
/// subtries are updated on all cores too.
pub fn post_state_root(state: &WitnessState, diff: &StateDiff) -> Result<B256, WitnessError> {
    if rayon::current_thread_index().is_some() {
        return root_on_current_pool(state, diff);
    }
    match pool(available_threads()) {
        Ok(pool) => pool.install(|| root_on_current_pool(state, diff)),
        Err(_) => root_on_current_pool(state, diff),
    }
}

fn root_on_current_pool(state: &WitnessState, diff: &StateDiff) -> Result<B256, WitnessError> {
    let accounts: Vec<(&Address, &AccountDiff)> = diff.iter().collect();
    // Storage tries are independent: hash them on all cores.
    let leaves = accounts
        .par_iter()
        .map(|(address, d)| {
            let hashed = state.hashed_address(address);
            Ok((hashed, account_after(state, address, hashed, d)?))
        })
        .collect::<Result<Vec<_>, WitnessError>>()?;
    SparseTrie::new(&state.nodes, state.state_root)
        .root_after(&leaves)
        .map_err(|source| WitnessError::Trie { what: "account trie".into(), source })
}
