//! Runs one fixture block many times in one mode, for profilers (perf, callgrind):
//! `profile DIR MODE RUNS [THREADS]`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{
    engine::hybrid::{execute_block, ExecuteOptions},
    ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: profile DIR MODE RUNS [THREADS]".into());
    }
    let fx = Fixture::load(std::path::Path::new(&args[1]), None)?;
    let mode: ModeRequest = args[2].parse()?;
    let runs: usize = args[3].parse()?;
    let threads: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let opts = ExecuteOptions { chain: fx.chain.clone(), mode, threads, ..Default::default() };
    let started = std::time::Instant::now();
    let mut exec_us = 0;
    for _ in 0..runs {
        exec_us += execute_block(&fx.block, &fx.state, &opts)?.stats.execution_us;
    }
    println!(
        "avg total {:.3} ms, avg execution {:.3} ms",
        started.elapsed().as_secs_f64() * 1000.0 / runs as f64,
        exec_us as f64 / 1000.0 / runs as f64
    );
    Ok(())
}
