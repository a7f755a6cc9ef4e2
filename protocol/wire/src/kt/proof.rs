//! Map proofs and their verification (docs/PROTOCOL.md §16.5, §16.6): the
//! lookup proof a client checks before it uses a key or a name's account
//! (membership with the latest version, or absence), and the history proof
//! an owner checks to see every version ever published under its label.
//!
//! Must never: accept a proof whose bytes are not in their one encoding, or
//! return a value before the VRF, the version chain and the path to the
//! root have all been checked.

use super::error::KtError;
use super::label::KtLabel;
use super::leaf::{chain_hash, leaf_hash, Hash32, LeafValue, VersionRecord};
use super::tree::{empty_hash, fold_up, MapRoot};
use super::vrf::{LeafIndex, VrfProof, VrfPublicKey, VRF_PROOF_LEN};
use crate::limits::{KT_MAP_DEPTH, KT_MAX_HISTORY_VERSIONS};

const BITMAP_LEN: usize = KT_MAP_DEPTH / 8;

/// The siblings of a leaf's path, from depth 1 (just below the root) to
/// depth 256 (the leaf's neighbour); `None` is an empty subtree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MapPath {
    siblings: Vec<Option<Hash32>>,
}

impl MapPath {
    /// A path from the siblings at depths 1..=256 in that order.
    pub(crate) fn new(siblings: Vec<Option<Hash32>>) -> Self {
        debug_assert_eq!(siblings.len(), KT_MAP_DEPTH);
        Self { siblings }
    }

    /// `bitmap (32) || the present siblings, shallowest first`: bit `j`
    /// (most significant bit of byte 0 first) is set iff the sibling at
    /// depth `j + 1` is not empty.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut bitmap = [0u8; BITMAP_LEN];
        for (j, s) in self.siblings.iter().enumerate() {
            if s.is_some() {
                bitmap[j / 8] |= 0x80 >> (j % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().flatten() {
            out.extend_from_slice(s);
        }
    }

    /// Decodes a path that is the whole of `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "map path";
        if bytes.len() < BITMAP_LEN {
            return Err(KtError::Truncated { what });
        }
        let (bitmap, mut rest) = bytes.split_at(BITMAP_LEN);
        let present = bitmap
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>();
        match rest.len().cmp(&(32 * present)) {
            std::cmp::Ordering::Less => return Err(KtError::Truncated { what }),
            std::cmp::Ordering::Greater => return Err(KtError::Trailing { what }),
            std::cmp::Ordering::Equal => {}
        }
        let mut siblings = Vec::with_capacity(KT_MAP_DEPTH);
        for j in 0..KT_MAP_DEPTH {
            if bitmap[j / 8] & (0x80 >> (j % 8)) != 0 {
                let (h, r) = rest.split_at(32);
                let h: Hash32 = h.try_into().expect("32 bytes");
                // A set bit names a non-empty subtree (§16.4): spelling out
                // E[j+1] would be a second encoding of the same path.
                if h == *empty_hash(j + 1) {
                    return Err(KtError::Malformed {
                        what: "map path sibling that is an empty subtree",
                    });
                }
                siblings.push(Some(h));
                rest = r;
            } else {
                siblings.push(None);
            }
        }
        Ok(Self { siblings })
    }

    /// The root this path gives for `index` whose leaf hashes to `leaf`.
    fn root_for(&self, index: &LeafIndex, leaf: Hash32) -> MapRoot {
        MapRoot(fold_up(index, leaf, 0, |j| {
            self.siblings[j].unwrap_or(*empty_hash(j + 1))
        }))
    }
}

/// Proof that a label holds a given latest version in a map, or none.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LookupProof {
    /// The label is in the map; `latest` is its newest version.
    Present {
        /// The label's VRF proof (its index).
        vrf: VrfProof,
        /// The newest version.
        latest: VersionRecord,
        /// The chain hash of the version before it (zero for version 1).
        prev_chain: Hash32,
        /// The leaf's path.
        path: MapPath,
    },
    /// The label's leaf is empty.
    Absent {
        /// The label's VRF proof (its index).
        vrf: VrfProof,
        /// The empty leaf's path.
        path: MapPath,
    },
}

/// What a verified lookup proof says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lookup {
    /// The label's newest version, and its chain hash (remember it: later
    /// answers must extend it).
    Present {
        /// The version.
        latest: VersionRecord,
        /// `C_n` of that version.
        chain: Hash32,
    },
    /// The label was never published.
    Absent,
}

const PRESENT: u8 = 0x01;
const ABSENT: u8 = 0x00;

impl LookupProof {
    /// The encoding of §16.5.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            LookupProof::Present {
                vrf,
                latest,
                prev_chain,
                path,
            } => {
                out.push(PRESENT);
                out.extend_from_slice(&vrf.0);
                out.extend_from_slice(&latest.version.to_be_bytes());
                out.extend_from_slice(&latest.epoch.to_be_bytes());
                out.extend_from_slice(&latest.value.encode());
                out.extend_from_slice(prev_chain);
                path.encode_into(&mut out);
            }
            LookupProof::Absent { vrf, path } => {
                out.push(ABSENT);
                out.extend_from_slice(&vrf.0);
                path.encode_into(&mut out);
            }
        }
        out
    }

    /// Decodes the encoding of §16.5; nothing is verified yet.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "lookup proof";
        let (&kind, rest) = bytes.split_first().ok_or(KtError::Truncated { what })?;
        if kind != PRESENT && kind != ABSENT {
            return Err(KtError::UnknownByte { what, byte: kind });
        }
        let (vrf, rest) = take_vrf(rest, what)?;
        if kind == ABSENT {
            let path = MapPath::decode(rest)?;
            return Ok(LookupProof::Absent { vrf, path });
        }
        let (version, rest) = take_u64(rest, what)?;
        let (epoch, rest) = take_u64(rest, what)?;
        let (value, rest) = LeafValue::take(rest)?;
        let (prev_chain, rest) = take_hash(rest, what)?;
        let path = MapPath::decode(rest)?;
        Ok(LookupProof::Present {
            vrf,
            latest: VersionRecord {
                version,
                epoch,
                value,
            },
            prev_chain,
            path,
        })
    }

    /// Checks the proof for `label` against `root`, the map root of the
    /// verified epoch head `head_epoch` (§16.5, steps 1-5).
    pub fn verify(
        &self,
        vrf_key: &VrfPublicKey,
        label: &KtLabel,
        root: &MapRoot,
        head_epoch: u64,
    ) -> Result<Lookup, KtError> {
        match self {
            LookupProof::Absent { vrf, path } => {
                let index = vrf_key.verify(label, vrf)?;
                if path.root_for(&index, *empty_hash(KT_MAP_DEPTH)) != *root {
                    return Err(KtError::RootMismatch);
                }
                Ok(Lookup::Absent)
            }
            LookupProof::Present {
                vrf,
                latest,
                prev_chain,
                path,
            } => {
                let index = vrf_key.verify(label, vrf)?;
                if latest.value.kind() != label.kind() {
                    return Err(KtError::ValueKindMismatch);
                }
                if latest.version == 0 {
                    return Err(KtError::BadVersion);
                }
                if (latest.version == 1) != (*prev_chain == [0; 32]) {
                    return Err(KtError::BadPrior);
                }
                if latest.epoch > head_epoch {
                    return Err(KtError::BadVersionEpoch {
                        epoch: latest.epoch,
                        head_epoch,
                    });
                }
                let chain = chain_hash(latest, prev_chain);
                if path.root_for(&index, leaf_hash(&index, &chain)) != *root {
                    return Err(KtError::RootMismatch);
                }
                Ok(Lookup::Present {
                    latest: *latest,
                    chain,
                })
            }
        }
    }
}

/// Proof of versions `first..=latest` of one label.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HistoryProof {
    /// The label's VRF proof.
    pub vrf: VrfProof,
    /// The number of the first version carried (at least 1).
    pub first_version: u64,
    /// `C_{first-1}`: zero when `first_version` is 1.
    pub prior_chain: Hash32,
    /// `(epoch, value)` of each version from `first_version` on, the last
    /// being the label's newest.
    pub versions: Vec<(u64, LeafValue)>,
    /// The leaf's path.
    pub path: MapPath,
}

/// A verified history: each version with its chain hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct History {
    /// The versions, oldest first, ending with the newest.
    pub versions: Vec<(VersionRecord, Hash32)>,
}

impl HistoryProof {
    /// The encoding of §16.6.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.vrf.0);
        out.extend_from_slice(&self.first_version.to_be_bytes());
        out.extend_from_slice(&self.prior_chain);
        let count = u16::try_from(self.versions.len()).expect("bounded by the builder");
        out.extend_from_slice(&count.to_be_bytes());
        for (epoch, value) in &self.versions {
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&value.encode());
        }
        self.path.encode_into(&mut out);
        out
    }

    /// Decodes the encoding of §16.6; nothing is verified yet.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "history proof";
        let (vrf, rest) = take_vrf(bytes, what)?;
        let (first_version, rest) = take_u64(rest, what)?;
        let (prior_chain, rest) = take_hash(rest, what)?;
        if rest.len() < 2 {
            return Err(KtError::Truncated { what });
        }
        let count = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if count == 0 {
            return Err(KtError::Malformed {
                what: "history proof without versions",
            });
        }
        if count > KT_MAX_HISTORY_VERSIONS {
            return Err(KtError::TooMany {
                what: "history proof versions",
                count,
                limit: KT_MAX_HISTORY_VERSIONS,
            });
        }
        let mut rest = &rest[2..];
        let mut versions = Vec::with_capacity(count);
        for _ in 0..count {
            let (epoch, r) = take_u64(rest, what)?;
            let (value, r) = LeafValue::take(r)?;
            versions.push((epoch, value));
            rest = r;
        }
        let path = MapPath::decode(rest)?;
        Ok(Self {
            vrf,
            first_version,
            prior_chain,
            versions,
            path,
        })
    }

    /// Checks the proof for `label` against `root` of the verified head of
    /// epoch `head_epoch` (§16.6).
    pub fn verify(
        &self,
        vrf_key: &VrfPublicKey,
        label: &KtLabel,
        root: &MapRoot,
        head_epoch: u64,
    ) -> Result<History, KtError> {
        let index = vrf_key.verify(label, &self.vrf)?;
        if self.versions.is_empty() || self.versions.len() > KT_MAX_HISTORY_VERSIONS {
            return Err(KtError::TooMany {
                what: "history proof versions",
                count: self.versions.len(),
                limit: KT_MAX_HISTORY_VERSIONS,
            });
        }
        if self.first_version == 0 {
            return Err(KtError::BadVersion);
        }
        if (self.first_version == 1) != (self.prior_chain == [0; 32]) {
            return Err(KtError::BadPrior);
        }
        let mut chain = self.prior_chain;
        let mut previous_epoch: Option<u64> = None;
        let mut out = Vec::with_capacity(self.versions.len());
        for (i, (epoch, value)) in self.versions.iter().enumerate() {
            if value.kind() != label.kind() {
                return Err(KtError::ValueKindMismatch);
            }
            if previous_epoch.is_some_and(|p| *epoch <= p) || *epoch > head_epoch {
                return Err(KtError::BadVersionEpoch {
                    epoch: *epoch,
                    head_epoch,
                });
            }
            previous_epoch = Some(*epoch);
            let version = self
                .first_version
                .checked_add(i as u64)
                .ok_or(KtError::BadVersion)?;
            let record = VersionRecord {
                version,
                epoch: *epoch,
                value: *value,
            };
            chain = chain_hash(&record, &chain);
            out.push((record, chain));
        }
        if self.path.root_for(&index, leaf_hash(&index, &chain)) != *root {
            return Err(KtError::RootMismatch);
        }
        Ok(History { versions: out })
    }
}

fn take_vrf<'a>(bytes: &'a [u8], what: &'static str) -> Result<(VrfProof, &'a [u8]), KtError> {
    if bytes.len() < VRF_PROOF_LEN {
        return Err(KtError::Truncated { what });
    }
    let (a, b) = bytes.split_at(VRF_PROOF_LEN);
    Ok((VrfProof(a.try_into().expect("80 bytes")), b))
}

pub(crate) fn take_u64<'a>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(u64, &'a [u8]), KtError> {
    if bytes.len() < 8 {
        return Err(KtError::Truncated { what });
    }
    let (a, b) = bytes.split_at(8);
    Ok((u64::from_be_bytes(a.try_into().expect("8 bytes")), b))
}

pub(crate) fn take_hash<'a>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(Hash32, &'a [u8]), KtError> {
    if bytes.len() < 32 {
        return Err(KtError::Truncated { what });
    }
    let (a, b) = bytes.split_at(32);
    Ok((a.try_into().expect("32 bytes"), b))
}
