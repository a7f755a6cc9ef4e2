//! The outbound path, the mirror of `inbound`: finding or starting the
//! session for a send, encrypting into the outbox, control messages and
//! typing notices, and the outbox pump that hands envelopes to the relay.
//!
//! Must never: release a ciphertext before its session and outbox entry are
//! committed together, or drop an outbox entry the relay did not settle.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::OsRng;
use umbra_protocol::content::{self, Content};
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::pairwise::PairwiseSession;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{AccountId, Address, DeviceId, Request, Username, MAX_ENVELOPE_BYTES};

use crate::contact::NameState;
use crate::conversation::HistoryEntry;
use crate::engine::{now_ms, Engine, QueuedContent};
use crate::failure::CryptoFailure;
use crate::history::Counters;
use crate::identity_checks::CheckStarted;
use crate::outbox::{DeviceEnvelope, OutboxEntry};
use crate::payload::Payload;
use crate::records;
use crate::sessions::SessionRecord;
use crate::store::Txn;
use crate::trust::{ContactRecord, Observation};
use crate::{Error, InvalidMessage, MessageId, PeerRef};

mod pump;
mod ready;
mod recipients;
#[cfg(test)]
pub(crate) mod tests_devices;
mod transcript;

/// How often a send re-plans when the state moved during its network half.
const PLAN_ATTEMPTS: usize = 3;

/// What [`Engine::plan_send`] learnt from the relay.
pub(crate) enum SendPlan {
    /// Every device of the held list has a usable session and the
    /// contact's published identity checked out.
    Existing,
    /// Some device has no usable session: freshly claimed, verified
    /// bundles to start them (§15.3; a device without keys is skipped).
    Fresh {
        account: AccountId,
        /// The identity the held list was verified under on first contact
        /// (the directory's), which becomes the pinned one.
        listed_under: Option<Box<IdentityPublic>>,
        bundles: Vec<DeviceBundle>,
        check: CheckStarted,
    },
}

/// A verified bundle of one device of the contact.
pub(crate) struct DeviceBundle {
    pub(crate) device: DeviceId,
    pub(crate) bundle: Box<VerifiedPreKeyBundle>,
}

/// What a send encrypts with: the contact and one session per device of
/// its held list that has one (docs/PROTOCOL.md §15.3).
pub(crate) type Sessions = (ContactRecord, Vec<SessionRecord>, bool);

impl Engine {
    /// The network half of a send, run without the state lock: what the
    /// relay says about `name` now. If every device of the held list has a
    /// session, only the published-identity check; otherwise the device
    /// list is fetched (before the first write, §15.3 rule 1) and a bundle
    /// claimed for each device without a session (`recipients.rs`).
    pub(crate) async fn plan_send(self: &Arc<Self>, name: &Username) -> Result<SendPlan, Error> {
        let existing = self.contact_for_sending(name).await?;
        let mut refreshed = false;
        if let Some(contact) = &existing {
            if !contact.may_send() {
                return Err(contact.untrusted());
            }
            if !self
                .identity_checks
                .is_fresh(&contact.account, Instant::now())
            {
                // §15.3 rule 1: with every published-identity check (the
                // first send on each connection, then every RECHECK_AFTER)
                // the list is fetched, so a write never goes out on a list
                // older than that.
                refreshed = true;
                let account = AccountId::from_bytes(contact.account);
                self.list_for_sending(account, &contact.pinned).await?;
            }
            if self.sessionless_devices(contact).await?.is_empty() {
                self.check_published_identity(contact).await?;
                return Ok(SendPlan::Existing);
            }
        }
        let check = self.identity_checks.start(Instant::now());
        self.plan_bundles(name, existing.as_ref(), refreshed, check)
            .await
    }

    /// The state half of a send, under the state lock: re-reads the contact
    /// and sessions (another send may have changed them while `plan` was on
    /// the network) and returns the contact and a session per device of
    /// its held list, started from the plan's bundles when needed. `None`:
    /// the plan no longer fits the state; plan again.
    pub(crate) async fn session_from_plan(
        &self,
        name: &Username,
        plan: SendPlan,
    ) -> Result<Option<Sessions>, Error> {
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
            if self.sessionless_devices(contact).await?.is_empty() {
                let records = self.usable_sessions(contact).await?;
                if !records.is_empty() {
                    return Ok(Some((contact.clone(), records, false)));
                }
            }
        }
        let SendPlan::Fresh {
            account,
            listed_under,
            bundles,
            check,
        } = plan
        else {
            // The sessions the plan relied on are gone.
            return Ok(None);
        };
        if existing
            .as_ref()
            .is_some_and(|c| c.account != *account.as_bytes())
        {
            // The name was bound to another account meanwhile.
            return Ok(None);
        }
        let Some(first) = bundles.first() else {
            // Every device without a session is without keys: the devices
            // with one are written to (the plan checked their identity).
            let Some(contact) = existing else {
                return Ok(None);
            };
            let records = self.usable_sessions(&contact).await?;
            return Ok((!records.is_empty()).then_some((contact, records, false)));
        };
        let mut contact = match existing {
            Some(contact) => contact,
            None => ContactRecord::first_seen(
                *account.as_bytes(),
                name.as_str().to_owned(),
                listed_under.map_or_else(|| first.bundle.identity().clone(), |i| *i),
            ),
        };
        // §15.3 rule 4: every device's bundle carries the pinned identity;
        // another one is a key change, whatever its device.
        for b in &bundles {
            match contact.observe(b.bundle.identity()) {
                Observation::Pinned => {}
                Observation::NewlyChanged => {
                    let mut txn = Txn::new();
                    // The contact is the one the name means: no name event.
                    self.names.put_contact(&mut txn, &contact).await?;
                    self.vault.commit(txn).await?;
                    self.emit(self.key_changed_event(&contact)?);
                    return Err(contact.untrusted());
                }
                Observation::StillChanged => return Err(contact.untrusted()),
            }
        }
        // The bundles just named the contact's current identity.
        self.identity_checks.record(contact.account, check);
        let now = self.clock.now_secs();
        let mut records = self.usable_sessions(&contact).await?;
        for b in bundles {
            if records
                .iter()
                .any(|r| r.current().remote_address().device == b.device)
            {
                // Another send started this device's session meanwhile.
                continue;
            }
            let to = Address {
                account,
                device: b.device,
            };
            records.push(
                self.start_session_with(&contact, &b.bundle, to, now)
                    .await?,
            );
        }
        records.sort_by_key(|r| r.current().remote_address().device);
        Ok(Some((contact, records, true)))
    }

    /// A new X3DH session with `account`'s primary device from its verified
    /// `bundle` (see [`Engine::start_session_with`]).
    pub(crate) async fn start_session(
        &self,
        contact: &ContactRecord,
        bundle: &VerifiedPreKeyBundle,
        account: AccountId,
        now: u64,
    ) -> Result<SessionRecord, Error> {
        self.start_session_with(contact, bundle, Address::primary(account), now)
            .await
    }

    /// A new X3DH session with the contact's device `to` from its verified
    /// `bundle`, as that device's session record: the new session becomes
    /// current and an existing record keeps its older states archived (a
    /// late reply on one of them still decrypts). Nothing is stored here;
    /// the caller commits the record with the message it encrypts.
    pub(crate) async fn start_session_with(
        &self,
        contact: &ContactRecord,
        bundle: &VerifiedPreKeyBundle,
        to: Address,
        now: u64,
    ) -> Result<SessionRecord, Error> {
        let session = PairwiseSession::initiate(
            &self.identity,
            &self.me().address(),
            bundle,
            &to,
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
            Vec<SessionRecord>,
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
            if let Some((contact, records, fresh)) = self.session_from_plan(name, plan).await? {
                self.refuse_if_blocked(&contact.account, name).await?;
                return Ok((guard, contact, records, fresh));
            }
        }
        Err(Error::SessionContended {
            username: name.clone(),
            attempts: PLAN_ATTEMPTS,
        })
    }

    /// Encrypts `content` for `contact` with each of `records` (one
    /// session per device, §15.3) and adds the advanced sessions plus one
    /// outbox entry holding every device's envelope to `txn`. Nothing
    /// leaves the client here.
    pub(crate) fn encrypt_into_outbox(
        &self,
        txn: &mut Txn,
        counters: &mut Counters,
        contact: &ContactRecord,
        device_sessions: &mut [SessionRecord],
        queued: QueuedContent,
    ) -> Result<(), Error> {
        let QueuedContent {
            content,
            id,
            visible,
        } = queued;
        let mut envelopes = Vec::with_capacity(device_sessions.len());
        for record in device_sessions.iter_mut() {
            let envelope = self.seal_content(record, content.clone())?;
            self.sessions.save_for_contact(txn, contact, record)?;
            envelopes.push(DeviceEnvelope {
                device: record.current().remote_address().device.0,
                envelope,
            });
        }
        let seq = counters.next_outbox_seq;
        counters.next_outbox_seq += 1;
        let entry = OutboxEntry {
            id,
            to_account: contact.account,
            to_username: contact.username.clone(),
            envelopes,
            queued_at_ms: now_ms(),
            visible,
            accepted: 0,
            refused: Vec::new(),
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
        let original = text_content.clone();
        let destination;
        {
            let (_guard, contact, mut records, _) = self.session_for_sending(&name).await?;
            destination = contact.account;
            if let Some(target) = reply_to {
                crate::about::require_known(self, &contact.account, &target).await?;
            }
            let mut counters = self.counters().await?;
            let mut txn = Txn::new();
            self.encrypt_into_outbox(
                &mut txn,
                &mut counters,
                &contact,
                &mut records,
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
        // Our other devices' copy (§15.8), after the send is durable.
        self.sync_sent(destination, &original).await;
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
        // Every device of the held list that has a session (upkeep never
        // fetches a bundle).
        let mut records = self.listed_sessions(contact).await?;
        if records.is_empty() {
            return Ok(());
        }
        let mut counters = self.counters().await?;
        let mut txn = Txn::new();
        self.encrypt_into_outbox(
            &mut txn,
            &mut counters,
            contact,
            &mut records,
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
        // Every device of the held list with a session (§15.3).
        let mut records = self.listed_sessions(&contact).await?;
        if records.is_empty() {
            // No session yet: typing notices never start one.
            return Ok(());
        }
        let me = self.me();
        let payload = zeroize::Zeroizing::new(
            Payload {
                sender: me.address(),
                sender_username: me.username.clone(),
                content: Content::Typing { started },
            }
            .encode()?,
        );
        let mut txn = Txn::new();
        let mut notices = Vec::with_capacity(records.len());
        for record in &mut records {
            // An ephemeral message: it uses no message key, so the relay
            // dropping it (the contact is offline) never leaves a gap in
            // the chain.
            let envelope = record
                .current_mut()
                .seal_ephemeral(&self.identity, &payload, self.clock.now_ms(), &mut OsRng)
                .map_err(|e| Error::Crypto(CryptoFailure::Encrypt(e)))?;
            self.sessions.save_for_contact(&mut txn, &contact, record)?;
            notices.push((*record.current().remote_address(), envelope));
        }
        self.vault.commit(txn).await?;
        // The sessions are committed: the requests wait without the lock.
        drop(guard);
        for (to, payload) in notices {
            self.request(Request::Ephemeral { to, payload }).await?;
        }
        Ok(())
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
