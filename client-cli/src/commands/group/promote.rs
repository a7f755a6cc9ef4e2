//! `group promote GROUP MEMBER`: a member becomes an admin (admins only).
//!
//! Must never act on a group the GROUP argument does not name unambiguously
//! (see [`super::resolve`]).

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::{find, finish_change, member};
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn promote<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
    member_name: &str,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    let peer = member(member_name)?;
    let report = client
        .promote_member(&found.id, &peer)
        .await
        .with_context(|| {
            format!(
                "promoting {member_name} in {}",
                found.reference.display_name
            )
        })?;
    let detail = format!(
        "made {member_name} an admin of {}",
        found.reference.display_name
    );
    finish_change(
        client,
        printer,
        "group_promote",
        detail,
        found.reference,
        &report,
        timeout,
    )
    .await
}
