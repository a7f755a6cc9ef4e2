//! Session records in the local store: the protocol crate's
//! [`SessionRecord`] (current plus archived sessions, trial decryption) kept
//! as its versioned pickle bytes, and the prekey secrets a pre-key message
//! needs.
//!
//! Everything about which session is current, how long archived ones live
//! and how a message is tried lives in `umbra_protocol::session_record`;
//! `records::session` moves the pickle in and out of the vault.
//!
//! Must never: store a record as anything but its pickle, or turn a pickle
//! that does not load into an empty record (that would silently start over).

use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::PreKeyStore;
use umbra_protocol::prekeys::PreKeyRef;
pub(crate) use umbra_protocol::session_record::SessionRecord;

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
