//! Times the generated workloads sequentially and in parallel (best of N, same process) and
//! prints one JSON line per workload: `generated [--threads N] [--runs N] [--seed N] [--only NAME]`.
//! With `--mode M` it only runs that mode `--runs` times (for profilers).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{
    engine::{execute_block, ExecuteOptions},
    threads::available_threads,
    ModeRequest,
};
use parallel_evm_testkit::generate;
use std::time::Instant;

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse().map_err(|_| format!("{name}: not a number")),
        None => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let threads = flag(&args, "--threads", available_threads() as u64)? as usize;
    let runs = flag(&args, "--runs", 5)?.max(1);
    let seed = flag(&args, "--seed", 1)?;
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let modes: Vec<ModeRequest> = match args.iter().position(|a| a == "--mode") {
        Some(i) => vec![args.get(i + 1).ok_or("--mode needs a value")?.parse()?],
        None => vec![ModeRequest::Sequential, ModeRequest::Parallel],
    };
    for g in generate::standard_workloads(seed) {
        if only.as_ref().is_some_and(|o| !g.name.contains(o.as_str())) {
            continue;
        }
        if modes.len() == 1 {
            // Profiling: run the one mode only.
            for _ in 0..runs {
                let opts = ExecuteOptions { chain: g.chain.clone(), mode: modes[0], threads, ..Default::default() };
                execute_block(&g.block, &g.state, &opts).map_err(|e| format!("{}: {e}", g.name))?;
            }
            continue;
        }
        let time = |mode, threads| -> Result<(f64, parallel_evm_core::result::BlockResult), String> {
            let opts = ExecuteOptions { chain: g.chain.clone(), mode, threads, ..Default::default() };
            let mut best = f64::MAX;
            let mut last = None;
            for _ in 0..runs {
                let t = Instant::now();
                let r = execute_block(&g.block, &g.state, &opts).map_err(|e| format!("{}: {e}", g.name))?;
                best = best.min(t.elapsed().as_secs_f64() * 1000.0);
                last = Some(r);
            }
            Ok((best, last.expect("at least one run")))
        };
        let (seq_ms, seq) = time(ModeRequest::Sequential, 1)?;
        let (par_ms, par) = time(ModeRequest::Parallel, threads)?;
        let line = serde_json::json!({
            "workload": g.name,
            "txs": g.block.txs.len(),
            "gasUsed": seq.gas_used,
            "threads": threads,
            "seqMs": (seq_ms * 1000.0).round() / 1000.0,
            "parMs": (par_ms * 1000.0).round() / 1000.0,
            "speedup": ((seq_ms / par_ms) * 1000.0).round() / 1000.0,
            "reexecutions": par.stats.reexecutions,
            "reason": par.stats.reason,
            "matchesSequential": seq.same_outcome(&par),
        });
        println!("{line}");
    }
    Ok(())
}
