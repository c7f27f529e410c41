//! The JSON of the ethereum/tests vectors (filled tests): accounts, state tests and blockchain
//! tests, as far as the runner reads them.

use crate::state::InMemoryStorage;
use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// One account of a `pre` or `postState`.
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    pub balance: U256,
    pub nonce: U256,
    #[serde(default)]
    pub code: Bytes,
    #[serde(default)]
    pub storage: BTreeMap<U256, U256>,
}

/// A complete state as the vectors write it.
pub type Accounts = BTreeMap<Address, Account>;

/// The accounts as the engine's in-memory state (zero slots left out: they are absent).
pub fn to_storage(accounts: &Accounts) -> Result<InMemoryStorage, String> {
    let mut state = InMemoryStorage::default();
    for (address, a) in accounts {
        let nonce = u64::try_from(a.nonce).map_err(|_| format!("account {address}: nonce {} exceeds 64 bits", a.nonce))?;
        state.insert_account(*address, a.balance, nonce, Some(a.code.clone()));
        for (slot, value) in a.storage.iter().filter(|(_, v)| !v.is_zero()) {
            state.insert_storage(*address, *slot, *value);
        }
    }
    Ok(state)
}

/// `env` of a state test: the header of its one block.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Env {
    pub current_coinbase: Address,
    #[serde(default)]
    pub current_difficulty: U256,
    pub current_gas_limit: U256,
    pub current_number: U256,
    pub current_timestamp: U256,
    #[serde(default)]
    pub current_base_fee: Option<U256>,
    #[serde(default)]
    pub current_random: Option<B256>,
    #[serde(default)]
    pub current_excess_blob_gas: Option<U256>,
}

/// `transaction` of a state test: a template whose `data`, `gasLimit` and `value` lists the
/// cases index.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxTemplate {
    pub data: Vec<Bytes>,
    pub gas_limit: Vec<U256>,
    /// `None` for a value that is not a 256-bit quantity (`ValueOverflow` writes one of 257
    /// bits): such a transaction does not decode, and its case expects it refused.
    #[serde(deserialize_with = "lenient_quantities")]
    pub value: Vec<Option<U256>>,
    pub nonce: U256,
    #[serde(default)]
    pub gas_price: Option<U256>,
    #[serde(default)]
    pub max_fee_per_gas: Option<U256>,
    #[serde(default)]
    pub max_priority_fee_per_gas: Option<U256>,
    #[serde(default)]
    pub max_fee_per_blob_gas: Option<U256>,
    #[serde(default)]
    pub blob_versioned_hashes: Option<Vec<B256>>,
    /// Indexed like `data`; `null` where that case's transaction has none (legacy, EIP-1559
    /// without a list).
    #[serde(default)]
    pub access_lists: Option<Vec<Option<AccessList>>>,
    #[serde(default)]
    pub secret_key: Option<B256>,
    #[serde(default)]
    pub sender: Option<Address>,
    /// Empty for a creation.
    #[serde(default, deserialize_with = "optional_address")]
    pub to: Option<Address>,
    /// EIP-7702 authorizations (Prague): read only to refuse them clearly.
    #[serde(default)]
    pub authorization_list: Option<serde_json::Value>,
}

fn lenient_quantities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<U256>>, D::Error> {
    let raw: Vec<serde_json::Value> = Vec::deserialize(d)?;
    Ok(raw.into_iter().map(|v| serde_json::from_value(v).ok()).collect())
}

fn optional_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") | Some("0x") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Which entries of the template's lists a case takes.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Indexes {
    pub data: usize,
    pub gas: usize,
    pub value: usize,
}

/// One `post.<fork>` entry of a state test.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostCase {
    /// The state root after the transaction.
    pub hash: B256,
    /// keccak256 of the RLP list of the transaction's logs.
    pub logs: B256,
    pub indexes: Indexes,
    #[serde(default)]
    pub expect_exception: Option<String>,
    /// The signed transaction (its hash names it in receipts).
    #[serde(default)]
    pub txbytes: Option<Bytes>,
}

/// A GeneralStateTests test. `post` is kept raw: only the Cancun entries are read.
#[derive(Clone, Debug, Deserialize)]
pub struct StateTest {
    pub env: Env,
    pub pre: Accounts,
    pub transaction: TxTemplate,
    pub post: BTreeMap<String, serde_json::Value>,
}

/// One entry of a blockchain test's `blocks`: its RLP is the block (the decoded fields beside
/// it are the filler's view and absent for blocks that do not decode).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestBlock {
    /// Hex; kept as text because an invalid block may carry invalid hex too.
    pub rlp: String,
    #[serde(default)]
    pub expect_exception: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisHeader {
    pub hash: B256,
    pub state_root: B256,
}

/// A BlockchainTests test.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainTest {
    pub network: String,
    pub pre: Accounts,
    pub genesis_block_header: GenesisHeader,
    #[serde(rename = "genesisRLP")]
    pub genesis_rlp: Bytes,
    pub blocks: Vec<TestBlock>,
    #[serde(default)]
    pub post_state: Option<Accounts>,
    #[serde(default)]
    pub post_state_hash: Option<B256>,
    pub lastblockhash: B256,
}
