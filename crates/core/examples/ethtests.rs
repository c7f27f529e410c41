//! Runs the Ethereum consensus test vectors (GeneralStateTests, BlockchainTests) through the
//! engine: one JSON summary line per suite and mode, then one line per failure.
//! `cargo run --release -p parallel-evm-core --example ethtests -- [--mode sequential|parallel|auto|groups]... [--threads N]... [--skip FILE] [--json] PATH...`
//! Without --mode, every mode; without --threads, parallel at 1, 2, 4 and 8 threads. The skip
//! list defaults to crates/core/tests/ethtests-skip.txt. Exits 1 when anything failed.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use parallel_evm_core::conformance::{mode_matrix, run, Mode, Options, SkipList};
use std::{io::Write, path::PathBuf, process::ExitCode, time::Instant};

const USAGE: &str = "usage: ethtests [--mode sequential|parallel|auto|groups]... [--threads N]... [--skip FILE] [--json] PATH...";

struct Args {
    modes: Vec<Mode>,
    threads: Vec<usize>,
    skip: Option<PathBuf>,
    json: bool,
    paths: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { modes: vec![], threads: vec![], skip: None, json: false, paths: vec![] };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mode" => args.modes.push(it.next().ok_or("--mode needs a value")?.parse()?),
            "--threads" => {
                let v = it.next().ok_or("--threads needs a value")?;
                args.threads.push(v.parse().ok().filter(|n| *n > 0).ok_or(format!("--threads: '{v}' is not a positive number"))?);
            }
            "--skip" => args.skip = Some(it.next().ok_or("--skip needs a file")?.into()),
            "--json" => args.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}\n{USAGE}")),
            _ => args.paths.push(a.into()),
        }
    }
    if args.paths.is_empty() {
        return Err(format!("no test file or folder given\n{USAGE}"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let skip_path = args.skip.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ethtests-skip.txt"));
    let skip = match std::fs::read_to_string(&skip_path) {
        Ok(text) => SkipList::parse(&text),
        Err(_) if args.skip.is_none() => Ok(SkipList::default()),
        Err(e) => Err(format!("{}: {e}", skip_path.display())),
    };
    let skip = match skip {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = Options { modes: mode_matrix(&args.modes, &args.threads), skip };
    let started = Instant::now();
    let report = run(&args.paths, &options, |done, total, _| {
        if !args.json && (done % 100 == 0 || done == total) {
            eprint!("\r{done}/{total} files");
            let _ = std::io::stderr().flush();
        }
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = serde_json::to_value(&report).expect("a report serializes");
        value["seconds"] = serde_json::json!(seconds);
        println!("{value}");
    } else {
        eprintln!();
        for s in &report.summaries {
            println!("{}", serde_json::to_string(s).expect("a summary serializes"));
        }
        for f in &report.failures {
            println!("{f}");
        }
        for s in &report.skipped {
            println!("SKIP {} :: {} ({})", s.file, s.test, s.reason);
        }
        println!("{} failure(s), {} skipped test(s), {seconds:.1} s", report.failures.len(), report.skipped.len());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
