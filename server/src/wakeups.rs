//! Turns the store's notifications into actions on this node's connections:
//! queue events wake delivery loops, and control events (see `control`)
//! close connections whose token was revoked or whose device authenticated
//! again, on whichever node that happened.
//!
//! On SQLite both subscriptions are local; on PostgreSQL they carry
//! LISTEN/NOTIFY events from every node, this one included, so one code path
//! serves one node and many. A `Resync` (the listener reconnected) or a
//! lagged subscription means events may have been missed: every connection
//! on this node is woken to re-read its queue, and every connection's token
//! is re-checked against the store (not assumed still valid), at most once
//! per [`RESYNC_MIN_INTERVAL`] (later ones are merged into one).
//!
//! Control payloads are verified with the relay's control key before
//! anything is done with them; one that fails (forged, mangled, stale, a
//! replayed announcement) is dropped and counted, never acted on.
//!
//! Must never: read message contents, close a connection whose token the
//! store still holds valid because of a revocation event (a revocation only
//! triggers a re-check), or stop while the relay runs (a closed subscription
//! is logged and the relay falls back to periodic wake-ups and re-checks).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use umbra_wire::{AccountId, Address, ErrorCode};

use crate::app::AppState;
use crate::auth::tokens::{unix_now, TokenHash};
use crate::control::{ConnectionNonce, ControlEvent, ControlNotice, ANNOUNCEMENT_MAX_AGE};
use crate::hub::{Live, Registration};
use crate::shutdown::ShutdownSignal;
use crate::store::{QueueEvent, TokenStatus};

/// Without a working subscription, wake (and re-check) everyone this often.
const FALLBACK_WAKE: Duration = Duration::from_secs(5);
/// Token re-checks in flight at once, so a resync of thousands of
/// connections takes a fraction of a second without flooding the pool.
const RECHECK_CONCURRENCY: usize = 8;
/// A re-check the store could not answer is tried again after this long
/// (the connection's own periodic re-check is the backstop beyond that).
const RECHECK_RETRY: Duration = Duration::from_secs(1);
/// Full re-checks (every token on this node) start at most this often, so
/// a listener that keeps reconnecting, or a subscription lagging under a
/// NOTIFY flood, cannot keep the database busy; missed events wait at most
/// this long beyond the reconnect.
pub const RESYNC_MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Why a connection closed by a re-check is told `TokenExpired`.
pub const REVOKED_REASON: &str = "token revoked: logged out everywhere or account deleted";
/// Why a connection whose token expired is closed by a re-check.
const EXPIRED_REASON: &str = "token expired; log in again";

/// Registers an authenticated connection on this node and announces it to
/// every node, so an older connection for the same device on another node
/// is replaced (this node's own older one is replaced by the hub at once).
pub async fn connect(
    state: &AppState,
    address: Address,
    connection: u64,
    token: TokenHash,
) -> Registration {
    let registration = state.hub.register(address, connection, token);
    let event = ControlEvent::Authenticated {
        address,
        nonce: registration.nonce,
        sent: unix_now(),
    };
    let payload = state.control_key.seal(&event);
    // Bounded: this runs on the connection's own loop.
    let published = tokio::time::timeout(
        crate::commands::CONNECTION_STORE_DEADLINE,
        state.store.publish_control(payload),
    )
    .await;
    if !matches!(published, Ok(Ok(()))) {
        let error = match published {
            Ok(Err(error)) => error.to_string(),
            _ => "no answer from the store".to_owned(),
        };
        tracing::warn!(
            %error,
            "cannot announce a new connection to other nodes; an older one there is not replaced"
        );
        state.hub.announcement_failed(address, registration.nonce);
    }
    registration
}

/// After the store revoked tokens of `account` (log out everywhere, account
/// deletion): closes the account's connections on this node except `keep`
/// at once, and tells every node to re-check that account's connections.
pub async fn revoked(
    state: &AppState,
    account: AccountId,
    keep: Option<u64>,
    reason: &'static str,
) {
    state
        .hub
        .close_account(account, keep, ErrorCode::TokenExpired, reason);
    let payload = state.control_key.seal(&ControlEvent::Revoked { account });
    if let Err(error) = state.store.publish_control(payload).await {
        tracing::error!(
            %error,
            "cannot announce a revocation to other nodes; their connections close at their next token re-check"
        );
    }
}

/// After the store removed `device` (PROTOCOL.md 15.5): closes its
/// connection on this node at once, and tells every node to re-check the
/// account's connections, as a logout everywhere does; there the removed
/// device's token is found gone, so its connection closes and the others
/// stay.
pub async fn device_removed(state: &AppState, device: Address, reason: &'static str) {
    state
        .hub
        .close_address(device, ErrorCode::TokenExpired, reason);
    let payload = state.control_key.seal(&ControlEvent::Revoked {
        account: device.account,
    });
    if let Err(error) = state.store.publish_control(payload).await {
        tracing::error!(
            %error,
            "cannot announce a device removal to other nodes; its connections there close at their next token re-check"
        );
    }
}

/// Runs until shutdown.
pub async fn run(state: AppState, shutdown: ShutdownSignal) {
    tokio::join!(
        run_queue(state.clone(), shutdown.clone()),
        run_control(state, shutdown)
    );
}

async fn run_queue(state: AppState, mut shutdown: ShutdownSignal) {
    let mut events = state.store.subscribe();
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            event = events.recv() => match event {
                Ok(QueueEvent::Enqueued { recipient, seq }) => state.hub.wake_for(recipient, seq),
                Ok(QueueEvent::Resync) | Err(RecvError::Lagged(_)) => state.hub.wake_all(),
                Err(RecvError::Closed) => {
                    tracing::error!("store notifications closed; falling back to periodic wake-ups");
                    break;
                }
            },
        }
    }
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(FALLBACK_WAKE) => state.hub.wake_all(),
        }
    }
}

async fn run_control(state: AppState, mut shutdown: ShutdownSignal) {
    let mut events = state.store.subscribe_control();
    // Connections whose re-check failed on a store error, tried again later.
    let mut retry: Vec<Live> = Vec::new();
    let mut retry_at = Instant::now();
    let mut seen = SeenAnnouncements::default();
    // When the last full re-check started, and whether one is owed.
    let mut last_resync: Option<Instant> = None;
    let mut resync_owed = false;
    loop {
        let due = async {
            if retry.is_empty() {
                std::future::pending().await
            } else {
                tokio::time::sleep_until(retry_at).await
            }
        };
        let resync_at = last_resync.map(|at| at + RESYNC_MIN_INTERVAL);
        let owed = async {
            match resync_at {
                Some(at) if resync_owed => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        let checks = tokio::select! {
            () = shutdown.wait() => return,
            () = due => std::mem::take(&mut retry),
            () = owed => {
                resync_owed = false;
                last_resync = Some(Instant::now());
                resync(&state)
            }
            notice = events.recv() => match notice {
                Ok(ControlNotice::Payload(payload)) => match state.control_key.open(&payload) {
                    Ok(ControlEvent::Authenticated { address, nonce, sent }) => {
                        if seen.fresh(nonce, sent, unix_now()) {
                            state.hub.announced(address, nonce);
                        } else {
                            refused(&state);
                        }
                        continue;
                    }
                    Ok(ControlEvent::Revoked { account }) => state.hub.live(Some(account)),
                    Err(_) => {
                        refused(&state);
                        continue;
                    }
                },
                Ok(ControlNotice::Resync) | Err(RecvError::Lagged(_)) => {
                    if resync_at.is_some_and(|at| Instant::now() < at) {
                        resync_owed = true;
                        continue;
                    }
                    last_resync = Some(Instant::now());
                    resync(&state)
                }
                Err(RecvError::Closed) => {
                    tracing::error!(
                        "control notifications closed; falling back to periodic token re-checks"
                    );
                    break;
                }
            },
        };
        let failed = recheck(&state, checks).await;
        if !failed.is_empty() && retry.is_empty() {
            retry_at = Instant::now() + RECHECK_RETRY;
        }
        retry.extend(failed);
    }
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(FALLBACK_WAKE) => {
                state.hub.resync_announcements();
                let _ = recheck(&state, state.hub.live(None)).await;
            }
        }
    }
}

/// Every connection on this node, to re-check, after announcements and
/// revocations may have been missed.
fn resync(state: &AppState) -> Vec<Live> {
    state
        .metrics
        .control_resyncs
        .fetch_add(1, Ordering::Relaxed);
    state.hub.resync_announcements();
    state.hub.live(None)
}

/// A control payload was dropped; its contents are not logged (they name
/// an account).
fn refused(state: &AppState) {
    state
        .metrics
        .control_refused
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!("dropped a control payload that did not verify");
}

/// Nonces of the announcements accepted within [`ANNOUNCEMENT_MAX_AGE`],
/// so a replay of one is refused; older ones are refused by age. Holds at
/// most the authenticated announcements of that window (forged ones never
/// get here).
#[derive(Default)]
struct SeenAnnouncements(HashMap<ConnectionNonce, u64>);

impl SeenAnnouncements {
    /// Whether an announcement sent at `sent` with `nonce` is acceptable at
    /// `now`; records it if so.
    fn fresh(&mut self, nonce: ConnectionNonce, sent: u64, now: u64) -> bool {
        let oldest = now.saturating_sub(ANNOUNCEMENT_MAX_AGE);
        // A little future skew is tolerated like past skew.
        if sent < oldest || sent > now.saturating_add(ANNOUNCEMENT_MAX_AGE) {
            return false;
        }
        self.0.retain(|_, at| *at >= oldest);
        self.0.insert(nonce, sent).is_none()
    }
}

/// Checks each connection's token against the store and closes those no
/// longer valid for their device; returns the ones the store could not
/// answer for.
async fn recheck(state: &AppState, connections: Vec<Live>) -> Vec<Live> {
    futures_util::stream::iter(connections)
        .map(|live| async move {
            match state.store.token_status(&live.token.0, unix_now()).await {
                Ok(TokenStatus::Valid(address)) if address == live.address => None,
                Ok(TokenStatus::Expired(address)) if address == live.address => {
                    close(state, live, EXPIRED_REASON);
                    None
                }
                Ok(_) => {
                    close(state, live, REVOKED_REASON);
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot re-check a connection's token; retrying");
                    Some(live)
                }
            }
        })
        .buffer_unordered(RECHECK_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

fn close(state: &AppState, live: Live, reason: &'static str) {
    tracing::debug!("closing a connection whose token is no longer valid");
    state.hub.close_connection(
        live.address,
        live.connection,
        ErrorCode::TokenExpired,
        reason,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_is_accepted_once_and_only_while_fresh() {
        let mut seen = SeenAnnouncements::default();
        let now = 1_700_000_000;
        let nonce = ConnectionNonce::random();
        assert!(seen.fresh(nonce, now - 2, now), "a fresh announcement");
        assert!(!seen.fresh(nonce, now - 2, now), "its replay");
        assert!(
            !seen.fresh(
                ConnectionNonce::random(),
                now - ANNOUNCEMENT_MAX_AGE - 1,
                now
            ),
            "one older than the window"
        );
        assert!(
            !seen.fresh(
                ConnectionNonce::random(),
                now + ANNOUNCEMENT_MAX_AGE + 1,
                now
            ),
            "one from too far in the future"
        );
        // Past the window the nonce is forgotten, and refused by age.
        let later = now + ANNOUNCEMENT_MAX_AGE + 1;
        assert!(seen.fresh(ConnectionNonce::random(), later, later));
        assert_eq!(seen.0.len(), 1, "expired nonces are dropped");
        assert!(!seen.fresh(nonce, now - 2, later));
    }
}
