//! What the device suites share: linking a new data directory to an
//! account through the real `umbra link` / `umbra link-accept`, the
//! relay's SQLite store opened for inspection (and, where a test plays a
//! hostile operator, for tampering), and `search` records as the local
//! history shows them.
//!
//! Must never: read a link code from anywhere but `link`'s own output, or
//! touch a client's store (only the relay's, as its operator could).

#![allow(dead_code)] // each suite uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::client_support::User;

/// A password zxcvbn scores 4, for every linked data directory.
pub const NEW_DEVICE_PASSWORD: &str = "violet anchor marmalade 1987 trombone";

/// A running `umbra link`, killed if the test fails before it ends (it
/// would otherwise wait out its five minutes).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `umbra link` on `user`, then `link-accept` in a fresh data directory:
/// the outcome of `link-accept` (whatever its exit status) and the new
/// device's user, and `link`'s exit status and stderr.
pub fn try_link(
    relay: &umbra_e2e::Relay,
    user: &User,
) -> (User, crate::client_support::Outcome, bool, String) {
    let mut child = user
        .cli
        .command(&["link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umbra link");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut err = child.stderr.take().expect("stderr");
    let mut child = Running(child);
    let mut code = String::new();
    out.read_line(&mut code).expect("the link code");
    let joined = User::unregistered(relay, &user.name, NEW_DEVICE_PASSWORD);
    let accepted = joined.run(&["link-accept", code.trim_end()]);
    let mut stderr = String::new();
    if code.trim().is_empty() {
        // `link` failed before printing a code: its error is all there is.
        let _ = err.read_to_string(&mut stderr);
        let status = child.0.wait().expect("wait for link");
        return (joined, accepted, status.success(), stderr);
    }
    let status = child.0.wait().expect("wait for link");
    let _ = err.read_to_string(&mut stderr);
    (joined, accepted, status.success(), stderr)
}

/// Links a new device to `user`'s account, asserting both sides succeed.
pub fn link(relay: &umbra_e2e::Relay, user: &User) -> User {
    let (joined, accepted, linked, stderr) = try_link(relay, user);
    accepted.assert_success(&["link-accept"]);
    assert!(linked, "umbra link failed: {stderr}");
    joined
}

/// The `found` records `search TEXT` prints on `user`'s device.
pub fn found(user: &User, text: &str) -> Vec<Value> {
    user.json_ok(&["search", text])
        .into_iter()
        .filter(|r| r["type"] == "found")
        .collect()
}

/// The relay's SQLite store, opened beside the running relay (WAL mode lets
/// both write; the busy timeout waits out the relay's writer).
pub async fn relay_db(relay: &umbra_e2e::Relay) -> SqlitePool {
    let path = relay.data_dir().join("umbra.db");
    assert!(path.exists(), "no relay store at {}", path.display());
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(std::time::Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the relay's store")
}

/// The account id of `username` in the relay's store.
pub async fn account_of(db: &SqlitePool, username: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT account_id FROM accounts WHERE username = ?1")
        .bind(username)
        .fetch_one(db)
        .await
        .expect("the account row")
}

/// Envelopes queued at the relay for one device of an account.
pub async fn queued(db: &SqlitePool, account: &[u8], device: u32) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE account_id = ?1 AND device_id = ?2")
        .bind(account)
        .bind(i64::from(device))
        .fetch_one(db)
        .await
        .expect("count queued envelopes")
}
