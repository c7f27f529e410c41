//! The Ethereum consensus test vectors (../shared/fixtures/ethereum-tests: Cancun
//! GeneralStateTests and BlockchainTests) through the engine: sequential and forced parallel at 2
//! threads here, the other thread counts, auto mode, the group engine and contended state tests in
//! the ignored tests
//! (`cargo test --release -p parallel-evm-core --test ethtests -- --ignored`). Tests on the skip
//! list (ethtests-skip.txt) are left out, each with its reason.

use parallel_evm_core::conformance::{mode_matrix, run, Mode, Options, Report, SkipList};
use std::path::PathBuf;
use std::time::Instant;

/// `../shared/fixtures/ethereum-tests` from the repository root, if present.
fn vectors_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("PARALLEL_EVM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"))
        .join("fixtures/ethereum-tests");
    dir.is_dir().then_some(dir)
}

fn skip_list() -> SkipList {
    SkipList::parse(include_str!("ethtests-skip.txt")).expect("the skip list parses")
}

/// Runs the whole folder in `modes` at `threads`; prints the summaries, failures and skips, and
/// asserts that nothing failed and that skips stay under 0.5% of the cases.
fn run_modes(modes: &[Mode], threads: &[usize]) {
    let Some(dir) = vectors_dir() else {
        println!("SKIPPED: ../shared/fixtures/ethereum-tests not found; consensus vectors not run");
        return;
    };
    let skip = skip_list();
    let options = Options { modes: mode_matrix(modes, threads), skip: skip.clone() };
    let started = Instant::now();
    let report: Report = run(&[dir], &options, |_, _, _| {}).expect("the vectors folder reads");
    println!("{} modes in {:.1} s", options.modes.len(), started.elapsed().as_secs_f64());
    for s in &report.summaries {
        println!("{}", serde_json::to_string(s).unwrap());
    }
    for s in &report.skipped {
        println!("SKIP {} :: {} ({})", s.file, s.test, s.reason);
    }
    for f in report.failures.iter().take(50) {
        println!("{f}");
    }
    assert!(report.passed(), "{} failure(s), first: {}", report.failures.len(), report.failures[0]);
    for s in &report.summaries {
        let total = s.passed + s.failed + s.skipped + s.fell_back;
        assert!(s.passed > 0, "{s:?}: nothing ran");
        assert!(s.skipped * 200 < total, "{s:?}: skips reach 0.5% of the cases");
    }
    // An entry that matches nothing is stale: the list must say what it leaves out.
    assert!(report.skipped.len() >= skip.len(), "a skip-list entry matched no test");
}

#[test]
fn ethtests_sequential_and_parallel_2_threads() {
    run_modes(&[Mode::Sequential, Mode::Parallel], &[2]);
}

#[test]
#[ignore = "the other thread counts: cargo test --release -p parallel-evm-core --test ethtests -- --ignored"]
fn ethtests_parallel_1_4_8_threads() {
    run_modes(&[Mode::Parallel], &[1, 4, 8]);
}

#[test]
#[ignore = "auto mode, the group engine and contended state tests: cargo test --release -p parallel-evm-core --test ethtests -- --ignored"]
fn ethtests_auto_group_engine_and_contended() {
    run_modes(&[Mode::Auto, Mode::Groups, Mode::Contended], &[2, 4, 8]);
}

/// Forced parallel and contended runs with the scheduler disturbed at random (yields, spins,
/// sleeps, transactions started ahead of block order): the interleavings that make transactions
/// read what a lower one has not written yet, fail validation and take the lazy paths.
/// `cargo test --release -p parallel-evm-core --features chaos --test ethtests -- --ignored chaos`
#[cfg(feature = "chaos")]
#[test]
#[ignore = "needs --features chaos; see the comment"]
fn ethtests_parallel_and_contended_under_chaos() {
    parallel_evm_core::engine::chaos::enable(64, 0x5eed);
    run_modes(&[Mode::Parallel, Mode::Contended], &[2, 4]);
    assert!(parallel_evm_core::engine::chaos::disturbances() > 0, "chaos disturbed nothing");
}
