//! Files over either backend: `/file` and `/save` run the code `umbra file
//! send` and `umbra file get` run (commands/file.rs) against the local
//! client, with its progress; through a daemon its `file.send` and
//! `file.get` methods (absolute paths, no progress: the daemon answers
//! when the transfer ended).
//!
//! Must never: save under a name client-core did not sanitise (the name
//! is client-core's: a destination directory gets the sanitised name), or
//! hand the daemon a relative path (it runs in another directory).

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use umbra_client_core::Progress;

use super::commands::{from_records, parse_lines};
use super::{call, Backend};
use crate::commands::file::{absolute, get_with, send_to_group, send_with};
use crate::output::{FileRef, Record};

/// How long a sent file's message waits for the relay (the command's
/// default).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

impl Backend {
    /// Uploads the file at `path` and sends it to `to`: the message id
    /// and the file, or why not.
    pub async fn send_file(
        &self,
        to: &str,
        path: &Path,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(String, FileRef), String> {
        // A group conversation's key names the group (`group:ID`).
        let group = crate::tui::state::group_id_of(to);
        let record = match (self, group) {
            (Backend::Local(client), None) => {
                send_with(client, to, path, None, SEND_TIMEOUT, progress)
                    .await
                    .map_err(|e| format!("{e:#}"))?
                    .0
            }
            (Backend::Local(client), Some(group)) => {
                let mut printer = crate::output::Printer::new(true, Vec::new());
                let file = (path, None);
                let sent = send_to_group(client, &mut printer, group, file, SEND_TIMEOUT, progress);
                let sent = sent.await;
                sent.map_err(|e| format!("{e:#}"))?;
                first(parse_lines(&printer.into_inner())?)?
            }
            (Backend::Daemon(rpc), group) => {
                let path = absolute(path).map_err(|e| format!("{e:#}"))?;
                let params = match group {
                    Some(group) => json!({"to": group, "path": path, "group": true}),
                    None => json!({"to": to, "path": path}),
                };
                let result = call(rpc, "file.send", params)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                first(from_records(&result)?)?
            }
        };
        match record {
            Record::FileSent { id, file, .. } => Ok((id, file)),
            _ => Err("the file send answered nothing".to_owned()),
        }
    }

    /// Downloads, verifies and saves file `id` into `dest` (a directory
    /// or a file path; the current directory if `None`): where it went.
    pub async fn save_file(
        &self,
        id: &str,
        dest: Option<&Path>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<String, String> {
        let record = match self {
            Backend::Local(client) => get_with(client, id, dest, progress)
                .await
                .map_err(|e| format!("{e:#}"))?,
            Backend::Daemon(rpc) => {
                let path =
                    absolute(dest.unwrap_or(Path::new("."))).map_err(|e| format!("{e:#}"))?;
                let result = call(rpc, "file.get", json!({"id": id, "path": path}))
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                first(from_records(&result)?)?
            }
        };
        match record {
            Record::FileSaved { path, .. } => Ok(path),
            _ => Err("the file fetch answered nothing".to_owned()),
        }
    }
}

fn first(records: Vec<Record>) -> Result<Record, String> {
    records
        .into_iter()
        .find(|r| matches!(r, Record::FileSent { .. } | Record::FileSaved { .. }))
        .ok_or_else(|| "the daemon answered no file record".to_owned())
}
