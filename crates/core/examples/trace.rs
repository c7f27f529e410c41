//! Times tracing on fixture folders or generated blocks: untraced (sequential and parallel), traced
//! sequentially (one thread), traced in parallel, and a node's in-order tracing (`trace_block_in_order`: traces
//! only), per tracer, medians (and bests) of alternating runs, with the process CPU time each
//! took (on a shared machine wall time mostly measures the others' load), one JSON line per
//! block and tracer; then traced runs back to back (`--streak` of each mode in a row, as a
//! traced range replay runs them): `trace [--threads N] [--runs N] [--streak N] [--tracer NAME]
//! <fixture dir>... | --generated NAME`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{
    execute_block,
    trace::{execute_block_traced, trace_block_in_order, TraceConfig},
    BlockInput, ChainSpec, ExecuteOptions, InMemoryStorage, ModeRequest,
};
use parallel_evm_testkit::{fixture::Fixture, generate};
use std::time::Instant;

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// CPU time of the whole process so far (all threads), in ms: on a machine shared with other
/// work, what a run costs in CPU says more than its wall time.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(u.ru_utime) + ms(u.ru_stime)
}

fn best(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::MAX, f64::min)
}

/// mimalloc 2's `purge_delay` option (see the binding's `init`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> Result<(), String> {
    // Freed pages kept for 30 s, as the Node addon keeps them (its `init`): with mimalloc's
    // 10 ms default, each round gave back the previous round's pages and faulted them in again,
    // which the addon never does (`MIMALLOC_PURGE_DELAY` in the environment still wins).
    // SAFETY: sets an option's default before any of this program's work.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 30_000) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = flag(&args, "--threads").map_or(Ok(2), |v| v.parse()).map_err(|_| "--threads: not a number")?;
    let runs: usize = flag(&args, "--runs").map_or(Ok(9), |v| v.parse()).map_err(|_| "--runs: not a number")?;
    let streak: usize = flag(&args, "--streak").map_or(Ok(8), |v| v.parse()).map_err(|_| "--streak: not a number")?;
    let tracers: Vec<&str> = match flag(&args, "--tracer") {
        Some(t) => vec![t.as_str()],
        None => vec!["callTracer", "prestateTracer", "flatCallTracer", "4byteTracer"],
    };
    let mut blocks: Vec<(String, BlockInput, InMemoryStorage, ChainSpec)> = Vec::new();
    if let Some(name) = flag(&args, "--generated") {
        let g = generate::standard_workloads(1).into_iter().find(|g| g.name.contains(name.as_str())).ok_or("no such workload")?;
        blocks.push((g.name, g.block, g.state, g.chain));
    }
    let mut skip = false;
    for a in &args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a.starts_with("--") {
            skip = true;
            continue;
        }
        let fx = Fixture::load(std::path::Path::new(a), None).map_err(|e| e.to_string())?;
        blocks.push((a.clone(), fx.block, fx.state, fx.chain));
    }
    for (name, block, state, chain) in &blocks {
        let opts = |mode, threads| ExecuteOptions { chain: chain.clone(), mode, threads, ..Default::default() };
        for tracer in &tracers {
            let config = TraceConfig::from_json(format!(r#"{{"tracer":"{tracer}"}}"#).as_bytes()).map_err(|e| e.to_string())?;
            // For profilers: `TRACE_ONLY=seq|par|inorder` runs only that, `--runs` times.
            if let Ok(only) = std::env::var("TRACE_ONLY") {
                for _ in 0..runs {
                    match only.as_str() {
                        "seq" => drop(
                            execute_block_traced(block, state, &opts(ModeRequest::Sequential, 1), &config).map_err(|e| e.to_string())?,
                        ),
                        "par" => drop(
                            execute_block_traced(block, state, &opts(ModeRequest::Parallel, threads), &config)
                                .map_err(|e| e.to_string())?,
                        ),
                        _ => drop(trace_block_in_order(block, state, chain, &config).map_err(|e| e.to_string())?),
                    }
                }
                continue;
            }
            let mut times: [Vec<f64>; 5] = Default::default();
            let mut cpu: [Vec<f64>; 5] = Default::default();
            let mut engine = None;
            for round in 0..=runs {
                let (t, c) = (Instant::now(), cpu_ms());
                execute_block(block, state, &opts(ModeRequest::Sequential, 1)).map_err(|e| e.to_string())?;
                let (untraced, untraced_cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
                let (t, c) = (Instant::now(), cpu_ms());
                execute_block(block, state, &opts(ModeRequest::Parallel, threads)).map_err(|e| e.to_string())?;
                let (untraced_par, untraced_par_cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
                let (t, c) = (Instant::now(), cpu_ms());
                execute_block_traced(block, state, &opts(ModeRequest::Sequential, 1), &config).map_err(|e| e.to_string())?;
                let (seq, seq_cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
                let (t, c) = (Instant::now(), cpu_ms());
                let (result, _) =
                    execute_block_traced(block, state, &opts(ModeRequest::Parallel, threads), &config).map_err(|e| e.to_string())?;
                let (par, par_cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
                engine = Some(result.stats.engine);

                let (t, c) = (Instant::now(), cpu_ms());
                trace_block_in_order(block, state, chain, &config).map_err(|e| e.to_string())?;
                let (node, node_cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
                if round > 0 {
                    for (v, x) in cpu.iter_mut().zip([untraced_cpu, seq_cpu, par_cpu, node_cpu, untraced_par_cpu]) {
                        v.push(x);
                    }
                    for (v, x) in times.iter_mut().zip([untraced, seq, par, node, untraced_par]) {
                        v.push(x);
                    }
                }
            }
            // Back to back, as a traced range replay runs its blocks (one engine call after
            // another): `--streak` traced runs of each mode in a row, their mean per block,
            // alternating the modes every streak.
            let (mut streak_seq, mut streak_par, mut streak_seq_cpu, mut streak_par_cpu) = (vec![], vec![], vec![], vec![]);
            for _ in 0..runs {
                for (mode, threads, times, cpus) in [
                    (ModeRequest::Sequential, 1, &mut streak_seq, &mut streak_seq_cpu),
                    (ModeRequest::Parallel, threads, &mut streak_par, &mut streak_par_cpu),
                ] {
                    let (t, c) = (Instant::now(), cpu_ms());
                    for _ in 0..streak {
                        execute_block_traced(block, state, &opts(mode, threads), &config).map_err(|e| e.to_string())?;
                    }
                    times.push(t.elapsed().as_secs_f64() * 1e3 / streak as f64);
                    cpus.push((cpu_ms() - c) / streak as f64);
                }
            }
            let (b2b_seq, b2b_par) = (median(streak_seq), median(streak_par));
            let [bu, bs, bp, bn] = [best(&times[0]), best(&times[1]), best(&times[2]), best(&times[3])];
            let bup = best(&times[4]);
            let [untraced, seq, par, node, untraced_par] = times.map(median);
            let [untraced_cpu, seq_cpu, par_cpu, node_cpu, untraced_par_cpu] = cpu.map(median);
            println!(
                "{}",
                serde_json::json!({ "block": name, "txs": block.txs.len(), "tracer": tracer, "engine": format!("{engine:?}"), "untracedMs": untraced, "untracedParMs": untraced_par, "tracedSeqMs": seq, "tracedParMs": par, "threads": threads, "inOrderMs": node, "speedup": seq / par, "speedupOverInOrder": node / par, "tracedOverUntraced": seq / untraced, "cpu": { "untracedMs": untraced_cpu, "untracedParMs": untraced_par_cpu, "tracedSeqMs": seq_cpu, "tracedParMs": par_cpu, "inOrderMs": node_cpu, "parOverSeq": par_cpu / seq_cpu }, "backToBack": { "streak": streak, "tracedSeqMs": b2b_seq, "tracedParMs": b2b_par, "speedup": b2b_seq / b2b_par, "cpu": { "tracedSeqMs": median(streak_seq_cpu), "tracedParMs": median(streak_par_cpu) } }, "best": { "untracedMs": bu, "untracedParMs": bup, "tracedSeqMs": bs, "tracedParMs": bp, "inOrderMs": bn, "speedup": bs / bp, "speedupOverInOrder": bn / bp } })
            );
        }
    }
    Ok(())
}
