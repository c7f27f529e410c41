//! What early starts of expensive transactions (`costs`) bring, measured in one process:
//! `learned_costs MODE RUNS DIR...`. Per block, `RUNS` rounds of a sequential run followed by a
//! 2-thread run in `MODE` with learned costs, and of the same with early starts turned off, in
//! alternating order (both follow a sequential run, as `replay` and the CLI measure); prints the
//! best times, the speedups and their geometric means.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{
    engine::costs,
    engine::hybrid::{execute_block, ExecuteOptions},
    ModeRequest,
};
use parallel_evm_testkit::fixture::Fixture;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: learned_costs MODE RUNS DIR...".into());
    }
    let mode: ModeRequest = args[1].parse()?;
    let runs: usize = args[2].parse()?;
    let (mut learned_log, mut off_log, mut blocks) = (0f64, 0f64, 0);
    for dir in &args[3..] {
        let fx = Fixture::load(std::path::Path::new(dir), None)?;
        let seq = ExecuteOptions { chain: fx.chain.clone(), mode: ModeRequest::Sequential, threads: 1, ..Default::default() };
        let par = ExecuteOptions { mode, threads: 2, ..seq.clone() };
        let time = |o: &ExecuteOptions| -> Result<f64, Box<dyn std::error::Error>> {
            let started = Instant::now();
            execute_block(&fx.block, &fx.state, o)?;
            Ok(started.elapsed().as_secs_f64() * 1e3)
        };
        let (mut s, mut on, mut off) = (f64::MAX, f64::MAX, f64::MAX);
        for round in 0..runs {
            for learned in [round % 2 == 0, round % 2 == 1] {
                s = s.min(time(&seq)?);
                costs::set_enabled(learned);
                let t = time(&par)?;
                if learned {
                    on = on.min(t)
                } else {
                    off = off.min(t)
                }
            }
        }
        costs::set_enabled(true);
        println!(
            "{:>9} {:>5} | sequential {s:7.3} ms | learned {on:7.3} ms x{:.2} | off {off:7.3} ms x{:.2}",
            fx.block.number,
            fx.block.txs.len(),
            s / on,
            s / off
        );
        learned_log += (s / on).ln();
        off_log += (s / off).ln();
        blocks += 1;
    }
    println!("geometric mean: learned {:.3}, off {:.3}", (learned_log / blocks as f64).exp(), (off_log / blocks as f64).exp());
    Ok(())
}
