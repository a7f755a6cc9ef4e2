//! Epoch heads (docs/PROTOCOL.md §16.7): what the relay signs with its
//! directory key for each epoch (the epoch's map root and the root of the
//! log of every epoch entry so far), and the checks a client makes on a head
//! before it believes any proof against it, and between two heads.
//!
//! Must never: hand out a [`VerifiedHead`] whose signature or self-inclusion
//! was not checked, print the directory signing key, or accept an older or
//! different head for an epoch already seen.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};

use super::error::KtError;
use super::leaf::Hash32;
use super::log::{
    decode_hashes, encode_hashes, log_leaf_hash, ConsistencyProof, EpochLog, InclusionProof,
    LogRoot,
};
use super::proof::{take_hash, take_u64};
use super::tree::MapRoot;
use crate::identity::{domain_separated, verify_labelled};
use crate::labels::KT_EPOCH_HEAD;

/// Format byte of an epoch entry (and so of a head).
pub const EPOCH_ENTRY_FORMAT: u8 = 0x01;
/// Bytes of an epoch entry.
pub const EPOCH_ENTRY_LEN: usize = 49;
/// Bytes of a head's signed part: the entry and the log root.
pub const HEAD_SIGNED_LEN: usize = EPOCH_ENTRY_LEN + 32;

/// One epoch's entry in the log: `format || u64be epoch || u64be
/// published_at_ms || map_root`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EpochEntry {
    /// The epoch, from 0; it is also the entry's index in the log.
    pub epoch: u64,
    /// When the relay published it, Unix milliseconds.
    pub published_at_ms: u64,
    /// The map root of the epoch.
    pub map_root: MapRoot,
}

impl EpochEntry {
    /// The 49-byte encoding (the log's leaf data).
    pub fn encode(&self) -> [u8; EPOCH_ENTRY_LEN] {
        let mut out = [0u8; EPOCH_ENTRY_LEN];
        out[0] = EPOCH_ENTRY_FORMAT;
        out[1..9].copy_from_slice(&self.epoch.to_be_bytes());
        out[9..17].copy_from_slice(&self.published_at_ms.to_be_bytes());
        out[17..].copy_from_slice(&self.map_root.0);
        out
    }

    /// Decodes exactly 49 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "epoch entry";
        let (&format, rest) = bytes.split_first().ok_or(KtError::Truncated { what })?;
        if format != EPOCH_ENTRY_FORMAT {
            return Err(KtError::UnknownByte { what, byte: format });
        }
        let (epoch, rest) = take_u64(rest, what)?;
        let (published_at_ms, rest) = take_u64(rest, what)?;
        let (root, rest) = take_hash(rest, what)?;
        if !rest.is_empty() {
            return Err(KtError::Trailing { what });
        }
        Ok(Self {
            epoch,
            published_at_ms,
            map_root: MapRoot(root),
        })
    }

    /// Its RFC 9162 leaf hash.
    pub fn leaf_hash(&self) -> Hash32 {
        log_leaf_hash(&self.encode())
    }
}

/// The relay's directory signing key (Ed25519). Zeroized on drop
/// (ed25519-dalek's `zeroize`); `Debug` prints nothing of it.
pub struct DirectorySigningKey(SigningKey);

impl std::fmt::Debug for DirectorySigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectorySigningKey(<redacted>)")
    }
}

impl DirectorySigningKey {
    /// A fresh key from the caller's CSPRNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// A stored key from its 32-byte RFC 8032 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The stored form (the RFC 8032 seed), for the relay's key file only.
    pub fn to_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The public half clients pin.
    pub fn public_key(&self) -> DirectoryPublicKey {
        DirectoryPublicKey(self.0.verifying_key())
    }

    /// Signs the head of the newest epoch of `log`, whose last entry must be
    /// `entry`; carries the inclusion path of that entry.
    pub fn sign_head(
        &self,
        entry: &EpochEntry,
        log: &EpochLog,
    ) -> Result<SignedEpochHead, KtError> {
        let size = entry.epoch.checked_add(1).ok_or(KtError::BadLogSize)?;
        if log.size() != size || log.leaf(entry.epoch) != Some(entry.leaf_hash()) {
            return Err(KtError::BadLogSize);
        }
        let log_root = log.root(size)?;
        let self_path = log.inclusion_proof(entry.epoch, size)?.hashes;
        let signed = signed_part(entry, &log_root);
        let signature = self.0.sign(&domain_separated(KT_EPOCH_HEAD, &signed));
        Ok(SignedEpochHead {
            entry: *entry,
            log_root,
            signature: signature.to_bytes(),
            self_path,
        })
    }
}

/// The directory key clients pin (with the VRF key) for a relay.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DirectoryPublicKey(VerifyingKey);

impl std::fmt::Debug for DirectoryPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirectoryPublicKey({})", hex::encode(self.0.as_bytes()))
    }
}

impl DirectoryPublicKey {
    /// Parses a 32-byte Ed25519 public key (strict checks happen at verify).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KtError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KtError::Malformed {
                what: "directory public key",
            })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

fn signed_part(entry: &EpochEntry, log_root: &LogRoot) -> [u8; HEAD_SIGNED_LEN] {
    let mut out = [0u8; HEAD_SIGNED_LEN];
    out[..EPOCH_ENTRY_LEN].copy_from_slice(&entry.encode());
    out[EPOCH_ENTRY_LEN..].copy_from_slice(&log_root.0);
    out
}

/// A signed epoch head as the relay serves it, not yet verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedEpochHead {
    /// The epoch's entry.
    pub entry: EpochEntry,
    /// MTH of the entries of epochs 0..=entry.epoch.
    pub log_root: LogRoot,
    /// Ed25519 over `domain_separated(KT_EPOCH_HEAD, entry || log_root)`.
    pub signature: [u8; 64],
    /// The inclusion path of `entry` at index `epoch` in that log.
    pub self_path: Vec<Hash32>,
}

impl SignedEpochHead {
    /// `entry (49) || log_root (32) || signature (64) || u8 count || count × 32`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = signed_part(&self.entry, &self.log_root).to_vec();
        out.extend_from_slice(&self.signature);
        encode_hashes(&self.self_path, &mut out);
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes; nothing is verified yet.
    pub fn decode(bytes: &[u8]) -> Result<Self, KtError> {
        let what = "epoch head";
        if bytes.len() < HEAD_SIGNED_LEN + 64 {
            return Err(KtError::Truncated { what });
        }
        let entry = EpochEntry::decode(&bytes[..EPOCH_ENTRY_LEN])?;
        let (log_root, rest) = take_hash(&bytes[EPOCH_ENTRY_LEN..], what)?;
        let (signature, rest) = rest.split_at(64);
        Ok(Self {
            entry,
            log_root: LogRoot(log_root),
            signature: signature.try_into().expect("64 bytes"),
            self_path: decode_hashes(rest, what)?,
        })
    }

    /// §16.7: the signature (strict Ed25519) under `key`, then the entry's
    /// inclusion at index `epoch` in the log of size `epoch + 1` whose root
    /// the head signs.
    pub fn verify(&self, key: &DirectoryPublicKey) -> Result<VerifiedHead, KtError> {
        let signed = signed_part(&self.entry, &self.log_root);
        let sig = Signature::from_bytes(&self.signature);
        if !verify_labelled(&key.0, KT_EPOCH_HEAD, &signed, &sig) {
            return Err(KtError::BadHeadSignature);
        }
        let size = self.entry.epoch.checked_add(1).ok_or(KtError::BadLogSize)?;
        InclusionProof {
            index: self.entry.epoch,
            size,
            hashes: self.self_path.clone(),
        }
        .verify(&self.entry.leaf_hash(), &self.log_root)?;
        Ok(VerifiedHead {
            entry: self.entry,
            log_root: self.log_root,
        })
    }
}

/// A head whose signature and self-inclusion were checked: what a client
/// remembers, and the only root proofs are checked against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedHead {
    entry: EpochEntry,
    log_root: LogRoot,
}

impl VerifiedHead {
    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.entry.epoch
    }

    /// The epoch's map root.
    pub fn map_root(&self) -> &MapRoot {
        &self.entry.map_root
    }

    /// The log root over epochs 0..=epoch.
    pub fn log_root(&self) -> &LogRoot {
        &self.log_root
    }

    /// The entry.
    pub fn entry(&self) -> &EpochEntry {
        &self.entry
    }

    /// §16.9 step 3: `newer` (verified) extends `self`, by `proof` from
    /// size `self.epoch + 1` to `newer.epoch + 1`. The same epoch must be
    /// the same head (else [`KtError::Fork`]); a lower epoch or an earlier
    /// time is [`KtError::Rollback`].
    pub fn check_extended_by(
        &self,
        newer: &VerifiedHead,
        proof: &ConsistencyProof,
    ) -> Result<(), KtError> {
        if newer.epoch() == self.epoch() {
            if newer != self {
                return Err(KtError::Fork {
                    epoch: self.epoch(),
                });
            }
            return Ok(());
        }
        if newer.epoch() < self.epoch() || newer.entry.published_at_ms < self.entry.published_at_ms
        {
            return Err(KtError::Rollback {
                remembered: self.epoch(),
                got: newer.epoch(),
            });
        }
        if proof.old_size != self.epoch() + 1 || proof.new_size != newer.epoch() + 1 {
            return Err(KtError::BadLogSize);
        }
        proof.verify(&self.log_root, &newer.log_root)
    }

    /// §16.9 step 4: the entry of an earlier epoch is in this head's log.
    pub fn check_includes(
        &self,
        entry: &EpochEntry,
        proof: &InclusionProof,
    ) -> Result<(), KtError> {
        if proof.index != entry.epoch || proof.size != self.epoch() + 1 {
            return Err(KtError::BadLogSize);
        }
        proof.verify(&entry.leaf_hash(), &self.log_root)
    }
}
