//! The engine's threads: one rayon pool shared by the parallel engines and by the signature
//! recovery of block input, so that no call spawns threads of its own.

use crate::error::EngineError;
use parking_lot::Mutex;
use rayon::ThreadPool;
use std::sync::{Arc, OnceLock};

pub fn available_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The engine's own rayon pool (never the global one, so nothing else can steal work into our
/// workers while they hold scheduler locks), grown to the largest thread count asked for so far
/// and shared by every call. A pool per thread count kept every pool's threads alive for good:
/// a process that ran blocks with 2..64 threads held 2,016 idle OS threads. A call spawns only
/// as many tasks as it has workers, so a larger pool changes nothing for it; a replaced pool's
/// threads end once the runs still using it finish.
pub fn pool(threads: usize) -> Result<Arc<ThreadPool>, EngineError> {
    static POOL: OnceLock<Mutex<Option<Arc<ThreadPool>>>> = OnceLock::new();
    let mut current = POOL.get_or_init(Default::default).lock();
    if let Some(p) = current.as_ref().filter(|p| p.current_num_threads() >= threads) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            // Grown to powers of two: a run of ever larger counts replaces the pool a few times,
            // not once per count.
            .num_threads(threads.max(1).next_power_of_two())
            .thread_name(|i| format!("parallel-evm-{i}"))
            .build()
            .map_err(|e| EngineError::Internal(format!("thread pool: {e}")))?,
    );
    *current = Some(p.clone());
    Ok(p)
}
