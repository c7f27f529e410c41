//! Long differential fuzzing campaigns without a nightly toolchain: generates blocks from
//! consecutive seeds and checks each sequentially vs in parallel (1, 2, 16 and one more thread
//! count, then auto mode) until the time is up.
//! `fuzz [--seconds N] [--start SEED] [--count N] [--chaos PER_1024]`; prints progress every 10 s, failing seeds as
//! they come, and a JSON summary at the end; exits 1 if any seed diverged.

use parallel_evm_testkit::fuzz;
use std::time::{Duration, Instant};

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse().map_err(|_| format!("{name}: not a number")),
        None => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let seconds = flag(&args, "--seconds", 60)?;
    let start = flag(&args, "--start", 1_000_000)?;
    let count = flag(&args, "--count", u64::MAX)?;
    // Prints why each invalid block failed (to tune the generator).
    let verbose = args.iter().any(|a| a == "--verbose");
    // Adversarial scheduling needs the `chaos` feature (`--features chaos`).
    let chaos = flag(&args, "--chaos", 0)?;
    #[cfg(feature = "chaos")]
    parallel_evm_core::engine::chaos::enable(chaos as u32, start);
    #[cfg(not(feature = "chaos"))]
    if chaos > 0 {
        return Err("--chaos needs the example built with --features chaos".into());
    }
    let began = Instant::now();
    let deadline = began + Duration::from_secs(seconds);
    let mut last_report = began;
    let (mut blocks, mut txs, mut invalid, mut reexecutions, mut fallbacks) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut guesses_kept, mut guesses_rejected) = (0u64, 0u64);
    let mut failures = Vec::new();
    let mut seed = start;
    while Instant::now() < deadline && seed - start < count {
        let g = fuzz::block_from_seed(seed);
        match fuzz::check(&g, &fuzz::thread_counts(seed)) {
            Ok(c) => {
                if verbose && c.error.is_some() {
                    let opts = parallel_evm_core::ExecuteOptions {
                        chain: g.chain.clone(),
                        mode: parallel_evm_core::ModeRequest::Sequential,
                        threads: 1,
                        receipts_root: false,
                    };
                    eprintln!("seed {seed}: {}", parallel_evm_core::execute_block(&g.block, &g.state, &opts).unwrap_err());
                }
                txs += c.txs as u64;
                invalid += c.error.is_some() as u64;
                reexecutions += c.reexecutions;
                fallbacks += c.fallbacks as u64;
                guesses_kept += c.guesses_kept as u64;
                guesses_rejected += c.guesses_rejected as u64;
            }
            Err(e) => {
                eprintln!("MISMATCH seed {seed}: {e}");
                failures.push(seed);
            }
        }
        blocks += 1;
        seed += 1;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!("{:>6.0} s: {blocks} blocks, {txs} txs, {} mismatches", began.elapsed().as_secs_f64(), failures.len());
        }
    }
    println!(
        "{{\"seeds\":\"{start}..{seed}\",\"blocks\":{blocks},\"txs\":{txs},\"invalidBlocks\":{invalid},\"reexecutions\":{reexecutions},\"fallbacks\":{fallbacks},\"guessesKept\":{guesses_kept},\"guessesRejected\":{guesses_rejected},\"seconds\":{:.1},\"mismatches\":{:?}}}",
        began.elapsed().as_secs_f64(),
        failures
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} seeds diverged", failures.len()))
    }
}
