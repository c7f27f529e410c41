//! parallel-evm core: executes Ethereum blocks with Block-STM on revm, with results identical
//! to sequential execution.
//!
//! Layers, lowest first; a module imports only from the layers below it (checked by
//! `tests/layers.rs`):
//!
//! - [`error`], [`threads`]: typed errors and the engine's thread pool.
//! - [`result`]: receipts, logs, the state diff and statistics.
//! - [`state`]: where pre-state comes from ([`state::Storage`]) and the values engines exchange.
//! - [`block`]: the block input, chain and fork rules, requests.
//! - [`verify`]: header checks, state roots, comparison of two results.
//! - [`engine`]: sequential execution, Block-STM, the fast paths and the hybrid choice.
//! - [`trace`]: geth-compatible traces of a committed block, every transaction re-executed
//!   against its committed pre-state with revm-inspectors, all at once.
//! - [`conformance`]: the Ethereum consensus test vectors through every engine mode.
//!
//! ```no_run
//! use parallel_evm_core::{execute_block, BlockInput, ExecuteOptions, InMemoryStorage};
//! let block = BlockInput::from_json(&std::fs::read("block.json").unwrap()).unwrap();
//! let state = InMemoryStorage::from_prestate_json(&std::fs::read("prestate.json").unwrap()).unwrap();
//! let result = execute_block(&block, &state, &ExecuteOptions::default()).unwrap();
//! println!("{} gas", result.gas_used);
//! ```

pub mod block;
pub mod conformance;
pub mod engine;
pub mod error;
pub mod result;
pub mod state;
pub mod threads;
pub mod trace;
pub mod verify;

pub use block::{BlockInput, ChainSpec};
pub use engine::{execute_block, ExecuteOptions, ModeRequest};
pub use error::EngineError;
pub use result::{BlockResult, Engine, ExecutionMode, Receipt, StateDiff};
pub use state::{InMemoryStorage, Storage};
pub use verify::{verify_header, CheckStatus};
