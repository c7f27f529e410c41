//! The post-state diff: the block's overlay compared with the pre-state.

use crate::{
    error::EngineError,
    overlay::Overlay,
    result::{AccountDiff, StateDiff},
    storage::Storage,
    types::{Loc, Value},
};
use alloy_primitives::{B256, KECCAK256_EMPTY, U256};

pub fn state_diff(base: &dyn Storage, overlay: &Overlay) -> Result<StateDiff, EngineError> {
    let mut diff = StateDiff::new();
    for (address, acc) in &overlay.accounts {
        let Value::Basic(basic_before) = base.read(&Loc::Basic(*address))? else { unreachable!() };
        let Value::Code(code_before) = base.read(&Loc::Code(*address))? else { unreachable!() };
        let basic_after = acc.basic.unwrap_or(basic_before);
        let code_after = acc.code.clone().unwrap_or_else(|| code_before.clone());
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
        let code_changed = code_after.as_ref().map(|c| c.hash) != code_before.as_ref().map(|c| c.hash);
        if basic_after == basic_before && !code_changed && storage.is_empty() && !acc.storage_cleared {
            continue;
        }
        let b = basic_after.unwrap_or_default();
        diff.insert(
            *address,
            AccountDiff {
                deleted: existed && !exists,
                created: !existed && exists,
                storage_cleared: acc.storage_cleared,
                balance: b.balance,
                nonce: b.nonce,
                code_hash: code_after.as_ref().map(|c| c.hash).unwrap_or(KECCAK256_EMPTY),
                code: if code_changed { code_after.map(|c| c.code.original_bytes()) } else { None },
                storage,
            },
        );
    }
    Ok(diff)
}
