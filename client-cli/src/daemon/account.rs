//! The daemon's account methods: `login`, `logout`, `account.delete` and
//! `password.change`,
//! each doing what the command of the same name does, against the
//! daemon's own client and data-dir lock.
//!
//! What the daemon does afterwards is part of the contract (docs/CLI.md):
//! after `logout` and after `account.delete` it stops, once the answer is
//! written. Logging out closes client-core's unlocked client for good, and
//! reopening the store would need the password again; a daemon that stayed
//! would only keep the store's key in memory with nothing to serve, and the
//! next command would have to find out. Stopped, the next `umbra` runs on
//! its own as without a daemon (`whoami` says logged out, `login` asks for
//! the password). `login` keeps the daemon serving, with a new client for
//! the new session: a daemon whose session the relay ended (logged in
//! elsewhere, revoked, or started logged out) resumes without a restart.
//!
//! Must never: delete without `yes: true` (the CLI's `--yes`; an
//! interactive `umbra account delete` asks on its own terminal before it
//! sends that), keep the login password after the call (it lives in a
//! `Zeroizing` buffer and is never logged or echoed), or let two clients
//! use the store at once (login holds the daemon exclusively and shuts the
//! old client down first).

use serde::Deserialize;
use serde_json::Value;
use umbra_client_core::Client;
use zeroize::Zeroizing;

use super::methods::{done, parse, Daemon, MethodError};
use super::protocol::INVALID_PARAMS;
use crate::commands::account::{after_login, delete_client, logout_client};
use crate::commands::password::change_client;
use crate::exit_status::{ExitStatus, Failure};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogoutParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteParams {
    /// Must be `true`: the CLI's `--yes`.
    yes: Option<bool>,
}

impl Daemon {
    /// `login {username, password}`: `umbra login` with the daemon's data
    /// directory. Runs with the daemon held exclusively (see `call`).
    pub(super) async fn login(&self, mut params: Value) -> Result<Value, MethodError> {
        // Taken out of the JSON value by move, so the only copy of the
        // password is this buffer, wiped on drop.
        let password = match params.get_mut("password").map(Value::take) {
            Some(Value::String(text)) => Zeroizing::new(text),
            _ => {
                return Err(MethodError::rpc(
                    INVALID_PARAMS,
                    "invalid params: password (a string) is required",
                ))
            }
        };
        if let Some(object) = params.as_object_mut() {
            object.remove("password");
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct LoginParams {
            username: String,
        }
        let LoginParams { username } = parse(params)?;

        let old = self.client();
        // One client on the store at a time: the old one stops first (its
        // session is being replaced anyway: login ends the account's other
        // sessions), and resumes if the login fails.
        old.shutdown().await;
        let server = old.whoami().server_url;
        match Client::login(self.config.clone(), &username, &password).await {
            Ok(client) => {
                drop(password);
                let records = after_login(&client).await;
                self.replace_client(client);
                Ok(done(&records, ExitStatus::Success))
            }
            Err(e) => {
                drop(password);
                let _ = old.connect().await;
                let error =
                    anyhow::Error::new(e).context(format!("logging in as {username} on {server}"));
                Err(MethodError::command(&error, vec![]))
            }
        }
    }

    /// `password.change {old_password, new_password}`: `umbra password
    /// change` on the daemon's client, which keeps serving (the store's keys
    /// do not change, only the passwords that unwrap them).
    pub(super) async fn change_password(&self, mut params: Value) -> Result<Value, MethodError> {
        // Taken out of the JSON value by move, as `login`'s password.
        let mut take = |name: &'static str| match params.get_mut(name).map(Value::take) {
            Some(Value::String(text)) => Ok(Zeroizing::new(text)),
            _ => Err(MethodError::rpc(
                INVALID_PARAMS,
                format!("invalid params: {name} (a string) is required"),
            )),
        };
        let old = take("old_password")?;
        let new = take("new_password")?;
        if let Some(object) = params.as_object_mut() {
            object.remove("old_password");
            object.remove("new_password");
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NoOtherParams {}
        let NoOtherParams {} = parse(params)?;
        let result = change_client(&self.client(), &old, &new).await;
        drop((old, new));
        match result {
            Ok(record) => Ok(done(&[record], ExitStatus::Success)),
            Err(e) => Err(MethodError::command(&e, vec![])),
        }
    }

    /// `logout`: revokes the session on the relay and forgets it; then the
    /// daemon stops (client-core has closed the client either way).
    pub(super) async fn logout(&self, _params: LogoutParams) -> Result<Value, MethodError> {
        let result = logout_client(&self.client(), &self.data_dir).await;
        self.stop_after_answer();
        match result {
            Ok(record) => Ok(done(&[record], ExitStatus::Success)),
            Err(e) => Err(MethodError::command(&e, vec![])),
        }
    }

    /// `account.delete {yes: true}`: deletes the account on the relay and
    /// erases the store; then the daemon stops. Without `yes` nothing is
    /// deleted and it fails as `umbra account delete` does without `--yes`
    /// off a terminal (exit 1).
    pub(super) async fn delete(&self, params: DeleteParams) -> Result<Value, MethodError> {
        if params.yes != Some(true) {
            let error = Failure::user(
                "refusing to delete the account without confirmation: pass \"yes\": true \
                 (umbra account delete --yes)",
            )
            .into();
            return Err(MethodError::command(&error, vec![]));
        }
        let record = delete_client(&self.client(), &self.data_dir)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        self.stop_after_answer();
        Ok(done(&[record], ExitStatus::Success))
    }
}
