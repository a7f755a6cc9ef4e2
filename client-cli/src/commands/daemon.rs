//! `umbra daemon [--stdio] [--tcp 127.0.0.1:PORT]`: unlock the store once
//! and serve it to other `umbra` commands and scripts (docs/CLI.md,
//! "Daemon"). The data-dir lock is already held when this runs.
//!
//! Must never: prompt for the password before knowing the socket can
//! exist (a too-long data dir path fails first), or serve before the
//! relay connection is started.

use anyhow::Context as _;

use crate::cli::DaemonArgs;
use crate::daemon::server::{self, Options};
use crate::exit_status::ExitStatus;
use crate::session::Session;

pub async fn run(session: &Session, args: &DaemonArgs) -> anyhow::Result<ExitStatus> {
    let socket = crate::daemon::socket_path(&session.data_dir)?;
    let client = session.open_client().await?;
    client.connect().await.context("connecting to the relay")?;
    let options = Options {
        stdio: args.stdio,
        tcp: args.tcp,
    };
    server::serve(client, &session.data_dir, socket, options).await
}
