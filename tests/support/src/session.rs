//! A registered, logged-in, authenticated connection: what most relay
//! suites start from.
//!
//! Must never: keep a connection open that the suite did not ask for (the
//! registering connection is closed before the login).

use umbra_wire::{AccountId, Address, SessionToken};

use crate::wire_client::{WireClient, WireClientError};

/// A registered, logged-in, authenticated connection: what most suites
/// start from.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub client: WireClient,
    /// The account.
    pub account: AccountId,
    /// Its primary-device address.
    pub address: Address,
    /// The token it authenticated with.
    pub token: SessionToken,
    /// The username registered.
    pub username: String,
}

impl Session {
    /// Registers `username` on one connection, then logs in and
    /// authenticates on a second, as a real client does after sign-up.
    pub async fn sign_up(
        ws_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Session, WireClientError> {
        let mut registering = WireClient::connect(ws_url).await?;
        let account = registering.register(username, password).await?;
        registering.close().await;
        let session = Session::log_in(ws_url, username, password).await?;
        if session.account != account {
            return Err(WireClientError::Inconsistent(format!(
                "login returned account {} but registration created {account}",
                session.account
            )));
        }
        Ok(session)
    }

    /// Logs in as an existing user on a new connection and authenticates.
    pub async fn log_in(
        ws_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Session, WireClientError> {
        let mut client = WireClient::connect(ws_url).await?;
        let login = client.login(username, password).await?;
        let address = client.authenticate(&login.token).await?;
        Ok(Session {
            client,
            account: login.account,
            address,
            token: login.token,
            username: username.to_owned(),
        })
    }

    /// A new connection authenticated with the same token (the old
    /// connection, if still open, is replaced by the relay).
    pub async fn reconnect(&self, ws_url: &str) -> Result<WireClient, WireClientError> {
        let mut client = WireClient::connect(ws_url).await?;
        client.authenticate(&self.token).await?;
        Ok(client)
    }
}
