//! Prague and Osaka mainnet blocks from their execution witnesses (`fixtures/mainnet-witness`):
//! executed on the witness alone in every mode and thread count, identical to execution on the
//! `prestateTracer` pre-state, every header check passing, and the post-state root computed
//! from the witness equal to the header's. Then tampering: a transaction, a witness node, a
//! value of the diff, each caught and named.

mod common;

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_rlp::Decodable;
use alloy_trie::nodes::TrieNode;
use parallel_evm_core::{
    block::BlockInput,
    state::witness::{ExecutionWitness, WitnessError, WitnessState},
    verify::{check_report_witness, witness_root::post_state_root, Check, CheckStatus},
    EngineError, ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;
use std::{path::PathBuf, time::Instant};

fn witness_dir() -> Option<PathBuf> {
    let dir = common::mainnet_dir()?.join("../mainnet-witness");
    dir.is_dir().then_some(dir)
}

fn status<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

#[test]
fn witness_blocks_verify_in_every_mode_with_the_post_state_root() {
    let Some(dir) = witness_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet-witness not found; witness blocks not checked");
        return;
    };
    let dirs = common::fixture_dirs(&dir);
    assert_eq!(dirs.len(), 6, "the six witness blocks of the README");
    for d in &dirs {
        let fx = Fixture::load(d, None).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let name = format!("block {}", fx.block.number);
        let witness = fx.witness.as_ref().expect("a witness.json");
        let block = BlockInput::from_json_checked(&std::fs::read(d.join("block.json")).unwrap(), &fx.chain, false).unwrap();
        // On the witness alone, every mode and thread count agree.
        let result = common::check_all_modes(&name, &block, witness, &fx.chain).unwrap_or_else(|e| panic!("{name}: {e}"));
        // And agree with the run on the prestateTracer pre-state.
        let on_prestate = common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Sequential, 1).unwrap();
        assert_eq!(result.receipts, on_prestate.receipts, "{name}: receipts on the witness and on the prestate");
        // Except for the code hash of accounts whose code neither the prestate nor the witness
        // holds (withdrawal recipients, see the README): the prestate says no code, the witness
        // knows the hash from the account leaf.
        let mut prestate_diff = on_prestate.state_diff.clone();
        let addresses: Vec<Address> = prestate_diff.keys().copied().collect();
        for address in &addresses {
            let d = prestate_diff.get_mut(address).unwrap();
            let Some(ours) = result.state_diff.get(address) else {
                continue;
            };
            if ours.code_hash != d.code_hash {
                assert!(fx.state.accounts[address].code.is_none(), "{name}: {address} code hash");
                assert!(matches!(witness.code(address), Err(WitnessError::MissingCode { .. })), "{name}: {address}");
                d.code_hash = ours.code_hash;
            }
        }
        assert_eq!(result.state_diff, prestate_diff, "{name}: diff on the witness and on the prestate");
        let checks = check_report_witness(&block, &fx.chain, &result, witness).unwrap();
        for c in &checks {
            assert_ne!(c.status, CheckStatus::Failed, "{name}: {c:?}");
        }
        for required in [
            "gasUsed",
            "receiptsRoot",
            "logsBloom",
            "requestsHash",
            "stateRoot",
            "transactionsRoot",
            "withdrawalsRoot",
            "blockHash",
            "signatures",
        ] {
            assert_eq!(status(&checks, required).status, CheckStatus::Passed, "{name}: {required}");
        }
        // The parallel result gives the same root (its diff is asserted equal; this is the root
        // `verify` reports for it).
        let parallel = common::run(&block, witness, &fx.chain, ModeRequest::Parallel, 4).unwrap();
        assert_eq!(post_state_root(witness, &parallel.state_diff).unwrap(), block.state_root, "{name}: parallel");
        println!("{name}: {} txs, stateRoot {} from the witness ({:?} root)", block.txs.len(), block.state_root, witness.root_source);
    }
}

/// The post-state root against the block's parallel execution time, on the largest block.
#[test]
fn post_state_root_costs_little_beside_execution() {
    let Some(dir) = witness_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet-witness not found");
        return;
    };
    let fx = Fixture::load(&dir.join("24628608"), None).unwrap();
    let witness = fx.witness.as_ref().unwrap();
    let (mut exec, mut root, mut on_prestate) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        common::run(&fx.block, &fx.state, &fx.chain, ModeRequest::Parallel, 2).unwrap();
        on_prestate.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r = common::run(&fx.block, witness, &fx.chain, ModeRequest::Parallel, 2).unwrap();
        exec.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        assert_eq!(post_state_root(witness, &r.state_diff).unwrap(), fx.block.state_root);
        root.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (e, r, p) = (median(&mut exec), median(&mut root), median(&mut on_prestate));
    println!(
        "block 24628608: parallel execution (2 threads) {e:.2} ms on the witness, {p:.2} ms on the prestate; post-state root {r:.2} ms ({:.0}% of the execution on the witness)",
        r / e * 100.0
    );
}

fn tampered_block(dir: &std::path::Path, change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut block: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("block.json")).unwrap()).unwrap();
    change(&mut block["transactions"][0]);
    serde_json::to_vec(&block).unwrap()
}

#[test]
fn a_tampered_transaction_fails_the_transactions_root_and_its_signature() {
    let Some(dir) = witness_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet-witness not found");
        return;
    };
    let d = dir.join("24628607");
    let fx = Fixture::load(&d, None).unwrap();
    let zeroed_r = tampered_block(&d, |tx| tx["r"] = "0x0".into());
    let value = tampered_block(&d, |tx| {
        let v: U256 = tx["value"].as_str().unwrap().parse().unwrap();
        tx["value"] = format!("{:#x}", v + U256::from(1)).into();
    });
    for (what, bytes) in [("zeroed r", zeroed_r), ("changed value", value)] {
        let block = match BlockInput::from_json_checked(&bytes, &fx.chain, false) {
            Ok(b) => b,
            Err(e) => panic!("{what}: the block should parse and fail its checks, got {e}"),
        };
        let checks = parallel_evm_core::verify::integrity_checks(block.integrity.as_ref().unwrap());
        let checks = &checks;
        assert_eq!(status(checks, "transactionsRoot").status, CheckStatus::Failed, "{what}");
        let sig = status(checks, "signatures");
        assert_eq!(sig.status, CheckStatus::Failed, "{what}");
        assert_eq!(sig.tx_index, Some(0), "{what}");
        // The opt-in rejection names the transaction too.
        let err = BlockInput::from_json_checked(&bytes, &fx.chain, true).unwrap_err();
        assert!(matches!(err, EngineError::InvalidTransaction { index: 0, .. }), "{what}: {err}");
    }
}

/// The witness node on the path of `address`'s account, `depth` nodes below the root.
fn node_on_path(witness: &ExecutionWitness, root: B256, address: Address, depth: usize) -> usize {
    let index_of = |hash: B256| witness.state.iter().position(|n| keccak256(n) == hash).expect("node in the witness");
    let path = keccak256(address);
    let mut hash = root;
    for nibble in 0..depth {
        let node = TrieNode::decode(&mut &witness.state[index_of(hash)][..]).unwrap();
        let TrieNode::Branch(branch) = node else { panic!("a branch near the root") };
        let n = (path[nibble / 2] >> (if nibble % 2 == 0 { 4 } else { 0 })) & 0xf;
        let below = branch.state_mask.get() & ((1u16 << n) - 1);
        hash = branch.stack[below.count_ones() as usize].as_hash().unwrap();
    }
    index_of(hash)
}

#[test]
fn a_tampered_witness_is_a_typed_error_naming_the_node() {
    let Some(dir) = witness_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet-witness not found");
        return;
    };
    let d = dir.join("24628607");
    let fx = Fixture::load(&d, None).unwrap();
    let good = ExecutionWitness::from_json(&std::fs::read(d.join("witness.json")).unwrap()).unwrap();
    let root = fx.witness.as_ref().unwrap().state_root;
    let sender = fx.block.txs[0].env.caller;
    let run = |w: &ExecutionWitness| -> Result<(), EngineError> {
        let state = WitnessState::new(w, Some(fx.block.parent_hash), None)?;
        common::run(&fx.block, &state, &fx.chain, ModeRequest::Parallel, 2).map(|_| ())
    };
    // The root node changed or removed: the witness is not of this state.
    let at_root = node_on_path(&good, root, sender, 0);
    let mut changed = good.clone();
    let mut bytes = changed.state[at_root].to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    changed.state[at_root] = bytes.into();
    assert!(matches!(WitnessState::new(&changed, Some(fx.block.parent_hash), None), Err(WitnessError::MissingStateRoot(r)) if r == root));
    // A node two levels down on the first sender's path, one byte changed, then removed:
    // reading the sender fails, naming the node.
    let deeper = node_on_path(&good, root, sender, 2);
    let hash = keccak256(&good.state[deeper]);
    let mut changed = good.clone();
    let mut bytes = changed.state[deeper].to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    changed.state[deeper] = bytes.into();
    let mut removed = good.clone();
    removed.state.remove(deeper);
    for (what, w) in [("changed", changed), ("removed", removed)] {
        let err = run(&w).unwrap_err();
        let message = err.to_string();
        assert_eq!(err.code(), "STATE_ERROR", "{what}: {message}");
        assert!(message.contains(&hash.to_string()) && message.contains("not in the witness"), "{what}: {message}");
    }
}

#[test]
fn a_tampered_diff_fails_the_state_root() {
    let Some(dir) = witness_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet-witness not found");
        return;
    };
    let fx = Fixture::load(&dir.join("24628608"), None).unwrap();
    let witness = fx.witness.as_ref().unwrap();
    let mut result = common::run(&fx.block, witness, &fx.chain, ModeRequest::Parallel, 2).unwrap();
    let (address, slot) = result
        .state_diff
        .iter()
        .find_map(|(a, d)| d.storage.iter().find(|(_, v)| !v.is_zero()).map(|(s, _)| (*a, *s)))
        .expect("a written slot");
    let value = result.state_diff.get_mut(&address).unwrap().storage.get_mut(&slot).unwrap();
    *value = B256::from(U256::from_be_bytes(value.0) + U256::from(1));
    let checks = check_report_witness(&fx.block, &fx.chain, &result, witness).unwrap();
    let root = status(&checks, "stateRoot");
    assert_eq!(root.status, CheckStatus::Failed, "{root:?}");
    assert_eq!(root.expected.as_deref(), Some(fx.block.state_root.to_string().as_str()));
}
