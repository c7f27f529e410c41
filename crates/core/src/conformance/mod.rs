//! Conformance with the Ethereum consensus test vectors (ethereum/tests, Cancun): every
//! GeneralStateTests case and every BlockchainTests block through the engine's own entry points
//! (`execute_block`, `execute_guessed_groups`) in each engine mode, checked against the vectors'
//! post-state roots, logs hashes, headers and final states.
//!
//! ```no_run
//! use parallel_evm_core::conformance::{run, Options};
//! let report = run(&["../shared/fixtures/ethereum-tests".into()], &Options::default(), |_, _, _| {}).unwrap();
//! for s in &report.summaries {
//!     println!("{}", serde_json::to_string(s).unwrap());
//! }
//! assert!(report.passed());
//! ```

pub mod blockchain_test;
pub mod engines;
pub mod header;
pub mod report;
pub mod state_test;
pub mod vectors;

pub use report::{CaseId, Failure, Report, SkipList, Skipped, Summary};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a case's block is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `execute_block` in sequential mode: revm one transaction after the other.
    Sequential,
    /// `execute_block` in forced parallel mode: Block-STM (with its fast paths: direct
    /// transfers, sender deltas, lazy balances and storage) even for one transaction, or the
    /// transfer-group and guessed-group engines where the block qualifies for them.
    Parallel,
    /// `execute_block` in auto mode: the engine's own choice.
    Auto,
    /// The group engine (`execute_guessed_groups`) on every block, with transactions that share
    /// a sender or receiver grouped: its workers' direct transfers and lazy fees, and the check
    /// of its guess, on blocks it would not be chosen for. Blocks it declines are counted as
    /// `fellBack`.
    Groups,
    /// State tests only: each case's transaction twice in one block, first sent by a copy of its
    /// sender, so that the second conflicts with the first (same contract, same slots), with the
    /// target contract made rich enough for lazy balances. Forced parallel execution of that
    /// block must equal sequential execution of it (the vectors have no answer for it): Block-STM's
    /// validation, re-execution, lazy balances and lazy storage slots over every behaviour the
    /// vectors cover.
    Contended,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Sequential => "sequential",
            Mode::Parallel => "parallel",
            Mode::Auto => "auto",
            Mode::Groups => "groups",
            Mode::Contended => "contended",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(Mode::Sequential),
            "parallel" => Ok(Mode::Parallel),
            "auto" => Ok(Mode::Auto),
            "groups" => Ok(Mode::Groups),
            "contended" => Ok(Mode::Contended),
            other => Err(format!("unknown mode '{other}' (expected sequential, parallel, auto, groups or contended)")),
        }
    }
}

/// One engine mode at one thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeSpec {
    pub mode: Mode,
    pub threads: usize,
}

/// The thread counts every case runs at in forced parallel mode when none is given.
pub const PARALLEL_THREADS: [usize; 4] = [1, 2, 4, 8];

/// The modes of a run: `modes` at each of `threads` (sequential once, at one thread). With no
/// mode, every one: sequential, forced parallel, auto, the group engine and contended; with no
/// thread count, `PARALLEL_THREADS` (auto, the group engine and contended at 2 and more).
pub fn mode_matrix(modes: &[Mode], threads: &[usize]) -> Vec<ModeSpec> {
    let modes: Vec<Mode> =
        if modes.is_empty() { vec![Mode::Sequential, Mode::Parallel, Mode::Auto, Mode::Groups, Mode::Contended] } else { modes.to_vec() };
    let given = !threads.is_empty();
    let threads: Vec<usize> = if given { threads.to_vec() } else { PARALLEL_THREADS.to_vec() };
    let mut out = Vec::new();
    for mode in modes {
        match mode {
            Mode::Sequential => out.push(ModeSpec { mode, threads: 1 }),
            Mode::Parallel => out.extend(threads.iter().map(|&t| ModeSpec { mode, threads: t })),
            // One worker has nothing to choose or split: only the counts given, else 2 and up.
            Mode::Auto | Mode::Groups | Mode::Contended => {
                out.extend(threads.iter().filter(|&&t| given || t >= 2).map(|&t| ModeSpec { mode, threads: t }))
            }
        }
    }
    out
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub modes: Vec<ModeSpec>,
    pub skip: SkipList,
}

impl Default for Options {
    fn default() -> Self {
        Self { modes: mode_matrix(&[], &[]), skip: SkipList::default() }
    }
}

/// A run that could not start: a path that cannot be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ConformanceError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// The `.json` files of `paths` (files as given, folders walked recursively), sorted within
/// each folder.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConformanceError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ConformanceError> {
        let io = |e: std::io::Error| ConformanceError::Io { path: dir.display().to_string(), message: e.to_string() };
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir).map_err(io)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io)?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| ConformanceError::Io { path: p.display().to_string(), message: e.to_string() })?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Which suite a test belongs to, from its shape.
fn suite_of(test: &serde_json::Value) -> Option<&'static str> {
    if test.get("blocks").is_some() {
        Some(blockchain_test::SUITE)
    } else if test.get("transaction").is_some() && test.get("post").is_some() {
        Some(state_test::SUITE)
    } else {
        None
    }
}

/// Runs every test of one file in every mode of `options`. Never fails: a file or test that
/// cannot be read is a failure in the report.
pub fn run_file(path: &Path, options: &Options) -> Report {
    let mut report = Report::default();
    let file = path.display().to_string();
    let unreadable = |report: &mut Report, suite: &str, test: &str, message: String| {
        for m in &options.modes {
            report.summary(suite, m.mode, m.threads).failed += 1;
            report.failures.push(Failure {
                suite: suite.into(),
                mode: m.mode,
                threads: m.threads,
                file: file.clone(),
                test: test.into(),
                case: CaseId::default(),
                field: "file".into(),
                expected: "a test vector".into(),
                actual: message.clone(),
            });
        }
    };
    let tests: serde_json::Map<String, serde_json::Value> =
        match std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
            Ok(t) => t,
            Err(e) => {
                unreadable(&mut report, "unknown", "", e);
                return report;
            }
        };
    for (name, value) in tests {
        let Some(suite) = suite_of(&value) else {
            unreadable(&mut report, "unknown", &name, "neither a state test nor a blockchain test".into());
            continue;
        };
        let skip = options.skip.reason(&file, &name).map(str::to_string);
        if let Some(reason) = &skip {
            report.skipped.push(Skipped { file: file.clone(), test: name.clone(), reason: reason.clone() });
        }
        if suite == state_test::SUITE {
            match serde_json::from_value::<vectors::StateTest>(value) {
                Ok(test) => state_test::run_test(&file, &name, &test, &options.modes, skip.as_deref(), &mut report),
                Err(e) => unreadable(&mut report, suite, &name, e.to_string()),
            }
        } else {
            match serde_json::from_value::<vectors::BlockchainTest>(value) {
                Ok(test) => blockchain_test::run_test(&file, &name, &test, &options.modes, skip.as_deref(), &mut report),
                Err(e) => unreadable(&mut report, suite, &name, e.to_string()),
            }
        }
    }
    report
}

/// Runs every file of `paths`; `progress(done, total, file)` after each.
pub fn run(paths: &[PathBuf], options: &Options, mut progress: impl FnMut(usize, usize, &Path)) -> Result<Report, ConformanceError> {
    let files = collect_files(paths)?;
    let mut report = Report::default();
    for (i, file) in files.iter().enumerate() {
        report.merge(run_file(file, options));
        progress(i + 1, files.len(), file);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_by_default_sequential_once() {
        let all = mode_matrix(&[], &[]);
        let count = |m: Mode| all.iter().filter(|s| s.mode == m).count();
        assert_eq!(
            (count(Mode::Sequential), count(Mode::Parallel), count(Mode::Auto), count(Mode::Groups), count(Mode::Contended)),
            (1, 4, 3, 3, 3)
        );
        assert!(all.iter().any(|s| s.mode == Mode::Parallel && s.threads == 1), "Block-STM on one worker too");
        let given = mode_matrix(&[Mode::Sequential, Mode::Groups], &[1]);
        assert_eq!(given, vec![ModeSpec { mode: Mode::Sequential, threads: 1 }, ModeSpec { mode: Mode::Groups, threads: 1 }]);
        assert_eq!("groups".parse::<Mode>(), Ok(Mode::Groups));
        assert!("fast".parse::<Mode>().is_err());
    }
}
