//! The daemon's `devices`, `devices.remove` and `devices.add_to_list`
//! methods: what `umbra devices`, `umbra devices remove ID` and `umbra
//! devices add-to-list ID` run (commands/devices.rs),
//! against the daemon's client, answered with the records the command
//! would print.
//!
//! Must never: do anything the command would not (it runs the same code).

use serde_json::{json, Value};

use super::methods::{json_lines, parse, Daemon, MethodError};
use crate::cli::DevicesCommand;
use crate::commands::devices::{self, RemoveParams};
use crate::output::Printer;

impl Daemon {
    /// `devices` (no params), `devices.remove` and `devices.add_to_list`
    /// (params `id`).
    pub(super) async fn devices(&self, method: &str, params: Value) -> Result<Value, MethodError> {
        let change = match method {
            "devices.remove" => Some(DevicesCommand::Remove {
                id: parse::<RemoveParams>(params)?.id,
            }),
            "devices.add_to_list" => Some(DevicesCommand::AddToList {
                id: parse::<RemoveParams>(params)?.id,
            }),
            // Like `contacts`, it takes nothing.
            _ => None,
        };
        let mut printer = Printer::new(true, Vec::new());
        let status = devices::apply(&self.client(), change, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }
}
