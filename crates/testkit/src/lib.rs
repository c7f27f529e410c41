//! Test support for parallel-evm, kept out of the engine's public API: the differential fuzzer,
//! the block generator (standard workloads and contended blocks) and fixture loading. Used by
//! the core crate's tests and examples and by the benchmarks.

pub mod fixture;
pub mod fuzz;
pub mod generate;
