//! Execution witnesses (`debug_executionWitness`): the trie nodes, codes and ancestor headers a
//! block touches, all hashing up to the parent's state root. From one the engine gets a
//! pre-state proven against the parent header (`WitnessState`) and computes the block's
//! post-state root (`verify::witness_root::post_state_root`), the strongest check of a result
//! there is, without the whole state of the chain.
//!
//! ```no_run
//! use parallel_evm_core::{execute_block, state::witness::{ExecutionWitness, WitnessState}, verify::witness_root::post_state_root, BlockInput, ExecuteOptions};
//! let block = BlockInput::from_json(&std::fs::read("block.json").unwrap()).unwrap();
//! let witness = ExecutionWitness::from_json(&std::fs::read("witness.json").unwrap()).unwrap();
//! let state = WitnessState::new(&witness, Some(block.parent_hash), None).unwrap();
//! let result = execute_block(&block, &state, &ExecuteOptions::default()).unwrap();
//! assert_eq!(post_state_root(&state, &result.state_diff).unwrap(), block.state_root);
//! ```

mod decode;
mod source;
pub mod sparse_trie;

pub use decode::ExecutionWitness;
pub use source::{ParentRootSource, WitnessState};
pub use sparse_trie::{NodeMap, SparseTrie, TrieError, Update};

use crate::{error::EngineError, state::storage::StorageError};
use alloy_primitives::{Address, B256};

/// What a witness cannot give: each names the key or node at fault.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum WitnessError {
    #[error("witness JSON: {0}")]
    InvalidJson(String),
    /// The parent's state root is not among the witness's nodes: the witness is of another
    /// block, or its root node was changed or left out.
    #[error("the witness does not hold the parent state root {0} (a witness of another block, or its root node changed or missing)")]
    MissingStateRoot(B256),
    /// Neither a parent header in the witness nor a given root says which state the witness is of.
    #[error("the witness carries no header of the parent block {0}: pass the parent's state root")]
    NoParentHeader(B256),
    #[error("the witness is of the state after block {witness}, but the block's parent is {block}")]
    OtherBlock { witness: B256, block: B256 },
    #[error("witness header {index}: {reason}")]
    InvalidHeader { index: usize, reason: String },
    /// A trie walk met a node the witness does not hold.
    #[error("{what}: {source}")]
    Trie { what: String, source: TrieError },
    #[error("the witness does not hold the code of {address} (code hash {code_hash})")]
    MissingCode { address: Address, code_hash: B256 },
    #[error("{what}: the trie leaf is not a valid {kind}: {reason}")]
    InvalidLeaf { what: String, kind: &'static str, reason: String },
}

impl From<WitnessError> for StorageError {
    fn from(e: WitnessError) -> Self {
        StorageError::Other(e.to_string())
    }
}

impl From<WitnessError> for EngineError {
    fn from(e: WitnessError) -> Self {
        match e {
            WitnessError::InvalidJson(_) | WitnessError::InvalidHeader { .. } => EngineError::InvalidInput(e.to_string()),
            _ => EngineError::State(e.to_string()),
        }
    }
}
