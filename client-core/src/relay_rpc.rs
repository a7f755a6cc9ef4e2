//! The relay connection as the engine sees it: starting and stopping the
//! background connection, waiting for it, and request/response calls over
//! it with their timeouts.
//!
//! Must never: start a connection from a background task (only the public
//! entry points do), or wait for an answer without a timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use umbra_protocol::wire::{Request, Response};

use crate::connection::{ConnectionHandle, Outgoing};
use crate::engine::{lock, Engine};
use crate::failure::ConnectionFailure;
use crate::relay_link::into_result;
use crate::{ConnectionState, Error};

/// A request waits for the connection to come up for the engine's
/// `connect_timeout` plus this margin for authenticating after the socket opens.
const AUTH_MARGIN: Duration = Duration::from_secs(2);
/// How long a request waits for its response.
const RESPONSE_WAIT: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts the background connection if it is not running.
    pub(crate) fn ensure_connected(self: &Arc<Self>) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let mut slot = lock(&self.connection);
        if slot.as_ref().is_some_and(|c| !c.is_finished()) {
            return Ok(());
        }
        *slot = Some(ConnectionHandle::spawn(self));
        drop(slot);
        self.start_backup_worker();
        Ok(())
    }

    /// Stops the background connection and waits for its tasks.
    pub(crate) async fn disconnect(&self) {
        // A change not uploaded yet goes now, while the token is good.
        self.stop_backup_worker().await;
        let handle = lock(&self.connection).take();
        if let Some(handle) = handle {
            handle.stop().await;
        }
        self.set_state(ConnectionState::Offline);
    }

    pub(crate) async fn wait_connected(&self) -> Result<(), Error> {
        let mut rx = self.conn_state.subscribe();
        let wait = async {
            loop {
                let state = rx.borrow_and_update().clone();
                if state == ConnectionState::Connected {
                    return Ok(());
                }
                if let Some(reason) = state.ended_because() {
                    return Err(self.connection_ended(reason));
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        tokio::time::timeout(self.connect_timeout.saturating_add(AUTH_MARGIN), wait)
            .await
            .map_err(|_| Error::Connection(ConnectionFailure::Unreachable))?
    }

    /// Waits until the connection started by [`Engine::ensure_connected`]
    /// authenticates (`true`), or until it is clear the relay cannot be
    /// reached right now: the attempt failed, the connection ended, or
    /// the connect timeout passed (`false`). Never starts a connection.
    pub(crate) async fn relay_reachable(&self) -> bool {
        if lock(&self.connection)
            .as_ref()
            .is_none_or(|c| c.is_finished())
        {
            return false;
        }
        let mut rx = self.conn_state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    ConnectionState::Connected => return true,
                    // Not started yet, or the first attempt is under way.
                    ConnectionState::Offline | ConnectionState::Connecting => {}
                    ConnectionState::Reconnecting { .. }
                    | ConnectionState::Closed { .. }
                    | ConnectionState::Replaced => return false,
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(self.connect_timeout.saturating_add(AUTH_MARGIN), wait)
            .await
            .unwrap_or(false)
    }

    pub(crate) fn sender(&self) -> Result<mpsc::UnboundedSender<Outgoing>, Error> {
        lock(&self.connection)
            .as_ref()
            .map(|c| c.requests.clone())
            .ok_or_else(|| Error::Connection(ConnectionFailure::NotConnected))
    }

    /// Sends a request over the live connection and waits for its answer;
    /// a relay `Error` answer becomes [`Error::Relay`].
    ///
    /// This never starts a connection: background work (maintenance, claim
    /// checks) must not revive a client the user shut down. Public entry
    /// points call [`Engine::ensure_connected`] first.
    pub(crate) async fn request(self: &Arc<Self>, request: Request) -> Result<Response, Error> {
        if lock(&self.connection).is_none() {
            return Err(Error::Connection(ConnectionFailure::NotConnected));
        }
        self.wait_connected().await?;
        let (tx, rx) = oneshot::channel();
        self.sender()?
            .send(Outgoing::Call(request, tx))
            .map_err(|_| Error::Connection(ConnectionFailure::Lost))?;
        let response = tokio::time::timeout(RESPONSE_WAIT, rx)
            .await
            .map_err(|_| Error::Timeout(RESPONSE_WAIT))?
            .map_err(|_| Error::Connection(ConnectionFailure::Lost))??;
        into_result(response)
    }

    /// Sends a request whose answer does not matter (acks, keepalive).
    pub(crate) fn fire(&self, request: Request) {
        if let Ok(sender) = self.sender() {
            let _ = sender.send(Outgoing::Fire(request));
        }
    }
}
