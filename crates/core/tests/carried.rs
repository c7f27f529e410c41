//! The state a range replay carries from block to block: runs on it equal runs on the full state,
//! it advances by each block's diff (a second block reads the first one's writes without
//! fetching), a fetched value that differs from a carried one is a mismatch naming the key, and
//! over its byte budget the least recently used keys leave first.

use alloy_primitives::{Address, B256, U256};
use parallel_evm_core::{
    engine::carried::execute_carried,
    engine::hybrid::{execute_block, ExecuteOptions},
    engine::partial::PartialOutcome,
    state::carried::CarriedState,
    state::partial::Knowledge,
    state::storage::InMemoryStorage,
    BlockInput, BlockResult, EngineError,
};
use parallel_evm_testkit::generate::{token_transfers, Generated};
use std::collections::HashMap;

/// Runs `block` on `carried`, answering its missing keys from `full` (absent accounts and zero
/// slots included) as a node would, until it completes; returns the result and the rounds taken.
fn run(carried: &mut CarriedState, block: &BlockInput, full: &InMemoryStorage, options: &ExecuteOptions) -> (BlockResult, usize) {
    for round in 1..200 {
        match execute_carried(block, carried, options).unwrap() {
            PartialOutcome::Complete(result) => return (result, round),
            PartialOutcome::Missing(keys) => {
                let mut fetched = InMemoryStorage::default();
                let mut knowledge = Knowledge::default();
                for a in keys.accounts.iter().chain(keys.storage.keys()) {
                    match full.accounts.get(a) {
                        Some(acc) => {
                            let mut acc = acc.clone();
                            acc.storage.retain(|slot, _| keys.storage.get(a).is_some_and(|s| s.contains(&B256::from(*slot))));
                            for slot in keys.storage.get(a).into_iter().flatten() {
                                acc.storage.entry(U256::from_be_bytes(slot.0)).or_insert(U256::ZERO);
                            }
                            fetched.accounts.insert(*a, acc);
                        }
                        None => knowledge.absent.push(*a),
                    }
                }
                for n in &keys.block_hashes {
                    fetched.block_hashes.insert(*n, B256::with_last_byte(*n as u8));
                }
                carried.merge(&fetched, &knowledge).unwrap().unwrap();
            }
        }
    }
    panic!("did not complete");
}

fn options(g: &Generated) -> ExecuteOptions {
    ExecuteOptions { chain: g.chain.clone(), threads: 2, ..Default::default() }
}

#[test]
fn carried_runs_equal_full_state_runs_and_advance_by_the_diff() {
    let g = token_transfers(7, 60, 4);
    let options = options(&g);
    let expected = execute_block(&g.block, &g.state, &options).unwrap();
    let mut carried = CarriedState::default();
    let (result, rounds) = run(&mut carried, &g.block, &g.state, &options);
    assert!(rounds >= 2, "an empty carried state misses keys first");
    assert!(result.same_outcome(&expected));
    carried.apply(g.block.number, g.block.hash, &result.state_diff);
    let stats = carried.stats();
    assert_eq!(stats.blocks, 1);
    assert!(stats.fetched_keys > 0 && stats.accounts > 0 && stats.bytes > 0);

    // The carried values are the post-state: every changed balance, nonce and slot.
    for (address, d) in result.state_diff.iter() {
        let basic = carried.basic(address).unwrap().unwrap();
        assert_eq!((basic.balance, basic.nonce), (d.balance, d.nonce));
        for (slot, value) in &d.storage {
            assert_eq!(carried.slot(address, U256::from_be_bytes(slot.0)), Some(U256::from_be_bytes(value.0)));
        }
    }
    // The same block cannot run twice on it.
    assert!(matches!(execute_carried(&g.block, &carried, &options), Err(EngineError::InvalidInput(m)) if m.contains("after block")));

    // The pre-state fetched again differs from the carried post-state: a mismatch naming the key.
    let mismatch = carried.merge(&g.state, &Knowledge::default()).unwrap().unwrap_err();
    assert!(["balance", "nonce", "storage"].contains(&mismatch.field), "{mismatch}");
    assert!(result.state_diff.contains_key(&mismatch.address));
    assert!(mismatch.to_string().contains(&mismatch.address.to_string()));
}

#[test]
fn a_second_block_reads_the_first_ones_writes_without_fetching() {
    let g = token_transfers(3, 40, 4);
    let options = options(&g);
    let mut carried = CarriedState::default();
    let (first, _) = run(&mut carried, &g.block, &g.state, &options);
    carried.apply(g.block.number, g.block.hash, &first.state_diff);
    // The full post-state, for the reference run of the second block.
    let mut post = g.state.clone();
    for (address, d) in first.state_diff.iter() {
        let acc = post.accounts.entry(*address).or_default();
        acc.basic.balance = d.balance;
        acc.basic.nonce = d.nonce;
        for (slot, value) in &d.storage {
            acc.storage.insert(U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0));
        }
    }
    // The same transactions again as the next block, with the senders' next nonces.
    let mut next = g.block.clone();
    next.number += 1;
    let mut sent: HashMap<Address, u64> = HashMap::new();
    for tx in &g.block.txs {
        *sent.entry(tx.env.caller).or_default() += 1;
    }
    for tx in &mut next.txs {
        tx.env.nonce += sent[&tx.env.caller];
    }
    let expected = execute_block(&next, &post, &options).unwrap();
    let (second, rounds) = run(&mut carried, &next, &post, &options);
    assert_eq!(rounds, 1, "everything the block reads was carried");
    assert!(second.same_outcome(&expected));
    carried.apply(next.number, next.hash, &second.state_diff);
    let stats = carried.stats();
    assert_eq!(stats.fetched_keys, 0);
    assert!(stats.carried_keys > 0);
}

#[test]
fn over_budget_the_first_blocks_keys_leave_and_are_fetched_again() {
    let a = token_transfers(5, 50, 2);
    let mut b = token_transfers(6, 50, 2);
    b.block.number += 1;
    let options = options(&a);
    let one_block = {
        let mut carried = CarriedState::default();
        let (result, _) = run(&mut carried, &a.block, &a.state, &options);
        carried.apply(a.block.number, a.block.hash, &result.state_diff);
        carried.stats().bytes as usize
    };
    // Room for one block's keys and a half: the second block pushes the first one's out.
    let mut carried = CarriedState::new(one_block * 3 / 2);
    let (result, _) = run(&mut carried, &a.block, &a.state, &options);
    carried.apply(a.block.number, a.block.hash, &result.state_diff);
    assert_eq!(carried.stats().evicted_accounts, 0);
    let (result, _) = run(&mut carried, &b.block, &b.state, &options);
    carried.apply(b.block.number, b.block.hash, &result.state_diff);
    let stats = carried.stats();
    assert!(stats.bytes as usize <= one_block * 3 / 2 / 4 * 3, "down to three quarters of the budget: {stats:?}");
    assert!(stats.evicted_accounts > 0 && stats.evicted_slots > 0);
    assert!(!carried.has_account(&a.block.txs[0].env.caller), "the first block's keys left first");
    assert!(carried.has_account(&b.block.txs[0].env.caller), "the last block's stayed");
    // What left is missing again: the first block's token is fetched when read.
    let token = *a.block.txs[0].env.kind.to().unwrap();
    assert!(!carried.has_account(&token));
}

/// `block`'s transactions again as the next block (senders' next nonces).
fn next_block(block: &BlockInput) -> BlockInput {
    let mut next = block.clone();
    next.number += 1;
    next.parent_hash = block.hash.unwrap_or_default();
    next.hash = Some(B256::with_last_byte(next.number as u8));
    let mut sent: HashMap<Address, u64> = HashMap::new();
    for tx in &block.txs {
        *sent.entry(tx.env.caller).or_default() += 1;
    }
    for tx in &mut next.txs {
        tx.env.nonce += sent[&tx.env.caller];
    }
    next
}

/// The full state after `diff`.
fn advanced(state: &InMemoryStorage, diff: &parallel_evm_core::StateDiff) -> InMemoryStorage {
    let mut post = state.clone();
    for (address, d) in diff.iter() {
        let acc = post.accounts.entry(*address).or_default();
        acc.basic.balance = d.balance;
        acc.basic.nonce = d.nonce;
        for (slot, value) in &d.storage {
            acc.storage.insert(U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0));
        }
    }
    post
}

#[test]
fn a_run_executes_consecutive_blocks_back_to_back_and_stops_at_the_first_that_does_not_complete() {
    use parallel_evm_core::engine::carried::{execute_carried_run, FetchedJson, RunStep, RunStop};
    use std::sync::RwLock;
    let g = token_transfers(5, 40, 4);
    let options = options(&g);
    let mut first = g.block.clone();
    first.hash = Some(B256::with_last_byte(first.number as u8));
    let second = next_block(&first);
    let third = next_block(&second);
    // References: each block on the full state after the one before.
    let r1 = execute_block(&first, &g.state, &options).unwrap();
    let s2 = advanced(&g.state, &r1.state_diff);
    let r2 = execute_block(&second, &s2, &options).unwrap();
    let r3 = execute_block(&third, &advanced(&s2, &r2.state_diff), &options).unwrap();

    // The state learns what the first block reads (rounds, not applied), then all three run in one call.
    let mut carried = CarriedState::default();
    run(&mut carried, &first, &g.state, &options);
    let state = RwLock::new(carried);
    let steps: Vec<RunStep> = [&first, &second, &third].into_iter().map(|block| RunStep { block, fetched: None }).collect();
    let out = execute_carried_run(&steps, &state, |i, s| execute_block(steps[i].block, s, &options).map(|r| (r, ())));
    assert!(out.stop.is_none(), "every key the later blocks read was carried");
    assert_eq!(out.completed.len(), 3);
    for (done, expected) in out.completed.iter().zip([&r1, &r2, &r3]) {
        assert!(done.result.same_outcome(expected));
    }
    assert_eq!(out.completed.iter().map(|c| c.stats.blocks).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(out.completed[2].stats.fetched_keys, 0);

    // On an empty state: the first block misses keys, nothing completes, nothing advances.
    let empty = RwLock::new(CarriedState::default());
    let out = execute_carried_run(&steps, &empty, |i, s| execute_block(steps[i].block, s, &options).map(|r| (r, ())));
    assert!(out.completed.is_empty());
    assert!(matches!(out.stop, Some((RunStop::Missing(ref keys), _)) if !keys.is_empty()));
    assert_eq!(empty.read().unwrap().stats().blocks, 0);

    // A block out of order fails where it stands; the blocks before it stand.
    let mut carried = CarriedState::default();
    run(&mut carried, &first, &g.state, &options);
    let state = RwLock::new(carried);
    let steps: Vec<RunStep> = [&first, &third].into_iter().map(|block| RunStep { block, fetched: None }).collect();
    let out = execute_carried_run(&steps, &state, |i, s| execute_block(steps[i].block, s, &options).map(|r| (r, ())));
    assert_eq!(out.completed.len(), 1);
    assert!(matches!(out.stop, Some((RunStop::Failed(EngineError::InvalidInput(ref m)), _)) if m.contains("cannot run")));
    assert_eq!(state.read().unwrap().stats().blocks, 1);

    // Keys fetched for the next block that contradict the carried state: a mismatch, not merged.
    let sender = second.txs[0].env.caller;
    let prestate = format!(r#"{{"{sender}":{{"balance":"0x1","nonce":"0x0"}}}}"#);
    let knowledge = br#"{"absent":[],"completeStorage":[]}"#;
    let steps = [RunStep { block: &second, fetched: Some(FetchedJson { prestate: prestate.as_bytes(), block_hashes: None, knowledge }) }];
    let out = execute_carried_run(&steps, &state, |_, s| execute_block(&second, s, &options).map(|r| (r, ())));
    assert!(out.completed.is_empty());
    assert!(matches!(out.stop, Some((RunStop::Mismatch(ref m), _)) if m.address == sender && m.field == "balance"));

    // A panic in a block stops the run there as an internal error.
    let steps = [RunStep { block: &second, fetched: None }];
    let out = execute_carried_run(&steps, &state, |_, _| -> Result<(BlockResult, ()), EngineError> { panic!("boom") });
    assert!(matches!(out.stop, Some((RunStop::Failed(EngineError::Internal(ref m)), _)) if m.contains("boom")));
}
