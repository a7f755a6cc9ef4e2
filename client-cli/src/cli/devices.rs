//! `umbra devices` arguments: with no subcommand it lists the account's
//! devices; `devices remove ID` removes another one; `devices add-to-list
//! ID` publishes the device list with a current, unlisted one.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

/// `devices` with no subcommand lists; a subcommand changes something.
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    pub change: Option<DevicesCommand>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum DevicesCommand {
    /// Remove another device of the account (its sessions end, its keys
    /// and queued messages are deleted, and the account's device list is
    /// published without it). This device cannot remove itself.
    Remove {
        /// The device id, as `umbra devices` lists it.
        id: u32,
    },
    /// Add a current device that the account's device list does not name
    /// yet (`listed: false`) to the list and publish it: what finishes a
    /// `link` whose list publication failed after the device was enrolled.
    /// A removed device cannot be added again.
    AddToList {
        /// The device id, as `umbra devices` lists it.
        id: u32,
    },
}
