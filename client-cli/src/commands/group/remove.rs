//! `group remove GROUP MEMBER`: a member out (admins only). Every member
//! changes its sender key before it sends again, so the removed member
//! reads nothing sent afterwards.
//!
//! Must never act on a group the GROUP argument does not name unambiguously
//! (see [`super::resolve`]).

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::{find, finish_change, member};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn remove<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    member_name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    let peer = member(member_name)?;
    let report = client
        .remove_member(&found.id, &peer)
        .await
        .with_context(|| {
            format!(
                "removing {member_name} from {}",
                found.reference.display_name
            )
        })?;
    let detail = format!(
        "removed {member_name} from {}",
        found.reference.display_name
    );
    finish_change(
        client,
        printer,
        "group_remove",
        detail,
        found.reference,
        &report,
        timeout,
    )
    .await
}
