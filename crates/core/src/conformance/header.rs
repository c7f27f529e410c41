//! The header rules a block must meet against its parent before it is executed (post-merge,
//! Cancun): what a client checks on import and the engine cannot, since it executes one block on
//! a given pre-state and never sees the parent's header. Out of scope, as the vectors here do
//! not exercise them beyond these: proof of work and seals (none after the Merge) and the
//! beacon chain's own rules.

use alloy_consensus::{
    constants::EMPTY_OMMER_ROOT_HASH,
    proofs::{calculate_transaction_root, calculate_withdrawals_root},
    Block, Header, Transaction as _, TxEnvelope,
};
use alloy_eips::{eip1559::BaseFeeParams, eip4844::DATA_GAS_PER_BLOB, eip7840::BlobParams};
use alloy_primitives::{B64, U256};

/// A header field that breaks a rule: the field, what the rule wants, what the header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError {
    pub field: &'static str,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}, the header has {}", self.field, self.expected, self.actual)
    }
}

fn rule(ok: bool, field: &'static str, expected: impl FnOnce() -> String, actual: impl ToString) -> Result<(), HeaderError> {
    if ok {
        Ok(())
    } else {
        Err(HeaderError { field, expected: expected(), actual: actual.to_string() })
    }
}

/// Gas limits may move by less than 1/1024 of the parent's per block (EIP-1559 kept the
/// rule) and never below 5,000.
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;
const MIN_GAS_LIMIT: u64 = 5000;
/// Clients cap the gas limit at 2^63 - 1.
const MAX_GAS_LIMIT: u64 = i64::MAX as u64;

/// Checks `block` against its parent's header (Cancun rules).
pub fn check_against_parent(block: &Block<TxEnvelope>, parent: &Header) -> Result<(), HeaderError> {
    let h = &block.header;
    rule(h.number == parent.number + 1, "number", || (parent.number + 1).to_string(), h.number)?;
    rule(h.timestamp > parent.timestamp, "timestamp", || format!("more than the parent's {}", parent.timestamp), h.timestamp)?;
    rule(h.gas_limit <= MAX_GAS_LIMIT, "gasLimit", || format!("at most {MAX_GAS_LIMIT}"), h.gas_limit)?;
    let bound = parent.gas_limit / GAS_LIMIT_BOUND_DIVISOR;
    rule(
        h.gas_limit.abs_diff(parent.gas_limit) < bound && h.gas_limit >= MIN_GAS_LIMIT,
        "gasLimit",
        || format!("within {bound} of the parent's {} and at least {MIN_GAS_LIMIT}", parent.gas_limit),
        h.gas_limit,
    )?;
    rule(h.gas_used <= h.gas_limit, "gasUsed", || format!("at most the gas limit {}", h.gas_limit), h.gas_used)?;
    rule(h.extra_data.len() <= 32, "extraData", || "at most 32 bytes".into(), format!("{} bytes", h.extra_data.len()))?;
    // Proof of stake: no difficulty, no nonce, no uncles.
    rule(h.difficulty == U256::ZERO, "difficulty", || "0".into(), h.difficulty)?;
    rule(h.nonce == B64::ZERO, "nonce", || B64::ZERO.to_string(), h.nonce)?;
    rule(
        h.ommers_hash == EMPTY_OMMER_ROOT_HASH && block.body.ommers.is_empty(),
        "uncleHash",
        || EMPTY_OMMER_ROOT_HASH.to_string(),
        h.ommers_hash,
    )?;
    let base_fee = parent.next_block_base_fee(BaseFeeParams::ethereum());
    rule(
        h.base_fee_per_gas == base_fee && base_fee.is_some(),
        "baseFeePerGas",
        || format!("{base_fee:?}"),
        format!("{:?}", h.base_fee_per_gas),
    )?;
    rule(h.parent_beacon_block_root.is_some(), "parentBeaconBlockRoot", || "present (Cancun)".into(), "none")?;
    let params = BlobParams::cancun();
    let blob_gas: u64 =
        block.body.transactions.iter().map(|tx| tx.blob_versioned_hashes().map_or(0, |h| h.len() as u64) * DATA_GAS_PER_BLOB).sum();
    rule(h.blob_gas_used == Some(blob_gas), "blobGasUsed", || blob_gas.to_string(), format!("{:?}", h.blob_gas_used))?;
    let max_blob_gas = params.max_blob_count * DATA_GAS_PER_BLOB;
    rule(blob_gas <= max_blob_gas, "blobGasUsed", || format!("at most {max_blob_gas}"), blob_gas)?;
    let excess = parent.next_block_excess_blob_gas(params);
    rule(h.excess_blob_gas == excess && excess.is_some(), "excessBlobGas", || format!("{excess:?}"), format!("{:?}", h.excess_blob_gas))?;
    Ok(())
}

/// Checks the header's commitments to the block's body: its transactions and withdrawals
/// roots. Made after execution, as the specification's `state_transition` does (it compares
/// every root once the body ran): a block whose transaction is invalid is refused for that
/// transaction, whatever root its header holds (the vectors' invalid-transaction blocks carry
/// the root of the block without it).
pub fn check_body_roots(block: &Block<TxEnvelope>) -> Result<(), HeaderError> {
    let h = &block.header;
    let tx_root = calculate_transaction_root(&block.body.transactions);
    rule(h.transactions_root == tx_root, "transactionsTrie", || tx_root.to_string(), h.transactions_root)?;
    let withdrawals_root = block.body.withdrawals.as_ref().map(|w| calculate_withdrawals_root(w));
    rule(
        h.withdrawals_root == withdrawals_root && withdrawals_root.is_some(),
        "withdrawalsRoot",
        || format!("{withdrawals_root:?}"),
        format!("{:?}", h.withdrawals_root),
    )?;
    Ok(())
}
