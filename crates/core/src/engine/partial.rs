//! Running a block on a pre-state known only in part (`state::partial`): one execution
//! records every key it missed, and its result stands only if nothing was missing.

use crate::{
    block::BlockInput,
    engine::hybrid::{execute_block, ExecuteOptions, ModeRequest},
    error::EngineError,
    result::{BlockResult, ExecutionMode},
    state::partial::{MissingKeys, PartialStorage, Recorder},
    state::storage::Storage,
};

/// What a run on a partial pre-state gave.
#[derive(Debug)]
// One value per call, moved once: boxing the result would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PartialOutcome {
    /// Nothing was missing: the result is exact.
    Complete(BlockResult),
    /// These keys were missing; fetch them and run again.
    Missing(MissingKeys),
}

/// Executes `block` on a partial pre-state. An error raised while keys were missing (e.g. a
/// sender read as empty cannot pay) is reported as those missing keys, not as the error: it may
/// come from the missing values.
pub fn execute_partial(block: &BlockInput, storage: &PartialStorage, options: &ExecuteOptions) -> Result<PartialOutcome, EngineError> {
    Ok(match run_partial(block, storage, options, |s| execute_block(block, s, options))? {
        Ok(result) => PartialOutcome::Complete(result),
        Err(missing) => PartialOutcome::Missing(missing),
    })
}

/// Runs `run` (an execution of `block` with `options`, a traced one) on a partial pre-state:
/// `Err(missing)` when it read keys the state lacks, with the same precedence over its errors as
/// `execute_partial`.
///
/// A parallel run's speculative executions may read keys that no validated execution reads (a
/// swap run before the one it depends on takes another branch). Its result equals sequential
/// execution's on the same answers, so when a sequential run misses nothing the result is exact
/// and stands; the keys are still reported by a run that does miss, so that a caller fetching
/// them spares its later runs the check.
pub fn run_partial<T>(
    block: &BlockInput,
    storage: &PartialStorage,
    options: &ExecuteOptions,
    run: impl FnOnce(&dyn Storage) -> Result<T, EngineError>,
) -> Result<Result<T, MissingKeys>, EngineError>
where
    T: RunOutcome,
{
    let recorder = Recorder::new(storage);
    let result = run(&recorder);
    let missing = recorder.into_missing();
    if missing.is_empty() {
        return result.map(Ok);
    }
    // A run auto mode made sequential would only be repeated.
    let parallel = result.as_ref().is_ok_and(|r| r.block_result().stats.mode == ExecutionMode::Parallel);
    if parallel && sequential_misses_nothing(block, storage, options) {
        return result.map(Ok);
    }
    Ok(Err(missing))
}

/// What `run_partial` looks at in a run's outcome: the block's result.
pub trait RunOutcome {
    fn block_result(&self) -> &BlockResult;
}

impl RunOutcome for BlockResult {
    fn block_result(&self) -> &BlockResult {
        self
    }
}

/// A result with what came with it (a traced run's traces).
impl<X> RunOutcome for (BlockResult, X) {
    fn block_result(&self) -> &BlockResult {
        &self.0
    }
}

/// Whether sequential execution of `block` reads only keys `storage` holds.
fn sequential_misses_nothing(block: &BlockInput, storage: &PartialStorage, options: &ExecuteOptions) -> bool {
    let recorder = Recorder::new(storage);
    let sequential = ExecuteOptions { mode: ModeRequest::Sequential, threads: 1, ..options.clone() };
    let ran = execute_block(block, &recorder, &sequential).is_ok();
    ran && recorder.into_missing().is_empty()
}
