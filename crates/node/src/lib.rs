//! Node.js binding of parallel-evm. Thin on purpose: it parses bulk inputs with the core's parsers,
//! runs the core off the JavaScript thread (parsing on libuv's pool, executions on the core's
//! runner threads), and turns every failure (panics included) into a JS Error whose `code` is the
//! engine's stable error code. No engine logic lives here.

mod guard;
mod pin;

use guard::{guarded, Failure, Outcome};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{bindgen_prelude::Object, Env, Error, JsValue, Status, Task};
use napi_derive::napi;
use parallel_evm_core::{
    block::chain::ChainSpec,
    block::BlockInput,
    engine::carried::{execute_carried_run as core_execute_carried_run, run_carried as core_run_carried, FetchedJson, RunStep, RunStop},
    engine::hybrid::{execute_block, ExecuteOptions},
    engine::partial::{execute_partial, run_partial, PartialOutcome},
    engine::runner,
    result::BlockResult,
    state::carried::{CarriedState as CoreCarried, DEFAULT_BUDGET_BYTES},
    state::partial::PartialStorage,
    state::storage::InMemoryStorage,
    state::witness::{ExecutionWitness, WitnessState},
    threads::available_threads,
    trace::{execute_block_traced, traces_to_json, tracing_threads, TraceConfig},
    verify::crosscheck::first_mismatch,
    verify::state_root::pre_state_root,
    verify::witness_root::post_state_root,
    verify::{check_header, check_report, check_report_witness, integrity_checks, Verification},
    EngineError, ModeRequest,
};
use std::sync::{Arc, Mutex, RwLock};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 2's `purge_delay` option (its place in `mi_option_e`; not named by the Rust bindings).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[napi_derive::module_init]
fn init() {
    pin::keep_loaded();
    // mimalloc 2 returns freed pages to the OS 10 ms after they were freed (mimalloc 3: 1 s), and
    // does so from its next call, not from a timer: a host that pauses between blocks (one per
    // 12 s slot when following the chain) had the next block give back the previous block's
    // memory as it started and fault it in again (a 1,400-transaction block after a 5 s pause:
    // 4.1 ms with a 1 s delay, 2.5 ms with 30 s; 1.9 ms back to back). An idle process keeps the
    // pages either way. Unless the host set its own delay (`MIMALLOC_PURGE_DELAY`, read when the
    // option is first used), keep freed pages for 30 s: longer than a slot.
    // SAFETY: sets an option's default; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 30_000) };
}

/// A block parsed once by the engine (with its chain rules), reusable across executions.
#[napi]
pub struct PreparedBlock {
    block: Arc<BlockInput>,
    chain: Arc<ChainSpec>,
}

#[napi]
impl PreparedBlock {
    #[napi(getter)]
    pub fn number(&self) -> f64 {
        self.block.number as f64
    }

    #[napi(getter)]
    pub fn tx_count(&self) -> u32 {
        self.block.txs.len() as u32
    }

    /// The block checked against its own header (`[{ name, status, ... }]` as JSON) when prepared
    /// with `check_header`; null otherwise.
    #[napi]
    pub fn integrity_json(&self) -> napi::Result<Option<String>> {
        self.block
            .integrity
            .as_ref()
            .map(|i| serde_json::to_string(&integrity_checks(i)).map_err(|e| Error::from_reason(e.to_string())))
            .transpose()
    }
}

/// A full pre-state, or one known in part whose executions report the keys they miss.
#[derive(Clone)]
pub enum StateHandle {
    Full(Arc<InMemoryStorage>),
    Partial(Arc<PartialStorage>),
    /// A range replay's carried state: a complete run advances it past the block.
    Carried(Arc<RwLock<CoreCarried>>),
    /// Proven by an execution witness: results check their post-state root.
    Witness(Arc<WitnessState>),
}

/// A pre-state (and BLOCKHASH values) parsed once by the engine, reusable across executions.
#[napi]
pub struct PreparedState {
    state: StateHandle,
}

#[napi]
impl PreparedState {
    #[napi(getter)]
    pub fn account_count(&self) -> u32 {
        match &self.state {
            StateHandle::Full(s) => s.accounts.len() as u32,
            StateHandle::Partial(p) => p.state.accounts.len() as u32,
            StateHandle::Carried(c) => c.read().unwrap_or_else(|e| e.into_inner()).stats().accounts as u32,
            StateHandle::Witness(w) => w.account_count() as u32,
        }
    }

    /// Whether the state comes from an execution witness (results then report their post-state root).
    #[napi(getter)]
    pub fn witness(&self) -> bool {
        matches!(self.state, StateHandle::Witness(_))
    }

    /// Whether executions on this state report missing keys instead of treating them as absent.
    #[napi(getter)]
    pub fn partial(&self) -> bool {
        matches!(self.state, StateHandle::Partial(_) | StateHandle::Carried(_))
    }
}

/// Rejects with a JS Error carrying the engine's code (and `txIndex` when a transaction is at fault).
fn reject_with(env: &Env, failure: Failure) -> Error {
    let build = || -> napi::Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, failure.message.clone()))?;
        obj.set("code", failure.code)?;
        if let Some(i) = failure.tx_index {
            obj.set("txIndex", i as u32)?;
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}

/// The task shape every export uses: a guarded computation, then a conversion on the JS thread.
macro_rules! settle {
    ($env:expr, $outcome:expr, $ok:expr) => {
        match $outcome {
            Ok(v) => Ok($ok(v)),
            Err(f) => Err(reject_with(&$env, f)),
        }
    };
}

pub mod conformance;

pub struct PrepareBlockTask {
    block: Buffer,
    chain: Option<Buffer>,
    verify_signatures: bool,
    check_header: bool,
}

impl Task for PrepareBlockTask {
    type Output = Outcome<(BlockInput, ChainSpec)>;
    type JsValue = PreparedBlock;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let chain = match &self.chain {
                Some(c) => ChainSpec::from_json(c)?,
                None => ChainSpec::mainnet(),
            };
            let block = if self.check_header {
                BlockInput::from_json_checked(&self.block, &chain, self.verify_signatures)?
            } else if self.verify_signatures {
                BlockInput::from_json_verified(&self.block, &chain)?
            } else {
                BlockInput::from_json(&self.block)?
            };
            Ok((block, chain))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |(b, c)| PreparedBlock { block: Arc::new(b), chain: Arc::new(c) })
    }
}

/// Parses a JSON-RPC block (full transactions) and an optional `chain.json`, off the JS thread.
/// With `verify_signatures`, every transaction's signature must recover to its `from`. With
/// `check_header`, the block is checked against its own header (transactions and withdrawals
/// roots, block hash, signatures) and the checks join every check report of its executions.
#[napi(ts_return_type = "Promise<PreparedBlock>")]
pub fn prepare_block(
    block: Buffer,
    chain: Option<Buffer>,
    verify_signatures: Option<bool>,
    check_header: Option<bool>,
) -> AsyncTask<PrepareBlockTask> {
    AsyncTask::new(PrepareBlockTask {
        block,
        chain,
        verify_signatures: verify_signatures.unwrap_or(false),
        check_header: check_header.unwrap_or(false),
    })
}

pub struct PrepareWitnessTask {
    witness: Buffer,
    block_hashes: Option<Buffer>,
    parent_state_root: Option<String>,
}

impl Task for PrepareWitnessTask {
    type Output = Outcome<StateHandle>;
    type JsValue = PreparedState;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let root = match &self.parent_state_root {
                Some(r) => Some(r.parse().map_err(|e| EngineError::InvalidInput(format!("parentStateRoot '{r}': {e}")))?),
                None => None,
            };
            let mut state = WitnessState::new(&ExecutionWitness::from_json(&self.witness)?, None, root)?;
            if let Some(h) = &self.block_hashes {
                state = state.with_block_hashes(InMemoryStorage::block_hashes_from_json(h)?);
            }
            Ok(StateHandle::Witness(Arc::new(state)))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |state| PreparedState { state })
    }
}

/// Builds a pre-state from an execution witness (`debug_executionWitness` JSON): its trie nodes
/// must hash up to the parent's state root (from its newest header, or `parent_state_root`).
/// Optional `{ "<number>": "0xhash" }` block hashes add to the witness's headers.
#[napi(ts_return_type = "Promise<PreparedState>")]
pub fn prepare_witness_state(
    witness: Buffer,
    block_hashes: Option<Buffer>,
    parent_state_root: Option<String>,
) -> AsyncTask<PrepareWitnessTask> {
    AsyncTask::new(PrepareWitnessTask { witness, block_hashes, parent_state_root })
}

pub struct PrepareStateTask {
    prestate: Buffer,
    block_hashes: Option<Buffer>,
    knowledge: Option<Buffer>,
}

impl Task for PrepareStateTask {
    type Output = Outcome<StateHandle>;
    type JsValue = PreparedState;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let mut state = InMemoryStorage::from_prestate_json(&self.prestate)?;
            if let Some(h) = &self.block_hashes {
                state = state.with_block_hashes(InMemoryStorage::block_hashes_from_json(h)?);
            }
            Ok(match &self.knowledge {
                None => StateHandle::Full(Arc::new(state)),
                Some(k) => StateHandle::Partial(Arc::new(PartialStorage::new(state, PartialStorage::knowledge_from_json(k)?))),
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |state| PreparedState { state })
    }
}

/// Parses a geth `prestateTracer` pre-state and optional `{ "<number>": "0xhash" }` block hashes.
/// With `knowledge` (`{ absent, completeStorage, complete }`) the state is partial: keys it does
/// not hold are reported by executions (`ExecutionOutput.missingJson`) instead of read as absent.
#[napi(ts_return_type = "Promise<PreparedState>")]
pub fn prepare_state(prestate: Buffer, block_hashes: Option<Buffer>, knowledge: Option<Buffer>) -> AsyncTask<PrepareStateTask> {
    AsyncTask::new(PrepareStateTask { prestate, block_hashes, knowledge })
}

/// One execution's inputs, run on a runner thread (`run`) and settled on the JS thread.
pub struct ExecuteTask {
    block: Arc<BlockInput>,
    chain: Arc<ChainSpec>,
    state: StateHandle,
    threads: usize,
    mode: String,
    /// A geth tracer config (JSON), to trace every transaction too.
    trace: Option<String>,
}

/// The small part of a result, serialised eagerly; receipts and the diff are serialised on demand.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    #[serde(with = "alloy_serde::quantity")]
    number: u64,
    hash: &'a Option<alloy_primitives::B256>,
    #[serde(with = "alloy_serde::quantity")]
    gas_used: u64,
    logs_bloom: &'a alloy_primitives::Bloom,
    warnings: &'a [String],
    stats: &'a parallel_evm_core::result::Stats,
}

/// The header checks, computed on first request (the receipts root is a trie hash).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HeaderChecks {
    receipts_root: alloy_primitives::B256,
    verification: Verification,
}

fn internal(what: &str, e: serde_json::Error) -> EngineError {
    EngineError::Internal(format!("serialising {what}: {e}"))
}

/// The outcome of one execution, held natively. The summary is JSON ready to parse; receipts and
/// the state diff (large: a full block's receipts are megabytes of JSON) are serialised only when
/// asked for, so callers that need one part do not pay for the other.
#[napi(custom_finalize)]
pub struct ExecutionOutput {
    summary: String,
    /// Absent when the run missed keys of a partial state (then `missing` is set).
    result: Option<Arc<BlockResult>>,
    missing: Option<String>,
    /// `[{ txHash, result }]` when tracing was asked for.
    traces: Option<String>,
    block: Arc<BlockInput>,
    chain: Arc<ChainSpec>,
    /// The witness the block ran on: its post-state root is checked.
    witness: Option<Arc<WitnessState>>,
    checks: std::sync::OnceLock<String>,
    /// Bytes reported to V8 as held by this object (`BlockResult::heap_bytes`). Without it V8
    /// sees a small object, collects results late, and the process keeps mapping fresh pages
    /// for new blocks while old results wait: page faults were 40% of a loop of `executeBlock`
    /// calls.
    external: i64,
}

impl napi::bindgen_prelude::ObjectFinalize for ExecutionOutput {
    fn finalize(self, env: Env) -> napi::Result<()> {
        if self.external > 0 {
            env.adjust_external_memory(-self.external)?;
        }
        Ok(())
    }
}

#[napi]
impl ExecutionOutput {
    /// `{ number, hash, gasUsed, logsBloom, warnings, stats }`.
    #[napi(getter)]
    pub fn summary(&self) -> String {
        self.summary.clone()
    }

    /// `{ accounts, storage: { address: [slot] }, blockHashes }` when the run (on a partial state)
    /// missed keys and has no result; null otherwise.
    #[napi(getter)]
    pub fn missing_json(&self) -> Option<String> {
        self.missing.clone()
    }

    fn result(&self) -> napi::Result<&Arc<BlockResult>> {
        self.result.as_ref().ok_or_else(|| Error::from_reason("no result: the run missed keys of a partial state"))
    }

    /// The whole state a prepared state holds; a partial one is not a whole state.
    fn full(state: &PreparedState) -> napi::Result<Arc<InMemoryStorage>> {
        match &state.state {
            StateHandle::Full(s) => Ok(s.clone()),
            StateHandle::Partial(_) | StateHandle::Carried(_) => Err(Error::from_reason("a partial state is not the whole state")),
            StateHandle::Witness(_) => {
                Err(Error::from_reason("a witness is not the whole state: its results check their post-state root by themselves"))
            }
        }
    }

    /// `{ receiptsRoot, verification }`: the result checked against the block header.
    #[napi]
    pub fn header_checks_json(&self) -> napi::Result<String> {
        if let Some(s) = self.checks.get() {
            return Ok(s.clone());
        }
        let result = self.result()?;
        let (root, mut verification) = check_header(&self.block, &self.chain, result);
        if let Some(w) = &self.witness {
            let post = post_state_root(w, &result.state_diff).map_err(|e| Error::from_reason(EngineError::from(e).to_string()))?;
            verification.state_root = Some(post == self.block.state_root);
        }
        let json =
            serde_json::to_string(&HeaderChecks { receipts_root: root, verification }).map_err(|e| Error::from_reason(e.to_string()))?;
        Ok(self.checks.get_or_init(|| json).clone())
    }

    /// `[{ name, status, expected?, actual?, note? }]`: every header check with its values. With
    /// `fullState` (the whole state before the block) the post-state root is checked too.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn check_report_json(&self, full_state: Option<&PreparedState>) -> napi::Result<AsyncTask<CheckReportTask>> {
        Ok(AsyncTask::new(CheckReportTask {
            block: self.block.clone(),
            chain: self.chain.clone(),
            result: self.result()?.clone(),
            state: full_state.map(Self::full).transpose()?,
            witness: self.witness.clone(),
        }))
    }

    /// Where this result first differs from `other` (`{ txIndex, location, expected, actual }`
    /// as JSON), or null when receipts and the state diff are the same.
    #[napi]
    pub fn first_mismatch_json(&self, other: &ExecutionOutput) -> napi::Result<Option<String>> {
        first_mismatch(self.result()?, other.result()?)
            .map(|m| serde_json::to_string(&m).map_err(|e| Error::from_reason(e.to_string())))
            .transpose()
    }

    /// `[{ txHash, result }]` (geth's `debug_traceBlockByNumber` answer) when the execution
    /// traced its transactions; null otherwise.
    #[napi(getter)]
    pub fn traces_json(&self) -> Option<String> {
        self.traces.clone()
    }

    /// The receipts as a JSON array.
    #[napi]
    pub fn receipts_json(&self) -> napi::Result<String> {
        serde_json::to_string(&self.result()?.receipts).map_err(|e| Error::from_reason(e.to_string()))
    }

    /// The post-state diff as a JSON object keyed by address.
    #[napi]
    pub fn state_diff_json(&self) -> napi::Result<String> {
        serde_json::to_string(&self.result()?.state_diff).map_err(|e| Error::from_reason(e.to_string()))
    }
}

/// What an execution hands back to the JS thread: the summary, the result (absent when a partial
/// state missed keys, then their JSON), the native bytes it holds (`BlockResult::heap_bytes`),
/// and the traces' JSON.
type Executed = (String, Option<BlockResult>, Option<String>, i64, Option<String>);

/// A complete result as the JS thread takes it: its summary, and its traces as JSON (written
/// on the `threads` the execution used).
fn executed(result: BlockResult, traces: Option<Vec<parallel_evm_core::trace::TxTrace>>, threads: usize) -> Result<Executed, EngineError> {
    let traces = traces.map(|t| traces_to_json(t, threads)).transpose()?;
    let summary = serde_json::to_string(&Summary {
        number: result.number,
        hash: &result.hash,
        gas_used: result.gas_used,
        logs_bloom: &result.logs_bloom,
        warnings: &result.warnings,
        stats: &result.stats,
    })
    .map_err(|e| internal("the result summary", e))?;
    let held = (result.heap_bytes() + traces.as_ref().map_or(0, String::len)) as i64;
    Ok((summary, Some(result), None, held, traces))
}

impl ExecuteTask {
    fn run(&self) -> Outcome<Executed> {
        guarded(|| {
            let mode: ModeRequest = self.mode.parse().map_err(EngineError::InvalidInput)?;
            let options = ExecuteOptions { chain: (*self.chain).clone(), mode, threads: self.threads, receipts_root: false };
            let config = self.trace.as_deref().map(|t| TraceConfig::from_json(t.as_bytes())).transpose()?;
            let missing = |keys| -> Result<Executed, EngineError> {
                let json = serde_json::to_string(&keys).map_err(|e| internal("the missing keys", e))?;
                Ok(("null".to_owned(), None, Some(json), 0, None))
            };
            let (result, traces) = match (&self.state, &config) {
                (StateHandle::Full(state), None) => (execute_block(&self.block, &**state, &options)?, None),
                (StateHandle::Witness(state), config) => {
                    state.check_parent(self.block.parent_hash)?;
                    match config {
                        None => (execute_block(&self.block, &**state, &options)?, None),
                        Some(config) => {
                            let (result, traces) = execute_block_traced(&self.block, &**state, &options, config)?;
                            (result, Some(traces))
                        }
                    }
                }
                (StateHandle::Full(state), Some(config)) => {
                    let (result, traces) = execute_block_traced(&self.block, &**state, &options, config)?;
                    (result, Some(traces))
                }
                (StateHandle::Partial(state), None) => match execute_partial(&self.block, state, &options)? {
                    PartialOutcome::Complete(result) => (result, None),
                    PartialOutcome::Missing(keys) => return missing(keys),
                },
                // The traces read through the partial state too: a key it lacks is reported.
                (StateHandle::Partial(state), Some(config)) => {
                    match run_partial(&self.block, state, &options, |s| execute_block_traced(&self.block, s, &options, config))? {
                        Ok((result, traces)) => (result, Some(traces)),
                        Err(keys) => return missing(keys),
                    }
                }
                (StateHandle::Carried(carried), config) => {
                    // The read guard must end before the write below: bound first, not matched on.
                    let outcome = core_run_carried(&self.block, &carried.read().unwrap_or_else(|e| e.into_inner()), |s| match config {
                        None => execute_block(&self.block, s, &options).map(|r| (r, None)),
                        Some(config) => execute_block_traced(&self.block, s, &options, config).map(|(r, t)| (r, Some(t))),
                    })?;
                    match outcome {
                        Ok((result, traces)) => {
                            // Advanced here, on the runner thread: the next block finds it ready.
                            carried.write().unwrap_or_else(|e| e.into_inner()).apply(
                                self.block.number,
                                self.block.hash,
                                &result.state_diff,
                            );
                            (result, traces)
                        }
                        Err(keys) => return missing(keys),
                    }
                }
            };
            executed(result, traces, tracing_threads(&options))
        })
    }

    /// The output object, built on the JS thread.
    fn settle(self, env: Env, outcome: Outcome<Executed>) -> napi::Result<ExecutionOutput> {
        let ExecuteTask { block, chain, state, .. } = self;
        let witness = match state {
            StateHandle::Witness(w) => Some(w),
            _ => None,
        };
        settle!(env, outcome, |(summary, result, missing, held, traces): Executed| {
            // Only what V8 accepted is given back on finalize.
            let external = match held {
                0 => 0,
                n => env.adjust_external_memory(n).map_or(0, |_| n),
            };
            ExecutionOutput {
                summary,
                result: result.map(Arc::new),
                missing,
                traces,
                witness,
                block,
                chain,
                checks: std::sync::OnceLock::new(),
                external,
            }
        })
    }
}

pub struct CheckReportTask {
    block: Arc<BlockInput>,
    chain: Arc<ChainSpec>,
    result: Arc<BlockResult>,
    state: Option<Arc<InMemoryStorage>>,
    witness: Option<Arc<WitnessState>>,
}

impl Task for CheckReportTask {
    type Output = Outcome<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let checks = match (&self.state, &self.witness) {
                (None, Some(w)) => check_report_witness(&self.block, &self.chain, &self.result, w)?,
                (state, _) => check_report(&self.block, &self.chain, &self.result, state.as_deref())?,
            };
            serde_json::to_string(&checks).map_err(|e| internal("the check report", e))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |s| s)
    }
}

/// Runs `work` on one of the engine's runner threads rather than libuv's pool (see
/// `parallel_evm_core::engine::runner`) and settles the returned promise with `settle` on the JS thread.
/// `work` reports its failures through `guarded`; a panic that escapes it still rejects, as a
/// promise left pending would keep the event loop alive for good.
fn spawn_settled<'env, T, V>(
    env: &'env Env,
    work: impl FnOnce() -> T + Send + 'static,
    settle: impl FnOnce(Env, T) -> napi::Result<V> + Send + 'static,
) -> napi::Result<Object<'env>>
where
    T: Send + 'static,
    V: napi::bindgen_prelude::ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    // Taken out exactly once: by the job, or here when no thread could be started for it.
    let slot = Arc::new(Mutex::new(Some(deferred)));
    let job_slot = slot.clone();
    let started = runner::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        if let Some(deferred) = job_slot.lock().ok().and_then(|mut d| d.take()) {
            match out {
                Ok(out) => deferred.resolve(move |env| settle(env, out)),
                Err(_) => deferred.reject(Error::from_reason("panic in the engine outside its guard")),
            }
        }
    });
    if let Err(e) = started {
        if let Some(deferred) = slot.lock().ok().and_then(|mut d| d.take()) {
            deferred.reject(Error::from_reason(format!("cannot start a thread for the execution: {e}")));
        }
    }
    Ok(promise)
}

/// Executes a prepared block on a prepared state. `threads` 0 means all cores; `mode` is
/// `auto`, `sequential` or `parallel`. With `trace` (a geth tracer config as JSON), every
/// transaction is traced too (`ExecutionOutput.tracesJson`).
#[napi(ts_return_type = "Promise<ExecutionOutput>")]
pub fn execute<'env>(
    env: &'env Env,
    block: &PreparedBlock,
    state: &PreparedState,
    threads: u32,
    mode: String,
    trace: Option<String>,
) -> napi::Result<Object<'env>> {
    let task = ExecuteTask {
        block: block.block.clone(),
        chain: block.chain.clone(),
        state: state.state.clone(),
        threads: threads as usize,
        mode,
        trace,
    };
    spawn_settled(
        env,
        move || {
            let outcome = task.run();
            (task, outcome)
        },
        |env, (task, outcome)| task.settle(env, outcome),
    )
}

pub struct StateRootTask {
    state: StateHandle,
}

impl Task for StateRootTask {
    type Output = Outcome<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| match &self.state {
            StateHandle::Witness(w) => Ok(w.state_root.to_string()),
            StateHandle::Full(s) => Ok(pre_state_root(s)?.to_string()),
            _ => Err(EngineError::InvalidInput("a partial state is not the whole state".into())),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |s| s)
    }
}

/// The Merkle-Patricia root of a prepared state, taken as the whole state (`0x…`).
#[napi(ts_return_type = "Promise<string>")]
pub fn state_root(state: &PreparedState) -> napi::Result<AsyncTask<StateRootTask>> {
    match &state.state {
        StateHandle::Partial(_) | StateHandle::Carried(_) => Err(Error::from_reason("a partial state is not the whole state")),
        s => Ok(AsyncTask::new(StateRootTask { state: s.clone() })),
    }
}

/// The state a range replay carries from block to block (see `parallel_evm_core::state::carried`):
/// fetched keys are merged in, `executeCarried` runs a block on it and, when nothing was missing,
/// advances it past the block. Bounded by a byte budget (least recently used keys leave first).
#[napi]
pub struct CarriedState {
    inner: Arc<RwLock<CoreCarried>>,
}

#[napi]
impl CarriedState {
    /// `budgetBytes`: the most bytes it holds (default 256 MiB).
    #[napi(constructor)]
    pub fn new(budget_bytes: Option<f64>) -> napi::Result<Self> {
        let budget = match budget_bytes {
            None => DEFAULT_BUDGET_BYTES,
            Some(b) if b.is_finite() && b >= 0.0 => b as usize,
            Some(b) => return Err(Error::new(Status::InvalidArg, format!("budgetBytes must be a non-negative number, got {b}"))),
        };
        Ok(Self { inner: Arc::new(RwLock::new(CoreCarried::new(budget))) })
    }

    /// `{ accounts, slots, bytes, budget, blocks, carriedKeys, fetchedKeys, evictedAccounts, evictedSlots }`.
    #[napi]
    pub fn stats_json(&self) -> napi::Result<String> {
        serde_json::to_string(&self.inner.read().unwrap_or_else(|e| e.into_inner()).stats()).map_err(|e| Error::from_reason(e.to_string()))
    }

    /// Whether each account (balance, nonce, code) is carried; addresses that do not parse are not.
    #[napi]
    pub fn has_accounts(&self, addresses: Vec<String>) -> Vec<bool> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        addresses.iter().map(|a| a.parse::<alloy_primitives::Address>().is_ok_and(|a| state.has_account(&a))).collect()
    }

    /// The code of a carried account, or null (not carried, absent, or without code).
    #[napi]
    pub fn code_of(&self, address: String) -> Option<Buffer> {
        let address = address.parse::<alloy_primitives::Address>().ok()?;
        self.inner.read().unwrap_or_else(|e| e.into_inner()).code(&address).map(|c| Buffer::from(c.to_vec()))
    }

    /// Merges fetched keys (prestate JSON of existing accounts and slots, optional block hashes,
    /// `{ absent, completeStorage }`) off the JS thread. Resolves to `{ "new": n }`, or to
    /// `{ "mismatch": { address, field, key?, carried, fetched } }` when a fetched value differs
    /// from a carried one (nothing is merged then).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn merge(&self, prestate: Buffer, block_hashes: Option<Buffer>, knowledge: Buffer) -> AsyncTask<MergeTask> {
        AsyncTask::new(MergeTask { state: self.inner.clone(), prestate, block_hashes, knowledge })
    }
}

pub struct MergeTask {
    state: Arc<RwLock<CoreCarried>>,
    prestate: Buffer,
    block_hashes: Option<Buffer>,
    knowledge: Buffer,
}

impl Task for MergeTask {
    type Output = Outcome<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guarded(|| {
            let json = FetchedJson { prestate: &self.prestate, block_hashes: self.block_hashes.as_deref(), knowledge: &self.knowledge };
            let (fetched, knowledge) = json.parse()?;
            let merged = self.state.write().unwrap_or_else(|e| e.into_inner()).merge(&fetched, &knowledge)?;
            Ok(match merged {
                Ok(new) => format!("{{\"new\":{new}}}"),
                Err(m) => serde_json::json!({ "mismatch": m }).to_string(),
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle!(env, output, |s| s)
    }
}

/// Executes a prepared block on a carried state; a complete run advances the state past the
/// block before the promise settles. Missing keys come back as with a partial state. With
/// `trace` (a geth tracer config as JSON), every transaction is traced too.
#[napi(ts_return_type = "Promise<ExecutionOutput>")]
pub fn execute_carried<'env>(
    env: &'env Env,
    block: &PreparedBlock,
    state: &CarriedState,
    threads: u32,
    mode: String,
    trace: Option<String>,
) -> napi::Result<Object<'env>> {
    let task = ExecuteTask {
        block: block.block.clone(),
        chain: block.chain.clone(),
        state: StateHandle::Carried(state.inner.clone()),
        threads: threads as usize,
        mode,
        trace,
    };
    spawn_settled(
        env,
        move || {
            let outcome = task.run();
            (task, outcome)
        },
        |env, (task, outcome)| task.settle(env, outcome),
    )
}

/// One block queued for a run, with the keys fetched for it (JSON, as `CarriedState.merge` takes).
struct QueuedBlock {
    block: Arc<BlockInput>,
    chain: Arc<ChainSpec>,
    fetched: Option<(Buffer, Option<Buffer>, Buffer)>,
}

/// Consecutive blocks to run back to back on a carried state (`executeCarriedRun`), each with
/// the keys fetched for it. Filled by `add`, emptied by the run.
#[napi]
pub struct CarriedBlocks {
    queued: Mutex<Vec<QueuedBlock>>,
}

#[napi]
impl CarriedBlocks {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { queued: Mutex::new(Vec::new()) }
    }

    /// Queues `block` after the others; `prestate` and `knowledge` (with optional `blockHashes`)
    /// are keys to merge just before it runs, or absent when nothing was fetched for it.
    #[napi]
    pub fn add(
        &self,
        block: &PreparedBlock,
        prestate: Option<Buffer>,
        block_hashes: Option<Buffer>,
        knowledge: Option<Buffer>,
    ) -> napi::Result<()> {
        let fetched = match (prestate, knowledge) {
            (Some(p), Some(k)) => Some((p, block_hashes, k)),
            (None, None) if block_hashes.is_none() => None,
            _ => return Err(Error::new(Status::InvalidArg, "fetched keys need both prestate and knowledge".to_owned())),
        };
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).push(QueuedBlock {
            block: block.block.clone(),
            chain: block.chain.clone(),
            fetched,
        });
        Ok(())
    }

    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).len() as u32
    }
}

/// Per block of a run: how long it took and the carried state's stats after it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RunBlockInfo<'a> {
    execute_ms: f64,
    stats: &'a parallel_evm_core::state::carried::CarriedStats,
}

/// What a run gives back: the outputs of the blocks that completed, in order (plus, when it
/// stopped at a block that missed keys, that block's output), and `infoJson`.
#[napi]
pub struct CarriedRunOutput {
    outputs: Mutex<Vec<Option<ExecutionOutput>>>,
    info: String,
}

#[napi]
impl CarriedRunOutput {
    /// `{ blocks: [{ executeMs, stats }], stop: null | { executeMs, missing: true } |
    /// { executeMs, mismatch: { address, field, key?, carried, fetched } } |
    /// { executeMs, error: { code, message, txIndex? } } }`.
    #[napi(getter)]
    pub fn info_json(&self) -> String {
        self.info.clone()
    }

    /// How many outputs the run holds.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner()).len() as u32
    }

    /// The `index`-th output (taken: each is handed out once).
    #[napi]
    pub fn take(&self, index: u32) -> napi::Result<ExecutionOutput> {
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index as usize)
            .and_then(Option::take)
            .ok_or_else(|| Error::new(Status::InvalidArg, format!("no output {index} (or already taken)")))
    }
}

/// A run's results on the runner thread: per output its executed tuple and block, then the info.
type RunDone = (Vec<(Executed, Arc<BlockInput>, Arc<ChainSpec>)>, String);

/// Runs the queued blocks back to back on a carried state in one call (see
/// `parallel_evm_core::engine::carried::execute_carried_run`): each merges its fetched keys, runs
/// and advances the state, until one does not complete. Empties `blocks`.
#[napi(ts_return_type = "Promise<CarriedRunOutput>")]
pub fn execute_carried_run<'env>(
    env: &'env Env,
    blocks: &CarriedBlocks,
    state: &CarriedState,
    threads: u32,
    mode: String,
    trace: Option<String>,
) -> napi::Result<Object<'env>> {
    let queued = std::mem::take(&mut *blocks.queued.lock().unwrap_or_else(|e| e.into_inner()));
    let state = state.inner.clone();
    spawn_settled(
        env,
        move || {
            guarded(|| -> Result<RunDone, EngineError> {
                let mode: ModeRequest = mode.parse().map_err(EngineError::InvalidInput)?;
                let config = trace.as_deref().map(|t| TraceConfig::from_json(t.as_bytes())).transpose()?;
                let options: Vec<ExecuteOptions> = queued
                    .iter()
                    .map(|q| ExecuteOptions { chain: (*q.chain).clone(), mode, threads: threads as usize, receipts_root: false })
                    .collect();
                let steps: Vec<RunStep> = queued
                    .iter()
                    .map(|q| RunStep {
                        block: &q.block,
                        fetched: q.fetched.as_ref().map(|(p, h, k)| FetchedJson { prestate: p, block_hashes: h.as_deref(), knowledge: k }),
                    })
                    .collect();
                let run = core_execute_carried_run(&steps, &state, |i, s| match &config {
                    None => execute_block(&queued[i].block, s, &options[i]).map(|r| (r, None)),
                    Some(c) => execute_block_traced(&queued[i].block, s, &options[i], c).map(|(r, t)| (r, Some(t))),
                });
                let mut outputs = Vec::with_capacity(run.completed.len() + 1);
                let mut infos = Vec::with_capacity(run.completed.len());
                for (i, done) in run.completed.into_iter().enumerate() {
                    infos.push(
                        serde_json::to_value(RunBlockInfo { execute_ms: done.elapsed.as_secs_f64() * 1e3, stats: &done.stats })
                            .map_err(|e| internal("the run", e))?,
                    );
                    outputs.push((
                        executed(done.result, done.extra, tracing_threads(&options[i]))?,
                        queued[i].block.clone(),
                        queued[i].chain.clone(),
                    ));
                }
                let stop = match run.stop {
                    None => serde_json::Value::Null,
                    Some((stop, elapsed)) => {
                        let execute_ms = elapsed.as_secs_f64() * 1e3;
                        let at = &queued[outputs.len()];
                        match stop {
                            RunStop::Missing(keys) => {
                                let json = serde_json::to_string(&keys).map_err(|e| internal("the missing keys", e))?;
                                outputs.push((("null".to_owned(), None, Some(json), 0, None), at.block.clone(), at.chain.clone()));
                                serde_json::json!({ "executeMs": execute_ms, "missing": true })
                            }
                            RunStop::Mismatch(m) => serde_json::json!({ "executeMs": execute_ms, "mismatch": m }),
                            RunStop::Failed(e) => {
                                serde_json::json!({ "executeMs": execute_ms, "error": { "code": e.code(), "message": e.to_string(), "txIndex": e.tx_index() } })
                            }
                        }
                    }
                };
                let info = serde_json::json!({ "blocks": infos, "stop": stop }).to_string();
                Ok((outputs, info))
            })
        },
        |env, outcome| {
            settle!(env, outcome, |(outputs, info): RunDone| {
                let outputs = outputs
                    .into_iter()
                    .map(|((summary, result, missing, held, traces), block, chain)| {
                        // Only what V8 accepted is given back on finalize.
                        let external = match held {
                            0 => 0,
                            n => env.adjust_external_memory(n).map_or(0, |_| n),
                        };
                        Some(ExecutionOutput {
                            summary,
                            result: result.map(Arc::new),
                            missing,
                            traces,
                            witness: None,
                            block,
                            chain,
                            checks: std::sync::OnceLock::new(),
                            external,
                        })
                    })
                    .collect();
                CarriedRunOutput { outputs: Mutex::new(outputs), info }
            })
        },
    )
}

/// Threads the engine uses when asked for 0.
#[napi]
pub fn available_parallelism() -> u32 {
    available_threads() as u32
}

/// Debug hook: panics inside the same guarded runner-thread path that `execute` uses, so tests
/// can prove that a panic rejects with an Error instead of aborting the process.
#[napi(js_name = "__debugPanic", ts_return_type = "Promise<void>")]
pub fn debug_panic(env: &Env) -> napi::Result<Object<'_>> {
    spawn_settled(
        env,
        || guarded(|| -> Result<(), EngineError> { panic!("forced panic (debug hook)") }),
        |env, outcome| settle!(env, outcome, |_| ()),
    )
}
