//! The epoch publisher: every `kt_epoch_interval`, on every node, one
//! [`KtDirectory::round`]: catch up with epochs other nodes published, and
//! publish the next epoch when a label changed.
//!
//! What it costs each node: one cheap read (`kt_status`: the newest epoch
//! and whether anything is pending) per interval when idle; when another
//! node published, reading that epoch's versions and re-hashing their
//! paths in the node's own map; when something is pending, the publishing
//! transaction (the publisher row's lock, the reads, one VRF evaluation per
//! changed label, one path re-hash each, one signature). The lock makes the
//! nodes publish one after the other, each on the epoch before it, so the
//! chain is one whichever node publishes.
//!
//! Must never: stop on a store error (it logs and tries again next round),
//! or publish when nothing changed (a round with nothing pending writes
//! nothing).

use std::sync::Arc;
use std::time::Duration;

use super::directory::{KtDirectory, Round};
use crate::shutdown::ShutdownSignal;
use crate::store::SharedStore;

/// The default `kt_epoch_interval`.
pub const DEFAULT_EPOCH_INTERVAL: Duration = Duration::from_secs(1);

/// Runs rounds every `interval` until shutdown.
pub async fn run(
    directory: Arc<KtDirectory>,
    store: SharedStore,
    interval: Duration,
    mut shutdown: ShutdownSignal,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticker.tick() => match directory.round(&store).await {
                Ok(Round::Published(epoch)) => tracing::debug!(epoch, "kt: epoch published"),
                Ok(Round::CaughtUp(epoch)) => tracing::debug!(epoch, "kt: caught up"),
                Ok(Round::Idle) => {}
                Err(error) => tracing::warn!(%error, "kt: publishing round failed"),
            },
        }
    }
}
