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
use std::borrow::Cow;

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
    fn resolve(&self, child: &RlpNode, path: &Nibbles) -> Result<Cow<'_, TrieNode>, TrieError> {
        match child.as_hash() {
            Some(hash) => match self.nodes.get(&hash) {
                Some(Ok(node)) => Ok(Cow::Borrowed(node)),
                Some(Err(reason)) => Err(TrieError::InvalidNode { hash, path: path_hex(path), reason: reason.clone() }),
                None => Err(TrieError::MissingNode { hash, path: path_hex(path) }),
            },
            None => TrieNode::decode(&mut child.as_slice()).map(Cow::Owned).map_err(|e| TrieError::InvalidNode {
                hash: keccak256(child.as_slice()),
                path: path_hex(path),
                reason: e.to_string(),
            }),
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
            let node = self.resolve(&child, &key.slice(..depth))?;
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
            let Ok(node) = self.resolve(&child, &path) else {
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

/// A node of the sparse trie: revealed, or held by its reference (hash or embedded RLP).
#[derive(Clone, Debug)]
enum Node {
    Empty,
    Blinded(RlpNode),
    Leaf(Nibbles, Vec<u8>),
    Extension(Nibbles, Box<Node>),
    Branch(Box<[Node; 16]>),
}

fn no_children() -> Box<[Node; 16]> {
    Box::new(std::array::from_fn(|_| Node::Empty))
}

/// `node` under `prefix` (an extension), or `node` itself when the prefix is empty.
fn under(prefix: Nibbles, node: Node) -> Node {
    if prefix.is_empty() {
        node
    } else {
        Node::Extension(prefix, Box::new(node))
    }
}

/// A key and its new value (`None`: the key is removed).
pub type Update = (B256, Option<Vec<u8>>);

/// A trie with 32-byte keys (hashed addresses or slots) revealed on demand from a `NodeMap`.
/// After an error the trie is left in an unspecified state: drop it.
pub struct SparseTrie<'a> {
    nodes: &'a NodeMap,
    root: Node,
}

impl<'a> SparseTrie<'a> {
    /// The trie of `root`, nothing revealed yet.
    pub fn new(nodes: &'a NodeMap, root: B256) -> Self {
        let root = if root == EMPTY_ROOT_HASH { Node::Empty } else { Node::Blinded(RlpNode::word_rlp(&root)) };
        Self { nodes, root }
    }

    /// The node behind a reference, its children held by reference. Built from the decoded node
    /// in place (no copy of the decoded node first: revealing is a third of a root's cost).
    fn reveal(&self, reference: &RlpNode, path: &Nibbles) -> Result<Node, TrieError> {
        let node = self.nodes.resolve(reference, path)?;
        Ok(match node.as_ref() {
            TrieNode::EmptyRoot => Node::Empty,
            TrieNode::Leaf(leaf) => Node::Leaf(leaf.key, leaf.value.clone()),
            TrieNode::Extension(ext) => Node::Extension(ext.key, Box::new(Node::Blinded(ext.child.clone()))),
            TrieNode::Branch(branch) => {
                let mut children = no_children();
                let mut stack = branch.stack.iter();
                for nibble in 0..16u8 {
                    if branch.state_mask.is_bit_set(nibble) {
                        let child = stack.next().ok_or_else(|| TrieError::InvalidNode {
                            hash: reference.as_hash().unwrap_or_default(),
                            path: path_hex(path),
                            reason: "fewer children than its mask".into(),
                        })?;
                        children[nibble as usize] = Node::Blinded(child.clone());
                    }
                }
                Node::Branch(children)
            }
        })
    }

    /// Applies `updates` (a value, or `None` to remove the key; writes before removals) and
    /// returns the root. Under a root branch the sixteen subtries are updated and hashed on all
    /// cores: for the account trie, which every changed account passes through.
    pub fn apply_parallel(&mut self, updates: &[Update]) -> Result<B256, TrieError> {
        use rayon::prelude::*;
        if let Node::Blinded(reference) = &self.root {
            self.root = self.reveal(reference, &Nibbles::new())?;
        }
        if !matches!(self.root, Node::Branch(_)) {
            for (key, value) in updates.iter().filter(|(_, v)| v.is_some()) {
                self.insert(key, value.clone().unwrap_or_default())?;
            }
            for (key, _) in updates.iter().filter(|(_, v)| v.is_none()) {
                self.remove(key)?;
            }
            return Ok(self.root());
        }
        let Node::Branch(children) = std::mem::replace(&mut self.root, Node::Empty) else { unreachable!("a branch") };
        let mut groups: [Vec<&Update>; 16] = Default::default();
        for update in updates {
            groups[(update.0[0] >> 4) as usize].push(update);
        }
        let this = &*self;
        let subtries = children
            .into_iter()
            .zip(groups)
            .enumerate()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(nibble, (mut child, group))| {
                let prefix = Nibbles::from_nibbles_unchecked([nibble as u8]);
                for (key, value) in group.iter().filter(|(_, v)| v.is_some()) {
                    let rest = Nibbles::unpack(key).slice(1..);
                    child = this.insert_at(child, prefix, rest, value.clone().unwrap_or_default())?;
                }
                for (key, _) in group.iter().filter(|(_, v)| v.is_none()) {
                    child = this.remove_at(child, prefix, Nibbles::unpack(key).slice(1..))?;
                }
                let hashed = (!matches!(child, Node::Empty)).then(|| reference(&child));
                Ok((child, hashed))
            })
            .collect::<Result<Vec<_>, TrieError>>()?;
        let mut children = no_children();
        let (mut stack, mut mask) = (Vec::with_capacity(16), TrieMask::default());
        for (nibble, (child, hashed)) in subtries.into_iter().enumerate() {
            if let Some(hashed) = hashed {
                stack.push(hashed);
                mask.set_bit(nibble as u8);
            }
            children[nibble] = child;
        }
        if stack.len() >= 2 {
            self.root = Node::Branch(children);
            let mut buf = Vec::with_capacity(544);
            BranchNodeRef::new(&stack, mask).encode(&mut buf);
            return Ok(keccak256(&buf));
        }
        // Deletions left the root branch with one child or none: it collapses as in `remove`.
        self.root = self.collapse(children, Nibbles::new())?;
        Ok(self.root())
    }

    /// Sets the value at `key` (a non-empty leaf value).
    pub fn insert(&mut self, key: &B256, value: Vec<u8>) -> Result<(), TrieError> {
        let root = std::mem::replace(&mut self.root, Node::Empty);
        self.root = self.insert_at(root, Nibbles::new(), Nibbles::unpack(key), value)?;
        Ok(())
    }

    /// `key` is the rest of the path below `prefix`.
    fn insert_at(&self, node: Node, prefix: Nibbles, key: Nibbles, value: Vec<u8>) -> Result<Node, TrieError> {
        Ok(match node {
            Node::Empty => Node::Leaf(key, value),
            Node::Blinded(reference) => {
                let revealed = self.reveal(&reference, &prefix)?;
                return self.insert_at(revealed, prefix, key, value);
            }
            Node::Leaf(k, v) if k == key => {
                let _ = v;
                Node::Leaf(k, value)
            }
            Node::Leaf(k, v) => {
                // Keys all have 64 nibbles: two different ones part before either ends.
                let common = k.common_prefix_length(&key);
                let mut children = no_children();
                children[k.get_unchecked(common) as usize] = Node::Leaf(k.slice(common + 1..), v);
                children[key.get_unchecked(common) as usize] = Node::Leaf(key.slice(common + 1..), value);
                under(k.slice(..common), Node::Branch(children))
            }
            Node::Extension(k, child) => {
                let common = k.common_prefix_length(&key);
                if common == k.len() {
                    let child = self.insert_at(*child, prefix.join(&k), key.slice(common..), value)?;
                    return Ok(Node::Extension(k, Box::new(child)));
                }
                let mut children = no_children();
                let rest = k.slice(common + 1..);
                children[k.get_unchecked(common) as usize] = under(rest, *child);
                children[key.get_unchecked(common) as usize] = Node::Leaf(key.slice(common + 1..), value);
                under(k.slice(..common), Node::Branch(children))
            }
            Node::Branch(mut children) => {
                let nibble = key.get_unchecked(0);
                let mut path = prefix;
                path.push(nibble);
                let child = std::mem::replace(&mut children[nibble as usize], Node::Empty);
                children[nibble as usize] = self.insert_at(child, path, key.slice(1..), value)?;
                Node::Branch(children)
            }
        })
    }

    /// Removes `key` (nothing happens when it is absent). A branch left with one child merges
    /// with it: that child must be revealed, so the witness must hold it.
    pub fn remove(&mut self, key: &B256) -> Result<(), TrieError> {
        let root = std::mem::replace(&mut self.root, Node::Empty);
        self.root = self.remove_at(root, Nibbles::new(), Nibbles::unpack(key))?;
        Ok(())
    }

    fn remove_at(&self, node: Node, prefix: Nibbles, key: Nibbles) -> Result<Node, TrieError> {
        Ok(match node {
            Node::Empty => Node::Empty,
            Node::Blinded(reference) => {
                let revealed = self.reveal(&reference, &prefix)?;
                return self.remove_at(revealed, prefix, key);
            }
            Node::Leaf(k, v) => {
                if k == key {
                    Node::Empty
                } else {
                    Node::Leaf(k, v)
                }
            }
            Node::Extension(k, child) => {
                if !key.starts_with(&k) {
                    return Ok(Node::Extension(k, child));
                }
                match self.remove_at(*child, prefix.join(&k), key.slice(k.len()..))? {
                    Node::Empty => Node::Empty,
                    Node::Leaf(rest, v) => Node::Leaf(k.join(&rest), v),
                    Node::Extension(rest, c) => Node::Extension(k.join(&rest), c),
                    other => Node::Extension(k, Box::new(other)),
                }
            }
            Node::Branch(mut children) => {
                let nibble = key.get_unchecked(0);
                let mut path = prefix;
                path.push(nibble);
                let child = std::mem::replace(&mut children[nibble as usize], Node::Empty);
                children[nibble as usize] = self.remove_at(child, path, key.slice(1..))?;
                let mut live = children.iter().enumerate().filter(|(_, c)| !matches!(c, Node::Empty)).map(|(i, _)| i);
                match (live.next(), live.next()) {
                    (Some(_), Some(_)) => Node::Branch(children),
                    _ => self.collapse(children, prefix)?,
                }
            }
        })
    }

    /// A branch at `prefix` left with at most one child merges with it; that child must be
    /// revealed (the sibling node a witness carries for this).
    fn collapse(&self, mut children: Box<[Node; 16]>, prefix: Nibbles) -> Result<Node, TrieError> {
        let Some(only) = children.iter().position(|c| !matches!(c, Node::Empty)) else { return Ok(Node::Empty) };
        let mut path = prefix;
        path.push(only as u8);
        let mut child = std::mem::replace(&mut children[only], Node::Empty);
        if let Node::Blinded(reference) = &child {
            child = self.reveal(reference, &path)?;
        }
        let nibble = Nibbles::from_nibbles_unchecked([only as u8]);
        Ok(match child {
            Node::Leaf(rest, v) => Node::Leaf(nibble.join(&rest), v),
            Node::Extension(rest, c) => Node::Extension(nibble.join(&rest), c),
            other => Node::Extension(nibble, Box::new(other)),
        })
    }

    /// The root hash. Subtries never revealed are not rehashed.
    pub fn root(&self) -> B256 {
        match &self.root {
            Node::Empty => EMPTY_ROOT_HASH,
            Node::Blinded(reference) => reference.as_hash().unwrap_or_else(|| keccak256(reference.as_slice())),
            node => {
                let mut buf = Vec::with_capacity(544);
                encode(node, &mut buf);
                keccak256(&buf)
            }
        }
    }
}

/// How a parent refers to `node`: its RLP when under 32 bytes, else the hash of it.
fn reference(node: &Node) -> RlpNode {
    match node {
        Node::Blinded(reference) => reference.clone(),
        node => {
            let mut buf = Vec::with_capacity(544);
            encode(node, &mut buf);
            RlpNode::from_rlp(&buf)
        }
    }
}

fn encode(node: &Node, buf: &mut Vec<u8>) {
    match node {
        Node::Empty => buf.push(EMPTY_STRING_CODE),
        Node::Blinded(reference) => buf.extend_from_slice(reference.as_slice()),
        Node::Leaf(key, value) => LeafNodeRef::new(key, value).encode(buf),
        Node::Extension(key, child) => {
            let child = reference(child);
            ExtensionNodeRef::new(key, &child).encode(buf)
        }
        Node::Branch(children) => {
            let mut stack = Vec::with_capacity(16);
            let mut mask = TrieMask::default();
            for (i, child) in children.iter().enumerate() {
                if !matches!(child, Node::Empty) {
                    stack.push(reference(child));
                    mask.set_bit(i as u8);
                }
            }
            BranchNodeRef::new(&stack, mask).encode(buf)
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
            let apply = |nodes: &NodeMap, root: B256| -> Result<B256, TrieError> {
                let mut trie = SparseTrie::new(nodes, root);
                for (k, v) in &changes {
                    match v {
                        Some(v) => trie.insert(k, v.clone())?,
                        None => trie.remove(k)?,
                    }
                }
                Ok(trie.root())
            };
            // Only the touched paths revealed: the right root, or an error naming the sibling a
            // collapse needed; never a wrong root.
            let (root, nodes) = build(&leaves, &touched);
            assert_eq!(SparseTrie::new(&nodes, root).root(), root, "round {round}: untouched trie keeps its root");
            match apply(&nodes, root) {
                Ok(got) => assert_eq!(got, expected, "round {round}"),
                Err(TrieError::MissingNode { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
            // Everything revealed: always the right root.
            let all: Vec<B256> = leaves.keys().copied().chain(touched.iter().copied()).collect();
            let (root, nodes) = build(&leaves, &all);
            assert_eq!(apply(&nodes, root).unwrap(), expected, "round {round}: fully revealed");
            // The last change of each key, applied on all cores.
            let last: BTreeMap<B256, Option<Vec<u8>>> = changes.iter().cloned().collect();
            let updates: Vec<_> = last.into_iter().collect();
            assert_eq!(SparseTrie::new(&nodes, root).apply_parallel(&updates).unwrap(), expected, "round {round}: parallel");
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
        let mut trie = SparseTrie::new(&nodes, root);
        let err = trie.remove(&B256::repeat_byte(0x11)).unwrap_err();
        assert!(matches!(&err, TrieError::MissingNode { path, .. } if path == "2"), "{err}");
    }
}
