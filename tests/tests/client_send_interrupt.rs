//! Ctrl-C during `umbra send` after the message reached the outbox: the
//! "queued" branch (docs/CLI.md, `send`). A WebSocket proxy between
//! `umbra` and a real relay forwards everything until the client's `Send`
//! request, which it holds back: at that moment the message is encrypted
//! and durable in the outbox, and the relay has not seen it. SIGINT then
//! must say "queued locally" with the message's id, and the next `umbra`
//! that connects (straight to the relay) must deliver that very message.
//! (The "not queued" branch is in client_errors.rs.)
//!
//! Must never: interrupt before the `Send` was seen (the test waits for the
//! proxy to report it), pass on a message other than the interrupted one
//! (its id is checked at bob's end), or wait without a bound.

mod client_support;

use std::sync::mpsc;
use std::time::Duration;

use client_support::{exit, start_relay, User};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use umbra_protocol::wire::{self, Request};

/// A bound on every wait; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Listens on a loopback port and relays each WebSocket connection to
/// `relay_ws`, until the client sends a `Send` request: that one is
/// reported on the returned channel and nothing more is forwarded.
fn start_proxy(relay_ws: String) -> (std::net::SocketAddr, mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let (seen_send, send_seen) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("proxy runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let relay_ws = relay_ws.clone();
                let seen_send = seen_send.clone();
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    let Ok((relay, _)) = tokio_tungstenite::connect_async(&relay_ws).await else {
                        return;
                    };
                    let (mut to_client, mut from_client) = client.split();
                    let (mut to_relay, mut from_relay) = relay.split();
                    let upstream = async {
                        while let Some(Ok(message)) = from_client.next().await {
                            if let Message::Binary(bytes) = &message {
                                if let Ok(frame) = wire::decode_client(bytes) {
                                    if matches!(frame.request, Request::Send { .. }) {
                                        let _ = seen_send.send(());
                                        // Hold the connection open, answer nothing.
                                        std::future::pending::<()>().await;
                                    }
                                }
                            }
                            if to_relay.send(message).await.is_err() {
                                break;
                            }
                        }
                    };
                    let downstream = async {
                        while let Some(Ok(message)) = from_relay.next().await {
                            if to_client.send(message).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! {
                        () = upstream => {}
                        () = downstream => {}
                    }
                });
            }
        });
    });
    (addr, send_seen)
}

#[test]
fn ctrl_c_after_the_message_is_queued_says_queued_with_its_id_and_it_arrives_later() {
    let relay = start_relay();
    let mut alice = User::register(&relay, "alice", "alice's password");
    let bob = User::register(&relay, "bob", "bob's password");
    alice.send("bob", "while the relay answers");
    assert_eq!(bob.receive().messages.len(), 1);

    let real = alice.cli.server.clone();
    let (proxy, send_seen) = start_proxy(relay.ws_url());
    alice.cli.server = format!("http://{proxy}");
    let child = alice
        .cli
        .command(&["send", "bob", "interrupted once queued", "--timeout", "60"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn umbra");
    let mut child = KillOnDrop(Some(child));
    // The client sent its `Send`: the message is in the outbox.
    send_seen
        .recv_timeout(HANG_GUARD)
        .expect("umbra never sent the message through the proxy");
    let pid = child.0.as_ref().expect("child").id();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
    let out = child
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("wait for umbra");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::NETWORK), "stderr {stderr:?}");
    assert!(
        stderr.starts_with("umbra: interrupted") && stderr.contains("queued locally"),
        "an interrupted queued send does not say it is queued: {stderr:?}"
    );
    let id = stderr
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no message id in {stderr:?}"))
        .to_owned();
    assert_eq!(id.len(), 32, "{id:?}");

    // The next umbra that connects (straight to the relay) sends it, and
    // bob gets exactly that message once.
    alice.cli.server = real;
    let flushed = alice.json_ok(&["receive", "--timeout", "5"]);
    assert!(
        flushed
            .iter()
            .any(|r| r["type"] == "sent" && r["id"] == id.as_str()),
        "the queued message was not sent by the next run: {flushed:?}"
    );
    let inbox = bob.receive();
    assert_eq!(
        inbox
            .messages
            .iter()
            .map(|m| (m.id.as_str(), m.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(id.as_str(), "interrupted once queued")],
        "{:?}",
        inbox.records
    );
}

/// Kills and reaps the child if the test fails before waiting for it.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
