//! Sent-message sync, the receiving half (docs/PROTOCOL.md §15.8): an
//! envelope sealed by our own identity from another device of our own
//! account. It is believed only from a device our held (signed) list
//! names, after one list fetch for a device it lacks, as a contact's
//! devices are (§15.3 rule 3), and it may carry only a `SentTranscript`:
//! the original (a text, reply, file, reaction, edit or delete we sent
//! 1:1 from that device) is stored in the conversation with its
//! destination as ours, with its own message id, by the rule our own
//! sends follow (`crate::about::apply` for references); a conversation
//! deleted for everyone there is erased here (`crate::conversation_delete`).
//!
//! Must never: apply a transcript from another account or from a device
//! our list lacks, answer one with a receipt (to the contact or to our
//! device), make a contact from one, or apply one to a conversation
//! other than its destination's.

use std::sync::Arc;

use umbra_protocol::content::Content;
use umbra_protocol::pairwise::InboundEnvelope;
use umbra_protocol::wire::{AccountId, DeviceId};

use super::{decrypt, precheck, Failure, Rejected};
use crate::about::{self, Reference, Target};
use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::engine::Engine;
use crate::files::{summary, StoredFile};
use crate::history::Counters;
use crate::inbound::about::{is_file, locate};
use crate::payload::Payload;
use crate::records;
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{DecryptFailure, Event};

/// Accepts an envelope from another device of our account (the caller
/// checked it is sealed by our identity and names our account and
/// another device than this one); see the module docs.
pub(super) async fn accept(
    engine: &Arc<Engine>,
    inbound: &InboundEnvelope,
    received_at_ms: u64,
    checked: &precheck::Checked,
    txn: &mut Txn,
) -> Result<Vec<Event>, Failure> {
    let (plaintext, record) = decrypt(engine, inbound, txn).await?;
    let plaintext = zeroize::Zeroizing::new(plaintext);
    let payload = Payload::decode(&plaintext)
        .map_err(|e| Failure::Rejected(Rejected::anonymous(DecryptFailure::Undecodable(e))))?;
    let sender = *inbound.sender_address();
    if payload.sender != sender {
        return Err(Failure::Rejected(Rejected::anonymous(
            DecryptFailure::SenderAddressMismatch,
        )));
    }
    // §15.3 rule 3 for our own account: only a device our signed list
    // names (a relay cannot add one: it cannot sign our list).
    if !engine
        .devices
        .held(&sender.account)
        .await?
        .allows(sender.device)
    {
        checked.list_fetched(sender.account)?;
        return Err(Failure::Rejected(Rejected::anonymous(
            DecryptFailure::UnlistedDevice(sender.device),
        )));
    }
    let Some(opened) = payload.content.transcript_original() else {
        return Err(Failure::Rejected(Rejected::anonymous(
            DecryptFailure::OwnDeviceContent(payload.content.kind()),
        )));
    };
    let refused = |reason| {
        Failure::Rejected(Rejected::anonymous(DecryptFailure::TranscriptRefused {
            device: sender.device,
            reason,
        }))
    };
    // The decoder checked the original; this only names the failure.
    let (destination, original) = opened.map_err(|_| refused("its original does not decode"))?;
    if destination == engine.me().account {
        return Err(refused("names this account as its destination"));
    }
    let Some(contact) = engine.contact_by_account(destination.as_bytes()).await? else {
        return Err(refused(
            "names an account that is not a contact on this device",
        ));
    };
    let to = engine.names.display_name(&contact).await?;
    let mut counters = engine.counters().await?;
    let placed = Placed {
        contact: &contact,
        to: &to,
        received_at_ms,
    };
    let events = match original {
        // §12.19: a conversation deleted for everyone is deleted here too.
        Content::DeleteConversation => {
            crate::conversation_delete::accept_own(engine, txn, &contact, &to).await?
        }
        // §12.18: a timer another device of ours set applies here too, as
        // ours (the same newest-wins rule as the contact's copy).
        timer @ Content::ExpirationTimer { .. } => {
            crate::disappearing::accept(engine, txn, &contact, &to, timer, false).await?
        }
        original => place(engine, txn, &mut counters, placed, original).await?,
    };
    // The session with our device advanced; nothing is sent back on it.
    engine
        .sessions
        .save(txn, &sender, inbound.sender(), &record)?;
    engine.put_counters(txn, &counters)?;
    Ok(events)
}

/// Where a transcript's original goes: the conversation with `contact`.
struct Placed<'a> {
    contact: &'a ContactRecord,
    /// The contact's display name.
    to: &'a str,
    received_at_ms: u64,
}

/// Stores `original` as ours in the conversation (once per id) and names
/// the event; a reference our own rule refuses changes nothing and is
/// reported, as one arriving from a contact is.
async fn place(
    engine: &Engine,
    txn: &mut Txn,
    counters: &mut Counters,
    placed: Placed<'_>,
    original: Content,
) -> Result<Vec<Event>, Failure> {
    let Placed {
        contact,
        to,
        received_at_ms,
    } = placed;
    let account = contact.account;
    let timeline = &engine.timeline;
    if let Some(reference) = Reference::of(&original) {
        if timeline
            .message_known(Direction::Outgoing, &account, &reference.id)
            .await?
        {
            return Ok(Vec::new());
        }
        let me = engine.me();
        let refused = |reason| {
            Ok(vec![Event::MessageChangeRefused {
                group: None,
                from: me.username.as_str().to_owned(),
                id: reference.id,
                target: reference.target,
                reason,
            }])
        };
        let found = locate(engine, &account, &reference, Direction::Outgoing).await?;
        let Some((seq, mut entry, by_sender)) = found else {
            return refused(crate::ChangeRefusal::UnknownTarget);
        };
        let is_text = !is_file(engine, entry.direction, &account, &entry.id).await?;
        let target = Target {
            entry: &mut entry,
            by_sender,
            is_text,
        };
        return match about::apply(target, &me.account, &reference) {
            Err(reason) => refused(reason),
            Ok(changed) => {
                timeline.note_reference(txn, Direction::Outgoing, &account, &reference.id, seq)?;
                if !changed {
                    return Ok(Vec::new());
                }
                timeline.replace(txn, &account, seq, &entry).await?;
                Ok(vec![Event::MessageChanged {
                    group: None,
                    from: me.username.as_str().to_owned(),
                    from_account: me.account,
                    id: reference.id,
                    target: reference.target,
                    change: reference.event_change(),
                }])
            }
        };
    }
    let (id, body, sent_at_ms, reply_to, file) = match original {
        Content::FilePointer(pointer) => {
            let id = pointer.id;
            let stored = StoredFile::new(Direction::Outgoing, account, pointer);
            let info = stored.info();
            if !timeline
                .message_known(Direction::Outgoing, &account, &id)
                .await?
            {
                let local = crate::files::local_id(Direction::Outgoing, &account, &id);
                engine
                    .vault
                    .save(txn, records::file::slot(&engine.vault, &local), &stored)?;
            }
            // A pointer carries no clock: the relay's acceptance time.
            let body = summary(&info.name, info.size);
            (id, body, received_at_ms, None, Some(info))
        }
        text => match about::text_parts(text) {
            Some((id, body, sent_at_ms, reply_to)) => (id, body, sent_at_ms, reply_to, None),
            // The decoder admits no other kind (TRANSCRIPT_KINDS).
            None => return Ok(Vec::new()),
        },
    };
    if timeline
        .message_known(Direction::Outgoing, &account, &id)
        .await?
    {
        return Ok(Vec::new());
    }
    let mut entry = HistoryEntry::outgoing(id, body.clone(), sent_at_ms);
    entry.about.reply_to = reply_to;
    // Our other device sent it (its outbox holds it, not ours): nothing
    // here will settle it, and its receipts go to that device.
    entry.status = DeliveryStatus::Sent;
    timeline
        .append(txn, counters, contact, entry, false)
        .await?;
    Ok(vec![Event::SentElsewhere {
        to: to.to_owned(),
        id,
        body,
        sent_at_ms,
        file,
        reply_to,
    }])
}

/// Whether an envelope sealed by our identity names another device of our
/// own account (sent-message sync) rather than this device or another
/// account (neither of which we ever send to ourselves).
pub(super) fn from_own_other_device(engine: &Engine, sender: AccountId, device: DeviceId) -> bool {
    let me = engine.me();
    sender == me.account && device != me.device
}
