//! `contacts`: everyone this account has exchanged keys with, and how far
//! each key is trusted.
//!
//! Must never show a changed key as anything but changed, or two contacts
//! under the same name.

use anyhow::Context as _;
use umbra_client_core::{NameState, TrustLevel};

use crate::exit_status::ExitStatus;
use crate::output::{NameStateLabel, Printer, Record, Trust};
use crate::session::Session;

pub fn trust_of(level: TrustLevel) -> Trust {
    match level {
        TrustLevel::Unverified => Trust::Unverified,
        TrustLevel::Verified => Trust::Verified,
        TrustLevel::Changed => Trust::Changed,
    }
}

pub fn name_state_of(state: NameState) -> NameStateLabel {
    match state {
        NameState::Current => NameStateLabel::Current,
        NameState::Contested => NameStateLabel::Contested,
        NameState::OtherAccount => NameStateLabel::OtherAccount,
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
            username: contact.username.to_string(),
            account_id: contact.account_id.to_hex(),
            trust: trust_of(contact.trust),
            display_name: contact.display_name,
            name_state: name_state_of(contact.name_state),
        })?;
    }
    Ok(ExitStatus::Success)
}
