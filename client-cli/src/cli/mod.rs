//! The command-line surface of `umbra`, as clap definitions.
//!
//! This is a stable interface (docs/CLI.md): scripts and the
//! end-to-end tests rely on every name here. Add, never rename.
//!
//! Each command group's arguments live in their own file below; this one
//! holds the global flags and the top-level command list.
//!
//! It must never offer a flag that takes a password value: passwords come
//! only from a terminal prompt, `UMBRA_PASSWORD_FILE` or `--password-command`.

mod about;
mod account;
mod block;
mod daemon;
mod devices;
mod directory;
mod file;
mod group;
mod search;
mod settings;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use about::{AboutTarget, DeleteArgs, EditArgs, ReactArgs};
pub use account::{AccountCommand, PasswordCommand};
pub use block::BlockArgs;
pub use daemon::{parse_duration, DaemonArgs};
pub use devices::{DevicesArgs, DevicesCommand};
pub use directory::DirectoryCommand;
pub use file::FileCommand;
pub use group::{GroupCommand, GroupWait};
use search::parse_search_limit;
pub use search::SEARCH_DEFAULT_LIMIT;
pub use settings::{SettingsArgs, SettingsCommand, Switch};
pub use verify::VerifyArgs;

/// The relay used when neither `--server` nor `UMBRA_SERVER` says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// The longest `--timeout` (and daemon `timeout` parameter) accepted: a day.
/// Longer waits are a mistake, and an unbounded number of seconds would
/// overflow the deadline arithmetic.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// umbra: end-to-end encrypted chat whose relay cannot read what it relays.
#[derive(Debug, Parser)]
#[command(
    name = "umbra",
    version,
    about,
    long_about = None,
    after_help = "Passwords come from a terminal prompt, from the file named by \
                  UMBRA_PASSWORD_FILE (first line; keep it chmod 600) or from \
                  --password-command. Exit codes: docs/CLI.md."
)]
pub struct Cli {
    /// Relay URL (http://, https://, ws:// or wss://).
    #[arg(
        long,
        global = true,
        env = "UMBRA_SERVER",
        default_value = DEFAULT_SERVER,
        value_name = "URL"
    )]
    pub server: String,

    /// Directory for keys and history [default: the platform data dir,
    /// e.g. ~/.local/share/umbra].
    #[arg(long, global = true, env = "UMBRA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Run CMD with `sh -c` and use its standard output as the password
    /// (e.g. "pass show umbra").
    #[arg(long, global = true, value_name = "CMD")]
    pub password_command: Option<String>,

    /// Print one JSON object per line instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Keep the unlocked key in a background `umbra daemon` for this long
    /// after its last use (e.g. 15m, 1h, 90s; 0 or off: never, the
    /// default), so the password is asked once per session.
    #[arg(
        long,
        global = true,
        env = "UMBRA_AGENT_TTL",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub agent_ttl: Option<std::time::Duration>,

    /// The relay's key-transparency directory key (64 hex digits, as
    /// `umbra-relay audit` prints it), pinned in the store the first time
    /// it is given; needs --kt-vrf-key.
    #[arg(
        long,
        global = true,
        env = "UMBRA_KT_DIRECTORY_KEY",
        value_name = "HEX",
        requires = "kt_vrf_key"
    )]
    pub kt_directory_key: Option<String>,

    /// The relay's key-transparency VRF public key (64 hex digits); needs
    /// --kt-directory-key.
    #[arg(
        long,
        global = true,
        env = "UMBRA_KT_VRF_KEY",
        value_name = "HEX",
        requires = "kt_directory_key"
    )]
    pub kt_vrf_key: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account on the relay and set up this device.
    Register {
        /// The account name: 3 to 32 characters, a letter first, then
        /// letters a-z, digits 0-9, '_' or '.' (upper case is folded to lower).
        username: String,
    },
    /// Log in to an existing account on this device. In an empty data
    /// directory this restores the account from its backup on the relay
    /// with the password alone: identity, contacts and their trust, groups.
    Login {
        /// The account's username, as given to `register` (or its latest
        /// `account rename`).
        username: String,
        /// In an empty data directory, do not restore: make a new identity
        /// key (contacts see a key change), with no contacts or groups.
        #[arg(long)]
        new_identity: bool,
        /// Open this data directory's store with the password in this file
        /// (one trailing line break removed), not the account's: for a
        /// linked device whose store password, chosen at `link-accept`,
        /// is its own.
        #[arg(long, value_name = "PATH", conflicts_with = "new_identity")]
        store_password_file: Option<std::path::PathBuf>,
    },
    /// Link a new device to this account: prints a link code (and on a
    /// terminal a QR code of it) to enter on the new device with
    /// `link-accept`, then waits up to five minutes for it.
    Link,
    /// Make this empty data directory a new device of the account whose
    /// other device shows a link code (`umbra link`): same identity,
    /// contacts and groups. Asks for a new password for this data dir.
    LinkAccept {
        /// The link code `umbra link` printed; '-' reads it from standard
        /// input (so it does not show in the process list).
        code: String,
    },
    /// Revoke this device's session on the relay (keys and history stay).
    Logout,
    /// Show the account this data directory belongs to.
    Whoami,
    /// The relay's key directory (key transparency) as this client checks it.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Send a text message.
    Send {
        /// The recipient's username.
        username: String,
        /// The message; '-' reads it from standard input.
        message: String,
        /// Seconds to wait for the relay to accept the message.
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
        /// Send it as a reply quoting the message with this id (either
        /// side's, of this conversation).
        #[arg(long, value_name = "ID")]
        reply_to: Option<String>,
    },
    /// React to a message with an emoji, or take the reaction back.
    React(ReactArgs),
    /// Replace the text of a message you sent (within 24 hours).
    Edit(EditArgs),
    /// Delete a message you sent for everyone (within 24 hours).
    Delete(DeleteArgs),
    /// Delete the whole conversation with a contact from this device, or
    /// with --everyone from the contact's devices and your other devices
    /// too. The contact and its keys stay; later messages show as usual.
    DeleteConversation {
        /// The contact.
        username: String,
        /// Delete it for everyone: the contact's client erases it too.
        #[arg(long)]
        everyone: bool,
        /// Seconds to wait for the relay to accept the delete (--everyone).
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
    },
    /// Set the disappearing-message timer of the conversation with a
    /// contact (or, with --group, of a group): every side deletes each
    /// message that long after it was sent or received.
    Disappearing {
        /// The contact; with --group, the group (its name or id).
        username: String,
        /// 30s, 5m, 1h, 2d, 1w (at most 4w), or off.
        #[arg(value_name = "DURATION|off")]
        duration: String,
        /// Seconds to wait for the relay to accept the change.
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
        /// Set the timer of the group USERNAME names, for every member
        /// (any member may).
        #[arg(long)]
        group: bool,
    },
    /// Print every message waiting on the relay, then exit.
    Receive {
        /// Seconds to wait for the relay to finish delivering.
        #[arg(long, value_name = "SECS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
        timeout: u64,
        /// After printing what is waiting, keep printing events as they
        /// arrive until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// List contacts and how far their keys are trusted.
    Contacts,
    /// Search the messages stored on this device (never the relay): those
    /// whose text contains TEXT, ignoring case, newest first.
    Search {
        /// The text to look for.
        text: String,
        /// At most this many messages.
        #[arg(long, value_name = "N", default_value_t = SEARCH_DEFAULT_LIMIT,
              value_parser = parse_search_limit)]
        limit: usize,
    },
    /// Show this device's privacy settings, or turn read receipts or
    /// typing notices on or off.
    Settings(SettingsArgs),
    /// Block a contact: nothing from it is shown, nothing is sent to it
    /// (no receipts, no typing notices), and `send` to it fails, until
    /// `unblock`. Neither the relay nor the contact is told.
    Block(BlockArgs),
    /// Undo `block`.
    Unblock(BlockArgs),
    /// List the blocked contacts.
    Blocked,
    /// List this account's devices, or remove another one (`devices
    /// remove ID`).
    Devices(DevicesArgs),
    /// Show the safety number for a contact; mark it verified or accept a
    /// changed key by quoting the number you compared.
    Verify(VerifyArgs),
    /// Interactive chat (terminal UI).
    Chat,
    /// Unlock the store once and serve it to other umbra commands and
    /// scripts (JSON-RPC 2.0 on a Unix socket in the data dir).
    Daemon(DaemonArgs),
    /// Rename or delete the account.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Change the account password.
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Group chats: create, change membership, list, send.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Files: send one to a contact (encrypted, through the relay), save
    /// one received.
    #[command(subcommand)]
    File(FileCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests;
