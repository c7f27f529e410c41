//! Block-STM: workers on a dedicated thread pool execute transactions optimistically against
//! multi-version memory, validate what they read, and re-execute on conflict, until every
//! transaction has a validated incarnation.

pub mod hot_targets;
pub mod mv_memory;
pub mod placement;
pub mod scheduler;

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    block::TxIdx,
    engine::block_stm::hot_targets::HotTargets,
    engine::block_stm::mv_memory::ReadValue,
    engine::block_stm::mv_memory::{MvMemory, MvRead},
    engine::block_stm::scheduler::{Scheduler, Task},
    engine::chaos::pause,
    engine::costs::{self, Measured},
    engine::fast_paths::lazy_balance,
    engine::fast_paths::lazy_storage,
    engine::final_state::{basic_diffs, sorted_diff},
    engine::transitions::post_block_accounts,
    engine::vm::{direct_transfer_to, sender_check, BlockVm, ExecError, ReadError, SimpleTransfers, StateReader, TxOutcome, TxResult},
    error::EngineError,
    result::AccountDiff,
    state::overlay::Overlay,
    state::storage::Storage,
    state::value::address_key,
    state::value::BasicValue,
    state::value::Loc,
    state::value::Value,
    threads::pool,
};
use alloy_primitives::{Address, B256};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::{
    hash::BuildHasher,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::atomic::{
        AtomicU64, AtomicUsize,
        Ordering::{Acquire, Relaxed, Release},
    },
    time::Instant,
};

/// Why a parallel run did not produce a result.
#[derive(Debug)]
pub enum ParallelError {
    /// The block is fine but its parallel result cannot be trusted as is: run it sequentially.
    Fallback(String),
    Fatal(EngineError),
}

/// Counters of one parallel run.
#[derive(Debug, Default)]
pub struct ParallelStats {
    pub executions: u64,
    pub validation_aborts: u64,
    pub dependency_waits: u64,
}

/// Reads for transaction `tx` through multi-version memory, recording what it saw.
struct MvReader<'a> {
    mv: &'a MvMemory,
    base: &'a dyn Storage,
    tx: TxIdx,
    reads: Vec<(Loc, ReadValue)>,
    /// The transactions the beneficiary sends.
    beneficiary_sends: &'a [TxIdx],
}

impl MvReader<'_> {
    fn read_unrecorded(&self, loc: Loc) -> Result<Value, ReadError> {
        match self.mv.read(&loc, self.tx, self.base)? {
            MvRead::Value(v) => Ok(v),
            MvRead::Blocked(j) => Err(ReadError::Blocked(j)),
        }
    }
}

impl StateReader for MvReader<'_> {
    fn lazy_candidate(&mut self, address: Address) -> Option<Option<BasicValue>> {
        if self.mv.contended.get(&address) == 0 || self.mv.balance_seen.get(&address) >= lazy_balance::MAX_SEEN {
            return None;
        }
        self.base.basic(address).ok()
    }

    fn lazy_beneficiary(&mut self, address: Address) -> Option<Option<BasicValue>> {
        if self.mv.balance_seen.get(&address) >= lazy_balance::MAX_SEEN {
            return None;
        }
        // Its nonce right before this transaction, as the synthetic account must carry it (and
        // `LazyUse::admits` checks): only its own transactions move it, every one of which
        // must be valid for the block to be.
        let sent = self.beneficiary_sends.partition_point(|i| *i < self.tx) as u64;
        let before = self.base.basic(address).ok()??;
        (!before.balance.is_zero()).then_some(Some(BasicValue { nonce: before.nonce + sent, ..before }))
    }

    fn lazy_balance_seen(&mut self, address: Address) {
        self.mv.balance_seen.add(&address);
    }

    fn discard_reads(&mut self) {
        self.reads.clear();
    }

    fn lazy_slot(&mut self, loc: Loc) -> Option<Result<Value, ReadError>> {
        if self.mv.contended_slots.get(&loc) == 0 || self.mv.slot_seen.get(&loc) >= lazy_storage::MAX_SEEN {
            return None;
        }
        Some(self.read_unrecorded(loc))
    }

    fn lazy_slots_possible(&self) -> bool {
        self.mv.any_slot_contended.load(Relaxed)
    }

    fn lazy_slot_seen(&mut self, loc: Loc) {
        self.mv.slot_seen.add(&loc);
    }

    fn record_lazy_slot(&mut self, slot: lazy_storage::SlotUse) {
        self.reads.push((slot.loc, ReadValue::LazyStorage(Box::new(slot))));
    }

    fn read(&mut self, loc: Loc) -> Result<Value, ReadError> {
        let v = self.read_unrecorded(loc)?;
        self.reads.push((loc, v.to_read()));
        Ok(v)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError> {
        self.base.block_hash(number).ok_or(ReadError::MissingBlockHash(number))
    }
}

/// Runs `work` on the calling thread and on `threads - 1` threads of the pool for that count;
/// returns when all are done. The caller does its share instead of sleeping, and the pool is
/// one thread smaller, so fewer idle pool threads compete with the caller afterwards.
pub fn run_on_caller_and_pool(threads: usize, work: impl Fn(usize) + Sync) -> Result<(), EngineError> {
    if threads <= 1 {
        work(0);
        return Ok(());
    }
    let pool = pool(threads - 1)?;
    let work = &work;
    let caller_cpu = placement::caller_cpu(threads);
    pool.in_place_scope(|s| {
        for worker in 1..threads {
            s.spawn(move |_| {
                let _moved = placement::leave_caller_cpu(caller_cpu);
                work(worker)
            });
        }
        // Threads woken by `warm_up` stop spinning and take the jobs just queued.
        WARM_EPOCH.fetch_add(1, Release);
        work(0);
    });
    Ok(())
}

/// Drops `value` on a pool thread, off the caller's path, then keeps that thread awake for up
/// to `runner::LINGER`, yielding, until the next parallel run queues its workers (which this
/// thread must then be free to take). A block's multi-version memory holds an allocation per
/// location written: freeing it took 0.12-0.13 ms of a 2.4 ms, 1,400-transaction block, while
/// the pool's threads sat idle once the block was done. Staying awake: on a 2-vCPU VM whose idle
/// vCPUs halt at once, a host calling from Node (its thread waking for the result, then calling
/// again) had median calls on a 1,400-transaction block up to 0.15 ms faster (~5% typical) in
/// seven of eight alternations, against noise of the same size; the replay example over 44
/// mainnet blocks did not move (auto 1.461 -> 1.471x, forced parallel 1.444 -> 1.453x, 2 and 4
/// runs).
fn release_later<T: Send + 'static>(threads: usize, value: T) {
    match (threads >= 2).then(|| pool(threads - 1)) {
        Some(Ok(p)) => p.spawn(move || {
            drop(value);
            let epoch = WARM_EPOCH.load(Acquire);
            crate::engine::runner::linger(|| (WARM_EPOCH.load(Acquire) != epoch).then_some(()));
        }),
        _ => drop(value),
    }
}

/// Bumped to release the threads `warm_up` keeps spinning.
static WARM_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Longest a warmed-up thread spins for a block that never comes.
const WARM_SPIN: std::time::Duration = std::time::Duration::from_millis(2);

/// Pool threads asleep between blocks take 50-130 µs to wake (measured on a 2-core machine),
/// time the caller would otherwise spend alone at the start of every parallel run. Called as a
/// block starts, this wakes `threads - 1` of them to spin until the run queues its workers (or
/// 2 ms pass), so that they take their jobs at once. Dropping the guard releases them (auto mode
/// chose sequential execution, or the block failed first).
pub fn warm_up(threads: usize) -> Option<Warmup> {
    if threads < 2 {
        return None;
    }
    let pool = pool(threads - 1).ok()?;
    let epoch = WARM_EPOCH.load(Acquire);
    let caller_cpu = placement::caller_cpu(threads);
    for _ in 1..threads {
        pool.spawn(move || {
            // Off the caller's CPU before the run needs this thread (see `placement`).
            let _moved = placement::leave_caller_cpu(caller_cpu);
            let started = Instant::now();
            while WARM_EPOCH.load(Acquire) == epoch && started.elapsed() < WARM_SPIN {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        });
    }
    Some(Warmup)
}

/// Releases the threads `warm_up` woke when dropped.
pub struct Warmup;

impl Drop for Warmup {
    fn drop(&mut self) {
        WARM_EPOCH.fetch_add(1, Release);
    }
}

struct Shared<'a> {
    block: &'a BlockInput,
    chain: &'a ChainSpec,
    base: &'a dyn Storage,
    mv: MvMemory,
    scheduler: Scheduler,
    /// Contracts whose callers were seen to chain in this block.
    hot: HotTargets,
    /// The transactions the beneficiary sends, in block order.
    beneficiary_sends: Vec<TxIdx>,
    outcomes: Vec<CachePadded<Mutex<Option<TxOutcome>>>>,
    /// Summed from each worker's own counters when it stops (no shared counter per task).
    stats: Mutex<ParallelStats>,
    /// Timed executions worth remembering (`costs::learn`), gathered from every worker.
    measured: Mutex<Vec<Measured>>,
    /// Validation aborts so far (rare, so one shared counter is cheap), and the count from
    /// which their rate is judged.
    aborts: AtomicU64,
    contention_limit: u64,
    threads: u64,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl<'a> Shared<'a> {
    fn new_vm(&'a self) -> BlockVm<MvReader<'a>> {
        let reader = MvReader { mv: &self.mv, base: self.base, tx: 0, reads: Vec::new(), beneficiary_sends: &self.beneficiary_sends };
        BlockVm::new(self.block, self.chain, reader)
            .with_simple_transfers(SimpleTransfers::DirectDeferred)
            .with_lazy_balances()
            .with_lazy_slots()
    }

    fn worker(&'a self, worker: usize) {
        let mut stats = ParallelStats::default();
        let mut measured = Vec::new();
        let mut vm = self.new_vm();
        let mut task: Option<Task> = None;
        let mut idle = 0u32;
        while !self.scheduler.done() {
            pause();
            if task.is_none() && worker > 0 && !self.scheduler.holds_claims(worker) && self.contended(&stats) {
                // Conflicts dominate this block: more workers would only waste more work. The
                // first worker finishes alone (it holds no task between tasks, so leaving is safe).
                break;
            }
            task = match task {
                Some(Task::Execute(tx, inc)) => self.try_execute(&mut vm, &mut stats, &mut measured, worker, tx, inc),
                Some(Task::Validate(tx, inc)) => self.validate(&mut stats, &mut measured, worker, tx, inc),
                None => {
                    let t = self.scheduler.next_task(worker);
                    if t.is_none() {
                        // Nothing ready: others hold the remaining work.
                        idle += 1;
                        if idle > 64 {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    } else {
                        idle = 0;
                    }
                    t
                }
            };
        }
        let mut total = self.stats.lock();
        total.executions += stats.executions;
        total.validation_aborts += stats.validation_aborts;
        total.dependency_waits += stats.dependency_waits;
        drop(total);
        if !measured.is_empty() {
            self.measured.lock().append(&mut measured);
        }
    }

    /// Aborts outnumber half of all executions so far (estimated from this worker's share):
    /// conflicts dominate, and more workers would only waste more work.
    fn contended(&self, mine: &ParallelStats) -> bool {
        let aborts = self.aborts.load(Relaxed);
        aborts > self.contention_limit && aborts * 2 > mine.executions * self.threads
    }

    fn try_execute(
        &'a self,
        vm: &mut BlockVm<MvReader<'a>>,
        stats: &mut ParallelStats,
        measured: &mut Vec<Measured>,
        worker: usize,
        tx: TxIdx,
        inc: usize,
    ) -> Option<Task> {
        // A caller of a contract seen to chain runs after the previous caller has executed.
        if let Some(previous) = self.hot.wait_for(tx) {
            if self.scheduler.add_dependency(worker, tx, previous) {
                stats.dependency_waits += 1;
                return None;
            }
        }
        let timed = costs::timed(&self.block.txs[tx]);
        loop {
            {
                let r = vm.reader_mut();
                r.tx = tx;
                r.reads.clear();
            }
            stats.executions += 1;
            pause();
            let started = timed.then(Instant::now);
            let run = catch_unwind(AssertUnwindSafe(|| vm.execute(tx, &self.block.txs[tx], true)));
            pause();
            let outcome = match run {
                Ok(Ok(outcome)) => {
                    if let Some(us) = started.map(costs::micros_since) {
                        if us >= costs::EXPENSIVE_US || self.scheduler.is_early(tx) {
                            measured.push(Measured { tx, us, early_aborted: false });
                        }
                    }
                    outcome
                }
                Ok(Err(ExecError::Blocked(blocking))) if blocking >= tx => {
                    // Reads only ever see lower transactions; anything else is an engine bug.
                    TxOutcome::failed(EngineError::Internal(format!("transaction {tx} blocked on later transaction {blocking}")))
                }
                Ok(Err(ExecError::Blocked(blocking))) => {
                    if self.scheduler.add_dependency(worker, tx, blocking) {
                        stats.dependency_waits += 1;
                        return None;
                    }
                    continue;
                }
                // A failure seen on a speculative view may vanish on re-execution: record it
                // with its reads and let validation decide whether it stands.
                Ok(Err(ExecError::Fatal(e))) => TxOutcome::failed(e),
                Err(panic) => {
                    *vm = self.new_vm();
                    TxOutcome::failed(EngineError::Internal(format!("engine panic: {}", panic_message(panic))))
                }
            };
            let reads = std::mem::take(&mut vm.reader_mut().reads);
            let (wrote_new, mut recycled) = self.mv.record(tx, &outcome.writes, reads);
            recycled.clear();
            vm.reader_mut().reads = recycled;
            pause();
            *self.outcomes[tx].lock() = Some(outcome);
            pause();
            return self.scheduler.finish_execution(worker, tx, inc, wrote_new);
        }
    }

    fn validate(&self, stats: &mut ParallelStats, measured: &mut Vec<Measured>, worker: usize, tx: TxIdx, inc: usize) -> Option<Task> {
        let invalid = self.mv.first_invalid_read(tx, self.base);
        pause();
        let aborted = invalid.is_some() && self.scheduler.try_validation_abort(tx, inc);
        if let (true, Some((address, repeated))) = (aborted, invalid) {
            // Lazy balances and slots get the first conflict on a location: a caller chain is
            // only made where they did not absorb it (all transfers of a token to one receiver
            // chained on the token otherwise, 2.3x slower than sequential).
            if repeated {
                self.hot.conflict(self.block, tx, address);
            }
            if inc == 0 && self.scheduler.is_early(tx) {
                measured.push(Measured { tx, us: 0, early_aborted: true });
            }
            stats.validation_aborts += 1;
            self.aborts.fetch_add(1, Relaxed);
            pause();
            self.mv.convert_writes_to_estimates(tx);
        }
        self.scheduler.finish_validation(worker, tx, aborted)
    }
}

/// Known dependencies before execution: a transaction waits for the previous transaction of
/// its sender (nonce and balance) or, if later, the previous plain transfer to its sender.
/// Transfers computed directly wait for nothing: they do not read their sender (`SenderDelta`).
pub fn dependency_hints(block: &BlockInput, chain: &ChainSpec) -> Vec<Option<TxIdx>> {
    let (spec, basefee) = (block.spec(chain), block.base_fee.unwrap_or(0) as u128);
    // Keyed by `address_key`: hashing whole addresses took 50-90 ns a transaction, time the
    // workers wait for. Two accounts taken for one only add a needless wait.
    let mut last_writer: FxHashMap<u64, u32> = FxHashMap::with_capacity_and_hasher(block.txs.len() * 2, Default::default());
    block
        .txs
        .iter()
        .enumerate()
        .map(|(j, tx)| {
            let caller = address_key(&tx.env.caller);
            let hint = if direct_transfer_to(tx, block.beneficiary, basefee, spec).is_some() {
                None
            } else {
                last_writer.get(&caller).map(|&i| i as TxIdx)
            };
            last_writer.insert(caller, j as u32);
            if let Some(to) = tx.is_plain_transfer_candidate() {
                last_writer.insert(address_key(&to), j as u32);
            }
            hint
        })
        .collect()
}

/// Length of the longest chain of hinted dependencies (transactions that must run in turn).
pub fn longest_chain(hints: &[Option<TxIdx>]) -> usize {
    let mut depth = vec![0usize; hints.len()];
    for (j, h) in hints.iter().enumerate() {
        depth[j] = h.map_or(1, |i| depth[i] + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

/// Share (in percent) of the block's gas limits held by its heaviest chain of hinted
/// dependencies, a single transaction included: a lower bound on the critical path.
pub fn heaviest_chain_percent(block: &BlockInput, hints: &[Option<TxIdx>]) -> u64 {
    let mut weight = vec![0u128; hints.len()];
    let mut total = 0u128;
    for (j, h) in hints.iter().enumerate() {
        let gas = block.txs[j].env.gas_limit as u128;
        total += gas;
        weight[j] = gas + h.map_or(0, |i| weight[i]);
    }
    let heaviest = weight.into_iter().max().unwrap_or(0);
    (heaviest * 100).checked_div(total).map_or(0, |p| p as u64)
}

/// Transaction `i`'s result as the sequential loop would take it, with the same checks and
/// precedence; notes whether it did not read its sender.
fn result_in_order(
    block: &BlockInput,
    i: TxIdx,
    o: &mut TxOutcome,
    cumulative: &mut u64,
    deferred: &mut bool,
) -> Result<TxResult, ParallelError> {
    block.check_gas_available(i, *cumulative).map_err(ParallelError::Fatal)?;
    if let Some(e) = o.fatal.take() {
        if matches!(e, EngineError::Internal(_)) {
            return Err(ParallelError::Fallback(format!("transaction {i}: {e}")));
        }
        return Err(ParallelError::Fatal(e));
    }
    let r = match o.result.take() {
        Some(Ok(r)) => r,
        Some(Err(reason)) => return Err(ParallelError::Fatal(block.invalid_tx(i, reason))),
        None => return Err(ParallelError::Fatal(EngineError::Internal(format!("transaction {i} has no result")))),
    };
    if o.hazard {
        return Err(ParallelError::Fallback(format!("transaction {i} defeats lazy updates")));
    }
    *deferred |= o.deferred_sender;
    *cumulative += r.gas_used;
    Ok(r)
}

/// Result of a successful parallel run: results in block order, the overlay of the accounts
/// still open to the block's transitions (pre-block writes, the beneficiary, withdrawal and
/// uncle accounts), and the final diff of every other written account, in parts sorted by
/// address (see `StateDiff::from_sorted_runs`).
pub struct ParallelRun {
    pub results: Vec<TxResult>,
    pub overlay: Overlay,
    pub diff: Vec<Vec<(Address, AccountDiff)>>,
    pub stats: ParallelStats,
    /// Each transaction's validated writes, when asked for (tracing).
    pub writes: Option<Vec<crate::state::value::TxWrites>>,
}

/// One part of the block's final state, built by whichever worker took it: the accounts
/// whose address hashes to the part.
#[derive(Default)]
struct FinalPart {
    open: Overlay,
    /// Runs sorted by address (see `StateDiff`).
    diff: Vec<Vec<(Address, AccountDiff)>>,
    /// The first transaction that the account, as the block left it right before the
    /// transaction, does not admit: a sender not read during execution that cannot pay, or a
    /// contract whose balance was handled lazily and does not cover what it paid out.
    rejected: Option<TxIdx>,
}

fn part_of(address: &Address, parts: usize) -> usize {
    (rustc_hash::FxBuildHasher.hash_one(address) % parts as u64) as usize
}

impl Shared<'_> {
    /// The final state of part `part`'s accounts: balances and nonces from their final versions
    /// (`MvMemory::final_accounts`, which also checks the transfers that did not read their
    /// sender), then every validated outcome's code and storage writes to them, in block order
    /// (what sequential execution applies); diffed against the pre-state `base`, except the
    /// accounts in `open`, which are returned as they are.
    fn final_part(&self, part: usize, parts: usize, open: &FxHashSet<Address>, base: &dyn Storage) -> Result<FinalPart, EngineError> {
        let mine = |a: &Address| part_of(a, parts) == part;
        // One pass over the outcomes (half of them sit in the other core's cache, and each
        // line fetched costs ~0.2 us on a 2-core VM): contracts whose balance transactions
        // handled lazily, with those transactions, and this part's code and storage writes.
        let mut lazy: FxHashMap<Address, Vec<TxIdx>> = FxHashMap::default();
        let mut writes = Vec::new();
        for (tx, slot) in self.outcomes.iter().enumerate() {
            let outcome = slot.lock();
            let Some(outcome) = outcome.as_ref() else {
                return Err(EngineError::Internal(format!("transaction {tx} never executed")));
            };
            for u in outcome.lazy_balances.iter().filter(|u| mine(&u.address)) {
                lazy.entry(u.address).or_default().push(tx);
            }
            writes.extend(outcome.writes.iter().filter(|(loc, _)| !matches!(loc, Loc::Basic(_)) && mine(&loc.address())).cloned());
        }
        let admits = |address: &Address, tx: TxIdx, before| {
            let outcome = self.outcomes[tx].lock();
            let lazy_use = outcome.as_ref().and_then(|o| o.lazy_balances.iter().find(|u| u.address == *address).copied());
            drop(outcome);
            match lazy_use {
                Some(u) => u.admits(before),
                None => sender_check(&self.block.txs[tx], before),
            }
        };
        let (accounts, rejected) = self.mv.final_accounts(self.base, mine, &lazy, admits)?;
        // Accounts whose code or storage the block wrote, and those left open, go through an
        // overlay; the others (most of a block's: senders and receivers of value) changed only
        // their balance and nonce and are diffed directly, without a map to fill and empty.
        let through_overlay: FxHashSet<Address> = writes.iter().map(|(loc, _)| loc.address()).collect();
        let mut overlay = Overlay::default();
        let mut basic_only = Vec::with_capacity(accounts.len());
        for (address, basic) in accounts {
            if through_overlay.contains(&address) || open.contains(&address) {
                overlay.accounts.entry(address).or_default().basic = Some(basic);
            } else {
                basic_only.push((address, basic));
            }
        }
        // In block order, as the transactions wrote them.
        for (loc, write) in writes {
            overlay.apply(self.base, loc, write)?;
        }
        let (open, diff) = sorted_diff(base, overlay, |a| open.contains(a))?;
        Ok(FinalPart { open, diff: vec![diff, basic_diffs(base, basic_only)?], rejected })
    }
}

/// Runs the block with Block-STM on `threads` workers, on top of `pre` (pre-block writes),
/// scheduling with the block's `dependency_hints`. Once the last transaction validates, the
/// workers that are still running build the final state, a part each (see `ParallelRun`).
pub fn execute(
    block: &BlockInput,
    chain: &ChainSpec,
    base: &dyn Storage,
    pre: Overlay,
    threads: usize,
    hints: &[Option<TxIdx>],
    keep: bool,
) -> Result<ParallelRun, ParallelError> {
    let n = block.txs.len();
    let threads = threads.max(1);
    let layered = crate::state::overlay::Layered { base, overlay: &pre };
    // Without pre-block writes (no beacon-roots call) read the pre-state directly.
    let reads_from: &dyn Storage = if pre.accounts.is_empty() { base } else { &layered };
    let shared = Shared {
        block,
        chain,
        base: reads_from,
        mv: MvMemory::new(n, block.beneficiary),
        hot: HotTargets::new(block),
        beneficiary_sends: (0..n).filter(|&i| block.txs[i].env.caller == block.beneficiary).collect(),
        scheduler: Scheduler::with_hints(n, threads, hints).with_early(match threads {
            1 => Vec::new(),
            _ => crate::engine::chaos::early(n).unwrap_or_else(|| costs::expensive(block)),
        }),
        outcomes: (0..n).map(|_| CachePadded::new(Mutex::new(None))).collect(),
        stats: Mutex::new(ParallelStats::default()),
        measured: Mutex::new(Vec::new()),
        aborts: AtomicU64::new(0),
        contention_limit: 8,
        threads: threads as u64,
    };
    let mut open = post_block_accounts(block, chain);
    open.extend(pre.accounts.keys().copied());
    let parts: Vec<Mutex<Option<Result<FinalPart, EngineError>>>> = (0..threads).map(|_| Mutex::new(None)).collect();
    let next_part = AtomicUsize::new(0);
    run_on_caller_and_pool(threads, |w| {
        shared.worker(w);
        // Workers that left a contended block early see it unfinished and stop here.
        if shared.scheduler.done() {
            loop {
                let part = next_part.fetch_add(1, Relaxed);
                if part >= parts.len() {
                    break;
                }
                let built = catch_unwind(AssertUnwindSafe(|| shared.final_part(part, parts.len(), &open, base)))
                    .unwrap_or_else(|p| Err(EngineError::Internal(format!("engine panic: {}", panic_message(p)))));
                *parts[part].lock() = Some(built);
            }
        }
    })
    .map_err(ParallelError::Fatal)?;
    let Shared { mv, scheduler, mut outcomes, stats, measured, .. } = shared;
    let stats = stats.into_inner();
    costs::learn(block, &measured.into_inner(), scheduler.early());

    // A transaction whose sender or lazily handled contract, as the block finally left it,
    // cannot admit it: its outcome, and with it every error reported after it (the gas left
    // for a later transaction, say), may not be what sequential execution gives. Sequential
    // execution decides, before any error in order is believed.
    if let Some(tx) = parts.iter().filter_map(|p| p.lock().as_ref().and_then(|r| r.as_ref().ok()).and_then(|p| p.rejected)).min() {
        return Err(ParallelError::Fallback(format!("transaction {tx}: its sender or a lazily handled balance cannot admit it")));
    }
    // Results in block order, with the same checks and precedence as the sequential loop.
    let mut results = Vec::with_capacity(n);
    let mut cumulative = 0u64;
    let mut deferred = false;
    for (i, slot) in outcomes.iter_mut().enumerate() {
        let Some(o) = slot.get_mut().as_mut() else {
            return Err(ParallelError::Fatal(EngineError::Internal(format!("transaction {i} never executed"))));
        };
        let checked = result_in_order(block, i, o, &mut cumulative, &mut deferred);
        match checked {
            Ok(r) => results.push(r),
            // An earlier transaction that did not read its sender may be the first invalid
            // one: sequential execution finds out which.
            Err(ParallelError::Fatal(e)) if deferred => {
                return Err(ParallelError::Fallback(format!("block invalid ({e}) after transactions with unchecked senders")))
            }
            Err(e) => return Err(e),
        }
    }
    // Kept for tracing: the writes of each transaction's validated incarnation.
    let writes = keep
        .then(|| outcomes.iter_mut().map(|o| o.get_mut().as_mut().map(|o| std::mem::take(&mut o.writes)).unwrap_or_default()).collect());
    // The versions, and the outcomes' writes now that their results are taken, are no longer
    // needed: a pool thread frees them, off the caller's path (see `release_later`).
    release_later(threads, (mv, scheduler, outcomes));
    let mut overlay = pre;
    let mut diff = Vec::with_capacity(parts.len());
    for part in parts {
        let part = part.into_inner().unwrap_or_else(|| Err(EngineError::Internal("a part of the final state was not built".into())));
        let part = part.map_err(|e| match e {
            EngineError::Internal(_) => ParallelError::Fallback(e.to_string()),
            e => ParallelError::Fatal(e),
        })?;
        overlay.merge(part.open);
        diff.extend(part.diff);
    }
    Ok(ParallelRun { results, overlay, diff, stats, writes })
}
