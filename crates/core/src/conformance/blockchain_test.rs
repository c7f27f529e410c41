//! BlockchainTests: every block of a test imported in order on top of its parent (the parent's
//! post-state is the block's pre-state), checked against its header (`stateRoot`, `receiptTrie`,
//! `bloom`, `gasUsed`) and, at the end, the state at `lastblockhash` against `postState`. A block
//! with `expectException` must be refused with a typed error, and the chain goes on from its
//! parent, as the next blocks name it.

use super::{
    engines::{engine_name, run_block, Run},
    header::{check_against_parent, check_body_roots, HeaderError},
    report::{CaseId, Failure, Report},
    vectors::{to_storage, BlockchainTest},
    Mode, ModeSpec,
};
use crate::{
    block::{chain::parse_hardfork, BlockInput, ChainSpec},
    error::EngineError,
    result::StateDiff,
    state::{
        storage::{code_value, InMemoryStorage},
        value::BasicValue,
    },
    verify::{check_report, state_root::pre_state_root, CheckStatus},
};
use alloy_consensus::{transaction::SignerRecoverable, Block, Header, TxEnvelope};
use alloy_primitives::{B256, KECCAK256_EMPTY, U256};
use alloy_rlp::Decodable;
use rustc_hash::FxHashMap;
use std::sync::Arc;

pub const SUITE: &str = "BlockchainTests";

/// A block on the test's chain: its header and the state after it.
struct Imported {
    header: Header,
    state: Arc<InMemoryStorage>,
}

/// Why a block was refused.
enum Rejection {
    /// Its RLP does not decode (or is not hex).
    Decode(String),
    UnknownParent(B256),
    Header(HeaderError),
    /// The engine's typed error (an invalid transaction, an invalid block).
    Engine(EngineError),
    /// Execution gave a result the header does not commit to (`name`: the header field).
    Mismatch {
        name: String,
        expected: String,
        actual: String,
    },
    Panic(String),
}

impl Rejection {
    /// The field, the expected value and what the runner found, for a failure line.
    fn describe(&self) -> (String, String, String) {
        match self {
            Rejection::Decode(e) => ("rlp".into(), "a block".into(), e.clone()),
            Rejection::UnknownParent(h) => ("parentHash".into(), "a block of the chain".into(), h.to_string()),
            Rejection::Header(e) => (e.field.into(), e.expected.clone(), e.actual.clone()),
            Rejection::Engine(e) => ("error".into(), "the block to be valid".into(), e.to_string()),
            Rejection::Mismatch { name, expected, actual } => (name.clone(), expected.clone(), actual.clone()),
            Rejection::Panic(m) => ("panic".into(), "no panic".into(), m.clone()),
        }
    }

    /// Whether this refusal is a typed one that answers `exception`: a transaction exception
    /// must be the engine's invalid-transaction error; a block exception any refusal of the
    /// block (undecodable, a broken header rule, an invalid block, results its header does not
    /// commit to). A panic or an internal or state error never is.
    fn answers(&self, exception: &str) -> bool {
        let tx = exception.split('|').all(|e| e.starts_with("TransactionException"));
        match self {
            Rejection::Engine(EngineError::InvalidTransaction { .. }) => true,
            Rejection::Engine(EngineError::InvalidBlock(_) | EngineError::InvalidInput(_)) => !tx,
            Rejection::Decode(_) | Rejection::UnknownParent(_) | Rejection::Header(_) | Rejection::Mismatch { .. } => !tx,
            Rejection::Engine(_) | Rejection::Panic(_) => false,
        }
    }
}

/// `state` after a block whose diff is `diff`.
pub fn apply_diff(state: &mut InMemoryStorage, diff: &StateDiff) {
    for (address, d) in diff.iter() {
        if d.deleted {
            state.accounts.remove(address);
            continue;
        }
        let account = state.accounts.entry(*address).or_default();
        if d.storage_cleared {
            account.storage.clear();
        }
        account.basic = BasicValue { balance: d.balance, nonce: d.nonce };
        if d.code_hash == KECCAK256_EMPTY {
            account.code = None;
        } else if let Some(code) = &d.code {
            account.code = code_value(code.clone());
        }
        for (slot, value) in &d.storage {
            let (slot, value) = (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0));
            if value.is_zero() {
                account.storage.remove(&slot);
            } else {
                account.storage.insert(slot, value);
            }
        }
    }
}

/// A block's RLP decoded, with nothing left over.
fn decode_block(rlp_hex: &str) -> Result<Block<TxEnvelope>, String> {
    let bytes = alloy_primitives::hex::decode(rlp_hex.trim()).map_err(|e| format!("not hex: {e}"))?;
    let mut rest = bytes.as_slice();
    let block = Block::<TxEnvelope>::decode(&mut rest).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the block", rest.len()));
    }
    Ok(block)
}

/// The block as the engine's input, every sender recovered from its signature.
fn block_input(block: &Block<TxEnvelope>) -> Result<BlockInput, EngineError> {
    use alloy_rpc_types_eth::{Block as RpcBlock, BlockTransactions, Header as RpcHeader, Transaction};
    let mut txs = Vec::with_capacity(block.body.transactions.len());
    for (index, tx) in block.body.transactions.iter().enumerate() {
        let signer = tx.recover_signer().map_err(|e| EngineError::InvalidTransaction {
            index,
            hash: *tx.tx_hash(),
            reason: format!("invalid signature: {e}"),
        })?;
        let recovered = alloy_consensus::transaction::Recovered::new_unchecked(tx.clone(), signer);
        txs.push(Transaction::from_transaction(recovered, Default::default()));
    }
    let rpc = RpcBlock {
        header: RpcHeader::new(block.header.clone()),
        uncles: block.body.ommers.iter().map(Header::hash_slow).collect(),
        transactions: BlockTransactions::Full(txs),
        withdrawals: block.body.withdrawals.clone(),
    };
    BlockInput::from_rpc(rpc, None)
}

/// Imports one block in `mode`: its hash and the chain's new entry, with the engine that ran it.
fn import(
    rlp: &str,
    known: &FxHashMap<B256, Imported>,
    chain: &ChainSpec,
    mode: ModeSpec,
) -> Result<(B256, Imported, &'static str), Rejection> {
    let block = decode_block(rlp).map_err(Rejection::Decode)?;
    let parent_hash = block.header.parent_hash;
    let parent = known.get(&parent_hash).ok_or(Rejection::UnknownParent(parent_hash))?;
    check_against_parent(&block, &parent.header).map_err(Rejection::Header)?;
    let input = block_input(&block).map_err(Rejection::Engine)?;
    let (result, engine) = match run_block(&input, parent.state.as_ref(), chain, mode) {
        Run::Done(result) => {
            let engine = engine_name(&result);
            (result, engine)
        }
        // The group engine handed the block on: the chain goes on from sequential execution
        // (the parallel modes check the engines that take such blocks).
        Run::Declined => match run_block(&input, parent.state.as_ref(), chain, ModeSpec { mode: Mode::Sequential, threads: 1 }) {
            Run::Done(result) => (result, "declined"),
            Run::Rejected(e) => return Err(Rejection::Engine(e)),
            Run::Panicked(m) => return Err(Rejection::Panic(m)),
            Run::Declined => unreachable!("sequential execution never declines"),
        },
        Run::Rejected(e) => return Err(Rejection::Engine(e)),
        Run::Panicked(m) => return Err(Rejection::Panic(m)),
    };
    check_body_roots(&block).map_err(Rejection::Header)?;
    let checks = check_report(&input, chain, &result, Some(parent.state.as_ref())).map_err(Rejection::Engine)?;
    if let Some(c) = checks.into_iter().find(|c| c.status == CheckStatus::Failed) {
        return Err(Rejection::Mismatch { name: c.name, expected: c.expected.unwrap_or_default(), actual: c.actual.unwrap_or_default() });
    }
    let mut state = InMemoryStorage::clone(&parent.state);
    apply_diff(&mut state, &result.state_diff);
    // BLOCKHASH of the parent, for the blocks after this one (this block's own parent comes
    // from its header).
    state.block_hashes.insert(parent.header.number, parent_hash);
    let hash = block.header.hash_slow();
    Ok((hash, Imported { header: block.header, state: Arc::new(state) }, engine))
}

/// A difference for the failure list: (case, field, expected, actual); boxed, as results carry it.
type Difference = Box<(CaseId, String, String, String)>;

fn block_case(i: usize) -> CaseId {
    CaseId { block: Some(i), ..Default::default() }
}

/// The first account where `ours` differs from the expected post-state.
fn post_state_difference(ours: &InMemoryStorage, expected: &InMemoryStorage) -> Option<(String, String, String)> {
    let mut addresses: Vec<_> = ours.accounts.keys().chain(expected.accounts.keys()).copied().collect();
    addresses.sort_unstable();
    addresses.dedup();
    for a in addresses {
        let field = |f: &str| format!("postState[{a}].{f}");
        match (ours.accounts.get(&a), expected.accounts.get(&a)) {
            (Some(_), None) => return Some((field("exists"), "false".into(), "true".into())),
            (None, Some(_)) => return Some((field("exists"), "true".into(), "false".into())),
            (Some(o), Some(e)) => {
                if o.basic.balance != e.basic.balance {
                    return Some((field("balance"), e.basic.balance.to_string(), o.basic.balance.to_string()));
                }
                if o.basic.nonce != e.basic.nonce {
                    return Some((field("nonce"), e.basic.nonce.to_string(), o.basic.nonce.to_string()));
                }
                let code_hash = |c: &Option<crate::state::value::CodeValue>| c.as_ref().map_or(KECCAK256_EMPTY, |c| c.hash);
                if code_hash(&o.code) != code_hash(&e.code) {
                    return Some((field("codeHash"), code_hash(&e.code).to_string(), code_hash(&o.code).to_string()));
                }
                let mut slots: Vec<_> = o.storage.keys().chain(e.storage.keys()).copied().collect();
                slots.sort_unstable();
                slots.dedup();
                for s in slots {
                    let (x, y) = (o.storage.get(&s).copied().unwrap_or_default(), e.storage.get(&s).copied().unwrap_or_default());
                    if x != y {
                        return Some((field(&format!("storage[{s:#x}]")), y.to_string(), x.to_string()));
                    }
                }
            }
            (None, None) => {}
        }
    }
    None
}

/// What one mode made of the whole test: whether any block ran on the mode's own engine, or
/// the first difference.
fn run_chain(
    test: &BlockchainTest,
    chain: &ChainSpec,
    genesis: &Imported,
    genesis_hash: B256,
    mode: ModeSpec,
    engines: &mut Vec<&'static str>,
) -> Result<(), Difference> {
    let mut known: FxHashMap<B256, Imported> = FxHashMap::default();
    known.insert(genesis_hash, Imported { header: genesis.header.clone(), state: genesis.state.clone() });
    for (i, b) in test.blocks.iter().enumerate() {
        match (import(&b.rlp, &known, chain, mode), &b.expect_exception) {
            (Ok((hash, imported, engine)), None) => {
                engines.push(engine);
                known.insert(hash, imported);
            }
            (Ok((_, _, engine)), Some(exception)) => {
                return Err(Box::new((
                    block_case(i),
                    "expectException".into(),
                    exception.clone(),
                    format!("the block was accepted (engine {engine})"),
                )))
            }
            (Err(rejection), Some(exception)) if rejection.answers(exception) => {}
            (Err(rejection), Some(exception)) => {
                let (field, _, actual) = rejection.describe();
                return Err(Box::new((
                    block_case(i),
                    "error".into(),
                    format!("a typed refusal ({exception})"),
                    format!("{field}: {actual}"),
                )));
            }
            (Err(rejection), None) => {
                let (field, expected, actual) = rejection.describe();
                return Err(Box::new((block_case(i), field, expected, actual)));
            }
        }
    }
    let Some(last) = known.get(&test.lastblockhash) else {
        return Err(Box::new((CaseId::default(), "lastblockhash".into(), test.lastblockhash.to_string(), "not imported".into())));
    };
    let whole = |field: &str, expected: String, actual: String| Err(Box::new((CaseId::default(), field.to_string(), expected, actual)));
    if let Some(expected) = &test.post_state {
        let expected = match to_storage(expected) {
            Ok(s) => s,
            Err(e) => return whole("postState", "a readable state".into(), e),
        };
        if let Some((field, e, o)) = post_state_difference(&last.state, &expected) {
            return whole(&field, e, o);
        }
    }
    if let Some(root) = test.post_state_hash {
        let ours = pre_state_root(&last.state)
            .map_err(|e| Box::new((CaseId::default(), "postStateHash".into(), root.to_string(), e.to_string())))?;
        if ours != root {
            return whole("postStateHash", root.to_string(), ours.to_string());
        }
    }
    Ok(())
}

/// Runs one blockchain test in every mode, counting into `report`.
pub fn run_test(file: &str, name: &str, test: &BlockchainTest, modes: &[ModeSpec], skip: Option<&str>, report: &mut Report) {
    if skip.is_some() {
        for m in modes {
            report.summary(SUITE, m.mode, m.threads).skipped += 1;
        }
        return;
    }
    let fail = |report: &mut Report, mode: ModeSpec, difference: Difference| {
        let (case, field, expected, actual) = *difference;
        report.summary(SUITE, mode.mode, mode.threads).failed += 1;
        report.failures.push(Failure {
            suite: SUITE.into(),
            mode: mode.mode,
            threads: mode.threads,
            file: file.into(),
            test: name.into(),
            case,
            field,
            expected,
            actual,
        });
    };
    let prepared = (|| -> Result<(ChainSpec, Imported, B256), Difference> {
        let whole = |field: &str, expected: String, actual: String| Box::new((CaseId::default(), field.to_string(), expected, actual));
        let spec = parse_hardfork(&test.network).map_err(|e| whole("network", "a known fork".into(), e.to_string()))?;
        let chain = ChainSpec::fixed(1, spec);
        let pre = to_storage(&test.pre).map_err(|e| whole("pre", "a readable state".into(), e))?;
        let mut rest = test.genesis_rlp.as_ref();
        let genesis = Block::<TxEnvelope>::decode(&mut rest).map_err(|e| whole("genesisRLP", "a block".into(), e.to_string()))?;
        let hash = genesis.header.hash_slow();
        if hash != test.genesis_block_header.hash {
            return Err(whole("genesisBlockHeader.hash", test.genesis_block_header.hash.to_string(), hash.to_string()));
        }
        // The pre-state as read must be the genesis state.
        let root = pre_state_root(&pre).map_err(|e| whole("pre", "a full state".into(), e.to_string()))?;
        if root != genesis.header.state_root {
            return Err(whole("genesisBlockHeader.stateRoot", genesis.header.state_root.to_string(), root.to_string()));
        }
        Ok((chain, Imported { header: genesis.header, state: Arc::new(pre) }, hash))
    })();
    let (chain, genesis, genesis_hash) = match prepared {
        Ok(p) => p,
        Err(d) => {
            for m in modes {
                fail(report, *m, d.clone());
            }
            return;
        }
    };
    // The contended mode doubles state tests' transactions; blockchain tests have blocks of
    // their own.
    for mode in modes.iter().filter(|m| m.mode != Mode::Contended) {
        let mut engines = Vec::new();
        match run_chain(test, &chain, &genesis, genesis_hash, *mode, &mut engines) {
            Ok(()) => {
                let summary = report.summary(SUITE, mode.mode, mode.threads);
                // Every block handed on by the group engine: this mode checked nothing of its own.
                if !engines.is_empty() && engines.iter().all(|e| *e == "declined") {
                    summary.fell_back += 1;
                } else {
                    summary.passed += 1;
                }
                for e in engines {
                    *summary.engines.entry(e.to_string()).or_default() += 1;
                }
            }
            Err(d) => fail(report, *mode, d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{result::AccountDiff, verify::state_root::post_state_root};
    use alloy_primitives::{Address, Bytes};

    /// The next block's pre-state built by `apply_diff` hashes to the root the diff gives.
    #[test]
    fn applied_diff_hashes_like_the_post_state_root() {
        let (eoa, contract, gone, fresh) =
            (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3), Address::repeat_byte(4));
        let mut pre = InMemoryStorage::default();
        pre.insert_account(eoa, U256::from(100), 1, None);
        pre.insert_account(contract, U256::ZERO, 1, Some(Bytes::from_static(&[0x60, 0x00])));
        pre.insert_storage(contract, U256::from(1), U256::from(11));
        pre.insert_storage(contract, U256::from(2), U256::from(22));
        pre.insert_account(gone, U256::from(5), 0, None);
        let plain = |balance: u64, nonce: u64| AccountDiff {
            deleted: false,
            created: false,
            storage_cleared: false,
            balance: U256::from(balance),
            nonce,
            code_hash: KECCAK256_EMPTY,
            code: None,
            storage: Default::default(),
        };
        let mut diff = StateDiff::new();
        diff.insert(eoa, plain(90, 2));
        let mut c = plain(0, 1);
        c.code_hash = pre.accounts[&contract].code.as_ref().unwrap().hash;
        c.storage.insert(B256::from(U256::from(1)), B256::ZERO);
        c.storage.insert(B256::from(U256::from(3)), B256::from(U256::from(33)));
        diff.insert(contract, c);
        diff.insert(gone, AccountDiff { deleted: true, ..plain(0, 0) });
        let code = Bytes::from_static(&[0x60, 0x01]);
        diff.insert(fresh, AccountDiff { created: true, code_hash: alloy_primitives::keccak256(&code), code: Some(code), ..plain(7, 1) });
        let expected = post_state_root(&pre, &diff).unwrap();
        let mut next = pre.clone();
        apply_diff(&mut next, &diff);
        assert_eq!(pre_state_root(&next).unwrap(), expected);
        assert!(!next.accounts.contains_key(&gone));
        assert_eq!(next.accounts[&contract].storage.len(), 2, "slot 1 cleared, slot 3 added");
        // A self-destruct drops the storage from before the block.
        diff.get_mut(&contract).unwrap().storage_cleared = true;
        let mut next = pre.clone();
        apply_diff(&mut next, &diff);
        assert_eq!(pre_state_root(&next).unwrap(), post_state_root(&pre, &diff).unwrap());
        assert_eq!(next.accounts[&contract].storage.len(), 1);
    }

    #[test]
    fn refusals_answer_exceptions_by_kind() {
        let tx = Rejection::Engine(EngineError::InvalidTransaction { index: 0, hash: B256::ZERO, reason: "nonce".into() });
        assert!(tx.answers("TransactionException.NONCE_MISMATCH_TOO_LOW"));
        let header = Rejection::Header(HeaderError { field: "gasLimit", expected: "x".into(), actual: "y".into() });
        assert!(header.answers("BlockException.INVALID_GASLIMIT"));
        assert!(
            !header.answers("TransactionException.INTRINSIC_GAS_TOO_LOW"),
            "a transaction exception needs the engine's invalid-transaction error"
        );
        assert!(!Rejection::Panic("boom".into()).answers("BlockException.INVALID_GASLIMIT"));
        assert!(!Rejection::Engine(EngineError::Internal("bug".into())).answers("BlockException.INVALID_GASLIMIT"));
    }
}
