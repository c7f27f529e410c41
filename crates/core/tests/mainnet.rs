//! Every mainnet fixture block, sequentially and in parallel at 1–16 threads: identical
//! receipts and state diffs, and gas used, logs bloom and receipts root equal to the header's.

mod common;

use parallel_evm_core::verify::verify_header;
use parallel_evm_testkit::fixture::Fixture;

#[test]
fn mainnet_fixtures_match_headers_in_every_mode() {
    let Some(dir) = common::mainnet_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet not found; mainnet conformance not checked");
        return;
    };
    let dirs = common::fixture_dirs(&dir);
    assert!(!dirs.is_empty(), "no fixture blocks in {}", dir.display());
    let mut byzantium_roots = 0;
    for d in &dirs {
        let fx = Fixture::load(d, None).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let name = format!("block {}", fx.block.number);
        let result = common::check_all_modes(&name, &fx.block, &fx.state, &fx.chain).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = verify_header(&fx.block, &fx.chain, &result);
        assert!(v.gas_used, "{name}: gas used {} != header {}", result.gas_used, fx.block.gas_used);
        assert!(v.logs_bloom, "{name}: logs bloom differs from the header");
        assert_ne!(v.receipts_root, Some(false), "{name}: receipts root differs from the header");
        if v.receipts_root == Some(true) {
            byzantium_roots += 1;
        }
    }
    println!("{} mainnet blocks verified ({} receipts roots) in every mode", dirs.len(), byzantium_roots);
}

/// Blocks with long same-sender chains, repeated at high thread counts (this found a stale
/// read once: revm keeping a database error in its context across transactions).
#[test]
fn contended_mainnet_blocks_are_stable_across_repeated_runs() {
    let Some(dir) = common::mainnet_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet not found");
        return;
    };
    for number in ["2179522", "12520364", "5526571"] {
        let fx = Fixture::load(&dir.join(number), None).unwrap();
        let reference = common::run(&fx.block, &fx.state, &fx.chain, parallel_evm_core::ModeRequest::Sequential, 1).unwrap();
        for round in 0..20 {
            let threads = [2, 4, 8, 16][round % 4];
            let r = common::run(&fx.block, &fx.state, &fx.chain, parallel_evm_core::ModeRequest::Parallel, threads)
                .unwrap_or_else(|e| panic!("block {number} round {round}: {e}"));
            assert!(r.same_outcome(&reference), "block {number} round {round} ({threads} threads) differs");
        }
    }
}
