//! ML-KEM prekey publication and upkeep against the real relay (issue 14,
//! docs/PROTOCOL.md 12.6): what registration and a connection publish,
//! top-up when the relay runs low, and a relay too old for the KEM frames.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::proxy::{Mode, Proxy};
use support::watch::Watch;
use support::{config, register, TestRelay};
use umbra_client_core::{Client, Event};
use umbra_protocol::kem_prekeys::KEM_PREKEY_BATCH_MAX;

const BATCH: u64 = KEM_PREKEY_BATCH_MAX as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_publishes_a_last_resort_and_a_full_batch_of_kem_prekeys() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let stock = relay.kem_prekeys(&alice).await;
    assert_eq!(stock.one_time, BATCH, "{stock:?}");
    assert!(stock.last_resort, "the last-resort KEM prekey is published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_kem_prekeys_are_topped_up_when_the_client_connects() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    alice.shutdown().await;
    drop(alice);

    // 85 contacts claimed a bundle while alice was away: 15 left, under
    // the low water of 20.
    let alice = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .expect("reopen alice");
    relay.claim_hybrid_bundles(&alice, 85).await;
    assert_eq!(relay.kem_prekeys(&alice).await.one_time, BATCH - 85);

    let mut watch = Watch::on(&alice);
    alice.connect().await.expect("connect");
    let events = watch
        .until(|seen| {
            seen.iter()
                .any(|e| matches!(e, Event::KemPreKeysReplenished { uploaded: 85 }))
        })
        .await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RelayLacksPostQuantum)),
        "{events:?}"
    );
    let stock = relay.kem_prekeys(&alice).await;
    assert_eq!(
        stock.one_time, BATCH,
        "topped up to a full batch: {stock:?}"
    );
    assert!(stock.last_resort);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_too_old_for_kem_frames_is_reported_once_and_not_asked_again() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::Pass).await;
    let (alice, alice_store) = register(&proxy.url(), "alice").await;
    alice.shutdown().await;
    drop(alice);

    proxy.set_mode(Mode::OldRelay);
    let alice = Client::open(config(&proxy.url(), &alice_store), "pw-of-test")
        .await
        .expect("reopen alice");
    let mut watch = Watch::on(&alice);
    let before = proxy.seen.kem_requests.load(Ordering::SeqCst);
    alice.connect().await.expect("connect");
    watch
        .until(|seen| {
            seen.iter()
                .any(|e| matches!(e, Event::RelayLacksPostQuantum))
        })
        .await;
    // The old relay closed the connection; the client reconnects and
    // drains its queue again, but sends no KEM frame any more.
    let events = watch
        .until(|seen| {
            seen.iter()
                .filter(|e| matches!(e, Event::QueueEmpty))
                .count()
                >= 1
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        proxy.seen.kem_requests.load(Ordering::SeqCst),
        before + 1,
        "exactly one KEM request reached the old relay: {events:?}"
    );
    drop(alice_store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_through_a_relay_too_old_for_kem_frames_still_creates_the_account() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::OldRelay).await;
    // The account exists once the relay registered it; the missing KEM
    // prekeys are reported (event and log), not a failed registration.
    let (alice, _) = register(&proxy.url(), "alice").await;
    let stock = relay.kem_prekeys(&alice).await;
    assert_eq!((stock.one_time, stock.last_resort), (0, false), "{stock:?}");
    assert!(
        relay.one_time_prekeys(&alice).await > 0,
        "X25519 prekeys published"
    );
}
