//! Turns the store's queue notifications into wake-ups of connected devices.
//!
//! On SQLite the store's subscription is local; on PostgreSQL it carries
//! LISTEN/NOTIFY events from every node. A `Resync` (the listener
//! reconnected) or a lagged subscription means events may have been missed,
//! so every connection on this node is woken to re-read its queue.
//!
//! Must never: read message contents, or stop while the relay runs (a
//! closed subscription is logged and the relay falls back to waking
//! everyone periodically).

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::shutdown::ShutdownSignal;
use crate::store::QueueEvent;

/// Without a working subscription, wake everyone this often.
const FALLBACK_WAKE: Duration = Duration::from_secs(5);

/// Runs until shutdown.
pub async fn run(state: AppState, mut shutdown: ShutdownSignal) {
    let mut events = state.store.subscribe();
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            event = events.recv() => match event {
                Ok(QueueEvent::Enqueued { recipient, .. }) => state.hub.wake(recipient),
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
