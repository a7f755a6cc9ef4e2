//! `group members GROUP`: who is in a group and who are its admins, from
//! the local store.
//!
//! Must never list the members of a group the GROUP argument does not
//! name unambiguously.

use umbra_client_core::Client;

use super::find;
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn members<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    group: &str,
) -> anyhow::Result<ExitStatus> {
    let found = find(client, group).await?;
    for record in found.summary.member_records(&found.reference.display_name) {
        printer.emit(&record)?;
    }
    Ok(ExitStatus::Success)
}
