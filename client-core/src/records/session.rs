//! Session records: the protocol crate's [`SessionRecord`] kept as its
//! versioned pickle bytes, filed under the peer's address *and* identity.
//!
//! The same keys published under two accounts (a copy) must never share,
//! or replace, one session (docs/PROTOCOL.md §3.6), so both are part of the
//! slot's name.
//!
//! Must never: store a record as anything but its pickle, or turn a pickle
//! that does not load into an empty record (that would silently start over).

use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Address};

use crate::sessions::SessionRecord;
use crate::store::{RecordKind, StoreError, Txn, Vault};
use crate::trust::ContactRecord;

/// Where one session record lives.
#[derive(Clone)]
pub(crate) struct SessionSlot(Vec<u8>);

impl std::fmt::Debug for SessionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSlot")
    }
}

/// The slot of the session with `peer` under `identity`.
pub(crate) fn slot(vault: &Vault, peer: &Address, identity: &IdentityPublic) -> SessionSlot {
    let mut key = Vec::with_capacity(umbra_protocol::x3dh::ADDRESS_LEN + 128);
    key.extend_from_slice(&umbra_protocol::x3dh::encode_address(peer));
    key.extend_from_slice(&identity.to_bytes());
    SessionSlot(vault.slot(RecordKind::Session, &key))
}

/// The slot of the session with a contact's primary device and pinned identity.
pub(crate) fn of_contact(vault: &Vault, contact: &ContactRecord) -> SessionSlot {
    slot(
        vault,
        &Address::primary(AccountId::from_bytes(contact.account)),
        &contact.pinned,
    )
}

/// The session record at `slot`, if any.
pub(crate) async fn load(
    vault: &Vault,
    slot: &SessionSlot,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(bytes) = vault.get_raw(RecordKind::Session, &slot.0).await? else {
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
pub(crate) fn put(
    vault: &Vault,
    txn: &mut Txn,
    slot: SessionSlot,
    record: &SessionRecord,
) -> Result<(), StoreError> {
    vault.put_raw(
        txn,
        RecordKind::Session,
        slot.0,
        &record.to_pickle_bytes(),
        &mut OsRng,
    )
}
