//! Session records in the local store: the protocol crate's
//! [`SessionRecord`] (current plus archived sessions, trial decryption) kept
//! as its versioned pickle bytes, and the prekey secrets a pre-key message
//! needs.
//!
//! Everything about which session is current, how long archived ones live
//! and how a message is tried lives in `umbra_protocol::session_record`;
//! this layer only moves the pickle in and out of the vault.
//!
//! Must never: store a record as anything but its pickle, or turn a pickle
//! that does not load into an empty record (that would silently start over).

use rand::{CryptoRng, RngCore};
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::PreKeyStore;
use umbra_protocol::prekeys::PreKeyRef;
pub(crate) use umbra_protocol::session_record::SessionRecord;

use crate::store::{RecordKind, StoreError, Txn, Vault};

/// The session record at `slot`, if any.
pub(crate) async fn load(vault: &Vault, slot: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
    let Some(bytes) = vault.get_raw(RecordKind::Session, slot).await? else {
        return Ok(None);
    };
    SessionRecord::from_pickle_bytes(&bytes)
        .map(Some)
        .map_err(|source| StoreError::BadPickle {
            kind: RecordKind::Session,
            source,
        })
}

/// Adds the record's pickle at `slot` to `txn`.
pub(crate) fn put<R: RngCore + CryptoRng>(
    vault: &Vault,
    txn: &mut Txn,
    slot: Vec<u8>,
    record: &SessionRecord,
    rng: &mut R,
) -> Result<(), StoreError> {
    vault.put_raw(
        txn,
        RecordKind::Session,
        slot,
        &record.to_pickle_bytes(),
        rng,
    )
}

/// The prekey secrets a pre-key message named, loaded from the store ahead
/// of [`PairwiseSession::accept`](umbra_protocol::pairwise::PairwiseSession::accept).
#[derive(Default)]
pub(crate) struct LoadedPreKeys {
    pub(crate) signed: Option<(u32, SecretKey)>,
    pub(crate) extra: Option<(PreKeyRef, SecretKey)>,
}

impl PreKeyStore for LoadedPreKeys {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        self.signed
            .as_ref()
            .filter(|(held, _)| *held == id)
            .map(|(_, k)| k.clone())
    }

    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        self.extra
            .as_ref()
            .filter(|(held, _)| *held == prekey)
            .map(|(_, k)| k.clone())
    }
}
