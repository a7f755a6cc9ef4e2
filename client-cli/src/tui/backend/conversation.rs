//! What the chat does to a whole 1:1 conversation, over either backend:
//! `/delete-conversation` and `/disappear` run the code `umbra
//! delete-conversation` and `umbra disappearing` run
//! (commands/delete_conversation.rs, commands/disappearing.rs) against the
//! local client, or the daemon's methods of the same names, so the chat
//! and the CLI cannot disagree; and the conversation's stored history,
//! read back after a delete.
//!
//! Must never: delete anything the command would not, or show a record's
//! text except through the state's sanitising paths.

use serde_json::json;
use umbra_client_core::{FileInfo, HistoryEntry, MessageId, PeerRef};

use super::commands::{from_records, parse_lines};
use super::{call, daemon_files, history_entry, local_files, Backend};
use crate::commands::{delete_conversation, disappearing};
use crate::daemon::chat::DEFAULT_HISTORY;
use crate::output::{Printer, Record};

/// A conversation's stored history, oldest first, and the files of its
/// file messages.
pub type StoredHistory = (Vec<HistoryEntry>, Vec<(MessageId, FileInfo)>);

/// How long a delete for everyone or a timer change waits for the relay
/// before saying it stays queued (the commands' default).
const DELETE_TIMEOUT_SECS: u64 = 30;

/// The `done` record's sentence among what a command printed.
fn done_detail(found: Vec<Record>, what: &str) -> Result<String, String> {
    found
        .into_iter()
        .find_map(|record| match record {
            Record::Done { detail, .. } => Some(detail),
            _ => None,
        })
        .ok_or_else(|| format!("{what} answered nothing"))
}

impl Backend {
    /// Deletes the conversation with `contact` here, or for `everyone`;
    /// the sentence the CLI prints for it, or why not.
    pub async fn delete_conversation(
        &self,
        contact: &str,
        everyone: bool,
    ) -> Result<String, String> {
        let found = match self {
            Backend::Local(client) => {
                let params =
                    delete_conversation::Params::new(contact, everyone, DELETE_TIMEOUT_SECS);
                let mut printer = Printer::new(true, Vec::new());
                delete_conversation::perform(client, &params, &mut printer)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                parse_lines(&printer.into_inner())?
            }
            Backend::Daemon(rpc) => {
                let params = json!({"username": contact, "everyone": everyone});
                let result = call(rpc, "delete_conversation", params)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                from_records(&result)?
            }
        };
        done_detail(found, "the delete")
    }

    /// Sets the disappearing-message timer of the conversation with
    /// `contact` (a group's for a `group:ID` key; 0 off); the sentence the
    /// CLI prints, or why not.
    pub async fn set_disappearing(&self, contact: &str, seconds: u32) -> Result<String, String> {
        let duration = disappearing::format_timer(seconds);
        let group = crate::tui::state::group_id_of(contact);
        let (contact, in_group) = (group.unwrap_or(contact), group.is_some());
        let found = match self {
            Backend::Local(client) => {
                let timeout = DELETE_TIMEOUT_SECS;
                let params = disappearing::Params::new(contact, &duration, timeout, in_group);
                let mut printer = Printer::new(true, Vec::new());
                disappearing::perform(client, &params, &mut printer)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                parse_lines(&printer.into_inner())?
            }
            Backend::Daemon(rpc) => {
                let params = json!({"username": contact, "duration": duration, "group": in_group});
                let result = call(rpc, "disappearing", params)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                from_records(&result)?
            }
        };
        done_detail(found, "the timer change")
    }

    /// The stored history of the conversation with `contact`, oldest
    /// first, as much as the chat loads at start, with its files.
    pub async fn history(&self, contact: &str) -> Result<StoredHistory, String> {
        match self {
            Backend::Local(client) => {
                let peer: PeerRef = contact.parse().map_err(|e| format!("{e}"))?;
                let history = client
                    .history(&peer, DEFAULT_HISTORY)
                    .await
                    .map_err(|e| e.to_string())?;
                let files = local_files(client, &peer, &history)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((history, files))
            }
            Backend::Daemon(rpc) => {
                let result = call(rpc, "conversations", json!({}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let stored = result["conversations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["peer"] == contact)
                    .map(|c| c["history"].clone())
                    .unwrap_or_default();
                let history = stored
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(history_entry)
                    .collect();
                Ok((history, daemon_files(&stored)))
            }
        }
    }
}
