//! The daemon's file methods, `file.send` and `file.get` (docs/CLI.md):
//! what `umbra file send` and `umbra file get` run, against the daemon's
//! client, answered with the same records.
//!
//! Paths are absolute: the daemon's working directory is not the caller's,
//! so `umbra` resolves them before calling. No progress is streamed over
//! the socket; the call answers when the transfer ended.
//!
//! Must never: take a relative path (it would name a file in the daemon's
//! directory, not the caller's), or answer before the file verified.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::methods::{done, json_lines, timeout_param, Daemon, MethodError};
use super::protocol::INVALID_PARAMS;
use crate::cli::FileCommand;
use crate::commands::file::{absolute, get_with, send_to_group, send_with};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

/// Longest a transfer of the largest file may take through the daemon
/// before the caller gives up waiting (the transfer itself is bounded by
/// its idle timeouts, not by this).
const TRANSFER_WAIT: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSendParams {
    to: String,
    path: PathBuf,
    name: Option<String>,
    timeout: Option<u64>,
    /// `to` names a group (`file send --group`).
    #[serde(default)]
    group: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileGetParams {
    id: String,
    /// Required: without one the daemon would save in its own directory.
    path: PathBuf,
}

fn absolute_only(path: &std::path::Path) -> Result<(), MethodError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(MethodError::rpc(
            INVALID_PARAMS,
            "invalid params: path must be absolute (the daemon runs in another directory)",
        ))
    }
}

impl Daemon {
    pub(super) async fn file_send(&self, params: FileSendParams) -> Result<Value, MethodError> {
        absolute_only(&params.path)?;
        let timeout = timeout_param(params.timeout, 30)?;
        let client = self.client();
        if params.group {
            let mut printer = Printer::new(true, Vec::new());
            let file = (params.path.as_path(), params.name.as_deref());
            let sending = send_to_group(&client, &mut printer, &params.to, file, timeout, &|_| {});
            let result = sending.await;
            let records = json_lines(&printer.into_inner());
            return match result {
                Ok(status) => Ok(json!({"records": records, "exit_code": status.code()})),
                Err(e) => Err(MethodError::command(&e, records)),
            };
        }
        let (record, status) = send_with(
            &client,
            &params.to,
            &params.path,
            params.name.as_deref(),
            timeout,
            &|_| {},
        )
        .await
        .map_err(|e| MethodError::command(&e, vec![]))?;
        if let crate::output::Record::FileSent { id, .. } = &record {
            if let Some(id) = umbra_client_core::MessageId::from_hex(id) {
                self.answered_sends.lock().await.insert(id);
            }
        }
        Ok(done(&[record], status))
    }

    pub(super) async fn file_get(&self, params: FileGetParams) -> Result<Value, MethodError> {
        absolute_only(&params.path)?;
        let record = get_with(&self.client(), &params.id, Some(&params.path), &|_| {})
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(done(&[record], ExitStatus::Success))
    }
}

/// The call `umbra file …` makes to a daemon: method, params, wait.
pub(super) fn request_for(
    command: &FileCommand,
) -> anyhow::Result<(&'static str, Value, Duration)> {
    Ok(match command {
        FileCommand::Send {
            username,
            path,
            name,
            timeout,
            group,
        } => (
            "file.send",
            json!({"to": username, "path": absolute(path)?, "name": name, "timeout": timeout,
                   "group": group}),
            TRANSFER_WAIT,
        ),
        FileCommand::Get { id, path } => {
            // Without a path the caller's current directory, not the daemon's.
            let dest = match path {
                Some(path) => absolute(path)?,
                None => absolute(std::path::Path::new("."))?,
            };
            ("file.get", json!({"id": id, "path": dest}), TRANSFER_WAIT)
        }
    })
}
