//! Partial pre-state: an execution reports the keys it missed; fetching them from the full state
//! and running again converges to the full state's exact result.

use alloy_primitives::U256;
use parallel_evm_core::{
    engine::hybrid::{execute_block, ExecuteOptions},
    engine::partial::{execute_partial, PartialOutcome},
    state::partial::{MissingKeys, PartialStorage},
    state::storage::{InMemoryStorage, Storage},
    state::value::Loc,
    state::value::Value,
    ModeRequest,
};
use parallel_evm_testkit::generate;
use revm::primitives::hardfork::SpecId;

/// Copies the missing keys from `full` into `partial`, as an RPC adapter would from a node.
fn fetch(full: &InMemoryStorage, partial: &mut PartialStorage, missing: &MissingKeys) {
    for a in &missing.accounts {
        match full.accounts.get(a) {
            Some(acc) => {
                let entry = partial.state.accounts.entry(*a).or_default();
                entry.basic = acc.basic;
                entry.code = acc.code.clone();
            }
            None => {
                partial.absent.insert(*a);
            }
        }
    }
    for (a, slots) in &missing.storage {
        for slot in slots {
            let slot = U256::from_be_bytes(slot.0);
            let Value::Storage(v) = full.read(&Loc::Storage(*a, slot)).unwrap() else { unreachable!() };
            if full.accounts.contains_key(a) {
                partial.state.insert_storage(*a, slot, v);
            } else {
                partial.absent.insert(*a);
            }
        }
    }
}

#[test]
fn rounds_converge_to_the_full_result() {
    for (mode, threads) in [(ModeRequest::Sequential, 1), (ModeRequest::Parallel, 4)] {
        let g = generate::mixed(7, 300, SpecId::CANCUN);
        let options = ExecuteOptions { chain: g.chain.clone(), mode, threads, receipts_root: true };
        let reference = execute_block(&g.block, &g.state, &options).unwrap();
        let mut partial = PartialStorage::default();
        let mut rounds = 0;
        let result = loop {
            rounds += 1;
            assert!(rounds <= 10, "no convergence after 10 rounds");
            match execute_partial(&g.block, &partial, &options).unwrap() {
                PartialOutcome::Complete(r) => break r,
                PartialOutcome::Missing(missing) => {
                    assert!(!missing.is_empty());
                    fetch(&g.state, &mut partial, &missing);
                }
            }
        };
        assert!(rounds >= 2, "the first round starts from nothing and must miss keys");
        assert_eq!(result.receipts, reference.receipts);
        assert_eq!(result.state_diff, reference.state_diff);
        assert_eq!(result.receipts_root, reference.receipts_root);
    }
}

#[test]
fn missing_block_hash_is_reported_not_fatal() {
    // BLOCKHASH(number - 2) through a contract: PUSH1 2, NUMBER, SUB, BLOCKHASH, PUSH1 0, SSTORE.
    let mut b = generate::BlockBuilder::new(3, SpecId::CANCUN);
    let code = alloy_primitives::Bytes::from(vec![0x60, 0x02, 0x43, 0x03, 0x40, 0x60, 0x00, 0x55, 0x00]);
    let contract = b.contract(code);
    let from = b.funded(10);
    b.tx(from, alloy_primitives::TxKind::Call(contract), U256::ZERO, Default::default(), 100_000);
    let g = b.build("blockhash");
    let options = ExecuteOptions { chain: g.chain.clone(), ..Default::default() };
    let partial =
        PartialStorage::new(g.state.clone(), parallel_evm_core::state::partial::Knowledge { complete: true, ..Default::default() });
    match execute_partial(&g.block, &partial, &options).unwrap() {
        PartialOutcome::Missing(m) => {
            assert!(m.accounts.is_empty() && m.storage.is_empty());
            assert_eq!(m.block_hashes.iter().copied().collect::<Vec<_>>(), vec![g.block.number - 2]);
        }
        PartialOutcome::Complete(_) => panic!("the block hash was not supplied"),
    }
    let full = PartialStorage::new(
        g.state.clone().with_block_hashes([(g.block.number - 2, alloy_primitives::B256::repeat_byte(9))].into_iter().collect()),
        parallel_evm_core::state::partial::Knowledge { complete: true, ..Default::default() },
    );
    let PartialOutcome::Complete(r) = execute_partial(&g.block, &full, &options).unwrap() else { panic!("still missing") };
    assert!(r.receipts[0].status);
}

#[test]
fn knowledge_json_is_checked() {
    let k =
        PartialStorage::knowledge_from_json(br#"{"absent":["0x0000000000000000000000000000000000000001"],"completeStorage":[]}"#).unwrap();
    assert_eq!(k.absent.len(), 1);
    let e = PartialStorage::knowledge_from_json(br#"{"absent":["0x01"],"unknown":1}"#).unwrap_err();
    assert_eq!(e.code(), "INVALID_INPUT");
}

#[test]
fn keys_only_speculative_executions_read_do_not_hold_a_parallel_result_back() {
    // The first transaction counts down from 65,535 (a millisecond or two), then clears slot 0 of
    // a contract; every later one calls it with data and, while slot 0 is still set, reads slot
    // 1, which the partial state lacks. Sequential execution never reads slot 1; Block-STM's
    // executions that run before the first one finishes do.
    // CALLDATASIZE, PUSH1 23, JUMPI, PUSH2 0xffff, 7: JUMPDEST, PUSH1 1, SWAP1, SUB, DUP1, PUSH1 7,
    // JUMPI, POP, PUSH1 0, PUSH1 0, SSTORE, STOP,
    // 23: JUMPDEST, PUSH1 0, SLOAD, ISZERO, PUSH1 35, JUMPI, PUSH1 1, SLOAD, POP, 35: JUMPDEST, STOP
    let code = vec![
        0x36, 0x60, 0x17, 0x57, 0x61, 0xff, 0xff, 0x5b, 0x60, 0x01, 0x90, 0x03, 0x80, 0x60, 0x07, 0x57, 0x50, 0x60, 0x00, 0x60, 0x00, 0x55,
        0x00, 0x5b, 0x60, 0x00, 0x54, 0x15, 0x60, 0x23, 0x57, 0x60, 0x01, 0x54, 0x50, 0x5b, 0x00,
    ];
    let mut b = generate::BlockBuilder::new(0x5bec, SpecId::CANCUN);
    let contract = b.contract(code.into());
    b.state.insert_storage(contract, U256::ZERO, U256::from(1));
    for i in 0..200 {
        let from = b.funded(10);
        let data = if i == 0 { Vec::new() } else { vec![1] };
        let gas = if i == 0 { 3_000_000 } else { 100_000 };
        b.tx(from, alloy_primitives::TxKind::Call(contract), U256::ZERO, data.into(), gas);
    }
    let g = b.build("speculative reads");
    // Everything but slot 1 is known: the accounts the builder made, and the absent beneficiary.
    let knowledge = parallel_evm_core::state::partial::Knowledge { absent: vec![g.block.beneficiary], ..Default::default() };
    let partial = PartialStorage::new(g.state.clone(), knowledge);
    let sequential = ExecuteOptions { chain: g.chain.clone(), mode: ModeRequest::Sequential, threads: 1, receipts_root: true };
    let reference = match execute_partial(&g.block, &partial, &sequential).unwrap() {
        PartialOutcome::Complete(r) => r,
        PartialOutcome::Missing(m) => panic!("sequential execution reads only what the partial state holds: {m:?}"),
    };
    let parallel = ExecuteOptions { mode: ModeRequest::Parallel, threads: 4, ..sequential.clone() };
    let mut speculative_misses = 0;
    for _ in 0..20 {
        // What the run read through the partial state, as `execute_partial` records it.
        let recorder = parallel_evm_core::state::partial::Recorder::new(&partial);
        execute_block(&g.block, &recorder, &parallel).unwrap();
        if !recorder.into_missing().is_empty() {
            speculative_misses += 1;
        }
        let PartialOutcome::Complete(r) = execute_partial(&g.block, &partial, &parallel).unwrap() else {
            panic!("a key only a speculative execution read held the result back")
        };
        assert_eq!(r.receipts, reference.receipts);
        assert_eq!(r.state_diff, reference.state_diff);
    }
    assert!(speculative_misses > 0, "no parallel run read the missing slot: the test did not test anything");
}
