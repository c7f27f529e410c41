//! A sparse Merkle-Patricia trie over alloy-trie's node types: the nodes a witness reveals, the
//! rest held by hash. Reads walk the revealed nodes and fail, naming the node, where a path
//! leaves them (never an empty read for a key the witness does not prove); updates and
//! deletions reveal what they pass through, including the sibling a deletion collapses a
//! branch into; the root rehashes only what changed.
//!
//! Written here rather than taken from crates.io: the maintained sparse tries live in reth (not
//! published there) and kona-mpt pulls in op-alloy and alloy 1.x beside our alloy 2.x.

use alloy_primitives::{keccak256, B256};
use alloy_rlp::{Decodable, Encodable, EMPTY_STRING_CODE};
use alloy_trie::{
    nodes::{BranchNode, BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
    Nibbles, TrieMask, EMPTY_ROOT_HASH,
};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::{borrow::Cow, cell::RefCell};

/// A node a walk needed and could not use.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrieError {
    #[error("trie node {hash} at path 0x{path} is not in the witness")]
    MissingNode { hash: B256, path: String },
    #[error("trie node {hash} at path 0x{path} is not a valid trie node: {reason}")]
    InvalidNode { hash: B256, path: String, reason: String },
}

fn path_hex(path: &Nibbles) -> String {
    path.iter().map(|n| char::from_digit(n as u32, 16).unwrap_or('?')).collect()
}

/// The trie nodes of a witness by the keccak of their RLP, decoded once. A node that does not
/// decode is kept with its error, reported when a walk reaches it.
#[derive(Debug, Default)]
pub struct NodeMap {
    nodes: FxHashMap<B256, Result<TrieNode, String>>,
}

/// The child of a branch at `nibble`, if any.
fn branch_child(branch: &BranchNode, nibble: u8) -> Option<&RlpNode> {
    if !branch.state_mask.is_bit_set(nibble) {
        return None;
    }
    let below = branch.state_mask.get() & ((1u16 << nibble) - 1);
    branch.stack.get(below.count_ones() as usize)
}

impl NodeMap {
    /// From RLP-encoded nodes (any order; duplicates are harmless).
    pub fn from_rlp<T: AsRef<[u8]>>(nodes: &[T]) -> Self {
        let mut map = FxHashMap::default();
        map.reserve(nodes.len());
        for rlp in nodes {
            let rlp = rlp.as_ref();
            let decoded = TrieNode::decode(&mut &rlp[..]).map_err(|e| e.to_string());
            map.insert(keccak256(rlp), decoded);
        }
        Self { nodes: map }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.nodes.contains_key(hash)
    }

    /// The node a reference points to: looked up by hash, or decoded in place when embedded
    /// (nodes under 32 bytes are inlined in their parent).
    /// `path` (the node's place in the trie) is only worked out for an error.
    fn resolve(&self, child: &RlpNode, path: impl FnOnce() -> Nibbles) -> Result<Cow<'_, TrieNode>, TrieError> {
        match child.as_hash() {
            Some(hash) => match self.nodes.get(&hash) {
                Some(Ok(node)) => Ok(Cow::Borrowed(node)),
                Some(Err(reason)) => Err(TrieError::InvalidNode { hash, path: path_hex(&path()), reason: reason.clone() }),
                None => Err(TrieError::MissingNode { hash, path: path_hex(&path()) }),
            },
            None => TrieNode::decode(&mut child.as_slice()).map(Cow::Owned).map_err(|e| TrieError::InvalidNode {
                hash: keccak256(child.as_slice()),
                path: path_hex(&path()),
                reason: e.to_string(),
            }),
        }
    }

    /// Brings the node behind `child` (and a branch's children) into the cache ahead of its
    /// walk: a branch's changed children are looked up together, their memory loads
    /// overlapping, rather than each waiting on memory after the subtrie before it is hashed.
    fn prefetch(&self, child: &RlpNode) {
        let Some(Ok(node)) = child.as_hash().and_then(|hash| self.nodes.get(&hash)) else { return };
        if let TrieNode::Branch(branch) = node {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let bytes = std::mem::size_of_val(branch.stack.as_slice());
                let start = branch.stack.as_ptr().cast::<i8>();
                for offset in (0..bytes).step_by(64) {
                    // SAFETY: a prefetch is a hint (every x86_64 has SSE); it never faults, and
                    // the addresses are within the stack's allocation.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
                }
            }
        }
    }

    /// The leaf value at `key` in the trie of `root`: `Ok(None)` when the revealed nodes prove
    /// the key absent, an error when its path leaves them.
    pub fn get(&self, root: B256, key: &B256) -> Result<Option<Vec<u8>>, TrieError> {
        if root == EMPTY_ROOT_HASH {
            return Ok(None);
        }
        let key = Nibbles::unpack(key);
        let mut child = RlpNode::word_rlp(&root);
        let mut depth = 0;
        loop {
            let node = self.resolve(&child, || key.slice(..depth))?;
            match node.as_ref() {
                TrieNode::EmptyRoot => return Ok(None),
                TrieNode::Leaf(leaf) => return Ok((key.slice(depth..) == leaf.key).then(|| leaf.value.clone())),
                TrieNode::Extension(ext) => {
                    if !key.slice(depth..).starts_with(&ext.key) {
                        return Ok(None);
                    }
                    depth += ext.key.len();
                    child = ext.child.clone();
                }
                TrieNode::Branch(branch) => {
                    let Some(next) = key.get(depth).and_then(|nibble| branch_child(branch, nibble)) else {
                        return Ok(None);
                    };
                    child = next.clone();
                    depth += 1;
                }
            }
        }
    }

    /// Every leaf under `root` that the nodes reveal (full 64-nibble path and value); subtries
    /// held only by hash are skipped.
    pub fn leaves(&self, root: B256, mut f: impl FnMut(B256, &[u8])) {
        if root == EMPTY_ROOT_HASH {
            return;
        }
        let mut stack = vec![(RlpNode::word_rlp(&root), Nibbles::new())];
        while let Some((child, path)) = stack.pop() {
            let Ok(node) = self.resolve(&child, || path) else {
                continue;
            };
            match node.as_ref() {
                TrieNode::EmptyRoot => {}
                TrieNode::Leaf(leaf) => {
                    let full = path.join(&leaf.key);
                    if full.len() == 64 {
                        f(B256::from_slice(&full.pack()), &leaf.value);
                    }
                }
                TrieNode::Extension(ext) => stack.push((ext.child.clone(), path.join(&ext.key))),
                TrieNode::Branch(branch) => {
                    let mut children = branch.stack.iter();
                    for nibble in 0..16u8 {
                        if branch.state_mask.is_bit_set(nibble) {
                            let Some(c) = children.next() else { break };
                            let mut p = path;
                            p.push(nibble);
                            stack.push((c.clone(), p));
                        }
                    }
                }
            }
        }
    }
}

/// A key and its new value (`None`: the key is removed).
pub type Update = (B256, Option<Vec<u8>>);

/// Changes below a subtrie: full 64-nibble keys, sorted, one per key.
type Changes<'a> = [(Nibbles, Option<&'a [u8]>)];

/// At least this many changes under a branch update its children on all cores: below it, a
/// task would cost more than the few nodes it hashes.
const PARALLEL_CHANGES: usize = 24;

/// A revealed node, borrowed from the witness (or owned when it was embedded in its parent).
enum Revealed<'a> {
    Empty,
    Leaf(Nibbles, Cow<'a, [u8]>),
    Extension(Nibbles, RlpNode),
    Branch(TrieMask, Cow<'a, [RlpNode]>),
}

/// A subtrie before the changes below it.
#[derive(Default)]
enum Before<'a> {
    #[default]
    Empty,
    /// Held by reference (hash or embedded RLP), not revealed.
    Ref(RlpNode),
    Leaf(Nibbles, Cow<'a, [u8]>),
    /// The rest of an extension a change split (its child is a branch).
    Extension(Nibbles, RlpNode),
}

/// The children of a branch before the changes.
enum Children<'a> {
    /// A revealed branch's: a mask and the references of the children it names.
    Revealed(TrieMask, Cow<'a, [RlpNode]>),
    /// The one a change that leaves an extension splits off, at its nibble.
    Split(u8, Before<'a>),
}

/// A subtrie after its changes, still open to its parent: a leaf's or an extension's key grows
/// when a branch above collapses onto it, so only branches are hashed on the way up.
#[derive(Default)]
enum After<'a> {
    #[default]
    Empty,
    /// Unchanged: its old reference (the known hash), its node not necessarily revealed.
    Same(RlpNode),
    /// A changed branch, hashed.
    Branch(RlpNode),
    Leaf(Nibbles, Cow<'a, [u8]>),
    Extension(Nibbles, RlpNode),
}

/// `after` under `prefix` (the key of an extension, or the nibble of a collapsed branch).
fn extend<'a>(prefix: &Nibbles, after: After<'a>) -> After<'a> {
    if prefix.is_empty() {
        return after;
    }
    match after {
        After::Empty => After::Empty,
        After::Same(child) | After::Branch(child) => After::Extension(*prefix, child),
        After::Leaf(key, value) => After::Leaf(prefix.join(&key), value),
        After::Extension(key, child) => After::Extension(prefix.join(&key), child),
    }
}

thread_local! {
    /// Where nodes are encoded before hashing: one buffer per thread rather than one
    /// allocation per node.
    static ENCODED: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(544));
}

/// `f` with this thread's encoding buffer, cleared. Not reentrant: `f` must not recurse.
fn with_buf<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    ENCODED.with_borrow_mut(|buf| {
        buf.clear();
        f(buf)
    })
}

/// How a parent refers to a subtrie that is not empty: its RLP when under 32 bytes, else its
/// hash.
fn reference(after: &After<'_>) -> RlpNode {
    match after {
        After::Empty => RlpNode::from_rlp(&[EMPTY_STRING_CODE]),
        After::Same(r) | After::Branch(r) => r.clone(),
        After::Leaf(key, value) => with_buf(|buf| LeafNodeRef::new(key, value).rlp(buf)),
        After::Extension(key, child) => with_buf(|buf| ExtensionNodeRef::new(key, child).rlp(buf)),
    }
}

/// The branch node of `stack` (two children or more), hashed.
fn hash_branch(stack: &[RlpNode], mask: TrieMask) -> After<'static> {
    After::Branch(with_buf(|buf| BranchNodeRef::new(stack, mask).rlp(buf)))
}

/// Children of a branch, at most 16: kept on the stack.
type PerNibble<T> = SmallVec<[T; 16]>;

/// The sub-ranges of sorted `keys` (which share their first `depth` nibbles) by their next nibble.
fn by_nibble<T>(keys: &[T], depth: usize, key: impl Fn(&T) -> &Nibbles) -> [&[T]; 16] {
    let mut groups: [&[T]; 16] = [&[]; 16];
    let mut rest = keys;
    while let Some(first) = rest.first() {
        let nibble = key(first).get_unchecked(depth);
        let end = rest.partition_point(|k| key(k).get_unchecked(depth) <= nibble);
        groups[nibble as usize] = &rest[..end];
        rest = &rest[end..];
    }
    groups
}

/// A trie with 32-byte keys (hashed addresses or slots) of which a `NodeMap` reveals the
/// nodes that the changes pass through.
pub struct SparseTrie<'a> {
    nodes: &'a NodeMap,
    root: B256,
    /// Branches with at least this many changes below update their children as rayon tasks.
    parallel_changes: usize,
}

impl<'a> SparseTrie<'a> {
    /// The trie of `root`, nothing revealed yet.
    pub fn new(nodes: &'a NodeMap, root: B256) -> Self {
        Self { nodes, root, parallel_changes: PARALLEL_CHANGES }
    }

    /// Updates every subtrie on the calling thread (no rayon tasks).
    pub fn sequential(mut self) -> Self {
        self.parallel_changes = usize::MAX;
        self
    }

    /// The root after `updates` (a value, or `None` to remove the key; the last update of a key
    /// wins). Only nodes on the changed paths are revealed and rehashed; an untouched subtrie
    /// keeps the hash its parent holds. Fails, naming the node, when a changed path or the
    /// sibling that a deletion collapses a branch onto is not in the witness. Large subtries
    /// are updated on all cores of the current rayon pool.
    pub fn root_after(&self, updates: &[Update]) -> Result<B256, TrieError> {
        let mut order: Vec<usize> = (0..updates.len()).collect();
        // Stable: equal keys stay in order, and the last of each run is kept.
        order.sort_by_key(|&i| updates[i].0);
        let mut changes: Vec<(Nibbles, Option<&[u8]>)> = Vec::with_capacity(updates.len());
        for (n, &i) in order.iter().enumerate() {
            if order.get(n + 1).is_some_and(|&next| updates[next].0 == updates[i].0) {
                continue;
            }
            changes.push((Nibbles::unpack(updates[i].0), updates[i].1.as_deref()));
        }
        let before = if self.root == EMPTY_ROOT_HASH { Before::Empty } else { Before::Ref(RlpNode::word_rlp(&self.root)) };
        // The root node is hashed whatever its size.
        Ok(match self.update(before, 0, &changes)? {
            After::Empty => EMPTY_ROOT_HASH,
            After::Same(r) | After::Branch(r) => r.as_hash().unwrap_or_else(|| keccak256(r.as_slice())),
            After::Leaf(key, value) => with_buf(|buf| {
                LeafNodeRef::new(&key, &value).encode(buf);
                keccak256(buf)
            }),
            After::Extension(key, child) => with_buf(|buf| {
                ExtensionNodeRef::new(&key, &child).encode(buf);
                keccak256(buf)
            }),
        })
    }

    /// The node behind `reference` at `path` (worked out for an error only), its children held
    /// by reference.
    fn reveal(&self, reference: &RlpNode, path: impl Fn() -> Nibbles) -> Result<Revealed<'a>, TrieError> {
        let revealed = match self.nodes.resolve(reference, &path)? {
            Cow::Borrowed(node) => match node {
                TrieNode::EmptyRoot => Revealed::Empty,
                TrieNode::Leaf(leaf) => Revealed::Leaf(leaf.key, Cow::Borrowed(&leaf.value)),
                TrieNode::Extension(ext) => Revealed::Extension(ext.key, ext.child.clone()),
                TrieNode::Branch(branch) => Revealed::Branch(branch.state_mask, Cow::Borrowed(&branch.stack)),
            },
            Cow::Owned(node) => match node {
                TrieNode::EmptyRoot => Revealed::Empty,
                TrieNode::Leaf(leaf) => Revealed::Leaf(leaf.key, Cow::Owned(leaf.value)),
                TrieNode::Extension(ext) => Revealed::Extension(ext.key, ext.child),
                TrieNode::Branch(branch) => Revealed::Branch(branch.state_mask, Cow::Owned(branch.stack)),
            },
        };
        let invalid = |reason: &str| TrieError::InvalidNode {
            hash: reference.as_hash().unwrap_or_else(|| keccak256(reference.as_slice())),
            path: path_hex(&path()),
            reason: reason.into(),
        };
        match &revealed {
            Revealed::Branch(mask, stack) if mask.len() != stack.len() || stack.len() < 2 => {
                Err(invalid("a branch whose children do not match its mask"))
            }
            Revealed::Extension(key, _) if key.is_empty() => Err(invalid("an extension with an empty key")),
            _ => Ok(revealed),
        }
    }

    /// `before` (at `depth` nibbles) with `changes` applied.
    fn update<'c>(&self, before: Before<'a>, depth: usize, changes: &Changes<'c>) -> Result<After<'c>, TrieError>
    where
        'a: 'c,
    {
        let Some((first, _)) = changes.first() else {
            return Ok(match before {
                Before::Empty => After::Empty,
                Before::Ref(r) => After::Same(r),
                Before::Leaf(key, value) => After::Leaf(key, value),
                Before::Extension(key, child) => After::Extension(key, child),
            });
        };
        match before {
            Before::Empty => {
                let leaves: SmallVec<[_; 4]> = changes.iter().filter_map(|(k, v)| v.map(|v| (*k, Cow::Borrowed(v)))).collect();
                Ok(from_leaves(depth, &leaves))
            }
            Before::Ref(reference) => match self.reveal(&reference, || first.slice(..depth))? {
                Revealed::Empty => self.update(Before::Empty, depth, changes),
                Revealed::Leaf(key, value) => self.update(Before::Leaf(key, value), depth, changes),
                Revealed::Extension(key, child) => self.update(Before::Extension(key, child), depth, changes),
                Revealed::Branch(mask, stack) => self.branch(Children::Revealed(mask, stack), depth, changes),
            },
            Before::Leaf(key, value) => {
                // The old leaf stays unless a change names its key.
                let old = first.slice(..depth).join(&key);
                let mut leaves: SmallVec<[_; 4]> = changes.iter().filter_map(|(k, v)| v.map(|v| (*k, Cow::Borrowed(v)))).collect();
                if changes.binary_search_by(|(k, _)| k.cmp(&old)).is_err() {
                    let at = leaves.partition_point(|(k, _)| *k < old);
                    leaves.insert(at, (old, value));
                }
                Ok(from_leaves(depth, &leaves))
            }
            Before::Extension(key, child) => {
                let full = first.slice(..depth).join(&key);
                let common = changes.iter().map(|(k, _)| k.common_prefix_length(&full)).min().unwrap_or(depth) - depth;
                if common == key.len() {
                    let after = self.update(Before::Ref(child), depth + key.len(), changes)?;
                    return Ok(extend(&key, after));
                }
                // A change leaves the extension: a branch where they part.
                let rest = key.slice(common + 1..);
                let split = if rest.is_empty() { Before::Ref(child) } else { Before::Extension(rest, child) };
                let after = self.branch(Children::Split(key.get_unchecked(common), split), depth + common, changes)?;
                Ok(extend(&key.slice(..common), after))
            }
        }
    }

    /// A branch at `depth` with `changes` applied below it: hashed when two children or more
    /// are left, merged into its one child otherwise (which must then be revealed: the sibling
    /// a witness carries for a deletion). Children without changes keep their reference.
    fn branch<'c>(&self, children: Children<'a>, depth: usize, changes: &Changes<'c>) -> Result<After<'c>, TrieError>
    where
        'a: 'c,
    {
        let groups = by_nibble(changes, depth, |(k, _)| k);
        let (mask, stack, mut split) = match children {
            Children::Revealed(mask, stack) => (mask, stack, None),
            Children::Split(nibble, before) => (TrieMask::default(), Cow::Borrowed(&[][..]), Some((nibble, before))),
        };
        let old = |nibble: u8| mask.is_bit_set(nibble).then(|| &stack[(mask.get() & ((1u16 << nibble) - 1)).count_ones() as usize]);
        let mut todo: Vec<(u8, Before<'a>, &Changes<'c>)> = Vec::with_capacity(4);
        let mut touched = TrieMask::default();
        for (nibble, group) in (0..16u8).zip(groups) {
            let before = match &split {
                Some((n, _)) if *n == nibble => split.take().map(|(_, b)| b).unwrap_or_default(),
                _ if group.is_empty() => continue,
                _ => old(nibble).map(|r| Before::Ref(r.clone())).unwrap_or_default(),
            };
            touched.set_bit(nibble);
            todo.push((nibble, before, group));
        }
        for (_, before, _) in &todo {
            if let Before::Ref(child) = before {
                self.nodes.prefetch(child);
            }
        }
        let run = |(nibble, before, group): (u8, Before<'a>, &Changes<'c>)| self.update(before, depth + 1, group).map(|a| (nibble, a));
        let after: Vec<(u8, After<'c>)> = if todo.len() > 1 && changes.len() >= self.parallel_changes {
            use rayon::prelude::*;
            // Collected whole, then the first error in nibble order: the same error on any pool.
            let results: Vec<_> = todo.into_par_iter().map(run).collect();
            results.into_iter().collect::<Result<_, _>>()?
        } else {
            todo.into_iter().map(run).collect::<Result<_, _>>()?
        };
        let kept = TrieMask::new(mask.get() & !touched.get());
        let live = kept.len() + after.iter().filter(|(_, a)| !matches!(a, After::Empty)).count();
        if live >= 2 {
            let (mut new_stack, mut new_mask) = (PerNibble::<RlpNode>::new(), TrieMask::default());
            let mut after = after.iter().peekable();
            for nibble in 0..16u8 {
                let reference = match after.peek() {
                    Some((n, a)) if *n == nibble => {
                        after.next();
                        (!matches!(a, After::Empty)).then(|| reference(a))
                    }
                    _ => old(nibble).cloned(),
                };
                if let Some(reference) = reference {
                    new_stack.push(reference);
                    new_mask.set_bit(nibble);
                }
            }
            return Ok(hash_branch(&new_stack, new_mask));
        }
        if live == 0 {
            return Ok(After::Empty);
        }
        let (only, child) = match after.into_iter().find(|(_, a)| !matches!(a, After::Empty)) {
            Some(changed) => changed,
            None => {
                let nibble = kept.first_set_bit_index().unwrap_or_default();
                (nibble, After::Same(old(nibble).cloned().unwrap_or_default()))
            }
        };
        let nibble = Nibbles::from_nibbles_unchecked([only]);
        let child = match child {
            After::Same(reference) => {
                let path = || changes[0].0.slice(..depth).join(&nibble);
                match self.reveal(&reference, path)? {
                    Revealed::Leaf(key, value) => After::Leaf(key, value),
                    Revealed::Extension(key, child) => After::Extension(key, child),
                    Revealed::Branch(..) => After::Branch(reference),
                    Revealed::Empty => {
                        return Err(TrieError::InvalidNode {
                            hash: reference.as_hash().unwrap_or_default(),
                            path: path_hex(&path()),
                            reason: "an empty node as a branch child".into(),
                        })
                    }
                }
            }
            other => other,
        };
        Ok(extend(&nibble, child))
    }
}

/// The subtrie at `depth` holding just `leaves` (sorted full keys, sharing `depth` nibbles).
fn from_leaves<'c>(depth: usize, leaves: &[(Nibbles, Cow<'c, [u8]>)]) -> After<'c> {
    match leaves {
        [] => After::Empty,
        [(key, value)] => After::Leaf(key.slice(depth..), value.clone()),
        [(first, _), .., (last, _)] => {
            // Keys all have 64 nibbles: two different ones part before either ends.
            let at = first.common_prefix_length(last);
            let (mut stack, mut mask) = (PerNibble::<RlpNode>::new(), TrieMask::default());
            for (nibble, group) in (0..16u8).zip(by_nibble(leaves, at, |(k, _)| k)) {
                if !group.is_empty() {
                    let child = from_leaves(at + 1, group);
                    stack.push(reference(&child));
                    mask.set_bit(nibble);
                }
            }
            extend(&first.slice(depth..at), hash_branch(&stack, mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_trie::{proof::ProofRetainer, HashBuilder};
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// The root of `leaves` and the nodes on the paths of `reveal` (a witness of those keys).
    fn build(leaves: &BTreeMap<B256, Vec<u8>>, reveal: &[B256]) -> (B256, NodeMap) {
        let targets = reveal.iter().map(Nibbles::unpack).collect();
        let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(targets));
        for (k, v) in leaves {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        let root = hb.root();
        let nodes: Vec<_> = hb.take_proof_nodes().into_inner().into_values().collect();
        (root, NodeMap::from_rlp(&nodes))
    }

    fn root_of(leaves: &BTreeMap<B256, Vec<u8>>) -> B256 {
        build(leaves, &[]).0
    }

    /// Random tries, keys with shared prefixes (so that extensions and collapses happen) and
    /// values long and short (so that nodes get embedded in their parents).
    fn random_key(rng: &mut impl Rng, pool: &[B256]) -> B256 {
        let mut k = if !pool.is_empty() && rng.random_bool(0.5) { pool[rng.random_range(0..pool.len())] } else { random_b256(rng) };
        let keep = rng.random_range(0..64usize);
        for i in keep / 2 + 1..32 {
            if rng.random_bool(0.5) {
                k.0[i] = rng.random();
            }
        }
        k
    }

    fn random_b256(rng: &mut impl Rng) -> B256 {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        B256::from(b)
    }

    fn random_value(rng: &mut impl Rng) -> Vec<u8> {
        let len = if rng.random_bool(0.5) { rng.random_range(1..4) } else { rng.random_range(30..80) };
        (0..len).map(|_| rng.random::<u8>() | 1).collect()
    }

    #[test]
    fn random_updates_and_deletions_match_the_hash_builder() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(26);
        for round in 0..300 {
            let n = rng.random_range(0..60);
            let mut leaves = BTreeMap::new();
            let mut pool = Vec::new();
            for _ in 0..n {
                let k = random_key(&mut rng, &pool);
                pool.push(k);
                leaves.insert(k, random_value(&mut rng));
            }
            // Changes: updates of present keys, new keys, deletions of present and absent keys.
            let mut changes: Vec<(B256, Option<Vec<u8>>)> = Vec::new();
            for _ in 0..rng.random_range(1..30) {
                let k = if !pool.is_empty() && rng.random_bool(0.7) {
                    pool[rng.random_range(0..pool.len())]
                } else {
                    random_key(&mut rng, &pool)
                };
                changes.push((k, rng.random_bool(0.5).then(|| random_value(&mut rng))));
            }
            let mut after = leaves.clone();
            for (k, v) in &changes {
                match v {
                    Some(v) => after.insert(*k, v.clone()),
                    None => after.remove(k),
                };
            }
            let expected = root_of(&after);
            let touched: Vec<B256> = changes.iter().map(|(k, _)| *k).collect();
            // Applied in one batch (the last change of a key wins), on the calling thread.
            let apply = |nodes: &NodeMap, root: B256| SparseTrie::new(nodes, root).sequential().root_after(&changes);
            // Only the touched paths revealed: the right root, or an error naming the sibling a
            // collapse needed; never a wrong root.
            let (root, nodes) = build(&leaves, &touched);
            assert_eq!(SparseTrie::new(&nodes, root).root_after(&[]).unwrap(), root, "round {round}: untouched trie keeps its root");
            match apply(&nodes, root) {
                Ok(got) => assert_eq!(got, expected, "round {round}"),
                Err(TrieError::MissingNode { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
            // Everything revealed: always the right root.
            let all: Vec<B256> = leaves.keys().copied().chain(touched.iter().copied()).collect();
            let (root, nodes) = build(&leaves, &all);
            assert_eq!(apply(&nodes, root).unwrap(), expected, "round {round}: fully revealed");
            // On all cores (every branch above a few changes splits into tasks), and with the
            // changes deduplicated beforehand.
            let parallel = SparseTrie { nodes: &nodes, root, parallel_changes: 2 };
            let split = |changes: &[Update]| changes.iter().cloned().collect::<BTreeMap<_, _>>().into_iter().collect::<Vec<_>>();
            assert_eq!(parallel.root_after(&changes).unwrap(), expected, "round {round}: parallel");
            assert_eq!(parallel.root_after(&split(&changes)).unwrap(), expected, "round {round}: last change of each key");
            // Reads along revealed paths: present keys give their value, absent ones nothing.
            for k in &touched {
                assert_eq!(nodes.get(root, k).unwrap(), leaves.get(k).cloned(), "round {round}: read");
            }
            let mut seen = BTreeMap::new();
            nodes.leaves(root, |k, v| {
                seen.insert(k, v.to_vec());
            });
            assert_eq!(seen, leaves, "round {round}: leaves walk");
        }
    }

    #[test]
    fn a_path_outside_the_witness_is_an_error_not_an_empty_read() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let leaves: BTreeMap<B256, Vec<u8>> = (0..200).map(|_| (random_b256(&mut rng), vec![1, 2, 3])).collect();
        let known = *leaves.keys().next().unwrap();
        let (root, nodes) = build(&leaves, &[known]);
        assert_eq!(nodes.get(root, &known).unwrap(), Some(vec![1, 2, 3]));
        let unknown = *leaves.keys().last().unwrap();
        assert!(matches!(nodes.get(root, &unknown), Err(TrieError::MissingNode { .. })));
        // Without the root node nothing can be read.
        assert!(matches!(NodeMap::default().get(root, &known), Err(TrieError::MissingNode { .. })));
        // A deletion that collapses onto an unrevealed sibling names it.
        let two: BTreeMap<B256, Vec<u8>> = [(B256::repeat_byte(0x11), vec![0xaa; 40]), (B256::repeat_byte(0x22), vec![0xbb; 40])].into();
        let (root, nodes) = build(&two, &[B256::repeat_byte(0x11)]);
        let err = SparseTrie::new(&nodes, root).root_after(&[(B256::repeat_byte(0x11), None)]).unwrap_err();
        assert!(matches!(&err, TrieError::MissingNode { path, .. } if path == "2"), "{err}");
    }
}
