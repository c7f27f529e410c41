//! The post-state diff: the block's overlay compared with the pre-state.

use crate::{
    error::EngineError,
    result::{AccountDiff, StateDiff},
    state::overlay::{Overlay, OverlayAccount},
    state::storage::Storage,
    state::value::BasicValue,
    state::value::Loc,
    state::value::Value,
};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};

pub fn state_diff(base: &dyn Storage, overlay: Overlay) -> Result<StateDiff, EngineError> {
    let (_, diff) = sorted_diff(base, overlay, |_| false)?;
    Ok(StateDiff::from_sorted(diff))
}

/// The diff of `overlay`'s accounts sorted by address, except those `keep_open` selects,
/// which come back as an overlay. Sorts the addresses with their place in a list of the
/// accounts, not the accounts or the diffs (which are large), and hashes no address again.
pub fn sorted_diff(
    base: &dyn Storage,
    overlay: Overlay,
    keep_open: impl Fn(&Address) -> bool,
) -> Result<(Overlay, Vec<(Address, AccountDiff)>), EngineError> {
    let mut accounts: Vec<(Address, OverlayAccount)> = overlay.accounts.into_iter().collect();
    let mut order: Vec<(Address, u32)> = accounts.iter().enumerate().map(|(i, (a, _))| (*a, i as u32)).collect();
    order.sort_unstable_by_key(|(a, _)| *a);
    let mut open = Overlay::default();
    let mut diff = Vec::with_capacity(order.len());
    for (address, i) in order {
        let acc = &mut accounts[i as usize].1;
        if keep_open(&address) {
            open.accounts.insert(address, std::mem::take(acc));
        } else if let Some(d) = account_diff(base, &address, acc)? {
            diff.push((address, d));
        }
    }
    Ok((open, diff))
}

/// The diffs, sorted by address, of accounts whose balance and nonce alone the block changed
/// (to `basic`; `None`: the account does not exist now).
pub fn basic_diffs(
    base: &dyn Storage,
    mut accounts: Vec<(Address, Option<BasicValue>)>,
) -> Result<Vec<(Address, AccountDiff)>, EngineError> {
    accounts.sort_unstable_by_key(|(a, _)| *a);
    let mut diff = Vec::with_capacity(accounts.len());
    for (address, basic) in accounts {
        let acc = OverlayAccount { basic: Some(basic), ..Default::default() };
        if let Some(d) = account_diff(base, &address, &acc)? {
            diff.push((address, d));
        }
    }
    Ok(diff)
}

/// One account's change, or `None` when the block left it as it was.
pub fn account_diff(base: &dyn Storage, address: &Address, acc: &OverlayAccount) -> Result<Option<AccountDiff>, EngineError> {
    let basic_before = base.basic(*address)?;
    // By hash: a witness knows the code hash of accounts whose code it does not carry.
    let code_before = base.code_hash(*address)?;
    let basic_after = acc.basic.unwrap_or(basic_before);
    let code_after = acc.code.as_ref().map_or(code_before, |c| c.as_ref().map(|c| c.hash));
    let mut storage = std::collections::BTreeMap::new();
    for (slot, value) in &acc.storage {
        let before = if acc.storage_cleared {
            U256::ZERO
        } else {
            let Value::Storage(v) = base.read(&Loc::Storage(*address, *slot))? else { unreachable!() };
            v
        };
        if *value != before {
            storage.insert(B256::from(*slot), B256::from(*value));
        }
    }
    let existed = basic_before.is_some() || code_before.is_some();
    let exists = basic_after.is_some() || code_after.is_some();
    let code_changed = code_after != code_before;
    if basic_after == basic_before && !code_changed && storage.is_empty() && !acc.storage_cleared {
        return Ok(None);
    }
    let b = basic_after.unwrap_or_default();
    Ok(Some(AccountDiff {
        deleted: existed && !exists,
        created: !existed && exists,
        storage_cleared: acc.storage_cleared,
        balance: b.balance,
        nonce: b.nonce,
        code_hash: code_after.unwrap_or(KECCAK256_EMPTY),
        code: if code_changed { acc.code.as_ref().and_then(|c| c.as_ref()).map(|c| c.code.original_bytes()) } else { None },
        storage,
    }))
}
