//! `register`, `login`, `logout`, `whoami` and `account rename|delete`: the
//! account on this device.
//!
//! Must never print the password or the session token, never leave the
//! background connection running when the command returns, and never delete
//! an account without a confirmation (typed on a terminal, or `--yes`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context as _;
use umbra_client_core::{Client, Event};

use crate::commands::receive::records_for;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::Record;
use crate::password::{PasswordSource, Purpose};
use crate::session::Session;

pub async fn register(session: &Session, username: &str) -> anyhow::Result<ExitStatus> {
    // Checked before asking for a new password twice, not after.
    if Client::has_account(&session.config())
        .await
        .context("reading the local store")?
    {
        return Err(Failure::user(format!(
            "{} already holds an account; use another --data-dir to register a second one",
            session.data_dir.display()
        ))
        .into());
    }
    let password = session.password(username, Purpose::New)?;
    // Before any network traffic: a refused password never reaches OPAQUE.
    crate::strength::check_new_password(&password, username)?;
    let client = Client::register(session.config(), username, &password)
        .await
        .with_context(|| format!("registering {username} on {}", session.server))?;
    drop(password);
    let me = client.whoami();
    client.shutdown().await;
    session.printer().emit(&Record::Done {
        action: "register".into(),
        detail: format!(
            "registered {} on {}; keys are in {}",
            me.username,
            me.server_url,
            session.data_dir.display()
        ),
        group: None,
    })?;
    Ok(ExitStatus::Success)
}

/// How long `login` waits for the relay's queue before it reports done.
const LOGIN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn login(
    session: &Session,
    username: &str,
    new_identity: bool,
    store_password_file: Option<&std::path::Path>,
) -> anyhow::Result<ExitStatus> {
    let password = session.password(username, Purpose::Existing)?;
    let login = if new_identity {
        Client::login_with_new_identity(session.config(), username, &password).await
    } else if let Some(path) = store_password_file {
        let label = format!("the umbra account in {}", session.data_dir.display());
        let store = PasswordSource::File(path.to_owned()).read(&label, Purpose::Existing)?;
        Client::login_with_store_password(session.config(), username, &password, &store).await
    } else {
        Client::login(session.config(), username, &password).await
    };
    let client =
        login.with_context(|| format!("logging in as {username} on {}", session.server))?;
    drop(password);
    let records = after_login(&client).await;
    client.shutdown().await;
    let mut printer = session.printer();
    for record in &records {
        printer.emit(record)?;
    }
    Ok(ExitStatus::Success)
}

/// What `login` prints once the relay took the password: the notices the
/// new session's first receive brought, then `done`. Shared with the
/// daemon's `login`, so both print the same.
pub(crate) async fn after_login(client: &Client) -> Vec<Record> {
    let me = client.whoami();
    // The new session's connection already takes what the relay queued:
    // wait for it, and print the notices nothing else would show (in a
    // fresh data dir, each message sealed to the identity this login
    // replaced is a `decryption_failed`). Messages stay for `receive`. A
    // relay gone quiet after a successful login is not this command's failure.
    let notices = client
        .receive_until_empty(LOGIN_DRAIN)
        .await
        .unwrap_or_default();
    let mut records = Vec::new();
    for event in notices {
        if matches!(event, Event::Message { .. }) {
            continue;
        }
        records.extend(records_for(client, event).await);
    }
    // After a password-only restore this data directory is a new device
    // of the account, and the devices it replaces are still listed (the
    // user may still own them): say which, and how to remove a lost one.
    // Best effort, as the drain above: the login itself succeeded.
    let others: Vec<u32> = match client.devices().await {
        Ok(devices) if devices.len() > 1 => {
            let others = devices
                .iter()
                .filter(|d| !d.this_device)
                .map(|d| d.device_id)
                .collect();
            records.extend(devices.into_iter().map(super::devices::record));
            others
        }
        _ => Vec::new(),
    };
    let mut detail = format!(
        "logged in as {} on {} (this is device {})",
        me.username, me.server_url, me.device_id
    );
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(u32::to_string).collect();
        detail.push_str(&format!(
            "; the account's other devices: {}; if one of them is lost, remove it with \
             umbra devices remove ID (its queued messages go with it)",
            list.join(", ")
        ));
    }
    records.push(Record::Done {
        action: "login".into(),
        detail,
        group: None,
    });
    records
}

pub async fn logout(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = logout_client(&client, &session.data_dir).await;
    client.shutdown().await;
    session.printer().emit(&result?)?;
    Ok(ExitStatus::Success)
}

/// Logs `client` out and returns the `done` record (shared with the daemon).
pub(crate) async fn logout_client(client: &Client, data_dir: &Path) -> anyhow::Result<Record> {
    let me = client.whoami();
    client.logout().await.context("logging out")?;
    Ok(Record::Done {
        action: "logout".into(),
        detail: format!(
            "logged out {}; keys and history stay in {} (umbra login {} resumes)",
            me.username,
            data_dir.display(),
            me.username
        ),
        group: None,
    })
}

pub async fn whoami(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let me = client.whoami();
    let logged_in = client.is_logged_in().await;
    client.shutdown().await;
    session.printer().emit(&Record::Account {
        username: me.username.as_str().to_owned(),
        account_id: me.account_id.to_hex(),
        device_id: me.device_id,
        server: me.server_url,
        logged_in: logged_in.context("reading the local store")?,
    })?;
    Ok(ExitStatus::Success)
}

pub async fn rename(session: &Session, new_username: &str) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let old = client.whoami().username;
    let result = client
        .rename(new_username)
        .await
        .with_context(|| format!("renaming {old} to {new_username}"));
    // Contacts are told through the outbox; give it a moment to leave.
    if result.is_ok() {
        let _ = client.flush_outbox(RENAME_FLUSH).await;
    }
    let now = client.whoami().username;
    client.shutdown().await;
    result?;
    session.printer().emit(&Record::Done {
        action: "rename".into(),
        detail: format!("renamed {old} to {now}; contacts are told the next time they receive"),
        group: None,
    })?;
    Ok(ExitStatus::Success)
}

/// How long `rename` waits for the notices to contacts to reach the relay
/// (they stay queued otherwise and leave with the next command).
const RENAME_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// How `account delete` gets its confirmation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// `--yes`: the caller already decided.
    Given,
    /// Ask on the terminal.
    Ask,
}

/// No terminal and no `--yes`: refuse rather than guess (exit 1). The same
/// rule whether or not a daemon does the deleting.
pub(crate) fn confirmation(yes: bool, stdin_is_terminal: bool) -> Result<Confirmation, Failure> {
    match (yes, stdin_is_terminal) {
        (true, _) => Ok(Confirmation::Given),
        (false, true) => Ok(Confirmation::Ask),
        (false, false) => Err(Failure::user(
            "refusing to delete the account without confirmation: \
             run it on a terminal, or pass --yes",
        )),
    }
}

/// Whether the typed answer confirms deleting `username`: the exact name,
/// so a stray Enter or "y" deletes nothing.
fn confirms(answer: &str, username: &str) -> bool {
    answer.trim() == username
}

pub async fn delete(session: &Session, yes: bool) -> anyhow::Result<ExitStatus> {
    let how = confirmation(yes, std::io::stdin().is_terminal())?;
    let client = session.open_client().await?;
    let me = client.whoami();
    if how == Confirmation::Ask {
        if let Err(refused) = ask_to_delete(me.username.as_str(), &me.server_url, &session.data_dir)
        {
            client.shutdown().await;
            return Err(refused);
        }
    }
    let result = delete_client(&client, &session.data_dir).await;
    client.shutdown().await;
    session.printer().emit(&result?)?;
    Ok(ExitStatus::Success)
}

/// On a terminal without `--yes`: asks for the username and fails (exit 1,
/// nothing deleted) unless it is typed exactly.
pub(crate) fn ask_to_delete(username: &str, server: &str, data_dir: &Path) -> anyhow::Result<()> {
    let answer = ask(&format!(
        "This deletes {username} on {server} and erases its keys and history in {}. \
         It cannot be undone.\nType the username to confirm: ",
        data_dir.display()
    ))?;
    if !confirms(&answer, username) {
        return Err(Failure::user("not confirmed; nothing was deleted").into());
    }
    Ok(())
}

/// Deletes the account of `client` (confirmation already given) and
/// returns the `done` record (shared with the daemon).
pub(crate) async fn delete_client(client: &Client, data_dir: &Path) -> anyhow::Result<Record> {
    let me = client.whoami();
    client
        .delete_account()
        .await
        .with_context(|| format!("deleting {}", me.username))?;
    Ok(Record::Done {
        action: "delete".into(),
        detail: format!(
            "deleted {} on {} and erased the local store in {}",
            me.username,
            me.server_url,
            data_dir.display()
        ),
        group: None,
    })
}

/// Prompts on stderr (stdout may be a `--json` pipe) and reads one line.
fn ask(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_needs_yes_or_a_terminal() {
        assert_eq!(confirmation(true, false).unwrap(), Confirmation::Given);
        assert_eq!(confirmation(true, true).unwrap(), Confirmation::Given);
        assert_eq!(confirmation(false, true).unwrap(), Confirmation::Ask);
        let refused = confirmation(false, false).unwrap_err();
        assert!(refused.to_string().contains("--yes"), "{refused}");
    }

    #[test]
    fn only_the_exact_username_confirms() {
        assert!(confirms("alice\n", "alice"));
        assert!(confirms("  alice  ", "alice"));
        for answer in ["", "\n", "y", "yes", "Alice", "alic", "alice2"] {
            assert!(!confirms(answer, "alice"), "{answer:?}");
        }
    }
}
