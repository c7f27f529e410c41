//! Replays fixture folders and prints one JSON line per block:
//! `cargo run --release -p parallel-evm-core --example replay -- [--threads N] [--mode auto|sequential|parallel] [--rounds N] [--min-ms MS] [--block-hashes FILE] DIR...`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{
    engine::{execute_block, ExecuteOptions},
    result::BlockResult,
    state::Storage,
    threads::available_threads,
    verify::verify_header,
    verify::witness_root::post_state_root,
    EngineError, ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;
use std::{path::PathBuf, process::ExitCode, time::Instant};

struct Args {
    threads: usize,
    mode: ModeRequest,
    rounds: usize,
    min_ms: f64,
    block_hashes: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { threads: available_threads(), mode: ModeRequest::Auto, rounds: 3, min_ms: 25.0, block_hashes: None, dirs: vec![] };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => {
                let v = it.next().ok_or("--threads needs a value")?;
                args.threads = v.parse().map_err(|_| format!("--threads: '{v}' is not a number"))?;
            }
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a value")?;
                args.rounds = v.parse().ok().filter(|&n| n > 0).ok_or(format!("--rounds: '{v}' is not a positive number"))?;
            }
            "--min-ms" => {
                let v = it.next().ok_or("--min-ms needs a value")?;
                args.min_ms =
                    v.parse().ok().filter(|ms: &f64| *ms >= 0.0).ok_or(format!("--min-ms: '{v}' is not a number of milliseconds"))?;
            }
            "--mode" => args.mode = it.next().ok_or("--mode needs a value")?.parse()?,
            "--block-hashes" => args.block_hashes = Some(it.next().ok_or("--block-hashes needs a file")?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: replay [--threads N] [--mode auto|sequential|parallel] [--rounds N] [--min-ms MS] [--block-hashes FILE] DIR..."
                        .into(),
                )
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => args.dirs.push(a.into()),
        }
    }
    if args.dirs.is_empty() {
        return Err("no fixture folder given".into());
    }
    Ok(args)
}

type Run = Result<BlockResult, EngineError>;

/// Times in milliseconds of one side over the rounds, and its last result.
struct Timed {
    ms: Vec<f64>,
    last: BlockResult,
}

impl Timed {
    fn best(&self) -> f64 {
        self.ms.iter().copied().fold(f64::MAX, f64::min)
    }

    fn median(&self) -> f64 {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    }
}

fn timed(run: &impl Fn() -> Run, into: &mut Vec<f64>) -> Run {
    let t = Instant::now();
    let result = run()?;
    into.push(t.elapsed().as_secs_f64() * 1000.0);
    Ok(result)
}

/// Most timed rounds when `min_ms` asks for more than `rounds`.
const MAX_ROUNDS: usize = 100;

/// Times of `seq` and of `par`, and their last results. One untimed run of each comes first (a
/// process's first parallel runs pay for starting pool threads and faulting in fresh memory, up
/// to several times the block's own time on a 2-core VM); the timed runs alternate the two, so
/// that both see the same noisy stretches of a shared machine: at least `rounds` of each, and
/// more (up to `MAX_ROUNDS`) until the sequential ones add up to `min_ms`, so that a 0.3 ms
/// block is timed as steadily as a 5 ms one (as `parallel-evm run --min-time` does).
fn time_rounds(rounds: usize, min_ms: f64, seq: impl Fn() -> Run, par: impl Fn() -> Run) -> Result<(Timed, Timed), EngineError> {
    let (mut seq_ms, mut par_ms) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let (mut last_seq, mut last_par) = (seq()?, par()?);
    while seq_ms.len() < rounds || (seq_ms.iter().sum::<f64>() < min_ms && seq_ms.len() < MAX_ROUNDS) {
        last_seq = timed(&seq, &mut seq_ms)?;
        last_par = timed(&par, &mut par_ms)?;
    }
    Ok((Timed { ms: seq_ms, last: last_seq }, Timed { ms: par_ms, last: last_par }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for dir in &args.dirs {
        let fx = match Fixture::load(dir, args.block_hashes.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                failed = true;
                continue;
            }
        };
        let seq_opts = ExecuteOptions { chain: fx.chain.clone(), mode: ModeRequest::Sequential, threads: 1, ..Default::default() };
        let opts = ExecuteOptions { chain: fx.chain.clone(), mode: args.mode, threads: args.threads, ..Default::default() };
        // A folder with a witness.json runs on its witness: the pre-state proven against the
        // parent header, and the post-state root checked.
        let state: &dyn Storage = match &fx.witness {
            Some(w) => w,
            None => &fx.state,
        };
        let run =
            time_rounds(args.rounds, args.min_ms, || execute_block(&fx.block, state, &seq_opts), || execute_block(&fx.block, state, &opts));
        match run {
            Ok((seq, par)) => {
                let (seq_ms, par_ms) = (seq.best(), par.best());
                let (seq_median, par_median) = (seq.median(), par.median());
                let rounds = seq.ms.len();
                let (seq, par) = (seq.last, par.last);
                let mut v = verify_header(&fx.block, &fx.chain, &par);
                let mut root_ms = None;
                if let Some(w) = &fx.witness {
                    // The root timed as often as the executions, its median reported: one cold
                    // run says more about the cache than about the root.
                    let mut ms = Vec::with_capacity(rounds);
                    for _ in 0..rounds {
                        let t = Instant::now();
                        v.state_root = Some(post_state_root(w, &par.state_diff).map(|root| root == fx.block.state_root).unwrap_or(false));
                        ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    ms.sort_by(f64::total_cmp);
                    root_ms = Some(ms[ms.len() / 2]);
                }
                let same = seq.same_outcome(&par);
                if !v.passed() || !same {
                    failed = true;
                }
                let line = serde_json::json!({
                    "number": fx.block.number,
                    "txs": fx.block.txs.len(),
                    "gasUsed": par.gas_used,
                    "mode": par.stats.mode,
                    "engine": par.stats.engine,
                    "threads": par.stats.threads,
                    "verified": { "gasUsed": v.gas_used, "receiptsRoot": v.receipts_root, "logsBloom": v.logs_bloom, "stateRoot": v.state_root, "matchesSequential": same },
                    "state": if fx.witness.is_some() { "witness" } else { "prestate" },
                    "stateRootMs": root_ms.map(|ms| (ms * 1000.0).round() / 1000.0),
                    "stateRootPercentOfPar": root_ms.map(|ms| (ms / par_median * 1000.0).round() / 10.0),
                    "seqMs": (seq_ms * 1000.0).round() / 1000.0,
                    "parMs": (par_ms * 1000.0).round() / 1000.0,
                    "speedup": ((seq_ms / par_ms) * 1000.0).round() / 1000.0,
                    "rounds": rounds,
                    "seqMedianMs": (seq_median * 1000.0).round() / 1000.0,
                    "parMedianMs": (par_median * 1000.0).round() / 1000.0,
                    "reexecutions": par.stats.reexecutions,
                    "validationAborts": par.stats.validation_aborts,
                    "dependencyWaits": par.stats.dependency_waits,
                    "reason": par.stats.reason,
                });
                println!("{line}");
            }
            Err(e) => {
                failed = true;
                println!("{}", serde_json::json!({ "number": fx.block.number, "error": e.to_string(), "code": e.code() }));
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
