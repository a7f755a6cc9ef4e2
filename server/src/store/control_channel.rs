//! The control channel role: how one relay node tells every node sharing
//! this store about revocations and new connections (the events themselves
//! and their payloads are defined in `crate::control`).
//!
//! Must never: carry anything but what `crate::control` puts in a payload,
//! or be trusted to arrive (subscribers resync on a gap).

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::control::ControlEvent;

use super::StoreError;

/// Cross-node control notifications.
#[async_trait]
pub trait ControlChannel: Send + Sync + 'static {
    /// Tells every node sharing this store, this one included, about a
    /// revocation or a new connection (PostgreSQL: a NOTIFY on
    /// [`crate::control::CONTROL_CHANNEL`]; SQLite: the in-process bus).
    /// Best effort, like every notification: a node that may have missed
    /// events receives [`ControlEvent::Resync`].
    async fn publish_control(&self, event: ControlEvent) -> Result<(), StoreError>;

    /// Control events from every node sharing this store. A
    /// `RecvError::Lagged` must be treated like [`ControlEvent::Resync`].
    fn subscribe_control(&self) -> broadcast::Receiver<ControlEvent>;
}
