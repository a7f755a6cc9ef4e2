//! The outbound path, the mirror of `inbound`: finding or starting the
//! session for a send, encrypting into the outbox, control messages and
//! typing notices, and the outbox pump that hands envelopes to the relay.
//!
//! Must never: release a ciphertext before its session and outbox entry are
//! committed together, or drop an outbox entry the relay did not settle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use umbra_protocol::content::{self, Content};
use umbra_protocol::pairwise::PairwiseSession;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{
    AccountId, Address, OutgoingEnvelope, Request, Response, SendOutcome, Username,
    MAX_ENVELOPE_BYTES,
};

use crate::contact::NameState;
use crate::conversation::{DeliveryStatus, HistoryEntry};
use crate::engine::{now_ms, Engine, QueuedContent};
use crate::failure::{CryptoFailure, RelayMisbehaved};
use crate::history::Counters;
use crate::identity_checks::CheckStarted;
use crate::outbox::{OutboxEntry, PendingMessage};
use crate::payload::Payload;
use crate::records::{self, Prefix, Slot};
use crate::sessions::SessionRecord;
use crate::store::{Durability, Txn};
use crate::trust::{ContactRecord, Observation};
use crate::{Error, Event, InvalidMessage, MessageId, PeerRef, UnknownPeer};

mod ready;

/// How often a send re-plans when the state moved during its network half.
const PLAN_ATTEMPTS: usize = 3;

/// What [`Engine::plan_send`] learnt from the relay.
pub(crate) enum SendPlan {
    /// A usable session exists and its contact's published identity checked out.
    Existing,
    /// No usable session: a freshly claimed, verified bundle to start one.
    Fresh {
        account: AccountId,
        bundle: Box<VerifiedPreKeyBundle>,
        check: CheckStarted,
    },
}

impl Engine {
    /// The network half of a send, run without the state lock: what the
    /// relay says about `name` now. An existing session needs only the
    /// published-identity check; otherwise the name is resolved and a
    /// bundle claimed.
    pub(crate) async fn plan_send(self: &Arc<Self>, name: &Username) -> Result<SendPlan, Error> {
        let existing = self.contact_for_sending(name).await?;
        if let Some(contact) = &existing {
            if !contact.may_send() {
                return Err(contact.untrusted());
            }
            if self.usable_session(contact).await?.is_some() {
                self.check_published_identity(contact).await?;
                return Ok(SendPlan::Existing);
            }
        }
        let account = match &existing {
            Some(c) => AccountId::from_bytes(c.account),
            None => self.resolve(name).await?,
        };
        if account == self.me().account {
            return Err(Error::unknown(name.clone(), UnknownPeer::Yourself));
        }
        let check = self.identity_checks.start(Instant::now());
        let bundle = self.fetch_bundle(account, name).await?;
        Ok(SendPlan::Fresh {
            account,
            bundle: Box::new(bundle),
            check,
        })
    }

    /// A session with `contact` we can send with: not one we started that
    /// was never answered for the relay's message lifetime (that one will
    /// never complete, so a send starts over instead).
    pub(crate) async fn usable_session(
        &self,
        contact: &ContactRecord,
    ) -> Result<Option<SessionRecord>, Error> {
        let now = self.clock.now_secs();
        Ok(self.sessions.usable(contact, now).await?)
    }

    /// The state half of a send, under the state lock: re-reads the contact
    /// and session (another send may have changed them while `plan` was on
    /// the network) and returns the contact and the session to send with,
    /// started from the plan's bundle when needed. `None`: the plan no
    /// longer fits the state; plan again.
    pub(crate) async fn session_from_plan(
        &self,
        name: &Username,
        plan: SendPlan,
    ) -> Result<Option<(ContactRecord, SessionRecord, bool)>, Error> {
        let existing = match self.names.binding(name.as_str()).await? {
            Some(binding) if binding.newcomer.is_some() => {
                return Err(Error::NameReassigned {
                    username: name.clone(),
                })
            }
            Some(binding) => self.contact_by_account(&binding.account).await?,
            None => None,
        };
        if let Some(contact) = &existing {
            if !contact.may_send() {
                return Err(contact.untrusted());
            }
            if let Some(record) = self.usable_session(contact).await? {
                return Ok(Some((contact.clone(), record, false)));
            }
        }
        let SendPlan::Fresh {
            account,
            bundle,
            check,
        } = plan
        else {
            // The session the plan relied on is gone.
            return Ok(None);
        };
        if existing
            .as_ref()
            .is_some_and(|c| c.account != *account.as_bytes())
        {
            // The name was bound to another account meanwhile.
            return Ok(None);
        }
        let contact = match existing {
            Some(mut contact) => match contact.observe(bundle.identity()) {
                Observation::Pinned => contact,
                Observation::NewlyChanged => {
                    let mut txn = Txn::new();
                    // The contact is the one the name means: no name event.
                    self.names.put_contact(&mut txn, &contact).await?;
                    self.vault.commit(txn).await?;
                    self.emit(self.key_changed_event(&contact)?);
                    return Err(contact.untrusted());
                }
                Observation::StillChanged => return Err(contact.untrusted()),
            },
            None => ContactRecord::first_seen(
                *account.as_bytes(),
                name.as_str().to_owned(),
                bundle.identity().clone(),
            ),
        };
        // The bundle just named the contact's current identity.
        self.identity_checks.record(contact.account, check);
        let record = self
            .start_session(&contact, &bundle, account, self.clock.now_secs())
            .await?;
        Ok(Some((contact, record, true)))
    }

    /// A new X3DH session with `account`'s primary device from its verified
    /// `bundle`, as the contact's session record: the new session becomes
    /// current and an existing record keeps its older states archived (a
    /// late reply on one of them still decrypts). Nothing is stored here;
    /// the caller commits the record with the message it encrypts.
    pub(crate) async fn start_session(
        &self,
        contact: &ContactRecord,
        bundle: &VerifiedPreKeyBundle,
        account: AccountId,
        now: u64,
    ) -> Result<SessionRecord, Error> {
        let session = PairwiseSession::initiate(
            &self.identity,
            &self.me().address(),
            bundle,
            &Address::primary(account),
            &mut OsRng,
        )
        .map_err(|e| Error::Crypto(CryptoFailure::StartSession(e)))?;
        Ok(self.sessions.begin(contact, session, now).await?)
    }

    /// [`Engine::plan_send`] then [`Engine::session_from_plan`] until they
    /// agree, returning with the state lock held: no request ever waits
    /// while the lock is held.
    pub(crate) async fn session_for_sending(
        self: &Arc<Self>,
        name: &Username,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            ContactRecord,
            SessionRecord,
            bool,
        ),
        Error,
    > {
        if let Some(ready) = self.ready_session_locked(name).await? {
            // Every send (text, reply, reaction, edit, delete) comes here:
            // nothing goes to a blocked contact (crate::blocking).
            self.refuse_if_blocked(&ready.1.account, name).await?;
            return Ok(ready);
        }
        for _ in 0..PLAN_ATTEMPTS {
            // plan_send refuses a blocked contact (contact_for_sending).
            let plan = self.plan_send(name).await?;
            let guard = self.op_lock.lock().await;
            if let Some((contact, record, fresh)) = self.session_from_plan(name, plan).await? {
                self.refuse_if_blocked(&contact.account, name).await?;
                return Ok((guard, contact, record, fresh));
            }
        }
        Err(Error::SessionContended {
            username: name.clone(),
            attempts: PLAN_ATTEMPTS,
        })
    }

    /// Encrypts `content` for `contact` with `record` and adds the advanced
    /// session plus an outbox entry to `txn`. Nothing leaves the client here.
    pub(crate) fn encrypt_into_outbox(
        &self,
        txn: &mut Txn,
        counters: &mut Counters,
        contact: &ContactRecord,
        record: &mut SessionRecord,
        queued: QueuedContent,
    ) -> Result<(), Error> {
        let QueuedContent {
            content,
            id,
            visible,
        } = queued;
        let envelope = self.seal_content(record, content)?;
        self.sessions.save_for_contact(txn, contact, record)?;
        let seq = counters.next_outbox_seq;
        counters.next_outbox_seq += 1;
        let entry = OutboxEntry {
            id,
            to_account: contact.account,
            to_username: contact.username.clone(),
            envelope,
            queued_at_ms: now_ms(),
            visible,
        };
        self.vault.save(txn, records::outbox::slot(seq), &entry)?;
        Ok(())
    }

    /// Encrypts `content` (as our payload, §12.1) with `record`'s current
    /// session into a sealed envelope; the caller stores the advanced
    /// record in the same transaction as the envelope.
    pub(crate) fn seal_content(
        &self,
        record: &mut SessionRecord,
        content: Content,
    ) -> Result<Vec<u8>, Error> {
        let me = self.me();
        let payload = zeroize::Zeroizing::new(
            Payload {
                sender: me.address(),
                sender_username: me.username.clone(),
                content,
            }
            .encode()?,
        );
        let envelope = record
            .current_mut()
            .seal_for(&self.identity, &payload, &mut OsRng)
            .map_err(|e| Error::Crypto(CryptoFailure::Encrypt(e)))?;
        if envelope.len() > MAX_ENVELOPE_BYTES {
            return Err(Error::MessageTooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        Ok(envelope)
    }

    pub(crate) async fn send_text(
        self: &Arc<Self>,
        to: &Username,
        text: &str,
    ) -> Result<MessageId, Error> {
        self.send_text_reply(to, text, None).await
    }

    /// Sends `text`, as a reply quoting `reply_to` (ours or the peer's
    /// message, which must be in the conversation, §10.6) if given.
    pub(crate) async fn send_text_reply(
        self: &Arc<Self>,
        to: &Username,
        text: &str,
        reply_to: Option<MessageId>,
    ) -> Result<MessageId, Error> {
        self.check_open()?;
        let name = to.clone();
        let (id, sent_at_ms, mut text_content) = new_text(text)?;
        if let Some(target) = reply_to {
            text_content = crate::about::as_reply(text_content, target)?;
        }
        // Only a sendable message starts the connection.
        self.ensure_connected()?;
        {
            let (_guard, contact, mut record, _) = self.session_for_sending(&name).await?;
            if let Some(target) = reply_to {
                crate::about::require_known(self, &contact.account, &target).await?;
            }
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut record,
                QueuedContent {
                    content: text_content,
                    id,
                    visible: true,
                },
            )?;
            // A first contact binds its name here; a name that means
            // another account was refused before anything was encrypted.
            self.names.put_contact(&mut txn, &contact).await?;
            let mut entry = HistoryEntry::outgoing(id, text.to_owned(), sent_at_ms);
            entry.about.reply_to = reply_to;
            self.timeline
                .append(&mut txn, &mut counters, &contact, entry, false)
                .await?;
            self.put_counters(&mut txn, &counters)?;
            // The one commit that makes the ciphertext and its session durable together.
            self.vault.commit(txn).await?;
        }
        // Offline is fine: the outbox keeps the envelope until the relay
        // accepts it, and the connection started above keeps trying.
        self.outbox_wake.notify_one();
        Ok(id)
    }

    /// Sends `content` (not shown in history) to a contact with an existing
    /// session, through the outbox. Used for receipts and profile changes.
    pub(crate) async fn send_control(
        self: &Arc<Self>,
        contact: &ContactRecord,
        content: Content,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        self.send_control_locked(contact, content).await
    }

    pub(crate) async fn send_control_locked(
        self: &Arc<Self>,
        contact: &ContactRecord,
        content: Content,
    ) -> Result<(), Error> {
        self.check_open()?;
        if !contact.may_send() || self.is_blocked(&contact.account).await? {
            // Receipts and other upkeep never go to a blocked contact
            // (crate::blocking).
            return Ok(());
        }
        let Some(mut record) = self.sessions.of_contact(contact).await? else {
            return Ok(());
        };
        let mut counters = self.counters().await?;
        let mut txn = Txn::new();
        self.encrypt_into_outbox(
            &mut txn,
            &mut counters,
            contact,
            &mut record,
            QueuedContent {
                content,
                id: MessageId::random(&mut OsRng),
                visible: false,
            },
        )?;
        self.put_counters(&mut txn, &counters)?;
        self.vault.commit(txn).await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    pub(crate) async fn send_typing(
        self: &Arc<Self>,
        to: &Username,
        started: bool,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        if !self.settings().await?.typing {
            // Typing is off (crate::settings): nothing leaves.
            return Ok(());
        }
        let guard = self.op_lock.lock().await;
        let contact = self.known_contact(&PeerRef::Name(to.clone())).await?;
        if !contact.may_send() {
            return Err(contact.untrusted());
        }
        if self.is_blocked(&contact.account).await? {
            // Best effort, like every typing notice: silently none to a
            // blocked contact (crate::blocking).
            return Ok(());
        }
        if self.names.name_state(&contact).await? != NameState::Current {
            // Typing notices are best effort; never to a contested name.
            return Ok(());
        }
        let Some(mut record) = self.sessions.of_contact(&contact).await? else {
            // No session yet: typing notices never start one.
            return Ok(());
        };
        let me = self.me();
        let payload = zeroize::Zeroizing::new(
            Payload {
                sender: me.address(),
                sender_username: me.username.clone(),
                content: Content::Typing { started },
            }
            .encode()?,
        );
        // An ephemeral message: it uses no message key, so the relay dropping
        // it (the contact is offline) never leaves a gap in the chain.
        let envelope = record
            .current_mut()
            .seal_ephemeral(&self.identity, &payload, self.clock.now_ms(), &mut OsRng)
            .map_err(|e| Error::Crypto(CryptoFailure::Encrypt(e)))?;
        let mut txn = Txn::new();
        self.sessions
            .save_for_contact(&mut txn, &contact, &record)?;
        self.vault.commit(txn).await?;
        // The session is committed: the request waits without the lock.
        drop(guard);
        self.request(Request::Ephemeral {
            to: Address::primary(AccountId::from_bytes(contact.account)),
            payload: envelope,
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn pending_outbox(&self) -> Result<Vec<PendingMessage>, Error> {
        Ok(self
            .vault
            .load_all(&Prefix::<records::outbox::Outbox>::all())
            .await?
            .into_iter()
            .map(|(_, e)| e.describe())
            .collect())
    }

    /// Hands queued envelopes to the relay, oldest first, until the outbox
    /// is empty or the relay cannot take more right now.
    pub(crate) async fn pump_outbox(self: &Arc<Self>) -> Result<(), Error> {
        loop {
            let first = self
                .vault
                .load_all(&Prefix::<records::outbox::Outbox>::all())
                .await?
                .into_iter()
                .next();
            let Some((slot, entry)) = first else {
                // Then the group fan-outs, which may hold sender keys and
                // changes queued after these pairwise entries.
                self.pump_fanouts().await?;
                self.outbox_changed.send_modify(|n| *n += 1);
                return Ok(());
            };
            let result = self
                .request(Request::Send {
                    messages: vec![OutgoingEnvelope {
                        to: Address::primary(AccountId::from_bytes(entry.to_account)),
                        envelope: entry.envelope.clone(),
                    }],
                })
                .await;
            let outcome = match result {
                Ok(Response::SendResult { results }) => match results.first() {
                    Some(SendOutcome::Accepted { .. }) => Ok(()),
                    Some(SendOutcome::Rejected { code }) => Err(*code),
                    None => return Err(Error::Protocol(RelayMisbehaved::EmptySendResult)),
                },
                Ok(other) => return Err(crate::error::unexpected("SendResult", &other)),
                Err(Error::Relay { code, .. }) if !code.is_retryable() => Err(code),
                Err(e) => return Err(e),
            };
            match outcome {
                Err(code) if code.is_retryable() => {
                    return Err(Error::relay(code, "relay busy; will retry".into(), None))
                }
                Ok(()) => {
                    self.finish_outbox_entry(slot, &entry, DeliveryStatus::Sent)
                        .await?;
                    if entry.visible {
                        self.emit(Event::Sent {
                            to: entry.to_username.clone(),
                            id: entry.id,
                        });
                    }
                }
                Err(code) => {
                    self.finish_outbox_entry(slot, &entry, DeliveryStatus::Failed)
                        .await?;
                    if entry.visible {
                        self.emit(Event::SendFailed {
                            to: entry.to_username.clone(),
                            id: entry.id,
                            reason: crate::SendFailure::Refused(code),
                        });
                    }
                }
            }
            self.outbox_changed.send_modify(|n| *n += 1);
        }
    }

    pub(crate) async fn finish_outbox_entry(
        &self,
        slot: Slot<records::outbox::Outbox>,
        entry: &OutboxEntry,
        status: DeliveryStatus,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault.remove(&mut txn, slot);
        if entry.visible {
            self.timeline
                .update_status(&mut txn, &entry.to_account, &entry.id, status)
                .await?;
        }
        // Durable with the next batch, not before the answer: losing this
        // one in a power cut only sends the same ciphertext again, which
        // the recipient drops as a repeat; the sync it saves is one of the
        // three on a send's path (docs/BENCHMARKS.md, "Daemon").
        self.vault.commit_with(txn, Durability::WithNext).await?;
        Ok(())
    }

    pub(crate) async fn flush_outbox(self: &Arc<Self>, timeout: Duration) -> Result<(), Error> {
        let mut changed = self.outbox_changed.subscribe();
        let wait = async {
            loop {
                if self
                    .vault
                    .load_all(&Prefix::<records::outbox::Outbox>::all())
                    .await?
                    .is_empty()
                    && !self.fanouts_pending().await?
                {
                    return Ok(());
                }
                self.ensure_connected()?;
                self.outbox_wake.notify_one();
                let ended = self.conn_state.borrow().ended_because();
                if let Some(reason) = ended {
                    return Err(self.connection_ended(reason));
                }
                // Re-check at least every second: the connection state may change too.
                let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}

/// A new text message: a fresh id, the send time and its content, checked
/// against the content rules (length, control characters) before anything
/// is encrypted or queued. One check for 1:1 and group sends, so both
/// refuse the same texts with the same errors.
pub(crate) fn new_text(text: &str) -> Result<(MessageId, u64, Content), Error> {
    if text.len() > content::MAX_TEXT_BYTES {
        return Err(Error::MessageTooLarge {
            len: text.len(),
            max: content::MAX_TEXT_BYTES,
        });
    }
    let id = MessageId::random(&mut OsRng);
    let sent_at_ms = now_ms();
    let text_content = Content::Text {
        id,
        body: text.to_owned(),
        sent_at_ms,
    };
    text_content.validate().map_err(|e| match e {
        content::ContentError::ControlCharacter { position, .. } => {
            InvalidMessage::ControlCharacter { position }
        }
        other => InvalidMessage::Content(other),
    })?;
    Ok((id, sent_at_ms, text_content))
}
