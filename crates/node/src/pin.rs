//! Keeps the addon loaded for the life of the process. Node may unload an addon when the last
//! environment that loaded it (a worker thread, say) goes away, while threads this library
//! started (the engine's pool and runner threads, which never exit) still run or wait in its code
//! and hold Rust thread-local destructors there (rust-lang/rust#91979: such destructors then run
//! from unmapped pages). glibc already defers unloading while thread-local destructors are
//! pending; other platforms need not, so the library pins itself.

/// Marks this library never to be unloaded (`RTLD_NODELETE`). Best effort: when the library
/// cannot be found again, nothing changes.
#[cfg(unix)]
pub fn keep_loaded() {
    // SAFETY: `dladdr` reads the loader's tables for an address inside this library and fills
    // `info`; `dlopen` with RTLD_NOLOAD only takes another reference to a library already mapped.
    // The handle is deliberately never closed.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let here = keep_loaded as *const libc::c_void;
        if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE);
        }
    }
}

#[cfg(not(unix))]
pub fn keep_loaded() {}
