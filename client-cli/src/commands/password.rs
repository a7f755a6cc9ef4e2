//! `umbra password change`: the account password, on the relay (every
//! other session of the account ends), for the local store and for the
//! account backup (docs/CLI.md).
//!
//! The current password comes from the usual sources (`--password-command`,
//! `UMBRA_PASSWORD_FILE`, the terminal); the new one from
//! `--new-password-file`, else asked twice on the terminal, and it must
//! pass the same strength check as at `register`, before anything reaches
//! the relay.
//!
//! Must never: take a password as a flag value, print or log one, or let a
//! new password that `register` would refuse reach the relay.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;
use umbra_client_core::Client;

use crate::exit_status::{ExitStatus, Failure};
use crate::output::Record;
use crate::password::{Password, PasswordSource, Purpose};
use crate::session::Session;

/// The new password: from `--new-password-file`, else asked twice on the
/// terminal; with neither, a user error that says what to pass.
pub(crate) fn new_password(file: Option<&Path>) -> Result<Password, Failure> {
    let source =
        match file {
            Some(path) => PasswordSource::File(path.to_owned()),
            None if std::io::stdin().is_terminal() => PasswordSource::Terminal,
            None => return Err(Failure::user(
                "no source for the new password: stdin is not a terminal; pass --new-password-file",
            )),
        };
    source.read("the new password", Purpose::New)
}

pub async fn change(
    session: &Session,
    new_password_file: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let label = format!("the umbra account in {}", session.data_dir.display());
    let old = session.password(&label, Purpose::Existing)?;
    let new = new_password(new_password_file)?;
    let client = session.open_client_with(Some(old.clone())).await?;
    let result = change_client(&client, &old, &new).await;
    drop((old, new));
    client.shutdown().await;
    session.printer().emit(&result?)?;
    Ok(ExitStatus::Success)
}

/// Checks the new password's strength, changes it on `client`, and returns
/// the `done` record (shared with the daemon's `password.change`).
pub(crate) async fn change_client(client: &Client, old: &str, new: &str) -> anyhow::Result<Record> {
    let me = client.whoami();
    // Before any network traffic: a refused password never reaches OPAQUE.
    crate::strength::check_new_password(new, me.username.as_str())?;
    client.change_password(old, new).await.with_context(|| {
        format!(
            "changing the password of {} on {}",
            me.username, me.server_url
        )
    })?;
    Ok(Record::Done {
        action: "password change".into(),
        detail: format!(
            "changed the password of {} on {}; the old one no longer logs in or opens this \
             data dir, and every other session of the account has ended",
            me.username, me.server_url
        ),
        group: None,
    })
}
