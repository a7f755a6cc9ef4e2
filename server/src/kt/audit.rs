//! `umbra-relay audit`: checks a relay's whole key-transparency history as
//! stored in its database (docs/PROTOCOL.md 16.9 item 7), from the rows
//! alone, with no secret: every head's signature and self-inclusion under
//! the directory key, that entry `e` is epoch `e`, that every head's log
//! root is the MTH of the entries up to it, that every epoch's map root is
//! what the stored versions give, and that each head extends the one
//! before (consistency proof, time never going back).
//!
//! What it cannot check from the rows: that an index belongs to the label
//! the relay says (that takes the VRF secret, or a client's lookup), nor
//! that a value is what the owner published (that is the owner's monitoring).
//!
//! Must never: trust a stored head without verifying it, stop at the first
//! epoch it cannot read without saying which, or write to the database.

use umbra_wire::kt::{
    DirectoryPublicKey, EpochEntry, EpochLog, KtMap, LeafIndex, LeafValue, SignedEpochHead,
    VerifiedHead, VrfPublicKey,
};

use crate::store::kt::{KtEpochRow, KtVersionRow};

/// What an honest history looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Epochs checked.
    pub epochs: u64,
    /// Versions checked.
    pub versions: u64,
    /// Labels in the newest map.
    pub labels: u64,
}

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The database records no key-transparency keys (no relay ran on it).
    #[error("the database records no key-transparency keys: no relay has published a directory")]
    NoKeys,
    /// The recorded keys are not valid keys.
    #[error("the recorded key-transparency public keys are malformed")]
    BadKeys,
    /// Something is wrong at one epoch.
    #[error("epoch {epoch}: {what}")]
    Epoch {
        /// The epoch (for a version, the epoch it names).
        epoch: u64,
        /// What is wrong.
        what: String,
    },
}

fn at(epoch: u64, what: impl Into<String>) -> AuditError {
    AuditError::Epoch {
        epoch,
        what: what.into(),
    }
}

/// The recorded public keys (directory key || VRF key).
pub fn parse_keys(keys: &[u8; 64]) -> Result<(DirectoryPublicKey, VrfPublicKey), AuditError> {
    let mut dir = [0u8; 32];
    dir.copy_from_slice(&keys[..32]);
    let mut vrf = [0u8; 32];
    vrf.copy_from_slice(&keys[32..]);
    Ok((
        DirectoryPublicKey::from_bytes(&dir).map_err(|_| AuditError::BadKeys)?,
        VrfPublicKey::from_bytes(vrf).map_err(|_| AuditError::BadKeys)?,
    ))
}

/// Checks every epoch and version (both in epoch order, as `kt_since`
/// returns them) under `key`.
pub fn audit(
    key: &DirectoryPublicKey,
    versions: &[KtVersionRow],
    epochs: &[KtEpochRow],
) -> Result<AuditSummary, AuditError> {
    let mut map = KtMap::new();
    let mut log = EpochLog::new();
    let mut previous: Option<VerifiedHead> = None;
    let mut versions_iter = versions.iter().peekable();
    for (i, row) in epochs.iter().enumerate() {
        let e = i as u64;
        if row.epoch != e {
            return Err(at(
                e,
                format!(
                    "stored as epoch {}: epochs must be 0, 1, 2, ... without gaps",
                    row.epoch
                ),
            ));
        }
        let entry = EpochEntry::decode(&row.entry).map_err(|err| at(e, format!("entry: {err}")))?;
        if entry.epoch != e {
            return Err(at(e, format!("the entry says epoch {}", entry.epoch)));
        }
        while let Some(v) = versions_iter.next_if(|v| v.epoch == e) {
            let (value, rest) = LeafValue::take(&v.value).map_err(|err| {
                at(
                    e,
                    format!("version {} of {}: {err}", v.version, hex::encode(v.index)),
                )
            })?;
            if !rest.is_empty() {
                return Err(at(
                    e,
                    format!(
                        "version {} of {}: trailing bytes",
                        v.version,
                        hex::encode(v.index)
                    ),
                ));
            }
            let record = map.publish(LeafIndex(v.index), value, e).map_err(|err| {
                at(
                    e,
                    format!("version {} of {}: {err}", v.version, hex::encode(v.index)),
                )
            })?;
            if record.version != v.version {
                return Err(at(
                    e,
                    format!(
                        "leaf {} has version {} where {} comes next",
                        hex::encode(v.index),
                        v.version,
                        record.version
                    ),
                ));
            }
        }
        if map.root() != entry.map_root {
            return Err(at(e, "the map root is not what the stored versions give"));
        }
        log.push(&row.entry);
        let head =
            SignedEpochHead::decode(&row.head).map_err(|err| at(e, format!("head: {err}")))?;
        if head.entry != entry {
            return Err(at(e, "the head is not of the stored entry"));
        }
        let head = head
            .verify(key)
            .map_err(|err| at(e, format!("head does not verify: {err}")))?;
        let mth = log
            .root(e + 1)
            .map_err(|err| at(e, format!("log: {err}")))?;
        if head.log_root() != &mth {
            return Err(at(
                e,
                "the head's log root is not the MTH of the entries up to it",
            ));
        }
        if let Some(prev) = &previous {
            let proof = log
                .consistency_proof(prev.epoch() + 1, e + 1)
                .map_err(|err| at(e, format!("log: {err}")))?;
            prev.check_extended_by(&head, &proof)
                .map_err(|err| at(e, format!("does not extend epoch {}: {err}", prev.epoch())))?;
        }
        previous = Some(head);
    }
    if let Some(v) = versions_iter.next() {
        return Err(at(v.epoch, "a version of an epoch that is not stored"));
    }
    Ok(AuditSummary {
        epochs: epochs.len() as u64,
        versions: versions.len() as u64,
        labels: map.len() as u64,
    })
}
