//! Username policy over the real relay binary, on SQLite and PostgreSQL:
//! reserved names are refused with `InvalidUsername` at `RegisterStart` and
//! `Rename`, and a name released by a rename or an account deletion cannot
//! be taken by anyone while `--name-quarantine-days` runs (0 turns it off).
//!
//! Must never: pass against a relay that hands a released name to a
//! newcomer at once while the quarantine is on.

mod relay_support;

use anyhow::{bail, ensure};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{Session, WireClient, WireClientError};
use umbra_protocol::wire::{ErrorCode, Request, Response, Username};

on_every_store!(
    reserved_names_are_refused_at_registration_and_rename,
    a_released_name_is_quarantined,
    without_quarantine_a_released_name_is_free_at_once,
);

/// The code a registration was refused with; fails if it succeeded.
async fn register_refusal(url: &str, name: &str) -> anyhow::Result<ErrorCode> {
    let mut client = WireClient::connect(url).await?;
    match client.register(name, "a long enough password 1").await {
        Ok(account) => bail!("registering {name:?} succeeded as {account}"),
        Err(WireClientError::Refused { code, .. }) => Ok(code),
        Err(other) => Err(other.into()),
    }
}

/// The code `RegisterStart` alone was refused with. The OPAQUE request is
/// junk on purpose: a relay that gets past the name checks answers
/// `BadFrame`, so only a refusal of the name itself gives another code.
async fn register_start_refusal(url: &str, name: &str) -> anyhow::Result<ErrorCode> {
    let mut client = WireClient::connect(url).await?;
    let reply = client
        .request(Request::RegisterStart {
            username: Username::parse(name)?,
            opaque_request: vec![0; 32],
        })
        .await?;
    match reply {
        Response::Error { code, .. } => Ok(code),
        other => bail!("RegisterStart for {name:?} answered {other:?}"),
    }
}

/// The code a rename was refused with (or `None` if it went through).
async fn rename(session: &mut Session, name: &str) -> anyhow::Result<Option<ErrorCode>> {
    let reply = session
        .client
        .request(Request::Rename {
            new_username: Username::parse(name)?,
        })
        .await?;
    Ok(match reply {
        Response::Error { code, .. } => Some(code),
        Response::Resolved { .. } => None,
        other => bail!("Rename answered {other:?}"),
    })
}

async fn reserved_names_are_refused_at_registration_and_rename(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    for reserved in ["admin", "support", "umbra", "Ro_ot"] {
        let code = register_refusal(&url, reserved).await?;
        ensure!(
            code == ErrorCode::InvalidUsername,
            "registering {reserved:?}: expected InvalidUsername, got {code:?}"
        );
    }
    let mut mallory = Session::sign_up(&url, "mallory", "mallory's password").await?;
    let code = rename(&mut mallory, "relay").await?;
    ensure!(
        code == Some(ErrorCode::InvalidUsername),
        "renaming to \"relay\": expected InvalidUsername, got {code:?}"
    );
    Ok(())
}

async fn a_released_name_is_quarantined(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut carol = Session::sign_up(&url, "carol", "carol's password").await?;
    ensure!(
        rename(&mut bob, "robert").await?.is_none(),
        "rename refused"
    );
    let code = register_refusal(&url, "bob").await?;
    ensure!(
        code == ErrorCode::UsernameTaken,
        "registering a just-released name: expected UsernameTaken, got {code:?}"
    );
    // RegisterStart itself refuses the quarantined name and its look-alikes
    // (separators ignored, as for reserved names), exactly as it refuses a
    // held name: the answer must not tell released from held.
    for name in ["bob", "b.ob", "bob_", "carol"] {
        let code = register_start_refusal(&url, name).await?;
        ensure!(
            code == ErrorCode::UsernameTaken,
            "RegisterStart for {name:?}: expected UsernameTaken, got {code:?}"
        );
    }
    let code = rename(&mut carol, "b_ob").await?;
    ensure!(
        code == Some(ErrorCode::UsernameTaken),
        "renaming to a look-alike of a just-released name: expected UsernameTaken, got {code:?}"
    );
    let code = rename(&mut carol, "bob").await?;
    ensure!(
        code == Some(ErrorCode::UsernameTaken),
        "renaming to a just-released name: expected UsernameTaken, got {code:?}"
    );
    // A deleted account's name is released the same way.
    carol.client.request_ok(Request::DeleteAccount).await?;
    let code = register_refusal(&url, "carol").await?;
    ensure!(
        code == ErrorCode::UsernameTaken,
        "registering a deleted account's name: expected UsernameTaken, got {code:?}"
    );
    Ok(())
}

async fn without_quarantine_a_released_name_is_free_at_once(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend
        .start_relay(&["--name-quarantine-days", "0"])
        .await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    ensure!(
        rename(&mut bob, "robert").await?.is_none(),
        "rename refused"
    );
    Session::sign_up(&url, "bob", "a newcomer's password").await?;
    Ok(())
}
