//! The sparse Merkle map's hashing (docs/PROTOCOL.md §16.4): node hashes,
//! the fixed hashes of empty subtrees, and the fold of a path from a leaf up
//! to the root, shared by the builder and the verifier so both compute the
//! same tree.
//!
//! Must never: allocate per level or depend on anything but its inputs.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::leaf::Hash32;
use super::vrf::LeafIndex;
use crate::labels::{KT_EMPTY, KT_NODE};
use crate::limits::KT_MAP_DEPTH;

/// The root of the map in one epoch.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapRoot(pub Hash32);

impl std::fmt::Debug for MapRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MapRoot({})", hex::encode(self.0))
    }
}

/// `SHA-256(KT_NODE || left || right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(KT_NODE);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `E[d]`, the hash of an empty subtree whose root is at depth `d`
/// (0 = the map root, 256 = a leaf): `E[256] = SHA-256(KT_EMPTY)`,
/// `E[d] = node(E[d+1], E[d+1])`.
pub fn empty_hash(depth: usize) -> &'static Hash32 {
    static TABLE: OnceLock<Vec<Hash32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = vec![[0u8; 32]; KT_MAP_DEPTH + 1];
        table[KT_MAP_DEPTH] = Sha256::digest(KT_EMPTY).into();
        for d in (0..KT_MAP_DEPTH).rev() {
            table[d] = node_hash(&table[d + 1], &table[d + 1]);
        }
        table
    });
    &table[depth]
}

/// The root of the map as seen from `index`, whose own subtree at depth
/// `KT_MAP_DEPTH` hashes to `leaf`, given the sibling at each depth
/// `j + 1` by `sibling(j)` for `j` from 255 down to `stop` (the node
/// returned is at depth `stop`).
pub fn fold_up(
    index: &LeafIndex,
    leaf: Hash32,
    stop: usize,
    mut sibling: impl FnMut(usize) -> Hash32,
) -> Hash32 {
    let mut h = leaf;
    for j in (stop..KT_MAP_DEPTH).rev() {
        let s = sibling(j);
        h = if index.bit(j) {
            node_hash(&s, &h)
        } else {
            node_hash(&h, &s)
        };
    }
    h
}
