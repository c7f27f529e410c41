//! Blocks made only of plain value transfers need no speculation: every transaction's accounts
//! (sender and receiver, both without code) are known before it runs. Transactions that share an
//! account form a group; groups share nothing but the beneficiary, whose fees are kept apart and
//! summed. Workers therefore run whole groups, in block order, on private overlays: no
//! multi-version memory, no validation, and nothing shared while they run. The same workers run
//! groups that are only guessed (`predicted`), recording what they read and write so that the
//! run can be checked once they are done.

use crate::{
    block::BlockInput,
    diff::sorted_diff,
    result::AccountDiff,
    chain::ChainSpec,
    error::EngineError,
    overlay::Overlay,
    parallel::{run_on_caller_and_pool, ParallelError},
    predicted::Footprint,
    storage::Storage,
    transitions::OverlayReader,
    types::{Loc, TxIdx, Value, WriteValue},
    vm::{BlockVm, ExecError, ReadError, SimpleTransfers, StateReader, TxResult},
};
use alloy_primitives::{Address, B256, U256};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use revm::primitives::TxKind;
use rustc_hash::{FxHashMap, FxHashSet};

/// Whether `tx` is a plain value call between two accounts, as far as the transaction alone
/// tells (see `groups`).
fn plain_transfer_shape(block: &BlockInput, tx: &crate::block::TxInput) -> bool {
    let env = &tx.env;
    let TxKind::Call(to) = env.kind else { return false };
    // Access lists load other accounts, authorizations set code: both reach beyond the pair.
    // Call data almost always means a contract call: leave those to Block-STM at once.
    if env.tx_type > 3 || !env.access_list.0.is_empty() || !env.data.is_empty() {
        return false;
    }
    // Precompiles live at the lowest addresses and run code of their own.
    !(to.0[..18].iter().all(|b| *b == 0) || to == block.beneficiary || env.caller == block.beneficiary)
}

/// The block's transactions split into groups that share no account, each in block order;
/// `None` when some transaction is not a plain value call between two accounts (a creation,
/// one with call data, an access list or authorizations, one to a precompile or involving the
/// beneficiary). That the receivers hold no code is checked by the workers, in parallel.
pub fn groups(block: &BlockInput) -> Option<Vec<Vec<TxIdx>>> {
    // Shapes first, without hashing: a block whose first contract call comes late (11814555:
    // transaction 577 of 579) is turned down before any account is indexed.
    if !block.txs.iter().all(|tx| plain_transfer_shape(block, tx)) {
        return None;
    }
    let keys: Vec<[Address; 2]> = block
        .txs
        .iter()
        .map(|tx| match tx.env.kind {
            TxKind::Call(to) => Some([tx.env.caller, to]),
            TxKind::Create => None,
        })
        .collect::<Option<_>>()?;
    Some(union_groups(&keys))
}

/// Transactions that share a key (an account), directly or through others, in one group; each
/// group in block order, groups in the order of their first transaction.
pub fn union_groups<K: AsRef<[Address]>>(keys: &[K]) -> Vec<Vec<TxIdx>> {
    let mut index: FxHashMap<Address, usize> = FxHashMap::default();
    index.reserve(keys.len() * 2);
    let mut parent: Vec<usize> = Vec::with_capacity(keys.len() * 2);
    let mut node = |a: Address, parent: &mut Vec<usize>| {
        *index.entry(a).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    // Each transaction joins its keys' nodes; it belongs to its first key's group.
    let mut first = Vec::with_capacity(keys.len());
    for ks in keys {
        let ks = ks.as_ref();
        let a = node(*ks.first().expect("every transaction has a key"), &mut parent);
        first.push(a);
        for (j, k) in ks.iter().enumerate().skip(1) {
            // Keys repeat (a sender named again): skip them before hashing.
            if ks[..j].contains(k) {
                continue;
            }
            let b = node(*k, &mut parent);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra] = rb;
            }
        }
    }
    let mut group_of: Vec<usize> = vec![usize::MAX; parent.len()];
    let mut groups: Vec<Vec<TxIdx>> = Vec::new();
    for (tx, a) in first.into_iter().enumerate() {
        let r = root(&mut parent, a);
        if group_of[r] == usize::MAX {
            group_of[r] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[r]].push(tx);
    }
    groups
}

/// For groups of these sizes, the worker each goes to (heaviest first onto the least loaded)
/// and each worker's load.
pub fn spread(sizes: &[usize], workers: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|g| std::cmp::Reverse(sizes[*g]));
    let (mut to, mut load) = (vec![0; sizes.len()], vec![0; workers]);
    for g in order {
        let lightest = (0..workers).min_by_key(|w| load[*w]).expect("at least one worker");
        to[g] = lightest;
        load[lightest] += sizes[g];
    }
    (to, load)
}

/// Splits groups between `workers` as `spread` does, and returns each worker's transactions
/// in block order.
fn assign(groups: Vec<Vec<TxIdx>>, workers: usize) -> Vec<Vec<TxIdx>> {
    let (to, _) = spread(&groups.iter().map(Vec::len).collect::<Vec<_>>(), workers);
    let mut shares: Vec<Vec<TxIdx>> = vec![Vec::new(); workers];
    for (g, w) in groups.into_iter().zip(to) {
        shares[w].extend(g);
    }
    for s in &mut shares {
        s.sort_unstable();
    }
    shares
}

/// What one worker produced.
#[derive(Default)]
struct Share {
    results: Vec<(TxIdx, TxResult)>,
    /// Accounts the block's transitions may still change (see `execute`).
    open: Overlay,
    /// The final diff of every other account of this share, sorted by address.
    diff: Vec<(Address, AccountDiff)>,
    fees: U256,
    /// The first transaction of this share that was invalid, with the reason; the share stops
    /// there (later ones of its groups may depend on it, and the block is invalid anyway).
    invalid: Option<(TxIdx, String)>,
    /// What the share read and wrote, for guessed groups.
    footprint: Option<Footprint>,
}

/// A finished run: results in block order, the overlay of the accounts still open to the
/// block's transitions (pre-block writes, the beneficiary's fees, `open` accounts), and the
/// final diff of all other accounts.
pub struct TransferRun {
    pub results: Vec<TxResult>,
    pub overlay: Overlay,
    /// Per worker, sorted by address (see `diff::from_sorted_parts`).
    pub diff: Vec<Vec<(Address, AccountDiff)>>,
}

/// How the groups were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Plain transfers: the accounts are known, nothing to check (`groups`).
    Known,
    /// Guessed from call data (`predicted::groups`): the run stands only if no worker read or
    /// wrote what another wrote, and falls back otherwise.
    Guessed,
}

/// Runs the groups on `threads` workers on top of `pre`. Each worker also builds the diff of
/// its accounts, except those in `open` (which post-block transitions may credit) and those
/// `pre` wrote, which return in the overlay. Results come back in block order with the same
/// checks and precedence as the sequential loop.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    block: &BlockInput,
    chain: &ChainSpec,
    base: &dyn Storage,
    pre: Overlay,
    groups: Vec<Vec<TxIdx>>,
    grouping: Grouping,
    threads: usize,
    open: &FxHashSet<Address>,
) -> Result<TransferRun, ParallelError> {
    let shares = assign(groups, threads.max(1));
    let layered = crate::overlay::Layered { base, overlay: &pre };
    let reads_from: &dyn Storage = if pre.accounts.is_empty() { base } else { &layered };
    let is_open = |a: &Address| open.contains(a) || pre.accounts.contains_key(a);
    let out: Vec<Mutex<Option<Result<Share, ParallelError>>>> = (0..shares.len()).map(|_| Mutex::new(None)).collect();
    // Set by a worker that finds a receiver with code, so the others stop early.
    let abort = AtomicBool::new(false);
    // Workers take shares in turn rather than one each: a pool thread that wakes late (1.8-5.8
    // ms on this 2-core VM, against a 2.7 ms share of a 1,000-transaction ERC20 block) finds
    // its share already run by the caller instead of making the caller wait for it. A share is
    // still run whole, in block order, by one worker.
    let next = AtomicUsize::new(0);
    run_on_caller_and_pool(shares.len(), |_| loop {
        let w = next.fetch_add(1, Relaxed);
        let Some(txs) = shares.get(w) else { break };
        let share = run_share(block, chain, reads_from, base, txs, grouping, &is_open, &abort);
        if matches!(share, Err(ParallelError::Fallback(_))) {
            abort.store(true, Relaxed);
        }
        *out[w].lock() = Some(share);
    })
    .map_err(ParallelError::Fatal)?;
    drop(layered);

    let out: Vec<Result<Share, ParallelError>> = out
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|| Err(ParallelError::Fatal(EngineError::Internal("a worker did not report".into())))))
        .collect();
    // A fallback anywhere decides the run, whatever else the other workers ran into.
    if let Some(why) = out.iter().find_map(|s| match s {
        Err(ParallelError::Fallback(why)) => Some(why.clone()),
        _ => None,
    }) {
        return Err(ParallelError::Fallback(why));
    }
    let mut out = out.into_iter().collect::<Result<Vec<Share>, ParallelError>>()?;
    if grouping == Grouping::Guessed {
        check_footprints(&out, block.beneficiary)?;
    }
    let mut invalid: Option<(TxIdx, String)> = None;
    let mut overlay = pre;
    let mut fees = U256::ZERO;
    let diff = match grouping {
        Grouping::Known => out.iter_mut().map(|s| std::mem::take(&mut s.diff)).collect(),
        // Guessed groups may write different slots of one account (a token's balances).
        Grouping::Guessed => vec![merge_diffs(base, out.iter_mut().map(|s| std::mem::take(&mut s.diff)).collect()).map_err(ParallelError::Fatal)?],
    };
    // Each share's results are in block order: merge them, moving each result once.
    let mut streams = Vec::with_capacity(out.len());
    for share in out {
        if let Some((i, reason)) = share.invalid {
            if invalid.as_ref().is_none_or(|(j, _)| i < *j) {
                invalid = Some((i, reason));
            }
        }
        streams.push(share.results.into_iter().peekable());
        fees = fees.saturating_add(share.fees);
        overlay.merge(share.open);
    }
    let mut results = Vec::with_capacity(block.txs.len());
    let mut cumulative = 0u64;
    for i in 0..block.txs.len() {
        block.check_gas_available(i, cumulative).map_err(ParallelError::Fatal)?;
        let slot = streams.iter_mut().find_map(|s| match s.peek() {
            Some((j, _)) if *j == i => s.next().map(|(_, r)| r),
            _ => None,
        });
        match slot {
            Some(r) => {
                cumulative += r.gas_used;
                results.push(r);
            }
            None => {
                return Err(match &invalid {
                    Some((j, reason)) if *j == i => ParallelError::Fatal(block.invalid_tx(i, reason.clone())),
                    _ => ParallelError::Fatal(EngineError::Internal(format!("transaction {i} has no result"))),
                })
            }
        }
    }
    if !fees.is_zero() {
        overlay.add_balance(base, block.beneficiary, fees).map_err(|e| ParallelError::Fatal(e.into()))?;
    }
    Ok(TransferRun { results, overlay, diff })
}

/// Falls back unless no share read or wrote a location that another share wrote; the shares
/// check each other in parallel.
fn check_footprints(shares: &[Share], beneficiary: Address) -> Result<(), ParallelError> {
    let prints: Vec<&Footprint> = shares.iter().filter_map(|s| s.footprint.as_ref()).collect();
    let found: Vec<Mutex<Option<Loc>>> = prints.iter().map(|_| Mutex::new(None)).collect();
    run_on_caller_and_pool(prints.len(), |w| {
        let conflict = prints.iter().enumerate().filter(|(o, _)| *o != w).find_map(|(_, other)| prints[w].conflict(other, beneficiary));
        *found[w].lock() = conflict;
    })
    .map_err(ParallelError::Fatal)?;
    match found.into_iter().find_map(|f| f.into_inner()) {
        Some(loc) => Err(ParallelError::Fallback(format!("guessed groups share {loc:?}"))),
        None => Ok(()),
    }
}

/// One diff from the shares' sorted diffs, where an account may appear in several (each wrote
/// other slots of it; at most one changed its balance, nonce or code, as the footprints show).
fn merge_diffs(base: &dyn Storage, parts: Vec<Vec<(Address, AccountDiff)>>) -> Result<Vec<(Address, AccountDiff)>, EngineError> {
    let mut out: Vec<(Address, AccountDiff)> = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for (address, d) in crate::diff::merge_sorted(parts) {
        match out.last_mut() {
            Some((last, prev)) if *last == address => {
                let before = base.basic(address)?.unwrap_or_default();
                let changed = d.balance != before.balance || d.nonce != before.nonce || d.code.is_some() || d.created || d.deleted;
                let mut other = if changed { std::mem::replace(prev, d) } else { d };
                // Disjoint slots: appending merges the two sorted trees in linear time.
                prev.storage.append(&mut other.storage);
            }
            _ => out.push((address, d)),
        }
    }
    Ok(out)
}

/// Reads through the worker's overlay, keeping the share's footprint when groups are guessed.
struct ShareReader<'a> {
    inner: OverlayReader<'a>,
    footprint: Option<Footprint>,
}

impl StateReader for ShareReader<'_> {
    fn read(&mut self, loc: Loc) -> Result<Value, ReadError> {
        if let Some(f) = &mut self.footprint {
            f.reads.insert(loc);
        }
        self.inner.read(loc)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError> {
        self.inner.block_hash(number)
    }
}

#[allow(clippy::too_many_arguments)]
fn run_share(
    block: &BlockInput,
    chain: &ChainSpec,
    reads_from: &dyn Storage,
    base: &dyn Storage,
    txs: &[TxIdx],
    grouping: Grouping,
    is_open: &dyn Fn(&Address) -> bool,
    abort: &AtomicBool,
) -> Result<Share, ParallelError> {
    let fatal = |e: EngineError| ParallelError::Fatal(e);
    let guessed = grouping == Grouping::Guessed;
    if !guessed {
        // A receiver with code would run it, and code may touch any account: not this engine's.
        for &i in txs {
            let TxKind::Call(to) = block.txs[i].env.kind else { unreachable!("groups holds calls only") };
            if !matches!(reads_from.read(&Loc::Code(to)).map_err(|e| fatal(e.into()))?, Value::Code(None)) {
                return Err(ParallelError::Fallback(format!("transaction {i} calls code")));
            }
        }
    }
    let mut share = Share { results: Vec::with_capacity(txs.len()), ..Default::default() };
    let reader = ShareReader { inner: OverlayReader { base: reads_from, overlay: Overlay::default() }, footprint: guessed.then(Footprint::default) };
    let mut vm = BlockVm::new(block, chain, reader).with_simple_transfers(SimpleTransfers::Direct);
    vm.reader_mut().inner.overlay.accounts.reserve(txs.len() * 2);
    for &i in txs {
        if abort.load(Relaxed) {
            return Err(ParallelError::Fallback("another worker fell back".into()));
        }
        let outcome = vm.execute(&block.txs[i], true).map_err(|e| match e {
            // What a guessed group read may be wrong: only Block-STM can tell.
            ExecError::Fatal(e) if guessed => ParallelError::Fallback(format!("transaction {i}: {e}")),
            ExecError::Fatal(e) => fatal(e),
            ExecError::Blocked(_) => fatal(EngineError::Internal("a private overlay blocked".into())),
        })?;
        if let Some(e) = outcome.fatal {
            return Err(if guessed { ParallelError::Fallback(format!("transaction {i}: {e}")) } else { fatal(e) });
        }
        if outcome.hazard {
            return Err(ParallelError::Fallback(format!("transaction {i} defeats lazy updates")));
        }
        match outcome.result {
            Some(Ok(r)) => share.results.push((i, r)),
            Some(Err(reason)) if guessed => return Err(ParallelError::Fallback(format!("transaction {i} is invalid here: {reason}"))),
            Some(Err(reason)) => {
                // The block is invalid: no diff is needed.
                share.invalid = Some((i, reason));
                return Ok(share);
            }
            None => return Err(fatal(EngineError::Internal(format!("transaction {i} produced no result")))),
        }
        let reader = vm.reader_mut();
        for (loc, value) in outcome.writes {
            match (loc, value) {
                (Loc::Basic(a), WriteValue::BalanceDelta(fee)) if a == block.beneficiary => {
                    share.fees = share.fees.saturating_add(fee);
                }
                (loc, value) => {
                    if let Some(f) = &mut reader.footprint {
                        f.write(loc, &value);
                    }
                    reader.inner.overlay.apply(reads_from, loc, value).map_err(|e| fatal(e.into()))?
                }
            }
        }
    }
    share.footprint = vm.reader_mut().footprint.take();
    let overlay = std::mem::take(&mut vm.reader_mut().inner.overlay);
    (share.open, share.diff) = sorted_diff(base, overlay, is_open).map_err(fatal)?;
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_sharing_keys_directly_or_through_others_group_together() {
        let a = |b: u8| Address::repeat_byte(b);
        let keys = [vec![a(1), a(2)], vec![a(3), a(3)], vec![a(2), a(4)], vec![a(5)], vec![a(4), a(3)]];
        assert_eq!(union_groups(&keys), vec![vec![0, 1, 2, 4], vec![3]]);
    }

    #[test]
    fn heaviest_groups_spread_over_workers_in_block_order() {
        let shares = assign(vec![vec![0, 3], vec![1], vec![2, 4, 5], vec![6]], 2);
        assert_eq!(shares, vec![vec![2, 4, 5, 6], vec![0, 1, 3]]);
    }
}
