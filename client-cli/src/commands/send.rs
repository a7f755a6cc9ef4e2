//! `send USERNAME MESSAGE [--reply-to ID]`: encrypt, queue and hand one
//! message (or reply) to the relay.
//!
//! The message is in the durable outbox before anything is sent, so a
//! network failure loses nothing: the command reports it (exit 3) and the
//! next `umbra` run that connects sends the same ciphertext.
//!
//! Incoming messages the connection delivers meanwhile are stored and left
//! unreported: the next `receive` prints them. Other notices (receipts, key
//! changes, outcomes of earlier queued messages) are printed as `receive`
//! prints them, because nothing else would ever show them.
//!
//! Must never send to a contact whose key changed (client-core refuses; we
//! exit 4) and never print the message text back.

use std::io::Read;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{FutureExt, StreamExt};
use umbra_client_core::{Client, ConnectionState, Error, Event, MessageId, SendFailure};
use umbra_protocol::wire::Username;

use crate::commands::receive::records_for;

use crate::exit_status::{ExitStatus, Failure};
use crate::output::Record;
use crate::session::Session;

/// Reading more than this from stdin is pointless: client-core would refuse
/// it as too large anyway, and an unbounded read of a runaway pipe is not.
const MAX_STDIN_BYTES: u64 = 1024 * 1024;

/// How long to wait for the outcome event after the outbox drained.
const OUTCOME_GRACE: Duration = Duration::from_secs(2);

pub(crate) enum Outcome {
    Accepted,
    Refused(SendFailure),
}

/// What happened while the client was connected for this send.
pub(crate) struct Sending {
    pub(crate) id: MessageId,
    pub(crate) outcome: Outcome,
    /// Notices the connection delivered meanwhile (receipts, key changes,
    /// outcomes of earlier sends): printed like `receive` would. Incoming
    /// messages are not among them; they wait for `receive`.
    other_events: Vec<Event>,
}

pub async fn run(
    session: &Session,
    to: &str,
    message: &str,
    reply_to: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let reply_to = reply_to
        .map(crate::commands::about::message_id)
        .transpose()?;
    let body = if message == "-" {
        read_stdin()?
    } else {
        message.to_owned()
    };
    if body.trim().is_empty() {
        return Err(Failure::user("the message is empty").into());
    }

    // Listen for Ctrl-C before the client exists: opening it starts the
    // connection, and a SIGINT that arrives before a handler is registered
    // kills the process without saying what became of the message.
    // (`signal()` registers at once; `ctrl_c()` only when first polled.)
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listening for Ctrl-C")?;
    let client = session.open_client().await?;
    let mut printer = session.printer();
    // What was queued before, so an interrupted send can tell whether its
    // message reached the outbox.
    let queued_before: Vec<MessageId> = client
        .pending_outbox()
        .await
        .context("reading the local outbox")?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let result = tokio::select! {
        result = send_and_wait(&client, to, &body, reply_to, timeout) => result,
        _ = interrupt.recv() => {
            let error = interrupted(&client, to, &queued_before).await;
            client.shutdown().await;
            return Err(error);
        }
    };
    if let Ok(sending) = &result {
        for event in &sending.other_events {
            for record in records_for(&client, event.clone()).await {
                printer.emit(&record)?;
            }
        }
    }
    client.shutdown().await;
    let sending = result?;

    match sending.outcome {
        Outcome::Accepted => {
            printer.emit(&Record::Sent {
                to: to.to_owned(),
                id: sending.id.to_hex(),
                sent_at: time::OffsetDateTime::now_utc(),
                group: None,
            })?;
            Ok(ExitStatus::Success)
        }
        Outcome::Refused(reason) => report_refused(
            &mut printer,
            to,
            sending.id,
            reason,
            format!("the relay refused the message to {to}: {reason}"),
        ),
    }
}

/// What every command that sends one thing to a contact does when the
/// relay refused it for good: prints its `send_failed` record and fails
/// with exit 3 (network, docs/CLI.md) and `message`, which says what the
/// user has and has not got.
pub(crate) fn report_refused<W: std::io::Write>(
    printer: &mut crate::output::Printer<W>,
    to: &str,
    id: MessageId,
    reason: SendFailure,
    message: String,
) -> anyhow::Result<ExitStatus> {
    printer.emit(&Record::SendFailed {
        to: to.to_owned(),
        id: id.to_hex(),
        reason: reason.to_string(),
        group: None,
    })?;
    Err(Failure::new(ExitStatus::Network, message).into())
}

/// Ctrl-C during `send`: says whether the message is in the outbox (it
/// will be sent by the next `umbra` that connects, or already was) or was
/// never queued (nothing was sent). Reading the outbox waits for a store
/// commit still under way, so the answer reflects it.
async fn interrupted(client: &Client, to: &str, queued_before: &[MessageId]) -> anyhow::Error {
    let pending = match client.pending_outbox().await {
        Ok(pending) => pending,
        Err(e) => {
            return anyhow::Error::new(e).context(format!(
                "interrupted; whether the message to {to} was queued is unknown: \
                 reading the local outbox"
            ))
        }
    };
    let queued = pending
        .iter()
        .find(|p| p.to.eq_ignore_ascii_case(to) && !queued_before.contains(&p.id));
    match queued {
        Some(message) => Failure::new(
            ExitStatus::Network,
            format!(
                "interrupted: the message to {to} is queued locally (id {}) and will be sent \
                 the next time umbra connects",
                message.id
            ),
        )
        .into(),
        None => Failure::new(
            ExitStatus::Network,
            format!(
                "interrupted: the message to {to} is not in the outbox: it was not queued \
                 (nothing was sent), or the relay had already accepted it"
            ),
        )
        .into(),
    }
}

pub(crate) async fn send_and_wait(
    client: &Client,
    to: &str,
    body: &str,
    reply_to: Option<MessageId>,
    timeout: Duration,
) -> anyhow::Result<Sending> {
    // Subscribe first so no event of this run can slip past.
    let events = client.events();
    let name = Username::parse(to)
        .map_err(Error::from)
        .with_context(|| format!("sending to {to}"))?;
    let sent = match reply_to {
        Some(target) => client.send_reply(&name, &target, body).await,
        None => client.send_text(&name, body).await,
    };
    let id = match sent {
        Err(Error::ChangeRefused { target, reason }) => {
            return Err(Failure::user(format!(
                "cannot reply to message {target}: {reason}; nothing was sent"
            ))
            .into())
        }
        other => other.with_context(|| format!("sending to {to}"))?,
    };
    wait_for_outcome(client, events, to, id, timeout).await
}

/// After a message `id` to `to` was queued (with `events` subscribed before
/// it was): waits until the outbox hands it over and its outcome arrives.
pub(crate) async fn wait_for_outcome(
    client: &Client,
    mut events: futures_util::stream::BoxStream<'static, Event>,
    to: &str,
    id: MessageId,
    timeout: Duration,
) -> anyhow::Result<Sending> {
    let queued = || {
        format!(
            "the message to {to} is queued locally (id {id}) and will be sent \
             the next time umbra connects"
        )
    };

    let mut seen = Vec::new();
    let flush = client.flush_outbox(timeout);
    tokio::pin!(flush);
    loop {
        tokio::select! {
            flushed = &mut flush => {
                flushed.with_context(queued)?;
                break;
            }
            Some(event) = events.next() => match event {
                // The message is durable in the outbox, so there is no point
                // making a script wait out the whole timeout behind a relay
                // that refuses connections.
                Event::Connection(ConnectionState::Reconnecting { cause, .. }) => {
                    return Err(Failure::new(
                        ExitStatus::Network,
                        format!("relay unreachable ({cause}); {}", queued()),
                    )
                    .into());
                }
                Event::Connection(_) if client.used_elsewhere() => {
                    return Err(anyhow::Error::new(Error::UsedElsewhere)
                        .context(format!("sending to {to}")));
                }
                Event::Connection(state) if state.ended_because().is_some() => {
                    let reason = state.ended_because().map(|e| e.to_string()).unwrap_or_default();
                    // Logged out or refused is "log in again" (6), as the
                    // same failure through `flush_outbox` would say; only
                    // an unknown end is "retry".
                    let status = client
                        .ended()
                        .map_or(ExitStatus::Network, |e| crate::core_errors::status_of_ended(&e));
                    return Err(Failure::new(
                        status,
                        format!("relay closed the connection ({reason}); {}", queued()),
                    )
                    .into());
                }
                other => {
                    let settled = is_outcome_of(&other, id);
                    seen.push(other);
                    // The outcome is emitted once the relay settled the
                    // message and the outbox entry's removal is committed:
                    // all a send waits for. Waiting on until the whole
                    // outbox and the group fan-outs are listed empty again
                    // only added store round trips after the answer
                    // (docs/BENCHMARKS.md, "Daemon"); the pump goes on
                    // with whatever is queued behind this message.
                    if settled {
                        break;
                    }
                }
            }
        }
    }

    // The outcome event may still be on its way when the outbox reports empty.
    let deadline = tokio::time::Instant::now() + OUTCOME_GRACE;
    while outcome_in(&seen, id).is_none() {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => seen.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    // Whatever else is already buffered belongs to this run too.
    while let Some(Some(event)) = events.next().now_or_never() {
        seen.push(event);
    }

    let outcome = match outcome_in(&seen, id) {
        Some(outcome) => outcome,
        // Not seen (the stream lagged): the outbox still tells whether the
        // relay took the message.
        None => {
            let pending = client.pending_outbox().await?;
            if pending.iter().any(|p| p.id == id) {
                return Err(Failure::new(ExitStatus::Network, queued()).into());
            }
            Outcome::Accepted
        }
    };
    // Messages stay unreported in the store for the next `receive`.
    seen.retain(|event| {
        !is_outcome_of(event, id)
            && !matches!(event, Event::Message { .. } | Event::GroupMessage { .. })
    });
    Ok(Sending {
        id,
        outcome,
        other_events: seen,
    })
}

fn outcome_in(events: &[Event], id: MessageId) -> Option<Outcome> {
    events.iter().find_map(|event| match event {
        Event::Sent { id: sent, .. } if *sent == id => Some(Outcome::Accepted),
        Event::SendFailed {
            id: failed, reason, ..
        } if *failed == id => Some(Outcome::Refused(*reason)),
        _ => None,
    })
}

fn is_outcome_of(event: &Event, id: MessageId) -> bool {
    matches!(event, Event::Sent { id: x, .. } | Event::SendFailed { id: x, .. } if *x == id)
}

pub(crate) fn read_stdin() -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("reading the message from stdin")?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_STDIN_BYTES {
        return Err(Failure::user(format!(
            "the message on stdin is larger than {MAX_STDIN_BYTES} bytes"
        ))
        .into());
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::user("the message on stdin is not valid UTF-8"))?;
    Ok(strip_one_line_break(text))
}

/// `echo hi | umbra send bob -` should send "hi", not "hi\n".
fn strip_one_line_break(mut text: String) -> String {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_line_break_is_removed() {
        assert_eq!(strip_one_line_break("hi\n".into()), "hi");
        assert_eq!(strip_one_line_break("hi\r\n".into()), "hi");
        assert_eq!(strip_one_line_break("a\nb\n\n".into()), "a\nb\n");
        assert_eq!(strip_one_line_break("hi".into()), "hi");
    }
}
