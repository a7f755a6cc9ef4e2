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
