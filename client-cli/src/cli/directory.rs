//! `umbra directory ...`: the relay's key directory as this client checked
//! it (docs/CLI.md, docs/PROTOCOL.md §16.9).
//!
//! Must never: take a key from anywhere but the user's configuration.

use clap::Subcommand;

/// What `umbra directory` does.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Ask the relay for its newest key-directory head, check that it
    /// extends the one remembered, and print the pinned keys and that head
    /// (epoch, map root, log root) to compare with other users out of band.
    Root,
}
