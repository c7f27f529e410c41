//! Blocks of ERC-20 transfers (and plain value transfers) whose accounts can be guessed from the
//! transactions alone: `transfer`, `transferFrom` and `approve` touch the token's entries for
//! the sender and the holders they name rather than the token as a whole, so the guess is the
//! sender and those holders. Transactions that share a guessed account form a group, and the
//! group engine (`transfers::execute`) runs the groups on private overlays, as it runs plain
//! transfers. A guess can be wrong (a token that keeps a global counter, a contract that calls
//! another), so each worker also records which of its groups read and wrote what
//! (`Footprint`), and the run stands only if no group read or wrote a location another group
//! wrote, on the same worker (checked as it runs) or on another (checked once all are done):
//! then every transaction read what the block's order gives it, as its only writers were
//! earlier transactions of its own group. Otherwise Block-STM runs the block.

use crate::{
    block::BlockInput,
    block::TxIdx,
    engine::fast_paths::groups::{union_groups, Groups},
    state::value::Loc,
    state::value::WriteValue,
};
use alloy_primitives::Address;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;
use std::hash::BuildHasher;

/// ERC-20 `transfer`, `transferFrom` and `approve` touch per-holder slots: many calls into one
/// token rarely conflict, so they do not count as one entry point.
pub(crate) const PER_HOLDER_SELECTORS: [[u8; 4]; 3] = [[0xa9, 0x05, 0x9c, 0xbb], [0x23, 0xb8, 0x72, 0xdd], [0x09, 0x5e, 0xa7, 0xb3]];

/// Largest share of the block's transactions (in percent) the busiest worker may get beyond an
/// even split before the guess is not worth trying: a share twice the others' caps 2 threads
/// at 1.5x before any verification.
const MAX_IMBALANCE_PERCENT: usize = 25;

/// The accounts a transaction is guessed to touch (the sender repeated where fewer than four),
/// or `None` when it is outside this engine. Only plain value calls, ERC-20 per-holder calls
/// and Uniswap V2 pair swaps without a callback are guessed: on the mainnet fixtures, guesses
/// for other calls (routers, pools, mints) were wrong in 14 of the 24 blocks that passed the
/// balance check, and a wrong guess costs the block's work divided by the threads before
/// Block-STM starts over (whatever the guess, the footprints decide whether the run stands).
/// A creation, an EIP-7702 transaction, or one involving the beneficiary (whose balance the
/// workers credit lazily, so nobody may read it) is outside too.
fn guessed_accounts(block: &BlockInput, index: TxIdx) -> Option<[Address; 4]> {
    let env = &block.txs[index].env;
    let TxKind::Call(to) = env.kind else {
        return None;
    };
    if env.tx_type > 3 || !env.access_list.0.is_empty() || to == block.beneficiary || env.caller == block.beneficiary {
        return None;
    }
    let mut keys = [env.caller; 4];
    let data = &env.data;
    if data.is_empty() {
        keys[1] = to;
        return Some(keys);
    }
    if data.len() >= 4 && data[..4] == PAIR_SWAP {
        let recipient = pair_swap_recipient(data).filter(|r| *r != block.beneficiary)?;
        keys[1] = to;
        keys[2] = recipient;
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

/// Uniswap V2 pair `swap(uint256,uint256,address,bytes)`: with empty `bytes` (no flash-swap
/// callback into the recipient) it touches the pair's own storage and, in its two tokens, the
/// entries of the pair and the recipient; pairs sharing a token write different entries of it.
const PAIR_SWAP: [u8; 4] = [0x02, 0x2c, 0x0d, 0x9f];

/// The recipient of a pair swap whose call data is in the standard encoding with empty
/// `bytes` (head of four words, then a zero length), or `None`.
fn pair_swap_recipient(data: &[u8]) -> Option<Address> {
    if data.len() != 4 + 5 * 32 {
        return None;
    }
    let word = |i: usize| &data[4 + 32 * i..4 + 32 * (i + 1)];
    let is_small = |w: &[u8], v: u8| w[..31].iter().all(|b| *b == 0) && w[31] == v;
    let recipient = word(2);
    (is_small(word(3), 0x80) && is_small(word(4), 0) && recipient[..12].iter().all(|b| *b == 0))
        .then(|| Address::from_slice(&recipient[12..]))
}

/// The busiest worker's transaction count when groups of these sizes go, heaviest first, each
/// onto the least loaded worker (what the group engine's queue, heaviest first, comes to when
/// the workers run at one speed).
fn heaviest_load(mut sizes: Vec<usize>, workers: usize) -> usize {
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut load = vec![0usize; workers];
    for size in sizes {
        *load.iter_mut().min().expect("at least one worker") += size;
    }
    load.into_iter().max().unwrap_or(0)
}

/// The block's transactions in groups that share no guessed account, or `None` when some
/// transaction is outside this engine or the groups would leave a worker with far more than
/// its share.
pub fn groups(block: &BlockInput, threads: usize) -> Option<Groups> {
    if threads < 2 || block.txs.len() < 2 {
        return None;
    }
    let keys = (0..block.txs.len()).map(|i| guessed_accounts(block, i)).collect::<Option<Vec<_>>>()?;
    let groups = union_groups(&keys);
    let even = block.txs.len().div_ceil(threads);
    let heaviest = heaviest_load(groups.iter().map(<[TxIdx]>::len).collect(), threads);
    (heaviest * 100 <= even * (100 + MAX_IMBALANCE_PERCENT)).then_some(groups)
}

/// What one worker read and wrote, and which of its groups did, for the checks that no group
/// saw another's writes: as the worker runs (its groups share one overlay and run in any
/// order), and against the other workers once all are done (`conflict`). Locations are kept as
/// 64-bit digests (`loc_key`): maps of them cost far less to fill than maps of locations (a
/// slot's location is 53 bytes to hash and compare), and two locations taken for one can only
/// reject a guess that was right, never keep a wrong one.
pub struct Footprint {
    /// Every location read or written, with the group that read it and the group that wrote
    /// it: one probe per access where two maps took two.
    uses: FxHashMap<u64, Use>,
    /// The group running now (its first transaction).
    pub group: u32,
    /// The first location two of this worker's groups shared, where one wrote it (the worker
    /// stops at once: checked after each transaction).
    pub within: Option<Loc>,
    beneficiary: Address,
    /// One bit per hash bucket of the locations written: the other workers' checks test these
    /// bits (8 KiB, fetched from this worker's core once) before probing `uses`, whose every
    /// probe from another core missed the cache (the check took ~0.1 ms of a 1,000-transfer
    /// ERC-20 block).
    written: Vec<u64>,
}

/// Which group read a location and which wrote it.
#[derive(Clone, Copy, Debug)]
struct Use {
    /// `NONE`, the group that read it, or `SEVERAL` when more than one did.
    read: u32,
    /// `NONE` or the group that wrote it last (a second group writing it ends the guess).
    wrote: u32,
}

const NONE: u32 = u32::MAX - 1;
const SEVERAL: u32 = u32::MAX;

impl Use {
    const UNUSED: Use = Use { read: NONE, wrote: NONE };
}

/// Whether `by`, a group (or `NONE`/`SEVERAL`), names some group other than `group`.
fn other_than(by: u32, group: u32) -> bool {
    by != NONE && by != group
}

/// Bits of `Footprint::written` (a power of two): ~3% of lookups pass the filter in vain at
/// 2,000 written locations.
const WRITTEN_BITS: usize = 1 << 16;

fn loc_key(loc: &Loc) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(loc)
}

/// The filter bit of a location key (from its high bits, the best mixed).
fn written_bit(key: u64) -> (usize, u64) {
    let h = (key >> (64 - WRITTEN_BITS.trailing_zeros())) as usize;
    (h / 64, 1 << (h % 64))
}

impl Footprint {
    /// A footprint sized for about `locations` locations (growing a map of thousands by
    /// doubling rehashed each entry about once more).
    pub fn new(beneficiary: Address, locations: usize) -> Self {
        Footprint {
            uses: FxHashMap::with_capacity_and_hasher(locations, Default::default()),
            group: 0,
            within: None,
            beneficiary,
            written: vec![0; WRITTEN_BITS / 64],
        }
    }

    fn found(&mut self, loc: Loc) {
        self.within.get_or_insert(loc);
    }

    pub fn read(&mut self, loc: Loc) {
        let group = self.group;
        let used = self.uses.entry(loc_key(&loc)).or_insert(Use::UNUSED);
        let written_by_other = other_than(used.wrote, group);
        used.read = if used.read == NONE || used.read == group { group } else { SEVERAL };
        // Fees reach the beneficiary once the block is done (each worker sums its own), so its
        // balance read mid-block would be wrong on any worker.
        if written_by_other || loc == Loc::Basic(self.beneficiary) {
            self.found(loc);
        }
    }

    pub fn write(&mut self, loc: Loc, value: &WriteValue) {
        let (group, key) = (self.group, loc_key(&loc));
        let used = self.uses.entry(key).or_insert(Use::UNUSED);
        let shared = other_than(used.read, group) || other_than(used.wrote, group);
        used.wrote = group;
        let (word, bit) = written_bit(key);
        self.written[word] |= bit;
        // A creation, self-destruct or clearing changes every location of the account: rare in
        // token and transfer blocks, so it ends the guess rather than being tracked per account.
        let whole = matches!(
            (&loc, value),
            (Loc::Code(_) | Loc::Destruction(_), _) | (Loc::Basic(_), WriteValue::Basic(None) | WriteValue::Destroyed)
        );
        if whole || shared {
            self.found(loc);
        }
    }

    /// Whether this worker read or wrote a location that `other` wrote.
    pub fn conflict(&self, other: &Footprint) -> bool {
        let may_have_written = |key: u64| {
            let (word, bit) = written_bit(key);
            other.written[word] & bit != 0
        };
        self.uses.keys().any(|k| may_have_written(*k) && other.uses.get(k).is_some_and(|u| u.wrote != NONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, B256, U256};

    /// A block of calls `(from, to, data)`: all that guessing looks at.
    fn block_of(calls: &[(Address, Address, Bytes)]) -> BlockInput {
        crate::block::test_blocks::calls_from(calls)
    }

    /// `swap(0, out, to, data)` in the standard encoding.
    fn swap_call(out: u64, to: Address, data: &[u8]) -> Bytes {
        let mut call = PAIR_SWAP.to_vec();
        call.extend_from_slice(&[0; 32]);
        call.extend_from_slice(&U256::from(out).to_be_bytes::<32>());
        call.extend_from_slice(B256::left_padding_from(to.as_slice()).as_slice());
        call.extend_from_slice(&U256::from(0x80).to_be_bytes::<32>());
        call.extend_from_slice(&U256::from(data.len()).to_be_bytes::<32>());
        if !data.is_empty() {
            call.extend_from_slice(data);
            call.resize(call.len().next_multiple_of(32), 0);
        }
        call.into()
    }

    #[test]
    fn pair_swaps_are_guessed_by_pair_and_recipient_unless_they_call_back() {
        let pairs: Vec<Address> = (0..5u8).map(|i| Address::repeat_byte(0x10 + i)).collect();
        let senders: Vec<Address> = (0..5u8).map(|i| Address::repeat_byte(0x20 + i)).collect();
        let bot = Address::repeat_byte(0x30);
        let block = block_of(&[
            (senders[0], pairs[0], swap_call(5, senders[0], &[])),
            (senders[1], pairs[1], swap_call(5, senders[1], &[])),
            // Other pairs and senders, but one recipient: one group.
            (senders[2], pairs[2], swap_call(5, bot, &[])),
            (senders[3], pairs[3], swap_call(5, bot, &[])),
            // The first pair again: with the first swap.
            (senders[4], pairs[0], swap_call(5, senders[4], &[])),
        ]);
        assert_eq!(guessed_accounts(&block, 0), Some([senders[0], pairs[0], senders[0], senders[0]]));
        assert_eq!(guessed_accounts(&block, 2), Some([senders[2], pairs[2], bot, senders[2]]));
        let mut groups: Vec<Vec<TxIdx>> = groups(&block, 2).expect("every swap guessed").iter().map(<[TxIdx]>::to_vec).collect();
        groups.sort_unstable();
        assert_eq!(groups, vec![vec![0, 4], vec![1], vec![2, 3]]);

        // A flash swap calls the recipient back: any code may run, so no guess.
        assert_eq!(pair_swap_recipient(&swap_call(5, bot, &[1, 2, 3])), None);
        let mut bad_offset = swap_call(5, bot, &[]).to_vec();
        bad_offset[4 + 3 * 32 + 31] = 0xa0;
        assert_eq!(pair_swap_recipient(&bad_offset), None);
        let mut dirty_address = swap_call(5, bot, &[]).to_vec();
        dirty_address[4 + 2 * 32] = 1;
        assert_eq!(pair_swap_recipient(&dirty_address), None);
        assert_eq!(pair_swap_recipient(&swap_call(5, bot, &[])), Some(bot));
    }

    #[test]
    fn a_location_written_by_one_worker_and_read_by_another_conflicts() {
        let beneficiary = Address::repeat_byte(0xbe);
        let (token, a, b) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let slot = |n: u64| Loc::Storage(token, U256::from(n));
        let mut one = Footprint::new(beneficiary, 0);
        one.read(Loc::Code(token));
        one.read(slot(1));
        one.write(slot(1), &WriteValue::Storage(U256::from(5)));
        one.write(Loc::Basic(a), &WriteValue::BalanceDelta(U256::from(3)));
        let mut two = Footprint::new(beneficiary, 0);
        two.read(Loc::Code(token));
        two.read(slot(2));
        two.write(slot(2), &WriteValue::Storage(U256::from(7)));
        assert!(!one.conflict(&two), "shared reads and disjoint writes");
        assert!(!two.conflict(&one));

        two.read(slot(1));
        assert_eq!(two.within, None, "no group of its own wrote it");
        assert!(two.conflict(&one));

        let mut three = Footprint::new(beneficiary, 0);
        three.write(Loc::Destruction(b), &WriteValue::Destroyed);
        assert!(three.within.is_some(), "a self-destruct changes every slot");

        let mut four = Footprint::new(beneficiary, 0);
        four.read(Loc::Basic(beneficiary));
        assert!(four.within.is_some(), "fees are credited once the block is done");
    }

    #[test]
    fn groups_of_one_worker_may_share_reads_but_not_writes() {
        let beneficiary = Address::repeat_byte(0xbe);
        let token = Address::repeat_byte(1);
        let slot = |n: u64| Loc::Storage(token, U256::from(n));
        let value = WriteValue::Storage(U256::from(1));
        let mut print = Footprint::new(beneficiary, 0);
        print.group = 0;
        print.read(Loc::Code(token));
        print.read(slot(1));
        print.write(slot(1), &value);
        print.write(slot(1), &value);
        print.group = 1;
        print.read(Loc::Code(token));
        print.read(slot(2));
        print.write(slot(2), &value);
        assert_eq!(print.within, None);

        // Read what an earlier group wrote.
        let mut later = Footprint { group: 2, uses: print.uses.clone(), ..Footprint::new(beneficiary, 0) };
        later.read(slot(1));
        assert_eq!(later.within, Some(slot(1)));

        // Wrote what an earlier group read (the code: never written, so here slot 2).
        let reads_only = print.uses.iter().map(|(k, u)| (*k, Use { wrote: NONE, ..*u })).collect();
        let mut overwrite = Footprint { group: 3, uses: reads_only, ..Footprint::new(beneficiary, 0) };
        overwrite.write(slot(2), &value);
        assert_eq!(overwrite.within, Some(slot(2)));
    }
}
