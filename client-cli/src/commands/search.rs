//! `search`: the stored messages (1:1 and group, sent and received) whose
//! text contains a query, case-insensitively, newest first, at most
//! `--limit` of them. The same records come from the daemon's `search`.
//!
//! Must never ask the relay (client-core searches the local store only),
//! or print a contact-controlled string unsanitised (output.rs does that).

use anyhow::Context as _;
use umbra_client_core::{Client, Direction, SearchConversation, SearchHit};

use crate::commands::group;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{time_from_unix_ms, MessageDirection, Printer, Record};
use crate::session::Session;

pub use crate::cli::SEARCH_DEFAULT_LIMIT as DEFAULT_LIMIT;

pub async fn run(session: &Session, text: &str, limit: usize) -> anyhow::Result<ExitStatus> {
    check_query(text)?;
    let client = session.open_client().await?;
    let result = search(&client, text, limit, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Refuses an empty query (it would match every message).
pub fn check_query(text: &str) -> anyhow::Result<()> {
    if text.trim().is_empty() {
        return Err(Failure::user("the search text is empty").into());
    }
    Ok(())
}

/// Searches and prints one `found` record per match (also the daemon's
/// `search`).
pub(crate) async fn search<W: std::io::Write>(
    client: &Client,
    text: &str,
    limit: usize,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let hits = client
        .search(text, limit)
        .await
        .context("searching the local history")?;
    let groups = if hits
        .iter()
        .any(|h| matches!(h.conversation, SearchConversation::Group { .. }))
    {
        group::summaries(client).await?
    } else {
        Vec::new()
    };
    for hit in hits {
        printer.emit(&found_record(hit, &groups))?;
    }
    Ok(ExitStatus::Success)
}

fn found_record(hit: SearchHit, groups: &[group::view::GroupSummary]) -> Record {
    let (conversation, group) = match &hit.conversation {
        SearchConversation::Contact { name, .. } => (name.clone(), None),
        SearchConversation::Group { id, name } => {
            let reference = group::events::reference(groups, id, name);
            (reference.display_name.clone(), Some(reference))
        }
    };
    Record::Found {
        conversation,
        direction: match hit.entry.direction {
            Direction::Incoming => MessageDirection::Incoming,
            Direction::Outgoing => MessageDirection::Outgoing,
        },
        from: hit.from,
        id: hit.entry.id.to_hex(),
        sent_at: time_from_unix_ms(hit.entry.sent_at_ms),
        received_at: time_from_unix_ms(hit.entry.received_at_ms),
        body: hit.entry.body,
        group,
    }
}
