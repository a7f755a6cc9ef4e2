//! The [`Client`] handle: the whole public API in one place.
//!
//! Must never: send a ciphertext before the session that produced it is
//! persisted, acknowledge a delivery before its result is persisted, or send
//! to a contact whose key changed without the user's consent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};
use rand::rngs::OsRng;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use umbra_protocol::wire::{AccountId, Username};

use crate::account;
use crate::config::StoreLocation;
use crate::contact::{Contact, NameCandidate};
use crate::conversation::{Conversation, HistoryEntry, UnreportedMessage};
use crate::engine::Engine;
use crate::failure::ConnectionFailure;
use crate::outbox::PendingMessage;
use crate::relay_link::RelayLink;
use crate::store::{ClientStore, DataDirLock, SqliteStore, StoreError, Vault};
use crate::{ClientConfig, ConnectionState, Error, Event, MessageId, PeerRef, SafetyNumber};

/// How long a live, caught-up client waits for more events in
/// [`Client::receive_until_empty`] before it considers the queue drained.
const SETTLE: Duration = Duration::from_millis(500);

pub(crate) async fn open_backend(config: &ClientConfig) -> Result<Arc<dyn ClientStore>, Error> {
    Ok(match &config.store {
        StoreLocation::Directory(dir) => {
            let lock = match &config.dir_lock {
                Some(lock) => lock.clone(),
                None => Arc::new(DataDirLock::acquire(dir, config.lock_wait, || {}).await?),
            };
            Arc::new(SqliteStore::open_locked(dir, lock).await?)
        }
        StoreLocation::Custom(store) => store.clone(),
    })
}

pub(crate) fn password_error(e: StoreError) -> Error {
    match e {
        StoreError::WrongPassword => Error::WrongPassword,
        other => Error::Store(other),
    }
}

/// Who this client is logged in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    /// Current username.
    pub username: Username,
    /// Our account.
    pub account_id: AccountId,
    /// Device id.
    pub device_id: u32,
    /// Relay URL the client talks to.
    pub server_url: String,
}

/// A logged-in umbra client. Cheap to clone: clones share one connection,
/// one store and one event stream.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Engine>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Creates an account on the relay (OPAQUE registration, so the relay
    /// never sees the password), logs in, creates the local store sealed
    /// under the same password, and publishes identity and prekeys.
    ///
    /// Fails with [`Error::Relay`] (`UsernameTaken`, `InvalidUsername`,
    /// `RateLimited`) or [`Error::Store`] if the store already holds an account.
    pub async fn register(
        config: ClientConfig,
        username: &str,
        password: &str,
    ) -> Result<Client, Error> {
        let name = Username::parse(username)?;
        let ws_url = config.websocket_url()?;
        let backend = open_backend(&config).await?;
        if Vault::is_initialized(&*backend).await? {
            return Err(Error::Store(StoreError::AlreadyInitialized));
        }
        let mut link =
            RelayLink::connect(&ws_url, config.tls_roots.as_deref(), config.connect_timeout)
                .await?;
        account::register(&mut link, &name, password.as_bytes(), &mut OsRng).await?;
        let outcome = account::login(&mut link, &name, password.as_bytes(), &mut OsRng).await?;
        link.close().await;
        Self::create_local(
            config,
            ws_url,
            backend,
            &name,
            password,
            outcome,
            (None, None),
        )
        .await
    }

    /// Opens the local store with the password and resumes, without touching
    /// the network. A wrong password is [`Error::WrongPassword`].
    pub async fn open(config: ClientConfig, password: &str) -> Result<Client, Error> {
        let ws_url = config.websocket_url()?;
        let backend = open_backend(&config).await?;
        let vault = Vault::unlock(backend, password.as_bytes())
            .await
            .map_err(password_error)?;
        let engine = Engine::from_vault(&config, ws_url, vault).await?;
        Ok(Client { inner: engine })
    }

    /// Whether `config`'s store already holds an account.
    pub async fn has_account(config: &ClientConfig) -> Result<bool, Error> {
        let backend = open_backend(config).await?;
        Ok(Vault::is_initialized(&*backend).await?)
    }

    /// Starts the background connection (idempotent): authenticate, resend
    /// the outbox, receive and acknowledge messages, reconnect with jittered
    /// exponential backoff. Events arrive on [`Client::events`].
    pub async fn connect(&self) -> Result<(), Error> {
        self.inner.ensure_connected()
    }

    /// A stream of everything that happens from now on. Each call returns an
    /// independent stream; a stream that falls far behind gets
    /// [`Event::Lagged`].
    pub fn events(&self) -> BoxStream<'static, Event> {
        let rx = self.inner.events.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((event, rx)),
                Err(RecvError::Lagged(missed)) => Some((Event::Lagged { missed }, rx)),
                Err(RecvError::Closed) => None,
            }
        })
        .boxed()
    }

    /// The current connection state.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.conn_state.borrow().clone()
    }

    /// Whether the relay refused this data directory's session because the
    /// account logged in from another one (see [`Error::UsedElsewhere`]).
    pub fn used_elsewhere(&self) -> bool {
        self.inner.used_elsewhere.load(Ordering::SeqCst)
    }

    /// Why the connection ended for good, typed (`None` while it may still
    /// come back): what [`ConnectionState::Closed`](crate::ConnectionState)
    /// carries, for callers that must tell "log in again" from "retry".
    pub fn ended(&self) -> Option<crate::Ended> {
        crate::engine::lock(&self.inner.ended).clone()
    }

    /// Connects if needed, waits until the relay has delivered everything
    /// queued for us (its `QueueEmpty`, or `timeout`), hands queued receipts
    /// to the relay in the time left, and returns the events seen meanwhile.
    /// For scripts (`umbra receive`).
    ///
    /// The result starts with every event since the previous call (or since
    /// the client was created) — up to 1024; older ones are summarised as
    /// [`Event::Lagged`]. On a client that is already connected and caught
    /// up, it then collects what arrives until nothing has for 500 ms; a
    /// long-running application should use [`Client::events`] instead.
    ///
    /// Fails with [`Error::Connection`] if the relay could not be reached
    /// before the timeout, the first attempt to reach it failed (refused,
    /// unreachable, TLS), or it refused the session (log in again).
    pub async fn receive_until_empty(&self, timeout: Duration) -> Result<Vec<Event>, Error> {
        // A caller's timeout may be as long as `Duration::MAX`; past what an
        // `Instant` can hold, wait "for ever" (a century) instead of panicking.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60));
        let mut rx = self.inner.backlog.lock().await;
        self.inner.ensure_connected()?;
        let mut events = Vec::new();
        // What happened since the previous call.
        loop {
            match rx.try_recv() {
                Ok(event) => events.push(event),
                Err(TryRecvError::Lagged(missed)) => events.push(Event::Lagged { missed }),
                Err(_) => break,
            }
        }
        // Whether this call saw the connection up. Until it has, a failed
        // attempt (refused port, unknown host, bad TLS) ends the call at once
        // instead of retrying until the deadline: nothing is waiting to be
        // lost, and a script learns the relay is down in milliseconds.
        let mut was_connected = false;
        loop {
            let state = self.connection_state();
            if let Some(reason) = state.ended_because() {
                return Err(self.inner.connection_ended(reason));
            }
            match &state {
                ConnectionState::Connected => was_connected = true,
                ConnectionState::Reconnecting { .. } if !was_connected => {
                    // The failure the state carries, as this call's error
                    // (`ConnectionFailure::Attempt`: it is shared with the
                    // state; `Error::failure` is the failure itself).
                    return Err(self.inner.take_last_failure());
                }
                _ => {}
            }
            if state == ConnectionState::Connected && self.inner.caught_up.load(Ordering::SeqCst) {
                // Live and caught up: deliveries are pushed as they come, so
                // "what is waiting" is whatever arrives until the stream settles.
                while let Ok(Ok(event)) = tokio::time::timeout(
                    SETTLE.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                    rx.recv(),
                )
                .await
                {
                    events.push(event);
                }
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => {
                    if self.connection_state() != ConnectionState::Connected {
                        return Err(Error::Connection(ConnectionFailure::UnreachableWithin(
                            timeout,
                        )));
                    }
                    break;
                }
                Ok(Ok(event)) => {
                    if matches!(event, Event::Connection(ConnectionState::Connected)) {
                        was_connected = true;
                    }
                    let done = matches!(event, Event::QueueEmpty);
                    events.push(event);
                    if done {
                        break;
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => events.push(Event::Lagged { missed }),
                Ok(Err(RecvError::Closed)) => return Err(Error::Closed),
            }
        }
        // Hand queued receipts to the relay in the time left; they stay in
        // the outbox otherwise, so a timeout here loses nothing.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !left.is_zero() {
            let _ = self.inner.flush_outbox(left).await;
        }
        loop {
            match rx.try_recv() {
                Ok(event) => events.push(event),
                Err(TryRecvError::Lagged(missed)) => events.push(Event::Lagged { missed }),
                Err(_) => break,
            }
        }
        Ok(events)
    }

    /// Sends a text message. Starts a session from a freshly fetched prekey
    /// bundle if there is none. The encrypted envelope is stored in the
    /// outbox together with the advanced session before it is sent, so it
    /// is never lost; the returned id appears later in [`Event::Sent`].
    ///
    /// Fails with [`Error::UntrustedKey`] if the contact's key changed, and
    /// with [`Error::NameReassigned`] while the name is contested. A
    /// message goes to a name (what it means to the user), never to a
    /// label or an account id: the checks above are about names.
    pub async fn send_text(&self, to: &Username, text: &str) -> Result<MessageId, Error> {
        self.inner.send_text(to, text).await
    }

    /// Sends the file at `path` to `to`: encrypts it while uploading the
    /// blob to the relay (one chunk in memory at a time), then sends the
    /// pointer (blob id, key, digest, size, name) through the outbox like
    /// a text message. `name` replaces the file's own name; either is
    /// sanitised. `progress` sees the upload advance.
    pub async fn send_file(
        &self,
        to: &Username,
        path: &std::path::Path,
        name: Option<&str>,
        progress: &(dyn Fn(crate::Progress) + Send + Sync),
    ) -> Result<(MessageId, crate::FileInfo), Error> {
        self.inner.send_file(to, path, name, progress).await
    }

    /// Downloads the file with local id `id` (as a message's
    /// [`FileInfo`](crate::FileInfo) gives it), verifies and decrypts it
    /// into a temporary file, and moves it to `dest` (a directory, then
    /// under its sanitised name, or a file path; the current directory if
    /// `None`) only once the whole blob verified. An existing file is
    /// never overwritten. Returns where it was saved.
    pub async fn fetch_file(
        &self,
        id: &str,
        dest: Option<&std::path::Path>,
        progress: &(dyn Fn(crate::Progress) + Send + Sync),
    ) -> Result<(std::path::PathBuf, crate::FileInfo), Error> {
        self.inner.fetch_file(id, dest, progress).await
    }

    /// The file with local id `id`.
    pub async fn file_info(&self, id: &str) -> Result<crate::FileInfo, Error> {
        self.inner.file_info(id).await
    }

    /// The file a stored message of the conversation with `peer` carries
    /// (`entry` as [`Client::history`] returned it), `None` for a text: how
    /// an interface finds the id to fetch a file shown from history.
    pub async fn file_of(
        &self,
        peer: &PeerRef,
        entry: &HistoryEntry,
    ) -> Result<Option<crate::FileInfo>, Error> {
        let contact = self.inner.known_contact(peer).await?;
        crate::files::file_of_message(
            &self.inner.vault,
            entry.direction,
            &contact.account,
            &entry.id,
        )
        .await
    }

    /// Waits until the outbox is empty (every queued envelope accepted or
    /// refused by the relay), connecting if needed.
    pub async fn flush_outbox(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.flush_outbox(timeout).await
    }

    /// Messages still waiting for the relay.
    pub async fn pending_outbox(&self) -> Result<Vec<PendingMessage>, Error> {
        self.inner.pending_outbox().await
    }

    /// Tells a contact we started or stopped typing (ephemeral: only delivered
    /// if they are online; never stored). Sends nothing while typing is off
    /// in [`Client::settings`].
    pub async fn send_typing(&self, to: &Username, started: bool) -> Result<(), Error> {
        self.inner.send_typing(to, started).await
    }

    /// This account's privacy settings (defaults if never set).
    pub async fn settings(&self) -> Result<crate::Settings, Error> {
        self.inner.settings().await
    }

    /// Stores this account's privacy settings; they apply from the next
    /// receipt or typing notice on (see [`crate::Settings`]).
    pub async fn set_settings(&self, settings: crate::Settings) -> Result<(), Error> {
        self.inner.set_settings(settings).await
    }

    /// Blocks the contact `peer` names (a username, or a `name#xxxxxxxx`
    /// label as [`Client::contacts`] shows it): from now on nothing it
    /// sends is shown (it is decrypted, so its session survives, then
    /// dropped and acknowledged), no receipt or typing notice goes to it,
    /// and a send to it fails with [`Error::Blocked`]. Local only: neither
    /// the relay nor the contact is told. See `blocking` in the crate
    /// source for what is dropped in groups.
    pub async fn block(&self, peer: &PeerRef) -> Result<crate::BlockedContact, Error> {
        self.inner.block(peer).await
    }

    /// Unblocks the account `peer` names; `false` if it was not blocked.
    /// Its next message opens on the same session as before the block.
    pub async fn unblock(&self, peer: &PeerRef) -> Result<bool, Error> {
        self.inner.unblock(peer).await
    }

    /// Every blocked account, by display name.
    pub async fn blocked(&self) -> Result<Vec<crate::BlockedContact>, Error> {
        self.inner.blocked().await
    }

    /// The account's current devices as the relay lists them, ascending by
    /// id, each marked if it is this device and if the account's device
    /// list (verified under our identity first) names it.
    pub async fn devices(&self) -> Result<Vec<crate::DeviceInfo>, Error> {
        self.inner.ensure_connected()?;
        self.inner.list_devices().await
    }

    /// Adds a current device of the account that the account's device
    /// list does not name yet (`listed: false` in [`Client::devices`]) to
    /// the list and publishes it: what finishes a link that failed with
    /// [`crate::LinkFailure::EnrolledNotListed`]. A device this client
    /// removed is refused ([`crate::DeviceFailure::Removed`]), an id the
    /// relay does not list as current ([`crate::DeviceFailure::Unknown`]).
    /// Nothing is published if the list names it already.
    pub async fn list_device(&self, device_id: u32) -> Result<(), Error> {
        self.inner.ensure_connected()?;
        self.inner.list_device(device_id).await
    }

    /// Removes another device of the account (`umbra devices` shows the
    /// ids): the relay deletes its tokens, keys and queue and closes its
    /// connections, then this device publishes the account's device list
    /// without it, so contacts stop encrypting to it. Removing this device
    /// is refused with [`crate::DeviceFailure::ThisDevice`] before
    /// anything is sent.
    pub async fn remove_device(&self, device_id: u32) -> Result<(), Error> {
        self.inner.ensure_connected()?;
        self.inner.remove_device(device_id).await
    }

    /// Marks every incoming message of the conversation read (and reported:
    /// see [`Client::unreported_messages`]) and sends read receipts (none
    /// while they are off in [`Client::settings`]).
    pub async fn mark_read(&self, peer: &PeerRef) -> Result<(), Error> {
        self.inner.mark_read(peer).await
    }

    /// Incoming messages that no interface has shown the user yet, oldest
    /// first across all conversations. A message is stored (and acknowledged
    /// to the relay) whenever the client is connected, also while it is busy
    /// with something else (a `send`), so a script that only prints what
    /// [`Client::receive_until_empty`] returns would miss those; printing
    /// this list, then calling [`Client::mark_reported`], misses nothing.
    pub async fn unreported_messages(&self) -> Result<Vec<UnreportedMessage>, Error> {
        self.inner.unreported_messages().await
    }

    /// Records that these messages were shown to the user, so
    /// [`Client::unreported_messages`] no longer lists them. Call it after
    /// showing them: a crash in between shows them again, never loses them.
    /// [`Client::mark_read`] marks its conversation's messages reported too.
    pub async fn mark_reported(&self, messages: &[UnreportedMessage]) -> Result<(), Error> {
        self.inner.mark_reported(messages).await
    }

    /// Every conversation, newest activity first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        self.inner.conversations().await
    }

    /// The last `limit` messages with `peer`, oldest first.
    pub async fn history(&self, peer: &PeerRef, limit: usize) -> Result<Vec<HistoryEntry>, Error> {
        self.inner.history(peer, limit).await
    }

    /// Every contact, by username.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        self.inner.contacts().await
    }

    /// The safety number for comparing keys with `peer` out of band.
    pub async fn safety_number(&self, peer: &PeerRef) -> Result<SafetyNumber, Error> {
        self.inner.safety_number(peer).await
    }

    /// Every account `peer` could mean, with the safety number to compare
    /// for each: the contact the name means now, then, after an
    /// [`Event::NameReassigned`], the newcomer claiming the name.
    pub async fn name_candidates(&self, peer: &PeerRef) -> Result<Vec<NameCandidate>, Error> {
        self.inner.name_candidates(peer).await
    }

    /// Marks the key whose safety number the user compared (`compared`) as
    /// verified. Also accepts a changed key, and after an
    /// [`Event::NameReassigned`] decides which account `peer` means: the
    /// one whose number was compared. The number is checked under the state
    /// lock: if it is not the current one of either candidate (the key
    /// changed again since it was shown), nothing changes and the call fails
    /// with [`Error::SafetyNumberMismatch`].
    pub async fn mark_verified(
        &self,
        peer: &Username,
        compared: &SafetyNumber,
    ) -> Result<(), Error> {
        self.inner.decide_name(peer, compared, true).await?;
        self.inner.backup.touch();
        Ok(())
    }

    /// Accepts the changed key whose safety number the user compared
    /// (`Changed` becomes `Unverified`; other trust is kept), or after an
    /// [`Event::NameReassigned`] chooses the account whose number it is.
    /// Checked under the state lock like [`Client::mark_verified`].
    pub async fn accept_key_change(
        &self,
        peer: &Username,
        compared: &SafetyNumber,
    ) -> Result<(), Error> {
        self.inner.decide_name(peer, compared, false).await?;
        self.inner.backup.touch();
        Ok(())
    }

    /// The relay's pinned key-transparency keys and the newest directory
    /// head this client verified (docs/PROTOCOL.md §16.9 item 6), for
    /// comparing out of band. Asks the relay for nothing.
    pub async fn directory_root(&self) -> Result<crate::DirectoryRoot, Error> {
        self.inner.directory_root().await
    }

    /// Self-monitoring now (docs/PROTOCOL.md §16.9 item 5; it also runs
    /// on each connection): checks the directory's versions of our own
    /// account and username since the last check. Returns how many raised
    /// [`Event::OwnKeyNotPublishedByMe`].
    pub async fn check_own_keys(&self) -> Result<usize, Error> {
        self.inner.ensure_connected()?;
        self.inner.kt_monitor_own().await
    }

    /// Asks the relay for its newest directory head and checks that it
    /// extends the remembered one (§16.8); returns what
    /// [`Client::directory_root`] then shows. A fork or rollback is
    /// [`crate::KtFailure::Inconsistent`] and an
    /// [`Event::DirectoryInconsistent`].
    pub async fn check_directory(&self) -> Result<crate::DirectoryRoot, Error> {
        self.inner.ensure_connected()?;
        self.inner.kt_refresh_head().await?;
        self.inner.directory_root().await
    }

    /// Who we are.
    pub fn whoami(&self) -> WhoAmI {
        let me = self.inner.me();
        WhoAmI {
            username: me.username,
            account_id: me.account,
            device_id: me.device.0,
            server_url: self.inner.server_url.clone(),
        }
    }

    /// Uploads one-time prekeys until the relay holds a full batch, and
    /// rotates the signed prekey if due — only once the relay has delivered
    /// everything queued for us on this connection (`QueueEmpty`), since
    /// those messages were made for the keys held now. Returns how many
    /// one-time prekeys were uploaded.
    pub async fn replenish_prekeys(&self) -> Result<u32, Error> {
        self.inner.ensure_connected()?;
        self.inner.rotate_signed_prekey_if_due().await?;
        self.inner.replenish_prekeys().await
    }

    /// Changes our username on the relay.
    pub async fn rename(&self, new_username: &str) -> Result<(), Error> {
        self.inner.rename(new_username).await
    }

    /// Changes the account password from `old` to `new`: the relay's
    /// OPAQUE record (proving `old` there too), every other session of the
    /// account revoked, the local store re-keyed so only `new` opens it,
    /// and the account backup re-sealed under the new export key.
    ///
    /// Fails with [`Error::WrongPassword`] if `old` does not open this
    /// store, [`Error::AuthFailed`] if the relay does not know `old`. If
    /// the relay's answer is lost the store opens with either password and
    /// the error says why; repeating the change with the password the relay
    /// now has completes it (docs/PROTOCOL.md 12.8).
    pub async fn change_password(&self, old: &str, new: &str) -> Result<(), Error> {
        self.inner.change_password(old, new).await
    }

    /// Whether this data directory holds a session token (it has not
    /// logged out). Local only: the relay may still have revoked the token.
    pub async fn is_logged_in(&self) -> Result<bool, Error> {
        Ok(self.inner.token().await?.is_some())
    }

    /// Revokes the session token on the relay, forgets it locally and
    /// disconnects. The local store (keys, history) stays; `login` resumes.
    pub async fn logout(&self) -> Result<(), Error> {
        self.inner.logout().await
    }

    /// Deletes the account on the relay and erases the local store.
    pub async fn delete_account(&self) -> Result<(), Error> {
        self.inner.delete_account().await
    }

    /// Stops the background connection and waits for it to finish.
    pub async fn shutdown(&self) {
        self.inner.disconnect().await
    }
}
