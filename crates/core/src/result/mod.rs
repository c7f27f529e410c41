//! What executing a block gives back: receipts, logs, the post-state diff and statistics.

mod block_result;
mod mode;
pub mod state_diff;
mod tx_trace;

pub use block_result::*;
pub use mode::{Engine, ExecutionMode};
pub use state_diff::{AccountDiff, StateDiff};
pub use tx_trace::TxTrace;
