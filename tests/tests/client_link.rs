//! `umbra link` and `umbra link-accept` through the real binaries and a
//! real relay (docs/CLI.md, docs/PROTOCOL.md §12.17): `link` prints the
//! code alone on its first line (with `--json` a `link_code` record) and
//! waits; `link-accept` in a second data directory, given the code as an
//! argument or on standard input, becomes device 2 of the account, with
//! the same account id, bob as a contact with the trust alice gave him,
//! and the same safety number; `link` then reports the new device and
//! `devices` lists both. A code mistyped in its ticket half is refused
//! with exit 1 and the data directory stays empty. A data directory whose
//! link setup never committed (its store header alone) is linked into.
//!
//! Must never: read the code from anywhere but `link`'s own output, or
//! reach into a store except to build the header-only store a crash leaves.

mod client_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use client_support::{exit, json_records, start_relay, User};
use serde_json::Value;

/// A password zxcvbn scores 4: `link-accept` asks for a new one, as
/// `register` does.
const NEW_DEVICE_PASSWORD: &str = "violet anchor marmalade 1987 trombone";

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

/// `umbra ARGS` on `user`'s data dir, running, with its first stdout line
/// read (the code, or the `link_code` record).
fn start_link(
    user: &User,
    args: &[&str],
) -> (Running, BufReader<std::process::ChildStdout>, String) {
    let mut child = user
        .cli
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn umbra link");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    let child = Running(child);
    out.read_line(&mut first).expect("read the first line");
    (child, out, first.trim_end().to_owned())
}

/// Waits for the `link` process and returns the rest of its stdout.
fn finish_link(mut child: Running, mut out: BufReader<std::process::ChildStdout>) -> String {
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read link output");
    let mut stderr = String::new();
    if let Some(mut err) = child.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let status = child.0.wait().expect("wait for link");
    assert!(status.success(), "link failed: {stderr}");
    rest
}

/// `code` with character `at` replaced by another base32 letter.
fn mistype(code: &str, at: usize) -> String {
    code.char_indices()
        .map(|(i, c)| match (i == at, c) {
            (false, c) => c,
            (true, 'a') => 'b',
            (true, _) => 'a',
        })
        .collect()
}

fn account_record(user: &User) -> Value {
    let records = user.json_ok(&["whoami"]);
    records
        .into_iter()
        .find(|r| r["type"] == "account")
        .expect("an account record")
}

#[test]
fn link_accept_makes_a_second_data_dir_device_two_of_the_account() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password, long enough");
    let bob = User::register(&relay, "bob", "bob's password, long enough too");
    alice.send("bob", "hi bob");
    bob.receive();
    let (number, _) = alice.safety_number("bob");
    alice.json_ok(&["verify", "bob", "--mark-verified", &number]);

    // Human form: the code alone on the first line, no QR (not a terminal).
    let (child, out, code) = start_link(&alice, &["link"]);
    assert_eq!(code.len(), 77, "{code:?}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "{code:?}"
    );

    // A code mistyped in its ticket half: exit 1, nothing written; the
    // real code still links afterwards.
    let stray = User::unregistered(&relay, "stray", NEW_DEVICE_PASSWORD);
    let args = ["link-accept", &mistype(&code, 3)];
    let line = stray.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("knows no such link code"), "{line}");
    let args = ["whoami"];
    stray.run(&args).assert_failure(exit::USER_ERROR, &args);

    // The code on standard input, so it is not in the process list.
    let laptop = User::unregistered(&relay, "alice", NEW_DEVICE_PASSWORD);
    let args = ["--json", "link-accept", "-"];
    let accepted = laptop.run_with_stdin(&args, &format!("{code}\n"));
    accepted.assert_success(&args);
    let records = json_records(&accepted.stdout, &args);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "link_accept"),
        "{records:?}"
    );
    let rest = finish_link(child, out);
    assert!(rest.contains("device 2"), "{rest}");

    let (was, now) = (account_record(&alice), account_record(&laptop));
    assert_eq!(now["account_id"], was["account_id"]);
    assert_eq!(now["username"], "alice");
    assert_eq!(
        (was["device_id"].clone(), now["device_id"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(
        laptop.contacts(),
        [("bob".to_owned(), "verified".to_owned())]
    );
    assert_eq!(laptop.safety_number("bob").0, number);

    // With --json the first line is the link_code record.
    let (child, out, first) = start_link(&alice, &["--json", "link"]);
    let record: Value = serde_json::from_str(&first).expect("a JSON first line");
    assert_eq!(record["type"], "link_code", "{record}");
    let code = record["link_code"].as_str().expect("link_code").to_owned();
    let desktop = User::unregistered(&relay, "alice", NEW_DEVICE_PASSWORD);
    let args = ["link-accept", &code];
    desktop.run(&args).assert_success(&args);
    let rest = finish_link(child, out);
    let done = json_records(&rest, &["--json", "link"]);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["action"], "link", "{done:?}");
    assert_eq!(account_record(&desktop)["device_id"], 3);

    let listed: Vec<(u64, bool)> = alice
        .json_ok(&["devices"])
        .iter()
        .map(|d| {
            (
                d["device_id"].as_u64().unwrap(),
                d["listed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, true), (2, true), (3, true)]);

    // `devices add-to-list`: a listed device is a no-op done, an id that
    // is no current device is exit 1.
    let done = alice.json_ok(&["devices", "add-to-list", "3"]);
    assert_eq!(done[0]["action"], "device_list", "{done:?}");
    let args = ["devices", "add-to-list", "9"];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("not a current device"), "{line}");
}

/// A data directory whose link setup never committed (a crash between the
/// store's creation and its one setup transaction leaves the store header
/// alone) is linked into with the password it was created with; a data
/// directory holding an account is still refused before anything is sent.
#[test]
fn link_accept_sets_up_a_store_whose_setup_never_committed() {
    let relay = start_relay();
    let password = "alice's password, long enough";
    let alice = User::register(&relay, "alice", password);
    let bob = User::register(&relay, "bob", "bob's password, long enough too");

    // The header of a store of alice's account under `password`, and no
    // record: what the crash leaves.
    let leftover = User::unregistered(&relay, "alice", password);
    let header = store_db(alice.cli.data_dir(), async |pool| {
        let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM header WHERE id = 1")
            .fetch_one(pool)
            .await
            .expect("alice's store header");
        bytes
    });
    store_db(leftover.cli.data_dir(), async |pool| {
        sqlx::query(
            "CREATE TABLE header (id INTEGER PRIMARY KEY CHECK (id = 1), bytes BLOB NOT NULL)",
        )
        .execute(pool)
        .await
        .expect("header table");
        sqlx::query("INSERT INTO header (id, bytes) VALUES (1, ?)")
            .bind(header)
            .execute(pool)
            .await
            .expect("header row");
    });

    let (child, out, code) = start_link(&alice, &["link"]);
    // bob's data directory holds an account: refused, nothing sent (the
    // code still links below).
    let args = ["link-accept", &code];
    let line = bob.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("already holds an account"), "{line}");

    leftover.run(&args).assert_success(&args);
    let rest = finish_link(child, out);
    assert!(rest.contains("device 2"), "{rest}");
    let (was, now) = (account_record(&alice), account_record(&leftover));
    assert_eq!(now["account_id"], was["account_id"]);
    assert_eq!(now["device_id"], 2);
}

/// The client store of the data directory `dir`, opened (and created if
/// absent) as a crash would have left it.
fn store_db<T>(dir: &std::path::Path, work: impl AsyncFnOnce(&sqlx::SqlitePool) -> T) -> T {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("umbra-client.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("the client store opens");
        let out = work(&pool).await;
        pool.close().await;
        out
    })
}
