//! The daemon's `react`, `edit` and `delete` methods: what `umbra react`,
//! `umbra edit` and `umbra delete --for-everyone` run
//! (commands/about.rs), against the daemon's client, answered with the
//! records the command would print.
//!
//! Must never: send a change the command would refuse (it runs the same
//! code).

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

impl Daemon {
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
