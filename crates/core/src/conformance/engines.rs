//! One block through one engine mode, the way a caller of the engine runs it, with panics caught
//! (a vector must never take the runner down: a panic is a failure like any other).

use super::{Mode, ModeSpec};
use crate::{
    block::{BlockInput, ChainSpec, TxIdx},
    engine::{
        fast_paths::groups::union_groups,
        hybrid::{execute_block, execute_guessed_groups, ExecuteOptions, ModeRequest},
    },
    error::EngineError,
    result::{BlockResult, Engine},
    state::Storage,
};
use revm::primitives::TxKind;

/// What one mode made of a block.
pub enum Run {
    Done(Box<BlockResult>),
    /// The engine refused the block with a typed error.
    Rejected(EngineError),
    /// The group engine declined the block (its run fell back); the caller's engine would hand
    /// it to Block-STM, which the parallel modes check.
    Declined,
    /// The engine panicked: always a failure.
    Panicked(String),
}

/// The name a block's engine is counted under in `Summary::engines`; Block-STM runs that
/// re-executed a transaction (a validation failed: the paths contention takes) apart.
pub fn engine_name(result: &BlockResult) -> &'static str {
    let fell_back = result.stats.reason.as_deref().is_some_and(|r| r.starts_with("fell back"));
    match result.stats.engine {
        _ if fell_back => "fallback",
        Engine::Sequential => "sequential",
        Engine::BlockStm if result.stats.reexecutions > 0 => "blockStmReexecuted",
        Engine::BlockStm => "blockStm",
        Engine::TransferGroups => "transferGroups",
        Engine::GuessedGroups => "guessedGroups",
    }
}

/// The groups the group-engine mode hands the engine as its guess: transactions that share a
/// sender or a receiver together, the rest apart. The engine checks the guess (its footprints)
/// whatever the transactions are, so any block can be given to it; a wrong guess falls back.
pub fn guessed_groups(block: &BlockInput) -> Vec<Vec<TxIdx>> {
    let keys: Vec<[alloy_primitives::Address; 2]> = block
        .txs
        .iter()
        .map(|tx| match tx.env.kind {
            TxKind::Call(to) => [tx.env.caller, to],
            TxKind::Create => [tx.env.caller, tx.env.caller],
        })
        .collect();
    if keys.is_empty() {
        return Vec::new();
    }
    union_groups(&keys).iter().map(<[TxIdx]>::to_vec).collect()
}

/// Runs `block` on `state` in `mode`.
pub fn run_block(block: &BlockInput, state: &dyn Storage, chain: &ChainSpec, mode: ModeSpec) -> Run {
    let run = || -> Result<Option<BlockResult>, EngineError> {
        let request = match mode.mode {
            Mode::Sequential => ModeRequest::Sequential,
            Mode::Parallel | Mode::Contended => ModeRequest::Parallel,
            Mode::Auto => ModeRequest::Auto,
            Mode::Groups => return execute_guessed_groups(block, state, chain, guessed_groups(block), mode.threads, false),
        };
        let options = ExecuteOptions { chain: chain.clone(), mode: request, threads: mode.threads, receipts_root: false };
        execute_block(block, state, &options).map(Some)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(Some(result))) => Run::Done(Box::new(result)),
        Ok(Ok(None)) => Run::Declined,
        Ok(Err(e)) => Run::Rejected(e),
        Err(panic) => Run::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into()),
        ),
    }
}
