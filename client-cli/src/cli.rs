//! The command-line surface of `umbra`, as clap definitions.
//!
//! This is a stable interface (docs/CLI.md): scripts and the
//! end-to-end tests rely on every name here. Add, never rename.
//!
//! It must never offer a flag that takes a password value: passwords come
//! only from a terminal prompt, `UMBRA_PASSWORD_FILE` or `--password-command`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    },
    /// Revoke this device's session on the relay (keys and history stay).
    Logout,
    /// Show the account this data directory belongs to.
    Whoami,
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

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Encrypt a file, upload it to the relay and send it to a contact.
    Send {
        /// The recipient's username.
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

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Also serve JSON-RPC on standard input/output (for a parent process);
    /// the daemon stops when standard input closes.
    #[arg(long)]
    pub stdio: bool,
    /// Also serve on this loopback TCP address (e.g. 127.0.0.1:7900);
    /// clients authenticate with the token in umbra-daemon.token.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<std::net::SocketAddr>,
    /// Exit (dropping the unlocked key) once no client has been connected
    /// for this long (e.g. 15m, 1h, 90s; 0 or off: never, the default).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_exit: Option<std::time::Duration>,
    /// Read the password from standard input (until it closes) instead of
    /// the usual sources: how --agent-ttl hands it to the daemon it starts.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The longest `--agent-ttl`/`--idle-exit`: a week (an agent that never
/// forgets is `umbra daemon` without `--idle-exit`).
pub const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// `90`, `90s`, `15m`, `2h` (whole numbers); `0` and `off` mean zero,
/// which callers take as "off".
/// `search --limit` when none is given (also the daemon's `search`).
pub const SEARCH_DEFAULT_LIMIT: usize = 50;

/// `search --limit`: 1 to client-core's most.
fn parse_search_limit(text: &str) -> Result<usize, String> {
    let max = umbra_client_core::MAX_SEARCH_LIMIT;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(std::time::Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        _ => {
            return Err(format!(
                "{text:?}: expected a whole number with s, m or h (e.g. 15m)"
            ))
        }
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number with s, m or h (e.g. 15m)"))?;
    let duration = std::time::Duration::from_secs(count.saturating_mul(scale));
    if duration > MAX_IDLE {
        return Err(format!("{text:?}: at most a week (168h)"));
    }
    Ok(duration)
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The contact.
    pub username: String,
    /// Mark the contact's key verified. Pass the safety number you compared
    /// with them out of band (spaces optional); it must match the current one.
    #[arg(long, value_name = "SAFETY_NUMBER", conflicts_with = "accept")]
    pub mark_verified: Option<String>,
    /// Accept a changed key without verifying it, so messages can be sent
    /// again. Pass the new safety number shown by `umbra verify USERNAME`.
    #[arg(long, value_name = "SAFETY_NUMBER")]
    pub accept: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "umbra",
            "receive",
            "--json",
            "--timeout",
            "3",
            "--data-dir",
            "/tmp/a",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/a")));
        assert!(matches!(
            cli.command,
            Command::Receive {
                timeout: 3,
                follow: false
            }
        ));
    }

    #[test]
    fn send_takes_recipient_and_message() {
        let cli = Cli::try_parse_from(["umbra", "send", "bob", "-"]).unwrap();
        match cli.command {
            Command::Send {
                username, message, ..
            } => {
                assert_eq!(username, "bob");
                assert_eq!(message, "-");
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn verify_flags_exclude_each_other() {
        let both = Cli::try_parse_from([
            "umbra",
            "verify",
            "bob",
            "--accept",
            "1",
            "--mark-verified",
            "1",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn account_rename_takes_the_new_name() {
        let cli = Cli::try_parse_from(["umbra", "account", "rename", "alice2"]).unwrap();
        match cli.command {
            Command::Account(AccountCommand::Rename { new_username }) => {
                assert_eq!(new_username, "alice2");
            }
            other => panic!("parsed as {other:?}"),
        }
        let missing = Cli::try_parse_from(["umbra", "account", "rename"]).unwrap_err();
        assert_eq!(missing.exit_code(), 2);
    }

    #[test]
    fn account_delete_asks_unless_yes() {
        let cli = Cli::try_parse_from(["umbra", "account", "delete"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Account(AccountCommand::Delete { yes: false })
        ));
        let cli = Cli::try_parse_from(["umbra", "account", "delete", "--yes", "--json"]).unwrap();
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Account(AccountCommand::Delete { yes: true })
        ));
        let stray = Cli::try_parse_from(["umbra", "account", "delete", "alice"]).unwrap_err();
        assert_eq!(stray.exit_code(), 2);
        let bare = Cli::try_parse_from(["umbra", "account"]).unwrap_err();
        assert_eq!(bare.exit_code(), 2);
    }

    #[test]
    fn daemon_and_follow_flags_parse() {
        let cli =
            Cli::try_parse_from(["umbra", "daemon", "--stdio", "--tcp", "127.0.0.1:7900"]).unwrap();
        match cli.command {
            Command::Daemon(args) => {
                assert!(args.stdio);
                assert_eq!(args.tcp, Some("127.0.0.1:7900".parse().unwrap()));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["umbra", "daemon", "--tcp", "localhost"]).is_err());
        let cli = Cli::try_parse_from(["umbra", "receive", "--follow"]).unwrap();
        assert!(matches!(cli.command, Command::Receive { follow: true, .. }));
    }

    #[test]
    fn group_commands_parse_with_their_arguments() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["umbra", "group"].iter().chain(args)).map(|cli| cli.command)
        };
        match parse(&["create", "family", "bob", "carol", "--json"]).unwrap() {
            Command::Group(GroupCommand::Create {
                name,
                members,
                members_may_rename,
                ..
            }) => {
                assert_eq!(name, "family");
                assert_eq!(members, ["bob", "carol"]);
                assert!(!members_may_rename, "admin-only unless asked");
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(matches!(
            parse(&["create", "club", "bob", "--members-may-rename"]).unwrap(),
            Command::Group(GroupCommand::Create {
                members_may_rename: true,
                ..
            })
        ));
        // A group of one is not a group: create needs a member.
        assert_eq!(parse(&["create", "family"]).unwrap_err().exit_code(), 2);
        assert!(matches!(
            parse(&["send", "family", "-", "--timeout", "5"]).unwrap(),
            Command::Group(GroupCommand::Send { timeout: 5, ref message, .. }) if message == "-"
        ));
        assert!(matches!(
            parse(&["rename", "family", "fam"]).unwrap(),
            Command::Group(GroupCommand::Rename { ref new_name, .. }) if new_name == "fam"
        ));
        for (args, ok) in [
            (&["add", "family", "dave"][..], true),
            (&["remove", "family", "dave"], true),
            (&["promote", "family", "dave"], true),
            (&["leave", "family"], true),
            (&["members", "family"], true),
            (&["list"], true),
            (&["add", "family"], false),
            (&["add", "family", "dave", "erin"], false),
            (&["leave"], false),
            (&["list", "family"], false),
            (&[], false),
        ] {
            assert_eq!(parse(args).is_ok(), ok, "{args:?}");
        }
        let timeout = parse(&["send", "family", "hi", "--timeout", "86401"]).unwrap_err();
        assert_eq!(timeout.exit_code(), 2);
        match parse(&["add", "family", "dave", "--timeout", "3"]).unwrap() {
            Command::Group(command) => assert_eq!(command.timeout(), Some(3)),
            other => panic!("parsed as {other:?}"),
        }
        match parse(&["leave", "family"]).unwrap() {
            Command::Group(command) => assert_eq!(command.timeout(), Some(30)),
            other => panic!("parsed as {other:?}"),
        }
        assert!(parse(&["members", "family", "--timeout", "3"]).is_err());
    }

    #[test]
    fn there_is_no_password_flag() {
        let err = Cli::try_parse_from(["umbra", "--password", "x", "whoami"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn unknown_command_is_a_usage_error() {
        let err = Cli::try_parse_from(["umbra", "fly"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn durations_take_a_unit_and_zero_or_off_is_off() {
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("168h"), Ok(MAX_IDLE));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("off"), Ok(Duration::ZERO));
        for bad in [
            "",
            "m",
            "15 m",
            "1.5h",
            "-3s",
            "15d",
            "169h",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
