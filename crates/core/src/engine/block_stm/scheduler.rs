//! The Block-STM collaborative scheduler: execution and validation indices shared by all
//! workers, per-transaction status and incarnation, and dependency suspension/resumption.
//!
//! Workers never block on each other: a transaction that reads an ESTIMATE is suspended and
//! put back when the transaction it waits for finishes, while its worker moves on.

use crate::{block::TxIdx, engine::chaos::pause};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};

/// How many times a transaction has been (re-)started by the parallel scheduler.
pub type Incarnation = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Status {
    #[default]
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Execute(TxIdx, Incarnation),
    Validate(TxIdx, Incarnation),
}

/// Per-transaction state, one cache line each: workers take neighbouring transactions at
/// the same moment, and shared lines would bounce between cores.
#[derive(Default)]
struct TxState {
    status: Mutex<(Incarnation, Status)>,
    dependents: Mutex<Vec<TxIdx>>,
}

/// Transactions a worker claims for execution at a time. Every step of the shared execution
/// index moves its cache line to the claiming core (~0.4 us a round trip between this VM's two
/// vCPUs, as long as a cheap transaction); pairs halve that, and neighbours that depend on each
/// other run in order on one worker. 44 mainnet fixture blocks, 2 threads, A/B of 7 runs x 3-4
/// alternations: geometric mean 1.346 vs 1.310 and 1.348 vs 1.311 (one at a time); 3 and 4 at a
/// time measured no better (1.357 vs 1.332; 1.306 vs 1.345).
const EXECUTION_BATCH: usize = 2;

pub struct Scheduler {
    block_size: usize,
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    /// Tasks in hand, per worker: each worker only touches its own line; `check_done` sums.
    active: Vec<CachePadded<AtomicUsize>>,
    /// Transactions a worker claimed for execution and has not tried yet (start, end), touched
    /// by that worker only.
    claimed: Vec<CachePadded<(AtomicUsize, AtomicUsize)>>,
    /// Transactions claimed per step of `execution_idx` (`EXECUTION_BATCH`, 1 for one worker).
    batch: usize,
    done: CachePadded<AtomicBool>,
    txs: Vec<CachePadded<TxState>>,
    /// Transactions to start before the execution index reaches them (expected to be long; see
    /// `with_early`), and how many of them workers have taken.
    early: Vec<TxIdx>,
    early_taken: CachePadded<AtomicUsize>,
}

impl Scheduler {
    pub fn new(block_size: usize, workers: usize) -> Self {
        Self::with_hints(block_size, workers, &[])
    }

    /// `hints[j] = Some(i)`: transaction `j` is expected to read what `i < j` writes (the same
    /// sender's previous transaction, say). `j` then starts only once `i` has executed, instead
    /// of running early on stale values and being aborted. Hints steer scheduling only; a
    /// wrong hint costs time, never correctness.
    pub fn with_hints(block_size: usize, workers: usize, hints: &[Option<TxIdx>]) -> Self {
        let scheduler = Self {
            block_size,
            execution_idx: CachePadded::new(AtomicUsize::new(0)),
            validation_idx: CachePadded::new(AtomicUsize::new(0)),
            decrease_cnt: CachePadded::new(AtomicUsize::new(0)),
            active: (0..workers.max(1)).map(|_| CachePadded::new(AtomicUsize::new(0))).collect(),
            claimed: (0..workers.max(1)).map(|_| CachePadded::new((AtomicUsize::new(0), AtomicUsize::new(0)))).collect(),
            batch: if workers > 1 { EXECUTION_BATCH } else { 1 },
            done: CachePadded::new(AtomicBool::new(block_size == 0)),
            txs: (0..block_size).map(|_| CachePadded::new(TxState::default())).collect(),
            early: Vec::new(),
            early_taken: CachePadded::new(AtomicUsize::new(0)),
        };
        for (tx, hint) in hints.iter().enumerate().take(block_size) {
            if let Some(i) = *hint {
                assert!(i < tx, "a hint must point to an earlier transaction");
                // Parked exactly like a transaction suspended on a dependency.
                scheduler.txs[tx].status.lock().1 = Status::Aborting;
                scheduler.txs[i].dependents.lock().push(tx);
            }
        }
        scheduler
    }

    /// Workers take `early` (in that order) before anything else. A long transaction late in
    /// the block otherwise starts only once the ones before it have, and then runs alone while
    /// the other workers have nothing left. Started early, it runs speculatively like any
    /// other execution: validation in block order still decides whether it stands, so a wrong
    /// choice costs time, never correctness.
    pub fn with_early(mut self, early: Vec<TxIdx>) -> Self {
        self.early = early.into_iter().filter(|tx| *tx < self.block_size).collect();
        self
    }

    /// The transactions started ahead of block order.
    pub fn early(&self) -> &[TxIdx] {
        &self.early
    }

    pub fn is_early(&self, tx: TxIdx) -> bool {
        self.early.contains(&tx)
    }

    pub fn done(&self) -> bool {
        self.done.load(SeqCst)
    }

    fn decrease_execution_idx(&self, target: TxIdx) {
        self.execution_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxIdx) {
        self.validation_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(SeqCst);
        pause();
        if self.execution_idx.load(SeqCst).min(self.validation_idx.load(SeqCst)) >= self.block_size
            && self.active.iter().all(|a| a.load(SeqCst) == 0)
            && observed == self.decrease_cnt.load(SeqCst)
        {
            self.done.store(true, SeqCst);
        }
    }

    /// Claims `tx` for execution if it is ready; otherwise gives the active-task slot back.
    fn try_incarnate(&self, worker: usize, tx: TxIdx) -> Option<Task> {
        if tx < self.block_size {
            let mut s = self.txs[tx].status.lock();
            if s.1 == Status::ReadyToExecute {
                s.1 = Status::Executing;
                return Some(Task::Execute(tx, s.0));
            }
        }
        self.active[worker].fetch_sub(1, SeqCst);
        None
    }

    fn next_version_to_execute(&self, worker: usize) -> Option<Task> {
        if self.execution_idx.load(SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        pause();
        let k = self.batch;
        self.active[worker].fetch_add(k, SeqCst);
        let idx = self.execution_idx.fetch_add(k, SeqCst);
        if k > 1 {
            let c = &self.claimed[worker];
            c.0.store(idx + 1, Relaxed);
            c.1.store(idx + k, Relaxed);
        }
        pause();
        self.try_incarnate(worker, idx)
    }

    /// The next transaction this worker claimed and has not tried yet.
    fn take_claimed(&self, worker: usize) -> Option<TxIdx> {
        let c = &self.claimed[worker];
        let (start, end) = (c.0.load(Relaxed), c.1.load(Relaxed));
        (start < end).then(|| {
            c.0.store(start + 1, Relaxed);
            start
        })
    }

    /// Whether this worker still holds claimed transactions (it may not leave the block).
    pub fn holds_claims(&self, worker: usize) -> bool {
        let c = &self.claimed[worker];
        c.0.load(Relaxed) < c.1.load(Relaxed)
    }

    fn next_version_to_validate(&self, worker: usize) -> Option<Task> {
        if self.validation_idx.load(SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.active[worker].fetch_add(1, SeqCst);
        let idx = self.validation_idx.fetch_add(1, SeqCst);
        pause();
        if idx < self.block_size {
            let s = *self.txs[idx].status.lock();
            if s.1 == Status::Executed {
                return Some(Task::Validate(idx, s.0));
            }
        }
        self.active[worker].fetch_sub(1, SeqCst);
        None
    }

    /// The next task for a worker; `None` when there is nothing to do right now.
    pub fn next_task(&self, worker: usize) -> Option<Task> {
        if let Some(tx) = self.take_claimed(worker) {
            return self.try_incarnate(worker, tx);
        }
        if self.early_taken.load(Relaxed) < self.early.len() {
            let k = self.early_taken.fetch_add(1, SeqCst);
            if let Some(tx) = self.early.get(k) {
                self.active[worker].fetch_add(1, SeqCst);
                return self.try_incarnate(worker, *tx);
            }
        }
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst) {
            self.next_version_to_validate(worker)
        } else {
            self.next_version_to_execute(worker)
        }
    }

    /// `tx` read an ESTIMATE of `blocking`: suspend it until `blocking` executes again.
    /// Returns false if `blocking` already finished (the caller re-executes at once).
    pub fn add_dependency(&self, worker: usize, tx: TxIdx, blocking: TxIdx) -> bool {
        let mut deps = self.txs[blocking].dependents.lock();
        if self.txs[blocking].status.lock().1 == Status::Executed {
            return false;
        }
        pause();
        self.txs[tx].status.lock().1 = Status::Aborting;
        deps.push(tx);
        drop(deps);
        self.active[worker].fetch_sub(1, SeqCst);
        true
    }

    fn set_ready_status(&self, tx: TxIdx) {
        let mut s = self.txs[tx].status.lock();
        *s = (s.0 + 1, Status::ReadyToExecute);
    }

    /// An execution finished; returns a validation task for it when that is all that is needed.
    pub fn finish_execution(&self, worker: usize, tx: TxIdx, incarnation: Incarnation, wrote_new_location: bool) -> Option<Task> {
        self.txs[tx].status.lock().1 = Status::Executed;
        pause();
        let deps = std::mem::take(&mut *self.txs[tx].dependents.lock());
        if let Some(min) = deps.iter().copied().min() {
            for d in deps {
                self.set_ready_status(d);
            }
            self.decrease_execution_idx(min);
        }
        pause();
        if self.validation_idx.load(SeqCst) > tx {
            if wrote_new_location {
                self.decrease_validation_idx(tx);
            } else {
                return Some(Task::Validate(tx, incarnation));
            }
        }
        self.active[worker].fetch_sub(1, SeqCst);
        None
    }

    /// First failed validation of this incarnation wins the right to abort it.
    pub fn try_validation_abort(&self, tx: TxIdx, incarnation: Incarnation) -> bool {
        let mut s = self.txs[tx].status.lock();
        if *s == (incarnation, Status::Executed) {
            s.1 = Status::Aborting;
            true
        } else {
            false
        }
    }

    /// A validation finished; after an abort, returns the re-execution task when it can start now.
    pub fn finish_validation(&self, worker: usize, tx: TxIdx, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready_status(tx);
            pause();
            self.decrease_validation_idx(tx + 1);
            pause();
            if self.execution_idx.load(SeqCst) > tx {
                return self.try_incarnate(worker, tx);
            }
        }
        self.active[worker].fetch_sub(1, SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the scheduler alone, executing and validating as told, with `conflict(tx, inc)`
    /// deciding whether a validation fails. Returns the executions per transaction.
    fn drive(s: &Scheduler, n: usize, conflict: impl Fn(TxIdx, Incarnation) -> bool) -> Vec<usize> {
        let mut runs = vec![0; n];
        let mut task = None;
        let mut steps = 0;
        while !s.done() {
            steps += 1;
            assert!(steps < 100_000, "the scheduler must terminate");
            task = match task {
                Some(Task::Execute(tx, inc)) => {
                    runs[tx] += 1;
                    s.finish_execution(0, tx, inc, runs[tx] == 1)
                }
                Some(Task::Validate(tx, inc)) => {
                    let aborted = conflict(tx, inc) && s.try_validation_abort(tx, inc);
                    s.finish_validation(0, tx, aborted)
                }
                None => s.next_task(0),
            };
        }
        runs
    }

    #[test]
    fn one_worker_executes_everything_once_without_conflicts() {
        let s = Scheduler::new(50, 1);
        assert_eq!(drive(&s, 50, |_, _| false), vec![1; 50]);
    }

    #[test]
    fn failed_validations_re_execute_until_they_pass() {
        let s = Scheduler::new(20, 1);
        let runs = drive(&s, 20, |tx, inc| tx % 3 == 0 && inc < 2);
        for (tx, r) in runs.iter().enumerate() {
            assert_eq!(*r, if tx % 3 == 0 { 3 } else { 1 }, "transaction {tx}");
        }
    }

    #[test]
    fn hinted_transactions_wait_for_their_predecessor() {
        let hints: Vec<Option<TxIdx>> = (0..10).map(|i| (i % 2 == 1).then(|| i - 1)).collect();
        let s = Scheduler::with_hints(10, 1, &hints);
        assert_eq!(drive(&s, 10, |_, _| false), vec![1; 10]);
    }

    #[test]
    fn two_workers_claiming_pairs_execute_everything_once() {
        // Two workers stepped in turn from one thread: each claims two neighbours at a time
        // and runs both before the block can be done.
        let n = 11;
        let s = Scheduler::new(n, 2);
        let mut runs = vec![0; n];
        let mut by = vec![usize::MAX; n];
        let mut tasks = [None, None];
        let mut steps = 0;
        while !s.done() {
            steps += 1;
            assert!(steps < 10_000, "the scheduler must terminate");
            let w = steps % 2;
            tasks[w] = match tasks[w] {
                Some(Task::Execute(tx, inc)) => {
                    runs[tx] += 1;
                    by[tx] = w;
                    s.finish_execution(w, tx, inc, runs[tx] == 1)
                }
                Some(Task::Validate(tx, _)) => s.finish_validation(w, tx, false),
                None => s.next_task(w),
            };
        }
        assert_eq!(runs, vec![1; n]);
        for pair in by.chunks(2) {
            assert!(pair.iter().all(|w| *w == pair[0]), "neighbours run on the worker that claimed them: {by:?}");
        }
        assert!(!s.holds_claims(0) && !s.holds_claims(1));
    }

    #[test]
    fn early_transactions_start_first_and_still_validate_in_order() {
        // One worker: the early ones come first, in the order given; everything runs once.
        let s = Scheduler::new(10, 1).with_early(vec![8, 5, 42]);
        assert_eq!(s.early(), &[8, 5], "indices past the block are dropped");
        assert_eq!(s.next_task(0), Some(Task::Execute(8, 0)));
        assert_eq!(s.finish_execution(0, 8, 0, true), None);
        assert_eq!(s.next_task(0), Some(Task::Execute(5, 0)));
        assert_eq!(s.finish_execution(0, 5, 0, true), None);
        let mut rest = drive(&s, 10, |_, _| false);
        rest[5] += 1;
        rest[8] += 1;
        assert_eq!(rest, vec![1; 10]);

        // An early execution that fails validation (it read what an earlier transaction
        // wrote) runs again in order, and the block still finishes.
        let s = Scheduler::new(10, 1).with_early(vec![7]);
        assert_eq!(drive(&s, 10, |tx, inc| tx == 7 && inc == 0), [vec![1; 7], vec![2], vec![1; 2]].concat());

        // A transaction parked behind its sender's previous one is not started early.
        let hints: Vec<Option<TxIdx>> = (0..6).map(|i| (i == 4).then_some(3)).collect();
        let s = Scheduler::with_hints(6, 1, &hints).with_early(vec![4]);
        assert_eq!(s.next_task(0), None, "4 waits for 3");
        assert_eq!(drive(&s, 6, |_, _| false), vec![1; 6]);
    }

    #[test]
    fn empty_block_is_done_at_once() {
        assert!(Scheduler::new(0, 2).done());
    }
}
