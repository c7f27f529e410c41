//! Differential fuzzing: random blocks with controlled contention, executed sequentially and in
//! parallel at several thread counts; any difference in receipts, state diff or error is a bug.
//!
//! A block comes from a seed (`block_from_seed`) or from arbitrary bytes (`block_from_bytes`,
//! for `cargo fuzz`). Its transactions come from a small pool of senders and target a handful
//! of contracts whose code is assembled here from snippets: read-modify-writes of a few shared
//! slots, transient storage, nested CALL/DELEGATECALL/STATICCALL (including to themselves and to
//! precompiles), reads of balances that other transactions credit lazily (the beneficiary's, plain
//! receivers'), CREATE/CREATE2 of children, SELFDESTRUCT, logs, BLOCKHASH, and branches on
//! calldata, storage and balances that end in REVERT, INVALID, an out-of-gas loop or a
//! self-destruct. Some blocks carry an invalid transaction (nonce, balance, gas, fee) or use
//! BLOCKHASH without the hash, and must then fail with the same typed error in every mode.

use crate::generate::{BlockBuilder, Generated, BENEFICIARY};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use parallel_evm_core::{
    block::TxIdx,
    engine::hybrid::{execute_block, ExecuteOptions},
    result::BlockResult,
    EngineError, ExecutionMode, ModeRequest,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use revm::{bytecode::opcode as op, context::transaction::AccessListItem, primitives::hardfork::SpecId};

const ETH: u128 = 1_000_000_000_000_000_000;

/// A block generated from a seed.
pub fn block_from_seed(seed: u64) -> Generated {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    generate(&mut rng, seed, format!("fuzz seed {seed}"), true)
}

/// The block that `block_from_seed` gave before its contracts did arithmetic and comparisons
/// on slot values (for lazily read slots): regression tests of seeds found then use it.
pub fn block_from_seed_without_slot_arithmetic(seed: u64) -> Generated {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    generate(&mut rng, seed, format!("fuzz seed {seed}"), false)
}

/// A block whose every choice is read from `data` (zeros once it runs out), so that a
/// coverage-guided fuzzer's mutations change the block's structure.
pub fn block_from_bytes(data: &[u8]) -> Generated {
    let hash = keccak256(data);
    let seed = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    generate(&mut ByteRng { data, pos: 0 }, seed, format!("fuzz input {hash}"), true)
}

/// Reads random numbers from a byte string, then zeros.
struct ByteRng<'a> {
    data: &'a [u8],
    pos: usize,
}

impl RngCore for ByteRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for d in dst {
            *d = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }
}

/// A tiny assembler: pushes of the right width and forward jumps patched in place.
#[derive(Default)]
struct Asm(Vec<u8>);

impl Asm {
    fn op(&mut self, o: u8) -> &mut Self {
        self.0.push(o);
        self
    }

    fn push(&mut self, v: u64) -> &mut Self {
        self.push_word(U256::from(v))
    }

    fn push_word(&mut self, v: U256) -> &mut Self {
        let bytes = v.to_be_bytes::<32>();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(31);
        self.0.push(op::PUSH1 + (31 - skip) as u8);
        self.0.extend_from_slice(&bytes[skip..]);
        self
    }

    fn push_addr(&mut self, a: Address) -> &mut Self {
        self.0.push(op::PUSH20);
        self.0.extend_from_slice(a.as_slice());
        self
    }

    /// After a condition word: skips to the matching `end_if` when it is zero.
    fn begin_if(&mut self) -> usize {
        self.op(op::ISZERO).op(op::PUSH2);
        let patch = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.op(op::JUMPI);
        patch
    }

    fn end_if(&mut self, patch: usize) {
        let target = u16::try_from(self.0.len()).expect("contracts stay small");
        self.0[patch..patch + 2].copy_from_slice(&target.to_be_bytes());
        self.op(op::JUMPDEST);
    }

    /// Loops until gas runs out.
    fn burn(&mut self) {
        let start = u16::try_from(self.0.len()).expect("contracts stay small");
        self.op(op::JUMPDEST).op(op::PUSH2);
        self.0.extend_from_slice(&start.to_be_bytes());
        self.op(op::JUMP);
    }
}

/// What contract code may refer to.
struct Ctx {
    spec: SpecId,
    pool: Vec<Address>,
    contracts: Vec<Address>,
    /// Contracts also check, add to and subtract from slot values (`block_from_seed`).
    slot_arithmetic: bool,
}

impl Ctx {
    fn has(&self, fork: SpecId) -> bool {
        self.spec.is_enabled_in(fork)
    }
}

/// One of the few contested slots.
fn slot<R: Rng + ?Sized>(r: &mut R) -> u64 {
    r.random_range(0..5)
}

fn pick<R: Rng + ?Sized, T: Copy>(r: &mut R, items: &[T]) -> T {
    items[r.random_range(0..items.len())]
}

/// An address code may call or read: a contract, a pool account, the beneficiary, a
/// precompile or a fresh (absent) account.
fn target<R: Rng + ?Sized>(r: &mut R, ctx: &Ctx) -> Address {
    match r.random_range(0..10) {
        0..=4 => pick(r, &ctx.contracts),
        5..=6 => pick(r, &ctx.pool),
        7 => BENEFICIARY,
        8 => Address::with_last_byte(r.random_range(1..=4)),
        _ => Address::with_last_byte(0xa0 + r.random_range(0..4u8)),
    }
}

/// Init code of at most 32 bytes for CREATE/CREATE2 from contract code: writes a slot and
/// deploys a tiny runtime (self-destruct, counter or none), or reverts, or self-destructs.
fn child_init<R: Rng + ?Sized>(r: &mut R) -> Vec<u8> {
    let v = r.random_range(1..=255u8);
    match r.random_range(0..8) {
        0 => vec![op::PUSH1, 0, op::DUP1, op::REVERT],
        1 => vec![op::CALLER, op::SELFDESTRUCT],
        _ => {
            let runtime: &[u8] = match r.random_range(0..3) {
                0 => &[op::CALLER, op::SELFDESTRUCT],
                1 => &[op::PUSH1, 0, op::SLOAD, op::PUSH1, 1, op::ADD, op::PUSH1, 0, op::SSTORE, op::STOP],
                _ => &[],
            };
            let len = runtime.len() as u8;
            let mut code = vec![op::PUSH1, v, op::PUSH1, 1, op::SSTORE];
            code.extend_from_slice(&[op::PUSH1, len, op::PUSH1, 17, op::PUSH1, 0, op::CODECOPY, op::PUSH1, len, op::PUSH1, 0, op::RETURN]);
            code.extend_from_slice(runtime);
            code
        }
    }
}

/// Pushes a condition: a calldata byte, a slot's low bit, a balance over a threshold, or a
/// transient slot.
fn condition<R: Rng + ?Sized>(r: &mut R, ctx: &Ctx, a: &mut Asm) {
    match r.random_range(0..if ctx.slot_arithmetic { 5 } else { 4 }) {
        0 => {
            a.push(0u64).op(op::MLOAD).push(r.random_range(0..32u64)).op(op::BYTE);
        }
        1 => {
            a.push(slot(r)).op(op::SLOAD).push(1u64).op(op::AND);
        }
        2 => {
            let who = target(r, ctx);
            a.push_word(U256::from(r.random_range(0..200u64)) * U256::from(ETH / 100)).push_addr(who).op(op::BALANCE).op(op::GT);
        }
        4 => {
            // A comparison of a slot's value (what lazily read slots record as checks).
            let cmp = pick(r, &[op::LT, op::GT, op::SLT, op::SGT, op::EQ, op::ISZERO]);
            if cmp != op::ISZERO {
                a.push(pick(r, &[0u64, 1, 3, 8]));
            }
            a.push(slot(r)).op(op::SLOAD).op(cmp);
        }
        _ if ctx.has(SpecId::CANCUN) => {
            a.push(slot(r)).op(op::TLOAD);
        }
        _ => {
            a.push(slot(r)).op(op::SLOAD);
        }
    }
}

/// Something worth doing only sometimes: end the call badly, or destroy the contract.
fn action<R: Rng + ?Sized>(r: &mut R, ctx: &Ctx, a: &mut Asm) {
    match r.random_range(0..7) {
        0 if ctx.has(SpecId::BYZANTIUM) => {
            a.push(0u64).op(op::DUP1).op(op::REVERT);
        }
        1 => {
            a.op(op::INVALID);
        }
        2 => a.burn(),
        3 => {
            let to = target(r, ctx);
            a.push_addr(to).op(op::SELFDESTRUCT);
        }
        4 => {
            a.op(op::STOP);
        }
        _ => {
            a.push(r.random_range(0..1000u64)).push(slot(r)).op(op::SSTORE);
        }
    }
}

/// A CALL-family instruction to `to`, forwarding the calldata word kept at memory 0. Its
/// success flag is dropped or stored.
fn call<R: Rng + ?Sized>(r: &mut R, ctx: &Ctx, a: &mut Asm, to: Option<Address>) {
    let kind = match r.random_range(0..7) {
        0 if ctx.has(SpecId::HOMESTEAD) => op::DELEGATECALL,
        1 if ctx.has(SpecId::BYZANTIUM) => op::STATICCALL,
        2 => op::CALLCODE,
        _ => op::CALL,
    };
    a.push(0u64).push(0u64).push(32u64).push(0u64);
    if kind == op::CALL || kind == op::CALLCODE {
        // Up to most of a rich contract's balance: two such payments overdraw it.
        a.push_word(U256::from(pick(r, &[0u128, 0, 1, 1_000_000_000, 700 * ETH])));
    }
    match to {
        Some(t) => a.push_addr(t),
        // The child whose address a CREATE stored in a slot.
        None => a.push(slot(r)).op(op::SLOAD),
    };
    if r.random_bool(0.5) {
        a.op(op::GAS);
    } else {
        a.push(r.random_range(0..120_000u64));
    }
    a.op(kind);
    if r.random_bool(0.5) {
        a.op(op::POP);
    } else {
        a.push(slot(r)).op(op::SSTORE);
    }
}

/// Runtime code of a fuzz contract: a few snippets, each leaving the stack as it found it.
fn contract_code<R: Rng + ?Sized>(r: &mut R, ctx: &Ctx, self_destructs: bool) -> Vec<u8> {
    let mut a = Asm::default();
    a.push(0u64).op(op::CALLDATALOAD).push(0u64).op(op::MSTORE);
    for _ in 0..r.random_range(1..=8) {
        match r.random_range(0..100) {
            // Without slot arithmetic, all of 0..=17 is this (the seeds found then stay valid).
            n @ 0..=17 if n <= 11 || !ctx.slot_arithmetic => {
                a.push(slot(r)).op(op::SLOAD).push(r.random_range(1..4u64)).op(op::ADD).push(slot(r)).op(op::SSTORE);
            }
            12..=15 => {
                // A checked increment, as Solidity compiles `x += c`: something else on overflow.
                let s = slot(r);
                let c = pick(r, &[U256::from(1u64), U256::from(5u64), U256::MAX - U256::from(2u64)]);
                a.push(s).op(op::SLOAD).op(op::DUP1).push_word(c).op(op::ADD).op(op::DUP1).op(op::SWAP2).op(op::GT);
                let patch = a.begin_if();
                action(r, ctx, &mut a);
                a.end_if(patch);
                a.push(s).op(op::SSTORE);
            }
            16..=17 => {
                // A decrement (slot - c), or c - slot, into the slot or another.
                let s = slot(r);
                a.push(r.random_range(1..4u64)).push(s).op(op::SLOAD);
                if r.random_bool(0.2) {
                    a.op(op::SWAP1);
                }
                let to = if r.random_bool(0.8) { s } else { slot(r) };
                a.op(op::SUB).push(to).op(op::SSTORE);
            }
            18..=25 => {
                a.push(pick(r, &[0u64, 1, 7, 1 << 40])).push(slot(r)).op(op::SSTORE);
            }
            26..=33 if ctx.has(SpecId::CANCUN) || r.random_bool(0.1) => {
                a.push(slot(r)).op(op::TLOAD).push(1u64).op(op::ADD).push(slot(r)).op(op::TSTORE);
            }
            34..=37 if ctx.has(SpecId::CANCUN) => {
                a.push(slot(r)).op(op::TLOAD).push(slot(r)).op(op::SSTORE);
            }
            38..=51 => {
                let to = target(r, ctx);
                call(r, ctx, &mut a, Some(to));
            }
            52..=63 => {
                condition(r, ctx, &mut a);
                let patch = a.begin_if();
                action(r, ctx, &mut a);
                a.end_if(patch);
            }
            64..=70 => {
                let who = target(r, ctx);
                match r.random_range(0..4) {
                    0 => a.op(op::COINBASE).op(op::BALANCE),
                    1 => a.op(op::ADDRESS).op(op::BALANCE),
                    2 if ctx.has(SpecId::ISTANBUL) => a.op(op::SELFBALANCE),
                    _ => a.push_addr(who).op(op::BALANCE),
                };
                a.push(slot(r)).op(op::SSTORE);
            }
            71..=75 => {
                a.push(slot(r)).op(op::SLOAD).push(32u64).op(op::MSTORE);
                a.push(r.random_range(0..4u64)).push(32u64).push(32u64).op(op::LOG1);
            }
            76..=83 => {
                let init = child_init(r);
                let mut word = [0u8; 32];
                word[..init.len()].copy_from_slice(&init);
                a.push_word(U256::from_be_bytes(word)).push(64u64).op(op::MSTORE);
                let value = pick(r, &[0u64, 0, 5]);
                if ctx.has(SpecId::PETERSBURG) && r.random_bool(0.5) {
                    a.push(r.random_range(0..2u64)).push(init.len() as u64).push(64u64).push(value).op(op::CREATE2);
                } else {
                    a.push(init.len() as u64).push(64u64).push(value).op(op::CREATE);
                }
                a.push(slot(r)).op(op::SSTORE);
            }
            84..=87 => call(r, ctx, &mut a, None),
            88..=91 => {
                let who = target(r, ctx);
                a.push_addr(who);
                if ctx.has(SpecId::PETERSBURG) && r.random_bool(0.5) {
                    a.op(op::EXTCODEHASH);
                } else {
                    a.op(op::EXTCODESIZE);
                }
                a.push(slot(r)).op(op::SSTORE);
            }
            92..=93 => {
                // The parent's hash is in the header; older ones only when the state has them.
                a.push(pick(r, &[1u64, 1, 2, 3, 0, 300])).op(op::NUMBER).op(op::SUB).op(op::BLOCKHASH).push(slot(r)).op(op::SSTORE);
            }
            94..=96 => {
                match r.random_range(0..3) {
                    0 if ctx.has(SpecId::CANCUN) => a.push(0).op(op::BLOBHASH),
                    1 if ctx.has(SpecId::CANCUN) => a.op(op::BLOBBASEFEE),
                    _ => a.op(op::GAS),
                };
                a.push(slot(r)).op(op::SSTORE);
            }
            _ => {
                a.op(op::CALLVALUE).op(op::CALLER).op(op::BALANCE).op(op::ADD).push(slot(r)).op(op::SSTORE);
            }
        }
    }
    if self_destructs {
        let to = target(r, ctx);
        a.push_addr(to).op(op::SELFDESTRUCT);
    }
    a.op(op::STOP);
    a.0
}

/// Init code for a creation transaction: a constructor that writes a slot, then `runtime`.
fn deploy<R: Rng + ?Sized>(r: &mut R, runtime: &[u8]) -> Bytes {
    let mut a = Asm::default();
    if r.random_bool(0.5) {
        a.push(r.random_range(1..100u64)).push(slot(r)).op(op::SSTORE);
    }
    let len = runtime.len() as u64;
    // PUSH2 len, PUSH2 offset, PUSH1 0, CODECOPY, PUSH2 len, PUSH1 0, RETURN: 15 bytes.
    let offset = a.0.len() as u64 + 15;
    for (v, width) in [(len, 2), (offset, 2), (0, 1)] {
        a.op(op::PUSH1 + width - 1);
        a.0.extend_from_slice(&v.to_be_bytes()[8 - width as usize..]);
    }
    a.op(op::CODECOPY);
    a.op(op::PUSH2);
    a.0.extend_from_slice(&(len as u16).to_be_bytes());
    a.op(op::PUSH1).op(0).op(op::RETURN);
    a.0.extend_from_slice(runtime);
    a.0.into()
}

const SPECS: &[(SpecId, u32)] = &[
    (SpecId::CANCUN, 40),
    (SpecId::PRAGUE, 4),
    (SpecId::SHANGHAI, 12),
    (SpecId::MERGE, 4),
    (SpecId::LONDON, 10),
    (SpecId::BERLIN, 8),
    (SpecId::ISTANBUL, 5),
    (SpecId::PETERSBURG, 5),
    (SpecId::BYZANTIUM, 5),
    (SpecId::SPURIOUS_DRAGON, 3),
    (SpecId::TANGERINE, 2),
    (SpecId::HOMESTEAD, 2),
];

fn pick_spec<R: Rng + ?Sized>(r: &mut R) -> SpecId {
    let total: u32 = SPECS.iter().map(|(_, w)| w).sum();
    let mut x = r.random_range(0..total);
    for (spec, w) in SPECS {
        if x < *w {
            return *spec;
        }
        x -= w;
    }
    SpecId::CANCUN
}

fn generate<R: Rng + ?Sized>(r: &mut R, seed: u64, name: String, slot_arithmetic: bool) -> Generated {
    let spec = pick_spec(r);
    let mut b = BlockBuilder::new(seed, spec);
    let pool: Vec<Address> = (0..r.random_range(2..=10)).map(|_| b.funded(pick(r, &[100u64, 100, 100, 1]))).collect();
    // The beneficiary exists and sends transactions in some blocks.
    let beneficiary_sends = r.random_bool(0.3);
    if beneficiary_sends || r.random_bool(0.5) {
        b.state.insert_account(BENEFICIARY, U256::from(10 * ETH), 0, None);
    }
    let contracts: Vec<Address> = (0..r.random_range(1..=6)).map(|_| b.address()).collect();
    let ctx = Ctx { spec, pool: pool.clone(), contracts: contracts.clone(), slot_arithmetic };
    // Sometimes the beneficiary is a contract (as builders' are): transactions call it, and it
    // may write storage or self-destruct while fees are credited to it lazily.
    let beneficiary_code = !beneficiary_sends && r.random_bool(0.15);
    if beneficiary_code {
        let destructs = r.random_bool(0.3);
        let code = contract_code(r, &ctx, destructs);
        b.state.insert_account(BENEFICIARY, U256::from(ETH), 1, Some(code.into()));
    }
    for c in &contracts {
        let destructs = r.random_bool(0.15);
        let code = contract_code(r, &ctx, destructs);
        // Some hold enough ether for lazy balances (`lazy_balance`), and pay out of them.
        let balance = U256::from(pick(r, &[0u128, 0, 1_000_000_000_000_000, 1_200 * ETH]));
        b.state.insert_account(*c, balance, 1, Some(code.into()));
        for s in 0..5u64 {
            if r.random_bool(0.4) {
                b.state.insert_storage(*c, U256::from(s), U256::from(r.random_range(1..10u64)));
            }
        }
    }
    let mut created: Vec<Address> = Vec::new();
    let mut nonces = std::collections::HashMap::<Address, u64>::new();
    let n = match r.random_range(0..100) {
        0..=69 => r.random_range(1..=40),
        70..=94 => r.random_range(40..=150),
        _ => r.random_range(150..=400),
    };
    for _ in 0..n {
        let from = if beneficiary_sends && r.random_bool(0.1) { BENEFICIARY } else { pick(r, &pool) };
        let nonce = nonces.entry(from).or_insert(0);
        let my_nonce = *nonce;
        *nonce += 1;
        let tight = r.random_bool(0.08);
        let (kind, value, data, gas) = match r.random_range(0..100) {
            0..=24 => {
                let to = match r.random_range(0..10) {
                    0..=3 => pick(r, &pool),
                    4..=5 => b.address(),
                    6 => BENEFICIARY,
                    7 => from,
                    8 if !created.is_empty() => pick(r, &created),
                    _ => pick(r, &contracts),
                };
                let value = U256::from(pick(r, &[0u64, 1, 1_000_000_000_000, 100_000_000_000_000_000]));
                let gas = if r.random_bool(0.6) { 21_000 } else { r.random_range(21_000..200_000) };
                (TxKind::Call(to), value, Bytes::new(), gas)
            }
            25..=84 => {
                let to = if !created.is_empty() && r.random_bool(0.15) {
                    pick(r, &created)
                } else if beneficiary_code && r.random_bool(0.2) {
                    BENEFICIARY
                } else {
                    pick(r, &contracts)
                };
                let data = if r.random_bool(0.1) {
                    Bytes::new()
                } else {
                    let mut word = [0u8; 32];
                    for w in word.iter_mut() {
                        if r.random_bool(0.25) {
                            *w = r.random_range(1..=255);
                        }
                    }
                    Bytes::from(word.to_vec())
                };
                let value = U256::from(pick(r, &[0u64, 0, 0, 7]));
                let gas = r.random_range(40_000..600_000);
                (TxKind::Call(to), value, data, gas)
            }
            _ => {
                let destructs = r.random_bool(0.2);
                let runtime = contract_code(r, &ctx, destructs);
                created.push(from.create(my_nonce));
                let gas = r.random_range(150_000..1_000_000);
                (TxKind::Create, U256::from(pick(r, &[0u64, 0, 3])), deploy(r, &runtime), gas)
            }
        };
        let tx = b.tx(from, kind, value, data, gas);
        tx.env.nonce = my_nonce;
        // Transaction types the fork allows: legacy, access lists from Berlin, fee market from London.
        let london = spec.is_enabled_in(SpecId::LONDON);
        let berlin = spec.is_enabled_in(SpecId::BERLIN);
        match r.random_range(0..10) {
            0..=1 if london => {
                tx.tx_type = 0;
                tx.env.tx_type = 0;
                tx.env.gas_priority_fee = None;
            }
            2..=3 if berlin => {
                tx.tx_type = 1;
                tx.env.tx_type = 1;
                tx.env.gas_priority_fee = None;
                let mut list = Vec::new();
                for _ in 0..r.random_range(1..=3) {
                    let address = target(r, &ctx);
                    let storage_keys = (0..r.random_range(0..3)).map(|_| B256::from(U256::from(slot(r)))).collect();
                    list.push(AccessListItem { address, storage_keys });
                }
                tx.env.access_list = list.into();
            }
            4 if !london => {
                // Free transactions were valid before the fee market (and make a zero reward).
                tx.env.gas_price = 0;
            }
            5 if spec.is_enabled_in(SpecId::CANCUN) && tx.env.kind.is_call() => {
                // Blob transactions: the blob fee is burned from the sender.
                tx.tx_type = 3;
                tx.env.tx_type = 3;
                tx.env.max_fee_per_blob_gas = 10;
                tx.env.blob_hashes = (0..r.random_range(1..=2u8))
                    .map(|i| {
                        let mut h = [i + 1; 32];
                        h[0] = 1;
                        B256::from(h)
                    })
                    .collect();
            }
            _ => {}
        }
        let intrinsic = intrinsic_gas(&tx.env);
        if tight {
            // Just above the intrinsic cost: runs out of gas early, or right at the end.
            tx.env.gas_limit = intrinsic + r.random_range(0..15_000);
        } else {
            tx.env.gas_limit = tx.env.gas_limit.max(intrinsic);
        }
    }
    let mut g = b.build(name);
    // Withdrawals after the transactions (Shanghai).
    if spec.is_enabled_in(SpecId::SHANGHAI) && r.random_bool(0.3) {
        for _ in 0..r.random_range(1..=3) {
            let address = target(r, &ctx);
            g.block.withdrawals.push(parallel_evm_core::block::WithdrawalInput { address, amount_gwei: r.random_range(0..2_000_000_000) });
        }
    }
    // BLOCKHASH finds older hashes only in some blocks; the others must fail the same way.
    if r.random_bool(0.7) {
        for back in 2..=3u64 {
            let number = g.block.number - back;
            g.state.block_hashes.insert(number, keccak256(number.to_be_bytes()));
        }
    }
    if r.random_bool(0.1) {
        invalidate(r, &mut g);
    }
    if slot_arithmetic && spec.is_enabled_in(SpecId::PRAGUE) {
        add_delegations(&mut g, seed, &contracts, &created);
    }
    g
}

/// Prague blocks (of the current generator) get EIP-7702 delegations: type-4 transactions whose
/// authorizations (signed with keys drawn here) set an account's code to a contract, a
/// precompile, an empty account or nothing (cleared), sometimes with a wrong nonce or chain
/// (skipped), and calls and plain value to those accounts before and after. Half of these blocks
/// run under Osaka. Drawn from a second random stream, so every earlier choice of a seed stays.
fn add_delegations(g: &mut Generated, seed: u64, contracts: &[Address], created: &[Address]) {
    use alloy_eips::eip7702::Authorization;
    let mut d = ChaCha8Rng::seed_from_u64(seed ^ 0x7702_7702_7702_7702);
    if d.random_bool(0.5) {
        g.chain = parallel_evm_core::block::chain::ChainSpec::fixed(1, SpecId::OSAKA);
    }
    let gwei = 1_000_000_000u128;
    let mut added_gas = 0;
    let mut authorities = Vec::new();
    let fresh = |d: &mut ChaCha8Rng| Address::from_slice(&keccak256(d.random::<[u8; 32]>())[12..]);
    let mut new_tx = |d: &mut ChaCha8Rng,
                      g: &mut Generated,
                      caller: Address,
                      nonce: u64,
                      to: Address,
                      value: u64,
                      data: Bytes,
                      auths: Vec<alloy_eips::eip7702::SignedAuthorization>| {
        let mut env = revm::context::TxEnv {
            tx_type: if auths.is_empty() { 2 } else { 4 },
            caller,
            gas_limit: 0,
            gas_price: 2 * gwei,
            gas_priority_fee: Some(gwei),
            kind: TxKind::Call(to),
            value: U256::from(value),
            data,
            nonce,
            chain_id: Some(1),
            authorization_list: auths.into_iter().map(revm::context_interface::either::Either::Left).collect(),
            ..Default::default()
        };
        env.gas_limit = intrinsic_gas(&env) + d.random_range(0..300_000);
        added_gas += env.gas_limit;
        let mut preimage = seed.to_be_bytes().to_vec();
        preimage.extend_from_slice(b"7702");
        preimage.extend_from_slice(&(g.block.txs.len() as u64).to_be_bytes());
        let tx = parallel_evm_core::block::TxInput { hash: keccak256(preimage), tx_type: env.tx_type, env };
        let at = d.random_range(0..=g.block.txs.len());
        g.block.txs.insert(at, tx);
    };
    for _ in 0..d.random_range(1..=3) {
        let Ok(key) = k256::ecdsa::SigningKey::from_slice(&d.random::<[u8; 32]>()) else {
            continue;
        };
        let authority = Address::from_private_key(&key);
        let balance = pick(&mut d, &[0u128, 10 * ETH]);
        // Self-sponsored: the authority sends the transaction (and pays for it), so its
        // authorization carries the nonce after the transaction's.
        let own = d.random_bool(0.3);
        g.state.insert_account(authority, U256::from(if own { 10 * ETH } else { balance }), 0, None);
        let sender = if own { authority } else { fresh(&mut d) };
        if !own {
            g.state.insert_account(sender, U256::from(10 * ETH), 0, None);
        }
        let mut auths = Vec::new();
        for _ in 0..d.random_range(1..=2) {
            let address = match d.random_range(0..10) {
                0..=4 => pick(&mut d, contracts),
                5 if !created.is_empty() => pick(&mut d, created),
                6 => Address::with_last_byte(pick(&mut d, &[1u8, 4, 9])),
                7 => Address::ZERO,
                _ => fresh(&mut d),
            };
            let nonce = u64::from(own) + if d.random_bool(0.1) { 1 } else { 0 } + auths.len() as u64;
            let chain_id = U256::from(pick(&mut d, &[1u64, 1, 1, 1, 0, 2]));
            let auth = Authorization { chain_id, address, nonce };
            let Ok((sig, recid)) = key.sign_prehash_recoverable(auth.signature_hash().as_slice()) else {
                continue;
            };
            auths.push(auth.into_signed(alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd())));
        }
        if auths.is_empty() {
            continue;
        }
        let to = if d.random_bool(0.7) { authority } else { pick(&mut d, contracts) };
        let data = if d.random_bool(0.3) { Bytes::new() } else { Bytes::from(d.random::<[u8; 32]>().to_vec()) };
        let value = pick(&mut d, &[0u64, 7]);
        new_tx(&mut d, g, sender, 0, to, value, data, auths);
        authorities.push(authority);
    }
    // Calls and plain value to the delegated accounts, anywhere in the block.
    for _ in 0..d.random_range(0..=4) {
        let Some(&to) = authorities.get(d.random_range(0..authorities.len().max(1))) else {
            break;
        };
        let sender = fresh(&mut d);
        g.state.insert_account(sender, U256::from(10 * ETH), 0, None);
        let data = if d.random_bool(0.4) { Bytes::new() } else { Bytes::from(d.random::<[u8; 32]>().to_vec()) };
        let value = pick(&mut d, &[0u64, 1_000]);
        new_tx(&mut d, g, sender, 0, to, value, data, Vec::new());
    }
    g.block.gas_limit += added_gas;
}

/// An upper bound of a transaction's intrinsic gas (calldata, creation, access list, EIP-7702
/// authorizations; the Prague calldata floor is below it for these sizes).
fn intrinsic_gas(env: &revm::context::TxEnv) -> u64 {
    let data: u64 = env.data.iter().map(|b| if *b == 0 { 4 } else { 16 }).sum();
    let create = if env.kind.is_create() { 32_000 + 2 * (env.data.len() as u64).div_ceil(32) } else { 0 };
    let list: u64 = env.access_list.0.iter().map(|i| 2_400 + 1_900 * i.storage_keys.len() as u64).sum();
    let authorizations = 25_000 * env.authorization_list.len() as u64;
    21_000 + data + create + list + authorizations
}

/// Makes one transaction (or the block's gas limit) invalid.
fn invalidate<R: Rng + ?Sized>(r: &mut R, g: &mut Generated) {
    let n = g.block.txs.len();
    let i = r.random_range(0..n);
    let env = &mut g.block.txs[i].env;
    match r.random_range(0..7) {
        0 => env.nonce += 1,
        1 => env.nonce = env.nonce.wrapping_sub(1),
        2 => env.gas_limit = 20_000,
        3 => env.value = U256::from(1_000 * ETH),
        4 if env.tx_type == 2 => env.gas_priority_fee = Some(env.gas_price + 1),
        5 if g.block.base_fee.is_some() => env.gas_price = 1,
        6 => env.gas_limit = g.block.gas_limit + 1,
        _ => g.block.gas_limit = g.block.txs.iter().map(|t| t.env.gas_limit).sum::<u64>() / 2,
    }
}

/// How one generated block fared.
#[derive(Debug, Default, Clone)]
pub struct Checked {
    /// The engine's error code when the block is invalid (the same in every mode).
    pub error: Option<&'static str>,
    pub txs: usize,
    pub failed_txs: usize,
    pub created: usize,
    pub self_destructed: usize,
    /// Re-executions summed over the parallel runs (contention actually happened).
    pub reexecutions: u64,
    /// Parallel runs that fell back to sequential execution.
    pub fallbacks: usize,
    /// Runs of the group engine on deliberately wrong guesses whose check passed (their results
    /// matched sequential execution), and that fell back.
    pub guesses_kept: usize,
    pub guesses_rejected: usize,
}

/// Thread counts a block is run with in parallel mode (always 1, 2 and 16, plus one more that
/// depends on the block), then once in auto mode.
pub fn thread_counts(seed: u64) -> [usize; 4] {
    [1, 2, 16, [3, 4, 5, 6, 8, 12][(seed % 6) as usize]]
}

/// The part of a result that must not depend on how it was computed, as bytes.
fn canonical(r: &BlockResult) -> Vec<u8> {
    serde_json::to_vec(&(&r.receipts, &r.state_diff, r.gas_used, &r.logs_bloom, &r.receipts_root, &r.warnings)).expect("results serialise")
}

fn run(g: &Generated, mode: ModeRequest, threads: usize) -> Result<BlockResult, EngineError> {
    let options = ExecuteOptions { chain: g.chain.clone(), mode, threads, receipts_root: true };
    execute_block(&g.block, &g.state, &options)
}

/// Runs `g` sequentially, then in parallel at `threads` and in auto mode; returns a description
/// of the first difference.
pub fn check(g: &Generated, threads: &[usize]) -> Result<Checked, String> {
    let reference = run(g, ModeRequest::Sequential, 1);
    let expected = reference.as_ref().map(canonical);
    let mut checked = Checked { txs: g.block.txs.len(), ..Default::default() };
    match &reference {
        Ok(r) => {
            checked.failed_txs = r.receipts.iter().filter(|x| !x.status).count();
            checked.created = r.receipts.iter().filter(|x| x.contract_address.is_some()).count();
            checked.self_destructed = r.state_diff.values().filter(|a| a.storage_cleared).count();
        }
        Err(e) => checked.error = Some(e.code()),
    }
    let runs = threads.iter().map(|t| (ModeRequest::Parallel, *t)).chain([(ModeRequest::Auto, 4)]);
    for (mode, t) in runs {
        let got = run(g, mode, t);
        let same = match (&expected, &got) {
            (Ok(a), Ok(b)) => *a == canonical(b),
            (Err(a), Err(b)) => *a == b,
            _ => false,
        };
        if !same {
            let show = |r: &Result<BlockResult, EngineError>| match r {
                Ok(r) => format!("ok ({:?}, reason {:?})", r.stats.mode, r.stats.reason),
                Err(e) => format!("error {e}"),
            };
            return Err(format!(
                "{}: {mode:?} with {t} threads differs from sequential: sequential {}, parallel {}",
                g.name,
                show(&reference),
                show(&got)
            ));
        }
        if let Ok(r) = &got {
            if mode == ModeRequest::Parallel {
                checked.reexecutions += r.stats.reexecutions;
                if r.stats.mode != ExecutionMode::Parallel {
                    checked.fallbacks += 1;
                }
            }
        }
    }
    // The group engine's check, handed wrong guesses: every transaction a group of its own
    // (claimed in batches by both workers, so that wrong groups meet on one worker and on two)
    // and the block cut in halves. A run it keeps must equal sequential execution; block-level
    // errors must be the same.
    let n = g.block.txs.len();
    let guesses: [(&str, Vec<Vec<TxIdx>>); 2] =
        [("singletons", (0..n).map(|i| vec![i]).collect()), ("halves", vec![(0..n / 2).collect(), (n / 2..n).collect()])];
    for (name, groups) in guesses {
        let got = parallel_evm_core::engine::hybrid::execute_guessed_groups(&g.block, &g.state, &g.chain, groups, 2, true);
        let same = match (&expected, &got) {
            (_, Ok(None)) => {
                checked.guesses_rejected += 1;
                true
            }
            (Ok(a), Ok(Some(b))) => {
                checked.guesses_kept += 1;
                *a == canonical(b)
            }
            (Err(a), Err(b)) => *a == b,
            _ => false,
        };
        if !same {
            let got = match &got {
                Ok(Some(r)) => {
                    parallel_evm_core::verify::crosscheck::first_mismatch(reference.as_ref().expect("compared with a result"), r)
                        .map_or_else(|| "a result".to_string(), |m| format!("{m:?}"))
                }
                Ok(None) => "a fallback".into(),
                Err(e) => format!("error {e}"),
            };
            return Err(format!("{}: guessed groups ({name}) kept a run that differs from sequential: {got}", g.name));
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    //! The fuzzer under adversarial scheduling: the crate's unit tests compile `chaos::pause`
    //! in, so workers yield, spin and sleep at random at every race-prone point.
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn byte_input_drives_the_generator() {
        let a = block_from_bytes(&[7; 600]);
        let b = block_from_bytes(&[7; 600]);
        assert_eq!(a.block.txs.len(), b.block.txs.len());
        let outcome = |g: &Generated| run(g, ModeRequest::Sequential, 1).map(|r| canonical(&r));
        assert_eq!(outcome(&a), outcome(&b));
        // Exhausted input reads as zeros: still a valid, small block.
        let empty = block_from_bytes(&[]);
        check(&empty, &[2]).unwrap();
    }

    #[test]
    fn contract_code_is_well_formed() {
        // Every generated contract runs to a normal end in some call, i.e. no snippet breaks
        // the stack discipline or a jump: over many seeds, most calls succeed.
        let (mut ok, mut total) = (0, 0);
        let mut ok_by_type = [0; 5];
        for seed in 0..100 {
            let g = block_from_seed(seed);
            if let Ok(r) = run(&g, ModeRequest::Sequential, 1) {
                total += r.receipts.len();
                ok += r.receipts.iter().filter(|x| x.status).count();
                for x in r.receipts.iter().filter(|x| x.status) {
                    ok_by_type[x.tx_type as usize] += 1;
                }
            }
        }
        assert!(ok * 2 > total, "{ok} of {total} transactions succeed");
        // Type 4 (EIP-7702) only in Prague blocks, a few in a hundred.
        assert!(ok_by_type[..4].iter().all(|n| *n > 10) && ok_by_type[4] > 0, "every transaction type succeeds somewhere: {ok_by_type:?}");
    }

    #[test]
    fn chaos_scheduling_never_changes_a_result_nor_hangs() {
        const BLOCKS: u64 = 400;
        parallel_evm_core::engine::chaos::enable(64, 0xc4a05);
        let (tx, rx) = mpsc::channel();
        // Workers run on their own thread so that a hang fails the test instead of blocking it.
        std::thread::spawn(move || {
            for seed in 0..BLOCKS {
                let g = block_from_seed(50_000 + seed);
                let result = check(&g, &[2, 3, 16]);
                if tx.send((seed, result)).is_err() {
                    return;
                }
            }
        });
        let mut done = 0;
        while done < BLOCKS {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((seed, result)) => {
                    result.unwrap_or_else(|e| panic!("seed {}: {e}", 50_000 + seed));
                    done += 1;
                }
                Err(_) => panic!("no block finished in 60 s after {done} blocks: the parallel engine hangs"),
            }
        }
        assert!(
            parallel_evm_core::engine::chaos::disturbances() > 1_000,
            "chaos ran: {}",
            parallel_evm_core::engine::chaos::disturbances()
        );
    }
}
