//! The block's own integrity against its header, without executing it: the transactions root
//! (from the EIP-2718 envelopes), the withdrawals root, the block hash (keccak of the RLP
//! header) and every transaction's signature recovering to its `from`. A node serving a block
//! vouches for all of these; a file or a tampered response does not. `verify` reports them as
//! checks.

use crate::{block::chain::ChainSpec, error::EngineError};
use alloy_consensus::{transaction::SignerRecoverable, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::B256;
use alloy_rpc_types_eth::{Block, BlockTransactions, Transaction};
use rayon::prelude::*;
use revm::primitives::hardfork::SpecId;

/// Each pair is the header's value and the one computed from the block's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    pub transactions_root: (B256, B256),
    /// Shanghai on; the computed root is `None` when the block carries no withdrawals list.
    pub withdrawals_root: Option<(B256, Option<B256>)>,
    pub block_hash: (B256, B256),
    pub transactions: usize,
    /// The first transaction whose signature does not stand for its `from`: index, hash, why.
    pub bad_signature: Option<(usize, B256, String)>,
}

/// Why a transaction's signature does not stand for its `from`, if it does not. With `eip2`
/// (Homestead on) a high `s` is invalid.
fn signature_problem(tx: &Transaction<TxEnvelope>, eip2: bool) -> Option<String> {
    let envelope: &TxEnvelope = tx.inner.inner();
    let recovered = if eip2 { envelope.recover_signer() } else { envelope.recover_signer_unchecked() };
    match recovered {
        Err(e) => Some(format!("invalid signature: {e}")),
        Ok(signer) if signer != tx.inner.signer() => {
            Some(format!("the signature recovers to {signer}, not to its 'from' field {}", tx.inner.signer()))
        }
        Ok(_) => None,
    }
}

/// The first transaction whose signature does not stand for its `from`, recovered on all of
/// the engine's threads (tens of µs a transaction).
pub(crate) fn first_bad_signature(txs: &[Transaction<TxEnvelope>], eip2: bool) -> Result<Option<(usize, String)>, EngineError> {
    let pool = crate::threads::pool(crate::threads::available_threads())?;
    let bad = pool.install(|| txs.par_iter().map(|tx| signature_problem(tx, eip2)).enumerate().find_first(|(_, e)| e.is_some()));
    Ok(bad.and_then(|(i, e)| e.map(|e| (i, e))))
}

/// Checks a JSON-RPC block against its own header.
pub fn check(block: &Block<Transaction<TxEnvelope>>, chain: &ChainSpec) -> Result<Integrity, EngineError> {
    let header = &block.header.inner;
    let txs: &[Transaction<TxEnvelope>] = match &block.transactions {
        BlockTransactions::Full(txs) => txs,
        _ => &[],
    };
    let tx_root = alloy_trie::root::ordered_trie_root_with_encoder(txs, |tx, buf| tx.inner.inner().encode_2718(buf));
    let eip2 = chain.spec_at(header.number, header.timestamp).is_enabled_in(SpecId::HOMESTEAD);
    Ok(Integrity {
        transactions_root: (header.transactions_root, tx_root),
        withdrawals_root: header
            .withdrawals_root
            .map(|root| (root, block.withdrawals.as_ref().map(|w| alloy_consensus::proofs::calculate_withdrawals_root(w)))),
        block_hash: (block.header.hash, header.hash_slow()),
        transactions: txs.len(),
        bad_signature: first_bad_signature(txs, eip2)?.map(|(i, why)| (i, *txs[i].inner.inner().tx_hash(), why)),
    })
}
