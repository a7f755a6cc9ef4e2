//! The engine behind [`Client`](crate::Client): the unlocked store, our
//! identity, the connection, and every operation that changes state.
//!
//! All state changes (ratchet sessions, contacts, history, outbox, prekeys)
//! happen under one async lock (`op_lock`) and end in one store transaction,
//! so a crash leaves either the old state or the new one, never a mix. In
//! particular a ciphertext is produced, then the advanced session and the
//! outbox entry holding that ciphertext are committed together, and only
//! then can the outbox pump hand it to the relay.
//!
//! Must never: release a ciphertext before its session is committed, hold a
//! std lock across an await, or emit an event for a change that was not
//! committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use umbra_protocol::content::{self, Content};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::pairwise::PairwiseSession;
use umbra_protocol::prekeys::VerifiedPreKeyBundle;
use umbra_protocol::wire::{
    AccountId, AccountRef, Address, DeviceId, ErrorCode, OutgoingEnvelope, Request, Response,
    SendOutcome, Username, MAX_ENVELOPE_BYTES,
};

use crate::account::{AccountRecord, TokenRecord};
use crate::clock::Clock;
use crate::connection::{ConnectionHandle, Outgoing};
use crate::contact::{Contact, NameState, TrustLevel};
use crate::conversation::{
    Conversation, DeliveryStatus, Direction, HistoryEntry, UnreportedMessage,
};
use crate::fetched_bundle::verify_fetched_bundle;
use crate::history::{self, ConversationRecord, Counters, MessageLocation};
use crate::identity_checks::IdentityChecks;
use crate::outbox::{OutboxEntry, PendingMessage};
use crate::payload::Payload;
use crate::prekey_maintenance::InitialKeys;
use crate::relay_link::into_result;
use crate::sessions::{self, SessionRecord};
use crate::store::{RecordKind, Txn, Vault};
use crate::trust::{ContactRecord, Observation};
use crate::{ConnectionState, Error, Event, MessageId, SafetyNumber};

/// How long a request waits for the connection to come up.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// How long a request waits for its response.
const RESPONSE_WAIT: Duration = Duration::from_secs(30);
/// Capacity of the event broadcast (a slower subscriber gets `Lagged`).
const EVENT_CAPACITY: usize = 1024;

/// Content to encrypt into the outbox.
pub(crate) struct QueuedContent {
    pub(crate) content: Content,
    /// Our message id (history and events use it).
    pub(crate) id: MessageId,
    /// Whether it is a user-visible message (else a receipt or control message).
    pub(crate) visible: bool,
}

/// Who we are, as cached in memory.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub(crate) username: Username,
    pub(crate) account: AccountId,
    pub(crate) device: DeviceId,
}

impl Me {
    pub(crate) fn address(&self) -> Address {
        Address {
            account: self.account,
            device: self.device,
        }
    }
}

pub(crate) struct Engine {
    pub(crate) server_url: String,
    pub(crate) ws_url: String,
    pub(crate) tls_roots: Option<std::path::PathBuf>,
    pub(crate) vault: Vault,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) me: RwLock<Me>,
    /// Serialises every state change; held across the store commit.
    pub(crate) op_lock: tokio::sync::Mutex<()>,
    /// Serialises prekey uploads, so two top-ups never both upload a full batch.
    pub(crate) prekey_lock: tokio::sync::Mutex<()>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Events not yet returned by `receive_until_empty` (a receiver
    /// subscribed at creation; bounded by the channel capacity).
    pub(crate) backlog: tokio::sync::Mutex<broadcast::Receiver<Event>>,
    pub(crate) conn_state: watch::Sender<ConnectionState>,
    /// Bumped whenever the outbox shrinks, for `flush_outbox`.
    pub(crate) outbox_changed: watch::Sender<u64>,
    pub(crate) outbox_wake: Arc<Notify>,
    pub(crate) connection: Mutex<Option<ConnectionHandle>>,
    /// The relay said `QueueEmpty` on the current connection.
    pub(crate) caught_up: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// The relay refused our stored token: another data directory logged in.
    pub(crate) used_elsewhere: AtomicBool,
    /// Which contacts' published identities were compared with the pinned
    /// ones on this connection.
    pub(crate) identity_checks: IdentityChecks,
    /// The wall clock for dated state (tests move it forward).
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// Builds an engine around an unlocked vault.
    pub(crate) async fn from_vault(
        config: &crate::ClientConfig,
        ws_url: String,
        vault: Vault,
    ) -> Result<Arc<Self>, Error> {
        let account: AccountRecord = vault
            .get(RecordKind::Account, &[])
            .await?
            .ok_or(crate::StoreError::NotInitialized)?;
        let username = Username::parse_canonical(&account.username)?;
        let me = Me {
            username,
            account: AccountId::from_bytes(account.account),
            device: DeviceId(account.device),
        };
        let AccountRecord { identity, .. } = account;
        let (events, backlog) = broadcast::channel(EVENT_CAPACITY);
        let (conn_state, _) = watch::channel(ConnectionState::Offline);
        let (outbox_changed, _) = watch::channel(0);
        Ok(Arc::new(Self {
            server_url: config.server_url.clone(),
            ws_url,
            tls_roots: config.tls_roots.clone(),
            vault,
            identity,
            me: RwLock::new(me),
            op_lock: tokio::sync::Mutex::new(()),
            prekey_lock: tokio::sync::Mutex::new(()),
            events,
            backlog: tokio::sync::Mutex::new(backlog),
            conn_state,
            outbox_changed,
            outbox_wake: Arc::new(Notify::new()),
            connection: Mutex::new(None),
            caught_up: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            used_elsewhere: AtomicBool::new(false),
            identity_checks: IdentityChecks::default(),
            clock: Clock::default(),
        }))
    }

    /// Writes the first records of a new store: account, token, prekeys.
    pub(crate) async fn initialise_store(
        vault: &Vault,
        identity: &IdentityKeyPair,
        username: &Username,
        account: AccountId,
        token: &TokenRecord,
    ) -> Result<(), Error> {
        let rng = &mut OsRng;
        let record = AccountRecord {
            identity: clone_identity(identity)?,
            username: username.as_str().to_owned(),
            account: *account.as_bytes(),
            device: DeviceId::PRIMARY.0,
        };
        let keys = InitialKeys::generate(identity, now_secs(), rng);
        let mut txn = Txn::new();
        vault.put(&mut txn, RecordKind::Account, Vec::new(), &record, rng)?;
        vault.put(&mut txn, RecordKind::Token, Vec::new(), token, rng)?;
        vault.put(
            &mut txn,
            RecordKind::PreKeyState,
            Vec::new(),
            &keys.state,
            rng,
        )?;
        let slot = vault.slot(RecordKind::SignedPreKey, &keys.signed.id().to_be_bytes());
        vault.put(&mut txn, RecordKind::SignedPreKey, slot, &keys.signed, rng)?;
        vault.put(
            &mut txn,
            RecordKind::LastResortPreKey,
            Vec::new(),
            &keys.last_resort,
            rng,
        )?;
        vault.put(
            &mut txn,
            RecordKind::Counters,
            Vec::new(),
            &Counters::default(),
            rng,
        )?;
        vault.commit(txn).await?;
        Ok(())
    }

    pub(crate) fn me(&self) -> Me {
        self.me.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The error for a connection that ended for good: [`Error::UsedElsewhere`]
    /// when the relay revoked our session because the account logged in
    /// from another data directory, else [`Error::Connection`].
    pub(crate) fn connection_ended(&self, reason: String) -> Error {
        if self.used_elsewhere.load(Ordering::SeqCst) {
            Error::UsedElsewhere
        } else {
            Error::Connection(reason)
        }
    }

    /// Fails with [`Error::Closed`] after logout or account deletion.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is fine: everything is also in the store.
        let _ = self.events.send(event);
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        if *self.conn_state.borrow() != state {
            if state == ConnectionState::Connected {
                // A contact may have changed keys while we were away.
                self.identity_checks.new_connection();
            }
            self.conn_state.send_replace(state.clone());
            self.emit(Event::Connection(state));
        }
    }

    // ----- connection -------------------------------------------------

    /// Starts the background connection if it is not running.
    pub(crate) fn ensure_connected(self: &Arc<Self>) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let mut slot = lock(&self.connection);
        if slot.as_ref().is_some_and(|c| !c.is_finished()) {
            return Ok(());
        }
        *slot = Some(ConnectionHandle::spawn(self));
        Ok(())
    }

    /// Stops the background connection and waits for its tasks.
    pub(crate) async fn disconnect(&self) {
        let handle = lock(&self.connection).take();
        if let Some(handle) = handle {
            handle.stop().await;
        }
        self.set_state(ConnectionState::Offline);
    }

    async fn wait_connected(&self) -> Result<(), Error> {
        let mut rx = self.conn_state.subscribe();
        let wait = async {
            loop {
                let state = rx.borrow_and_update().clone();
                if state == ConnectionState::Connected {
                    return Ok(());
                }
                if let Some(reason) = state.ended_because() {
                    return Err(self.connection_ended(reason));
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        tokio::time::timeout(CONNECT_WAIT, wait)
            .await
            .map_err(|_| Error::Connection("the relay is not reachable".into()))?
    }

    /// Waits until the connection started by [`Engine::ensure_connected`]
    /// authenticates (`true`), or until it is clear the relay cannot be
    /// reached right now: the attempt failed, the connection ended, or
    /// [`CONNECT_WAIT`] passed (`false`). Never starts a connection.
    async fn relay_reachable(&self) -> bool {
        if lock(&self.connection)
            .as_ref()
            .is_none_or(|c| c.is_finished())
        {
            return false;
        }
        let mut rx = self.conn_state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    ConnectionState::Connected => return true,
                    // Not started yet, or the first attempt is under way.
                    ConnectionState::Offline | ConnectionState::Connecting => {}
                    ConnectionState::Reconnecting { .. }
                    | ConnectionState::Closed { .. }
                    | ConnectionState::Replaced => return false,
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(CONNECT_WAIT, wait)
            .await
            .unwrap_or(false)
    }

    fn sender(&self) -> Result<mpsc::UnboundedSender<Outgoing>, Error> {
        lock(&self.connection)
            .as_ref()
            .map(|c| c.requests.clone())
            .ok_or_else(|| Error::Connection("not connected".into()))
    }

    /// Sends a request over the live connection and waits for its answer;
    /// a relay `Error` answer becomes [`Error::Relay`].
    ///
    /// This never starts a connection: background work (maintenance, claim
    /// checks) must not revive a client the user shut down. Public entry
    /// points call [`Engine::ensure_connected`] first.
    pub(crate) async fn request(self: &Arc<Self>, request: Request) -> Result<Response, Error> {
        if lock(&self.connection).is_none() {
            return Err(Error::Connection("not connected".into()));
        }
        self.wait_connected().await?;
        let (tx, rx) = oneshot::channel();
        self.sender()?
            .send(Outgoing::Call(request, tx))
            .map_err(|_| Error::Connection("connection closed".into()))?;
        let response = tokio::time::timeout(RESPONSE_WAIT, rx)
            .await
            .map_err(|_| Error::Timeout(RESPONSE_WAIT))?
            .map_err(|_| Error::Connection("connection lost before the relay answered".into()))??;
        into_result(response)
    }

    /// Sends a request whose answer does not matter (acks, keepalive).
    pub(crate) fn fire(&self, request: Request) {
        if let Ok(sender) = self.sender() {
            let _ = sender.send(Outgoing::Fire(request));
        }
    }

    // ----- contacts and trust -----------------------------------------

    fn contact_slot(&self, account: &[u8; 16]) -> Vec<u8> {
        self.vault.slot(RecordKind::Contact, account)
    }

    /// Sessions are filed under the peer's address *and* identity: the
    /// same keys published under two accounts (a copy) must never share,
    /// or replace, one session (docs/PROTOCOL.md §3.6).
    pub(crate) fn session_slot(&self, peer: &Address, identity: &IdentityPublic) -> Vec<u8> {
        let mut key = Vec::with_capacity(umbra_protocol::x3dh::ADDRESS_LEN + 128);
        key.extend_from_slice(&umbra_protocol::x3dh::encode_address(peer));
        key.extend_from_slice(&identity.to_bytes());
        self.vault.slot(RecordKind::Session, &key)
    }

    /// The slot of the session with a contact's primary device and pinned identity.
    pub(crate) fn contact_session_slot(&self, contact: &ContactRecord) -> Vec<u8> {
        self.session_slot(
            &Address::primary(AccountId::from_bytes(contact.account)),
            &contact.pinned,
        )
    }

    pub(crate) async fn contact_by_account(
        &self,
        account: &[u8; 16],
    ) -> Result<Option<ContactRecord>, Error> {
        Ok(self
            .vault
            .get(RecordKind::Contact, &self.contact_slot(account))
            .await?)
    }

    /// The contact `peer` names for reading: a username, or the
    /// `name#xxxxxxxx` label of a contact the name does not mean.
    async fn known_contact(&self, peer: &str) -> Result<ContactRecord, Error> {
        self.contact_for_peer(peer).await
    }

    pub(crate) async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        let mut out = Vec::new();
        for (_, contact) in self
            .vault
            .list::<ContactRecord>(RecordKind::Contact, &[])
            .await?
        {
            out.push(self.describe(&contact).await?);
        }
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        Ok(out)
    }

    pub(crate) async fn safety_number(&self, peer: &str) -> Result<SafetyNumber, Error> {
        self.safety_number_for(peer).await
    }

    // ----- directory --------------------------------------------------

    pub(crate) async fn resolve(self: &Arc<Self>, name: &Username) -> Result<AccountId, Error> {
        match self
            .request(Request::ResolveUsername {
                username: name.clone(),
            })
            .await
        {
            Ok(Response::Resolved { account, .. }) => Ok(account),
            Ok(other) => Err(Error::Protocol(format!(
                "expected Resolved, got {}",
                other.kind()
            ))),
            Err(Error::Relay {
                code: ErrorCode::UnknownUsername | ErrorCode::UnknownRecipient,
                ..
            }) => Err(Error::UnknownUser(name.as_str().to_owned())),
            Err(e) => Err(e),
        }
    }

    /// Claims and verifies a prekey bundle of `account`'s primary device.
    pub(crate) async fn fetch_bundle(
        self: &Arc<Self>,
        account: AccountId,
        name: &str,
    ) -> Result<VerifiedPreKeyBundle, Error> {
        let response = self
            .request(Request::FetchBundle {
                target: AccountRef::Account(account),
            })
            .await
            .map_err(|e| match e {
                Error::Relay {
                    code:
                        ErrorCode::NoPreKeys | ErrorCode::UnknownRecipient | ErrorCode::UnknownUsername,
                    ..
                } => Error::UnknownUser(name.to_owned()),
                other => other,
            })?;
        let Response::Bundle(wire) = response else {
            return Err(Error::Protocol(format!(
                "expected Bundle, got {}",
                response.kind()
            )));
        };
        verify_fetched_bundle(&wire, account, name, now_secs())
    }

    // ----- sending ----------------------------------------------------

    /// The session to send to `name` with, creating one from a fresh bundle
    /// when needed. Returns the (possibly new) contact and session record.
    pub(crate) async fn session_for_sending(
        self: &Arc<Self>,
        name: &Username,
    ) -> Result<(ContactRecord, SessionRecord, bool), Error> {
        let existing = self.contact_for_sending(name).await?;
        if let Some(contact) = &existing {
            if !contact.may_send() {
                return Err(Error::UntrustedKey {
                    username: contact.username.clone(),
                });
            }
            let record: Option<SessionRecord> =
                sessions::load(&self.vault, &self.contact_session_slot(contact)).await?;
            // A session we started that was never answered for the relay's
            // message lifetime will never complete: start over instead.
            if let Some(record) = record.filter(|r| !r.unanswered_too_long(self.clock.now_secs())) {
                self.check_published_identity(contact).await?;
                return Ok((contact.clone(), record, false));
            }
        }
        let account = match &existing {
            Some(c) => AccountId::from_bytes(c.account),
            None => self.resolve(name).await?,
        };
        if account == self.me().account {
            return Err(Error::UnknownUser(format!(
                "{} (sending to yourself is not supported)",
                name.as_str()
            )));
        }
        let check = self.identity_checks.start(Instant::now());
        let bundle = self.fetch_bundle(account, name.as_str()).await?;
        let contact = match existing {
            Some(mut contact) => match contact.observe(bundle.identity()) {
                Observation::Pinned => contact,
                Observation::NewlyChanged => {
                    let mut txn = Txn::new();
                    // The contact is the one the name means: no name event.
                    self.put_contact(&mut txn, &contact).await?;
                    self.vault.commit(txn).await?;
                    self.emit(Event::KeyChanged {
                        username: contact.username.clone(),
                    });
                    return Err(Error::UntrustedKey {
                        username: contact.username,
                    });
                }
                Observation::StillChanged => {
                    return Err(Error::UntrustedKey {
                        username: contact.username,
                    })
                }
            },
            None => ContactRecord::first_seen(
                *account.as_bytes(),
                name.as_str().to_owned(),
                bundle.identity().clone(),
            ),
        };
        // The bundle just named the contact's current identity.
        self.identity_checks.record(contact.account, check);
        let session = PairwiseSession::initiate(
            &self.identity,
            &self.me().address(),
            &bundle,
            &Address::primary(account),
            &mut OsRng,
        )
        .map_err(|e| Error::Crypto(format!("starting a session: {e}")))?;
        let record: Option<SessionRecord> =
            sessions::load(&self.vault, &self.contact_session_slot(&contact)).await?;
        let record = match record {
            Some(mut r) => {
                r.promote_new(session, self.clock.now_secs());
                r
            }
            None => SessionRecord::new(session, self.clock.now_secs()),
        };
        Ok((contact, record, true))
    }

    /// Before a send over an existing session: asks the relay which identity
    /// the contact publishes now (once per connection, and again after
    /// [`RECHECK_AFTER`](crate::identity_checks::RECHECK_AFTER)) and refuses
    /// with [`Error::UntrustedKey`] (raising [`Event::KeyChanged`]) if it is
    /// not the pinned one, so a message never goes to a key its owner no
    /// longer holds.
    ///
    /// If the name now belongs to another account, the send is refused
    /// with [`Error::NameReassigned`] and that account becomes the name's
    /// newcomer (docs/PROTOCOL.md §12.13).
    ///
    /// A check that cannot be made (relay unreachable, rate limited, no
    /// published identity) lets the send go ahead as before: it is queued,
    /// and the next send while connected checks again.
    async fn check_published_identity(
        self: &Arc<Self>,
        contact: &ContactRecord,
    ) -> Result<(), Error> {
        if self
            .identity_checks
            .is_fresh(&contact.account, Instant::now())
        {
            return Ok(());
        }
        if !self.relay_reachable().await {
            return Ok(());
        }
        let Ok(username) = Username::parse_canonical(&contact.username) else {
            return Ok(());
        };
        let check = self.identity_checks.start(Instant::now());
        let published = match self.request(Request::ResolveUsername { username }).await {
            Ok(Response::Resolved {
                account,
                identity: Some(identity),
                ..
            }) if account.as_bytes() == &contact.account => identity,
            Ok(Response::Resolved {
                account, identity, ..
            }) if account.as_bytes() != &contact.account => {
                let identity = identity.and_then(|bytes| IdentityPublic::from_bytes(&bytes).ok());
                let name = Username::parse_canonical(&contact.username)?;
                self.note_newcomer(&name, account, identity).await?;
                return Err(Error::NameReassigned { username: name });
            }
            Ok(Response::Resolved { .. }) => return Ok(()),
            Ok(other) => {
                return Err(Error::Protocol(format!(
                    "expected Resolved, got {}",
                    other.kind()
                )))
            }
            Err(error) => {
                tracing::debug!(%error, "cannot check a contact's identity; sending anyway");
                return Ok(());
            }
        };
        let published = IdentityPublic::from_bytes(&published)
            .map_err(|e| Error::Protocol(format!("published identity: {e}")))?;
        let mut contact = contact.clone();
        match contact.observe(&published) {
            Observation::Pinned => {
                self.identity_checks.record(contact.account, check);
                Ok(())
            }
            observation => {
                self.identity_checks.forget(&contact.account);
                let mut txn = Txn::new();
                self.put_contact(&mut txn, &contact).await?;
                self.vault.commit(txn).await?;
                if observation == Observation::NewlyChanged {
                    self.emit(Event::KeyChanged {
                        username: contact.username.clone(),
                    });
                }
                Err(Error::UntrustedKey {
                    username: contact.username,
                })
            }
        }
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
            .map_err(|e| Error::Crypto(format!("encrypting: {e}")))?;
        if envelope.len() > MAX_ENVELOPE_BYTES {
            return Err(Error::MessageTooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let rng = &mut OsRng;
        sessions::put(
            &self.vault,
            txn,
            self.contact_session_slot(contact),
            record,
            rng,
        )?;
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
        self.vault.put(
            txn,
            RecordKind::Outbox,
            seq.to_be_bytes().to_vec(),
            &entry,
            rng,
        )?;
        Ok(())
    }

    pub(crate) async fn counters(&self) -> Result<Counters, Error> {
        Ok(self
            .vault
            .get(RecordKind::Counters, &[])
            .await?
            .unwrap_or_default())
    }

    pub(crate) fn put_counters(&self, txn: &mut Txn, counters: &Counters) -> Result<(), Error> {
        self.vault
            .put(txn, RecordKind::Counters, Vec::new(), counters, &mut OsRng)?;
        Ok(())
    }

    pub(crate) async fn send_text(
        self: &Arc<Self>,
        to: &str,
        text: &str,
    ) -> Result<MessageId, Error> {
        self.check_open()?;
        let name = Username::parse(to)?;
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
                Error::InvalidMessage(format!(
                    "it contains a control character at byte {position} (terminal escapes \
                     and the like cannot be sent; tab and line breaks can)"
                ))
            }
            other => Error::InvalidMessage(other.to_string()),
        })?;
        // Only a sendable message starts the connection.
        self.ensure_connected()?;
        {
            let _guard = self.op_lock.lock().await;
            let (contact, mut record, _) = self.session_for_sending(&name).await?;
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
            self.put_contact(&mut txn, &contact).await?;
            let entry = HistoryEntry {
                id,
                direction: Direction::Outgoing,
                body: text.to_owned(),
                sent_at_ms,
                received_at_ms: sent_at_ms,
                status: DeliveryStatus::Pending,
                reported: true,
            };
            self.append_history(&mut txn, &mut counters, &contact, entry, false)
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
        if !contact.may_send() {
            return Ok(());
        }
        let Some(mut record) =
            sessions::load(&self.vault, &self.contact_session_slot(contact)).await?
        else {
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
        to: &str,
        started: bool,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(to).await?;
        if !contact.may_send() {
            return Err(Error::UntrustedKey {
                username: contact.username,
            });
        }
        if self.name_state(&contact).await? != NameState::Current {
            // Typing notices are best effort; never to a contested name.
            return Ok(());
        }
        let Some(mut record) =
            sessions::load(&self.vault, &self.contact_session_slot(&contact)).await?
        else {
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
            .map_err(|e| Error::Crypto(format!("encrypting: {e}")))?;
        let mut txn = Txn::new();
        sessions::put(
            &self.vault,
            &mut txn,
            self.contact_session_slot(&contact),
            &record,
            &mut OsRng,
        )?;
        self.vault.commit(txn).await?;
        self.request(Request::Ephemeral {
            to: Address::primary(AccountId::from_bytes(contact.account)),
            payload: envelope,
        })
        .await?;
        Ok(())
    }

    // ----- outbox -----------------------------------------------------

    pub(crate) async fn pending_outbox(&self) -> Result<Vec<PendingMessage>, Error> {
        Ok(self
            .vault
            .list::<OutboxEntry>(RecordKind::Outbox, &[])
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
                .list::<OutboxEntry>(RecordKind::Outbox, &[])
                .await?
                .into_iter()
                .next();
            let Some((slot, entry)) = first else {
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
                    None => return Err(Error::Protocol("empty SendResult".into())),
                },
                Ok(other) => {
                    return Err(Error::Protocol(format!(
                        "expected SendResult, got {}",
                        other.kind()
                    )))
                }
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
                            reason: code.to_string(),
                        });
                    }
                }
            }
            self.outbox_changed.send_modify(|n| *n += 1);
        }
    }

    async fn finish_outbox_entry(
        &self,
        slot: Vec<u8>,
        entry: &OutboxEntry,
        status: DeliveryStatus,
    ) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault.delete(&mut txn, RecordKind::Outbox, slot);
        if entry.visible {
            self.update_status(&mut txn, &entry.to_account, &entry.id, status)
                .await?;
        }
        self.vault.commit(txn).await?;
        Ok(())
    }

    pub(crate) async fn flush_outbox(self: &Arc<Self>, timeout: Duration) -> Result<(), Error> {
        let mut changed = self.outbox_changed.subscribe();
        let wait = async {
            loop {
                if self
                    .vault
                    .list::<OutboxEntry>(RecordKind::Outbox, &[])
                    .await?
                    .is_empty()
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

    // ----- history ----------------------------------------------------

    fn index_slot(&self, direction: Direction, account: &[u8; 16], id: &MessageId) -> Vec<u8> {
        let mut name = Vec::with_capacity(1 + 16 + 16);
        name.push(match direction {
            Direction::Incoming => b'i',
            Direction::Outgoing => b'o',
        });
        name.extend_from_slice(account);
        name.extend_from_slice(&id.0);
        self.vault.slot(RecordKind::MessageIndex, &name)
    }

    pub(crate) async fn message_known(
        &self,
        direction: Direction,
        account: &[u8; 16],
        id: &MessageId,
    ) -> Result<bool, Error> {
        Ok(self
            .vault
            .get::<MessageLocation>(
                RecordKind::MessageIndex,
                &self.index_slot(direction, account, id),
            )
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
        let rng = &mut OsRng;
        let seq = counters.next_history_seq;
        counters.next_history_seq += 1;
        let slot = self
            .vault
            .ordered_slot(RecordKind::History, &contact.account, seq);
        history::put_entry(&self.vault, txn, slot, &entry, rng)?;
        self.vault.put(
            txn,
            RecordKind::MessageIndex,
            self.index_slot(entry.direction, &contact.account, &entry.id),
            &MessageLocation {
                account: contact.account,
                seq,
            },
            rng,
        )?;
        let conv_slot = self.vault.slot(RecordKind::Conversation, &contact.account);
        let mut conv: ConversationRecord = self
            .vault
            .get(RecordKind::Conversation, &conv_slot)
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
        self.vault
            .put(txn, RecordKind::Conversation, conv_slot, &conv, rng)?;
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
            .get::<MessageLocation>(
                RecordKind::MessageIndex,
                &self.index_slot(Direction::Outgoing, account, id),
            )
            .await?
        else {
            return Ok(false);
        };
        let slot = self
            .vault
            .ordered_slot(RecordKind::History, &location.account, location.seq);
        let Some(mut entry) = history::get_entry(&self.vault, &slot).await? else {
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
        let rng = &mut OsRng;
        history::put_entry(&self.vault, txn, slot, &entry, rng)?;
        let conv_slot = self.vault.slot(RecordKind::Conversation, account);
        if let Some(mut conv) = self
            .vault
            .get::<ConversationRecord>(RecordKind::Conversation, &conv_slot)
            .await?
        {
            if conv
                .last
                .as_ref()
                .is_some_and(|l| l.id == *id && l.direction == Direction::Outgoing)
            {
                conv.last = Some(entry);
                self.vault
                    .put(txn, RecordKind::Conversation, conv_slot, &conv, rng)?;
            }
        }
        Ok(true)
    }

    pub(crate) async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        let mut out = Vec::new();
        for (_, conv) in self
            .vault
            .list::<ConversationRecord>(RecordKind::Conversation, &[])
            .await?
        {
            let contact = self.contact_by_account(&conv.account).await?;
            let peer = match &contact {
                Some(c) => self.display_name(c).await?,
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
        peer: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let contact = self.known_contact(peer).await?;
        let prefix = self.vault.slot(RecordKind::History, &contact.account);
        let all = history::list_entries(&self.vault, &prefix).await?;
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).map(|(_, e)| e).collect())
    }

    /// Incoming messages not yet reported, in arrival order (the history
    /// sequence is global, so it orders across conversations).
    pub(crate) async fn unreported_messages(&self) -> Result<Vec<UnreportedMessage>, Error> {
        let mut found: Vec<(u64, UnreportedMessage)> = Vec::new();
        for (_, conv) in self
            .vault
            .list::<ConversationRecord>(RecordKind::Conversation, &[])
            .await?
        {
            let from = match self.contact_by_account(&conv.account).await? {
                Some(contact) => self.display_name(&contact).await?,
                None => conv.username.clone(),
            };
            let prefix = self.vault.slot(RecordKind::History, &conv.account);
            for (slot, entry) in history::list_entries(&self.vault, &prefix).await? {
                if entry.direction != Direction::Incoming || entry.reported {
                    continue;
                }
                let seq = slot
                    .len()
                    .checked_sub(8)
                    .and_then(|start| slot.get(start..))
                    .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(u64::MAX);
                found.push((
                    seq,
                    UnreportedMessage {
                        from: from.clone(),
                        account_id: hex::encode(conv.account),
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
        let rng = &mut OsRng;
        let mut txn = Txn::new();
        for message in messages {
            let account: [u8; 16] = hex::decode(&message.account_id)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| Error::UnknownUser(message.from.clone()))?;
            let Some(location) = self
                .vault
                .get::<MessageLocation>(
                    RecordKind::MessageIndex,
                    &self.index_slot(Direction::Incoming, &account, &message.id),
                )
                .await?
            else {
                continue;
            };
            let slot =
                self.vault
                    .ordered_slot(RecordKind::History, &location.account, location.seq);
            let Some(mut entry) = history::get_entry(&self.vault, &slot).await? else {
                continue;
            };
            if entry.reported {
                continue;
            }
            entry.reported = true;
            history::put_entry(&self.vault, &mut txn, slot, &entry, rng)?;
            let conv_slot = self.vault.slot(RecordKind::Conversation, &account);
            if let Some(mut conv) = self
                .vault
                .get::<ConversationRecord>(RecordKind::Conversation, &conv_slot)
                .await?
            {
                if let Some(last) = conv
                    .last
                    .as_mut()
                    .filter(|l| l.id == message.id && l.direction == Direction::Incoming)
                {
                    last.reported = true;
                    self.vault
                        .put(&mut txn, RecordKind::Conversation, conv_slot, &conv, rng)?;
                }
            }
        }
        self.vault.commit(txn).await?;
        Ok(())
    }

    pub(crate) async fn mark_read(self: &Arc<Self>, peer: &str) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(peer).await?;
        let prefix = self.vault.slot(RecordKind::History, &contact.account);
        let rng = &mut OsRng;
        let mut txn = Txn::new();
        let mut ids = Vec::new();
        for (slot, mut entry) in history::list_entries(&self.vault, &prefix).await? {
            if entry.direction == Direction::Incoming
                && (entry.status != DeliveryStatus::Read || !entry.reported)
            {
                if entry.status != DeliveryStatus::Read {
                    ids.push(entry.id);
                }
                entry.status = DeliveryStatus::Read;
                // Read on screen is reported: `receive` need not show it again.
                entry.reported = true;
                history::put_entry(&self.vault, &mut txn, slot, &entry, rng)?;
            }
        }
        let conv_slot = self.vault.slot(RecordKind::Conversation, &contact.account);
        if let Some(mut conv) = self
            .vault
            .get::<ConversationRecord>(RecordKind::Conversation, &conv_slot)
            .await?
        {
            conv.unread = 0;
            if let Some(last) = conv.last.as_mut() {
                if last.direction == Direction::Incoming {
                    last.status = DeliveryStatus::Read;
                    last.reported = true;
                }
            }
            self.vault
                .put(&mut txn, RecordKind::Conversation, conv_slot, &conv, rng)?;
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

    // ----- account ----------------------------------------------------

    pub(crate) async fn rename(self: &Arc<Self>, new_username: &str) -> Result<(), Error> {
        self.check_open()?;
        self.ensure_connected()?;
        let name = Username::parse(new_username)?;
        let response = self
            .request(Request::Rename {
                new_username: name.clone(),
            })
            .await?;
        let Response::Resolved { username, .. } = response else {
            return Err(Error::Protocol(format!(
                "expected Resolved, got {}",
                response.kind()
            )));
        };
        {
            let _guard = self.op_lock.lock().await;
            let mut record: AccountRecord = self
                .vault
                .get(RecordKind::Account, &[])
                .await?
                .ok_or(crate::StoreError::NotInitialized)?;
            record.username = username.as_str().to_owned();
            let mut txn = Txn::new();
            self.vault.put(
                &mut txn,
                RecordKind::Account,
                Vec::new(),
                &record,
                &mut OsRng,
            )?;
            self.vault.commit(txn).await?;
            self.me.write().unwrap_or_else(|p| p.into_inner()).username = username.clone();
        }
        // Tell every contact we can reach, so their lists follow the rename.
        for (_, contact) in self
            .vault
            .list::<ContactRecord>(RecordKind::Contact, &[])
            .await?
        {
            self.send_control(
                &contact,
                Content::ProfileChange {
                    new_username: username.clone(),
                },
            )
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn logout(self: &Arc<Self>) -> Result<(), Error> {
        self.ensure_connected()?;
        let result = self.request(Request::Logout { everywhere: false }).await;
        self.disconnect().await;
        {
            let _guard = self.op_lock.lock().await;
            let mut txn = Txn::new();
            self.vault.delete(&mut txn, RecordKind::Token, Vec::new());
            self.vault.commit(txn).await?;
        }
        self.closed.store(true, Ordering::SeqCst);
        result.map(|_| ())
    }

    pub(crate) async fn delete_account(self: &Arc<Self>) -> Result<(), Error> {
        self.ensure_connected()?;
        self.request(Request::DeleteAccount).await?;
        self.disconnect().await;
        self.closed.store(true, Ordering::SeqCst);
        let _guard = self.op_lock.lock().await;
        self.vault.backend().erase_all().await?;
        Ok(())
    }

    /// The stored token, if logged in.
    pub(crate) async fn token(&self) -> Result<Option<TokenRecord>, Error> {
        Ok(self.vault.get(RecordKind::Token, &[]).await?)
    }

    /// Stores a fresh token (after `login` on an existing store).
    pub(crate) async fn store_token(&self, token: &TokenRecord) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault
            .put(&mut txn, RecordKind::Token, Vec::new(), token, &mut OsRng)?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// Sha-256 of an envelope, the key of the "already processed" marker.
    pub(crate) fn envelope_seen_slot(&self, envelope: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(envelope);
        let mut name = Vec::with_capacity(4 + 32);
        name.extend_from_slice(b"env:");
        name.extend_from_slice(&digest);
        self.vault.slot(RecordKind::Seen, &name)
    }

    /// Whether `identity` is ours (constant time).
    pub(crate) fn is_our_identity(&self, identity: &IdentityPublic) -> bool {
        self.identity.public().ct_eq(identity).into()
    }
}

/// A copy of an identity key pair through its serialised form (the type is
/// deliberately not `Clone`).
fn clone_identity(identity: &IdentityKeyPair) -> Result<IdentityKeyPair, Error> {
    let bytes = zeroize::Zeroizing::new(
        postcard::to_stdvec(identity).map_err(|e| Error::Crypto(e.to_string()))?,
    );
    postcard::from_bytes(&bytes).map_err(|e| Error::Crypto(e.to_string()))
}
