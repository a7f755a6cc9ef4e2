//! `group add GROUP MEMBER`: a new member (admins only). The new member
//! can read only what is sent from now on.
//!
//! Must never act on a group the GROUP argument does not name unambiguously
//! (see [`super::resolve`]).

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::{find, finish_change, member};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn add<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    member_name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    let peer = member(member_name)?;
    let report = client
        .add_members(&found.id, &[peer])
        .await
        .with_context(|| format!("adding {member_name} to {}", found.reference.display_name))?;
    let detail = format!("added {member_name} to {}", found.reference.display_name);
    finish_change(
        client,
        printer,
        "group_add",
        detail,
        found.reference,
        &report,
        timeout,
    )
    .await
}
