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
//! Network I/O comes first, then the lock: a send asks the relay
//! (`outbound::plan_send`) and an inbound envelope asks the directory
//! (`inbound/precheck.rs`: first contact, a new key, a rename) before
//! taking `op_lock`; each then re-reads the state under it and plans again
//! (bounded) if the state its request was based on changed, so neither
//! waits for the relay while holding the lock.
//!
//! Must never: release a ciphertext before its session is committed, hold a
//! std lock across an await, or emit an event for a change that was not
//! committed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, watch, Notify};
use umbra_protocol::content::Content;
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::wire::{AccountId, Address, DeviceId, Username};

use crate::account::{AccountRecord, TokenRecord};
use crate::backup::BackupManager;
use crate::clock::Clock;
use crate::connection::ConnectionHandle;
use crate::contact::Contact;
use crate::devices::DeviceManager;
use crate::failure::{ConnectionFailure, CryptoFailure, Ended};
use crate::groups::manager::GroupManager;
use crate::history::Counters;
use crate::identity_checks::IdentityChecks;
use crate::markers::DeliveryMarkers;
use crate::name_book::NameBook;
use crate::prekey_maintenance::InitialKeys;
use crate::prekeys::PreKeyManager;
use crate::records;
use crate::sessions::SessionManager;
use crate::store::{Txn, Vault};
use crate::timeline::Timeline;
use crate::trust::ContactRecord;
use crate::{ConnectionState, Error, Event, MessageId, PeerRef, SafetyNumber};

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
    /// Bounds one attempt to reach the relay ([`crate::ClientConfig::connect_timeout`]).
    pub(crate) connect_timeout: std::time::Duration,
    /// The key-transparency keys the configuration names ([`crate::kt`]).
    pub(crate) kt_configured: Option<crate::KtPins>,
    /// The unlocked store, shared with the managers that own a part of it.
    pub(crate) vault: Arc<Vault>,
    /// Contacts and what their names mean (a manager owning that state).
    pub(crate) names: NameBook,
    /// Groups, their change logs and sender keys (a manager owning that state).
    pub(crate) groups: GroupManager,
    /// The account backup's state and its upload worker (`backup/`).
    pub(crate) backup: BackupManager,
    /// When each contact was last sent a session reset asked for by an
    /// undecryptable message (`backup/restore.rs`).
    pub(crate) session_resets: crate::backup::restore::ResetLimiter,
    /// Pairwise history, its index and conversation summaries (a manager
    /// owning that state).
    pub(crate) timeline: Timeline,
    /// Pairwise session records (a manager owning that state).
    pub(crate) sessions: SessionManager,
    /// Our signed, one-time and last-resort prekeys (a manager owning that
    /// state).
    pub(crate) prekeys: PreKeyManager,
    /// Seen markers and kept deliveries (a manager owning that state).
    pub(crate) markers: DeliveryMarkers,
    /// The device lists verified per account (a manager owning that state).
    pub(crate) devices: DeviceManager,
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
    /// The KEM prekey state was published (last-resort KEM prekey and a
    /// full batch) on the current connection (`kem_maintenance.rs`).
    pub(crate) kem_published: AtomicBool,
    /// The relay answered a KEM prekey frame with `BadFrame`: it predates
    /// post-quantum sessions. Kept for the engine's life, so that no later
    /// upload or hybrid fetch makes it close the connection again.
    pub(crate) relay_lacks_pq: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// The relay refused our stored token: another data directory logged in.
    pub(crate) used_elsewhere: AtomicBool,
    /// The connection ended because this directory has no valid session
    /// (logged out, token expired or revoked): callers get
    /// [`Error::NotLoggedIn`], which the CLI reports as an authentication failure.
    pub(crate) session_refused: AtomicBool,
    /// Why the connection ended for good, once it has (set before the
    /// state says so).
    pub(crate) ended: Mutex<Option<Ended>>,
    /// Why the latest connection attempt or session failed since the
    /// last time one came up (cleared when connected).
    pub(crate) last_failure: Mutex<Option<crate::SharedError>>,
    /// Which contacts' published identities were compared with the pinned
    /// ones on this connection.
    pub(crate) identity_checks: IdentityChecks,
    /// The wall clock for dated state (tests move it forward).
    pub(crate) clock: Clock,
    /// The first wait of the kept-redelivery backoff, in milliseconds
    /// (`KEPT_REDELIVERY_FIRST_WAIT`; tests lengthen it to show that a
    /// held item opens without waiting for it).
    kept_first_wait_ms: AtomicU64,
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// The first wait before a connection that kept a delivery
    /// reconnects for it (read when the connection task starts).
    pub(crate) fn kept_redelivery_first_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.kept_first_wait_ms.load(Ordering::Relaxed))
    }

    /// Sets that wait; takes effect at the next connection task.
    #[cfg(test)]
    pub(crate) fn set_kept_redelivery_first_wait(&self, wait: std::time::Duration) {
        self.kept_first_wait_ms
            .store(wait.as_millis() as u64, Ordering::Relaxed);
    }

    /// Builds an engine around an unlocked vault.
    pub(crate) async fn from_vault(
        config: &crate::ClientConfig,
        ws_url: String,
        vault: impl Into<Arc<Vault>>,
    ) -> Result<Arc<Self>, Error> {
        let vault: Arc<Vault> = vault.into();
        let account: AccountRecord = vault
            .load(&records::account::account())
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
        let engine = Arc::new(Self {
            server_url: config.server_url.clone(),
            ws_url,
            tls_roots: config.tls_roots.clone(),
            connect_timeout: config.connect_timeout,
            kt_configured: config.kt_pins,
            names: NameBook::new(vault.clone()),
            groups: GroupManager::new(vault.clone()),
            backup: BackupManager::new(vault.clone()),
            session_resets: Default::default(),
            timeline: Timeline::new(vault.clone()),
            sessions: SessionManager::new(vault.clone()),
            prekeys: PreKeyManager::new(vault.clone()),
            markers: DeliveryMarkers::new(vault.clone()),
            devices: DeviceManager::new(vault.clone()),
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
            kem_published: AtomicBool::new(false),
            relay_lacks_pq: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            used_elsewhere: AtomicBool::new(false),
            session_refused: AtomicBool::new(false),
            ended: Mutex::new(None),
            last_failure: Mutex::new(None),
            identity_checks: IdentityChecks::default(),
            clock: Clock::default(),
            kept_first_wait_ms: AtomicU64::new(
                crate::consts::KEPT_REDELIVERY_FIRST_WAIT.as_millis() as u64,
            ),
        });
        // What expired while the client was closed goes before anything
        // reads the history (§12.18); a failure is logged and retried by
        // the background sweep.
        if let Err(e) = engine.sweep_expired().await {
            tracing::warn!(error = %crate::error::LogSafe(&e), "disappearing-message sweep failed");
        }
        engine.start_expiry_sweep();
        Ok(engine)
    }

    /// Writes the first records of a new store: account, token, prekeys
    /// (tests that build a store by hand; a login uses [`Self::initial_records`]).
    #[cfg(test)]
    pub(crate) async fn initialise_store(
        vault: &Vault,
        identity: &IdentityKeyPair,
        username: &Username,
        account: AccountId,
        token: &TokenRecord,
    ) -> Result<(), Error> {
        let mut txn = Txn::new();
        Self::initial_records(
            vault,
            &mut txn,
            identity,
            username,
            DeviceId::PRIMARY,
            account,
            token,
        )?;
        vault.commit(txn).await?;
        Ok(())
    }

    /// Adds to `txn` the records a new store starts with: the account
    /// record, the token, fresh prekeys and the counters. A restore commits
    /// them in the same transaction as what it restores, so a store either
    /// holds the account with everything restored or holds no account
    /// record at all ([`Engine::is_set_up`]).
    ///
    /// `device` is 1 after a registration or login (12.12), the device id
    /// the relay assigned after a link (`crate::link`).
    pub(crate) fn initial_records(
        vault: &Vault,
        txn: &mut Txn,
        identity: &IdentityKeyPair,
        username: &Username,
        device: DeviceId,
        account: AccountId,
        token: &TokenRecord,
    ) -> Result<(), Error> {
        let record = AccountRecord {
            identity: clone_identity(identity)?,
            username: username.as_str().to_owned(),
            account: *account.as_bytes(),
            device: device.0,
        };
        let keys = InitialKeys::generate(identity, now_secs(), &mut OsRng);
        vault.save(txn, records::account::account(), &record)?;
        vault.save(txn, records::account::token(), token)?;
        PreKeyManager::save_initial(vault, txn, &keys)?;
        PreKeyManager::save_initial_kem(vault, txn, identity, now_secs(), &mut OsRng)?;
        vault.save(txn, records::account::counters(), &Counters::default())?;
        Ok(())
    }

    /// The device the store's account record names (a store that is set up).
    pub(crate) async fn stored_device(vault: &Vault) -> Result<DeviceId, Error> {
        let account: AccountRecord = vault
            .load(&records::account::account())
            .await?
            .ok_or(crate::StoreError::NotInitialized)?;
        Ok(DeviceId(account.device))
    }

    /// Whether the store's setup transaction committed (it holds the
    /// account record). A store with a header but none was interrupted
    /// between creating the store and setting it up; the next login sets
    /// it up again.
    pub(crate) async fn is_set_up(vault: &Vault) -> Result<bool, Error> {
        Ok(vault.load(&records::account::account()).await?.is_some())
    }

    pub(crate) fn me(&self) -> Me {
        self.me.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The error for a connection that ended for good: [`Error::UsedElsewhere`]
    /// when the relay revoked our session because the account logged in
    /// from another data directory, [`Error::NotLoggedIn`] when this data
    /// directory has no valid session, else [`Error::Connection`] saying
    /// why ([`Ended`]).
    pub(crate) fn connection_ended(&self, reason: Ended) -> Error {
        if self.used_elsewhere.load(Ordering::SeqCst) {
            Error::UsedElsewhere
        } else if self.session_refused.load(Ordering::SeqCst) {
            Error::NotLoggedIn {
                reason: reason.to_string(),
            }
        } else {
            match lock(&self.ended).clone() {
                Some(ended) => Error::Connection(ConnectionFailure::Ended(ended)),
                // The state said "ended" before the cause was recorded:
                // only the relay ends a connection for good that way.
                None => Error::Connection(ConnectionFailure::ClosedByRelay),
            }
        }
    }

    /// Why the latest attempt to reach the relay failed, for a caller that
    /// never saw the connection up (taken: the next caller gets the next
    /// failure).
    pub(crate) fn take_last_failure(&self) -> Error {
        lock(&self.last_failure).take().map_or(
            Error::Connection(ConnectionFailure::Unreachable),
            |shared| shared.into_error(),
        )
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
        if crate::backup::may_change_backup(&event) {
            self.backup.touch();
        }
        // No subscriber is fine: everything is also in the store.
        let _ = self.events.send(event);
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        if *self.conn_state.borrow() != state {
            if state == ConnectionState::Connected {
                // A contact may have changed keys while we were away.
                self.identity_checks.new_connection();
                self.groups.member_lists.new_connection();
            }
            self.conn_state.send_replace(state.clone());
            self.emit(Event::Connection(state));
        }
    }

    // ----- contacts and trust -----------------------------------------

    pub(crate) async fn contact_by_account(
        &self,
        account: &[u8; 16],
    ) -> Result<Option<ContactRecord>, Error> {
        self.names.contact(account).await
    }

    /// The contact `peer` names for reading: a username, or the
    /// `name#xxxxxxxx` label of a contact the name does not mean.
    pub(crate) async fn known_contact(&self, peer: &PeerRef) -> Result<ContactRecord, Error> {
        self.names.contact_for_peer(peer).await
    }

    pub(crate) async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        let mut out = Vec::new();
        for contact in self.names.all().await? {
            out.push(self.names.describe(&contact).await?);
        }
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        Ok(out)
    }

    pub(crate) async fn safety_number(&self, peer: &PeerRef) -> Result<SafetyNumber, Error> {
        self.safety_number_for(peer).await
    }

    pub(crate) async fn counters(&self) -> Result<Counters, Error> {
        Ok(self
            .vault
            .load(&records::account::counters())
            .await?
            .unwrap_or_default())
    }

    pub(crate) fn put_counters(&self, txn: &mut Txn, counters: &Counters) -> Result<(), Error> {
        self.vault
            .save(txn, records::account::counters(), counters)?;
        Ok(())
    }

    /// Whether `identity` is ours (constant time).
    pub(crate) fn is_our_identity(&self, identity: &IdentityPublic) -> bool {
        self.identity.public().ct_eq(identity).into()
    }
}

/// A copy of an identity key pair through its serialised form (the type is
/// deliberately not `Clone`).
pub(crate) fn clone_identity(identity: &IdentityKeyPair) -> Result<IdentityKeyPair, Error> {
    let bytes = zeroize::Zeroizing::new(
        postcard::to_stdvec(identity).map_err(|e| Error::Crypto(CryptoFailure::KeyCopy(e)))?,
    );
    postcard::from_bytes(&bytes).map_err(|e| Error::Crypto(CryptoFailure::KeyCopy(e)))
}
