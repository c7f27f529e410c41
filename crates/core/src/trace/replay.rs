//! Every transaction of a committed block re-executed with an inspector against the state
//! before it (`StateAt`), on all threads at once: transactions are independent once their
//! pre-states are known, so the threads only share a counter of the next one to trace.

use super::{state_at::BlockWrites, CodeCopies, StateAt, TraceConfig, TxTrace, TxWrites};
use crate::{
    block::{chain::ChainSpec, BlockInput},
    engine::{block_stm::run_on_caller_and_pool, transitions::pre_block, vm::ReadError},
    error::EngineError,
    result::Receipt,
    state::{overlay::Layered, storage::Storage},
};
use parking_lot::Mutex;
use revm::{
    context::result::{EVMError, ExecutionResult},
    database_interface::WrapDatabaseRef,
    handler::{MainnetContext, MainnetEvm},
    Context, InspectEvm, MainBuilder, MainContext,
};
use revm_inspectors::tracing::{DebugInspector, TransactionContext};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
};

/// Traces every transaction of `block`, whose committed per-transaction writes are `writes`
/// (`execute_block_with_writes`, or any engine's writes in block order), over its pre-state
/// `storage`, on `threads` threads. With
/// `receipts` (the block's execution), each re-execution must agree with its receipt on
/// success and gas used, or the block fails with an internal error instead of returning a
/// trace of something else. Traces come back in block order.
pub fn trace_block(
    block: &BlockInput,
    storage: &dyn Storage,
    chain: &ChainSpec,
    writes: Vec<TxWrites>,
    config: &TraceConfig,
    threads: usize,
    receipts: Option<&[Receipt]>,
) -> Result<Vec<TxTrace>, EngineError> {
    let n = block.txs.len();
    if writes.len() != n {
        return Err(EngineError::InvalidInput(format!("writes of {} transactions for a block of {n}", writes.len())));
    }
    if let Some(r) = receipts.filter(|r| r.len() != n) {
        return Err(EngineError::InvalidInput(format!("{} receipts for a block of {n} transactions", r.len())));
    }
    // The EIP-4788 / EIP-2935 calls run before the first transaction, as in the engine.
    let pre = pre_block(block, chain, storage)?;
    let layered = Layered { base: storage, overlay: &pre };
    let base: &dyn Storage = if pre.accounts.is_empty() { storage } else { &layered };
    let writes = &BlockWrites::new(writes, base)?;
    // Checked once: every transaction's inspector is a fresh copy of this one.
    let template = DebugInspector::new(config.options.clone()).map_err(|e| EngineError::InvalidInput(format!("trace config: {e}")))?;
    let tracer = Tracer {
        block,
        writes,
        base,
        template,
        receipts,
        cfg: block.cfg_env(chain),
        env: block.block_env(chain),
        parent: block.number.checked_sub(1).map(|p| (p, block.parent_hash)),
    };
    let traces: Vec<Mutex<Option<Result<TxTrace, EngineError>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    run_on_caller_and_pool(threads.clamp(1, n.max(1)), |_| {
        // One EVM per thread, pointed at each transaction's state in turn.
        let codes = CodeCopies::default();
        let mut evm = None;
        loop {
            let i = next.fetch_add(1, Relaxed);
            if i >= n || failed.load(Relaxed) {
                break;
            }
            let traced = catch_unwind(AssertUnwindSafe(|| tracer.trace(&mut evm, &codes, i))).unwrap_or_else(|p| {
                // The EVM may be left mid-transaction: the next one starts afresh.
                evm = None;
                Err(EngineError::Internal(format!("engine panic while tracing transaction {i}: {}", panic_message(p))))
            });
            if traced.is_err() {
                failed.store(true, Relaxed);
            }
            *traces[i].lock() = Some(traced);
        }
    })?;
    // The first failure in block order is the one reported.
    traces
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.into_inner().unwrap_or_else(|| Err(EngineError::Internal(format!("transaction {i} was not traced")))))
        .collect()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

type TraceEvm<'a> = MainnetEvm<MainnetContext<WrapDatabaseRef<StateAt<'a>>>, DebugInspector>;

/// What every thread shares to trace one transaction.
struct Tracer<'a> {
    block: &'a BlockInput,
    writes: &'a BlockWrites,
    base: &'a dyn Storage,
    template: DebugInspector,
    receipts: Option<&'a [Receipt]>,
    cfg: revm::context::CfgEnv,
    env: revm::context::BlockEnv,
    parent: Option<(u64, alloy_primitives::B256)>,
}

impl<'a> Tracer<'a> {
    fn inspector(&self) -> Result<DebugInspector, EngineError> {
        self.template.try_clone().map_err(|e| EngineError::Internal(format!("trace config: {e}")))
    }

    /// Traces transaction `i` on this thread's EVM (built on first use).
    fn trace<'t>(&self, evm: &mut Option<TraceEvm<'t>>, codes: &'t CodeCopies, i: usize) -> Result<TxTrace, EngineError>
    where
        'a: 't,
    {
        let tx = &self.block.txs[i];
        let state = StateAt { writes: self.writes, base: self.base, tx: i, parent: self.parent, codes };
        let evm = match evm {
            Some(evm) => {
                evm.ctx.journaled_state.database.0 = state;
                evm.inspector = self.inspector()?;
                evm
            }
            None => evm.insert(
                Context::mainnet()
                    .with_db(WrapDatabaseRef(state))
                    .with_cfg(self.cfg.clone())
                    .with_block(self.env.clone())
                    .build_mainnet_with_inspector(self.inspector()?),
            ),
        };
        let res = evm.inspect_tx(tx.env.clone()).map_err(|e| match e {
            EVMError::Database(ReadError::MissingBlockHash(n)) => EngineError::MissingBlockHash(n),
            EVMError::Database(ReadError::Storage(e)) => e.into(),
            e => EngineError::Internal(format!("transaction {i} cannot be traced: {e}")),
        })?;
        if let Some(receipt) = self.receipts.map(|r| &r[i]) {
            let (success, gas) = (matches!(res.result, ExecutionResult::Success { .. }), res.result.tx_gas_used());
            if success != receipt.status || gas != receipt.gas_used {
                return Err(EngineError::Internal(format!(
                    "transaction {i} traced as {} with {gas} gas; the block's execution: {} with {} gas",
                    if success { "success" } else { "failure" },
                    if receipt.status { "success" } else { "failure" },
                    receipt.gas_used
                )));
            }
        }
        let context = TransactionContext { block_hash: self.block.hash, tx_index: Some(i), tx_hash: Some(tx.hash) };
        let mut db = state;
        let result = evm
            .inspector
            .get_result(Some(context), &tx.env, &self.env, &res, &mut db)
            .map_err(|e| EngineError::Internal(format!("trace of transaction {i}: {e}")))?;
        Ok(TxTrace { tx_hash: tx.hash, result })
    }
}
