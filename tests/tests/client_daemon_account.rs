//! The account commands and JSON-RPC batches through a running `umbra
//! daemon` (docs/CLI.md, "Daemon"): `logout` logs out and stops the
//! daemon, `login` resumes a daemon whose account is logged out without a
//! restart, `account delete` needs `--yes` (or `yes: true`) exactly as on
//! its own and then stops the daemon, and a batch gets one array of
//! answers.
//!
//! Must never: pass because a command ran on its own (the routed commands
//! either have no password source or would wait on the daemon's lock with
//! a one-second bound and exit 7), or wait without a bound.

mod client_daemon_support;
mod client_support;

use client_daemon_support::{run, without_password, Daemon, SOCKET_FILE};
use client_support::{exit, json_records, start_relay, User, SEND_TIMEOUT};
use serde_json::{json, Value};

/// `umbra ARGS` with the user's password file but a one-second lock wait:
/// on its own it would fail on the daemon's lock (exit 7).
fn with_password(user: &User, args: &[&str]) -> std::process::Command {
    let mut command = user.cli.command(args);
    command
        .env("UMBRA_LOCK_WAIT_SECS", "1")
        .stdin(std::process::Stdio::null());
    command
}

fn logged_in(user: &User, through_daemon: bool) -> bool {
    let out = if through_daemon {
        run(without_password(&user.cli, &["--json", "whoami"]))
    } else {
        run(with_password(user, &["--json", "whoami"]))
    };
    out.assert_success(&["whoami"]);
    json_records(&out.stdout, &["whoami"])[0]["logged_in"]
        .as_bool()
        .expect("logged_in is a bool")
}

#[test]
fn logout_through_the_daemon_stops_it_and_login_through_a_logged_out_daemon_resumes_it() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "first contact");
    let _ = bob.receive();

    let daemon = Daemon::start(&alice);
    let out = run(without_password(&alice.cli, &["--json", "logout"]));
    out.assert_success(&["logout"]);
    let records = json_records(&out.stdout, &["logout"]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "logout"),
        "{records:?}"
    );
    // Nothing left to serve: the daemon stops by itself, cleanly.
    assert_eq!(daemon.wait_for_exit(), Some(0));
    assert!(!alice.cli.data_dir().join(SOCKET_FILE).exists());
    // On its own now: the store says logged out, and the relay agrees.
    assert!(!logged_in(&alice, false));
    let send = ["send", "bob", "after logout", "--timeout", SEND_TIMEOUT];
    let out = run(with_password(&alice, &send));
    // Exit 6 (log in again), as docs/CLI.md says, never 3 ("retry").
    assert_eq!(out.code, Some(6), "{send:?} after logout: {}", out.stderr);
    assert!(out.stderr.contains("logged out"), "{}", out.stderr);

    // A daemon started on the logged-out store serves it as logged out...
    let daemon = Daemon::start(&alice);
    assert!(!logged_in(&alice, true));
    // ...and `login` goes through it (on its own it would fail on the
    // daemon's lock), after which it serves the new session.
    let out = run(with_password(&alice, &["--json", "login", "alice"]));
    out.assert_success(&["login"]);
    assert!(
        json_records(&out.stdout, &["login"])
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "login"),
        "{}",
        out.stdout
    );
    assert!(logged_in(&alice, true));
    let send = [
        "--json",
        "send",
        "bob",
        "through the daemon after login",
        "--timeout",
        SEND_TIMEOUT,
    ];
    run(without_password(&alice.cli, &send)).assert_success(&send);
    let inbox = bob.receive();
    assert_eq!(
        inbox
            .messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        // The send refused while logged out stayed queued and left with
        // the daemon's new session.
        vec!["after logout", "through the daemon after login"],
        "{:?}",
        inbox.records
    );
    // A wrong password fails as `login` does (exit 6) and the daemon keeps
    // serving the session it has.
    let mut wrong = without_password(&alice.cli, &["login", "alice"]);
    let wrong_file = alice.cli.data_dir().join("wrong-password");
    std::fs::write(&wrong_file, "not alice's password\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    wrong.env("UMBRA_PASSWORD_FILE", &wrong_file);
    run(wrong).assert_failure(exit::AUTH, &["login", "alice", "(wrong password)"]);
    assert!(logged_in(&alice, true));
    let send = ["send", "bob", "still served", "--timeout", SEND_TIMEOUT];
    run(without_password(&alice.cli, &send)).assert_success(&send);
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn account_delete_through_the_daemon_needs_yes_then_deletes_and_stops_it() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let daemon = Daemon::start(&alice);

    // Not a terminal and no --yes: refused as on its own, nothing deleted.
    let args = ["account", "delete"];
    let line = run(without_password(&alice.cli, &args)).assert_failure(exit::USER_ERROR, &args);
    assert!(line.contains("--yes"), "{line}");
    // The method itself wants `yes: true` too.
    let mut rpc = daemon.connect();
    let refused = rpc.ask(r#"{"jsonrpc":"2.0","id":1,"method":"account.delete"}"#);
    assert_eq!(refused["error"]["code"], -32001, "{refused}");
    assert_eq!(refused["error"]["data"]["exit_code"], 1, "{refused}");
    assert!(
        logged_in(&alice, true),
        "a refused delete changed something"
    );

    let args = ["--json", "account", "delete", "--yes"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    assert!(
        json_records(&out.stdout, &args)
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "delete"),
        "{}",
        out.stdout
    );
    assert_eq!(daemon.wait_for_exit(), Some(0));
    // The local store is erased, and the relay no longer has the account:
    // logging in to it from a fresh data dir fails as a wrong login does.
    let line =
        run(with_password(&alice, &["whoami"])).assert_failure(exit::USER_ERROR, &["whoami"]);
    assert!(line.contains("no account"), "{line}");
    let elsewhere = User::unregistered(&relay, "alice", "alice's password");
    elsewhere
        .run(&["login", "alice"])
        .assert_failure(exit::AUTH, &["login", "alice", "(deleted account)"]);
}

#[test]
fn a_batch_gets_one_array_of_answers_and_notifications_get_none() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let daemon = Daemon::start(&alice);
    let mut rpc = daemon.connect();

    let answers = rpc.ask(
        r#"[{"jsonrpc":"2.0","id":1,"method":"whoami"},{"jsonrpc":"2.0","method":"whoami"},{"jsonrpc":"2.0","id":"i","method":"daemon.info"},{"jsonrpc":"2.0","id":3,"method":"fly"},5]"#,
    );
    let answers = answers
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {answers}"));
    let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    assert_eq!(
        ids,
        vec![&json!(1), &json!("i"), &json!(3), &Value::Null],
        "{answers:?}"
    );
    assert_eq!(answers[0]["result"]["records"][0]["username"], "alice");
    assert!(
        answers[1]["result"]["methods"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("logout"))),
        "{answers:?}"
    );
    assert_eq!(answers[2]["error"]["code"], -32601);
    assert_eq!(answers[3]["error"]["code"], -32600);

    // An empty batch is one Invalid Request object, not an array.
    let empty = rpc.ask("[]");
    assert_eq!(
        (empty["error"]["code"].clone(), empty["id"].clone()),
        (json!(-32600), Value::Null),
        "{empty}"
    );
    // A batch of notifications is answered with nothing at all: the next
    // line on the connection is the answer to the request after it.
    rpc.send(r#"[{"jsonrpc":"2.0","method":"whoami"},{"jsonrpc":"2.0","method":"daemon.info"}]"#);
    let next = rpc.ask(r#"{"jsonrpc":"2.0","id":"after","method":"whoami"}"#);
    assert_eq!(next["id"], "after", "{next}");
    // A batch that is not valid JSON is one parse error.
    let broken = rpc.ask(r#"[{"jsonrpc":"2.0","id":1,"method":"whoami"},"#);
    assert_eq!(broken["error"]["code"], -32700, "{broken}");
    // Too many requests in one batch: one error, nothing run.
    let many = vec![r#"{"jsonrpc":"2.0","id":1,"method":"whoami"}"#; 257].join(",");
    let refused = rpc.ask(&format!("[{many}]"));
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("256")),
        "{refused}"
    );
    assert_eq!(daemon.terminate(), Some(0));
}
