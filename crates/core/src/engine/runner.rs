//! Long-lived threads that run executions for hosts whose own worker threads rotate, such as a
//! Node addon on libuv's pool (four threads taking queued work in turn).
//!
//! The thread that calls `execute_block` is the run's first worker and allocates most of what
//! the run uses. On a rotating thread its allocator heap has sat idle for several runs, long
//! enough for freed pages to be returned to the OS, so every run faulted them back in (with
//! transparent huge pages, zeroing 2 MB at a time): on a 1,400-transaction block, `executeBlock`
//! from Node took 1.46-1.48x the replay example's time; with libuv held to one thread, 1.02-1.04x.
//! Here the most recently idle thread takes the next job, so back-to-back calls run on one thread,
//! and a thread stays awake briefly after a job for the next one (`LINGER`).

use parking_lot::Mutex;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender, TryRecvError};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads, most recently idle last.
static IDLE: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());

/// Runs `job` on an idle runner thread, or on a new one when all are busy (so there are as many
/// runner threads as the most jobs ever run at once; callers bound that, as the Node binding's
/// thread budget does). `job` must report its own outcome; a panic in it is contained.
pub fn spawn(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut job: Job = Box::new(job);
    loop {
        let Some(idle) = IDLE.lock().pop() else { break };
        match idle.send(job) {
            Ok(()) => return Ok(()),
            // That thread is gone (it cannot be, short of process teardown): try the next.
            Err(returned) => job = returned.0,
        }
    }
    let (sender, jobs) = channel::<Job>();
    std::thread::Builder::new().name("parallel-evm-run".into()).spawn(move || {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            // A job reports its own failures; this only keeps the thread alive for the next.
            let _ = catch_unwind(AssertUnwindSafe(job));
            IDLE.lock().push(sender.clone());
            // Some(next) when a job came (or the channel closed) within `LINGER`.
            let taken = linger(|| match jobs.try_recv() {
                Ok(job) => Some(Some(job)),
                Err(TryRecvError::Disconnected) => Some(None),
                Err(TryRecvError::Empty) => None,
            });
            next = taken.unwrap_or_else(|| jobs.recv().ok());
        }
    })?;
    Ok(())
}

/// How long a runner thread (and a pool thread after a parallel run: `parallel::release_later`)
/// stays awake for what comes next before it sleeps. A host executing blocks back to back sends
/// the next one ~0.1-0.2 ms after a result (its JS thread wakes and takes the result first); a
/// thread asleep by then takes ~40 µs to wake on a 2-vCPU VM, and may wake on the other CPU,
/// cold. Staying awake took a 1,400-transaction block's median call from 1.63-1.75 to 1.54-1.59
/// ms from Node (three alternations; 1.48-1.56 spinning without yielding). The cost: at most
/// this much CPU time after the last block of a burst, yielded to any other thread that wants
/// the CPU meanwhile.
pub(crate) const LINGER: Duration = Duration::from_micros(300);

/// Yields the CPU until `ready` gives a value or `LINGER` passes (then `None`).
pub(crate) fn linger<T>(mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + LINGER;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc::sync_channel, Arc, Barrier};

    fn wait_until_idle(n: usize) {
        while IDLE.lock().len() < n {
            std::thread::yield_now();
        }
    }

    // One test: the idle list is global, and tests run concurrently.
    #[test]
    fn idle_threads_are_reused_survive_panics_and_concurrent_jobs_get_their_own() {
        let (done, finished) = sync_channel(2);
        let d = done.clone();
        spawn(move || d.send(std::thread::current().id()).unwrap()).unwrap();
        let first = finished.recv().unwrap();
        wait_until_idle(1);
        spawn(|| panic!("a job's panic stays in its thread")).unwrap();
        wait_until_idle(1);
        let d = done.clone();
        spawn(move || d.send(std::thread::current().id()).unwrap()).unwrap();
        assert_eq!(finished.recv().unwrap(), first, "the idle thread is reused, panic or not");
        wait_until_idle(1);

        // Two jobs that wait for each other cannot share a thread.
        let barrier = Arc::new(Barrier::new(3));
        for _ in 0..2 {
            let (b, d) = (barrier.clone(), done.clone());
            spawn(move || {
                b.wait();
                d.send(std::thread::current().id()).unwrap();
            })
            .unwrap();
        }
        barrier.wait();
        assert_ne!(finished.recv().unwrap(), finished.recv().unwrap());
    }
}
