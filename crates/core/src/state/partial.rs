//! Pre-state known only in part, for state sources that fetch keys on demand (a node without the
//! debug namespace). Reading a key the source does not hold records it as missing and answers
//! as if it were empty, so one execution reports every key it missed; the caller fetches those
//! and runs the block again, until nothing is missing. A run that missed a key never yields a
//! result: its outcome may rest on a wrong (empty) value.

use crate::{
    error::EngineError,
    state::storage::{InMemoryStorage, Storage, StorageError},
    state::value::Loc,
    state::value::Value,
};
use alloy_primitives::{Address, B256};
use parking_lot::Mutex;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which parts of a pre-state are known beyond the accounts and slots it lists.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Knowledge {
    /// Accounts known not to exist (every slot of theirs is zero).
    #[serde(default)]
    pub absent: Vec<Address>,
    /// Listed accounts whose whole storage is listed (e.g. an empty storage root).
    #[serde(default)]
    pub complete_storage: Vec<Address>,
    /// Every account not listed does not exist and every unlisted slot is zero: only block
    /// hashes can be missing (a full `prestateTracer` pre-state).
    #[serde(default)]
    pub complete: bool,
}

/// A pre-state in which listed accounts (balance, nonce and code together) and listed slots are
/// known; anything else is missing unless `Knowledge` says otherwise.
#[derive(Debug, Default)]
pub struct PartialStorage {
    pub state: InMemoryStorage,
    pub absent: FxHashSet<Address>,
    pub complete_storage: FxHashSet<Address>,
    pub complete: bool,
}

/// Keys an execution needed and the source did not hold, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingKeys {
    /// Accounts (balance, nonce and code).
    pub accounts: BTreeSet<Address>,
    /// Slots, by account.
    pub storage: BTreeMap<Address, BTreeSet<B256>>,
    /// Block numbers BLOCKHASH asked for.
    pub block_hashes: BTreeSet<u64>,
}

impl MissingKeys {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.storage.is_empty() && self.block_hashes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.accounts.len() + self.storage.values().map(|s| s.len()).sum::<usize>() + self.block_hashes.len()
    }
}

impl PartialStorage {
    pub fn new(state: InMemoryStorage, knowledge: Knowledge) -> Self {
        Self {
            state,
            absent: knowledge.absent.into_iter().collect(),
            complete_storage: knowledge.complete_storage.into_iter().collect(),
            complete: knowledge.complete,
        }
    }

    /// Parses `{ absent, completeStorage, complete }`.
    pub fn knowledge_from_json(bytes: &[u8]) -> Result<Knowledge, EngineError> {
        serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("state knowledge JSON: {e}")))
    }

    /// Whether the value at `loc` is known (it may be known to be empty).
    fn knows(&self, loc: &Loc) -> bool {
        if self.complete {
            return true;
        }
        let address = loc.address();
        if self.absent.contains(&address) {
            return true;
        }
        let Some(account) = self.state.accounts.get(&address) else {
            return false;
        };
        match loc {
            Loc::Basic(_) | Loc::Code(_) | Loc::Destruction(_) => true,
            Loc::Storage(_, slot) => self.complete_storage.contains(&address) || account.storage.contains_key(slot),
        }
    }
}

/// Reads through a `PartialStorage`, recording what it lacks. One per execution, so concurrent
/// executions of the same state do not mix their records.
pub struct Recorder<'a> {
    base: &'a PartialStorage,
    missing: Mutex<MissingKeys>,
}

impl<'a> Recorder<'a> {
    pub fn new(base: &'a PartialStorage) -> Self {
        Recorder { base, missing: Mutex::new(MissingKeys::default()) }
    }

    /// The keys read so far that the pre-state did not hold.
    pub fn into_missing(self) -> MissingKeys {
        self.missing.into_inner()
    }
}

impl Storage for Recorder<'_> {
    fn read(&self, loc: &Loc) -> Result<Value, StorageError> {
        if !self.base.knows(loc) {
            let mut missing = self.missing.lock();
            match loc {
                Loc::Storage(a, slot) => {
                    missing.storage.entry(*a).or_default().insert(B256::from(*slot));
                }
                _ => {
                    missing.accounts.insert(loc.address());
                }
            }
        }
        // Unknown keys read as empty, which is what the in-memory state answers for them.
        self.base.state.read(loc)
    }

    fn block_hash(&self, number: u64) -> Option<B256> {
        let hash = self.base.state.block_hash(number);
        if hash.is_none() {
            self.missing.lock().block_hashes.insert(number);
        }
        Some(hash.unwrap_or_default())
    }
}
