//! Running blocks on the state a range replay carries from block to block (`state::carried`):
//! one execution records every key the state lacked, and its result stands only if nothing was
//! missing; the state is then advanced by the result's diff (`CarriedState::apply`).
//!
//! `execute_carried_run` runs several consecutive blocks back to back (each merging the keys
//! fetched for it, running, advancing the state) in one call, so a replay whose next blocks are
//! already fetched pays one call into the engine for all of them, not one per block. It stops at
//! the first block that does not complete (missing keys, a fetched value that contradicts the
//! carried one, an error); the blocks before it stand.

use crate::{
    block::BlockInput,
    engine::{
        hybrid::{execute_block, ExecuteOptions},
        partial::PartialOutcome,
    },
    error::EngineError,
    result::BlockResult,
    state::{
        carried::{CarriedState, CarriedStats, Mismatch},
        partial::{Knowledge, MissingKeys, PartialStorage},
        storage::{InMemoryStorage, Storage},
    },
};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::RwLock,
    time::{Duration, Instant},
};

/// Executes `block` on the carried state, which must be the one after the block's parent.
/// Missing keys come back as `Missing` (fetch, merge, run again); an error raised while keys were
/// missing is reported as those keys, as it may come from the values read as empty.
pub fn execute_carried(block: &BlockInput, state: &CarriedState, options: &ExecuteOptions) -> Result<PartialOutcome, EngineError> {
    Ok(match run_carried(block, state, |s| execute_block(block, s, options))? {
        Ok(result) => PartialOutcome::Complete(result),
        Err(missing) => PartialOutcome::Missing(missing),
    })
}

/// Runs `run` (an execution, a traced one) on the carried state: `Err(missing)` when it read
/// keys the state lacks, with the same precedence over its errors as `execute_carried`.
pub fn run_carried<T>(
    block: &BlockInput,
    state: &CarriedState,
    run: impl FnOnce(&dyn Storage) -> Result<T, EngineError>,
) -> Result<Result<T, MissingKeys>, EngineError> {
    state.check_next(block.number, block.parent_hash)?;
    let view = state.view();
    let result = run(&view);
    let missing = view.into_missing();
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    result.map(Ok)
}

/// Keys fetched for a block, as JSON: existing accounts and slots (prestate form), BLOCKHASH
/// values (`{ number: hash }`), and `{ absent, completeStorage }`.
pub struct FetchedJson<'a> {
    pub prestate: &'a [u8],
    pub block_hashes: Option<&'a [u8]>,
    pub knowledge: &'a [u8],
}

impl FetchedJson<'_> {
    /// The keys, parsed for `CarriedState::merge`.
    pub fn parse(&self) -> Result<(InMemoryStorage, Knowledge), EngineError> {
        let mut fetched = InMemoryStorage::from_prestate_json(self.prestate)?;
        if let Some(h) = self.block_hashes {
            fetched = fetched.with_block_hashes(InMemoryStorage::block_hashes_from_json(h)?);
        }
        Ok((fetched, PartialStorage::knowledge_from_json(self.knowledge)?))
    }
}

/// One block of a run, with the keys fetched for it (merged just before it runs), if any.
pub struct RunStep<'a> {
    pub block: &'a BlockInput,
    pub fetched: Option<FetchedJson<'a>>,
}

/// A block of a run that completed: the state was advanced past it.
pub struct Completed<T> {
    pub result: BlockResult,
    /// What the run function gave besides the result (the traces).
    pub extra: T,
    /// The state's stats right after the block (what it carried, what was fetched for it).
    pub stats: CarriedStats,
    /// Merging and executing it.
    pub elapsed: Duration,
}

/// Why a run stopped before its last block; that block did not advance the state.
#[derive(Debug)]
pub enum RunStop {
    /// It read keys the state lacks (its fetched keys are merged): fetch them and run it again.
    Missing(MissingKeys),
    /// A value fetched for it differs from the carried one (nothing of it was merged).
    Mismatch(Mismatch),
    /// It failed, as `execute_carried` would have.
    Failed(EngineError),
}

/// The blocks of a run that completed, in order, and why it stopped early (with the time spent
/// on the block it stopped at), if it did.
pub struct CarriedRun<T> {
    pub completed: Vec<Completed<T>>,
    pub stop: Option<(RunStop, Duration)>,
}

/// Runs `steps` in order on `state`, back to back: for each, merge its fetched keys, execute it
/// with `run` (given the step's index and the state to read; while holding the state for reading: readers such as a fetcher asking what is
/// carried are not blocked), and advance the state by its diff. Stops at the first block that
/// does not complete. A panic in one block stops the run there as an internal error; the blocks
/// before it stand.
pub fn execute_carried_run<T>(
    steps: &[RunStep<'_>],
    state: &RwLock<CarriedState>,
    run: impl Fn(usize, &dyn Storage) -> Result<(BlockResult, T), EngineError>,
) -> CarriedRun<T> {
    let mut completed = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let started = Instant::now();
        let stop = match catch_unwind(AssertUnwindSafe(|| one_step(step, state, |s| run(i, s)))) {
            Ok(Ok(Ok((result, extra, stats)))) => {
                completed.push(Completed { result, extra, stats, elapsed: started.elapsed() });
                continue;
            }
            Ok(Ok(Err(stop))) => stop,
            Ok(Err(e)) => RunStop::Failed(e),
            Err(payload) => RunStop::Failed(EngineError::Internal(format!("panic in the engine: {}", panic_text(&*payload)))),
        };
        return CarriedRun { completed, stop: Some((stop, started.elapsed())) };
    }
    CarriedRun { completed, stop: None }
}

type StepResult<T> = Result<Result<(BlockResult, T, CarriedStats), RunStop>, EngineError>;

fn one_step<T>(
    step: &RunStep<'_>,
    state: &RwLock<CarriedState>,
    run: impl FnOnce(&dyn Storage) -> Result<(BlockResult, T), EngineError>,
) -> StepResult<T> {
    if let Some(json) = &step.fetched {
        let (fetched, knowledge) = json.parse()?;
        if let Err(m) = state.write().unwrap_or_else(|e| e.into_inner()).merge(&fetched, &knowledge)? {
            return Ok(Err(RunStop::Mismatch(m)));
        }
    }
    // The read guard ends before the write below: bound first, not matched on.
    let outcome = run_carried(step.block, &state.read().unwrap_or_else(|e| e.into_inner()), run)?;
    match outcome {
        Ok((result, extra)) => {
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            state.apply(step.block.number, step.block.hash, &result.state_diff);
            Ok(Ok((result, extra, state.stats())))
        }
        Err(missing) => Ok(Err(RunStop::Missing(missing))),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
