//! What happens to one envelope the relay delivers.
//!
//! 1. Drop it if its SHA-256 was already processed (at-least-once delivery).
//! 2. Open the sealed layer, find the session by the sender's identity,
//!    decrypt. Only a pre-key message that none of the stored sessions
//!    recognises (`WrongSession` from all of them) creates a new session,
//!    with the one-time prekey it used deleted in the same transaction; a
//!    duplicate (its message key already used) is dropped without a warning
//!    and never rebuilds a session.
//! 3. Decode the payload and check the sender's claim: on first contact (or
//!    a key change) the relay's directory must list the sealing identity for
//!    the claimed account; a claimed username must resolve to that account.
//! 4. Apply the content (history, receipts, typing, renames), drop a
//!    duplicate message id, queue a delivery receipt.
//! 5. Commit everything — session, contact, history, seen marker — in one
//!    transaction. Only then does the caller ack the relay.
//!
//! A failure to decrypt or authenticate is reported as an event and the
//! envelope is marked seen (so a redelivery does not repeat the warning);
//! only a failing store makes [`process`] return an error (then nothing is
//! acked and the relay redelivers).
//!
//! Must never: apply content whose sender is not authenticated, accept a
//! sender claim the directory contradicts, or commit half of a delivery.

use std::sync::Arc;

use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use umbra_protocol::content::{self, Content};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseMessage, PairwiseSession};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyRef, SignedPreKey};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::wire::{AccountId, Username};

use crate::conversation::{DeliveryStatus, Direction, HistoryEntry};
use crate::engine::{Engine, QueuedContent};
use crate::payload::Payload;
use crate::sessions::{LoadedPreKeys, SessionRecord};
use crate::store::{RecordKind, Txn};
use crate::trust::{ContactRecord, Observation};
use crate::{Error, Event, MessageId};

#[cfg(test)]
mod tests;

/// A delivery that could not be accepted, for the `DecryptionFailed` event.
struct Rejected {
    from: Option<String>,
    reason: String,
}

impl Rejected {
    fn anonymous(reason: impl Into<String>) -> Self {
        Self {
            from: None,
            reason: reason.into(),
        }
    }
}

/// Outcome of the fallible part of processing: either a rejection, or a
/// store error that must stop the ack.
enum Failure {
    Rejected(Rejected),
    /// A message whose key was already used: a redelivery or a replay of
    /// something already processed. Dropped without a warning.
    Duplicate,
    Store(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(_) => Failure::Store(e),
            other => Failure::Rejected(Rejected::anonymous(other.to_string())),
        }
    }
}

impl From<crate::StoreError> for Failure {
    fn from(e: crate::StoreError) -> Self {
        Failure::Store(Error::Store(e))
    }
}

/// Processes one delivered envelope; see the module docs. Returns the
/// events to emit (after the commit).
pub(crate) async fn process(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
) -> Result<Vec<Event>, Error> {
    let _guard = engine.op_lock.lock().await;
    let seen_slot = engine.envelope_seen_slot(envelope);
    if engine
        .vault
        .get::<u64>(RecordKind::Seen, &seen_slot)
        .await?
        .is_some()
    {
        return Ok(Vec::new());
    }
    let mut txn = Txn::new();
    engine.vault.put(
        &mut txn,
        RecordKind::Seen,
        seen_slot.clone(),
        &received_at_ms,
        &mut OsRng,
    )?;
    match accept(engine, envelope, received_at_ms, &mut txn).await {
        Ok(events) => {
            engine.vault.commit(txn).await?;
            // A receipt may have been queued.
            engine.outbox_wake.notify_one();
            Ok(events)
        }
        Err(Failure::Store(e)) => Err(e),
        Err(Failure::Duplicate) => {
            mark_seen(engine, seen_slot, received_at_ms).await?;
            tracing::debug!("duplicate message dropped");
            Ok(Vec::new())
        }
        Err(Failure::Rejected(rejected)) => {
            // Only the seen marker: nothing of the rejected envelope is kept.
            mark_seen(engine, seen_slot, received_at_ms).await?;
            tracing::debug!(reason = %rejected.reason, "delivery rejected");
            Ok(vec![Event::DecryptionFailed {
                from: rejected.from,
                reason: rejected.reason,
            }])
        }
    }
}

/// Records that an envelope was processed, and nothing else.
async fn mark_seen(engine: &Engine, seen_slot: Vec<u8>, received_at_ms: u64) -> Result<(), Error> {
    let mut marker = Txn::new();
    engine.vault.put(
        &mut marker,
        RecordKind::Seen,
        seen_slot,
        &received_at_ms,
        &mut OsRng,
    )?;
    engine.vault.commit(marker).await?;
    Ok(())
}

async fn load_prekeys(
    engine: &Engine,
    inbound: &InboundEnvelope,
) -> Result<LoadedPreKeys, Failure> {
    let PairwiseMessage::PreKey(message) = inbound.message() else {
        return Ok(LoadedPreKeys::default());
    };
    let mut loaded = LoadedPreKeys::default();
    let id = message.initial.signed_prekey_id;
    let slot = engine
        .vault
        .slot(RecordKind::SignedPreKey, &id.to_be_bytes());
    if let Some(signed) = engine
        .vault
        .get::<SignedPreKey>(RecordKind::SignedPreKey, &slot)
        .await?
    {
        loaded.signed = Some((id, signed.secret().clone()));
    }
    let extra: Option<(PreKeyRef, SecretKey)> = match message.initial.extra_prekey {
        Some(r @ PreKeyRef::OneTime(id)) => {
            let slot = engine
                .vault
                .slot(RecordKind::OneTimePreKey, &id.to_be_bytes());
            engine
                .vault
                .get::<OneTimePreKey>(RecordKind::OneTimePreKey, &slot)
                .await?
                .map(|k| (r, k.secret().clone()))
        }
        Some(r @ PreKeyRef::LastResort(id)) => engine
            .vault
            .get::<OneTimePreKey>(RecordKind::LastResortPreKey, &[])
            .await?
            .filter(|k| k.id() == id)
            .map(|k| (r, k.secret().clone())),
        None => None,
    };
    loaded.extra = extra;
    Ok(loaded)
}

/// Decrypts with an existing session or a new one. Returns the plaintext
/// and the session record to store; a used one-time prekey's deletion is
/// added to `txn`.
async fn decrypt(
    engine: &Engine,
    inbound: &InboundEnvelope,
    txn: &mut Txn,
) -> Result<(Vec<u8>, SessionRecord), Failure> {
    let slot = engine.session_slot(inbound.sender());
    let existing: Option<SessionRecord> = engine.vault.get(RecordKind::Session, &slot).await?;
    let (plaintext, record, used) = match existing {
        Some(mut record) => match record.decrypt(inbound) {
            Ok(plain) => (plain, record, None),
            // Only a pre-key message that none of our sessions recognises
            // starts a new one (the peer started over, or both sides started
            // at once). Any other refusal, a duplicate above all, must not
            // rebuild a session from the prekeys: a replayed pre-key message
            // that used the last-resort key (or no extra prekey) would
            // otherwise resurrect its stale run as the current session.
            Err(PairwiseError::WrongSession) if inbound.is_prekey_message() => {
                let prekeys = load_prekeys(engine, inbound).await?;
                let (session, plain, used) =
                    PairwiseSession::accept(&engine.identity, inbound, &prekeys).map_err(|e| {
                        Failure::Rejected(Rejected::anonymous(format!(
                            "cannot start the new session: {e}"
                        )))
                    })?;
                record.promote_new(session);
                (plain, record, used)
            }
            Err(PairwiseError::Ratchet(RatchetError::DuplicateMessage)) => {
                return Err(Failure::Duplicate);
            }
            Err(e) => {
                return Err(Failure::Rejected(Rejected::anonymous(format!(
                    "cannot decrypt: {e}"
                ))))
            }
        },
        None => {
            if !inbound.is_prekey_message() {
                return Err(Failure::Rejected(Rejected::anonymous(
                    "message for a session this device does not have",
                )));
            }
            let prekeys = load_prekeys(engine, inbound).await?;
            let (session, plain, used) =
                PairwiseSession::accept(&engine.identity, inbound, &prekeys).map_err(|e| {
                    Failure::Rejected(Rejected::anonymous(format!("cannot start session: {e}")))
                })?;
            (plain, SessionRecord::new(session), used)
        }
    };
    if let Some(PreKeyRef::OneTime(id)) = used {
        // Forward secrecy: a one-time prekey opens exactly one session.
        let slot = engine
            .vault
            .slot(RecordKind::OneTimePreKey, &id.to_be_bytes());
        engine.vault.delete(txn, RecordKind::OneTimePreKey, slot);
    }
    Ok((plaintext, record))
}

/// Checks with the relay's directory that `account` publishes `identity`.
async fn directory_confirms(
    engine: &Arc<Engine>,
    account: AccountId,
    name: &Username,
    identity: &IdentityPublic,
) -> Result<bool, Failure> {
    let resolved = engine.resolve(name).await.map_err(Failure::from)?;
    if resolved != account {
        return Ok(false);
    }
    let bundle = engine
        .fetch_bundle(account, name.as_str())
        .await
        .map_err(Failure::from)?;
    Ok(bundle.identity().ct_eq(identity).into())
}

async fn accept(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
    txn: &mut Txn,
) -> Result<Vec<Event>, Failure> {
    let inbound = InboundEnvelope::open(&engine.identity, envelope).map_err(|e| {
        Failure::Rejected(Rejected::anonymous(format!("cannot open envelope: {e}")))
    })?;
    if engine.is_our_identity(inbound.sender()) {
        return Err(Failure::Rejected(Rejected::anonymous(
            "envelope claims to come from this device",
        )));
    }
    let (plaintext, mut record) = decrypt(engine, &inbound, txn).await?;
    let plaintext = zeroize::Zeroizing::new(plaintext);
    let payload = Payload::decode(&plaintext)
        .map_err(|e| Failure::Rejected(Rejected::anonymous(format!("undecodable message: {e}"))))?;
    let sender_identity = inbound.sender().clone();
    let account = *payload.sender.account.as_bytes();
    let claimed = payload.sender_username.clone();
    let mut events = Vec::new();

    let existing = engine.contact_by_account(&account).await?;
    let previous_name = existing.as_ref().map(|c| c.username.clone());
    let mut contact = match existing {
        None => {
            if !directory_confirms(engine, payload.sender.account, &claimed, &sender_identity)
                .await?
            {
                return Err(Failure::Rejected(Rejected {
                    from: None,
                    reason: format!(
                        "sender claims to be {} but the directory lists another key",
                        claimed.as_str()
                    ),
                }));
            }
            ContactRecord::first_seen(
                account,
                claimed.as_str().to_owned(),
                sender_identity.clone(),
            )
        }
        Some(mut contact) => {
            match contact.observe(&sender_identity) {
                Observation::Pinned | Observation::StillChanged => {}
                Observation::NewlyChanged => {
                    if !directory_confirms(
                        engine,
                        payload.sender.account,
                        &Username::parse_canonical(&contact.username).unwrap_or(claimed.clone()),
                        &sender_identity,
                    )
                    .await?
                    {
                        return Err(Failure::Rejected(Rejected {
                            from: Some(contact.username.clone()),
                            reason: format!(
                                "a message claiming to be from {} was sealed by a key the directory does not list",
                                contact.username
                            ),
                        }));
                    }
                    events.push(Event::KeyChanged {
                        username: contact.username.clone(),
                    });
                }
            }
            if contact.username != claimed.as_str() {
                // A rename; believe it only if the directory agrees.
                if engine.resolve(&claimed).await.ok() == Some(payload.sender.account) {
                    contact.username = claimed.as_str().to_owned();
                }
            }
            contact
        }
    };

    let from = contact.username.clone();
    let mut counters = engine.counters().await?;
    match payload.content {
        Content::Text {
            id,
            body,
            sent_at_ms,
        } => {
            let id = MessageId(id.0);
            if !engine
                .message_known(Direction::Incoming, &account, &id)
                .await?
            {
                let entry = HistoryEntry {
                    id,
                    direction: Direction::Incoming,
                    body: body.clone(),
                    sent_at_ms,
                    received_at_ms,
                    status: DeliveryStatus::Delivered,
                    reported: false,
                };
                engine
                    .append_history(txn, &mut counters, &contact, entry, true)
                    .await?;
                events.push(Event::Message {
                    from: from.clone(),
                    id,
                    body,
                    sent_at_ms,
                    received_at_ms,
                });
                if contact.may_send() {
                    // Encrypted with the session this delivery advanced; the
                    // record stored below includes this encryption.
                    engine.encrypt_into_outbox(
                        txn,
                        &mut counters,
                        &contact,
                        &mut record,
                        QueuedContent {
                            content: Content::DeliveryReceipt {
                                ids: vec![content::MessageId(id.0)],
                            },
                            id: MessageId::random(&mut OsRng),
                            visible: false,
                        },
                    )?;
                }
            }
        }
        Content::DeliveryReceipt { ids } | Content::ReadReceipt { ids }
            if ids.len() > content::MAX_IDS_PER_RECEIPT =>
        {
            return Err(Failure::Rejected(Rejected {
                from: Some(from),
                reason: "receipt lists too many ids".into(),
            }));
        }
        Content::DeliveryReceipt { ids } => {
            let ids: Vec<MessageId> = ids.into_iter().map(|i| MessageId(i.0)).collect();
            for id in &ids {
                engine
                    .update_status(txn, &account, id, DeliveryStatus::Delivered)
                    .await?;
            }
            events.push(Event::DeliveryReceipt {
                from: from.clone(),
                ids,
            });
        }
        Content::ReadReceipt { ids } => {
            let ids: Vec<MessageId> = ids.into_iter().map(|i| MessageId(i.0)).collect();
            for id in &ids {
                engine
                    .update_status(txn, &account, id, DeliveryStatus::Read)
                    .await?;
            }
            events.push(Event::ReadReceipt {
                from: from.clone(),
                ids,
            });
        }
        Content::Typing { started } => events.push(Event::Typing {
            from: from.clone(),
            started,
        }),
        Content::ProfileChange { new_username } => {
            if engine.resolve(&new_username).await.ok() == Some(payload.sender.account) {
                contact.username = new_username.as_str().to_owned();
            }
        }
        other => {
            // Groups, files, presence: not handled by this client version.
            tracing::debug!(kind = other.kind(), "ignoring unsupported content");
        }
    }
    // Last write of the session slot in this batch, so it wins over the
    // copy written while queueing a receipt.
    engine.vault.put(
        txn,
        RecordKind::Session,
        engine.session_slot(inbound.sender()),
        &record,
        &mut OsRng,
    )?;
    engine.put_contact(txn, &contact, previous_name.as_deref())?;
    engine.put_counters(txn, &counters)?;
    Ok(events)
}
