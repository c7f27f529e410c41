//! Checks of a result against the block header: gas used, logs bloom, receipts root, and the
//! post-state root when the full pre-state is known.

use crate::{
    block::chain::ChainSpec,
    block::integrity::Integrity,
    block::BlockInput,
    error::EngineError,
    result::{BlockResult, Receipt},
    state::{
        storage::InMemoryStorage,
        witness::{ParentRootSource, WitnessState},
    },
    verify::{state_root::post_state_root, witness_root::post_state_root as post_state_root_from_witness},
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
    /// The post-state root, where a witness or the full state allows computing it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_root: Option<bool>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.gas_used
            && self.logs_bloom
            && self.receipts_root != Some(false)
            && self.requests_hash != Some(false)
            && self.state_root != Some(false)
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
        state_root: None,
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
    /// The transaction at fault (signatures).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_index: Option<usize>,
}

impl Check {
    fn compare(name: &str, expected: impl ToString, actual: impl ToString) -> Self {
        let (expected, actual) = (expected.to_string(), actual.to_string());
        let status = if expected == actual { CheckStatus::Passed } else { CheckStatus::Failed };
        Self { name: name.into(), status, expected: Some(expected), actual: Some(actual), note: None, tx_index: None }
    }

    fn not_applicable(name: &str, why: impl Into<String>) -> Self {
        Self { name: name.into(), status: CheckStatus::NotApplicable, expected: None, actual: None, note: Some(why.into()), tx_index: None }
    }
}

/// Every header check with expected and actual values. `full_state`, when given, must be the
/// whole state before the block (not a `prestateTracer` subset): the post-state root is then
/// computed from it and the result's diff and compared with the header's `stateRoot`. A block
/// parsed with `BlockInput::from_json_checked` adds its integrity checks (transactions and
/// withdrawals roots, block hash, signatures).
pub fn check_report(
    block: &BlockInput,
    chain: &ChainSpec,
    result: &BlockResult,
    full_state: Option<&InMemoryStorage>,
) -> Result<Vec<Check>, EngineError> {
    let state_root = match full_state {
        Some(state) => state_root_check(result, post_state_root(state, &result.state_diff)?, block.state_root),
        None => Check::not_applicable("stateRoot", "the pre-state is not known to be the full state"),
    };
    Ok(report(block, chain, result, state_root))
}

/// `check_report` with the post-state root computed from the block's execution witness (the
/// state `result` was executed on).
pub fn check_report_witness(
    block: &BlockInput,
    chain: &ChainSpec,
    result: &BlockResult,
    witness: &WitnessState,
) -> Result<Vec<Check>, EngineError> {
    let mut check = state_root_check(result, post_state_root_from_witness(witness, &result.state_diff)?, block.state_root);
    let from = match witness.root_source {
        ParentRootSource::ParentHeader => "the parent header's",
        ParentRootSource::Given => "the given",
        ParentRootSource::Inferred => "inferred (the witness carries no parent header), not proven",
    };
    let origin = format!("computed from the execution witness over parent state root {} ({from})", witness.state_root);
    check.note = Some(match check.note.take() {
        Some(n) => format!("{origin}; {n}"),
        None => origin,
    });
    Ok(report(block, chain, result, check))
}

fn state_root_check(result: &BlockResult, computed: B256, header: B256) -> Check {
    let mut c = Check::compare("stateRoot", header, computed);
    if c.status == CheckStatus::Failed && !result.warnings.is_empty() {
        c.note = Some(format!("the diff is incomplete: {}", result.warnings.join("; ")));
    }
    c
}

/// The block's integrity against its header (`block::integrity`) as checks.
pub fn integrity_checks(integrity: &Integrity) -> Vec<Check> {
    let (header, ours) = integrity.transactions_root;
    let mut checks = vec![Check::compare("transactionsRoot", header, ours)];
    checks.push(match integrity.withdrawals_root {
        Some((header, Some(ours))) => Check::compare("withdrawalsRoot", header, ours),
        Some((header, None)) => Check {
            note: Some("the header has a withdrawalsRoot but the block no withdrawals list".into()),
            ..Check::compare("withdrawalsRoot", header, "none")
        },
        None => Check::not_applicable("withdrawalsRoot", "the header has no withdrawalsRoot (before Shanghai)"),
    });
    let (header, ours) = integrity.block_hash;
    checks.push(Check::compare("blockHash", header, ours));
    let n = integrity.transactions;
    checks.push(match &integrity.bad_signature {
        None => Check { note: Some(format!("{n} signatures recover to their 'from'")), ..Check::compare("signatures", n, n) },
        Some((index, hash, reason)) => Check {
            name: "signatures".into(),
            status: CheckStatus::Failed,
            expected: Some(format!("{hash} recovers to its 'from'")),
            actual: Some(reason.clone()),
            note: Some(format!("transaction {index}: {reason}")),
            tx_index: Some(*index),
        },
    });
    checks
}

fn report(block: &BlockInput, chain: &ChainSpec, result: &BlockResult, state_root: Check) -> Vec<Check> {
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
    checks.push(state_root);
    checks.extend(block.integrity.iter().flat_map(integrity_checks));
    checks
}
