//! Keeps a pool thread off the CPU of the thread that called the run it works for.
//!
//! Linux places a woken thread next to the thread that woke it when it judges that cheaper.
//! When the Node binding's runner thread calls a run, the run's pool thread sometimes landed on
//! the runner's CPU while the other CPU sat idle: the two workers then took turns on one core
//! until the scheduler moved one, often not before the run was over (9% of runs of a 1,414-
//! transaction block, which then took 1.75-2.05 ms instead of 1.36-1.40 ms; the runs measured
//! in the calling thread itself never did). A pool thread that finds itself on the caller's CPU
//! when it starts leaves it: its allowed CPUs are narrowed to the others, which makes the kernel
//! move it at once, and widened back once its job is done.

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::size_of;

    pub fn current_cpu() -> Option<usize> {
        // SAFETY: no arguments; returns the CPU or -1.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }

    /// The calling thread's allowed CPUs before `leave` narrowed them.
    pub struct Restore(libc::cpu_set_t);

    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: sets this thread's affinity from a mask read from it.
            unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0) };
        }
    }

    pub fn leave(cpu: usize) -> Option<Restore> {
        if current_cpu()? != cpu || cpu >= libc::CPU_SETSIZE as usize {
            return None;
        }
        // SAFETY: a zeroed cpu_set_t is an empty set; the calls read and write this thread's
        // affinity through a set of the size given.
        unsafe {
            let mut allowed: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
                return None;
            }
            let original = allowed;
            libc::CPU_CLR(cpu, &mut allowed);
            if libc::CPU_COUNT(&allowed) == 0 || libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &allowed) != 0 {
                return None;
            }
            Some(Restore(original))
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn current_cpu() -> Option<usize> {
        None
    }

    pub struct Restore;

    pub fn leave(_cpu: usize) -> Option<Restore> {
        None
    }
}

pub use imp::Restore;

/// The CPU the calling thread runs on now (Linux; `None` elsewhere or when unknown).
pub fn current_cpu() -> Option<usize> {
    imp::current_cpu()
}

/// The caller's CPU for a run of `threads` workers (`leave_caller_cpu`), when every worker can
/// have a CPU of its own: with more workers than CPUs, moving pool threads off one CPU would
/// only crowd the others.
pub fn caller_cpu(threads: usize) -> Option<usize> {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (threads <= cpus).then(current_cpu).flatten()
}

/// Moves the calling thread off `caller_cpu` if it runs there, until the guard drops (then it
/// may run anywhere it could before). `None` when it was elsewhere or could not move.
pub fn leave_caller_cpu(caller_cpu: Option<usize>) -> Option<Restore> {
    imp::leave(caller_cpu?)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::mem::size_of;

    fn affinity() -> libc::cpu_set_t {
        // SAFETY: reads this thread's affinity into a zeroed set of the size given.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set), 0);
            set
        }
    }

    fn set_affinity(set: &libc::cpu_set_t) {
        // SAFETY: sets this thread's affinity from a valid set.
        assert_eq!(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) }, 0);
    }

    #[test]
    fn a_thread_on_the_callers_cpu_moves_off_it_and_gets_its_cpus_back() {
        std::thread::spawn(|| {
            let all = affinity();
            // SAFETY: counts the CPUs of a valid set.
            if unsafe { libc::CPU_COUNT(&all) } < 2 {
                return;
            }
            // Onto one allowed CPU, then allowed everywhere again (which moves nothing).
            let here = (0..libc::CPU_SETSIZE as usize).find(|c| unsafe { libc::CPU_ISSET(*c, &all) }).unwrap();
            let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            unsafe { libc::CPU_SET(here, &mut one) };
            set_affinity(&one);
            assert_eq!(current_cpu(), Some(here));
            set_affinity(&all);

            let guard = leave_caller_cpu(Some(here)).expect("moved off the caller's CPU");
            assert_ne!(current_cpu(), Some(here));
            drop(guard);
            // SAFETY: compares two valid sets.
            assert!(unsafe { libc::CPU_EQUAL(&affinity(), &all) }, "all CPUs allowed again");
            assert!(leave_caller_cpu(None).is_none());
        })
        .join()
        .unwrap();
    }
}
