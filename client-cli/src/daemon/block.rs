//! The daemon's `block`, `unblock` and `blocked` methods: what `umbra
//! block`, `umbra unblock` and `umbra blocked` run (commands/block.rs),
//! against the daemon's client, answered with the records the command
//! would print.
//!
//! Must never: do anything the command would not (it runs the same code).

use serde_json::{json, Value};

use super::methods::{json_lines, parse, Daemon, MethodError};
use crate::commands::block::{self, Action, Params};
use crate::output::Printer;

impl Daemon {
    /// `block` and `unblock` (params `contact`), `blocked` (none).
    pub(super) async fn block(&self, method: &str, params: Value) -> Result<Value, MethodError> {
        let action = match method {
            // Like `contacts`, it takes nothing.
            "blocked" => Action::List,
            "block" => Action::Block(parse::<Params>(params)?.contact),
            _ => Action::Unblock(parse::<Params>(params)?.contact),
        };
        let mut printer = Printer::new(true, Vec::new());
        let status = block::apply(&self.client(), action, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }
}
