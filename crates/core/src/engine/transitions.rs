//! State changes outside transactions: the EIP-4788 beacon-roots and EIP-2935 block-hash
//! history calls before the block; mining rewards, withdrawals and the EIP-7002 / EIP-7251
//! request queues after it. Both engines share them.

use crate::{
    block::chain::ChainSpec,
    block::BlockInput,
    engine::vm::{BlockVm, ExecError, ReadError, StateReader},
    error::EngineError,
    state::overlay::Overlay,
    state::storage::Storage,
    state::value::BasicValue,
    state::value::CodeValue,
    state::value::Loc,
    state::value::Value,
};
use alloy_eips::{eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS};
use alloy_primitives::{address, Address, Bytes, B256, U256};
use revm::primitives::hardfork::SpecId;

/// EIP-4788 beacon roots contract.
pub const BEACON_ROOTS_ADDRESS: Address = address!("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02");

/// EIP-2935 history storage contract (Prague): keeps the last 8191 block hashes.
pub const HISTORY_STORAGE_ADDRESS: Address = address!("0x0000F90827F1C53a10cb7A02335B175320002935");

/// Reads straight from an overlay over the pre-state (no concurrency).
pub struct OverlayReader<'a> {
    pub base: &'a dyn Storage,
    pub overlay: Overlay,
}

impl StateReader for OverlayReader<'_> {
    fn read(&mut self, loc: Loc) -> Result<Value, ReadError> {
        Ok(self.overlay.read(self.base, &loc)?)
    }
    fn read_account(&mut self, address: Address) -> Result<(Option<CodeValue>, Option<BasicValue>), ReadError> {
        Ok(self.overlay.account(self.base, address)?)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, ReadError> {
        self.base.block_hash(number).ok_or(ReadError::MissingBlockHash(number))
    }
}

/// Applies pre-block system calls and returns their writes.
pub fn pre_block(block: &BlockInput, chain: &ChainSpec, base: &dyn Storage) -> Result<Overlay, EngineError> {
    let mut overlay = Overlay::default();
    let spec = block.spec(chain);
    if let (true, Some(root)) = (spec.is_enabled_in(SpecId::CANCUN), block.parent_beacon_block_root) {
        system_call(block, chain, base, &mut overlay, BEACON_ROOTS_ADDRESS, root.0.into())?;
    }
    if spec.is_enabled_in(SpecId::PRAGUE) && block.number > 0 {
        system_call(block, chain, base, &mut overlay, HISTORY_STORAGE_ADDRESS, block.parent_hash.0.into())?;
    }
    Ok(overlay)
}

/// The contracts whose queues of requests (EIP-7685) the end of every Prague block drains, in
/// the order they are called: withdrawals (EIP-7002), then consolidations (EIP-7251).
pub const REQUEST_CONTRACTS: [Address; 2] = [WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS];

/// What a system call did.
pub enum SystemCall {
    /// The contract has no code in the pre-state, so nothing ran: fixtures' pre-states hold only
    /// what the block's transactions touched.
    NotDeployed,
    /// It reverted or halted (its writes are still applied, as revm leaves them).
    Failed,
    Succeeded(Bytes),
}

/// A system call applied to `overlay`.
fn system_call(
    block: &BlockInput,
    chain: &ChainSpec,
    base: &dyn Storage,
    overlay: &mut Overlay,
    contract: Address,
    data: Bytes,
) -> Result<SystemCall, EngineError> {
    let Value::Code(code) = overlay.read(base, &Loc::Code(contract))? else { unreachable!() };
    if code.is_none() {
        return Ok(SystemCall::NotDeployed);
    }
    let mut vm = BlockVm::new(block, chain, OverlayReader { base, overlay: std::mem::take(overlay) }).sharing_code();
    let (out, output) = vm.system_call(contract, data).map_err(|e| match e {
        ExecError::Fatal(e) => e,
        ExecError::Blocked(_) => EngineError::Internal("system call blocked".into()),
    })?;
    *overlay = std::mem::take(&mut vm.reader_mut().overlay);
    for (loc, value) in out.writes {
        overlay.apply(base, loc, value)?;
    }
    Ok(output.map_or(SystemCall::Failed, SystemCall::Succeeded))
}

/// Applies block/uncle rewards (before the Merge) and withdrawals (Shanghai). Returns warnings
/// for what could not be applied.
/// Every account `post_block` may change.
pub fn post_block_accounts(block: &BlockInput, chain: &ChainSpec) -> rustc_hash::FxHashSet<alloy_primitives::Address> {
    let mut open: rustc_hash::FxHashSet<_> = block.withdrawals.iter().map(|w| w.address).collect();
    open.insert(block.beneficiary);
    open.extend(block.uncles.iter().flatten().map(|u| u.miner));
    if block.spec(chain).is_enabled_in(SpecId::PRAGUE) {
        open.extend(REQUEST_CONTRACTS);
    }
    open
}

/// What `post_block` leaves besides the state: warnings, and from Prague what the request
/// queues returned (withdrawals, consolidations), when both contracts are in the pre-state.
pub struct PostBlock {
    pub warnings: Vec<String>,
    pub request_queues: Option<[Bytes; 2]>,
}

pub fn post_block(block: &BlockInput, chain: &ChainSpec, base: &dyn Storage, overlay: &mut Overlay) -> Result<PostBlock, EngineError> {
    let mut warnings = Vec::new();
    let spec = block.spec(chain);
    let reward = ChainSpec::block_reward(spec);
    if !reward.is_zero() {
        let n_uncles = U256::from(block.uncle_hashes.len());
        overlay.add_balance(base, block.beneficiary, reward + (reward >> 5) * n_uncles)?;
        match &block.uncles {
            Some(uncles) => {
                for u in uncles {
                    let depth = U256::from(8u64 + u.number).saturating_sub(U256::from(block.number));
                    overlay.add_balance(base, u.miner, (reward * depth) >> 3)?;
                }
            }
            None if !block.uncle_hashes.is_empty() => warnings.push(format!(
                "block has {} uncle(s) but no uncleHeaders: uncle miners' rewards are not in the state diff",
                block.uncle_hashes.len()
            )),
            None => {}
        }
        if spec == SpecId::HOMESTEAD && block.number == 1_920_000 && chain.chain_id == 1 {
            warnings.push("the DAO fork's irregular state change is not applied".into());
        }
    }
    for w in &block.withdrawals {
        if w.amount_gwei > 0 {
            overlay.add_balance(base, w.address, U256::from(w.amount_gwei) * U256::from(1_000_000_000u64))?;
        }
    }
    // Each call dequeues the block's requests and updates the contract's fee excess (EIP-7002,
    // EIP-7251). A call that fails makes the block invalid.
    let mut request_queues = None;
    if spec.is_enabled_in(SpecId::PRAGUE) {
        let mut outputs = Vec::with_capacity(2);
        for contract in REQUEST_CONTRACTS {
            match system_call(block, chain, base, overlay, contract, Bytes::new())? {
                SystemCall::Succeeded(output) => outputs.push(output),
                SystemCall::NotDeployed => {}
                SystemCall::Failed => {
                    return Err(EngineError::InvalidBlock(format!("the end-of-block call to the request contract {contract} failed")))
                }
            }
        }
        request_queues = <[Bytes; 2]>::try_from(outputs).ok();
    }
    Ok(PostBlock { warnings, request_queues })
}
