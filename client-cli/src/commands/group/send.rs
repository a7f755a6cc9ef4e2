//! `group send GROUP MESSAGE [--reply-to ID]`: one text (or reply) to
//! every other member of a group; `post` also carries `react`, `edit` and
//! `delete --group` (commands/about.rs).
//!
//! client-core encrypts it once under this account's sender key, stores it
//! before anything leaves, and seals a copy to each member; the relay's
//! verdict is per member. `sent` is printed only when every member's copy
//! was accepted; each member it failed for gets a `send_failed` record and
//! the exit status is 3. A copy the relay could not take yet stays queued
//! and leaves with the next `umbra` that connects.
//!
//! Must never send to a group this account is no longer in, or print the
//! message text back.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, GroupId, GroupSendReport, MemberOutcome};

use super::{find, outcome_reason};
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{Printer, Record};

/// The text to send: MESSAGE itself, or stdin for `-`; never empty.
pub(crate) fn message_text(message: &str) -> anyhow::Result<String> {
    let body = if message == "-" {
        crate::commands::send::read_stdin()?
    } else {
        message.to_owned()
    };
    check_body(&body)?;
    Ok(body)
}

fn check_body(body: &str) -> Result<(), Failure> {
    if body.trim().is_empty() {
        return Err(Failure::user("the message is empty"));
    }
    Ok(())
}

pub(crate) async fn send<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    body: &str,
    reply_to: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    check_body(body)?;
    let reply_to = reply_to
        .map(crate::commands::about::message_id)
        .transpose()?;
    post(client, printer, group, timeout, |id| async move {
        match reply_to {
            Some(target) => client.send_group_reply(&id, &target, body).await,
            None => client.send_group_text(&id, body).await,
        }
    })
    .await
}

/// Runs `send` (a text, reply, reaction, edit or delete) for the group
/// `group` names, if this account is still in it, and reports the
/// outcome member by member as the module docs say.
pub(crate) async fn post<W, F, Fut>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    timeout: Duration,
    send: F,
) -> anyhow::Result<ExitStatus>
where
    W: std::io::Write,
    F: FnOnce(GroupId) -> Fut,
    Fut: std::future::Future<Output = Result<GroupSendReport, umbra_client_core::Error>>,
{
    let send = |id| async move { Ok((send(id).await?, ())) };
    let sent = |found: super::Found, id, ()| Record::Sent {
        to: found.summary.name.clone(),
        id,
        sent_at: time::OffsetDateTime::now_utc(),
        group: Some(found.reference),
    };
    post_as(client, printer, group, timeout, send, sent).await
}

/// [`post`] for a send that also yields a `T`, printing `sent(group,
/// message id, T)` when every member's copy was accepted (a file's send
/// prints `file_sent` with the file, commands/file.rs).
pub(crate) async fn post_as<W, F, Fut, T>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    timeout: Duration,
    send: F,
    sent: impl FnOnce(super::Found, String, T) -> Record,
) -> anyhow::Result<ExitStatus>
where
    W: std::io::Write,
    F: FnOnce(GroupId) -> Fut,
    Fut: std::future::Future<Output = Result<(GroupSendReport, T), umbra_client_core::Error>>,
{
    let found = find(client, group).await?;
    let label = found.reference.display_name.clone();
    if !found.summary.active {
        return Err(Failure::user(format!(
            "you are no longer a member of {label}; nothing was sent"
        ))
        .into());
    }
    let (report, extra) = send(found.id)
        .await
        .with_context(|| format!("sending to the group {label}"))?;
    let id = report.id.to_hex();
    if report
        .members
        .iter()
        .any(|m| m.outcome == MemberOutcome::Queued)
    {
        client.flush_outbox(timeout).await.with_context(|| {
            format!(
                "the message to {label} is queued locally (id {id}) and will be sent to the \
                 members not reached yet the next time umbra connects"
            )
        })?;
    }
    let failed: Vec<_> = report.failed().collect();
    for member in &failed {
        printer.emit(&Record::SendFailed {
            to: member.username.clone(),
            id: id.clone(),
            reason: outcome_reason(&member.outcome),
            group: Some(found.reference.clone()),
        })?;
    }
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|m| m.username.as_str()).collect();
        return Err(Failure::new(
            ExitStatus::Network,
            format!(
                "the message to {label} (id {id}) did not reach {} of {} members: {}",
                failed.len(),
                report.members.len(),
                names.join(", ")
            ),
        )
        .into());
    }
    printer.emit(&sent(found, id, extra))?;
    Ok(ExitStatus::Success)
}
