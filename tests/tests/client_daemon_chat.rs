//! `umbra chat` through a running `umbra daemon`, on a real terminal (a
//! pseudo-terminal from util-linux `script`): with no password source at
//! all it shows the history the daemon stored, sends what is typed, shows
//! what arrives while it is open (edits and replies too), sends a typed
//! reaction and a disappearing timer, shows a delete for everyone by the
//! contact, and lets a script send at the same time.
//!
//! Must never: pass because chat ran on its own (it has no password source
//! and a one-second lock wait, so on its own it fails at once), match text
//! the test typed itself (every body looked for on the screen is one the
//! test never types), or wait without a bound.
//!
//! The bodies looked for on the screen have no spaces: the terminal
//! renderer moves the cursor over blank cells instead of writing them, so
//! only a run of non-blank characters arrives as one piece of output.

mod client_daemon_support;
mod client_support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use client_daemon_support::{run, without_password, Daemon, KillOnDrop, HANG_GUARD};
use client_support::{json_records, start_relay, User, SEND_TIMEOUT};

/// Everything the terminal showed so far (and whether it closed), and a
/// way to wait for more.
#[derive(Default)]
struct Screen {
    bytes: Mutex<(Vec<u8>, bool)>,
    grew: Condvar,
}

impl Screen {
    /// Waits until the output contains `text`; fails after the hang guard.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + HANG_GUARD;
        let mut shown = self.bytes.lock().unwrap();
        while !String::from_utf8_lossy(&shown.0).contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            // A chat that exited shows nothing more: fail at once.
            assert!(
                !left.is_zero() && !shown.1,
                "the chat screen never showed {text:?}; it showed: {:?}",
                String::from_utf8_lossy(&shown.0)
            );
            shown = self.grew.wait_timeout(shown, left).unwrap().0;
        }
    }
}

/// Quotes `arg` for `sh -c`.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[test]
fn chat_through_the_daemon_shows_history_sends_and_receives_while_a_script_sends() {
    let relay = start_relay();
    let alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "first contact");
    let _ = bob.receive();

    let daemon = Daemon::start(&alice);
    bob.send("alice", "stored-before-the-chat-opened");
    // The daemon has it once a `receive` through it reports it.
    let args = ["--json", "receive", "--timeout", "5"];
    let out = run(without_password(&alice.cli, &args));
    out.assert_success(&args);
    assert!(
        json_records(&out.stdout, &args)
            .iter()
            .any(|r| r["body"] == "stored-before-the-chat-opened"),
        "{}",
        out.stdout
    );

    // `umbra chat` on a pseudo-terminal of 40x120 (a pty `script` makes
    // has no size when its own input is a pipe), with no password source.
    let chat = without_password(&alice.cli, &["chat"]);
    let mut line = String::from("stty rows 40 cols 120 && exec");
    line.push(' ');
    line.push_str(&shell_quote(&chat.get_program().to_string_lossy()));
    for arg in chat.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    let mut script = Command::new("script");
    script.args([
        "--quiet",
        "--return",
        "--flush",
        "--command",
        &line,
        "/dev/null",
    ]);
    for (key, value) in chat.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = KillOnDrop(
        script
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `script` (util-linux) to give umbra chat a terminal"),
    );
    let screen = Arc::new(Screen::default());
    {
        let screen = screen.clone();
        let mut stdout = child.0.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).unwrap_or(0);
                let mut shown = screen
                    .bytes
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                shown.0.extend_from_slice(&buf[..n]);
                shown.1 = n == 0;
                drop(shown);
                screen.grew.notify_all();
                if n == 0 {
                    break;
                }
            }
        });
    }
    let mut keys = child.0.stdin.take().expect("stdin");

    // Loaded through the daemon: the most recent conversation (bob's) is
    // open, with the message stored before the chat started.
    screen.wait_for("stored-before-the-chat-opened");

    // Typed and sent through the daemon.
    keys.write_all(b"typed in the chat\r").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    let mut got = Vec::new();
    while !got.iter().any(|b: &String| b == "typed in the chat") {
        assert!(
            Instant::now() < deadline,
            "bob never got the typed message; got {got:?}"
        );
        got.extend(bob.receive().messages.into_iter().map(|m| m.body));
    }

    // A script sends through the same daemon while the chat is open.
    let send = [
        "--json",
        "send",
        "bob",
        "from a script meanwhile",
        "--timeout",
        SEND_TIMEOUT,
    ];
    run(without_password(&alice.cli, &send)).assert_success(&send);
    let inbox = bob.receive();
    assert!(
        inbox
            .messages
            .iter()
            .any(|m| m.body == "from a script meanwhile"),
        "{:?}",
        inbox.records
    );

    // What arrives while it is open shows up: the daemon's event.
    let live = bob.send("alice", "live-while-the-chat-is-open");
    screen.wait_for("live-while-the-chat-is-open");

    // Messages about messages (issue 13): a reaction typed in the chat
    // reaches bob, aimed at the newest message (his); his edit and his
    // reply show in place.
    keys.write_all("/react 👍\r".as_bytes()).unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let records = bob.receive().records;
        if records.iter().any(|r| {
            r["type"] == "message_changed"
                && r["change"] == "reacted"
                && r["emoji"] == "👍"
                && r["target"] == live.as_str()
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "bob never got the reaction");
    }
    bob.json_ok(&["edit", "alice", &live, "edited-while-the-chat-is-open"]);
    screen.wait_for("edited-while-the-chat-is-open");
    screen.wait_for("(edited)");
    let reply = ["send", "alice", "reply-with-its-quote", "--reply-to", &live];
    bob.json_ok(&reply);
    screen.wait_for("reply-with-its-quote");
    // The quote above it names bob and starts with the edited text.
    screen.wait_for("↪");

    // Disappearing messages (issue 13): a timer typed in the chat
    // reaches bob, and the title shows it once the change is made.
    keys.write_all(b"/disappear 1h\r").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let records = bob.receive().records;
        if records.iter().any(|r| {
            r["type"] == "disappearing_timer" && r["with"] == "alice" && r["seconds"] == 3600
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "bob never got the timer");
    }
    screen.wait_for("⏱");

    // bob deletes the conversation for everyone: the open view says so.
    bob.json_ok(&["delete-conversation", "alice", "--everyone"]);
    screen.wait_for("erased");

    // Ctrl-Q quits cleanly.
    keys.write_all(b"\x11").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("poll the chat") {
            break status;
        }
        assert!(Instant::now() < deadline, "the chat did not quit on Ctrl-Q");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert_eq!(status.code(), Some(0), "chat failed; stderr: {stderr}");
    assert_eq!(daemon.terminate(), Some(0));
}
