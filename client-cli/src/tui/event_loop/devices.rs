//! The chat loop's `/devices`: asks the backend for the account's devices
//! and reports them as one notice line (an error notice if they could not
//! be listed).
//!
//! Must never: block the loop on the relay (it runs as a task).

use tokio::sync::mpsc;

use super::Completion;
use crate::tui::backend::devices::devices_line;
use crate::tui::backend::Backend;

/// Lists the devices and sends the line back as a completion.
pub(super) async fn list(backend: Backend, done: mpsc::UnboundedSender<Completion>) {
    let report = match backend.devices().await {
        Ok(devices) => Completion::Info(devices_line(&devices)),
        Err(reason) => Completion::Problem(reason),
    };
    let _ = done.send(report);
}
