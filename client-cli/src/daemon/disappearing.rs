//! The daemon's `disappearing` method: what `umbra disappearing` runs
//! (commands/disappearing.rs), against the daemon's client, answered with
//! the records the command would print.
//!
//! Must never: do anything the command would not (it runs the same code).

use serde_json::{json, Value};

use super::methods::{json_lines, timeout_param, Daemon, MethodError};
use crate::commands::disappearing::{self, Params};
use crate::output::Printer;

impl Daemon {
    /// `disappearing {username, duration, timeout?}`.
    pub(super) async fn disappearing(&self, params: Params) -> Result<Value, MethodError> {
        // The same bound as every other timeout param.
        timeout_param(params.timeout, 30)?;
        let mut printer = Printer::new(true, Vec::new());
        let status = disappearing::perform(&self.client(), &params, &mut printer)
            .await
            .map_err(|e| MethodError::command(&e, vec![]))?;
        Ok(json!({"records": json_lines(&printer.into_inner()), "exit_code": status.code()}))
    }
}
