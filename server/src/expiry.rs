//! Periodic housekeeping: purge expired messages, blobs and link tickets
//! (with their posts), and token
//! hashes expired for longer than `EXPIRED_TOKEN_RETENTION`, and sample
//! the queue depth for metrics; idle rate-limit keys are dropped on their
//! own, shorter timer (`rate_limit::SHRINK_INTERVAL`). (Half-finished
//! logins need no sweep: they live on their connection, `auth::phase`.)
//!
//! Must never: delete anything not yet expired, or stop on a store error
//! (it logs and tries again next round).

use std::sync::atomic::Ordering;

use crate::app::AppState;
use crate::auth::tokens::{purge_cutoff, unix_now};
use crate::rate_limit::SHRINK_INTERVAL;
use crate::shutdown::ShutdownSignal;

/// One round of housekeeping; returns the number of rows purged.
pub async fn run_once(state: &AppState) -> u64 {
    let now = unix_now();
    let mut purged = 0;
    match state.store.purge_expired_messages(now).await {
        Ok(n) => purged += n,
        Err(error) => tracing::warn!(%error, "expiry: purging messages failed"),
    }
    match state.store.purge_expired_tokens(purge_cutoff(now)).await {
        Ok(n) => purged += n,
        Err(error) => tracing::warn!(%error, "expiry: purging tokens failed"),
    }
    match state.store.purge_expired_blobs(now).await {
        Ok(n) => purged += n,
        Err(error) => tracing::warn!(%error, "expiry: purging blobs failed"),
    }
    match state.store.purge_expired_link_tickets(now).await {
        Ok(n) => purged += n,
        Err(error) => tracing::warn!(%error, "expiry: purging link tickets failed"),
    }
    match state.store.purge_released_names(now).await {
        Ok(n) => purged += n,
        Err(error) => tracing::warn!(%error, "expiry: purging released names failed"),
    }
    match state.store.total_queued().await {
        Ok(depth) => state
            .metrics
            .queue_depth
            .store(i64::try_from(depth).unwrap_or(i64::MAX), Ordering::Relaxed),
        Err(error) => tracing::warn!(%error, "expiry: reading queue depth failed"),
    }
    state
        .metrics
        .expired_rows
        .fetch_add(purged, Ordering::Relaxed);
    if purged > 0 {
        tracing::info!(purged, "expired rows removed");
    }
    purged
}

/// Runs [`run_once`] every `expiry_interval`, and shrinks the rate limiters
/// every [`SHRINK_INTERVAL`], until shutdown.
pub async fn run(state: AppState, mut shutdown: ShutdownSignal) {
    let mut shrink_stop = shutdown.clone();
    let shrinking = state
        .rate_limits
        .shrink_every(SHRINK_INTERVAL, async move { shrink_stop.wait().await });
    tokio::join!(shrinking, sweep(&state, &mut shutdown));
}

/// The store sweep of [`run`].
async fn sweep(state: &AppState, shutdown: &mut ShutdownSignal) {
    let mut ticker = tokio::time::interval(state.limits.expiry_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticker.tick() => { run_once(state).await; }
        }
    }
}
