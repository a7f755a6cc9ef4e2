//! The chat's `/block`, `/unblock` and `/search` over either backend: the
//! code `umbra block`, `umbra unblock` and `umbra search` run
//! (commands/block.rs, commands/search.rs) against the local client, or
//! the daemon's methods of the same names, answered as the records those
//! print, so the chat and the CLI cannot disagree.
//!
//! Must never: search anywhere but this device's store (client-core's
//! search asks no relay), or show a record's text except through the
//! state's sanitising paths.

use serde_json::json;

use super::{call, records, Backend};
use crate::commands::{block, search};
use crate::output::{Printer, Record};

impl Backend {
    /// Blocks (`blocked`) or unblocks `contact`; the sentence saying what
    /// was done, or why not.
    pub async fn set_blocked(&self, contact: &str, blocked: bool) -> Result<String, String> {
        let found = match self {
            Backend::Local(client) => {
                let action = if blocked {
                    block::Action::Block(contact.to_owned())
                } else {
                    block::Action::Unblock(contact.to_owned())
                };
                let mut printer = Printer::new(true, Vec::new());
                block::apply(client, action, &mut printer)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                parse_lines(&printer.into_inner())?
            }
            Backend::Daemon(rpc) => {
                let method = if blocked { "block" } else { "unblock" };
                let result = call(rpc, method, json!({"contact": contact}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                from_records(&result)?
            }
        };
        found
            .into_iter()
            .find_map(|record| match record {
                Record::Done { detail, .. } => Some(detail),
                _ => None,
            })
            .ok_or_else(|| "the block list answered nothing".to_owned())
    }

    /// The stored messages containing `text`, newest first, at most
    /// `limit`, as `found` records.
    pub async fn search(&self, text: &str, limit: usize) -> Result<Vec<Record>, String> {
        let found = match self {
            Backend::Local(client) => {
                let mut printer = Printer::new(true, Vec::new());
                search::search(client, text, limit, &mut printer)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                parse_lines(&printer.into_inner())?
            }
            Backend::Daemon(rpc) => {
                let result = call(rpc, "search", json!({"text": text, "limit": limit}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                from_records(&result)?
            }
        };
        Ok(found
            .into_iter()
            .filter(|r| matches!(r, Record::Found { .. }))
            .collect())
    }
}

/// The records a command printed as JSON lines.
pub(super) fn parse_lines(bytes: &[u8]) -> Result<Vec<Record>, String> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
        .collect()
}

/// A daemon answer's records; one a newer daemon adds and this chat does
/// not know is skipped, as every daemon client must.
pub(super) fn from_records(result: &serde_json::Value) -> Result<Vec<Record>, String> {
    Ok(records(result)
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_records_are_read_back() {
        let mut printer = Printer::new(true, Vec::new());
        printer
            .emit(&Record::Done {
                action: "block".into(),
                detail: "blocked bob".into(),
                group: None,
            })
            .unwrap();
        let records = parse_lines(&printer.into_inner()).unwrap();
        assert!(matches!(&records[..], [Record::Done { detail, .. }] if detail == "blocked bob"));
        assert!(
            parse_lines(b"{\"type\":\n").is_err(),
            "a broken line is an error"
        );
        let answer = json!({"records": [{"type": "from_the_future"},
            {"type": "done", "action": "unblock", "detail": "unblocked bob"}]});
        assert!(matches!(
            &from_records(&answer).unwrap()[..],
            [Record::Done { .. }]
        ));
    }
}
