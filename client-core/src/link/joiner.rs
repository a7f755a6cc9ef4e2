//! The joiner's side of linking a device (docs/PROTOCOL.md §15.6, §15.7,
//! §12.17), in an empty data directory: `LinkJoin` and the first message
//! on an unauthenticated connection of its own, the creator's answer and
//! the enrolment (the new device's id and first token) polled for, then
//! the local store set up in ONE transaction (the account record as the
//! enrolled device, the token, fresh prekeys, the snapshot's contacts and
//! groups, the export key) and the device's keys published under the
//! account identity.
//!
//! Must never: write a store before the provisioning opened and fits the
//! enrolment, restore a session of any kind or send a session reset (the
//! creator's sessions with our contacts stay the creator's), or take over
//! a data directory that holds an account.

use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::backup::BackupContents;
use umbra_protocol::link::{JoinerHandshake, LinkCode, Provisioning};
use umbra_protocol::wire::{
    ErrorCode, LinkEnrolled, LinkTicketId, Request, Response, LINK_TICKET_TTL_SECS,
};

use super::snapshot::download_snapshot;
use super::{rate_limited_wait, rendezvous_error, LinkFailure, CALL_MARGIN, POLL_INTERVAL};
use crate::account::TokenRecord;
use crate::backup::{BackupManager, BackupState, ExportKey};
use crate::client::{open_backend, password_error};
use crate::devices::within_limits;
use crate::engine::Engine;
use crate::error::unexpected;
use crate::groups::manager::GroupManager;
use crate::name_book::NameBook;
use crate::relay_link::{into_result, RelayLink};
use crate::store::{StoreError, Txn, Vault};
use crate::{Client, ClientConfig, Error};

/// What the rendezvous gave the joiner: the handshake, the creator's
/// answer if it came (opened only once the enrolment is known, so a
/// failure to open it can name the enrolled device) and the relay's
/// enrolment (device id, token).
struct Joined {
    handshake: JoinerHandshake,
    msg2: Option<Vec<u8>>,
    enrolled: LinkEnrolled,
}

impl Client {
    /// Makes this (empty) data directory a new device of the account whose
    /// device shows `code` (`umbra link`, [`Client::link_device`]), with a
    /// local store sealed under `password` (this store's, like `register`'s;
    /// the account's password is not needed). Waits for the other device up
    /// to the code's lifetime (five minutes).
    ///
    /// The new device holds the account's identity (contacts see the same
    /// safety number), its contacts with their trust, and its groups; no
    /// conversation history and no session: it starts its own. Fails with
    /// [`Error::Store`] `AlreadyInitialized` before any network traffic if
    /// the store holds an account, [`LinkFailure::BadCode`] or
    /// [`LinkFailure::UnknownCode`] for a code that is not one or that the
    /// relay does not know, and [`LinkFailure::NoAnswer`] if the other
    /// device never answers (most often a code mistyped in its second half),
    /// [`LinkFailure::DeviceLimit`] as soon as the relay refused to enrol
    /// this device (the account has its 8 devices). Once the relay enrolled this device, any failure is
    /// [`LinkFailure::EnrolledNotSetUp`], naming the device to remove.
    pub async fn link_accept(
        config: ClientConfig,
        code: &str,
        password: &str,
    ) -> Result<Client, Error> {
        Self::link_accept_within(
            config,
            code,
            password,
            Duration::from_secs(LINK_TICKET_TTL_SECS),
        )
        .await
    }

    /// [`Client::link_accept`] waiting at most `wait` for the other
    /// device's answer and enrolment.
    pub async fn link_accept_within(
        config: ClientConfig,
        code: &str,
        password: &str,
        wait: Duration,
    ) -> Result<Client, Error> {
        let code = LinkCode::parse(code).map_err(|e| Error::Link(LinkFailure::BadCode(e)))?;
        let ws_url = config.websocket_url()?;
        let backend = open_backend(&config).await?;
        // Before any network traffic: an account's store is never taken
        // over. A store whose setup never committed (a crash) is set up
        // again, as a login does.
        let leftover = if Vault::is_initialized(&*backend).await? {
            let vault = Vault::unlock(backend.clone(), password.as_bytes())
                .await
                .map_err(password_error)?;
            if Engine::is_set_up(&vault).await? {
                return Err(Error::Store(StoreError::AlreadyInitialized));
            }
            Some(vault)
        } else {
            None
        };
        let mut link =
            RelayLink::connect(&ws_url, config.tls_roots.as_deref(), config.connect_timeout)
                .await?;
        let joined = rendezvous(&mut link, &code, wait).await;
        link.close().await;
        drop(code);
        let Joined {
            handshake,
            msg2,
            enrolled,
        } = joined?;
        // From here the relay holds this device as current: every failure
        // says so, with its id, so the user removes it on the other device.
        let device = enrolled.device.0;
        let enrolled_not_set_up = |cause: Error| {
            Error::Link(LinkFailure::EnrolledNotSetUp {
                device,
                cause: Box::new(cause),
            })
        };
        let (vault, provisioning) = set_up_enrolled(
            &config, backend, password, leftover, handshake, msg2, &enrolled,
        )
        .await
        .map_err(enrolled_not_set_up)?;
        drop(provisioning);
        let engine = Engine::from_vault(&config, ws_url, vault).await?;
        // As a login does after a restore (12.15), but no session resets:
        // our contacts' sessions with the creator are the creator's.
        // The store is committed: from here the directory is the linked
        // device, so a failure to publish is a warning, not a failed link
        // (an error would tell the user to link again into a store that
        // now refuses it). One-time prekeys are topped up by the
        // connection's maintenance (`maintain` after `QueueEmpty`, and on
        // `PreKeysLow`); the identity and signed prekey are published
        // again only by the next signed-prekey rotation (a password login
        // would take the account over as device 1, 12.17's known limit),
        // so until then contacts cannot start a session with this device.
        let published = match engine.ensure_connected() {
            Ok(()) => engine.publish_keys().await,
            Err(e) => Err(e),
        };
        match published {
            Ok(()) => {
                if let Err(error) = engine.replenish_prekeys().await {
                    tracing::warn!(
                        error = %crate::error::LogSafe(&error),
                        "the linked device's one-time prekeys are not uploaded yet; the \
                         connection's maintenance tops them up"
                    );
                }
                if let Err(error) = engine.publish_kem_prekeys_at_setup().await {
                    tracing::warn!(
                        error = %crate::error::LogSafe(&error),
                        "the linked device's ML-KEM prekeys are not uploaded yet; the \
                         connection's maintenance publishes them"
                    );
                }
            }
            Err(error) => tracing::warn!(
                error = %crate::error::LogSafe(&error),
                "the linked device is set up, but its keys are not published yet; contacts \
                 cannot start a session with it until the next signed-prekey rotation \
                 publishes them"
            ),
        }
        tracing::info!(
            device = enrolled.device.0,
            "this data directory is now a linked device of the account"
        );
        Ok(Client { inner: engine })
    }
}

/// Joins the ticket, posts msg1, and polls until the enrolment came (or
/// `wait` passed), keeping the creator's answer.
async fn rendezvous(
    link: &mut RelayLink,
    code: &LinkCode,
    wait: Duration,
) -> Result<Joined, Error> {
    let ticket: LinkTicketId = code.ticket();
    let deadline = tokio::time::Instant::now() + wait;
    let no_answer = || Error::Link(LinkFailure::NoAnswer(wait));
    // Every request is bounded by the wait (a relay that stops answering
    // mid-call is the same as a creator that never answers).
    into_result(call_until(link, Request::LinkJoin { ticket }, deadline, wait).await?)
        .map_err(rendezvous_error)?;
    let (handshake, msg1) = JoinerHandshake::start(code, &mut OsRng);
    into_result(
        call_until(
            link,
            Request::LinkPost {
                ticket,
                payload: msg1,
            },
            deadline,
            wait,
        )
        .await?,
    )
    .map_err(rendezvous_error)?;
    let mut msg2: Option<Vec<u8>> = None;
    loop {
        let held = u32::from(msg2.is_some());
        let fetched = into_result(
            call_until(
                link,
                Request::LinkFetch {
                    ticket,
                    after: held,
                },
                deadline,
                wait,
            )
            .await?,
        )
        .map_err(rendezvous_error)
        // The limits of 9.9 before anything of the answer is read.
        .and_then(within_limits);
        let pause = match fetched {
            Ok(Response::LinkMessages { messages, enrolled }) => {
                if msg2.is_none() {
                    // The creator posts its answer once; later posts are
                    // not read.
                    msg2 = messages.into_iter().next().map(|m| m.0);
                }
                if let Some(enrolled) = enrolled {
                    return Ok(Joined {
                        handshake,
                        msg2,
                        enrolled,
                    });
                }
                POLL_INTERVAL
            }
            Ok(other) => return Err(unexpected("LinkMessages", &other)),
            // The relay refused the creator's enrolment of this device
            // (the account has its 8 devices, 15.6): said now, not after
            // the wait.
            Err(Error::Relay {
                code: ErrorCode::LimitExceeded,
                ..
            }) => return Err(Error::Link(LinkFailure::DeviceLimit)),
            // Over the fetch budget: the ticket stays (15.6), so wait as
            // asked and poll again.
            Err(e) => rate_limited_wait(&e).ok_or(e)?,
        };
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(no_answer());
        }
        tokio::time::sleep(pause).await;
    }
}

/// `link.call(request)`, given up (as [`LinkFailure::NoAnswer`]) a
/// [`CALL_MARGIN`] after `deadline`.
async fn call_until(
    link: &mut RelayLink,
    request: Request,
    deadline: tokio::time::Instant,
    wait: Duration,
) -> Result<Response, Error> {
    tokio::time::timeout_at(deadline + CALL_MARGIN, link.call(request))
        .await
        .map_err(|_| Error::Link(LinkFailure::NoAnswer(wait)))?
}

/// Opens the answer, checks it against the enrolment, downloads the
/// snapshot and sets the store up: everything after the relay enrolled
/// this device, whose failures the caller marks as such.
async fn set_up_enrolled(
    config: &ClientConfig,
    backend: std::sync::Arc<dyn crate::store::ClientStore>,
    password: &str,
    leftover: Option<Vault>,
    handshake: JoinerHandshake,
    msg2: Option<Vec<u8>>,
    enrolled: &LinkEnrolled,
) -> Result<(std::sync::Arc<Vault>, Provisioning), Error> {
    // The relay enrols only after the creator answered, and the answer
    // comes in the same or an earlier fetch.
    let Some(msg2) = msg2 else {
        return Err(Error::Link(LinkFailure::Inconsistent(
            "the relay enrolled this device before the other device answered",
        )));
    };
    let provisioning = handshake
        .finish(&msg2)
        .map_err(|e| Error::Link(LinkFailure::AnswerUnopenable(e)))?;
    if enrolled.account != provisioning.account {
        return Err(Error::Link(LinkFailure::Inconsistent(
            "the relay enrolled this device in another account than the one provisioned",
        )));
    }
    let contents = match &provisioning.snapshot {
        Some(pointer) => Some(
            download_snapshot(
                &config.server_url,
                config.tls_roots.clone(),
                pointer,
                &provisioning.account,
                &provisioning.identity.public(),
            )
            .await?,
        ),
        None => None,
    };
    let vault = match leftover {
        Some(vault) if vault.owner() == provisioning.account => vault,
        Some(_) => return Err(Error::Store(StoreError::AlreadyInitialized)),
        None => {
            Vault::create(
                backend,
                password.as_bytes(),
                config.kdf,
                provisioning.account,
                &mut OsRng,
            )
            .await?
        }
    };
    let vault = set_up(vault, &provisioning, enrolled, contents.as_ref()).await?;
    Ok((vault, provisioning))
}

/// Sets the new store up in one transaction (see the module docs) and
/// returns it. A crash before the commit leaves a store with no account
/// record, which the next `link_accept` or `login` sets up again.
async fn set_up(
    vault: Vault,
    provisioning: &Provisioning,
    enrolled: &LinkEnrolled,
    contents: Option<&BackupContents>,
) -> Result<std::sync::Arc<Vault>, Error> {
    let vault = std::sync::Arc::new(vault);
    let token = TokenRecord {
        token: *enrolled.token.expose_secret(),
        expires_at: enrolled.expires_at,
    };
    let mut txn = Txn::new();
    Engine::initial_records(
        &vault,
        &mut txn,
        &provisioning.identity,
        &provisioning.username,
        enrolled.device,
        provisioning.account,
        &token,
    )?;
    drop(token);
    let backup = BackupManager::new(vault.clone());
    if let Some(contents) = contents {
        let names = NameBook::new(vault.clone());
        let groups = GroupManager::new(vault.clone());
        let done =
            backup.restore_into(&mut txn, contents, &provisioning.account, &names, &groups)?;
        if done.skipped_groups > 0 {
            tracing::warn!(
                skipped = done.skipped_groups,
                "groups of the linked account whose log does not load were not restored"
            );
        }
        tracing::info!(
            contacts = done.contacts,
            groups = done.groups,
            "contacts and groups of the linked account restored"
        );
    }
    if let Some(key) = &provisioning.export_key {
        // The backup is the account's, sealed under the password's key:
        // this device keeps it up too. With no acknowledged seq its first
        // upload meets the relay's copy (409) and merges with it (12.15).
        let state = BackupState {
            export_key: ExportKey::from_array(key),
            acked_seq: None,
            acked_digest: None,
        };
        backup.put_state(&mut txn, &state)?;
    }
    drop(backup);
    vault.commit(txn).await?;
    Ok(vault)
}
