//! The relay's in-memory sparse Merkle map (docs/PROTOCOL.md §16.4): one
//! leaf per label at its VRF index, each holding its version chain; the
//! root of every published epoch and the proofs of §16.5-16.6 come from it.
//!
//! Only non-empty subtrees are ever hashed: an empty one is `E[d]`, a
//! subtree with one leaf is that leaf folded up past empty siblings, and
//! each subtree hash computed is cached until a leaf under it changes, so
//! publishing a version re-hashes one path, not the map.
//!
//! Must never: give two labels one leaf, rewrite or drop a published
//! version, or publish a version in an epoch not after the label's last.

use std::collections::{BTreeMap, HashMap};

use super::error::KtError;
use super::label::KtLabel;
use super::leaf::{chain_hash, leaf_hash, Hash32, LeafValue, VersionRecord};
use super::proof::{HistoryProof, LookupProof, MapPath};
use super::tree::{empty_hash, fold_up, node_hash, MapRoot};
use super::vrf::{LeafIndex, VrfProof, VrfSecretKey};
use crate::limits::{KT_MAP_DEPTH, KT_MAX_HISTORY_VERSIONS};

/// One label's leaf: its versions and their chain hashes (`chains[i]` is
/// `C_{i+1}`).
#[derive(Clone, Debug)]
struct Leaf {
    kind: u8,
    versions: Vec<VersionRecord>,
    chains: Vec<Hash32>,
}

/// The key-transparency map a relay builds (§16.4).
#[derive(Default, Debug)]
pub struct KtMap {
    leaves: BTreeMap<LeafIndex, Leaf>,
    /// Hash of each non-empty subtree computed since its last change,
    /// keyed by (depth, index prefix with the bits below depth cleared).
    cache: HashMap<(u16, [u8; 32]), Hash32>,
}

impl KtMap {
    /// An empty map (its root is `E[0]`).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many labels the map holds.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether the map holds no label.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The newest version at `index`, if any.
    pub fn latest(&self, index: &LeafIndex) -> Option<&VersionRecord> {
        self.leaves.get(index).and_then(|l| l.versions.last())
    }

    /// Appends a version with `value` in `epoch` to the leaf at `index` (its
    /// VRF index; the relay keeps it, as it keeps the VRF proof).
    pub fn publish(
        &mut self,
        index: LeafIndex,
        value: LeafValue,
        epoch: u64,
    ) -> Result<VersionRecord, KtError> {
        let leaf = self.leaves.entry(index).or_insert_with(|| Leaf {
            kind: value.kind(),
            versions: Vec::new(),
            chains: Vec::new(),
        });
        if leaf.kind != value.kind() {
            return Err(KtError::ValueKindMismatch);
        }
        if let Some(last) = leaf.versions.last() {
            if epoch <= last.epoch {
                return Err(KtError::EpochNotAfterLatest {
                    epoch,
                    latest: last.epoch,
                });
            }
        }
        let record = VersionRecord {
            version: leaf.versions.len() as u64 + 1,
            epoch,
            value,
        };
        let prev = leaf.chains.last().copied().unwrap_or([0; 32]);
        leaf.chains.push(chain_hash(&record, &prev));
        leaf.versions.push(record);
        for depth in 0..=KT_MAP_DEPTH {
            self.cache.remove(&(depth as u16, prefix(&index, depth)));
        }
        Ok(record)
    }

    /// [`publish`](Self::publish) for a label, computing its index.
    pub fn publish_label(
        &mut self,
        vrf: &VrfSecretKey,
        label: &KtLabel,
        value: LeafValue,
        epoch: u64,
    ) -> Result<VersionRecord, KtError> {
        if value.kind() != label.kind() {
            return Err(KtError::ValueKindMismatch);
        }
        let (index, _) = vrf.evaluate(label);
        self.publish(index, value, epoch)
    }

    /// The map's root now.
    pub fn root(&mut self) -> MapRoot {
        MapRoot(self.subtree(0, [0; 32]))
    }

    /// The lookup proof of the leaf at `index`, whose VRF proof is `vrf`.
    pub fn lookup_proof(&mut self, index: &LeafIndex, vrf: VrfProof) -> LookupProof {
        let path = self.path(index);
        match self.leaves.get(index) {
            None => LookupProof::Absent { vrf, path },
            Some(leaf) => {
                let n = leaf.versions.len();
                LookupProof::Present {
                    vrf,
                    latest: leaf.versions[n - 1],
                    prev_chain: if n >= 2 { leaf.chains[n - 2] } else { [0; 32] },
                    path,
                }
            }
        }
    }

    /// [`lookup_proof`](Self::lookup_proof) for a label.
    pub fn prove_lookup(&mut self, vrf: &VrfSecretKey, label: &KtLabel) -> LookupProof {
        let (index, proof) = vrf.evaluate(label);
        self.lookup_proof(&index, proof)
    }

    /// The history proof of versions `first_version..=` newest (at most
    /// `KT_MAX_HISTORY_VERSIONS` of them: a longer history is asked for in
    /// ranges) of the leaf at `index`.
    pub fn history_proof(
        &mut self,
        index: &LeafIndex,
        vrf: VrfProof,
        first_version: u64,
    ) -> Result<HistoryProof, KtError> {
        let leaf = self.leaves.get(index).ok_or(KtError::UnknownLabel)?;
        let n = leaf.versions.len() as u64;
        if first_version == 0 || first_version > n {
            return Err(KtError::BadRange);
        }
        let count = n - first_version + 1;
        if count > KT_MAX_HISTORY_VERSIONS as u64 {
            return Err(KtError::TooMany {
                what: "history proof versions",
                count: usize::try_from(count).unwrap_or(usize::MAX),
                limit: KT_MAX_HISTORY_VERSIONS,
            });
        }
        let from = (first_version - 1) as usize;
        let prior_chain = if from == 0 {
            [0; 32]
        } else {
            leaf.chains[from - 1]
        };
        let versions = leaf.versions[from..]
            .iter()
            .map(|r| (r.epoch, r.value))
            .collect();
        let path = self.path(index);
        Ok(HistoryProof {
            vrf,
            first_version,
            prior_chain,
            versions,
            path,
        })
    }

    /// [`history_proof`](Self::history_proof) for a label.
    pub fn prove_history(
        &mut self,
        vrf: &VrfSecretKey,
        label: &KtLabel,
        first_version: u64,
    ) -> Result<HistoryProof, KtError> {
        let (index, proof) = vrf.evaluate(label);
        self.history_proof(&index, proof, first_version)
    }

    /// The siblings of `index`'s path, depth 1 to 256.
    fn path(&mut self, index: &LeafIndex) -> MapPath {
        let mut siblings = Vec::with_capacity(KT_MAP_DEPTH);
        for j in 0..KT_MAP_DEPTH {
            let mut sib = prefix(index, j + 1);
            sib[j / 8] ^= 0x80 >> (j % 8);
            let h = self.subtree(j + 1, sib);
            siblings.push((h != *empty_hash(j + 1)).then_some(h));
        }
        MapPath::new(siblings)
    }

    /// The hash of the subtree at `depth` whose leaves share `prefix`'s
    /// first `depth` bits (the rest of `prefix` is zero).
    fn subtree(&mut self, depth: usize, prefix_bytes: [u8; 32]) -> Hash32 {
        if let Some(h) = self.cache.get(&(depth as u16, prefix_bytes)) {
            return *h;
        }
        let lo = LeafIndex(prefix_bytes);
        let hi = LeafIndex(fill_ones(prefix_bytes, depth));
        let mut range = self.leaves.range(lo..=hi);
        let h = match (range.next(), range.next()) {
            (None, _) => return *empty_hash(depth),
            (Some((index, leaf)), None) => {
                let chain = leaf.chains.last().expect("a leaf has a version");
                fold_up(index, leaf_hash(index, chain), depth, |j| {
                    *empty_hash(j + 1)
                })
            }
            _ => {
                let left = self.subtree(depth + 1, prefix_bytes);
                let mut right_prefix = prefix_bytes;
                right_prefix[depth / 8] |= 0x80 >> (depth % 8);
                let right = self.subtree(depth + 1, right_prefix);
                node_hash(&left, &right)
            }
        };
        self.cache.insert((depth as u16, prefix_bytes), h);
        h
    }
}

/// The first `depth` bits of `index`, the rest cleared.
fn prefix(index: &LeafIndex, depth: usize) -> [u8; 32] {
    let mut p = index.0;
    for (i, byte) in p.iter_mut().enumerate() {
        let keep = depth.saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    p
}

/// `prefix` with every bit from `depth` on set: the last index under it.
fn fill_ones(mut p: [u8; 32], depth: usize) -> [u8; 32] {
    for (i, byte) in p.iter_mut().enumerate() {
        let keep = depth.saturating_sub(i * 8).min(8);
        *byte |= if keep == 8 { 0 } else { 0xffu8 >> keep };
    }
    p
}
