//! `settings`: shows this account's privacy switches (read receipts,
//! typing notices) or changes one, then prints them as one `settings`
//! record. The same record comes from the daemon's `settings`.
//!
//! Must never change a switch the user did not name (a change reads the
//! stored settings and flips only that one), or send anything: the
//! settings stay on this device (client-core's settings.rs).

use anyhow::Context as _;
use umbra_client_core::{Client, Settings};

use crate::cli::{SettingsCommand, Switch};
use crate::exit_status::ExitStatus;
use crate::output::{Printer, Record};
use crate::session::Session;

pub async fn run(session: &Session, change: Option<SettingsCommand>) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = apply(&client, change, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Applies `change` (if any) and prints the settings as they now are (also
/// the daemon's `settings`).
pub(crate) async fn apply<W: std::io::Write>(
    client: &Client,
    change: Option<SettingsCommand>,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let mut settings = client.settings().await.context("reading the settings")?;
    if let Some(change) = change {
        settings = changed(settings, change);
        client
            .set_settings(settings)
            .await
            .context("storing the settings")?;
    }
    printer.emit(&Record::Settings {
        read_receipts: settings.read_receipts,
        typing: settings.typing,
    })?;
    Ok(ExitStatus::Success)
}

/// The daemon's `settings` params: each switch optional, absent meaning
/// unchanged; both absent just shows them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    read_receipts: Option<bool>,
    typing: Option<bool>,
}

impl Params {
    /// Whether the params name both switches: one change per request, as
    /// on the command line, so the daemon refuses that.
    pub(crate) fn both(&self) -> bool {
        self.read_receipts.is_some() && self.typing.is_some()
    }

    /// The one change these params ask for.
    pub(crate) fn change(&self) -> Option<SettingsCommand> {
        let switch = |on: bool| if on { Switch::On } else { Switch::Off };
        match (self.read_receipts, self.typing) {
            (Some(on), _) => Some(SettingsCommand::ReadReceipts { state: switch(on) }),
            (None, Some(on)) => Some(SettingsCommand::Typing { state: switch(on) }),
            (None, None) => None,
        }
    }
}

/// What the CLI sends the daemon for `change`.
pub(crate) fn params(change: Option<SettingsCommand>) -> serde_json::Value {
    match change {
        None => serde_json::json!({}),
        Some(SettingsCommand::ReadReceipts { state }) => {
            serde_json::json!({"read_receipts": state.is_on()})
        }
        Some(SettingsCommand::Typing { state }) => serde_json::json!({"typing": state.is_on()}),
    }
}

/// `settings` with only the named switch changed.
fn changed(mut settings: Settings, change: SettingsCommand) -> Settings {
    match change {
        SettingsCommand::ReadReceipts { state } => settings.read_receipts = state.is_on(),
        SettingsCommand::Typing { state } => settings.typing = state.is_on(),
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_touches_only_its_switch() {
        let off = changed(
            Settings::default(),
            SettingsCommand::ReadReceipts { state: Switch::Off },
        );
        assert!(!off.read_receipts);
        assert!(off.typing);
        let typing_off = changed(off, SettingsCommand::Typing { state: Switch::Off });
        assert!(!typing_off.read_receipts && !typing_off.typing);
        let back_on = changed(
            typing_off,
            SettingsCommand::ReadReceipts { state: Switch::On },
        );
        assert!(back_on.read_receipts && !back_on.typing);
    }
}
