//! Blocks made only of plain value transfers need no speculation: every transaction's accounts
//! (sender and receiver, both without code) are known before it runs. Transactions that share an
//! account form a group; groups share nothing but the beneficiary, whose fees are kept apart and
//! summed. Workers therefore run whole groups, each in block order, on private overlays: no
//! multi-version memory, no validation, and nothing shared while they run but the queue they
//! take groups from. The same workers run groups that are only guessed (`predicted`),
//! recording what they read and write so that the run can be checked.

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    block::TxIdx,
    engine::block_stm::{run_on_caller_and_pool, ParallelError},
    engine::fast_paths::groups::{union_groups, Groups},
    engine::fast_paths::guessed_groups::Footprint,
    engine::final_state::sorted_diff,
    engine::inspected::{traceable_in_run, InRunTrace, InRunTracer, InRunTraces},
    engine::transitions::OverlayReader,
    engine::vm::{BlockVm, ExecError, ReadError, SimpleTransfers, StateReader, TxResult},
    error::EngineError,
    result::AccountDiff,
    state::overlay::Overlay,
    state::storage::Storage,
    state::value::Loc,
    state::value::Value,
    state::value::WriteValue,
};
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use parking_lot::Mutex;
use revm::primitives::TxKind;
use rustc_hash::FxHashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Whether `tx` is a plain value call between two accounts, as far as the transaction alone
/// tells (see `groups`).
fn plain_transfer_shape(block: &BlockInput, tx: &crate::block::TxInput) -> bool {
    let env = &tx.env;
    let TxKind::Call(to) = env.kind else {
        return false;
    };
    // Access lists load other accounts, authorizations set code: both reach beyond the pair.
    // Call data almost always means a contract call: leave those to Block-STM at once.
    if env.tx_type > 3 || !env.access_list.0.is_empty() || !env.data.is_empty() {
        return false;
    }
    // Precompiles live at the lowest addresses and run code of their own.
    !(to.0[..18].iter().all(|b| *b == 0) || to == block.beneficiary || env.caller == block.beneficiary)
}

/// The block's transactions split into groups that share no account, each in block order;
/// `None` when some transaction is not a plain value call between two accounts (a creation,
/// one with call data, an access list or authorizations, one to a precompile or involving the
/// beneficiary). That the receivers hold no code is checked by the workers, in parallel.
pub fn groups(block: &BlockInput) -> Option<Groups> {
    // Shapes first, without hashing: a block whose first contract call comes late (11814555:
    // transaction 577 of 579) is turned down before any account is indexed.
    if !block.txs.iter().all(|tx| plain_transfer_shape(block, tx)) {
        return None;
    }
    let keys: Vec<[Address; 2]> = block
        .txs
        .iter()
        .map(|tx| match tx.env.kind {
            TxKind::Call(to) => Some([tx.env.caller, to]),
            TxKind::Create => None,
        })
        .collect::<Option<_>>()?;
    Some(union_groups(&keys))
}

/// Groups waiting for a worker, heaviest first, claimed in batches by whichever worker is free.
/// Fixed shares (one per worker, as until 2026-11-30) left the run waiting for the slower
/// worker: on this project's 2-vCPU VM one core often ran the same half of a block 10-35%
/// slower than the other, or its pool thread woke milliseconds late. Heaviest first, so that
/// the last batches are small.
struct Queue {
    groups: Groups,
    /// The groups' numbers, heaviest first.
    order: Vec<u32>,
    /// Transactions in the groups of `order[..=i]`.
    ends: Vec<usize>,
    next: AtomicUsize,
    /// Batches are about `1 / (BATCHES_PER_WORKER * batch_workers)` of the transactions left.
    batch_workers: usize,
}

/// See `Queue`: few enough claims that the shared counter stays cheap (a cache line bounced
/// between cores costs ~0.4 us here), enough that the last ones are short.
const BATCHES_PER_WORKER: usize = 4;

impl Queue {
    fn new(groups: Groups, workers: usize) -> Self {
        let mut order: Vec<u32> = (0..groups.len() as u32).filter(|g| !groups.get(*g as usize).is_empty()).collect();
        order.sort_by_key(|g| std::cmp::Reverse(groups.get(*g as usize).len()));
        let ends = order.iter().scan(0, |sum, g| {
            *sum += groups.get(*g as usize).len();
            Some(*sum)
        });
        let ends = ends.collect();
        Queue { groups, order, ends, next: AtomicUsize::new(0), batch_workers: workers * BATCHES_PER_WORKER }
    }

    /// The transactions of group `g`, in block order.
    fn group(&self, g: u32) -> &[TxIdx] {
        self.groups.get(g as usize)
    }

    fn workers(&self) -> usize {
        self.batch_workers / BATCHES_PER_WORKER
    }

    /// The next batch of groups (their numbers): at least one, and whole groups until about
    /// the batch size.
    fn claim(&self) -> Option<&[u32]> {
        let total = self.ends.last().copied().unwrap_or(0);
        let mut start = self.next.load(Relaxed);
        loop {
            if start >= self.order.len() {
                return None;
            }
            let done = start.checked_sub(1).map_or(0, |i| self.ends[i]);
            let target = done + ((total - done) / self.batch_workers).max(1);
            let end = start + 1 + self.ends[start..].partition_point(|e| *e < target).min(self.order.len() - start - 1);
            match self.next.compare_exchange_weak(start, end, Relaxed, Relaxed) {
                Ok(_) => return Some(&self.order[start..end]),
                Err(now) => start = now,
            }
        }
    }
}

/// What one worker produced.
#[derive(Default)]
struct Share {
    results: Vec<(TxIdx, TxResult)>,
    /// Accounts the block's transitions may still change (see `execute`).
    open: Overlay,
    /// The final diff of every other account of this worker's, sorted by address.
    diff: Vec<(Address, AccountDiff)>,
    fees: U256,
    /// The first transaction of this worker's that was invalid, with the reason; its group
    /// stops there (later ones may depend on it, and the block is invalid anyway).
    invalid: Option<(TxIdx, String)>,
    /// What the worker read and wrote, for guessed groups.
    footprint: Option<Footprint>,
    /// Each transaction's writes, when kept (tracing).
    kept: Option<Vec<(TxIdx, crate::state::value::TxWrites)>>,
    /// Each transaction's trace, when traced in the run (`engine::inspected`), in the order
    /// this worker ran them, beside their transactions (`traced_txs`): taken out once each, in
    /// block order, into the block's traces.
    traces: Vec<Option<InRunTrace>>,
    traced_txs: Vec<TxIdx>,
}

/// A finished run: results in block order, the overlay of the accounts still open to the
/// block's transitions (pre-block writes, the beneficiary's fees, `open` accounts), and the
/// final diff of all other accounts.
pub struct TransferRun {
    pub results: Vec<TxResult>,
    pub overlay: Overlay,
    /// Per worker, sorted by address (see `StateDiff::from_sorted_runs`).
    pub diff: Vec<Vec<(Address, AccountDiff)>>,
    /// Each transaction's writes, in block order, when asked for (tracing).
    pub writes: Option<Vec<crate::state::value::TxWrites>>,
    /// Each transaction's trace, in block order, when traced in the run.
    pub traces: Option<InRunTraces>,
}

/// How the groups were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Plain transfers: the accounts are known, nothing to check (`groups`).
    Known,
    /// Guessed from call data (`predicted::groups`): the run stands only if no worker read or
    /// wrote what another wrote, and falls back otherwise.
    Guessed,
}

/// Runs the groups on `threads` workers on top of `pre`. Each worker also builds the diff of
/// its accounts, except those in `open` (which post-block transitions may credit) and those
/// `pre` wrote, which return in the overlay. Results come back in block order with the same
/// checks and precedence as the sequential loop.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    block: &BlockInput,
    chain: &ChainSpec,
    base: &dyn Storage,
    pre: Overlay,
    groups: Groups,
    grouping: Grouping,
    threads: usize,
    open: &FxHashSet<Address>,
    keep: bool,
    trace: Option<&GethDebugTracingOptions>,
) -> Result<TransferRun, ParallelError> {
    let workers = threads.max(1).min(groups.len().max(1));
    let queue = Queue::new(groups, workers);
    let layered = crate::state::overlay::Layered { base, overlay: &pre };
    let reads_from: &dyn Storage = if pre.accounts.is_empty() { base } else { &layered };
    let is_open = |a: &Address| open.contains(a) || pre.accounts.contains_key(a);
    let out: Vec<Mutex<Option<Result<Share, ParallelError>>>> = (0..workers).map(|_| Mutex::new(None)).collect();
    // Set by a worker that falls back, so the others stop early.
    let abort = AtomicBool::new(false);
    run_on_caller_and_pool(workers, |w| {
        let share = run_worker(block, chain, reads_from, base, &queue, grouping, &is_open, &abort, keep, trace);
        if matches!(share, Err(ParallelError::Fallback(_))) {
            abort.store(true, Relaxed);
        }
        *out[w].lock() = Some(share);
    })
    .map_err(ParallelError::Fatal)?;

    let out: Vec<Result<Share, ParallelError>> = out
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|| Err(ParallelError::Fatal(EngineError::Internal("a worker did not report".into())))))
        .collect();
    // A fallback anywhere decides the run, whatever else the other workers ran into; its
    // reason is the one found, not that of a worker it stopped.
    let reasons = out.iter().filter_map(|s| match s {
        Err(ParallelError::Fallback(why)) => Some(why),
        _ => None,
    });
    if let Some(why) = reasons.clone().find(|why| *why != STOPPED).or(reasons.clone().next()) {
        return Err(ParallelError::Fallback(why.clone()));
    }
    let mut out = out.into_iter().collect::<Result<Vec<Share>, ParallelError>>()?;
    if grouping == Grouping::Guessed {
        check_footprints(&out)?;
    }
    let mut invalid: Option<(TxIdx, String)> = None;
    let mut overlay = pre;
    let mut fees = U256::ZERO;
    let traced = trace.is_some_and(traceable_in_run);
    // Where each transaction's trace is: (worker, position in its share).
    let mut traced_at = if traced { vec![(u32::MAX, 0u32); block.txs.len()] } else { Vec::new() };
    let mut trace_parts = Vec::with_capacity(if traced { out.len() } else { 0 });
    if traced {
        for (w, share) in out.iter_mut().enumerate() {
            for (p, &i) in share.traced_txs.iter().enumerate() {
                traced_at[i] = (w as u32, p as u32);
            }
            trace_parts.push(std::mem::take(&mut share.traces));
        }
    }
    let runs: Vec<_> = out.iter_mut().map(|s| std::mem::take(&mut s.diff)).collect();
    let (diff, traces) = match grouping {
        Grouping::Known => (runs, traced.then(|| traces_in_block_order(trace_parts, &traced_at))),
        // Guessed groups may write different slots of one account (a token's balances).
        Grouping::Guessed if !traced => (merge_shared_accounts(base, runs).map_err(ParallelError::Fatal)?, None),
        // Two serial steps of about the same length (~50 us each on 1,000 token transfers),
        // side by side: the pool thread orders the traces while the caller merges the diff.
        Grouping::Guessed => {
            let (diff, traces) = side_by_side(|| merge_shared_accounts(base, runs), || traces_in_block_order(trace_parts, &traced_at))?;
            (diff.map_err(ParallelError::Fatal)?, Some(traces))
        }
    };
    let mut writes = keep.then(|| vec![Vec::new(); block.txs.len()]);
    // Each worker's results are sorted into block order: merge them, moving each result once.
    let mut streams = Vec::with_capacity(out.len());
    for mut share in out {
        if let (Some(writes), Some(kept)) = (writes.as_mut(), share.kept.take()) {
            for (i, w) in kept {
                writes[i] = w;
            }
        }
        if let Some((i, reason)) = share.invalid {
            if invalid.as_ref().is_none_or(|(j, _)| i < *j) {
                invalid = Some((i, reason));
            }
        }
        streams.push(share.results.into_iter().peekable());
        fees = fees.saturating_add(share.fees);
        overlay.merge(share.open);
    }
    let mut results = Vec::with_capacity(block.txs.len());
    let mut cumulative = 0u64;
    for i in 0..block.txs.len() {
        block.check_gas_available(i, cumulative).map_err(ParallelError::Fatal)?;
        let slot = streams.iter_mut().find_map(|s| match s.peek() {
            Some((j, _)) if *j == i => s.next().map(|(_, r)| r),
            _ => None,
        });
        match slot {
            Some(r) => {
                cumulative += r.gas_used;
                results.push(r);
            }
            None => {
                return Err(match &invalid {
                    Some((j, reason)) if *j == i => ParallelError::Fatal(block.invalid_tx(i, reason.clone())),
                    _ => ParallelError::Fatal(EngineError::Internal(format!("transaction {i} has no result"))),
                })
            }
        }
    }
    if !fees.is_zero() {
        overlay.add_balance(base, block.beneficiary, fees).map_err(|e| ParallelError::Fatal(e.into()))?;
    }
    Ok(TransferRun { results, overlay, diff, writes, traces })
}

/// `a()` on the caller and `b()` on a pool thread, at once.
fn side_by_side<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> Result<(A, B), ParallelError> {
    let (a, b) = (Mutex::new(Some(a)), Mutex::new(Some(b)));
    let (got_a, got_b) = (Mutex::new(None), Mutex::new(None));
    run_on_caller_and_pool(2, |w| match w {
        0 => *got_a.lock() = a.lock().take().map(|a| a()),
        _ => *got_b.lock() = b.lock().take().map(|b| b()),
    })
    .map_err(ParallelError::Fatal)?;
    match (got_a.into_inner(), got_b.into_inner()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(ParallelError::Fatal(EngineError::Internal("a side-by-side step did not run".into()))),
    }
}

/// The workers' traces in block order, each moved once (a trace is 584 bytes, and this is
/// serial work after the workers are done): `at` says where transaction `i`'s trace is in
/// `parts`.
fn traces_in_block_order(mut parts: Vec<Vec<Option<InRunTrace>>>, at: &[(u32, u32)]) -> InRunTraces {
    let mut traces = Vec::with_capacity(at.len());
    for (i, &(w, p)) in at.iter().enumerate() {
        match parts.get_mut(w as usize).and_then(|part| part.get_mut(p as usize)).and_then(Option::take) {
            Some(Ok(trace)) => traces.push(trace),
            Some(Err(why)) => return Err(why),
            None => return Err(format!("transaction {i} was not traced")),
        }
    }
    Ok(traces)
}

/// Falls back unless no worker read or wrote a location that another worker wrote; the
/// workers check each other in parallel.
fn check_footprints(shares: &[Share]) -> Result<(), ParallelError> {
    let prints: Vec<&Footprint> = shares.iter().filter_map(|s| s.footprint.as_ref()).collect();
    let found: Vec<AtomicBool> = prints.iter().map(|_| AtomicBool::new(false)).collect();
    // Taken in turn, as the groups were: a late pool thread finds its check done.
    let next = AtomicUsize::new(0);
    run_on_caller_and_pool(prints.len(), |_| loop {
        let w = next.fetch_add(1, Relaxed);
        let Some(mine) = prints.get(w) else { break };
        // Conflicts within a worker stopped it as they happened (`run_group`).
        let shared = prints.iter().enumerate().any(|(o, other)| o != w && mine.conflict(other));
        found[w].store(shared, Relaxed);
    })
    .map_err(ParallelError::Fatal)?;
    match found.iter().any(|f| f.load(Relaxed)) {
        true => Err(ParallelError::Fallback("guessed groups on different workers share a location".into())),
        false => Ok(()),
    }
}

/// The workers' sorted diffs with no account in two of them: an account several workers wrote
/// (a token whose balances they each moved: other slots, as the footprints show; at most one of
/// them changed its balance, nonce or code) is merged into one entry and dropped from the other
/// runs. Only those accounts move; the rest stay where their workers put them.
fn merge_shared_accounts(
    base: &dyn Storage,
    mut runs: Vec<Vec<(Address, AccountDiff)>>,
) -> Result<Vec<Vec<(Address, AccountDiff)>>, EngineError> {
    // Walk the runs' addresses in order, noting where one appears in more than one run.
    let mut heads = vec![0usize; runs.len()];
    let mut shared: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut here: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    while let Some(next) = runs.iter().zip(&heads).filter_map(|(r, h)| r.get(*h).map(|(a, _)| *a)).min() {
        here.clear();
        for (r, run) in runs.iter().enumerate() {
            if run.get(heads[r]).is_some_and(|(a, _)| *a == next) {
                here.push((r, heads[r]));
                heads[r] += 1;
            }
        }
        if here.len() > 1 {
            shared.push(here.clone());
        }
    }
    if shared.is_empty() {
        return Ok(runs);
    }
    let mut dropped: Vec<Vec<usize>> = vec![Vec::new(); runs.len()];
    for places in shared {
        let address = runs[places[0].0][places[0].1].0;
        let before = base.basic(address)?.unwrap_or_default();
        let changed =
            |d: &AccountDiff| d.balance != before.balance || d.nonce != before.nonce || d.code.is_some() || d.created || d.deleted;
        let (kr, ki) = places.iter().copied().find(|(r, i)| changed(&runs[*r][*i].1)).unwrap_or(places[0]);
        for (r, i) in places.into_iter().filter(|p| *p != (kr, ki)) {
            let mut storage = std::mem::take(&mut runs[r][i].1.storage);
            // Disjoint slots: appending merges the two sorted trees in linear time.
            runs[kr][ki].1.storage.append(&mut storage);
            dropped[r].push(i);
        }
    }
    for (run, drop) in runs.iter_mut().zip(dropped) {
        if drop.is_empty() {
            continue;
        }
        let drop: FxHashSet<usize> = drop.into_iter().collect();
        let mut i = 0;
        run.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
    }
    Ok(runs)
}

/// Reads through the worker's overlay, keeping the worker's footprint when groups are guessed.
struct ShareReader<'a> {
    inner: OverlayReader<'a>,
    footprint: Option<Footprint>,
}

impl StateReader for ShareReader<'_> {
    fn read(&mut self, loc: Loc) -> Result<Value, ReadError> {
        if let Some(f) = &mut self.footprint {
            f.read(loc);
        }
        self.inner.read(loc)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError> {
        self.inner.block_hash(number)
    }
}

/// One worker: claims batches of groups until none are left, running each group whole, in
/// block order, on the worker's one private overlay. Groups may run in any order: they share
/// no account, which guessed groups check as they go (`Footprint`).
#[allow(clippy::too_many_arguments)]
fn run_worker(
    block: &BlockInput,
    chain: &ChainSpec,
    reads_from: &dyn Storage,
    base: &dyn Storage,
    queue: &Queue,
    grouping: Grouping,
    is_open: &dyn Fn(&Address) -> bool,
    abort: &AtomicBool,
    keep: bool,
    trace: Option<&GethDebugTracingOptions>,
) -> Result<Share, ParallelError> {
    let fatal = |e: EngineError| ParallelError::Fatal(e);
    let guessed = grouping == Grouping::Guessed;
    let mut share = Share { kept: keep.then(Vec::new), ..Default::default() };
    // Sized for ~6 locations a transaction (an ERC-20 transfer's), this worker's share.
    let footprint = guessed.then(|| Footprint::new(block.beneficiary, block.txs.len() * 6 / queue.workers()));
    let reader = ShareReader { inner: OverlayReader { base: reads_from, overlay: Overlay::default() }, footprint };
    let mut vm = BlockVm::new(block, chain, reader).with_simple_transfers(SimpleTransfers::Direct);
    let tracer = trace.and_then(|o| InRunTracer::new(o, block, block.block_env(chain)));
    let traced = tracer.is_some();
    if let Some(tracer) = tracer {
        vm = vm.with_tracing(tracer);
    }
    while let Some(batch) = queue.claim() {
        let txs: usize = batch.iter().map(|g| queue.group(*g).len()).sum();
        share.results.reserve(txs);
        if traced {
            // Grown once per batch: a trace is 584 bytes to move on every doubling.
            share.traces.reserve(txs);
            share.traced_txs.reserve(txs);
        }
        vm.reader_mut().inner.overlay.accounts.reserve(txs * 2);
        for txs in batch.iter().map(|g| queue.group(*g)) {
            if !guessed {
                // A receiver with code would run it, and code may touch any account: not this engine's.
                for &i in txs {
                    let TxKind::Call(to) = block.txs[i].env.kind else { unreachable!("groups holds calls only") };
                    if !matches!(reads_from.read(&Loc::Code(to)).map_err(|e| fatal(e.into()))?, Value::Code(None)) {
                        return Err(ParallelError::Fallback(format!("transaction {i} calls code")));
                    }
                }
            }
            // Groups are told apart by their first transaction, unique in the block.
            if let Some(f) = &mut vm.reader_mut().footprint {
                f.group = txs[0] as u32;
            }
            run_group(block, &mut vm, &mut share, txs, guessed, reads_from, abort)?;
        }
    }
    share.results.sort_unstable_by_key(|(i, _)| *i);
    share.footprint = vm.reader_mut().footprint.take();
    let overlay = std::mem::take(&mut vm.reader_mut().inner.overlay);
    (share.open, share.diff) = sorted_diff(base, overlay, is_open).map_err(fatal)?;
    Ok(share)
}

/// Why a run of guessed groups falls back: two groups touched `loc`, one writing it.
fn shared_location(loc: Loc) -> ParallelError {
    ParallelError::Fallback(format!("guessed groups share {loc:?}"))
}

/// Why a worker stopped when another fell back.
const STOPPED: &str = "another worker fell back";

/// Runs one group's transactions in block order; stops the group at an invalid one.
fn run_group(
    block: &BlockInput,
    vm: &mut BlockVm<ShareReader<'_>>,
    share: &mut Share,
    txs: &[TxIdx],
    guessed: bool,
    reads_from: &dyn Storage,
    abort: &AtomicBool,
) -> Result<(), ParallelError> {
    let fatal = |e: EngineError| ParallelError::Fatal(e);
    for &i in txs {
        if abort.load(Relaxed) {
            return Err(ParallelError::Fallback(STOPPED.into()));
        }
        let outcome = vm.execute(i, &block.txs[i], true).map_err(|e| match e {
            // What a guessed group read may be wrong: only Block-STM can tell.
            ExecError::Fatal(e) if guessed => ParallelError::Fallback(format!("transaction {i}: {e}")),
            ExecError::Fatal(e) => fatal(e),
            ExecError::Blocked(_) => fatal(EngineError::Internal("a private overlay blocked".into())),
        })?;
        if let Some(e) = outcome.fatal {
            return Err(if guessed { ParallelError::Fallback(format!("transaction {i}: {e}")) } else { fatal(e) });
        }
        if outcome.hazard {
            return Err(ParallelError::Fallback(format!("transaction {i} defeats lazy updates")));
        }
        match outcome.result {
            Some(Ok(r)) => share.results.push((i, r)),
            Some(Err(reason)) if guessed => return Err(ParallelError::Fallback(format!("transaction {i} is invalid here: {reason}"))),
            Some(Err(reason)) => {
                // The block is invalid: the rest of this group is not needed, but other
                // groups' earlier transactions are (the first invalid one in block order is
                // the one reported).
                if share.invalid.as_ref().is_none_or(|(j, _)| i < *j) {
                    share.invalid = Some((i, reason));
                }
                return Ok(());
            }
            None => return Err(fatal(EngineError::Internal(format!("transaction {i} produced no result")))),
        }
        if let Some(kept) = share.kept.as_mut() {
            kept.push((i, outcome.writes.clone()));
        }
        if let Some(trace) = vm.take_trace() {
            share.traces.push(Some(trace));
            share.traced_txs.push(i);
        }
        let reader = vm.reader_mut();
        for (loc, value) in outcome.writes {
            match (loc, value) {
                (Loc::Basic(a), WriteValue::BalanceDelta(fee)) if a == block.beneficiary => {
                    share.fees = share.fees.saturating_add(fee);
                }
                (loc, value) => {
                    if let Some(f) = &mut reader.footprint {
                        f.write(loc, &value);
                    }
                    reader.inner.overlay.apply(reads_from, loc, value).map_err(|e| fatal(e.into()))?
                }
            }
        }
        if let Some(loc) = reader.footprint.as_ref().and_then(|f| f.within) {
            return Err(shared_location(loc));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_sharing_keys_directly_or_through_others_group_together() {
        let a = |b: u8| Address::repeat_byte(b);
        let keys = [vec![a(1), a(2)], vec![a(3), a(3)], vec![a(2), a(4)], vec![a(5)], vec![a(4), a(3)]];
        let groups = union_groups(&keys);
        assert_eq!(groups.iter().map(<[TxIdx]>::to_vec).collect::<Vec<_>>(), vec![vec![0, 1, 2, 4], vec![3]]);
        assert_eq!(groups, Groups::from(vec![vec![0, 1, 2, 4], vec![3]]));
    }

    #[test]
    fn workers_claim_heaviest_groups_first_in_shrinking_batches() {
        let groups: Vec<Vec<TxIdx>> = (0..40).map(|i| vec![i]).chain([vec![40, 41, 42, 43, 44, 45, 46, 47]]).collect();
        let queue = Queue::new(Groups::from(groups), 2);
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        while let Some(batch) = queue.claim() {
            sizes.push(batch.iter().map(|g| queue.group(*g).len()).sum::<usize>());
            seen.extend(batch.iter().flat_map(|g| queue.group(*g)).copied());
        }
        assert_eq!(queue.claim(), None);
        assert_eq!(&seen[..8], &[40, 41, 42, 43, 44, 45, 46, 47], "the heaviest group first");
        seen.sort_unstable();
        assert_eq!(seen, (0..48).collect::<Vec<_>>(), "every group claimed once");
        assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "batches shrink: {sizes:?}");
        assert_eq!(*sizes.last().unwrap(), 1);
    }
}
