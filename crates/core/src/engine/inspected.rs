//! Tracing inside an engine's own run: the engines that execute every transaction exactly once,
//! on its final pre-state (the sequential loop, the transfer and guessed groups), can inspect
//! that execution itself and build its geth trace where it ran, instead of running the block
//! again with an inspector (`trace::replay`). Nothing is speculative there, so nothing traced
//! is thrown away; a guessed-groups run that fails its check is discarded whole, traces
//! included, and the block is traced after Block-STM commits it.
//!
//! Only tracers that read nothing but the execution itself can be built this way
//! (`callTracer`, `flatCallTracer`, `4byteTracer`): `prestateTracer` reads each touched
//! account's value before the transaction, which the engines' lazy updates (beneficiary fees,
//! receivers credited by deltas) do not hold in their state.
//!
//! An untraced VM holds revm-inspectors' no-op variant and runs `Handler::run`, never the
//! inspecting loop: the only cost is one branch per transaction.

use crate::{
    block::{BlockInput, TxIdx, TxInput},
    result::TxTrace,
};
use alloy_primitives::B256;
use alloy_rpc_types_trace::geth::{GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions};
use revm::{
    context::{
        result::{ExecutionResult, ResultAndState},
        BlockEnv,
    },
    database::EmptyDB,
    state::EvmState,
};
use revm_inspectors::tracing::{DebugInspector, TransactionContext};

/// The inspector an untraced VM holds: never called, as untraced runs do not inspect.
pub fn idle() -> DebugInspector {
    DebugInspector::Noop(revm::inspector::NoOpInspector)
}

/// Whether `options` name a tracer built from the execution alone (see the module's notes).
pub fn traceable_in_run(options: &GethDebugTracingOptions) -> bool {
    use GethDebugBuiltInTracerType::*;
    matches!(&options.tracer, Some(GethDebugTracerType::BuiltInTracer(CallTracer | FlatCallTracer | FourByteTracer)))
}

/// One transaction's trace as built in the run, or why it could not be.
pub type InRunTrace = Result<TxTrace, String>;

/// A run's traces in block order, or the first reason one could not be built.
pub type InRunTraces = Result<Vec<TxTrace>, String>;

/// A VM's tracing: a fresh inspector per execution, the trace of the last one.
pub struct InRunTracer {
    template: DebugInspector,
    block_env: BlockEnv,
    block_hash: Option<B256>,
    last: Option<InRunTrace>,
}

impl InRunTracer {
    /// `None` when `options` are not traceable in the run or do not make an inspector.
    pub fn new(options: &GethDebugTracingOptions, block: &BlockInput, block_env: BlockEnv) -> Option<Self> {
        if !traceable_in_run(options) {
            return None;
        }
        let template = DebugInspector::new(options.clone()).ok()?;
        Some(Self { template, block_env, block_hash: block.hash, last: None })
    }

    /// The inspector for the next execution (a lazy re-run starts afresh too).
    pub fn fresh(&self) -> Result<DebugInspector, String> {
        self.template.try_clone().map_err(|e| format!("trace config: {e}"))
    }

    /// Builds transaction `index`'s trace from its finished `inspector` and `result` (handed
    /// back untouched), as `trace::replay` builds it from its own re-execution.
    pub fn finish(&mut self, inspector: &mut DebugInspector, index: TxIdx, tx: &TxInput, result: ExecutionResult) -> ExecutionResult {
        let context = TransactionContext { block_hash: self.block_hash, tx_index: Some(index), tx_hash: Some(tx.hash) };
        // The state is read by none of the tracers built here (`traceable_in_run`).
        let res = ResultAndState::new(result, EvmState::default());
        let trace = inspector
            .get_result(Some(context), &tx.env, &self.block_env, &res, &mut EmptyDB::default())
            .map(|result| TxTrace { tx_hash: tx.hash, result })
            .map_err(|e| format!("trace of transaction {index}: {e}"));
        self.last = Some(trace);
        res.result
    }

    /// The trace of the last transaction executed.
    pub fn take(&mut self) -> Option<InRunTrace> {
        self.last.take()
    }
}
