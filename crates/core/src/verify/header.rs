//! Checks of a result against the block header: gas used, logs bloom, receipts root, and the
//! post-state root when the full pre-state is known.

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    error::EngineError,
    result::{BlockResult, Receipt},
    state::storage::InMemoryStorage,
    verify::state_root::post_state_root,
};
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
    /// Prague and later, when the requests are known (`BlockResult::requests_hash`).
    pub requests_hash: Option<bool>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.gas_used && self.logs_bloom && self.receipts_root != Some(false) && self.requests_hash != Some(false)
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
        requests_hash: block.requests_hash.zip(result.requests_hash).map(|(header, ours)| header == ours),
    };
    (root, verification)
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Passed,
    Failed,
    NotApplicable,
}

/// One named check with the header's value and the computed one (absent when not applicable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Why a check does not apply, or what may explain a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Check {
    fn compare(name: &str, expected: impl ToString, actual: impl ToString) -> Self {
        let (expected, actual) = (expected.to_string(), actual.to_string());
        let status = if expected == actual { CheckStatus::Passed } else { CheckStatus::Failed };
        Self { name: name.into(), status, expected: Some(expected), actual: Some(actual), note: None }
    }

    fn not_applicable(name: &str, why: impl Into<String>) -> Self {
        Self { name: name.into(), status: CheckStatus::NotApplicable, expected: None, actual: None, note: Some(why.into()) }
    }
}

/// Every header check with expected and actual values. `full_state`, when given, must be the
/// whole state before the block (not a `prestateTracer` subset): the post-state root is then
/// computed from it and the result's diff and compared with the header's `stateRoot`.
pub fn check_report(
    block: &BlockInput,
    chain: &ChainSpec,
    result: &BlockResult,
    full_state: Option<&InMemoryStorage>,
) -> Result<Vec<Check>, EngineError> {
    let byzantium = block.spec(chain).is_enabled_in(SpecId::BYZANTIUM);
    let mut checks = vec![Check::compare("gasUsed", block.gas_used, result.gas_used)];
    checks.push(if byzantium {
        let root = result.receipts_root.unwrap_or_else(|| receipts_root(&result.receipts));
        Check::compare("receiptsRoot", block.receipts_root, root)
    } else {
        Check::not_applicable("receiptsRoot", "before Byzantium, receipts hold intermediate state roots")
    });
    checks.push(Check::compare("logsBloom", block.logs_bloom, result.logs_bloom));
    checks.push(match (block.requests_hash, result.requests_hash) {
        (Some(header), Some(ours)) => Check::compare("requestsHash", header, ours),
        (None, _) => Check::not_applicable("requestsHash", "the header has no requestsHash (before Prague)"),
        (Some(_), None) => Check::not_applicable(
            "requestsHash",
            "the requests are not known: the request contracts (EIP-7002, EIP-7251) are not in the pre-state, or the chain's deposit contract is not known",
        ),
    });
    checks.push(match full_state {
        Some(state) => {
            let mut c = Check::compare("stateRoot", block.state_root, post_state_root(state, &result.state_diff)?);
            if c.status == CheckStatus::Failed && !result.warnings.is_empty() {
                c.note = Some(format!("the diff is incomplete: {}", result.warnings.join("; ")));
            }
            c
        }
        None => Check::not_applicable("stateRoot", "the pre-state is not known to be the full state"),
    });
    Ok(checks)
}
