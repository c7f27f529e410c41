//! Loading a block folder: `block.json`, `prestate.json`, optional `chain.json`, block
//! hashes from `block_hashes.json` in the folder or its parent, and the execution witness
//! (`witness.json`) where there is one.

use parallel_evm_core::{
    block::chain::ChainSpec,
    block::BlockInput,
    state::storage::InMemoryStorage,
    state::witness::{ExecutionWitness, WitnessState},
    EngineError,
};
use std::path::{Path, PathBuf};

pub struct Fixture {
    pub dir: PathBuf,
    pub block: BlockInput,
    pub state: InMemoryStorage,
    pub chain: ChainSpec,
    /// The pre-state proven by `witness.json` (with the same block hashes), when the folder has one.
    pub witness: Option<WitnessState>,
}

fn read(path: &Path) -> Result<Vec<u8>, EngineError> {
    std::fs::read(path).map_err(|e| EngineError::InvalidInput(format!("{}: {e}", path.display())))
}

impl Fixture {
    /// Loads a fixture folder. `block_hashes` overrides where BLOCKHASH values come from.
    pub fn load(dir: &Path, block_hashes: Option<&Path>) -> Result<Self, EngineError> {
        let block = BlockInput::from_json(&read(&dir.join("block.json"))?)?;
        let mut state = InMemoryStorage::from_prestate_json(&read(&dir.join("prestate.json"))?)?;
        let hashes_path = match block_hashes {
            Some(p) => Some(p.to_path_buf()),
            None => [dir.join("block_hashes.json"), dir.join("../block_hashes.json")].into_iter().find(|p| p.exists()),
        };
        let hashes = hashes_path.map(|p| InMemoryStorage::block_hashes_from_json(&read(&p)?)).transpose()?;
        if let Some(h) = &hashes {
            state = state.with_block_hashes(h.clone());
        }
        let witness_path = dir.join("witness.json");
        let witness = if witness_path.exists() {
            let w = WitnessState::new(&ExecutionWitness::from_json(&read(&witness_path)?)?, Some(block.parent_hash), None)?;
            Some(w.with_block_hashes(hashes.unwrap_or_default()))
        } else {
            None
        };
        let chain_path = dir.join("chain.json");
        let chain = if chain_path.exists() { ChainSpec::from_json(&read(&chain_path)?)? } else { ChainSpec::mainnet() };
        Ok(Self { dir: dir.to_path_buf(), block, state, chain, witness })
    }
}
