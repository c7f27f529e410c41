//! Lazy balances of rich contracts. A contract like WETH has its ether balance changed by a large
//! share of a block's transactions (every wrap and unwrap), and each of those read-modify-writes
//! of one balance would chain them: in Block-STM they abort each other over and over. Yet
//! almost none of them *looks* at that balance: they only move ether in or out of it.
//!
//! So in lazy executions, a contract whose account has made an execution fail validation (it is
//! contended) and that held at least `MIN_BALANCE` before the block is handed to revm with a
//! synthetic balance (`SYNTHETIC_BALANCE`, too large for any payment to fail) and its
//! nonce from before the block, without reading its current account value. What the transaction
//! did to the balance becomes a delta, and what it needed from it is checked once the block's
//! final versions are known (`LazyUse::admits`). Instruction hooks watch what the interpreter
//! does with such a contract: payments out of it add to what it needed; reading its balance
//! (`BALANCE`, `SELFBALANCE`), `SELFDESTRUCT` and `CREATE` from it make the execution exact
//! again (it is re-run reading the account); after `MAX_SEEN` such executions the contract is
//! no longer handled lazily in the block.

use crate::state::value::BasicValue;
use alloy_primitives::{Address, U256};
use revm::{
    bytecode::opcode,
    interpreter::{
        instructions::utility::IntoAddress,
        instructions::{contract, host},
        interpreter::EthInterpreter,
        interpreter_types::InputsTr,
        Instruction, InstructionContext, InstructionExecResult,
    },
};

/// Contracts holding at least this much (1,000 ether) before the block are handled lazily.
pub const MIN_BALANCE: U256 = U256::from_limbs([0x3635c9adc5dea00000u128 as u64, 0x36, 0, 0]);

/// The balance revm sees for a lazily handled contract: no payment out of it can fail.
pub const SYNTHETIC_BALANCE: U256 = U256::from_limbs([0, 0, 0, 1 << 32]);

/// A contract handled lazily in one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LazyUse {
    pub address: Address,
    /// Its nonce before the block, which revm was given (a change would have been seen).
    pub nonce: u64,
    /// Ether paid out of it during the execution, reverted payments included: its real
    /// balance must have covered all of it for every payment to succeed as it did.
    pub paid_out: U256,
}

impl LazyUse {
    /// Whether the contract's real value right before the transaction gives the same execution.
    pub fn admits(&self, before: Option<BasicValue>) -> bool {
        before.is_some_and(|b| b.nonce == self.nonce && b.balance >= self.paid_out)
    }
}

/// What the hooks found in one execution.
#[derive(Debug, Default)]
pub struct LazyState {
    pub enabled: bool,
    pub uses: Vec<LazyUse>,
    /// Lazy contracts whose balance the execution looked at (or could change other than by
    /// payments): it must be run again, exactly.
    pub observed: Vec<Address>,
}

impl LazyState {
    pub fn begin(&mut self, enabled: bool) {
        self.enabled = enabled;
        self.uses.clear();
        self.observed.clear();
    }

    fn get_mut(&mut self, address: &Address) -> Option<&mut LazyUse> {
        self.uses.iter_mut().find(|u| u.address == *address)
    }

    pub fn is_lazy(&self, address: &Address) -> bool {
        self.uses.iter().any(|u| u.address == *address)
    }
}

/// The per-execution lazy state behind a hooked interpreter's host.
pub trait LazyHost {
    fn lazy(&mut self) -> &mut LazyState;
}

/// Counts per account (or slot) shared by a block's workers, kept per bucket of hashes (a
/// collision only costs laziness for some account, never exactness): how often an account
/// made an execution fail validation, and how often its lazy balance was looked at.
pub struct HashCounts(Vec<std::sync::atomic::AtomicU8>);

impl HashCounts {
    const BUCKETS: usize = 1 << 12;

    pub fn new() -> Self {
        Self((0..Self::BUCKETS).map(|_| Default::default()).collect())
    }

    fn bucket(&self, key: &impl std::hash::Hash) -> &std::sync::atomic::AtomicU8 {
        use std::hash::BuildHasher;
        &self.0[rustc_hash::FxBuildHasher.hash_one(key) as usize & (Self::BUCKETS - 1)]
    }

    /// Counts one more (saturating).
    pub fn add(&self, address: &impl std::hash::Hash) {
        let b = self.bucket(address);
        if b.load(std::sync::atomic::Ordering::Relaxed) < u8::MAX {
            b.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn get(&self, address: &impl std::hash::Hash) -> u8 {
        self.bucket(address).load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for HashCounts {
    fn default() -> Self {
        Self::new()
    }
}

/// Executions that may look at a contract's lazy balance before it is read exactly for the
/// rest of the block (each costs a second execution).
pub const MAX_SEEN: u8 = 8;

type Ictx<'a, H> = InstructionContext<'a, H, EthInterpreter>;

/// Marks the execution observed when `address` is lazy.
fn observe<H: LazyHost>(host: &mut H, address: Address) {
    let lazy = host.lazy();
    if lazy.is_lazy(&address) && !lazy.observed.contains(&address) {
        lazy.observed.push(address);
    }
}

fn balance<H: LazyHost + revm::context_interface::Host>(ctx: Ictx<'_, H>) -> InstructionExecResult {
    let InstructionContext { interpreter, host } = ctx;
    let address = interpreter.stack.peek(0).ok().map(|top| top.into_address());
    let result = host::balance(InstructionContext { interpreter, host: &mut *host });
    // Checked after the load: the account may turn lazy by this very instruction.
    if let Some(address) = address {
        observe(host, address);
    }
    result
}

fn selfbalance<H: LazyHost + revm::context_interface::Host>(ctx: Ictx<'_, H>) -> InstructionExecResult {
    observe(ctx.host, ctx.interpreter.input.target_address());
    host::selfbalance(ctx)
}

fn selfdestruct<H: LazyHost + revm::context_interface::Host>(ctx: Ictx<'_, H>) -> InstructionExecResult {
    observe(ctx.host, ctx.interpreter.input.target_address());
    host::selfdestruct(ctx)
}

fn create<const IS_CREATE2: bool, H: LazyHost + revm::context_interface::Host>(ctx: Ictx<'_, H>) -> InstructionExecResult {
    observe(ctx.host, ctx.interpreter.input.target_address());
    contract::create::<IS_CREATE2, _, _>(ctx)
}

/// CALL and CALLCODE move `value` (the third stack item) out of the executing account.
fn call_with_value<const KIND: u8, H: LazyHost + revm::context_interface::Host>(ctx: Ictx<'_, H>) -> InstructionExecResult {
    if let Ok(value) = ctx.interpreter.stack.peek(2) {
        if !value.is_zero() {
            let payer = ctx.interpreter.input.target_address();
            if let Some(u) = ctx.host.lazy().get_mut(&payer) {
                u.paid_out = u.paid_out.saturating_add(value);
            }
        }
    }
    contract::call::<KIND, _, _>(ctx)
}

/// Replaces the instructions that see or move a lazy balance in `table` with hooked ones.
pub const fn install<H: LazyHost + revm::context_interface::Host>(table: &mut [Instruction<EthInterpreter, H>; 256]) {
    table[opcode::BALANCE as usize] = Instruction::new(balance::<H>);
    table[opcode::SELFBALANCE as usize] = Instruction::new(selfbalance::<H>);
    table[opcode::SELFDESTRUCT as usize] = Instruction::new(selfdestruct::<H>);
    table[opcode::CREATE as usize] = Instruction::new(create::<false, H>);
    table[opcode::CREATE2 as usize] = Instruction::new(create::<true, H>);
    table[opcode::CALL as usize] = Instruction::new(call_with_value::<{ opcode::CALL }, H>);
    table[opcode::CALLCODE as usize] = Instruction::new(call_with_value::<{ opcode::CALLCODE }, H>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(MIN_BALANCE, U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64)));
        assert_eq!(SYNTHETIC_BALANCE, U256::from(1u64) << 224);
    }
}
