//! What expensive transactions cost, learned from earlier runs in this process, so that
//! Block-STM can start them first.
//!
//! Block-STM hands out transactions in block order. A transaction that takes half the block's
//! time and sits near its end (a rollup's proof check, a bridge's Merkle proof: pairings and
//! hashing that cost little gas for their time) starts only once everything before it has, and
//! then runs alone while the other workers have nothing left. Gas does not tell which
//! transactions those are (the heaviest on the mainnet fixtures used 4-7% of their block's gas
//! for 49-54% of its time), but their contracts' entry points come back block after block, and
//! a block replayed (a benchmark, a verification after a run) repeats itself exactly.
//!
//! So every engine times the transactions that carry call data or create a contract, and the
//! ones that took at least `EXPENSIVE_US` are remembered by their entry point (contract and
//! selector; a creation by its hash). The parallel scheduler then starts the block's
//! remembered ones first, most expensive first. A guess only changes the order in which
//! speculative executions start; validation in block order decides what stands, so a wrong
//! guess costs time and never changes a result. An entry point whose early start was aborted
//! (it read what an earlier transaction of the block wrote) is not started early for its next
//! few blocks.

use crate::{
    block::TxIdx,
    block::{BlockInput, TxInput},
};
use alloy_primitives::{Address, B256};
use parking_lot::Mutex;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;
use std::{
    sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed},
    time::Instant,
};

/// Executions at least this long (in microseconds) are remembered, and transactions expected
/// to take this long are started first: a few percent of a typical 3-15 ms mainnet block.
pub const EXPENSIVE_US: u32 = 200;
/// Most transactions started ahead of block order per block: beyond a few, starting them first
/// is reordering the block, and the conflicts that brings.
pub const MAX_EARLY: usize = 8;
/// Share of the block's expected time (in percent) a transaction must be expected to take to
/// start early: smaller ones gain little from it, and any early start risks an abort. Starting
/// every remembered transaction early (up to 8 a block, several calls of one entry point among
/// them) gained nothing on the mainnet fixtures: batches of one contract's calls and router
/// swaps aborted (10760440: 42 re-executions instead of 8). With one call per entry point,
/// shares of 3, 8, 15 and 25% measured alike (1.02-1.03x the runs without early starts).
pub const EARLY_SHARE_PERCENT: u64 = 8;
/// Sequential execution time per thousand gas (ns) before any block was measured: 2.5 Mgas a
/// millisecond, the median of the mainnet fixtures on a 2-vCPU VM.
const DEFAULT_NS_PER_KGAS: u32 = 400;
/// Entry points remembered at most; past that the table starts over (an indexer's history
/// holds far fewer expensive entry points than this).
const CAPACITY: usize = 4096;
/// Blocks for which an entry point whose early start was aborted is left in block order: 4,
/// doubled with every further abort (up to 64), halved back with every early start that stood.
pub const SKIP_AFTER_ABORT: u8 = 4;
const MAX_STRIKES: u8 = 5;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    /// A call: the contract and the first four bytes of its call data (none: `[0xff; 4]`).
    Entry(Address, [u8; 4]),
    /// A creation: init code rarely repeats, the transaction itself may (a replayed block).
    Creation(B256),
}

#[derive(Clone, Copy, Debug)]
struct Cost {
    /// The most recent measured execution, in microseconds.
    us: u32,
    /// Blocks left during which this entry point is not started early.
    skip: u8,
    /// Early starts aborted lately (see `SKIP_AFTER_ABORT`).
    strikes: u8,
}

static COSTS: Mutex<Option<FxHashMap<Key, Cost>>> = parking_lot::const_mutex(None);
/// Sequential execution time per thousand gas (ns), averaged over the blocks run so far: what
/// a block's gas says of its time, and so of the share an expensive transaction takes.
static NS_PER_KGAS: AtomicU32 = AtomicU32::new(DEFAULT_NS_PER_KGAS);
/// Whether the scheduler uses what was learned (see `set_enabled`).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns early starts off (or back on) for the whole process; learning goes on either way.
/// For measuring what they bring, or for runs that should schedule as a cold process does.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Relaxed);
}

/// Records the time a sequential run of `gas` gas took (blocks under 1 Mgas say little).
pub fn learn_rate(gas: u64, us: u64) {
    if gas >= 1_000_000 {
        let sample = (us.saturating_mul(1_000_000) / gas).min(u32::MAX as u64) as u32;
        let old = NS_PER_KGAS.load(Relaxed);
        NS_PER_KGAS.store(((old as u64 * 3 + sample as u64) / 4) as u32, Relaxed);
    }
}

/// Whether the engines time `tx`: a plain value transfer (no call data) cannot be expensive
/// short of a contract's receive function, and timing costs ~60 ns a transaction (two clock
/// reads on a 2-vCPU VM).
pub fn timed(tx: &TxInput) -> bool {
    !tx.env.data.is_empty()
}

/// Microseconds since `started`, as the table keeps them.
pub fn micros_since(started: Instant) -> u32 {
    started.elapsed().as_micros().min(u32::MAX as u128) as u32
}

fn key(tx: &TxInput) -> Key {
    match tx.env.kind {
        TxKind::Call(to) => {
            let data = &tx.env.data;
            Key::Entry(to, if data.len() >= 4 { data[..4].try_into().expect("four bytes") } else { [0xff; 4] })
        }
        TxKind::Create => Key::Creation(tx.hash),
    }
}

/// A timed execution of one of a block's transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    pub tx: TxIdx,
    pub us: u32,
    /// It was started early and that execution was aborted by validation.
    pub early_aborted: bool,
}

/// Remembers the executions of `block`'s transactions that were expensive, and updates what
/// is known of those that were expected to be (`early`), whatever they took this time.
pub fn learn(block: &BlockInput, measured: &[Measured], early: &[TxIdx]) {
    if measured.iter().all(|m| m.us < EXPENSIVE_US && !early.contains(&m.tx)) {
        return;
    }
    let mut costs = COSTS.lock();
    let costs = costs.get_or_insert_with(FxHashMap::default);
    if costs.len() >= CAPACITY {
        costs.clear();
    }
    for m in measured {
        let Some(tx) = block.txs.get(m.tx) else {
            continue;
        };
        let known = costs.get(&key(tx)).copied();
        if m.us < EXPENSIVE_US && known.is_none() && !m.early_aborted {
            continue;
        }
        let (skip, strikes) = known.map_or((0, 0), |c| (c.skip, c.strikes));
        let cost = if m.early_aborted {
            // An abort says nothing of the cost: it keeps what the execution measured.
            let strikes = (strikes + 1).min(MAX_STRIKES);
            Cost { us: known.map_or(m.us, |c| c.us), skip: SKIP_AFTER_ABORT << (strikes - 1), strikes }
        } else if early.contains(&m.tx) && !measured.iter().any(|a| a.tx == m.tx && a.early_aborted) {
            Cost { us: m.us, skip, strikes: strikes / 2 }
        } else {
            Cost { us: m.us, skip, strikes }
        };
        costs.insert(key(tx), cost);
    }
}

/// Transactions of `block` to start early: expected to take at least `EXPENSIVE_US` and
/// `EARLY_SHARE_PERCENT` of the block's expected time, the first of each entry point (several
/// calls to one entry point usually touch the same storage), most expensive first, at most
/// `MAX_EARLY`. Transaction 0 is left out: it starts first anyway.
pub fn expensive(block: &BlockInput) -> Vec<TxIdx> {
    if !ENABLED.load(Relaxed) {
        return Vec::new();
    }
    let mut costs = COSTS.lock();
    let Some(costs) = costs.as_mut().filter(|c| !c.is_empty()) else {
        return Vec::new();
    };
    let expected_us = block.expected_gas().saturating_mul(NS_PER_KGAS.load(Relaxed) as u64) / 1_000_000;
    let threshold = (EXPENSIVE_US as u64).max(expected_us * EARLY_SHARE_PERCENT / 100);
    let mut found: Vec<(u32, TxIdx)> = Vec::new();
    let mut seen: Vec<Key> = Vec::new();
    let mut skipped: Vec<Key> = Vec::new();
    for (i, tx) in block.txs.iter().enumerate().skip(1) {
        if !timed(tx) {
            continue;
        }
        let key = key(tx);
        let Some(cost) = costs.get(&key) else {
            continue;
        };
        if cost.skip > 0 {
            if !skipped.contains(&key) {
                skipped.push(key);
            }
        } else if cost.us as u64 >= threshold && !seen.contains(&key) {
            seen.push(key);
            found.push((cost.us, i));
        }
    }
    // A block counts once, however many of its transactions call the entry point.
    for key in skipped {
        if let Some(cost) = costs.get_mut(&key) {
            cost.skip -= 1;
        }
    }
    found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(MAX_EARLY);
    found.into_iter().map(|(_, i)| i).collect()
}

/// Forgets everything learned (a benchmark of first runs, a test).
pub fn forget() {
    *COSTS.lock() = None;
}
