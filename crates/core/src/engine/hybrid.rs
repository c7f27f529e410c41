//! `execute_block`: picks the engine (hybrid by default), runs it, and assembles receipts, the
//! post-state diff and statistics.

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    block::TxIdx,
    engine::block_stm::{self, ParallelError},
    engine::fast_paths::groups::Groups,
    engine::fast_paths::guessed_groups::{self, PER_HOLDER_SELECTORS},
    engine::fast_paths::transfer_groups,
    engine::final_state::{sorted_diff, state_diff},
    engine::inspected::{traceable_in_run, InRunTraces},
    engine::sequential,
    engine::transitions::{self, post_block, pre_block},
    engine::vm::TxResult,
    error::EngineError,
    result::Engine,
    result::ExecutionMode,
    result::{BlockResult, Receipt, StateDiff, Stats},
    state::storage::Storage,
    state::value::Loc,
    state::value::TxWrites,
    state::value::Value,
    threads::available_threads,
    verify::{block_bloom, receipts_root},
};
use alloy_primitives::Address;
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;
use std::time::Instant;

/// What the caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeRequest {
    /// Parallel when it pays, sequential otherwise.
    #[default]
    Auto,
    Sequential,
    Parallel,
}

impl std::str::FromStr for ModeRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "sequential" => Ok(Self::Sequential),
            "parallel" => Ok(Self::Parallel),
            other => Err(format!("unknown mode '{other}' (expected auto, sequential or parallel)")),
        }
    }
}

/// How to execute a block.
#[derive(Clone, Debug)]
pub struct ExecuteOptions {
    pub chain: ChainSpec,
    pub mode: ModeRequest,
    /// Worker threads for parallel execution; 0 means the machine's available parallelism.
    pub threads: usize,
    /// Also compute the receipts root. Off by default: it is verification, not execution, and
    /// hashing the receipts trie costs as much as the state diff (`verify::verify_header`
    /// computes it when it is absent).
    pub receipts_root: bool,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self { chain: ChainSpec::default(), mode: ModeRequest::Auto, threads: 0, receipts_root: false }
    }
}

/// Below these, parallel execution costs more than it saves. Measured on the mainnet fixture
/// blocks with 2 threads: blocks under ~3M gas take well under a millisecond on one core, and
/// waking workers and merging their results cost more than the parallel part saved. (Blocks
/// of cheap transactions, payout runs above all, no longer count: simple transfers skip the
/// interpreter and do not chain on their sender.)
pub const MIN_PARALLEL_TXS: usize = 8;
pub const MIN_PARALLEL_GAS: u64 = 3_000_000;
/// Below this much expected sequential work (microseconds; see `expected_work_us`), a block that
/// is not made only of plain transfers runs sequentially. On a 2-vCPU VM a worker woken right
/// after a sequential run arrives 0.1-0.6 ms late (median, p90), Block-STM costs ~8% of the work
/// on its own and two workers execute 1.44x as fast as one: with a 0.6 ms wake and the ~0.1 ms a
/// parallel run costs beyond its transactions, work under ~1 ms does not repay it. Mainnet
/// blocks of 2016-2018 (2179522, 3356896, 5891667: 0.4-0.8 ms of mostly plain transfers and
/// token calls, 4-8M gas) ran at 0.63-0.93x in `replay`, 1.0-1.1 ms blocks (11814555, 4330482)
/// at 0.63-1.39x depending on the run; from ~1.2 ms up blocks gain.
pub const MIN_PARALLEL_WORK_US: u64 = 1_200;
/// Up to this many threads, auto mode traces a block that Block-STM would take in one
/// sequential pass instead (see `run`).
pub const MAX_THREADS_TRACED_SEQUENTIALLY: usize = 2;
/// Largest share of a block of plain transfers (in percent) one group may hold (see
/// `one_group_sequential_reason`): with 75%, two workers are at best 1.33x as fast as one, about
/// what the group engine's bookkeeping costs.
pub const MAX_GROUP_PERCENT: usize = 75;
/// Largest share of the block (in percent) one known dependency chain may hold.
pub const MAX_CHAIN_PERCENT: usize = 50;
/// Largest share of the block's gas limits (in percent) one known dependency chain, or one
/// transaction, may hold: it runs on one worker while the others wait for it. Blocks at
/// 48–67% ran at 0.75–0.88x, the heaviest parallel winner sat at 41%.
pub const MAX_CHAIN_GAS_PERCENT: u64 = 45;
/// Largest share of the block (in percent) that may call one contract entry point. Calls into
/// one entry point usually update the same storage (a counter, a pot, a sale's total) and so
/// form a dependency chain that sender hints cannot see: a block that was 45% value sent into
/// one contract ran at 0.2–0.8x. By Amdahl's law a chain of 40% caps 2 threads at 1.43x
/// before any abort is paid.
pub const MAX_ENTRY_POINT_PERCENT: usize = 40;

/// How many transactions call the busiest entry point (a contract with code before the block,
/// and the first four bytes of call data; none for plain value) that at least `threshold` of
/// them call. Only targets counted above the threshold are looked up in the pre-state (at most
/// two at 40%): reading every target's code cost ~0.1 ms on a block of 1,400 transactions.
fn hottest_entry_point(block: &BlockInput, storage: &dyn Storage, threshold: usize) -> Result<Option<usize>, EngineError> {
    let mut calls: FxHashMap<(Address, [u8; 4]), usize> = FxHashMap::default();
    for tx in &block.txs {
        let TxKind::Call(to) = tx.env.kind else {
            continue;
        };
        let data = &tx.env.data;
        let selector: [u8; 4] = if data.len() >= 4 { data[..4].try_into().expect("four bytes") } else { [0xff; 4] };
        if !PER_HOLDER_SELECTORS.contains(&selector) {
            *calls.entry((to, selector)).or_default() += 1;
        }
    }
    let mut hot: Vec<((Address, [u8; 4]), usize)> = calls.into_iter().filter(|(_, count)| *count >= threshold).collect();
    hot.sort_unstable_by_key(|(_, count)| std::cmp::Reverse(*count));
    for ((to, _), count) in hot {
        if matches!(storage.read(&Loc::Code(to))?, Value::Code(Some(_))) {
            return Ok(Some(count));
        }
    }
    Ok(None)
}

// Auto mode's choice is made in three parts, cheapest first (see `execute_block`): the
// block's size, then its hottest entry point (for blocks not made only of plain transfers),
// both before any worker is woken, then its dependency chains. Each gives `Some(reason)`
// when the block should run sequentially.

/// Too little work to spread over workers. Checked first: on a block of a few microseconds,
/// even grouping its transfers shows in the ratio.
fn size_sequential_reason(block: &BlockInput, threads: usize) -> Option<String> {
    if threads < 2 {
        return Some("one thread".into());
    }
    if block.txs.len() < MIN_PARALLEL_TXS {
        return Some(format!("{} transactions (< {MIN_PARALLEL_TXS})", block.txs.len()));
    }
    let gas = block.expected_gas();
    (gas < MIN_PARALLEL_GAS).then(|| format!("{gas} gas (< {MIN_PARALLEL_GAS})"))
}

/// What a block's parallel execution can save, in microseconds of sequential work on a 2-vCPU
/// VM, from what is known before running it: ~1.5 µs a transaction (reading its accounts, paying
/// fees, the receipt) and 0.4 ns for each unit of gas beyond the 21,000 every transaction pays.
/// Gas alone says little: the fixture blocks took 0.07-1.2 µs per unit of it, the cheap end made
/// of blocks full of plain transfers, whose gas is all base. A simple transfer counts for
/// `SIMPLE_TRANSFER_NS` only: sequential execution computes it directly in ~1 µs, and Block-STM
/// spends more than that again on scheduling and validating it (13287210, 1,410 transfers of
/// 1,414: 1.4 ms sequentially, 2.3 ms on Block-STM at 2 threads).
pub fn expected_work_us(block: &BlockInput) -> u64 {
    let n = block.txs.len() as u64;
    let transfers = block.txs.iter().filter(|t| t.simple_transfer_to().is_some()).count() as u64;
    ((n - transfers) * 1_500 + transfers * SIMPLE_TRANSFER_NS) / 1_000 + block.expected_gas().saturating_sub(n * 21_000) * 2 / 5_000
}

/// What a simple transfer adds to `expected_work_us`, in nanoseconds.
pub const SIMPLE_TRANSFER_NS: u64 = 300;

/// Too little work beyond the transactions' base cost to repay waking a worker.
fn work_sequential_reason(block: &BlockInput) -> Option<String> {
    let work = expected_work_us(block);
    (work < MIN_PARALLEL_WORK_US).then(|| format!("about {work} µs of work expected (< {MIN_PARALLEL_WORK_US} µs)"))
}

/// Many transactions calling one contract entry point.
fn entry_point_sequential_reason(block: &BlockInput, storage: &dyn Storage) -> Result<Option<String>, EngineError> {
    let threshold = (block.txs.len() * MAX_ENTRY_POINT_PERCENT).div_ceil(100).max(1);
    let hot = hottest_entry_point(block, storage, threshold)?;
    Ok(hot.map(|hot| format!("{hot} of {} transactions call one contract entry point", block.txs.len())))
}

/// Plain transfers whose largest group (transfers sharing an account) holds most of the block:
/// that group runs on one worker as sequential execution would, computed directly the same way,
/// and the run adds the groups' bookkeeping to it. Generated on 2 threads: 1,000 and 3,000
/// transfers to one account, or from one sender, 0.87-0.89x; 40 chains of 25, 1.26x; 250
/// independent transfers, 1.18x.
fn one_group_sequential_reason(groups: &Groups, txs: usize) -> Option<String> {
    let largest = groups.iter().map(<[TxIdx]>::len).max().unwrap_or(0);
    (largest * 100 >= txs * MAX_GROUP_PERCENT)
        .then(|| format!("{largest} of {txs} transfers share accounts (one group of the transfer-group engine)"))
}

/// The part of auto mode's choice made from the block's dependency hints.
fn chain_sequential_reason(block: &BlockInput, hints: &[Option<TxIdx>]) -> Option<String> {
    let chain = block_stm::longest_chain(hints);
    if chain * 100 >= block.txs.len() * MAX_CHAIN_PERCENT {
        return Some(format!("{chain} of {} transactions form one dependency chain", block.txs.len()));
    }
    let heaviest = block_stm::heaviest_chain_percent(block, hints);
    if heaviest >= MAX_CHAIN_GAS_PERCENT {
        return Some(format!("one dependency chain holds {heaviest}% of the block's gas limits (critical path)"));
    }
    None
}

/// Executes one block on top of `storage` (its pre-state).
pub fn execute_block(block: &BlockInput, storage: &dyn Storage, options: &ExecuteOptions) -> Result<BlockResult, EngineError> {
    run(block, storage, options, false, None).map(|(result, _, _)| result)
}

/// `execute_block`, also returning what each transaction wrote as the engine committed it
/// (deltas included), in block order: what tracing re-executes each transaction on
/// (`trace::BlockWrites`). Same engines, same result.
pub fn execute_block_with_writes(
    block: &BlockInput,
    storage: &dyn Storage,
    options: &ExecuteOptions,
) -> Result<(BlockResult, Vec<TxWrites>), EngineError> {
    let (result, writes, _) = run(block, storage, options, true, None)?;
    let writes = writes.ok_or_else(|| EngineError::Internal("the engine kept no writes".into()))?;
    Ok((result, writes))
}

/// What a run traced for `execute_block_for_tracing`.
pub enum Traced {
    /// Every transaction's trace, built in the run (`engine::inspected`), in block order, or
    /// why one could not be built.
    InRun(InRunTraces),
    /// Every transaction's writes, in block order, to trace it after the run (`trace::replay`).
    Writes(Vec<TxWrites>),
}

/// `execute_block` (same engines, same result) for tracing with `trace`: where the engine
/// that ran the block executes each transaction once on its final pre-state (sequential
/// execution, transfer and guessed groups) and the tracer reads nothing but the execution, the
/// traces come from that run; otherwise (Block-STM's speculative runs, `prestateTracer`) the
/// writes to trace each transaction after the block committed.
pub fn execute_block_for_tracing(
    block: &BlockInput,
    storage: &dyn Storage,
    options: &ExecuteOptions,
    trace: &GethDebugTracingOptions,
) -> Result<(BlockResult, Traced), EngineError> {
    match run(block, storage, options, true, Some(trace))? {
        (result, _, Some(traces)) => Ok((result, Traced::InRun(traces))),
        (result, Some(writes), None) => Ok((result, Traced::Writes(writes))),
        (_, None, None) => Err(EngineError::Internal("the engine kept neither traces nor writes".into())),
    }
}

/// Runs the block; with `keep`, the engine keeps each transaction's writes (untraced runs
/// do not pay for them); with `trace`, engines that can trace in their run do so (and keep no
/// writes then).
#[allow(clippy::type_complexity)]
fn run(
    block: &BlockInput,
    storage: &dyn Storage,
    options: &ExecuteOptions,
    keep: bool,
    trace: Option<&GethDebugTracingOptions>,
) -> Result<(BlockResult, Option<Vec<TxWrites>>, Option<InRunTraces>), EngineError> {
    let in_run = trace.is_some_and(traceable_in_run);
    // Writes are for tracing after the run, which in-run tracing makes needless.
    let keep_unless_traced = keep && !in_run;
    let started = Instant::now();
    let chain = &options.chain;
    let threads = if options.threads == 0 { available_threads() } else { options.threads };
    let auto = options.mode == ModeRequest::Auto;
    let mut reason = if auto { size_sequential_reason(block, threads) } else { None };
    // A block of plain transfers runs on the transfer-group engine (see `transfers`) unless one
    // group holds most of it. Sequential execution computes transfers directly too, so the
    // groups pay only by running side by side; their balance, not the block's work, decides.
    let mut groups =
        if options.mode != ModeRequest::Sequential && threads >= 2 && reason.is_none() { transfer_groups::groups(block) } else { None };
    if auto {
        if let Some(why) = groups.as_ref().and_then(|g| one_group_sequential_reason(g, block.txs.len())) {
            reason = Some(why);
            groups = None;
        }
    }
    // Auto mode's checks that need no dependency hints come first: a block they send to
    // sequential execution wakes no worker (that cost ~4% of a 0.8 ms block).
    if auto && reason.is_none() && groups.is_none() {
        reason = match work_sequential_reason(block) {
            Some(why) => Some(why),
            None => entry_point_sequential_reason(block, storage)?,
        };
    }
    // Wakes the workers while the block is prepared; released once a parallel run queues its
    // work, or when this guard drops (sequential execution, an early error).
    let mut warm = (options.mode != ModeRequest::Sequential && !block.txs.is_empty() && reason.is_none())
        .then(|| block_stm::warm_up(threads))
        .flatten();
    let pre = pre_block(block, chain, storage)?;

    // Computed at most once, and only when needed: auto mode's choice and the parallel
    // scheduler both use them.
    let hints = std::cell::OnceCell::new();
    let hints = || hints.get_or_init(|| block_stm::dependency_hints(block, chain)).as_slice();
    let run_parallel = match options.mode {
        ModeRequest::Sequential => false,
        // Nothing to spread over workers: waking them would be all the work.
        ModeRequest::Parallel if block.txs.is_empty() => {
            reason = Some("no transactions".into());
            false
        }
        ModeRequest::Parallel => true,
        ModeRequest::Auto => {
            if reason.is_none() && groups.is_none() {
                reason = chain_sequential_reason(block, hints());
            }
            reason.is_none()
        }
    };
    if !run_parallel {
        drop(warm.take());
    }
    let exec_started = Instant::now();
    let mut stats = sequential_stats(block);
    // The final diff of the accounts the block's transitions leave alone, built by the
    // parallel engines' workers.
    let mut diff_parts = None;
    let mut run_block_stm = run_parallel;
    // Blocks whose transactions' accounts can be guessed from their call data run as groups
    // too (`predicted`), checked once they are done; Block-STM takes them otherwise.
    let groups = match groups {
        Some(g) => Some((g, transfer_groups::Grouping::Known)),
        None if run_parallel => guessed_groups::groups(block, threads).map(|g| (g, transfer_groups::Grouping::Guessed)),
        None => None,
    };
    let transfer_run = match groups.filter(|_| run_parallel) {
        Some((groups, grouping)) => {
            let open = transitions::post_block_accounts(block, chain);
            match transfer_groups::execute(block, chain, storage, pre.clone(), groups, grouping, threads, &open, keep_unless_traced, trace)
            {
                Ok(run) => Some((run, grouping)),
                Err(ParallelError::Fatal(e)) => return Err(e),
                Err(ParallelError::Fallback(why)) => {
                    // Not only plain transfers after all: Block-STM takes the block when it was
                    // asked for; auto mode chose parallel for transfers only. Guessed groups
                    // were auto mode's choice of engine, not of parallel execution.
                    if options.mode == ModeRequest::Auto && grouping == transfer_groups::Grouping::Known {
                        run_block_stm = false;
                        reason = Some(format!("fell back to sequential: {why}"));
                    }
                    None
                }
            }
        }
        None => None,
    };
    // Block-STM's blocks are traced after the run (`engine::inspected`): on few threads that
    // second pass costs more than Block-STM saves over one traced sequential pass. Wall time is
    // about untraced/speedup + traced/threads against traced, so with Block-STM's usual 1.2-1.5x
    // at 2 threads and tracing adding 10-30%, sequential wins (19426587, callTracer: 3.5 ms of
    // CPU sequentially, 6.6 ms on Block-STM at 2 threads).
    if auto && in_run && run_block_stm && transfer_run.is_none() && threads <= MAX_THREADS_TRACED_SEQUENTIALLY {
        run_block_stm = false;
        drop(warm.take());
        reason = Some(format!("traced on {threads} threads: Block-STM's blocks are traced in a second pass"));
    }
    let kept;
    let mut traces = None;
    let (results, overlay) = if let Some((run, grouping)) = transfer_run {
        stats.mode = ExecutionMode::Parallel;
        stats.engine = match grouping {
            transfer_groups::Grouping::Known => Engine::TransferGroups,
            transfer_groups::Grouping::Guessed => Engine::GuessedGroups,
        };
        stats.threads = threads;
        diff_parts = Some(run.diff);
        kept = run.writes;
        traces = run.traces;
        (run.results, run.overlay)
    } else if run_block_stm {
        match block_stm::execute(block, chain, storage, pre.clone(), threads, hints(), keep) {
            Ok(run) => {
                stats.mode = ExecutionMode::Parallel;
                stats.engine = Engine::BlockStm;
                stats.threads = threads;
                stats.executions = run.stats.executions;
                stats.reexecutions = run.stats.executions.saturating_sub(block.txs.len() as u64);
                stats.validation_aborts = run.stats.validation_aborts;
                stats.dependency_waits = run.stats.dependency_waits;
                diff_parts = Some(run.diff);
                kept = run.writes;
                (run.results, run.overlay)
            }
            Err(ParallelError::Fatal(e)) => return Err(e),
            Err(ParallelError::Fallback(why)) => {
                reason = Some(format!("fell back to sequential: {why}"));
                let run = sequential::execute_keeping(block, chain, storage, pre, keep_unless_traced, trace)?;
                (kept, traces) = (run.writes, run.traces);
                (run.results, run.overlay)
            }
        }
    } else {
        let run = sequential::execute_keeping(block, chain, storage, pre, keep_unless_traced, trace)?;
        (kept, traces) = (run.writes, run.traces);
        (run.results, run.overlay)
    };
    stats.execution_us = exec_started.elapsed().as_micros() as u64;
    stats.reason = reason;
    let result = finish(block, chain, storage, results, overlay, diff_parts, stats, options.receipts_root, started)?;
    Ok((result, kept, traces))
}

/// Statistics of a run that executed every transaction once, on one thread.
fn sequential_stats(block: &BlockInput) -> Stats {
    Stats {
        mode: ExecutionMode::Sequential,
        engine: Engine::Sequential,
        threads: 1,
        reason: None,
        executions: block.txs.len() as u64,
        reexecutions: 0,
        validation_aborts: 0,
        dependency_waits: 0,
        execution_us: 0,
        total_us: 0,
    }
}

/// Post-block transitions, receipts, the state diff (joining a parallel engine's parts) and
/// the header's checks, after an engine produced `results` and `overlay`.
#[allow(clippy::too_many_arguments)]
fn finish(
    block: &BlockInput,
    chain: &ChainSpec,
    storage: &dyn Storage,
    results: Vec<TxResult>,
    mut overlay: crate::state::overlay::Overlay,
    diff_parts: Option<Vec<Vec<(Address, crate::result::AccountDiff)>>>,
    mut stats: Stats,
    want_root: bool,
    started: Instant,
) -> Result<BlockResult, EngineError> {
    let post = post_block(block, chain, storage, &mut overlay)?;
    let receipts = build_receipts(block, results);
    let requests_hash = match post.request_queues {
        Some(queues) => crate::block::requests::requests_hash(chain, &receipts, queues)?,
        None => None,
    };
    // After a parallel engine, only the accounts its workers left open remain to diff here.
    let state_diff = match diff_parts {
        Some(mut parts) => {
            parts.push(sorted_diff(storage, overlay, |_| false)?.1);
            StateDiff::from_sorted_runs(parts)
        }
        None => state_diff(storage, overlay)?,
    };
    let root = want_root.then(|| receipts_root(&receipts));
    let logs_bloom = block_bloom(&receipts);
    stats.total_us = started.elapsed().as_micros() as u64;
    Ok(BlockResult {
        number: block.number,
        hash: block.hash,
        gas_used: receipts.last().map(|r| r.cumulative_gas_used).unwrap_or(0),
        logs_bloom,
        receipts_root: root,
        receipts,
        state_diff,
        requests_hash,
        warnings: post.warnings,
        stats,
    })
}

/// Runs `block` on the group engine with `groups` taken as guesses, checked after the run as
/// `predicted::groups`' are: the result when the check passed, `None` when the run fell back.
/// For tests that hand the check wrong guesses on purpose.
pub fn execute_guessed_groups(
    block: &BlockInput,
    storage: &dyn Storage,
    chain: &ChainSpec,
    groups: Vec<Vec<TxIdx>>,
    threads: usize,
    receipts_root: bool,
) -> Result<Option<BlockResult>, EngineError> {
    let started = Instant::now();
    let pre = pre_block(block, chain, storage)?;
    let open = transitions::post_block_accounts(block, chain);
    let run = match transfer_groups::execute(
        block,
        chain,
        storage,
        pre,
        groups.into(),
        transfer_groups::Grouping::Guessed,
        threads,
        &open,
        false,
        None,
    ) {
        Ok(run) => run,
        Err(ParallelError::Fallback(_)) => return Ok(None),
        Err(ParallelError::Fatal(e)) => return Err(e),
    };
    let stats = Stats { mode: ExecutionMode::Parallel, engine: Engine::GuessedGroups, threads, ..sequential_stats(block) };
    finish(block, chain, storage, run.results, run.overlay, Some(run.diff), stats, receipts_root, started).map(Some)
}

fn build_receipts(block: &BlockInput, results: Vec<TxResult>) -> Vec<Receipt> {
    let mut cumulative = 0u64;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            cumulative += r.gas_used;
            let tx = &block.txs[i];
            Receipt {
                transaction_hash: tx.hash,
                transaction_index: i as u64,
                tx_type: tx.tx_type,
                status: r.success,
                gas_used: r.gas_used,
                cumulative_gas_used: cumulative,
                logs_bloom: r.logs_bloom.map_or(alloy_primitives::Bloom::ZERO, |b| *b),
                logs: r.logs,
                contract_address: r.contract_address,
            }
        })
        .collect()
}
