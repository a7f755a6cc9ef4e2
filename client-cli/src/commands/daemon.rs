//! `umbra daemon [--stdio] [--tcp 127.0.0.1:PORT] [--idle-exit D]
//! [--password-stdin]`: unlock the store once
//! and serve it to other `umbra` commands and scripts (docs/CLI.md,
//! "Daemon"). The data-dir lock is already held when this runs.
//!
//! Must never: prompt for the password before knowing the socket can
//! exist and the TCP address is loopback (bad options fail first), or
//! serve before the relay connection is started.

use anyhow::Context as _;

use crate::cli::DaemonArgs;
use crate::daemon::server::{self, Options};
use crate::exit_status::{ExitStatus, Failure};
use crate::session::Session;

pub async fn run(session: &Session, args: &DaemonArgs) -> anyhow::Result<ExitStatus> {
    let socket = crate::daemon::socket_path(&session.data_dir)?;
    if let Some(addr) = args.tcp.filter(|a| !a.ip().is_loopback()) {
        return Err(Failure::user(format!(
            "--tcp {addr}: only loopback addresses (127.0.0.1, ::1) are allowed"
        ))
        .into());
    }
    // Before the password is read: from here on this process holds the
    // unlocked store key for as long as it runs.
    keep_keys_out_of_dumps();
    // --password-stdin: the agent's parent writes it and closes the pipe.
    let given = if args.password_stdin {
        Some(crate::password::from_stdin()?)
    } else {
        None
    };
    let client = session.open_client_with(given).await?;
    client.connect().await.context("connecting to the relay")?;
    let options = Options {
        stdio: args.stdio,
        tcp: args.tcp,
        idle_exit: args.idle_exit.filter(|d| !d.is_zero()),
    };
    server::serve(client, session.config(), &session.data_dir, socket, options).await
}

/// What ssh-agent does for the keys it holds: no core file (a crash would
/// write the unlocked store key to disk, where systemd-coredump keeps it),
/// and not dumpable, so another process of the same user cannot ptrace it
/// or read its `/proc/PID/mem` without privilege. Best effort: a platform
/// or sandbox that refuses either still gets a working daemon, with a
/// warning, because refusing to run would push users back to typing the
/// password into every command.
fn keep_keys_out_of_dumps() {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = setrlimit(Resource::Core, none) {
        eprintln!("umbra: warning: could not turn off core dumps for the daemon: {e}");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        eprintln!("umbra: warning: could not make the daemon undumpable: {e}");
    }
}
