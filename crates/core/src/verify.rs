//! Checks of a result against the block header: gas used, logs bloom, receipts root.

use crate::{block::BlockInput, chain::ChainSpec, result::{BlockResult, Receipt}};
use alloy_consensus::{proofs::calculate_receipt_root, Eip658Value, ReceiptEnvelope, ReceiptWithBloom};
use alloy_primitives::{Bloom, B256};
use revm::primitives::hardfork::SpecId;
use serde::{Deserialize, Serialize};

/// One boolean per header check; `None` where the check does not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub gas_used: bool,
    /// Byzantium and later (earlier receipts hold intermediate state roots).
    pub receipts_root: Option<bool>,
    pub logs_bloom: bool,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.gas_used && self.logs_bloom && self.receipts_root != Some(false)
    }
}

/// Bloom of a set of receipts.
pub fn block_bloom(receipts: &[Receipt]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for r in receipts {
        bloom.accrue_bloom(&r.logs_bloom);
    }
    bloom
}

/// Receipts root as of Byzantium (EIP-658 status receipts, EIP-2718 typed envelopes).
pub fn receipts_root(receipts: &[Receipt]) -> B256 {
    let envelopes: Vec<ReceiptEnvelope> = receipts
        .iter()
        .map(|r| {
            let inner = ReceiptWithBloom {
                receipt: alloy_consensus::Receipt {
                    status: Eip658Value::Eip658(r.status),
                    cumulative_gas_used: r.cumulative_gas_used,
                    logs: r.logs.clone(),
                },
                logs_bloom: r.logs_bloom,
            };
            match r.tx_type {
                1 => ReceiptEnvelope::Eip2930(inner),
                2 => ReceiptEnvelope::Eip1559(inner),
                3 => ReceiptEnvelope::Eip4844(inner),
                4 => ReceiptEnvelope::Eip7702(inner),
                _ => ReceiptEnvelope::Legacy(inner),
            }
        })
        .collect();
    calculate_receipt_root(&envelopes)
}

/// Compares a result with its block's header.
pub fn verify_header(block: &BlockInput, chain: &ChainSpec, result: &BlockResult) -> Verification {
    check_header(block, chain, result).1
}

/// The receipts root (the result's, or hashed now) and the header checks made with it.
pub fn check_header(block: &BlockInput, chain: &ChainSpec, result: &BlockResult) -> (B256, Verification) {
    let root = result.receipts_root.unwrap_or_else(|| receipts_root(&result.receipts));
    let byzantium = block.spec(chain).is_enabled_in(SpecId::BYZANTIUM);
    let verification = Verification {
        gas_used: result.gas_used == block.gas_used,
        receipts_root: byzantium.then_some(root == block.receipts_root),
        logs_bloom: result.logs_bloom == block.logs_bloom,
    };
    (root, verification)
}
