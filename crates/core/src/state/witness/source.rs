//! The pre-state a witness proves, as a `Storage` source for the engine.

use super::{decode::ExecutionWitness, sparse_trie::NodeMap, WitnessError};
use crate::state::{
    storage::{code_value, Storage, StorageError},
    value::{BasicValue, CodeValue, Loc, Value},
};
use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, B256, KECCAK256_EMPTY, U256};
use alloy_rlp::Decodable;
use alloy_trie::{nodes::TrieNode, TrieAccount, EMPTY_ROOT_HASH};
use rustc_hash::{FxHashMap, FxHashSet};

/// Where the parent's state root, which the witness must hash up to, came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ParentRootSource {
    /// Given by the caller (e.g. read from the parent header it trusts).
    Given,
    /// The witness's parent header, whose hash is the block's `parentHash`.
    ParentHeader,
    /// The witness carries no parent header: the root is its one node that no other node and
    /// no account refers to. Not proven against the chain; the post-state root check still
    /// binds the result to the block's header.
    Inferred,
}

/// A block's pre-state from its execution witness: accounts and slots are read along their
/// trie paths from the parent's state root; a key whose path leaves the witness is an error.
#[derive(Debug)]
pub struct WitnessState {
    pub nodes: NodeMap,
    /// The parent block's state root: the root of every read and of the post-state root.
    pub state_root: B256,
    pub root_source: ParentRootSource,
    /// The hash of the block the witness is the state after, when known (its parent header,
    /// or given): a block executed on the witness must name it as its parent.
    pub parent: Option<B256>,
    /// Revealed account leaves by hashed address, and slots by storage root then hashed slot:
    /// reads of what the witness holds are one lookup (a walk only proves an absence).
    accounts: FxHashMap<B256, TrieAccount>,
    slots: FxHashMap<B256, FxHashMap<B256, U256>>,
    codes: FxHashMap<B256, CodeValue>,
    block_hashes: FxHashMap<u64, B256>,
    /// keccak of the witness's keys (addresses and slots), hashed once rather than per read.
    hashed_addresses: FxHashMap<Address, B256>,
    hashed_slots: FxHashMap<B256, B256>,
}

fn decode_account(what: impl FnOnce() -> String, rlp: &[u8]) -> Result<TrieAccount, WitnessError> {
    TrieAccount::decode(&mut &rlp[..]).map_err(|e| WitnessError::InvalidLeaf { what: what(), kind: "account", reason: e.to_string() })
}

fn decode_slot(what: impl FnOnce() -> String, rlp: &[u8]) -> Result<U256, WitnessError> {
    U256::decode(&mut &rlp[..]).map_err(|e| WitnessError::InvalidLeaf { what: what(), kind: "storage value", reason: e.to_string() })
}

/// The witness's headers that chain up to `parent_hash`, by hash, newest first.
/// Without `parent_hash`, the chain starts at the newest header (the one no other names as its
/// parent), when there is exactly one.
fn linked_headers(witness: &ExecutionWitness, parent_hash: Option<B256>) -> Result<Vec<(B256, Header)>, WitnessError> {
    let mut by_hash = FxHashMap::default();
    for (index, rlp) in witness.headers.iter().enumerate() {
        let header = Header::decode(&mut &rlp[..]).map_err(|e| WitnessError::InvalidHeader { index, reason: e.to_string() })?;
        by_hash.insert(keccak256(rlp), header);
    }
    let newest = || {
        let named: FxHashSet<B256> = by_hash.values().map(|h| h.parent_hash).collect();
        let mut heads = by_hash.keys().filter(|h| !named.contains(*h));
        match (heads.next(), heads.next()) {
            (Some(head), None) => Some(*head),
            _ => None,
        }
    };
    let Some(mut next) = parent_hash.or_else(newest) else { return Ok(Vec::new()) };
    let mut chain = Vec::new();
    while let Some(header) = by_hash.remove(&next) {
        let parent = header.parent_hash;
        chain.push((next, header));
        next = parent;
    }
    Ok(chain)
}

/// The one node nothing in the witness refers to (see `ParentRootSource::Inferred`).
fn infer_root(witness: &ExecutionWitness) -> Option<B256> {
    let mut referenced = FxHashSet::default();
    for rlp in &witness.state {
        match TrieNode::decode(&mut &rlp[..]) {
            Ok(TrieNode::Branch(b)) => referenced.extend(b.stack.iter().filter_map(|c| c.as_hash())),
            Ok(TrieNode::Extension(e)) => referenced.extend(e.child.as_hash()),
            Ok(TrieNode::Leaf(l)) => {
                if let Ok(account) = TrieAccount::decode(&mut &l.value[..]) {
                    referenced.insert(account.storage_root);
                }
            }
            _ => {}
        }
    }
    let mut roots = witness.state.iter().map(keccak256).filter(|h| !referenced.contains(h));
    let root = roots.next()?;
    roots.all(|h| h == root).then_some(root)
}

impl WitnessState {
    /// The pre-state of `block` from its witness. `parent_state_root`, when given, is the root
    /// the witness must hash up to; otherwise the witness's parent header gives it.
    ///
    /// `parent_hash` (the block's) picks the parent header; without it the witness's newest
    /// header is taken for the parent, and executions check that their block names it
    /// (`check_parent`).
    pub fn new(witness: &ExecutionWitness, parent_hash: Option<B256>, parent_state_root: Option<B256>) -> Result<Self, WitnessError> {
        let headers = linked_headers(witness, parent_hash)?;
        let parent = parent_hash.or_else(|| headers.first().map(|(hash, _)| *hash));
        let parent_header_root = headers.first().map(|(_, h)| h.state_root);
        let (state_root, root_source) = match (parent_state_root, parent_header_root) {
            (Some(given), Some(header)) if given != header => {
                return Err(WitnessError::InvalidHeader {
                    index: 0,
                    reason: format!("the parent header's state root {header} is not the given {given}"),
                })
            }
            (Some(given), _) => (given, ParentRootSource::Given),
            (None, Some(header)) => (header, ParentRootSource::ParentHeader),
            (None, None) => {
                (infer_root(witness).ok_or(WitnessError::NoParentHeader(parent.unwrap_or_default()))?, ParentRootSource::Inferred)
            }
        };
        let nodes = NodeMap::from_rlp(&witness.state);
        if state_root != EMPTY_ROOT_HASH && !nodes.contains(&state_root) {
            return Err(WitnessError::MissingStateRoot(state_root));
        }
        let mut accounts = FxHashMap::default();
        let mut bad_leaf = None;
        nodes.leaves(state_root, |hashed, value| match decode_account(|| format!("account leaf {hashed}"), value) {
            Ok(account) => {
                accounts.insert(hashed, account);
            }
            Err(e) => {
                bad_leaf.get_or_insert(e);
            }
        });
        if let Some(e) = bad_leaf {
            return Err(e);
        }
        let mut slots: FxHashMap<B256, FxHashMap<B256, U256>> = FxHashMap::default();
        for account in accounts.values() {
            if account.storage_root == EMPTY_ROOT_HASH || slots.contains_key(&account.storage_root) {
                continue;
            }
            let mut values = FxHashMap::default();
            nodes.leaves(account.storage_root, |hashed, value| match decode_slot(|| format!("storage leaf {hashed}"), value) {
                Ok(v) => {
                    values.insert(hashed, v);
                }
                Err(e) => {
                    bad_leaf.get_or_insert(e);
                }
            });
            slots.insert(account.storage_root, values);
        }
        if let Some(e) = bad_leaf {
            return Err(e);
        }
        let codes = witness.codes.iter().filter_map(|c| code_value(c.clone())).map(|c| (c.hash, c)).collect();
        let block_hashes = headers.iter().map(|(hash, h)| (h.number, *hash)).collect();
        let (mut hashed_addresses, mut hashed_slots) = (FxHashMap::default(), FxHashMap::default());
        for key in &witness.keys {
            match key.len() {
                20 => {
                    hashed_addresses.insert(Address::from_slice(key), keccak256(key));
                }
                32 => {
                    hashed_slots.insert(B256::from_slice(key), keccak256(key));
                }
                _ => {}
            }
        }
        Ok(Self { nodes, state_root, root_source, parent, accounts, slots, codes, block_hashes, hashed_addresses, hashed_slots })
    }

    /// Adds BLOCKHASH values from elsewhere (e.g. a `block_hashes.json`); the witness's own
    /// headers win where both have a block.
    pub fn with_block_hashes(mut self, hashes: FxHashMap<u64, B256>) -> Self {
        for (n, h) in hashes {
            self.block_hashes.entry(n).or_insert(h);
        }
        self
    }

    /// Fails when a block whose parent is `parent_hash` is not the child of the block this
    /// witness is the state after.
    pub fn check_parent(&self, parent_hash: B256) -> Result<(), WitnessError> {
        match self.parent {
            Some(parent) if parent != parent_hash => Err(WitnessError::OtherBlock { witness: parent, block: parent_hash }),
            _ => Ok(()),
        }
    }

    /// How many accounts the witness reveals.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The account at `address` before the block (`None`: the witness proves it absent).
    pub fn account(&self, address: &Address) -> Result<Option<TrieAccount>, WitnessError> {
        self.account_by_hash(address, self.hashed_address(address))
    }

    /// The trie key of an account.
    pub fn hashed_address(&self, address: &Address) -> B256 {
        self.hashed_addresses.get(address).copied().unwrap_or_else(|| keccak256(address))
    }

    /// The trie key of a slot (as a 32-byte word).
    pub fn hashed_slot(&self, slot: &B256) -> B256 {
        self.hashed_slots.get(slot).copied().unwrap_or_else(|| keccak256(slot))
    }

    /// `account` with its trie key already hashed.
    pub fn account_by_hash(&self, address: &Address, hashed: B256) -> Result<Option<TrieAccount>, WitnessError> {
        if let Some(account) = self.accounts.get(&hashed) {
            return Ok(Some(*account));
        }
        match self.nodes.get(self.state_root, &hashed) {
            Ok(None) => Ok(None),
            Ok(Some(rlp)) => decode_account(|| format!("account {address}"), &rlp).map(Some),
            Err(source) => Err(WitnessError::Trie { what: format!("the witness does not prove account {address}"), source }),
        }
    }

    /// A slot before the block (zero when absent).
    pub fn slot(&self, address: &Address, slot: &U256) -> Result<U256, WitnessError> {
        let Some(account) = self.account(address)? else {
            return Ok(U256::ZERO);
        };
        if account.storage_root == EMPTY_ROOT_HASH {
            return Ok(U256::ZERO);
        }
        let hashed = self.hashed_slot(&B256::from(*slot));
        if let Some(v) = self.slots.get(&account.storage_root).and_then(|s| s.get(&hashed)) {
            return Ok(*v);
        }
        match self.nodes.get(account.storage_root, &hashed) {
            Ok(None) => Ok(U256::ZERO),
            Ok(Some(rlp)) => decode_slot(|| format!("slot {slot:#x} of {address}"), &rlp),
            Err(source) => Err(WitnessError::Trie { what: format!("the witness does not prove slot {slot:#x} of {address}"), source }),
        }
    }

    /// The code of an account before the block.
    pub fn code(&self, address: &Address) -> Result<Option<CodeValue>, WitnessError> {
        let Some(account) = self.account(address)? else {
            return Ok(None);
        };
        if account.code_hash == KECCAK256_EMPTY {
            return Ok(None);
        }
        match self.codes.get(&account.code_hash) {
            Some(code) => Ok(Some(code.clone())),
            None => Err(WitnessError::MissingCode { address: *address, code_hash: account.code_hash }),
        }
    }
}

impl Storage for WitnessState {
    fn read(&self, loc: &Loc) -> Result<Value, StorageError> {
        Ok(match loc {
            Loc::Basic(a) => Value::Basic(self.account(a)?.map(|acc| BasicValue { balance: acc.balance, nonce: acc.nonce })),
            Loc::Code(a) => Value::Code(self.code(a)?),
            Loc::Storage(a, slot) => Value::Storage(self.slot(a, slot)?),
            Loc::Destruction(_) => Value::Destroyed(false),
        })
    }

    fn block_hash(&self, number: u64) -> Option<B256> {
        self.block_hashes.get(&number).copied()
    }

    /// From the account leaf: the state diff needs only the hash, and a witness holds no code
    /// an execution did not run (withdrawal recipients').
    fn code_hash(&self, address: Address) -> Result<Option<B256>, StorageError> {
        Ok(self.account(&address)?.map(|a| a.code_hash).filter(|h| *h != KECCAK256_EMPTY))
    }
}
