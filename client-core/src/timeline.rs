//! The history manager: appending entries, the message-id index, delivery
//! status updates, conversation summaries, and what `receive` has not yet
//! reported.
//!
//! Must never: lower a message's delivery status, or let a receipt from one
//! contact change another contact's message (the index names the contact).

use std::sync::Arc;

use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::AccountId;

use crate::contact::TrustLevel;
use crate::conversation::{
    Conversation, DeliveryStatus, Direction, HistoryEntry, UnreportedMessage,
};
use crate::engine::Engine;
use crate::history::{ConversationRecord, Counters, MessageLocation};
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, MessageId, PeerRef};

impl Engine {
    pub(crate) async fn message_known(
        &self,
        direction: Direction,
        account: &[u8; 16],
        id: &MessageId,
    ) -> Result<bool, Error> {
        Ok(self
            .vault
            .load(&records::history::index(
                &self.vault,
                direction,
                account,
                id,
            ))
            .await?
            .is_some())
    }

    /// Appends an entry to the contact's history and summary.
    pub(crate) async fn append_history(
        &self,
        txn: &mut Txn,
        counters: &mut Counters,
        contact: &ContactRecord,
        entry: HistoryEntry,
        unread: bool,
    ) -> Result<(), Error> {
        let seq = counters.next_history_seq;
        counters.next_history_seq += 1;
        let slot = records::history::entry(&self.vault, &contact.account, seq);
        records::history::save_entry(&self.vault, txn, slot, &entry)?;
        self.vault.save(
            txn,
            records::history::index(&self.vault, entry.direction, &contact.account, &entry.id),
            &MessageLocation {
                account: contact.account,
                seq,
            },
        )?;
        let conv_slot = records::history::conversation(&self.vault, &contact.account);
        let mut conv: ConversationRecord =
            self.vault
                .load(&conv_slot)
                .await?
                .unwrap_or(ConversationRecord {
                    account: contact.account,
                    username: contact.username.clone(),
                    last: None,
                    unread: 0,
                    last_activity_ms: 0,
                });
        conv.username = contact.username.clone();
        conv.last_activity_ms = conv.last_activity_ms.max(entry.received_at_ms);
        conv.last = Some(entry);
        if unread {
            conv.unread = conv.unread.saturating_add(1);
        }
        self.vault.save(txn, conv_slot, &conv)?;
        Ok(())
    }

    /// Raises the status of one of our messages (never lowers it).
    pub(crate) async fn update_status(
        &self,
        txn: &mut Txn,
        account: &[u8; 16],
        id: &MessageId,
        status: DeliveryStatus,
    ) -> Result<bool, Error> {
        let Some(location) = self
            .vault
            .load(&records::history::index(
                &self.vault,
                Direction::Outgoing,
                account,
                id,
            ))
            .await?
        else {
            return Ok(false);
        };
        let slot = records::history::entry(&self.vault, &location.account, location.seq);
        let Some(mut entry) = records::history::load_entry(&self.vault, &slot).await? else {
            return Ok(false);
        };
        let advance = match (entry.status, status) {
            (_, DeliveryStatus::Failed) => entry.status == DeliveryStatus::Pending,
            (DeliveryStatus::Failed, _) => false,
            (old, new) => new > old,
        };
        if !advance {
            return Ok(false);
        }
        entry.status = status;
        records::history::save_entry(&self.vault, txn, slot, &entry)?;
        let conv_slot = records::history::conversation(&self.vault, account);
        if let Some(mut conv) = self.vault.load(&conv_slot).await? {
            if conv
                .last
                .as_ref()
                .is_some_and(|l| l.id == *id && l.direction == Direction::Outgoing)
            {
                conv.last = Some(entry);
                self.vault.save(txn, conv_slot, &conv)?;
            }
        }
        Ok(true)
    }

    pub(crate) async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        let mut out = Vec::new();
        for (_, conv) in self
            .vault
            .load_all(&Prefix::<records::history::Conversations>::all())
            .await?
        {
            let contact = self.contact_by_account(&conv.account).await?;
            let peer = match &contact {
                Some(c) => self.names.display_name(c).await?,
                None => conv.username,
            };
            out.push(Conversation {
                peer,
                last_message: conv.last,
                unread: conv.unread,
                last_activity_ms: conv.last_activity_ms,
                key_changed: contact.is_some_and(|c| c.trust == TrustLevel::Changed),
            });
        }
        out.sort_by(|a, b| {
            b.last_activity_ms
                .cmp(&a.last_activity_ms)
                .then_with(|| a.peer.cmp(&b.peer))
        });
        Ok(out)
    }

    pub(crate) async fn history(
        &self,
        peer: &PeerRef,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let contact = self.known_contact(peer).await?;
        let prefix = records::history::entries(&self.vault, &contact.account);
        let all = records::history::load_entries(&self.vault, &prefix).await?;
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).map(|(_, e)| e).collect())
    }

    /// Incoming messages not yet reported, in arrival order (the history
    /// sequence is global, so it orders across conversations).
    pub(crate) async fn unreported_messages(&self) -> Result<Vec<UnreportedMessage>, Error> {
        let mut found: Vec<(u64, UnreportedMessage)> = Vec::new();
        for (_, conv) in self
            .vault
            .load_all(&Prefix::<records::history::Conversations>::all())
            .await?
        {
            let from = match self.contact_by_account(&conv.account).await? {
                Some(contact) => self.names.display_name(&contact).await?,
                None => conv.username.clone(),
            };
            let prefix = records::history::entries(&self.vault, &conv.account);
            for (slot, entry) in records::history::load_entries(&self.vault, &prefix).await? {
                if entry.direction != Direction::Incoming || entry.reported {
                    continue;
                }
                let seq = records::history::entry_seq(&slot).unwrap_or(u64::MAX);
                found.push((
                    seq,
                    UnreportedMessage {
                        from: from.clone(),
                        account_id: AccountId::from_bytes(conv.account),
                        id: entry.id,
                        body: entry.body,
                        sent_at_ms: entry.sent_at_ms,
                        received_at_ms: entry.received_at_ms,
                    },
                ));
            }
        }
        found.sort_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, m)| m).collect())
    }

    /// Sets the `reported` flag of each listed message (in one transaction).
    pub(crate) async fn mark_reported(&self, messages: &[UnreportedMessage]) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        for message in messages {
            let account = *message.account_id.as_bytes();
            let index =
                records::history::index(&self.vault, Direction::Incoming, &account, &message.id);
            let Some(location) = self.vault.load(&index).await? else {
                continue;
            };
            let slot = records::history::entry(&self.vault, &location.account, location.seq);
            let Some(mut entry) = records::history::load_entry(&self.vault, &slot).await? else {
                continue;
            };
            if entry.reported {
                continue;
            }
            entry.reported = true;
            records::history::save_entry(&self.vault, &mut txn, slot, &entry)?;
            let conv_slot = records::history::conversation(&self.vault, &account);
            if let Some(mut conv) = self.vault.load(&conv_slot).await? {
                if let Some(last) = conv
                    .last
                    .as_mut()
                    .filter(|l| l.id == message.id && l.direction == Direction::Incoming)
                {
                    last.reported = true;
                    self.vault.save(&mut txn, conv_slot, &conv)?;
                }
            }
        }
        self.vault.commit(txn).await?;
        Ok(())
    }

    pub(crate) async fn mark_read(self: &Arc<Self>, peer: &PeerRef) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(peer).await?;
        let prefix = records::history::entries(&self.vault, &contact.account);
        let mut txn = Txn::new();
        let mut ids = Vec::new();
        for (slot, mut entry) in records::history::load_entries(&self.vault, &prefix).await? {
            if entry.direction == Direction::Incoming
                && (entry.status != DeliveryStatus::Read || !entry.reported)
            {
                if entry.status != DeliveryStatus::Read {
                    ids.push(entry.id);
                }
                entry.status = DeliveryStatus::Read;
                // Read on screen is reported: `receive` need not show it again.
                entry.reported = true;
                records::history::save_entry(&self.vault, &mut txn, slot, &entry)?;
            }
        }
        let conv_slot = records::history::conversation(&self.vault, &contact.account);
        if let Some(mut conv) = self.vault.load(&conv_slot).await? {
            conv.unread = 0;
            if let Some(last) = conv.last.as_mut() {
                if last.direction == Direction::Incoming {
                    last.status = DeliveryStatus::Read;
                    last.reported = true;
                }
            }
            self.vault.save(&mut txn, conv_slot, &conv)?;
        }
        self.vault.commit(txn).await?;
        for chunk in ids.chunks(content::MAX_IDS_PER_RECEIPT) {
            let receipt = Content::ReadReceipt {
                ids: chunk.to_vec(),
            };
            self.send_control_locked(&contact, receipt).await?;
        }
        Ok(())
    }
}
