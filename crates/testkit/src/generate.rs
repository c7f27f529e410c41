//! Synthetic blocks, deterministic from a seed: workloads that mainnet fixtures cover thinly
//! (thousands of independent transfers, hot accounts, dependency chains, token transfers,
//! contract creation, self-destruct, reverts, out-of-gas, invalid transactions). Used by the
//! tests and the benchmarks.

use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use parallel_evm_core::{
    block::chain::ChainSpec,
    block::{BlockInput, TxInput},
    state::storage::InMemoryStorage,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use revm::{bytecode::opcode as op, context::TxEnv, primitives::hardfork::SpecId};

/// A block with its pre-state and chain rules.
pub struct Generated {
    pub name: String,
    pub block: BlockInput,
    pub state: InMemoryStorage,
    pub chain: ChainSpec,
}

const GWEI: u128 = 1_000_000_000;
/// The beneficiary (coinbase) of every generated block.
pub const BENEFICIARY: Address = Address::new([0xbe; 20]);

/// Minimal token: calldata laid out like ERC-20 `transfer(to, amount)` (the selector is not
/// checked); balances at slot = holder address; reverts when the sender's balance is short;
/// logs `amount` with `to` as topic.
pub fn token_runtime() -> Bytes {
    Bytes::from(vec![
        op::CALLER,
        op::SLOAD,
        op::PUSH1,
        0x24,
        op::CALLDATALOAD,
        op::DUP2,
        op::DUP2,
        op::GT,
        op::PUSH1,
        0x25,
        op::JUMPI,
        op::DUP1,
        op::SWAP2,
        op::SUB,
        op::CALLER,
        op::SSTORE,
        op::PUSH1,
        4,
        op::CALLDATALOAD,
        op::DUP1,
        op::SLOAD,
        op::DUP3,
        op::ADD,
        op::SWAP1,
        op::SSTORE,
        op::PUSH1,
        0,
        op::MSTORE,
        op::PUSH1,
        4,
        op::CALLDATALOAD,
        op::PUSH1,
        0x20,
        op::PUSH1,
        0,
        op::LOG1,
        op::STOP,
        op::JUMPDEST,
        op::PUSH1,
        0,
        op::DUP1,
        op::REVERT,
    ])
}

/// Init code that deploys `runtime`.
pub fn deploy_code(runtime: &[u8]) -> Bytes {
    let len = u8::try_from(runtime.len()).expect("short runtime");
    let mut code = vec![op::PUSH1, len, op::PUSH1, 12, op::PUSH1, 0, op::CODECOPY, op::PUSH1, len, op::PUSH1, 0, op::RETURN];
    code.extend_from_slice(runtime);
    code.into()
}

/// Sends everything to the caller and self-destructs.
pub fn selfdestruct_runtime() -> Bytes {
    Bytes::from(vec![op::CALLER, op::SELFDESTRUCT])
}

/// Loops until gas runs out.
pub fn burner_runtime() -> Bytes {
    Bytes::from(vec![op::JUMPDEST, op::PUSH1, 0, op::JUMP])
}

/// Token call data: ERC-20 `transfer(to, amount)`.
pub fn token_call(to: Address, amount: u64) -> Bytes {
    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
    data.extend_from_slice(B256::left_padding_from(to.as_slice()).as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data.into()
}

/// Builds a block transaction by transaction.
pub struct BlockBuilder {
    rng: ChaCha8Rng,
    seed: u64,
    pub state: InMemoryStorage,
    pub txs: Vec<TxInput>,
    nonces: std::collections::HashMap<Address, u64>,
    spec: SpecId,
}

impl BlockBuilder {
    pub fn new(seed: u64, spec: SpecId) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            state: InMemoryStorage::default(),
            txs: Vec::new(),
            nonces: Default::default(),
            spec,
        }
    }

    /// A fresh address, deterministic from the seed.
    pub fn address(&mut self) -> Address {
        let r: [u8; 32] = self.rng.random();
        Address::from_slice(&keccak256(r)[12..])
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// An externally owned account holding `eth` ether.
    pub fn funded(&mut self, eth: u64) -> Address {
        let a = self.address();
        self.state.insert_account(a, U256::from(eth) * U256::from(10u128.pow(18)), 0, None);
        a
    }

    pub fn contract(&mut self, code: Bytes) -> Address {
        let a = self.address();
        self.state.insert_account(a, U256::ZERO, 1, Some(code));
        a
    }

    /// Appends a transaction using (and advancing) the sender's next nonce.
    pub fn tx(&mut self, from: Address, kind: TxKind, value: U256, data: Bytes, gas_limit: u64) -> &mut TxInput {
        let nonce = self.nonces.entry(from).or_insert(0);
        // Dynamic-fee transactions from London, legacy ones before.
        let london = self.spec.is_enabled_in(SpecId::LONDON);
        let env = TxEnv {
            tx_type: if london { 2 } else { 0 },
            caller: from,
            gas_limit,
            gas_price: 2 * GWEI,
            kind,
            value,
            data,
            nonce: *nonce,
            chain_id: self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON).then_some(1),
            gas_priority_fee: london.then_some(GWEI),
            ..Default::default()
        };
        let tx_type = env.tx_type;
        *nonce += 1;
        let mut preimage = self.seed.to_be_bytes().to_vec();
        preimage.extend_from_slice(&(self.txs.len() as u64).to_be_bytes());
        self.txs.push(TxInput { hash: keccak256(preimage), tx_type, env });
        self.txs.last_mut().expect("just pushed")
    }

    pub fn transfer(&mut self, from: Address, to: Address, wei: u64) {
        self.tx(from, TxKind::Call(to), U256::from(wei), Bytes::new(), 21_000);
    }

    pub fn build(self, name: impl Into<String>) -> Generated {
        let gas_limit = self.txs.iter().map(|t| t.env.gas_limit).sum::<u64>().max(30_000_000);
        let block = BlockInput {
            number: 1_000_000,
            timestamp: 1_700_000_000,
            beneficiary: BENEFICIARY,
            gas_limit,
            base_fee: self.spec.is_enabled_in(SpecId::LONDON).then_some(GWEI as u64),
            mix_hash: B256::from(U256::from(self.seed)),
            excess_blob_gas: self.spec.is_enabled_in(SpecId::CANCUN).then_some(0),
            txs: self.txs,
            ..Default::default()
        };
        Generated { name: name.into(), block, state: self.state, chain: ChainSpec::fixed(1, self.spec) }
    }
}

/// `n` transfers between distinct fresh accounts: no transaction depends on another.
pub fn independent_transfers(seed: u64, n: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    for _ in 0..n {
        let from = b.funded(10);
        let to = b.address();
        b.transfer(from, to, 1_000);
    }
    b.build(format!("{n} independent transfers"))
}

/// `n` transfers from distinct senders all to one account.
pub fn transfers_to_one(seed: u64, n: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    let hot = b.address();
    for _ in 0..n {
        let from = b.funded(10);
        b.transfer(from, hot, 1_000);
    }
    b.build(format!("{n} transfers to one account"))
}

/// Chains A→B→C→…: each hop spends what the previous one received.
pub fn transfer_chains(seed: u64, chains: usize, length: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    let mut heads: Vec<Address> = (0..chains).map(|_| b.funded(1)).collect();
    for hop in 0..length as u64 {
        for head in heads.iter_mut() {
            let next = b.address();
            // Each hop forwards a little less than it received (the rest pays its gas), so it
            // can only run after the previous hop.
            b.transfer(*head, next, chain_hop_value(hop));
            *head = next;
        }
    }
    b.build(format!("{chains} chains of {length} dependent transfers"))
}

/// Value forwarded by hop `hop` of `transfer_chains`.
pub fn chain_hop_value(hop: u64) -> u64 {
    500_000_000_000_000_000 - hop * 1_000_000_000_000_000
}

/// Token transfers: `hot` receivers and senders take a share of the traffic.
pub fn token_transfers(seed: u64, n: usize, hot: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    let token = b.contract(token_runtime());
    let hot_accounts: Vec<Address> = (0..hot).map(|_| b.funded(10)).collect();
    for a in &hot_accounts {
        b.state.insert_storage(token, U256::from_be_slice(a.as_slice()), U256::from(1_000_000_000u64));
    }
    for i in 0..n {
        let (from, to) = if hot > 0 && i % 3 == 0 {
            let j = b.rng().random_range(0..hot);
            (hot_accounts[j], b.address())
        } else if hot > 0 && i % 3 == 1 {
            let from = b.funded(10);
            let j = b.rng().random_range(0..hot);
            (from, hot_accounts[j])
        } else {
            (b.funded(10), b.address())
        };
        if !hot_accounts.contains(&from) {
            b.state.insert_storage(token, U256::from_be_slice(from.as_slice()), U256::from(1_000_000u64));
        }
        let amount = b.rng().random_range(1..1_000u64);
        b.tx(from, TxKind::Call(token), U256::ZERO, token_call(to, amount), 100_000);
    }
    b.build(format!("{n} token transfers, {hot} hot accounts"))
}

/// `n` token transfers from distinct holders all to one receiver (an exchange deposit, a fee
/// collector): every one adds to the same balance slot.
pub fn token_transfers_to_one(seed: u64, n: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    let token = b.contract(token_runtime());
    let hot = b.address();
    for _ in 0..n {
        let from = b.funded(10);
        b.state.insert_storage(token, U256::from_be_slice(from.as_slice()), U256::from(1_000_000u64));
        let amount = b.rng().random_range(1..1_000u64);
        b.tx(from, TxKind::Call(token), U256::ZERO, token_call(hot, amount), 100_000);
    }
    b.build(format!("{n} token transfers to one account"))
}

/// A mix of every kind of transaction, including ones that revert, run out of gas, create a
/// contract and call it, and self-destruct (pre-Cancun semantics when `spec` is before Cancun).
pub fn mixed(seed: u64, n: usize, spec: SpecId) -> Generated {
    let mut b = BlockBuilder::new(seed, spec);
    let token = b.contract(token_runtime());
    let burner = b.contract(burner_runtime());
    let pool: Vec<Address> = (0..8).map(|_| b.funded(100)).collect();
    for a in &pool {
        b.state.insert_storage(token, U256::from_be_slice(a.as_slice()), U256::from(1_000_000u64));
    }
    let mut created: Vec<Address> = Vec::new();
    for _ in 0..n {
        let from = pool[b.rng().random_range(0..pool.len())];
        let choice = b.rng().random_range(0..100u32);
        match choice {
            0..=34 => {
                let to = if b.rng().random_bool(0.5) { pool[b.rng().random_range(0..pool.len())] } else { b.address() };
                b.transfer(from, to, 1_000_000);
            }
            35..=64 => {
                let to = pool[b.rng().random_range(0..pool.len())];
                let amount = b.rng().random_range(1..10_000u64);
                b.tx(from, TxKind::Call(token), U256::ZERO, token_call(to, amount), 100_000);
            }
            65..=69 => {
                // Transfers more than the sender holds: reverts.
                let to = b.address();
                b.tx(from, TxKind::Call(token), U256::ZERO, token_call(to, u64::MAX), 100_000);
            }
            70..=74 => {
                b.tx(from, TxKind::Call(burner), U256::ZERO, Bytes::new(), 60_000);
            }
            75..=84 => {
                let nonce = *b.nonces.get(&from).unwrap_or(&0);
                b.tx(from, TxKind::Create, U256::ZERO, deploy_code(&token_runtime()), 200_000);
                created.push(from.create(nonce));
            }
            85..=92 if !created.is_empty() => {
                let target = created[b.rng().random_range(0..created.len())];
                b.tx(from, TxKind::Call(target), U256::ZERO, token_call(from, 0), 100_000);
            }
            _ => {
                // A fresh self-destructing contract, funded, destroyed by a call.
                let victim = b.address();
                b.state.insert_account(victim, U256::from(12345u64), 1, Some(selfdestruct_runtime()));
                b.state.insert_storage(victim, U256::from(1u64), U256::from(7u64));
                b.tx(from, TxKind::Call(victim), U256::ZERO, Bytes::new(), 50_000);
                if b.rng().random_bool(0.5) {
                    // Touch it again afterwards (exercises the parallel engine's fallback).
                    b.transfer(from, victim, 1);
                }
            }
        }
    }
    b.build(format!("{n} mixed transactions ({spec:?})"))
}

/// The generated workloads the tests and benchmarks use.
pub fn standard_workloads(seed: u64) -> Vec<Generated> {
    vec![
        independent_transfers(seed, 5_000),
        transfers_to_one(seed, 1_000),
        transfer_chains(seed, 20, 25),
        token_transfers(seed, 2_000, 0),
        token_transfers(seed, 2_000, 4),
        token_transfers_to_one(seed, 1_000),
        mixed(seed, 600, SpecId::CANCUN),
        mixed(seed, 600, SpecId::SHANGHAI),
        mixed(seed, 300, SpecId::BYZANTIUM),
        same_sender(seed, 300),
    ]
}

/// `n` transactions from one sender (a payout run): a single nonce chain.
pub fn same_sender(seed: u64, n: usize) -> Generated {
    let mut b = BlockBuilder::new(seed, SpecId::CANCUN);
    let payer = b.funded(1_000);
    for _ in 0..n {
        let to = b.address();
        b.transfer(payer, to, 1_000_000);
    }
    b.build(format!("{n} transfers from one sender"))
}
