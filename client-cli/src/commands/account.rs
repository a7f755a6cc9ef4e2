//! `register`, `login`, `logout` and `whoami`: the account on this device.
//!
//! Must never print the password or the session token, and must never leave
//! the background connection running when the command returns.

use anyhow::Context as _;
use umbra_client_core::Client;

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

pub async fn login(session: &Session, username: &str) -> anyhow::Result<ExitStatus> {
    let password = session.password(username, Purpose::Existing)?;
    let client = Client::login(session.config(), username, &password)
        .await
        .with_context(|| format!("logging in as {username} on {}", session.server))?;
    drop(password);
    let me = client.whoami();
    client.shutdown().await;
    session.printer().emit(&Record::Done {
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
    client.shutdown().await;
    session.printer().emit(&Record::Account {
        username: me.username,
        account_id: me.account_id,
        device_id: me.device_id,
        server: me.server_url,
    })?;
    Ok(ExitStatus::Success)
}
