//! `group list`: every group this account is in, or was (a group it left
//! stays listed, read-only), from the local store.
//!
//! Must never show two groups under the same label (see
//! [`super::resolve::display_names`]).

use umbra_client_core::Client;

use super::resolve::display_names;
use super::summaries;
use crate::exit_status::ExitStatus;
use crate::output::Printer;

pub(crate) async fn list<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let mut groups = summaries(client).await?;
    let labels = display_names(&groups);
    // Active groups first, then by how they are shown.
    groups.sort_by(|a, b| {
        b.active
            .cmp(&a.active)
            .then_with(|| labels[&a.id].cmp(&labels[&b.id]))
    });
    for group in &groups {
        printer.emit(&group.record(&labels[&group.id]))?;
    }
    Ok(ExitStatus::Success)
}
