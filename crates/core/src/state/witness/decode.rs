//! The JSON form of reth's `debug_executionWitness`.

use super::WitnessError;
use alloy_primitives::Bytes;
use serde::Deserialize;

/// `{ state: [RLP trie nodes], codes: [bytecodes], keys: [address and slot preimages],
/// headers: [RLP ancestor headers] }`. Keys are not needed: every path is walked by the hash of
/// the address or slot the engine asks for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionWitness {
    #[serde(default)]
    pub state: Vec<Bytes>,
    #[serde(default)]
    pub codes: Vec<Bytes>,
    #[serde(default)]
    pub keys: Vec<Bytes>,
    #[serde(default)]
    pub headers: Vec<Bytes>,
}

impl ExecutionWitness {
    pub fn from_json(bytes: &[u8]) -> Result<Self, WitnessError> {
        serde_json::from_slice(bytes).map_err(|e| WitnessError::InvalidJson(e.to_string()))
    }
}
