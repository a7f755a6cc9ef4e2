//! `umbra settings` arguments: the privacy switches (read receipts,
//! typing notices) of client-core's `Settings`.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

/// `settings` with no subcommand shows the switches; a subcommand sets one.
#[derive(Debug, clap::Args)]
pub struct SettingsArgs {
    #[command(subcommand)]
    pub change: Option<SettingsCommand>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum SettingsCommand {
    /// Send read receipts when a conversation is read (on by default).
    ReadReceipts {
        /// on or off.
        state: Switch,
    },
    /// Send typing notices, and show those of others (on by default).
    Typing {
        /// on or off.
        state: Switch,
    },
}

/// A setting's value as typed: `on` or `off`, nothing else, so a typo is a
/// usage error rather than a silent change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}
