//! The block layer: what a block is (input), which rules apply to it (chain and forks), and the
//! execution-layer requests it yields. It knows nothing of how transactions are executed.

pub mod chain;
mod input;
pub mod integrity;
pub mod requests;

pub use chain::ChainSpec;
/// Small blocks for the engine's unit tests.
#[cfg(test)]
pub(crate) use input::tests as test_blocks;
pub use input::*;
