//! `block`, `unblock` and `blocked`: block a contact (client-core's
//! blocking: nothing from it is shown, nothing is sent to it, a `send` to
//! it fails), undo it, and list who is blocked. The daemon's methods of
//! the same names run the same code (daemon/block.rs).
//!
//! Must never: tell the relay or the contact (a block is local), or
//! report a block that was not stored.

use anyhow::Context as _;
use umbra_client_core::{BlockedContact, Client};

use crate::commands::group::member;
use crate::exit_status::ExitStatus;
use crate::output::{Printer, Record};
use crate::session::Session;

/// What the user asked.
#[derive(Debug, Clone)]
pub enum Action {
    Block(String),
    Unblock(String),
    List,
}

pub async fn run(session: &Session, action: Action) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = apply(&client, action, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Does `action` and prints its records: a `done` for `block` and
/// `unblock`, one `blocked` per blocked account for `blocked`.
pub(crate) async fn apply<W: std::io::Write>(
    client: &Client,
    action: Action,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    match action {
        Action::Block(contact) => {
            let blocked = client
                .block(&member(&contact)?)
                .await
                .with_context(|| format!("blocking {contact}"))?;
            let name = &blocked.display_name;
            printer.emit(&Record::Done {
                action: "block".to_owned(),
                detail: format!(
                    "blocked {name}: nothing from {name} is shown and nothing is sent to \
                     {name} until `umbra unblock {name}`"
                ),
                group: None,
            })?;
        }
        Action::Unblock(contact) => {
            let was = client
                .unblock(&member(&contact)?)
                .await
                .with_context(|| format!("unblocking {contact}"))?;
            let detail = if was {
                format!("unblocked {contact}")
            } else {
                format!("{contact} was not blocked")
            };
            printer.emit(&Record::Done {
                action: "unblock".to_owned(),
                detail,
                group: None,
            })?;
        }
        Action::List => {
            for blocked in client.blocked().await.context("reading the block list")? {
                printer.emit(&record(blocked))?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn record(blocked: BlockedContact) -> Record {
    Record::Blocked {
        username: blocked.username,
        account_id: blocked.account.to_hex(),
        display_name: blocked.display_name,
    }
}

/// The daemon's `block` and `unblock` params.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    pub(crate) contact: String,
}
