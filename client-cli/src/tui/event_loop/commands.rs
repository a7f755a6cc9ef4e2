//! The chat loop's `/block`, `/unblock` and `/search`: runs them over the
//! backend as tasks and hands the outcome to the state (a notice for a
//! block, lines in the open conversation for a search).
//!
//! Must never: block the loop on the store (they run as tasks), or show a
//! found text except through the state (which holds it as SafeText).

use tokio::sync::mpsc;

use super::Completion;
use crate::output::{MessageDirection, Record};
use crate::tui::backend::Backend;
use crate::tui::state::{ChatState, SearchHit, Severity, SEARCH_SHOWN};

/// Blocks or unblocks `contact` and reports what was done.
pub(super) async fn set_blocked(
    backend: Backend,
    contact: String,
    blocked: bool,
    done: mpsc::UnboundedSender<Completion>,
) {
    let report = match backend.set_blocked(&contact, blocked).await {
        Ok(detail) => Completion::BlockChanged(detail),
        Err(reason) => Completion::Problem(reason),
    };
    let _ = done.send(report);
}

/// Searches for `text`, asking one more than is shown to know there are more.
pub(super) async fn search(
    backend: Backend,
    text: String,
    done: mpsc::UnboundedSender<Completion>,
) {
    let report = match backend.search(&text, SEARCH_SHOWN + 1).await {
        Ok(records) => Completion::Found {
            query: text,
            records,
        },
        Err(reason) => Completion::Problem(format!("search failed: {reason}")),
    };
    let _ = done.send(report);
}

/// `found` records shown as the results of searching for `query`.
pub(super) fn show_found(state: &mut ChatState, query: &str, records: &[Record]) {
    let hits: Vec<SearchHit<'_>> = records
        .iter()
        .filter_map(|record| match record {
            Record::Found {
                conversation,
                direction,
                from,
                received_at,
                body,
                ..
            } => Some(SearchHit {
                conversation,
                from,
                mine: *direction == MessageDirection::Outgoing,
                at: *received_at,
                body,
            }),
            _ => None,
        })
        .collect();
    state.search_results(query, &hits);
}

/// A block or unblock done: the sentence the CLI prints for it.
pub(super) fn show_block(state: &mut ChatState, detail: &str) {
    state.set_notice(Severity::Info, detail);
}
