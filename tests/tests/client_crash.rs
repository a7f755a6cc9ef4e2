//! An `umbra` process killed between encrypting a message and the relay
//! taking it: the outbox in its SQLite store must make the next run send the
//! very same envelope bytes (a re-encryption would put a second plaintext
//! under the same message key), and the recipient must get the message
//! exactly once. Also: what `send` tells the user when the relay never
//! answers (it never got the frame, or its answer was lost), and that the
//! CLI keeps its word: "queued, will be sent" is followed by the next run
//! sending it, and the recipient seeing it once.
//!
//! The interruption is exact and needs no hook in the product: a WebSocket
//! proxy (umbra_e2e::ws_proxy) sits between `umbra` and the relay and holds
//! back the `Send` frame for the recipient. Holding it proves the envelope
//! was sealed and written before it left; the relay never sees it.
//!
//! Must never: kill a process other than the `umbra` child this test
//! started, or pass without seeing the held frame and its resend.

mod client_support;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use client_support::{exit, start_relay, string_field, Received, User};
use umbra_e2e::ws_proxy::{SeenSend, WsProxy};
use umbra_protocol::wire::AccountId;

/// Bound on waiting for the client's `Send` frame to reach the proxy: only
/// a broken client comes near it.
const FRAME_WAIT: Duration = Duration::from_secs(60);

/// SIGKILL's signal number (9 on every Unix).
const SIGKILL: i32 = 9;

/// The account id `whoami` reports for `user`.
fn account_of(user: &User) -> AccountId {
    let records = user.json_ok(&["whoami"]);
    let record = records
        .iter()
        .find(|r| r["type"] == "account")
        .unwrap_or_else(|| panic!("whoami printed no account record: {records:?}"));
    let hex = string_field(record, "account_id");
    AccountId::from_hex(&hex).unwrap_or_else(|| panic!("not an account id: {hex:?}"))
}

/// A relay, alice and bob, and a proxy to the relay for alice that
/// interferes with every `Send` to bob until told otherwise.
struct Scene {
    // Field order is drop order: the proxy's tasks end before the runtime.
    proxy: WsProxy,
    runtime: tokio::runtime::Runtime,
    alice: User,
    bob: User,
    bob_account: AccountId,
    _relay: umbra_e2e::Relay,
}

impl Scene {
    /// `interfere` tells the proxy what to do to Sends for bob's account.
    fn new(interfere: fn(&WsProxy, AccountId)) -> Scene {
        let relay = start_relay();
        let mut alice = User::register(&relay, "alice", "alice's password");
        let bob = User::register(&relay, "bob", "bob's password");
        let bob_account = account_of(&bob);
        let runtime = tokio::runtime::Runtime::new().expect("runtime for the proxy");
        let proxy = runtime
            .block_on(WsProxy::start(&relay.ws_url()))
            .expect("start the proxy");
        interfere(&proxy, bob_account);
        alice.cli.server = proxy.http_url();
        Scene {
            proxy,
            runtime,
            alice,
            bob,
            bob_account,
            _relay: relay,
        }
    }

    /// The first envelope for bob the proxy saw.
    fn first_send(&self) -> SeenSend {
        let bob = self.bob_account;
        self.runtime
            .block_on(
                self.proxy
                    .wait_for_send(FRAME_WAIT, |s| s.to.account == bob),
            )
            .expect("alice's umbra sent no Send frame for bob within the bound")
    }

    /// Lets everything through, runs alice's `receive` (which connects and
    /// flushes the outbox), and checks what the relay was sent for bob: the
    /// first envelope's bytes and nothing else, forwarded at least
    /// `forwarded_at_least` times. Returns alice's `receive` output.
    fn release_and_flush(
        &self,
        held: &SeenSend,
        forwarded_at_least: usize,
    ) -> client_support::Inbox {
        self.proxy.forward_everything();
        let inbox = self.alice.receive();
        let sends = self.proxy.sends_to(self.bob_account);
        let forwarded = sends.iter().filter(|s| s.forwarded).count();
        assert!(
            forwarded >= forwarded_at_least,
            "the next run did not send bob's envelope (again): {sends:?}"
        );
        for send in &sends {
            assert_eq!(
                send.envelope, held.envelope,
                "a Send for bob carried other bytes than the held envelope: re-encrypted"
            );
        }
        inbox
    }

    /// Bob receives `body` from alice exactly once, and nothing else.
    fn bob_gets_exactly_once(&self, body: &str) {
        let inbox = self.bob.receive();
        assert_eq!(
            inbox
                .messages
                .iter()
                .map(|m| (m.from.as_str(), m.body.as_str()))
                .collect::<Vec<_>>(),
            vec![("alice", body)],
            "{:?}",
            inbox.records
        );
        assert!(
            inbox.of_type("decryption_failed").is_empty(),
            "{:?}",
            inbox.records
        );
        let again: Vec<Received> = self.bob.receive().messages;
        assert!(again.is_empty(), "delivered twice: {again:?}");
    }
}

#[test]
fn a_send_killed_before_the_relay_got_it_is_resent_byte_for_byte_and_arrives_once() {
    let scene = Scene::new(WsProxy::hold_sends_to);
    let body = "sealed, then the process was killed";
    let mut send = scene
        .alice
        .cli
        .command(&["--json", "send", "bob", body, "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn umbra send");
    let held = scene.first_send();
    assert!(!held.forwarded);
    // SIGKILL while the frame is held: no shutdown, no flush, no goodbye.
    send.kill().expect("SIGKILL umbra send");
    let status = send.wait().expect("reap umbra send");
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "umbra send ended before it was killed: {status:?}"
    );
    assert_eq!(held.to.account, scene.bob_account);

    let inbox = scene.release_and_flush(&held, 1);
    let sent = inbox.of_type("sent");
    assert_eq!(
        sent.len(),
        1,
        "the next run reports the queued message sent once: {:?}",
        inbox.records
    );
    assert_eq!(sent[0]["to"], "bob");
    scene.bob_gets_exactly_once(body);
}

/// The id in `send`'s "queued locally (id X) and will be sent" error line.
fn queued_id(line: &str) -> String {
    assert!(
        line.contains("queued locally") && line.contains("will be sent"),
        "{line}"
    );
    line.split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no message id in {line:?}"))
        .to_string()
}

#[test]
fn a_send_the_relay_never_got_says_queued_and_the_next_run_delivers_it() {
    let scene = Scene::new(WsProxy::hold_sends_to);
    let body = "the relay never got this";
    let args = ["--json", "send", "bob", body, "--timeout", "3"];
    let out = scene.alice.run(&args);
    // Held: the relay never got the frame, so `send` must not claim success.
    let id = queued_id(&out.assert_failure(exit::NETWORK, &args));
    let held = scene.first_send();
    assert!(!held.forwarded);

    // The promise: the next command that connects sends it.
    let inbox = scene.release_and_flush(&held, 1);
    let sent = inbox.of_type("sent");
    assert_eq!(sent.len(), 1, "{:?}", inbox.records);
    assert_eq!(sent[0]["id"], id.as_str(), "{:?}", inbox.records);
    scene.bob_gets_exactly_once(body);
}

#[test]
fn a_send_whose_answer_was_lost_says_queued_and_bob_sees_the_resend_once() {
    let scene = Scene::new(WsProxy::lose_answers_to_sends_to);
    let body = "the relay took this but its answer was lost";
    let args = ["--json", "send", "bob", body, "--timeout", "3"];
    let out = scene.alice.run(&args);
    // The relay has it, but `send` cannot know: "queued" is the honest word.
    let id = queued_id(&out.assert_failure(exit::NETWORK, &args));
    let first = scene.first_send();
    assert!(first.forwarded);

    // The next run sends the same bytes again (the relay now holds two
    // copies); bob's client shows the message once.
    let inbox = scene.release_and_flush(&first, 2);
    let sent = inbox.of_type("sent");
    assert_eq!(sent.len(), 1, "{:?}", inbox.records);
    assert_eq!(sent[0]["id"], id.as_str(), "{:?}", inbox.records);
    scene.bob_gets_exactly_once(body);
}
