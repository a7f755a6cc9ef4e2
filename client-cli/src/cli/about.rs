//! `umbra react`, `umbra edit`, `umbra delete`: the arguments of messages
//! about messages (docs/PROTOCOL.md §10.6). A reply is `send --reply-to`
//! (or `group send --reply-to`).
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

use clap::Args;

use super::MAX_TIMEOUT_SECS;

/// Who the change goes to and how long to wait for the relay.
#[derive(Debug, Clone, Args)]
pub struct AboutTarget {
    /// The contact (or, with --group, the group) whose conversation holds
    /// the message.
    pub to: String,
    /// The message's id (32 hex digits), as `receive`, `send` or `search`
    /// printed it.
    pub id: String,
    /// TO names a group (as `group send` takes it).
    #[arg(long)]
    pub group: bool,
    /// Seconds to wait for the relay to accept the change.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub timeout: u64,
}

/// `umbra react TO ID EMOJI [--remove]`.
#[derive(Debug, Clone, Args)]
pub struct ReactArgs {
    #[command(flatten)]
    pub target: AboutTarget,
    /// One emoji (1 to 64 bytes, no spaces).
    pub emoji: String,
    /// Take this reaction back instead of adding it.
    #[arg(long)]
    pub remove: bool,
}

/// `umbra edit TO ID TEXT`.
#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub target: AboutTarget,
    /// The new text of your message; '-' reads it from standard input.
    pub message: String,
}

/// `umbra delete TO ID --for-everyone`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: AboutTarget,
    /// Delete your message for everyone: its text is erased on every side
    /// (a placeholder stays). Required: there is no local-only delete yet.
    #[arg(long, required = true)]
    pub for_everyone: bool,
}
