//! Groups of transactions that share no account: the unit of work of the group engines
//! (`transfer_groups`, `guessed_groups`), held flat so that building them allocates little.

use crate::{block::TxIdx, state::value::address_key};
use alloy_primitives::Address;
use rustc_hash::FxHashMap;

/// Transactions in groups, held flat: group `g` is `txs[starts[g]..starts[g + 1]]`, in block
/// order. One allocation for the block instead of one per group (a block of 1,000 independent
/// transactions spent ~25 us allocating its groups, before any worker could start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    txs: Vec<TxIdx>,
    starts: Vec<usize>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, group: usize) -> &[TxIdx] {
        &self.txs[self.starts[group]..self.starts[group + 1]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[TxIdx]> + '_ {
        (0..self.len()).map(|g| self.get(g))
    }
}

impl From<Vec<Vec<TxIdx>>> for Groups {
    fn from(groups: Vec<Vec<TxIdx>>) -> Self {
        let mut starts = Vec::with_capacity(groups.len() + 1);
        starts.push(0);
        let mut txs = Vec::new();
        for group in groups {
            txs.extend(group);
            starts.push(txs.len());
        }
        Groups { txs, starts }
    }
}

/// Transactions that share a key (an account), directly or through others, in one group; each
/// group in block order, groups in the order of their first transaction.
pub fn union_groups<K: AsRef<[Address]>>(keys: &[K]) -> Groups {
    // Keyed by `address_key`: hashing whole addresses made this ~120 ns a transaction, paid
    // before any worker starts. Two accounts taken for one only join their groups (safe).
    let mut index: FxHashMap<u64, usize> = FxHashMap::default();
    index.reserve(keys.len() * 2);
    let mut parent: Vec<usize> = Vec::with_capacity(keys.len() * 2);
    let mut node = |a: Address, parent: &mut Vec<usize>| {
        *index.entry(address_key(&a)).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    // Each transaction joins its keys' nodes; it belongs to its first key's group.
    let mut first = Vec::with_capacity(keys.len());
    for ks in keys {
        let ks = ks.as_ref();
        let a = node(*ks.first().expect("every transaction has a key"), &mut parent);
        first.push(a);
        for (j, k) in ks.iter().enumerate().skip(1) {
            // Keys repeat (a sender named again): skip them before hashing.
            if ks[..j].contains(k) {
                continue;
            }
            let b = node(*k, &mut parent);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra] = rb;
            }
        }
    }
    // Group numbers in order of first transaction, then the transactions placed by counting.
    let mut group_of: Vec<usize> = vec![usize::MAX; parent.len()];
    let mut sizes: Vec<usize> = Vec::new();
    let tx_group: Vec<usize> = first
        .into_iter()
        .map(|a| {
            let r = root(&mut parent, a);
            if group_of[r] == usize::MAX {
                group_of[r] = sizes.len();
                sizes.push(0);
            }
            sizes[group_of[r]] += 1;
            group_of[r]
        })
        .collect();
    let mut starts = Vec::with_capacity(sizes.len() + 1);
    starts.push(0);
    starts.extend(sizes.iter().scan(0, |sum, n| {
        *sum += n;
        Some(*sum)
    }));
    let mut next = starts[..sizes.len()].to_vec();
    let mut txs = vec![0; tx_group.len()];
    for (tx, g) in tx_group.into_iter().enumerate() {
        txs[next[g]] = tx;
        next[g] += 1;
    }
    Groups { txs, starts }
}
