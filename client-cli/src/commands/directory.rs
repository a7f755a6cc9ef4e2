//! `umbra directory root`: the relay's pinned key-transparency keys and the
//! newest directory head this client verified, for comparing out of band
//! (docs/CLI.md, docs/PROTOCOL.md §16.9 item 6).
//!
//! Must never: print a head that did not verify, or hide a fork: a head
//! that does not extend the remembered one fails the command.

use anyhow::Context;
use umbra_client_core::DirectoryRoot;

use crate::exit_status::ExitStatus;
use crate::output::Record;
use crate::session::Session;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record `directory root` prints.
pub(crate) fn root_record(root: &DirectoryRoot) -> Record {
    Record::DirectoryRoot {
        directory_key: hex(&root.pins.directory_key),
        vrf_key: hex(&root.pins.vrf_key),
        epoch: root.head.map(|(e, _, _)| e),
        map_root: root.head.map(|(_, m, _)| hex(&m)),
        log_root: root.head.map(|(_, _, l)| hex(&l)),
    }
}

pub async fn root(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let root = client
        .check_directory()
        .await
        .context("checking the relay's key directory");
    client.shutdown().await;
    session.printer().emit(&root_record(&root?))?;
    Ok(ExitStatus::Success)
}
