//! `receive`: print everything the relay has queued for us, then exit.
//!
//! Messages are acknowledged to the relay by client-core only after they are
//! stored locally, so a crash while printing loses nothing (they stay in the
//! history). Receipts, refusals of earlier sends, key changes and decryption
//! failures are printed too: a script must see every one of them.
//!
//! Must never print a contact-controlled string unsanitised (output.rs
//! guarantees it) and never hide a key change.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, Event};

use crate::exit_status::ExitStatus;
use crate::output::{time_from_unix_ms, Delivery, Printer, Record};
use crate::session::Session;

pub async fn run(session: &Session, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = receive(&client, &mut session.printer(), timeout).await;
    client.shutdown().await;
    result
}

async fn receive<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let events = client
        .receive_until_empty(timeout)
        .await
        .context("receiving from the relay")?;
    let mut messages = 0u64;
    for event in events {
        if matches!(event, Event::Message { .. }) {
            messages += 1;
        }
        for record in records_for(client, event).await {
            printer.emit(&record)?;
        }
    }
    printer.emit(&Record::Drained { count: messages })?;
    Ok(ExitStatus::Success)
}

/// What to print for one event. Connection changes, typing notices and
/// prekey housekeeping are not a script's business and print nothing.
pub async fn records_for(client: &Client, event: Event) -> Vec<Record> {
    let now = time::OffsetDateTime::now_utc();
    match event {
        Event::Message {
            from,
            id,
            body,
            sent_at_ms,
            received_at_ms,
        } => vec![Record::Message {
            from,
            id: id.to_hex(),
            sent_at: time_from_unix_ms(sent_at_ms),
            received_at: time_from_unix_ms(received_at_ms),
            body,
        }],
        Event::Sent { to, id } => vec![Record::Sent {
            to,
            id: id.to_hex(),
            sent_at: now,
        }],
        Event::SendFailed { to, id, reason } => vec![Record::SendFailed {
            to,
            id: id.to_hex(),
            reason,
        }],
        Event::DeliveryReceipt { from, ids } => receipts(from, ids, Delivery::Delivered, now),
        Event::ReadReceipt { from, ids } => receipts(from, ids, Delivery::Read, now),
        Event::KeyChanged { username } => {
            let safety_number = match client.safety_number(&username).await {
                Ok(number) => number.to_string(),
                Err(e) => format!("unavailable ({e}); run `umbra verify {username}`"),
            };
            vec![Record::KeyChanged {
                contact: username,
                safety_number,
            }]
        }
        Event::DecryptionFailed { from, reason } => {
            vec![Record::DecryptionFailed { from, reason }]
        }
        Event::Lagged { missed } => {
            // Messages are in the store even when the stream dropped events;
            // say so instead of pretending the output is complete.
            eprintln!(
                "warning: {missed} events were not printed; they are in the local history (umbra chat)"
            );
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn receipts(
    from: String,
    ids: Vec<umbra_client_core::MessageId>,
    status: Delivery,
    at: time::OffsetDateTime,
) -> Vec<Record> {
    ids.into_iter()
        .map(|id| Record::Receipt {
            from: from.clone(),
            id: id.to_hex(),
            status,
            at,
        })
        .collect()
}
