//! What executing a block gives back: receipts, logs, the post-state diff and statistics.

mod block_result;
mod mode;
pub mod state_diff;

pub use block_result::*;
pub use mode::{Engine, ExecutionMode};
pub use state_diff::{AccountDiff, StateDiff};
