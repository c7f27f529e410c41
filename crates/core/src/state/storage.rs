//! Where the engine reads pre-state from: the `Storage` trait and an in-memory implementation
//! loaded from geth `prestateTracer` JSON.

use crate::{error::EngineError, state::value::BasicValue, state::value::CodeValue, state::value::Loc, state::value::Value};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::collections::HashMap;

/// Failure to produce a pre-state value.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StorageError {
    /// The source does not hold this key; an adapter that can fetch it reports it here.
    #[error("state source lacks {0:?}")]
    Missing(Loc),
    #[error("{0}")]
    Other(String),
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        EngineError::State(e.to_string())
    }
}

/// Pre-state of a block. Reads must be consistent: the same key always yields the same value.
pub trait Storage: Send + Sync {
    /// The value of one location before the block.
    fn read(&self, loc: &Loc) -> Result<Value, StorageError>;
    /// Hash of an earlier block (BLOCKHASH); `None` when unknown.
    fn block_hash(&self, number: u64) -> Option<B256>;
    /// An account's balance and nonce before the block (`None`: it does not exist).
    fn basic(&self, address: Address) -> Result<Option<BasicValue>, StorageError> {
        match self.read(&Loc::Basic(address))? {
            Value::Basic(b) => Ok(b),
            _ => unreachable!("basic location yields a basic value"),
        }
    }
    /// An account's code and its balance and nonce before the block: `read` of `Loc::Code` and
    /// `Loc::Basic`, which a source may serve with one lookup.
    fn account(&self, address: Address) -> Result<(Option<CodeValue>, Option<BasicValue>), StorageError> {
        let Value::Code(code) = self.read(&Loc::Code(address))? else { unreachable!("code location yields a code value") };
        Ok((code, self.basic(address)?))
    }
    /// The hash of an account's code before the block (`None`: no code). The state diff needs
    /// only this; a witness knows it for accounts whose code it does not carry.
    fn code_hash(&self, address: Address) -> Result<Option<B256>, StorageError> {
        match self.read(&Loc::Code(address))? {
            Value::Code(c) => Ok(c.map(|c| c.hash)),
            _ => unreachable!("code location yields a code value"),
        }
    }
}

/// One account of the in-memory pre-state.
#[derive(Clone, Debug, Default)]
pub struct AccountState {
    pub basic: BasicValue,
    pub code: Option<CodeValue>,
    pub storage: FxHashMap<U256, U256>,
}

/// Pre-state held in memory. Accounts not present do not exist.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStorage {
    pub accounts: FxHashMap<Address, AccountState>,
    pub block_hashes: FxHashMap<u64, B256>,
}

/// Builds analysed code once so every transaction reuses its jump table.
pub fn code_value(bytes: Bytes) -> Option<CodeValue> {
    if bytes.is_empty() {
        return None;
    }
    let hash = keccak256(&bytes);
    Some(CodeValue { hash, code: Bytecode::new_raw(bytes) })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Quantity {
    Num(u64),
    Str(String),
}

impl Quantity {
    /// `what` names the field in the error message; built only on failure.
    fn to_u256(&self, what: impl FnOnce() -> String) -> Result<U256, EngineError> {
        match self {
            Quantity::Num(n) => Ok(U256::from(*n)),
            Quantity::Str(s) => {
                s.parse::<U256>().map_err(|e| EngineError::InvalidInput(format!("{}: '{s}' is not a quantity ({e})", what())))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrestateAccount {
    #[serde(default)]
    balance: Option<Quantity>,
    #[serde(default)]
    nonce: Option<Quantity>,
    #[serde(default)]
    code: Option<Bytes>,
    #[serde(default, rename = "codeHash")]
    _code_hash: Option<B256>,
    #[serde(default)]
    storage: Option<HashMap<B256, B256>>,
}

impl InMemoryStorage {
    /// Parses geth `prestateTracer` output: `{ address: { balance, nonce, code, storage } }`.
    pub fn from_prestate_json(bytes: &[u8]) -> Result<Self, EngineError> {
        let raw: HashMap<Address, PrestateAccount> =
            serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("prestate JSON: {e}")))?;
        let mut accounts = FxHashMap::default();
        accounts.reserve(raw.len());
        for (address, acc) in raw {
            let balance = match &acc.balance {
                Some(q) => q.to_u256(|| format!("prestate {address} balance"))?,
                None => U256::ZERO,
            };
            let nonce = match &acc.nonce {
                Some(q) => {
                    let n = q.to_u256(|| format!("prestate {address} nonce"))?;
                    u64::try_from(n).map_err(|_| EngineError::InvalidInput(format!("prestate {address} nonce {n} exceeds 64 bits")))?
                }
                None => 0,
            };
            let storage =
                acc.storage.unwrap_or_default().into_iter().map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))).collect();
            accounts.insert(address, AccountState { basic: BasicValue { balance, nonce }, code: acc.code.and_then(code_value), storage });
        }
        Ok(Self { accounts, block_hashes: FxHashMap::default() })
    }

    /// Parses `{ "<decimal number>": "0x<hash>" }`.
    pub fn block_hashes_from_json(bytes: &[u8]) -> Result<FxHashMap<u64, B256>, EngineError> {
        let raw: HashMap<String, B256> =
            serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("block hashes JSON: {e}")))?;
        raw.into_iter()
            .map(|(k, v)| {
                let n = k
                    .parse::<u64>()
                    .or_else(|_| k.parse::<alloy_primitives::U64>().map(|n| n.to::<u64>()))
                    .map_err(|_| EngineError::InvalidInput(format!("block hashes: '{k}' is not a block number")))?;
                Ok((n, v))
            })
            .collect()
    }

    pub fn with_block_hashes(mut self, hashes: FxHashMap<u64, B256>) -> Self {
        self.block_hashes.extend(hashes);
        self
    }

    /// Adds or replaces an account (used by generated blocks and tests).
    pub fn insert_account(&mut self, address: Address, balance: U256, nonce: u64, code: Option<Bytes>) {
        let entry = self.accounts.entry(address).or_default();
        entry.basic = BasicValue { balance, nonce };
        entry.code = code.and_then(code_value);
    }

    pub fn insert_storage(&mut self, address: Address, slot: U256, value: U256) {
        self.accounts.entry(address).or_default().storage.insert(slot, value);
    }
}

impl Storage for InMemoryStorage {
    fn read(&self, loc: &Loc) -> Result<Value, StorageError> {
        Ok(match loc {
            Loc::Basic(a) => Value::Basic(self.accounts.get(a).map(|acc| acc.basic)),
            Loc::Code(a) => Value::Code(self.accounts.get(a).and_then(|acc| acc.code.clone())),
            Loc::Storage(a, slot) => {
                Value::Storage(self.accounts.get(a).and_then(|acc| acc.storage.get(slot).copied()).unwrap_or_default())
            }
            Loc::Destruction(_) => Value::Destroyed(false),
        })
    }

    fn block_hash(&self, number: u64) -> Option<B256> {
        self.block_hashes.get(&number).copied()
    }

    // The state diff asks for these of every account the block changed: without cloning the
    // code (an atomic count up and down each).
    fn basic(&self, address: Address) -> Result<Option<BasicValue>, StorageError> {
        Ok(self.accounts.get(&address).map(|acc| acc.basic))
    }

    fn code_hash(&self, address: Address) -> Result<Option<B256>, StorageError> {
        Ok(self.accounts.get(&address).and_then(|acc| acc.code.as_ref().map(|c| c.hash)))
    }

    fn account(&self, address: Address) -> Result<(Option<CodeValue>, Option<BasicValue>), StorageError> {
        Ok(self.accounts.get(&address).map_or((None, None), |acc| (acc.code.clone(), Some(acc.basic))))
    }
}
