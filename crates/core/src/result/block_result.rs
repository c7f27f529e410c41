//! What executing a block returns: receipts, the post-state diff and statistics.

use crate::result::{Engine, ExecutionMode};
use alloy_primitives::{Address, Bloom, Log, B256};
use serde::{Deserialize, Serialize};

use crate::result::state_diff::StateDiff;

/// A transaction receipt as the engine computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub transaction_hash: B256,
    #[serde(with = "alloy_serde::quantity")]
    pub transaction_index: u64,
    #[serde(rename = "type", with = "alloy_serde::quantity")]
    pub tx_type: u8,
    /// Whether execution succeeded (status 1).
    pub status: bool,
    #[serde(with = "alloy_serde::quantity")]
    pub gas_used: u64,
    #[serde(with = "alloy_serde::quantity")]
    pub cumulative_gas_used: u64,
    pub logs: Vec<Log>,
    pub logs_bloom: Bloom,
    pub contract_address: Option<Address>,
}

/// How the block ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub mode: ExecutionMode,
    /// Which engine ran the block (which parallel one, when `mode` is parallel).
    pub engine: Engine,
    pub threads: usize,
    /// Why auto mode chose sequential, or why a parallel run fell back.
    pub reason: Option<String>,
    /// Transaction executions in total (incarnations).
    pub executions: u64,
    /// Executions beyond one per transaction.
    pub reexecutions: u64,
    /// Validations that failed and aborted an incarnation.
    pub validation_aborts: u64,
    /// Executions suspended on a dependency (read of an ESTIMATE).
    pub dependency_waits: u64,
    /// Wall time of transaction execution (excluding parsing and the diff), in microseconds.
    pub execution_us: u64,
    /// Wall time of the whole call, in microseconds.
    pub total_us: u64,
}

/// Everything a block execution returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockResult {
    #[serde(with = "alloy_serde::quantity")]
    pub number: u64,
    pub hash: Option<B256>,
    #[serde(with = "alloy_serde::quantity")]
    pub gas_used: u64,
    pub logs_bloom: Bloom,
    /// Receipts root, when asked for (`ExecuteOptions::receipts_root`); meaningful from
    /// Byzantium (earlier receipts carry intermediate state roots).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipts_root: Option<B256>,
    pub receipts: Vec<Receipt>,
    pub state_diff: StateDiff,
    /// EIP-7685 (Prague): the hash of the block's requests, when the request contracts are in the
    /// pre-state and the chain's deposit contract is known (mainnet).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requests_hash: Option<B256>,
    /// Things the diff could not include (e.g. uncle rewards without uncle headers).
    pub warnings: Vec<String>,
    pub stats: Stats,
}

impl BlockResult {
    /// About how many bytes of memory the result holds: receipts, logs and the diff (a host
    /// with a garbage collector reports it, so that results are collected in time).
    pub fn heap_bytes(&self) -> usize {
        let logs: usize =
            self.receipts.iter().flat_map(|r| &r.logs).map(|l| std::mem::size_of_val(l) + l.data.data.len() + l.topics().len() * 32).sum();
        self.receipts.len() * std::mem::size_of::<Receipt>() + logs + self.state_diff.heap_bytes()
    }

    /// Receipts and post-state equal (statistics aside).
    pub fn same_outcome(&self, other: &BlockResult) -> bool {
        self.gas_used == other.gas_used
            && self.logs_bloom == other.logs_bloom
            && self.receipts == other.receipts
            && self.state_diff == other.state_diff
            && self.requests_hash == other.requests_hash
    }
}
