//! parallel-evm core: executes Ethereum blocks with Block-STM on revm, with results identical
//! to sequential execution.
//!
//! ```no_run
//! use parallel_evm_core::{block::BlockInput, storage::InMemoryStorage, executor::{execute_block, ExecuteOptions}};
//! let block = BlockInput::from_json(&std::fs::read("block.json").unwrap()).unwrap();
//! let state = InMemoryStorage::from_prestate_json(&std::fs::read("prestate.json").unwrap()).unwrap();
//! let result = execute_block(&block, &state, &ExecuteOptions::default()).unwrap();
//! println!("{} gas", result.gas_used);
//! ```

pub mod block;
pub mod bloom;
pub mod chain;
pub mod chaos;
pub mod costs;
pub mod crosscheck;
pub mod diff;
pub mod error;
pub mod executor;
pub mod fixture;
pub mod fuzz;
pub mod generate;
pub mod lazy_balance;
pub mod lazy_storage;
pub mod mv_memory;
pub mod overlay;
pub mod parallel;
pub mod partial;
pub mod placement;
pub mod requests;
pub mod predicted;
pub mod result;
pub mod runner;
pub mod scheduler;
pub mod sequential;
pub mod state_diff;
pub mod state_root;
pub mod storage;
pub mod transfers;
pub mod transitions;
pub mod types;
pub mod verify;
pub mod vm;

pub use error::EngineError;
pub use executor::{execute_block, ExecuteOptions};
pub use types::{Engine, ExecutionMode, ModeRequest};
