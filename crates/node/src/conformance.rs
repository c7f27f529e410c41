//! The conformance runner (`parallel_evm_core::conformance`) for the CLI: the test files of some
//! paths, and one file's report in the given modes. Conversions only; the runner is the core's.

use crate::{
    guard::{guarded, Outcome},
    reject_with,
};
use napi::{bindgen_prelude::AsyncTask, Env, Task};
use napi_derive::napi;
use parallel_evm_core::{
    conformance::{collect_files, mode_matrix, run_file, Mode, ModeSpec, Options, SkipList},
    EngineError,
};
use std::path::PathBuf;

pub struct ConformanceFilesTask {
    paths: Vec<String>,
}

impl Task for ConformanceFilesTask {
    type Output = Outcome<Vec<String>>;
    type JsValue = Vec<String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let paths: Vec<PathBuf> = self.paths.iter().map(PathBuf::from).collect();
            let files = collect_files(&paths).map_err(|e| EngineError::InvalidInput(e.to_string()))?;
            Ok(files.into_iter().map(|p| p.display().to_string()).collect())
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |files| files)
    }
}

/// The `.json` test files of `paths` (files as given, folders walked recursively), in run order.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn conformance_files(paths: Vec<String>) -> AsyncTask<ConformanceFilesTask> {
    AsyncTask::new(ConformanceFilesTask { paths })
}

/// The modes a run goes through, as JSON (`[{ mode, threads }]`): `modes` (sequential,
/// parallel, auto, groups; none: all) at `threads` (none: the core's default counts).
#[napi]
pub fn conformance_modes(modes: Vec<String>, threads: Vec<u32>) -> napi::Result<String> {
    let modes = modes
        .iter()
        .map(|m| m.parse::<Mode>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| napi::Error::new(napi::Status::InvalidArg, e))?;
    let threads: Vec<usize> = threads.into_iter().map(|t| t as usize).collect();
    serde_json::to_string(&mode_matrix(&modes, &threads)).map_err(|e| napi::Error::from_reason(e.to_string()))
}

pub struct ConformanceFileTask {
    path: String,
    modes: String,
    skip_list: Option<String>,
}

impl Task for ConformanceFileTask {
    type Output = Outcome<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let modes: Vec<ModeSpec> = serde_json::from_str(&self.modes).map_err(|e| EngineError::InvalidInput(format!("modes: {e}")))?;
            let skip = match &self.skip_list {
                Some(text) => SkipList::parse(text).map_err(EngineError::InvalidInput)?,
                None => SkipList::default(),
            };
            let report = run_file(std::path::Path::new(&self.path), &Options { modes, skip });
            serde_json::to_string(&report).map_err(|e| EngineError::Internal(format!("serialising the report: {e}")))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |json| json)
    }
}

/// Runs one test file in `modes` (JSON from `conformanceModes`), leaving out the tests the skip
/// list (its text) names; resolves to the file's report as JSON (`{ summaries, failures,
/// skipped }`). A test that fails or cannot be read is in the report, never a rejection.
#[napi(ts_return_type = "Promise<string>")]
pub fn conformance_file(path: String, modes: String, skip_list: Option<String>) -> AsyncTask<ConformanceFileTask> {
    AsyncTask::new(ConformanceFileTask { path, modes, skip_list })
}
