//! One transaction after the other, each committed before the next: revm, except simple
//! transfers, computed directly (`BlockVm::simple_transfer`).
//! The reference for the parallel engine, and its fallback.

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    block::TxIdx,
    engine::costs::{self, Measured},
    engine::inspected::{InRunTracer, InRunTraces},
    engine::transitions::OverlayReader,
    engine::vm::{BlockVm, ExecError, SimpleTransfers, TxResult},
    error::EngineError,
    state::overlay::Overlay,
    state::storage::Storage,
    state::value::TxWrites,
};
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use std::time::Instant;

/// Executes every transaction in order on top of `pre` (the pre-block writes). Returns the
/// per-transaction results and the block's writes.
pub fn execute(block: &BlockInput, chain: &ChainSpec, base: &dyn Storage, pre: Overlay) -> Result<(Vec<TxResult>, Overlay), EngineError> {
    execute_keeping(block, chain, base, pre, false, None).map(|run| (run.results, run.overlay))
}

/// A sequential run, with what tracing asked of it.
pub struct SequentialRun {
    pub results: Vec<TxResult>,
    pub overlay: Overlay,
    /// Each transaction's writes, with `keep`.
    pub writes: Option<Vec<TxWrites>>,
    /// Each transaction's trace, in block order, when traced in the run (`engine::inspected`).
    pub traces: Option<InRunTraces>,
}

/// `execute`, also returning each transaction's writes with `keep`, and tracing each execution
/// with `trace` when its tracer can be built in the run (`inspected::traceable_in_run`).
pub fn execute_keeping(
    block: &BlockInput,
    chain: &ChainSpec,
    base: &dyn Storage,
    mut pre: Overlay,
    keep: bool,
    trace: Option<&GethDebugTracingOptions>,
) -> Result<SequentialRun, EngineError> {
    let mut kept = keep.then(|| Vec::with_capacity(block.txs.len()));
    // Each transaction touches two or three accounts: size the map once.
    pre.accounts.reserve(block.txs.len() * 2);
    // Simple transfers skip the interpreter (`BlockVm::simple_transfer`): on a block of 1,400
    // of them that was a third of the sequential run.
    let mut vm =
        BlockVm::new(block, chain, OverlayReader { base, overlay: pre }).sharing_code().with_simple_transfers(SimpleTransfers::Direct);
    let tracer = trace.and_then(|o| InRunTracer::new(o, block, block.block_env(chain)));
    let mut traces = tracer.is_some().then(|| Ok(Vec::with_capacity(block.txs.len())));
    if let Some(tracer) = tracer {
        vm = vm.with_tracing(tracer);
    }
    let mut results = Vec::with_capacity(block.txs.len());
    let mut cumulative = 0u64;
    // Expensive transactions, for the parallel scheduler's next runs (`costs`).
    let mut measured = Vec::new();
    let block_started = Instant::now();
    // When the last timed transaction ended: the next one, if it comes right after, started
    // then. One clock read per timed transaction instead of two (on a block of 1,400 token
    // calls, the second read was ~2% of the sequential run).
    let mut last_end: Option<(TxIdx, Instant)> = None;
    for (index, tx) in block.txs.iter().enumerate() {
        block.check_gas_available(index, cumulative)?;
        let tx_started = costs::timed(tx).then(|| match last_end {
            Some((end, at)) if end + 1 == index => at,
            _ => Instant::now(),
        });
        let outcome = vm.execute(index, tx, false).map_err(|e| match e {
            ExecError::Fatal(e) => e,
            ExecError::Blocked(_) => EngineError::Internal("sequential read blocked".into()),
        })?;
        if let Some(started) = tx_started {
            let now = Instant::now();
            last_end = Some((index, now));
            let us = now.saturating_duration_since(started).as_micros().min(u32::MAX as u128) as u32;
            if us >= costs::EXPENSIVE_US {
                measured.push(Measured { tx: index, us, early_aborted: false });
            }
        }
        let result = match outcome.result {
            Some(Ok(r)) => r,
            Some(Err(reason)) => return Err(block.invalid_tx(index, reason)),
            None => return Err(EngineError::Internal(format!("transaction {index} produced no result"))),
        };
        if let Some(kept) = kept.as_mut() {
            kept.push(outcome.writes.clone());
        }
        if let Some(Ok(built)) = traces.as_mut() {
            match vm.take_trace() {
                Some(Ok(trace)) => built.push(trace),
                Some(Err(why)) => traces = Some(Err(why)),
                None => traces = Some(Err(format!("transaction {index} was not traced"))),
            }
        }
        let reader = vm.reader_mut();
        // A self-destruct arrives as a `Destruction` write, which clears the account's storage.
        for (loc, value) in outcome.writes {
            reader.overlay.apply(base, loc, value)?;
        }
        cumulative += result.gas_used;
        results.push(result);
    }
    costs::learn(block, &measured, &[]);
    costs::learn_rate(cumulative, costs::micros_since(block_started) as u64);
    let overlay = std::mem::take(&mut vm.reader_mut().overlay);
    Ok(SequentialRun { results, overlay, writes: kept, traces })
}
