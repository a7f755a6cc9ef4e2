//! `umbra daemon` over real processes (docs/CLI.md, "Daemon"): commands
//! started while a daemon serves their data directory go through it with no
//! password at all, `receive --follow` streams what arrives, the socket is
//! private, garbage gets a JSON-RPC parse error without hurting the daemon,
//! and a dead daemon's socket file never blocks a later command.
//!
//! Must never: pass because a command quietly ran on its own (every routed
//! command runs without any password source, so it can only succeed
//! through the daemon), or wait without a bound (every wait has a deadline
//! that fails the test, far beyond what the work takes).

mod client_daemon_support;
mod client_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use client_daemon_support::{
    lines_of, run, signal, without_password, Daemon, KillOnDrop, HANG_GUARD, LOCAL_DATA,
    SOCKET_FILE,
};
use client_support::{json_records, start_relay, Outcome, User, SEND_TIMEOUT};
use serde_json::Value;

#[test]
fn parallel_sends_without_a_password_go_through_the_daemon_and_all_arrive() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    let daemon = Daemon::start(&alice);

    let bodies: Vec<String> = (1..=4).map(|i| format!("through the daemon {i}")).collect();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| {
                let cli = &alice.cli;
                scope.spawn(move || {
                    run(without_password(
                        cli,
                        &["--json", "send", "bob", body, "--timeout", SEND_TIMEOUT],
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (body, out) in bodies.iter().zip(&outcomes) {
        out.assert_success(&["send", "bob", body]);
        let records = json_records(&out.stdout, &["send", "bob", body]);
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "sent" && r["to"] == "bob"),
            "send {body:?} printed no sent record: {records:?}"
        );
    }

    let inbox = bob.receive();
    assert!(
        inbox.of_type("decryption_failed").is_empty(),
        "{:?}",
        inbox.records
    );
    let mut got: Vec<String> = inbox.messages.iter().map(|m| m.body.clone()).collect();
    got.sort();
    assert_eq!(got, bodies, "bob did not get each message once");

    // Reads go through the daemon too, and see bob's answer once.
    bob.send("alice", "got all four");
    let out = run(without_password(
        &alice.cli,
        &["--json", "receive", "--timeout", "5"],
    ));
    out.assert_success(&["receive"]);
    let records = json_records(&out.stdout, &["receive"]);
    let bodies: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "message")
        .filter_map(|r| r["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["got all four"], "{records:?}");
    // The four sends already reported their outcome; `receive` does not
    // report them again (a direct `send` consumes its own, too).
    assert!(records.iter().all(|r| r["type"] != "sent"), "{records:?}");
    // Printed once is reported: the next `receive` has nothing new.
    let again = run(without_password(
        &alice.cli,
        &["--json", "receive", "--timeout", "5"],
    ));
    again.assert_success(&["receive"]);
    let records = json_records(&again.stdout, &["receive"]);
    assert!(
        records.iter().all(|r| r["type"] != "message"),
        "{records:?}"
    );
    assert_eq!(records.last().map(|r| r["count"].clone()), Some(0.into()));
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some("drained".into())
    );
    let who = run(without_password(&alice.cli, &["--json", "whoami"]));
    who.assert_success(&["whoami"]);
    assert_eq!(
        json_records(&who.stdout, &["whoami"])[0]["username"],
        "alice"
    );

    // A clean stop removes the socket; the next command works on its own.
    assert_eq!(daemon.terminate(), Some(0));
    assert!(
        !alice.cli.data_dir().join(SOCKET_FILE).exists(),
        "the socket outlived the daemon"
    );
    let records = alice.json_ok(&["whoami"]);
    assert_eq!(records[0]["username"], "alice");
}

#[test]
fn receive_follow_streams_a_message_with_and_without_the_daemon() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "first contact");
    let _ = bob.receive();

    for (round, daemon) in [("through the daemon", true), ("on its own", false)] {
        let running = daemon.then(|| Daemon::start(&alice));
        let mut command = if daemon {
            without_password(
                &alice.cli,
                &["--json", "receive", "--follow", "--timeout", "5"],
            )
        } else {
            alice
                .cli
                .command(&["--json", "receive", "--follow", "--timeout", "5"])
        };
        let mut follower = KillOnDrop(
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn receive --follow"),
        );
        let lines = lines_of(follower.0.stdout.take().expect("stdout"));
        let next = || -> Value {
            let line = lines
                .recv_timeout(HANG_GUARD)
                .unwrap_or_else(|_| panic!("{round}: receive --follow printed nothing more"));
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{round}: not JSON ({e}): {line}"))
        };
        // The first batch ends with `drained`; then the follower is live.
        loop {
            if next()["type"] == "drained" {
                break;
            }
        }
        let body = format!("live {round}");
        bob.send("alice", &body);
        let message = loop {
            let record = next();
            if record["type"] == "message" {
                break record;
            }
        };
        assert_eq!(
            (message["from"].as_str(), message["body"].as_str()),
            (Some("bob"), Some(body.as_str()))
        );
        signal(follower.0.id(), "TERM");
        let status = follower.0.wait().expect("wait for the follower");
        assert_eq!(
            status.code(),
            Some(0),
            "{round}: follower did not stop cleanly"
        );
        drop(running);
    }
}

#[test]
fn garbage_on_the_socket_gets_a_parse_error_and_the_daemon_keeps_serving() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let daemon = Daemon::start(&alice);

    let mode = std::fs::metadata(&daemon.socket)
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let connect = || {
        let stream = UnixStream::connect(&daemon.socket).expect("connect to the daemon");
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, reader)
    };
    let answer = |reader: &mut BufReader<UnixStream>| -> Value {
        let mut line = String::new();
        reader.read_line(&mut line).expect("the daemon answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line:?}"))
    };

    let (mut stream, mut reader) = connect();
    stream.write_all(b"this is not json\n").unwrap();
    let error = answer(&mut reader);
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert_eq!(error["id"], Value::Null);
    stream
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"fly\"}\n")
        .unwrap();
    assert_eq!(answer(&mut reader)["error"]["code"], -32601);
    // The same connection still works.
    stream
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"whoami\"}\n")
        .unwrap();
    let who = answer(&mut reader);
    assert_eq!(who["id"], 2, "{who}");
    assert_eq!(who["result"]["records"][0]["type"], "account", "{who}");
    assert_eq!(who["result"]["records"][0]["username"], "alice", "{who}");

    // An endless line is cut off with an error, not buffered.
    let (mut stream, mut reader) = connect();
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let _ = stream.write_all(&huge);
    let error = answer(&mut reader);
    assert_eq!(error["error"]["code"], -32600, "{error}");

    // A command failure keeps the exit status it has without the daemon.
    let out = run(without_password(&alice.cli, &["send", "alice", "  "]));
    out.assert_failure(1, &["send", "alice", "  "]);

    // The daemon survived all of it.
    let who = run(without_password(&alice.cli, &["--json", "whoami"]));
    who.assert_success(&["whoami"]);
    drop(daemon);
}

#[test]
fn a_second_daemon_and_register_fail_clearly_while_a_daemon_holds_the_dir_and_rename_goes_through()
{
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let daemon = Daemon::start(&alice);
    for args in [&["daemon"][..], &["register", "alice3"]] {
        let out = run(without_password(&alice.cli, args));
        let line = out.assert_failure(LOCAL_DATA, args);
        assert!(
            line.contains("a daemon holds this data dir"),
            "{args:?}: {line}"
        );
    }
    // Renaming goes through it, and the daemon answers as the new name.
    let out = run(without_password(
        &alice.cli,
        &["--json", "account", "rename", "alice2"],
    ));
    out.assert_success(&["account", "rename"]);
    let records = json_records(&out.stdout, &["account", "rename"]);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "done" && r["action"] == "rename"),
        "{records:?}"
    );
    let who = run(without_password(&alice.cli, &["--json", "whoami"]));
    who.assert_success(&["whoami"]);
    assert_eq!(
        json_records(&who.stdout, &["whoami"])[0]["username"],
        "alice2"
    );
    drop(daemon);
}

#[test]
fn a_dead_daemons_socket_does_not_block_the_next_command() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let mut daemon = Daemon::start(&alice);
    daemon.child.kill().expect("SIGKILL the daemon");
    daemon.child.wait().expect("reap the daemon");
    assert!(
        daemon.socket.exists(),
        "a killed daemon cannot remove its socket"
    );

    // On its own, with its password, without waiting on anything.
    let out = run({
        let mut c = alice.cli.command(&["--json", "whoami"]);
        c.env("UMBRA_LOCK_WAIT_SECS", "1");
        c
    });
    out.assert_success(&["whoami"]);
    // And a new daemon takes over the stale socket.
    let again = Daemon::start(&alice);
    let who = run(without_password(&alice.cli, &["--json", "whoami"]));
    who.assert_success(&["whoami"]);
    assert_eq!(again.terminate(), Some(0));
}

#[test]
fn stdio_and_tcp_serve_the_same_methods_and_tcp_wants_the_token() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");

    // A non-loopback address is refused before any password is needed.
    let out = run(without_password(
        &alice.cli,
        &["daemon", "--tcp", "192.0.2.1:7900"],
    ));
    let line = out.assert_failure(1, &["daemon", "--tcp"]);
    assert!(line.contains("loopback"), "{line}");

    let mut child = KillOnDrop(
        alice
            .cli
            .command(&["daemon", "--stdio", "--tcp", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn umbra daemon --stdio"),
    );
    let stderr = lines_of(child.0.stderr.take().expect("stderr"));
    let mut tcp_addr = None;
    loop {
        let line = stderr
            .recv_timeout(HANG_GUARD)
            .expect("umbra daemon never started serving");
        if let Some(rest) = line.strip_prefix("umbra daemon: TCP on ") {
            tcp_addr = rest.split(' ').next().map(str::to_owned);
        }
        if line.contains("serving on") {
            break;
        }
    }
    let tcp_addr = tcp_addr.expect("the daemon names its TCP address");

    // Standard input/output: one request, one answer.
    let mut stdin = child.0.stdin.take().expect("stdin");
    let stdout = lines_of(child.0.stdout.take().expect("stdout"));
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"whoami\"}\n")
        .unwrap();
    let who: Value = serde_json::from_str(&stdout.recv_timeout(HANG_GUARD).expect("an answer"))
        .expect("JSON answer");
    assert_eq!(who["id"], "s");
    assert_eq!(who["result"]["records"][0]["username"], "alice", "{who}");

    // TCP: nothing before `auth`, and only with the token's exact value.
    let stream = std::net::TcpStream::connect(&tcp_addr).expect("connect over TCP");
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let mut ask = |line: &str| -> Value {
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("a TCP answer");
        serde_json::from_str(&answer).expect("JSON answer")
    };
    let refused = ask(r#"{"jsonrpc":"2.0","id":1,"method":"whoami"}"#);
    assert_eq!(refused["error"]["code"], -32006, "{refused}");
    assert!(refused.get("result").is_none());
    let token = std::fs::read_to_string(alice.cli.data_dir().join("umbra-daemon.token"))
        .expect("token file");
    let token = token.trim();
    let mode = std::fs::metadata(alice.cli.data_dir().join("umbra-daemon.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    let mut wrong = token.to_owned();
    wrong.replace_range(..1, if token.starts_with('0') { "1" } else { "0" });
    let bad = ask(&format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"auth","params":{{"token":"{wrong}"}}}}"#
    ));
    assert_eq!(bad["error"]["code"], -32006, "{bad}");
    let good = ask(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"auth","params":{{"token":"{token}"}}}}"#
    ));
    assert_eq!(good["result"]["authenticated"], true, "{good}");
    let who = ask(r#"{"jsonrpc":"2.0","id":4,"method":"whoami"}"#);
    assert_eq!(who["result"]["records"][0]["username"], "alice", "{who}");

    // A connection that never authenticates is closed by the daemon, and a
    // notification (no id) it sends meanwhile gets no answer at all.
    let idle = std::net::TcpStream::connect(&tcp_addr).expect("connect over TCP");
    idle.set_read_timeout(Some(HANG_GUARD)).unwrap();
    (&idle)
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"whoami\"}\n")
        .unwrap();
    let mut unasked = String::new();
    let read = BufReader::new(&idle)
        .read_line(&mut unasked)
        .expect("the daemon closes an unauthenticated connection before the hang guard");
    assert_eq!(
        read, 0,
        "expected the connection closed unanswered, got {unasked:?}"
    );

    // Closing standard input stops the daemon cleanly.
    drop(stdin);
    let status = child.0.wait().expect("wait for the daemon");
    assert_eq!(status.code(), Some(0));
    assert!(!alice.cli.data_dir().join(SOCKET_FILE).exists());
    assert!(!alice.cli.data_dir().join("umbra-daemon.token").exists());
}

#[test]
fn a_command_waiting_on_the_lock_goes_through_a_daemon_that_starts_serving() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "first contact");

    // The daemon takes the lock, then its password command announces itself
    // and takes its time: a command started meanwhile finds the lock held
    // and no socket yet.
    let asked = alice.cli.data_dir().join("asked-for-password");
    let password_command = format!(
        "touch '{}'; sleep 2; cat \"$UMBRA_PASSWORD_FILE\"",
        asked.display()
    );
    let mut child = KillOnDrop(
        alice
            .cli
            .command(&["--password-command", &password_command, "daemon"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn umbra daemon"),
    );
    let stderr = lines_of(child.0.stderr.take().expect("stderr"));
    let waited = std::time::Instant::now();
    while !asked.exists() {
        assert!(
            waited.elapsed() < HANG_GUARD,
            "the daemon never asked for its password"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut command = alice.cli.command(&[
        "--json",
        "send",
        "bob",
        "sent while the daemon started",
        "--timeout",
        SEND_TIMEOUT,
    ]);
    command
        .env_remove("UMBRA_PASSWORD_FILE")
        .env("UMBRA_LOCK_WAIT_SECS", "100")
        .stdin(Stdio::null());
    let out = run(command);
    out.assert_success(&["send"]);
    assert!(
        json_records(&out.stdout, &["send"])
            .iter()
            .any(|r| r["type"] == "sent"),
        "{}",
        out.stdout
    );
    assert!(
        stderr.try_iter().any(|line| line.contains("serving on")),
        "the send finished before the daemon served"
    );
    let inbox = bob.receive();
    let bodies: Vec<&str> = inbox.messages.iter().map(|m| m.body.as_str()).collect();
    assert!(
        bodies.contains(&"sent while the daemon started"),
        "{bodies:?}"
    );
    signal(child.0.id(), "TERM");
    assert_eq!(child.0.wait().expect("wait for the daemon").code(), Some(0));
}
