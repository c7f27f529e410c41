//! Tracing a committed block: geth's `callTracer`, `prestateTracer`, `flatCallTracer` and
//! `4byteTracer`, as `debug_traceBlockByNumber` returns them, computed on every core.
//!
//! Speculative executions are never traced. Traces come from each transaction's one final
//! execution, in one of two ways, both with revm-inspectors' `DebugInspector` (what reth serves):
//!
//! - In the run (`engine::inspected`): sequential execution and the transfer and guessed
//!   groups run every transaction exactly once, on its final pre-state, so they inspect that
//!   execution and build its trace where it ran, on every worker. One pass: a two-pass design
//!   (execute, then re-trace) costs at least the untraced parallel run plus half the traced
//!   work, which on 2 threads leaves traced blocks barely faster than tracing in order. For
//!   `callTracer`, `flatCallTracer` and `4byteTracer`, which read nothing but the execution.
//! - After the run (`replay`): Block-STM executes speculatively, and `prestateTracer` reads
//!   each touched account's value before the transaction, which the engines' lazy updates do
//!   not hold. Once the block has committed, the state before transaction `i` is the block's
//!   pre-state (after the pre-block system calls) plus the writes of transactions `0..i`
//!   (`StateAt`), so every transaction is re-executed independently of the others, all at once.
//!
//! The binding hands the traces to JavaScript as one JSON array, written on the same threads
//! (`traces_to_json`): on one thread, serializing a block's call frames took a sixth of tracing it.
//!
//! An untraced execution pays nothing: its VMs hold the no-op inspector and never run the
//! inspecting loop, and the engines keep per-transaction writes only when asked.
//!
//! ```no_run
//! use parallel_evm_core::{BlockInput, ExecuteOptions, InMemoryStorage};
//! use parallel_evm_core::trace::{execute_block_traced, TraceConfig};
//! # let block: BlockInput = unimplemented!(); let state: InMemoryStorage = unimplemented!();
//! let config = TraceConfig::from_json(br#"{"tracer":"callTracer","tracerConfig":{"withLog":true}}"#).unwrap();
//! let (result, traces) = execute_block_traced(&block, &state, &ExecuteOptions::default(), &config).unwrap();
//! println!("{}", serde_json::to_string(&traces).unwrap());
//! ```

mod in_order;
mod json;
mod replay;
mod state_at;

pub use in_order::trace_block_in_order;
pub use json::traces_to_json;
pub use replay::trace_block;
pub use state_at::{BlockWrites, CodeCopies, StateAt};

use crate::{
    block::BlockInput,
    engine::hybrid::{execute_block_for_tracing, ExecuteOptions, Traced},
    error::EngineError,
    result::BlockResult,
    state::storage::Storage,
};
pub use crate::{result::TxTrace, state::value::TxWrites};
use alloy_rpc_types_trace::geth::{GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions};

/// The tracers served, by their geth names.
pub const TRACERS: [&str; 4] = ["callTracer", "prestateTracer", "flatCallTracer", "4byteTracer"];

/// A geth tracer config (`{ tracer, tracerConfig }`), checked to name a served tracer.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    pub(crate) options: GethDebugTracingOptions,
}

impl TraceConfig {
    /// Parses geth's JSON form, e.g. `{"tracer":"prestateTracer","tracerConfig":{"diffMode":true}}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EngineError> {
        let options: GethDebugTracingOptions =
            serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("trace config: {e}")))?;
        Self::new(options)
    }

    pub fn new(options: GethDebugTracingOptions) -> Result<Self, EngineError> {
        let served = |t: &GethDebugBuiltInTracerType| {
            use GethDebugBuiltInTracerType::*;
            matches!(t, CallTracer | PreStateTracer | FlatCallTracer | FourByteTracer)
        };
        match &options.tracer {
            Some(GethDebugTracerType::BuiltInTracer(t)) if served(t) => {}
            Some(GethDebugTracerType::BuiltInTracer(t)) => {
                return Err(unsupported(&serde_json::to_string(t).unwrap_or_default()));
            }
            Some(GethDebugTracerType::JsTracer(name)) => return Err(unsupported(name)),
            None => return Err(EngineError::InvalidInput(format!("trace config: no tracer (expected one of {})", TRACERS.join(", ")))),
        }
        // The tracer's own config is checked here, not once per transaction.
        revm_inspectors::tracing::DebugInspector::new(options.clone())
            .map_err(|e| EngineError::InvalidInput(format!("trace config: {e}")))?;
        Ok(Self { options })
    }

    pub fn options(&self) -> &GethDebugTracingOptions {
        &self.options
    }
}

fn unsupported(name: &str) -> EngineError {
    let name = if name.len() > 40 { "a JavaScript tracer" } else { name };
    EngineError::InvalidInput(format!("trace config: unsupported tracer {name} (expected one of {})", TRACERS.join(", ")))
}

/// Executes `block` (as `execute_block` does, same engines and result) and traces every
/// transaction: in the run itself where the engine executes each transaction once on its
/// final pre-state and the tracer needs nothing but the execution (`engine::inspected`),
/// otherwise against its committed pre-state after the run, on `options.threads` threads (one
/// in sequential mode).
pub fn execute_block_traced(
    block: &BlockInput,
    storage: &dyn Storage,
    options: &ExecuteOptions,
    config: &TraceConfig,
) -> Result<(BlockResult, Vec<TxTrace>), EngineError> {
    let (result, traced) = execute_block_for_tracing(block, storage, options, &config.options)?;
    let writes = match traced {
        // Built in block order where each transaction ran: nothing left to move.
        Traced::InRun(traces) => {
            let traces = traces.map_err(EngineError::Internal)?;
            if traces.len() != block.txs.len() {
                return Err(EngineError::Internal(format!("{} traces for a block of {} transactions", traces.len(), block.txs.len())));
            }
            return Ok((result, traces));
        }
        Traced::Writes(writes) => writes,
    };
    let traces = trace_block(block, storage, &options.chain, writes, config, tracing_threads(options), Some(&result.receipts))?;
    Ok((result, traces))
}

/// The threads tracing work after a run uses (re-tracing, `traces_to_json`): `options.threads`
/// (0: all), and one in sequential mode, whose tracing is the reference the parallel runs match.
pub fn tracing_threads(options: &ExecuteOptions) -> usize {
    match (options.mode, options.threads) {
        (crate::ModeRequest::Sequential, _) => 1,
        (_, 0) => crate::threads::available_threads(),
        (_, n) => n,
    }
}
