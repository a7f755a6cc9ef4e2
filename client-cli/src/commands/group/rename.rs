//! `group rename GROUP NEWNAME`: the group gets a new name (admins, or any
//! member when the group allows it).
//!
//! Must never rename a group the GROUP argument does not name unambiguously.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::{find, finish_change, reference_in, summaries};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn rename<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    new_name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    let old = found.reference.display_name.clone();
    let report = client
        .rename_group(&found.id, new_name)
        .await
        .with_context(|| format!("renaming {old} to {new_name:?}"))?;
    // The record names the group as it is now.
    let groups = summaries(client).await?;
    let renamed = reference_in(&groups, &found.summary.id, new_name);
    let detail = format!("renamed {old} to {}", renamed.display_name);
    finish_change(
        client,
        printer,
        "group_rename",
        detail,
        renamed,
        &report,
        timeout,
    )
    .await
}
