//! Learned costs (`engine::costs`): expensive entry points are remembered, updated, and skipped
//! for a while after an early start aborted. In a test binary of its own: the table is global.

use parallel_evm_core::engine::costs::*;
use parallel_evm_testkit::generate::token_transfers;

// One test: the table is global, and tests run concurrently (this block's seed is its own,
// so no other test's runs touch its entry point).
#[test]
fn expensive_entry_points_are_remembered_updated_and_skipped_after_an_abort() {
    let block = token_transfers(0xC057, 20, 0).block;
    let m = |tx, us, early_aborted| Measured { tx, us, early_aborted };
    // A whole second: expensive whatever share of the block the learned rate asks for.
    let slow = 1_000_000;
    // Cheap executions teach nothing; an expensive one marks its entry point (here one
    // token's `transfer`, which every transaction calls). Its first call after transaction
    // 0 starts early, and only that one.
    forget();
    learn(&block, &[m(3, EXPENSIVE_US - 1, false)], &[]);
    assert!(expensive(&block).is_empty());
    learn(&block, &[m(3, slow, false)], &[]);
    assert_eq!(expensive(&block), vec![1]);
    // A cheap run of a transaction expected to be expensive updates it.
    learn(&block, &[m(1, 10, false)], &[1]);
    assert!(expensive(&block).is_empty());
    // An aborted early start keeps the entry point in block order for a few blocks, and
    // keeps its cost.
    learn(&block, &[m(1, slow, false)], &[]);
    learn(&block, &[m(1, 0, true)], &[1]);
    for _ in 0..SKIP_AFTER_ABORT {
        assert!(expensive(&block).is_empty());
    }
    assert_eq!(expensive(&block), vec![1]);
    // A second abort in a row: twice as long.
    learn(&block, &[m(1, 0, true)], &[1]);
    for _ in 0..2 * SKIP_AFTER_ABORT {
        assert!(expensive(&block).is_empty());
    }
    assert_eq!(expensive(&block), vec![1]);
    set_enabled(false);
    assert!(expensive(&block).is_empty(), "switched off");
    set_enabled(true);
    forget();
    assert!(expensive(&block).is_empty());
}
