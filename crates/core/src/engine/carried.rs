//! Running a block on the state a range replay carries from block to block (`state::carried`):
//! one execution records every key the state lacked, and its result stands only if nothing was
//! missing; the caller then advances the state by the result's diff (`CarriedState::apply`).

use crate::{
    block::BlockInput,
    engine::{
        hybrid::{execute_block, ExecuteOptions},
        partial::PartialOutcome,
    },
    error::EngineError,
    state::carried::CarriedState,
};

/// Executes `block` on the carried state, which must be the one after the block's parent.
/// Missing keys come back as `Missing` (fetch, merge, run again); an error raised while keys were
/// missing is reported as those keys, as it may come from the values read as empty.
pub fn execute_carried(block: &BlockInput, state: &CarriedState, options: &ExecuteOptions) -> Result<PartialOutcome, EngineError> {
    state.check_next(block.number, block.parent_hash)?;
    let view = state.view();
    let result = execute_block(block, &view, options);
    let missing = view.into_missing();
    if !missing.is_empty() {
        return Ok(PartialOutcome::Missing(missing));
    }
    result.map(PartialOutcome::Complete)
}
