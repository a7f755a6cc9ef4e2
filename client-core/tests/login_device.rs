//! Logging in again as an existing device (docs/PROTOCOL.md §15.6
//! `LoginDevice`) against a real relay in this process: a linked device 2
//! that logged out logs in with the password as device 2 again, and a
//! relay (here a proxy playing one) whose answer names another device is
//! refused as misbehaving, with this store left logged out rather than
//! holding another device's token.
//!
//! Must never: accept a token for a device this store is not.

use std::sync::Arc;
use std::time::Duration;

use umbra_client_core::store::MemoryStore;
use umbra_client_core::{Client, Error, RelayMisbehaved};

mod support;
use support::proxy::{Mode, Proxy};
use support::{config, register, TestRelay, WAIT};

/// The test account's password; the linked store is sealed under it too,
/// as `login` unlocks the store with the password it logs in with.
const PASSWORD: &str = "pw-of-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_linked_device_logs_in_as_itself_and_refuses_another_id() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::Pass).await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let invite = alice.link_device().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let joiner = {
        let (config, code) = (config(&relay.url(), &store), invite.code().to_owned());
        tokio::spawn(async move { Client::link_accept(config, &code, PASSWORD).await })
    };
    let device = tokio::time::timeout(Duration::from_secs(60), invite.complete())
        .await
        .expect("linked in time")
        .expect("linked");
    assert_eq!(device, 2);
    let linked = tokio::time::timeout(WAIT, joiner)
        .await
        .expect("joined in time")
        .unwrap()
        .expect("joined");
    linked.logout().await.unwrap();
    linked.shutdown().await;

    // A relay that gives a token for another device: refused.
    proxy.set_mode(Mode::OtherDevice);
    let refused = Client::login(config(&proxy.url(), &store), "alice", PASSWORD).await;
    assert!(
        matches!(
            refused,
            Err(Error::Protocol(RelayMisbehaved::UnexpectedResponse { .. }))
        ),
        "{refused:?}"
    );
    let opened = Client::open(config(&relay.url(), &store), PASSWORD)
        .await
        .expect("the store opens");
    assert!(!opened.is_logged_in().await.unwrap(), "no token was stored");
    opened.shutdown().await;

    // The real answer: device 2 again, the account's two devices as before.
    proxy.set_mode(Mode::Pass);
    let again = Client::login(config(&proxy.url(), &store), "alice", PASSWORD)
        .await
        .expect("logged in again");
    assert_eq!(again.whoami().device_id, 2);
    assert!(again.is_logged_in().await.unwrap());
    let ids: Vec<u32> = again
        .devices()
        .await
        .unwrap()
        .iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(ids, [1, 2]);
    again.shutdown().await;
    alice.shutdown().await;
}
