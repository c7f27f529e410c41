//! Times the post-state root from a witness against the block's execution:
//! `cargo run --release -p parallel-evm-core --example witness_root -- [--threads N] [--rounds N] DIR...`
//! (fixture folders holding a `witness.json`). One JSON line per block: medians in ms. With
//! `CPU_TIME=1`: CPU time (all threads) of the root on one thread and of sequential and parallel
//! execution instead. With `ROOT_ONLY=1`: the root alone (for a profiler, or to compare
//! builds), on one thread (wall and CPU time) and on the engine's pool, medians and bests, and
//! the time of one keccak-f permutation (the root's floor is its count of them times that).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::{engine::execute_block, verify::witness_root::post_state_root, ExecuteOptions, ModeRequest};
use parallel_evm_testkit::fixture::Fixture;
use std::{path::PathBuf, process::ExitCode, time::Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2] * 1000.0).round() / 1000.0
}

/// CPU time of the process (all threads): what work costs, which a loaded machine inflates less
/// than wall time.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn main() -> ExitCode {
    let (mut threads, mut rounds, mut dirs) = (2usize, 15usize, Vec::<PathBuf>::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(threads),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(rounds),
            _ => dirs.push(a.into()),
        }
    }
    let mut failed = false;
    for dir in dirs {
        let fx = match Fixture::load(&dir, None) {
            Ok(fx) => fx,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                failed = true;
                continue;
            }
        };
        let Some(witness) = &fx.witness else {
            eprintln!("{}: no witness.json", dir.display());
            failed = true;
            continue;
        };
        let opts = ExecuteOptions { chain: fx.chain.clone(), mode: ModeRequest::Parallel, threads, ..Default::default() };
        let seq_opts = ExecuteOptions { chain: fx.chain.clone(), mode: ModeRequest::Sequential, threads: 1, ..Default::default() };
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
        if std::env::var_os("ROOT_ONLY").is_some() {
            // For a profiler, or to compare builds: the root alone, on one thread, then on all.
            let r = execute_block(&fx.block, witness, &seq_opts).expect("execution");
            let (mut one_ms, mut one_cpu, mut all_ms, mut permutation_ns) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // What one keccak-f permutation costs here, the unit of the root's floor: 543 bytes
            // and their padding fill four 136-byte blocks.
            let mut message = [0x5au8; 4 * 136 - 1];
            for _ in 0..rounds {
                let t = Instant::now();
                for i in 0..2500u32 {
                    message[..4].copy_from_slice(&i.to_le_bytes());
                    std::hint::black_box(alloy_primitives::keccak256(std::hint::black_box(&message[..])));
                }
                permutation_ns.push(t.elapsed().as_secs_f64() * 1e9 / 10_000.0);
                let (t, c) = (Instant::now(), cpu_ms());
                one.install(|| post_state_root(witness, &r.state_diff)).expect("root");
                one_ms.push(t.elapsed().as_secs_f64() * 1e3);
                one_cpu.push(cpu_ms() - c);
                let t = Instant::now();
                post_state_root(witness, &r.state_diff).expect("root");
                all_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let best = |v: &[f64]| (v.iter().copied().fold(f64::MAX, f64::min) * 1000.0).round() / 1000.0;
            println!(
                "{}",
                serde_json::json!({ "number": fx.block.number, "rootOneThreadBestMs": best(&one_ms), "rootOneThreadMs": median(one_ms),
                    "rootOneThreadCpuBestMs": best(&one_cpu), "rootOneThreadCpuMs": median(one_cpu),
                    "rootBestMs": best(&all_ms), "rootMs": median(all_ms),
                    "keccakPermutationBestNs": best(&permutation_ns), "keccakPermutationNs": median(permutation_ns) })
            );
            continue;
        }
        if std::env::var_os("CPU_TIME").is_some() {
            let r = execute_block(&fx.block, witness, &seq_opts).expect("execution");
            let (mut root_cpu, mut seq_cpu, mut par_cpu) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let c = cpu_ms();
                execute_block(&fx.block, witness, &seq_opts).expect("execution");
                seq_cpu.push(cpu_ms() - c);
                let c = cpu_ms();
                execute_block(&fx.block, witness, &opts).expect("execution");
                par_cpu.push(cpu_ms() - c);
                let c = cpu_ms();
                one.install(|| post_state_root(witness, &r.state_diff)).expect("root");
                root_cpu.push(cpu_ms() - c);
            }
            let (root, seq, par) = (median(root_cpu), median(seq_cpu), median(par_cpu));
            println!(
                "{}",
                serde_json::json!({ "number": fx.block.number, "cpuMs": { "root": root, "sequentialExec": seq, "parallelExec": par },
                    "rootPercentOfSequentialCpu": (root / seq * 1000.0).round() / 10.0 })
            );
            continue;
        }
        let (mut exec, mut root, mut prestate, mut seq, mut root_one) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut ok = true;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = execute_block(&fx.block, witness, &opts).expect("execution on the witness");
            exec.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            ok &= post_state_root(witness, &r.state_diff).map(|root| root == fx.block.state_root).unwrap_or(false);
            root.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            execute_block(&fx.block, &fx.state, &opts).expect("execution on the prestate");
            prestate.push(t.elapsed().as_secs_f64() * 1e3);
            // Both on one core: the work each takes, whatever the machine's load.
            let t = Instant::now();
            let r = execute_block(&fx.block, witness, &seq_opts).expect("sequential execution on the witness");
            seq.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            ok &= one.install(|| post_state_root(witness, &r.state_diff)).map(|root| root == fx.block.state_root).unwrap_or(false);
            root_one.push(t.elapsed().as_secs_f64() * 1e3);
        }
        failed |= !ok;
        let (e, r, p, s1, r1) = (median(exec), median(root), median(prestate), median(seq), median(root_one));
        println!(
            "{}",
            serde_json::json!({ "number": fx.block.number, "txs": fx.block.txs.len(), "threads": threads, "rounds": rounds, "stateRoot": ok,
                "execMs": e, "execOnPrestateMs": p, "rootMs": r, "rootPercentOfExec": (r / e * 1000.0).round() / 10.0,
                "sequentialExecMs": s1, "rootOneThreadMs": r1, "oneThreadRootPercent": (r1 / s1 * 1000.0).round() / 10.0 })
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
