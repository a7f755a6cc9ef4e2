//! A full relay (its connection cap reached: HTTP 503 with `Retry-After` on
//! the upgrade) is a typed, retryable failure, and the client waits at least
//! as long as the relay asked before it tries again.
//!
//! Must never: pass while the client treats the refusal as an anonymous
//! transport error or reconnects sooner than `Retry-After`.

mod support;

use std::time::Duration;

use support::{config, register, TestRelay, WAIT};
use umbra_client_core::{Client, ConnectionFailure, ConnectionState, Error};
use umbra_relay::config::Settings;

#[tokio::test]
async fn a_full_relay_is_a_typed_failure_and_its_retry_after_is_honoured() {
    let relay = TestRelay::start_with(Settings {
        max_connections_per_address: Some(1),
        ..Settings::default()
    })
    .await;
    let (alice, store) = register(&relay.url(), "alice").await;
    alice.shutdown().await;

    // Another client from this address holds the one slot (a TCP
    // connection counts from accept, before any byte).
    let port = relay.url().rsplit(':').next().unwrap().to_owned();
    let _holder = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connect the holder");

    let client = Client::open(config(&relay.url(), &store), "pw-of-test")
        .await
        .expect("open");
    let err = client.receive_until_empty(WAIT).await.unwrap_err();
    match err.failure() {
        Error::Connection(ConnectionFailure::RelayFull { retry_after, .. }) => {
            // umbra-relay asks for 10 s (docs/OPERATIONS.md).
            assert_eq!(*retry_after, Some(Duration::from_secs(10)), "{err}");
        }
        other => panic!("expected RelayFull, got {other:?}"),
    }
    assert!(err.is_retryable(), "a full relay is worth retrying");
    assert!(err.to_string().contains("try again in 10 s"), "{err}");

    // The next attempt waits at least what the relay asked for, not the
    // backoff's first 250 ms.
    // (The state is published right after the failure: await it.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let retry_in = loop {
        if let ConnectionState::Reconnecting { retry_in, .. } = client.connection_state() {
            break retry_in;
        }
        assert!(tokio::time::Instant::now() < deadline, "never Reconnecting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(retry_in >= Duration::from_secs(10), "{retry_in:?}");
    client.shutdown().await;
}
