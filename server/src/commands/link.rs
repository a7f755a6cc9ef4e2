//! The link rendezvous (docs/PROTOCOL.md 15.6): an existing device (the
//! creator) opens a ticket, a new device (the joiner) joins it before it
//! has any token, both exchange sealed posts through the store, the
//! creator enrols the joiner as the account's next device, and the
//! joiner's next fetch hands it its first session token.
//!
//! The store enforces what it can see (expiry, one join, the creator's
//! address, the post limits, one enrolment, one token); this module keeps
//! which connection joined a ticket, since only that connection may act as
//! its joiner.
//!
//! Must never: read or log a post or a ticket, let any connection but the
//! joining one act as the joiner, issue a token other than through
//! `finish_link` (which issues one per ticket), or store a raw token.

use rand::rngs::OsRng;
use umbra_wire::{
    Address, ErrorCode, LinkEnrolled, LinkMessage, LinkTicketId, Response, LINK_TICKET_TTL_SECS,
    MAX_DEVICES_PER_ACCOUNT, MAX_LINK_MESSAGES_PER_SIDE, MAX_LINK_TICKETS_PER_ACCOUNT,
};

use super::{ConnectionAuth, Handled, Refusal};
use crate::app::AppState;
use crate::auth::tokens::{self, unix_now};
use crate::store::{LinkLimits, LinkParty, StoreError};

/// The rendezvous bounds of 15.6, for the store.
const LIMITS: LinkLimits = LinkLimits {
    max_tickets_per_account: MAX_LINK_TICKETS_PER_ACCOUNT as u64,
    max_posts_per_side: MAX_LINK_MESSAGES_PER_SIDE as u64,
};

/// The ticket a connection joined, kept on that connection (15.6: the
/// joiner side acts only from the connection that joined it).
#[derive(Clone, Copy)]
pub(super) struct Joined {
    ticket: LinkTicketId,
    /// Unix seconds; the connection is exempt from the authentication
    /// deadline until then (9.10).
    pub(super) expires_at: u64,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ticket is half of the link code: never in a log.
        f.debug_struct("Joined")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `LinkCreate`: a fresh ticket for this device, expiring in
/// `LINK_TICKET_TTL_SECS`.
pub(super) async fn create(state: &AppState, me: Address) -> Handled {
    let ticket = LinkTicketId::random(&mut OsRng);
    let now = unix_now();
    let expires_at = now.saturating_add(LINK_TICKET_TTL_SECS);
    state
        .store
        .create_link_ticket(me, ticket.as_bytes(), now, expires_at, LIMITS)
        .await?;
    Ok(Response::LinkTicket { ticket, expires_at })
}

/// `LinkJoin { ticket }` on an unauthenticated connection.
pub(super) async fn join(
    state: &AppState,
    conn: &mut ConnectionAuth,
    ticket: LinkTicketId,
) -> Handled {
    state.rate_limits.check_link_join(conn.peer)?;
    let now = unix_now();
    state.store.join_link_ticket(ticket.as_bytes(), now).await?;
    // Joined just now, so it is live; its expiry bounds the exemption.
    let expires_at = state
        .store
        .link_ticket(ticket.as_bytes(), now)
        .await?
        .map_or(now, |t| t.expires_at);
    conn.joined = Some(Joined { ticket, expires_at });
    Ok(Response::Ok)
}

/// Who the connection is for `ticket`: the creator if authenticated, the
/// joiner if this connection joined it; anyone else is refused as the store
/// refuses an unknown ticket, so nothing tells them apart.
fn party(conn: &ConnectionAuth, ticket: &LinkTicketId) -> Result<LinkParty, Refusal> {
    if let Some(me) = conn.authenticated() {
        return Ok(LinkParty::Creator(me.address));
    }
    match &conn.joined {
        Some(joined) if joined.ticket == *ticket => Ok(LinkParty::Joiner),
        _ => Err(StoreError::UnknownLinkTicket.into()),
    }
}

/// `LinkPost { ticket, payload }`; the payload's size was checked with the
/// frame.
pub(super) async fn post(
    state: &AppState,
    conn: &ConnectionAuth,
    ticket: LinkTicketId,
    payload: &[u8],
) -> Handled {
    let from = party(conn, &ticket)?;
    state
        .store
        .post_link_message(ticket.as_bytes(), from, payload, unix_now(), LIMITS)
        .await?;
    Ok(Response::Ok)
}

/// `LinkFetch { ticket, after }`: the other side's posts, and for the
/// joiner of an enrolled ticket its device and first token, once; the
/// joiner of a ticket whose enrolment was refused gets `LimitExceeded`.
pub(super) async fn fetch(
    state: &AppState,
    conn: &ConnectionAuth,
    ticket: LinkTicketId,
    after: u32,
) -> Handled {
    // Charged first, as every budget is (PROTOCOL.md 11.7): the creator
    // by its account, the joiner (no account yet) by its source.
    let account = conn.authenticated().map(|me| me.address.account);
    state.rate_limits.check_link_fetch(account, conn.peer)?;
    let to = party(conn, &ticket)?;
    let now = unix_now();
    let messages = state
        .store
        .link_messages(ticket.as_bytes(), to, after, now)
        .await?
        .into_iter()
        .map(LinkMessage)
        .collect();
    let enrolled = match to {
        LinkParty::Joiner => enrolment(state, &ticket, now).await?,
        LinkParty::Creator(_) => None,
    };
    Ok(Response::LinkMessages { messages, enrolled })
}

/// The joiner's token, if the creator enrolled it and none was issued yet.
async fn enrolment(
    state: &AppState,
    ticket: &LinkTicketId,
    now: u64,
) -> Result<Option<LinkEnrolled>, Refusal> {
    let Some(live) = state.store.link_ticket(ticket.as_bytes(), now).await? else {
        return Err(StoreError::UnknownLinkTicket.into());
    };
    if live.refused() {
        // The creator's LinkEnrol was refused for good (15.6): say so to
        // the device that waits for it, as the creator was told.
        return Err(Refusal::new(
            ErrorCode::LimitExceeded,
            format!(
                "the account already has {MAX_DEVICES_PER_ACCOUNT} devices, the most it may \
                 have, so this device was not enrolled; remove one on a current device \
                 (umbra devices, then umbra devices remove ID) and link again"
            ),
        ));
    }
    if live.enrolled.is_none() || live.finished {
        return Ok(None);
    }
    let issued = tokens::issue(&mut OsRng, now, state.limits.token_ttl);
    let finished = state
        .store
        .finish_link(ticket.as_bytes(), &issued.hash.0, issued.expires_at, now)
        .await?;
    Ok(finished.map(|address| LinkEnrolled {
        account: address.account,
        device: address.device,
        token: issued.token,
        expires_at: issued.expires_at,
    }))
}

/// `LinkEnrol { ticket }` from the creator: the account's next device.
pub(super) async fn enrol(state: &AppState, me: Address, ticket: LinkTicketId) -> Handled {
    let device = state
        .store
        .enrol_link_device(me, ticket.as_bytes(), unix_now())
        .await?;
    Ok(Response::DeviceEnrolled { device })
}
