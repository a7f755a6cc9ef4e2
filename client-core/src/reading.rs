//! What the user reads: conversations, history, the messages `receive` has
//! not reported, and marking them reported or read. The engine's steps
//! around the [`Timeline`](crate::timeline::Timeline) manager: display
//! names from the name book, the state lock and commit, and the read
//! receipts a `mark_read` sends.
//!
//! Must never: read or write a history record itself (the timeline does),
//! or send a read receipt for a change that was not committed.

use std::collections::HashMap;
use std::sync::Arc;

use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::AccountId;

use crate::contact::TrustLevel;
use crate::conversation::{Conversation, HistoryEntry, UnreportedMessage};
use crate::engine::Engine;
use crate::store::Txn;
use crate::{Error, PeerRef};

impl Engine {
    pub(crate) async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        let mut out = Vec::new();
        for conv in self.timeline.summaries().await? {
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
        self.timeline.latest(&contact.account, limit).await
    }

    /// Incoming messages not yet reported, in arrival order, each under
    /// the name its sender is shown by.
    pub(crate) async fn unreported_messages(&self) -> Result<Vec<UnreportedMessage>, Error> {
        let mut names: HashMap<[u8; 16], String> = HashMap::new();
        let mut out = Vec::new();
        for found in self.timeline.unreported().await? {
            let from = match names.get(&found.account) {
                Some(name) => name.clone(),
                None => {
                    let name = match self.contact_by_account(&found.account).await? {
                        Some(contact) => self.names.display_name(&contact).await?,
                        None => found.username,
                    };
                    names.insert(found.account, name.clone());
                    name
                }
            };
            let entry = found.entry;
            let file = crate::files::file_of_message(
                &self.vault,
                crate::conversation::Direction::Incoming,
                &found.account,
                &entry.id,
            )
            .await?;
            out.push(UnreportedMessage {
                from,
                account_id: AccountId::from_bytes(found.account),
                id: entry.id,
                body: entry.body,
                sent_at_ms: entry.sent_at_ms,
                received_at_ms: entry.received_at_ms,
                file,
                reply_to: entry.about.reply_to,
            });
        }
        Ok(out)
    }

    /// Sets the `reported` flag of each listed message (in one transaction).
    pub(crate) async fn mark_reported(&self, messages: &[UnreportedMessage]) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.timeline.mark_reported(&mut txn, messages).await?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    pub(crate) async fn mark_read(self: &Arc<Self>, peer: &PeerRef) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(peer).await?;
        let mut txn = Txn::new();
        let ids = self.timeline.mark_read(&mut txn, &contact.account).await?;
        self.vault.commit(txn).await?;
        if !self.settings().await?.read_receipts {
            // Read receipts are off (crate::settings): read here only.
            return Ok(());
        }
        for chunk in ids.chunks(content::MAX_IDS_PER_RECEIPT) {
            let receipt = Content::ReadReceipt {
                ids: chunk.to_vec(),
            };
            self.send_control_locked(&contact, receipt).await?;
        }
        Ok(())
    }
}
