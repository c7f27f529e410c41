//! Lazy storage updates: ERC20 `transfer`/`transferFrom` to a hot receiver (an exchange, a fee
//! collector) each add to one balance slot. Read exactly, every such transaction depends on the
//! previous one and Block-STM runs them in turn, aborting and re-executing on the way. Yet the
//! transfer only *adds* to that balance: the value it read matters only through a few checks
//! (the overflow check, whether the slot was zero for SSTORE's gas).
//!
//! So once a slot has made an execution fail validation (it is contended), lazy executions read
//! it without recording the read, and taint-track the value through the interpreter: every
//! instruction is wrapped (`TrackedTable`), and while a tainted value is on the stack, a shadow
//! stack says which items are "the slot's value before the transaction plus k". Adding or
//! subtracting a constant keeps the taint; comparing it (LT, GT, SLT, SGT, EQ, ISZERO) records the
//! comparison and its result (`Check`); storing it back into the slot is allowed, with the zero
//! checks that SSTORE's gas depends on. Anything else (storing it to memory or another slot,
//! hashing it, branching on it directly, passing it to a call, storing a constant into the slot)
//! marks the execution observed: it stops at once and is run again reading the slot exactly;
//! after `MAX_SEEN` such executions the slot is no longer handled lazily in the block.
//!
//! What the transaction wrote to the slot becomes a delta (`WriteValue::StorageDelta`), and
//! validation replays the recorded checks on the slot's current value instead of comparing it
//! with the value read (`SlotUse::admits`): the same checks give the same path, gas and effects.

use crate::state::value::Loc;
use alloy_primitives::{Address, I256, U256};
use revm::{
    bytecode::opcode::{self, OpCode},
    context_interface::Host,
    interpreter::{
        interpreter::EthInterpreter, interpreter_types::InputsTr, Instruction, InstructionContext, InstructionExecResult, InstructionResult,
    },
};

/// Executions that may use a slot's lazy value in a way the checks cannot capture before the
/// slot is read exactly for the rest of the block (each costs a second execution).
pub const MAX_SEEN: u8 = 2;

/// Most slots one execution handles lazily (the rest are read exactly).
const MAX_SLOTS: usize = 4;

/// An operand of a recorded comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sym {
    Const(U256),
    /// The slot's value before the transaction plus this (wrapping).
    Slot(U256),
}

impl Sym {
    fn eval(self, before: U256) -> U256 {
        match self {
            Sym::Const(c) => c,
            Sym::Slot(k) => before.wrapping_add(k),
        }
    }
}

/// A comparison the execution made on a lazily read slot, and its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub op: u8,
    pub a: Sym,
    pub b: Sym,
    pub holds: bool,
}

impl Check {
    /// Whether the slot's value plus `k` is zero (`holds`).
    fn zero(k: U256, holds: bool) -> Self {
        Check { op: opcode::ISZERO, a: Sym::Slot(k), b: Sym::Const(U256::ZERO), holds }
    }

    fn holds_for(&self, before: U256) -> bool {
        let (a, b) = (self.a.eval(before), self.b.eval(before));
        let result = match self.op {
            opcode::LT => a < b,
            opcode::GT => a > b,
            opcode::SLT => I256::from_raw(a) < I256::from_raw(b),
            opcode::SGT => I256::from_raw(a) > I256::from_raw(b),
            opcode::EQ => a == b,
            opcode::ISZERO => a.is_zero(),
            _ => return false,
        };
        result == self.holds
    }
}

/// A slot one execution handled lazily: the value it was given and the checks made on it.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotUse {
    pub loc: Loc,
    pub seen: U256,
    pub checks: Vec<Check>,
}

impl SlotUse {
    /// Whether the slot's value right before the transaction gives the same execution.
    pub fn admits(&self, before: U256) -> bool {
        self.checks.iter().all(|c| c.holds_for(before))
    }
}

/// A tainted stack item: position from the bottom, slot (index into `TaintState::slots`), k.
#[derive(Clone, Copy, Debug)]
struct Taint {
    pos: usize,
    slot: usize,
    k: U256,
}

/// What the tracking found in one execution.
#[derive(Debug, Default)]
pub struct TaintState {
    pub enabled: bool,
    pub slots: Vec<SlotUse>,
    /// A lazy value was used in a way the checks cannot capture: run the transaction again,
    /// reading its slots exactly.
    pub observed: bool,
    /// Shadow stacks by call depth (a frame's interpreter keeps its own stack).
    frames: Vec<Vec<Taint>>,
}

impl TaintState {
    pub fn begin(&mut self, enabled: bool) {
        self.enabled = enabled;
        self.slots.clear();
        self.observed = false;
        self.frames.iter_mut().for_each(Vec::clear);
    }

    /// Whether one more slot may be handled lazily in this execution.
    pub fn accepts(&self) -> bool {
        self.enabled && !self.observed && self.slots.len() < MAX_SLOTS
    }

    fn tracking(&self) -> bool {
        self.enabled && !self.observed && !self.slots.is_empty()
    }

    fn slot_of(&self, address: Address, key: U256) -> Option<usize> {
        self.slots.iter().position(|s| s.loc == Loc::Storage(address, key))
    }

    fn frame(&mut self, depth: usize) -> &mut Vec<Taint> {
        if self.frames.len() <= depth {
            self.frames.resize_with(depth + 1, Vec::new);
        }
        &mut self.frames[depth]
    }

    fn get(&mut self, depth: usize, pos: usize) -> Option<(usize, U256)> {
        self.frame(depth).iter().find(|t| t.pos == pos).map(|t| (t.slot, t.k))
    }

    fn untaint(&mut self, depth: usize, pos: usize) {
        self.frame(depth).retain(|t| t.pos != pos);
    }

    fn taint(&mut self, depth: usize, pos: usize, slot: usize, k: U256) {
        let frame = self.frame(depth);
        frame.retain(|t| t.pos != pos);
        frame.push(Taint { pos, slot, k });
    }

    /// Whether an item at `pos` or above is tainted.
    fn any_from(&mut self, depth: usize, pos: usize) -> bool {
        self.frame(depth).iter().any(|t| t.pos >= pos)
    }

    fn observe(&mut self) {
        self.observed = true;
    }
}

/// The host of a tracked interpreter.
pub trait TaintHost {
    fn taint_state(&mut self) -> &mut TaintState;
    /// Call depth of the running frame.
    fn depth(&self) -> usize;
    /// A loaded slot's current value in the transaction's journal.
    fn present(&self, address: Address, key: U256) -> Option<U256>;
}

type Ictx<'a, H> = InstructionContext<'a, H, EthInterpreter>;
type Table<H> = [Instruction<EthInterpreter, H>; 256];

/// The instructions that tracking wraps: revm's, with `lazy_balance`'s hooks.
const fn base_table<H: TaintHost + crate::engine::fast_paths::lazy_balance::LazyHost + Host>() -> Table<H> {
    let mut table = revm::interpreter::instruction_table::<EthInterpreter, H>();
    crate::engine::fast_paths::lazy_balance::install(&mut table);
    table
}

/// Whether `op` takes items from the stack (or reaches them by an immediate).
const fn reads_stack(op: u8) -> bool {
    match OpCode::info_by_op(op) {
        Some(info) => info.inputs() > 0 || matches!(op, opcode::DUPN | opcode::SWAPN | opcode::EXCHANGE),
        None => false,
    }
}

fn tracked<const OP: u8, H: TaintHost + crate::engine::fast_paths::lazy_balance::LazyHost + Host>(
    ctx: Ictx<'_, H>,
) -> InstructionExecResult {
    let inner = const { base_table::<H>()[OP as usize] };
    // Instructions that take nothing from the stack (pushes, most environment reads) cannot
    // meet a tainted value.
    if const { !reads_stack(OP) } {
        return inner.execute(ctx);
    }
    let state = ctx.host.taint_state();
    // The common case costs one test: nothing is tainted in this execution.
    let busy = if OP == opcode::SLOAD || OP == opcode::SSTORE { state.enabled && !state.observed } else { state.tracking() };
    if !busy {
        if state.observed {
            // The execution will be run again: stop every frame at its next instruction.
            return Err(InstructionResult::Stop);
        }
        return inner.execute(ctx);
    }
    track(OP, ctx, inner)
}

/// One instruction while a lazy slot is in play: runs `inner` and moves the taints.
fn track<H: TaintHost + Host>(op: u8, ctx: Ictx<'_, H>, inner: Instruction<EthInterpreter, H>) -> InstructionExecResult {
    let InstructionContext { interpreter, host } = ctx;
    let depth = host.depth();
    let len = interpreter.stack.len();
    macro_rules! peek {
        ($i:expr) => {
            interpreter.stack.peek($i).unwrap_or_default()
        };
    }
    macro_rules! run {
        () => {
            inner.execute(InstructionContext { interpreter: &mut *interpreter, host: &mut *host })
        };
    }
    match op {
        opcode::POP => {
            host.taint_state().untaint(depth, len.wrapping_sub(1));
            run!()
        }
        opcode::DUP1..=opcode::DUP16 => {
            let n = (op - opcode::DUP1 + 1) as usize;
            let source = len.checked_sub(n).and_then(|p| host.taint_state().get(depth, p));
            let r = run!();
            if r.is_ok() {
                match source {
                    Some((slot, k)) => host.taint_state().taint(depth, len, slot, k),
                    None => host.taint_state().untaint(depth, len),
                }
            }
            r
        }
        opcode::SWAP1..=opcode::SWAP16 => {
            let n = (op - opcode::SWAP1 + 1) as usize;
            let (top, other) = (len.wrapping_sub(1), len.wrapping_sub(1 + n));
            let r = run!();
            if r.is_ok() {
                for t in host.taint_state().frame(depth).iter_mut() {
                    if t.pos == top {
                        t.pos = other;
                    } else if t.pos == other {
                        t.pos = top;
                    }
                }
            }
            r
        }
        opcode::ADD | opcode::SUB if len >= 2 => {
            let state = host.taint_state();
            let (a, b) = (state.get(depth, len - 1), state.get(depth, len - 2));
            let (x, y) = (peek!(0), peek!(1));
            let result = match (a, b) {
                (None, None) => None,
                (Some((slot, k)), None) if op == opcode::ADD => Some((slot, k.wrapping_add(y))),
                (Some((slot, k)), None) => Some((slot, k.wrapping_sub(y))),
                (None, Some((slot, k))) if op == opcode::ADD => Some((slot, k.wrapping_add(x))),
                _ => {
                    state.observe();
                    None
                }
            };
            let r = run!();
            if r.is_ok() {
                let state = host.taint_state();
                state.untaint(depth, len - 1);
                match result {
                    Some((slot, k)) => state.taint(depth, len - 2, slot, k),
                    None => state.untaint(depth, len - 2),
                }
            }
            r
        }
        opcode::LT | opcode::GT | opcode::SLT | opcode::SGT | opcode::EQ if len >= 2 => {
            let state = host.taint_state();
            let (a, b) = (state.get(depth, len - 1), state.get(depth, len - 2));
            let (x, y) = (peek!(0), peek!(1));
            let slot = match (a, b) {
                (None, None) => return run!(),
                (Some((s, _)), Some((t, _))) if s != t => {
                    state.observe();
                    return run!();
                }
                (Some((s, _)), _) | (_, Some((s, _))) => s,
            };
            let sym = |t: Option<(usize, U256)>, v: U256| t.map_or(Sym::Const(v), |(_, k)| Sym::Slot(k));
            let (sa, sb) = (sym(a, x), sym(b, y));
            let r = run!();
            if r.is_ok() {
                let holds = !peek!(0).is_zero();
                let state = host.taint_state();
                state.untaint(depth, len - 1);
                state.untaint(depth, len - 2);
                state.slots[slot].checks.push(Check { op, a: sa, b: sb, holds });
            }
            r
        }
        opcode::ISZERO if len >= 1 => {
            let Some((slot, k)) = host.taint_state().get(depth, len - 1) else {
                return run!();
            };
            let r = run!();
            if r.is_ok() {
                let holds = !peek!(0).is_zero();
                let state = host.taint_state();
                state.untaint(depth, len - 1);
                state.slots[slot].checks.push(Check::zero(k, holds));
            }
            r
        }
        opcode::SLOAD if len >= 1 => {
            if host.taint_state().get(depth, len - 1).is_some() {
                host.taint_state().observe();
            }
            let (target, key) = (interpreter.input.target_address(), peek!(0));
            let r = run!();
            if r.is_ok() {
                let value = peek!(0);
                let state = host.taint_state();
                // The slot may have become lazy by this very load.
                match state.slot_of(target, key) {
                    Some(slot) if !state.observed => {
                        let k = value.wrapping_sub(state.slots[slot].seen);
                        state.taint(depth, len - 1, slot, k)
                    }
                    _ => state.untaint(depth, len - 1),
                }
            }
            r
        }
        opcode::SSTORE if len >= 2 => {
            let (target, key, value) = (interpreter.input.target_address(), peek!(0), peek!(1));
            let state = host.taint_state();
            if state.get(depth, len - 1).is_some() {
                state.observe();
            }
            let stored = state.get(depth, len - 2);
            // Only a lazy value stored into its slot needs the slot's current value.
            let present = stored.and_then(|_| host.present(target, key));
            let r = run!();
            // Checked even when the store failed: it may have run out of gas on a cost that
            // the value decided.
            {
                let state = host.taint_state();
                state.untaint(depth, len - 1);
                state.untaint(depth, len - 2);
                match (state.slot_of(target, key), stored) {
                    (Some(slot), Some((s, k))) if s == slot => {
                        // SSTORE's gas and refund depend on whether the original, current and
                        // new values are zero (their equalities follow from the offsets).
                        let use_ = &mut state.slots[slot];
                        let present = present.unwrap_or(use_.seen);
                        let (seen, kp) = (use_.seen, present.wrapping_sub(use_.seen));
                        use_.checks.extend([
                            Check::zero(U256::ZERO, seen.is_zero()),
                            Check::zero(kp, present.is_zero()),
                            Check::zero(k, value.is_zero()),
                        ]);
                    }
                    (None, None) => {}
                    // A constant into a lazy slot, or a lazy value into another slot.
                    _ => state.observe(),
                }
            }
            r
        }
        opcode::DUPN | opcode::SWAPN | opcode::EXCHANGE => {
            // They reach items by an immediate: not followed.
            host.taint_state().observe();
            run!()
        }
        opcode::SELFDESTRUCT | opcode::CREATE | opcode::CREATE2 => {
            // The account of a lazy slot could be destroyed or made anew.
            host.taint_state().observe();
            run!()
        }
        _ => {
            let inputs = OpCode::info_by_op(op).map_or(0, |i| i.inputs() as usize);
            let state = host.taint_state();
            if inputs > 0 && state.any_from(depth, len.saturating_sub(inputs)) {
                state.observe();
            }
            if matches!(op, opcode::CALL | opcode::CALLCODE | opcode::DELEGATECALL | opcode::STATICCALL) {
                // The callee's frame starts with a clean shadow stack.
                state.frames.truncate(depth + 1);
            }
            run!()
        }
    }
}

/// revm's instruction table with every instruction tracked.
pub fn tracked_table<H: TaintHost + crate::engine::fast_paths::lazy_balance::LazyHost + Host>() -> Table<H> {
    let mut table = base_table::<H>();
    macro_rules! wrap {
        ($($op:literal),*) => { $( table[$op] = Instruction::new(tracked::<$op, H>); )* };
    }
    wrap!(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
        35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67,
        68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99,
        100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125,
        126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151,
        152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177,
        178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203,
        204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229,
        230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255
    );
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_use(checks: Vec<Check>) -> SlotUse {
        SlotUse { loc: Loc::Storage(Address::ZERO, U256::ZERO), seen: U256::from(10), checks }
    }

    #[test]
    fn checks_replay_on_the_final_value() {
        // A checked `balance + 5`: `balance > balance + 5` was false (no overflow).
        let overflow = Check { op: opcode::GT, a: Sym::Slot(U256::ZERO), b: Sym::Slot(U256::from(5)), holds: false };
        let u = slot_use(vec![overflow]);
        assert!(u.admits(U256::from(10)));
        assert!(u.admits(U256::from(1_000_000)));
        assert!(!u.admits(U256::MAX - U256::from(2)), "the addition overflows there");
    }

    #[test]
    fn zero_checks_pin_sstore_gas() {
        let zero = Check { op: opcode::ISZERO, a: Sym::Slot(U256::ZERO), b: Sym::Const(U256::ZERO), holds: false };
        let u = slot_use(vec![zero]);
        assert!(u.admits(U256::from(3)));
        assert!(!u.admits(U256::ZERO), "setting a zero slot costs more gas");
    }

    #[test]
    fn signed_and_constant_comparisons() {
        let lt = Check { op: opcode::LT, a: Sym::Slot(U256::ZERO), b: Sym::Const(U256::from(7)), holds: false };
        assert!(slot_use(vec![lt]).admits(U256::from(7)));
        assert!(!slot_use(vec![lt]).admits(U256::from(6)));
        let slt = Check { op: opcode::SLT, a: Sym::Slot(U256::ZERO), b: Sym::Const(U256::ZERO), holds: true };
        assert!(slot_use(vec![slt]).admits(U256::MAX), "-1 < 0");
        assert!(!slot_use(vec![slt]).admits(U256::from(1)));
    }
}
