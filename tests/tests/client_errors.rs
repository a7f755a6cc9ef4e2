//! How `umbra` fails, as scripts see it: the documented exit code
//! (docs/CLI.md: 1 user, 2 usage, 3 network, 6 authentication), nothing on
//! stdout, and exactly one `umbra: ...` line on stderr. Also that a send
//! which failed for the network is not lost.
//!
//! These suites must never accept "some non-zero code": the exact code is
//! the interface.

mod client_support;

use client_support::{exit, start_relay, Received, User};

#[test]
fn sending_to_an_unknown_user_is_a_user_error() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let args = ["send", "nobody-here", "hello?", "--timeout", "10"];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(
        line.contains("nobody-here"),
        "the error does not name the unknown user: {line:?}"
    );
}

#[test]
fn wrong_password_is_an_authentication_failure() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    // alice's own data directory, unlocked with the wrong password.
    // A copy of her data directory, since each Cli owns one password file.
    let impostor = User::unregistered(&relay, "alice", "not alice's password");
    copy_dir(alice.cli.data_dir(), impostor.cli.data_dir());
    let args = ["whoami"];
    impostor.run(&args).assert_failure(exit::AUTH, &args);

    // Logging in from a new device with the wrong password, and with a
    // username that does not exist: the same code and the same message,
    // so the relay's answer cannot tell the two apart.
    let wrong_pw = User::unregistered(&relay, "alice", "not alice's password");
    let args = ["login", "alice"];
    let wrong_pw_line = wrong_pw.run(&args).assert_failure(exit::AUTH, &args);
    let no_such = User::unregistered(&relay, "zed", "any password");
    let args = ["login", "zed"];
    let no_such_line = no_such.run(&args).assert_failure(exit::AUTH, &args);
    assert_eq!(
        wrong_pw_line.replace("alice", "NAME"),
        no_such_line.replace("zed", "NAME"),
        "wrong password and unknown user are told apart"
    );

    // The failed attempts changed nothing: alice still works.
    assert_eq!(alice.receive().messages, vec![]);
}

#[test]
fn an_unreachable_relay_is_a_network_error() {
    let port = closed_port();
    let relay = start_relay();
    let mut nowhere = User::unregistered(&relay, "alice", "alice's password");
    nowhere.cli.server = format!("http://127.0.0.1:{port}");
    let args = ["register", "alice"];
    nowhere.run(&args).assert_failure(exit::NETWORK, &args);
}

/// A generous bound for a command that must give up on the relay long
/// before it: the fixed commands end in about 2 s (a hanging relay under
/// `--timeout 2`) or at once (a refused port); the broken ones took 15 s
/// (client-core's own connect timeout) or the whole `--timeout 30`.
const GIVES_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn a_relay_that_accepts_and_never_answers_is_given_up_on_within_the_timeout() {
    let relay = start_relay();
    let mut alice = User::register(&relay, "alice", "alice's password");
    User::register(&relay, "bob", "bob's password");
    alice.send("bob", "while the relay answers");
    // The kernel completes the TCP handshake for the listener's backlog;
    // nothing ever reads or answers, as with a stopped (SIGSTOP) relay.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    alice.cli.server = format!("http://{}", hanging.local_addr().expect("addr"));
    for args in [
        &["receive", "--timeout", "2"][..],
        &["send", "bob", "into the void", "--timeout", "2"][..],
    ] {
        let started = std::time::Instant::now();
        let out = alice.run(args);
        let took = started.elapsed();
        out.assert_failure(exit::NETWORK, args);
        assert!(
            took < GIVES_UP_WITHIN,
            "umbra {args:?} against a hanging relay took {took:?}"
        );
    }
    drop(hanging);
}

#[test]
fn receive_from_a_refused_port_fails_at_once() {
    let relay = start_relay();
    let mut alice = User::register(&relay, "alice", "alice's password");
    alice.cli.server = format!("http://127.0.0.1:{}", closed_port());
    let args = ["receive", "--timeout", "30"];
    let started = std::time::Instant::now();
    let out = alice.run(&args);
    let took = started.elapsed();
    let line = out.assert_failure(exit::NETWORK, &args);
    assert!(
        took < GIVES_UP_WITHIN,
        "receive against a refused port waited {took:?} instead of failing"
    );
    assert!(
        line.to_lowercase().contains("refused"),
        "the error does not say the connection was refused: {line:?}"
    );
}

#[test]
fn a_logged_out_data_dir_says_so_and_fails_as_authentication() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    User::register(&relay, "bob", "bob's password");
    alice.cli.ok(&["logout"]);

    let shown = alice.cli.ok(&["whoami"]);
    assert!(
        shown.contains("logged out"),
        "whoami after logout does not say logged out: {shown:?}"
    );
    let record = alice.json_ok(&["whoami"]);
    assert_eq!(record[0]["logged_in"], false, "{record:?}");

    for args in [
        &["receive", "--timeout", "5"][..],
        &["send", "bob", "hi", "--timeout", "5"][..],
    ] {
        let line = alice.run(args).assert_failure(exit::AUTH, args);
        assert!(
            line.contains("logged out"),
            "umbra {args:?} does not say the data dir is logged out: {line:?}"
        );
    }

    // Logging in again resumes.
    alice.cli.ok(&["login", "alice"]);
    assert_eq!(alice.json_ok(&["whoami"])[0]["logged_in"], true);
}

#[test]
fn server_url_mistakes_are_named_as_such() {
    let relay = start_relay();
    let mut alice = User::register(&relay, "alice", "alice's password");
    let plain = alice.cli.server.clone();

    alice.cli.server = "relay.example:7878".into();
    let args = ["receive", "--timeout", "5"];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(
        line.contains("--server") && !line.contains("local store"),
        "a bad --server is not named as such: {line:?}"
    );

    // https:// against a relay without TLS.
    alice.cli.server = plain.replacen("http://", "https://", 1);
    let line = alice.run(&args).assert_failure(exit::NETWORK, &args);
    assert!(
        line.contains("does not speak TLS") && line.contains("http://"),
        "https:// against a plain relay does not say so: {line:?}"
    );
}

#[test]
fn a_bad_username_is_explained_once() {
    let relay = start_relay();
    let fresh = User::unregistered(&relay, "alice", "alice's password");
    let args = ["register", "bad-name"];
    let line = fresh.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert_eq!(
        line.matches("is not one of").count(),
        1,
        "the username rule is not printed exactly once: {line:?}"
    );
}

#[test]
fn help_describes_what_is_accepted() {
    let relay = start_relay();
    let fresh = User::unregistered(&relay, "alice", "alice's password");
    let help = |args: &[&str]| {
        let out = fresh.run(args);
        assert_eq!(out.code, Some(0), "umbra {args:?}: {out:?}");
        out.stdout
    };
    let top = help(&["--help"]);
    assert!(top.contains("UMBRA_PASSWORD_FILE"), "{top}");
    let register = help(&["register", "--help"]);
    assert!(
        register.contains("3 to 32") && !register.contains("'-'"),
        "register --help misstates the username rules: {register}"
    );
    let login = help(&["login", "--help"]);
    // The argument list, not the usage line: `  <USERNAME>  what it is`.
    let described = login
        .lines()
        .find(|l| l.trim_start().starts_with("<USERNAME>"))
        .unwrap_or_default();
    assert!(
        described.contains("username"),
        "login --help does not describe USERNAME: {login}"
    );
}

#[test]
fn the_message_size_limit_is_the_documented_one() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    // docs/CLI.md: at most 32,768 bytes of UTF-8.
    let largest = "a".repeat(32_768);
    alice.send("bob", &largest);
    assert_eq!(bob.receive().messages[0].body, largest);
    let over = "a".repeat(32_769);
    let args = ["send", "bob", &over, "--timeout", "10"];
    let line = alice.run(&args).assert_failure(exit::USER_ERROR, &args);
    assert!(
        line.contains("32769") && line.contains("32768"),
        "the error does not give the size and the limit: {line:?}"
    );
    assert_eq!(
        bob.receive().messages,
        vec![],
        "an oversized message arrived"
    );
}

#[test]
fn ctrl_c_during_send_says_what_became_of_the_message() {
    let relay = start_relay();
    let mut alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "while the relay answers");
    assert_eq!(bob.receive().messages.len(), 1);
    let real = alice.cli.server.clone();

    // The relay hangs, so `send` is still waiting to check bob's keys (the
    // message is not queued yet) when it is interrupted.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    alice.cli.server = format!("http://{}", hanging.local_addr().expect("addr"));
    let child = alice
        .cli
        .command(&["send", "bob", "interrupted", "--timeout", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn umbra");
    // Once umbra connects it has unlocked its store and is waiting for the
    // relay, with its Ctrl-C handler in place.
    let _connection = hanging.accept().expect("umbra connects");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
    let out = child.wait_with_output().expect("wait for umbra");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::NETWORK), "stderr {stderr:?}");
    assert!(
        stderr.starts_with("umbra: interrupted") && stderr.contains("nothing was sent"),
        "an interrupted send does not say what became of the message: {stderr:?}"
    );

    // And indeed nothing was queued: the next connected run sends nothing.
    alice.cli.server = real;
    let flushed = alice.json_ok(&["receive", "--timeout", "5"]);
    assert!(
        flushed.iter().all(|r| r["type"] != "sent"),
        "the interrupted message was sent after all: {flushed:?}"
    );
    assert_eq!(bob.receive().messages, vec![]);
}

#[test]
fn a_send_that_failed_for_the_network_is_delivered_later_exactly_once() {
    let mut relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "while the relay is up");
    assert_eq!(bob.receive().messages.len(), 1);

    relay.stop();
    let args = [
        "send",
        "bob",
        "written while the relay is down",
        "--timeout",
        "3",
    ];
    let line = alice.run(&args).assert_failure(exit::NETWORK, &args);
    assert!(
        line.contains("queued") || line.contains("outbox"),
        "the network error does not say the message is kept: {line:?}"
    );

    // Back up (same address): the next command that connects sends it.
    relay.restart();
    // `receive` returns as soon as the queue is drained and the outbox
    // handed over, so a long budget costs nothing when the machine is
    // quiet; 5 s, shared by connecting, logging in, draining and the flush,
    // ran out once in CI with thirteen of these tests on two cores, leaving
    // the message queued for the next command (kept, not lost).
    let flushed = alice.json_ok(&["receive", "--timeout", "30"]);
    let sent: Vec<_> = flushed.iter().filter(|r| r["type"] == "sent").collect();
    assert_eq!(
        sent.len(),
        1,
        "receive did not send the queued message: {flushed:?}"
    );
    let id = client_support::string_field(sent[0], "id");
    assert_eq!(
        bob.receive().messages,
        vec![Received {
            from: "alice".into(),
            id,
            body: "written while the relay is down".into(),
        }]
    );
    // And only once: neither another flush nor another receive repeats it.
    let again = alice.json_ok(&["receive", "--timeout", "5"]);
    assert!(
        again.iter().all(|r| r["type"] != "sent"),
        "the queued message was sent twice: {again:?}"
    );
    assert_eq!(bob.receive().messages, vec![], "delivered twice");
}

#[test]
fn usage_errors_and_missing_accounts() {
    let relay = start_relay();
    let fresh = User::unregistered(&relay, "alice", "alice's password");
    let args = ["fly-to-the-moon"];
    let out = fresh.run(&args);
    assert_eq!(out.code, Some(exit::USAGE), "unknown command: {out:?}");
    assert_eq!(out.stdout, "");
    // No account in this data directory yet.
    let args = ["whoami"];
    fresh.run(&args).assert_failure(exit::USER_ERROR, &args);
    let args = ["send", "bob", "hi", "--timeout", "5"];
    fresh.run(&args).assert_failure(exit::USER_ERROR, &args);
}

/// A loopback port nothing listens on: bound, read, released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read data dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
