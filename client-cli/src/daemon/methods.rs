//! The daemon's methods: each runs what the matching `umbra` command runs,
//! against the one unlocked [`Client`], and answers with the records that
//! command would print (the `--json` shapes of output.rs) plus its exit
//! status, so there is one schema and a routed command behaves the same.
//!
//! Must never: report a message as received twice to `receive` after a
//! subscriber marked it reported, print a `sent` record for a send whose
//! caller already got its outcome, or let one method's failure touch
//! another connection.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch, Mutex, Notify, RwLock};
use umbra_client_core::{Client, ClientConfig, ConnectionState, Event, MessageId};

use crate::cli::VerifyArgs;
use crate::commands::about;
use crate::commands::contacts;
use crate::commands::receive::records_for;
use crate::commands::search;
use crate::commands::send::{send_and_wait, Outcome};
use crate::commands::settings;
use crate::commands::verify;
use crate::daemon::protocol::{app_code, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::exit_status::{classify, ExitStatus, Failure};
use crate::output::{Printer, Record};

/// How many events a slow subscriber may fall behind before it is told it
/// lagged (it then misses them; messages stay in the store for `receive`).
const SUBSCRIBER_BUFFER: usize = 1024;

/// How long `account.rename` waits for the notices to contacts to reach the
/// relay, as `umbra account rename` does.
const RENAME_FLUSH: Duration = Duration::from_secs(10);

/// Every method this daemon serves, for `daemon.info` (a client checks
/// it before relying on a method a older daemon may lack).
pub const METHODS: &[&str] = &[
    "whoami",
    "contacts",
    "search",
    "settings",
    "block",
    "unblock",
    "blocked",
    "devices",
    "devices.remove",
    "devices.add_to_list",
    "send",
    "react",
    "edit",
    "delete",
    "typing",
    "receive",
    "verify",
    "mark_reported",
    "account.rename",
    "daemon.info",
    "subscribe",
    "unsubscribe",
    "auth",
    "login",
    "logout",
    "account.delete",
    "password.change",
    "conversations",
    "safety_number",
    "mark_read",
    "enqueue",
    "connection",
    "group.create",
    "group.add",
    "group.remove",
    "group.promote",
    "group.leave",
    "group.rename",
    "group.members",
    "group.list",
    "group.send",
    "group.enqueue",
    "group.conversations",
    "group.mark_read",
    "file.send",
    "file.get",
    "delete_conversation",
    "disappearing",
];

/// The shared state behind every connection.
pub struct Daemon {
    /// The unlocked client. `login` replaces it (a new session means a new
    /// client-core `Client`); everything else takes a clone through
    /// [`Daemon::client`], so a request in flight keeps the one it began with.
    client: watch::Sender<Client>,
    /// What `login` builds the new client from: the daemon's own settings,
    /// with the data-dir lock it already holds.
    pub(super) config: ClientConfig,
    pub(super) data_dir: PathBuf,
    /// Taken shared by every method and exclusively by `login`, so the old
    /// client has finished all its work before the new one opens the store.
    exclusive: RwLock<()>,
    /// Set by a method after which the daemon has nothing left to serve
    /// (`logout`, `account.delete`); the daemon stops once it is answered.
    stop_after_answer: AtomicBool,
    stop: Notify,
    /// Sends whose outcome a `send` caller already received: `receive`
    /// drops their `sent`/`send_failed` events, as a direct `send` consumes
    /// its own.
    pub(super) answered_sends: Mutex<HashSet<MessageId>>,
    /// Event records for subscribers, already in their wire shape.
    pub events: broadcast::Sender<Value>,
    /// Desktop notifications of arrivals (crate::notify; a daemon has no
    /// terminal, so only `UMBRA_NOTIFY=command` shows anything).
    notifier: crate::notify::Notifier,
}

/// Why a method failed.
#[derive(Debug)]
pub struct MethodError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl MethodError {
    pub(super) fn rpc(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A failure of the command itself, with the exit status it has without
    /// the daemon and whatever it printed before failing.
    pub(super) fn command(error: &anyhow::Error, records: Vec<Value>) -> Self {
        let status = classify(error);
        Self {
            code: app_code(status),
            // One line as `umbra` prints it: a cause already quoted by
            // the error above it is not repeated.
            message: crate::exit_status::error_line(error),
            data: Some(json!({"exit_code": status.code(), "records": records})),
        }
    }
}

/// A method's `timeout` in seconds, bounded as the CLI's `--timeout` is.
pub(super) fn timeout_param(secs: Option<u64>, default: u64) -> Result<Duration, MethodError> {
    let secs = secs.unwrap_or(default);
    if secs > crate::cli::MAX_TIMEOUT_SECS {
        return Err(MethodError::rpc(
            INVALID_PARAMS,
            format!(
                "invalid params: timeout {secs} s is over the limit of {} s",
                crate::cli::MAX_TIMEOUT_SECS
            ),
        ));
    }
    Ok(Duration::from_secs(secs))
}

impl Daemon {
    pub fn new(
        client: Client,
        config: ClientConfig,
        data_dir: PathBuf,
        notifier: crate::notify::Notifier,
    ) -> Self {
        Self {
            notifier,
            client: watch::Sender::new(client),
            config,
            data_dir,
            exclusive: RwLock::new(()),
            stop_after_answer: AtomicBool::new(false),
            stop: Notify::new(),
            answered_sends: Mutex::new(HashSet::new()),
            events: broadcast::channel(SUBSCRIBER_BUFFER).0,
        }
    }

    /// The client requests run against now.
    pub fn client(&self) -> Client {
        self.client.borrow().clone()
    }

    /// Puts a freshly logged-in client in place of the old one.
    pub(super) fn replace_client(&self, client: Client) {
        self.client.send_replace(client);
    }

    /// Asks the daemon to stop once the current request is answered.
    pub(super) fn stop_after_answer(&self) {
        self.stop_after_answer.store(true, Ordering::SeqCst);
    }

    /// Called after each answer was handed to its connection's writer:
    /// if that request was a `logout` or `account.delete`, stop now.
    pub fn answered(&self) {
        if self.stop_after_answer.load(Ordering::SeqCst) {
            self.stop.notify_one();
        }
    }

    /// Resolves once the daemon should stop (see [`Daemon::answered`]).
    pub async fn stopping(&self) {
        self.stop.notified().await;
    }

    /// Runs one method. `subscribe`/`unsubscribe`/`auth` belong to the
    /// connection and are handled by the server.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, MethodError> {
        if method == "login" {
            let _only = self.exclusive.write().await;
            return self.login(params).await;
        }
        let _shared = self.exclusive.read().await;
        match method {
            "whoami" => self.whoami().await,
            "contacts" => self.contacts().await,
            "search" => self.search(parse(params)?).await,
            "settings" => self.settings(parse(params)?).await,
            "block" | "unblock" | "blocked" => self.block(method, params).await,
            "devices" | "devices.remove" | "devices.add_to_list" => {
                self.devices(method, params).await
            }
            "send" => self.send(parse(params)?).await,
            "react" | "edit" | "delete" => self.about(method, params).await,
            "typing" => self.typing(params).await,
            "receive" => self.receive(parse(params)?).await,
            "verify" => self.verify(parse(params)?).await,
            "mark_reported" => self.mark_reported(parse(params)?).await,
            "account.rename" => self.rename(parse(params)?).await,
            "logout" => self.logout(parse(params)?).await,
            "account.delete" => self.delete(parse(params)?).await,
            "password.change" => self.change_password(params).await,
            "conversations" => self.conversations(parse(params)?).await,
            "safety_number" => self.safety_number(parse(params)?).await,
            "mark_read" => self.mark_read(parse(params)?).await,
            "enqueue" => self.enqueue(parse(params)?).await,
            "connection" => Ok(connection_value(&self.client().connection_state())),
            group if group.starts_with("group.") => self.group_method(group, params).await,
            "file.send" => self.file_send(parse(params)?).await,
            "file.get" => self.file_get(parse(params)?).await,
            "delete_conversation" => self.delete_conversation(parse(params)?).await,
            "disappearing" => self.disappearing(parse(params)?).await,
            "daemon.info" => Ok(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
                "schema": 1,
                "methods": METHODS,
            })),
            other => Err(MethodError::rpc(
                METHOD_NOT_FOUND,
                format!("no method {other:?}"),
            )),
        }
    }

    async fn whoami(&self) -> Result<Value, MethodError> {
        let me = self.client().whoami();
        let logged_in = self.client().is_logged_in().await.map_err(|e| {
            MethodError::command(
                &anyhow::Error::new(e).context("reading the local store"),
                vec![],
            )
        })?;
        Ok(done(
            &[Record::Account {
                username: me.username.as_str().to_owned(),
                account_id: me.account_id.to_hex(),
                device_id: me.device_id,
                server: me.server_url,
                logged_in,
            }],
            ExitStatus::Success,
        ))
    }

    async fn contacts(&self) -> Result<Value, MethodError> {
        let contacts = self.client().contacts().await.map_err(|e| {
            MethodError::command(&anyhow::Error::new(e).context("listing contacts"), vec![])
        })?;
        let mut printer = Printer::new(true, Vec::new());
        let status = contacts::print(contacts, &mut printer)
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }

    async fn search(&self, params: SearchParams) -> Result<Value, MethodError> {
        let limit = params.limit.unwrap_or(search::DEFAULT_LIMIT);
        if limit == 0 || limit > umbra_client_core::MAX_SEARCH_LIMIT {
            return Err(MethodError::rpc(
                INVALID_PARAMS,
                format!("limit must be 1 to {}", umbra_client_core::MAX_SEARCH_LIMIT),
            ));
        }
        search::check_query(&params.text).map_err(|e| MethodError::command(&e, vec![]))?;
        let mut printer = Printer::new(true, Vec::new());
        let status = search::search(&self.client(), &params.text, limit, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }

    async fn settings(&self, params: settings::Params) -> Result<Value, MethodError> {
        if params.both() {
            return Err(MethodError::rpc(
                INVALID_PARAMS,
                "give read_receipts or typing, not both".to_owned(),
            ));
        }
        let change = params.change();
        let mut printer = Printer::new(true, Vec::new());
        let status = settings::apply(&self.client(), change, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }

    async fn send(&self, params: SendParams) -> Result<Value, MethodError> {
        if params.message.trim().is_empty() {
            let error = Failure::user("the message is empty").into();
            return Err(MethodError::command(&error, vec![]));
        }
        let timeout = timeout_param(params.timeout, 30)?;
        let reply_to = params
            .reply_to
            .as_deref()
            .map(about::message_id)
            .transpose()
            .map_err(|e| MethodError::command(&e, vec![]))?;
        let (client, to, body) = (self.client(), &params.to, &params.message);
        let sending = send_and_wait(&client, to, body, reply_to, timeout)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        self.answered_sends.lock().await.insert(sending.id);
        match sending.outcome {
            Outcome::Accepted => Ok(done(
                &[Record::Sent {
                    to: params.to,
                    id: sending.id.to_hex(),
                    sent_at: time::OffsetDateTime::now_utc(),
                    group: None,
                }],
                ExitStatus::Success,
            )),
            Outcome::Refused(reason) => {
                let record = Record::SendFailed {
                    to: params.to.clone(),
                    id: sending.id.to_hex(),
                    reason: reason.to_string(),
                    group: None,
                };
                let error = Failure::new(
                    ExitStatus::Network,
                    format!("the relay refused the message to {}: {reason}", params.to),
                )
                .into();
                Err(MethodError::command(&error, vec![to_value(&record)]))
            }
        }
    }

    async fn verify(&self, params: VerifyParams) -> Result<Value, MethodError> {
        let args = VerifyArgs {
            username: params.username,
            mark_verified: params.mark_verified,
            accept: params.accept,
        };
        if args.mark_verified.is_some() && args.accept.is_some() {
            return Err(MethodError::rpc(
                INVALID_PARAMS,
                "mark_verified and accept exclude each other",
            ));
        }
        let mut printer = Printer::new(true, Vec::new());
        let result = verify::verify(&self.client(), &mut printer, &args).await;
        let records = json_lines(&printer.into_inner());
        match result {
            Ok(status) => Ok(json!({"records": records, "exit_code": status.code()})),
            Err(e) => Err(MethodError::command(&e, records)),
        }
    }

    /// `umbra account rename NEW`: the same steps and record.
    async fn rename(&self, params: RenameParams) -> Result<Value, MethodError> {
        let client = self.client();
        let old = client.whoami().username;
        let new = params.new_username;
        client.rename(&new).await.map_err(|e| {
            let error = anyhow::Error::new(e).context(format!("renaming {old} to {new}"));
            MethodError::command(&error, vec![])
        })?;
        // Contacts are told through the outbox; give it a moment to leave.
        let _ = client.flush_outbox(RENAME_FLUSH).await;
        let now = client.whoami().username;
        Ok(done(
            &[Record::Done {
                action: "rename".into(),
                detail: format!(
                    "renamed {old} to {now}; contacts are told the next time they receive"
                ),
                group: None,
            }],
            ExitStatus::Success,
        ))
    }

    /// Turns one client event into the notifications subscribers get.
    pub async fn publish(&self, event: Event) {
        // The daemon has no terminal: only the command mode shows.
        self.notifier.notify_event(&event, None);
        if self.events.receiver_count() == 0 {
            return;
        }
        let values = match event {
            // Not a record of any command: only subscribers see typing.
            Event::Typing { from, started } => {
                vec![json!({"type": "typing", "from": from, "started": started})]
            }
            Event::GroupTyping {
                group,
                from,
                started,
            } => vec![super::groups::typing_value(&self.client(), &group, &from, started).await],
            Event::Connection(state) => vec![connection_event(&state)],
            other => records_for(&self.client(), other)
                .await
                .iter()
                .map(to_value)
                .collect(),
        };
        for value in values {
            // No subscriber left is fine.
            let _ = self.events.send(value);
        }
    }

    /// Forwards every event of the current client to subscribers, and
    /// follows `login` to the client that replaces it.
    pub async fn forward_events(&self) {
        let mut current = self.client.subscribe();
        loop {
            let mut events = current.borrow_and_update().events();
            let replaced = loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(event) => self.publish(event).await,
                        // That client is gone; wait for its successor.
                        None => break false,
                    },
                    changed = current.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break true;
                    }
                }
            };
            if !replaced && current.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The connection state as `connection` answers it and as the
/// `connection` event carries it.
pub(crate) fn connection_value(state: &ConnectionState) -> Value {
    match state {
        ConnectionState::Offline => json!({"state": "offline"}),
        ConnectionState::Connecting => json!({"state": "connecting"}),
        ConnectionState::Connected => json!({"state": "connected"}),
        ConnectionState::Reconnecting { retry_in, cause } => {
            json!({"state": "reconnecting", "retry_in": retry_in.as_secs(), "reason": cause.to_string()})
        }
        ConnectionState::Closed { reason } => {
            json!({"state": "closed", "reason": reason.to_string(), "reason_code": reason.code()})
        }
        ConnectionState::Replaced => json!({"state": "replaced"}),
    }
}

fn connection_event(state: &ConnectionState) -> Value {
    let mut value = connection_value(state);
    value["type"] = "connection".into();
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendParams {
    to: String,
    message: String,
    timeout: Option<u64>,
    #[serde(default)]
    reply_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    text: String,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyParams {
    username: String,
    mark_verified: Option<String>,
    accept: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameParams {
    new_username: String,
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, MethodError> {
    serde_json::from_value(params)
        .map_err(|e| MethodError::rpc(INVALID_PARAMS, format!("invalid params: {e}")))
}

pub(super) fn to_value(record: &Record) -> Value {
    serde_json::to_value(record).unwrap_or_else(
        |e| json!({"type": "internal_error", "code": INTERNAL_ERROR, "reason": e.to_string()}),
    )
}

pub(super) fn done(records: &[Record], status: ExitStatus) -> Value {
    let records: Vec<Value> = records.iter().map(to_value).collect();
    json!({"records": records, "exit_code": status.code()})
}

/// The records a command printed in `--json` form, back as values.
pub(super) fn json_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_json_lines_come_back_as_the_same_values() {
        let record = Record::Done {
            action: "accept".into(),
            detail: "bob\u{202e} ok".into(),
            group: None,
        };
        let mut printer = Printer::new(true, Vec::new());
        printer.emit(&record).unwrap();
        printer.emit(&Record::Drained { count: 2 }).unwrap();
        let values = json_lines(&printer.into_inner());
        assert_eq!(
            values,
            vec![to_value(&record), json!({"type": "drained", "count": 2})]
        );
    }

    #[test]
    fn a_timeout_over_a_day_is_invalid_params_not_a_panic() {
        assert_eq!(
            timeout_param(Some(crate::cli::MAX_TIMEOUT_SECS), 10).unwrap(),
            Duration::from_secs(crate::cli::MAX_TIMEOUT_SECS)
        );
        assert_eq!(timeout_param(None, 10).unwrap(), Duration::from_secs(10));
        let err = timeout_param(Some(u64::MAX), 10).err().unwrap();
        assert_eq!(err.code, INVALID_PARAMS);
    }

    #[test]
    fn unknown_params_are_refused() {
        let err = parse::<SendParams>(json!({"to": "bob", "message": "hi", "password": "x"}))
            .err()
            .unwrap();
        assert_eq!(err.code, INVALID_PARAMS);
        assert!(parse::<SendParams>(json!({"to": "bob"})).is_err());
    }
}
