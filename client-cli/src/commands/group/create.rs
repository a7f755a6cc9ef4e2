//! `group create NAME MEMBER... [--members-may-rename]`: a new group with
//! this account as its admin and the MEMBERs as members (and, if asked,
//! one any member may rename, docs/PROTOCOL.md §8.9).
//!
//! Must never create a group the user did not ask for twice over (a
//! failure after client-core made it is reported, not retried).

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, GroupPolicy};

use super::{finish_change, member, reference_in, summaries};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn create<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    name: &str,
    members: &[String],
    policy: GroupPolicy,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let peers = members
        .iter()
        .map(|m| member(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = client
        .create_group_with_policy(name, &peers, policy)
        .await
        .with_context(|| format!("creating the group {name:?}"))?;
    let groups = summaries(client).await?;
    let group = reference_in(&groups, &report.group.to_hex(), name);
    let detail = format!(
        "created the group {} with {}; you are its admin{}",
        group.display_name,
        members.join(", "),
        if policy.members_may_rename {
            "; any member may rename it"
        } else {
            ""
        }
    );
    finish_change(
        client,
        printer,
        "group_create",
        detail,
        group,
        &report,
        timeout,
    )
    .await
}
