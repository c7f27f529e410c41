//! Typed errors of the engine. Each has a stable code that crosses into JavaScript.

use alloy_primitives::B256;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EngineError {
    /// The input could not be parsed (bad JSON, bad hex, missing field, unknown tx type).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A transaction is invalid in this block: the whole block is invalid.
    #[error("transaction {index} ({hash}) is invalid: {reason}")]
    InvalidTransaction { index: usize, hash: B256, reason: String },
    /// The block itself breaks a rule independent of any transaction.
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// BLOCKHASH asked for a block whose hash was not provided.
    #[error("missing block hash for block {0}")]
    MissingBlockHash(u64),
    /// The state source failed or lacks data it must have.
    #[error("state error: {0}")]
    State(String),
    /// A bug in the engine (caught panic, broken invariant). Never a silent wrong result.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidInput(_) => "INVALID_INPUT",
            EngineError::InvalidTransaction { .. } => "INVALID_TRANSACTION",
            EngineError::InvalidBlock(_) => "INVALID_BLOCK",
            EngineError::MissingBlockHash(_) => "MISSING_BLOCK_HASH",
            EngineError::State(_) => "STATE_ERROR",
            EngineError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// Index of the offending transaction, when there is one.
    pub fn tx_index(&self) -> Option<usize> {
        match self {
            EngineError::InvalidTransaction { index, .. } => Some(*index),
            _ => None,
        }
    }
}
