//! GeneralStateTests: each `post.Cancun` case is a block of one transaction on the test's
//! complete `pre` state. The case holds when the state root of `pre` plus the engine's state diff
//! is the case's `hash` and the logs hash its `logs`; a case with `expectException` holds when
//! the engine refuses the transaction with its typed error (the state then stays `pre`, whose
//! root the case's `hash` is).

use super::{
    engines::{engine_name, run_block, Run},
    report::{CaseId, Failure, Report},
    vectors::{to_storage, Env, PostCase, StateTest, TxTemplate},
    Mode, ModeSpec,
};
use crate::{
    block::{BlockInput, ChainSpec, TxInput},
    error::EngineError,
    result::BlockResult,
    state::InMemoryStorage,
    verify::{
        crosscheck::first_mismatch,
        state_root::{post_state_root, pre_state_root},
    },
};
use alloy_primitives::{keccak256, Address, B256, U256};
use revm::{context::TxEnv, primitives::hardfork::SpecId, primitives::TxKind};

pub const SUITE: &str = "GeneralStateTests";

/// The fork whose cases are run.
const FORK: &str = "Cancun";

/// The hash BLOCKHASH gives for block `n` in state tests (they have no chain): keccak256 of the
/// number in decimal, as the clients that fill them use.
pub fn test_block_hash(n: u64) -> B256 {
    keccak256(n.to_string().as_bytes())
}

fn to_u64(v: U256, what: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("{what} {v} exceeds 64 bits"))
}

/// Fee fields above 128 bits saturate (revm's fields are 128 bits wide); such a fee cannot be
/// paid, and the cases that use one expect the transaction to be refused.
fn to_u128(v: U256) -> u128 {
    u128::try_from(v).unwrap_or(u128::MAX)
}

/// The sender: the address of `secretKey`, else the `sender` field.
fn sender(tx: &TxTemplate) -> Result<Address, String> {
    match (&tx.secret_key, tx.sender) {
        (Some(key), _) => {
            let key = k256::ecdsa::SigningKey::from_slice(key.as_slice()).map_err(|e| format!("secretKey: {e}"))?;
            Ok(Address::from_private_key(&key))
        }
        (None, Some(sender)) => Ok(sender),
        (None, None) => Err("the transaction has neither secretKey nor sender".into()),
    }
}

/// Why a case has no block to run.
enum BuildError {
    /// The test cannot be read as written (a failure of the case).
    Unreadable(String),
    /// The case's transaction does not decode (its `txbytes`): no engine input can hold it, so
    /// it is refused before execution, as a block holding it would be when decoded. The case
    /// is judged on this refusal.
    Refused(EngineError),
}

impl From<String> for BuildError {
    fn from(e: String) -> Self {
        BuildError::Unreadable(e)
    }
}

/// Refuses a case whose signed transaction does not decode: a value of more than 256 bits
/// (`ValueOverflow`), a blob transaction without a receiver (`createBlobhashTx`).
fn check_decodes(case: &PostCase) -> Result<(), BuildError> {
    use alloy_eips::eip2718::Decodable2718;
    let Some(bytes) = &case.txbytes else {
        return Ok(());
    };
    match alloy_consensus::TxEnvelope::decode_2718_exact(bytes) {
        Ok(_) => Ok(()),
        Err(e) => Err(BuildError::Refused(EngineError::InvalidTransaction {
            index: 0,
            hash: keccak256(bytes),
            reason: format!("the signed transaction does not decode: {e}"),
        })),
    }
}

/// The block of one case: the header from `env`, the transaction from the template's entries
/// the case's indexes pick.
fn case_block(env: &Env, tx: &TxTemplate, case: &PostCase, caller: Address) -> Result<BlockInput, BuildError> {
    if tx.authorization_list.is_some() {
        return Err(BuildError::Unreadable("EIP-7702 authorization lists are not read by this runner (Prague)".into()));
    }
    check_decodes(case)?;
    let i = case.indexes;
    let pick =
        |len: usize, at: usize, what: &str| (at < len).then_some(at).ok_or_else(|| format!("{what} index {at} out of range ({len})"));
    let data = tx.data[pick(tx.data.len(), i.data, "data")?].clone();
    let gas_limit = tx.gas_limit[pick(tx.gas_limit.len(), i.gas, "gas")?];
    let value = tx.value[pick(tx.value.len(), i.value, "value")?].ok_or_else(|| format!("value {} is not a 256-bit quantity", i.value))?;
    let access_list = tx.access_lists.as_ref().and_then(|lists| lists.get(i.data).cloned().flatten());
    // The transaction type follows from the fields present, as in the clients' runners.
    let tx_type: u8 = if tx.max_fee_per_blob_gas.is_some() || tx.blob_versioned_hashes.is_some() {
        3
    } else if tx.max_fee_per_gas.is_some() {
        2
    } else if access_list.is_some() {
        1
    } else {
        0
    };
    let gas_price = if tx_type >= 2 { tx.max_fee_per_gas } else { tx.gas_price }.unwrap_or_default();
    let env_tx = TxEnv {
        tx_type,
        caller,
        // A gas limit beyond 64 bits exceeds any block's: saturated, the block refuses it.
        gas_limit: u64::try_from(gas_limit).unwrap_or(u64::MAX),
        gas_price: to_u128(gas_price),
        kind: tx.to.map_or(TxKind::Create, TxKind::Call),
        value,
        data,
        nonce: to_u64(tx.nonce, "nonce")?,
        chain_id: Some(1),
        access_list: access_list.unwrap_or_default(),
        gas_priority_fee: if tx_type >= 2 { tx.max_priority_fee_per_gas.map(to_u128) } else { None },
        blob_hashes: tx.blob_versioned_hashes.clone().unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas.map(to_u128).unwrap_or(0),
        ..Default::default()
    };
    let hash = case.txbytes.as_ref().map(keccak256).unwrap_or_default();
    let number = to_u64(env.current_number, "currentNumber")?;
    Ok(BlockInput {
        number,
        parent_hash: number.checked_sub(1).map(test_block_hash).unwrap_or_default(),
        timestamp: to_u64(env.current_timestamp, "currentTimestamp")?,
        beneficiary: env.current_coinbase,
        gas_limit: to_u64(env.current_gas_limit, "currentGasLimit")?,
        base_fee: env.current_base_fee.map(|f| to_u64(f, "currentBaseFee")).transpose()?,
        difficulty: env.current_difficulty,
        mix_hash: env.current_random.unwrap_or_default(),
        excess_blob_gas: env.current_excess_blob_gas.map(|g| to_u64(g, "currentExcessBlobGas")).transpose()?,
        txs: vec![TxInput { hash, tx_type, env: env_tx }],
        // State tests run the transaction alone: no beacon-root system call, no withdrawals.
        ..Default::default()
    })
}

/// keccak256 of the RLP list of a block's logs (the `logs` field of a case).
pub fn logs_hash(result: &BlockResult) -> B256 {
    let logs: Vec<&alloy_primitives::Log> = result.receipts.iter().flat_map(|r| &r.logs).collect();
    keccak256(alloy_rlp::encode(&logs))
}

/// What one mode made of one case: `Ok(Some(engine))` when it holds, `Ok(None)` when the group
/// engine declined it, `Err((field, expected, actual))` at the first difference.
type Outcome = Result<Option<&'static str>, (String, String, String)>;

fn differ(field: &str, expected: impl ToString, actual: impl ToString) -> (String, String, String) {
    (field.to_string(), expected.to_string(), actual.to_string())
}

fn judge(case: &PostCase, run: &Run, pre: &InMemoryStorage, pre_root: B256, reference: Option<&BlockResult>) -> Outcome {
    match (&case.expect_exception, run) {
        (_, Run::Panicked(message)) => Err(differ("panic", "no panic", message)),
        (_, Run::Declined) => Ok(None),
        (Some(_), Run::Rejected(EngineError::InvalidTransaction { .. })) => {
            // Refused: the state stays `pre`, whose root the case gives.
            if pre_root != case.hash {
                return Err(differ("hash", case.hash, pre_root));
            }
            Ok(Some("rejected"))
        }
        (Some(exception), Run::Rejected(e)) => Err(differ("error", format!("invalid transaction ({exception})"), e)),
        (Some(exception), Run::Done(result)) => {
            Err(differ("expectException", exception, format!("accepted (gas used {}, engine {})", result.gas_used, engine_name(result))))
        }
        (None, Run::Rejected(e)) => Err(differ("error", "the transaction to be valid", e)),
        (None, Run::Done(result)) => {
            let root = post_state_root(pre, &result.state_diff).map_err(|e| differ("hash", case.hash, e))?;
            if root != case.hash {
                // Where a parallel engine went wrong is clearer against sequential execution.
                let hint = reference
                    .and_then(|r| first_mismatch(r, result))
                    .map(|m| format!(" ({}: sequential {}, this mode {})", m.location, m.expected, m.actual));
                return Err(differ("hash", case.hash, format!("{root}{}", hint.unwrap_or_default())));
            }
            let logs = logs_hash(result);
            if logs != case.logs {
                return Err(differ("logs", case.logs, logs));
            }
            if let Some(m) = reference.and_then(|r| first_mismatch(r, result)) {
                return Err(differ(&m.location, format!("{} (sequential)", m.expected), m.actual));
            }
            Ok(Some(engine_name(result)))
        }
    }
}

/// Runs every Cancun case of one state test in every mode, counting into `report`.
pub fn run_test(file: &str, name: &str, test: &StateTest, modes: &[ModeSpec], skip: Option<&str>, report: &mut Report) {
    let cases: Vec<PostCase> = match test.post.get(FORK).map(|v| serde_json::from_value::<Vec<PostCase>>(v.clone())) {
        None => return,
        Some(Ok(cases)) => cases,
        Some(Err(e)) => return fail_all(report, file, name, modes, &[CaseId::default()], "post", "Cancun cases", e),
    };
    let ids: Vec<CaseId> = cases
        .iter()
        .map(|c| CaseId { data: Some(c.indexes.data), gas: Some(c.indexes.gas), value: Some(c.indexes.value), block: None })
        .collect();
    if skip.is_some() {
        for m in modes {
            report.summary(SUITE, m.mode, m.threads).skipped += cases.len() as u64;
        }
        return;
    }
    let chain = ChainSpec::fixed(1, SpecId::CANCUN);
    let prepared = (|| -> Result<(InMemoryStorage, B256, Address), String> {
        let mut pre = to_storage(&test.pre)?;
        let number = to_u64(test.env.current_number, "currentNumber")?;
        for n in number.saturating_sub(256)..number {
            pre.block_hashes.insert(n, test_block_hash(n));
        }
        let root = pre_state_root(&pre).map_err(|e| e.to_string())?;
        Ok((pre, root, sender(&test.transaction)?))
    })();
    let (pre, pre_root, caller) = match prepared {
        Ok(p) => p,
        Err(e) => return fail_all(report, file, name, modes, &ids, "pre", "a readable test", e),
    };
    for (case, id) in cases.iter().zip(&ids) {
        let block = match case_block(&test.env, &test.transaction, case, caller) {
            Ok(b) => Ok(b),
            Err(BuildError::Refused(e)) => Err(e),
            Err(BuildError::Unreadable(e)) => {
                fail_all(report, file, name, modes, std::slice::from_ref(id), "transaction", "a readable transaction", e);
                continue;
            }
        };
        let mut reference: Option<Box<BlockResult>> = None;
        // The contended variant and its sequential run, built once for every thread count.
        let mut contended: Option<Option<(BlockInput, InMemoryStorage, Run)>> = None;
        for mode in modes {
            if mode.mode == Mode::Contended {
                let variant = contended.get_or_insert_with(|| {
                    let (block, state) = contended_case(block.as_ref().ok()?, &pre)?;
                    let sequential = run_block(&block, &state, &chain, ModeSpec { mode: Mode::Sequential, threads: 1 });
                    Some((block, state, sequential))
                });
                let outcome = match variant {
                    Some((block, state, sequential)) => judge_contended(sequential, &run_block(block, state, &chain, *mode)),
                    None => Ok(None),
                };
                count(report, file, name, id, *mode, outcome);
                continue;
            }
            let run = match &block {
                Ok(block) => run_block(block, &pre, &chain, *mode),
                Err(refused) => Run::Rejected(refused.clone()),
            };
            let outcome = judge(case, &run, &pre, pre_root, reference.as_deref().filter(|_| mode.mode != Mode::Sequential));
            count(report, file, name, id, *mode, outcome);
            if let (Mode::Sequential, Run::Done(result), None) = (mode.mode, run, &reference) {
                reference = Some(result);
            }
        }
    }
}

/// Counts one case's outcome in one mode.
fn count(report: &mut Report, file: &str, name: &str, id: &CaseId, mode: ModeSpec, outcome: Outcome) {
    let summary = report.summary(SUITE, mode.mode, mode.threads);
    match outcome {
        Ok(Some(engine)) => {
            summary.passed += 1;
            *summary.engines.entry(engine.to_string()).or_default() += 1;
        }
        Ok(None) => summary.fell_back += 1,
        Err((field, expected, actual)) => {
            summary.failed += 1;
            report.failures.push(Failure {
                suite: SUITE.into(),
                mode: mode.mode,
                threads: mode.threads,
                file: file.into(),
                test: name.into(),
                case: id.clone(),
                field,
                expected,
                actual,
            });
        }
    }
}

/// Ether added to the target contract of a contended case: the amount from which Block-STM
/// handles a contract's balance lazily (`lazy_balance::MIN_BALANCE`).
const CONTENDED_EXTRA_BALANCE: U256 = crate::engine::fast_paths::lazy_balance::MIN_BALANCE;

/// The contended variant of a case (see `Mode::Contended`): its transaction sent first by a copy
/// of the sender (same balance and nonce, no code), then as written, on `pre` with the target
/// contract 1,000 ether richer, in a block whose gas limit holds both. `None` when the case is
/// refused before the engine.
fn contended_case(block: &BlockInput, pre: &InMemoryStorage) -> Option<(BlockInput, InMemoryStorage)> {
    let tx = &block.txs[0];
    let gas_limit = block.gas_limit.max(tx.env.gas_limit.checked_mul(2)?);
    let copy = Address::from_word(keccak256(b"parallel-evm conformance: contended sender copy"));
    if pre.accounts.contains_key(&copy) {
        return None;
    }
    let mut state = pre.clone();
    let sender = state.accounts.get(&tx.env.caller).map(|a| a.basic).unwrap_or_default();
    state.insert_account(copy, sender.balance, sender.nonce, None);
    if let TxKind::Call(to) = tx.env.kind {
        if let Some(target) = state.accounts.get_mut(&to).filter(|a| a.code.is_some()) {
            target.basic.balance = target.basic.balance.saturating_add(CONTENDED_EXTRA_BALANCE);
        }
    }
    let mut first = tx.clone();
    first.env.caller = copy;
    first.hash = keccak256([tx.hash.as_slice(), b"copy"].concat());
    let mut doubled = block.clone();
    doubled.gas_limit = gas_limit;
    doubled.txs = vec![first, tx.clone()];
    Some((doubled, state))
}

/// A contended case holds when forced parallel execution gives what sequential execution of
/// the same block gives: the same receipts and state diff, or the same typed error.
fn judge_contended(sequential: &Run, parallel: &Run) -> Outcome {
    let describe = |run: &Run| match run {
        Run::Done(r) => format!("a result (gas used {})", r.gas_used),
        Run::Rejected(e) => e.to_string(),
        Run::Declined => "declined".into(),
        Run::Panicked(m) => format!("panic: {m}"),
    };
    match (sequential, parallel) {
        (Run::Done(a), Run::Done(b)) => match first_mismatch(a, b) {
            Some(m) => Err(differ(&m.location, format!("{} (sequential)", m.expected), m.actual)),
            None => Ok(Some(engine_name(b))),
        },
        (Run::Rejected(a), Run::Rejected(b)) if a == b => Ok(Some("rejected")),
        (a, b) => Err(differ("outcome", format!("{} (sequential)", describe(a)), describe(b))),
    }
}

/// Every case in every mode fails for one reason (the test could not be read).
#[allow(clippy::too_many_arguments)]
fn fail_all(
    report: &mut Report,
    file: &str,
    name: &str,
    modes: &[ModeSpec],
    ids: &[CaseId],
    field: &str,
    expected: &str,
    actual: impl ToString,
) {
    let actual = actual.to_string();
    for m in modes {
        report.summary(SUITE, m.mode, m.threads).failed += ids.len() as u64;
        for id in ids {
            report.failures.push(Failure {
                suite: SUITE.into(),
                mode: m.mode,
                threads: m.threads,
                file: file.into(),
                test: name.into(),
                case: id.clone(),
                field: field.into(),
                expected: expected.into(),
                actual: actual.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_logs_hash_to_the_empty_list() {
        let empty: Vec<&alloy_primitives::Log> = Vec::new();
        // keccak256(rlp([])) = keccak256(0xc0), the `logs` of every case without logs.
        assert_eq!(
            keccak256(alloy_rlp::encode(&empty)),
            alloy_primitives::b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")
        );
    }

    #[test]
    fn block_hashes_are_keccak_of_the_decimal_number() {
        assert_eq!(test_block_hash(1), keccak256(b"1"));
        assert_ne!(test_block_hash(10), test_block_hash(1));
    }
}
