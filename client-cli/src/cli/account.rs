//! `umbra account ...` and `umbra password ...`: the arguments for
//! changing the account itself.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename. It must
//! never take a password value as an argument, only a file naming one.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Change the password on the relay (the old one stops working on every
    /// relay node and every other session ends), for this data dir's store
    /// and for the account backup. The current password comes from the
    /// usual sources; the new one is asked twice on a terminal.
    Change {
        /// Read the new password from this file instead (one trailing line
        /// break removed), for scripts.
        #[arg(long, value_name = "PATH")]
        new_password_file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Change the account's username; contacts are told.
    Rename {
        /// The new username.
        new_username: String,
    },
    /// Delete the account on the relay and erase the local store. Asks for
    /// confirmation on a terminal.
    Delete {
        /// Do not ask: needed when standard input is not a terminal.
        #[arg(long)]
        yes: bool,
    },
}
