//! Checks of a result: the header's commitments (bloom, receipts root, gas, requests), the
//! post-state root, and the field-by-field comparison of two results of one block.

pub mod bloom;
pub mod crosscheck;
mod header;
pub mod state_root;
pub mod witness_root;

pub use header::*;
