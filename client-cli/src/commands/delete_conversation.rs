//! `delete-conversation USERNAME [--everyone]`: erase the 1:1 conversation
//! with a contact from this device, or for everyone (client-core's
//! `delete_conversation`, docs/PROTOCOL.md §12.19): the contact's devices
//! and our other devices erase it too. The contact, its keys and trust
//! stay. The daemon's `delete_conversation` method runs [`perform`].
//!
//! For everyone, the delete is an outbox entry like a message: `done` once
//! the relay accepted it, exit 3 (with the local copy already erased) when
//! it stays queued, to go out with the next command that connects.
//!
//! Must never print a message text, or report a delete that was not stored.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, DeleteScope, Error};
use umbra_protocol::wire::Username;

use crate::commands::send::{report_refused, wait_for_outcome, Outcome};
use crate::exit_status::ExitStatus;
use crate::output::{Printer, Record};
use crate::session::Session;

/// What to delete, as the command or the daemon got it (the daemon's
/// params: `username`, `everyone` (default false), `timeout` (default 30)).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) everyone: bool,
    pub(crate) timeout: Option<u64>,
}

impl Params {
    pub(crate) fn new(username: &str, everyone: bool, timeout: u64) -> Self {
        Self {
            username: username.to_owned(),
            everyone,
            timeout: Some(timeout),
        }
    }
}

/// The command: opens the client, performs, prints.
pub async fn run(session: &Session, params: Params) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = perform(&client, &params, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Deletes and prints one `done` record (`"delete_conversation"`), or a
/// `send_failed` when the relay refused the delete for good.
pub(crate) async fn perform<W: std::io::Write>(
    client: &Client,
    params: &Params,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let who = &params.username;
    let name = Username::parse(who)
        .map_err(Error::from)
        .with_context(|| format!("deleting the conversation with {who}"))?;
    let scope = if params.everyone {
        DeleteScope::ForEveryone
    } else {
        DeleteScope::Local
    };
    // Subscribed first so the delete's outcome cannot slip past.
    let events = client.events();
    let done = client
        .delete_conversation(&name, scope)
        .await
        .with_context(|| format!("deleting the conversation with {who}"))?;
    let Some(id) = done.sent else {
        printer.emit(&Record::Done {
            action: "delete_conversation".to_owned(),
            detail: done_detail(who, done.erased, false),
            group: None,
        })?;
        return Ok(ExitStatus::Success);
    };
    let timeout = Duration::from_secs(params.timeout.unwrap_or(30));
    let sending = wait_for_outcome(client, events, who, id, timeout).await?;
    match sending.outcome {
        Outcome::Accepted => {
            printer.emit(&Record::Done {
                action: "delete_conversation".to_owned(),
                detail: done_detail(who, done.erased, true),
                group: None,
            })?;
            Ok(ExitStatus::Success)
        }
        Outcome::Refused(reason) => report_refused(
            printer,
            who,
            id,
            reason,
            format!(
                "deleted the conversation with {who} here, but the relay refused the \
                 delete for {who}: {reason}"
            ),
        ),
    }
}

/// What a done delete says (the `done` record's `detail`; `umbra chat`
/// shows the same words).
pub(crate) fn done_detail(who: &str, erased: usize, everyone: bool) -> String {
    let erased = plural(erased);
    if everyone {
        format!(
            "deleted the conversation with {who} for everyone ({erased} here); \
             {who}'s devices and your other devices erase it when they receive"
        )
    } else {
        format!("deleted the conversation with {who} on this device ({erased}); {who} still has it")
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 message".to_owned()
    } else {
        format!("{n} messages")
    }
}
