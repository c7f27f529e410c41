//! Fork rules on mainnet's schedule beyond the fixtures: Osaka (Fusaka) opcodes from its
//! activation time, and the blob base fee of the blob-parameter-only forks that followed it.

mod common;

use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use parallel_evm_core::{block::chain::ChainSpec, ModeRequest};
use parallel_evm_testkit::generate::{BlockBuilder, Generated};
use revm::{bytecode::opcode as op, primitives::hardfork::SpecId};

const OSAKA_TIME: u64 = 1_764_798_551;
const BPO1_TIME: u64 = 1_765_290_071;
const BPO2_TIME: u64 = 1_767_747_671;

/// Moves a generated block onto mainnet's schedule at `timestamp` (a post-Merge number).
fn on_mainnet(mut g: Generated, timestamp: u64) -> Generated {
    g.block.number = 23_990_000;
    g.block.timestamp = timestamp;
    g.chain = ChainSpec::mainnet();
    g
}

/// One call to a contract that stores CLZ(1) (255 under EIP-7939) in slot 0.
fn clz_block() -> (Generated, Address) {
    let mut b = BlockBuilder::new(11, SpecId::OSAKA);
    let runtime = Bytes::from(vec![op::PUSH1, 1, op::CLZ, op::PUSH1, 0, op::SSTORE, op::STOP]);
    let contract = b.contract(runtime);
    let from = b.funded(10);
    b.tx(from, TxKind::Call(contract), U256::ZERO, Bytes::new(), 100_000);
    (b.build("clz"), contract)
}

#[test]
fn mainnet_blocks_from_fusaka_on_run_osaka_opcodes() {
    let (g, contract) = clz_block();
    let osaka = on_mainnet(g, OSAKA_TIME);
    let r = common::check_all_modes("osaka", &osaka.block, &osaka.state, &osaka.chain).unwrap();
    assert!(r.receipts[0].status, "CLZ runs from Osaka's activation");
    assert_eq!(r.state_diff[&contract].storage.get(&B256::ZERO), Some(&B256::from(U256::from(255))));

    // One second earlier the block is Prague's, where 0x1e is not an instruction.
    let (g, contract) = clz_block();
    let prague = on_mainnet(g, OSAKA_TIME - 1);
    let r = common::check_all_modes("prague", &prague.block, &prague.state, &prague.chain).unwrap();
    assert!(!r.receipts[0].status);
    assert!(r.state_diff.get(&contract).is_none_or(|d| d.storage.is_empty()));
}

/// What a one-blob transaction's sender pays at `timestamp` with `excess` blob gas: its balance
/// before minus after, less the execution fee.
fn blob_fee_paid(timestamp: u64, excess: u64) -> U256 {
    let mut b = BlockBuilder::new(12, SpecId::OSAKA);
    let from = b.funded(10);
    let to = b.address();
    let tx = b.tx(from, TxKind::Call(to), U256::ZERO, Bytes::new(), 21_000);
    tx.tx_type = 3;
    tx.env.tx_type = 3;
    // A versioned hash: version byte 0x01 (KZG), then anything.
    let mut hash = B256::repeat_byte(7);
    hash.0[0] = 1;
    tx.env.blob_hashes = vec![hash];
    tx.env.max_fee_per_blob_gas = 1_000_000_000_000;
    let gas_price = tx.env.gas_price;
    let mut g = on_mainnet(b.build("blob"), timestamp);
    g.block.excess_blob_gas = Some(excess);
    let basefee = g.block.base_fee.unwrap() as u128;
    let r = common::run(&g.block, &g.state, &g.chain, ModeRequest::Sequential, 1).unwrap();
    assert!(r.receipts[0].status);
    let before = U256::from(10u128.pow(19));
    let tip = g.block.txs[0].env.gas_priority_fee.unwrap_or(0);
    let execution = U256::from(21_000u128 * gas_price.min(basefee + tip));
    before - r.state_diff[&from].balance - execution
}

#[test]
fn the_blob_base_fee_follows_the_blob_parameter_forks() {
    let excess = 60_000_000;
    for (time, params) in [(OSAKA_TIME, BlobParams::osaka()), (BPO1_TIME, BlobParams::bpo1()), (BPO2_TIME, BlobParams::bpo2())] {
        let expected = U256::from(131_072u128 * params.calc_blob_fee(excess));
        assert_eq!(blob_fee_paid(time, excess), expected, "at {time}");
    }
    // The three fractions give three different prices at this excess.
    assert!(BlobParams::osaka().calc_blob_fee(excess) > BlobParams::bpo1().calc_blob_fee(excess));
    assert!(BlobParams::bpo1().calc_blob_fee(excess) > BlobParams::bpo2().calc_blob_fee(excess));
}

const PRAGUE_TIME: u64 = 1_746_612_311;

/// A Prague block on mainnet's schedule with one withdrawal request and one consolidation
/// request; with `contracts`, the two request queues are in the pre-state.
fn requests_block(contracts: bool) -> (Generated, Address) {
    use alloy_eips::{eip7002, eip7251};
    let mut b = BlockBuilder::new(13, SpecId::PRAGUE);
    if contracts {
        b.state.insert_account(
            eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            U256::ZERO,
            1,
            Some(eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_CODE.clone()),
        );
        b.state.insert_account(
            eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
            U256::ZERO,
            1,
            Some(eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_CODE.clone()),
        );
    }
    let from = b.funded(10);
    // A withdrawal: validator public key (48 bytes) and amount in gwei (8); the fee is 1 wei
    // while the queue's excess is 0.
    let withdrawal: Vec<u8> = [vec![0xab; 48], 32_000_000_000u64.to_be_bytes().to_vec()].concat();
    b.tx(from, TxKind::Call(eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS), U256::from(1), withdrawal.into(), 200_000);
    // A consolidation: source and target public keys.
    let consolidation: Vec<u8> = [vec![0xcd; 48], vec![0xef; 48]].concat();
    b.tx(from, TxKind::Call(eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS), U256::from(1), consolidation.into(), 200_000);
    let mut g = on_mainnet(b.build("requests"), PRAGUE_TIME + 12);
    g.block.number = 22_500_000;
    (g, from)
}

#[test]
fn prague_blocks_drain_the_request_queues_and_hash_the_requests() {
    use alloy_eips::{eip7002, eip7251, eip7685::Requests};
    let (mut g, from) = requests_block(true);
    let r = common::check_all_modes("requests", &g.block, &g.state, &g.chain).unwrap();
    assert!(r.receipts.iter().all(|r| r.status));
    // The transactions queued one request each (3 and 4 slots from slot 4); the end-of-block
    // calls dequeued them, so the count and the queue's head and tail are 0 again.
    let slots = |a: Address| {
        let mut s: Vec<u64> = r.state_diff[&a].storage.keys().map(|k| U256::from_be_bytes(k.0).to::<u64>()).collect();
        s.sort();
        s
    };
    assert_eq!(slots(eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS), [4, 5, 6]);
    assert_eq!(slots(eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS), [4, 5, 6, 7]);
    // The requests the calls returned: the source address, then the call data (a withdrawal's
    // amount turned little-endian, as the consensus layer encodes it).
    let withdrawal = [&[eip7002::WITHDRAWAL_REQUEST_TYPE][..], from.as_slice(), &[0xab; 48], &32_000_000_000u64.to_le_bytes()].concat();
    let consolidation = [&[eip7251::CONSOLIDATION_REQUEST_TYPE][..], from.as_slice(), &[0xcd; 48], &[0xef; 48]].concat();
    let expected = Requests::new(vec![withdrawal.into(), consolidation.into()]).requests_hash();
    assert_eq!(r.requests_hash, Some(expected));

    // Checked against the header.
    g.block.requests_hash = Some(expected);
    let (_, verification) = parallel_evm_core::verify::check_header(&g.block, &g.chain, &r);
    assert_eq!(verification.requests_hash, Some(true));
    g.block.requests_hash = Some(B256::repeat_byte(1));
    let (_, verification) = parallel_evm_core::verify::check_header(&g.block, &g.chain, &r);
    assert_eq!(verification.requests_hash, Some(false));
    assert!(!verification.passed());
    let report = parallel_evm_core::verify::check_report(&g.block, &g.chain, &r, None).unwrap();
    assert_eq!(report.iter().find(|c| c.name == "requestsHash").unwrap().status, parallel_evm_core::verify::CheckStatus::Failed);
}

#[test]
fn without_the_request_contracts_the_requests_are_unknown() {
    let (mut g, _) = requests_block(false);
    g.block.requests_hash = Some(B256::repeat_byte(1));
    let r = common::check_all_modes("no queues", &g.block, &g.state, &g.chain).unwrap();
    assert_eq!(r.requests_hash, None);
    let (_, verification) = parallel_evm_core::verify::check_header(&g.block, &g.chain, &r);
    assert_eq!(verification.requests_hash, None);
    let report = parallel_evm_core::verify::check_report(&g.block, &g.chain, &r, None).unwrap();
    assert_eq!(report.iter().find(|c| c.name == "requestsHash").unwrap().status, parallel_evm_core::verify::CheckStatus::NotApplicable);
}
