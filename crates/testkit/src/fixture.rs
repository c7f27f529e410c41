//! Loading a block folder: `block.json`, `prestate.json`, optional `chain.json`, and block
//! hashes from `block_hashes.json` in the folder or its parent.

use parallel_evm_core::{block::chain::ChainSpec, block::BlockInput, state::storage::InMemoryStorage, EngineError};
use std::path::{Path, PathBuf};

pub struct Fixture {
    pub dir: PathBuf,
    pub block: BlockInput,
    pub state: InMemoryStorage,
    pub chain: ChainSpec,
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
        if let Some(p) = hashes_path {
            state = state.with_block_hashes(InMemoryStorage::block_hashes_from_json(&read(&p)?)?);
        }
        let chain_path = dir.join("chain.json");
        let chain = if chain_path.exists() { ChainSpec::from_json(&read(&chain_path)?)? } else { ChainSpec::mainnet() };
        Ok(Self { dir: dir.to_path_buf(), block, state, chain })
    }
}
