//! `umbra group ...`: the arguments for group chats.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

use clap::Subcommand;

use super::MAX_TIMEOUT_SECS;

/// Where a group is named on the command line, GROUP is its name, or its
/// id (64 hex digits), or `name#xxxxxxxx` (the first hex digits of its id)
/// when several groups share the name.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group with these members; you are its admin.
    Create {
        /// The group's name (1 to 128 bytes of UTF-8, no control characters).
        name: String,
        /// Usernames of the other members.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
        /// Let any member rename the group, not only admins (fixed for the
        /// group's life).
        #[arg(long)]
        members_may_rename: bool,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// Add a member (admins only).
    Add {
        /// The group.
        group: String,
        /// The username to add.
        member: String,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// Remove a member (admins only); the group's keys change before
    /// anyone sends again.
    Remove {
        /// The group.
        group: String,
        /// The member's username.
        member: String,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// Leave a group.
    Leave {
        /// The group.
        group: String,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// Rename a group (admins; any member if the group allows it).
    Rename {
        /// The group.
        group: String,
        /// The new name.
        new_name: String,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// Make a member an admin (admins only).
    Promote {
        /// The group.
        group: String,
        /// The member's username.
        member: String,
        #[command(flatten)]
        wait: GroupWait,
    },
    /// List a group's members and who are admins.
    Members {
        /// The group.
        group: String,
    },
    /// Send a text message to every member of a group.
    Send {
        /// The group.
        group: String,
        /// The message; '-' reads it from standard input.
        message: String,
        /// Seconds to wait for the relay to accept the message for every member.
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
        /// Send it as a reply quoting the group message with this id.
        #[arg(long, value_name = "ID")]
        reply_to: Option<String>,
    },
    /// List the groups this account is in.
    List,
}

/// How long a group change waits for the relay.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct GroupWait {
    /// Seconds to wait for the relay to take the change for every member.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub timeout: u64,
}

impl GroupCommand {
    /// The `--timeout` of the command, if it has one (`members` and `list`
    /// only read the local store).
    pub fn timeout(&self) -> Option<u64> {
        match self {
            GroupCommand::Create { wait, .. }
            | GroupCommand::Add { wait, .. }
            | GroupCommand::Remove { wait, .. }
            | GroupCommand::Leave { wait, .. }
            | GroupCommand::Rename { wait, .. }
            | GroupCommand::Promote { wait, .. } => Some(wait.timeout),
            GroupCommand::Send { timeout, .. } => Some(*timeout),
            GroupCommand::Members { .. } | GroupCommand::List => None,
        }
    }
}
