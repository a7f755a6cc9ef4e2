//! `react`, `edit` and `delete --for-everyone`: messages about messages
//! (docs/PROTOCOL.md §10.6), to a contact or, with `--group`, a group. A
//! reply is `send --reply-to` / `group send --reply-to`.
//!
//! client-core applies the change to our own history by the rule every
//! receiver uses before anything is encrypted: one it refuses (an unknown
//! id, someone else's message, older than 24 hours, ...) is a usage error
//! (exit 1) and nothing is sent. Otherwise the change is queued and
//! handed to the relay as `send` hands a message: `sent` on success, exit
//! 3 when it stays queued. The daemon's `react`, `edit` and `delete` run
//! [`perform`].
//!
//! Must never send a change client-core refused, or print a message text.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, Error, MessageChange, MessageId};
use umbra_protocol::wire::Username;

use crate::cli::AboutTarget;
use crate::commands::group;
use crate::commands::send::{report_refused, wait_for_outcome, Outcome};
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{ChangeKind, GroupRef, Printer, Record};
use crate::session::Session;

/// What the change does.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    React { emoji: String, remove: bool },
    Edit { message: String },
    Delete,
}

/// The change and whom it goes to, as the command or the daemon got them.
#[derive(Debug, Clone)]
pub(crate) struct About {
    pub(crate) to: String,
    pub(crate) id: String,
    pub(crate) group: bool,
    pub(crate) timeout: Duration,
    pub(crate) change: Change,
}

impl About {
    pub(crate) fn new(target: &AboutTarget, change: Change) -> Self {
        Self {
            to: target.to.clone(),
            id: target.id.clone(),
            group: target.group,
            timeout: Duration::from_secs(target.timeout),
            change,
        }
    }
}

/// A message id as `receive` prints it (32 hex digits).
pub(crate) fn message_id(text: &str) -> anyhow::Result<MessageId> {
    MessageId::from_hex(text.trim()).ok_or_else(|| {
        Failure::user(format!(
            "{text:?} is not a message id (32 hex digits, as receive prints it)"
        ))
        .into()
    })
}

/// The command: opens the client, performs, prints.
pub async fn run(session: &Session, about: About) -> anyhow::Result<ExitStatus> {
    let about = with_stdin_text(about)?;
    let client = session.open_client().await?;
    let result = perform(&client, &about, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// `edit TO ID -` reads the new text from standard input.
pub(crate) fn with_stdin_text(mut about: About) -> anyhow::Result<About> {
    if let Change::Edit { message } = &mut about.change {
        if message == "-" {
            *message = crate::commands::send::read_stdin()?;
        }
        if message.trim().is_empty() {
            return Err(Failure::user("the new text is empty").into());
        }
    }
    Ok(about)
}

/// Sends `about` with `client` and prints its outcome (the command and the
/// daemon's methods).
pub(crate) async fn perform<W: std::io::Write>(
    client: &Client,
    about: &About,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let target = message_id(&about.id)?;
    if about.group {
        return group::send::post(client, printer, &about.to, about.timeout, |group| {
            let change = about.change.clone();
            async move {
                match change {
                    Change::React { emoji, remove } => {
                        client.react_in_group(&group, &target, &emoji, remove).await
                    }
                    Change::Edit { message } => {
                        client.edit_in_group(&group, &target, &message).await
                    }
                    Change::Delete => client.delete_in_group_for_everyone(&group, &target).await,
                }
            }
        })
        .await
        .map_err(refusal_is_usage);
    }
    let to = &about.to;
    let name = Username::parse(to)
        .map_err(Error::from)
        .with_context(|| format!("sending to {to}"))?;
    // Subscribed first so the outcome cannot slip past.
    let events = client.events();
    let sent = match &about.change {
        Change::React { emoji, remove } => client.react(&name, &target, emoji, *remove).await,
        Change::Edit { message } => client.edit(&name, &target, message).await,
        Change::Delete => client.delete_for_everyone(&name, &target).await,
    };
    let id = sent
        .with_context(|| format!("sending to {to}"))
        .map_err(refusal_is_usage)?;
    let sending = wait_for_outcome(client, events, to, id, about.timeout).await?;
    match sending.outcome {
        Outcome::Accepted => {
            printer.emit(&Record::Sent {
                to: to.clone(),
                id: id.to_hex(),
                sent_at: time::OffsetDateTime::now_utc(),
                group: None,
            })?;
            Ok(ExitStatus::Success)
        }
        Outcome::Refused(reason) => report_refused(
            printer,
            to,
            id,
            reason,
            format!("the relay refused the change to {to}: {reason}"),
        ),
    }
}

/// A change client-core's rule refused is the user's to fix (exit 1).
fn refusal_is_usage(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<Error>() {
        Some(Error::ChangeRefused { target, reason }) => {
            Failure::user(format!("message {target}: {reason}; nothing was sent")).into()
        }
        _ => error,
    }
}

/// The `message_changed` record of a change that arrived.
pub(crate) fn changed_record(
    from: String,
    id: MessageId,
    target: MessageId,
    change: MessageChange,
    group: Option<GroupRef>,
) -> Record {
    let (change, emoji, body) = match change {
        MessageChange::Reacted { emoji, removed } => {
            let kind = if removed {
                ChangeKind::Unreacted
            } else {
                ChangeKind::Reacted
            };
            (kind, Some(emoji), None)
        }
        MessageChange::Edited { body } => (ChangeKind::Edited, None, Some(body)),
        MessageChange::Deleted => (ChangeKind::Deleted, None, None),
    };
    Record::MessageChanged {
        from,
        id: id.to_hex(),
        target: target.to_hex(),
        change,
        emoji,
        body,
        group,
    }
}
