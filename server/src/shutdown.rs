//! Graceful shutdown: one signal (SIGTERM or Ctrl-C) fans out to every part
//! of the relay through a watch channel.
//!
//! Order on shutdown: the HTTP server stops accepting; each connection stops
//! reading new requests, lets the request it is handling (for example a Send
//! waiting for its commit) finish and be answered, sends
//! `Closing{ShuttingDown}`, and closes; then the process exits 0.
//!
//! Must never: abort a Send between commit and its acknowledgement, or exit
//! non-zero on a requested shutdown.

use tokio::sync::watch;

/// Sends the shutdown signal.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Waits for the shutdown signal; cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// A linked trigger and signal.
pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

impl ShutdownTrigger {
    /// Tells every holder of a signal to wind down.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// A new signal linked to this trigger.
    pub fn subscribe(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.subscribe())
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (immediately if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which only happens at exit:
        // treat it as shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_signal_sees_the_trigger_even_late_subscribers() {
        let (trigger, mut early) = channel();
        assert!(!early.is_triggered());
        trigger.trigger();
        early.wait().await;
        let mut late = trigger.subscribe();
        assert!(late.is_triggered());
        late.wait().await;
    }
}
