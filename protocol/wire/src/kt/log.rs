//! The epoch log (docs/PROTOCOL.md §16.8): an RFC 9162 (Certificate
//! Transparency 2.0) Merkle tree over the epoch entries, with inclusion
//! proofs (this epoch is in that log) and consistency proofs (the log of
//! size n2 extends the log of size n1), so a client that remembers one head
//! can demand proof that a newer one did not rewrite the past.
//!
//! The algorithms are RFC 9162 §2.1 word for word: MTH, PATH, SUBPROOF and
//! the two verification procedures of §2.1.3.2 and §2.1.4.2; MTH of a
//! complete aligned subtree is read from the hashes kept as entries are
//! pushed instead of recomputed, which changes no output (tested against
//! the plain recursion, `tests_log.rs`) and makes each O(log n).
//!
//! Must never: accept a proof longer than `KT_MAX_LOG_PROOF_HASHES`, or a
//! size or index out of range, or panic on any input.

use sha2::{Digest, Sha256};

use super::error::KtError;
use super::leaf::Hash32;
use super::proof::{take_hash, take_u64};
use crate::limits::KT_MAX_LOG_PROOF_HASHES;

/// `SHA-256(0x00 || entry)`, RFC 9162's leaf hash.
pub fn log_leaf_hash(entry: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`, RFC 9162's interior node hash.
pub fn log_node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a log of some size.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogRoot(pub Hash32);

impl std::fmt::Debug for LogRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogRoot({})", hex::encode(self.0))
    }
}

/// The relay's (and an auditor's) copy of the log: every leaf hash, and
/// the hash of every complete aligned subtree, so that a root, a path or
/// a consistency proof costs O(log n) hashes instead of O(n). (Without
/// them a relay publishing every second would spend more on each head,
/// and an auditor on each epoch, the longer its history.)
#[derive(Clone, Default, Debug)]
pub struct EpochLog {
    /// `levels[h][i]` is MTH of leaves `i·2^h .. (i+1)·2^h`, for every
    /// such range that is complete; `levels[0]` holds the leaf hashes.
    levels: Vec<Vec<Hash32>>,
}

impl EpochLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (its bytes; the log stores their leaf hash).
    pub fn push(&mut self, entry: &[u8]) {
        let mut hash = log_leaf_hash(entry);
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(hash);
            // A new right child completes its parent.
            if level.len() % 2 == 1 {
                break;
            }
            let n = level.len();
            hash = log_node_hash(&level[n - 2], &level[n - 1]);
            height += 1;
        }
    }

    /// How many entries the log holds.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash32> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// MTH of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<LogRoot, KtError> {
        let n = self.held(size)?;
        Ok(LogRoot(self.mth(0, n)))
    }

    /// PATH(index, D[size]): the inclusion proof of entry `index` in the
    /// log of size `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, KtError> {
        if index >= size {
            return Err(KtError::BadLogSize);
        }
        let n = self.held(size)?;
        let mut hashes = Vec::new();
        self.path(index as usize, 0, n, &mut hashes);
        Ok(InclusionProof {
            index,
            size,
            hashes,
        })
    }

    /// PROOF(old, D[new]): the consistency proof from size `old` to `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, KtError> {
        if old == 0 || old > new {
            return Err(KtError::BadLogSize);
        }
        let n = self.held(new)?;
        let mut hashes = Vec::new();
        self.subproof(old as usize, 0, n, true, &mut hashes);
        Ok(ConsistencyProof {
            old_size: old,
            new_size: new,
            hashes,
        })
    }

    /// `size` as an index, if the log holds that many entries.
    fn held(&self, size: u64) -> Result<usize, KtError> {
        usize::try_from(size)
            .ok()
            .filter(|s| *s as u64 <= self.size())
            .ok_or(KtError::BadLogSize)
    }

    /// MTH(D[start .. start + n]). Every range RFC 9162's recursion asks
    /// for starts at a multiple of the smallest power of two ≥ n (the
    /// root's does; a left child's size k divides its start; a right
    /// child starts k further on, with at most k leaves), so a range whose
    /// size is a power of two is always one of the stored subtrees.
    fn mth(&self, start: usize, n: usize) -> Hash32 {
        match n {
            0 => Sha256::digest([]).into(),
            n if n.is_power_of_two() => {
                let height = n.trailing_zeros() as usize;
                self.levels[height][start >> height]
            }
            n => {
                let k = split(n);
                log_node_hash(&self.mth(start, k), &self.mth(start + k, n - k))
            }
        }
    }

    fn path(&self, m: usize, start: usize, n: usize, out: &mut Vec<Hash32>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.mth(start, k));
        }
    }

    fn subproof(&self, m: usize, start: usize, n: usize, whole: bool, out: &mut Vec<Hash32>) {
        if m == n {
            if !whole {
                out.push(self.mth(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.mth(start, k));
        }
    }
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// An RFC 9162 inclusion proof: entry `index` is in the log of size `size`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InclusionProof {
    /// The entry's index (its epoch).
    pub index: u64,
    /// The log size the proof is for.
    pub size: u64,
    /// The inclusion path, from the leaf upward.
    pub hashes: Vec<Hash32>,
}

/// An RFC 9162 consistency proof between two sizes of the log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsistencyProof {
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The consistency path.
    pub hashes: Vec<Hash32>,
}

/// `u8 count || count × 32`.
pub(crate) fn encode_hashes(hashes: &[Hash32], out: &mut Vec<u8>) {
    out.push(u8::try_from(hashes.len()).expect("at most KT_MAX_LOG_PROOF_HASHES"));
    for h in hashes {
        out.extend_from_slice(h);
    }
}

/// Reads `u8 count || count × 32` that must end `bytes`.
pub(crate) fn decode_hashes(bytes: &[u8], what: &'static str) -> Result<Vec<Hash32>, KtError> {
    let (&count, mut rest) = bytes.split_first().ok_or(KtError::Truncated { what })?;
    let count = usize::from(count);
    if count > KT_MAX_LOG_PROOF_HASHES {
        return Err(KtError::TooMany {
            what,
            count,
            limit: KT_MAX_LOG_PROOF_HASHES,
        });
    }
    let mut hashes = Vec::with_capacity(count);
    for _ in 0..count {
        let (h, r) = take_hash(rest, what)?;
        hashes.push(h);
        rest = r;
    }
    if !rest.is_empty() {
        return Err(KtError::Trailing { what });
    }
    Ok(hashes)
}

impl InclusionProof {
    /// `u64be index || u64be size || u8 count || count × 32` (§16.8).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        encode_hashes(&self.hashes, &mut out);
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "log inclusion proof";
        let (index, rest) = take_u64(bytes, what)?;
        let (size, rest) = take_u64(rest, what)?;
        let hashes = decode_hashes(rest, what)?;
        Ok(Self {
            index,
            size,
            hashes,
        })
    }

    /// RFC 9162 §2.1.3.2: does `leaf` (a leaf hash) sit at `index` in the
    /// log of size `size` whose root is `root`?
    pub fn verify(&self, leaf: &Hash32, root: &LogRoot) -> Result<(), KtError> {
        if self.index >= self.size {
            return Err(KtError::BadLogSize);
        }
        if self.hashes.len() > KT_MAX_LOG_PROOF_HASHES {
            return Err(KtError::BadInclusion);
        }
        let mut fnum = self.index;
        let mut snum = self.size - 1;
        let mut r = *leaf;
        for p in &self.hashes {
            if snum == 0 {
                return Err(KtError::BadInclusion);
            }
            if fnum & 1 == 1 || fnum == snum {
                r = log_node_hash(p, &r);
                if fnum & 1 == 0 {
                    while fnum & 1 == 0 && fnum != 0 {
                        fnum >>= 1;
                        snum >>= 1;
                    }
                }
            } else {
                r = log_node_hash(&r, p);
            }
            fnum >>= 1;
            snum >>= 1;
        }
        if snum != 0 || r != root.0 {
            return Err(KtError::BadInclusion);
        }
        Ok(())
    }
}

impl ConsistencyProof {
    /// `u64be old_size || u64be new_size || u8 count || count × 32` (§16.8).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.old_size.to_be_bytes());
        out.extend_from_slice(&self.new_size.to_be_bytes());
        encode_hashes(&self.hashes, &mut out);
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "log consistency proof";
        let (old_size, rest) = take_u64(bytes, what)?;
        let (new_size, rest) = take_u64(rest, what)?;
        let hashes = decode_hashes(rest, what)?;
        Ok(Self {
            old_size,
            new_size,
            hashes,
        })
    }

    /// RFC 9162 §2.1.4.2: is the log of `new_size` with root `new_root` an
    /// extension of the log of `old_size` with root `old_root`? Equal sizes
    /// need an empty proof and equal roots.
    pub fn verify(&self, old_root: &LogRoot, new_root: &LogRoot) -> Result<(), KtError> {
        let (first, second) = (self.old_size, self.new_size);
        if first == 0 || first > second {
            return Err(KtError::BadLogSize);
        }
        if self.hashes.len() > KT_MAX_LOG_PROOF_HASHES {
            return Err(KtError::BadConsistency);
        }
        if first == second {
            if self.hashes.is_empty() && old_root == new_root {
                return Ok(());
            }
            return Err(KtError::BadConsistency);
        }
        if self.hashes.is_empty() {
            return Err(KtError::BadConsistency);
        }
        let mut path: Vec<Hash32> = Vec::with_capacity(self.hashes.len() + 1);
        if first.is_power_of_two() {
            path.push(old_root.0);
        }
        path.extend_from_slice(&self.hashes);
        let mut fnum = first - 1;
        let mut snum = second - 1;
        while fnum & 1 == 1 {
            fnum >>= 1;
            snum >>= 1;
        }
        let mut fr = path[0];
        let mut sr = path[0];
        for c in &path[1..] {
            if snum == 0 {
                return Err(KtError::BadConsistency);
            }
            if fnum & 1 == 1 || fnum == snum {
                fr = log_node_hash(c, &fr);
                sr = log_node_hash(c, &sr);
                if fnum & 1 == 0 {
                    while fnum & 1 == 0 && fnum != 0 {
                        fnum >>= 1;
                        snum >>= 1;
                    }
                }
            } else {
                sr = log_node_hash(&sr, c);
            }
            fnum >>= 1;
            snum >>= 1;
        }
        if fr != old_root.0 || sr != new_root.0 || snum != 0 {
            return Err(KtError::BadConsistency);
        }
        Ok(())
    }
}
