//! `umbra file ...`: the arguments for sending and saving files.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

use clap::Subcommand;

use super::MAX_TIMEOUT_SECS;

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Encrypt a file, upload it to the relay and send it to a contact
    /// (or, with --group, to every member of a group).
    Send {
        /// The recipient's username; with --group, the group (its name or
        /// id, as `group send` takes it).
        username: String,
        /// The file to send (up to 104 832 000 bytes).
        path: std::path::PathBuf,
        /// The name the recipient sees (default: the file's own name);
        /// sanitised like every received name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Seconds to wait for the relay to accept the message, after the
        /// upload.
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
        /// Send it to the group USERNAME names: uploaded once, its pointer
        /// sent to every member in one group message.
        #[arg(long)]
        group: bool,
    },
    /// Download, verify and save a received (or sent) file.
    Get {
        /// The file's id, as `receive` printed it.
        id: String,
        /// A directory to save it in under its (sanitised) name, or a file
        /// path; the current directory by default. Nothing is overwritten.
        path: Option<std::path::PathBuf>,
    },
}
