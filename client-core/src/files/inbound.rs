//! A file pointer arriving in a 1:1 message: its record, its history entry
//! and event, and the delivery receipt, in the batch's transaction (as a
//! text message is stored, `inbound.rs`).
//!
//! Must never: store a second entry for a message already in history, or
//! save anything but the sanitised name as the name to save under.

use rand::rngs::OsRng;
use umbra_protocol::content::{Content, FilePointer};

use super::{summary, StoredFile};
use crate::conversation::{Direction, HistoryEntry};
use crate::engine::{Engine, QueuedContent};
use crate::history::Counters;
use crate::records;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, Event, MessageId};

/// Who the pointer came from, as the batch shows them.
pub(crate) struct Arrived<'a> {
    contact: &'a ContactRecord,
    /// The sender's display name.
    from: &'a str,
    received_at_ms: u64,
}

impl<'a> Arrived<'a> {
    pub(crate) fn new(contact: &'a ContactRecord, from: &'a str, received_at_ms: u64) -> Self {
        Self {
            contact,
            from,
            received_at_ms,
        }
    }
}

/// Stores `pointer` from `arrived.contact` (once) and queues its receipt
/// with `record`; the event to emit, `None` for a duplicate.
pub(crate) async fn accept(
    engine: &Engine,
    txn: &mut Txn,
    counters: &mut Counters,
    record: &mut SessionRecord,
    arrived: Arrived<'_>,
    pointer: FilePointer,
) -> Result<Option<Event>, Error> {
    let Arrived {
        contact,
        from,
        received_at_ms,
    } = arrived;
    let id = pointer.id;
    let account = contact.account;
    if engine
        .timeline
        .message_known(Direction::Incoming, &account, &id)
        .await?
    {
        return Ok(None);
    }
    let local = super::local_id(Direction::Incoming, &account, &id);
    let stored = StoredFile::new(Direction::Incoming, account, pointer);
    let file = stored.info();
    engine
        .vault
        .save(txn, records::file::slot(&engine.vault, &local), &stored)?;
    // A pointer carries no clock: the relay's acceptance time stands in.
    let body = summary(&file.name, file.size);
    let entry = HistoryEntry::incoming(id, body, received_at_ms, received_at_ms, None);
    let body = entry.body.clone();
    engine
        .timeline
        .append(txn, counters, contact, entry, true)
        .await?;
    if contact.may_send() {
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
    Ok(Some(Event::Message {
        from: from.to_owned(),
        id,
        body,
        sent_at_ms: received_at_ms,
        received_at_ms,
        file: Some(file),
        reply_to: None,
    }))
}
