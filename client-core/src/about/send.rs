//! Sending messages about messages 1:1 (docs/PROTOCOL.md §10.6): the
//! reference is built and checked, applied to our own history by the same
//! rule a receiver uses, and encrypted into the outbox, all in one
//! transaction; a refusal is an error before anything is encrypted. The
//! group sends are `groups/send.rs`'s, with `groups/about.rs`'s lookup.
//!
//! Must never: send a change our own rule refuses (every receiver would
//! refuse it too), or queue one without applying it to our history.

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::wire::Username;

use super::{Change, Reference, Target};
use crate::conversation::Direction;
use crate::engine::{now_ms, Engine, QueuedContent};
use crate::failure::InvalidMessage;
use crate::inbound::about::{is_file, locate};
use crate::store::Txn;
use crate::{ChangeRefusal, Error, MessageId};

/// A new reference of ours to `target`: a fresh id, our clock, and the
/// content rules (emoji, text limits) checked before anything else.
pub(crate) fn new_reference(target: MessageId, change: Change) -> Result<Reference, Error> {
    if let Change::Edit { body } = &change {
        // The same limits and errors as a new text.
        crate::outbound::new_text(body)?;
    }
    let reference = Reference {
        id: MessageId::random(&mut OsRng),
        target,
        sent_at_ms: now_ms(),
        change,
    };
    reference
        .content()
        .validate()
        .map_err(InvalidMessage::Content)?;
    Ok(reference)
}

/// `text` (a new `Text`) as a reply quoting `target`.
pub(crate) fn as_reply(text: Content, target: MessageId) -> Result<Content, Error> {
    let Content::Text {
        id,
        body,
        sent_at_ms,
    } = text
    else {
        return Ok(text);
    };
    let reply = Content::TextReply {
        id,
        target,
        body,
        sent_at_ms,
    };
    reply.validate().map_err(InvalidMessage::Content)?;
    Ok(reply)
}

/// Refuses a reply to a message the conversation with `account` does not
/// hold (either side's): a mistyped id would quote nothing.
pub(crate) async fn require_known(
    engine: &Engine,
    account: &[u8; 16],
    target: &MessageId,
) -> Result<(), Error> {
    let timeline = &engine.timeline;
    for direction in [Direction::Outgoing, Direction::Incoming] {
        if timeline.find(direction, account, target).await?.is_some() {
            return Ok(());
        }
    }
    Err(Error::ChangeRefused {
        target: *target,
        reason: ChangeRefusal::UnknownTarget,
    })
}

impl Engine {
    /// Sends `reference` to `to` and applies it to our history.
    pub(crate) async fn send_reference(
        self: &Arc<Self>,
        to: &Username,
        reference: Reference,
    ) -> Result<MessageId, Error> {
        self.check_open()?;
        self.ensure_connected()?;
        let id = reference.id;
        let account;
        {
            let (_guard, contact, mut records, _) = self.session_for_sending(to).await?;
            account = contact.account;
            let refused = |reason| Error::ChangeRefused {
                target: reference.target,
                reason,
            };
            let found = locate(self, &account, &reference, Direction::Outgoing).await?;
            let (seq, mut entry, by_sender) =
                found.ok_or_else(|| refused(ChangeRefusal::UnknownTarget))?;
            let is_text = !is_file(self, entry.direction, &account, &entry.id).await?;
            let target = Target {
                entry: &mut entry,
                by_sender,
                is_text,
            };
            let me = self.me().account;
            let changed = super::apply(target, &me, &reference).map_err(refused)?;
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            // Visible: its outcome is a `Sent`/`SendFailed` event an
            // interface waits for; no history entry has its id, so no
            // status changes.
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut records,
                QueuedContent {
                    content: reference.content(),
                    id,
                    visible: true,
                },
            )?;
            if changed {
                self.timeline
                    .replace(&mut txn, &account, seq, &entry)
                    .await?;
            }
            self.put_counters(&mut txn, &counters)?;
            self.vault.commit(txn).await?;
        }
        self.outbox_wake.notify_one();
        // Our other devices apply it too (§15.8), after it is durable.
        self.sync_sent(account, &reference.content()).await;
        Ok(id)
    }
}
