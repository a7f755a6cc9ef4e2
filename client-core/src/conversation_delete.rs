//! Deleting a 1:1 conversation (docs/PROTOCOL.md §12.19): on this device
//! only, or for everyone with a `DeleteConversation` (content tag 9) to
//! every listed device of the contact and, as a `SentTranscript`, to our
//! own other devices, so that every participant's client erases it.
//!
//! What goes is the conversation's history: its entries (texts, replies,
//! files, with their reactions, edits and deletes, which live on them),
//! every message-id index slot naming one of them, the summary, the file
//! records of the erased file messages and their disappearing-message
//! expiries. What stays: the contact, its
//! trust, sessions and device list, the seen markers (hashes, no content),
//! and the outbox: what was already queued to the contact is still sent
//! (the delete is queued after it, so the contact erases it on arrival).
//!
//! Order decides what a delete covers. The deleting side erases
//! everything it holds. A receiver erases what the contact had when it
//! deleted: every message from the contact (all sent before its delete, on
//! the same sessions and queue) and those of ours it had confirmed
//! (`Delivered`/`Read`: its receipts travel ahead of its delete). Ours
//! still `Pending` or `Sent` reach the contact after its delete, so the
//! contact shows them: they are kept here too, as is anything either side
//! sends afterwards.
//!
//! Must never: erase another conversation's records, send a delete to a
//! blocked or untrusted contact (`session_for_sending` refuses both), or
//! erase on a receiver what its sender still shows.

use std::collections::HashSet;
use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::wire::Username;

use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::disappearing::StoredExpiry;
use crate::engine::{Engine, QueuedContent};
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Client, Error, Event, MessageId, PeerRef};

#[cfg(test)]
mod tests;

/// Whose copies of a conversation a delete erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteScope {
    /// This device's copy only; nothing is sent.
    Local,
    /// Every participant's: the contact's devices and our other devices.
    ForEveryone,
}

/// What [`Client::delete_conversation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationDeletion {
    /// How many history entries were erased on this device.
    pub erased: usize,
    /// For [`DeleteScope::ForEveryone`]: the id of the queued
    /// `DeleteConversation`, whose `Sent`/`SendFailed` event says whether
    /// the relay took it (it is retried like any message until then).
    pub sent: Option<MessageId>,
}

/// Which entries an erase keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Erase {
    /// Ours (on the deleting device, or on our device told by a transcript):
    /// everything.
    Everything,
    /// A contact's delete: all but our messages it had not confirmed.
    WhatThePeerHad,
}

impl Erase {
    fn keeps(self, entry: &HistoryEntry) -> bool {
        match self {
            Erase::Everything => false,
            Erase::WhatThePeerHad => {
                entry.direction == Direction::Outgoing
                    && matches!(entry.status, DeliveryStatus::Pending | DeliveryStatus::Sent)
            }
        }
    }
}

impl Client {
    /// Deletes the conversation with `with` from this device, and with
    /// [`DeleteScope::ForEveryone`] from the contact's devices and our other
    /// devices too (docs/PROTOCOL.md §12.19). The contact, its trust and
    /// sessions stay. For everyone needs a connection and a contact we may
    /// send to (not blocked, no unaccepted key change); locally it only
    /// needs the contact.
    pub async fn delete_conversation(
        &self,
        with: &Username,
        scope: DeleteScope,
    ) -> Result<ConversationDeletion, Error> {
        match scope {
            DeleteScope::Local => self.inner.delete_conversation_here(with).await,
            DeleteScope::ForEveryone => self.inner.delete_conversation_for_everyone(with).await,
        }
    }
}

impl Engine {
    async fn delete_conversation_here(
        self: &Arc<Self>,
        with: &Username,
    ) -> Result<ConversationDeletion, Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(&PeerRef::Name(with.clone())).await?;
        let mut txn = Txn::new();
        let erased = self
            .erase_conversation(&mut txn, &contact.account, Erase::Everything)
            .await?;
        self.vault.commit(txn).await?;
        Ok(ConversationDeletion {
            erased: erased.len(),
            sent: None,
        })
    }

    async fn delete_conversation_for_everyone(
        self: &Arc<Self>,
        with: &Username,
    ) -> Result<ConversationDeletion, Error> {
        self.check_open()?;
        self.ensure_connected()?;
        let id = MessageId::random(&mut OsRng);
        let (account, erased) = {
            let (_guard, contact, mut records, _) = self.session_for_sending(with).await?;
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            // Queued after everything already queued to the contact, so
            // each of its devices gets those first and erases them too.
            // Visible: a `Sent`/`SendFailed` event names its id.
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut records,
                QueuedContent {
                    content: Content::DeleteConversation,
                    id,
                    visible: true,
                },
            )?;
            let erased = self
                .erase_conversation(&mut txn, &contact.account, Erase::Everything)
                .await?;
            self.put_counters(&mut txn, &counters)?;
            self.vault.commit(txn).await?;
            (contact.account, erased)
        };
        self.outbox_wake.notify_one();
        // Our other devices erase it too (§15.8), once it is durable here.
        self.sync_sent(account, &Content::DeleteConversation).await;
        Ok(ConversationDeletion {
            erased: erased.len(),
            sent: Some(id),
        })
    }

    /// Adds to `txn` the erasure of the conversation with `account` by
    /// `rule`: the history (timeline) and the erased file messages' file
    /// records. Returns the erased entries.
    pub(crate) async fn erase_conversation(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        rule: Erase,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let erased = self
            .timeline
            .erase(txn, account, |entry| rule.keeps(entry))
            .await?;
        for entry in &erased {
            let local = crate::files::local_id(entry.direction, account, &entry.id);
            let slot = records::file::slot(&self.vault, &local);
            if self.vault.load(&slot).await?.is_some() {
                self.vault.remove(txn, slot);
            }
        }
        // A disappearing message's expiry (§12.18) names an entry that is
        // gone now: it goes too, rather than wait for a sweep.
        let gone: HashSet<(MessageId, bool)> = erased
            .iter()
            .map(|e| (e.id, e.direction == Direction::Outgoing))
            .collect();
        let expiries = Prefix::<records::disappearing::Expiries>::all();
        for (slot, expiry) in self.vault.load_all(&expiries).await? {
            // A group's expiry (format 1) names no 1:1 entry.
            let StoredExpiry::V1 {
                account: of,
                id,
                outgoing,
                ..
            } = expiry
            else {
                continue;
            };
            if of == *account && gone.contains(&(id, outgoing)) {
                self.vault.remove(txn, slot);
            }
        }
        Ok(erased)
    }
}

/// A contact's `DeleteConversation`: erases what it had (see the module
/// docs) and names the event; `from` is the contact's display name.
pub(crate) async fn accept(
    engine: &Engine,
    txn: &mut Txn,
    contact: &ContactRecord,
    from: &str,
) -> Result<Vec<Event>, Error> {
    let erased = engine
        .erase_conversation(txn, &contact.account, Erase::WhatThePeerHad)
        .await?;
    Ok(vec![Event::ConversationDeleted {
        with: from.to_owned(),
        by_peer: true,
        erased: erased.len(),
    }])
}

/// The transcript of a `DeleteConversation` another device of ours sent
/// to `contact` (`to`, its display name): erased here as it was there.
pub(crate) async fn accept_own(
    engine: &Engine,
    txn: &mut Txn,
    contact: &ContactRecord,
    to: &str,
) -> Result<Vec<Event>, Error> {
    let erased = engine
        .erase_conversation(txn, &contact.account, Erase::Everything)
        .await?;
    Ok(vec![Event::ConversationDeleted {
        with: to.to_owned(),
        by_peer: false,
        erased: erased.len(),
    }])
}
