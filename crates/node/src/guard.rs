//! The unwind boundary: napi-rs runs `Task::compute` without `catch_unwind`, so a panic there
//! would abort Node, and a runner job that panicked would never settle its promise. Every
//! computation goes through `guarded`.

use parallel_evm_core::EngineError;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What crosses back to the JS thread on failure.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub tx_index: Option<usize>,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure { code: e.code(), message: e.to_string(), tx_index: e.tx_index() }
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// Runs `f`, turning engine errors and panics into a `Failure`.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Outcome<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(Failure::from),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            Err(Failure::from(EngineError::Internal(format!("panic in the engine: {what}"))))
        }
    }
}
