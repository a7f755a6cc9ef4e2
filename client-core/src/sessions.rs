//! Session records in the local store: the protocol crate's
//! [`SessionRecord`] (current plus archived sessions, trial decryption) kept
//! as its versioned pickle bytes, and the [`SessionManager`] that alone
//! loads and saves them.
//!
//! Everything about which session is current, how long archived ones live
//! and how a message is tried lives in `umbra_protocol::session_record`;
//! the manager, a type in the shape of the name book (docs/ARCHITECTURE.md,
//! "Managers as types"), files each record under the peer's address and
//! identity (`records::session`), reads, and adds writes to a [`Txn`] the
//! caller commits with whatever the session encrypted or decrypted.
//!
//! Must never: store a record as anything but its pickle, turn a pickle
//! that does not load into an empty record (that would silently start
//! over), drop the sessions a new one replaces (they are archived: a late
//! reply on one still opens), ask the relay, take the state lock or emit
//! an event.

use std::sync::Arc;

use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::pairwise::PairwiseSession;
pub(crate) use umbra_protocol::session_record::SessionRecord;
use umbra_protocol::wire::{AccountId, Address, DeviceId};

use crate::records;
use crate::store::{StoreError, Txn, Vault};
use crate::trust::ContactRecord;

/// The pairwise session record of every peer (see the module docs).
pub(crate) struct SessionManager {
    vault: Arc<Vault>,
}

impl SessionManager {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Self { vault }
    }

    /// The record with `peer` under `identity` (as an envelope names them).
    pub(crate) async fn with(
        &self,
        peer: &Address,
        identity: &IdentityPublic,
    ) -> Result<Option<SessionRecord>, StoreError> {
        records::session::load(
            &self.vault,
            &records::session::slot(&self.vault, peer, identity),
        )
        .await
    }

    /// The record with a contact's primary device under its pinned identity.
    pub(crate) async fn of_contact(
        &self,
        contact: &ContactRecord,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let slot = records::session::of_contact(&self.vault, contact);
        records::session::load(&self.vault, &slot).await
    }

    /// The record with one device of a contact under its pinned identity.
    pub(crate) async fn of_device(
        &self,
        contact: &ContactRecord,
        device: DeviceId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.with(&device_address(contact, device), &contact.pinned)
            .await
    }

    /// The record with one device of the contact if we may send with it:
    /// not one we started that went unanswered for the relay's message
    /// lifetime (that one will never complete, so a send starts over).
    pub(crate) async fn usable_of_device(
        &self,
        contact: &ContactRecord,
        device: DeviceId,
        now_secs: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let record = self.of_device(contact, device).await?;
        Ok(record.filter(|r| !r.unanswered_too_long(now_secs)))
    }

    /// The contact's record with `session` (started with one of its
    /// devices) made current: the stored record of that device's states
    /// are archived behind it (a late reply on one still decrypts), or a
    /// new record. Nothing is written: the caller saves it with the message
    /// it encrypts.
    pub(crate) async fn begin(
        &self,
        contact: &ContactRecord,
        session: PairwiseSession,
        now_secs: u64,
    ) -> Result<SessionRecord, StoreError> {
        let device = session.remote_address().device;
        Ok(match self.of_device(contact, device).await? {
            Some(mut record) => {
                record.promote_new(session, now_secs);
                record
            }
            None => SessionRecord::new(session, now_secs),
        })
    }

    /// Adds the record with `peer` under `identity` to `txn`.
    pub(crate) fn save(
        &self,
        txn: &mut Txn,
        peer: &Address,
        identity: &IdentityPublic,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        let slot = records::session::slot(&self.vault, peer, identity);
        records::session::put(&self.vault, txn, slot, record)
    }

    /// Adds the contact's record to `txn`, filed under the device its
    /// current session was started with (or accepted from) and the pinned
    /// identity: a session with one device never lands in another's slot.
    pub(crate) fn save_for_contact(
        &self,
        txn: &mut Txn,
        contact: &ContactRecord,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        let device = record.current().remote_address().device;
        let slot = records::session::slot(
            &self.vault,
            &device_address(contact, device),
            &contact.pinned,
        );
        records::session::put(&self.vault, txn, slot, record)
    }
}

/// The address of one device of a contact.
pub(crate) fn device_address(contact: &ContactRecord, device: DeviceId) -> Address {
    Address {
        account: AccountId::from_bytes(contact.account),
        device,
    }
}

#[cfg(test)]
mod tests;
