//! What a conformance run reports: one summary per suite and engine mode, each failure with the
//! first field that differs, and the tests the skip list left out.

use super::Mode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts of one suite run in one mode. A state-test case (one `post.Cancun` entry) or a whole
/// blockchain test (every block and the final state) is one unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub suite: String,
    pub mode: Mode,
    pub threads: usize,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Blocks whose engine declined to run them and handed them on (the group engine when its
    /// groups shared a location, an invalid transaction, a hazard): the parallel modes check
    /// the engine that then takes them. Absent in modes where it cannot happen.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fell_back: u64,
    /// How many blocks each engine ran (`Stats::engine`, or `fallback` when a parallel engine
    /// handed the block to sequential execution): which machinery the mode really exercised.
    #[serde(default)]
    pub engines: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Which case of a test failed: the indexes of a state-test case, or a block of a blockchain
/// test (none for the test's final state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<usize>,
    /// Position of the block in the test's `blocks` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.data, self.gas, self.value, self.block) {
            (Some(d), Some(g), Some(v), _) => write!(f, "d{d} g{g} v{v}"),
            (_, _, _, Some(b)) => write!(f, "block {b}"),
            _ => write!(f, "test"),
        }
    }
}

/// One failed case: where, and the first field that differs with both values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub suite: String,
    pub mode: Mode,
    pub threads: usize,
    pub file: String,
    pub test: String,
    pub case: CaseId,
    pub field: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FAIL {} {}({}) {} :: {} [{}] {}: expected {}, got {}",
            self.suite, self.mode, self.threads, self.file, self.test, self.case, self.field, self.expected, self.actual
        )
    }
}

/// A test the skip list left out, with the reason given there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub file: String,
    pub test: String,
    pub reason: String,
}

/// A whole run, or one file's part of it (`Report::merge` joins them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub summaries: Vec<Summary>,
    pub failures: Vec<Failure>,
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// The summary of `suite` in `mode`, created (in order of first use) when absent.
    pub fn summary(&mut self, suite: &str, mode: Mode, threads: usize) -> &mut Summary {
        let at = match self.summaries.iter().position(|s| s.suite == suite && s.mode == mode && s.threads == threads) {
            Some(i) => i,
            None => {
                self.summaries.push(Summary {
                    suite: suite.into(),
                    mode,
                    threads,
                    passed: 0,
                    failed: 0,
                    skipped: 0,
                    fell_back: 0,
                    engines: BTreeMap::new(),
                });
                self.summaries.len() - 1
            }
        };
        &mut self.summaries[at]
    }

    /// Adds `other`'s counts, failures and skips to this report.
    pub fn merge(&mut self, other: Report) {
        for s in other.summaries {
            let mine = self.summary(&s.suite, s.mode, s.threads);
            mine.passed += s.passed;
            mine.failed += s.failed;
            mine.skipped += s.skipped;
            mine.fell_back += s.fell_back;
            for (engine, n) in s.engines {
                *mine.engines.entry(engine).or_default() += n;
            }
        }
        self.failures.extend(other.failures);
        self.skipped.extend(other.skipped);
    }

    pub fn failed(&self) -> u64 {
        self.summaries.iter().map(|s| s.failed).sum()
    }

    /// Whether anything failed (the run's exit status).
    pub fn passed(&self) -> bool {
        self.failed() == 0 && self.failures.is_empty()
    }
}

/// The skip list: one test per line, `PATH[::TEST] REASON`, where PATH is the end of the
/// test file's path (`GeneralStateTests/stExample/add11.json`) and TEST a test name inside it
/// (all of the file's tests without it). Blank lines and lines starting with `#` are ignored.
/// Every entry needs a reason: a skip is a defect to fix, not a way out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipList {
    entries: Vec<SkipEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SkipEntry {
    path: String,
    test: Option<String>,
    reason: String,
}

impl SkipList {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (target, reason) = line.split_once(char::is_whitespace).map(|(t, r)| (t, r.trim())).unwrap_or((line, ""));
            if reason.is_empty() {
                return Err(format!("skip list line {}: '{target}' has no reason", n + 1));
            }
            let (path, test) = match target.split_once("::") {
                Some((p, t)) => (p, Some(t.to_string())),
                None => (target, None),
            };
            entries.push(SkipEntry { path: path.replace('\\', "/"), test, reason: reason.to_string() });
        }
        Ok(Self { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The reason `test` of the file at `path` is skipped, if it is.
    pub fn reason(&self, path: &str, test: &str) -> Option<&str> {
        let path = path.replace('\\', "/");
        self.entries.iter().find(|e| path.ends_with(&e.path) && e.test.as_deref().is_none_or(|t| t == test)).map(|e| e.reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_list_needs_reasons_and_matches_path_ends() {
        assert!(SkipList::parse("GeneralStateTests/a.json").is_err());
        let list =
            SkipList::parse("# comment\n\nGeneralStateTests/st/a.json  too slow\nBlockchainTests/b.json::one  reason two\n").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.reason("/x/GeneralStateTests/st/a.json", "anything"), Some("too slow"));
        assert_eq!(list.reason("/x/BlockchainTests/b.json", "one"), Some("reason two"));
        assert_eq!(list.reason("/x/BlockchainTests/b.json", "two"), None);
        assert_eq!(list.reason("/x/GeneralStateTests/st/c.json", "a"), None);
    }

    #[test]
    fn merged_reports_add_up() {
        let mut a = Report::default();
        a.summary("GeneralStateTests", Mode::Sequential, 1).passed = 3;
        let mut b = Report::default();
        let s = b.summary("GeneralStateTests", Mode::Sequential, 1);
        s.passed = 2;
        s.failed = 1;
        b.summary("BlockchainTests", Mode::Parallel, 2).skipped = 1;
        a.merge(b);
        assert_eq!(a.summaries.len(), 2);
        assert_eq!((a.summaries[0].passed, a.summaries[0].failed), (5, 1));
        assert!(!a.passed());
    }
}
