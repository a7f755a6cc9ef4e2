//! Texts, replies and messages about messages arriving over a pairwise
//! session (docs/PROTOCOL.md §10.6): a text or reply becomes a history
//! entry (once per id) with its delivery receipt; a reaction, edit or
//! delete is applied to the entry it names in the same conversation, by
//! the rule in `crate::about`, or refused with an event.
//!
//! Everything runs in the delivery's transaction (`inbound.rs`); a refusal
//! is an event, never a failure of the delivery, which is acknowledged as
//! usual.
//!
//! Must never: apply a reference to a message of another conversation,
//! let the peer edit or delete one of our messages, or apply a copy of a
//! reference already applied (its id is indexed once applied).

use rand::rngs::OsRng;
use umbra_protocol::content::Content;
use umbra_protocol::wire::AccountId;

use crate::about::{self, Change, Reference, Target};
use crate::conversation::{Direction, HistoryEntry};
use crate::engine::{Engine, QueuedContent};
use crate::history::Counters;
use crate::inbound::Failure;
use crate::records;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{ChangeRefusal, Event, MessageId};

/// Who a delivery came from, as the batch shows them.
pub(crate) struct Arrived<'a> {
    pub(crate) contact: &'a ContactRecord,
    /// The sender's display name.
    pub(crate) from: &'a str,
    pub(crate) received_at_ms: u64,
}

/// A `Text` or `TextReply`: stored once per id, its event, and the
/// delivery receipt queued with `record` (the session this delivery
/// advanced). Other content: nothing.
pub(crate) async fn accept_text(
    engine: &Engine,
    txn: &mut Txn,
    counters: &mut Counters,
    record: &mut SessionRecord,
    arrived: Arrived<'_>,
    content: Content,
) -> Result<Vec<Event>, Failure> {
    let Some((id, body, sent_at_ms, reply_to)) = crate::about::text_parts(content) else {
        return Ok(Vec::new());
    };
    let Arrived {
        contact,
        from,
        received_at_ms,
    } = arrived;
    let timeline = &engine.timeline;
    if timeline
        .message_known(Direction::Incoming, &contact.account, &id)
        .await?
    {
        return Ok(Vec::new());
    }
    // A reply is stored whether or not its target is known here (§10.6).
    let entry = HistoryEntry::incoming(id, body.clone(), sent_at_ms, received_at_ms, reply_to);
    timeline.append(txn, counters, contact, entry, true).await?;
    if contact.may_send() {
        // Encrypted with the session this delivery advanced; the record
        // the caller stores includes this encryption.
        engine.encrypt_into_outbox(
            txn,
            counters,
            contact,
            std::slice::from_mut(record),
            QueuedContent {
                content: Content::DeliveryReceipt { ids: vec![id] },
                id: MessageId::random(&mut OsRng),
                visible: false,
            },
        )?;
    }
    Ok(vec![Event::Message {
        from: from.to_owned(),
        id,
        body,
        sent_at_ms,
        received_at_ms,
        file: None,
        reply_to,
    }])
}

/// A reaction, edit or delete from `contact`: applied to the entry it
/// names, or refused (an event either way, none for a copy already
/// applied or a change that changes nothing).
pub(crate) async fn accept_reference(
    engine: &Engine,
    txn: &mut Txn,
    contact: &ContactRecord,
    from: &str,
    reference: Reference,
) -> Result<Vec<Event>, Failure> {
    let account = contact.account;
    let timeline = &engine.timeline;
    if timeline
        .message_known(Direction::Incoming, &account, &reference.id)
        .await?
    {
        return Ok(Vec::new());
    }
    let sender = AccountId::from_bytes(account);
    let refused = |reason: ChangeRefusal| {
        Ok(vec![Event::MessageChangeRefused {
            group: None,
            from: from.to_owned(),
            id: reference.id,
            target: reference.target,
            reason,
        }])
    };
    let found = locate(engine, &account, &reference, Direction::Incoming).await?;
    let Some((seq, mut entry, by_sender)) = found else {
        return refused(ChangeRefusal::UnknownTarget);
    };
    let is_text = !is_file(engine, entry.direction, &account, &entry.id).await?;
    let target = Target {
        entry: &mut entry,
        by_sender,
        is_text,
    };
    match about::apply(target, &sender, &reference) {
        Err(reason) => refused(reason),
        Ok(changed) => {
            timeline.note_reference(txn, Direction::Incoming, &account, &reference.id, seq)?;
            if !changed {
                return Ok(Vec::new());
            }
            timeline.replace(txn, &account, seq, &entry).await?;
            Ok(vec![Event::MessageChanged {
                group: None,
                from: from.to_owned(),
                from_account: sender,
                id: reference.id,
                target: reference.target,
                change: reference.event_change(),
            }])
        }
    }
}

/// The entry `reference` names in the conversation with `account`, its
/// sequence, and whether the reference's sender wrote it (`sender`: the
/// direction of the sender's own messages, `Incoming` for the peer's). An
/// edit or delete names one of the sender's own messages, so only if none
/// has that id is one of the other side's the target (and then refused as
/// not the author's); a reaction may name either, the older one if both
/// share the id (the later one chose its id after the first).
pub(crate) async fn locate(
    engine: &Engine,
    account: &[u8; 16],
    reference: &Reference,
    sender: Direction,
) -> Result<Option<(u64, HistoryEntry, bool)>, crate::Error> {
    let other = match sender {
        Direction::Incoming => Direction::Outgoing,
        Direction::Outgoing => Direction::Incoming,
    };
    let timeline = &engine.timeline;
    let own = timeline.find(sender, account, &reference.target).await?;
    let others = timeline.find(other, account, &reference.target).await?;
    let react = matches!(reference.change, Change::React { .. });
    Ok(match (own, others) {
        (Some(m), Some(o)) if react && o.0 < m.0 => Some((o.0, o.1, false)),
        (Some(m), _) => Some((m.0, m.1, true)),
        (None, Some(o)) => Some((o.0, o.1, false)),
        (None, None) => None,
    })
}

/// Whether the 1:1 message `id` sent `direction` with `account` is a file.
pub(crate) async fn is_file(
    engine: &Engine,
    direction: Direction,
    account: &[u8; 16],
    id: &MessageId,
) -> Result<bool, crate::Error> {
    let local = crate::files::local_id(direction, account, id);
    let slot = records::file::slot(&engine.vault, &local);
    Ok(engine.vault.load(&slot).await?.is_some())
}
