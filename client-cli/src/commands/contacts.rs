//! `contacts`: everyone this account has exchanged keys with, and how far
//! each key is trusted.
//!
//! Must never show a changed key as anything but changed.

use anyhow::Context as _;
use umbra_client_core::TrustLevel;

use crate::exit_status::ExitStatus;
use crate::output::{Printer, Record, Trust};
use crate::session::Session;

pub fn trust_of(level: TrustLevel) -> Trust {
    match level {
        TrustLevel::Unverified => Trust::Unverified,
        TrustLevel::Verified => Trust::Verified,
        TrustLevel::Changed => Trust::Changed,
    }
}

pub async fn run(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let contacts = client.contacts().await.context("listing contacts");
    client.shutdown().await;
    print(contacts?, &mut session.printer())
}

/// One `contact` record per contact (also the daemon's `contacts`).
pub(crate) fn print<W: std::io::Write>(
    contacts: Vec<umbra_client_core::Contact>,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    for contact in contacts {
        printer.emit(&Record::Contact {
            username: contact.username,
            account_id: contact.account_id,
            trust: trust_of(contact.trust),
        })?;
    }
    Ok(ExitStatus::Success)
}
