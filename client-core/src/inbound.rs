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
//!    a key change) the relay's directory (`ResolveUsername`, which claims
//!    no prekey) must name the claimed account and publish the sealing
//!    identity for it; a rename (a new claimed name, a `ProfileChange`) is
//!    believed only if the directory says the sender's account holds the
//!    name. Those requests are made before the state lock is taken
//!    (`precheck.rs`); steps 1 to 5 then run under the lock and use an
//!    answer only if the state still calls for that same request. Nothing
//!    is asked for a blocked sender (`crate::blocking`): a message claiming
//!    it is believed only if sealed by its pinned identity, and dropped
//!    silently (no session, no used prekey, no event) otherwise.
//! 4. Apply the content (history, receipts, typing, renames; replies,
//!    reactions, edits and deletes in `about.rs`), drop a duplicate
//!    message id, queue a delivery receipt.
//! 5. Commit everything — session, contact, history, seen marker — in one
//!    transaction. Only then does the caller ack the relay.
//!
//! A failure is reported as a `DecryptionFailed` event and sorted by whether
//! it can ever go away (PROTOCOL.md §12.5): an envelope that can never be
//! opened (forged or malformed, a claim the directory contradicts) is marked
//! seen and acknowledged; one whose failure may be local or passing (the
//! directory could not be asked, a prekey or session is missing) is *kept*:
//! not acknowledged, so the relay delivers it again on the next connection,
//! until it has failed too often for too long (`keep.rs`). A failing store
//! makes [`process`] return an error (then nothing is acked either).
//!
//! Must never: apply content whose sender is not authenticated, accept a
//! sender claim the directory contradicts, commit half of a delivery, or
//! acknowledge an envelope that failed for a reason that may be local
//! before its attempts are used up.

use std::sync::Arc;

use umbra_protocol::content::{self, Content};
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseMessage};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::wire::Username;

use crate::conversation::DeliveryStatus;
use crate::engine::Engine;
use crate::groups::inbound as groups_in;
use crate::groups::sync::reply_over;
use crate::payload::Payload;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{DecryptFailure, Error, Event};
use precheck::Directory;

pub(crate) mod about;
mod contact_rule;
mod group_device;
pub(crate) mod keep;
mod new_session;
mod outcome;
mod own_device;
mod precheck;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_transcript;

pub(crate) use keep::prune_markers;
pub(crate) use outcome::{Failure, Processed, Rejected};

/// Processes one envelope the relay delivered from our queue; see the
/// module docs. `received_at_ms` is the relay's acceptance time.
pub(crate) async fn process(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
) -> Result<Processed, Error> {
    process_inner(engine, envelope, received_at_ms).await
}

/// Processes an ephemeral payload (never queued, never acknowledged): a
/// typing notice. It is opened with the sender's stored session without
/// changing it (an ephemeral message uses no message key) and nothing is
/// written to the store; anything that does not open, or is not a typing
/// notice from a known contact, is dropped with a log line only.
pub(crate) async fn process_ephemeral(
    engine: &Arc<Engine>,
    payload: &[u8],
) -> Result<Vec<Event>, Error> {
    let now = engine.clock.now_ms();
    let drop = |reason: &str| {
        tracing::debug!(reason, "ephemeral message dropped");
        Ok(Vec::new())
    };
    let Ok(inbound) = InboundEnvelope::open(&engine.identity, payload) else {
        return drop("does not open");
    };
    if !matches!(inbound.message(), PairwiseMessage::Ephemeral(_)) {
        // Stored content must come through the queue (acked, deduplicated).
        return drop("not an ephemeral message");
    }
    let (sender, identity) = (inbound.sender_address(), inbound.sender());
    let Some(record) = engine.sessions.with(sender, identity).await? else {
        return drop("no session with the sender");
    };
    let Ok(plaintext) = record
        .open_ephemeral(&inbound, now)
        .map(zeroize::Zeroizing::new)
    else {
        return drop("no session opens it");
    };
    let Ok(payload) = Payload::decode(&plaintext) else {
        return drop("undecodable payload");
    };
    if payload.sender != *inbound.sender_address() {
        return drop("claims another sender address than its session");
    }
    let Some(contact) = engine
        .contact_by_account(payload.sender.account.as_bytes())
        .await?
    else {
        return drop("not a contact");
    };
    if engine.is_blocked(&contact.account).await? {
        return drop("from a blocked account");
    }
    match payload.content {
        Content::Typing { started } => Ok(vec![Event::Typing {
            from: contact.username,
            started,
        }]),
        Content::GroupTyping { group, started } => {
            let from = engine.names.display_name(&contact).await?;
            let member = payload.sender.account;
            Ok(Vec::from_iter(
                engine
                    .groups
                    .typing_event(&group, &member, from, started)
                    .await?,
            ))
        }
        _ => drop("only typing notices travel as ephemeral messages"),
    }
}

async fn process_inner(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
) -> Result<Processed, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Network first: no request waits while the state lock is held.
        let mut checked = precheck::plan(engine, envelope).await?;
        checked.last = attempt >= precheck::PLAN_ATTEMPTS;
        let _guard = engine.op_lock.lock().await;
        if let Some(processed) = locked(engine, envelope, received_at_ms, &checked).await? {
            return Ok(processed);
        }
    }
}

/// Steps 1 to 5 under the state lock; `None` if the state changed since
/// `checked` was asked (nothing is committed then).
async fn locked(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
    checked: &precheck::Checked,
) -> Result<Option<Processed>, Error> {
    let markers = engine.markers.of(envelope);
    if engine.markers.is_seen(&markers).await? {
        return Ok(Some(Processed::acked(Vec::new())));
    }
    let kept = keep::Kept::load(engine, markers.clone()).await?;
    let mut txn = Txn::new();
    engine
        .markers
        .mark_seen(&mut txn, &markers, engine.clock.now_ms())?;
    kept.forget(engine, &mut txn);
    let processed = match accept(engine, envelope, received_at_ms, checked, &mut txn).await {
        Ok(events) => {
            engine.vault.commit(txn).await?;
            // A receipt may have been queued.
            engine.outbox_wake.notify_one();
            Processed::acked(events)
        }
        Err(Failure::Store(e)) => return Err(e),
        Err(Failure::Replan) => return Ok(None),
        Err(Failure::Duplicate) => {
            keep::finish(engine, &kept).await?;
            tracing::debug!("duplicate message dropped");
            Processed::acked(Vec::new())
        }
        Err(Failure::Blocked) => {
            keep::finish(engine, &kept).await?;
            tracing::debug!("refused message claiming a blocked sender dropped");
            Processed::acked(Vec::new())
        }
        Err(Failure::Rejected(rejected)) => {
            // Only the seen marker: nothing of the rejected envelope is kept.
            keep::finish(engine, &kept).await?;
            // The code, not the words: they may name the claimed sender.
            tracing::debug!(reason = rejected.reason.code(), "delivery rejected");
            Processed::acked(vec![Event::DecryptionFailed {
                from: rejected.from,
                reason: rejected.reason,
            }])
        }
        Err(Failure::Kept(rejected)) => kept.retry_or_give_up(engine, rejected).await?,
    };
    Ok(Some(processed))
}

/// Decrypts with an existing session or a new one. Returns the plaintext
/// and the session record to store; a used one-time prekey's deletion is
/// added to `txn`.
async fn decrypt(
    engine: &Engine,
    inbound: &InboundEnvelope,
    txn: &mut Txn,
) -> Result<(Vec<u8>, SessionRecord), Failure> {
    let now = engine.clock.now_secs();
    let (sender, identity) = (inbound.sender_address(), inbound.sender());
    let existing: Option<SessionRecord> = engine.sessions.with(sender, identity).await?;
    let (plaintext, record, used) = match existing {
        Some(mut record) => match record.decrypt(inbound, now) {
            Ok(plain) => (plain, record, new_session::Used::default()),
            // Only a pre-key message that none of our sessions recognises
            // starts a new one (the peer started over, or both sides started
            // at once). Any other refusal, a duplicate above all, must not
            // rebuild a session from the prekeys: a replayed pre-key message
            // that used the last-resort key (or no extra prekey) would
            // otherwise resurrect its stale run as the current session.
            Err(PairwiseError::WrongSession) if inbound.is_prekey_message() => {
                let (session, plain, used) =
                    new_session::accept(engine, inbound, DecryptFailure::NewSessionRefused).await?;
                record.promote_new(session, now);
                (plain, record, used)
            }
            Err(PairwiseError::Ratchet(RatchetError::DuplicateMessage)) => {
                return Err(Failure::Duplicate);
            }
            Err(e) => return Err(refusal(DecryptFailure::Undecryptable, e)),
        },
        None => {
            if !inbound.is_prekey_message() {
                // The pre-key message that starts its session may itself be
                // kept for a retry, and arrive again first. Or the sender is
                // on a session with the device we were restored over.
                engine.ask_session_reset(inbound);
                return Err(Failure::Kept(Rejected::anonymous(
                    DecryptFailure::NoSession,
                )));
            }
            let (session, plain, used) =
                new_session::accept(engine, inbound, DecryptFailure::SessionRefused).await?;
            (plain, SessionRecord::new(session, now), used)
        }
    };
    // Forward secrecy: a one-time prekey (X25519 or ML-KEM) opens exactly
    // one session, and is deleted with the session's first decryption.
    if let Some(id) = used.one_time {
        engine.prekeys.consume_one_time(txn, id);
    }
    if let Some(id) = used.kem_one_time {
        engine.prekeys.consume_kem_one_time(txn, id);
    }
    Ok((plaintext, record))
}

/// Sorts a session-layer refusal (PROTOCOL.md §12.5): a prekey we do not
/// hold, or a message no session of ours authenticates (it may belong to a
/// session whose pre-key message is kept and comes again first), may be
/// local and is kept; everything else (a forged or malformed message, a
/// sender mismatch, a ratchet limit) can never succeed and is rejected.
fn refusal(reason: fn(PairwiseError) -> DecryptFailure, e: PairwiseError) -> Failure {
    let kept = matches!(
        e,
        PairwiseError::UnknownPreKey { .. }
            | PairwiseError::UnknownKemPreKey(_)
            | PairwiseError::WrongSession
            | PairwiseError::Ratchet(RatchetError::DecryptionFailed)
    );
    let rejected = Rejected::anonymous(reason(e));
    if kept {
        Failure::Kept(rejected)
    } else {
        Failure::Rejected(rejected)
    }
}

async fn accept(
    engine: &Arc<Engine>,
    envelope: &[u8],
    received_at_ms: u64,
    checked: &precheck::Checked,
    txn: &mut Txn,
) -> Result<Vec<Event>, Failure> {
    let inbound = InboundEnvelope::open(&engine.identity, envelope)
        .map_err(|e| Failure::Rejected(Rejected::anonymous(DecryptFailure::Unopenable(e))))?;
    if engine.is_our_identity(inbound.sender()) {
        let sender = inbound.sender_address();
        if inbound.group_message().is_none()
            && own_device::from_own_other_device(engine, sender.account, sender.device)
        {
            // Sent-message sync from another device of our account (§15.8).
            return own_device::accept(engine, &inbound, received_at_ms, checked, txn).await;
        }
        return Err(Failure::Rejected(Rejected::anonymous(
            DecryptFailure::FromThisDevice,
        )));
    }
    if inbound.group_message().is_some() {
        // Sender keys are per device (§8.2): a group message is read from
        // any device of the member's held list (§15.3 rule 3).
        group_device::listed(engine, checked, &inbound).await?;
        // Sealed directly, with no ratchet layer: the group's own keys.
        return groups_in::accept_message(engine, &inbound, received_at_ms, txn).await;
    }
    let (plaintext, mut record) = decrypt(engine, &inbound, txn).await?;
    let plaintext = zeroize::Zeroizing::new(plaintext);
    let payload = Payload::decode(&plaintext)
        .map_err(|e| Failure::Rejected(Rejected::anonymous(DecryptFailure::Undecodable(e))))?;
    // The session is bound to the sealed address (X3DH), so a payload that
    // claims another account or device contradicts what was authenticated.
    if payload.sender != *inbound.sender_address() {
        return Err(Failure::Rejected(Rejected::anonymous(
            DecryptFailure::SenderAddressMismatch,
        )));
    }
    let sender_identity = inbound.sender().clone();
    let account = *payload.sender.account.as_bytes();
    let blocked = engine.is_blocked(&account).await?;
    if blocked && !engine.pinned_for(&account, &sender_identity).await? {
        // Anyone can seal a pre-key message claiming the blocked address
        // with a fresh identity. The identity checks below would ask the
        // directory about the blocked account and report it by name, so
        // it is dropped here instead: `txn` (the new session, the one-time
        // prekey's deletion) is thrown away, only the seen marker stays.
        return Err(Failure::Blocked);
    }
    if blocked && !crate::blocking::passes_block(&payload.content) {
        // Decrypted and discarded (crate::blocking), as Signal does: the
        // advanced session, sealed by the pinned identity, is stored so an
        // unblock needs no new one; the seen marker and the ack keep the
        // envelope from coming again. Nothing else: no event, history,
        // contact change or receipt.
        let (sender, identity) = (inbound.sender_address(), inbound.sender());
        engine.sessions.save(txn, sender, identity, &record)?;
        tracing::debug!(
            kind = payload.content.kind(),
            "blocked sender's content dropped"
        );
        return Ok(Vec::new());
    }
    let claimed = payload.sender_username.clone();
    let mut events = Vec::new();

    let existing = engine.contact_by_account(&account).await?;
    // A stranger becomes a contact only by what the user sees or a group
    // that names them; upkeep (a session reset, typing, a receipt, ...)
    // would otherwise let anyone plant a contact here, and so in the
    // account backup (§12.15).
    let known = existing.is_some();
    let keep_contact = known || contact_rule::makes_contact(&payload.content);
    let mut contact = match existing {
        None => {
            if checked.answer(payload.sender.account, &claimed, &sender_identity)?
                == Directory::Contradicts
            {
                return Err(Failure::Rejected(Rejected::anonymous(
                    DecryptFailure::DirectoryContradicts { claimed },
                )));
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
                    if checked.answer(
                        payload.sender.account,
                        &Username::parse_canonical(&contact.username).unwrap_or(claimed.clone()),
                        &sender_identity,
                    )? == Directory::Contradicts
                    {
                        return Err(Failure::Rejected(Rejected {
                            from: Some(contact.username.clone()),
                            reason: DecryptFailure::KeyNotListed {
                                contact: contact.name()?,
                            },
                        }));
                    }
                    events.push(engine.key_changed_event(&contact)?);
                }
            }
            // A rename; believed only if the directory, asked before the
            // lock was taken, says the sender's account holds the name.
            // No rename of a blocked account: it would need the directory
            // (`precheck.rs` asks nothing for a blocked sender).
            if !blocked
                && precheck::renamed(&contact, &claimed)
                && checked.holds(&claimed, payload.sender.account)?
            {
                contact.username = claimed.as_str().to_owned();
            }
            contact
        }
    };

    // §15.3 rule 3: only a device of the account's signed list (each with
    // its own session, filed under its address) is believed.
    listed_device(engine, checked, &contact, &inbound, !known).await?;

    // A newcomer to a name the user knows is shown as `name#xxxxxxxx`.
    let from = engine.names.display_name(&contact).await?;
    let mut counters = engine.counters().await?;
    let timeline = &engine.timeline;
    match payload.content {
        text @ (Content::Text { .. } | Content::TextReply { .. }) => {
            let arrived = about::Arrived {
                contact: &contact,
                from: &from,
                received_at_ms,
            };
            let (c, r) = (&mut counters, &mut record);
            events.extend(about::accept_text(engine, txn, c, r, arrived, text).await?);
        }
        reference @ (Content::Reaction { .. }
        | Content::Edit { .. }
        | Content::DeleteForEveryone { .. }) => {
            if let Some(reference) = crate::about::Reference::of(&reference) {
                let found = about::accept_reference(engine, txn, &contact, &from, reference);
                events.extend(found.await?);
            }
        }
        Content::FilePointer(pointer) => {
            let arrived = crate::files::Arrived::new(&contact, &from, received_at_ms);
            let (c, r) = (&mut counters, &mut record);
            events.extend(crate::files::accept(engine, txn, c, r, arrived, pointer).await?);
        }
        Content::SentTranscript { .. } => {
            // §15.8: only our own account's devices send one; from anyone
            // else it is refused and reported, never applied.
            return Err(Failure::Rejected(Rejected {
                from: Some(from),
                reason: DecryptFailure::TranscriptNotFromOwnAccount,
            }));
        }
        Content::DeliveryReceipt { ids } | Content::ReadReceipt { ids }
            if ids.len() > content::MAX_IDS_PER_RECEIPT =>
        {
            return Err(Failure::Rejected(Rejected {
                from: Some(from),
                reason: DecryptFailure::TooManyReceiptIds,
            }));
        }
        Content::DeliveryReceipt { ids } => {
            for id in &ids {
                timeline
                    .update_status(txn, &account, id, DeliveryStatus::Delivered)
                    .await?;
            }
            events.extend(groups_in::receipt_groups(engine, &account, &from, &ids, false).await?);
            events.push(Event::DeliveryReceipt {
                from: from.clone(),
                ids,
            });
        }
        Content::ReadReceipt { ids } => {
            for id in &ids {
                timeline
                    .update_status(txn, &account, id, DeliveryStatus::Read)
                    .await?;
            }
            events.extend(groups_in::receipt_groups(engine, &account, &from, &ids, true).await?);
            events.push(Event::ReadReceipt {
                from: from.clone(),
                ids,
            });
        }
        Content::Typing { started } => events.push(Event::Typing {
            from: from.clone(),
            started,
        }),
        // §12.19: only a known contact's conversation can be deleted (a
        // stranger has none, and creates no contact by it).
        Content::DeleteConversation if known => {
            let found = crate::conversation_delete::accept(engine, txn, &contact, &from);
            events.extend(found.await?);
        }
        Content::DeleteConversation => {}
        Content::ProfileChange { new_username } => {
            if checked.holds(&new_username, payload.sender.account)? {
                contact.username = new_username.as_str().to_owned();
            }
        }
        // §12.18: a stranger's timer would plant a record for an account
        // that is no contact; only a known contact's is applied.
        timer @ Content::ExpirationTimer { .. } if known => {
            let found = crate::disappearing::accept(engine, txn, &contact, &from, timer, true);
            events.extend(found.await?);
        }
        Content::ExpirationTimer { .. } => {}
        // Group content (changes, welcomes, sender keys, typing); presence
        // is not handled by this client version.
        other => {
            let mut replies = Vec::new();
            let (c, id) = ((&contact, payload.sender.device), &sender_identity);
            let found = groups_in::accept_content(engine, txn, c, id, &from, other, &mut replies);
            events.extend(found.await?);
            if blocked {
                // Group upkeep is applied, but a blocked account is sent
                // nothing (no sync answer, no receipt).
                replies.clear();
            }
            reply_over(engine, txn, &mut counters, &contact, &mut record, replies)?;
        }
    }
    // Last write of the session slot in this batch, so it wins over the
    // copy written while queueing a receipt.
    let (sender, identity) = (inbound.sender_address(), inbound.sender());
    engine.sessions.save(txn, sender, identity, &record)?;
    if keep_contact {
        if let Some(reassigned) = engine.names.put_contact(txn, &contact).await? {
            // Before the message it arrived with: the warning comes first.
            events.insert(0, reassigned);
        }
    }
    engine.put_counters(txn, &counters)?;
    Ok(events)
}

/// Refuses a message from a device of its account that the held device
/// list lacks, after the one list fetch [`precheck::plan`] made for it
/// (the list may just be newer than ours); a fetch that could not be made
/// keeps the envelope, as a directory check that could not be made does.
/// Only a first contact's confirmed identity or the pinned one has its
/// list fetched: a message from an unlisted device under another identity
/// is refused at once.
async fn listed_device(
    engine: &Arc<Engine>,
    checked: &precheck::Checked,
    contact: &ContactRecord,
    inbound: &InboundEnvelope,
    first_contact: bool,
) -> Result<(), Failure> {
    let sender = inbound.sender_address();
    let held = engine.devices.held(&sender.account).await?;
    if held.allows(sender.device) {
        return Ok(());
    }
    let unlisted = || {
        Failure::Rejected(Rejected {
            from: (!first_contact).then(|| contact.username.clone()),
            reason: DecryptFailure::UnlistedDevice(sender.device),
        })
    };
    let pinned: bool = subtle::ConstantTimeEq::ct_eq(
        &contact.pinned.to_bytes()[..],
        &inbound.sender().to_bytes()[..],
    )
    .into();
    if !pinned {
        return Err(unlisted());
    }
    checked.list_fetched(sender.account)?;
    Err(unlisted())
}
