//! The other side: how a plain `umbra` command finds a daemon serving its
//! data directory and runs through it, with no password prompt and no key
//! stretching, printing and exiting exactly as it would on its own.
//!
//! Discovery is a `connect(2)` on the socket: a live daemon accepts at
//! once; a socket file left by a dead one refuses at once (ECONNREFUSED),
//! and the command then takes the data-dir lock as usual, so a stale file
//! never blocks anything.
//!
//! Must never: ask for a password when a daemon answers, print a record it
//! did not get from the daemon, or exit 0 for a request the daemon failed.

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zeroize::Zeroize as _;

use super::protocol::{exit_status_from, read_frame, status_of_code, Frame};
use crate::cli::{AccountCommand, Command, PasswordCommand};
use crate::commands::account::{ask_to_delete, confirmation, Confirmation};
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{Printer, Record};
use crate::password::Purpose;
use crate::session::Session;

/// Responses can carry many records (a long `receive`).
pub(super) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How often a command waiting for the data-dir lock looks for a daemon.
const DAEMON_POLL: Duration = Duration::from_millis(100);

/// Added to a command's own timeout before giving up on the daemon.
const DAEMON_GRACE: Duration = Duration::from_secs(30);

/// How long `login` through the daemon may take: the relay round trips,
/// key stretching to unlock the store again, and the first receive.
const LOGIN_WAIT: Duration = Duration::from_secs(90);

/// How long `password change` through the daemon may take: two OPAQUE key
/// stretchings, two for the store's key slots, the relay round trips and
/// the backup upload.
const PASSWORD_CHANGE_WAIT: Duration = Duration::from_secs(90);

/// A connection to the daemon of one data directory.
pub struct DaemonConnection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

/// A JSON-RPC error from the daemon.
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Value,
}

impl RpcError {
    /// The `error` member of a response.
    pub fn from_value(error: &Value) -> Self {
        Self {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            data: error.get("data").cloned().unwrap_or(Value::Null),
        }
    }

    /// As a failure of this process, with the exit status the code stands for.
    pub fn into_failure(self) -> Failure {
        match status_of_code(self.code) {
            Some(status) => Failure::new(status, self.message),
            None => Failure::new(
                ExitStatus::Internal,
                format!(
                    "the daemon refused the request: {} ({})",
                    self.message, self.code
                ),
            ),
        }
    }
}

impl DaemonConnection {
    /// Connects to the daemon serving `data_dir`, if one is running.
    pub async fn find(data_dir: &Path) -> Option<Self> {
        let path = super::socket_path(data_dir).ok()?;
        let stream = UnixStream::connect(&path).await.ok()?;
        let (reader, writer) = stream.into_split();
        Some(Self {
            reader: BufReader::new(reader),
            writer,
            next_id: 1,
        })
    }

    /// Waits (without bound: the caller races it against the lock wait)
    /// until a daemon serves `data_dir`.
    pub async fn wait_for(data_dir: &Path) -> Self {
        loop {
            tokio::time::sleep(DAEMON_POLL).await;
            if let Some(daemon) = Self::find(data_dir).await {
                return daemon;
            }
        }
    }

    /// Writes one request line. Every string in it is wiped afterwards, as
    /// is the line: a `login` carries the password.
    async fn write(&mut self, mut value: Value) -> anyhow::Result<()> {
        let mut line = value.to_string();
        wipe(&mut value);
        line.push('\n');
        let written = self.writer.write_all(line.as_bytes()).await;
        line.zeroize();
        written.map_err(|e| daemon_gone(&e.to_string()))?;
        Ok(())
    }

    /// Sends a request and returns its id.
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        Ok(id)
    }

    /// The next line from the daemon (a response or a notification).
    async fn next(&mut self) -> anyhow::Result<Value> {
        match read_frame(&mut self.reader, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| daemon_gone(&e.to_string()))?
        {
            Frame::Line(line) => serde_json::from_slice(&line).map_err(|e| {
                Failure::new(
                    ExitStatus::Internal,
                    format!("the daemon sent garbage: {e}"),
                )
                .into()
            }),
            Frame::TooLong => {
                Err(Failure::new(ExitStatus::Internal, "the daemon's answer is too large").into())
            }
            Frame::Eof => Err(daemon_gone("it closed the connection").into()),
        }
    }

    /// One call: waits for its response, skipping notifications.
    async fn call(
        &mut self,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> anyhow::Result<Result<Value, RpcError>> {
        let id = self.request(method, params).await?;
        let answer = async {
            loop {
                let value = self.next().await?;
                if value.get("id").and_then(Value::as_u64) == Some(id) {
                    return anyhow::Ok(value);
                }
            }
        };
        let value = tokio::time::timeout(wait, answer).await.map_err(|_| {
            Failure::new(
                ExitStatus::Network,
                format!("the daemon did not answer {method} within {wait:?}"),
            )
        })??;
        if let Some(error) = value.get("error") {
            return Ok(Err(RpcError::from_value(error)));
        }
        Ok(Ok(value.get("result").cloned().unwrap_or(Value::Null)))
    }

    /// The two halves, for [`super::channel::RpcChannel`].
    pub(crate) fn into_parts(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.reader, self.writer)
    }
}

/// Zeroes every string in `value` before it is dropped.
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

pub(super) fn daemon_gone(why: &str) -> Failure {
    Failure::new(
        ExitStatus::Network,
        format!("lost the umbra daemon ({why})"),
    )
}

/// The daemon request of `react`, `edit` or `delete`: the target's
/// members and `extra`'s (an edit's `-` is read here, as `send` does).
fn about_request(
    method: &'static str,
    target: &crate::cli::AboutTarget,
    extra: impl FnOnce() -> Value,
) -> anyhow::Result<(&'static str, Value, Duration)> {
    let mut params = json!({"to": target.to, "id": target.id, "group": target.group,
                            "timeout": target.timeout});
    if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), extra()) {
        params.extend(extra);
    }
    if method == "edit" && params["message"] == "-" {
        params["message"] = Value::String(crate::commands::send::read_stdin()?);
    }
    let wait = Duration::from_secs(target.timeout).saturating_add(DAEMON_GRACE);
    Ok((method, params, wait))
}

/// Runs `command` through the daemon.
pub async fn dispatch(
    mut daemon: DaemonConnection,
    session: &Session,
    command: &Command,
) -> anyhow::Result<ExitStatus> {
    let mut printer = session.printer();
    let (method, params, wait) = match command {
        Command::Whoami => ("whoami", json!({}), DAEMON_GRACE),
        Command::Contacts => ("contacts", json!({}), DAEMON_GRACE),
        Command::Block(args) => ("block", json!({"contact": args.contact}), DAEMON_GRACE),
        Command::Unblock(args) => ("unblock", json!({"contact": args.contact}), DAEMON_GRACE),
        Command::Blocked => ("blocked", json!({}), DAEMON_GRACE),
        Command::Devices(args) => match args.change {
            None => ("devices", json!({}), DAEMON_GRACE),
            Some(crate::cli::DevicesCommand::Remove { id }) => {
                ("devices.remove", json!({"id": id}), DAEMON_GRACE)
            }
            Some(crate::cli::DevicesCommand::AddToList { id }) => {
                ("devices.add_to_list", json!({"id": id}), DAEMON_GRACE)
            }
        },
        Command::Settings(args) => (
            "settings",
            crate::commands::settings::params(args.change),
            DAEMON_GRACE,
        ),
        Command::Search { text, limit } => {
            crate::commands::search::check_query(text)?;
            (
                "search",
                json!({"text": text, "limit": limit}),
                DAEMON_GRACE,
            )
        }
        Command::Send {
            username,
            message,
            timeout,
            reply_to,
        } => {
            let body = if message == "-" {
                crate::commands::send::read_stdin()?
            } else {
                message.clone()
            };
            (
                "send",
                json!({"to": username, "message": body, "timeout": timeout,
                       "reply_to": reply_to}),
                Duration::from_secs(*timeout).saturating_add(DAEMON_GRACE),
            )
        }
        Command::React(args) => about_request("react", &args.target, || {
            json!({"emoji": args.emoji, "remove": args.remove})
        })?,
        Command::Edit(args) => about_request("edit", &args.target, || {
            json!({"message": args.message})
        })?,
        Command::Delete(args) => about_request("delete", &args.target, || {
            json!({"for_everyone": args.for_everyone})
        })?,
        Command::DeleteConversation {
            username,
            everyone,
            timeout,
        } => (
            "delete_conversation",
            json!({"username": username, "everyone": everyone, "timeout": timeout}),
            Duration::from_secs(*timeout).saturating_add(DAEMON_GRACE),
        ),
        Command::Disappearing {
            username,
            duration,
            timeout,
            group,
        } => (
            "disappearing",
            json!({"username": username, "duration": duration, "timeout": timeout,
                   "group": group}),
            Duration::from_secs(*timeout).saturating_add(DAEMON_GRACE),
        ),
        Command::Receive {
            timeout,
            follow: true,
        } => {
            return follow(daemon, &mut printer, *timeout).await;
        }
        Command::Receive {
            timeout,
            follow: false,
        } => (
            "receive",
            json!({"timeout": timeout, "mark_reported": false}),
            Duration::from_secs(*timeout).saturating_add(DAEMON_GRACE),
        ),
        Command::Verify(args) => (
            "verify",
            json!({"username": args.username, "mark_verified": args.mark_verified, "accept": args.accept}),
            DAEMON_GRACE,
        ),
        Command::Account(AccountCommand::Rename { new_username }) => (
            "account.rename",
            json!({"new_username": new_username}),
            Duration::from_secs(10) + DAEMON_GRACE,
        ),
        Command::Chat => return crate::tui::run_through_daemon(daemon, session).await,
        Command::Group(group) => {
            let (method, params, wait) = super::groups::request_for(group)?;
            (method, params, wait.saturating_add(DAEMON_GRACE))
        }
        Command::File(file) => super::files::request_for(file)?,
        // The daemon logs out, answers, and stops (docs/CLI.md).
        Command::Logout => ("logout", json!({}), DAEMON_GRACE),
        Command::Login {
            new_identity: true,
            ..
        } => anyhow::bail!(
            "login --new-identity needs an empty data directory, and a daemon runs on this one              (it holds an account)"
        ),
        Command::Login {
            store_password_file: Some(_),
            ..
        } => anyhow::bail!(
            "login --store-password-file is not sent through a running daemon; stop the daemon \
             and run it again"
        ),
        Command::Login { username, .. } => {
            // OPAQUE needs the password even through the daemon; it goes
            // over the private socket and is wiped after writing.
            let password = session.password(username, Purpose::Existing)?;
            (
                "login",
                json!({"username": username, "password": password.as_str()}),
                LOGIN_WAIT,
            )
        }
        Command::Password(PasswordCommand::Change { new_password_file }) => {
            // Both passwords are needed (OPAQUE proves the old one to the
            // relay); they go over the private socket and are wiped after
            // writing. The daemon runs the strength check, as `register`.
            let label = format!("the umbra account in {}", session.data_dir.display());
            let old = session.password(&label, Purpose::Existing)?;
            let new = crate::commands::password::new_password(new_password_file.as_deref())?;
            (
                "password.change",
                json!({"old_password": old.as_str(), "new_password": new.as_str()}),
                PASSWORD_CHANGE_WAIT,
            )
        }
        Command::Account(AccountCommand::Delete { yes }) => {
            // The same rule as on its own: `--yes`, or the username typed
            // on this command's terminal; nothing reaches the daemon
            // otherwise.
            if confirmation(*yes, std::io::stdin().is_terminal())? == Confirmation::Ask {
                let who = daemon.call("whoami", json!({}), DAEMON_GRACE).await?;
                let who = who.map_err(RpcError::into_failure)?;
                let account = &who["records"][0];
                let field = |name: &str| account[name].as_str().unwrap_or_default().to_owned();
                ask_to_delete(&field("username"), &field("server"), &session.data_dir)?;
            }
            ("account.delete", json!({"yes": true}), DAEMON_GRACE)
        }
        other => return Err(held_by_daemon(session, other).into()),
    };
    let answer = daemon.call(method, params, wait).await?;
    let printed = message_ids(answer.as_ref().ok());
    let status = finish(answer, &mut printer)?;
    // Only after printing, as a direct `receive` does: a crash in between
    // prints them again next time rather than never.
    mark_printed(&mut daemon, printed).await?;
    if let (Command::Verify(args), ExitStatus::UntrustedKey) = (command, status) {
        if args.accept.is_none() && args.mark_verified.is_none() {
            eprintln!(
                "compare the number with {peer}, then: umbra verify {peer} --accept 'NUMBER'",
                peer = crate::sanitize::SafeText::line(&args.username)
            );
        }
    }
    Ok(status)
}

/// Prints a call's records and turns its outcome into this process's.
fn finish<W: std::io::Write>(
    answer: Result<Value, RpcError>,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    match answer {
        Ok(result) => {
            print_records(result.get("records"), printer)?;
            let code = result.get("exit_code").and_then(Value::as_u64).unwrap_or(0);
            Ok(u8::try_from(code)
                .ok()
                .and_then(exit_status_from)
                .unwrap_or(ExitStatus::Internal))
        }
        Err(error) => {
            print_records(error.data.get("records"), printer)?;
            Err(error.into_failure().into())
        }
    }
}

fn print_records<W: std::io::Write>(
    records: Option<&Value>,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    for value in records.and_then(Value::as_array).into_iter().flatten() {
        // A record type this binary does not know (a newer daemon) is skipped.
        if let Ok(record) = serde_json::from_value::<Record>(value.clone()) {
            printer.emit(&record)?;
        }
    }
    Ok(())
}

/// `receive --follow` through the daemon: subscribe first, drain what is
/// waiting, then print each event as it comes until interrupted.
async fn follow<W: std::io::Write>(
    mut daemon: DaemonConnection,
    printer: &mut Printer<W>,
    timeout: u64,
) -> anyhow::Result<ExitStatus> {
    daemon.request("subscribe", json!({})).await?;
    let id = daemon
        .request(
            "receive",
            json!({"timeout": timeout, "mark_reported": false}),
        )
        .await?;
    let mut early = Vec::new();
    let drained = loop {
        let value = daemon.next().await?;
        if value.get("id").and_then(Value::as_u64) == Some(id) {
            break value;
        }
        if value.get("method").and_then(Value::as_str) == Some("event") {
            early.push(value);
        }
    };
    let mut shown: HashSet<String> = HashSet::new();
    for record in drained
        .pointer("/result/records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = message_id(record) {
            shown.insert(id.to_owned());
        }
    }
    if let Some(error) = drained.get("error") {
        return finish(Err(RpcError::from_value(error)), printer);
    }
    finish(Ok(drained["result"].clone()), printer)?;
    if !shown.is_empty() {
        // Not awaited: notifications keep arriving meanwhile, and `call`
        // would skip them. The answer is skipped like the others.
        let ids: Vec<&String> = shown.iter().collect();
        daemon.request("mark_reported", json!({"ids": ids})).await?;
    }
    for value in early {
        show_event(&mut daemon, printer, &mut shown, &value).await?;
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            value = daemon.next() => {
                let value = value?;
                if value.get("method").and_then(Value::as_str) == Some("event") {
                    show_event(&mut daemon, printer, &mut shown, &value).await?;
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitStatus::Success),
            _ = terminate.recv() => return Ok(ExitStatus::Success),
        }
    }
}

/// The ids of the `message` records in a result.
fn message_ids(result: Option<&Value>) -> Vec<String> {
    result
        .and_then(|r| r.get("records"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(message_id)
        .map(str::to_owned)
        .collect()
}

async fn mark_printed(daemon: &mut DaemonConnection, ids: Vec<String>) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    match daemon
        .call("mark_reported", json!({"ids": ids}), DAEMON_GRACE)
        .await?
    {
        Ok(_) => Ok(()),
        Err(error) => {
            let status = status_of_code(error.code).unwrap_or(ExitStatus::Internal);
            Err(Failure::new(status, error.message).into())
        }
    }
}

fn message_id(record: &Value) -> Option<&str> {
    (record.get("type")? == "message").then(|| record.get("id")?.as_str())?
}

async fn show_event<W: std::io::Write>(
    daemon: &mut DaemonConnection,
    printer: &mut Printer<W>,
    shown: &mut HashSet<String>,
    notification: &Value,
) -> anyhow::Result<()> {
    let record = &notification["params"];
    let id = message_id(record).map(str::to_owned);
    if let Some(id) = &id {
        if !shown.insert(id.clone()) {
            return Ok(());
        }
    }
    if let Ok(parsed) = serde_json::from_value::<Record>(record.clone()) {
        printer.emit(&parsed)?;
    }
    // Only after printing, as `receive` does. The answer is not awaited:
    // it arrives among the notifications and is skipped.
    if let Some(id) = id {
        daemon
            .request("mark_reported", json!({"ids": [id]}))
            .await
            .context("marking a message reported")?;
    }
    Ok(())
}

/// Commands the daemon does not serve: say what holds the directory
/// instead of waiting on its lock.
fn held_by_daemon(session: &Session, command: &Command) -> Failure {
    let what = match command {
        Command::Daemon(_) => "a daemon is already running for it".to_owned(),
        Command::Register { .. } => {
            "it already holds an account; use another --data-dir to register a second one"
                .to_owned()
        }
        _ => "stop the daemon to run this command".to_owned(),
    };
    Failure::local(format!(
        "a daemon holds this data dir ({}): {what}",
        session.data_dir.display()
    ))
}
