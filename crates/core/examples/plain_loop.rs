//! Our sequential engine against a plain revm loop over the same blocks, in one process:
//! `cargo run --release -p parallel-evm-core --example plain_loop -- [--rounds N] [--min-ms MS] [--mode sequential|auto] [--threads N] DIR...`
//!
//! Each DIR is a fixture block folder, or a folder of them (`../shared/fixtures/mainnet`). Per
//! block, after one untimed run of each, the two sides alternate for at least `--rounds` rounds
//! (more, up to 100, until the plain loop's rounds add up to `--min-ms`); the line printed holds
//! both medians and their ratio (ours / plain: 1.02 means 2% slower than the plain loop). The
//! summary gives the geometric mean of that ratio over the blocks of >= 100 transactions run on
//! a prestate (the docs' 44 largest mainnet blocks), over the blocks run on a witness, and over all.
//!
//! The plain loop is the least a block executor does with revm: one `Context` for the block (its
//! spec, block env and chain id, as ours builds them), a revm `CacheDB` over the same `Storage`
//! (the fixture's pre-state, or its witness), the pre-block system calls, `transact_commit` of
//! each transaction in order, a receipt per transaction (status, cumulative gas, logs, bloom),
//! then block rewards, withdrawals and the request-queue calls. It leaves the post-state in its
//! cache, as revm keeps it; ours also builds the sorted post-state diff against the pre-state, the
//! block's bloom and its statistics. Both sides use the same allocator (mimalloc, as the Node
//! addon), and the plain loop's receipts are checked against ours.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use alloy_primitives::{logs_bloom, Address, Bloom, Log, B256, U256};
use parallel_evm_core::{
    block::chain::ChainSpec,
    block::BlockInput,
    engine::transitions::{BEACON_ROOTS_ADDRESS, HISTORY_STORAGE_ADDRESS, REQUEST_CONTRACTS},
    engine::{execute_block, ExecuteOptions},
    result::BlockResult,
    state::storage::StorageError,
    state::value::{Loc, Value},
    state::Storage,
    ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;
use revm::{
    bytecode::Bytecode,
    database::CacheDB,
    database_interface::{DBErrorMarker, DatabaseRef},
    primitives::hardfork::SpecId,
    state::AccountInfo,
    Context, ExecuteCommitEvm, MainBuilder, MainContext, SystemCallCommitEvm,
};
use std::{path::PathBuf, process::ExitCode, time::Instant};

/// Blocks with at least this many transactions make the headline geometric mean (as in the
/// docs' mainnet summary: 44 blocks of `mainnet/`).
const MIN_TXS: usize = 100;
const MAX_ROUNDS: usize = 100;

#[derive(Debug)]
struct DbError(StorageError);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for DbError {}
impl DBErrorMarker for DbError {}

/// revm's read-only view of a `Storage`: what a plain executor puts under revm's `CacheDB`.
struct StorageRef<'a> {
    storage: &'a dyn Storage,
    parent: (u64, B256),
}

impl DatabaseRef for StorageRef<'_> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let Value::Basic(basic) = self.storage.read(&Loc::Basic(address)).map_err(DbError)? else { unreachable!() };
        let code = match self.storage.read(&Loc::Code(address)) {
            Ok(Value::Code(code)) => code.map(|c| (c.hash, Some(c.code))),
            // A witness holds no code that the block does not run (a withdrawal recipient's):
            // the hash will do until revm asks for the code.
            Err(e) => Some((self.storage.code_hash(address).map_err(DbError)?.ok_or(DbError(e))?, None)),
            Ok(_) => unreachable!(),
        };
        if basic.is_none() && code.is_none() {
            return Ok(None);
        }
        let b = basic.unwrap_or_default();
        Ok(Some(match code {
            Some((hash, Some(code))) => AccountInfo::new(b.balance, b.nonce, hash, code),
            Some((hash, None)) => AccountInfo { balance: b.balance, nonce: b.nonce, code_hash: hash, code: None, ..Default::default() },
            None => AccountInfo::from_balance(b.balance).with_nonce(b.nonce),
        }))
    }

    fn code_by_hash_ref(&self, hash: B256) -> Result<Bytecode, DbError> {
        // `basic_ref` hands revm the code with the account.
        Err(DbError(StorageError::Other(format!("code by hash {hash} requested"))))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, DbError> {
        let Value::Storage(v) = self.storage.read(&Loc::Storage(address, index)).map_err(DbError)? else { unreachable!() };
        Ok(v)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        if number == self.parent.0 {
            return Ok(self.parent.1);
        }
        self.storage.block_hash(number).ok_or_else(|| DbError(StorageError::Other(format!("no hash of block {number}"))))
    }
}

/// A receipt as the plain loop builds it.
struct PlainReceipt {
    success: bool,
    cumulative_gas_used: u64,
    logs: Vec<Log>,
    bloom: Bloom,
}

/// The plain revm loop over one block.
fn plain_loop(block: &BlockInput, chain: &ChainSpec, storage: &dyn Storage) -> Result<Vec<PlainReceipt>, String> {
    let spec = block.spec(chain);
    let parent = (block.number.saturating_sub(1), block.parent_hash);
    let db = CacheDB::new(StorageRef { storage, parent });
    let mut evm = Context::mainnet().with_db(db).with_cfg(block.cfg_env(chain)).with_block(block.block_env(chain)).build_mainnet();
    let deployed = |evm: &mut revm::handler::MainnetEvm<_>, a: Address| -> Result<bool, String> {
        let ctx: &mut revm::handler::MainnetContext<CacheDB<StorageRef>> = &mut evm.ctx;
        Ok(ctx.journaled_state.database.load_account(a).map_err(|e| e.to_string())?.info.code.as_ref().is_some_and(|c| !c.is_empty()))
    };
    if let (true, Some(root)) = (spec.is_enabled_in(SpecId::CANCUN), block.parent_beacon_block_root) {
        if deployed(&mut evm, BEACON_ROOTS_ADDRESS)? {
            evm.system_call_commit(BEACON_ROOTS_ADDRESS, root.0.into()).map_err(|e| e.to_string())?;
        }
    }
    if spec.is_enabled_in(SpecId::PRAGUE) && block.number > 0 && deployed(&mut evm, HISTORY_STORAGE_ADDRESS)? {
        evm.system_call_commit(HISTORY_STORAGE_ADDRESS, block.parent_hash.0.into()).map_err(|e| e.to_string())?;
    }
    let mut receipts = Vec::with_capacity(block.txs.len());
    let mut cumulative = 0u64;
    for (i, tx) in block.txs.iter().enumerate() {
        let result = evm.transact_commit(tx.env.clone()).map_err(|e| format!("transaction {i}: {e}"))?;
        cumulative += result.tx_gas_used();
        let success = result.is_success();
        let logs = result.into_logs();
        receipts.push(PlainReceipt { success, cumulative_gas_used: cumulative, bloom: logs_bloom(&logs), logs });
    }
    // Rewards (before the Merge) and withdrawals, straight into the cache.
    let db = &mut evm.ctx.journaled_state.database;
    let mut credit = |a: Address, amount: U256| -> Result<(), String> {
        let acc = db.load_account(a).map_err(|e| e.to_string())?;
        acc.info.balance += amount;
        if acc.account_state == revm::database::AccountState::NotExisting {
            acc.account_state = revm::database::AccountState::Touched;
        }
        Ok(())
    };
    let reward = ChainSpec::block_reward(spec);
    if !reward.is_zero() {
        credit(block.beneficiary, reward + (reward >> 5) * U256::from(block.uncle_hashes.len()))?;
        for u in block.uncles.iter().flatten() {
            credit(u.miner, (reward * U256::from(8 + u.number).saturating_sub(U256::from(block.number))) >> 3)?;
        }
    }
    for w in block.withdrawals.iter().filter(|w| w.amount_gwei > 0) {
        credit(w.address, U256::from(w.amount_gwei) * U256::from(1_000_000_000u64))?;
    }
    if spec.is_enabled_in(SpecId::PRAGUE) {
        for contract in REQUEST_CONTRACTS {
            if deployed(&mut evm, contract)? {
                evm.system_call_commit(contract, Default::default()).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(receipts)
}

/// Checks the plain loop's receipts against ours.
fn same_receipts(plain: &[PlainReceipt], ours: &BlockResult) -> Result<(), String> {
    if plain.len() != ours.receipts.len() {
        return Err(format!("{} receipts against our {}", plain.len(), ours.receipts.len()));
    }
    for (i, (p, o)) in plain.iter().zip(&ours.receipts).enumerate() {
        if p.success != o.status || p.cumulative_gas_used != o.cumulative_gas_used || p.logs != o.logs || p.bloom != o.logs_bloom {
            return Err(format!("receipt {i} differs"));
        }
    }
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn geomean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// The block folders under `dir` (itself when it holds a block), by number.
fn block_dirs(dir: PathBuf) -> Vec<PathBuf> {
    if dir.join("block.json").exists() {
        return vec![dir];
    }
    let mut dirs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("block.json").exists())
        .map(|p| (p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX), p))
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, p)| p).collect()
}

fn main() -> ExitCode {
    let mut rounds = 9usize;
    let mut min_ms = 50.0f64;
    let mut dirs = Vec::new();
    // `--only plain|ours`: run that side `--rounds` times, untimed (for a profiler).
    let mut only: Option<String> = None;
    // `--mode auto --threads 2`: time our auto mode instead (what a block auto mode runs
    // sequentially pays for the choice).
    let (mut mode, mut threads) = (ModeRequest::Sequential, 1usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0).expect("--rounds N"),
            "--only" => only = it.next(),
            "--mode" => mode = it.next().and_then(|v| v.parse().ok()).expect("--mode auto|sequential|parallel"),
            "--threads" => threads = it.next().and_then(|v| v.parse().ok()).expect("--threads N"),
            "--min-ms" => min_ms = it.next().and_then(|v| v.parse().ok()).expect("--min-ms MS"),
            _ if a.starts_with("--") => {
                eprintln!("usage: plain_loop [--rounds N] [--min-ms MS] [--mode sequential|auto] [--threads N] [--only plain|ours] DIR...");
                return ExitCode::from(2);
            }
            _ => dirs.extend(block_dirs(a.into())),
        }
    }
    let (mut big, mut witness, mut all) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = false;
    for dir in dirs {
        let fx = match Fixture::load(&dir, None) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                failed = true;
                continue;
            }
        };
        let state: &dyn Storage = match &fx.witness {
            Some(w) => w,
            None => &fx.state,
        };
        let opts = ExecuteOptions { chain: fx.chain.clone(), mode, threads, ..Default::default() };
        let ours = || execute_block(&fx.block, state, &opts);
        let plain = || plain_loop(&fx.block, &fx.chain, state);
        let checked = match (ours(), plain()) {
            (Ok(o), Ok(p)) => same_receipts(&p, &o),
            (Err(e), _) => Err(format!("ours: {e}")),
            (_, Err(e)) => Err(format!("plain loop: {e}")),
        };
        if let Err(e) = checked {
            println!("{{\"path\":{:?},\"error\":{:?}}}", dir.display().to_string(), e);
            failed = true;
            continue;
        }
        if let Some(side) = &only {
            let (mut exec_us, mut total_us) = (0, 0);
            let t = Instant::now();
            for _ in 0..rounds {
                if side == "plain" {
                    std::hint::black_box(plain().expect("ran before"));
                } else {
                    let r = ours().expect("ran before");
                    (exec_us, total_us) = (exec_us + r.stats.execution_us, total_us + r.stats.total_us);
                }
            }
            let avg = |us: u64| us as f64 / rounds as f64 / 1000.0;
            let ms = t.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
            eprintln!(
                "{}: {side} {ms:.3} ms a run (ours: {:.3} ms executing, {:.3} ms in execute_block)",
                fx.block.number,
                avg(exec_us),
                avg(total_us)
            );
            continue;
        }
        let (mut plain_ms, mut ours_ms, mut paired) = (Vec::new(), Vec::new(), Vec::new());
        while plain_ms.len() < rounds || (plain_ms.iter().sum::<f64>() < min_ms && plain_ms.len() < MAX_ROUNDS) {
            // Alternate which side goes first, so neither always runs on the other's warm cache.
            let order = plain_ms.len() % 2 == 0;
            for side in [order, !order] {
                let t = Instant::now();
                if side {
                    std::hint::black_box(plain().expect("ran before"));
                    plain_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    std::hint::black_box(ours().expect("ran before"));
                    ours_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            paired.push(ours_ms[ours_ms.len() - 1] / plain_ms[plain_ms.len() - 1]);
        }
        let (p, o) = (median(&plain_ms), median(&ours_ms));
        // The median of each round's ratio (the two sides ran back to back): steadier on a
        // shared machine than the ratio of the two medians, which is printed beside it.
        let ratio = median(&paired);
        println!(
            "{{\"path\":{:?},\"number\":{},\"txs\":{},\"gasUsed\":{},\"witness\":{},\"mode\":\"{}\",\"rounds\":{},\"plainMs\":{:.4},\"sequentialMs\":{:.4},\"ratioOfMedians\":{:.4},\"ratio\":{:.4}}}",
            dir.display().to_string(),
            fx.block.number,
            fx.block.txs.len(),
            fx.block.gas_used,
            fx.witness.is_some(),
            serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            plain_ms.len(),
            p,
            o,
            o / p,
            ratio
        );
        all.push(ratio);
        if fx.witness.is_some() {
            witness.push(ratio);
        } else if fx.block.txs.len() >= MIN_TXS {
            big.push(ratio);
        }
    }
    if !all.is_empty() {
        let gm = |xs: &[f64]| if xs.is_empty() { f64::NAN } else { geomean(xs) };
        eprintln!(
            "sequential engine / plain revm loop, geometric mean of per-block medians: {:.4}x over the {} prestate blocks of >= {MIN_TXS} transactions, {:.4}x over the {} witness blocks, {:.4}x over all {}",
            gm(&big),
            big.len(),
            gm(&witness),
            witness.len(),
            gm(&all),
            all.len()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
