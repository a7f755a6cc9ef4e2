//! `--agent-ttl D` (or `UMBRA_AGENT_TTL`): the password once per session.
//! When a command must unlock the store and no daemon serves the data
//! directory, this reads the password as the command would, starts
//! `umbra daemon --idle-exit D --password-stdin` in the background, hands
//! it the password through a pipe, and returns a connection to it; the
//! command then runs through it, and so do later commands, with no prompt
//! and no key stretching, until the daemon has had no client for `D`
//! (docs/CLI.md, "Agent"; THREAT_MODEL.md says what that exposes).
//!
//! Why a pipe and not a `login`-style request on the socket: the daemon
//! serves nothing before its store is unlocked, so there is no "locked
//! daemon" state a stranger command could reach, and the pipe's other end
//! is this process alone.
//!
//! Must never: start a daemon for a command that does not unlock an
//! existing store (register, login, logout, delete, daemon), keep the
//! password after writing it to the pipe, or leave the child in this
//! command's process group (a Ctrl-C of the command must not kill the
//! agent later commands rely on).

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::Client;

use super::client::DaemonConnection;
use super::protocol::exit_status_from;
use crate::cli::{AccountCommand, Command};
use crate::exit_status::{ExitStatus, Failure};
use crate::password::Purpose;
use crate::session::Session;

/// The agent's standard error, in the data directory (0600 like every
/// file umbra creates): why it did not start, or why it stopped.
pub const LOG_FILE: &str = "umbra-agent.log";

/// How often the starting command looks for the agent's socket.
const POLL: Duration = Duration::from_millis(25);

/// A bound on the agent's start (the data-dir lock wait, key stretching,
/// the relay connection); only a hung child reaches it.
const START_LIMIT: Duration = Duration::from_secs(120);

/// Whether `command` unlocks an existing store, so an agent may serve it.
pub fn serves(command: &Command) -> bool {
    matches!(
        command,
        Command::Whoami
            | Command::Send { .. }
            | Command::React(_)
            | Command::Edit(_)
            | Command::Delete(_)
            | Command::DeleteConversation { .. }
            | Command::Receive { .. }
            | Command::Contacts
            | Command::Search { .. }
            | Command::Settings(_)
            | Command::Block(_)
            | Command::Unblock(_)
            | Command::Blocked
            | Command::Verify(_)
            | Command::Chat
            | Command::Group(_)
            | Command::File(_)
            | Command::Account(AccountCommand::Rename { .. })
    )
}

/// Starts the agent for `session`'s data directory and connects to it;
/// `None` when there is no account to unlock (the command then fails as
/// it would without an agent) or no socket could be made for it (the path
/// is too long: the command then runs on its own). No daemon may be serving, and this process
/// must not hold the data-dir lock (the agent takes it).
pub async fn start(session: &Session, idle: Duration) -> anyhow::Result<Option<DaemonConnection>> {
    let has_account = Client::has_account(&session.config())
        .await
        .context("reading the local store")?;
    // A data directory whose socket path cannot exist runs the command on
    // its own, as it would without --agent-ttl.
    if !has_account || super::socket_path(&session.data_dir).is_err() {
        return Ok(None);
    }
    let label = format!("the umbra account in {}", session.data_dir.display());
    let password = session.password(&label, Purpose::Existing)?;

    let log_path = session.data_dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| Failure::local(format!("creating {}: {e}", log_path.display())))?;
    let exe = std::env::current_exe().context("finding the umbra executable")?;
    let mut child = Process::new(exe)
        .arg("--server")
        .arg(&session.server)
        .arg("--data-dir")
        .arg(&session.data_dir)
        .args(["daemon", "--password-stdin", "--idle-exit"])
        .arg(format!("{}s", idle.as_secs().max(1)))
        .env_remove("UMBRA_AGENT_TTL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: the terminal's Ctrl-C for this command
        // does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| Failure::local(format!("starting the umbra agent: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died at once closed the pipe; its exit says why.
        let _ = stdin.write_all(password.as_bytes());
    }
    drop(password);
    wait_until_serving(session, child, &log_path)
        .await
        .map(Some)
}

/// Polls for the agent's socket until it answers, the child exits (then
/// its log says why, unless another daemon won the race to serve), or
/// [`START_LIMIT`] passes.
async fn wait_until_serving(
    session: &Session,
    mut child: Child,
    log_path: &std::path::Path,
) -> anyhow::Result<DaemonConnection> {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(daemon) = DaemonConnection::find(&session.data_dir).await {
            return Ok(daemon);
        }
        if let Some(status) = child.try_wait().context("waiting for the umbra agent")? {
            if let Some(daemon) = DaemonConnection::find(&session.data_dir).await {
                return Ok(daemon);
            }
            let status = status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .and_then(exit_status_from)
                .filter(|s| *s != ExitStatus::Success)
                .unwrap_or(ExitStatus::Internal);
            return Err(Failure::new(
                status,
                format!("the umbra agent did not start: {}", last_error(log_path)),
            )
            .into());
        }
        if started.elapsed() > START_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::local(format!(
                "the umbra agent did not start serving within {} s (see {})",
                START_LIMIT.as_secs(),
                log_path.display()
            ))
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The agent's last `umbra: …` error line (already one sanitised line, as
/// every umbra error is), without its prefix.
fn last_error(log_path: &std::path::Path) -> String {
    let mut text = String::new();
    let _ = std::fs::File::open(log_path).and_then(|mut f| f.read_to_string(&mut text));
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("umbra: "))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("no error was printed (see {})", log_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_serves_only_commands_that_unlock_an_existing_store() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            crate::cli::Cli::try_parse_from(std::iter::once("umbra").chain(args.iter().copied()))
                .unwrap()
                .command
        };
        for args in [
            &["send", "bob", "hi"][..],
            &["receive"],
            &["whoami"],
            &["contacts"],
            &["search", "hello"],
            &["settings"],
            &["settings", "typing", "off"],
            &["block", "bob"],
            &["unblock", "bob#5e6f0a1b"],
            &["blocked"],
            &["chat"],
            &["group", "list"],
            &["account", "rename", "alice2"],
        ] {
            assert!(serves(&parse(args)), "{args:?}");
        }
        for args in [
            &["register", "alice"][..],
            &["login", "alice"],
            &["logout"],
            &["daemon"],
            &["account", "delete", "--yes"],
            &["completions", "bash"],
        ] {
            assert!(!serves(&parse(args)), "{args:?}");
        }
    }

    #[test]
    fn the_log_gives_its_last_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        std::fs::write(
            &path,
            "umbra daemon: starting\numbra: unlocking the local store: wrong password\n",
        )
        .unwrap();
        assert_eq!(
            last_error(&path),
            "unlocking the local store: wrong password"
        );
        std::fs::write(&path, "").unwrap();
        assert!(last_error(&path).contains(LOG_FILE));
    }
}
