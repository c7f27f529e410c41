//! Blocks of ERC-20 transfers (and plain value transfers) whose accounts can be guessed from the
//! transactions alone: `transfer`, `transferFrom` and `approve` touch the token's entries for
//! the sender and the holders they name rather than the token as a whole, so the guess is the
//! sender and those holders. Transactions that
//! share a guessed account form a group, and the group engine (`transfers::execute`) runs the
//! groups on private overlays, as it runs plain transfers. A guess can be wrong (a token that
//! keeps a global counter, a contract that calls another), so each worker also records what it
//! read and wrote, and the run stands only if no worker read or wrote a location another worker
//! wrote (`Footprint::conflict`): then every transaction read what the block's order gives it,
//! as its only writers ran before it on the same worker. Otherwise Block-STM runs the block.

use crate::{
    block::BlockInput,
    executor::PER_HOLDER_SELECTORS,
    transfers::{spread, union_groups},
    types::{Loc, TxIdx, WriteValue},
};
use alloy_primitives::Address;
use revm::primitives::TxKind;
use rustc_hash::FxHashSet;

/// Largest share of the block's transactions (in percent) the busiest worker may get beyond an
/// even split before the guess is not worth trying: a share twice the others' caps 2 threads
/// at 1.5x before any verification.
const MAX_IMBALANCE_PERCENT: usize = 25;

/// The accounts a transaction is guessed to touch (the sender repeated where fewer than four),
/// or `None` when it is outside this engine. Only plain value calls and ERC-20 per-holder calls
/// are guessed: on the mainnet fixtures, guesses for other calls (routers, pools, mints) were
/// wrong in 14 of the 24 blocks that passed the balance check, and a wrong guess costs the
/// block's work divided by the threads before Block-STM starts over. A creation, an EIP-7702
/// transaction, or one involving the beneficiary (whose balance the workers credit lazily, so
/// nobody may read it) is outside too.
fn guessed_accounts(block: &BlockInput, index: TxIdx) -> Option<[Address; 4]> {
    let env = &block.txs[index].env;
    let TxKind::Call(to) = env.kind else { return None };
    if env.tx_type > 3 || !env.access_list.0.is_empty() || to == block.beneficiary || env.caller == block.beneficiary {
        return None;
    }
    let mut keys = [env.caller; 4];
    let data = &env.data;
    if data.is_empty() {
        keys[1] = to;
        return Some(keys);
    }
    if data.len() < 4 || !PER_HOLDER_SELECTORS.iter().any(|s| data[..4] == s[..]) {
        return None;
    }
    // The holders named (one or two words after the selector), not the token.
    for (k, word) in data[4..].chunks_exact(32).take(2).enumerate() {
        if word[..12].iter().any(|b| *b != 0) {
            return None;
        }
        let holder = Address::from_slice(&word[12..]);
        if holder == block.beneficiary {
            return None;
        }
        keys[1 + k] = holder;
    }
    Some(keys)
}

/// The block's transactions in groups that share no guessed account, or `None` when some
/// transaction is outside this engine or the groups would leave a worker with far more than
/// its share.
pub fn groups(block: &BlockInput, threads: usize) -> Option<Vec<Vec<TxIdx>>> {
    if threads < 2 || block.txs.len() < 2 {
        return None;
    }
    let keys = (0..block.txs.len()).map(|i| guessed_accounts(block, i)).collect::<Option<Vec<_>>>()?;
    let groups = union_groups(&keys);
    let even = block.txs.len().div_ceil(threads);
    let (_, load) = spread(&groups.iter().map(Vec::len).collect::<Vec<_>>(), threads);
    let heaviest = load.into_iter().max().unwrap_or(0);
    (heaviest * 100 <= even * (100 + MAX_IMBALANCE_PERCENT)).then_some(groups)
}

/// What one worker read and wrote, for the check that no worker saw another's writes.
#[derive(Default)]
pub struct Footprint {
    /// Every location read (checked once the run is done).
    pub reads: FxHashSet<Loc>,
    pub writes: FxHashSet<Loc>,
    /// Accounts created, self-destructed or cleared: every location of theirs changed.
    pub whole: FxHashSet<Address>,
}

impl Footprint {
    pub fn write(&mut self, loc: Loc, value: &WriteValue) {
        let whole = match (&loc, value) {
            (Loc::Code(_) | Loc::Destruction(_), _) | (Loc::Basic(_), WriteValue::Basic(None) | WriteValue::Destroyed) => true,
            _ => false,
        };
        if whole {
            self.whole.insert(loc.address());
        }
        self.writes.insert(loc);
    }

    /// A location this worker read or wrote that `other` wrote, if any (the beneficiary's
    /// balance counts as written by every worker: each credits its fees).
    pub fn conflict(&self, other: &Footprint, beneficiary: Address) -> Option<Loc> {
        // Accounts in `whole` have a written location of theirs in `writes` too.
        let overwritten = |loc: &Loc| other.writes.contains(loc) || other.whole.contains(&loc.address());
        self.reads.iter().find(|l| **l == Loc::Basic(beneficiary) || overwritten(l)).or_else(|| self.writes.iter().find(|l| overwritten(l))).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;

    #[test]
    fn a_location_written_by_one_worker_and_read_by_another_conflicts() {
        let beneficiary = Address::repeat_byte(0xbe);
        let (token, a, b) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let mut one = Footprint::default();
        one.reads.extend([Loc::Code(token), Loc::Storage(token, U256::from(1))]);
        one.write(Loc::Storage(token, U256::from(1)), &WriteValue::Storage(U256::from(5)));
        one.write(Loc::Basic(a), &WriteValue::BalanceDelta(U256::from(3)));
        let mut two = Footprint::default();
        two.reads.extend([Loc::Code(token), Loc::Storage(token, U256::from(2))]);
        two.write(Loc::Storage(token, U256::from(2)), &WriteValue::Storage(U256::from(7)));
        assert_eq!(one.conflict(&two, beneficiary), None, "shared reads and disjoint writes");
        assert_eq!(two.conflict(&one, beneficiary), None);

        two.reads.insert(Loc::Storage(token, U256::from(1)));
        assert_eq!(two.conflict(&one, beneficiary), Some(Loc::Storage(token, U256::from(1))));

        let mut three = Footprint::default();
        three.write(Loc::Destruction(b), &WriteValue::Destroyed);
        let mut four = Footprint::default();
        four.reads.insert(Loc::Storage(b, U256::from(9)));
        assert!(four.conflict(&three, beneficiary).is_some(), "a self-destruct changes every slot");

        let mut five = Footprint::default();
        five.reads.insert(Loc::Basic(beneficiary));
        assert!(five.conflict(&Footprint::default(), beneficiary).is_some(), "fees of other workers are unseen");
    }
}
