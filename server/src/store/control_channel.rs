//! The control channel role: how one relay node tells every node sharing
//! this store about revocations and new connections (the events themselves
//! and their payloads are defined in `crate::control`).
//!
//! Must never: carry anything but what `crate::control` puts in a payload,
//! or be trusted to arrive (subscribers resync on a gap).

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::control::{ControlNotice, SealedPayload};

use super::StoreError;

/// Cross-node control notifications.
#[async_trait]
pub trait ControlChannel: Send + Sync + 'static {
    /// Tells every node sharing this store, this one included, about a
    /// revocation or a new connection (PostgreSQL: a NOTIFY on
    /// [`crate::control::CONTROL_CHANNEL`]; SQLite: the in-process bus).
    /// Best effort, like every notification: a node that may have missed
    /// events receives [`ControlNotice::Resync`]. Only payloads sealed by
    /// the relay's control key are published.
    async fn publish_control(&self, payload: SealedPayload) -> Result<(), StoreError>;

    /// Control payloads from every node sharing this store (and from
    /// anyone else who can NOTIFY: subscribers verify them). A
    /// `RecvError::Lagged` must be treated like [`ControlNotice::Resync`].
    fn subscribe_control(&self) -> broadcast::Receiver<ControlNotice>;
}
