//! The engines and the choice between them. `execute_block` (in `hybrid`) picks sequential
//! execution, Block-STM or one of the fast paths for each block, and assembles the result.
//!
//! - `sequential`: the plain revm loop.
//! - `block_stm`: speculative parallel execution over multi-version memory.
//! - `fast_paths`: plain transfers and guessed groups that need no speculation, and the lazy
//!   balances and storage updates that keep hot accounts from serialising Block-STM.
//! - `vm`, `transitions`, `final_state`: the revm bridge, system calls, and the post-state diff.
//! - `inspected`: tracing inside the engines that run each transaction once (`trace` uses it).

pub mod block_stm;
pub mod carried;
pub mod chaos;
pub mod costs;
pub mod fast_paths;
pub mod final_state;
pub mod hybrid;
pub mod inspected;
pub mod partial;
pub mod runner;
pub mod sequential;
pub mod transitions;
pub mod vm;

pub use hybrid::{execute_block, ExecuteOptions, ModeRequest};
