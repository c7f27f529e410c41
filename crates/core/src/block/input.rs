//! Block input: a JSON-RPC block with full transactions, turned into revm environments.

use crate::{block::chain::ChainSpec, error::EngineError};
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, Bloom, B256, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Transaction};
use revm::{
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::{block::BlobExcessGasAndPrice, either::Either},
    primitives::hardfork::SpecId,
};

/// Index of a transaction in its block.
pub type TxIdx = usize;

/// One transaction ready for revm.
#[derive(Clone, Debug)]
pub struct TxInput {
    pub hash: B256,
    pub tx_type: u8,
    pub env: TxEnv,
}

impl TxInput {
    /// True for a call that moves value and could target a plain account: the receiver
    /// may be credited lazily once it is known to hold no code. Not with authorizations
    /// (EIP-7702): they check and raise an authority's nonce and set its code, and the receiver
    /// may be one of them.
    pub fn is_plain_transfer_candidate(&self) -> Option<Address> {
        match self.env.kind {
            revm::primitives::TxKind::Call(to)
                if !self.env.value.is_zero() && to != self.env.caller && self.env.authorization_list.is_empty() =>
            {
                Some(to)
            }
            _ => None,
        }
    }

    /// The receiver of a transfer that runs no code when the receiver holds none: a call with
    /// value and without call data, access list or authorizations (legacy, EIP-2930 or EIP-1559
    /// type) to another account outside the precompile range (the lowest 2^16 addresses).
    pub fn simple_transfer_to(&self) -> Option<Address> {
        let env = &self.env;
        let to = self.is_plain_transfer_candidate()?;
        let simple = env.tx_type <= 2
            && env.data.is_empty()
            && env.access_list.0.is_empty()
            && env.authorization_list.is_empty()
            && !to.0[..18].iter().all(|b| *b == 0);
        simple.then_some(to)
    }
}

/// A withdrawal (Shanghai): `amount` is in gwei.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalInput {
    pub address: Address,
    pub amount_gwei: u64,
}

/// An uncle header's fields needed for its miner's reward (JSON-RPC blocks carry only hashes).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UncleInput {
    #[serde(with = "alloy_serde_quantity")]
    pub number: u64,
    pub miner: Address,
}

mod alloy_serde_quantity {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = alloy_primitives::U64::deserialize(d)?;
        Ok(v.to::<u64>())
    }
}

/// Everything the engine needs from a block.
#[derive(Clone, Debug, Default)]
pub struct BlockInput {
    pub number: u64,
    pub hash: Option<B256>,
    pub parent_hash: B256,
    pub timestamp: u64,
    pub beneficiary: Address,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub base_fee: Option<u64>,
    pub difficulty: U256,
    pub mix_hash: B256,
    pub excess_blob_gas: Option<u64>,
    pub parent_beacon_block_root: Option<B256>,
    /// EIP-7685 (Prague): the hash of the block's deposit, withdrawal and consolidation requests.
    pub requests_hash: Option<B256>,
    pub state_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub uncle_hashes: Vec<B256>,
    /// Uncle miners and numbers when the caller supplied them (for uncle rewards).
    pub uncles: Option<Vec<UncleInput>>,
    pub withdrawals: Vec<WithdrawalInput>,
    pub txs: Vec<TxInput>,
    /// The block checked against its own header when parsed with `from_json_checked`.
    pub integrity: Option<crate::block::integrity::Integrity>,
}

impl BlockInput {
    /// Parses a JSON-RPC block (`eth_getBlockByNumber(n, true)`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, EngineError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("block JSON: {e}")))?;
        Self::from_json_value(value)
    }

    /// Parses a JSON-RPC block and checks that every transaction's signature recovers to its
    /// `from` field (EIP-2's low-s rule from Homestead on, per `chain`). Without this check the
    /// engine trusts `from`, as the node that served the block recovered it already.
    pub fn from_json_verified(bytes: &[u8], chain: &ChainSpec) -> Result<Self, EngineError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("block JSON: {e}")))?;
        Self::parse(value, Some(chain))
    }

    pub fn from_json_value(value: serde_json::Value) -> Result<Self, EngineError> {
        Self::parse(value, None)
    }

    /// Parses a JSON-RPC block and checks it against its own header (`integrity`): the
    /// transactions and withdrawals roots, the block hash and every signature; the results are
    /// in `integrity` (reported by `verify::check_report`), a failure is not an error here.
    pub fn from_json_checked(bytes: &[u8], chain: &ChainSpec, verify_signatures: bool) -> Result<Self, EngineError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("block JSON: {e}")))?;
        Self::parse_with(value, verify_signatures.then_some(chain), Some(chain))
    }

    fn parse(value: serde_json::Value, verify_for: Option<&ChainSpec>) -> Result<Self, EngineError> {
        Self::parse_with(value, verify_for, None)
    }

    fn parse_with(
        mut value: serde_json::Value,
        verify_for: Option<&ChainSpec>,
        check_for: Option<&ChainSpec>,
    ) -> Result<Self, EngineError> {
        // Optional extension: uncle headers' miners for uncle rewards.
        let uncles = match value.as_object_mut().and_then(|o| o.remove("uncleHeaders")) {
            Some(v) => Some(
                serde_json::from_value::<Vec<UncleInput>>(v).map_err(|e| EngineError::InvalidInput(format!("block uncleHeaders: {e}")))?,
            ),
            None => None,
        };
        if let Some(txs) = value.get("transactions").and_then(|t| t.as_array()) {
            if let Some(pos) = txs.iter().position(|t| t.is_string()) {
                return Err(EngineError::InvalidInput(format!(
                    "block transactions must be full objects (eth_getBlockByNumber with true); entry {pos} is a hash"
                )));
            }
            for (i, tx) in txs.iter().enumerate() {
                if tx.get("from").is_none() {
                    return Err(EngineError::InvalidInput(format!("transaction {i} has no 'from' field")));
                }
            }
        }
        // Transactions one by one, so that an error names the transaction and what is wrong
        // with it (as part of the block, serde can only say that no variant matched).
        let txs = match value.get_mut("transactions").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(items)) => {
                value["transactions"] = serde_json::Value::Array(Vec::new());
                let txs = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, tx)| {
                        serde_json::from_value::<Transaction<TxEnvelope>>(tx)
                            .map_err(|e| EngineError::InvalidInput(format!("block transaction {i}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(txs)
            }
            Some(other) => {
                value["transactions"] = other;
                None
            }
            None => None,
        };
        let mut block: Block<Transaction<TxEnvelope>> =
            serde_json::from_value(value).map_err(|e| EngineError::InvalidInput(format!("block: {e}")))?;
        if let Some(txs) = txs {
            block.transactions = BlockTransactions::Full(txs);
        }
        if let (Some(chain), BlockTransactions::Full(txs)) = (verify_for, &block.transactions) {
            let eip2 = chain.spec_at(block.header.number, block.header.timestamp).is_enabled_in(SpecId::HOMESTEAD);
            verify_signatures(txs, eip2)?;
        }
        let integrity = check_for.map(|chain| crate::block::integrity::check(&block, chain)).transpose()?;
        let mut input = Self::from_rpc(block, uncles)?;
        input.integrity = integrity;
        Ok(input)
    }

    pub fn from_rpc(block: Block<Transaction<TxEnvelope>>, uncles: Option<Vec<UncleInput>>) -> Result<Self, EngineError> {
        let h = &block.header.inner;
        let txs = match &block.transactions {
            BlockTransactions::Full(txs) => txs.iter().enumerate().map(|(i, tx)| tx_input(i, tx)).collect::<Result<Vec<_>, _>>()?,
            BlockTransactions::Hashes(h) if h.is_empty() => Vec::new(),
            BlockTransactions::Uncle => Vec::new(),
            BlockTransactions::Hashes(_) => {
                return Err(EngineError::InvalidInput("block transactions must be full objects (eth_getBlockByNumber with true)".into()))
            }
        };
        let withdrawals = block
            .withdrawals
            .as_ref()
            .map(|w| w.iter().map(|w| WithdrawalInput { address: w.address, amount_gwei: w.amount }).collect())
            .unwrap_or_default();
        Ok(Self {
            number: h.number,
            hash: Some(block.header.hash),
            parent_hash: h.parent_hash,
            timestamp: h.timestamp,
            beneficiary: h.beneficiary,
            gas_limit: h.gas_limit,
            gas_used: h.gas_used,
            base_fee: h.base_fee_per_gas,
            difficulty: h.difficulty,
            mix_hash: h.mix_hash,
            excess_blob_gas: h.excess_blob_gas,
            parent_beacon_block_root: h.parent_beacon_block_root,
            requests_hash: h.requests_hash,
            state_root: h.state_root,
            receipts_root: h.receipts_root,
            logs_bloom: h.logs_bloom,
            uncle_hashes: block.uncles.clone(),
            uncles,
            withdrawals,
            txs,
            integrity: None,
        })
    }

    /// revm's configuration for this block.
    pub fn cfg_env(&self, chain: &ChainSpec) -> CfgEnv {
        let spec = self.spec(chain);
        let mut cfg = CfgEnv::new_with_spec(spec).with_chain_id(chain.chain_id);
        cfg.tx_chain_id_check = true;
        if let Some(blobs) = chain.blob_params_at(self.number, self.timestamp) {
            cfg.set_max_blobs_per_tx(blobs.max_blobs_per_tx);
            cfg.blob_base_fee_update_fraction = Some(blobs.update_fraction as u64);
        }
        cfg
    }

    pub fn spec(&self, chain: &ChainSpec) -> SpecId {
        chain.spec_at(self.number, self.timestamp)
    }

    /// revm's block environment from the header.
    pub fn block_env(&self, chain: &ChainSpec) -> BlockEnv {
        let spec = self.spec(chain);
        let blob = chain
            .blob_params_at(self.number, self.timestamp)
            .map(|p| BlobExcessGasAndPrice::new(self.excess_blob_gas.unwrap_or(0), p.update_fraction as u64));
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: self.beneficiary,
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee.unwrap_or(0),
            difficulty: self.difficulty,
            prevrandao: spec.is_enabled_in(SpecId::MERGE).then_some(self.mix_hash),
            blob_excess_gas_and_price: blob,
            slot_num: 0,
        }
    }
}

/// The first transaction whose signature is invalid or recovers to another address than its
/// `from` is an invalid transaction. Recovery is costly (tens of µs per transaction): it runs on
/// the engine's thread pool.
fn verify_signatures(txs: &[Transaction<TxEnvelope>], eip2: bool) -> Result<(), EngineError> {
    match crate::block::integrity::first_bad_signature(txs, eip2)? {
        Some((index, reason)) => Err(EngineError::InvalidTransaction { index, hash: *txs[index].inner.inner().tx_hash(), reason }),
        None => Ok(()),
    }
}

fn tx_input(index: usize, tx: &Transaction<TxEnvelope>) -> Result<TxInput, EngineError> {
    let envelope: &TxEnvelope = tx.inner.inner();
    let caller = tx.inner.signer();
    let tx_type = envelope.ty();
    let authorization_list = envelope.authorization_list().map(|list| list.iter().cloned().map(Either::Left).collect()).unwrap_or_default();
    let env = TxEnv {
        tx_type,
        caller,
        gas_limit: envelope.gas_limit(),
        gas_price: envelope.max_fee_per_gas(),
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: envelope.max_priority_fee_per_gas(),
        blob_hashes: envelope.blob_versioned_hashes().map(|h| h.to_vec()).unwrap_or_default(),
        max_fee_per_blob_gas: envelope.max_fee_per_blob_gas().unwrap_or(0),
        authorization_list,
    };
    let _ = index;
    Ok(TxInput { hash: *envelope.tx_hash(), tx_type, env })
}

impl BlockInput {
    /// Error for an invalid transaction of this block.
    pub fn invalid_tx(&self, index: usize, reason: impl Into<String>) -> EngineError {
        EngineError::InvalidTransaction { index, hash: self.txs[index].hash, reason: reason.into() }
    }

    /// The gas the block uses, as far as is known before running it: the header's gas used
    /// (real blocks), else what its transactions may use (generated blocks have no header).
    pub fn expected_gas(&self) -> u64 {
        if self.gas_used > 0 {
            self.gas_used
        } else {
            self.txs.iter().map(|t| t.env.gas_limit).sum()
        }
    }

    /// A transaction may not ask for more gas than the block has left.
    pub fn check_gas_available(&self, index: usize, cumulative_gas: u64) -> Result<(), EngineError> {
        let available = self.gas_limit.saturating_sub(cumulative_gas);
        let wanted = self.txs[index].env.gas_limit;
        if wanted > available {
            return Err(self.invalid_tx(index, format!("gas limit {wanted} exceeds the gas left in the block ({available})")));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy_primitives::Bytes;
    use revm::primitives::TxKind;

    /// A block of calls `(from, to, data)` with 200,000 gas each: all that grouping and
    /// scheduling look at.
    pub(crate) fn calls_from(calls: &[(Address, Address, Bytes)]) -> BlockInput {
        let txs = calls
            .iter()
            .map(|(from, to, data)| TxInput {
                hash: B256::ZERO,
                tx_type: 0,
                env: TxEnv { caller: *from, kind: TxKind::Call(*to), data: data.clone(), gas_limit: 200_000, ..Default::default() },
            })
            .collect();
        BlockInput { number: 1, gas_limit: 30_000_000, txs, ..Default::default() }
    }

    /// A block of calls into `targets`, each from its own sender and without call data.
    pub(crate) fn calls(targets: &[Address]) -> BlockInput {
        let calls: Vec<_> = targets.iter().enumerate().map(|(i, to)| (Address::with_last_byte(i as u8 + 1), *to, Bytes::new())).collect();
        calls_from(&calls)
    }
}
