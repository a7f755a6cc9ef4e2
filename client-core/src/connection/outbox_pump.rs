//! The outbox pump: the task that sends queued envelopes while the
//! connection is up, and pauses with jittered backoff when the relay or the
//! link refuses (PROTOCOL.md 12.4).
//!
//! Must never: send while not connected, or retry sooner than the relay's
//! own `retry_after_secs` hint (9.6).

use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::rngs::OsRng;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::engine::Engine;
use crate::{ConnectionState, Error};

pub(super) async fn outbox_pump(engine: Weak<Engine>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let Some(wake_signal) = engine.upgrade().map(|e| e.outbox_wake.clone()) else {
        return;
    };
    loop {
        let wake = tokio::select! {
            _ = wake_signal.notified() => true,
            _ = stop.changed() => false,
        };
        if !wake || *stop.borrow() {
            break;
        }
        let Some(strong) = engine.upgrade() else {
            break;
        };
        if *strong.conn_state.borrow() != ConnectionState::Connected {
            // The socket task wakes us again once connected.
            continue;
        }
        match strong.pump_outbox().await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                tracing::debug!(error = %crate::error::LogSafe(&e), "outbox paused");
                // The relay's own hint (9.6: no sooner than
                // `retry_after_secs`) bounds the backoff from below.
                let delay = backoff.next_delay(&mut OsRng).max(relay_retry_after(&e));
                let weak = Arc::downgrade(&strong);
                drop(strong);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(engine) = weak.upgrade() {
                        engine.outbox_wake.notify_one();
                    }
                });
            }
        }
    }
}

/// How long a relay reply asked us to wait before sending again (zero if
/// it gave no hint).
fn relay_retry_after(error: &Error) -> Duration {
    match error {
        Error::Relay {
            retry_after_secs: Some(secs),
            ..
        } => Duration::from_secs(u64::from(*secs)),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_protocol::wire::ErrorCode;

    #[test]
    fn a_relay_hint_bounds_the_outbox_backoff_from_below() {
        let hinted = Error::relay(ErrorCode::Internal, "database unavailable".into(), Some(3));
        assert_eq!(relay_retry_after(&hinted), Duration::from_secs(3));
        let plain = Error::relay(ErrorCode::RateLimited, "slow down".into(), None);
        assert_eq!(relay_retry_after(&plain), Duration::ZERO);
        assert_eq!(
            relay_retry_after(&Error::Timeout(Duration::from_secs(1))),
            Duration::ZERO
        );
    }
}
