//! `register`, `login`, `logout`, `whoami` and `account rename|delete`: the
//! account on this device.
//!
//! Must never print the password or the session token, never leave the
//! background connection running when the command returns, and never delete
//! an account without a confirmation (typed on a terminal, or `--yes`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;
use umbra_client_core::{Client, Event};

use crate::commands::receive::records_for;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::Record;
use crate::password::Purpose;
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
    })?;
    Ok(ExitStatus::Success)
}

/// How long `login` waits for the relay's queue before it reports done.
const LOGIN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn login(session: &Session, username: &str) -> anyhow::Result<ExitStatus> {
    let password = session.password(username, Purpose::Existing)?;
    let client = Client::login(session.config(), username, &password)
        .await
        .with_context(|| format!("logging in as {username} on {}", session.server))?;
    drop(password);
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
    let mut printer = session.printer();
    for event in notices {
        if matches!(event, Event::Message { .. }) {
            continue;
        }
        for record in records_for(&client, event).await {
            printer.emit(&record)?;
        }
    }
    client.shutdown().await;
    printer.emit(&Record::Done {
        action: "login".into(),
        detail: format!("logged in as {} on {}", me.username, me.server_url),
    })?;
    Ok(ExitStatus::Success)
}

pub async fn logout(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let me = client.whoami();
    let result = client.logout().await.context("logging out");
    client.shutdown().await;
    result?;
    session.printer().emit(&Record::Done {
        action: "logout".into(),
        detail: format!(
            "logged out {}; keys and history stay in {} (umbra login {} resumes)",
            me.username,
            session.data_dir.display(),
            me.username
        ),
    })?;
    Ok(ExitStatus::Success)
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
    })?;
    Ok(ExitStatus::Success)
}

/// How long `rename` waits for the notices to contacts to reach the relay
/// (they stay queued otherwise and leave with the next command).
const RENAME_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// How `account delete` gets its confirmation.
#[derive(Debug, PartialEq, Eq)]
enum Confirmation {
    /// `--yes`: the caller already decided.
    Given,
    /// Ask on the terminal.
    Ask,
    /// No terminal and no `--yes`: refuse rather than guess.
    Refused,
}

fn confirmation(yes: bool, stdin_is_terminal: bool) -> Confirmation {
    match (yes, stdin_is_terminal) {
        (true, _) => Confirmation::Given,
        (false, true) => Confirmation::Ask,
        (false, false) => Confirmation::Refused,
    }
}

/// Whether the typed answer confirms deleting `username`: the exact name,
/// so a stray Enter or "y" deletes nothing.
fn confirms(answer: &str, username: &str) -> bool {
    answer.trim() == username
}

pub async fn delete(session: &Session, yes: bool) -> anyhow::Result<ExitStatus> {
    let how = confirmation(yes, std::io::stdin().is_terminal());
    if how == Confirmation::Refused {
        return Err(Failure::user(
            "refusing to delete the account without confirmation: \
             run it on a terminal, or pass --yes",
        )
        .into());
    }
    let client = session.open_client().await?;
    let me = client.whoami();
    if how == Confirmation::Ask {
        let answer = ask(&format!(
            "This deletes {} on {} and erases its keys and history in {}. \
             It cannot be undone.\nType the username to confirm: ",
            me.username,
            me.server_url,
            session.data_dir.display()
        ))?;
        if !confirms(&answer, me.username.as_str()) {
            client.shutdown().await;
            return Err(Failure::user("not confirmed; nothing was deleted").into());
        }
    }
    let result = client
        .delete_account()
        .await
        .with_context(|| format!("deleting {}", me.username));
    client.shutdown().await;
    result?;
    session.printer().emit(&Record::Done {
        action: "delete".into(),
        detail: format!(
            "deleted {} on {} and erased the local store in {}",
            me.username,
            me.server_url,
            session.data_dir.display()
        ),
    })?;
    Ok(ExitStatus::Success)
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
        assert_eq!(confirmation(true, false), Confirmation::Given);
        assert_eq!(confirmation(true, true), Confirmation::Given);
        assert_eq!(confirmation(false, true), Confirmation::Ask);
        assert_eq!(confirmation(false, false), Confirmation::Refused);
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
