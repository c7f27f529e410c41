//! The check report and the cross-check on real blocks: mainnet fixtures pass, an altered header
//! fails the field altered, a result from an altered pre-state is located by the cross-check.

mod common;

use alloy_primitives::{B256, U256};
use parallel_evm_core::{
    verify::crosscheck::first_mismatch,
    verify::{check_report, CheckStatus},
    ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;

const BLOCKS: [&str; 4] = ["46147", "4370000", "12459406", "19933612"];

fn statuses(checks: &[parallel_evm_core::verify::Check]) -> Vec<(&str, CheckStatus)> {
    checks.iter().map(|c| (c.name.as_str(), c.status)).collect()
}

#[test]
fn fixture_blocks_pass_and_parallel_matches_sequential() {
    let Some(dir) = common::mainnet_dir() else {
        eprintln!("skipped: ../shared/fixtures/mainnet not found");
        return;
    };
    for n in BLOCKS {
        let fx = Fixture::load(&dir.join(n), None).unwrap();
        let seq = common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Sequential, 1).unwrap();
        let par = common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Parallel, 2).unwrap();
        assert_eq!(first_mismatch(&seq, &par), None, "block {n}");
        let checks = check_report(&fx.block, &fx.chain, &par, None).unwrap();
        let receipts = if n == "46147" { CheckStatus::NotApplicable } else { CheckStatus::Passed };
        assert_eq!(
            statuses(&checks),
            [
                ("gasUsed", CheckStatus::Passed),
                ("receiptsRoot", receipts),
                ("logsBloom", CheckStatus::Passed),
                ("requestsHash", CheckStatus::NotApplicable),
                ("stateRoot", CheckStatus::NotApplicable),
            ],
            "block {n}"
        );
    }
}

#[test]
fn altered_header_and_altered_state_are_named() {
    let Some(dir) = common::mainnet_dir() else {
        eprintln!("skipped: ../shared/fixtures/mainnet not found");
        return;
    };
    let mut fx = Fixture::load(&dir.join("12459406"), None).unwrap();
    let good = common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Sequential, 1).unwrap();

    fx.block.receipts_root = B256::repeat_byte(0x33);
    let checks = check_report(&fx.block, &fx.chain, &good, None).unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| c.status == CheckStatus::Failed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "receiptsRoot");
    assert_eq!(failed[0].expected.as_deref(), Some(B256::repeat_byte(0x33).to_string().as_str()));

    // One more wei for the first sender: the receipts stay, the diff differs at its balance.
    let sender = fx.block.txs[0].env.caller;
    fx.state.accounts.get_mut(&sender).unwrap().basic.balance += U256::from(1);
    let skewed = common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Parallel, 2).unwrap();
    let m = first_mismatch(&good, &skewed).expect("a mismatch");
    assert_eq!(m.tx_index, None);
    assert_eq!(m.location, format!("stateDiff[{sender}].balance"));
}
