//! The revm bridge: a `Database` that reads through a `StateReader` (block overlay for the
//! sequential engine, multi-version memory for the parallel one), and the conversion of one
//! transaction's effects into location writes.
//!
//! Lazy updates: with `lazy` on, the beneficiary is not credited inside revm (its fee becomes a
//! balance delta unless the transaction really touched it), and the receiver of a value
//! transfer to a code-less account is credited through a delta without reading its balance.
//! Neither then serialises the block. Rich contracts' balances (`lazy_balance`) and contended
//! storage slots (`lazy_storage`) can be handled lazily too.

use crate::{
    block::chain::ChainSpec,
    block::TxIdx,
    block::{BlockInput, TxInput},
    engine::fast_paths::lazy_balance::{self, LazyState, LazyUse},
    engine::fast_paths::lazy_storage::{self, SlotUse, TaintState},
    engine::inspected::{self, InRunTrace, InRunTracer},
    error::EngineError,
    state::storage::StorageError,
    state::value::BasicValue,
    state::value::CodeValue,
    state::value::Loc,
    state::value::Value,
    state::value::WriteValue,
};
use alloy_primitives::{Address, Log, B256, KECCAK256_EMPTY, U256};
use revm::{
    bytecode::Bytecode,
    context::{
        result::{EVMError, ExecutionResult, Output},
        ContextSetters,
    },
    database_interface::DBErrorMarker,
    handler::{evm::FrameTr, EthFrame, EvmTr, FrameResult, Handler, MainnetHandler},
    inspector::InspectorHandler,
    interpreter::interpreter::EthInterpreter,
    primitives::hardfork::SpecId,
    state::{AccountInfo, EvmState},
    Context, Database, ExecuteEvm, MainBuilder, MainContext,
};
use rustc_hash::FxHashMap;

/// Why a read could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The location holds an ESTIMATE of this transaction: wait for it.
    #[error("blocked by transaction {0}")]
    Blocked(TxIdx),
    #[error("missing block hash for block {0}")]
    MissingBlockHash(u64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl DBErrorMarker for ReadError {}

/// Source of values for one transaction's execution.
pub trait StateReader {
    fn read(&mut self, loc: Loc) -> Result<Value, ReadError>;
    /// An account's code and then its balance and nonce: `read` of `Loc::Code` and of
    /// `Loc::Basic`, in that order, which a reader may serve with one lookup of the account.
    fn read_account(&mut self, address: Address) -> Result<(Option<CodeValue>, Option<BasicValue>), ReadError> {
        let Value::Code(code) = self.read(Loc::Code(address))? else { unreachable!("code location yields a code value") };
        let Value::Basic(basic) = self.read(Loc::Basic(address))? else { unreachable!("basic location yields a basic value") };
        Ok((code, basic))
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError>;
    /// For an account worth handling lazily (`lazy_balance`), its value before the block's
    /// transactions (not recorded as a read); `None` otherwise or where the reader cannot say.
    fn lazy_candidate(&mut self, _address: Address) -> Option<Option<BasicValue>> {
        None
    }
    /// The block's beneficiary's value before the block's transactions (not recorded as a
    /// read), when payments to it may be credited lazily in this execution (see
    /// `lazy_balance`); `None` otherwise.
    fn lazy_beneficiary(&mut self, _address: Address) -> Option<Option<BasicValue>> {
        None
    }
    /// An execution looked at the balance of `address`, handled lazily: stop doing so.
    fn lazy_balance_seen(&mut self, _address: Address) {}
    /// Forgets the reads recorded since the execution started (it is run again).
    fn discard_reads(&mut self) {}
    /// For a slot worth handling lazily (`lazy_storage`), its value, read without recording the
    /// read; `None` otherwise.
    fn lazy_slot(&mut self, _loc: Loc) -> Option<Result<Value, ReadError>> {
        None
    }
    /// Whether any slot may be handled lazily (then executions are tracked).
    fn lazy_slots_possible(&self) -> bool {
        false
    }
    /// An execution used the lazy value of `loc` in a way its checks cannot capture.
    fn lazy_slot_seen(&mut self, _loc: Loc) {}
    /// Records a lazily read slot, with its checks, among the execution's reads.
    fn record_lazy_slot(&mut self, _slot: SlotUse) {}
}

/// revm `Database` over a `StateReader`.
pub struct VmDb<R> {
    pub reader: R,
    /// Receiver to credit lazily, if it turns out to hold no code.
    lazy_receiver: Option<Address>,
    lazy_receiver_applied: bool,
    /// What `basic` returned per address, to write only what changed.
    basic_reads: FxHashMap<Address, Option<BasicValue>>,
    /// This worker's own empty code. revm's `Bytecode::default()` clones one process-wide
    /// `Arc`, whose reference count then bounces between cores on every account load.
    empty_code: Bytecode,
    /// This worker's copies of the code it ran, by hash; `None` on a single thread, where the
    /// pre-state's own code is handed to revm (copying it cost the sequential engine a copy of
    /// every contract the block called, each block).
    code_copies: Option<FxHashMap<B256, Bytecode>>,
    /// The parent block's hash is always known from the header.
    parent: Option<(u64, B256)>,
    /// First read failure of this execution. revm does not surface every database error
    /// (BLOCKHASH, for one, carries on with a zero hash), so the outcome of an execution that
    /// saw one is discarded whatever revm returned.
    failure: Option<ReadError>,
    /// Contracts whose balance this execution handles lazily (see `lazy_balance`).
    pub lazy: LazyState,
    /// The transaction's sender, never handled lazily, and the block's beneficiary, handled
    /// lazily only as `StateReader::lazy_beneficiary` allows.
    not_lazy: [Address; 2],
    /// Slots this execution reads lazily (see `lazy_storage`).
    pub taint: TaintState,
}

impl<R: StateReader> VmDb<R> {
    /// revm clones an account's code several times per load and drop; handing it this
    /// worker's own copy keeps those reference counts off the other cores.
    fn account_info(&mut self, basic: BasicValue, code: Option<CodeValue>) -> AccountInfo {
        match code {
            Some(c) => {
                let code = match self.code_copies.as_mut() {
                    Some(copies) => copies.entry(c.hash).or_insert_with(|| worker_copy(&c.code)).clone(),
                    None => c.code,
                };
                AccountInfo::new(basic.balance, basic.nonce, c.hash, code)
            }
            None => AccountInfo::new(basic.balance, basic.nonce, KECCAK256_EMPTY, self.empty_code.clone()),
        }
    }

    fn read(&mut self, loc: Loc) -> Result<Value, ReadError> {
        self.reader.read(loc).map_err(|e| self.fail(e))
    }

    /// Remembers the first failure of this execution and passes it on to revm.
    fn fail(&mut self, e: ReadError) -> ReadError {
        self.failure.get_or_insert_with(|| e.clone());
        e
    }

    /// Resets the per-execution state before revm runs.
    fn begin(&mut self, lazy_receiver: Option<Address>, lazy_balances: bool, lazy_slots: bool, caller: Address) {
        self.taint.begin(lazy_slots);
        self.basic_reads.clear();
        self.failure = None;
        self.lazy_receiver = lazy_receiver;
        self.lazy_receiver_applied = false;
        self.lazy.begin(lazy_balances);
        self.not_lazy[0] = caller;
    }

    /// A contract holding enough ether before the block, or the beneficiary when the
    /// transaction pays it directly, handed to revm with a synthetic balance instead of being
    /// read (see `lazy_balance`).
    fn lazy_contract(&mut self, address: Address, code: &Option<CodeValue>) -> Option<AccountInfo> {
        if !self.lazy.enabled || address == self.not_lazy[0] {
            return None;
        }
        let (before, needed) = if address == self.not_lazy[1] {
            // Without code the beneficiary cannot pay out of its balance here; it must hold at
            // least one wei, so that it is not empty as it was not for revm (an empty receiver
            // of value costs extra gas).
            if code.is_some() {
                return None;
            }
            let before = self.reader.lazy_beneficiary(address)??;
            (before, U256::from(1))
        } else {
            if code.as_ref()?.code.is_eip7702() {
                return None;
            }
            let before = self.reader.lazy_candidate(address)??;
            if before.balance < lazy_balance::MIN_BALANCE {
                return None;
            }
            (before, U256::ZERO)
        };
        self.lazy.uses.push(LazyUse { address, nonce: before.nonce, paid_out: needed });
        let synthetic = BasicValue { balance: lazy_balance::SYNTHETIC_BALANCE, nonce: before.nonce };
        Some(self.account_info(synthetic, code.clone()))
    }
}

impl<R: StateReader> lazy_balance::LazyHost for Ctx<R> {
    fn lazy(&mut self) -> &mut LazyState {
        &mut self.journaled_state.database.lazy
    }
}

impl<R: StateReader> lazy_storage::TaintHost for Ctx<R> {
    fn taint_state(&mut self) -> &mut TaintState {
        &mut self.journaled_state.database.taint
    }

    fn depth(&self) -> usize {
        self.journaled_state.inner.depth
    }

    fn present(&self, address: Address, key: U256) -> Option<U256> {
        self.journaled_state.inner.state.get(&address)?.storage.get(&key).map(|s| s.present_value)
    }
}

/// An empty code object of our own, equal to revm's default (one STOP, no jump destinations)
/// but behind a separate `Arc`. revm's constructors hand every caller the same process-wide
/// `Arc` for empty code, and its reference count, touched on every account load and drop,
/// made two workers run no faster than one.
pub(crate) fn own_empty_code() -> Bytecode {
    // SAFETY: the same parts revm's own default is built from: the code is the single STOP
    // revm pads empty code with, and an empty jump table covers the original length of 0.
    unsafe {
        Bytecode::new_analyzed(
            alloy_primitives::Bytes::from_static(&[revm::bytecode::opcode::STOP]),
            0,
            revm::bytecode::JumpTable::default(),
        )
    }
}

/// A copy of `code` behind its own `Arc` (same bytes, same analysis), for one worker's use.
pub(crate) fn worker_copy(code: &Bytecode) -> Bytecode {
    if let Some(address) = code.eip7702_address() {
        return Bytecode::new_eip7702(address);
    }
    match code.legacy_jump_table() {
        // SAFETY: the padded code, original length and jump table of `code`, which revm built
        // and checked; copying them does not change their relation.
        Some(table) => unsafe {
            Bytecode::new_analyzed(
                alloy_primitives::Bytes::copy_from_slice(code.bytes_slice()),
                code.original_byte_slice().len(),
                table.clone(),
            )
        },
        None => code.clone(),
    }
}

impl<R: StateReader> Database for VmDb<R> {
    type Error = ReadError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ReadError> {
        if self.lazy_receiver.is_none() && !self.lazy.enabled {
            // Neither lazy path applies: code and balance in one lookup of the account.
            let (code, basic) = self.reader.read_account(address).map_err(|e| self.fail(e))?;
            self.basic_reads.insert(address, basic);
            if basic.is_none() && code.is_none() {
                return Ok(None);
            }
            return Ok(Some(self.account_info(basic.unwrap_or_default(), code)));
        }
        let Value::Code(code) = self.read(Loc::Code(address))? else { unreachable!() };
        if self.lazy_receiver == Some(address) && code.is_none() {
            // Balance and nonce are neither read nor needed: only the credit is recorded.
            self.lazy_receiver_applied = true;
            return Ok(Some(self.account_info(BasicValue::default(), None)));
        }
        if let Some(info) = self.lazy_contract(address, &code) {
            return Ok(Some(info));
        }
        let Value::Basic(basic) = self.read(Loc::Basic(address))? else { unreachable!() };
        self.basic_reads.insert(address, basic);
        if basic.is_none() && code.is_none() {
            return Ok(None);
        }
        Ok(Some(self.account_info(basic.unwrap_or_default(), code)))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ReadError> {
        // `basic` always hands revm the code itself, so revm never asks by hash.
        Err(self.fail(ReadError::Storage(StorageError::Other(format!("code by hash {code_hash} requested")))))
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, ReadError> {
        let loc = Loc::Storage(address, index);
        if self.taint.accepts() {
            if let Some(value) = self.reader.lazy_slot(loc) {
                let Value::Storage(seen) = value.map_err(|e| self.fail(e))? else { unreachable!() };
                self.taint.slots.push(SlotUse { loc, seen, checks: Vec::new() });
                return Ok(seen);
            }
        }
        let Value::Storage(v) = self.read(loc)? else { unreachable!() };
        Ok(v)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError> {
        if let Some((n, hash)) = self.parent {
            if n == number {
                return Ok(hash);
            }
        }
        self.reader.block_hash(number).map_err(|e| self.fail(e))
    }
}

type Ctx<R> = revm::handler::MainnetContext<VmDb<R>>;
/// The inspector is revm-inspectors' own: its no-op variant unless the VM traces
/// (`engine::inspected`); untraced runs never call it.
type Evm<R> = revm::handler::MainnetEvm<Ctx<R>, revm_inspectors::tracing::DebugInspector>;
type Error = EVMError<ReadError>;

/// Mainnet handler that leaves the beneficiary alone; the fee is applied as a lazy update.
struct LazyRewardHandler<R: StateReader>(MainnetHandler<Evm<R>, Error, EthFrame<EthInterpreter>>);

impl<R: StateReader> Handler for LazyRewardHandler<R> {
    type Evm = Evm<R>;
    type Error = Error;
    type HaltReason = revm::context::result::HaltReason;

    fn reward_beneficiary(
        &self,
        _evm: &mut Self::Evm,
        _exec_result: &mut <<Self::Evm as EvmTr>::Frame as FrameTr>::FrameResult,
    ) -> Result<(), Self::Error> {
        let _: Option<&FrameResult> = None;
        Ok(())
    }
}

impl<R: StateReader> InspectorHandler for LazyRewardHandler<R> {
    type IT = EthInterpreter;
}

/// Receipt-level result of one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct TxResult {
    pub success: bool,
    pub gas_used: u64,
    pub logs: Vec<Log>,
    /// Computed where the transaction ran, so parallel workers share the hashing; boxed and
    /// absent without logs, so results stay small as they move between workers and receipts.
    pub logs_bloom: Option<Box<alloy_primitives::Bloom>>,
    pub contract_address: Option<Address>,
}

/// Everything one execution of a transaction produced.
#[derive(Clone, Debug, Default)]
pub struct TxOutcome {
    /// `Err(reason)`: the transaction is invalid (the block is invalid if this stands).
    pub result: Option<Result<TxResult, String>>,
    pub writes: Vec<(Loc, WriteValue)>,
    /// Lazy updates could not represent this transaction's effects exactly.
    pub hazard: bool,
    /// A failure that is not the transaction's fault (missing data, engine bug).
    pub fatal: Option<EngineError>,
    /// The sender's nonce and balance were not read (`WriteValue::SenderDelta`): the
    /// transaction stands only once `sender_check` passes on its final pre-transaction value.
    pub deferred_sender: bool,
    /// Contracts whose balance was handled lazily: the transaction stands only if each admits
    /// it (`LazyUse::admits`) with its final pre-transaction value.
    pub lazy_balances: Vec<LazyUse>,
}

impl TxOutcome {
    /// An execution that failed for a reason that is not the transaction's (kept with its reads
    /// so validation can decide whether it stands).
    pub fn failed(e: EngineError) -> Self {
        Self { result: Some(Err(e.to_string())), fatal: Some(e), ..Default::default() }
    }
}

/// Failure to execute a transaction at all.
#[derive(Debug)]
pub enum ExecError {
    Blocked(TxIdx),
    Fatal(EngineError),
}

fn read_failure(e: ReadError) -> ExecError {
    match e {
        ReadError::Blocked(j) => ExecError::Blocked(j),
        ReadError::MissingBlockHash(n) => ExecError::Fatal(EngineError::MissingBlockHash(n)),
        ReadError::Storage(e) => ExecError::Fatal(e.into()),
    }
}

/// How lazy execution treats simple value transfers (`TxInput::simple_transfer_to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimpleTransfers {
    /// Through revm like every transaction.
    Interpreted,
    /// Computed directly, the sender's nonce and balance read and checked at once.
    Direct,
    /// Computed directly without reading the sender: it gets a `SenderDelta` and the outcome
    /// is marked `deferred_sender`.
    DirectDeferred,
}

/// Gas of a value transfer that runs no code (intrinsic gas, every fork so far).
const TRANSFER_GAS: u64 = 21_000;

/// The slots an execution changed in `address`'s storage, as writes.
fn storage_writes<'a>(address: Address, acc: &'a revm::state::Account) -> impl Iterator<Item = (Loc, WriteValue)> + 'a {
    acc.storage
        .iter()
        .filter(|(_, value)| value.is_changed())
        .map(move |(slot, value)| (Loc::Storage(address, *slot), WriteValue::Storage(value.present_value)))
}

/// The receiver of a transaction that lazy execution computes directly when neither side
/// holds code (`BlockVm::simple_transfer`): a simple transfer (`TxInput::simple_transfer_to`)
/// in a fork up to Osaka (later ones price transfers by what they touch, EIP-2780) that pays
/// the beneficiary a fee or involves it (a zero reward still touches the beneficiary: created
/// before EIP-161, removed when empty after it; revm says what that does).
pub fn direct_transfer_to(tx: &TxInput, beneficiary: Address, basefee: u128, spec: SpecId) -> Option<Address> {
    let to = tx.simple_transfer_to()?;
    if spec > SpecId::OSAKA {
        return None;
    }
    let involved = beneficiary == to || beneficiary == tx.env.caller;
    (involved || coinbase_price(&tx.env, spec, basefee) > 0).then_some(to)
}

/// What the beneficiary earns per unit of gas.
fn coinbase_price(tx: &revm::context::TxEnv, spec: SpecId, basefee: u128) -> u128 {
    use revm::context_interface::Transaction as _;
    let egp = tx.effective_gas_price(basefee);
    if spec.is_enabled_in(SpecId::LONDON) {
        egp.saturating_sub(basefee)
    } else {
        egp
    }
}

/// Whether the sender's nonce, code and balance before a transaction admit it, by revm's own
/// rules (for outcomes with `deferred_sender`).
pub fn sender_check(tx: &TxInput, before: Option<BasicValue>) -> bool {
    use revm::context_interface::Transaction as _;
    let b = before.unwrap_or_default();
    let info = AccountInfo { balance: b.balance, nonce: b.nonce, ..Default::default() };
    revm::handler::pre_execution::validate_account_nonce_and_code(&info, tx.env.nonce, false, false).is_ok()
        && tx.env.ensure_enough_balance(b.balance).is_ok()
}

/// A revm instance for one block, reused across transactions.
pub struct BlockVm<R: StateReader> {
    evm: Evm<R>,
    spec: SpecId,
    beneficiary: Address,
    basefee: u128,
    blooms: crate::verify::bloom::BloomHasher,
    simple_transfers: SimpleTransfers,
    lazy_balances: bool,
    /// The instructions not in use: tracked ones (`lazy_storage`) while untracked ones run, or
    /// the reverse; `None` without lazy slots.
    other_instructions: Option<revm::handler::instructions::EthInstructions<EthInterpreter, Ctx<R>>>,
    tracked: bool,
    /// Set when this VM's executions are traced as they run (`with_tracing`).
    tracer: Option<Box<InRunTracer>>,
}

impl<R: StateReader> BlockVm<R> {
    pub fn new(block: &BlockInput, chain: &ChainSpec, reader: R) -> Self {
        let db = VmDb {
            reader,
            lazy_receiver: None,
            lazy_receiver_applied: false,
            basic_reads: FxHashMap::default(),
            parent: block.number.checked_sub(1).map(|n| (n, block.parent_hash)),
            empty_code: own_empty_code(),
            code_copies: Some(FxHashMap::default()),
            failure: None,
            lazy: LazyState::default(),
            not_lazy: [Address::ZERO, block.beneficiary],
            taint: TaintState::default(),
        };
        let evm = Context::mainnet()
            .with_db(db)
            .with_cfg(block.cfg_env(chain))
            .with_block(block.block_env(chain))
            .build_mainnet_with_inspector(inspected::idle());
        Self {
            evm,
            spec: block.spec(chain),
            beneficiary: block.beneficiary,
            basefee: block.base_fee.unwrap_or(0) as u128,
            blooms: Default::default(),
            simple_transfers: SimpleTransfers::Interpreted,
            lazy_balances: false,
            other_instructions: None,
            tracked: false,
            tracer: None,
        }
    }

    /// For a run on one thread: revm gets the pre-state's code itself, not this worker's copy
    /// (see `VmDb::code_copies`).
    pub fn sharing_code(mut self) -> Self {
        self.evm.ctx.journaled_state.database.code_copies = None;
        self
    }

    /// Traces every execution this VM runs (`engine::inspected`): for engines that run each
    /// transaction once, on its final pre-state. Simple transfers then go through revm too, so
    /// that the inspector sees them.
    pub fn with_tracing(mut self, tracer: InRunTracer) -> Self {
        self.tracer = Some(Box::new(tracer));
        self
    }

    /// The trace of the last transaction executed, when this VM traces.
    pub fn take_trace(&mut self) -> Option<InRunTrace> {
        self.tracer.as_mut().and_then(|t| t.take())
    }

    /// Lazy executions read contended slots lazily (see `lazy_storage`), once a slot has
    /// been contended in the block (until then, the untracked instructions run).
    pub fn with_lazy_slots(mut self) -> Self {
        let mut tracked = self.evm.instruction.clone();
        *tracked.instruction_table_mut() = lazy_storage::tracked_table::<Ctx<R>>();
        self.other_instructions = Some(tracked);
        self
    }

    /// Puts the tracked or the untracked instructions in place.
    fn track(&mut self, on: bool) {
        if on != self.tracked {
            if let Some(other) = self.other_instructions.as_mut() {
                std::mem::swap(&mut self.evm.instruction, other);
                self.tracked = on;
            }
        }
    }

    /// Lazy executions handle rich contracts' balances lazily (see `lazy_balance`).
    pub fn with_lazy_balances(mut self) -> Self {
        lazy_balance::install(self.evm.instruction.instruction_table_mut());
        self.lazy_balances = true;
        self
    }

    /// Lazy executions take simple transfers this way.
    pub fn with_simple_transfers(mut self, how: SimpleTransfers) -> Self {
        self.simple_transfers = how;
        self
    }

    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.evm.ctx.journaled_state.database.reader
    }

    pub fn spec(&self) -> SpecId {
        self.spec
    }

    /// A database error of the last run, which decides its outcome whatever revm returned;
    /// also clears the one revm may have kept in its context for the next run.
    fn take_failure(&mut self) -> Option<ExecError> {
        self.evm.ctx.error = Ok(());
        self.evm.ctx.journaled_state.database.failure.take().map(read_failure)
    }

    /// Runs transaction `index`, `tx`. With `lazy`, beneficiary fees and plain-transfer credits
    /// become balance deltas.
    pub fn execute(&mut self, index: TxIdx, tx: &TxInput, lazy: bool) -> Result<TxOutcome, ExecError> {
        // Direct transfers are exact on their own; deferred senders need a lazy execution.
        let direct = match self.simple_transfers {
            SimpleTransfers::Interpreted => false,
            SimpleTransfers::Direct => true,
            SimpleTransfers::DirectDeferred => lazy,
        };
        if direct && self.tracer.is_none() {
            if let Some(outcome) = self.simple_transfer(tx)? {
                return Ok(outcome);
            }
        }
        let lazy_receiver = if lazy { tx.is_plain_transfer_candidate().filter(|to| *to != self.beneficiary) } else { None };
        let mut lazy_balances = lazy && self.lazy_balances;
        let mut lazy_slots =
            lazy && self.other_instructions.is_some() && self.evm.ctx.journaled_state.database.reader.lazy_slots_possible();
        self.track(lazy_slots);
        let (result, state) = loop {
            self.evm.ctx.journaled_state.database.begin(lazy_receiver, lazy_balances, lazy_slots, tx.env.caller);
            self.evm.ctx.set_tx(tx.env.clone());
            let result = match &self.tracer {
                None if lazy => LazyRewardHandler(MainnetHandler::default()).run(&mut self.evm),
                None => MainnetHandler::default().run(&mut self.evm),
                Some(tracer) => {
                    self.evm.inspector = tracer.fresh().map_err(|e| ExecError::Fatal(EngineError::Internal(e)))?;
                    if lazy {
                        LazyRewardHandler(MainnetHandler::default()).inspect_run(&mut self.evm)
                    } else {
                        MainnetHandler::default().inspect_run(&mut self.evm)
                    }
                }
            };
            let state = self.evm.finalize();
            if let Some(failure) = self.take_failure() {
                return Err(failure);
            }
            let db = &mut self.evm.ctx.journaled_state.database;
            // A lazy balance was looked at, or its nonce moved: run again reading the accounts.
            for u in &db.lazy.uses {
                if state.get(&u.address).is_some_and(|a| a.info.nonce != u.nonce) && !db.lazy.observed.contains(&u.address) {
                    db.lazy.observed.push(u.address);
                }
            }
            if lazy_balances && !db.lazy.observed.is_empty() {
                for address in std::mem::take(&mut db.lazy.observed) {
                    db.reader.lazy_balance_seen(address);
                }
                db.reader.discard_reads();
                lazy_balances = false;
                continue;
            }
            // A lazy slot's value was used beyond what its checks capture: run again reading
            // the slots.
            if lazy_slots && db.taint.observed {
                for u in &db.taint.slots {
                    db.reader.lazy_slot_seen(u.loc);
                }
                db.reader.discard_reads();
                lazy_slots = false;
                continue;
            }
            break (result, state);
        };
        // Lazily read slots join the execution's reads with their checks, whatever its result.
        let db = &mut self.evm.ctx.journaled_state.database;
        let seen: Vec<(Loc, U256)> = db.taint.slots.iter().map(|u| (u.loc, u.seen)).collect();
        for u in std::mem::take(&mut db.taint.slots) {
            db.reader.record_lazy_slot(u);
        }
        match result {
            Ok(exec) => {
                let exec = match self.tracer.as_mut() {
                    Some(tracer) => tracer.finish(&mut self.evm.inspector, index, tx, exec),
                    None => exec,
                };
                let mut out = self.outcome(tx, exec, state, lazy);
                // What the transaction did to a lazy slot is added to whatever it holds.
                for (loc, write) in out.writes.iter_mut() {
                    if let (Some((_, before)), WriteValue::Storage(v)) = (seen.iter().find(|(l, _)| l == loc), &*write) {
                        *write = WriteValue::StorageDelta(v.wrapping_sub(*before));
                    }
                }
                Ok(out)
            }
            Err(EVMError::Transaction(e)) => Ok(TxOutcome { result: Some(Err(e.to_string())), ..Default::default() }),
            Err(EVMError::Database(e)) => Err(read_failure(e)),
            Err(EVMError::Header(e)) => Err(ExecError::Fatal(EngineError::InvalidBlock(e.to_string()))),
            Err(other) => Err(ExecError::Fatal(EngineError::Internal(other.to_string()))),
        }
    }

    /// A simple value transfer to an account without code runs no code: its effects follow
    /// from the transaction alone (21,000 gas, value and gas off the sender, value to the
    /// receiver, the fee to the beneficiary), without the interpreter or revm's account
    /// loading. revm's own checks judge the transaction; `None` when anything is unusual
    /// (receiver or sender with code, zero fee, a failing check), and revm then runs it.
    fn simple_transfer(&mut self, tx: &TxInput) -> Result<Option<TxOutcome>, ExecError> {
        use revm::context_interface::Transaction as _;
        let Some(to) = direct_transfer_to(tx, self.beneficiary, self.basefee, self.spec) else {
            return Ok(None);
        };
        let env = &tx.env;
        self.evm.ctx.set_tx(env.clone());
        let handler = MainnetHandler::<Evm<R>, Error, EthFrame<EthInterpreter>>::default();
        if handler.validate_env(&mut self.evm).is_err() {
            return Ok(None);
        }
        match handler.validate_initial_tx_gas(&mut self.evm) {
            Ok(g) if g.initial_regular_gas == TRANSFER_GAS && g.initial_state_gas == 0 && g.floor_gas <= TRANSFER_GAS => {}
            _ => return Ok(None),
        }
        let egp = env.effective_gas_price(self.basefee);
        let fee = U256::from(coinbase_price(env, self.spec, self.basefee)) * U256::from(TRANSFER_GAS);
        let Some(spent) = (U256::from(egp) * U256::from(TRANSFER_GAS)).checked_add(env.value) else {
            return Ok(None);
        };
        let (beneficiary, deferred) = (self.beneficiary, self.simple_transfers == SimpleTransfers::DirectDeferred);
        let reader = &mut self.evm.ctx.journaled_state.database.reader;
        for account in [to, env.caller] {
            if !matches!(reader.read(Loc::Code(account)).map_err(read_failure)?, Value::Code(None)) {
                return Ok(None);
            }
        }
        let own_fee = if env.caller == beneficiary { fee } else { U256::ZERO };
        let sender = if deferred {
            WriteValue::SenderDelta(spent - own_fee)
        } else {
            let Value::Basic(before) = reader.read(Loc::Basic(env.caller)).map_err(read_failure)? else {
                unreachable!("basic location yields a basic value")
            };
            if !sender_check(tx, before) {
                return Ok(None);
            }
            let b = before.unwrap_or_default();
            WriteValue::Basic(Some(BasicValue { balance: b.balance - spent + own_fee, nonce: b.nonce + 1 }))
        };
        let mut writes = Vec::with_capacity(3);
        writes.push((Loc::Basic(env.caller), sender));
        let to_fee = if to == beneficiary { fee } else { U256::ZERO };
        writes.push((Loc::Basic(to), WriteValue::BalanceDelta(env.value + to_fee)));
        if beneficiary != env.caller && beneficiary != to && !fee.is_zero() {
            writes.push((Loc::Basic(beneficiary), WriteValue::BalanceDelta(fee)));
        }
        let result = TxResult { success: true, gas_used: TRANSFER_GAS, logs: Vec::new(), logs_bloom: None, contract_address: None };
        Ok(Some(TxOutcome { result: Some(Ok(result)), writes, deferred_sender: deferred, ..Default::default() }))
    }

    fn outcome(&mut self, tx: &TxInput, exec: ExecutionResult, mut state: EvmState, lazy: bool) -> TxOutcome {
        let gas_used = exec.tx_gas_used();
        let result = match exec {
            ExecutionResult::Success { logs, output, .. } => {
                let contract_address = match output {
                    Output::Create(_, addr) => addr,
                    Output::Call(_) => None,
                };
                TxResult {
                    success: true,
                    gas_used,
                    logs_bloom: (!logs.is_empty()).then(|| Box::new(self.blooms.logs_bloom(&logs))),
                    logs,
                    contract_address,
                }
            }
            ExecutionResult::Revert { .. } | ExecutionResult::Halt { .. } => {
                TxResult { success: false, gas_used, logs: Vec::new(), logs_bloom: None, contract_address: None }
            }
        };
        let db = &self.evm.ctx.journaled_state.database;
        let mut out = TxOutcome { writes: Vec::with_capacity(state.len() * 2 + 1), ..Default::default() };
        if lazy {
            let egp = revm::context_interface::Transaction::effective_gas_price(&tx.env, self.basefee);
            let price = if self.spec.is_enabled_in(SpecId::LONDON) { egp.saturating_sub(self.basefee) } else { egp };
            let fee = U256::from(price) * U256::from(gas_used);
            if fee.is_zero() && !self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
                // Before EIP-161 a zero reward still creates an absent beneficiary; a delta
                // cannot say so.
                out.hazard = true;
            }
            if let Some(acc) = state.get_mut(&self.beneficiary) {
                // The transaction touched the beneficiary for real: credit it in place.
                if acc.is_selfdestructed() {
                    out.hazard = true;
                }
                if !fee.is_zero() {
                    acc.info.balance = acc.info.balance.saturating_add(fee);
                    acc.mark_touch();
                }
            } else if !fee.is_zero() {
                out.writes.push((Loc::Basic(self.beneficiary), WriteValue::BalanceDelta(fee)));
            }
        }
        let state_clear = self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        out.lazy_balances = db.lazy.uses.clone();
        for (address, acc) in state {
            if db.lazy.is_lazy(&address) {
                // Only the change to the synthetic balance is written; storage as usual.
                let balance = acc.info.balance;
                if balance > lazy_balance::SYNTHETIC_BALANCE {
                    out.writes.push((Loc::Basic(address), WriteValue::BalanceDelta(balance - lazy_balance::SYNTHETIC_BALANCE)));
                } else if balance < lazy_balance::SYNTHETIC_BALANCE {
                    out.writes.push((Loc::Basic(address), WriteValue::BalanceDebit(lazy_balance::SYNTHETIC_BALANCE - balance)));
                }
                out.writes.extend(storage_writes(address, &acc));
                continue;
            }
            if db.lazy_receiver_applied && db.lazy_receiver == Some(address) {
                if acc.is_selfdestructed() || !acc.storage.is_empty() {
                    out.hazard = true;
                }
                if !acc.info.balance.is_zero() {
                    out.writes.push((Loc::Basic(address), WriteValue::BalanceDelta(acc.info.balance)));
                }
                continue;
            }
            if !acc.is_touched() {
                continue;
            }
            let read = db.basic_reads.get(&address).copied();
            let had_code = acc.original_info().code_hash != KECCAK256_EMPTY && acc.original_info().code_hash != B256::ZERO;
            if acc.is_selfdestructed() {
                if read != Some(None) {
                    out.writes.push((Loc::Basic(address), WriteValue::Basic(None)));
                }
                if had_code || acc.is_created() || acc.info.code_hash != KECCAK256_EMPTY {
                    out.writes.push((Loc::Code(address), WriteValue::Code(None)));
                }
                if !acc.is_created() {
                    out.writes.push((Loc::Destruction(address), WriteValue::Destroyed));
                }
                continue;
            }
            if state_clear && acc.is_empty() {
                if matches!(read, Some(Some(_))) {
                    out.writes.push((Loc::Basic(address), WriteValue::Basic(None)));
                }
                continue;
            }
            let new = BasicValue { balance: acc.info.balance, nonce: acc.info.nonce };
            if read != Some(Some(new)) {
                out.writes.push((Loc::Basic(address), WriteValue::Basic(Some(new))));
            }
            // New code: a created contract's, or an EIP-7702 delegation set (or cleared) on an
            // existing account by an authorization.
            if acc.is_created() || acc.info.code_hash != acc.original_info().code_hash {
                match acc.info.code.as_ref().filter(|c| !c.is_empty() && acc.info.code_hash != KECCAK256_EMPTY) {
                    Some(code) => out.writes.push((
                        Loc::Code(address),
                        WriteValue::Code(Some(Box::new(CodeValue { hash: acc.info.code_hash, code: code.clone() }))),
                    )),
                    None if had_code => out.writes.push((Loc::Code(address), WriteValue::Code(None))),
                    None => {}
                }
            }
            out.writes.extend(storage_writes(address, &acc));
        }
        out.result = Some(Ok(result));
        out
    }

    /// Runs a system call (EIP-4788, EIP-2935, EIP-7002, EIP-7251) and returns the storage it
    /// wrote, with its output when it succeeded (`None`: it reverted or halted).
    pub fn system_call(
        &mut self,
        contract: Address,
        data: alloy_primitives::Bytes,
    ) -> Result<(TxOutcome, Option<alloy_primitives::Bytes>), ExecError> {
        use revm::SystemCallEvm;
        self.evm.ctx.journaled_state.database.begin(None, false, false, revm::handler::SYSTEM_ADDRESS);
        let result = self.evm.system_call_one(contract, data);
        let state = self.evm.finalize();
        if let Some(failure) = self.take_failure() {
            return Err(failure);
        }
        match result {
            Ok(result) => {
                let mut out = TxOutcome::default();
                for (address, acc) in state {
                    if address == revm::handler::SYSTEM_ADDRESS {
                        continue;
                    }
                    out.writes.extend(storage_writes(address, &acc));
                }
                let output = result.is_success().then(|| result.output().cloned().unwrap_or_default());
                Ok((out, output))
            }
            Err(EVMError::Database(e)) => Err(read_failure(e)),
            Err(e) => Err(ExecError::Fatal(EngineError::Internal(format!("system call to {contract}: {e}")))),
        }
    }
}
