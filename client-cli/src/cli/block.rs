//! `umbra block`, `umbra unblock` arguments: the contact, as a username
//! or the `name#xxxxxxxx` label `contacts` prints.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

/// The contact to block or unblock.
#[derive(Debug, clap::Args)]
pub struct BlockArgs {
    /// NAME, or NAME#xxxxxxxx as `umbra contacts` shows it.
    pub contact: String,
}
