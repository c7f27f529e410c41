//! Helpers shared by the integration tests.
#![allow(dead_code)]

use parallel_evm_core::{
    block::chain::ChainSpec,
    block::BlockInput,
    engine::hybrid::{execute_block, ExecuteOptions},
    result::BlockResult,
    state::storage::Storage,
    EngineError, ExecutionMode, ModeRequest,
};
use std::path::PathBuf;

pub const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// `../shared/fixtures/mainnet` from the repository root, if present.
pub fn mainnet_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("PARALLEL_EVM_SHARED").map(PathBuf::from).unwrap_or_else(|| root.join("../shared")).join("fixtures/mainnet");
    dir.is_dir().then_some(dir)
}

/// The fixture folders (those holding a `block.json`) of `dir`, sorted.
pub fn fixture_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut dirs: Vec<_> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("block.json").exists()).collect();
    dirs.sort();
    dirs
}

pub fn run(
    block: &BlockInput,
    state: &dyn Storage,
    chain: &ChainSpec,
    mode: ModeRequest,
    threads: usize,
) -> Result<BlockResult, EngineError> {
    execute_block(block, state, &ExecuteOptions { chain: chain.clone(), mode, threads, receipts_root: true })
}

/// Runs sequentially and in parallel at every thread count; asserts identical outcomes.
/// Returns the sequential result (or its error, which every run must share).
pub fn check_all_modes(name: &str, block: &BlockInput, state: &dyn Storage, chain: &ChainSpec) -> Result<BlockResult, EngineError> {
    let reference = run(block, state, chain, ModeRequest::Sequential, 1);
    for threads in THREADS {
        for mode in [ModeRequest::Parallel, ModeRequest::Auto] {
            let got = run(block, state, chain, mode, threads);
            match (&reference, &got) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.receipts, b.receipts, "{name}: receipts differ ({mode:?}, {threads} threads)");
                    assert_eq!(a.state_diff, b.state_diff, "{name}: state diff differs ({mode:?}, {threads} threads)");
                    assert_eq!(a.gas_used, b.gas_used);
                    assert_eq!(a.logs_bloom, b.logs_bloom);
                    assert_eq!(a.receipts_root, b.receipts_root);
                    if mode == ModeRequest::Parallel && b.stats.reason.is_none() {
                        assert_eq!(b.stats.mode, ExecutionMode::Parallel, "{name}: parallel was requested");
                    }
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a, b, "{name}: errors differ ({mode:?}, {threads} threads)")
                }
                (a, b) => panic!(
                    "{name}: sequential gave {:?}, {mode:?} with {threads} threads gave {:?}",
                    a.as_ref().map(|_| "ok"),
                    b.as_ref().map(|_| "ok")
                ),
            }
        }
    }
    reference
}
