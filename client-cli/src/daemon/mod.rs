//! `umbra daemon`: one long-running process that unlocks the store once,
//! holds the data directory's lock and the relay connection, and serves
//! JSON-RPC 2.0 (newline-delimited) to other `umbra` commands and scripts.
//!
//! Layout: [`protocol`] is the wire format (framing, requests, batches,
//! responses, error codes), [`methods`] runs one method against the
//! unlocked client ([`account`], [`chat`], [`groups`] and [`receive`] hold
//! the account, interactive, group and reporting ones), [`server`] owns the
//! listeners, connections and shutdown, and [`client`] is the side every other `umbra` command uses to
//! find a running daemon and route through it ([`channel`]: the concurrent
//! form `umbra chat` uses). [`agent`] starts one in the background for
//! `--agent-ttl`, and [`idle`] is the `--idle-exit` clock that stops it.
//!
//! Why a socket in the data directory: the directory is 0700 and the socket
//! 0600, so only the owner can reach the unlocked store; and a command finds
//! "its" daemon from the data directory alone.
//!
//! Must never: accept a connection from a non-loopback TCP address, serve a
//! TCP client before it presented the token, remove a socket while another
//! live daemon may own it (only the holder of the data-dir lock touches it),
//! or crash on malformed input.

mod about;
pub mod account;
pub mod agent;
mod block;
pub mod channel;
pub mod chat;
pub mod client;
mod delete_conversation;
mod devices;
mod disappearing;
pub mod files;
pub mod groups;
pub mod idle;
pub mod methods;
pub mod protocol;
pub mod receive;
pub mod server;

use std::path::{Path, PathBuf};

use crate::exit_status::Failure;

/// File name of the daemon's Unix socket inside the data directory.
pub const SOCKET_FILE: &str = "umbra-daemon.sock";

/// File name of the TCP token (only written with `--tcp`).
pub const TOKEN_FILE: &str = "umbra-daemon.token";

/// `sun_path` holds 108 bytes including the terminating NUL on Linux.
const MAX_SOCKET_PATH: usize = 107;

/// The socket path for a data directory, or why there can be none (the
/// path would not fit `sun_path`: pass a shorter `--data-dir`).
pub fn socket_path(data_dir: &Path) -> Result<PathBuf, Failure> {
    let path = data_dir.join(SOCKET_FILE);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Failure::local(format!(
            "the daemon socket path {} is {len} bytes, more than a Unix socket allows \
             ({MAX_SOCKET_PATH}); use a shorter --data-dir",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_path_that_does_not_fit_sun_path_is_refused() {
        let short = socket_path(Path::new("/tmp/u")).unwrap();
        assert_eq!(short, Path::new("/tmp/u/umbra-daemon.sock"));
        let exact = "/".to_owned() + &"d".repeat(MAX_SOCKET_PATH - SOCKET_FILE.len() - 2);
        assert_eq!(
            socket_path(Path::new(&exact)).unwrap().as_os_str().len(),
            107
        );
        let long = exact + "d";
        let err = socket_path(Path::new(&long)).unwrap_err();
        assert!(err.to_string().contains("shorter --data-dir"), "{err}");
    }
}
