//! The daemon's `react`, `edit` and `delete` methods: what `umbra react`,
//! `umbra edit` and `umbra delete --for-everyone` run
//! (commands/about.rs), against the daemon's client, answered with the
//! records the command would print.
//!
//! Also `typing`, the notice `umbra chat` sends while its user types.
//!
//! Must never: send a change the command would refuse (it runs the same
//! code), or a typing notice the account's `typing` setting turned off
//! (client-core drops those).

use serde::Deserialize;
use serde_json::{json, Value};

use super::methods::{json_lines, parse, timeout_param, Daemon, MethodError};
use super::protocol::INVALID_PARAMS;
use crate::commands::about;
use crate::output::Printer;

/// `react`, `edit` and `delete`: the target, then each method's own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AboutParams {
    to: String,
    id: String,
    #[serde(default)]
    group: bool,
    timeout: Option<u64>,
    emoji: Option<String>,
    #[serde(default)]
    remove: bool,
    message: Option<String>,
    #[serde(default)]
    for_everyone: bool,
}

/// `typing`: whom, and whether we started or stopped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingParams {
    to: String,
    started: bool,
    #[serde(default)]
    group: bool,
}

impl Daemon {
    /// `typing {to, started, group?}`: tells a contact or a group's members
    /// we started or stopped typing. Ephemeral: nothing is queued or stored.
    pub(super) async fn typing(&self, params: Value) -> Result<Value, MethodError> {
        let p: TypingParams = parse(params)?;
        let client = self.client();
        let sent = if p.group {
            let found = crate::commands::group::find(&client, &p.to)
                .await
                .map_err(|e| MethodError::command(&e, vec![]))?;
            client.send_group_typing(&found.id, p.started).await
        } else {
            let to = umbra_protocol::wire::Username::parse(&p.to)
                .map_err(|e| MethodError::rpc(INVALID_PARAMS, e.to_string()))?;
            client.send_typing(&to, p.started).await
        };
        sent.map_err(|e| MethodError::command(&e.into(), vec![]))?;
        Ok(json!({"typing": p.started}))
    }

    /// `react`, `edit`, `delete`: what `umbra react|edit|delete` runs.
    pub(super) async fn about(&self, method: &str, params: Value) -> Result<Value, MethodError> {
        let p: AboutParams = parse(params)?;
        let invalid = |why: &str| MethodError::rpc(INVALID_PARAMS, why.to_owned());
        let change = match method {
            "react" => about::Change::React {
                emoji: p.emoji.ok_or_else(|| invalid("react needs emoji"))?,
                remove: p.remove,
            },
            "edit" => about::Change::Edit {
                message: p.message.ok_or_else(|| invalid("edit needs message"))?,
            },
            _ if p.for_everyone => about::Change::Delete,
            _ => return Err(invalid("delete needs for_everyone: true")),
        };
        let about = about::About {
            to: p.to,
            id: p.id,
            group: p.group,
            timeout: timeout_param(p.timeout, 30)?,
            change,
        };
        let mut printer = Printer::new(true, Vec::new());
        let status = about::perform(&self.client(), &about, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }
}
