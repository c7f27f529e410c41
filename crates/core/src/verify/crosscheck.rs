//! Field-by-field comparison of two results of the same block (e.g. sequential vs parallel):
//! the first difference, with the transaction and the location where it is.

use crate::result::{AccountDiff, BlockResult, Receipt};
use alloy_primitives::Address;
use serde::Serialize;

/// Where two results first differ. `tx_index` is set when the difference is in a receipt (the
/// state diff is per block, so its differences name an account or slot instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub tx_index: Option<u64>,
    /// A path such as `receipts[3].logs[0].data` or `stateDiff[0x…].storage[0x…]`.
    pub location: String,
    pub expected: String,
    pub actual: String,
}

fn show<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}")
}

fn field<T: PartialEq + std::fmt::Debug>(tx: Option<u64>, location: impl FnOnce() -> String, a: &T, b: &T) -> Option<Mismatch> {
    (a != b).then(|| Mismatch { tx_index: tx, location: location(), expected: show(a), actual: show(b) })
}

fn receipt_mismatch(i: usize, a: &Receipt, b: &Receipt) -> Option<Mismatch> {
    let tx = Some(i as u64);
    let at = |f: &str| format!("receipts[{i}].{f}");
    field(tx, || at("transactionHash"), &a.transaction_hash, &b.transaction_hash)
        .or_else(|| field(tx, || at("type"), &a.tx_type, &b.tx_type))
        .or_else(|| field(tx, || at("status"), &a.status, &b.status))
        .or_else(|| field(tx, || at("gasUsed"), &a.gas_used, &b.gas_used))
        .or_else(|| field(tx, || at("cumulativeGasUsed"), &a.cumulative_gas_used, &b.cumulative_gas_used))
        .or_else(|| field(tx, || at("contractAddress"), &a.contract_address, &b.contract_address))
        .or_else(|| field(tx, || at("logs.length"), &a.logs.len(), &b.logs.len()))
        .or_else(|| {
            a.logs.iter().zip(&b.logs).enumerate().find_map(|(j, (la, lb))| {
                let at = |f: &str| format!("receipts[{i}].logs[{j}].{f}");
                field(tx, || at("address"), &la.address, &lb.address)
                    .or_else(|| field(tx, || at("topics"), &la.data.topics(), &lb.data.topics()))
                    .or_else(|| field(tx, || at("data"), &la.data.data, &lb.data.data))
            })
        })
        .or_else(|| field(tx, || at("logsBloom"), &a.logs_bloom, &b.logs_bloom))
}

fn account_mismatch(address: &Address, a: &AccountDiff, b: &AccountDiff) -> Option<Mismatch> {
    let at = |f: &str| format!("stateDiff[{address}].{f}");
    field(None, || at("deleted"), &a.deleted, &b.deleted)
        .or_else(|| field(None, || at("created"), &a.created, &b.created))
        .or_else(|| field(None, || at("storageCleared"), &a.storage_cleared, &b.storage_cleared))
        .or_else(|| field(None, || at("balance"), &a.balance, &b.balance))
        .or_else(|| field(None, || at("nonce"), &a.nonce, &b.nonce))
        .or_else(|| field(None, || at("codeHash"), &a.code_hash, &b.code_hash))
        .or_else(|| field(None, || at("code"), &a.code, &b.code))
        .or_else(|| {
            // Slots in either map, in order; a slot one side lacks is reported as absent.
            let slots: std::collections::BTreeSet<_> = a.storage.keys().chain(b.storage.keys()).collect();
            let shown = |v: Option<&alloy_primitives::B256>| v.map_or_else(|| "absent".to_string(), |v| v.to_string());
            slots.into_iter().find_map(|slot| {
                let (x, y) = (a.storage.get(slot), b.storage.get(slot));
                (x != y).then(|| Mismatch {
                    tx_index: None,
                    location: at(&format!("storage[{slot}]")),
                    expected: shown(x),
                    actual: shown(y),
                })
            })
        })
}

/// The first difference between `expected` and `actual`: receipts in transaction order, then
/// the block totals, then the state diff by address. `None` when they are the same.
pub fn first_mismatch(expected: &BlockResult, actual: &BlockResult) -> Option<Mismatch> {
    let (ra, rb) = (&expected.receipts, &actual.receipts);
    if let Some(m) = ra.iter().zip(rb).enumerate().find_map(|(i, (a, b))| receipt_mismatch(i, a, b)) {
        return Some(m);
    }
    if let Some(m) = field(None, || "receipts.length".into(), &ra.len(), &rb.len()) {
        return Some(Mismatch { tx_index: Some(ra.len().min(rb.len()) as u64), ..m });
    }
    if let Some(m) = field(None, || "gasUsed".into(), &expected.gas_used, &actual.gas_used)
        .or_else(|| field(None, || "logsBloom".into(), &expected.logs_bloom, &actual.logs_bloom))
        .or_else(|| field(None, || "requestsHash".into(), &expected.requests_hash, &actual.requests_hash))
    {
        return Some(m);
    }
    let addresses: std::collections::BTreeSet<_> = expected.state_diff.keys().chain(actual.state_diff.keys()).collect();
    addresses.into_iter().find_map(|address| match (expected.state_diff.get(address), actual.state_diff.get(address)) {
        (Some(a), Some(b)) => account_mismatch(address, a, b),
        (a, b) => Some(Mismatch {
            tx_index: None,
            location: format!("stateDiff[{address}]"),
            expected: if a.is_some() { "changed".into() } else { "unchanged".into() },
            actual: if b.is_some() { "changed".into() } else { "unchanged".into() },
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ExecutionMode;
    use crate::result::Stats;
    use alloy_primitives::{address, Bloom, Bytes, Log, B256, KECCAK256_EMPTY, U256};

    fn sample() -> BlockResult {
        let log = Log::new_unchecked(address!("00000000000000000000000000000000000000aa"), vec![B256::ZERO], Bytes::from_static(b"\x01"));
        let receipt = |i: u64| Receipt {
            transaction_hash: B256::with_last_byte(i as u8),
            transaction_index: i,
            tx_type: 2,
            status: true,
            gas_used: 21_000,
            cumulative_gas_used: 21_000 * (i + 1),
            logs: vec![log.clone()],
            logs_bloom: Bloom::ZERO,
            contract_address: None,
        };
        let mut state_diff = crate::result::StateDiff::new();
        state_diff.insert(
            address!("00000000000000000000000000000000000000bb"),
            AccountDiff {
                deleted: false,
                created: false,
                storage_cleared: false,
                balance: U256::from(7),
                nonce: 1,
                code_hash: KECCAK256_EMPTY,
                code: None,
                storage: [(B256::ZERO, B256::with_last_byte(1))].into_iter().collect(),
            },
        );
        BlockResult {
            number: 1,
            hash: None,
            gas_used: 63_000,
            logs_bloom: Bloom::ZERO,
            receipts_root: None,
            receipts: (0..3).map(receipt).collect(),
            state_diff,
            requests_hash: None,
            warnings: vec![],
            stats: Stats {
                mode: ExecutionMode::Sequential,
                engine: crate::result::Engine::Sequential,
                threads: 1,
                reason: None,
                executions: 3,
                reexecutions: 0,
                validation_aborts: 0,
                dependency_waits: 0,
                execution_us: 0,
                total_us: 0,
            },
        }
    }

    #[test]
    fn equal_results_have_no_mismatch() {
        let mut b = sample();
        b.stats.mode = ExecutionMode::Parallel; // statistics are not compared
        assert_eq!(first_mismatch(&sample(), &b), None);
    }

    #[test]
    fn names_the_first_differing_transaction_and_field() {
        let mut b = sample();
        b.receipts[2].gas_used = 1;
        b.receipts[1].logs[0].data = alloy_primitives::LogData::new_unchecked(vec![B256::ZERO], Bytes::from_static(b"\x02"));
        let m = first_mismatch(&sample(), &b).unwrap();
        assert_eq!(m.tx_index, Some(1));
        assert_eq!(m.location, "receipts[1].logs[0].data");
        assert_eq!((m.expected.as_str(), m.actual.as_str()), ("0x01", "0x02"));
    }

    #[test]
    fn names_the_differing_slot() {
        let mut b = sample();
        let acc = b.state_diff.values_mut().next().unwrap();
        acc.storage.insert(B256::ZERO, B256::with_last_byte(2));
        let m = first_mismatch(&sample(), &b).unwrap();
        assert_eq!(m.tx_index, None);
        let a = address!("00000000000000000000000000000000000000bb");
        assert_eq!(m.location, format!("stateDiff[{a}].storage[{}]", B256::ZERO));
        assert_eq!(m.actual, B256::with_last_byte(2).to_string());
    }
}
