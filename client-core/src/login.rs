//! Logging in: restoring the account from its backup into an empty data
//! directory as a new device of the account (§12.15, `LoginEnrol` of
//! §15.6); taking the account over from any other data directory
//! (docs/PROTOCOL.md §12.12) to resume device 1's own store; logging a
//! linked or restored device's own store in again as that device
//! (`LoginDevice` of §15.6, which logs no other device out); or (asked
//! for explicitly, or with no backup on the relay) to start over with a
//! new identity as device 1; and setting up a new store after `register`.
//!
//! Must never: write a store before the relay accepted the password,
//! restore anything a backup that fails to open says, or leave a
//! half-written store: a new store's setup (account record, prekeys,
//! token, everything restored, backup state) is one transaction, and a
//! store whose setup never committed is set up again by the next login.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::backup::BackupContents;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{DeviceId, ErrorCode, Request, Username};

use crate::account;
use crate::backup::http::BackupEndpoint;
use crate::backup::{restore, BackupManager, BackupState};
use crate::client::{open_backend, password_error};
use crate::consts::SETUP_STEP_ATTEMPTS;
use crate::engine::Engine;
use crate::failure::{ConnectionFailure, RelayMisbehaved};
use crate::groups::manager::GroupManager;
use crate::name_book::NameBook;
use crate::relay_link::{into_result, RelayLink};
use crate::store::{ClientStore, StoreError, Txn, Vault};
use crate::{Client, ClientConfig, Error};

/// Bounds fetching the account backup at a restore (up to 16 MiB), and
/// the wait for the session resets to reach the relay.
const RESTORE_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Logs in, revokes every session of the account (ours included: the relay
/// has no "everyone but me"), and logs in again for the token to keep.
async fn take_over(
    ws_url: &str,
    tls_roots: Option<&std::path::Path>,
    connect_timeout: Duration,
    name: &Username,
    password: &str,
) -> Result<account::LoginOutcome, Error> {
    let mut link = RelayLink::connect(ws_url, tls_roots, connect_timeout).await?;
    let first = account::login(&mut link, name, password.as_bytes(), &mut OsRng).await?;
    into_result(
        link.call(Request::Authenticate {
            token: first.token.session_token(),
            device: DeviceId::PRIMARY,
        })
        .await?,
    )?;
    into_result(link.call(Request::Logout { everywhere: true }).await?)?;
    // The relay hangs up after a logout.
    link.close().await;
    let mut link = RelayLink::connect(ws_url, tls_roots, connect_timeout).await?;
    let outcome = account::login(&mut link, name, password.as_bytes(), &mut OsRng).await?;
    link.close().await;
    if outcome.account != first.account {
        return Err(Error::Protocol(RelayMisbehaved::AccountChanged));
    }
    Ok(outcome)
}

/// A password login in the store of device `device` (not device 1), and
/// `LoginDevice` on the same connection: the login's device-1 token, never
/// used to `Authenticate` (so device 1's connection is left alone), is
/// replaced by one for this device. A login gone stale before it (the
/// relay's 60 s) is made once more.
async fn again_as_device(
    config: &ClientConfig,
    ws_url: &str,
    name: &Username,
    password: &str,
    device: DeviceId,
) -> Result<account::LoginOutcome, Error> {
    let tls_roots = config.tls_roots.as_deref();
    let mut attempt = 1;
    loop {
        let mut link = RelayLink::connect(ws_url, tls_roots, config.connect_timeout).await?;
        let login = account::login(&mut link, name, password.as_bytes(), &mut OsRng).await;
        let given = match login {
            Ok(login) => account::login_device(&mut link, login, device).await,
            Err(e) => Err(e),
        };
        link.close().await;
        match given {
            Err(Error::Relay {
                code: ErrorCode::UnknownExchange,
                ..
            }) if attempt < 2 => attempt += 1,
            other => {
                if let Ok(outcome) = &other {
                    tracing::info!(
                        device = outcome.device.0,
                        "password login gave this device a token again"
                    );
                }
                return other;
            }
        }
    }
}

/// A password login in a data directory with no account yet: the device
/// its token is for, and the backup it restores.
struct FreshLogin {
    login: account::LoginOutcome,
    restored: Option<(u64, BackupContents)>,
}

/// Logs in, fetches the backup with the login's token (device 1's, never
/// used to `Authenticate`, so device 1's connection elsewhere is left
/// alone), and then: a backup that opens → `LoginEnrol` on the same
/// connection, a new device of the account (docs/PROTOCOL.md §12.15,
/// 15.6); none on the relay → the account taken over as device 1, for a
/// new identity (12.12), as before devices existed. A backup that does
/// not open fails the login and enrols nothing.
async fn fresh_login(
    config: &ClientConfig,
    ws_url: &str,
    name: &Username,
    password: &str,
) -> Result<FreshLogin, Error> {
    let tls_roots = config.tls_roots.as_deref();
    let mut link = RelayLink::connect(ws_url, tls_roots, config.connect_timeout).await?;
    let first = account::login(&mut link, name, password.as_bytes(), &mut OsRng).await?;
    let endpoint = backup_endpoint(config)?;
    let token = first.token.session_token();
    let found = restore::fetch(&endpoint, &token, &first.export_key, &first.account).await;
    let found = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            link.close().await;
            let login =
                take_over(ws_url, tls_roots, config.connect_timeout, name, password).await?;
            if login.account != first.account {
                return Err(Error::Protocol(RelayMisbehaved::AccountChanged));
            }
            return Ok(FreshLogin {
                login,
                restored: None,
            });
        }
        Err(e) => {
            link.close().await;
            return Err(e);
        }
    };
    let account = first.account;
    let enrolled = match account::enrol(&mut link, first).await {
        Ok(enrolled) => {
            link.close().await;
            enrolled
        }
        // The connection's login went stale while the backup was fetched
        // (the relay's 60 s, or its authentication deadline closed the
        // connection): log in once more and enrol at once.
        Err(Error::Relay {
            code: ErrorCode::UnknownExchange,
            ..
        })
        | Err(Error::Connection(_)) => {
            link.close().await;
            let mut link = RelayLink::connect(ws_url, tls_roots, config.connect_timeout).await?;
            let again = account::login(&mut link, name, password.as_bytes(), &mut OsRng).await?;
            if again.account != account {
                return Err(Error::Protocol(RelayMisbehaved::AccountChanged));
            }
            let enrolled = account::enrol(&mut link, again).await;
            link.close().await;
            enrolled?
        }
        Err(e) => {
            link.close().await;
            return Err(e);
        }
    };
    tracing::info!(
        device = enrolled.device.0,
        "password login enrolled as a new device of the account"
    );
    Ok(FreshLogin {
        login: enrolled,
        restored: Some(found),
    })
}

fn backup_endpoint(config: &ClientConfig) -> Result<BackupEndpoint, Error> {
    BackupEndpoint::new(
        &config.server_url,
        config.tls_roots.clone(),
        config.connect_timeout.max(RESTORE_FETCH_TIMEOUT),
    )
}

impl Client {
    /// Logs in to an existing account on a device whose local store is empty,
    /// or whose store already belongs to this account (the stored identity
    /// is kept and the session token refreshed).
    ///
    /// In an empty store this is password-only restore (docs/PROTOCOL.md
    /// §12.15): the account's backup on the relay, opened with the key the
    /// password yields, brings back the identity key (contacts see no key
    /// change), contacts with their trust, and groups; this data directory
    /// becomes a NEW device of the account (`LoginEnrol`, §15.6: a fresh
    /// device id, so fresh prekey ids), publishes its keys and a signed
    /// device list naming it beside the account's other devices (which stay
    /// listed: the user removes a lost one), and starts a fresh session
    /// with every contact. An account with no backup on the relay is
    /// taken over as device 1 with a new identity (contacts then see a key
    /// change); an account at its device limit is refused with the relay's
    /// `LimitExceeded`, which says how to remove a device.
    ///
    /// A login into the store of a linked or restored device (device N,
    /// not 1) logs in again as device N (`LoginDevice`, §15.6): it keeps
    /// its id, identity, sessions and history, and logs no other device
    /// out; a device the account removed is refused
    /// ([`DeviceFailure::NotCurrent`](crate::failure::DeviceFailure::NotCurrent))
    /// and nothing is written.
    ///
    /// A login into device 1's store ends every
    /// other session of the account first ("log out everywhere", then a
    /// fresh login): the directory it moved away from gets
    /// [`Error::UsedElsewhere`] instead of receiving — and acknowledging —
    /// messages sealed to an identity the relay no longer publishes for it.
    pub async fn login(
        config: ClientConfig,
        username: &str,
        password: &str,
    ) -> Result<Client, Error> {
        Self::login_as(config, username, password, false, None).await
    }

    /// [`Client::login`] where this data directory's store is sealed under
    /// `store_password`, not the account's `password` (a linked device
    /// chooses its own at `link_accept`): the relay is given `password`,
    /// the store is opened (or, in an empty directory, created) with
    /// `store_password`. What a linked device whose token ended logs in
    /// again with (§15.6 `LoginDevice`).
    pub async fn login_with_store_password(
        config: ClientConfig,
        username: &str,
        password: &str,
        store_password: &str,
    ) -> Result<Client, Error> {
        Self::login_as(config, username, password, false, Some(store_password)).await
    }

    /// [`Client::login`] in an empty data directory that does *not*
    /// restore the backup: a new identity key is made and published
    /// (contacts see a key change and must accept it), with no contacts or
    /// groups; the next backup replaces the relay's. For a user who
    /// believes the identity key was exposed. A store that already holds
    /// the account is refused ([`StoreError::AlreadyInitialized`]): a new
    /// identity needs an empty data directory.
    pub async fn login_with_new_identity(
        config: ClientConfig,
        username: &str,
        password: &str,
    ) -> Result<Client, Error> {
        Self::login_as(config, username, password, true, None).await
    }

    async fn login_as(
        config: ClientConfig,
        username: &str,
        password: &str,
        new_identity: bool,
        store_password: Option<&str>,
    ) -> Result<Client, Error> {
        let name = Username::parse(username)?;
        // The store's own password when it is not the account's: then a
        // header's slots are not the account password's, and are left.
        let separate = store_password.is_some_and(|own| own != password);
        let store_password = store_password.unwrap_or(password);
        let ws_url = config.websocket_url()?;
        let backend = open_backend(&config).await?;
        let initialized = Vault::is_initialized(&*backend).await?;
        if new_identity && initialized {
            // Before any network traffic: nothing is taken over.
            return Err(Error::Store(StoreError::AlreadyInitialized));
        }
        if !new_identity && !initialized {
            // Password-only restore: a new device of the account, or (no
            // backup on the relay) the account taken over as device 1.
            let fresh = fresh_login(&config, &ws_url, &name, password).await?;
            let local = (fresh.restored, None);
            return Self::create_local(
                config,
                ws_url,
                backend,
                &name,
                store_password,
                fresh.login,
                local,
            )
            .await;
        }
        if new_identity {
            let outcome = take_over(
                &ws_url,
                config.tls_roots.as_deref(),
                config.connect_timeout,
                &name,
                password,
            )
            .await?;
            let endpoint = backup_endpoint(&config)?;
            let token = outcome.token.session_token();
            // A new identity replaces the relay's backup: its first upload
            // follows the stored seq instead of merging with it.
            let replaces = restore::stored_seq(&endpoint, &token).await?;
            let local = (None, replaces);
            return Self::create_local(
                config,
                ws_url,
                backend,
                &name,
                store_password,
                outcome,
                local,
            )
            .await;
        }
        // The account's own store. Opened before anything is sent: which
        // device it is decides what the login may do.
        let vault = Vault::unlock(backend, store_password.as_bytes())
            .await
            .map_err(password_error)?;
        if !Engine::is_set_up(&vault).await? {
            // Created, but its setup transaction never committed (a crash,
            // a failed restore): set it up again, as in an empty directory
            // (the device a crashed restore enrolled stays listed on the
            // relay until it is removed; `umbra devices` shows it).
            let fresh = fresh_login(&config, &ws_url, &name, password).await?;
            if vault.owner() != fresh.login.account {
                return Err(Error::Store(StoreError::AlreadyInitialized));
            }
            if !separate {
                vault.keep_only_slot_of(password.as_bytes()).await?;
            }
            let local = (fresh.restored, None);
            return Self::set_up(config, ws_url, vault, &name, fresh.login, local).await;
        }
        let device = Engine::stored_device(&vault).await?;
        let outcome = if device == DeviceId::PRIMARY {
            take_over(
                &ws_url,
                config.tls_roots.as_deref(),
                config.connect_timeout,
                &name,
                password,
            )
            .await?
        } else {
            // A linked or restored device logs in again as itself
            // (`LoginDevice`, PROTOCOL.md 15.6): its id, identity, sessions
            // and history stay, and no other device is logged out (a
            // take-over as device 1 would log every device out and leave
            // this store with another device's token).
            again_as_device(&config, &ws_url, &name, password, device).await?
        };
        if vault.owner() != outcome.account {
            return Err(Error::Store(StoreError::AlreadyInitialized));
        }
        // The relay just accepted this password: a header left with both
        // passwords' slots by an unconfirmed change keeps only its slot.
        if !separate {
            vault.keep_only_slot_of(password.as_bytes()).await?;
        }
        let engine = Engine::from_vault(&config, ws_url, vault).await?;
        engine.store_token(&outcome.token).await?;
        let decided = engine.keep_export_key(outcome.export_key, None).await?;
        engine.ensure_connected()?;
        if decided != restore::KeyOutcome::Kept {
            // The password is not the one this store sealed under (most
            // often: our change took effect though its answer was lost),
            // so the relay's backup may be sealed under a key a restore
            // with this password cannot open. Re-seal now
            // rather than after the worker's debounce, so a restore
            // elsewhere right after this login reads it; a failure is left
            // to the upkeep (no digest is acknowledged under this key).
            if let Err(error) = engine.upload_backup().await {
                tracing::warn!(
                    error = %crate::error::LogSafe(&error),
                    "the backup is not re-sealed under this password yet; the upkeep retries"
                );
            }
        }
        // Re-publishing is harmless and repairs a directory entry lost on the relay.
        publish_at_setup(&engine, false).await?;
        Ok(Client { inner: engine })
    }

    /// Sets up the local store for a freshly logged-in account: the
    /// identity restored from the account backup, or a new one; new
    /// prekeys; publication; and after a restore, the restored contacts and
    /// groups and a fresh session with every contact.
    pub(crate) async fn create_local(
        config: ClientConfig,
        ws_url: String,
        backend: Arc<dyn ClientStore>,
        name: &Username,
        password: &str,
        outcome: account::LoginOutcome,
        local: (Option<(u64, BackupContents)>, Option<u64>),
    ) -> Result<Client, Error> {
        let vault = Vault::create(
            backend,
            password.as_bytes(),
            config.kdf,
            outcome.account,
            &mut OsRng,
        )
        .await?;
        Self::set_up(config, ws_url, vault, name, outcome, local).await
    }

    /// Sets up `vault`, which holds no account record (new, or a setup
    /// that was interrupted): everything restored (or the new identity),
    /// the account record, prekeys, token and backup state are ONE
    /// transaction, so a crash or a failure leaves a store the next login
    /// sets up again, never an account with its contacts missing.
    async fn set_up(
        config: ClientConfig,
        ws_url: String,
        vault: Vault,
        name: &Username,
        outcome: account::LoginOutcome,
        (restored, replaces): (Option<(u64, BackupContents)>, Option<u64>),
    ) -> Result<Client, Error> {
        let identity = match &restored {
            Some((_, contents)) => crate::engine::clone_identity(&contents.identity)?,
            None => IdentityKeyPair::generate(&mut OsRng),
        };
        let vault = Arc::new(vault);
        let mut txn = Txn::new();
        Engine::initial_records(
            &vault,
            &mut txn,
            &identity,
            name,
            outcome.device,
            outcome.account,
            &outcome.token,
        )?;
        drop(identity);
        let backup = BackupManager::new(vault.clone());
        if let Some((_, contents)) = &restored {
            let names = NameBook::new(vault.clone());
            let groups = GroupManager::new(vault.clone());
            let done =
                backup.restore_into(&mut txn, contents, &outcome.account, &names, &groups)?;
            if done.skipped_groups > 0 {
                tracing::warn!(
                    skipped = done.skipped_groups,
                    "groups in the account backup whose log does not load were not restored"
                );
            }
            tracing::info!(
                contacts = done.contacts,
                groups = done.groups,
                "account restored from its backup"
            );
        }
        let state = BackupState {
            export_key: outcome.export_key,
            acked_seq: restored.as_ref().map(|(seq, _)| *seq).or(replaces),
            acked_digest: None,
        };
        backup.put_state(&mut txn, &state)?;
        drop(backup);
        vault.commit(txn).await?;
        let engine = Engine::from_vault(&config, ws_url, vault).await?;
        engine.ensure_connected()?;
        publish_at_setup(&engine, true).await?;
        if restored.is_some() && outcome.device != DeviceId::PRIMARY {
            // A new device of the account: the signed device list must
            // name it before a contact writes to it (15.3). The old
            // devices stay listed; the user removes a lost one.
            retry_on_lost(|| engine.add_own_device(outcome.device)).await?;
        }
        if restored.is_some() {
            // Contacts have no session with this device: start one with
            // each, so their clients learn of it (a pre-key message from a
            // device their held list lacks makes them fetch the list) and
            // their next message comes on a session we have.
            // The login waits (bounded) for the resets to reach the relay,
            // so a contact that reads its messages next gets them first.
            if engine.reset_all_sessions().await? > 0 {
                if let Err(e) = engine.flush_outbox(RESTORE_FETCH_TIMEOUT).await {
                    tracing::info!(error = %e, "session resets still queued after restore");
                }
            }
        }
        Ok(Client { inner: engine })
    }
}

/// Publishes this device's keys at the end of a setup: identity and signed
/// prekey, (for a new store) one-time prekeys, and ML-KEM prekeys. Each
/// step is idempotent and is sent again when the connection was lost before
/// its answer ([`SETUP_STEP_ATTEMPTS`]): the engine reconnects on its own,
/// and a setup the relay already accepted must not fail because a
/// concurrent request (the per-connection KEM publication reaching a relay
/// that closes on it) took the connection down.
async fn publish_at_setup(engine: &Arc<Engine>, one_time: bool) -> Result<(), Error> {
    retry_on_lost(|| engine.publish_keys()).await?;
    if one_time {
        retry_on_lost(|| engine.replenish_prekeys()).await?;
    }
    retry_on_lost(|| engine.publish_kem_prekeys_at_setup()).await
}

async fn retry_on_lost<T, F, Fut>(mut step: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(Error::Connection(ConnectionFailure::Lost)) if attempt < SETUP_STEP_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "connection lost during a setup step; sending it again"
                );
            }
            other => return other,
        }
    }
}
