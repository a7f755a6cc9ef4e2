//! `group leave GROUP`: this account leaves the group. The other members
//! are told and change their keys; the group stays listed, read-only.
//!
//! Must never leave a group the GROUP argument does not name unambiguously.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::{find, finish_change};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn leave<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    let report = client
        .leave_group(&found.id)
        .await
        .with_context(|| format!("leaving {}", found.reference.display_name))?;
    let detail = format!(
        "left {}; it stays in `umbra group list`, read-only",
        found.reference.display_name
    );
    finish_change(
        client,
        printer,
        "group_leave",
        detail,
        found.reference,
        &report,
        timeout,
    )
    .await
}
