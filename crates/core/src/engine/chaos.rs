//! Adversarial scheduling for tests: `pause()` sits at the points in the workers and the
//! scheduler where a badly timed preemption could expose a race (between reading a status and
//! acting on it, between recording writes and publishing the outcome, ...). In the crate's own
//! unit tests and with the `chaos` feature it yields, spins or sleeps at random, so that rare
//! interleavings happen often; in every other build it is an empty inline function.

#[cfg(any(test, feature = "chaos"))]
mod active {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

    /// Chance of a disturbance per point, in 1/1024 (0 turns chaos off).
    static LEVEL: AtomicU32 = AtomicU32::new(0);
    static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    static DISTURBANCES: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }

    /// Turns chaos on with a disturbance at `per_1024` of the points (0 turns it off); `seed`
    /// varies the pattern.
    pub fn enable(per_1024: u32, seed: u64) {
        SEED.store(seed | 1, Relaxed);
        LEVEL.store(per_1024.min(1024), Relaxed);
    }

    /// How many points disturbed a worker so far (tests check that chaos really ran).
    pub fn disturbances() -> u64 {
        DISTURBANCES.load(Relaxed)
    }

    fn next() -> u64 {
        STATE.with(|s| {
            let mut x = s.get();
            if x == 0 {
                // Per thread: mix the global seed with this thread's identity.
                let id = format!("{:?}", std::thread::current().id());
                x = SEED.load(Relaxed) ^ id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                x |= 1;
            }
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            s.set(x);
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
    }

    /// While chaos is on: up to three random transactions of a block of `n` for the scheduler
    /// to start ahead of block order (what `costs` picks from learned costs), so that runs
    /// exercise early starts whatever they took before.
    pub fn early(n: usize) -> Option<Vec<usize>> {
        if LEVEL.load(Relaxed) == 0 || n == 0 {
            return None;
        }
        let r = next();
        Some((0..r % 4).map(|i| ((r >> (8 + 16 * i)) % n as u64) as usize).collect())
    }

    pub fn pause() {
        let level = LEVEL.load(Relaxed);
        if level == 0 {
            return;
        }
        let r = next();
        if (r & 1023) as u32 >= level {
            return;
        }
        DISTURBANCES.fetch_add(1, Relaxed);
        match (r >> 10) % 16 {
            // Mostly give the core away, sometimes spin a while, rarely sleep long enough for
            // every other worker to run ahead.
            0..=9 => std::thread::yield_now(),
            10..=14 => {
                for _ in 0..((r >> 20) % 2_000) {
                    std::hint::spin_loop();
                }
            }
            _ => std::thread::sleep(std::time::Duration::from_micros((r >> 20) % 300)),
        }
    }
}

#[cfg(any(test, feature = "chaos"))]
pub use active::{disturbances, early, enable, pause};

/// Compiled out: no chaos outside tests.
#[cfg(not(any(test, feature = "chaos")))]
#[inline(always)]
pub fn pause() {}

#[cfg(not(any(test, feature = "chaos")))]
#[inline(always)]
pub fn early(_n: usize) -> Option<Vec<usize>> {
    None
}
