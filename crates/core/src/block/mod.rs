//! The block layer: what a block is (input), which rules apply to it (chain and forks), and the
//! execution-layer requests it yields. It knows nothing of how transactions are executed.

pub mod chain;
mod input;
pub mod integrity;
pub mod requests;

pub use chain::ChainSpec;
pub use input::*;
