//! `receive --follow` without a daemon: print what is waiting (as
//! `receive` does), then every event as it arrives, until interrupted.
//!
//! Must never print a message twice (one that arrived while the first batch
//! was printed is already reported and skipped) or mark one reported before
//! it was printed.

use std::time::Duration;

use futures_util::StreamExt;
use umbra_client_core::{Client, Event};

use crate::commands::group as group_commands;
use crate::commands::receive::{message_record, receive, records_for};
use crate::exit_status::ExitStatus;
use crate::output::Printer;
use crate::session::Session;

pub async fn run(session: &Session, timeout: Duration) -> anyhow::Result<ExitStatus> {
    // Read before the store opens: a mistyped setting costs no password.
    let notifier = crate::notify::Notifier::from_env()?;
    let client = session.open_client().await?;
    // Subscribed before the first batch, so nothing falls between the two.
    let events = client.events();
    let printer = &mut session.printer();
    let result = follow(&client, events, printer, timeout, &notifier).await;
    client.shutdown().await;
    result
}

async fn follow<W: std::io::Write>(
    client: &Client,
    mut events: futures_util::stream::BoxStream<'static, Event>,
    printer: &mut Printer<W>,
    timeout: Duration,
    notifier: &crate::notify::Notifier,
) -> anyhow::Result<ExitStatus> {
    receive(client, printer, timeout).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return Ok(ExitStatus::Success),
            },
            _ = tokio::signal::ctrl_c() => return Ok(ExitStatus::Success),
            _ = terminate.recv() => return Ok(ExitStatus::Success),
        };
        if let Event::Message { id, .. } = &event {
            // Printed from the store, and only if nothing printed it yet.
            let unreported = client.unreported_messages().await?;
            if let Some(message) = unreported.into_iter().find(|m| m.id == *id) {
                printer.emit(&message_record(&message))?;
                client.mark_reported(std::slice::from_ref(&message)).await?;
                let from = message.from.as_str();
                notify(notifier, from, None, &message.body);
            }
            continue;
        }
        if let Event::GroupMessage { group, id, .. } = &event {
            // The same for a group message.
            let unreported = client.unreported_group_messages().await?;
            let found = unreported
                .into_iter()
                .find(|m| m.group == *group && m.id == *id);
            if let Some(message) = found {
                let groups = group_commands::summaries(client).await?;
                printer.emit(&group_commands::unreported::record(&message, &groups))?;
                client
                    .mark_group_reported(std::slice::from_ref(&message))
                    .await?;
                let group = Some(message.group_name.as_str());
                notify(notifier, &message.from, group, &message.body);
            }
            continue;
        }
        for record in records_for(client, event).await {
            printer.emit(&record)?;
        }
    }
}

/// A desktop notification of an arrival (crate::notify): an escape only on
/// a terminal's stderr, never into the records on stdout.
fn notify(notifier: &crate::notify::Notifier, from: &str, group: Option<&str>, body: &str) {
    use std::io::IsTerminal;
    let arrival = crate::notify::Arrival { from, group, body };
    let mut stderr = std::io::stderr();
    let terminal = stderr.is_terminal().then_some(&mut stderr);
    notifier.notify(&arrival, terminal.map(|t| t as &mut dyn std::io::Write));
}
