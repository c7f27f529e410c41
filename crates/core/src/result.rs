//! What executing a block returns: receipts, the post-state diff and statistics.

use crate::types::{Engine, ExecutionMode};
use alloy_primitives::{Address, Bloom, Bytes, Log, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// How one account differs after the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDiff {
    /// The account does not exist after the block.
    pub deleted: bool,
    /// The account did not exist before the block.
    pub created: bool,
    /// The account was self-destructed during the block: storage from before is gone.
    pub storage_cleared: bool,
    pub balance: U256,
    #[serde(with = "alloy_serde::quantity")]
    pub nonce: u64,
    pub code_hash: B256,
    /// New code, when it changed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<Bytes>,
    /// Slots whose value changed, with their value after the block.
    pub storage: BTreeMap<B256, B256>,
}

/// Post-state diff: the changed accounts, sorted by address (serialized as a map). A sorted
/// vector rather than a tree: a block's diff is built once, in order, and thousands of tree
/// insertions cost more than the rest of building it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDiff(Vec<(Address, AccountDiff)>);

impl StateDiff {
    pub fn new() -> Self {
        Self::default()
    }

    /// From accounts already sorted by address, without duplicates.
    pub fn from_sorted(accounts: Vec<(Address, AccountDiff)>) -> Self {
        debug_assert!(accounts.windows(2).all(|w| w[0].0 < w[1].0), "accounts sorted and unique");
        Self(accounts)
    }

    fn position(&self, address: &Address) -> Result<usize, usize> {
        self.0.binary_search_by(|(a, _)| a.cmp(address))
    }

    pub fn get(&self, address: &Address) -> Option<&AccountDiff> {
        self.position(address).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, address: &Address) -> Option<&mut AccountDiff> {
        self.position(address).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, address: &Address) -> bool {
        self.position(address).is_ok()
    }

    /// Adds or replaces an account; returns the diff it replaced.
    pub fn insert(&mut self, address: Address, diff: AccountDiff) -> Option<AccountDiff> {
        match self.position(&address) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, diff)),
            Err(i) => {
                self.0.insert(i, (address, diff));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Accounts in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Address, &AccountDiff)> {
        self.0.iter().map(|(a, d)| (a, d))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Address> {
        self.0.iter().map(|(a, _)| a)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &AccountDiff> {
        self.0.iter().map(|(_, d)| d)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut AccountDiff> {
        self.0.iter_mut().map(|(_, d)| d)
    }
}

impl std::ops::Index<&Address> for StateDiff {
    type Output = AccountDiff;
    fn index(&self, address: &Address) -> &AccountDiff {
        self.get(address).unwrap_or_else(|| panic!("no diff for {address}"))
    }
}

impl IntoIterator for StateDiff {
    type Item = (Address, AccountDiff);
    type IntoIter = std::vec::IntoIter<(Address, AccountDiff)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Sorts; a later entry for the same address replaces an earlier one.
impl FromIterator<(Address, AccountDiff)> for StateDiff {
    fn from_iter<I: IntoIterator<Item = (Address, AccountDiff)>>(iter: I) -> Self {
        let map: BTreeMap<Address, AccountDiff> = iter.into_iter().collect();
        Self(map.into_iter().collect())
    }
}

impl Serialize for StateDiff {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StateDiff {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Address, AccountDiff>::deserialize(deserializer)?;
        Ok(Self(map.into_iter().collect()))
    }
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
    /// Receipts and post-state equal (statistics aside).
    pub fn same_outcome(&self, other: &BlockResult) -> bool {
        self.gas_used == other.gas_used
            && self.logs_bloom == other.logs_bloom
            && self.receipts == other.receipts
            && self.state_diff == other.state_diff
            && self.requests_hash == other.requests_hash
    }
}
