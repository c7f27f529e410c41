//! libFuzzer target: the input bytes drive the block generator (`fuzz::block_from_bytes`); the
//! block must give the same receipts and state diff (or the same typed error) sequentially and
//! in parallel at 1, 2, 4 and 16 threads. A divergence panics, and libFuzzer keeps the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parallel_evm_testkit::fuzz;

fuzz_target!(|data: &[u8]| {
    let g = fuzz::block_from_bytes(data);
    if let Err(e) = fuzz::check(&g, &[1, 2, 4, 16]) {
        panic!("{e}");
    }
});
