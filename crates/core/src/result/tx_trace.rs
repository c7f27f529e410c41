//! One transaction's trace, as an element of geth's `debug_traceBlockByNumber` answer. Here,
//! below the engines, so that an engine tracing in its run (`engine::inspected`) builds the
//! final value where the transaction ran: a trace is 584 bytes, and every serial move of a
//! block's traces after the run cost the caller time while the other workers sat idle.

use alloy_primitives::B256;
use alloy_rpc_types_trace::geth::GethTrace;
use serde::Serialize;

/// One transaction's trace, as an element of geth's `debug_traceBlockByNumber` answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxTrace {
    pub tx_hash: B256,
    pub result: GethTrace,
}
