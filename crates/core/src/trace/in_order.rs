//! The way a node traces a block (reth's `debug_traceBlock`): one EVM over a cached state, each
//! transaction inspected, then committed before the next. The reference parallel tracing is
//! checked against, and the sequential baseline it is timed against; it gives traces only.

use super::{StateAt, TraceConfig, TxTrace};
use crate::{
    block::{chain::ChainSpec, BlockInput},
    engine::{transitions::pre_block, vm::ReadError},
    error::EngineError,
    state::{overlay::Layered, storage::Storage},
};
use revm::{
    context::result::EVMError, database::CacheDB, database_interface::WrapDatabaseRef, Context, DatabaseCommit, InspectEvm, MainBuilder,
    MainContext,
};
use revm_inspectors::tracing::{DebugInspector, TransactionContext};

/// Traces `block` over its pre-state `storage` one transaction after the other.
pub fn trace_block_in_order(
    block: &BlockInput,
    storage: &dyn Storage,
    chain: &ChainSpec,
    config: &TraceConfig,
) -> Result<Vec<TxTrace>, EngineError> {
    let pre = pre_block(block, chain, storage)?;
    let layered = Layered { base: storage, overlay: &pre };
    let empty = super::BlockWrites::default();
    let codes = super::CodeCopies::default();
    let base = StateAt {
        writes: &empty,
        base: &layered,
        tx: 0,
        parent: block.number.checked_sub(1).map(|p| (p, block.parent_hash)),
        codes: &codes,
    };
    let mut db = CacheDB::new(WrapDatabaseRef(base));
    let env = block.block_env(chain);
    let template = DebugInspector::new(config.options.clone()).map_err(|e| EngineError::InvalidInput(format!("trace config: {e}")))?;
    let fresh = || template.try_clone().map_err(|e| EngineError::Internal(format!("trace config: {e}")));
    let mut traces = Vec::with_capacity(block.txs.len());
    for (i, tx) in block.txs.iter().enumerate() {
        let mut evm = Context::mainnet()
            .with_db(&mut db)
            .with_cfg(block.cfg_env(chain))
            .with_block(env.clone())
            .build_mainnet_with_inspector(fresh()?);
        let res = evm.inspect_tx(tx.env.clone()).map_err(|e| match e {
            EVMError::Database(ReadError::MissingBlockHash(n)) => EngineError::MissingBlockHash(n),
            EVMError::Database(ReadError::Storage(e)) => e.into(),
            EVMError::Transaction(e) => block.invalid_tx(i, e.to_string()),
            e => EngineError::Internal(format!("transaction {i}: {e}")),
        })?;
        let mut inspector = std::mem::replace(&mut evm.inspector, fresh()?);
        drop(evm);
        let context = TransactionContext { block_hash: block.hash, tx_index: Some(i), tx_hash: Some(tx.hash) };
        let result = inspector
            .get_result(Some(context), &tx.env, &env, &res, &mut db)
            .map_err(|e| EngineError::Internal(format!("trace of transaction {i}: {e}")))?;
        db.commit(res.state);
        traces.push(TxTrace { tx_hash: tx.hash, result });
    }
    Ok(traces)
}
