//! Hybrid (PQXDH) sessions between clients over the real relay (issue 14,
//! docs/PROTOCOL.md 12.4, 12.5): every new session is hybrid, one-time
//! ML-KEM prekeys are used once and topped up, a relay that strips the KEM
//! prekeys from a bundle gets no message at all, and a restart keeps the
//! KEM prekeys a queued message needs.
//!
//! That a session is hybrid is shown by what the responder accepts: a
//! client refuses every classical pre-key message (12.5, and the
//! `inbound::tests::pq` unit tests, which read the 0x05 type byte off the
//! wire), so a first message that opens came over PQXDH; and by the
//! traffic: no classical bundle is ever fetched.

mod support;

use std::sync::atomic::Ordering;

use support::proxy::{Mode, Proxy};
use support::watch::Watch;
use support::{config, messages, name, peer, receive, register, TestRelay};
use umbra_client_core::{Client, Error, Event};
use umbra_protocol::kem_prekeys::KEM_PREKEY_BATCH_MAX;
use umbra_protocol::wire::DeviceId;

const BATCH: u64 = KEM_PREKEY_BATCH_MAX as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_talk_over_a_hybrid_session_that_used_one_one_time_kem_prekey() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::Pass).await;
    let (alice, _) = register(&proxy.url(), "alice").await;
    let (bob, _) = register(&proxy.url(), "bob").await;
    assert_eq!(relay.kem_prekeys(&bob).await.one_time, BATCH);

    alice
        .send_text(&name("bob"), "hello over PQXDH")
        .await
        .expect("alice sends");
    // Alice's hybrid fetch took exactly one of bob's one-time KEM prekeys.
    assert_eq!(relay.kem_prekeys(&bob).await.one_time, BATCH - 1);
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".to_owned(), "hello over PQXDH".to_owned())],
        "{events:?}"
    );
    bob.send_text(&name("alice"), "and back")
        .await
        .expect("bob replies");
    let events = receive(&alice).await;
    assert_eq!(
        messages(&events),
        vec![("bob".to_owned(), "and back".to_owned())],
        "{events:?}"
    );
    assert_eq!(
        proxy.seen.classical_fetches.load(Ordering::SeqCst),
        0,
        "no classical bundle was ever asked for"
    );
    // Bob replied on alice's session: his fetch took none of hers.
    assert_eq!(relay.kem_prekeys(&alice).await.one_time, BATCH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_strips_the_kem_prekeys_gets_no_message_and_the_user_is_told() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::Pass).await;
    let (alice, _) = register(&proxy.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let sends_before = proxy.seen.sends.load(Ordering::SeqCst);

    proxy.set_mode(Mode::StripKem);
    let outcome = alice.send_text(&name("bob"), "must not go classical").await;
    match &outcome {
        Err(e @ Error::NoPostQuantumPreKey { username, device }) => {
            assert_eq!((username, *device), (&name("bob"), DeviceId::PRIMARY));
            assert_eq!(
                e.to_string(),
                "bob (device 1) publishes no post-quantum prekey: its client or the relay is \
                 out of date; umbra will not start a classical session"
            );
        }
        other => panic!("expected NoPostQuantumPreKey, got {other:?}"),
    }
    assert!(proxy.seen.stripped.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        proxy.seen.sends.load(Ordering::SeqCst),
        sends_before,
        "nothing was sent"
    );
    assert_eq!(proxy.seen.classical_fetches.load(Ordering::SeqCst), 0);
    let history = alice.history(&peer("bob"), 10).await.unwrap_or_default();
    assert!(history.is_empty(), "nothing queued: {history:?}");
    assert!(messages(&receive(&bob).await).is_empty());

    // The same relay path, honest again: the next send is hybrid and arrives.
    proxy.set_mode(Mode::Pass);
    alice
        .send_text(&name("bob"), "now it may go")
        .await
        .expect("alice sends");
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".to_owned(), "now it may go".to_owned())],
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kem_prekeys_running_low_are_topped_up_by_the_relays_push() {
    let relay = TestRelay::start().await;
    let proxy = Proxy::start(&relay.url(), Mode::Pass).await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&proxy.url(), "bob").await;
    bob.connect().await.expect("bob online");
    // Registration's publication (count, upload) and the connection's
    // first maintenance (count, upload) are done before the claims, so the
    // push below is the only top-up.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while proxy.seen.kem_requests.load(Ordering::SeqCst) < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's maintenance never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Other contacts took 80 of bob's 100 while he was online: 20 left,
    // exactly the low water; alice's fetch takes one more.
    relay.claim_hybrid_bundles(&bob, 80).await;
    let mut watch = Watch::on(&bob);
    alice
        .send_text(&name("bob"), "one more contact")
        .await
        .expect("alice sends");
    watch
        .until(|seen| {
            seen.iter()
                .any(|e| matches!(e, Event::KemPreKeysReplenished { uploaded: 81 }))
        })
        .await;
    let stock = relay.kem_prekeys(&bob).await;
    assert_eq!(stock.one_time, BATCH, "{stock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_kem_prekey_a_queued_message_needs_and_reads_it_once() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, bob_store) = register(&relay.url(), "bob").await;
    bob.shutdown().await;
    drop(bob);

    alice
        .send_text(&name("bob"), "while you were away")
        .await
        .expect("alice sends");
    let bob = Client::open(config(&relay.url(), &bob_store), "pw-of-test")
        .await
        .expect("reopen bob");
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".to_owned(), "while you were away".to_owned())],
        "the one-time KEM prekey's seed survived the restart: {events:?}"
    );
    bob.shutdown().await;
    drop(bob);

    // Once more: nothing is read twice.
    let bob = Client::open(config(&relay.url(), &bob_store), "pw-of-test")
        .await
        .expect("reopen bob again");
    let events = receive(&bob).await;
    assert!(messages(&events).is_empty(), "{events:?}");
    let history = bob.history(&peer("alice"), 10).await.expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    bob.send_text(&name("alice"), "back")
        .await
        .expect("bob answers on the session");
    let events = receive(&alice).await;
    assert_eq!(
        messages(&events),
        vec![("bob".to_owned(), "back".to_owned())],
        "{events:?}"
    );
}
