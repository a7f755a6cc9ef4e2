//! The creator's side of linking a device (docs/PROTOCOL.md §15.6, §15.7,
//! §12.17), on the live connection of a device of the account:
//! `LinkCreate`, the code to show, then (awaited separately, so an
//! interface shows the code before it waits) the joiner's first message,
//! the provisioning sealed to it, `LinkEnrol`, and the signed device list
//! with the new device.
//!
//! Must never: send anything to a joiner whose first message does not
//! open under the code (the snapshot's key and the identity travel only
//! inside the answer to a message that did), answer more than one joiner
//! per code, or keep the code after the invite is done.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::link::{CreatorHandshake, LinkCode, LinkError, Provisioning};
use umbra_protocol::wire::{
    ErrorCode, LinkTicketId, Request, Response, LINK_TICKET_TTL_SECS, MAX_DEVICES_PER_ACCOUNT,
};
use zeroize::Zeroizing;

use super::snapshot::upload_snapshot;
use super::{rate_limited_wait, rendezvous_error, LinkFailure, CALL_MARGIN, POLL_INTERVAL};
use crate::devices::within_limits;
use crate::engine::{clone_identity, now_secs, Engine};
use crate::error::unexpected;
use crate::{Client, Error};

/// A link code waiting for a device to join: show [`LinkInvite::code`],
/// then await [`LinkInvite::complete`]. Dropping it abandons the link (the
/// relay lets the ticket expire). `Debug` shows nothing of the code.
pub struct LinkInvite {
    engine: Arc<Engine>,
    code: LinkCode,
    text: Zeroizing<String>,
    ticket: LinkTicketId,
    expires_at: u64,
    /// When the wait ends: the ticket's expiry, measured on our clock.
    deadline: tokio::time::Instant,
    waits: Duration,
}

impl std::fmt::Debug for LinkInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkInvite")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts linking a new device to this account (docs/PROTOCOL.md
    /// §15.6): asks the relay for a rendezvous and makes the link code.
    /// Show [`LinkInvite::code`] to the user (the new device runs
    /// [`Client::link_accept`] with it), then await
    /// [`LinkInvite::complete`], which provisions the device that proves
    /// the code and returns its device id.
    ///
    /// Fails with [`Error::Relay`] `RateLimited` while the account holds
    /// four unexpired codes, and [`LinkFailure::DeviceLimit`] before any
    /// code is made while it has eight devices.
    pub async fn link_device(&self) -> Result<LinkInvite, Error> {
        let engine = &self.inner;
        engine.check_open()?;
        engine.ensure_connected()?;
        // An account at its device limit would have the new device receive
        // the identity and then not be enrolled: say so before any code.
        // (The relay's enrolment check still decides a race.)
        let listed = within_limits(engine.request(Request::ListDevices).await?)?;
        let Response::Devices { devices } = listed else {
            return Err(unexpected("Devices", &listed));
        };
        if devices.len() >= MAX_DEVICES_PER_ACCOUNT {
            return Err(Error::Link(LinkFailure::DeviceLimit));
        }
        let response = engine.request(Request::LinkCreate).await?;
        let Response::LinkTicket { ticket, expires_at } = response else {
            return Err(unexpected("LinkTicket", &response));
        };
        let code = LinkCode::generate(ticket, &mut OsRng);
        let text = code.to_text();
        // The relay's expiry, as a wait on our clock (never more than the
        // ticket's lifetime, whatever the two clocks say).
        let left = expires_at
            .saturating_sub(now_secs())
            .min(LINK_TICKET_TTL_SECS);
        let waits = Duration::from_secs(left);
        Ok(LinkInvite {
            engine: engine.clone(),
            code,
            text,
            ticket,
            expires_at,
            deadline: tokio::time::Instant::now() + waits,
            waits,
        })
    }
}

impl LinkInvite {
    /// The link code to show (77 base32 characters; also as a QR code).
    pub fn code(&self) -> &str {
        &self.text
    }

    /// When the code expires (Unix seconds, the relay's clock).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Waits (until the code expires, at most five minutes) for a device
    /// to join, and provisions it if its first message proves the code:
    /// the account, username and identity, the export key if this store
    /// holds one, and a snapshot of the contacts and groups (never a
    /// session). Then enrols it and publishes the account's device list
    /// with it. Returns the new device's id.
    ///
    /// Fails with [`LinkFailure::NotProven`] (nothing sent) when the
    /// joiner's message does not open, and [`LinkFailure::NoJoiner`] when
    /// nobody joined in time.
    pub async fn complete(self) -> Result<u32, Error> {
        let msg1 = self.first_post().await?;
        let engine = &self.engine;
        let provisioning = self.provisioning().await?;
        let msg2 = CreatorHandshake::new(&self.code)
            .answer(&msg1, &provisioning, &mut OsRng)
            .map_err(|e| Error::Link(answer_failure(e)))?;
        drop(provisioning);
        engine
            .request(Request::LinkPost {
                ticket: self.ticket,
                payload: msg2,
            })
            .await
            .map_err(rendezvous_error)?;
        let response = engine
            .request(Request::LinkEnrol {
                ticket: self.ticket,
            })
            .await
            .map_err(|e| match e {
                Error::Relay {
                    code: ErrorCode::LimitExceeded,
                    ..
                } => Error::Link(LinkFailure::DeviceLimit),
                other => rendezvous_error(other),
            })?;
        let Response::DeviceEnrolled { device } = response else {
            return Err(unexpected("DeviceEnrolled", &response));
        };
        tracing::info!(device = device.0, "a new device was linked to the account");
        // The relay holds the device as current now: a list not published
        // names it, so the user can publish it later (Client::list_device).
        engine.add_own_device(device).await.map_err(|cause| {
            Error::Link(LinkFailure::EnrolledNotListed {
                device: device.0,
                cause: Box::new(cause),
            })
        })?;
        Ok(device.0)
    }

    /// The joiner's first post, polled for about once a second until the
    /// code expires. Each request is bounded by the expiry too, and a
    /// `RateLimited` fetch waits as asked and polls again (15.6: the
    /// ticket stays).
    async fn first_post(&self) -> Result<Vec<u8>, Error> {
        let no_joiner = || Error::Link(LinkFailure::NoJoiner(self.waits));
        loop {
            // The limits of 9.9 (at most 4 posts of 32 KiB) before anything
            // of the answer is read.
            let fetch = self.engine.request(Request::LinkFetch {
                ticket: self.ticket,
                after: 0,
            });
            let response = tokio::time::timeout_at(self.deadline + CALL_MARGIN, fetch)
                .await
                .map_err(|_| no_joiner())?
                .and_then(within_limits);
            let pause = match response {
                Ok(Response::LinkMessages { mut messages, .. }) if !messages.is_empty() => {
                    // One joiner per ticket (the relay binds it once): its
                    // first post is msg1; any later one is not looked at.
                    return Ok(std::mem::take(&mut messages[0].0));
                }
                Ok(Response::LinkMessages { .. }) => POLL_INTERVAL,
                Ok(other) => return Err(unexpected("LinkMessages", &other)),
                // Expired while we waited.
                Err(Error::Relay {
                    code: ErrorCode::UnknownExchange,
                    ..
                }) => return Err(no_joiner()),
                Err(e) => rate_limited_wait(&e).ok_or(e)?,
            };
            if tokio::time::Instant::now() + pause >= self.deadline {
                return Err(no_joiner());
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// What the new device receives: who the account is, its identity and
    /// export key, and the snapshot uploaded now (its key is only in here).
    async fn provisioning(&self) -> Result<Provisioning, Error> {
        let engine = &self.engine;
        let me = engine.me();
        let token = engine
            .token()
            .await?
            .ok_or_else(|| Error::NotLoggedIn {
                reason: "no session token in this data directory".into(),
            })?
            .session_token();
        let export_key = engine
            .backup
            .state()
            .await?
            .map(|state| state.export_key.to_zeroizing());
        let snapshot = upload_snapshot(engine, &token).await?;
        Ok(Provisioning {
            account: me.account,
            username: me.username,
            identity: clone_identity(&engine.identity)?,
            export_key,
            snapshot: Some(snapshot),
        })
    }
}

/// What a failed answer means: a joiner's message that does not open (or
/// is no msg1 at all, or makes an all-zero exchange) did not prove the
/// code; anything else is this device's provisioning.
fn answer_failure(error: LinkError) -> LinkFailure {
    match error {
        LinkError::JoinerMessageRefused
        | LinkError::MessageLength { .. }
        | LinkError::MessageType { .. }
        | LinkError::NonContributory => LinkFailure::NotProven,
        other => LinkFailure::Provisioning(other),
    }
}
